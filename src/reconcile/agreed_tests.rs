//! The answer to a compact page of agreed members, built member by member
//! (`answer_agreed`), must be the general path's answer (`answer_page` over the
//! page lined up by `resolve_page`), byte for byte and draw for draw.

use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

use super::beat_tests::{History, T0, id, view_of};
use super::*;
use crate::{ClusterName, Generation, Header, PageForm, build_syn};

#[test]
fn agreed_pages_are_answered_as_the_general_path_answers_them() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut requests, mut deltas, mut left_out, mut answered) = (0, 0, 0, 0);
    for round in 0..2000 {
        let names = ["a", "b", "n1", "n2", "n3", "n4", "n5", "n6"];
        let world: Vec<History> = names.iter().map(|n| History::random(id(n), &mut rng)).collect();
        let a = view_of(&id("a"), &world, &mut rng);
        let b = view_of(&id("b"), &world, &mut rng);
        // budgets from roomy to tight: requests and deltas are left out too
        let total = [60_000, 120, 80, 60][round % 4];
        let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id("b"), generation: Generation(T0) };
        let budget = Budget::new(total, &header).unwrap();
        let Ok(syn) = build_syn(&a, Budget::unlimited(), None, PageForm::Compact) else { continue };
        let seed = rng.next_u64();
        let fast = handle_syn(&b, &syn.syn, budget, &mut ChaCha8Rng::seed_from_u64(seed));
        let Ok(page) = resolve_page(&b, &syn.syn.page) else {
            // members or checks differ: both refuse the page alike
            assert!(fast.context_error.is_some(), "{fast:?}");
            continue;
        };
        let general = answer_page(page, budget, &mut ChaCha8Rng::seed_from_u64(seed));
        assert_eq!(fast, general, "round {round}");
        let c = fast.message.compact.as_ref().expect("a compact answer");
        requests += c.requests.len();
        deltas += c.deltas.len();
        left_out += fast.left_out;
        answered += 1;
    }
    // every road was taken, often
    assert!(
        answered > 300 && requests > 300 && deltas > 300 && left_out > 50,
        "{answered} {requests} {deltas} {left_out}"
    );
}
