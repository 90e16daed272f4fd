//! The codec: every message round-trips, its encoded length is the predicted one,
//! any bytes that decode re-encode to themselves, and no builder exceeds its
//! budget.

use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, Ack2, Budget, ClusterName, Codec, Delta, Digest, DigestPage, Envelope, Generation, Header, Key, Message,
    NodeId, NodeRange, PageForm, Syn, Value, Version, VersionedValue, View, build_ack2, build_syn, handle_ack,
    handle_syn,
};

fn node_id() -> impl Strategy<Value = NodeId> {
    prop::collection::vec(any::<u8>(), 1..20).prop_map(|b| NodeId::new(b).unwrap())
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        (0u8..29).prop_map(|c| Key::from_well_known_code(c).unwrap()),
        "[a-z][a-z0-9_-]{0,20}".prop_map(|s| Key::new(&s).unwrap()),
    ]
}

fn big_u64() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..200, any::<u64>(), Just(u64::MAX)]
}

fn digest() -> impl Strategy<Value = Digest> {
    (node_id(), big_u64(), big_u64(), big_u64()).prop_map(|(node, g, v, p)| Digest {
        node,
        generation: Generation(g),
        max_version: Version(v),
        purged: Version(p),
    })
}

/// Digests in canonical order: ascending, distinct ids.
fn digests() -> impl Strategy<Value = Vec<Digest>> {
    prop::collection::vec(digest(), 0..8).prop_map(|mut ds| {
        ds.sort_by(|a, b| a.node.cmp(&b.node));
        ds.dedup_by(|a, b| a.node == b.node);
        ds
    })
}

fn delta() -> impl Strategy<Value = Delta> {
    (
        node_id(),
        big_u64(),
        prop_oneof![Just(0u64), 1u64..1000, u64::MAX / 2..u64::MAX / 2 + 10],
        big_u64(),
        prop::option::of(big_u64()),
        prop::collection::vec((key(), 0u64..50, prop::option::of(prop::collection::vec(any::<u8>(), 0..40))), 0..6),
    )
        .prop_map(|(node, g, from, purged, hb, fields)| {
            let mut values = Vec::new();
            let mut v = from;
            for (k, gap, value) in fields {
                if values.iter().any(|(k2, _): &(Key, VersionedValue)| *k2 == k) {
                    continue;
                }
                let Some(next) = v.checked_add(gap + 1) else { break };
                v = next;
                values.push((k, VersionedValue { value: value.map(Value::from), version: Version(v) }));
            }
            Delta {
                node,
                generation: Generation(g),
                from: Version(from),
                purged: Version(purged),
                heartbeat: hb.map(Version),
                values,
            }
        })
}

fn deltas() -> impl Strategy<Value = Vec<Delta>> {
    prop::collection::vec(delta(), 0..5).prop_map(|mut ds| {
        ds.sort_by(|a, b| a.node.cmp(&b.node));
        ds.dedup_by(|a, b| a.node == b.node);
        ds
    })
}

fn range() -> impl Strategy<Value = NodeRange> {
    (prop::option::of(node_id()), prop::option::of(node_id())).prop_map(|(a, b)| match (a, b) {
        (Some(a), Some(b)) if a < b => NodeRange::new(Some(a), Some(b)).unwrap(),
        (Some(a), Some(b)) if b < a => NodeRange::new(Some(b), Some(a)).unwrap(),
        (a, _) => NodeRange::new(a, None).unwrap(),
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        digests().prop_map(|ds| Message::Syn(Syn { page: DigestPage::Listed(ds) })),
        (range(), digests()).prop_map(|(range, ds)| {
            let digests = ds.into_iter().filter(|d| range.contains(&d.node)).collect();
            Message::Syn(Syn { page: DigestPage::Range { range, digests } })
        }),
        (digests(), deltas(), prop::option::of(range()))
            .prop_map(|(requests, deltas, resend)| { Message::Ack(Ack { requests, deltas, compact: None, resend }) }),
        deltas().prop_map(|deltas| Message::Ack2(Ack2 { deltas, compact: None })),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (node_id(), big_u64()).prop_map(|(sender, g)| Header {
        cluster: ClusterName::new("prop").unwrap(),
        sender,
        generation: Generation(g),
    })
}

fn codec() -> Codec {
    Codec::new(ClusterName::new("prop").unwrap()).with_max_value_len(1024)
}

/// Views of a few nodes that all know the same members, at versions far apart so
/// the 16-bit truncation of compact forms is exercised.
fn cluster(spread: &[u64], values: usize) -> Vec<View> {
    let ids: Vec<NodeId> = (0..spread.len()).map(|i| NodeId::new(format!("node-{i}")).unwrap()).collect();
    let mut owners: Vec<View> = ids.iter().map(|id| View::new(id.clone(), Generation(1_700_000_000))).collect();
    for (o, s) in owners.iter_mut().zip(spread) {
        o.advance_local_version(Version(*s)).unwrap();
        for k in 0..values {
            o.set_local(Key::new(&format!("k{k}")).unwrap(), format!("v{k}").as_str()).unwrap();
        }
    }
    // each view knows every owner, a little behind on some
    (0..owners.len())
        .map(|i| {
            let states = owners.iter().enumerate().map(|(j, o)| {
                let s = o.local_state().clone();
                (ids[j].clone(), if i == j { s } else { behind(&s, (i + j) % 3) })
            });
            View::from_states(ids[i].clone(), states).unwrap()
        })
        .collect()
}

/// `s` without its newest `by` fields.
fn behind(s: &rumormill::EndpointState, by: usize) -> rumormill::EndpointState {
    let mut versions: Vec<Version> = s.values().values().map(|vv| vv.version).collect();
    versions.push(s.heartbeat());
    versions.sort();
    let cutoff = versions[versions.len().saturating_sub(by + 1)];
    let values = s.values().iter().filter(|(_, vv)| vv.version <= cutoff).map(|(k, v)| (k.clone(), v.clone()));
    let hb = if s.heartbeat() <= cutoff { s.heartbeat() } else { Version::ZERO };
    rumormill::EndpointState::from_parts(s.generation(), hb, values, s.purged())
}

proptest! {
    #[test]
    fn messages_round_trip_with_predicted_length(header in header(), message in message()) {
        let env = Envelope { header, message };
        let bytes = env.encode();
        prop_assert_eq!(bytes.len(), env.encoded_len());
        prop_assert_eq!(codec().decode(&bytes), Ok(env));
    }

    #[test]
    fn bytes_that_decode_re_encode_to_themselves(header in header(), message in message(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = Envelope { header, message }.encode();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(env) = codec().decode(&bytes) {
            prop_assert_eq!(env.encode(), bytes.clone());
            prop_assert_eq!(env.encoded_len(), bytes.len());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut framed = b"RM\\x01".to_vec();
        framed.extend_from_slice(&bytes);
        for input in [&bytes[..], &framed[..]] {
            if let Ok(env) = codec().decode(input) {
                prop_assert_eq!(env.encode(), input.to_vec());
            }
        }
    }

    #[test]
    fn compact_rounds_round_trip_and_fit_their_budgets(
        spread in prop::collection::vec(prop_oneof![0u64..100, 60_000u64..200_000, (u64::MAX / 4)..(u64::MAX / 4 + 1000)], 2..7),
        values in 0usize..6,
        budget in 60usize..2000,
        seed in any::<u64>(),
    ) {
        let views = cluster(&spread, values);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (a, b) = (&views[0], &views[1]);
        let header = |v: &View| Header { cluster: ClusterName::new("prop").unwrap(), sender: v.local_id().clone(), generation: v.local_generation() };
        let total = budget + rumormill::header_len(&header(a));
        let check = |env: Envelope| -> Result<Envelope, TestCaseError> {
            let bytes = env.encode();
            prop_assert!(bytes.len() <= total, "{} > {}", bytes.len(), total);
            prop_assert_eq!(bytes.len(), env.encoded_len());
            let back = codec().decode(&bytes).unwrap();
            prop_assert_eq!(&back, &env);
            Ok(back)
        };
        let Ok(built) = build_syn(a, Budget::new(total, &header(a)).unwrap(), None, PageForm::Compact) else {
            return Ok(()); // not even one entry fits: nothing to check
        };
        let Message::Syn(syn) = check(Envelope { header: header(a), message: Message::Syn(built.syn) })?.message else { unreachable!() };
        let ack = handle_syn(b, &syn, Budget::new(total, &header(b)).unwrap(), &mut rng);
        prop_assert!(ack.context_error.is_none(), "{:?}", ack.context_error);
        let Message::Ack(ack) = check(Envelope { header: header(b), message: Message::Ack(ack.message) })?.message else { unreachable!() };
        let received = handle_ack(a, &ack);
        prop_assert!(received.context_error.is_none(), "{:?}", received.context_error);
        let ack2 = build_ack2(a, &received.requests, Budget::new(total, &header(a)).unwrap(), &mut rng).message;
        check(Envelope { header: header(a), message: Message::Ack2(ack2) })?;
    }
}
