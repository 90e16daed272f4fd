//! Hostile input: one test per row of the table in docs/security.md.
//!
//! Anyone who can reach a node's port can hand it bytes. Each test feeds one kind
//! of hostile input through the public API (mostly `Gossiper::handle_datagram`
//! with crafted bytes) and checks that nothing panics, that the input is refused
//! with the specific typed error or `Ignored` reason, that the specific counter
//! went up by the expected amount, that nothing else changed, and that memory
//! stays bounded by the configuration.
//!
//! Memory is measured with a counting global allocator whose counters are per
//! thread, so tests running in parallel do not see each other's allocations.
//!
//! Tests marked `#[ignore = "needs ..."]` assert behaviour the library does not
//! have yet; docs/security.md lists what each needs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, Ack2, Budget, ClusterName, Codec, Config, DecodeError, Delta, Digest, DigestPage, Echo, EndpointState,
    Envelope, Event, Generation, Gossiper, Header, Ignored, Key, Limits, Message, Metrics, NodeId, NodeRange, PageForm,
    Syn, Timestamp, Value, Version, VersionedValue, View, WriteError, build_ack2, build_syn, handle_ack, handle_syn,
    shadow_syn,
};

// ----- a counting allocator -----

struct Counting;

thread_local! {
    /// Bytes allocated and not yet freed by this thread.
    static LIVE: Cell<i64> = const { Cell::new(0) };
    /// The highest `LIVE` since the last `measure` began.
    static PEAK: Cell<i64> = const { Cell::new(0) };
}

fn note(delta: i64) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes to the system allocator unchanged; the bookkeeping only
// touches const-initialised thread-local cells, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Bytes this thread holds allocated now.
fn live() -> i64 {
    LIVE.with(Cell::get)
}

/// Runs `f`; returns its result, the most bytes this thread held allocated at once
/// during it (above what it held at the start), and what it still holds after.
fn measure<T>(f: impl FnOnce() -> T) -> (T, i64, i64) {
    let start = live();
    PEAK.with(|p| p.set(start));
    let out = f();
    (out, PEAK.with(Cell::get) - start, live() - start)
}

// ----- fixtures -----

const T0: u64 = 1_700_000_000;
const YEAR: u64 = 365 * 24 * 3600;
const DAY: u64 = 24 * 3600;

fn now0() -> Timestamp {
    Timestamp::from_secs(T0)
}

fn id(s: impl AsRef<[u8]>) -> NodeId {
    NodeId::new(s).unwrap()
}

/// Three-byte ids, ascending with `i` (for up to 2^24 distinct nodes).
fn id3(i: u32) -> NodeId {
    NodeId::new(&i.to_be_bytes()[1..]).unwrap()
}

fn cluster() -> ClusterName {
    ClusterName::new("demo").unwrap()
}

fn codec() -> Codec {
    Codec::new(cluster())
}

fn me() -> NodeId {
    id("me")
}

fn node_with(config: Config) -> Gossiper<ChaCha8Rng> {
    Gossiper::new(config, me(), Generation(T0), now0(), ChaCha8Rng::seed_from_u64(7)).unwrap()
}

/// A node whose messages must fit a 1,400-byte datagram (values up to 400 bytes).
fn node_with_datagram_budget() -> Gossiper<ChaCha8Rng> {
    let mut config = Config::new(cluster());
    config.max_message_bytes = 1_400;
    config.limits.max_value_len = 400;
    node_with(config)
}

fn node() -> Gossiper<ChaCha8Rng> {
    node_with(Config::new(cluster()))
}

fn frame_in(cluster: &ClusterName, sender: &NodeId, generation: u64, message: Message) -> Vec<u8> {
    let header = Header { cluster: cluster.clone(), sender: sender.clone(), generation: Generation(generation) };
    Envelope { header, message }.encode()
}

fn frame(sender: &str, message: Message) -> Vec<u8> {
    frame_in(&cluster(), &id(sender), T0, message)
}

fn delta(node: NodeId, generation: u64, from: u64, heartbeat: Option<u64>, values: &[(Key, &str, u64)]) -> Delta {
    Delta {
        node,
        generation: Generation(generation),
        from: Version(from),
        purged: Version::ZERO,
        heartbeat: heartbeat.map(Version),
        values: values.iter().map(|(k, v, ver)| (k.clone(), VersionedValue::live(*v, Version(*ver)))).collect(),
    }
}

fn ack2(deltas: Vec<Delta>) -> Message {
    Message::Ack2(Ack2 { deltas, compact: None })
}

/// What a node knows: compared before and after an input that must change nothing.
#[derive(Debug, PartialEq)]
struct Known {
    revision: u64,
    generation: Generation,
    nodes: Vec<(NodeId, EndpointState)>,
}

fn known(g: &Gossiper<ChaCha8Rng>) -> Known {
    let view = g.view();
    Known {
        revision: view.revision(),
        generation: view.local_generation(),
        nodes: view.iter().map(|(k, s)| (k.clone(), s.clone())).collect(),
    }
}

/// Feeds `bytes` and asserts they were refused: nothing sent, no event, the view
/// unchanged, and the metrics unchanged but for `counted` (and the bytes received).
fn assert_refused(g: &mut Gossiper<ChaCha8Rng>, now: Timestamp, bytes: &[u8], counted: impl FnOnce(&mut Metrics)) {
    let before = known(g);
    let mut want = g.metrics().clone();
    want.received_bytes += bytes.len() as u64;
    counted(&mut want);
    let out = g.handle_datagram(now, bytes);
    let answered: Vec<usize> = out.transmits.iter().map(|t| t.bytes.len()).collect();
    assert!(answered.is_empty(), "a refused input was answered, with messages of {answered:?} bytes");
    assert!(out.events.is_empty(), "a refused input raised events: {:?}", out.events);
    assert_eq!(known(g), before, "a refused input changed the view");
    assert_eq!(g.metrics(), &want, "counters other than the expected one moved");
}

/// Opens an exchange as the peer `sender` would, so that its next ACK2 is welcome:
/// a SYN listing only our own digest (the ACK it gets back is empty).
fn open_exchange(g: &mut Gossiper<ChaCha8Rng>, now: Timestamp, sender: &str) {
    let ours = g.view().digest(&me()).unwrap();
    let out = g.handle_datagram(now, &frame(sender, Message::Syn(Syn { page: DigestPage::Listed(vec![ours]) })));
    assert_eq!(out.transmits.len(), 1, "a SYN is answered with one ACK");
}

/// Delivers an ACK2 from `sender` as the answer to an exchange it opened.
fn deliver_ack2(g: &mut Gossiper<ChaCha8Rng>, now: Timestamp, sender: &str, deltas: Vec<Delta>) -> rumormill::Output {
    open_exchange(g, now, sender);
    g.handle_datagram(now, &frame(sender, ack2(deltas)))
}

/// Hand-written frames, following docs/wire.md.
#[derive(Clone, Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    /// A header of cluster "demo", sender "p", generation `T0`.
    fn header(kind: u8) -> Bytes {
        Bytes::header_from(kind, b"p")
    }

    fn header_from(kind: u8, sender: &[u8]) -> Bytes {
        Bytes(vec![0x52, 0x4d, 1, kind]).id(b"demo").id(sender).varint(T0)
    }

    fn u8(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    fn varint(mut self, mut v: u64) -> Self {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
        self
    }

    fn id(self, id: &[u8]) -> Self {
        self.u8(id.len() as u8).raw(id)
    }

    fn u16(self, v: u16) -> Self {
        self.raw(&v.to_le_bytes())
    }

    fn u64(self, v: u64) -> Self {
        self.raw(&v.to_le_bytes())
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

const SYN: u8 = 1;
const ACK: u8 = 2;
const ACK2: u8 = 3;

/// Two views of the same three members (docs/wire.md §13.4), for real compact
/// rounds.
fn compact_views() -> (View, View) {
    let st = |generation: u64, hb: u64, purged: u64, values: &[(Key, Option<&str>, u64)]| {
        EndpointState::from_parts(
            Generation(generation),
            Version(hb),
            values
                .iter()
                .map(|(k, v, ver)| (k.clone(), VersionedValue { value: v.map(Value::from), version: Version(*ver) })),
            Version(purged),
        )
    };
    let (ga, gb, gc) = (T0, T0 + 50, T0 + 100);
    let x = Key::new("x").unwrap();
    let a = View::from_states(
        id("a"),
        [
            (id("a"), st(ga, 5, 0, &[(Key::STATUS, Some("NORMAL"), 2), (x, Some("1"), 4)])),
            (id("b"), st(gb, 4, 0, &[(Key::STATUS, Some("NORMAL"), 2)])),
            (id("c"), st(gc, 70_003, 2, &[(Key::STATUS, Some("NORMAL"), 70_000), (Key::LOAD, Some("12.5"), 70_002)])),
        ],
    )
    .unwrap();
    let b = View::from_states(
        id("b"),
        [
            (id("a"), st(ga, 3, 0, &[(Key::STATUS, Some("NORMAL"), 2)])),
            (
                id("b"),
                st(gb, 7, 0, &[(Key::STATUS, Some("NORMAL"), 2), (Key::DC, Some("dc1"), 5), (Key::RACK, None, 6)]),
            ),
            (id("c"), st(gc, 70_001, 2, &[(Key::STATUS, Some("NORMAL"), 70_000)])),
        ],
    )
    .unwrap();
    (a, b)
}

/// One valid message of every kind and form, as bodies (the sender is added by
/// `samples`).
fn sample_messages() -> Vec<(&'static str, Message)> {
    let (a, b) = compact_views();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let budget = Budget::unlimited();
    let digest = |node: &str, generation: u64, max: u64, purged: u64| Digest {
        node: id(node),
        generation: Generation(generation),
        max_version: Version(max),
        purged: Version(purged),
    };
    let syn_compact = build_syn(&a, budget, None, PageForm::Compact).unwrap().syn;
    let ack_compact = handle_syn(&b, &syn_compact, budget, &mut rng).message;
    assert!(ack_compact.compact.is_some(), "the compact round has a compact ACK");
    let requests = handle_ack(&a, &ack_compact).requests;
    let ack2_compact = build_ack2(&a, &requests, budget, &mut rng).message;
    assert!(ack2_compact.compact.is_some(), "and a compact ACK2");
    let mut stale = delta(id("d"), T0, 10, Some(7), &[(Key::STATUS, "LEAVING", 11)]);
    stale.purged = Version(3);
    vec![
        ("syn-listed", Message::Syn(Syn { page: DigestPage::Listed(vec![digest("b", T0 + 50, 42, 0)]) })),
        (
            "syn-range",
            Message::Syn(Syn {
                page: DigestPage::Range {
                    range: NodeRange::new(Some(id("b")), Some(id("d"))).unwrap(),
                    digests: vec![digest("b", T0 + 50, 42, 0), digest("c", T0 + 100, 300, 7)],
                },
            }),
        ),
        ("syn-compact", Message::Syn(syn_compact)),
        ("syn-shadow", Message::Syn(shadow_syn())),
        (
            "ack-full",
            Message::Ack(Ack {
                requests: vec![digest("c", T0 + 100, 17, 0)],
                deltas: vec![delta(
                    id("b"),
                    T0 + 50,
                    5,
                    Some(10),
                    &[(Key::STATUS, "NORMAL", 6), (Key::new("shard-load").unwrap(), "0.5", 7)],
                )],
                ..Ack::default()
            }),
        ),
        ("ack-compact", Message::Ack(ack_compact)),
        (
            "ack-resend",
            Message::Ack(Ack { resend: Some(NodeRange::new(Some(id("b")), None).unwrap()), ..Ack::default() }),
        ),
        ("ack2-full", ack2(vec![delta(id("a"), T0, 0, Some(4), &[(Key::DC, "dc1", 2)]), stale])),
        ("ack2-compact", Message::Ack2(ack2_compact)),
        ("echo", Message::Echo(Echo { nonce: 0x0123_4567_89ab_cdef })),
        ("echo-reply", Message::EchoReply(Echo { nonce: 0x0123_4567_89ab_cdef })),
        ("shutdown", Message::Shutdown),
    ]
}

/// Every sample as a frame from `sender`.
fn samples(sender: &str) -> Vec<(&'static str, Vec<u8>)> {
    sample_messages().into_iter().map(|(name, m)| (name, frame(sender, m))).collect()
}

// ----- truncated and oversized frames -----

#[test]
fn truncated_frames_of_every_kind_are_rejected_at_every_prefix() {
    let codec = codec();
    let mut g = node();
    let mut prefixes = 0u64;
    for (name, bytes) in samples("p") {
        assert!(codec.decode(&bytes).is_ok(), "{name}: the whole frame decodes");
        for len in 0..bytes.len() {
            let prefix = &bytes[..len];
            match codec.decode(prefix) {
                // the read that ran short lies within the prefix (or just past it)
                Err(DecodeError::Truncated { at }) => assert!(at <= len, "{name}[..{len}]: at {at}"),
                // a count read whole, with fewer bytes left than its entries need
                Err(DecodeError::CountTooLarge { at, .. }) => assert!(at < len, "{name}[..{len}]: at {at}"),
                other => panic!("{name}[..{len}]: {other:?}"),
            }
            assert_refused(&mut g, now0(), prefix, |m| m.decode_errors += 1);
            prefixes += 1;
        }
    }
    assert_eq!(g.metrics().decode_errors, prefixes);
}

#[test]
fn a_valid_frame_with_bytes_appended_is_rejected() {
    let codec = codec();
    let mut g = node();
    for (name, bytes) in samples("p") {
        for extra in [1usize, 7, 1_000] {
            let mut long = bytes.clone();
            long.resize(bytes.len() + extra, 0);
            assert_eq!(codec.decode(&long), Err(DecodeError::TrailingBytes(extra)), "{name} + {extra}");
            assert_refused(&mut g, now0(), &long, |m| m.decode_errors += 1);
        }
    }
}

/// A listed SYN from `sender` naming `n` unknown nodes (3-byte ids from `first`).
fn big_syn(sender: &[u8], first: u32, n: u32) -> Vec<u8> {
    let mut b = Bytes::header_from(SYN, sender).u8(0).varint(u64::from(n));
    for i in first..first + n {
        b = b.raw(&[3]).raw(&i.to_be_bytes()[1..]).varint(T0).u8(9).u8(0);
    }
    b.0
}

#[test]
fn a_frame_larger_than_max_message_bytes_is_answered_within_the_receivers_budget() {
    let mut g = node_with_datagram_budget();
    // 60 KB: a SYN naming 5,400 nodes this node does not know
    let syn = big_syn(b"p", 0, 5_400);
    assert!(syn.len() > 50_000);
    let (decoded, peak, _) = measure(|| codec().decode(&syn));
    assert!(decoded.is_ok());
    assert!(peak <= DECODE_BYTES_PER_INPUT_BYTE * syn.len() as i64, "decoding {} bytes allocated {peak}", syn.len());
    let before = known(&g);
    let out = g.handle_datagram(now0(), &syn);
    assert_eq!(out.transmits.len(), 1);
    let ack = &out.transmits[0].bytes;
    assert!(ack.len() <= 1_400, "the ACK has {} bytes", ack.len());
    let Message::Ack(ack) = codec().decode(ack).unwrap().message else { panic!("not an ACK") };
    assert!(!ack.requests.is_empty() && ack.requests.len() < 5_400, "as many requests as fit");
    assert_eq!(g.metrics().budget_hits, 1, "what did not fit is counted");
    assert_eq!(known(&g), before, "a SYN changes nothing");
}

/// A hashed SYN (page kind 3) from `sender` over the full range: `n` entries, all
/// with fingerprint `fingerprint` and max version `u64::MAX`.
fn hashed_syn(sender: &[u8], n: u32, fingerprint: u32) -> Vec<u8> {
    let mut b = Bytes::header_from(SYN, sender).u8(3).u8(0).u8(0).raw(&[0xab; 8]).raw(&7u32.to_le_bytes());
    b = b.varint(u64::from(n));
    for _ in 0..n {
        b = b.raw(&fingerprint.to_le_bytes()).varint(u64::MAX).varint(0);
    }
    b.0
}

#[test]
fn hashed_pages_of_colliding_fingerprints_are_answered_within_the_budget() {
    let mut g = node_with_datagram_budget();
    for fingerprint in [0, u32::MAX] {
        // 3,000 entries sharing one fingerprint: none can be matched, so every one
        // is asked for whole (as many as fit), and this node's own state, which
        // matches none, is pushed whole
        let syn = hashed_syn(b"p", 3_000, fingerprint);
        let (decoded, peak, _) = measure(|| codec().decode(&syn));
        assert!(decoded.is_ok());
        assert!(peak <= DECODE_BYTES_PER_INPUT_BYTE * syn.len() as i64, "decoding allocated {peak}");
        let before = known(&g);
        let hits = g.metrics().budget_hits;
        let out = g.handle_datagram(now0(), &syn);
        assert_eq!(out.transmits.len(), 1);
        let bytes = &out.transmits[0].bytes;
        assert!(bytes.len() <= 1_400, "the ACK has {} bytes", bytes.len());
        let Message::Ack(ack) = codec().decode(bytes).unwrap().message else { panic!("not an ACK") };
        let compact = ack.compact.as_ref().expect("a hashed page gets a hashed answer");
        assert!(compact.answers_hashed() && compact.request_count() > 100 && compact.request_count() < 3_000);
        assert!(ack.deltas.iter().any(|d| d.node == me()), "its own state, matched by nothing, goes whole");
        assert_eq!(g.metrics().budget_hits, hits + 1, "what did not fit is counted");
        assert_eq!(known(&g), before, "a SYN changes nothing");
    }
}

#[test]
fn a_frame_larger_than_any_datagram_is_refused_before_decoding() {
    let mut g = node();
    // 1 MB, a valid SYN: no UDP datagram is this large, only a stream transport's
    // frame could be, and decoding takes up to DECODE_BYTES_PER_INPUT_BYTE per byte
    let syn = big_syn(b"p", 0, 90_000);
    assert!(syn.len() > 65_535);
    assert_refused(&mut g, now0(), &syn, |m| m.too_large += 1);
}

#[test]
fn a_value_longer_than_max_value_len_is_refused_and_counted() {
    let mut config = Config::new(cluster());
    config.limits.max_value_len = 512;
    let mut g = node_with(config);
    let long = "v".repeat(513);
    let fits = "v".repeat(512);

    // on the wire: the codec refuses the whole message before reading the value
    let bytes = frame("p", ack2(vec![delta(id("x"), T0, 0, Some(1), &[(Key::STATUS, &long, 2)])]));
    let decoded = Codec::new(cluster()).with_max_value_len(512).decode(&bytes);
    assert!(matches!(decoded, Err(DecodeError::ValueTooLarge { len: 513, max: 512, .. })), "{decoded:?}");
    open_exchange(&mut g, now0(), "p");
    assert_refused(&mut g, now0(), &bytes, |m| m.decode_errors += 1);
    assert!(g.view().get(&id("x")).is_none());

    // a value of exactly the limit is taken
    deliver_ack2(&mut g, now0(), "p", vec![delta(id("x"), T0, 0, Some(1), &[(Key::STATUS, &fits, 2)])]);
    assert_eq!(g.view().get(&id("x")).unwrap().live_value(&Key::STATUS).unwrap().len(), 512);

    // a delta built by hand (not from the wire) is refused by the view
    let mut view = View::new(me(), Generation(T0)).with_limits(Limits { max_value_len: 512, ..Limits::default() });
    let applied = view.apply(&[delta(id("y"), T0, 0, Some(1), &[(Key::STATUS, &long, 2)])], now0());
    assert_eq!(applied.ignored, [Ignored::ValueTooLarge { node: id("y"), key: Key::STATUS, len: 513 }]);
    assert!(applied.changes.is_empty() && view.get(&id("y")).is_none());

    // and a local write of one
    let before = known(&g);
    assert_eq!(g.set(now0(), Key::DC, long.as_str()).unwrap_err(), WriteError::ValueTooLarge { len: 513, max: 512 });
    assert_eq!(known(&g), before);
}

// ----- length fields that lie -----

#[test]
fn lying_counts_and_lengths_fail_fast_without_allocating_what_they_claim() {
    let huge = 1u64 << 60;
    let big = 1u64 << 20; // trusted, 2^20 entries would be tens of megabytes
    let at = Bytes::header(SYN).len() + 1; // where a SYN page's count starts
    let cases: Vec<(&str, Vec<u8>, Codec, DecodeError)> = vec![
        (
            "digest count 2^60",
            Bytes::header(SYN).u8(0).varint(huge).raw(&[1, b'x', 1, 1, 0]).0,
            codec(),
            DecodeError::CountTooLarge { count: huge, at },
        ),
        (
            "digest count 2^20",
            Bytes::header(SYN).u8(0).varint(big).raw(&[0; 100]).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at },
        ),
        (
            "range page digest count",
            Bytes::header(SYN).u8(1).u8(0).u8(0).varint(big).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at: at + 2 },
        ),
        (
            "compact page version count",
            Bytes::header(SYN).u8(2).u8(0).u8(0).u64(0).u64(0).varint(big).raw(&[0; 64]).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at: at + 18 },
        ),
        (
            "ACK request count",
            Bytes::header(ACK).varint(huge).0,
            codec(),
            DecodeError::CountTooLarge { count: huge, at: at - 1 },
        ),
        (
            "ACK delta count",
            Bytes::header(ACK).u8(0).varint(big).raw(&[0; 40]).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at },
        ),
        (
            "ACK compact request count",
            Bytes::header(ACK).u8(0).u8(0).u8(1).u8(0).u8(0).u64(0).u64(0).varint(big).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at: at + 20 },
        ),
        (
            "ACK compact delta count",
            Bytes::header(ACK).u8(0).u8(0).u8(1).u8(0).u8(0).u64(0).u64(0).u8(0).varint(big).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at: at + 21 },
        ),
        (
            "ACK2 delta count",
            Bytes::header(ACK2).varint(huge).u8(0).0,
            codec(),
            DecodeError::CountTooLarge { count: huge, at: at - 1 },
        ),
        (
            "field count",
            Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).varint(big).raw(&[0; 30]).0,
            codec(),
            DecodeError::CountTooLarge { count: big, at: at + 8 },
        ),
        (
            "value length 2^60, default limit",
            Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).u8(1).u8(0).u8(0).u8(0).varint(huge + 1).0,
            codec(),
            DecodeError::ValueTooLarge { len: huge, max: rumormill::DEFAULT_MAX_VALUE_LEN, at: at + 12 },
        ),
        (
            "value length 2^60, no limit",
            Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).u8(1).u8(0).u8(0).u8(0).varint(huge + 1).raw(b"abc").0,
            codec().with_max_value_len(usize::MAX),
            DecodeError::Truncated { at: at + 21 },
        ),
        (
            "node id of 255 bytes, 7 there",
            Bytes::header(SYN).u8(0).u8(1).u8(255).raw(b"abcdefg").0,
            codec(),
            DecodeError::Truncated { at: at + 2 },
        ),
        (
            "key of 200 bytes, 3 there",
            Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).u8(1).u8(200).raw(b"abc").0,
            codec(),
            DecodeError::Truncated { at: at + 10 },
        ),
        (
            "cluster name of 255 bytes, 4 there",
            Bytes(vec![0x52, 0x4d, 1, SYN, 255]).raw(b"demo").0,
            codec(),
            DecodeError::Truncated { at: 5 },
        ),
    ];
    let mut g = node();
    for (name, bytes, codec, want) in &cases {
        let (got, peak, _) = measure(|| codec.decode(bytes));
        assert_eq!(got.as_ref().err(), Some(want), "{name}");
        // what it claims would be megabytes; a node id or two is all it may take
        assert!(peak <= 512, "{name}: {peak} bytes allocated for a {}-byte input", bytes.len());
        // fast: a thousand decodes of each take well under a second
        let started = Instant::now();
        for _ in 0..1_000 {
            assert!(codec.decode(bytes).is_err());
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{name}: {:?}", started.elapsed());
        assert_refused(&mut g, now0(), bytes, |m| m.decode_errors += 1);
    }
}

/// Distinct two-byte custom keys (not "DC", which is well known), `n` of them.
fn two_byte_keys(n: usize) -> impl Iterator<Item = [u8; 2]> {
    (0..127u16 * 127).map(|i| [1 + (i / 127) as u8, 1 + (i % 127) as u8]).filter(|k| k != b"DC").take(n)
}

/// An ACK2 with one delta of a new node "x" carrying `n` fields (5 bytes each).
fn most_fields(n: usize) -> Bytes {
    let mut b = Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).varint(n as u64);
    for k in two_byte_keys(n) {
        b = b.u8(2).raw(&k).u8(0).u8(1);
    }
    b.u8(0)
}

/// The most memory decoding may take, per byte of input (docs/security.md). The
/// worst input found takes 31: a list count that the bytes left could just hold
/// (its list is reserved whole, about 19 bytes per input byte for deltas), then, in
/// its first entry, a field count that could just be held too (12 more).
const DECODE_BYTES_PER_INPUT_BYTE: i64 = 40;

fn assert_decode_bounded(name: &str, codec: &Codec, bytes: &[u8]) -> f64 {
    let (_, peak, _) = measure(|| codec.decode(bytes));
    assert!(
        peak <= DECODE_BYTES_PER_INPUT_BYTE * bytes.len() as i64 + 1_024,
        "{name}: decoding {} bytes allocated {peak} at once",
        bytes.len()
    );
    peak as f64 / bytes.len() as f64
}

#[test]
fn decoding_allocates_at_most_a_small_multiple_of_the_input() {
    let codec = codec();
    let room = 65_000;
    let header = Bytes::header(ACK2).len();
    let mut worst = 0f64;
    let mut check = |name: &str, bytes: Vec<u8>| {
        let ratio = assert_decode_bounded(name, &codec, &bytes);
        worst = worst.max(ratio);
    };
    // the shortest entries each list can have, as many as fit, each one real
    let n = (room - header) / 6;
    let mut b = Bytes::header(SYN).u8(0).varint(n as u64);
    for i in 0..n as u16 {
        b = b.id(&i.to_be_bytes()).raw(&[0, 0, 0]);
    }
    check("listed page of 2-byte ids", b.0);
    let n = (room - header) / 6;
    let mut b = Bytes::header(ACK2).varint(n as u64);
    for i in 0..n as u16 {
        b = b.id(&i.to_be_bytes()).raw(&[0, 0, 0]);
    }
    check("ACK2 of empty deltas", b.u8(0).0);
    check("ACK2 of one delta, most fields", most_fields((room - header - 16) / 5).0);
    let mut b = Bytes::header(ACK2).u8(0).u8(1).u8(0).u8(0).u64(0).u64(0).varint(((room - header) / 3) as u64);
    for _ in 0..(room - header) / 3 {
        b = b.raw(&[0, 0, 0]);
    }
    check("ACK2 of compact deltas", b.0);
    // counts that fit the bytes left exactly, over entries that turn out bad: the
    // list is reserved whole before the first bad entry
    let pad = vec![0xffu8; room - header - 8];
    check("listed page, count fits, entries bad", Bytes::header(SYN).u8(0).varint((pad.len() / 5) as u64).raw(&pad).0);
    check("ACK2, count fits, entries bad", Bytes::header(ACK2).varint((pad.len() / 5) as u64).raw(&pad).0);
    check(
        "compact deltas, count fits, entries bad",
        Bytes::header(ACK2).u8(0).u8(1).u8(0).u8(0).u64(0).u64(0).varint((pad.len() / 3) as u64).raw(&pad).0,
    );
    check(
        "deltas, then fields, both counts fitting",
        Bytes::header(ACK2)
            .varint((pad.len() / 5) as u64)
            .id(b"x")
            .u8(0)
            .u8(0)
            .varint((pad.len() / 4) as u64)
            .raw(&pad)
            .0,
    );
    // and every single-byte change of every sample
    for (name, bytes) in samples("p") {
        for i in 0..bytes.len() {
            for v in [0u8, 1, 2, 0x7f, 0x80, 0xff, bytes[i] ^ 1] {
                let mut m = bytes.clone();
                m[i] = v;
                check(name, m);
            }
        }
    }
    println!("worst: {worst:.1} bytes allocated per input byte");
}

// ----- malformed framing -----

#[test]
fn overlong_varints_are_rejected_as_bad_varint() {
    let codec = codec();
    let mut g = node();
    let gen_at = Bytes::header(SYN).len() - 5; // the sender's generation
    let bad: [&[u8]; 5] = [
        &[0x80, 0x00],                                                       // a trailing zero group
        &[0xff, 0x00],                                                       // the same, longer
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],       // over 64 bits
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 11 bytes
        &[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],       // zero, spelled long
    ];
    for varint in bad {
        // as the header's generation
        let mut b = Bytes(vec![0x52, 0x4d, 1, SYN]).id(b"demo").id(b"p").raw(varint).u8(0).u8(0);
        b.0.extend_from_slice(&[0; 12]); // room, so that no count is what fails
        assert_eq!(codec.decode(&b.0), Err(DecodeError::BadVarint { at: gen_at }), "{varint:02x?}");
        assert_refused(&mut g, now0(), &b.0, |m| m.decode_errors += 1);
        // and in a body: a digest's max version
        let b = Bytes::header(SYN).u8(0).u8(1).id(b"x").varint(T0).raw(varint).u8(0).raw(&[0; 12]);
        let at = Bytes::header(SYN).len() + 2 + 2 + 5;
        assert_eq!(codec.decode(&b.0), Err(DecodeError::BadVarint { at }), "{varint:02x?}");
        assert_refused(&mut g, now0(), &b.0, |m| m.decode_errors += 1);
    }
    // the largest canonical varint is fine
    let max = Bytes::header(SYN).u8(0).u8(1).id(b"x").varint(T0).varint(u64::MAX).u8(0);
    assert!(codec.decode(&max.0).is_ok());
}

#[test]
fn bad_magic_wrong_wire_version_and_unknown_kinds_are_rejected() {
    let codec = codec();
    let mut g = node();
    let valid = frame("p", Message::Syn(shadow_syn()));
    let mut refused = 0u64;
    for (i, byte) in [(0usize, b'R'), (1, b'M')] {
        for v in (0..=255u8).filter(|v| *v != byte) {
            let mut b = valid.clone();
            b[i] = v;
            assert_eq!(codec.decode(&b), Err(DecodeError::BadMagic));
            if b[..2] == *b"RX" {
                continue; // a sealed frame's magic: the sealing layer's (tests/encryption.rs)
            }
            assert_refused(&mut g, now0(), &b, |m| m.decode_errors += 1);
            refused += 1;
        }
    }
    for v in (0..=255u8).filter(|v| *v != rumormill::WIRE_VERSION) {
        let mut b = valid.clone();
        b[2] = v;
        assert_eq!(codec.decode(&b), Err(DecodeError::UnsupportedVersion(v)));
        assert_refused(&mut g, now0(), &b, |m| m.decode_errors += 1);
        refused += 1;
    }
    for k in (0..=255u8).filter(|k| !(1..=6).contains(k)) {
        let mut b = valid.clone();
        b[3] = k;
        assert_eq!(codec.decode(&b), Err(DecodeError::UnknownKind(k)));
        assert_refused(&mut g, now0(), &b, |m| m.decode_errors += 1);
        refused += 1;
    }
    // a kind byte naming another message than the body holds (an echo's)
    for k in [1u8, 2, 3, 6] {
        let mut b = frame("p", Message::Echo(Echo { nonce: 1 }));
        b[3] = k;
        assert!(codec.decode(&b).is_err(), "kind {k}");
        assert_refused(&mut g, now0(), &b, |m| m.decode_errors += 1);
        refused += 1;
    }
    assert_eq!(g.metrics().decode_errors, refused);
}

// ----- deep and huge digests and deltas -----

/// The most digests a 64 KB SYN holds: two-byte ids of nodes this node does not
/// know, generation 1, versions 0.
fn fullest_syn(page: u8) -> (Vec<u8>, usize) {
    let head = Bytes::header(SYN).u8(page);
    let head = if page == 1 { head.u8(0).u8(0) } else { head };
    let n = (65_000 - head.len() - 3) / 6;
    let mut b = head.varint(n as u64);
    for i in 0..n as u16 {
        b = b.id(&(i + 1).to_be_bytes()).raw(&[1, 0, 0]);
    }
    (b.0, n)
}

#[test]
fn a_syn_with_the_most_digests_that_fit_64_kb_gets_an_ack_within_budget() {
    let mut g = node();
    g.set(now0(), Key::STATUS, "NORMAL").unwrap();
    for page in [0u8, 1] {
        let (syn, n) = fullest_syn(page);
        assert!(syn.len() <= 65_000 && n > 10_000, "{} bytes, {n} digests", syn.len());
        let before = known(&g);
        let (out, _, _) = measure(|| g.handle_datagram(now0(), &syn));
        assert_eq!(out.transmits.len(), 1, "one ACK");
        let ack = &out.transmits[0].bytes;
        assert!(ack.len() <= g.config().max_message_bytes, "page {page}: an ACK of {} bytes", ack.len());
        let Message::Ack(ack) = codec().decode(ack).unwrap().message else { panic!("not an ACK") };
        // it asks for the nodes it does not know (as many as fit), and a range page
        // that covers this node but does not list it gets its state pushed
        assert!(ack.requests.len() > 5_000, "{} requests", ack.requests.len());
        let pushed: Vec<NodeId> = ack.deltas.iter().map(|d| d.node.clone()).collect();
        assert_eq!(pushed, if page == 1 { vec![me()] } else { vec![] });
        assert_eq!(known(&g), before, "a SYN changes nothing");
        assert!(g.detector(&id(1u16.to_be_bytes())).is_none(), "no peer for a node only named");
    }
    // a compact page of the most entries: its members are not ours, so the answer
    // asks for a full page instead
    let n = 8 * (65_000 - Bytes::header(SYN).len() - 25) / 17;
    let mut b = Bytes::header(SYN).u8(2).u8(0).u8(0).u64(1).u64(2).varint(n as u64);
    for i in 0..n {
        b = b.u16(i as u16);
    }
    // every member quiet
    for i in 0..n.div_ceil(8) {
        b = b.u8(if 8 * (i + 1) <= n { 0xff } else { (1u8 << (n % 8)) - 1 });
    }
    let before = known(&g);
    let contexts = g.metrics().context_errors;
    let out = g.handle_datagram(now0(), &b.0);
    let Message::Ack(ack) = codec().decode(&out.transmits[0].bytes).unwrap().message else { panic!("not an ACK") };
    assert_eq!(ack.resend, Some(NodeRange::FULL));
    assert!(ack.requests.is_empty() && ack.deltas.is_empty());
    assert_eq!(g.metrics().context_errors, contexts + 1);
    assert_eq!(known(&g), before);
}

/// The fastest of a few runs of `f`.
fn fastest(mut f: impl FnMut()) -> Duration {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn a_delta_with_the_most_fields_that_fit_64_kb_costs_n_log_n() {
    let codec = codec();
    let n = (65_000 - Bytes::header(ACK2).len() - 16) / 5;
    let all = most_fields(n).0;
    let sixteenth = most_fields(n / 16).0;
    assert!(all.len() <= 65_000 && n > 12_000, "{} bytes, {n} fields", all.len());
    let Message::Ack2(decoded) = codec.decode(&all).unwrap().message else { panic!("not an ACK2") };
    assert_eq!(decoded.deltas[0].values.len(), n);
    // sixteen times the fields may cost a few times sixteen as much (n log n, and
    // caches), not 256 times (a quadratic duplicate-key check cost most of a
    // second per datagram)
    let (t_all, t_part) = (fastest(|| drop(codec.decode(&all))), fastest(|| drop(codec.decode(&sixteenth))));
    let ratio = t_all.as_secs_f64() / t_part.as_secs_f64();
    println!("decoding: {t_all:?} for {n} fields, {t_part:?} for a sixteenth ({ratio:.0} times)");
    assert!(ratio < 120.0, "decoding: {t_all:?} for {n} fields, {t_part:?} for a sixteenth");

    // the view refuses it by its key limit before looking at each field
    let mut g = node();
    let out = deliver_ack2(&mut g, now0(), "p", decoded.deltas.clone());
    assert!(out.events.is_empty());
    assert_eq!(g.metrics().ignored_deltas[5], 1, "counted as over the limits");
    assert!(g.view().get(&id("x")).is_none());
    // and with a limit that lets it in, applying is n log n too
    let limits = Limits { max_keys_per_node: 1 << 20, ..Limits::default() };
    let Message::Ack2(sixteenth) = codec.decode(&sixteenth).unwrap().message else { panic!("not an ACK2") };
    let apply = |deltas: &[Delta]| {
        let mut view = View::new(me(), Generation(T0)).with_limits(limits.clone());
        assert_eq!(view.apply(deltas, now0()).changes.len(), 1);
    };
    let (t_all, t_part) = (fastest(|| apply(&decoded.deltas)), fastest(|| apply(&sixteenth.deltas)));
    let ratio = t_all.as_secs_f64() / t_part.as_secs_f64();
    println!("applying: {t_all:?} for {n} fields, {t_part:?} for a sixteenth ({ratio:.0} times)");
    assert!(ratio < 120.0, "applying: {t_all:?} for {n} fields, {t_part:?} for a sixteenth");
}

#[test]
fn node_ids_sharing_their_first_16_bytes_are_found_in_log_time() {
    // ids a peer chose to share a 16-byte prefix: lookups compare them in full
    let shared = |i: u32| {
        let mut b = b"0123456789abcdef".to_vec();
        b.extend_from_slice(&i.to_be_bytes());
        NodeId::new(b).unwrap()
    };
    let fill = |n: u32| {
        let mut view = View::new(me(), Generation(T0));
        let deltas: Vec<Delta> = (0..n).map(|i| delta(shared(i), T0, 0, Some(1), &[])).collect();
        for chunk in deltas.chunks(2_000) {
            view.apply(chunk, now0());
        }
        assert_eq!(view.len(), n as usize + 1);
        view
    };
    let (small, large) = (fill(2_000), fill(32_000));
    let lookups = |view: &View, n: u32| {
        let digests: Vec<Digest> = (0..2_000u32)
            .map(|i| Digest {
                node: shared(i * (n / 2_000)),
                generation: Generation(T0),
                max_version: Version(1),
                purged: Version::ZERO,
            })
            .collect();
        let syn = Syn { page: DigestPage::Listed(digests) };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        fastest(|| assert!(handle_syn(view, &syn, Budget::unlimited(), &mut rng).message.deltas.is_empty()))
    };
    let (t_small, t_large) = (lookups(&small, 2_000), lookups(&large, 32_000));
    // sixteen times the nodes: a binary search costs a little more, a scan of the
    // shared-prefix run sixteen times more (300 ms per such SYN at 60,000 nodes)
    let ratio = t_large.as_secs_f64() / t_small.as_secs_f64();
    assert!(ratio < 5.0, "2,000 lookups: {t_small:?} among 2,000 nodes, {t_large:?} among 32,000");
}

// ----- a million unknown node ids -----

const MILLION: u32 = 1_000_000;

/// An ACK2 from "p" with deltas of `n` new nodes from `first` (3-byte ids,
/// heartbeat 1, no values: 12 bytes each).
fn ack2_of_new_nodes(first: u32, n: u32) -> Vec<u8> {
    let mut b = Bytes::header(ACK2).varint(u64::from(n));
    for i in first..first + n {
        b = b.raw(&[3]).raw(&i.to_be_bytes()[1..]).varint(T0).raw(&[2, 0, 0]);
    }
    b.u8(0).0
}

fn small_node_limit() -> Config {
    let mut config = Config::new(cluster());
    config.limits.max_nodes = 1_000;
    config
}

#[test]
fn a_million_unknown_node_ids_in_deltas_leave_at_most_max_nodes() {
    let mut g = node_with(small_node_limit());
    let (mut sent, mut frames, mut baseline) = (0u32, 0, 0);
    while sent < MILLION {
        let n = 5_300.min(MILLION - sent);
        let bytes = ack2_of_new_nodes(sent, n);
        assert!(bytes.len() <= 65_000);
        open_exchange(&mut g, now0(), "p");
        let out = g.handle_datagram(now0(), &bytes);
        if frames == 0 {
            // the first nodes join, and each is asked directly whether it is up
            assert_eq!(out.events.len(), 999);
            assert_eq!(out.transmits.len(), 999);
        } else {
            assert!(out.events.is_empty() && out.transmits.is_empty());
        }
        drop((out, bytes));
        sent += n;
        frames += 1;
        if frames == 2 {
            baseline = live();
        }
    }
    assert_eq!(g.view().len(), 1_000, "the view holds max_nodes, this node included");
    let m = g.metrics();
    assert_eq!(m.ignored_deltas, [0, 0, 0, 0, 0, u64::from(MILLION - 999), 0], "every node over the limit counted");
    assert_eq!((m.received[2], m.unsolicited, m.decode_errors), (frames, 0, 0));
    assert_eq!(m.echoes, 999);
    assert!(g.detector(&id3(998)).is_some(), "a peer for each node in the view");
    assert!(g.detector(&id3(999)).is_none() && g.detector(&id3(MILLION - 1)).is_none(), "and for no other");
    let grown = live() - baseline;
    assert!(grown < 64 * 1024, "{grown} bytes more after {} more frames", frames - 2);
}

#[test]
fn a_million_unknown_node_ids_in_digests_leave_no_state() {
    let mut g = node_with(small_node_limit());
    let before = known(&g);
    let (mut named, mut frames, mut baseline) = (0u32, 0u64, 0);
    while named < MILLION {
        let n = 5_900.min(MILLION - named);
        let syn = big_syn(b"p", named, n);
        assert!(syn.len() <= 65_000);
        let out = g.handle_datagram(now0(), &syn);
        assert_eq!(out.transmits.len(), 1);
        assert!(out.transmits[0].bytes.len() <= 65_000, "an ACK within the budget");
        assert!(out.events.is_empty());
        drop((out, syn));
        named += n;
        frames += 1;
        if frames == 2 {
            baseline = live();
        }
    }
    assert_eq!(known(&g), before, "nodes only named are not learned");
    assert_eq!(g.metrics().sent[1], frames, "every SYN answered");
    assert!(g.detector(&id3(0)).is_none() && g.detector(&id3(MILLION - 1)).is_none());
    let grown = live() - baseline;
    assert!(grown < 64 * 1024, "{grown} bytes more after {} more SYNs", frames - 2);
}

// ----- a million sender ids -----

/// Counts of the messages `stranger_burst` sent, by kind (SYN, ACK, ACK2, ECHO,
/// ECHO_REPLY, SHUTDOWN).
fn stranger_burst(g: &mut Gossiper<ChaCha8Rng>, senders: u32, now: Timestamp) -> [u64; 6] {
    let ours = g.view().digest(&me()).unwrap();
    let mut counts = [0u64; 6];
    for i in 0..senders {
        let kind = (i % 6) as usize;
        let message = match kind {
            0 => Message::Syn(Syn { page: DigestPage::Listed(vec![ours.clone()]) }),
            1 => Message::Ack(Ack::default()),
            2 => ack2(vec![]),
            3 => Message::Echo(Echo { nonce: u64::from(i) }),
            4 => Message::EchoReply(Echo { nonce: u64::from(i) }),
            _ => Message::Shutdown,
        };
        let out = g.handle_datagram(now, &frame_in(&cluster(), &id3(i), T0, message));
        assert!(out.events.is_empty());
        assert_eq!(out.transmits.len(), usize::from(kind == 0 || kind == 3), "only SYNs and ECHOs are answered");
        counts[kind] += 1;
    }
    counts
}

#[test]
fn a_million_distinct_sender_ids_add_no_peers_and_are_forgotten_by_the_next_round() {
    let mut g = node_with(small_node_limit());
    g.handle_timeout(now0() + Duration::from_secs(1)); // the first round
    let before = known(&g);
    let baseline = live();
    let now = now0() + Duration::from_millis(1_500);
    let counts = stranger_burst(&mut g, MILLION, now);
    assert_eq!(known(&g), before, "strangers' messages change no state");
    let m = g.metrics().clone();
    assert_eq!(m.received, counts);
    assert_eq!(m.unsolicited, counts[1] + counts[2] + counts[4] + counts[5], "their answers answer nothing of ours");
    assert_eq!((m.sent[1], m.sent[4]), (counts[0], counts[3]));
    for i in [0, 1, 2, 3, 4, 5, MILLION - 1] {
        assert!(g.detector(&id3(i)).is_none() && !g.is_up(&id3(i)), "no peer for sender {i}");
    }
    // what is kept for their exchanges goes at the next round
    let out = g.handle_timeout(now0() + Duration::from_secs(2));
    assert!(out.transmits.is_empty(), "no SYN to any of them");
    drop(out);
    let kept = live() - baseline;
    assert!(kept < 64 * 1024, "{kept} bytes still held after the next round");
}

#[test]
fn a_million_distinct_sender_ids_between_two_rounds_keep_memory_bounded() {
    let mut g = node_with(small_node_limit());
    g.handle_timeout(now0() + Duration::from_secs(1));
    let now = now0() + Duration::from_millis(1_500);
    let (_, peak, _) = measure(|| stranger_burst(&mut g, MILLION, now));
    // bounded by the configuration: say a few hundred bytes per node the view may hold
    let bound = 256 * g.config().limits.max_nodes as i64;
    assert!(peak <= bound, "a burst from a million sender ids took {peak} bytes (bound {bound})");
}

// ----- the shadow round -----

fn shadow_node(max_nodes: usize) -> Gossiper<ChaCha8Rng> {
    let mut config = Config::new(cluster());
    config.seeds = vec![id("s")];
    config.limits.max_nodes = max_nodes;
    Gossiper::new_shadow(config, me(), Generation(T0), now0(), ChaCha8Rng::seed_from_u64(7)).unwrap()
}

#[test]
fn a_shadow_round_keeps_at_most_max_nodes_states() {
    let mut g = shadow_node(1_000);
    g.handle_timeout(now0()); // the empty SYN to the seed
    // the seed's answers keep this node's own entry alive without a HOST_ID, so the
    // round goes on; each brings 5,000 more nodes
    let own = |hb: u64, values: &[(Key, &str, u64)]| delta(me(), T0, 0, Some(hb), values);
    let mut largest = 0;
    let (_, peak, kept) = measure(|| {
        for k in 0..10u32 {
            let mut deltas: Vec<Delta> = (0..5_000).map(|i| delta(id3(k * 5_000 + i), T0, 0, Some(1), &[])).collect();
            deltas.push(own(1, &[(Key::STATUS, "NORMAL", 2)]));
            let bytes = frame("s", Message::Ack(Ack { deltas, ..Ack::default() }));
            largest = largest.max(bytes.len() as i64);
            let out = g.handle_datagram(now0(), &bytes);
            assert!(out.events.is_empty(), "the round goes on");
        }
    });
    // what stays is bounded by max_nodes; the peak adds one message's decoding
    assert!(kept <= 1_000 * 1_024, "{kept} bytes kept");
    let ack = Ack { deltas: vec![own(3, &[(Key::HOST_ID, "h", 4)])], ..Ack::default() };
    let out = g.handle_datagram(now0(), &frame("s", Message::Ack(ack)));
    let Some(Event::ShadowRound { states, .. }) = out.events.first() else { panic!("{:?}", out.events) };
    assert!(states.len() <= 1_000, "the shadow round learned {} states", states.len());
    assert!(peak <= 1_000 * 1_024 + DECODE_BYTES_PER_INPUT_BYTE * largest, "{peak} bytes at the peak");
}

#[test]
fn a_shadow_round_ignores_acks_from_nodes_it_did_not_ask() {
    let mut g = shadow_node(1_000);
    g.handle_timeout(now0()); // the empty SYN to the seed "s"
    let ack = Ack { deltas: vec![delta(id("x"), T0, 0, Some(1), &[(Key::HOST_ID, "h", 2)])], ..Ack::default() };
    let out = g.handle_datagram(now0(), &frame("stranger", Message::Ack(ack)));
    assert!(out.events.is_empty(), "a stranger ended the shadow round: {:?}", out.events);
    assert_eq!(g.metrics().unsolicited, 1);
}

/// Answers that each stay within the key limit cannot join beyond it, and every
/// delta a shadow round drops is counted as `View::apply` counts it.
#[test]
fn a_shadow_round_keeps_at_most_max_keys_per_node_keys_and_counts_what_it_drops() {
    let mut config = Config::new(cluster());
    config.seeds = vec![id("s")];
    config.limits.max_keys_per_node = 4;
    let mut g = Gossiper::new_shadow(config, me(), Generation(T0), now0(), ChaCha8Rng::seed_from_u64(7)).unwrap();
    g.handle_timeout(now0()); // the empty SYN to the seed
    let own = delta(me(), T0, 0, Some(1), &[(Key::STATUS, "NORMAL", 2)]);
    let keys: Vec<Key> = (0..20).map(|i| Key::new(&format!("k{i}")).unwrap()).collect();
    for round in 0..5u64 {
        // four keys of node x each time, four new ones; nonsense for nodes y and z
        let values: Vec<(Key, &str, u64)> =
            (0..4).map(|i| (keys[(round * 4 + i) as usize].clone(), "v", round * 4 + i + 1)).collect();
        let deltas = vec![
            own.clone(),
            delta(id("x"), T0, 0, Some(1), &values),
            delta(id("y"), u64::MAX, 0, Some(1), &[]),
            delta(id("z"), T0, 5, Some(9), &[]),
        ];
        let out = g.handle_datagram(now0(), &frame("s", Message::Ack(Ack { deltas, ..Ack::default() })));
        assert!(out.events.is_empty(), "the round goes on");
    }
    let m = g.metrics();
    assert_eq!(m.ignored_deltas[1], 5, "generations over a year ahead");
    assert_eq!(m.ignored_deltas[3], 5, "partial deltas");
    assert_eq!(m.ignored_deltas[5], 4, "joins beyond the key limit");
    let ack = Ack { deltas: vec![delta(me(), T0, 0, Some(3), &[(Key::HOST_ID, "h", 4)])], ..Ack::default() };
    let out = g.handle_datagram(now0(), &frame("s", Message::Ack(ack)));
    let Some(Event::ShadowRound { states, .. }) = out.events.first() else { panic!("{:?}", out.events) };
    let x = states.iter().find(|(n, _)| *n == id("x")).map(|(_, s)| s).expect("x learned");
    assert_eq!(x.values().len(), 4, "the first answer's keys, no more");
    assert!(states.iter().all(|(n, _)| *n != id("y") && *n != id("z")));
}

/// Echo replies that answer no echo in flight and shutdown notices from nodes
/// (or generations) this node does not hold change nothing and are counted.
#[test]
fn stray_echo_replies_and_shutdown_notices_are_counted_in_unsolicited() {
    let mut g = node();
    // a known peer, up at generation T0
    deliver_ack2(&mut g, now0(), "p", vec![delta(id("p"), T0, 0, Some(1), &[])]);
    let strays = [
        frame("p", Message::EchoReply(Echo { nonce: 42 })),
        frame("stranger", Message::EchoReply(Echo { nonce: 42 })),
        frame("stranger", Message::Shutdown),
        frame_in(&cluster(), &id("p"), T0 + 1, Message::Shutdown),
    ];
    for (i, bytes) in strays.iter().enumerate() {
        let kind = if i < 2 { 4 } else { 5 };
        assert_refused(&mut g, now0(), bytes, |m| {
            m.received[kind] += 1;
            m.unsolicited += 1;
        });
    }
}

// ----- absurd generations and versions -----

#[test]
fn generation_u64_max_and_generations_over_a_year_ahead_are_ignored() {
    let mut g = node();
    let future = [u64::MAX, u64::MAX - 1, T0 + YEAR + 1, T0 + 2 * YEAR];
    for (i, generation) in future.iter().enumerate() {
        open_exchange(&mut g, now0(), "p");
        let bytes = frame("p", ack2(vec![delta(id3(i as u32), *generation, 0, Some(1), &[])]));
        assert_refused(&mut g, now0(), &bytes, |m| {
            m.received[2] += 1;
            m.ignored_deltas[1] += 1;
        });
    }
    // up to a year ahead is believed
    let out = deliver_ack2(&mut g, now0(), "p", vec![delta(id("near"), T0 + YEAR, 0, Some(1), &[])]);
    assert!(matches!(out.events[..], [Event::Joined { .. }]), "{:?}", out.events);
    // a node known at a sane generation is not restarted by a claim of u64::MAX
    deliver_ack2(&mut g, now0(), "p", vec![delta(id("x"), T0, 0, Some(1), &[(Key::STATUS, "NORMAL", 2)])]);
    let x = g.view().get(&id("x")).unwrap().clone();
    let out = deliver_ack2(&mut g, now0(), "p", vec![delta(id("x"), u64::MAX, 0, Some(1), &[])]);
    assert!(out.events.is_empty());
    assert_eq!(g.view().get(&id("x")), Some(&x));
    assert_eq!(g.metrics().ignored_deltas[1], 5);
    // a digest of u64::MAX is asked for (as any newer generation), and its answer
    // then refused as above: nothing is kept
    let syn = Syn {
        page: DigestPage::Listed(vec![Digest {
            node: id("x"),
            generation: Generation(u64::MAX),
            max_version: Version(u64::MAX),
            purged: Version(u64::MAX),
        }]),
    };
    let before = known(&g);
    let out = g.handle_datagram(now0(), &frame("p", Message::Syn(syn)));
    let Message::Ack(ack) = codec().decode(&out.transmits[0].bytes).unwrap().message else { panic!("not an ACK") };
    assert_eq!(ack.requests.len(), 1);
    assert_eq!(known(&g), before);
}

#[test]
fn versions_at_u64_max_never_wrap() {
    let codec = codec();
    let max = u64::MAX;
    // an ACK2 of one delta of "x", up to its flags (where they are)
    let head = || {
        let b = Bytes::header(ACK2).u8(1).id(b"x").varint(T0);
        let at = b.len();
        (b, at)
    };
    // a heartbeat above `from` past u64::MAX
    let (b, at) = head();
    let b = b.u8(0x03).varint(max - 1).varint(1).u8(0).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::VersionOverflow { at }));
    // a stale heartbeat below 0
    let (b, at) = head();
    let b = b.u8(0x0b).varint(5).varint(6).u8(0).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::VersionOverflow { at }));
    // a field version past u64::MAX
    let (b, at) = head();
    let b = b.u8(0x01).varint(max - 1).u8(1).u8(0).u8(0).varint(1).u8(0).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::VersionOverflow { at: at + 12 }));
    // a second field past it
    let (b, at) = head();
    let b = b.u8(0x01).varint(max - 1).u8(2).raw(&[0, 0, 0, 0]).raw(&[0, 1]).varint(0).u8(0).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::VersionOverflow { at: at + 16 }));
    // a compact field offset past it
    let b = Bytes::header(ACK2).u8(0).u8(1).u8(0).u8(0).u64(0).u64(0).u8(1);
    let at = b.len() + 3;
    let b = b.u8(0).u8(0).u8(2).raw(&[0, 0]).varint(max - 1).u8(0).raw(&[0, 1]).varint(max).u8(0).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::VersionOverflow { at: at + 13 }));
    // u64::MAX itself is a version like any other
    let at_max = delta(id("x"), T0, max - 2, Some(max), &[(Key::STATUS, "NORMAL", max - 1)]);
    let bytes = frame("p", ack2(vec![at_max.clone()]));
    let Message::Ack2(back) = codec.decode(&bytes).unwrap().message else { panic!("not an ACK2") };
    assert_eq!(back.deltas, [at_max]);

    // a peer at u64::MAX is held, answered and re-sent without wrapping
    let mut g = node();
    let whole = delta(id("x"), T0, 0, Some(max), &[(Key::STATUS, "NORMAL", max - 1)]);
    deliver_ack2(&mut g, now0(), "p", vec![whole.clone()]);
    assert_eq!(g.view().get(&id("x")).unwrap().max_version(), Version(max));
    let syn = |v: u64| {
        let digest =
            Digest { node: id("x"), generation: Generation(T0), max_version: Version(v), purged: Version::ZERO };
        frame("q", Message::Syn(Syn { page: DigestPage::Listed(vec![digest]) }))
    };
    let out = g.handle_datagram(now0(), &syn(5));
    let Message::Ack(ack) = codec.decode(&out.transmits[0].bytes).unwrap().message else { panic!("not an ACK") };
    assert_eq!(ack.deltas, [Delta { from: Version(5), ..whole }], "sent from 5 up to u64::MAX");
    let out = g.handle_datagram(now0(), &syn(max));
    let Message::Ack(ack) = codec.decode(&out.transmits[0].bytes).unwrap().message else { panic!("not an ACK") };
    assert!(ack.deltas.is_empty() && ack.requests.is_empty(), "equal at u64::MAX");
    let before = known(&g);
    let out = deliver_ack2(&mut g, now0(), "p", vec![delta(id("x"), T0, max, Some(max), &[])]);
    assert!(out.events.is_empty());
    assert_eq!(known(&g), before, "nothing above u64::MAX to take");

    // this node's own counter at u64::MAX: every local write is refused, and
    // nothing changes (advance_local_version used to raise the counter first)
    let mut view = View::new(me(), Generation(T0));
    assert_eq!(view.advance_local_version(Version(max - 1)), Ok(Version(max)));
    let exhausted = view.clone();
    let revision = view.revision();
    assert_eq!(view.beat(), Err(WriteError::VersionsExhausted));
    assert_eq!(view.set_local(Key::STATUS, "NORMAL"), Err(WriteError::VersionsExhausted));
    assert_eq!(view.advance_local_version(Version(max)), Err(WriteError::VersionsExhausted));
    assert_eq!((view.revision(), view.local_state()), (revision, exhausted.local_state()));
    let mut fresh = View::new(me(), Generation(T0));
    let revision = fresh.revision();
    assert_eq!(fresh.advance_local_version(Version(max)), Err(WriteError::VersionsExhausted));
    assert_eq!(fresh.revision(), revision);
    assert_eq!(fresh.local_state().max_version(), Version(1), "a failed advance leaves the counter alone");
}

/// `Hasher64` of docs/wire.md §9.4, for computing the check of a hand-made compact
/// part.
fn hash64(domain: u64, words: &[u64]) -> u64 {
    // Hasher64x4 of docs/wire.md §9.4: four chains, folded by one Hasher64
    const K0: u64 = 0x9e37_79b9_7f4a_7c15;
    const K1: u64 = 0xbf58_476d_1ce4_e5b9;
    const K2: u64 = 0x94d0_49bb_1331_11eb;
    let mix = |state: u64, w: u64| ((state ^ w).wrapping_mul(K1)).rotate_left(29).wrapping_mul(K2);
    let mut lanes = [0, 1, 2, 3].map(|j| (domain ^ K0).wrapping_add(j));
    for (n, w) in words.iter().enumerate() {
        lanes[n % 4] = mix(lanes[n % 4], *w);
    }
    let state = lanes.into_iter().chain([words.len() as u64]).fold(domain ^ K0, mix);
    let mut z = state ^ 5u64.wrapping_mul(K0);
    z = (z ^ (z >> 30)).wrapping_mul(K1);
    z = (z ^ (z >> 27)).wrapping_mul(K2);
    z ^ (z >> 31)
}

const ACK2_CHECK: u64 = 0x6163_6b32_6368_6b31;

#[test]
fn compact_versions_that_would_overflow_are_dropped_as_a_context_error() {
    // the check as docs/wire.md §13.4 computes it
    assert_eq!(hash64(ACK2_CHECK, &[0x9f8a_b3e3_297e_ccd5, 0, 3, 2, 70_001]), 0xa73f_a26e_76dc_bb44);
    let max = u64::MAX;
    let mut g = node();
    deliver_ack2(&mut g, now0(), "p", vec![delta(id("x"), T0, 0, Some(max - 2), &[])]);
    let DigestPage::Compact(page) = build_syn(g.view(), Budget::unlimited(), None, PageForm::Compact).unwrap().syn.page
    else {
        panic!("a compact page")
    };
    let members = page.context().members;
    // a compact delta of member 1 ("x") from its max version (which the receiver
    // restores from the low 16 bits), with a right check
    let compact = |flags: u8, tail: &[u8]| {
        let check = hash64(ACK2_CHECK, &[members, 1, max - 2]);
        let b = Bytes::header(ACK2).u8(0).u8(1).u8(0).u8(0).u64(members).u64(check).u8(1);
        b.u8(1).u8(flags).u16((max - 2) as u16).raw(tail).0
    };
    let overflowing = [
        compact(0x01, &[1, 0, 0, 10, 1]),            // STATUS at from + 11
        compact(0x03, &[5, 0]),                      // heartbeat at from + 6
        compact(0x01, &[2, 0, 0, 0, 1, 0, 1, 1, 1]), // STATUS at from + 1, LOAD at from + 3
    ];
    for bytes in &overflowing {
        assert!(codec().decode(bytes).is_ok(), "the codec cannot know the receiver's versions");
        open_exchange(&mut g, now0(), "p");
        assert_refused(&mut g, now0(), bytes, |m| {
            m.received[2] += 1;
            m.context_errors += 1;
        });
    }
    // the same with versions that fit is taken (so the check was right)
    open_exchange(&mut g, now0(), "p");
    let out = g.handle_datagram(now0(), &compact(0x01, &[1, 0, 0, 0, 1]));
    assert!(matches!(&out.events[..], [Event::Changed { key, .. }] if *key == Key::STATUS), "{:?}", out.events);
    assert_eq!(g.view().get(&id("x")).unwrap().get(&Key::STATUS).unwrap().version, Version(max - 1));
    assert_eq!(g.metrics().context_errors, 3);
}

// ----- a peer claiming our own node -----

#[test]
fn a_peer_claiming_our_own_node_at_version_u64_max_makes_us_renew_our_generation() {
    let mut g = node();
    g.set(now0(), Key::STATUS, "NORMAL").unwrap();
    let mine = g.view().local_state().clone();
    // a claim of what we hold, or less: counted, nothing else
    open_exchange(&mut g, now0(), "p");
    let old = frame("p", ack2(vec![delta(me(), T0, 0, Some(1), &[(Key::STATUS, "LEFT", 2)])]));
    assert_refused(&mut g, now0(), &old, |m| {
        m.received[2] += 1;
        m.ignored_deltas[0] += 1;
    });
    // our state at a version past ours (u64::MAX): never taken, and this node moves
    // to a newer generation rather than to version u64::MAX + 1
    let claim = delta(me(), T0, 0, Some(u64::MAX), &[(Key::STATUS, "LEFT", 5)]);
    let out = deliver_ack2(&mut g, now0(), "p", vec![claim.clone()]);
    assert_eq!(out.events, [Event::GenerationRenewed { previous: Generation(T0), generation: Generation(T0 + 1) }]);
    let now = g.view().local_state();
    assert_eq!(now.generation(), Generation(T0 + 1));
    assert_eq!(now.live_value(&Key::STATUS), mine.live_value(&Key::STATUS), "its own values kept, not the claim's");
    assert!(now.max_version() < Version(10), "a fresh counter: {}", now.max_version());
    assert_eq!(g.metrics().ignored_deltas[0], 2);
    // the same claim again is of an older generation now: nothing more happens
    let out = deliver_ack2(&mut g, now0(), "p", vec![claim]);
    assert!(out.events.is_empty());
    assert_eq!(g.view().local_generation(), Generation(T0 + 1));
    assert_eq!(g.metrics().ignored_deltas[0], 3);
    // a digest claiming our node at u64::MAX is answered with a request for it
    // (the answer then goes the way above)
    let digest =
        Digest { node: me(), generation: Generation(T0 + 1), max_version: Version(u64::MAX), purged: Version::ZERO };
    let out = g.handle_datagram(now0(), &frame("p", Message::Syn(Syn { page: DigestPage::Listed(vec![digest]) })));
    let Message::Ack(ack) = codec().decode(&out.transmits[0].bytes).unwrap().message else { panic!("not an ACK") };
    assert_eq!(ack.requests.iter().map(|d| d.node.clone()).collect::<Vec<_>>(), [me()]);
}

#[test]
fn a_peer_claiming_our_own_node_at_generation_u64_max_is_ignored() {
    let mut g = node();
    for generation in [u64::MAX, u64::MAX - 1, T0 + YEAR + 1] {
        open_exchange(&mut g, now0(), "p");
        let claim = frame("p", ack2(vec![delta(me(), generation, 0, Some(1), &[])]));
        assert_refused(&mut g, now0(), &claim, |m| {
            m.received[2] += 1;
            m.ignored_deltas[0] += 1;
        });
    }
    // a claim within a year is believed: this node moves past it (so a peer can
    // push a node's generation up to a year ahead of its clock, never further)
    let out = deliver_ack2(&mut g, now0(), "p", vec![delta(me(), T0 + 30 * DAY, 0, Some(1), &[])]);
    let renewed = Generation(T0 + 30 * DAY + 1);
    assert_eq!(out.events, [Event::GenerationRenewed { previous: Generation(T0), generation: renewed }]);
    assert_eq!(g.view().local_generation(), renewed);
}

// ----- duplicates -----

#[test]
fn duplicate_keys_in_one_delta_are_rejected() {
    let codec = codec();
    let mut g = node();
    // full delta: STATUS twice
    let b = Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).u8(2);
    let second = b.len() + 4;
    let b = b.raw(&[0, 0, 0, 1]).raw(&[0, 0, 0, 1]).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::DuplicateKey { at: second }));
    assert_refused(&mut g, now0(), &b.0, |m| m.decode_errors += 1);
    // a custom key twice, far apart (past the few fields checked by a scan)
    let mut b = Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).u8(40);
    let mut at = 0;
    for i in 0..40u8 {
        if i == 39 {
            at = b.len();
        }
        b = b.u8(1).u8(if i == 39 { b'!' } else { b'!' + i }).u8(0).u8(1);
    }
    let b = b.u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::DuplicateKey { at }));
    assert_refused(&mut g, now0(), &b.0, |m| m.decode_errors += 1);
    // a well-known key spelled out is the same key, and not canonical
    let b = Bytes::header(ACK2).u8(1).id(b"x").varint(T0).u8(0).u8(1);
    let at = b.len();
    let b = b.id(b"STATUS").u8(0).u8(1).u8(0);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::BadKey { at }));
    assert_refused(&mut g, now0(), &b.0, |m| m.decode_errors += 1);
    // compact delta: a key twice
    let b = Bytes::header(ACK2).u8(0).u8(1).u8(0).u8(0).u64(0).u64(0).u8(1).u8(0).u8(0).u8(2);
    let second = b.len() + 4;
    let b = b.raw(&[0, 3, 0, 1]).raw(&[0, 3, 0, 1]);
    assert_eq!(codec.decode(&b.0), Err(DecodeError::DuplicateKey { at: second }));
    assert_refused(&mut g, now0(), &b.0, |m| m.decode_errors += 1);
    // built by hand, not from the wire: the view refuses it
    for n in [2usize, 40] {
        let mut view = View::new(me(), Generation(T0));
        let mut values: Vec<(Key, VersionedValue)> = (0..n - 1)
            .map(|i| (Key::new(format!("k{i}").as_str()).unwrap(), VersionedValue::live("v", Version(i as u64 + 2))))
            .collect();
        values.push((Key::new("k0").unwrap(), VersionedValue::live("w", Version(n as u64 + 1))));
        let d = Delta { values, ..delta(id("x"), T0, 0, Some(1), &[]) };
        let applied = view.apply(&[d], now0());
        assert_eq!(applied.ignored, [Ignored::Malformed { node: id("x") }], "{n} fields");
        assert_eq!(view.len(), 1);
    }
}

#[test]
fn duplicate_node_entries_in_one_message_are_rejected() {
    let codec = codec();
    let mut g = node();
    let digest = |id: &[u8]| Bytes::default().id(id).varint(T0).u8(1).u8(0).0;
    let empty_delta = |id: &[u8]| Bytes::default().id(id).varint(T0).u8(0).u8(0).0;
    let list = |entries: &[Vec<u8>]| entries.concat();
    let (d, e) = (digest(b"x").len(), empty_delta(b"x").len());
    let cases = [
        // (frame, offset of the offending entry)
        (Bytes::header(SYN).u8(0).u8(2), list(&[digest(b"x"), digest(b"x")]), d, vec![]),
        (Bytes::header(SYN).u8(0).u8(2), list(&[digest(b"y"), digest(b"x")]), d, vec![]),
        (Bytes::header(SYN).u8(1).u8(0).u8(0).u8(2), list(&[digest(b"x"), digest(b"x")]), d, vec![]),
        (Bytes::header(ACK).u8(2), list(&[digest(b"x"), digest(b"x")]), d, vec![0, 0, 0]),
        (Bytes::header(ACK).u8(0).u8(2), list(&[empty_delta(b"x"), empty_delta(b"x")]), e, vec![0, 0]),
        (Bytes::header(ACK2).u8(2), list(&[empty_delta(b"x"), empty_delta(b"x")]), e, vec![0]),
    ];
    for (head, entries, second, tail) in cases {
        let at = head.len() + second;
        let bytes = head.raw(&entries).raw(&tail).0;
        assert_eq!(codec.decode(&bytes), Err(DecodeError::NotAscending { at }), "{bytes:02x?}");
        assert_refused(&mut g, now0(), &bytes, |m| m.decode_errors += 1);
    }

    // one node in both an ACK's full deltas and its compact deltas (both lists are
    // well formed): applied as if one after the other
    let (a, _) = compact_views();
    let Some((_, Message::Ack(mut ack))) = sample_messages().into_iter().find(|(name, _)| *name == "ack-compact")
    else {
        panic!("no compact ACK")
    };
    ack.deltas = vec![delta(id("b"), T0 + 50, 4, Some(8), &[(Key::DC, "dc2", 5), (Key::RACK, "r9", 7)])];
    let received = handle_ack(&a, &ack);
    assert!(received.context_error.is_none());
    assert_eq!(received.deltas.iter().filter(|d| d.node == id("b")).count(), 2);
    let mut together = a.clone();
    together.apply(&received.deltas, now0());
    let mut apart = a.clone();
    for d in &received.deltas {
        apart.apply(std::slice::from_ref(d), now0());
    }
    assert_eq!(together.get(&id("b")), apart.get(&id("b")));
    assert_eq!(together.get(&id("b")).unwrap().max_version(), Version(8));
}

// ----- replayed and reordered messages -----

fn pair() -> (Gossiper<ChaCha8Rng>, Gossiper<ChaCha8Rng>) {
    let mut config = Config::new(cluster());
    config.seeds = vec![id("q")];
    let mut p = Gossiper::new(config.clone(), id("p"), Generation(T0), now0(), ChaCha8Rng::seed_from_u64(1)).unwrap();
    let mut q = Gossiper::new(config, id("q"), Generation(T0), now0(), ChaCha8Rng::seed_from_u64(2)).unwrap();
    p.set(now0(), Key::DC, "dc1").unwrap();
    q.set(now0(), Key::STATUS, "NORMAL").unwrap();
    (p, q)
}

/// The one message of `kind` among a call's transmits.
fn only(out: &rumormill::Output, kind: u8) -> Vec<u8> {
    let found: Vec<&Vec<u8>> = out.transmits.iter().map(|t| &t.bytes).filter(|b| b[3] == kind).collect();
    assert_eq!(found.len(), 1, "one message of kind {kind}");
    found[0].clone()
}

#[test]
fn replayed_syn_ack_and_ack2_change_nothing() {
    let (mut p, mut q) = pair();
    let t = now0() + Duration::from_secs(1);
    // one real round: p's SYN to its seed q, q's ACK, p's ACK2
    let syn = only(&p.handle_timeout(t), SYN);
    let ack = only(&q.handle_datagram(t, &syn), ACK);
    let ack2 = only(&p.handle_datagram(t, &ack), ACK2);
    q.handle_datagram(t, &ack2);
    assert!(p.view().get(&id("q")).is_some() && q.view().get(&id("p")).is_some(), "the round worked");

    // the ACK again: it answers no SYN in flight
    assert_refused(&mut p, t, &ack, |m| {
        m.received[1] += 1;
        m.unsolicited += 1;
    });
    // the ACK2 again: it answers no ACK in flight
    assert_refused(&mut q, t, &ack2, |m| {
        m.received[2] += 1;
        m.unsolicited += 1;
    });
    // the SYN again: answered the same way, nothing learned
    let before = known(&q);
    let again = only(&q.handle_datagram(t, &syn), ACK);
    let decode_ack = |bytes: &[u8]| match codec().decode(bytes).unwrap().message {
        Message::Ack(ack) => ack,
        _ => panic!("not an ACK"),
    };
    let (first, second) = (decode_ack(&ack), decode_ack(&again));
    assert_eq!(second.deltas, first.deltas, "the same deltas again");
    let requests = |a: &rumormill::Ack| a.requests.len() + a.compact.as_ref().map_or(0, |c| c.request_count());
    assert!(requests(&first) > 0 && requests(&second) == 0, "and no request for what it has learned since");
    assert_eq!(known(&q), before);
    // which now opens a window for the replayed ACK2: taken, and it changes nothing
    let unsolicited = q.metrics().unsolicited;
    let out = q.handle_datagram(t, &ack2);
    assert!(out.events.is_empty() && out.transmits.is_empty());
    assert_eq!(known(&q), before, "state is as if delivered once");
    assert_eq!(q.metrics().unsolicited, unsolicited);
    // and the ACK that answered the replayed SYN reaches p unasked
    assert_refused(&mut p, t, &again, |m| {
        m.received[1] += 1;
        m.unsolicited += 1;
    });
}

#[test]
fn reordered_messages_are_counted_and_converge_to_the_in_order_state() {
    // two deltas of one node, the later first: it would leave a gap, so it is
    // counted and dropped; once the earlier one arrives, the later one applies
    let first = delta(id("x"), T0, 0, Some(1), &[(Key::STATUS, "NORMAL", 2)]);
    let second = delta(id("x"), T0, 2, Some(4), &[(Key::DC, "dc1", 3)]);
    let mut g = node();
    open_exchange(&mut g, now0(), "p");
    let bytes = frame("p", ack2(vec![second.clone()]));
    assert_refused(&mut g, now0(), &bytes, |m| {
        m.received[2] += 1;
        m.ignored_deltas[3] += 1;
    });
    deliver_ack2(&mut g, now0(), "p", vec![first.clone()]);
    deliver_ack2(&mut g, now0(), "p", vec![second.clone()]);
    let mut h = node();
    deliver_ack2(&mut h, now0(), "p", vec![first.clone()]);
    deliver_ack2(&mut h, now0(), "p", vec![second.clone()]);
    assert_eq!(known(&g).nodes, known(&h).nodes);

    // whole states of one node in any order give the same state
    let whole = |hb: u64, values: &[(Key, &str, u64)]| delta(id("x"), T0, 0, Some(hb), values);
    let states = [
        whole(3, &[(Key::STATUS, "NORMAL", 2)]),
        whole(5, &[(Key::STATUS, "NORMAL", 2), (Key::DC, "dc1", 4)]),
        whole(4, &[(Key::STATUS, "LEAVING", 3)]),
    ];
    let mut results = Vec::new();
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let mut view = View::new(me(), Generation(T0));
        for i in order {
            view.apply(std::slice::from_ref(&states[i]), now0());
        }
        results.push(view.get(&id("x")).unwrap().clone());
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:?}");

    // an ACK later than the exchange timeout: the exchange is over
    let (mut p, mut q) = pair();
    let t = now0() + Duration::from_secs(1);
    let syn = only(&p.handle_timeout(t), SYN);
    let ack = only(&q.handle_datagram(t, &syn), ACK);
    let late = t + p.config().exchange_timeout;
    assert_refused(&mut p, late, &ack, |m| {
        m.received[1] += 1;
        m.unsolicited += 1;
    });
    assert!(p.view().get(&id("q")).is_none(), "a late ACK's state is not applied");
}

// ----- messages for another cluster, and from ourselves -----

#[test]
fn messages_for_another_cluster_are_counted_in_wrong_cluster() {
    let mut g = node();
    let names = ["demo2", "dem", "", "DEMO", &"x".repeat(255)];
    for name in names {
        let other = ClusterName::new(name).unwrap();
        for (kind, message) in sample_messages() {
            let bytes = frame_in(&other, &id("p"), T0, message);
            assert_eq!(codec().decode(&bytes), Err(DecodeError::WrongCluster), "{kind} for {name:?}");
            assert_refused(&mut g, now0(), &bytes, |m| m.wrong_cluster += 1);
        }
    }
    assert_eq!(g.metrics().wrong_cluster, (names.len() * sample_messages().len()) as u64);
    assert_eq!(g.metrics().decode_errors, 0);
}

#[test]
fn messages_claiming_to_come_from_this_node_are_counted_in_from_self() {
    let mut g = node();
    let kinds = ["syn", "ack", "ack2", "echo", "echo-reply", "shutdown"];
    for (name, bytes) in samples("me") {
        let kind = kinds.iter().position(|k| name == *k || name.starts_with(&format!("{k}-"))).unwrap();
        let kind = if name == "echo-reply" { 4 } else { kind };
        assert_refused(&mut g, now0(), &bytes, |m| {
            m.received[kind] += 1;
            m.from_self += 1;
        });
    }
    assert_eq!(g.metrics().from_self, samples("me").len() as u64);
}

// ----- removal records -----

/// A value of the REMOVED_NODES key (src/removal.rs): per record an id, then the
/// generation and the expiry (ms) as varints.
fn removal_records(records: &[(NodeId, u64, u64)]) -> Vec<u8> {
    let mut b = Bytes::default();
    for (node, generation, expires) in records {
        b = b.id(node.as_bytes()).varint(*generation).varint(*expires);
    }
    b.0
}

fn removals_delta(from: u64, version: u64, records: &[(NodeId, u64, u64)]) -> Delta {
    let value = Value::from(removal_records(records));
    Delta {
        values: vec![(Key::new(rumormill::REMOVED_KEY).unwrap(), VersionedValue::live(value, Version(version)))],
        ..delta(id("r"), T0, from, Some(version + 1), &[])
    }
}

#[test]
fn removal_records_from_any_peer_are_obeyed() {
    // without authentication, any node that completes an exchange can remove any
    // other, this one included: what the `encryption` feature is for
    let mut g = node();
    // a record naming generation u64::MAX (which would ban the node at every
    // generation) is not kept, and is counted
    let forever = (id("z"), u64::MAX, u64::MAX);
    deliver_ack2(&mut g, now0(), "r", vec![removals_delta(0, 2, &[forever])]);
    assert_eq!(g.metrics().removals_ignored, 1);
    deliver_ack2(&mut g, now0(), "r", vec![delta(id("z"), T0, 0, Some(1), &[])]);
    assert!(g.view().get(&id("z")).is_some(), "z is not banned by an absurd record");
    // a believable record is obeyed: y at that generation is refused
    let refused = g.metrics().refused_removed;
    deliver_ack2(&mut g, now0(), "r", vec![removals_delta(3, 4, &[(id("y"), T0, u64::MAX)])]);
    deliver_ack2(&mut g, now0(), "r", vec![delta(id("y"), T0, 0, Some(1), &[])]);
    assert!(g.view().get(&id("y")).is_none());
    assert_eq!(g.metrics().refused_removed, refused + 1);
    // a SYN listing y at that generation: its digest is dropped, and counted
    let y = Digest { node: id("y"), generation: Generation(T0), max_version: Version(1), purged: Version::ZERO };
    g.handle_datagram(now0(), &frame("q", Message::Syn(Syn { page: DigestPage::Listed(vec![y]) })));
    assert_eq!(g.metrics().refused_removed, refused + 2);
    // a removal value that does not decode is ignored whole, and counted
    let ignored = g.metrics().removals_ignored;
    let garbage = Value::from(vec![200u8, 1, 2]); // an id of 200 bytes, cut short
    let bad = Delta {
        values: vec![(Key::new(rumormill::REMOVED_KEY).unwrap(), VersionedValue::live(garbage, Version(6)))],
        ..delta(id("r"), T0, 5, Some(7), &[])
    };
    deliver_ack2(&mut g, now0(), "r", vec![bad]);
    assert_eq!(g.metrics().removals_ignored, ignored + 1);
    assert!(g.view().get(&id("r")).is_some_and(|r| r.max_version() == Version(7)), "r's state is taken");
    // and a record naming this node silences it
    let me_removed = (me(), T0, now0().as_millis() + 1_000);
    let out = deliver_ack2(&mut g, now0(), "r", vec![removals_delta(7, 8, &[me_removed])]);
    assert!(out.events.iter().any(|e| matches!(e, Event::SelfRemoved { .. })), "{:?}", out.events);
    let syn = frame("p", Message::Syn(shadow_syn()));
    assert_refused(&mut g, now0(), &syn, |m| {
        m.received[0] += 1;
        m.ignored_not_gossiping += 1;
    });
}

#[test]
fn removal_records_from_a_peer_cannot_grow_memory_without_bound() {
    let mut g = node_with(small_node_limit());
    let baseline = live();
    // each update of the peer's record value names 2,500 new nodes, forever
    let mut version = 0;
    for round in 0..40u32 {
        let records: Vec<(NodeId, u64, u64)> =
            (0..2_500).map(|i| (id3(round * 2_500 + i), u64::MAX, u64::MAX)).collect();
        let from = version;
        version += 2;
        deliver_ack2(&mut g, now0(), "r", vec![removals_delta(from, version - 1, &records)]);
    }
    let grown = live() - baseline;
    let bound = 256 * g.config().limits.max_nodes as i64;
    assert!(grown <= bound, "40 updates of one peer's removal records hold {grown} bytes (bound {bound})");
    // and a record expires within the configured time, whatever it claims
    let later = now0() + g.config().removal_expiry + Duration::from_secs(3_600);
    g.handle_timeout(later);
    deliver_ack2(&mut g, later, "p", vec![delta(id3(0), T0, 0, Some(1), &[])]);
    assert!(g.view().get(&id3(0)).is_some(), "a removal outlived removal_expiry");
}

// ----- amplification -----

#[test]
fn a_shadow_syn_from_a_stranger_is_answered_with_at_most_one_message_budget() {
    // a node that knows 300 nodes of about 300 bytes each
    let mut g = node();
    let value = "v".repeat(280);
    for chunk in (0..300u32).collect::<Vec<_>>().chunks(100) {
        let deltas = chunk.iter().map(|&i| delta(id3(i), T0, 0, Some(1), &[(Key::STATUS, &value, 2)])).collect();
        deliver_ack2(&mut g, now0(), "p", deltas);
    }
    assert_eq!(g.view().len(), 301);
    // the shadow-round SYN, 18 bytes from anyone, asks for everything known: the
    // answer is one ACK, as full as the budget allows, and nothing is kept
    let syn = frame_in(&cluster(), &id("s"), T0, Message::Syn(shadow_syn()));
    let before = known(&g);
    let hits = g.metrics().budget_hits;
    for _ in 0..3 {
        let out = g.handle_datagram(now0(), &syn);
        assert_eq!(out.transmits.len(), 1);
        let sent = out.transmits[0].bytes.len();
        assert!(sent <= g.config().max_message_bytes && sent > 60_000, "{sent} bytes for {}", syn.len());
    }
    assert_eq!(syn.len(), 18);
    assert_eq!(known(&g), before);
    assert_eq!(g.metrics().budget_hits, hits + 3, "what did not fit is counted");
}
