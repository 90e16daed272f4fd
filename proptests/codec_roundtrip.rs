//! The codec: every message round-trips, its encoded length is the predicted one,
//! any bytes that decode re-encode to themselves, and no builder exceeds its
//! budget. The messages come from `strategies::wire::message`, which generates
//! every message kind, every digest page form and every form of ACK and ACK2
//! part (compact, answering a hashed page, with resend) in canonical form.

#[path = "strategies.rs"]
mod strategies;

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Budget, ClusterName, DigestPage, Envelope, Generation, Header, Key, Message, NodeId, PageForm, Version, View,
    build_ack2, build_syn, handle_ack, handle_syn,
};
use strategies::wire::{codec, header, message};

/// What kind of message this is, down to page forms and compact parts: every
/// label must come out of `message()` (see `the_strategy_generates_every_form`).
fn labels(m: &Message) -> Vec<&'static str> {
    let mut out = Vec::new();
    match m {
        Message::Syn(syn) => match &syn.page {
            DigestPage::Listed(ds) => out.push(if ds.is_empty() { "syn listed empty" } else { "syn listed" }),
            DigestPage::Range { digests, .. } => {
                out.push(if digests.is_empty() { "syn range empty" } else { "syn range" })
            }
            DigestPage::Compact(c) => {
                out.push("syn compact");
                if (0..c.len()).any(|i| c.is_quiet(i)) {
                    out.push("syn compact quiet");
                }
                if c.len() > 8 {
                    out.push("syn compact 2+ quiet bytes");
                }
            }
            DigestPage::Hashed(h) => out.push(if h.is_empty() { "syn hashed empty" } else { "syn hashed" }),
        },
        Message::Ack(ack) => {
            out.push("ack");
            if !ack.requests.is_empty() && !ack.deltas.is_empty() {
                out.push("ack requests and deltas");
            }
            if ack.resend.is_some() {
                out.push("ack resend");
            }
            if let Some(c) = &ack.compact {
                out.push(if c.answers_hashed() { "ack hashed" } else { "ack compact" });
                if c.delta_count() > 0 {
                    out.push("ack compact deltas");
                }
                if c.request_count() > 0 {
                    out.push("ack compact requests");
                }
                if ack.resend.is_some() {
                    out.push("ack compact and resend");
                }
            }
        }
        Message::Ack2(ack2) => {
            out.push("ack2");
            if let Some(c) = &ack2.compact {
                out.push(if c.delta_count() > 0 { "ack2 compact deltas" } else { "ack2 compact" });
            }
        }
        Message::Echo(_) => out.push("echo"),
        Message::EchoReply(_) => out.push("echo reply"),
        Message::Shutdown => out.push("shutdown"),
        _ => out.push("unknown"),
    }
    out
}

const ALL_LABELS: [&str; 23] = [
    "syn listed empty",
    "syn listed",
    "syn range empty",
    "syn range",
    "syn compact",
    "syn compact quiet",
    "syn compact 2+ quiet bytes",
    "syn hashed empty",
    "syn hashed",
    "ack",
    "ack requests and deltas",
    "ack resend",
    "ack compact",
    "ack hashed",
    "ack compact deltas",
    "ack compact requests",
    "ack compact and resend",
    "ack2",
    "ack2 compact",
    "ack2 compact deltas",
    "echo",
    "echo reply",
    "shutdown",
];

#[test]
fn the_strategy_generates_every_form() {
    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeSet::new();
    let strategy = message();
    for _ in 0..3000 {
        seen.extend(labels(&strategy.new_tree(&mut runner).unwrap().current()));
    }
    let missing: Vec<_> = ALL_LABELS.iter().filter(|l| !seen.contains(*l)).collect();
    assert!(missing.is_empty(), "never generated: {missing:?}");
    assert!(!seen.contains("unknown"), "a message variant the test does not know");
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
        prop_assert_eq!(bytes.len(), env.encoded_len(), "predicted length of {:?}", env.message);
        prop_assert_eq!(
            rumormill::header_len(&env.header) + env.message.encoded_len(),
            bytes.len(),
            "predicted body length of {:?}",
            env.message
        );
        let back = codec().decode(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&env));
        // canonical: the decoded message re-encodes to the same bytes
        prop_assert_eq!(back.unwrap().encode(), bytes);
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
    fn rounds_of_every_page_form_round_trip_and_fit_their_budgets(
        spread in prop::collection::vec(prop_oneof![0u64..100, 60_000u64..200_000, (u64::MAX / 4)..(u64::MAX / 4 + 1000)], 2..7),
        values in 0usize..6,
        budget in 60usize..2000,
        form in prop_oneof![Just(PageForm::Compact), Just(PageForm::Hashed), Just(PageForm::Full)],
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
        let Ok(built) = build_syn(a, Budget::new(total, &header(a)).unwrap(), None, form) else {
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
