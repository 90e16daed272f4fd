//! Which deltas an ACK carries when they do not all fit: owners ordered
//! scuttle-depth (most versions missing first), ties broken by the injected RNG;
//! and what a paged digest does not list is never read as an unknown node.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Budget, ClusterName, Digest, DigestPage, EndpointState, Generation, Header, Key, NodeId, NodeRange, Syn, Version,
    VersionedValue, View, handle_syn,
};

const GENERATION: Generation = Generation(1_700_000_000);
/// 40 bytes: a field costs about 43 bytes in a delta.
const VALUE: &str = "0123456789012345678901234567890123456789";

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// A state of `fields` values at versions 1..=fields, heartbeat just above.
fn state(fields: u64) -> EndpointState {
    let values = (1..=fields).map(|v| (Key::new(&format!("k{v}")).unwrap(), VersionedValue::live(VALUE, Version(v))));
    EndpointState::from_parts(GENERATION, Version(fields + 1), values, Version::ZERO)
}

/// Node `me` holding `nodes` (name, fields).
fn view(nodes: &[(&str, u64)]) -> View {
    let mut states = vec![(id("me"), state(0))];
    states.extend(nodes.iter().map(|(n, f)| (id(n), state(*f))));
    View::from_states(id("me"), states).unwrap()
}

fn digest(node: &str, max: u64) -> Digest {
    Digest { node: id(node), generation: GENERATION, max_version: Version(max), purged: Version::ZERO }
}

fn budget(bytes: usize) -> Budget {
    let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id("me"), generation: GENERATION };
    Budget::new(bytes, &header).unwrap()
}

/// The deltas of an ACK to `syn`: (node, fields carried, the heartbeat counted).
/// They go out in id
/// order (the wire's rule), so which owner came first shows in how much it got.
fn answered(v: &View, syn: &Syn, bytes: usize, seed: u64) -> Vec<(String, usize)> {
    let built = handle_syn(v, syn, budget(bytes), &mut ChaCha8Rng::seed_from_u64(seed));
    built
        .message
        .deltas
        .iter()
        .map(|d| (d.node.to_string(), d.values.len() + usize::from(d.heartbeat.is_some())))
        .collect()
}

/// Room for one node's three fields (about 140 bytes), not for two nodes'.
const ONE_DELTA: usize = 200;

#[test]
fn the_owner_most_behind_goes_first_when_not_all_fit() {
    // the peer is 12 versions behind on z (last in id order: 11 values and the
    // heartbeat), 3 behind on a, b and c (2 values and the heartbeat)
    let v = view(&[("a", 6), ("b", 6), ("c", 6), ("z", 12)]);
    let syn = Syn { page: DigestPage::Listed(vec![digest("a", 4), digest("b", 4), digest("c", 4), digest("z", 1)]) };
    for bytes in [ONE_DELTA, 260, 330, 500, 700] {
        for seed in 0..64 {
            let got = answered(&v, &syn, bytes, seed);
            let z = got.iter().find(|(n, _)| n == "z").map(|(_, f)| *f);
            // z's fields come first: it gets all 12, or all the room there is
            assert!(z.is_some_and(|f| f >= 2), "budget {bytes}, seed {seed}: {got:?}");
            if got.len() > 1 {
                assert_eq!(z, Some(12), "another owner got room before z had all: {got:?}");
            }
        }
    }
    // with room for everything, every owner is answered whole
    let all = [("a".into(), 3), ("b".into(), 3), ("c".into(), 3), ("z".into(), 12)];
    assert_eq!(answered(&v, &syn, 64 * 1024, 0), all);
}

#[test]
fn ties_are_broken_by_the_injected_rng() {
    let v = view(&[("b", 6), ("c", 6), ("d", 6)]);
    let syn = Syn { page: DigestPage::Listed(vec![digest("b", 4), digest("c", 4), digest("d", 4)]) };
    let mut winners = std::collections::BTreeMap::<String, u32>::new();
    for seed in 0..300 {
        let got = answered(&v, &syn, ONE_DELTA, seed);
        assert_eq!(got, answered(&v, &syn, ONE_DELTA, seed), "the same seed, the same answer");
        // one owner whole (the first in the draw); at most a part of the next
        let whole: Vec<&String> = got.iter().filter(|(_, f)| *f == 3).map(|(n, _)| n).collect();
        assert_eq!(whole.len(), 1, "{got:?}");
        *winners.entry(whole[0].clone()).or_default() += 1;
    }
    // each of the three about a third of the time (100 expected)
    assert_eq!(winners.len(), 3, "{winners:?}");
    assert!(winners.values().all(|&n| (70..=130).contains(&n)), "{winners:?}");
}

#[test]
fn nodes_a_range_page_does_not_list_are_neither_pushed_nor_requested() {
    // the receiver knows a to e; the page speaks for [b, d) and lists b only:
    // the sender holds no c, so c is pushed, while a, d and e lie outside
    let v = view(&[("a", 3), ("b", 3), ("c", 3), ("d", 3), ("e", 3)]);
    let range = NodeRange::new(Some(id("b")), Some(id("d"))).unwrap();
    let syn = Syn { page: DigestPage::Range { range, digests: vec![digest("b", 9)] } };
    let built = handle_syn(&v, &syn, Budget::unlimited(), &mut ChaCha8Rng::seed_from_u64(1));
    let pushed: Vec<String> = built.message.deltas.iter().map(|d| d.node.to_string()).collect();
    assert_eq!(pushed, ["c"], "only the unlisted node inside the range");
    let requested: Vec<String> = built.message.requests.iter().map(|d| d.node.to_string()).collect();
    assert_eq!(requested, ["b"], "b is newer at the sender");
    // a listed page (the whole digest) pushes every node it does not name
    let syn = Syn { page: DigestPage::Listed(vec![digest("b", 9)]) };
    let built = handle_syn(&v, &syn, Budget::unlimited(), &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(built.message.deltas.len(), 0, "the reference pushes nothing the SYN did not list");
}
