//! Compact requests answered by member index alone must get the answer the same
//! requests get by id, and must not be answered against other members.

use alloc::format;
use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::{Generation, PageForm, Timestamp, build_syn};

const T0: u64 = 1_700_000_000;
const NOW: Timestamp = Timestamp::from_secs(T0);

fn id(i: usize) -> NodeId {
    NodeId::new(format!("node-{i:03}")).unwrap()
}

/// Node `me`'s view of `n` nodes, ahead by 3 versions on the nodes of parity
/// `ahead_on` (never on `me`, whose own state is always newest at its owner).
fn view(n: usize, me: usize, ahead_on: usize) -> View {
    let states = (0..n).map(|i| {
        let hb = Version(100 + if i % 2 == ahead_on || i == me { 3 } else { 0 });
        (id(i), EndpointState::from_parts(Generation(T0), hb, [], Version::ZERO))
    });
    View::from_states(id(me), states).unwrap()
}

fn budget() -> Budget {
    Budget::unlimited()
}

/// A (node 0) sends a compact SYN to B (node 1) and gets B's ACK: requests for
/// the even nodes (where A is ahead), beats for the odd ones.
fn round(n: usize) -> (View, Ack) {
    let a = view(n, 0, 0);
    let b = view(n, 1, 1);
    let syn = build_syn(&a, budget(), None, PageForm::Compact).unwrap().syn;
    let ack = handle_syn(&b, &syn, budget(), &mut ChaCha8Rng::seed_from_u64(1)).message;
    assert!(ack.compact.as_ref().is_some_and(|c| !c.requests.is_empty() && !c.deltas.is_empty()));
    (a, ack)
}

/// A node neither view knows, whose id sorts among theirs (so within any range
/// that holds them).
fn newcomer() -> Delta {
    Delta {
        node: NodeId::new("node-0055").unwrap(),
        generation: Generation(T0),
        from: Version::ZERO,
        purged: Version::ZERO,
        heartbeat: Some(Version(1)),
        values: Vec::new(),
    }
}

#[test]
fn requests_by_index_get_the_answer_requests_by_id_get() {
    for n in [2, 3, 10, 101] {
        let (mut a, ack) = round(n);
        let received = handle_ack(&a, &ack);
        assert!(received.deltas.iter().all(|d| d.values.is_empty()), "heartbeats only");
        let wanted = ack.compact.as_ref().unwrap().requests.len();
        assert_eq!((received.requests.by_index.len(), received.requests.len()), (wanted, wanted), "kept by index");
        a.apply(&received.deltas, NOW);
        let by_index = build_ack2(&a, &received.requests, budget(), &mut ChaCha8Rng::seed_from_u64(2));
        // the same requests kept by id, as an ACK with deltas that may change the
        // members keeps them
        let context = received.requests.context.clone().unwrap();
        let members = Members::current(&a, &context.range);
        let by_id = Requests {
            digests: members.digests(received.requests.by_index.iter().copied()),
            indices: received.requests.by_index.iter().map(|&(index, _)| index).collect(),
            context: Some(context),
            by_index: Vec::new(),
        };
        let answer = build_ack2(&a, &by_id, budget(), &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(by_index, answer, "n = {n}");
        assert_eq!(by_index.left_out, 0);
        assert_eq!(by_index.message.compact.as_ref().map_or(0, |c| c.deltas.len()), wanted, "each answered");
    }
}

#[test]
fn requests_by_index_are_left_out_when_the_members_changed() {
    let (mut a, ack) = round(10);
    let received = handle_ack(&a, &ack);
    let wanted = received.requests.by_index.len();
    assert!(wanted > 0);
    // a new member, within the context, between the ACK and its answer
    let before = a.members_hash();
    assert!(a.apply(&[newcomer()], NOW).ignored.is_empty());
    assert_ne!(a.members_hash(), before);
    let built = build_ack2(&a, &received.requests, budget(), &mut ChaCha8Rng::seed_from_u64(2));
    assert_eq!(built.left_out, wanted, "counted, not answered against other members");
    assert!(built.message.compact.as_ref().is_none_or(|c| c.deltas.is_empty()));
}

#[test]
fn requests_of_an_ack_that_may_change_the_members_are_kept_by_id() {
    let (mut a, mut ack) = round(10);
    // the ACK also brings a node A did not know
    ack.deltas.push(newcomer());
    let received = handle_ack(&a, &ack);
    let wanted = ack.compact.as_ref().unwrap().requests.len();
    assert!(received.requests.by_index.is_empty());
    assert_eq!(received.requests.len(), wanted);
    a.apply(&received.deltas, NOW);
    let built = build_ack2(&a, &received.requests, budget(), &mut ChaCha8Rng::seed_from_u64(2));
    assert_eq!(built.left_out, 0);
    assert_eq!(built.message.deltas.len() + built.message.compact.as_ref().map_or(0, |c| c.deltas.len()), wanted);
}
