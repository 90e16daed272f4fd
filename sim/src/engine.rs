//! The simulation engine: real [`Gossiper`]s on a virtual clock, a simulated
//! network, and faults. Deterministic: the same settings and seed give the same
//! run, message for message.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rumormill::{Config, Event, Generation, Gossiper, Key, NodeId, Output, Timestamp, Value};

/// The simulated network.
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// Each message takes a latency drawn uniformly from this range; different
    /// latencies reorder messages.
    pub latency: (Duration, Duration),
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Messages longer than this are dropped (and counted), as a link with this
    /// MTU and no fragmentation would.
    pub max_message: Option<usize>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            latency: (Duration::from_micros(500), Duration::from_micros(1500)),
            loss: 0.0,
            duplicate: 0.0,
            max_message: None,
        }
    }
}

/// Message kinds, in the order of the wire's kind byte (1..=6).
pub const KINDS: [&str; 6] = ["SYN", "ACK", "ACK2", "ECHO", "ECHO_REPLY", "SHUTDOWN"];

/// What the network carried.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Messages sent, by kind.
    pub messages: [u64; 6],
    /// Bytes sent, by kind.
    pub bytes: [u64; 6],
    /// The largest message sent.
    pub max_message: usize,
    /// Messages lost by the network (loss rate, partitions, dead receivers, MTU).
    pub lost: u64,
    /// Messages the network delivered twice.
    pub duplicated: u64,
    /// Messages dropped for exceeding the network's maximum size.
    pub oversized: u64,
}

impl Traffic {
    /// All bytes sent.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }

    /// All messages sent.
    pub fn total_messages(&self) -> u64 {
        self.messages.iter().sum()
    }
}

/// Sees every event every node raises, as it happens.
pub trait Tracker {
    /// Node `observer` raised `event` at `now`; `sim` is the cluster after the call.
    fn on_event(&mut self, sim: &Sim, observer: usize, now: Timestamp, event: &Event);
}

impl Tracker for () {
    fn on_event(&mut self, _: &Sim, _: usize, _: Timestamp, _: &Event) {}
}

enum Pending {
    Deliver {
        to: usize,
        incarnation: u32,
        bytes: Vec<u8>,
    },
    /// A node's timer, for the deadline it was scheduled for (stale once the node
    /// asks for another).
    Timer {
        node: usize,
        incarnation: u32,
        deadline: Timestamp,
    },
}

/// One simulated node: its Gossiper, or nothing while it is down.
pub struct Slot {
    /// The node, unless crashed.
    pub gossiper: Option<Gossiper<ChaCha8Rng>>,
    /// Bumped on every restart, so messages and timers for an old process are void.
    pub incarnation: u32,
    /// The generation of the current (or last) process.
    pub generation: u64,
    /// When its scheduled timer fires.
    scheduled: Option<Timestamp>,
}

/// A cluster of Gossipers on a virtual clock.
pub struct Sim {
    /// The nodes' settings.
    pub config: Config,
    /// The network's.
    pub network: Network,
    /// The nodes.
    pub slots: Vec<Slot>,
    ids: Vec<NodeId>,
    index: HashMap<NodeId, usize>,
    /// Virtual time.
    pub now: Timestamp,
    /// When the run started.
    pub start: Timestamp,
    queue: BinaryHeap<Reverse<(Timestamp, u64)>>,
    pending: HashMap<u64, Pending>,
    seq: u64,
    rng: ChaCha8Rng,
    seed: u64,
    /// Partition group of each node; nodes in different groups cannot talk.
    groups: Option<Vec<u32>>,
    /// What the network carried.
    pub traffic: Traffic,
    /// Thread CPU time spent inside Gossiper calls (estimated from a random one
    /// call in [`CPU_SAMPLE`], scaled: reading the thread clock is a system call).
    pub cpu: Cpu,
    /// Gossiper calls made.
    pub calls: u64,
    /// Picks the calls whose CPU time is measured: a stream of its own, so that
    /// measuring never changes the simulation.
    sampler: ChaCha8Rng,
}

/// Thread CPU time inside Gossiper calls, in all and by what the call handled.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    /// All calls.
    pub total: Duration,
    /// By call: timers and local calls (writes, shutdowns, removals), then
    /// datagrams holding a SYN, an ACK, an ACK2, and any other (echoes,
    /// shutdowns, sealed or undecodable frames).
    pub by_call: [Duration; 5],
}

impl Cpu {
    /// What was spent since `earlier`.
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        let mut by_call = [Duration::ZERO; 5];
        for (d, (now, then)) in by_call.iter_mut().zip(self.by_call.iter().zip(&earlier.by_call)) {
            *d = now.saturating_sub(*then);
        }
        Cpu { total: self.total.saturating_sub(earlier.total), by_call }
    }
}

/// What a call handled, for [`Cpu::by_call`]: 0 for timers and local calls, else
/// by the kind of message in the datagram (plain frames only).
fn call_kind(datagram: &[u8]) -> usize {
    match datagram {
        [0x52, 0x4d, 1, kind @ 1..=3, ..] => usize::from(*kind),
        _ => 4,
    }
}

/// One call in this many has its CPU time measured.
pub const CPU_SAMPLE: u32 = 8;

/// CPU time of the calling thread (not wall time: a preempted thread's waiting is
/// not counted).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into the pointer given, which
    // points at a live, writable local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The id of node `i`: host-id-like, 26 bytes.
pub fn node_id(i: usize) -> NodeId {
    NodeId::new(format!("{:08x}-4c1a-9e2f-host-{i:05}", (i as u64).wrapping_mul(2_654_435_761) % (1 << 32)))
        .expect("short id")
}

impl Sim {
    /// `n` nodes, all started at `start` with generation `start`'s second, each with
    /// its RNG seeded from `seed`.
    pub fn new(n: usize, config: Config, network: Network, start: Timestamp, seed: u64) -> Sim {
        let ids: Vec<NodeId> = (0..n).map(node_id).collect();
        let index = ids.iter().enumerate().map(|(i, id)| (id.clone(), i)).collect();
        let mut sim = Sim {
            config,
            network,
            slots: Vec::with_capacity(n),
            ids,
            index,
            now: start,
            start,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            groups: None,
            traffic: Traffic::default(),
            cpu: Cpu::default(),
            calls: 0,
            sampler: ChaCha8Rng::seed_from_u64(seed ^ 0xc0ffee),
        };
        for i in 0..n {
            let g = sim.spawn(i, start.as_secs());
            sim.slots.push(Slot { gossiper: Some(g), incarnation: 0, generation: start.as_secs(), scheduled: None });
            sim.reschedule(i);
        }
        sim
    }

    fn spawn(&self, i: usize, generation: u64) -> Gossiper<ChaCha8Rng> {
        let rng = ChaCha8Rng::seed_from_u64(
            self.seed.wrapping_mul(0x9e37_79b9).wrapping_add(generation.wrapping_mul(1_000_003)) ^ i as u64,
        );
        Gossiper::new(self.config.clone(), self.ids[i].clone(), Generation(generation), self.now, rng)
            .expect("the scenario's settings are valid")
    }

    /// Node ids.
    pub fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The index of a node id.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Number of nodes (running or not).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Node `i`'s Gossiper, if it is running.
    pub fn node(&self, i: usize) -> Option<&Gossiper<ChaCha8Rng>> {
        self.slots[i].gossiper.as_ref()
    }

    /// Whether node `i` is running.
    pub fn running(&self, i: usize) -> bool {
        self.slots[i].gossiper.is_some()
    }

    /// Whether `a` and `b` can talk now.
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        self.groups.as_ref().is_none_or(|g| g[a] == g[b])
    }

    fn push(&mut self, at: Timestamp, p: Pending) {
        self.seq += 1;
        self.pending.insert(self.seq, p);
        self.queue.push(Reverse((at, self.seq)));
    }

    fn reschedule(&mut self, i: usize) {
        let Some(g) = &self.slots[i].gossiper else { return };
        let d = g.next_deadline();
        if d.as_millis() == u64::MAX || self.slots[i].scheduled == Some(d) {
            return;
        }
        self.slots[i].scheduled = Some(d);
        let incarnation = self.slots[i].incarnation;
        self.push(d.max(self.now), Pending::Timer { node: i, incarnation, deadline: d });
    }

    /// Takes a node's output: sends its transmits through the network and hands its
    /// events to the tracker.
    fn absorb(&mut self, i: usize, out: Output, tracker: &mut dyn Tracker) {
        for t in out.transmits {
            let kind = usize::from(t.bytes.get(3).copied().unwrap_or(1).clamp(1, 6)) - 1;
            self.traffic.messages[kind] += 1;
            self.traffic.bytes[kind] += t.bytes.len() as u64;
            self.traffic.max_message = self.traffic.max_message.max(t.bytes.len());
            let Some(to) = self.index_of(&t.to) else {
                self.traffic.lost += 1;
                continue;
            };
            if self.network.max_message.is_some_and(|m| t.bytes.len() > m) {
                self.traffic.oversized += 1;
                self.traffic.lost += 1;
                continue;
            }
            if !self.reachable(i, to) || (self.network.loss > 0.0 && self.unit() < self.network.loss) {
                self.traffic.lost += 1;
                continue;
            }
            let copies = if self.network.duplicate > 0.0 && self.unit() < self.network.duplicate { 2 } else { 1 };
            self.traffic.duplicated += copies - 1;
            let incarnation = self.slots[to].incarnation;
            if copies == 2 {
                let at = self.now + self.latency();
                self.push(at, Pending::Deliver { to, incarnation, bytes: t.bytes.clone() });
            }
            let at = self.now + self.latency();
            self.push(at, Pending::Deliver { to, incarnation, bytes: t.bytes });
        }
        for e in &out.events {
            tracker.on_event(self, i, self.now, e);
        }
        self.reschedule(i);
    }

    fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.network.latency;
        let span = hi.saturating_sub(lo).as_micros() as u64;
        lo + Duration::from_micros(if span == 0 { 0 } else { self.rng.next_u64() % (span + 1) })
    }

    /// Calls a node, timing the call.
    fn call(
        &mut self,
        i: usize,
        kind: usize,
        f: impl FnOnce(&mut Gossiper<ChaCha8Rng>, Timestamp) -> Output,
    ) -> Option<Output> {
        self.call_result(i, kind, |g, now| Ok::<_, core::convert::Infallible>(f(g, now)))
            .map(|out| out.unwrap_or_else(|never| match never {}))
    }

    /// Runs until `until`, delivering messages and firing timers in time order.
    pub fn run_until(&mut self, until: Timestamp, tracker: &mut dyn Tracker) {
        while let Some(&Reverse((at, seq))) = self.queue.peek() {
            if at > until {
                break;
            }
            self.queue.pop();
            self.now = self.now.max(at);
            match self.pending.remove(&seq) {
                Some(Pending::Deliver { to, incarnation, bytes }) => {
                    if self.slots[to].incarnation != incarnation || !self.running(to) {
                        self.traffic.lost += 1;
                        continue;
                    }
                    if let Some(out) = self.call(to, call_kind(&bytes), |g, now| g.handle_datagram(now, &bytes)) {
                        self.absorb(to, out, tracker);
                    }
                }
                Some(Pending::Timer { node, incarnation, deadline }) => {
                    if self.slots[node].incarnation != incarnation || self.slots[node].scheduled != Some(deadline) {
                        continue; // a timer the node no longer wants
                    }
                    self.slots[node].scheduled = None;
                    if let Some(out) = self.call(node, 0, |g, now| g.handle_timeout(now)) {
                        self.absorb(node, out, tracker);
                    }
                }
                None => {}
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration, tracker: &mut dyn Tracker) {
        let until = self.now + d;
        self.run_until(until, tracker);
    }

    /// Sets a key on a running node (a node that is down ignores it).
    ///
    /// # Panics
    ///
    /// If the node refuses the write: a scenario's settings must allow its writes.
    pub fn set(&mut self, i: usize, key: Key, value: Value, tracker: &mut dyn Tracker) {
        match self.call_result(i, 0, |g, now| g.set(now, key, value)) {
            Some(Ok(out)) => self.absorb(i, out, tracker),
            Some(Err(e)) => panic!("node {i} refused a write: {e}"),
            None => {}
        }
    }

    /// Calls a node with a call that may be refused, timing the call.
    fn call_result<E>(
        &mut self,
        i: usize,
        kind: usize,
        f: impl FnOnce(&mut Gossiper<ChaCha8Rng>, Timestamp) -> Result<Output, E>,
    ) -> Option<Result<Output, E>> {
        let now = self.now;
        let measure = self.sampler.next_u32().is_multiple_of(CPU_SAMPLE);
        let g = self.slots[i].gossiper.as_mut()?;
        let t = if measure { thread_cpu() } else { Duration::ZERO };
        let out = f(g, now);
        if measure {
            let spent = thread_cpu().saturating_sub(t) * CPU_SAMPLE;
            self.cpu.total += spent;
            self.cpu.by_call[kind] += spent;
        }
        self.calls += 1;
        Some(out)
    }

    /// Node `i` crashes: gone, silently.
    pub fn crash(&mut self, i: usize) {
        self.slots[i].gossiper = None;
        self.slots[i].incarnation += 1;
        self.slots[i].scheduled = None;
    }

    /// Node `i` starts again: a new process with a newer generation, knowing nothing.
    pub fn restart(&mut self, i: usize) {
        let generation = self.slots[i].generation.max(self.now.as_secs()) + 1;
        let g = self.spawn(i, generation);
        let slot = &mut self.slots[i];
        slot.gossiper = Some(g);
        slot.incarnation += 1;
        slot.generation = generation;
        slot.scheduled = None;
        self.reschedule(i);
    }

    /// Node `i` shuts down gracefully.
    pub fn shutdown(&mut self, i: usize, tracker: &mut dyn Tracker) {
        if let Some(out) = self.call(i, 0, |g, now| g.shutdown(now)) {
            self.absorb(i, out, tracker);
        }
    }

    /// Node `by` removes node `node` from the cluster.
    pub fn remove(&mut self, by: usize, node: usize, tracker: &mut dyn Tracker) -> Result<(), rumormill::RemoveError> {
        let id = self.ids[node].clone();
        match self.call_result(by, 0, |g, now| g.remove(now, &id)) {
            Some(Ok(out)) => {
                self.absorb(by, out, tracker);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => Ok(()), // the remover is down: nothing happens
        }
    }

    /// Splits the cluster: `group[i]` is node `i`'s side.
    pub fn partition(&mut self, group: Vec<u32>) {
        assert_eq!(group.len(), self.len());
        self.groups = Some(group);
    }

    /// Ends any partition.
    pub fn heal(&mut self) {
        self.groups = None;
    }

    /// The current round, counting from the start.
    pub fn round(&self) -> u64 {
        self.now.saturating_since(self.start).as_millis() as u64 / self.config.interval.as_millis().max(1) as u64
    }
}
