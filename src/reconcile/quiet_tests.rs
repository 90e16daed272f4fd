//! Heartbeats taken from a compact page's quiet members (`answer_syn` with
//! beats) must leave both ends of a round where requesting them would, and each
//! taken member exactly as the sender holds it.

use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::beat_tests::{History, NOW, T0, id, view_of};
use super::*;
use crate::{ClusterName, Generation, Header, PageForm, build_syn};

/// One round from A to B, B taking heartbeats from the page or not. Returns
/// both views afterwards, and B's view with only the taken beats applied and
/// how many there were.
fn round(a: &View, b: &View, syn: &Syn, budget: Budget, seed: u64, take: bool) -> (View, View, View, usize) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut a, mut b) = (a.clone(), b.clone());
    let mut beats = Beats::default();
    let ack = answer_syn(&b, syn, budget, &mut rng, if take { Some(&mut beats) } else { None }).message;
    let mut ignored = Vec::new();
    if take {
        b.apply_beats(&beats, NOW, &mut ignored, |_, _| {});
    }
    assert!(ignored.is_empty());
    let after_beats = b.clone();
    let received = handle_ack(&a, &ack);
    a.apply(&received.deltas, NOW);
    let ack2 = build_ack2(&a, &received.requests, budget, &mut rng).message;
    let received = handle_ack2(&b, &ack2);
    b.apply(&received.deltas, NOW);
    (a, b, after_beats, beats.list.len())
}

fn states(v: &View) -> Vec<(NodeId, EndpointState)> {
    v.iter().map(|(id, s)| (id.clone(), s.clone())).collect()
}

#[test]
fn taking_quiet_heartbeats_ends_a_round_where_requesting_them_does() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let (mut taken, mut rounds_taking, mut rounds_not) = (0, 0, 0);
    for i in 0..4000 {
        let names = ["a", "b", "n1", "n2", "n3", "n4", "n5", "n6"];
        let world: Vec<History> = names.iter().map(|n| History::quiet_tailed(id(n), &mut rng)).collect();
        let a = view_of(&id("a"), &world, &mut rng);
        let b = view_of(&id("b"), &world, &mut rng);
        // budgets from roomy to tight: requests and deltas are left out too
        let total = [60_000, 120, 80][i % 3];
        let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id("b"), generation: Generation(T0) };
        let budget = Budget::new(total, &header).unwrap();
        let Ok(syn) = build_syn(&a, Budget::unlimited(), None, PageForm::Compact) else { continue };
        let seed = rng.next_u64();
        let (a1, b1, _, none) = round(&a, &b, &syn.syn, budget, seed, false);
        let (a2, b2, beaten, n) = round(&a, &b, &syn.syn, budget, seed, true);
        assert_eq!(none, 0);
        // each member whose heartbeat B took is now exactly as A holds it
        for (node, state) in beaten.iter() {
            if b.get(node) != Some(state) {
                assert_eq!(a.get(node), Some(state), "round {i}: {node} taken from the page");
            }
        }
        if total == 60_000 {
            // everything fits: both ways end in the same states
            assert_eq!(states(&a1), states(&a2), "round {i}: A");
            assert_eq!(states(&b1), states(&b2), "round {i}: B");
        }
        taken += n;
        if n > 0 { rounds_taking += 1 } else { rounds_not += 1 }
    }
    // both roads were taken, often
    assert!(taken > 400 && rounds_taking > 300 && rounds_not > 300, "{taken} {rounds_taking} {rounds_not}");
}

/// The page's check covers its quiet bits: a page with one flipped is refused
/// whole (nothing taken, a resend asked for), never acted on.
#[test]
fn a_flipped_quiet_bit_fails_the_check() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut refused = 0;
    for _ in 0..500 {
        let names = ["a", "b", "n1", "n2", "n3"];
        let world: Vec<History> = names.iter().map(|n| History::quiet_tailed(id(n), &mut rng)).collect();
        let a = view_of(&id("a"), &world, &mut rng);
        let b = view_of(&id("b"), &world, &mut rng);
        let Ok(built) = build_syn(&a, Budget::unlimited(), None, PageForm::Compact) else { continue };
        let mut syn = built.syn;
        let DigestPage::Compact(c) = &mut syn.page else { unreachable!() };
        let member = (rng.next_u32() as usize) % c.len();
        c.quiet[member / 8] ^= 1 << (member % 8);
        let mut beats = Beats::default();
        let built = answer_syn(&b, &syn, Budget::unlimited(), &mut rng, Some(&mut beats));
        // (pages whose members or floors differ fail either way)
        assert!(built.context_error.is_some(), "a flipped bit for member {member} went unnoticed");
        assert!(beats.list.is_empty() && built.message.resend.is_some());
        refused += 1;
    }
    assert!(refused > 400, "{refused}");
}
