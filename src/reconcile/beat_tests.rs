//! Beats (deltas that only raise a heartbeat, applied by position) must change a
//! view exactly as the same deltas applied by [`View::apply`] would.

use alloc::collections::BTreeSet;
use alloc::format;
use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::*;
use crate::digest::{Members, restore};
use crate::{Change, ClusterName, Generation, Header, Key, PageForm, Timestamp, build_syn};

pub(super) const T0: u64 = 1_700_000_000;
pub(super) const NOW: Timestamp = Timestamp::from_secs(T0);

pub(super) fn id(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// One owner's writes: at each version either a key or the heartbeat.
pub(super) struct History {
    node: NodeId,
    /// `None`: a heartbeat; `Some(k)`: key `k` set.
    writes: Vec<Option<u8>>,
}

impl History {
    pub(super) fn random(node: NodeId, rng: &mut ChaCha8Rng) -> History {
        let len = 1 + (rng.next_u32() % 12) as usize;
        let writes = (0..len).map(|_| rng.next_u32().is_multiple_of(2).then(|| (rng.next_u32() % 4) as u8)).collect();
        History { node, writes }
    }

    /// [`History::random`] followed by up to 23 heartbeats: the owner is quiet
    /// now and then (see [`CompactDigest::is_quiet`]).
    pub(super) fn quiet_tailed(node: NodeId, rng: &mut ChaCha8Rng) -> History {
        let mut h = History::random(node, rng);
        let tail = rng.next_u32() % 24;
        h.writes.extend((0..tail).map(|_| None));
        h
    }

    /// The owner's state up to version `upto`, with purge floor `purged`, as one
    /// delta from the beginning.
    fn state(&self, upto: usize, purged: u64) -> Delta {
        let mut values: Vec<(Key, VersionedValue)> = Vec::new();
        let mut heartbeat = None;
        for (i, w) in self.writes.iter().enumerate().take(upto) {
            let version = Version(i as u64 + 1);
            match w {
                None => heartbeat = Some(version),
                Some(k) => {
                    let key = Key::new(&format!("k{k}")).unwrap();
                    values.retain(|(k2, _)| *k2 != key);
                    let value = Some(crate::Value::from(format!("{}-{i}", self.node).into_bytes()));
                    values.push((key, VersionedValue { value, version }));
                }
            }
        }
        Delta {
            node: self.node.clone(),
            generation: Generation(T0),
            from: Version::ZERO,
            purged: Version(purged.min(upto as u64)),
            heartbeat,
            values,
        }
    }
}

/// A view of `local` holding every other node of `world` at a random point of
/// its history (so both views of a pair share members and generations).
pub(super) fn view_of(local: &NodeId, world: &[History], rng: &mut ChaCha8Rng) -> View {
    let mut v = View::new(local.clone(), Generation(T0));
    for _ in 0..rng.next_u32() % 4 {
        v.beat().unwrap();
    }
    let deltas: Vec<Delta> = world
        .iter()
        .filter(|h| h.node != *local)
        .map(|h| {
            let upto = (rng.next_u32() as usize) % (h.writes.len() + 1);
            // now and then a purge floor the other view does not share
            let purged = if rng.next_u32().is_multiple_of(6) { u64::from(rng.next_u32() % 4) } else { 0 };
            h.state(upto, purged)
        })
        .collect();
    v.apply(&deltas, NOW);
    v
}

/// The nodes whose heartbeat a set of changes raised.
fn raised(changes: &[Change]) -> BTreeSet<NodeId> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Heartbeat { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

/// Applies what `view` received both ways: all as deltas, and beats split off.
/// Returns how many beats there were and how many deltas went the usual way.
fn both_ways(
    view: &View,
    plain: impl Fn(&View) -> (Vec<Delta>, Option<ContextError>),
    split: impl Fn(&View, &mut Beats) -> (Vec<Delta>, Option<ContextError>),
) -> (usize, usize) {
    let mut one = view.clone();
    let (deltas, error) = plain(&one);
    let changes = one.apply(&deltas, NOW).changes;

    let mut two = view.clone();
    let mut beats = Beats::default();
    let (rest, error2) = split(&two, &mut beats);
    assert_eq!(error, error2);
    let (mut advanced, mut ignored) = (Vec::new(), Vec::new());
    two.apply_beats(&beats, NOW, &mut ignored, |position, _| advanced.push(position));
    assert!(ignored.is_empty());
    let mut raised_two: BTreeSet<NodeId> = advanced.iter().map(|&p| two.nodes().ids()[p].clone()).collect();
    raised_two.extend(raised(&two.apply(&rest, NOW).changes));

    assert_eq!(raised(&changes), raised_two, "the same heartbeats rise");
    let states = |v: &View| v.iter().map(|(id, s)| (id.clone(), s.clone())).collect::<Vec<_>>();
    assert_eq!(states(&one), states(&two), "the same states result");
    assert_eq!(one.revision() > view.revision(), two.revision() > view.revision());
    (beats.list.len(), rest.len())
}

/// Tampers with the compact deltas of `ack` the way an ACK built against an older
/// view (or a hostile peer) may differ from an honest one: purge floors that are
/// not the receiver's, `from`s above what it holds. Then sets the check to what
/// `receiver` computes, so that the deltas are used rather than refused.
fn tamper(ack: &mut Ack, receiver: &View, rng: &mut ChaCha8Rng) {
    let Some(c) = &mut ack.compact else { return };
    for d in &mut c.deltas {
        match rng.next_u32() % 4 {
            0 => d.purged = Version(u64::from(rng.next_u32() % 4)),
            1 => d.from = d.from.map(|low| low.wrapping_add(1 + (rng.next_u32() % 3) as u16)),
            _ => {}
        }
    }
    let Ok(members) = Members::verify(receiver, &c.context) else { return };
    let mut check = Check::new(ACK_CHECK, c.context.members);
    for r in &c.requests {
        let Ok((node, state)) = members.get(r.index) else { return };
        check.add(r.index, restore(r.max_version, state.max_version()), node);
    }
    for d in &c.deltas {
        let Ok((node, state)) = members.get(d.index) else { return };
        let from = d.from.map_or(Version::ZERO, |low| restore(low, state.max_version()));
        check.add(d.index, from, node);
    }
    c.check = check.finish();
}

#[test]
fn beats_change_a_view_exactly_as_the_deltas_they_stand_for() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let (mut beats, mut others) = (0, 0);
    for round in 0..600 {
        let names = ["a", "b", "n1", "n2", "n3", "n4", "n5"];
        let world: Vec<History> = names.iter().map(|n| History::random(id(n), &mut rng)).collect();
        let a = view_of(&id("a"), &world, &mut rng);
        let mut b = view_of(&id("b"), &world, &mut rng);
        // each must know the other, at a version its owner has reached
        let own_b = b.local_state().heartbeat().0;
        let known = |node: &str, upto: u64| Delta {
            node: id(node),
            generation: Generation(T0),
            from: Version::ZERO,
            purged: Version::ZERO,
            heartbeat: (upto > 0).then_some(Version(upto)),
            values: Vec::new(),
        };
        let mut a = a;
        let own_a = a.local_state().heartbeat().0;
        a.apply(&[known("b", own_b.saturating_sub(1))], NOW);
        b.apply(&[known("a", own_a.saturating_sub(1))], NOW);
        // budgets from roomy to tight, so that deltas are cut short too
        let total = [60_000, 400, 200][round % 3];
        let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id("a"), generation: Generation(T0) };
        let budget = Budget::new(total, &header).unwrap();
        let Ok(syn) = build_syn(&a, Budget::unlimited(), None, PageForm::Compact) else { continue };
        let mut ack = handle_syn(&b, &syn.syn, budget, &mut rng).message;
        if round % 2 == 1 {
            tamper(&mut ack, &a, &mut rng);
        }
        let (n, m) = both_ways(
            &a,
            |v| {
                let r = handle_ack(v, &ack);
                (r.deltas, r.context_error)
            },
            |v, beats| {
                let r = resolve_ack(v, &ack, Some(beats));
                (r.deltas, r.context_error)
            },
        );
        beats += n;
        others += m;

        // the ACK2, from the view that applied the ACK
        let mut a2 = a.clone();
        let received = handle_ack(&a2, &ack);
        a2.apply(&received.deltas, NOW);
        let ack2 = build_ack2(&a2, &received.requests, budget, &mut rng).message;
        let (n, m) = both_ways(
            &b,
            |v| {
                let r = handle_ack2(v, &ack2);
                (r.deltas, r.context_error)
            },
            |v, beats| {
                let r = resolve_ack2(v, &ack2, Some(beats));
                (r.deltas, r.context_error)
            },
        );
        beats += n;
        others += m;
    }
    // both roads were taken, often
    assert!(beats > 200 && others > 200, "beats {beats}, other deltas {others}");
}
