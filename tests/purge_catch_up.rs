//! A node that was away longer than the tombstone grace period catches up.
//!
//! While C is partitioned away, owner A deletes a key, and after the grace period
//! purges the tombstone (raising its purge floor). B learns the floor and drops its
//! copy of the tombstone. When C comes back it still holds the deleted key live;
//! no tombstone exists anywhere to tell it otherwise. Its max version of A is below
//! A's purge floor, so B answers it with A's whole state from version 0, and C
//! rebuilds its view of A from it (over several rounds when the budget is small).
//! The deleted key must disappear at C and never reappear anywhere.

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Budget, Change, ClusterName, Generation, Header, Key, NodeId, PageForm, Timestamp, View, build_ack2, build_syn,
    handle_ack, handle_ack2, handle_syn,
};

const T0: u64 = 1_700_000_000;

fn budget(v: &View, bytes: usize) -> Budget {
    let h = Header {
        cluster: ClusterName::new("c").unwrap(),
        sender: v.local_id().clone(),
        generation: v.local_generation(),
    };
    Budget::new(bytes, &h).unwrap()
}

/// One full round, `a` starting it with `b`; returns the changes each side saw.
fn round(a: &mut View, b: &mut View, bytes: usize, now: Timestamp, rng: &mut ChaCha8Rng) -> Vec<Change> {
    let syn = build_syn(a, budget(a, bytes), None, PageForm::Full).unwrap().syn;
    let ack = handle_syn(b, &syn, budget(b, bytes), rng).message;
    let received = handle_ack(a, &ack);
    let mut changes = a.apply(&received.deltas, now).changes;
    let ack2 = build_ack2(a, &received.requests, budget(a, bytes), rng).message;
    changes.extend(b.apply(&handle_ack2(b, &ack2).deltas, now).changes);
    changes
}

fn settle(a: &mut View, b: &mut View, bytes: usize, now: Timestamp, rng: &mut ChaCha8Rng) {
    for _ in 0..50 {
        round(a, b, bytes, now, rng);
        round(b, a, bytes, now, rng);
    }
}

fn run(bytes: usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(bytes as u64);
    let mut now = Timestamp::from_secs(T0);
    let [mut a, mut b, mut c] = ["a", "b", "c"].map(|id| View::new(NodeId::new(id).unwrap(), Generation(T0)));
    let gone = Key::new("gone").unwrap();
    a.set_local(gone.clone(), "soon deleted").unwrap();
    for i in 0..6 {
        a.set_local(Key::new(&format!("k{i}")).unwrap(), format!("value number {i}").as_str()).unwrap();
    }
    settle(&mut a, &mut b, bytes, now, &mut rng);
    settle(&mut b, &mut c, bytes, now, &mut rng);
    let id_a = a.local_id().clone();
    assert!(c.get(&id_a).unwrap().live_value(&gone).is_some(), "C learned the key");

    // C is away. A deletes the key; after the grace period it purges the tombstone.
    a.delete_local(&gone, now).unwrap();
    settle(&mut a, &mut b, bytes, now, &mut rng);
    now = now + Duration::from_secs(3600);
    let floor = a.purge_local(now, Duration::from_secs(600)).expect("the tombstone is due");
    a.set_local(Key::new("k0").unwrap(), "rewritten while C was away").unwrap();
    settle(&mut a, &mut b, bytes, now, &mut rng);
    assert!(b.get(&id_a).unwrap().get(&gone).is_none(), "B dropped the tombstone with the floor");
    assert_eq!(b.get(&id_a).unwrap().purged(), floor);
    assert!(c.get(&id_a).unwrap().max_version() < floor, "C is stale against the floor");

    // C comes back and talks only to B, which holds no tombstone of the key.
    let mut saw_reset = false;
    for _ in 0..60 {
        for changes in [round(&mut c, &mut b, bytes, now, &mut rng), round(&mut b, &mut c, bytes, now, &mut rng)] {
            saw_reset |= changes.iter().any(|ch| matches!(ch, Change::Reset { node, .. } if *node == id_a));
        }
        assert!(b.get(&id_a).unwrap().get(&gone).is_none(), "the deleted key came back at B");
    }
    assert!(saw_reset, "C reported the reset");
    assert_eq!(c.get(&id_a), Some(a.local_state()), "C caught up exactly");
    assert!(c.get(&id_a).unwrap().get(&gone).is_none());
    // and A never sees it again either
    settle(&mut a, &mut c, bytes, now, &mut rng);
    assert!(a.local_state().get(&gone).is_none());
    assert_eq!(c.get(&id_a), Some(a.local_state()));
}

#[test]
fn a_node_away_longer_than_the_grace_period_catches_up() {
    run(64 * 1024);
}

#[test]
fn it_catches_up_even_when_the_rebuild_takes_several_rounds() {
    // small enough that A's whole state does not fit one message
    run(120);
}
