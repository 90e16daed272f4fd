//! An in-memory cluster of Gossipers on a virtual clock, for scenario tests:
//! latency, loss, partitions, crashes, restarts, pauses. Deterministic per seed.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rumormill::{ClusterName, Config, Event, Generation, Gossiper, Key, NodeId, Output, Timestamp};

pub const T0: u64 = 1_700_000_000;

pub fn id(i: usize) -> NodeId {
    NodeId::new(format!("node-{i:02}")).unwrap()
}

/// A message in flight: when it lands, a tie-breaking sequence number, the
/// destination and the bytes.
type InFlight = Reverse<(Timestamp, u64, usize, Vec<u8>)>;

pub struct Cluster {
    pub config: Config,
    pub nodes: Vec<Option<Gossiper<ChaCha8Rng>>>,
    pub now: Timestamp,
    /// (deliver at, sequence, to, bytes)
    queue: BinaryHeap<InFlight>,
    seq: u64,
    net: ChaCha8Rng,
    pub loss: f64,
    pub latency: Duration,
    /// Nodes in different groups cannot reach each other.
    groups: Option<Vec<BTreeSet<usize>>>,
    /// Nodes that are frozen (a long pause): not called until thawed.
    frozen: BTreeSet<usize>,
    pub events: Vec<Vec<(Timestamp, Event)>>,
    generations: Vec<u64>,
    seed: u64,
    /// The longest message sent so far, in bytes.
    pub largest: usize,
}

impl Cluster {
    pub fn new(n: usize, seeds: &[usize], configure: impl Fn(&mut Config), seed: u64) -> Cluster {
        let mut config = Config::new(ClusterName::new("scenario").unwrap());
        config.seeds = seeds.iter().map(|&i| id(i)).collect();
        configure(&mut config);
        let now = Timestamp::from_secs(T0);
        let nodes = (0..n)
            .map(|i| {
                Some(
                    Gossiper::new(
                        config.clone(),
                        id(i),
                        Generation(T0),
                        now,
                        ChaCha8Rng::seed_from_u64(seed * 1000 + i as u64),
                    )
                    .unwrap(),
                )
            })
            .collect();
        Cluster {
            config,
            nodes,
            now,
            queue: BinaryHeap::new(),
            seq: 0,
            net: ChaCha8Rng::seed_from_u64(seed),
            loss: 0.0,
            latency: Duration::from_millis(1),
            groups: None,
            frozen: BTreeSet::new(),
            events: vec![Vec::new(); n],
            generations: vec![T0; n],
            seed,
            largest: 0,
        }
    }

    pub fn node(&self, i: usize) -> &Gossiper<ChaCha8Rng> {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Gossiper<ChaCha8Rng> {
        self.nodes[i].as_mut().expect("node is running")
    }

    fn index(&self, node: &NodeId) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| id(i) == *node)
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        match &self.groups {
            None => true,
            Some(groups) => groups.iter().any(|g| g.contains(&a) && g.contains(&b)),
        }
    }

    /// Takes an output: queues its transmits, records its events.
    pub fn absorb(&mut self, from: usize, out: Output) {
        for e in out.events {
            self.events[from].push((self.now, e));
        }
        for t in out.transmits {
            self.largest = self.largest.max(t.bytes.len());
            let Some(to) = self.index(&t.to) else { continue };
            // (seeds lists hold the seeds themselves: a seed must skip itself)
            assert_ne!(to, from, "node {from} sent a message to itself");
            if !self.reachable(from, to) || self.net.next_u64() as f64 / u64::MAX as f64 <= self.loss && self.loss > 0.0
            {
                continue;
            }
            self.seq += 1;
            self.queue.push(Reverse((self.now + self.latency, self.seq, to, t.bytes)));
        }
    }

    /// Runs until `until`, delivering messages and firing deadlines in time order.
    pub fn run_until(&mut self, until: Timestamp) {
        loop {
            let next_msg = self.queue.peek().map(|Reverse((t, ..))| *t);
            let next_timer = (0..self.nodes.len())
                .filter(|i| !self.frozen.contains(i))
                .filter_map(|i| self.nodes[i].as_ref().map(|g| (g.next_deadline(), i)))
                .min();
            let t_timer = next_timer.map(|(t, _)| t);
            let t = match (next_msg, t_timer) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            if next_msg == Some(t) {
                let Reverse((_, _, to, bytes)) = self.queue.pop().unwrap();
                if self.frozen.contains(&to) {
                    continue; // lost while the node is paused
                }
                if let Some(g) = self.nodes[to].as_mut() {
                    let out = g.handle_datagram(self.now, &bytes);
                    self.absorb(to, out);
                }
            } else if let Some((_, i)) = next_timer {
                let now = self.now;
                let out = self.node_mut(i).handle_timeout(now);
                self.absorb(i, out);
            }
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, d: Duration) {
        let until = self.now + d;
        self.run_until(until);
    }

    /// Runs until `done` holds (checked every 100 ms), at most `max`; returns how
    /// long it took.
    pub fn run_while_not(&mut self, max: Duration, mut done: impl FnMut(&Cluster) -> bool) -> Option<Duration> {
        let start = self.now;
        while self.now.saturating_since(start) < max {
            if done(self) {
                return Some(self.now.saturating_since(start));
            }
            self.run_for(Duration::from_millis(100));
        }
        done(self).then(|| self.now.saturating_since(start))
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// Starts node `i` again: a new process, a newer generation, knowing nothing.
    pub fn restart(&mut self, i: usize) {
        self.generations[i] = self.generations[i].max(self.now.as_secs()) + 1;
        let g = Gossiper::new(
            self.config.clone(),
            id(i),
            Generation(self.generations[i]),
            self.now,
            ChaCha8Rng::seed_from_u64(self.seed * 7919 + self.generations[i] + i as u64),
        )
        .unwrap();
        self.nodes[i] = Some(g);
    }

    pub fn set(&mut self, i: usize, key: &str, value: &str) {
        let now = self.now;
        let out = self.node_mut(i).set(now, Key::new(key).unwrap(), value).unwrap();
        self.absorb(i, out);
    }

    pub fn partition(&mut self, groups: &[&[usize]]) {
        self.groups = Some(groups.iter().map(|g| g.iter().copied().collect()).collect());
    }

    pub fn heal(&mut self) {
        self.groups = None;
    }

    pub fn freeze(&mut self, i: usize) {
        self.frozen.insert(i);
    }

    pub fn thaw(&mut self, i: usize) {
        self.frozen.remove(&i);
    }

    /// The running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].is_some()).collect()
    }

    /// Whether every running node other than `j` sees `j` as up (or down).
    pub fn all_see(&self, j: usize, up: bool) -> bool {
        self.running().into_iter().filter(|&i| i != j).all(|i| self.node(i).is_up(&id(j)) == up)
    }

    /// Whether every running node holds every other running node's current
    /// generation and values (heartbeats move on every round, so they may lag).
    pub fn converged(&self) -> bool {
        let running = self.running();
        running.iter().all(|&i| {
            running.iter().all(|&j| {
                let owner = self.node(j).view().local_state();
                self.node(i)
                    .view()
                    .get(&id(j))
                    .is_some_and(|s| s.generation() == owner.generation() && s.values() == owner.values())
            })
        })
    }

    /// Events of node `i` matching `f`.
    pub fn count(&self, i: usize, f: impl Fn(&Event) -> bool) -> usize {
        self.events[i].iter().filter(|(_, e)| f(e)).count()
    }

    pub fn values(&self, i: usize, of: usize) -> BTreeMap<String, String> {
        self.node(i)
            .view()
            .get(&id(of))
            .map(|s| {
                s.live_values()
                    .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}
