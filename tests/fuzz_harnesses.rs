//! Runs the fuzz harnesses (`rumormill::fuzzing`) without the fuzzer, so that they
//! are exercised on every test run and cannot rot: `decode` over the wire
//! document's hex vectors and every byte-level mutation of them, and every harness
//! over its seed corpus (as `fuzz/seed_corpus.rs` writes it) and a few hundred
//! deterministic pseudo-random inputs. Then the core bugs the harnesses found, as
//! regression tests. See docs/fuzzing.md.
#![cfg(all(feature = "fuzzing", feature = "encryption"))]

fn hex_vectors() -> Vec<Vec<u8>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/wire.md")).unwrap();
    seed_corpus::wire_vectors(&doc)
}

#[test]
fn decode_harness_over_vectors_and_their_mutations() {
    let vectors = hex_vectors();
    assert!(vectors.len() >= 10, "the wire document's vectors were not found");
    for v in &vectors {
        assert!(rumormill::fuzzing::decode(v), "a document vector does not decode");
        for i in 0..v.len() {
            for b in [0u8, 1, 0x7f, 0x80, 0xff, v[i].wrapping_add(1)] {
                let mut m = v.clone();
                m[i] = b;
                rumormill::fuzzing::decode(&m);
            }
            rumormill::fuzzing::decode(&v[..i]);
        }
    }
}

/// Deterministic pseudo-random inputs (SplitMix64), of lengths up to `max_len`.
fn inputs(seed: u64, count: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..count)
        .map(|_| {
            let len = (next() % max_len as u64) as usize;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

/// The seed corpora, as `fuzz/seed_corpus.rs` writes them (the same code).
#[path = "../fuzz/seed_corpus.rs"]
mod seed_corpus;

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    let seeds = seed_corpus::seeds(std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    let of: Vec<Vec<u8>> = seeds.into_iter().filter(|s| s.target == target).map(|s| s.bytes).collect();
    assert!(!of.is_empty(), "no seeds for {target}");
    of
}

#[test]
fn decode_harness_over_its_seed_corpus() {
    let seeds = seeds_of("decode");
    let decoding = seeds.iter().filter(|s| rumormill::fuzzing::decode(s)).count();
    // every wire vector and every message of the conformance vectors is valid
    assert_eq!(decoding, seeds.len(), "a seed of the decode corpus does not decode");
}

#[test]
fn gossiper_ops_harness_over_its_seeds_and_random_inputs() {
    for s in seeds_of("gossiper_ops") {
        rumormill::fuzzing::gossiper_ops(&s);
    }
    for input in inputs(1, 300, 600) {
        rumormill::fuzzing::gossiper_ops(&input);
    }
}

#[test]
fn merge_harness_over_its_seeds_and_random_inputs() {
    for s in seeds_of("merge") {
        rumormill::fuzzing::merge(&s);
    }
    for input in inputs(2, 1000, 300) {
        rumormill::fuzzing::merge(&input);
    }
}

#[test]
fn open_harness_over_its_seeds_and_their_mutations() {
    let seeds = seeds_of("open");
    let opened = seeds.iter().filter(|s| rumormill::fuzzing::open(s)).count();
    let sealed = seeds.len() - 8;
    assert_eq!(opened, sealed, "every sealed seed opens, no plain one does");
    for s in seeds.iter().take(4) {
        for i in 0..s.len() {
            let mut m = s.clone();
            m[i] ^= 0x01;
            assert!(!rumormill::fuzzing::open(&m), "a frame with byte {i} changed opened");
        }
    }
    for input in inputs(3, 300, 200) {
        rumormill::fuzzing::open(&input);
    }
}

// ----- core bugs found by the harnesses, fixed -----

/// Bugs the harnesses found, fixed: each stays as a regression test.
mod found_bugs {
    use rumormill::{
        Delta, EndpointState, Generation, Key, Limits, NodeId, Timestamp, Value, Version, VersionedValue, View,
    };

    const T0: u64 = 1_700_000_000;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn view_with(other: EndpointState, limits: Limits) -> View {
        let local = View::new(id("me"), Generation(T0)).local_state().clone();
        View::from_states(id("me"), [(id("me"), local), (id("a"), other)]).unwrap().with_limits(limits)
    }

    fn live(k: &str, v: &str, version: u64) -> (Key, VersionedValue) {
        (Key::new(k).unwrap(), VersionedValue::live(Value::from(v), Version(version)))
    }

    /// A mangled SYN that still decoded flipped a quiet bit of its compact page
    /// (the bits were not covered by the page's check): the receiver took a
    /// heartbeat of a member past a value it never had (found by `gossiper_ops`
    /// within minutes of quiet bits landing). The check now covers the bits.
    #[test]
    fn a_flipped_quiet_bit_does_not_plant_a_heartbeat() {
        let hex: String = [
            "0102000001140c0003e8070c000096070c000096070c0003e8070c00009631020466754152454d4f5645000081818181",
            "8181818181818196070c0096e2cfaa06010800818181818181868181818196070c0096e2cfaa06010831302e30818181",
            "812e32e0e9dcb206e512000000000c0003e8070c0000898181818181818181c78196070c0096e2cfaa06010831302e30",
            "0e312e324840524d01030466757a7a026e3180e2cfaa06842b021300012f011301012f011381008d8d8d8d8d8d8d0c00",
            "54627b6e6e00000c0003e8070c00004f",
        ]
        .concat();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        rumormill::fuzzing::gossiper_ops(&bytes);
    }

    /// View::revision "changes whenever the view does": also for a delta that only
    /// raises the purge floor (pruning tombstones) with no Change to report. It
    /// did not, and a Gossiper's cached snapshot then showed the old state.
    #[test]
    fn a_purge_floor_alone_moves_the_revision() {
        let tomb = (Key::new("x").unwrap(), VersionedValue::tombstone(Version(5)));
        let a = EndpointState::from_parts(Generation(T0), Version(13), [tomb], Version(1));
        let mut view = view_with(a, Limits::default());
        let (before, revision) = (view.get(&id("a")).unwrap().clone(), view.revision());
        let delta = Delta {
            node: id("a"),
            generation: Generation(T0),
            from: Version(12),
            purged: Version(7),
            heartbeat: None,
            values: vec![],
        };
        let applied = view.apply(&[delta], Timestamp::from_secs(T0));
        let after = view.get(&id("a")).unwrap().clone();
        assert_ne!(after, before, "the floor was raised and the tombstone pruned");
        assert!(applied.changes.is_empty() && applied.ignored.is_empty());
        assert_ne!(view.revision(), revision, "the view changed but its revision did not");
    }

    /// Limits: "deltas that would exceed them are ignored", whole states (from 0)
    /// of a known node at its generation too. They were joined without a key count
    /// check, so a peer could grow a node's keys without bound.
    #[test]
    fn a_whole_state_join_stays_within_the_key_limit() {
        let limits = Limits { max_keys_per_node: 2, ..Limits::default() };
        let a =
            EndpointState::from_parts(Generation(T0), Version(3), [live("k1", "1", 1), live("k2", "2", 2)], Version(0));
        let mut view = view_with(a, limits);
        let delta = Delta {
            node: id("a"),
            generation: Generation(T0),
            from: Version(0),
            purged: Version(0),
            heartbeat: Some(Version(6)),
            values: vec![live("k3", "3", 4), live("k4", "4", 5)],
        };
        let applied = view.apply(&[delta], Timestamp::from_secs(T0));
        let keys = view.get(&id("a")).unwrap().values().len();
        assert!(keys <= 2, "{keys} keys held against a limit of 2 ({applied:?})");
    }

    /// The type's docs: states "whose tombstones all lie above their purge floor (the
    /// only ones this type lets exist)". from_parts pruned only for a floor above 0,
    /// so a tombstone at version 0 made a state that was not normalized.
    #[test]
    fn a_tombstone_at_version_0_is_purged() {
        let tomb = (Key::new("b").unwrap(), VersionedValue::tombstone(Version(0)));
        let s = EndpointState::from_parts(Generation(T0), Version(2), [tomb], Version(0));
        assert!(s.is_normalized(), "{s:?}");
    }
}
