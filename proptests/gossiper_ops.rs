//! Random operations on a few Gossipers: messages delivered in any order,
//! duplicated or lost, time jumps (backwards too), writes, deletes, restarts,
//! shutdowns, removals and garbage bytes. Nothing panics, and after every step:
//!
//! - every transmit fits the message budget and decodes;
//! - no view holds a field its owner never wrote (per owner incarnation);
//! - every state in every view is normalized, and the local state is the node's own;
//! - a deadline that is met moves forward (no busy loop at one instant);
//! - snapshot revisions and metrics never go back.

use std::collections::BTreeMap;

use core::time::Duration;
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{ClusterName, Codec, Config, Generation, Gossiper, Key, NodeId, Output, Timestamp, Version};

const T0: u64 = 1_700_000_000;
const KEYS: [&str; 3] = ["STATUS", "DC", "load"];

#[derive(Clone, Debug)]
enum Op {
    Deliver(usize),
    Duplicate(usize),
    Drop(usize),
    /// Advance one node's clock (or move it back) and call its timer.
    Tick {
        node: usize,
        millis: i64,
    },
    Write {
        node: usize,
        key: usize,
        len: usize,
    },
    Delete {
        node: usize,
        key: usize,
    },
    Restart {
        node: usize,
    },
    Shutdown {
        node: usize,
    },
    Remove {
        by: usize,
        node: usize,
    },
    Garbage {
        node: usize,
        bytes: Vec<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let n = any::<usize>();
    prop_oneof![
        8 => n.prop_map(Op::Deliver),
        1 => n.prop_map(Op::Duplicate),
        2 => n.prop_map(Op::Drop),
        6 => (n, prop_oneof![4 => 0i64..1500, 1 => -5000i64..0, 1 => 5000i64..40_000]).prop_map(|(node, millis)| Op::Tick { node, millis }),
        2 => (n, 0..KEYS.len(), 0usize..40).prop_map(|(node, key, len)| Op::Write { node, key, len }),
        1 => (n, 0..KEYS.len()).prop_map(|(node, key)| Op::Delete { node, key }),
        1 => n.prop_map(|node| Op::Restart { node }),
        1 => n.prop_map(|node| Op::Shutdown { node }),
        1 => (n, n).prop_map(|(by, node)| Op::Remove { by, node }),
        1 => (n, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(node, bytes)| Op::Garbage { node, bytes }),
    ]
}

/// What each owner incarnation ever wrote: version -> (key, or "" for the
/// heartbeat; value).
type Written = BTreeMap<(NodeId, Generation), BTreeMap<Version, (String, Option<Vec<u8>>)>>;

struct World {
    config: Config,
    codec: Codec,
    nodes: Vec<Gossiper<ChaCha8Rng>>,
    clocks: Vec<Timestamp>,
    generations: Vec<u64>,
    net: Vec<(usize, Vec<u8>)>,
    written: Written,
    revisions: Vec<u64>,
    rounds: Vec<u64>,
}

fn id(i: usize) -> NodeId {
    NodeId::new(format!("n{i}")).unwrap()
}

impl World {
    fn new(n: usize, budget: usize, seed: u64) -> World {
        let mut config = Config::new(ClusterName::new("ops").unwrap());
        config.seeds = vec![id(0)];
        config.max_message_bytes = budget;
        config.limits.max_value_len = 64;
        let now = Timestamp::from_secs(T0);
        let nodes = (0..n)
            .map(|i| {
                Gossiper::new(config.clone(), id(i), Generation(T0), now, ChaCha8Rng::seed_from_u64(seed + i as u64))
                    .unwrap()
            })
            .collect();
        let mut w = World {
            codec: Codec::new(config.cluster.clone()),
            config,
            nodes,
            clocks: vec![now; n],
            generations: vec![T0; n],
            net: Vec::new(),
            written: BTreeMap::new(),
            revisions: vec![0; n],
            rounds: vec![0; n],
        };
        for i in 0..n {
            w.record(i);
        }
        w
    }

    fn record(&mut self, i: usize) {
        let v = self.nodes[i].view();
        let s = v.local_state();
        let log = self.written.entry((v.local_id().clone(), s.generation())).or_default();
        let mut fields = vec![(s.heartbeat(), (String::new(), None))];
        fields.extend(
            s.values()
                .iter()
                .map(|(k, vv)| (vv.version, (k.as_str().to_owned(), vv.value.as_ref().map(|x| x.as_bytes().to_vec())))),
        );
        for (version, what) in fields {
            if version == Version::ZERO {
                continue;
            }
            if let Some(prev) = log.insert(version, what.clone()) {
                assert_eq!(prev, what, "node {i} reused version {version}");
            }
        }
    }

    fn absorb(&mut self, i: usize, out: Output) -> Result<(), TestCaseError> {
        for t in out.transmits {
            prop_assert!(t.bytes.len() <= self.config.max_message_bytes);
            prop_assert!(self.codec.decode(&t.bytes).is_ok(), "sent bytes that do not decode");
            let to = (0..self.nodes.len()).find(|&j| id(j) == t.to);
            if let Some(to) = to {
                self.net.push((to, t.bytes));
            }
        }
        self.record(i);
        Ok(())
    }

    fn run(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let n = self.nodes.len();
        match op.clone() {
            Op::Deliver(k) | Op::Drop(k) | Op::Duplicate(k) if self.net.is_empty() => {
                let _ = k;
            }
            Op::Deliver(k) => {
                let (to, bytes) = self.net.remove(k % self.net.len());
                let out = self.nodes[to].handle_datagram(self.clocks[to], &bytes);
                self.absorb(to, out)?;
            }
            Op::Duplicate(k) => {
                let m = self.net[k % self.net.len()].clone();
                self.net.push(m);
            }
            Op::Drop(k) => {
                self.net.remove(k % self.net.len());
            }
            Op::Tick { node, millis } => {
                let i = node % n;
                let t = Timestamp::from_millis(self.clocks[i].as_millis().saturating_add_signed(millis));
                self.clocks[i] = t;
                let deadline = self.nodes[i].next_deadline();
                let out = self.nodes[i].handle_timeout(t);
                let met = t.max(self.clocks[i]) >= deadline;
                self.absorb(i, out)?;
                if met && deadline.as_millis() != u64::MAX {
                    prop_assert!(
                        self.nodes[i].next_deadline() > deadline,
                        "the deadline did not move after it was met"
                    );
                }
            }
            Op::Write { node, key, len } => {
                let i = node % n;
                if let Ok(out) = self.nodes[i].set(self.clocks[i], Key::new(KEYS[key]).unwrap(), vec![7u8; len]) {
                    self.absorb(i, out)?;
                }
            }
            Op::Delete { node, key } => {
                let i = node % n;
                if let Ok(out) = self.nodes[i].delete(self.clocks[i], &Key::new(KEYS[key]).unwrap()) {
                    self.absorb(i, out)?;
                }
            }
            Op::Restart { node } => {
                let i = node % n;
                self.generations[i] = self.generations[i].max(self.clocks[i].as_secs()) + 1;
                self.nodes[i] = Gossiper::new(
                    self.config.clone(),
                    id(i),
                    Generation(self.generations[i]),
                    self.clocks[i],
                    ChaCha8Rng::seed_from_u64(self.generations[i]),
                )
                .unwrap();
                self.revisions[i] = 0;
                self.rounds[i] = 0;
                self.record(i);
            }
            Op::Shutdown { node } => {
                let i = node % n;
                let out = self.nodes[i].shutdown(self.clocks[i]);
                self.absorb(i, out)?;
            }
            Op::Remove { by, node } => {
                let (i, j) = (by % n, node % n);
                if let Ok(out) = self.nodes[i].remove(self.clocks[i], &id(j)) {
                    self.absorb(i, out)?;
                }
            }
            Op::Garbage { node, bytes } => {
                let i = node % n;
                let out = self.nodes[i].handle_datagram(self.clocks[i], &bytes);
                self.absorb(i, out)?;
            }
        }
        self.check()
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        for i in 0..self.nodes.len() {
            let g = &mut self.nodes[i];
            prop_assert_eq!(g.view().local_id(), &id(i));
            for (node, s) in g.view().iter() {
                prop_assert!(s.is_normalized());
                let log = self.written.get(&(node.clone(), s.generation()));
                prop_assert!(log.is_some(), "node {} holds an unknown generation of {}", i, node);
                let log = log.unwrap();
                for (k, vv) in s.values() {
                    let want = (k.as_str().to_owned(), vv.value.as_ref().map(|x| x.as_bytes().to_vec()));
                    prop_assert_eq!(
                        log.get(&vv.version),
                        Some(&want),
                        "node {} holds {}:{}@{}",
                        i,
                        node,
                        k,
                        vv.version
                    );
                }
            }
            let rev = g.snapshot().revision;
            prop_assert!(rev >= self.revisions[i], "snapshot revision went back");
            self.revisions[i] = rev;
            prop_assert!(g.metrics().rounds >= self.rounds[i]);
            self.rounds[i] = g.metrics().rounds;
        }
        Ok(())
    }
}

proptest! {
    #[test]
    fn random_operations_never_panic_and_keep_the_invariants(
        n in 2usize..5,
        budget in prop_oneof![Just(1000usize), Just(1400), Just(65_000)],
        ops in prop::collection::vec(op(), 0..150),
        seed in any::<u64>(),
    ) {
        let mut w = World::new(n, budget, seed);
        for op in &ops {
            w.run(op)?;
        }
        // and a calm end: everyone ticks for a while
        for _ in 0..30 {
            for i in 0..n {
                w.run(&Op::Tick { node: i, millis: 400 })?;
            }
            while !w.net.is_empty() {
                w.run(&Op::Deliver(0))?;
            }
        }
        let _ = Duration::ZERO;
    }
}
