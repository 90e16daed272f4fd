//! Shared generators for the property tests.
//!
//! States are never made up field by field: they come from an owner's history
//! (a sequence of local writes, deletes, heartbeats and purges on a real `View`),
//! and a peer's view of the owner is a prefix of one of the owner's snapshots, as
//! gossip produces. Merge laws are claimed for exactly these states.

#![allow(dead_code)]

use core::time::Duration;

use proptest::prelude::*;
use rumormill::{EndpointState, Generation, Key, NodeId, Timestamp, Version, VersionedValue, View};

/// Keys the histories use (few, so that they collide).
pub const KEYS: [&str; 8] = ["a", "b", "STATUS", "load", "DC", "RACK", "tokens", "schema"];

/// One local operation of an owner.
#[derive(Clone, Debug)]
pub enum OwnerOp {
    /// Set a key to `len` copies of a byte.
    Set(usize, u8, usize),
    Delete(usize),
    Beat,
    /// Purge tombstones older than this many seconds.
    Purge(u64),
}

pub fn owner_op() -> impl Strategy<Value = OwnerOp> {
    // keys 0 and 1 are hot, so set/delete/purge of one key happens often
    let k = prop_oneof![3 => 0..2usize, 1 => 0..KEYS.len()];
    prop_oneof![
        4 => (k.clone(), any::<u8>(), 1usize..12).prop_map(|(k, v, n)| OwnerOp::Set(k, v, n)),
        3 => k.prop_map(OwnerOp::Delete),
        4 => Just(OwnerOp::Beat),
        2 => (0u64..4).prop_map(OwnerOp::Purge),
    ]
}

pub fn key(i: usize) -> Key {
    Key::new(KEYS[i]).unwrap()
}

pub const T0: u64 = 1_700_000_000;

/// Applies one operation to an owner's view at second `t`.
pub fn run_op(view: &mut View, op: &OwnerOp, t: u64) {
    let now = Timestamp::from_secs(t);
    match op {
        OwnerOp::Set(k, v, n) => {
            view.set_local(key(*k), vec![*v; *n]).unwrap();
        }
        OwnerOp::Delete(k) => {
            view.delete_local(&key(*k), now).unwrap();
        }
        OwnerOp::Beat => {
            view.beat().unwrap();
        }
        OwnerOp::Purge(grace) => {
            view.purge_local(now, Duration::from_secs(*grace));
        }
    }
}

/// The owner's state after each operation (one second apart), starting with the
/// fresh state.
pub fn history(generation: u64, ops: &[OwnerOp]) -> Vec<EndpointState> {
    let mut owner = View::new(NodeId::new("owner").unwrap(), Generation(generation));
    let mut out = vec![owner.local_state().clone()];
    for (i, op) in ops.iter().enumerate() {
        run_op(&mut owner, op, T0 + i as u64);
        out.push(owner.local_state().clone());
    }
    out
}

/// A view of `snapshot` holding only its fields up to `cutoff`, as a truncated
/// delta from version 0 leaves it.
pub fn prefix(snapshot: &EndpointState, cutoff: Version) -> EndpointState {
    let hb = if snapshot.heartbeat() <= cutoff { snapshot.heartbeat() } else { Version::ZERO };
    let values: Vec<(Key, VersionedValue)> =
        snapshot.values().iter().filter(|(_, vv)| vv.version <= cutoff).map(|(k, v)| (k.clone(), v.clone())).collect();
    EndpointState::from_parts(snapshot.generation(), hb, values, snapshot.purged())
}

/// A position in `0..len` from a raw 64-bit choice (as `prop::sample::Index` does).
pub fn pos(raw: u64, len: usize) -> usize {
    ((u128::from(raw) * len as u128) >> 64) as usize
}

/// Picks a valid state from a history from two raw choices: a prefix of some
/// snapshot.
pub fn pick_raw(hist: &[EndpointState], which: u64, cut: u64) -> EndpointState {
    let snap = &hist[pos(which, hist.len())];
    prefix(snap, Version(pos(cut, snap.max_version().0 as usize + 1) as u64))
}

/// Picks a valid state from a history: a prefix of some snapshot.
pub fn pick(hist: &[EndpointState], which: prop::sample::Index, cut: prop::sample::Index) -> EndpointState {
    let snap = which.get(hist);
    let cutoff = Version(cut.index(snap.max_version().0 as usize + 1) as u64);
    prefix(snap, cutoff)
}

/// Every version of a history's final snapshot, with the field it belongs to:
/// what the owner wrote (values keyed by key name, "" for heartbeats).
pub fn written(hist: &[EndpointState]) -> std::collections::BTreeMap<u64, (String, Option<Vec<u8>>)> {
    let mut out = std::collections::BTreeMap::new();
    for s in hist {
        if s.heartbeat() > Version::ZERO {
            out.insert(s.heartbeat().0, (String::new(), None));
        }
        for (k, vv) in s.values() {
            out.insert(vv.version.0, (k.as_str().to_owned(), vv.value.as_ref().map(|v| v.as_bytes().to_vec())));
        }
    }
    out
}

/// Generators of whole wire messages, every `Message` variant and every page and
/// compact form, in the canonical form of docs/wire.md §2 (ascending ids and
/// member indexes, no duplicates, no unused flag or quiet bits, ranges with
/// start < end and range pages inside their range), so that they round-trip.
///
/// The compact and hashed forms keep their fields private, so the generators
/// write them as canonical bytes with the small writer below (independent of
/// the crate's encoder) and take them from what the codec decodes; a writer
/// that broke a canonical rule would make the generator panic.
pub mod wire {
    use proptest::prelude::*;
    use rumormill::{
        Ack, Ack2, ClusterName, Codec, CompactAck, CompactDeltas, CompactDigest, Delta, Digest, DigestPage, Echo,
        Generation, HashedDigest, Header, Key, Message, NodeId, NodeRange, Syn, Value, Version, VersionedValue,
    };

    /// The largest value the codec of these tests accepts.
    pub const MAX_VALUE_LEN: usize = 1024;

    pub fn cluster_name() -> ClusterName {
        ClusterName::new("prop").unwrap()
    }

    pub fn codec() -> Codec {
        Codec::new(cluster_name()).with_max_value_len(MAX_VALUE_LEN)
    }

    pub fn node_id() -> impl Strategy<Value = NodeId> {
        prop_oneof![
            12 => prop::collection::vec(any::<u8>(), 1..20),
            1 => prop::collection::vec(any::<u8>(), 200..=rumormill::MAX_NODE_ID_LEN),
        ]
        .prop_map(|b| NodeId::new(b).unwrap())
    }

    pub fn key() -> impl Strategy<Value = Key> {
        prop_oneof![
            (0u8..29).prop_map(|c| Key::from_well_known_code(c).unwrap()),
            "[a-z][a-z0-9_-]{0,20}".prop_map(|s| Key::new(&s).unwrap()),
            // any text: uppercase, non-ASCII, and now and then a well-known name
            "\\PC{1,8}".prop_map(|s| Key::new(&s).unwrap()),
        ]
    }

    pub fn big_u64() -> impl Strategy<Value = u64> {
        prop_oneof![0u64..200, any::<u64>(), Just(u64::MAX)]
    }

    /// A value (`None`: a tombstone), now and then long enough for a two-byte length.
    pub fn value() -> impl Strategy<Value = Option<Vec<u8>>> {
        prop::option::of(prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..40),
            1 => prop::collection::vec(any::<u8>(), 120..=MAX_VALUE_LEN),
        ])
    }

    pub fn header() -> impl Strategy<Value = Header> {
        (node_id(), big_u64()).prop_map(|(sender, g)| Header {
            cluster: cluster_name(),
            sender,
            generation: Generation(g),
        })
    }

    pub fn digest() -> impl Strategy<Value = Digest> {
        (node_id(), big_u64(), big_u64(), big_u64()).prop_map(|(node, g, v, p)| Digest {
            node,
            generation: Generation(g),
            max_version: Version(v),
            purged: Version(p),
        })
    }

    /// Digests in canonical order: ascending, distinct ids.
    pub fn digests() -> impl Strategy<Value = Vec<Digest>> {
        prop::collection::vec(digest(), 0..8).prop_map(|mut ds| {
            ds.sort_by(|a, b| a.node.cmp(&b.node));
            ds.dedup_by(|a, b| a.node == b.node);
            ds
        })
    }

    /// Version gaps: mostly small, now and then huge (so versions reach `u64::MAX`).
    fn gap() -> impl Strategy<Value = u64> {
        prop_oneof![6 => 0u64..50, 1 => any::<u64>()]
    }

    pub fn delta() -> impl Strategy<Value = Delta> {
        (
            node_id(),
            big_u64(),
            prop_oneof![Just(0u64), 1u64..1000, u64::MAX / 2..u64::MAX / 2 + 10, u64::MAX - 3..=u64::MAX],
            big_u64(),
            prop::option::of(big_u64()),
            prop::collection::vec((key(), gap(), value()), 0..6),
        )
            .prop_map(|(node, g, from, purged, hb, fields)| {
                let mut values: Vec<(Key, VersionedValue)> = Vec::new();
                let mut v = from;
                for (k, gap, value) in fields {
                    // no key twice; versions ascending, above `from`, within u64
                    if values.iter().any(|(k2, _)| *k2 == k) {
                        continue;
                    }
                    let Some(next) = v.checked_add(gap).and_then(|v| v.checked_add(1)) else { break };
                    v = next;
                    values.push((k, VersionedValue { value: value.map(Value::from), version: Version(v) }));
                }
                Delta {
                    node,
                    generation: Generation(g),
                    from: Version(from),
                    purged: Version(purged),
                    // at, below or above `from` (a stale heartbeat when not above)
                    heartbeat: hb.map(Version),
                    values,
                }
            })
    }

    /// Deltas in canonical order: ascending, distinct ids.
    pub fn deltas() -> impl Strategy<Value = Vec<Delta>> {
        prop::collection::vec(delta(), 0..5).prop_map(|mut ds| {
            ds.sort_by(|a, b| a.node.cmp(&b.node));
            ds.dedup_by(|a, b| a.node == b.node);
            ds
        })
    }

    fn range_of(a: Option<NodeId>, b: Option<NodeId>) -> NodeRange {
        match (a, b) {
            (Some(a), Some(b)) if a < b => NodeRange::new(Some(a), Some(b)).unwrap(),
            (Some(a), Some(b)) if b < a => NodeRange::new(Some(b), Some(a)).unwrap(),
            (Some(a), Some(_)) => NodeRange::new(Some(a), None).unwrap(),
            (a, b) => NodeRange::new(a, b).unwrap(),
        }
    }

    /// Any range: full, bounded on either side or both (start < end).
    pub fn range() -> impl Strategy<Value = NodeRange> {
        (prop::option::of(node_id()), prop::option::of(node_id())).prop_map(|(a, b)| range_of(a, b))
    }

    /// A range page: its range either random (the digests outside it dropped) or
    /// bounded by ids of the digests, so that it keeps some.
    pub fn range_page() -> impl Strategy<Value = DigestPage> {
        (digests(), range(), any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4).prop_map(
            |(ds, random, i, j, mode)| {
                let range = if mode == 0 || ds.is_empty() {
                    random
                } else {
                    // start inclusive, end exclusive (j = len: unbounded)
                    let (i, j) = (i.index(ds.len()), j.index(ds.len() + 1));
                    let start = Some(ds[i].node.clone());
                    let end = (j < ds.len()).then(|| ds[j].node.clone());
                    match mode {
                        1 => range_of(start, None),
                        2 => range_of(None, end),
                        _ if j > i => range_of(start, end),
                        _ => range_of(start, None),
                    }
                };
                let digests = ds.into_iter().filter(|d| range.contains(&d.node)).collect();
                DigestPage::Range { range, digests }
            },
        )
    }

    // ---- an independent writer of the compact pieces (docs/wire.md §4, §5.2, §6-§8)

    fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn put_opt_id(out: &mut Vec<u8>, id: Option<&NodeId>) {
        match id {
            None => out.push(0),
            Some(id) => {
                out.push(id.as_bytes().len() as u8);
                out.extend_from_slice(id.as_bytes());
            }
        }
    }

    /// A context: range, then the 64-bit members hash.
    #[derive(Clone, Debug)]
    pub struct Ctx {
        pub range: NodeRange,
        pub members: u64,
    }

    fn put_context(out: &mut Vec<u8>, c: &Ctx) {
        put_opt_id(out, c.range.start());
        put_opt_id(out, c.range.end());
        out.extend_from_slice(&c.members.to_le_bytes());
    }

    fn put_key(out: &mut Vec<u8>, k: &Key) {
        match k.well_known_code() {
            Some(code) => out.extend_from_slice(&[0, code]),
            None => {
                out.push(k.as_str().len() as u8);
                out.extend_from_slice(k.as_str().as_bytes());
            }
        }
    }

    fn put_value(out: &mut Vec<u8>, v: &Option<Vec<u8>>) {
        match v {
            None => out.push(0),
            Some(v) => {
                put_varint(out, v.len() as u64 + 1);
                out.extend_from_slice(v);
            }
        }
    }

    /// A compact delta as generated: gaps, not yet made canonical.
    #[derive(Clone, Debug)]
    pub struct CompactDeltaSpec {
        index_gap: u64,
        from: Option<u16>,
        purged: u64,
        /// (stale, offset): `from - offset` when stale, else `from + offset + 1`.
        heartbeat: Option<(bool, u64)>,
        fields: Vec<(Key, u64, Option<Vec<u8>>)>,
    }

    /// Member index gaps: mostly dense, now and then far apart (up to the 32-bit limit).
    fn index_gap() -> impl Strategy<Value = u64> {
        prop_oneof![8 => 0u64..4, 2 => 0u64..1000, 1 => 0..=u64::from(u32::MAX)]
    }

    fn compact_delta() -> impl Strategy<Value = CompactDeltaSpec> {
        (
            index_gap(),
            prop::option::of(any::<u16>()),
            prop_oneof![3 => Just(0u64), 1 => big_u64()],
            prop::option::of((any::<bool>(), big_u64())),
            prop::collection::vec((key(), gap(), value()), 0..5),
        )
            .prop_map(|(index_gap, from, purged, heartbeat, fields)| CompactDeltaSpec {
                index_gap,
                from,
                purged,
                heartbeat,
                fields,
            })
    }

    /// Index gaps kept while the index fits in 32 bits (canonical: ascending).
    fn within_u32<T>(items: Vec<T>, gap: impl Fn(&T) -> u64) -> Vec<T> {
        let mut next = 0u64; // the lowest index the next entry may take
        let mut out = Vec::new();
        for item in items {
            let index = next + gap(&item);
            if index > u64::from(u32::MAX) {
                break;
            }
            next = index + 1;
            out.push(item);
        }
        out
    }

    fn put_compact_deltas(out: &mut Vec<u8>, ds: &[CompactDeltaSpec]) {
        let ds = within_u32(ds.to_vec(), |d| d.index_gap);
        put_varint(out, ds.len() as u64);
        for d in &ds {
            put_varint(out, d.index_gap);
            let mut flags = 0u8;
            if d.from.is_some() {
                flags |= 1;
            }
            if d.purged != 0 {
                flags |= 4;
            }
            match d.heartbeat {
                Some((false, _)) => flags |= 2,
                Some((true, _)) => flags |= 2 | 8,
                None => {}
            }
            // keys distinct, offsets ascending from 1 and within u64
            let mut fields: Vec<(&Key, u64, &Option<Vec<u8>>)> = Vec::new();
            let mut offset = 0u64;
            for (k, gap, v) in &d.fields {
                if fields.iter().any(|(k2, _, _)| *k2 == k) {
                    continue;
                }
                let Some(next) = offset.checked_add(*gap).and_then(|o| o.checked_add(1)) else { break };
                offset = next;
                fields.push((k, *gap, v));
            }
            out.push(flags);
            if let Some(from) = d.from {
                out.extend_from_slice(&from.to_le_bytes());
            }
            if d.purged != 0 {
                put_varint(out, d.purged);
            }
            if let Some((_, n)) = d.heartbeat {
                put_varint(out, n);
            }
            put_varint(out, fields.len() as u64);
            for (k, gap, v) in fields {
                put_key(out, k);
                put_varint(out, gap);
                put_value(out, v);
            }
        }
    }

    /// Decodes a message body written by the generator (after a fixed header).
    fn decode_body(kind: u8, body: &[u8]) -> Message {
        let mut bytes = vec![b'R', b'M', 1, kind, 4];
        bytes.extend_from_slice(b"prop");
        bytes.extend_from_slice(&[1, b's', 0]);
        bytes.extend_from_slice(body);
        match codec().decode(&bytes) {
            Ok(env) => env.message,
            Err(e) => panic!("the generator wrote non-canonical bytes ({e:?}): {bytes:02x?}"),
        }
    }

    pub fn context() -> impl Strategy<Value = Ctx> {
        (range(), prop_oneof![Just(0u64), any::<u64>()]).prop_map(|(range, members)| Ctx { range, members })
    }

    /// A compact page: 16-bit versions and quiet bits (zero past the last member).
    pub fn compact_digest() -> impl Strategy<Value = CompactDigest> {
        (context(), any::<u64>(), prop::collection::vec((any::<u16>(), any::<bool>()), 0..20)).prop_map(
            |(ctx, check, members)| {
                let mut body = vec![2u8];
                put_context(&mut body, &ctx);
                body.extend_from_slice(&check.to_le_bytes());
                put_varint(&mut body, members.len() as u64);
                for (v, _) in &members {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                let mut quiet = vec![0u8; members.len().div_ceil(8)];
                for (i, (_, q)) in members.iter().enumerate() {
                    quiet[i / 8] |= u8::from(*q) << (i % 8);
                }
                body.extend_from_slice(&quiet);
                match decode_body(1, &body) {
                    Message::Syn(Syn { page: DigestPage::Compact(c) }) => c,
                    other => panic!("not a compact page: {other:?}"),
                }
            },
        )
    }

    /// A hashed page: fingerprints with full versions.
    pub fn hashed_digest() -> impl Strategy<Value = HashedDigest> {
        (context(), any::<u32>(), prop::collection::vec((any::<u32>(), big_u64(), big_u64()), 0..12)).prop_map(
            |(ctx, salt, entries)| {
                let mut body = vec![3u8];
                put_context(&mut body, &ctx);
                body.extend_from_slice(&salt.to_le_bytes());
                put_varint(&mut body, entries.len() as u64);
                for (fingerprint, max_version, purged) in entries {
                    body.extend_from_slice(&fingerprint.to_le_bytes());
                    put_varint(&mut body, max_version);
                    put_varint(&mut body, purged);
                }
                match decode_body(1, &body) {
                    Message::Syn(Syn { page: DigestPage::Hashed(h) }) => h,
                    other => panic!("not a hashed page: {other:?}"),
                }
            },
        )
    }

    /// The compact part of an ACK: over agreed members, or answering a hashed page
    /// (`hashed`, with its list of members requested whole).
    pub fn compact_ack(hashed: bool) -> impl Strategy<Value = CompactAck> {
        (
            context(),
            any::<u64>(),
            prop::collection::vec((index_gap(), any::<u16>()), 0..6),
            prop::collection::vec(compact_delta(), 0..4),
            prop::collection::vec(index_gap(), 0..6),
        )
            .prop_map(move |(ctx, check, requests, deltas, whole)| {
                // the fixed header, 0 full requests, 0 full deltas
                let mut body = vec![0u8, 0];
                body.push(if hashed { 2 } else { 1 });
                put_context(&mut body, &ctx);
                body.extend_from_slice(&check.to_le_bytes());
                let requests = within_u32(requests, |r| r.0);
                put_varint(&mut body, requests.len() as u64);
                for (gap, low) in requests {
                    put_varint(&mut body, gap);
                    body.extend_from_slice(&low.to_le_bytes());
                }
                put_compact_deltas(&mut body, &deltas);
                if hashed {
                    let whole = within_u32(whole, |g| *g);
                    put_varint(&mut body, whole.len() as u64);
                    for gap in whole {
                        put_varint(&mut body, gap);
                    }
                }
                body.push(0); // no resend range
                match decode_body(2, &body) {
                    Message::Ack(Ack { compact: Some(c), .. }) => c,
                    other => panic!("not an ACK with a compact part: {other:?}"),
                }
            })
    }

    /// The compact part of an ACK2.
    pub fn compact_deltas() -> impl Strategy<Value = CompactDeltas> {
        (context(), any::<u64>(), prop::collection::vec(compact_delta(), 0..4)).prop_map(|(ctx, check, deltas)| {
            let mut body = vec![0u8, 1];
            put_context(&mut body, &ctx);
            body.extend_from_slice(&check.to_le_bytes());
            put_compact_deltas(&mut body, &deltas);
            match decode_body(3, &body) {
                Message::Ack2(Ack2 { compact: Some(c), .. }) => c,
                other => panic!("not an ACK2 with a compact part: {other:?}"),
            }
        })
    }

    pub fn page() -> impl Strategy<Value = DigestPage> {
        prop_oneof![
            digests().prop_map(DigestPage::Listed),
            range_page(),
            compact_digest().prop_map(DigestPage::Compact),
            hashed_digest().prop_map(DigestPage::Hashed),
        ]
    }

    /// Every kind of message, every page form, every form of ACK and ACK2.
    pub fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            4 => page().prop_map(|page| Message::Syn(Syn { page })),
            4 => (
                digests(),
                deltas(),
                prop_oneof![
                    Just(None),
                    compact_ack(false).prop_map(Some),
                    compact_ack(true).prop_map(Some),
                ],
                prop::option::of(range()),
            )
                .prop_map(|(requests, deltas, compact, resend)| Message::Ack(Ack { requests, deltas, compact, resend })),
            3 => (deltas(), prop::option::of(compact_deltas()))
                .prop_map(|(deltas, compact)| Message::Ack2(Ack2 { deltas, compact })),
            1 => any::<u64>().prop_map(|nonce| Message::Echo(Echo { nonce })),
            1 => any::<u64>().prop_map(|nonce| Message::EchoReply(Echo { nonce })),
            1 => Just(Message::Shutdown),
        ]
    }
}
