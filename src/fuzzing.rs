//! Fuzz harnesses (feature `fuzzing`). The cargo-fuzz targets in `fuzz/` only call
//! these, and `tests/fuzz_harnesses.rs` runs them over their seeds and a few
//! hundred pseudo-random inputs on every test run, so they cannot rot.
//!
//! A harness takes arbitrary bytes and panics only when a property of the library
//! fails: that panic is the bug the fuzzer reports. Every input is bounded (at most
//! 128 operations on at most four nodes, or a handful of states and deltas), so a
//! fuzzer runs hundreds of inputs a second of [`gossiper_ops`], thousands of
//! [`merge`], and tens of thousands of [`decode`] (docs/fuzzing.md has figures).
//!
//! - [`decode`]: the codec on arbitrary bytes.
//! - [`gossiper_ops`]: a small cluster of [`Gossiper`](crate::Gossiper)s driven by
//!   arbitrary operations, with the invariants checked after every step.
//! - [`merge`]: [`EndpointState::join`](crate::EndpointState::join) and
//!   [`View::apply`](crate::View::apply) on arbitrary states and deltas, against
//!   the join laws.
//! - `open` (feature `encryption`): the decryption path on arbitrary bytes.
//!
//! [`gossiper_ops`] and [`merge`] read their input through
//! `arbitrary::Unstructured` (the feature brings `arbitrary` in).
//! [`gossiper_ops_seeds`], [`merge_seeds`] and `open_seeds` give inputs that reach
//! deep states at once, for seeding corpora. The harnesses, what they check, and
//! how to run them: `docs/fuzzing.md`.

use crate::{ClusterName, Codec};

/// Decodes arbitrary bytes as a message. The codec expects the cluster name the
/// bytes carry (so the fuzzer reaches the body rather than stopping at a cluster
/// mismatch).
///
/// The property: the encoding is canonical. Whatever decodes re-encodes to exactly
/// the same bytes (so no two byte strings decode to the same message), and
/// [`Envelope::encoded_len`](crate::Envelope::encoded_len) predicts their length.
/// Anything else must be rejected with an error, never a panic. Returns whether
/// the bytes decoded.
///
/// # Panics
///
/// When the property fails: that is the bug the fuzzer looks for.
pub fn decode(data: &[u8]) -> bool {
    let named = data.get(4).and_then(|&n| data.get(5..5 + usize::from(n)));
    let cluster = named.and_then(|c| ClusterName::new(c).ok());
    let codec = Codec::new(cluster.unwrap_or_else(|| ClusterName::new("fuzz").expect("short name")));
    match codec.decode(data) {
        Ok(env) => {
            let again = env.encode();
            assert_eq!(again, data, "a decoded message did not re-encode to its bytes");
            assert_eq!(env.encoded_len(), data.len(), "encoded_len disagrees with the encoding");
            true
        }
        Err(_) => false,
    }
}

pub use harnesses::{HistoryStep, gossiper_ops, gossiper_ops_seeds, merge, merge_seeds, merge_seeds_of};
#[cfg(feature = "encryption")]
pub use open::{open, open_seeds};

#[cfg(feature = "encryption")]
mod open;

mod harnesses {
    use alloc::collections::{BTreeMap, BTreeSet};
    use alloc::sync::Arc;
    use alloc::vec::Vec;
    use core::convert::Infallible;
    use core::fmt;
    use core::time::Duration;

    use crate::{
        ClusterName, Codec, Config, Delta, EndpointState, Envelope, Event, Fanout, Generation, Gossiper, Header, Key,
        Limits, Liveness, Message, Metrics, NodeId, Output, PhiModel, Removal, Snapshot, Status, Timestamp, Value,
        Version, VersionedValue, View,
    };

    // ===================================================================== input

    /// The fuzzer's bytes, read front to back one byte at a time (zeros once they
    /// run out), through `arbitrary::Unstructured`.
    struct Input<'a>(arbitrary::Unstructured<'a>);

    impl<'a> Input<'a> {
        fn new(data: &'a [u8]) -> Self {
            Input(arbitrary::Unstructured::new(data))
        }

        fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        fn byte(&mut self) -> u8 {
            self.0.arbitrary::<u8>().unwrap_or(0)
        }

        fn u16(&mut self) -> u16 {
            u16::from_be_bytes([self.byte(), self.byte()])
        }

        /// A number in `0..n` (`n` at most 256) from one byte.
        fn below(&mut self, n: usize) -> usize {
            usize::from(self.byte()) % n.max(1)
        }

        /// Up to `n` bytes (fewer if the input ends).
        fn bytes(&mut self, n: usize) -> &'a [u8] {
            let n = n.min(self.0.len());
            self.0.bytes(n).unwrap_or_default()
        }
    }

    /// SplitMix64: a tiny deterministic generator for the harnesses' Gossipers.
    #[derive(Clone, Debug)]
    pub(super) struct SplitMix64(pub(super) u64);

    impl SplitMix64 {
        fn step(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    impl rand_core::TryRng for SplitMix64 {
        type Error = Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            Ok((self.step() >> 32) as u32)
        }

        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            Ok(self.step())
        }

        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
            for chunk in dst.chunks_mut(8) {
                let word = self.step().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            Ok(())
        }
    }

    /// FNV-1a, for the determinism check's trace.
    fn fnv(hash: &mut u64, bytes: &[u8]) {
        for b in bytes {
            *hash ^= u64::from(*b);
            *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    // ===================================================== what an owner wrote

    /// One field an owner wrote at some version.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Field {
        Heartbeat,
        Value(Key, Option<Value>),
    }

    /// Everything one incarnation (node, generation) of an owner ever wrote, and its
    /// latest state: what any other view of it may hold.
    struct Owner {
        fields: BTreeMap<Version, Field>,
        max_version: Version,
        purged: Version,
        last: EndpointState,
    }

    impl Owner {
        fn new(s: &EndpointState) -> Self {
            let mut o =
                Owner { fields: BTreeMap::new(), max_version: Version::ZERO, purged: Version::ZERO, last: s.clone() };
            o.record(s, "the owner");
            o
        }

        /// Records the owner's state after a step: it never reuses a version for
        /// something else, and its max version and purge floor never go back.
        fn record(&mut self, s: &EndpointState, who: &str) {
            assert!(s.max_version() >= self.max_version, "{who}: its own max version went back");
            assert!(s.purged() >= self.purged, "{who}: its own purge floor went back");
            let mut note = |version: Version, field: Field| {
                if let Some(prev) = self.fields.insert(version, field.clone()) {
                    assert_eq!(prev, field, "{who}: reused version {version} for something else");
                }
            };
            if s.heartbeat() > Version::ZERO {
                note(s.heartbeat(), Field::Heartbeat);
            }
            for (k, vv) in s.values() {
                note(vv.version, Field::Value(k.clone(), vv.value.clone()));
            }
            self.max_version = s.max_version();
            self.purged = s.purged();
            self.last = s.clone();
        }

        /// Another view's state of this incarnation holds only what the owner wrote,
        /// and (the scuttlebutt invariant) every field the owner still has at or
        /// below the view's max version.
        fn check(&self, s: &EndpointState, ctx: &dyn fmt::Display) {
            for (k, vv) in s.values() {
                let got = self.fields.get(&vv.version);
                assert!(
                    matches!(got, Some(Field::Value(k2, v2)) if k2 == k && *v2 == vv.value),
                    "{ctx}: holds {k}@{} = {:?}, which its owner never wrote (it wrote {got:?} there)",
                    vv.version,
                    vv.value,
                );
            }
            if s.heartbeat() > Version::ZERO {
                assert_eq!(
                    self.fields.get(&s.heartbeat()),
                    Some(&Field::Heartbeat),
                    "{ctx}: holds heartbeat {}, which its owner never wrote",
                    s.heartbeat()
                );
            }
            assert!(
                s.max_version() <= self.max_version,
                "{ctx}: max version {} above the owner's {}",
                s.max_version(),
                self.max_version
            );
            assert!(s.purged() <= self.purged, "{ctx}: purge floor {} above the owner's {}", s.purged(), self.purged);
            for (k, cur) in self.last.values() {
                if cur.version <= s.max_version() {
                    assert_eq!(
                        s.get(k),
                        Some(cur),
                        "{ctx}: lacks the owner's {k}@{} at max version {}",
                        cur.version,
                        s.max_version()
                    );
                }
            }
            let hb = self.last.heartbeat();
            if hb > Version::ZERO && hb <= s.max_version() {
                assert_eq!(
                    s.heartbeat(),
                    hb,
                    "{ctx}: lacks the owner's heartbeat {hb} at max version {}",
                    s.max_version()
                );
            }
        }
    }

    // ============================================================ gossiper_ops

    const T0_MS: u64 = 1_700_000_000_000;
    /// Operations per input.
    const MAX_STEPS: usize = 128;
    /// Messages in flight at most (more are lost).
    const MAX_PENDING: usize = 64;
    const MAX_VALUE: usize = 48;
    const BUDGETS: [usize; 4] = [920, 1_000, 1_400, 65_000];
    const CLUSTER: &str = "fuzz";

    /// A change of one node's clock.
    #[derive(Clone, Copy, Debug)]
    enum Dt {
        /// Forward this many milliseconds.
        Millis(u16),
        Secs(u16),
        /// Backwards this many milliseconds.
        Back(u16),
        Hours(u16),
        /// To the end of time (even) or to the epoch (odd).
        Extreme(u16),
    }

    impl Dt {
        fn read(u: &mut Input<'_>) -> Dt {
            let kind = u.byte();
            let n = u.u16();
            match kind % 8 {
                0..=3 => Dt::Millis(n),
                4 => Dt::Secs(n),
                5 => Dt::Back(n),
                6 => Dt::Hours(n),
                _ => Dt::Extreme(n),
            }
        }

        fn write(self, out: &mut Vec<u8>) {
            let (kind, n) = match self {
                Dt::Millis(n) => (0, n),
                Dt::Secs(n) => (4, n),
                Dt::Back(n) => (5, n),
                Dt::Hours(n) => (6, n),
                Dt::Extreme(n) => (7, n),
            };
            out.push(kind);
            out.extend_from_slice(&n.to_be_bytes());
        }

        fn apply(self, t: Timestamp) -> Timestamp {
            let ms = t.as_millis();
            Timestamp::from_millis(match self {
                Dt::Millis(n) => ms.saturating_add(u64::from(n)),
                Dt::Secs(n) => ms.saturating_add(u64::from(n) * 1000),
                Dt::Back(n) => ms.saturating_sub(u64::from(n)),
                Dt::Hours(n) => ms.saturating_add(u64::from(n) * 3_600_000),
                Dt::Extreme(n) if n % 2 == 0 => u64::MAX - u64::from(n),
                Dt::Extreme(n) => u64::from(n),
            })
        }
    }

    /// One step of [`gossiper_ops`]. Node and message indices are taken modulo the
    /// number of nodes and of messages in flight.
    #[derive(Clone, Debug)]
    enum Op {
        Deliver(u8),
        /// Deliver messages in flight, oldest first, until none is left (or a bound).
        DeliverAll,
        Tick(u8, Dt),
        TickAll(Dt),
        Drop(u8),
        Duplicate(u8),
        /// Move a message to the back of the queue.
        Reorder(u8),
        /// Deliver a message with bytes flipped: (position, xor mask) pairs.
        Mutate(u8, Vec<(u16, u8)>),
        /// Deliver bytes to a node; `framed` (bit 0) puts a valid header in front of
        /// them, of the node `mode >> 1` and the kind `mode >> 4`.
        Garbage {
            node: u8,
            mode: u8,
            bytes: Vec<u8>,
        },
        Set {
            node: u8,
            key: u8,
            len: u8,
            fill: u8,
        },
        Delete {
            node: u8,
            key: u8,
        },
        SetStatus(u8, u8),
        Shutdown(u8),
        Remove {
            by: u8,
            node: u8,
        },
        /// Start the node again with a newer generation, in a shadow round if the
        /// flag's low bit is set.
        Restart(u8, u8),
        Join(u8),
    }

    impl Op {
        fn read(u: &mut Input<'_>) -> Op {
            let tag = u.byte() % 32;
            match tag {
                0..=6 => Op::Deliver(u.byte()),
                7 => Op::DeliverAll,
                8..=11 | 27..=31 => {
                    let node = u.byte();
                    Op::Tick(node, Dt::read(u))
                }
                12 | 13 => Op::TickAll(Dt::read(u)),
                14 => Op::Drop(u.byte()),
                15 => Op::Duplicate(u.byte()),
                16 => Op::Reorder(u.byte()),
                17 => {
                    let k = u.byte();
                    let n = 1 + u.below(3);
                    Op::Mutate(k, (0..n).map(|_| (u.u16(), u.byte())).collect())
                }
                18 => {
                    let node = u.byte();
                    let mode = u.byte();
                    let len = usize::from(u.u16() % 4096);
                    Op::Garbage { node, mode, bytes: u.bytes(len).to_vec() }
                }
                19 | 20 => Op::Set { node: u.byte(), key: u.byte(), len: u.byte(), fill: u.byte() },
                21 => Op::Delete { node: u.byte(), key: u.byte() },
                22 => Op::SetStatus(u.byte(), u.byte()),
                23 => Op::Shutdown(u.byte()),
                24 => Op::Remove { by: u.byte(), node: u.byte() },
                25 => Op::Restart(u.byte(), u.byte()),
                _ => Op::Join(u.byte()),
            }
        }

        fn write(&self, out: &mut Vec<u8>) {
            match self {
                Op::Deliver(k) => out.extend([0, *k]),
                Op::DeliverAll => out.push(7),
                Op::Tick(node, dt) => {
                    out.extend([8, *node]);
                    dt.write(out);
                }
                Op::TickAll(dt) => {
                    out.push(12);
                    dt.write(out);
                }
                Op::Drop(k) => out.extend([14, *k]),
                Op::Duplicate(k) => out.extend([15, *k]),
                Op::Reorder(k) => out.extend([16, *k]),
                Op::Mutate(k, edits) => {
                    out.extend([17, *k, (edits.len().clamp(1, 3) - 1) as u8]);
                    for (pos, mask) in edits.iter().take(3) {
                        out.extend_from_slice(&pos.to_be_bytes());
                        out.push(*mask);
                    }
                }
                Op::Garbage { node, mode, bytes } => {
                    out.extend([18, *node, *mode]);
                    let bytes = &bytes[..bytes.len().min(4095)];
                    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
                    out.extend_from_slice(bytes);
                }
                Op::Set { node, key, len, fill } => out.extend([19, *node, *key, *len, *fill]),
                Op::Delete { node, key } => out.extend([21, *node, *key]),
                Op::SetStatus(node, status) => out.extend([22, *node, *status]),
                Op::Shutdown(node) => out.extend([23, *node]),
                Op::Remove { by, node } => out.extend([24, *by, *node]),
                Op::Restart(node, flags) => out.extend([25, *node, *flags]),
                Op::Join(node) => out.extend([26, *node]),
            }
        }
    }

    /// The settings of a cluster, from the input's first bytes.
    #[derive(Clone, Copy, Debug, Default)]
    struct Setup {
        /// Nodes: 2 + this % 3.
        nodes: u8,
        /// Budget (bits 0-1), compact digests off (2), replay (3), long ids (4),
        /// fanout (5-6), Akka's detector (7).
        flags: u8,
        /// Every node a seed (0), fat clients (1), round retries (2-3), the last
        /// node starts in a shadow round (4).
        more: u8,
        seed: u16,
    }

    impl Setup {
        fn read(u: &mut Input<'_>) -> Setup {
            Setup { nodes: u.byte(), flags: u.byte(), more: u.byte(), seed: u.u16() }
        }

        fn write(self, out: &mut Vec<u8>) {
            out.extend([self.nodes, self.flags, self.more]);
            out.extend_from_slice(&self.seed.to_be_bytes());
        }

        fn replay(self) -> bool {
            self.flags & 8 != 0
        }

        fn ids(self) -> Vec<NodeId> {
            let n = 2 + usize::from(self.nodes % 3);
            (0..n)
                .map(|i| {
                    let mut id = alloc::format!("n{i}");
                    if self.flags & 16 != 0 {
                        // ids near the longest, so that a few nodes fill a budget
                        id.push(':');
                        id.extend(core::iter::repeat_n('x', 200));
                    }
                    NodeId::new(id).expect("short enough")
                })
                .collect()
        }

        fn config(self, ids: &[NodeId]) -> Config {
            let mut c = Config::new(ClusterName::new(CLUSTER).expect("short name"));
            c.max_message_bytes = BUDGETS[usize::from(self.flags & 3)];
            c.limits.max_value_len = MAX_VALUE;
            c.compact_digests = self.flags & 4 == 0;
            c.hashed_digests = self.more & 32 == 0;
            c.fanout = match (self.flags >> 5) & 3 {
                1 => Fanout::Chunked(2),
                2 => Fanout::Random(2),
                _ => Fanout::Reference,
            };
            if self.flags & 0x80 != 0 {
                c.detector.model = PhiModel::AKKA;
            }
            c.seeds = if self.more & 1 != 0 { ids.to_vec() } else { alloc::vec![ids[0].clone()] };
            if self.more & 2 != 0 {
                c.fat_client = Some((Key::TOKENS, Duration::from_secs(30)));
            }
            c.round_retries = u32::from((self.more >> 2) & 3) % 3;
            c.validate().expect("the harness's settings are valid");
            c
        }
    }

    /// Keys the operations write (few, so they collide; one near the longest).
    fn key(i: u8) -> Key {
        match i % 8 {
            0 => Key::STATUS,
            1 => Key::LOAD,
            2 => Key::DC,
            3 => Key::HOST_ID,
            4 => Key::TOKENS,
            5 => Key::new("a").expect("short"),
            6 => Key::new("b").expect("short"),
            _ => Key::new(&"k".repeat(200)).expect("short enough"),
        }
    }

    fn status(i: u8) -> Status {
        match i % 8 {
            0 => Status::Normal,
            1 => Status::Boot,
            2 => Status::Left,
            3 => Status::Removed,
            4 => Status::Shutdown,
            5 => Status::Hibernate,
            6 => Status::Leaving,
            _ => Status::Other("bespoke".into()),
        }
    }

    /// Every counter of [`Metrics`] (none of which may go back), in a fixed order.
    fn counters(m: &Metrics) -> Vec<u64> {
        let scalars = [
            m.rounds,
            m.received_bytes,
            m.decode_errors,
            m.too_large,
            m.wrong_cluster,
            m.from_self,
            m.ignored_not_gossiping,
            m.unsolicited,
            m.budget_hits,
            m.context_errors,
            m.refused_removed,
            m.removals_ignored,
            m.inflight_full,
            m.convictions,
            m.convictions_paused,
            m.echoes,
            m.echo_timeouts,
            m.pauses,
            m.seal_failures,
        ];
        let arrays =
            m.sent.iter().chain(&m.sent_bytes).chain(&m.received).chain(&m.ignored_deltas).chain(&m.seal_rejected);
        scalars.into_iter().chain(arrays.copied()).collect()
    }

    /// The counters one call must move by exactly what it did: messages and bytes
    /// sent, datagrams counted once wherever they end up, and bytes received.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    struct Accounting {
        sent: u64,
        sent_bytes: u64,
        datagrams: u64,
        /// Datagrams that did not decode, were for another cluster or not unsealed.
        rejected: u64,
        received_bytes: u64,
    }

    impl Accounting {
        /// Datagrams dropped before being counted by kind.
        fn rejected(m: &Metrics) -> u64 {
            m.decode_errors + m.wrong_cluster + m.too_large + m.seal_rejected.iter().sum::<u64>()
        }

        fn of(m: &Metrics) -> Self {
            Accounting {
                sent: m.sent.iter().sum(),
                sent_bytes: m.sent_bytes.iter().sum(),
                datagrams: m.received.iter().sum::<u64>() + Self::rejected(m),
                rejected: Self::rejected(m),
                received_bytes: m.received_bytes,
            }
        }
    }

    /// What kind of call produced an [`Output`].
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Call {
        Timeout,
        /// `sent`: bytes a node sent, unchanged.
        Datagram {
            len: usize,
            sent: bool,
        },
        Other,
    }

    struct Node {
        g: Gossiper<SplitMix64>,
        /// The time the harness passes to this node.
        clock: Timestamp,
        /// The latest time passed to this incarnation (its clock never goes back).
        seen: Timestamp,
        /// Shut down or removed: it must send nothing more.
        silent: bool,
        metrics: Vec<u64>,
        accounting: Accounting,
        snapshot: Option<Arc<Snapshot>>,
        /// The view revision last checked.
        checked: Option<u64>,
        /// Removals this incarnation reported (`Event::Removed`, the latest per
        /// node): until they expire, its view holds no state of the node at that
        /// generation or older.
        removed: Vec<Removal>,
    }

    struct Pending {
        to: usize,
        bytes: Vec<u8>,
    }

    struct World {
        config: Config,
        codec: Codec,
        ids: Vec<NodeId>,
        nodes: Vec<Node>,
        net: Vec<Pending>,
        /// Bytes that were not sent by a node decoded as an ACK or ACK2: state may
        /// now be forged, so the provenance checks stop.
        forged: bool,
        owners: BTreeMap<(usize, Generation), Owner>,
        /// Removals done: (node, generation).
        removals: BTreeSet<(usize, Generation)>,
        seed: u64,
        /// A hash of every output, when the run is to be replayed.
        trace: Option<u64>,
    }

    impl World {
        fn new(setup: Setup) -> World {
            let ids = setup.ids();
            let config = setup.config(&ids);
            let codec = Codec::new(config.cluster.clone()).with_max_value_len(config.limits.max_value_len);
            let seed = u64::from(setup.seed);
            let now = Timestamp::from_millis(T0_MS);
            let n = ids.len();
            let mut w = World {
                config,
                codec,
                ids,
                nodes: Vec::with_capacity(n),
                net: Vec::new(),
                forged: false,
                owners: BTreeMap::new(),
                removals: BTreeSet::new(),
                seed,
                trace: setup.replay().then_some(0xcbf2_9ce4_8422_2325),
            };
            for i in 0..n {
                let shadow = setup.more & 16 != 0 && i == n - 1;
                let g = w.start(i, Generation(now.as_secs()), now, shadow);
                w.nodes.push(Node {
                    g,
                    clock: now,
                    seen: now,
                    silent: false,
                    metrics: Vec::new(),
                    accounting: Accounting::default(),
                    snapshot: None,
                    checked: None,
                    removed: Vec::new(),
                });
                w.after_start(i);
            }
            w
        }

        fn start(&self, i: usize, generation: Generation, now: Timestamp, shadow: bool) -> Gossiper<SplitMix64> {
            let rng = SplitMix64(self.seed ^ (i as u64) << 48 ^ generation.0);
            let (config, id) = (self.config.clone(), self.ids[i].clone());
            let g = if shadow {
                Gossiper::new_shadow(config, id, generation, now, rng)
            } else {
                Gossiper::new(config, id, generation, now, rng)
            };
            g.expect("valid settings")
        }

        fn after_start(&mut self, i: usize) {
            let node = &mut self.nodes[i];
            node.metrics = counters(node.g.metrics());
            node.accounting = Accounting::of(node.g.metrics());
            node.snapshot = None;
            node.checked = None;
            node.removed.clear();
            node.silent = false;
            node.seen = node.clock;
            self.record(i);
            self.check_node(i);
        }

        fn index(&self, id: &NodeId) -> Option<usize> {
            self.ids.iter().position(|x| x == id)
        }

        fn run(&mut self, op: &Op) {
            let n = self.nodes.len();
            let node = |x: &u8| usize::from(*x) % n;
            match op {
                Op::Deliver(k) => {
                    if !self.net.is_empty() {
                        let m = self.net.remove(usize::from(*k) % self.net.len());
                        self.deliver(m.to, &m.bytes, true);
                    }
                }
                Op::DeliverAll => {
                    for _ in 0..MAX_PENDING / 2 {
                        if self.net.is_empty() {
                            break;
                        }
                        let m = self.net.remove(0);
                        self.deliver(m.to, &m.bytes, true);
                    }
                }
                Op::Tick(i, dt) => self.tick(node(i), *dt),
                Op::TickAll(dt) => (0..n).for_each(|i| self.tick(i, *dt)),
                Op::Drop(k) => {
                    if !self.net.is_empty() {
                        self.net.remove(usize::from(*k) % self.net.len());
                    }
                }
                Op::Duplicate(k) => {
                    if !self.net.is_empty() && self.net.len() < MAX_PENDING {
                        let m = &self.net[usize::from(*k) % self.net.len()];
                        let copy = Pending { to: m.to, bytes: m.bytes.clone() };
                        self.net.push(copy);
                    }
                }
                Op::Reorder(k) => {
                    if !self.net.is_empty() {
                        let m = self.net.remove(usize::from(*k) % self.net.len());
                        self.net.push(m);
                    }
                }
                Op::Mutate(k, edits) => {
                    if !self.net.is_empty() {
                        let m = self.net.remove(usize::from(*k) % self.net.len());
                        let mut bytes = m.bytes.clone();
                        for (pos, mask) in edits {
                            let at = usize::from(*pos) % bytes.len().max(1);
                            if let Some(b) = bytes.get_mut(at) {
                                *b ^= mask | 1;
                            }
                        }
                        self.inject(m.to, bytes, Some(&m.bytes));
                    }
                }
                Op::Garbage { node: i, mode, bytes } => {
                    let to = node(i);
                    let mut data = Vec::new();
                    if mode & 1 != 0 {
                        let from = usize::from(mode >> 1) % n;
                        let header = Header {
                            cluster: self.config.cluster.clone(),
                            sender: self.ids[from].clone(),
                            generation: self.nodes[from].g.view().local_generation(),
                        };
                        data = Envelope { header, message: Message::Shutdown }.encode();
                        data[3] = 1 + (mode >> 4) % 6;
                    }
                    data.extend_from_slice(bytes);
                    self.inject(to, data, None);
                }
                Op::Set { node: i, key: k, len, fill } => {
                    let i = node(i);
                    let len = usize::from(*len) % (MAX_VALUE + 8);
                    let value: Vec<u8> = (0..len).map(|j| fill.wrapping_add(j as u8)).collect();
                    let now = self.nodes[i].clock;
                    if let Ok(out) = self.nodes[i].g.set(now, key(*k), value) {
                        self.absorb(i, now, out, Call::Other);
                    }
                }
                Op::Delete { node: i, key: k } => {
                    let i = node(i);
                    let now = self.nodes[i].clock;
                    if let Ok(out) = self.nodes[i].g.delete(now, &key(*k)) {
                        self.absorb(i, now, out, Call::Other);
                    }
                }
                Op::SetStatus(i, s) => {
                    let i = node(i);
                    let now = self.nodes[i].clock;
                    if let Ok(out) = self.nodes[i].g.set_status(now, status(*s)) {
                        self.absorb(i, now, out, Call::Other);
                    }
                }
                Op::Shutdown(i) => {
                    let i = node(i);
                    let now = self.nodes[i].clock;
                    let out = self.nodes[i].g.shutdown(now);
                    self.absorb(i, now, out, Call::Other);
                    self.nodes[i].silent = true;
                }
                Op::Remove { by, node: j } => {
                    let (i, j) = (node(by), node(j));
                    let now = self.nodes[i].clock;
                    let generation = self.nodes[i].g.view().get(&self.ids[j]).map(EndpointState::generation);
                    let target = self.ids[j].clone();
                    if let Ok(out) = self.nodes[i].g.remove(now, &target) {
                        let generation = generation.expect("only a known node can be removed");
                        self.removals.insert((j, generation));
                        self.absorb(i, now, out, Call::Other);
                    }
                }
                Op::Restart(i, flags) => {
                    let i = node(i);
                    let node = &self.nodes[i];
                    let previous = node.g.view().local_generation();
                    let Some(next) = previous.0.checked_add(1) else { return };
                    let generation = Generation(next.max(node.clock.as_secs()));
                    let now = node.clock;
                    self.nodes[i].g = self.start(i, generation, now, flags & 1 != 0);
                    self.after_start(i);
                }
                Op::Join(i) => {
                    let i = node(i);
                    let now = self.nodes[i].clock;
                    let out = self.nodes[i].g.join(now);
                    self.absorb(i, now, out, Call::Other);
                }
            }
        }

        fn tick(&mut self, i: usize, dt: Dt) {
            let now = dt.apply(self.nodes[i].clock);
            self.nodes[i].clock = now;
            let out = self.nodes[i].g.handle_timeout(now);
            self.absorb(i, now, out, Call::Timeout);
        }

        /// Delivers bytes; `sent`: a node sent them as they are.
        fn deliver(&mut self, to: usize, bytes: &[u8], sent: bool) {
            let now = self.nodes[to].clock;
            let out = self.nodes[to].g.handle_datagram(now, bytes);
            self.absorb(to, now, out, Call::Datagram { len: bytes.len(), sent });
        }

        /// Delivers bytes no node sent (`original`: what they were before being
        /// mangled). If they decode as an ACK or ACK2, state may be forged from here on.
        fn inject(&mut self, to: usize, bytes: Vec<u8>, original: Option<&[u8]>) {
            if original != Some(&bytes[..])
                && let Ok(env) = self.codec.decode(&bytes)
                && matches!(env.message, Message::Ack(_) | Message::Ack2(_))
            {
                self.forged = true;
            }
            self.deliver(to, &bytes, false);
        }

        /// Checks one call's output and the node after it.
        fn absorb(&mut self, i: usize, now: Timestamp, out: Output, call: Call) {
            let was_silent = self.nodes[i].silent;
            let node = &mut self.nodes[i];
            node.seen = node.seen.max(now);
            let seen = node.seen;
            let local = self.ids[i].clone();
            assert_eq!(out.next_deadline, node.g.next_deadline(), "n{i}: the output's deadline is not next_deadline()");
            if call == Call::Timeout && seen.as_millis() < u64::MAX / 2 {
                assert!(
                    out.next_deadline > seen,
                    "n{i}: after handle_timeout({seen}) the next deadline is {} (a busy loop)",
                    out.next_deadline
                );
            }

            // counters: never back, and they account for this call
            let metrics = counters(node.g.metrics());
            assert_eq!(metrics.len(), node.metrics.len(), "n{i}: the counters changed shape");
            for (k, (a, b)) in node.metrics.iter().zip(&metrics).enumerate() {
                assert!(b >= a, "n{i}: counter {k} went back from {a} to {b}: {:?}", node.g.metrics());
            }
            node.metrics = metrics;
            let (was, is) = (node.accounting, Accounting::of(node.g.metrics()));
            node.accounting = is;
            let bytes_out: usize = out.transmits.iter().map(|t| t.bytes.len()).sum();
            let (datagrams, bytes_in) = match call {
                Call::Datagram { len, .. } => (1, len as u64),
                _ => (0, 0),
            };
            if let Call::Datagram { sent: true, .. } = call {
                assert_eq!(
                    is.rejected,
                    was.rejected,
                    "n{i}: a message a node sent was rejected: {:?}",
                    node.g.metrics()
                );
            }
            let expected = Accounting {
                sent: was.sent + out.transmits.len() as u64,
                sent_bytes: was.sent_bytes + bytes_out as u64,
                datagrams: was.datagrams + datagrams,
                rejected: is.rejected,
                received_bytes: was.received_bytes + bytes_in,
            };
            assert_eq!(is, expected, "n{i}: the counters do not account for the call (sent, bytes, datagrams in)");

            // transmits
            assert!(!was_silent || out.transmits.is_empty(), "n{i}: sent after shutting down or being removed");
            let header = Envelope {
                header: Header {
                    cluster: self.config.cluster.clone(),
                    sender: local.clone(),
                    generation: node.g.view().local_generation(),
                },
                message: Message::Shutdown,
            }
            .encode();
            if let Some(trace) = &mut self.trace {
                fnv(trace, &out.next_deadline.as_millis().to_le_bytes());
                fnv(trace, &(out.events.len() as u64).to_le_bytes());
                for t in &out.transmits {
                    fnv(trace, t.to.as_bytes());
                    fnv(trace, &t.bytes);
                }
            }
            for t in &out.transmits {
                assert!(
                    t.bytes.len() <= self.config.max_message_bytes,
                    "n{i}: sent {} bytes, over the budget of {}",
                    t.bytes.len(),
                    self.config.max_message_bytes
                );
                assert_ne!(t.to, local, "n{i}: sent a message to itself");
                // the header: this cluster, this node, its generation (the kind aside);
                // the rest is decoded where it is delivered
                if !self.forged {
                    let ok = t.bytes.len() >= header.len()
                        && t.bytes[..3] == header[..3]
                        && t.bytes[4..header.len()] == header[4..];
                    assert!(ok, "n{i}: sent a message whose header is not its own");
                }
                if let Some(to) = self.index(&t.to)
                    && self.net.len() < MAX_PENDING
                {
                    self.net.push(Pending { to, bytes: t.bytes.clone() });
                }
            }

            // events
            for e in &out.events {
                match e {
                    Event::Joined { node, .. }
                    | Event::Restarted { node, .. }
                    | Event::Alive { node }
                    | Event::Dead { node }
                    | Event::ShutDown { node }
                    | Event::Changed { node, .. }
                    | Event::Evicted { node } => {
                        assert_ne!(*node, local, "n{i}: an event about itself as a peer: {e:?}");
                    }
                    Event::Removed { removal } => {
                        assert_ne!(removal.node, local, "n{i}: removed itself as a peer");
                        if !self.forged {
                            let j = self.index(&removal.node);
                            assert!(
                                j.is_some_and(|j| self.removals.contains(&(j, removal.generation))),
                                "n{i}: a removal nobody made: {removal:?}"
                            );
                        }
                        // the latest record of a node is the one in force
                        let removed = &mut self.nodes[i].removed;
                        removed.retain(|r| r.node != removal.node);
                        removed.push(removal.clone());
                    }
                    Event::SelfRemoved { removal } => {
                        assert_eq!(removal.node, local, "n{i}: SelfRemoved for another node");
                        assert!(
                            self.forged || self.removals.contains(&(i, removal.generation)),
                            "n{i}: a removal nobody made: {removal:?}"
                        );
                        self.nodes[i].silent = true;
                    }
                    Event::GenerationRenewed { .. } => {
                        assert!(self.forged, "n{i}: renewed its generation though nobody forged its state: {e:?}");
                    }
                    Event::ShadowRound { states, .. } if !self.forged => {
                        for (id, s) in states {
                            self.check_state(i, id, s, "learned in its shadow round");
                        }
                    }
                    _ => {}
                }
            }
            self.record(i);
            self.check_node(i);
        }

        /// Records what node `i` has written (its local state).
        fn record(&mut self, i: usize) {
            let view = self.nodes[i].g.view();
            let s = view.local_state();
            assert_eq!(s.generation(), view.local_generation(), "n{i}: local state of another generation");
            match self.owners.get_mut(&(i, s.generation())) {
                // every local change takes a new version: nothing new to record
                Some(o) if o.max_version == s.max_version() && o.last == *s => {}
                Some(o) => o.record(s, &alloc::format!("n{i}")),
                None => {
                    let o = Owner::new(s);
                    self.owners.insert((i, s.generation()), o);
                }
            }
        }

        /// Node `i` holds, for `id`, only what that node wrote, and every field of it
        /// up to its max version.
        fn check_state(&self, i: usize, id: &NodeId, s: &EndpointState, what: &str) {
            let Some(j) = self.index(id) else { panic!("n{i} holds state of {id}, which is no node ({what})") };
            let ctx = Ctx { holder: i, owner: j, generation: s.generation(), what };
            match self.owners.get(&(j, s.generation())) {
                Some(o) => o.check(s, &ctx),
                None => panic!("{ctx}: a generation that node never had"),
            }
        }

        /// Checks node `i`'s view and snapshot. What was checked at the view's last
        /// revision is not checked again: a check of another node's state stays true
        /// as that node moves on (its fields up to a version never change but for
        /// purged tombstones and overwrites by newer versions).
        fn check_node(&mut self, i: usize) {
            let forged = self.forged;
            let limits = &self.config.limits;
            let node = &self.nodes[i];
            let view = node.g.view();
            let revision = view.revision();
            let unchanged = node.checked == Some(revision);
            if !unchanged {
                assert_eq!(view.local_id(), &self.ids[i]);
                assert!(view.len() <= limits.max_nodes);
                for (id, s) in view.iter() {
                    assert!(s.is_normalized(), "n{i}: the state of {id} is not normalized");
                    assert!(s.values().len() <= limits.max_keys_per_node, "n{i}: {id} has too many keys");
                    for (k, vv) in s.values() {
                        let len = vv.value.as_ref().map_or(0, Value::len);
                        assert!(len <= limits.max_value_len, "n{i}: {id}'s {k} is {len} bytes, over the limit");
                    }
                    if !forged && id != view.local_id() {
                        self.check_state(i, id, s, "in its view");
                    }
                }
            }
            // removals stay final until they expire
            if !forged {
                for r in node.removed.iter().filter(|r| r.expires > node.seen) {
                    let back = view.get(&r.node).filter(|s| s.generation() <= r.generation);
                    assert!(
                        back.is_none(),
                        "n{i}: {} came back at generation {} after {r:?}",
                        r.node,
                        back.map_or(Generation(0), EndpointState::generation)
                    );
                }
            }

            // the snapshot: the view as it is, with everyone's liveness
            let node = &mut self.nodes[i];
            node.checked = Some(revision);
            let snap = node.g.snapshot();
            let view = node.g.view();
            let cached = node.snapshot.as_ref().is_some_and(|prev| Arc::ptr_eq(prev, &snap));
            assert_eq!(snap.members.len(), view.len(), "n{i}: the snapshot's members are not the view's");
            for ((id, m), (vid, state)) in snap.members.iter().zip(view.iter()) {
                let up = node.g.is_up(id);
                assert_eq!(m.liveness == Liveness::Up, up, "n{i}: the snapshot's liveness of {id} is stale");
                if cached && unchanged {
                    continue;
                }
                assert_eq!(id, vid, "n{i}: the snapshot's members are not the view's");
                assert_eq!(&m.state, state, "n{i}: the snapshot's state of {id} is stale");
                assert_eq!(m.status, Status::of(state), "n{i}: the snapshot's status of {id} is wrong");
                assert!(m.phi >= 0.0, "n{i}: phi of {id} is {}", m.phi);
                if id == view.local_id() {
                    assert_eq!(m.liveness, Liveness::Up, "n{i}: the local node is not up");
                }
            }
            if let Some(prev) = &node.snapshot
                && !cached
            {
                assert_eq!(snap.local, self.ids[i]);
                assert!(snap.revision >= prev.revision, "n{i}: the snapshot revision went back");
                let same = prev.members.len() == snap.members.len()
                    && prev.members.iter().zip(&snap.members).all(|((a, x), (b, y))| {
                        a == b && x.state == y.state && x.liveness == y.liveness && x.status == y.status
                    });
                assert!(same || snap.revision != prev.revision, "n{i}: the snapshot changed but not its revision");
            }
            node.snapshot = Some(snap);
        }
    }

    /// Where a provenance check failed.
    struct Ctx<'a> {
        holder: usize,
        owner: usize,
        generation: Generation,
        what: &'a str,
    }

    impl fmt::Display for Ctx<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "n{}'s state of n{} at generation {} ({})", self.holder, self.owner, self.generation, self.what)
        }
    }

    fn run_ops(data: &[u8]) -> (Option<u64>, bool) {
        let mut u = Input::new(data);
        let setup = Setup::read(&mut u);
        let mut world = World::new(setup);
        for _ in 0..MAX_STEPS {
            if u.is_empty() {
                break;
            }
            let op = Op::read(&mut u);
            world.run(&op);
        }
        (world.trace, setup.replay())
    }

    /// Drives a small cluster (2 to 4 [`Gossiper`]s, deterministic generators seeded
    /// from the input) through operations the input chooses: time moving forward,
    /// backwards or by years, timers, deliveries of messages in flight in any order,
    /// drops, duplicates, corrupted messages and garbage, writes, deletes, statuses,
    /// shutdowns, removals, restarts with a newer generation (into a shadow round or
    /// not) and joins. At most a few hundred steps, whatever the input.
    ///
    /// After every step, for the node that took it:
    ///
    /// - every transmit fits `Config::max_message_bytes`, carries the cluster, the
    ///   node's id and its generation, and is not addressed to the node itself; a
    ///   node that shut down or was removed sends nothing more; a message delivered
    ///   as it was sent is never rejected (it decodes, and the codec takes only
    ///   canonical encodings, see [`decode`](super::decode));
    /// - the output's deadline is [`Gossiper::next_deadline`], and after
    ///   `handle_timeout(now)` it lies after `now` (no busy loop);
    /// - no counter of [`Metrics`] goes back; the `sent` counters grow by the
    ///   transmits, `sent_bytes` by their bytes, and a datagram is counted exactly
    ///   once (`received`, `decode_errors` or `wrong_cluster`) with its bytes;
    /// - the node's own state never reuses a version for something else, and its max
    ///   version and purge floor never go back;
    /// - every state in its view is normalized and within the limits; every state of
    ///   another node holds only fields that node wrote at that generation, a max
    ///   version and purge floor no higher than the owner's, and every field the
    ///   owner still has up to that max version (the scuttlebutt invariant); the
    ///   same for what a shadow round learned;
    /// - events never name the node itself as a peer; removals match a
    ///   [`Gossiper::remove`] made; no generation is renewed; a node removed stays
    ///   out of the view (at its generation or older) until the removal expires;
    /// - the [`Gossiper::snapshot`] is the view, with [`Gossiper::is_up`] as
    ///   liveness and phi not negative (nor NaN); its revision never goes back and
    ///   changes whenever its content does.
    ///
    /// The provenance checks (fields, removals, renewals, generations in headers)
    /// stop once a corrupted or garbage datagram decodes as an ACK or ACK2: state
    /// from then on may be forged, which a node cannot tell. When the input asks for
    /// it, the run is repeated and must produce the same bytes and events.
    ///
    /// # Panics
    ///
    /// When a property fails: that is the bug the fuzzer looks for.
    pub fn gossiper_ops(data: &[u8]) {
        let (trace, replay) = run_ops(data);
        if replay {
            assert_eq!(run_ops(data).0, trace, "the same inputs and seeds gave different outputs");
        }
    }

    /// Inputs for [`gossiper_ops`] that reach interesting states at once: a cluster
    /// converging, writes and deletes past the tombstone grace, restarts (into a
    /// shadow round and joining), shutdowns and removals, long ids on a tight
    /// budget; and for each of `messages` (encoded messages of any cluster, such as
    /// the wire document's vectors), a run that delivers it, in this cluster's name
    /// and from one of its nodes, to a converged cluster.
    pub fn gossiper_ops_seeds(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        use Op::*;
        let converge = |rounds: usize| -> Vec<Op> {
            let mut ops = Vec::new();
            for r in 0..rounds {
                ops.push(TickAll(Dt::Millis(if r % 3 == 0 { 1_000 } else { 150 })));
                ops.push(DeliverAll);
            }
            ops
        };
        let writes = alloc::vec![
            Set { node: 0, key: 0, len: 6, fill: b'N' },
            Set { node: 1, key: 2, len: 3, fill: b'd' },
            Set { node: 2, key: 5, len: 40, fill: 1 },
            Set { node: 1, key: 7, len: 47, fill: 9 },
            SetStatus(2, 0),
        ];
        let mut runs: Vec<(Setup, Vec<Op>)> = Vec::new();
        let three = Setup { nodes: 1, flags: 2, more: 0, seed: 1 };
        // converge, then all kinds of traffic
        runs.push((three, [writes.clone(), converge(12)].concat()));
        // a tight budget with long ids and full values, replayed
        let tight = Setup { nodes: 2, flags: 16 | 8, more: 1, seed: 2 };
        let mut big = Vec::new();
        for k in 0..8 {
            for node in 0..4 {
                big.push(Set { node, key: k, len: 47, fill: k });
            }
        }
        runs.push((tight, [big, converge(16)].concat()));
        // deletes, then past the tombstone grace, then gossip
        let mut ops = [writes.clone(), converge(8)].concat();
        ops.extend([Delete { node: 1, key: 2 }, Delete { node: 2, key: 5 }]);
        ops.extend(converge(3));
        ops.push(TickAll(Dt::Hours(2)));
        ops.extend(converge(8));
        runs.push((three, ops));
        // a restart, a shadow round and a join
        let mut ops = [writes.clone(), converge(8)].concat();
        ops.extend([Restart(1, 0), Set { node: 1, key: 3, len: 8, fill: 7 }]);
        ops.extend(converge(6));
        ops.push(Restart(2, 1));
        for _ in 0..3 {
            ops.extend([Tick(2, Dt::Millis(10)), DeliverAll, DeliverAll]);
        }
        ops.extend([Join(2), Set { node: 2, key: 0, len: 6, fill: b'N' }]);
        ops.extend(converge(8));
        runs.push((Setup { nodes: 1, flags: 1, more: 0, seed: 3 }, ops));
        // a shutdown, a removal, and the removed node coming back
        let mut ops = [writes.clone(), converge(8)].concat();
        ops.extend([SetStatus(2, 4), Shutdown(2), DeliverAll]);
        ops.extend(converge(4));
        ops.push(Remove { by: 0, node: 2 });
        ops.extend(converge(6));
        ops.push(Restart(2, 0));
        ops.extend(converge(8));
        runs.push((Setup { nodes: 1, flags: 0x80 | 32, more: 2, seed: 4 }, ops));
        // loss, duplication, reordering, corruption, time going back and far forward
        let mut ops = [writes, converge(4)].concat();
        for r in 0..12u8 {
            ops.extend([
                TickAll(Dt::Millis(400)),
                Duplicate(r),
                Reorder(r / 2),
                Drop(r),
                Deliver(r),
                Mutate(r, alloc::vec![(u16::from(r) * 7, r | 1)]),
                Tick(r, Dt::Back(3_000)),
                DeliverAll,
            ]);
        }
        ops.extend([TickAll(Dt::Secs(30)), DeliverAll, TickAll(Dt::Hours(24 * 400))]);
        ops.extend(converge(4));
        runs.push((Setup { nodes: 1, flags: 64 | 8, more: 4 | 8, seed: 5 }, ops));

        // every message, in this cluster's name, to a converged cluster
        let prefix = converge(6);
        for m in messages {
            let Some(bytes) = rename(m) else { continue };
            let mut ops = prefix.clone();
            ops.push(Tick(0, Dt::Millis(1_000)));
            ops.push(Garbage { node: 0, mode: 0, bytes });
            ops.extend(converge(3));
            runs.push((three, ops));
        }
        runs.into_iter()
            .map(|(setup, ops)| {
                let mut out = Vec::new();
                setup.write(&mut out);
                for op in &ops {
                    op.write(&mut out);
                }
                out
            })
            .collect()
    }

    /// A message of any cluster, re-encoded in the harness's cluster from node n1.
    fn rename(bytes: &[u8]) -> Option<Vec<u8>> {
        let named = bytes.get(4).and_then(|&n| bytes.get(5..5 + usize::from(n)))?;
        let mut env = Codec::new(ClusterName::new(named).ok()?).decode(bytes).ok()?;
        env.header.cluster = ClusterName::new(CLUSTER).ok()?;
        env.header.sender = NodeId::new("n1").ok()?;
        env.header.generation = Generation(T0_MS / 1000);
        Some(env.encode())
    }

    // =================================================================== merge

    const T0: u64 = 1_700_000_000;
    const GENERATIONS: [Generation; 2] = [Generation(T0), Generation(T0 + 100)];

    fn owner_id(o: usize) -> NodeId {
        NodeId::new(["a", "b", "c"][o % 3]).expect("short")
    }

    fn me() -> NodeId {
        NodeId::new("me").expect("short")
    }

    /// Keys of the histories and states: two hot ones, so that a key is set, deleted
    /// and purged often.
    fn merge_key(b: u8) -> Key {
        match b % 8 {
            0 | 2 | 4 => Key::new("a").expect("short"),
            1 | 3 | 5 => Key::new("b").expect("short"),
            6 => Key::STATUS,
            _ => Key::DC,
        }
    }

    /// Keys of made-up states: more of them, so that limits are reached.
    fn any_key(b: u8) -> Key {
        match b % 8 {
            0..=5 => merge_key(b),
            6 => Key::new("c").expect("short"),
            _ => Key::new("d").expect("short"),
        }
    }

    /// One owner's history at one generation: its state after each local operation,
    /// and everything it wrote.
    struct History {
        states: Vec<EndpointState>,
        owner: Owner,
    }

    impl History {
        /// Operations: set (a key, a value), delete, heartbeat, or purge tombstones
        /// older than 0 to 3 s; one a second.
        fn read(u: &mut Input<'_>, id: NodeId, generation: Generation) -> History {
            let mut view = View::new(id, generation);
            let mut states = alloc::vec![view.local_state().clone()];
            let mut owner = Owner::new(view.local_state());
            let ops = u.below(25);
            for i in 0..ops {
                let now = Timestamp::from_secs(T0 + i as u64);
                match u.byte() % 16 {
                    0..=5 => {
                        let k = merge_key(u.byte());
                        let v = u.byte();
                        let value: Vec<u8> =
                            core::iter::repeat_n(b'a' + (v >> 3) % 26, 1 + usize::from(v & 7)).collect();
                        view.set_local(k, value).expect("within the default limits");
                    }
                    6..=9 => {
                        view.delete_local(&merge_key(u.byte()), now).expect("within the default limits");
                    }
                    10..=13 => {
                        view.beat().expect("far from the last version");
                    }
                    _ => {
                        view.purge_local(now, Duration::from_secs(u64::from(u.byte() % 4)));
                    }
                }
                owner.record(view.local_state(), "the history's owner");
                states.push(view.local_state().clone());
            }
            History { states, owner }
        }
    }

    /// The owners' histories: `hist[owner][generation]`.
    type Histories = [[History; 2]; 2];

    /// A state of a node as a view may hold it.
    struct Picked {
        state: EndpointState,
        /// From a history (owner, generation index): a prefix of one of its states,
        /// as gossip produces. `None`: made up, field by field.
        genuine: Option<(usize, usize)>,
    }

    /// A prefix of `s`: its fields up to `cut`, as a truncated whole-state delta
    /// leaves a view.
    fn prefix(s: &EndpointState, cut: Version) -> EndpointState {
        let hb = if s.heartbeat() <= cut { s.heartbeat() } else { Version::ZERO };
        let values = s.values().iter().filter(|(_, vv)| vv.version <= cut).map(|(k, vv)| (k.clone(), vv.clone()));
        EndpointState::from_parts(s.generation(), hb, values.collect::<Vec<_>>(), s.purged())
    }

    fn read_state(u: &mut Input<'_>, hist: &Histories) -> Picked {
        let b = u.byte();
        let g = usize::from(b >> 2) & 1;
        if b & 1 == 0 {
            let o = usize::from(b >> 1) & 1;
            let states = &hist[o][g].states;
            let s = &states[usize::from(u.byte()) % states.len()];
            let cut = Version(u64::from(u.u16()) % (s.max_version().0 + 1));
            return Picked { state: prefix(s, cut), genuine: Some((o, g)) };
        }
        let heartbeat = Version(u64::from(u.byte() % 16));
        let purged = Version(u64::from(u.byte() % 8));
        let n = u.below(6);
        let values: Vec<(Key, VersionedValue)> = (0..n).map(|_| arbitrary_field(u)).collect();
        Picked { state: EndpointState::from_parts(GENERATIONS[g], heartbeat, values, purged), genuine: None }
    }

    fn arbitrary_field(u: &mut Input<'_>) -> (Key, VersionedValue) {
        let k = u.byte();
        let key = if k == 255 { u.0.arbitrary::<Key>().unwrap_or(Key::LOAD) } else { any_key(k) };
        let v = u.byte();
        let value = (v & 1 == 0).then(|| Value::from(&b"xyzw"[..usize::from(v >> 1) % 5]));
        // versions from 1: version 0 is "nothing yet" (a tombstone there would be
        // below every purge floor, see `a_tombstone_at_version_0_is_purged`)
        (key, VersionedValue { value, version: Version(1 + u64::from(u.byte() % 15)) })
    }

    /// A whole state as a zero-based delta (fields in version order).
    fn whole(node: NodeId, s: &EndpointState) -> Delta {
        let mut values: Vec<(Key, VersionedValue)> = s.values().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        values.sort_by_key(|(_, vv)| vv.version);
        Delta {
            node,
            generation: s.generation(),
            from: Version::ZERO,
            purged: s.purged(),
            heartbeat: (s.heartbeat() > Version::ZERO).then_some(s.heartbeat()),
            values,
        }
    }

    /// The state a zero-based delta stands for.
    fn state_of(d: &Delta) -> EndpointState {
        EndpointState::from_parts(
            d.generation,
            d.heartbeat.unwrap_or(Version::ZERO),
            d.values.iter().cloned(),
            d.purged,
        )
    }

    /// A delta, and the history it is true to, if any.
    struct Made {
        delta: Delta,
        genuine: Option<(usize, usize)>,
    }

    fn read_delta(u: &mut Input<'_>, hist: &Histories) -> Made {
        match u.byte() % 4 {
            // a whole state
            0 => {
                let p = read_state(u, hist);
                let node = match p.genuine {
                    Some((o, _)) => owner_id(o),
                    None => owner_id(u.below(3)),
                };
                Made { delta: whole(node, &p.state), genuine: p.genuine }
            }
            // an owner's fields in (from, to], as a builder cuts them
            1 => {
                let b = u.byte();
                let (o, g) = (usize::from(b) & 1, usize::from(b >> 1) & 1);
                let states = &hist[o][g].states;
                let s = &states[usize::from(u.byte()) % states.len()];
                let max = s.max_version().0;
                let from = u64::from(u.u16()) % (max + 1);
                let to = from + u64::from(u.u16()) % (max - from + 1);
                let within = |v: Version| v.0 > from && v.0 <= to;
                let mut values: Vec<(Key, VersionedValue)> = s
                    .values()
                    .iter()
                    .filter(|(_, vv)| within(vv.version))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                values.sort_by_key(|(_, vv)| vv.version);
                let delta = Delta {
                    node: owner_id(o),
                    generation: s.generation(),
                    from: Version(from),
                    purged: s.purged(),
                    heartbeat: within(s.heartbeat()).then_some(s.heartbeat()),
                    values,
                };
                Made { delta, genuine: Some((o, g)) }
            }
            // anything, for any node, the local one included
            k => {
                let node = if k == 3 { me() } else { owner_id(u.below(3)) };
                let generation = match u.byte() % 8 {
                    0..=2 => GENERATIONS[0],
                    3..=5 => GENERATIONS[1],
                    6 => Generation(T0 - 1),
                    _ => Generation(T0 + 2 * crate::MAX_GENERATION_AHEAD_SECS),
                };
                let from = Version(u64::from(u.byte() % 16));
                let purged = Version(u64::from(u.byte() % 8));
                let hb = u.byte();
                let heartbeat = (hb & 1 == 0).then_some(Version(u64::from(hb >> 1) % 16));
                let n = u.below(5);
                let values = (0..n).map(|_| arbitrary_field(u)).collect();
                Made { delta: Delta { node, generation, from, purged, heartbeat, values }, genuine: None }
            }
        }
    }

    fn states(v: &View) -> Vec<(NodeId, EndpointState)> {
        v.iter().map(|(id, s)| (id.clone(), s.clone())).collect()
    }

    /// Whether a view keeps its limits.
    fn within_limits(v: &View) -> bool {
        let l = v.limits();
        v.len() <= l.max_nodes
            && v.iter().all(|(_, s)| {
                s.values().len() <= l.max_keys_per_node
                    && s.values().values().all(|vv| vv.value.as_ref().is_none_or(|x| x.len() <= l.max_value_len))
            })
    }

    /// Checks the join laws on three states of one node.
    fn join_laws(a: &Picked, b: &Picked, c: &Picked, hist: &Histories) {
        let (a_, b_, c_) = (&a.state, &b.state, &c.state);
        for s in [a_, b_, c_] {
            assert!(s.is_normalized(), "from_parts made a state that is not normalized: {s:?}");
            assert_eq!(&s.join(s), s, "join is not idempotent on {s:?}");
        }
        let ab = a_.join(b_);
        assert_eq!(ab, b_.join(a_), "join is not commutative on\n{a_:?}\n{b_:?}");
        assert_eq!(ab.join(c_), a_.join(&b_.join(c_)), "join is not associative on\n{a_:?}\n{b_:?}\n{c_:?}");
        assert!(ab.is_normalized(), "a join is not normalized: {ab:?}");
        assert_eq!(ab.join(a_), ab, "a join does not absorb its side");
        assert_eq!(ab.generation(), a_.generation().max(b_.generation()));
        // states of one history join into a state true to it
        if let (Some(x), Some(y)) = (a.genuine, b.genuine)
            && x == y
        {
            let ctx = alloc::format!("the join of two states of owner {} at generation {}", x.0, x.1);
            hist[x.0][x.1].owner.check(&ab, &ctx);
        }
    }

    /// Applies `deltas` to a copy of `base` and checks everything apply promises.
    /// `true_base[o]`: the view's state of owner `o` is a prefix of one of its
    /// history's states (or absent).
    fn apply_checks(base: &View, true_base: [bool; 3], made: &[Made], hist: &Histories, now: Timestamp) {
        let deltas: Vec<Delta> = made.iter().map(|m| m.delta.clone()).collect();
        let before = states(base);

        // apply is plan then commit, in one pass; plan changes nothing
        let mut applied_view = base.clone();
        let applied = applied_view.apply(&deltas, now);
        let planner = base.clone();
        let plan = planner.plan(&deltas, now);
        assert_eq!(states(&planner), before, "plan changed the view");
        assert_eq!(plan.changes(), &applied.changes[..], "plan and apply disagree on the changes");
        assert_eq!(plan.ignored(), &applied.ignored[..], "plan and apply disagree on what is ignored");
        let mut committed = base.clone();
        let by_commit = committed.commit(plan);
        assert_eq!(by_commit, applied, "commit and apply report differently");
        let after = states(&applied_view);
        assert_eq!(states(&committed), after, "commit and apply disagree on the view");
        if after != before {
            let what = || alloc::format!("{deltas:?}\nbefore: {before:?}\nafter: {after:?}");
            assert_ne!(
                applied_view.revision(),
                base.revision(),
                "apply changed the view but not its revision: {}",
                what()
            );
            assert_ne!(
                committed.revision(),
                base.revision(),
                "commit changed the view but not its revision: {}",
                what()
            );
        }

        // the local state is never taken; nothing breaks the limits or normal form
        assert_eq!(applied_view.local_state(), base.local_state(), "apply changed the local state");
        if within_limits(base) {
            assert!(within_limits(&applied_view), "apply broke the limits:\n{before:?}\n{deltas:?}\n{after:?}");
        }
        for (id, s) in applied_view.iter() {
            assert!(s.is_normalized(), "apply left {id} not normalized");
        }
        // nothing forgotten; within a generation nothing goes back (but for a reset
        // from a state with a newer purge floor). Keys only for deltas true to the
        // view's history: a made-up delta that raises the floor over a tombstone and
        // carries an older value of the key, applied twice, brings the value back
        // (no sender holds such a state; see docs/fuzzing.md).
        let all_genuine =
            |o: usize| true_base[o] && made.iter().filter(|m| m.delta.node == owner_id(o)).all(|m| m.genuine.is_some());
        for (id, old) in &before {
            let new = applied_view.get(id).expect("apply forgot a node");
            let reset = applied.changes.iter().any(|c| matches!(c, crate::Change::Reset { node, .. } if node == id));
            let what = || alloc::format!("{id} was {old:?}\nis {new:?}\nafter {deltas:?}");
            assert!(new.generation() >= old.generation(), "apply took an older generation: {}", what());
            if new.generation() == old.generation() && !reset {
                assert!(new.heartbeat() >= old.heartbeat(), "apply lowered a heartbeat: {}", what());
                assert!(new.max_version() >= old.max_version(), "apply lowered a max version: {}", what());
                assert!(new.purged() >= old.purged(), "apply lowered a purge floor: {}", what());
                let true_to_history = (0..3).any(|o| *id == owner_id(o) && all_genuine(o));
                for (k, vv) in old.values().iter().filter(|_| true_to_history) {
                    match new.get(k) {
                        Some(x) => assert!(x.version >= vv.version, "apply lowered {k}: {}", what()),
                        // only a purge drops a key: its tombstone, or a value deleted
                        // since (the tombstone then purged in the same batch)
                        None => assert!(
                            vv.version <= new.purged(),
                            "apply dropped {k}@{} above the purge floor: {}",
                            vv.version,
                            what()
                        ),
                    }
                }
            }
        }
        for (id, s) in &after {
            if before.iter().all(|(b, _)| b != id) {
                assert!(s.generation().is_believable(now), "apply took {id} at a future generation");
            }
        }
        // deltas true to the histories leave views true to them
        for (o, histories) in hist.iter().enumerate() {
            if let Some(s) = applied_view.get(&owner_id(o))
                && all_genuine(o)
                && let Some(g) = GENERATIONS.iter().position(|g| *g == s.generation())
            {
                let ctx = alloc::format!("the view of owner {o} at generation {g} after applying {deltas:?}");
                histories[g].owner.check(s, &ctx);
            }
        }

        // one delta at a time: applying it twice is applying it once, and a whole
        // state is the join. (Only for whole states and deltas true to the view's
        // history: a partial delta that raises the floor over a tombstone and carries
        // an older value of that key, which no sender can hold, prunes the tombstone
        // and so takes the value the second time; see docs/fuzzing.md.)
        for m in made {
            let d = &m.delta;
            let mut once = base.clone();
            let first = once.apply(core::slice::from_ref(d), now);
            let after_once = states(&once);
            if d.from != Version::ZERO && !m.genuine.is_some_and(|(o, _)| true_base[o]) {
                continue;
            }
            let second = once.apply(core::slice::from_ref(d), now);
            let what = || alloc::format!("{d:?}\non {:?}\nfirst {first:?}\nthen {second:?}", base.get(&d.node));
            assert!(second.changes.is_empty(), "a delta applied twice changed something again: {}", what());
            assert_eq!(states(&once), after_once, "a delta applied twice changed the view again: {}", what());
            if d.from == Version::ZERO && d.node != me() {
                let old = base.get(&d.node);
                let expected = if first.ignored.is_empty() {
                    Some(old.map_or_else(|| state_of(d), |b| b.join(&state_of(d))))
                } else {
                    old.cloned()
                };
                assert_eq!(once.get(&d.node), expected.as_ref(), "applying a whole state is not the join: {d:?}");
            }
        }

        // two whole states commute (they apply as joins), and so do two partial
        // deltas true to the view's history, when both orders take both. (Not a
        // whole state and a partial delta: a whole state with a newer purge floor,
        // cut short, resets the view to its max version, below what the partial
        // delta brought in the other order. Both views are sound.)
        for (i, x) in made.iter().enumerate() {
            for y in &made[i + 1..] {
                let true_to = |m: &Made| m.genuine.is_some_and(|(o, _)| true_base[o]);
                let whole = |m: &Made| m.delta.from == Version::ZERO;
                let both_whole = whole(x) && whole(y);
                let both_partial = !whole(x) && !whole(y) && true_to(x) && true_to(y);
                if !both_whole && !both_partial {
                    continue;
                }
                // (A heartbeat at or below the purge floor is compared as none: a
                // partial delta brings it in, a whole state with a newer floor drops
                // it, so it depends on the order. Harmless: the owner's heartbeat is
                // above the floor, and comes with the next delta.)
                let run = |p: &Delta, q: &Delta| {
                    let mut v = base.clone();
                    let r1 = v.apply(core::slice::from_ref(p), now);
                    let r2 = v.apply(core::slice::from_ref(q), now);
                    let compared: Vec<_> = v
                        .iter()
                        .map(|(id, s)| {
                            let hb = if s.heartbeat() > s.purged() { s.heartbeat() } else { Version::ZERO };
                            (id.clone(), hb, s.generation(), s.max_version(), s.purged(), s.values().clone())
                        })
                        .collect();
                    (compared, r1.ignored.is_empty() && r2.ignored.is_empty())
                };
                let (xy, ok1) = run(&x.delta, &y.delta);
                let (yx, ok2) = run(&y.delta, &x.delta);
                if ok1 && ok2 {
                    assert_eq!(
                        xy,
                        yx,
                        "two deltas gave different views in different orders:\n{:?}\n{:?}\non {:?}",
                        x.delta,
                        y.delta,
                        base.get(&x.delta.node),
                    );
                }
            }
        }
    }

    /// Builds histories of two owners (sets, deletes, heartbeats and purges on a
    /// real [`View`], two generations each) and checks:
    ///
    /// - the join laws on three states (prefixes of the histories' states, as gossip
    ///   produces, or made up field by field: [`EndpointState::join`] claims them for
    ///   every state that can exist): idempotent, commutative, associative,
    ///   absorbing, normalized, the newer generation winning; the join of two states
    ///   of one history holds only what the owner wrote and every field up to its
    ///   max version;
    /// - [`View::apply`] of a batch of deltas (whole states, an owner's fields cut
    ///   as a builder cuts them, or anything, for any node, the local one included)
    ///   on a view of up to four nodes with small limits: it reports and does the
    ///   same as [`View::plan`] then [`View::commit`] (and `plan` changes nothing);
    ///   the revision changes when the view does; the local state is never taken;
    ///   limits hold; nothing is forgotten, and no heartbeat, max version or purge
    ///   floor goes back within a generation (but for a reset); no future
    ///   generation is learned; deltas true to the histories leave states true to
    ///   them and lower no key's version;
    /// - per delta: a whole state applies as the join; it, or a delta true to the
    ///   view's history, applied twice is applied once;
    /// - two whole states, or two partial deltas true to the view's history, give the
    ///   same view in either order, when neither order ignores either (a heartbeat
    ///   at or below the purge floor aside).
    ///
    /// # Panics
    ///
    /// When a property fails: that is the bug the fuzzer looks for.
    pub fn merge(data: &[u8]) {
        let mut u = Input::new(data);
        let l = u.byte();
        let limits = Limits {
            max_nodes: 3 + usize::from(l % 3),
            max_keys_per_node: [2, 3, 4, 1024][usize::from(l >> 2) & 3],
            max_value_len: if l & 16 != 0 { 4 } else { crate::DEFAULT_MAX_VALUE_LEN },
        };
        let hist: Histories = [0, 1].map(|o| [0, 1].map(|g| History::read(&mut u, owner_id(o), GENERATIONS[g])));

        let (a, b, c) = (read_state(&mut u, &hist), read_state(&mut u, &hist), read_state(&mut u, &hist));
        join_laws(&a, &b, &c, &hist);

        let local = View::new(me(), GENERATIONS[0]).local_state().clone();
        let mut known = alloc::vec![(me(), local)];
        let mut true_base = [true; 3];
        for (o, true_state) in true_base.iter_mut().enumerate() {
            if u.byte() & 1 == 1 {
                let p = read_state(&mut u, &hist);
                *true_state = p.genuine.is_some_and(|(po, _)| po == o);
                known.push((owner_id(o), p.state));
            }
        }
        let base = View::from_states(me(), known).expect("the local state is there").with_limits(limits);
        let made: Vec<Made> = (0..1 + u.below(4)).map(|_| read_delta(&mut u, &hist)).collect();
        apply_checks(&base, true_base, &made, &hist, Timestamp::from_secs(T0 + 1_000));
    }

    /// One step of an owner's history as [`merge`] reads it, for seeds made
    /// elsewhere (`fuzz/seed_corpus.rs` makes them from the conformance vectors).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum HistoryStep {
        /// Set a key (`key % 8`: 0, 2, 4 are `a`; 1, 3, 5 `b`; 6 `STATUS`; 7
        /// `DC`) to a value (a short run of one letter chosen by `value`).
        Set {
            /// Which key.
            key: u8,
            /// Which value.
            value: u8,
        },
        /// Delete a key (a tombstone).
        Delete {
            /// Which key, as for `Set`.
            key: u8,
        },
        /// Raise the heartbeat.
        Beat,
        /// Purge tombstones older than `grace % 4` seconds (one step is a second).
        Purge {
            /// The grace period.
            grace: u8,
        },
    }

    impl HistoryStep {
        fn bytes(self) -> Vec<u8> {
            match self {
                HistoryStep::Set { key, value } => alloc::vec![0, key, value],
                HistoryStep::Delete { key } => alloc::vec![6, key],
                HistoryStep::Beat => alloc::vec![10],
                HistoryStep::Purge { grace } => alloc::vec![14, grace],
            }
        }
    }

    /// Inputs for [`merge`] that reach interesting states at once: histories that set,
    /// delete and purge the same keys, views of their states cut at several points,
    /// and batches of whole states, cut deltas and made-up ones.
    pub fn merge_seeds() -> Vec<Vec<u8>> {
        use HistoryStep::{Beat, Delete, Purge, Set};
        // the same key set, deleted, purged and set again; another key overwritten
        let busy = [
            Set { key: 0, value: 8 },
            Set { key: 1, value: 16 },
            Beat,
            Delete { key: 0 },
            Set { key: 1, value: 25 },
            Beat,
            Purge { grace: 0 },
            Set { key: 0, value: 40 },
            Delete { key: 1 },
            Beat,
            Purge { grace: 1 },
            Set { key: 6, value: 3 },
            Set { key: 7, value: 4 },
            Delete { key: 6 },
            Beat,
        ];
        // the four histories: the busy one, shorter each time
        let cut = |h: usize| busy[..busy.len() - h * 2].to_vec();
        seeds_over(&[cut(0), cut(1), cut(2), cut(3)], 0..6)
    }

    /// Inputs for [`merge`] whose four owner histories (two owners, two
    /// generations each) are `histories` in turn, four at a time (at most 24 steps
    /// each are read), with the cuts, views and batches of [`merge_seeds`].
    pub fn merge_seeds_of(histories: &[Vec<HistoryStep>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (i, group) in histories.chunks(4).enumerate() {
            let four: Vec<Vec<HistoryStep>> = (0..4).map(|h| group[h % group.len()].clone()).collect();
            let variant = (i % 6) as u8;
            out.extend(seeds_over(&four, variant..variant + 1));
        }
        out
    }

    fn seeds_over(histories: &[Vec<HistoryStep>], variants: core::ops::Range<u8>) -> Vec<Vec<u8>> {
        // the encodings `merge` reads (see `History::read`, `read_state`, `read_delta`)
        let pick = |o: u8, g: u8, which: u8, cut: u16| {
            let [hi, lo] = cut.to_be_bytes();
            [(o << 1) | (g << 2), which, hi, lo]
        };
        let made_up = |g: u8, hb: u8, purged: u8, fields: &[(u8, u8, u8)]| {
            let mut out = alloc::vec![1 | (g << 2), hb, purged, fields.len() as u8];
            for (k, v, version) in fields {
                out.extend([*k, *v, version - 1]);
            }
            out
        };
        let n = histories.iter().map(|h| h.len().min(24)).max().unwrap_or(0) as u8;
        let mut seeds = Vec::new();
        for variant in variants {
            // limits: 3 to 5 nodes; 2, 3, 4 or 1,024 keys; tiny values or not
            let mut s = alloc::vec![variant | ((variant % 4) << 2) | ((variant & 4) << 2)];
            for h in histories {
                let steps = &h[..h.len().min(24)];
                s.push(steps.len() as u8);
                s.extend(steps.iter().flat_map(|step| step.bytes()));
            }
            // the join laws: cuts of one history, and a made-up state
            s.extend(pick(0, 0, 5 + variant, 7));
            s.extend(pick(0, 0, n, u16::from(variant) * 3));
            if variant % 2 == 0 {
                s.extend(pick(0, 1, 9, 4));
            } else {
                s.extend(made_up(0, 9, 2, &[(0, 2, 3), (7, 1, 12), (1, 0, 5)]));
            }
            // the view: a at a cut, b whole, c made up
            s.extend([1]);
            s.extend(pick(0, 0, 6 + variant, 4 + u16::from(variant)));
            s.extend([1]);
            s.extend(pick(1, 0, n - 1, 99));
            s.extend([u8::from(variant >= 3)]);
            if variant >= 3 {
                s.extend(made_up(1, 3, 0, &[(6, 0, 1), (7, 2, 2)]));
            }
            // four deltas: a whole state, a cut of a's history, made up, the local node
            s.push(3);
            s.push(0);
            s.extend(pick(0, 0, n, 200));
            s.extend([1, 0, n - variant, 0, 2 + variant, 0, 7]);
            s.extend([2, 2, 3, 4, 5, 0, 2, 0, 2, 5, 6, 1, 9]);
            s.extend([3, 0, 1, 0, 4, 1, 1, 0, 2]);
            seeds.push(s);
        }
        seeds
    }
}
