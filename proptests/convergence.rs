//! Convergence: random clusters (2 to 32 nodes) with random local writes, deletes,
//! purges and restarts, gossiping over a network that loses, duplicates and
//! reorders messages, with byte budgets down to 512 bytes. Every message goes
//! through the codec and must fit its sender's budget.
//!
//! Checked all along: no view ever holds a version its owner never wrote (or a
//! value other than the one written at that version). Checked at the end: once
//! writes stop, exchanges over a connected schedule make every view equal to
//! every owner's own state.

use std::collections::BTreeMap;

use core::time::Duration;
use proptest::prelude::*;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rumormill::{
    Budget, ClusterName, Codec, Envelope, Generation, Header, Ignored, Key, Message, NodeId, PageForm, Timestamp,
    Version, View, build_ack2, build_syn, handle_ack, handle_ack2, handle_syn,
};

const T0: u64 = 1_700_000_000;
const KEYS: [&str; 5] = ["STATUS", "DC", "load", "tokens", "x"];
const BUDGETS: [usize; 3] = [512, 1400, 65_000];

#[derive(Clone, Debug)]
enum Op {
    Write {
        node: usize,
        key: usize,
        len: usize,
    },
    Delete {
        node: usize,
        key: usize,
    },
    Purge {
        node: usize,
        grace: u64,
    },
    Restart {
        node: usize,
    },
    /// `node` starts a round with another node.
    Round {
        node: usize,
        peer: usize,
        form: PageForm,
    },
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    let n = any::<usize>();
    prop_oneof![
        3 => (n, 0..KEYS.len(), 1usize..64).prop_map(|(node, key, len)| Op::Write { node, key, len }),
        1 => (n, 0..KEYS.len()).prop_map(|(node, key)| Op::Delete { node, key }),
        1 => (n, 0u64..3).prop_map(|(node, grace)| Op::Purge { node, grace }),
        1 => n.prop_map(|node| Op::Restart { node }),
        6 => (n, n, prop_oneof![Just(PageForm::Full), Just(PageForm::Compact), Just(PageForm::Hashed)])
            .prop_map(|(node, peer, form)| Op::Round { node, peer, form }),
        8 => n.prop_map(Op::Deliver),
        2 => n.prop_map(Op::Drop),
        1 => n.prop_map(Op::Duplicate),
        2 => Just(Op::Tick),
    ]
}

/// What an owner wrote at one version of one generation.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Written {
    Heartbeat,
    Value(Key, Option<Vec<u8>>),
}

struct Node {
    view: View,
    codec: Codec,
    /// Where the next page of each form starts: the two walks are separate, or a
    /// compact page covering everything would send the full walk back to the start.
    full_cursor: Option<NodeId>,
    compact_cursor: Option<NodeId>,
    budget: usize,
}

struct Packet {
    from: usize,
    to: usize,
    bytes: Vec<u8>,
}

struct Cluster {
    nodes: Vec<Node>,
    net: Vec<Packet>,
    now: Timestamp,
    rng: ChaCha8Rng,
    /// Every field each owner generation ever had.
    written: BTreeMap<(NodeId, Generation), BTreeMap<Version, Written>>,
}

impl Cluster {
    fn new(n: usize, budgets: &[usize], seed: u64) -> Cluster {
        let cluster = ClusterName::new("prop").unwrap();
        let nodes = (0..n)
            .map(|i| Node {
                // host-id-like ids, so that a full digest page of 32 nodes outgrows 512 bytes
                view: View::new(NodeId::new(format!("node-{i:02}-5f0e8a1c-4b7d-9e2f")).unwrap(), Generation(T0)),
                codec: Codec::new(cluster.clone()),
                full_cursor: None,
                compact_cursor: None,
                budget: budgets[i % budgets.len()],
            })
            .collect();
        let mut c = Cluster {
            nodes,
            net: Vec::new(),
            now: Timestamp::from_secs(T0),
            rng: ChaCha8Rng::seed_from_u64(seed),
            written: BTreeMap::new(),
        };
        for i in 0..n {
            c.record(i);
        }
        c
    }

    /// Records the owner's current fields; a version that meant something else
    /// before would be a version reused.
    fn record(&mut self, i: usize) {
        let view = &self.nodes[i].view;
        let s = view.local_state();
        let log = self.written.entry((view.local_id().clone(), s.generation())).or_default();
        let mut fields = vec![(s.heartbeat(), Written::Heartbeat)];
        fields.extend(
            s.values().iter().map(|(k, vv)| {
                (vv.version, Written::Value(k.clone(), vv.value.as_ref().map(|v| v.as_bytes().to_vec())))
            }),
        );
        for (v, w) in fields {
            if let Some(prev) = log.insert(v, w.clone()) {
                assert_eq!(prev, w, "owner reused version {v}");
            }
        }
    }

    fn header(&self, i: usize) -> Header {
        let v = &self.nodes[i].view;
        Header {
            cluster: self.nodes[i].codec.cluster().clone(),
            sender: v.local_id().clone(),
            generation: v.local_generation(),
        }
    }

    fn budget(&self, i: usize) -> Budget {
        Budget::new(self.nodes[i].budget, &self.header(i)).unwrap()
    }

    fn send(&mut self, from: usize, to: usize, message: Message) {
        let bytes = Envelope { header: self.header(from), message }.encode();
        assert!(
            bytes.len() <= self.nodes[from].budget,
            "{} bytes over a budget of {}",
            bytes.len(),
            self.nodes[from].budget
        );
        self.net.push(Packet { from, to, bytes });
    }

    fn start_round(&mut self, a: usize, b: usize, form: PageForm) {
        let node = &self.nodes[a];
        let start = match form {
            PageForm::Full | PageForm::Hashed => node.full_cursor.clone(),
            PageForm::Compact => node.compact_cursor.clone(),
        };
        let built = build_syn(&node.view, self.budget(a), start.as_ref(), form).unwrap();
        match form {
            PageForm::Full | PageForm::Hashed => self.nodes[a].full_cursor = built.next,
            PageForm::Compact => self.nodes[a].compact_cursor = built.next,
        }
        self.send(a, b, Message::Syn(built.syn));
    }

    fn apply(&mut self, i: usize, deltas: &[rumormill::Delta]) {
        let applied = self.nodes[i].view.apply(deltas, self.now);
        for ignored in applied.ignored {
            // a peer claims a newer version of our own state: move past it
            if let Ignored::OwnState { generation, version } = ignored
                && generation == self.nodes[i].view.local_generation()
                && version > self.nodes[i].view.local_state().max_version()
            {
                self.nodes[i].view.advance_local_version(version).unwrap();
                self.record(i);
            }
        }
    }

    fn deliver(&mut self, p: Packet) {
        let (r, s) = (p.to, p.from);
        let env = self.nodes[r].codec.decode(&p.bytes).expect("what we encode decodes");
        match env.message {
            Message::Syn(syn) => {
                let ack = handle_syn(&self.nodes[r].view, &syn, self.budget(r), &mut self.rng).message;
                self.send(r, s, Message::Ack(ack));
            }
            Message::Ack(ack) => {
                let received = handle_ack(&self.nodes[r].view, &ack);
                self.apply(r, &received.deltas);
                let ack2 = build_ack2(&self.nodes[r].view, &received.requests, self.budget(r), &mut self.rng).message;
                self.send(r, s, Message::Ack2(ack2));
                if received.resend.is_some() {
                    // the next page of the full walk: repeated resends cover every node
                    self.start_round(r, s, PageForm::Full);
                }
            }
            Message::Ack2(ack2) => {
                let received = handle_ack2(&self.nodes[r].view, &ack2);
                self.apply(r, &received.deltas);
            }
            other => panic!("unexpected message {other:?}"),
        }
    }

    fn run(&mut self, op: &Op) {
        let n = self.nodes.len();
        let key = |k: usize| Key::new(KEYS[k]).unwrap();
        match *op {
            Op::Write { node, key: k, len } => {
                let i = node % n;
                let byte = (self.rng.next_u32() % 256) as u8;
                self.nodes[i].view.set_local(key(k), vec![byte; len]).unwrap();
                self.record(i);
            }
            Op::Delete { node, key: k } => {
                let i = node % n;
                self.nodes[i].view.delete_local(&key(k), self.now).unwrap();
                self.record(i);
            }
            Op::Purge { node, grace } => {
                let i = node % n;
                self.nodes[i].view.purge_local(self.now, Duration::from_secs(grace));
                self.record(i);
            }
            Op::Restart { node } => {
                // a new process: a newer generation, and it knows only itself
                let i = node % n;
                let id = self.nodes[i].view.local_id().clone();
                let generation = Generation(self.nodes[i].view.local_generation().0 + 1);
                self.nodes[i].view = View::new(id, generation);
                self.nodes[i].full_cursor = None;
                self.nodes[i].compact_cursor = None;
                self.nodes[i].view.set_local(key(0), "BOOT").unwrap();
                self.record(i);
            }
            Op::Round { node, peer, form } => {
                let (a, b) = (node % n, peer % n);
                if a != b {
                    self.nodes[a].view.beat().unwrap();
                    self.record(a);
                    self.start_round(a, b, form);
                }
            }
            Op::Deliver(i) if !self.net.is_empty() => {
                let p = self.net.remove(i % self.net.len());
                self.deliver(p);
            }
            Op::Drop(i) if !self.net.is_empty() => {
                self.net.remove(i % self.net.len());
            }
            Op::Duplicate(i) if !self.net.is_empty() => {
                let p = &self.net[i % self.net.len()];
                let copy = Packet { from: p.from, to: p.to, bytes: p.bytes.clone() };
                self.net.push(copy);
            }
            Op::Tick => self.now = self.now + Duration::from_secs(1),
            _ => {}
        }
    }

    /// No view holds a field its owner did not write, in that generation.
    fn check_written(&self) -> Result<(), TestCaseError> {
        for node in &self.nodes {
            for (id, s) in node.view.iter() {
                let log = self.written.get(&(id.clone(), s.generation()));
                prop_assert!(
                    log.is_some(),
                    "{} holds generation {} of {}, never used",
                    node.view.local_id(),
                    s.generation(),
                    id
                );
                let log = log.unwrap();
                if s.heartbeat() > Version::ZERO {
                    prop_assert_eq!(log.get(&s.heartbeat()), Some(&Written::Heartbeat));
                }
                for (k, vv) in s.values() {
                    let want = Written::Value(k.clone(), vv.value.as_ref().map(|v| v.as_bytes().to_vec()));
                    prop_assert_eq!(
                        log.get(&vv.version),
                        Some(&want),
                        "{} holds {}:{}@{}",
                        node.view.local_id(),
                        id,
                        k,
                        vv.version
                    );
                }
                prop_assert!(s.max_version() <= *log.keys().next_back().unwrap());
            }
        }
        Ok(())
    }

    fn converged(&self) -> bool {
        self.nodes.iter().all(|a| {
            a.view.len() == self.nodes.len()
                && self.nodes.iter().all(|owner| a.view.get(owner.view.local_id()) == Some(owner.view.local_state()))
        })
    }

    /// Lossless exchanges along a ring (connected) and random chords, with no
    /// writes, until every view equals every owner's state.
    fn settle(&mut self, max_rounds: usize) -> Option<usize> {
        self.net.clear();
        let n = self.nodes.len();
        let mut order: Vec<usize> = (0..n).collect();
        for round in 0..max_rounds {
            if self.converged() {
                return Some(round);
            }
            // nodes start their rounds in a random order, as their timers would
            for i in (1..n).rev() {
                order.swap(i, self.rng.next_u32() as usize % (i + 1));
            }
            for a in order.clone() {
                let b = if round % 2 == 0 { (a + 1) % n } else { self.rng.next_u32() as usize % n };
                if a == b {
                    continue;
                }
                let form = [PageForm::Full, PageForm::Compact, PageForm::Hashed][round % 3];
                self.start_round(a, b, form);
                while let Some(p) = self.net.pop() {
                    self.deliver(p);
                }
            }
        }
        self.converged().then_some(max_rounds)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn views_converge_and_hold_only_what_owners_wrote(
        n in 2usize..=32,
        budgets in prop::collection::vec(prop::sample::select(&BUDGETS[..]), 1..4),
        ops in prop::collection::vec(op(), 0..120),
        seed in any::<u64>(),
    ) {
        let mut c = Cluster::new(n, &budgets, seed);
        for op in &ops {
            c.run(op);
            if matches!(op, Op::Deliver(_)) {
                c.check_written()?;
            }
        }
        c.check_written()?;
        let rounds = c.settle(400);
        c.check_written()?;
        prop_assert!(rounds.is_some(), "no convergence in 400 rounds ({n} nodes, budgets {budgets:?})");
    }
}
