//! Checks the hex test vectors of `docs/wire.md` against the codec.
//!
//! Every fenced block tagged `hex` in the document starts with a `name:` line and a
//! `length:` line, followed by the message's bytes in hex (anything after `#` on
//! a line is a comment). For each name this file builds the message through the
//! public API; the test fails if the encoding differs from the block, if decoding
//! the block does not give the message back, if `Envelope::encoded_len` or the
//! `length:` line disagree with the byte count, or if a block has no message here
//! (or a message here has no block).
//!
//! The rest of the file checks that the decoder rejects malformed input with the
//! exact [`DecodeError`] the document lists.

use std::collections::BTreeMap;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, Ack2, Budget, ClusterName, Codec, DecodeError, Delta, Digest, DigestPage, EndpointState, Envelope, Generation,
    Header, Key, Message, NodeId, NodeRange, PageForm, Syn, Timestamp, Version, VersionedValue, View, build_ack2,
    build_syn, handle_ack, handle_ack2, handle_syn, shadow_syn,
};

const DOC: &str = include_str!("../docs/wire.md");

const GEN_A: u64 = 1_700_000_000;
const GEN_B: u64 = 1_700_000_050;
const GEN_C: u64 = 1_700_000_100;

fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn cluster() -> ClusterName {
    ClusterName::new("demo").unwrap()
}

fn codec() -> Codec {
    Codec::new(cluster())
}

fn header(sender: &str, generation: u64) -> Header {
    Header { cluster: cluster(), sender: id(sender), generation: Generation(generation) }
}

fn env(sender: &str, generation: u64, message: Message) -> Envelope {
    Envelope { header: header(sender, generation), message }
}

fn live(value: &str, version: u64) -> VersionedValue {
    VersionedValue::live(value, Version(version))
}

fn tombstone(version: u64) -> VersionedValue {
    VersionedValue::tombstone(Version(version))
}

fn digest(node: &str, generation: u64, max_version: u64, purged: u64) -> Digest {
    Digest {
        node: id(node),
        generation: Generation(generation),
        max_version: Version(max_version),
        purged: Version(purged),
    }
}

fn range(start: Option<&str>, end: Option<&str>) -> NodeRange {
    NodeRange::new(start.map(id), end.map(id)).unwrap()
}

fn state(generation: u64, heartbeat: u64, purged: u64, values: &[(&str, VersionedValue)]) -> EndpointState {
    EndpointState::from_parts(
        Generation(generation),
        Version(heartbeat),
        values.iter().map(|(k, vv)| (key(k), vv.clone())),
        Version(purged),
    )
}

/// The compact round of the document: A (local "a") starts a round with B (local
/// "b"); both know a, b and c at the same generations, with different versions.
/// Returns the SYN, the ACK and the ACK2 exactly as the API builds them.
fn compact_round() -> (Syn, Ack, Ack2) {
    let mut a = View::from_states(
        id("a"),
        [
            (id("a"), state(GEN_A, 5, 0, &[("STATUS", live("NORMAL", 2)), ("x", live("1", 4))])),
            (id("b"), state(GEN_B, 4, 0, &[("STATUS", live("NORMAL", 2))])),
            (id("c"), state(GEN_C, 70_003, 2, &[("STATUS", live("NORMAL", 70_000)), ("LOAD", live("12.5", 70_002))])),
        ],
    )
    .unwrap();
    let mut b = View::from_states(
        id("b"),
        [
            (id("a"), state(GEN_A, 3, 0, &[("STATUS", live("NORMAL", 2))])),
            (
                id("b"),
                state(GEN_B, 7, 0, &[("STATUS", live("NORMAL", 2)), ("DC", live("dc1", 5)), ("RACK", tombstone(6))]),
            ),
            (id("c"), state(GEN_C, 70_001, 2, &[("STATUS", live("NORMAL", 70_000))])),
        ],
    )
    .unwrap();
    let (syn, ack, ack2) = play(&mut a, &mut b, PageForm::Compact);
    assert!(ack.compact.is_some() && ack.requests.is_empty() && ack.deltas.is_empty());
    assert!(ack2.compact.is_some() && ack2.deltas.is_empty());
    (syn, ack, ack2)
}

/// One round from A to B over a page of `form`, unlimited budgets, everything
/// fitting and every compact part usable; afterwards both views agree on a, b and
/// c (the vectors are real, not just well-formed).
fn play(a: &mut View, b: &mut View, form: PageForm) -> (Syn, Ack, Ack2) {
    let now = Timestamp::from_secs(GEN_C + 100);
    let budget = Budget::unlimited();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let syn = build_syn(a, budget, None, form).unwrap().syn;
    let built = handle_syn(b, &syn, budget, &mut rng);
    assert_eq!((built.context_error, built.left_out), (None, 0));
    let ack = built.message;
    let received = handle_ack(a, &ack);
    assert_eq!(received.context_error, None);
    a.apply(&received.deltas, now);
    let built = build_ack2(a, &received.requests, budget, &mut rng);
    assert_eq!(built.left_out, 0);
    let ack2 = built.message;
    let received = handle_ack2(b, &ack2);
    assert_eq!(received.context_error, None);
    b.apply(&received.deltas, now);
    for n in ["a", "b", "c"] {
        assert_eq!(a.get(&id(n)), b.get(&id(n)), "node {n}");
    }
    (syn, ack, ack2)
}

/// A round over a hashed page, built with the public API: A knows `a`, `b` and
/// `c`; B knows `a` (behind), `b` (ahead) and not `c`.
fn hashed_round() -> (Syn, Ack, Ack2) {
    let mut a = View::from_states(
        id("a"),
        [
            (id("a"), state(GEN_A, 5, 0, &[("STATUS", live("NORMAL", 2)), ("x", live("1", 4))])),
            (id("b"), state(GEN_B, 4, 0, &[("STATUS", live("NORMAL", 2))])),
            (id("c"), state(GEN_C, 3, 0, &[("STATUS", live("NORMAL", 2))])),
        ],
    )
    .unwrap();
    let mut b = View::from_states(
        id("b"),
        [
            (id("a"), state(GEN_A, 3, 0, &[("STATUS", live("NORMAL", 2))])),
            (id("b"), state(GEN_B, 7, 0, &[("STATUS", live("NORMAL", 2)), ("DC", live("dc1", 5))])),
        ],
    )
    .unwrap();
    let (syn, ack, ack2) = play(&mut a, &mut b, PageForm::Hashed);
    assert!(ack.compact.as_ref().is_some_and(|c| c.answers_hashed()) && ack.requests.is_empty());
    assert!(ack2.compact.is_none(), "answered by id: B does not share A's members");
    (syn, ack, ack2)
}

/// Every message the document has a hex block for, by name.
fn built_vectors() -> BTreeMap<&'static str, Envelope> {
    let (compact_syn, compact_ack, compact_ack2) = compact_round();
    let (hashed_syn, hashed_ack, hashed_ack2) = hashed_round();
    let mut v = BTreeMap::new();
    v.insert("syn-hashed", env("a", GEN_A, Message::Syn(hashed_syn)));
    v.insert("ack-hashed", env("b", GEN_B, Message::Ack(hashed_ack)));
    v.insert("ack2-hashed", env("a", GEN_A, Message::Ack2(hashed_ack2)));

    v.insert(
        "syn-listed",
        env("a", GEN_A, Message::Syn(Syn { page: DigestPage::Listed(vec![digest("b", GEN_B, 42, 0)]) })),
    );
    v.insert("syn-shadow", env("a", GEN_A, Message::Syn(shadow_syn())));
    v.insert(
        "syn-range",
        env(
            "a",
            GEN_A,
            Message::Syn(Syn {
                page: DigestPage::Range {
                    range: range(Some("b"), Some("d")),
                    digests: vec![digest("b", GEN_B, 42, 0), digest("c", GEN_C, 300, 7)],
                },
            }),
        ),
    );
    v.insert("syn-compact", env("a", GEN_A, Message::Syn(compact_syn)));
    v.insert("ack-empty", env("b", GEN_B, Message::Ack(Ack::default())));
    v.insert(
        "ack-full",
        env(
            "b",
            GEN_B,
            Message::Ack(Ack {
                requests: vec![digest("c", GEN_C, 17, 0)],
                deltas: vec![Delta {
                    node: id("b"),
                    generation: Generation(GEN_B),
                    from: Version(5),
                    purged: Version(3),
                    heartbeat: Some(Version(10)),
                    values: vec![
                        (Key::STATUS, live("NORMAL", 6)),
                        (key("shard-load"), live("0.5", 7)),
                        (Key::RACK, tombstone(9)),
                    ],
                }],
                compact: None,
                resend: None,
            }),
        ),
    );
    v.insert(
        "ack-resend",
        env("b", GEN_B, Message::Ack(Ack { resend: Some(range(Some("b"), None)), ..Ack::default() })),
    );
    v.insert("ack-compact", env("b", GEN_B, Message::Ack(compact_ack)));
    v.insert("ack2-empty", env("a", GEN_A, Message::Ack2(Ack2::default())));
    v.insert(
        "ack2-full",
        env(
            "a",
            GEN_A,
            Message::Ack2(Ack2 {
                deltas: vec![
                    Delta {
                        node: id("a"),
                        generation: Generation(GEN_A),
                        from: Version::ZERO,
                        purged: Version::ZERO,
                        heartbeat: Some(Version(4)),
                        values: vec![(Key::DC, live("dc1", 2)), (Key::RACK, live("r1", 3))],
                    },
                    Delta {
                        node: id("c"),
                        generation: Generation(GEN_C),
                        from: Version(17),
                        purged: Version::ZERO,
                        heartbeat: None,
                        values: vec![(Key::LOAD, live("12.5", 18))],
                    },
                ],
                compact: None,
            }),
        ),
    );
    v.insert(
        "ack2-stale-heartbeat",
        env(
            "a",
            GEN_A,
            Message::Ack2(Ack2 {
                deltas: vec![Delta {
                    node: id("d"),
                    generation: Generation(GEN_A),
                    from: Version(10),
                    purged: Version::ZERO,
                    heartbeat: Some(Version(7)),
                    values: vec![(Key::STATUS, live("LEAVING", 11))],
                }],
                compact: None,
            }),
        ),
    );
    v.insert("ack2-compact", env("a", GEN_A, Message::Ack2(compact_ack2)));
    let nonce = rumormill::Echo { nonce: 0x0123_4567_89ab_cdef };
    v.insert("echo", env("b", GEN_B, Message::Echo(nonce)));
    v.insert("echo-reply", env("a", GEN_A, Message::EchoReply(nonce)));
    v.insert("shutdown", env("a", GEN_A, Message::Shutdown));
    v
}

/// A hex block of the document.
struct Block {
    name: String,
    length: usize,
    bytes: Vec<u8>,
}

fn parse_hex_line(line: &str, name: &str) -> Vec<u8> {
    let data = line.split('#').next().unwrap_or("");
    let digits: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "block {name}: odd number of hex digits in {line:?}");
    (0..digits.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&digits[i..i + 2], 16)
                .unwrap_or_else(|_| panic!("block {name}: bad hex {:?} in {line:?}", &digits[i..i + 2]))
        })
        .collect()
}

fn doc_blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "```hex" {
            continue;
        }
        let mut name = None;
        let mut length = None;
        let mut bytes = Vec::new();
        loop {
            let line = lines.next().expect("unterminated hex block");
            let t = line.trim();
            if t == "```" {
                break;
            }
            if let Some(n) = t.strip_prefix("name:") {
                assert!(name.is_none(), "hex block with two names");
                name = Some(n.trim().to_string());
            } else if let Some(n) = t.strip_prefix("length:") {
                length = Some(n.trim().parse::<usize>().expect("length: a number"));
            } else {
                let name = name.as_deref().expect("the name: line comes first");
                bytes.extend(parse_hex_line(t, name));
            }
        }
        let name = name.expect("hex block without a name: line");
        let length = length.unwrap_or_else(|| panic!("hex block {name} without a length: line"));
        blocks.push(Block { name, length, bytes });
    }
    blocks
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

#[test]
fn every_doc_vector_matches_the_codec() {
    let blocks = doc_blocks();
    let mut built = built_vectors();
    let mut errors = Vec::new();
    for block in &blocks {
        let Some(env) = built.remove(block.name.as_str()) else {
            errors.push(format!("{}: hex block has no message in this test (or is repeated)", block.name));
            continue;
        };
        let encoded = env.encode();
        if encoded != block.bytes {
            errors.push(format!(
                "{}: encoding differs from the document\n  doc:    {}\n  actual: {}",
                block.name,
                hex(&block.bytes),
                hex(&encoded)
            ));
        }
        if env.encoded_len() != encoded.len() {
            errors.push(format!(
                "{}: encoded_len {} != encoding of {} bytes",
                block.name,
                env.encoded_len(),
                encoded.len()
            ));
        }
        if block.length != block.bytes.len() {
            errors.push(format!(
                "{}: length: line says {} but the block holds {} bytes",
                block.name,
                block.length,
                block.bytes.len()
            ));
        }
        match codec().decode(&block.bytes) {
            Ok(decoded) if decoded == env => {}
            other => errors.push(format!("{}: decoding the block gave {other:?}", block.name)),
        }
    }
    for (name, env) in &built {
        errors.push(format!("{name}: no hex block in docs/wire.md; its bytes are {}", hex(&env.encode())));
    }
    assert!(errors.is_empty(), "\n{}", errors.join("\n"));
    assert!(blocks.len() >= 12);
}

#[test]
fn doc_vectors_reencode_from_decoding() {
    for block in doc_blocks() {
        let decoded = codec().decode(&block.bytes).unwrap_or_else(|e| panic!("{}: {e}", block.name));
        assert_eq!(decoded.encode(), block.bytes, "{}", block.name);
        assert_eq!(decoded.encoded_len(), block.bytes.len(), "{}", block.name);
    }
}

// ---------------------------------------------------------------------------
// Malformed input: one test per `DecodeError` variant, with the exact error.
// ---------------------------------------------------------------------------

/// Parses hex digits, ignoring whitespace.
fn h(s: &str) -> Vec<u8> {
    parse_hex_line(s, "inline")
}

/// A message with the header `52 4d 01 <kind> 04 "demo" 01 "a" 01` (12 bytes, so
/// the body starts at offset 12) and `body` (hex).
fn msg(kind: u8, body: &str) -> Vec<u8> {
    let mut out = h("52 4d 01");
    out.push(kind);
    out.extend(h("04 64 65 6d 6f 01 61 01"));
    out.extend(h(body));
    out
}

const SYN: u8 = 1;
const ACK: u8 = 2;
const ACK2: u8 = 3;

fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    codec().decode(bytes)
}

#[test]
fn the_test_header_is_valid() {
    let env = decode(&msg(ACK2, "00 00")).unwrap();
    assert_eq!(env.header, header("a", 1));
    assert_eq!(env.message, Message::Ack2(Ack2::default()));
}

#[test]
fn truncated() {
    assert_eq!(decode(&[]), Err(DecodeError::Truncated { at: 0 }));
    assert_eq!(decode(b"R"), Err(DecodeError::Truncated { at: 0 }));
    // an ACK missing its resend tag
    assert_eq!(decode(&msg(ACK, "00 00 00")), Err(DecodeError::Truncated { at: 15 }));
    // a varint cut short: reported at its first missing byte
    assert_eq!(decode(&h("52 4d 01 03 04 64 65 6d 6f 01 61 80")), Err(DecodeError::Truncated { at: 12 }));
    // an id whose bytes are missing: reported after its length byte
    assert_eq!(decode(&h("52 4d 01 03 04 64 65 6d 6f 05 61")), Err(DecodeError::Truncated { at: 10 }));
    // a compact page's u64 check cut short
    assert_eq!(decode(&msg(SYN, "02 00 00 00 00 00 00 00 00 00 00 01 02")), Err(DecodeError::Truncated { at: 23 }));
}

#[test]
fn bad_magic() {
    assert_eq!(decode(&h("52 4e 01 03 04 64 65 6d 6f 01 61 01 00 00")), Err(DecodeError::BadMagic));
}

#[test]
fn unsupported_version() {
    assert_eq!(decode(&h("52 4d 02 03 04 64 65 6d 6f 01 61 01 00 00")), Err(DecodeError::UnsupportedVersion(2)));
    assert_eq!(decode(&h("52 4d 00 03")), Err(DecodeError::UnsupportedVersion(0)));
}

#[test]
fn unknown_kind() {
    assert_eq!(decode(&msg(7, "00 00")), Err(DecodeError::UnknownKind(7)));
    assert_eq!(decode(&msg(0, "00 00")), Err(DecodeError::UnknownKind(0)));
}

#[test]
fn wrong_cluster() {
    assert_eq!(decode(&h("52 4d 01 03 04 64 65 6d 70 01 61 01 00 00")), Err(DecodeError::WrongCluster));
    assert_eq!(decode(&h("52 4d 01 03 00 01 61 01 00 00")), Err(DecodeError::WrongCluster));
    let other = Envelope {
        header: Header { cluster: ClusterName::new("prod").unwrap(), ..header("a", 1) },
        message: Message::Ack2(Ack2::default()),
    };
    assert_eq!(decode(&other.encode()), Err(DecodeError::WrongCluster));
}

#[test]
fn bad_varint() {
    // overlong: a trailing zero group
    assert_eq!(decode(&h("52 4d 01 03 04 64 65 6d 6f 01 61 80 00 00 00")), Err(DecodeError::BadVarint { at: 11 }));
    assert_eq!(decode(&h("52 4d 01 03 04 64 65 6d 6f 01 61 81 80 00 00 00")), Err(DecodeError::BadVarint { at: 11 }));
    // more than 64 bits: the 10th byte may only be 00 or 01 (and 00 is overlong)
    let max = "ff ff ff ff ff ff ff ff ff 01";
    assert!(decode(&msg(ACK2, &format!("01 01 62 {max} 00 00 00"))).is_ok());
    assert_eq!(
        decode(&msg(ACK2, "01 01 62 ff ff ff ff ff ff ff ff ff 02 00 00 00")),
        Err(DecodeError::BadVarint { at: 15 })
    );
    assert_eq!(
        decode(&msg(ACK2, "01 01 62 ff ff ff ff ff ff ff ff ff 00 00 00 00")),
        Err(DecodeError::BadVarint { at: 15 })
    );
    assert_eq!(
        decode(&msg(ACK2, "01 01 62 ff ff ff ff ff ff ff ff ff 81 01 00 00 00")),
        Err(DecodeError::BadVarint { at: 15 })
    );
    // a count
    assert_eq!(decode(&msg(ACK2, "80 00 00")), Err(DecodeError::BadVarint { at: 12 }));
}

#[test]
fn count_too_large() {
    // one digest claimed, no bytes left
    assert_eq!(decode(&msg(SYN, "00 01")), Err(DecodeError::CountTooLarge { count: 1, at: 13 }));
    // two digests need at least 10 bytes; 9 are left
    assert_eq!(
        decode(&msg(SYN, "00 02 01 62 01 01 00 01 63 01 01")),
        Err(DecodeError::CountTooLarge { count: 2, at: 13 })
    );
    // a huge count is rejected before anything is allocated
    assert_eq!(
        decode(&msg(ACK2, "ff ff ff ff ff ff ff ff ff 01 00")),
        Err(DecodeError::CountTooLarge { count: u64::MAX, at: 12 })
    );
    // fields of a delta: 4 bytes each at least
    assert_eq!(
        decode(&msg(ACK2, "01 01 62 01 00 02 00 00 00 00 00 00 00")),
        Err(DecodeError::CountTooLarge { count: 2, at: 17 })
    );
    // compact page versions: 2 bytes each
    assert_eq!(
        decode(&msg(SYN, "02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02 05 00 04")),
        Err(DecodeError::CountTooLarge { count: 2, at: 31 })
    );
}

#[test]
fn bad_node_id() {
    // an empty sender id
    assert_eq!(decode(&h("52 4d 01 03 04 64 65 6d 6f 00 01 00 00")), Err(DecodeError::BadNodeId { at: 9 }));
    // an empty digest node
    assert_eq!(decode(&msg(SYN, "00 01 00 01 01 00 00")), Err(DecodeError::BadNodeId { at: 14 }));
    // an empty delta node
    assert_eq!(decode(&msg(ACK2, "01 00 01 00 00 00 00")), Err(DecodeError::BadNodeId { at: 13 }));
}

/// An ACK2 with one delta of node "b" (generation 1, no flags) holding `fields`
/// (hex, after the field count byte `count`). The first field starts at 18.
fn ack2_fields(count: u8, fields: &str) -> Vec<u8> {
    msg(ACK2, &format!("01 01 62 01 00 {count:02x} {fields} 00"))
}

#[test]
fn bad_key() {
    // well-known code 28 is the last; 29 is unknown
    assert!(decode(&ack2_fields(1, "00 1c 00 00")).is_ok());
    assert_eq!(decode(&ack2_fields(1, "00 1d 00 00")), Err(DecodeError::BadKey { at: 18 }));
    assert_eq!(decode(&ack2_fields(1, "00 ff 00 00")), Err(DecodeError::BadKey { at: 18 }));
    // "DC" spelled out instead of code 3
    assert_eq!(decode(&ack2_fields(1, "02 44 43 00 00")), Err(DecodeError::BadKey { at: 18 }));
    // not UTF-8
    assert_eq!(decode(&ack2_fields(1, "01 ff 00 00")), Err(DecodeError::BadKey { at: 18 }));
    // the second field's key
    assert_eq!(decode(&ack2_fields(2, "01 78 00 00 00 1d 00 00")), Err(DecodeError::BadKey { at: 22 }));
}

#[test]
fn value_too_large() {
    // 65,537 bytes claimed (varint 65,538 = 82 80 04): over the default limit,
    // rejected before its bytes are looked for
    assert_eq!(
        decode(&ack2_fields(1, "00 00 00 82 80 04")),
        Err(DecodeError::ValueTooLarge { len: 65_537, max: 65_536, at: 21 })
    );
    // a lower limit; a value of exactly the limit is accepted
    let small = codec().with_max_value_len(2);
    assert!(small.decode(&ack2_fields(1, "00 00 00 03 61 62")).is_ok());
    assert_eq!(
        small.decode(&ack2_fields(1, "00 00 00 04 61 62 63")),
        Err(DecodeError::ValueTooLarge { len: 3, max: 2, at: 21 })
    );
}

#[test]
fn not_ascending() {
    // digests b then a
    assert_eq!(decode(&msg(SYN, "00 02 01 62 01 01 00 01 61 01 01 00")), Err(DecodeError::NotAscending { at: 19 }));
    // the same digest twice
    assert_eq!(decode(&msg(SYN, "00 02 01 62 01 01 00 01 62 01 01 00")), Err(DecodeError::NotAscending { at: 19 }));
    // "bb" sorts after "b"
    assert!(decode(&msg(SYN, "00 02 01 62 01 01 00 02 62 62 01 01 00")).is_ok());
    assert_eq!(decode(&msg(SYN, "00 02 02 62 62 01 01 00 01 62 01 01 00")), Err(DecodeError::NotAscending { at: 20 }));
    // ACK requests
    assert_eq!(
        decode(&msg(ACK, "02 01 63 01 01 00 01 62 01 01 00 00 00 00")),
        Err(DecodeError::NotAscending { at: 18 })
    );
    // deltas: checked right after the node id
    assert_eq!(decode(&msg(ACK2, "02 01 63 01 00 00 01 62 01 00 00 00")), Err(DecodeError::NotAscending { at: 18 }));
}

#[test]
fn duplicate_key() {
    // STATUS twice (tombstones at versions 1 and 2)
    assert_eq!(decode(&ack2_fields(2, "00 00 00 00 00 00 00 00")), Err(DecodeError::DuplicateKey { at: 22 }));
    // a custom key twice
    assert_eq!(decode(&ack2_fields(2, "01 78 00 00 01 78 00 00")), Err(DecodeError::DuplicateKey { at: 22 }));
    // in a compact delta (ACK2 compact part, first field at 36)
    let compact =
        |fields: &str| msg(ACK2, &format!("00 01 00 00 {} {} 01 00 00 02 {fields}", "00".repeat(8), "00".repeat(8)));
    assert!(decode(&compact("00 00 00 00 00 01 00 00")).is_ok());
    assert_eq!(decode(&compact("00 00 00 00 00 00 00 00")), Err(DecodeError::DuplicateKey { at: 40 }));
}

#[test]
fn bad_flags() {
    // an undefined bit
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 10 00 00")), Err(DecodeError::BadFlags { flags: 0x10, at: 16 }));
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 80 00 00")), Err(DecodeError::BadFlags { flags: 0x80, at: 16 }));
    // stale heartbeat without heartbeat
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 08 00 00")), Err(DecodeError::BadFlags { flags: 0x08, at: 16 }));
    // the purged bit with a zero floor: the whole flags byte, at the flags byte
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 04 00 00 00")), Err(DecodeError::BadFlags { flags: 0x04, at: 16 }));
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 05 00 00 00")), Err(DecodeError::BadFlags { flags: 0x05, at: 16 }));
    // the from bit with a zero from (full delta): the whole flags byte, at the flags byte
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 01 00 00 00")), Err(DecodeError::BadFlags { flags: 0x01, at: 16 }));
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 03 00 00 00 00")), Err(DecodeError::BadFlags { flags: 0x03, at: 16 }));
    // in a compact delta (flags at 34)
    let compact =
        |flags: &str| msg(ACK2, &format!("00 01 00 00 {} {} 01 00 {flags} 00", "00".repeat(8), "00".repeat(8)));
    assert_eq!(decode(&compact("20")), Err(DecodeError::BadFlags { flags: 0x20, at: 34 }));
    assert_eq!(decode(&compact("08")), Err(DecodeError::BadFlags { flags: 0x08, at: 34 }));
    // a compact page's quiet bits past its last member (3 members: bits at 38;
    // 9 members: two bytes, the second at 51)
    let page = |n: usize, bits: &str| {
        msg(SYN, &format!("02 00 00 {} {} {n:02x} {} {bits}", "00".repeat(8), "00".repeat(8), "00 00 ".repeat(n)))
    };
    assert!(decode(&page(3, "07")).is_ok());
    assert_eq!(decode(&page(3, "08")), Err(DecodeError::BadFlags { flags: 0x08, at: 38 }));
    assert_eq!(decode(&page(3, "ff")), Err(DecodeError::BadFlags { flags: 0xff, at: 38 }));
    assert!(decode(&page(8, "ff")).is_ok());
    assert!(decode(&page(9, "ff 01")).is_ok());
    assert_eq!(decode(&page(9, "ff 02")), Err(DecodeError::BadFlags { flags: 0x02, at: 51 }));
    // and they must be there
    assert!(matches!(decode(&page(9, "ff")), Err(DecodeError::Truncated { .. })));
}

#[test]
fn compact_from_may_have_zero_low_bits() {
    // FROM set with low bits 00 00 (e.g. from = 65,536) is valid in compact deltas
    let bytes = msg(ACK2, &format!("00 01 00 00 {} {} 01 00 01 00 00 00", "00".repeat(8), "00".repeat(8)));
    let env = decode(&bytes).unwrap();
    assert_eq!(env.encode(), bytes);
}

#[test]
fn bad_tag() {
    // page kind 4
    assert_eq!(decode(&msg(SYN, "04")), Err(DecodeError::BadTag { tag: 4, at: 12 }));
    // ACK compact tag
    assert_eq!(decode(&msg(ACK, "00 00 03 00")), Err(DecodeError::BadTag { tag: 3, at: 14 }));
    // ACK resend tag
    assert_eq!(decode(&msg(ACK, "00 00 00 05")), Err(DecodeError::BadTag { tag: 5, at: 15 }));
    // ACK2 compact tag
    assert_eq!(decode(&msg(ACK2, "00 ff")), Err(DecodeError::BadTag { tag: 0xff, at: 13 }));
}

#[test]
fn version_overflow() {
    // a stale heartbeat below 0 (from absent = 0, offset 1): reported at the flags
    assert_eq!(decode(&msg(ACK2, "01 01 62 01 0a 01 00 00")), Err(DecodeError::VersionOverflow { at: 16 }));
    // a heartbeat above u64::MAX
    assert_eq!(
        decode(&msg(ACK2, "01 01 62 01 03 ff ff ff ff ff ff ff ff ff 01 00 00 00")),
        Err(DecodeError::VersionOverflow { at: 16 })
    );
    // a field version above u64::MAX (from 0 + gap u64::MAX + 1): reported at the field
    assert_eq!(
        decode(&ack2_fields(1, "00 00 ff ff ff ff ff ff ff ff ff 01 00")),
        Err(DecodeError::VersionOverflow { at: 18 })
    );
    // ... while version u64::MAX itself is fine
    assert!(decode(&ack2_fields(1, "00 00 fe ff ff ff ff ff ff ff ff 01 00")).is_ok());
    // the second field overflows
    assert_eq!(
        decode(&ack2_fields(2, "00 00 fe ff ff ff ff ff ff ff ff 01 00 00 01 00 00")),
        Err(DecodeError::VersionOverflow { at: 31 })
    );
}

#[test]
fn bad_index() {
    let compact = |deltas: &str| msg(ACK2, &format!("00 01 00 00 {} {} {deltas}", "00".repeat(8), "00".repeat(8)));
    // the first index is 2^32
    assert_eq!(decode(&compact("01 80 80 80 80 10 00 00")), Err(DecodeError::BadIndex { at: 33 }));
    // 2^32 - 1, then a gap of 0: 2^32
    assert!(decode(&compact("01 ff ff ff ff 0f 00 00")).is_ok());
    assert_eq!(decode(&compact("02 ff ff ff ff 0f 00 00 00 00 00")), Err(DecodeError::BadIndex { at: 40 }));
    // compact requests in an ACK (count at 33, first index at 34)
    let req = |reqs: &str| msg(ACK, &format!("00 00 01 00 00 {} {} {reqs} 00 00", "00".repeat(8), "00".repeat(8)));
    assert!(decode(&req("01 ff ff ff ff 0f 00 00")).is_ok());
    assert_eq!(decode(&req("01 ff ff ff ff ff 01 00 00")), Err(DecodeError::BadIndex { at: 34 }));
}

#[test]
fn bad_range() {
    // resend range [b, b)
    assert_eq!(decode(&msg(ACK, "00 00 00 01 01 62 01 62")), Err(DecodeError::BadRange { at: 16 }));
    // [c, b)
    assert_eq!(decode(&msg(ACK, "00 00 00 01 01 63 01 62")), Err(DecodeError::BadRange { at: 16 }));
    // a range page [b, a)
    assert_eq!(decode(&msg(SYN, "01 01 62 01 61 00")), Err(DecodeError::BadRange { at: 13 }));
}

#[test]
fn out_of_range() {
    // [b, d) listing a
    assert_eq!(decode(&msg(SYN, "01 01 62 01 64 01 01 61 01 01 00")), Err(DecodeError::OutOfRange { at: 17 }));
    // [b, d) listing d (the end is excluded)
    assert_eq!(decode(&msg(SYN, "01 01 62 01 64 01 01 64 01 01 00")), Err(DecodeError::OutOfRange { at: 17 }));
    // [b, d) listing c is fine
    assert!(decode(&msg(SYN, "01 01 62 01 64 01 01 63 01 01 00")).is_ok());
}

#[test]
fn trailing_bytes() {
    assert_eq!(decode(&msg(ACK2, "00 00 00")), Err(DecodeError::TrailingBytes(1)));
    assert_eq!(decode(&msg(SYN, "00 00 01 02 03")), Err(DecodeError::TrailingBytes(3)));
}

/// Every one-byte change, deletion and insertion of every document vector either
/// fails to decode or decodes to a message that re-encodes to exactly those bytes
/// (with a matching `encoded_len`): the decoder accepts only canonical input.
#[test]
fn mutated_vectors_are_rejected_or_canonical() {
    let mut accepted = 0;
    for block in doc_blocks() {
        let b = &block.bytes;
        let mut candidates: Vec<Vec<u8>> = Vec::new();
        for i in 0..b.len() {
            for v in 0..=255u8 {
                if v != b[i] {
                    let mut m = b.clone();
                    m[i] = v;
                    candidates.push(m);
                }
            }
            let mut m = b.clone();
            m.remove(i);
            candidates.push(m);
        }
        for i in 0..=b.len() {
            for v in [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff] {
                let mut m = b.clone();
                m.insert(i, v);
                candidates.push(m);
            }
        }
        for m in candidates {
            if let Ok(env) = decode(&m) {
                accepted += 1;
                assert_eq!(env.encode(), m, "{}: accepted {} but re-encoded differently", block.name, hex(&m));
                assert_eq!(env.encoded_len(), m.len(), "{}: encoded_len of {}", block.name, hex(&m));
            }
        }
    }
    assert!(accepted > 0);
}
