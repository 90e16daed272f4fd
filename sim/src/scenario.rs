//! The scenarios: what happens, what convergence means, what is measured.

use std::collections::{BTreeSet, HashMap};

use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rumormill::{
    Ack2, ClusterName, Config, Delta, Event, Fanout, Key, Message, NodeId, PhiModel, Timestamp, Value, Version,
};

use crate::engine::{Cpu, Network, Sim, Tracker};
use crate::report::{Report, RoundStats};

/// The scenarios, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// N nodes start at once, each with K keys; only node 0 is a seed. Until every
    /// node holds every other node's keys at their latest version.
    ColdStart,
    /// After convergence one node changes one key: until every node has it.
    SingleUpdate,
    /// After convergence, nothing but heartbeats for `--rounds` rounds.
    Steady,
    /// After convergence a node crashes: until every live node sees it down; then
    /// it restarts: until every node sees it up with its new state.
    Crash,
    /// After convergence the cluster splits in two for `--partition-rounds`; each
    /// side changes a key; after the heal: until everyone has both and sees
    /// everyone up.
    PartitionHeal,
    /// After convergence, nodes leave (shut down) and come back (new generation)
    /// continuously for `--rounds`; then until every live node sees exactly the
    /// live nodes up and holds their state.
    Churn,
    /// After convergence a node is removed while a partitioned peer still holds its
    /// state; after the heal, for `--rounds`: the removed node must never come back.
    Removal,
}

/// Everything a run is told.
#[derive(Clone, Debug, PartialEq)]
pub struct Params {
    /// Which scenario.
    pub scenario: Scenario,
    /// Nodes.
    pub nodes: usize,
    /// Keys each node sets.
    pub keys: usize,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Message loss rate.
    pub loss: f64,
    /// Message duplication rate.
    pub duplicate: f64,
    /// Message budget, in bytes (the nodes' `max_message_bytes`).
    pub budget: usize,
    /// Latency range, in microseconds.
    pub latency_us: (u64, u64),
    /// Rounds of the measured phase (steady, churn, removal).
    pub rounds: u64,
    /// Rounds of the partition (partition-heal).
    pub partition_rounds: u64,
    /// Give up after this many rounds.
    pub max_rounds: u64,
    /// Peer choice.
    pub fanout: Fanout,
    /// Failure detector model.
    pub detector: PhiModel,
    /// Compact digests on or off.
    pub compact: bool,
    /// Fingerprinted pages where members may differ (else full ids).
    pub hashed: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            scenario: Scenario::ColdStart,
            nodes: 1024,
            keys: 8,
            value_bytes: 16,
            seed: 1,
            loss: 0.0,
            duplicate: 0.0,
            budget: 65_000,
            latency_us: (500, 1500),
            rounds: 20,
            partition_rounds: 30,
            max_rounds: 1_000,
            fanout: Fanout::Reference,
            detector: PhiModel::Exponential,
            compact: true,
            hashed: true,
        }
    }
}

/// Follows, from events, how many of the expected facts (owner, key, value) each
/// node holds; a node is up to date when it holds them all. Exact, and O(events).
struct Facts {
    /// The facts of each owner: its keys and their expected values.
    per_owner: Vec<Vec<(Key, Value)>>,
    /// Facts of each owner each node holds: `counts[observer * n + owner]`.
    counts: Vec<u8>,
    n: usize,
    have: Vec<usize>,
    total: usize,
    complete: usize,
    /// When the last node became up to date.
    done_at: Option<Timestamp>,
    /// Dead events about nodes that were up and reachable.
    false_convictions: u64,
    /// Dead events about a node in `watch`, by observer.
    dead: HashMap<usize, BTreeSet<usize>>,
    /// Alive events about a node in `watch`, by observer.
    alive: HashMap<usize, BTreeSet<usize>>,
    /// Joined/Restarted events for a removed node at its removed generation.
    resurrections: u64,
    removed: Option<(usize, u64)>,
}

impl Facts {
    fn new(n: usize) -> Facts {
        Facts {
            per_owner: vec![Vec::new(); n],
            counts: vec![0; n * n],
            n,
            have: vec![0; n],
            total: 0,
            complete: 0,
            done_at: None,
            false_convictions: 0,
            dead: HashMap::new(),
            alive: HashMap::new(),
            resurrections: 0,
            removed: None,
        }
    }

    /// Replaces the expected facts and recounts what every node holds (O(N * facts)).
    fn expect(&mut self, sim: &Sim, facts: Vec<(usize, Key, Value)>) {
        for keys in &mut self.per_owner {
            keys.clear();
        }
        self.total = facts.len();
        for (owner, key, value) in facts {
            self.per_owner[owner].push((key, value));
        }
        self.complete = 0;
        self.done_at = None;
        for i in 0..sim.len() {
            self.have[i] = 0;
            for owner in 0..sim.len() {
                let c = if sim.running(i) && !self.per_owner[owner].is_empty() { self.count(sim, i, owner) } else { 0 };
                self.counts[i * self.n + owner] = c as u8;
                self.have[i] += c;
            }
            if sim.running(i) && self.have[i] == self.total {
                self.complete += 1;
            }
        }
    }

    /// Recounts what node `i` holds of `owner` (after a whole state arrived or left).
    fn recount(&mut self, sim: &Sim, i: usize, owner: usize, now: Timestamp) {
        if self.per_owner[owner].is_empty() {
            return;
        }
        let new = self.count(sim, i, owner);
        let old = self.counts[i * self.n + owner] as usize;
        self.counts[i * self.n + owner] = new as u8;
        self.bump(sim, i, new as isize - old as isize, now);
    }

    /// Facts of `owner` that node `i` holds now.
    fn count(&self, sim: &Sim, i: usize, owner: usize) -> usize {
        let Some(state) = sim.node(i).and_then(|g| g.view().get(&sim.ids()[owner])) else { return 0 };
        self.per_owner[owner].iter().filter(|(k, v)| state.live_value(k) == Some(v)).count()
    }

    fn all_done(&self, sim: &Sim) -> bool {
        self.complete >= (0..sim.len()).filter(|&i| sim.running(i)).count()
    }

    fn bump(&mut self, sim: &Sim, i: usize, delta: isize, now: Timestamp) {
        let before = self.have[i] == self.total;
        self.have[i] = (self.have[i] as isize + delta).max(0) as usize;
        let after = self.have[i] == self.total;
        if after && !before {
            self.complete += 1;
            // counting running nodes is O(N): only when a node completes
            if self.all_done(sim) {
                self.done_at = Some(now);
            }
        } else if before && !after {
            self.complete -= 1;
        }
    }
}

impl Tracker for Facts {
    fn on_event(&mut self, sim: &Sim, i: usize, now: Timestamp, event: &Event) {
        match event {
            Event::Joined { node, generation } | Event::Restarted { node, generation, .. } => {
                let Some(owner) = sim.index_of(node) else { return };
                if self.removed.is_some_and(|(r, g)| r == owner && generation.0 <= g) {
                    self.resurrections += 1;
                }
                self.recount(sim, i, owner, now);
            }
            Event::Removed { removal } => {
                if let Some(owner) = sim.index_of(&removal.node) {
                    self.recount(sim, i, owner, now);
                }
            }
            Event::Evicted { node } => {
                if let Some(owner) = sim.index_of(node) {
                    self.recount(sim, i, owner, now);
                }
            }
            Event::Changed { node, key, old, new } => {
                let Some(owner) = sim.index_of(node) else { return };
                if let Some((_, want)) = self.per_owner[owner].iter().find(|(k, _)| k == key) {
                    let had = old.as_ref() == Some(want);
                    let has = new.as_ref() == Some(want);
                    let slot = i * self.n + owner;
                    if has && !had {
                        self.counts[slot] += 1;
                        self.bump(sim, i, 1, now);
                    } else if had && !has {
                        self.counts[slot] = self.counts[slot].saturating_sub(1);
                        self.bump(sim, i, -1, now);
                    }
                }
            }
            Event::Dead { node } => {
                let Some(j) = sim.index_of(node) else { return };
                let really_up = sim.running(j) && sim.reachable(i, j) && sim.node(j).is_some_and(|g| g.is_up(node));
                if really_up
                    && !sim.node(j).is_some_and(|g| {
                        g.view().local_state().live_value(&Key::STATUS).is_some_and(|s| s.as_bytes() == b"shutdown")
                    })
                {
                    self.false_convictions += 1;
                }
                self.dead.entry(j).or_default().insert(i);
                if let Some(a) = self.alive.get_mut(&j) {
                    a.remove(&i);
                }
            }
            Event::Alive { node } => {
                let Some(j) = sim.index_of(node) else { return };
                self.alive.entry(j).or_default().insert(i);
                if let Some(d) = self.dead.get_mut(&j) {
                    d.remove(&i);
                }
            }
            _ => {}
        }
    }
}

/// The push-pull epidemic's mean-field rounds to inform all `n` nodes: iterate
/// p' = p^2 e^-(1-p) from p = 1 - 1/n until p < 1/n (theory.md section 2; about
/// log3 n + O(log log n)).
pub fn push_pull_rounds(n: usize) -> u64 {
    let n = n.max(2) as f64;
    let mut p = 1.0 - 1.0 / n;
    let mut rounds = 0;
    while p >= 1.0 / n && rounds < 1000 {
        p = p * p * (-(1.0 - p)).exp();
        rounds += 1;
    }
    rounds
}

/// The bandwidth bound of a cold start: the bytes of deltas one node must receive
/// (every other node's whole state, as node 0 holds it at the end) over the most
/// it can receive per round. Each SYN it sends brings back at most one ACK, and
/// each SYN it gets brings at most one ACK2, each at most a budget of deltas: so
/// per round at most `2 x (SYNs per node per round) x budget`.
fn bandwidth_rounds(sim: &Sim, report: &Report) -> Option<f64> {
    let g = sim.node(0)?;
    let local = g.view().local_id();
    let empty = Message::Ack2(Ack2 { deltas: vec![], compact: None }).encoded_len();
    let need: usize = g
        .view()
        .iter()
        .filter(|(id, _)| *id != local)
        .map(|(id, state)| {
            let mut values: Vec<_> = state.values().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            values.sort_by_key(|(_, v)| v.version);
            let delta = Delta {
                node: id.clone(),
                generation: state.generation(),
                from: Version::ZERO,
                purged: state.purged(),
                heartbeat: Some(state.heartbeat()),
                values,
            };
            Message::Ack2(Ack2 { deltas: vec![delta], compact: None }).encoded_len() - empty
        })
        .sum();
    // a cold start is measured from the beginning: every SYN counts
    let syn_messages = sim.traffic.messages[0] as f64;
    let node_rounds = report.nodes as f64 * report.virtual_ms as f64 / sim.config.interval.as_millis() as f64;
    let per_round = 2.0 * (syn_messages / node_rounds.max(1.0)) * report.budget as f64;
    Some(need as f64 / per_round.max(1.0))
}

/// The push-pull curve: the fraction informed after each round.
pub fn push_pull_curve(n: usize, rounds: usize) -> Vec<f64> {
    let mut p = 1.0 - 1.0 / n.max(2) as f64;
    let mut out = vec![1.0 - p];
    for _ in 0..rounds {
        p = p * p * (-(1.0 - p)).exp();
        out.push(1.0 - p);
    }
    out
}

fn config(p: &Params) -> Config {
    let mut c = Config::new(ClusterName::new("sim").expect("short"));
    c.seeds = vec![crate::engine::node_id(0)];
    c.max_message_bytes = p.budget;
    c.fanout = p.fanout;
    c.detector.model = p.detector;
    c.compact_digests = p.compact;
    c.hashed_digests = p.hashed;
    // values of the scenario's size, and room for removal records (about 40 bytes
    // per removed node), within what fits the budget beside the worst-case overhead
    c.limits.max_value_len = p.value_bytes.max(1024).min(p.budget.saturating_sub(900));
    c
}

fn value(rng: &mut ChaCha8Rng, bytes: usize) -> Value {
    let v: Vec<u8> = (0..bytes).map(|_| b'a' + (rng.next_u32() % 26) as u8).collect();
    Value::from(v)
}

/// A run in progress: the simulator, the tracker, and the per-round record.
struct Run {
    p: Params,
    sim: Sim,
    facts: Facts,
    rng: ChaCha8Rng,
    rounds: Vec<RoundStats>,
    progress: Option<crate::report::Progress>,
}

impl Run {
    fn new(p: &Params, progress: bool) -> Run {
        let network = Network {
            latency: (Duration::from_micros(p.latency_us.0), Duration::from_micros(p.latency_us.1)),
            loss: p.loss,
            duplicate: p.duplicate,
            max_message: None,
        };
        let start = Timestamp::from_secs(1_700_000_000);
        let sim = Sim::new(p.nodes, config(p), network, start, p.seed);
        Run {
            facts: Facts::new(p.nodes),
            rng: ChaCha8Rng::seed_from_u64(p.seed ^ 0x5eed),
            rounds: Vec::new(),
            progress: progress.then(|| crate::report::Progress::new(p.max_rounds)),
            p: p.clone(),
            sim,
        }
    }

    fn interval(&self) -> Duration {
        self.sim.config.interval
    }

    /// Every node sets its K keys; these are the facts to spread.
    fn write_keys(&mut self) {
        let mut facts = Vec::new();
        for i in 0..self.p.nodes {
            for k in 0..self.p.keys {
                let key = Key::new(&format!("key{k}")).expect("short");
                let v = value(&mut self.rng, self.p.value_bytes);
                self.sim.set(i, key.clone(), v.clone(), &mut self.facts);
                facts.push((i, key, v));
            }
        }
        self.facts.expect(&self.sim, facts);
    }

    /// Runs round by round until `done`, at most `max` rounds; records each round.
    /// Returns the number of rounds (fractional: when `done` first held).
    fn run_rounds(&mut self, max: u64, mut done: impl FnMut(&Run) -> bool) -> Option<f64> {
        let start = self.sim.now;
        let mut last_bytes = self.sim.traffic.total_bytes();
        let mut last_msgs = self.sim.traffic.total_messages();
        for r in 0..max {
            if done(self) {
                return Some(r as f64);
            }
            // step in tenths of a round, to see when convergence happened
            for _ in 0..10 {
                let step = self.interval() / 10;
                self.sim.run_for(step, &mut self.facts);
                if done(self) {
                    let elapsed = self.sim.now.saturating_since(start).as_secs_f64();
                    self.record(r + 1, &mut last_bytes, &mut last_msgs);
                    return Some(elapsed / self.interval().as_secs_f64());
                }
            }
            self.record(r + 1, &mut last_bytes, &mut last_msgs);
        }
        None
    }

    fn record(&mut self, round: u64, last_bytes: &mut u64, last_msgs: &mut u64) {
        let running = (0..self.sim.len()).filter(|&i| self.sim.running(i)).count().max(1);
        let bytes = self.sim.traffic.total_bytes();
        let msgs = self.sim.traffic.total_messages();
        self.rounds.push(RoundStats {
            round,
            up_to_date: self.facts.complete as f64 / running as f64,
            facts_held: self.facts.have.iter().sum::<usize>() as f64 / (self.facts.total * self.facts.n).max(1) as f64,
            bytes: bytes - *last_bytes,
            messages: msgs - *last_msgs,
        });
        *last_bytes = bytes;
        *last_msgs = msgs;
        if let Some(p) = &mut self.progress {
            p.tick(round, self.facts.complete, running);
        }
    }

    /// Quietly converges from a cold start (for the scenarios that start converged).
    fn converge_first(&mut self) -> bool {
        self.write_keys();
        let max = self.p.max_rounds;
        let ok = self.run_rounds(max, |r| r.facts.all_done(&r.sim) && r.all_up()).is_some();
        self.rounds.clear();
        ok
    }

    /// Whether every running node sees every other running node up.
    fn all_up(&self) -> bool {
        let n = self.sim.len();
        (0..n).filter(|&i| self.sim.running(i)).all(|i| {
            let g = self.sim.node(i).expect("running");
            (0..n).filter(|&j| self.sim.running(j)).all(|j| g.is_up(&self.sim.ids()[j]))
        })
    }

    /// After a disturbance (a partition, churn): runs until every node holds every
    /// fact and every live node sees exactly the live nodes up, and reports the
    /// rounds since the measurement began, with the recovery's own in
    /// `recovery_rounds`.
    fn recover(
        &mut self,
        ok: bool,
        measured_from: Timestamp,
        cpu_from: Cpu,
        traffic_from: &crate::engine::Traffic,
    ) -> Report {
        let disturbed = self.rounds.len() as f64;
        let max = self.p.max_rounds;
        let rounds = self.run_rounds(max, |r| r.facts.all_done(&r.sim) && r.all_up());
        let total = disturbed + rounds.unwrap_or(max as f64);
        let mut report = self.report(ok && rounds.is_some(), total, measured_from, cpu_from, traffic_from);
        report.recovery_rounds = rounds;
        report
    }

    fn report(
        &self,
        converged: bool,
        rounds: f64,
        measured_from: Timestamp,
        cpu_from: Cpu,
        traffic_from: &crate::engine::Traffic,
    ) -> Report {
        Report::build(
            &self.p,
            &self.sim,
            converged,
            rounds,
            measured_from,
            cpu_from,
            traffic_from,
            &self.rounds,
            self.facts.false_convictions,
        )
    }
}

/// Runs one scenario and reports it. With `progress`, a progress bar goes to
/// stderr when it is a terminal.
pub fn run(p: &Params, progress: bool) -> Report {
    let mut run = Run::new(p, progress);
    let report = play(&mut run, p);
    if let Some(bar) = &run.progress {
        bar.finish();
    }
    report
}

fn play(run: &mut Run, p: &Params) -> Report {
    let n = p.nodes;
    let interval = run.interval();
    match p.scenario {
        Scenario::ColdStart => {
            run.write_keys();
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            let rounds = run.run_rounds(p.max_rounds, |r| r.facts.all_done(&r.sim));
            let mut report = run.report(rounds.is_some(), rounds.unwrap_or(p.max_rounds as f64), t0, cpu0, &tr0);
            report.bandwidth_rounds = bandwidth_rounds(&run.sim, &report);
            report
        }
        Scenario::SingleUpdate => {
            let ok = run.converge_first();
            run.sim.run_for(interval * 5, &mut run.facts);
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            let owner = n / 2;
            let key = Key::new("key0").expect("short");
            let v = value(&mut run.rng, p.value_bytes);
            run.sim.set(owner, key.clone(), v.clone(), &mut run.facts);
            run.facts.expect(&run.sim, vec![(owner, key, v)]);
            let rounds = run.run_rounds(p.max_rounds, |r| r.facts.all_done(&r.sim));
            run.report(ok && rounds.is_some(), rounds.unwrap_or(p.max_rounds as f64), t0, cpu0, &tr0)
        }
        Scenario::Steady => {
            let ok = run.converge_first();
            // let heartbeat rhythms settle before measuring
            run.sim.run_for(interval * 5, &mut run.facts);
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            run.facts.false_convictions = 0;
            run.run_rounds(p.rounds, |_| false);
            let still = run.facts.all_done(&run.sim) && run.all_up();
            run.report(ok && still, p.rounds as f64, t0, cpu0, &tr0)
        }
        Scenario::Crash => {
            let ok = run.converge_first();
            run.sim.run_for(interval * 30, &mut run.facts); // detectors learn the rhythm
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            let victim = n - 1;
            run.sim.crash(victim);
            run.facts.dead.remove(&victim);
            let live = n - 1;
            let detected = run.run_rounds(p.max_rounds, |r| r.facts.dead.get(&victim).map_or(0, BTreeSet::len) >= live);
            run.sim.restart(victim);
            run.facts.alive.remove(&victim);
            let key = Key::new("key0").expect("short");
            let v = value(&mut run.rng, p.value_bytes);
            run.sim.set(victim, key.clone(), v.clone(), &mut run.facts);
            run.facts.expect(&run.sim, vec![(victim, key, v)]);
            let back = run.run_rounds(p.max_rounds, |r| {
                r.facts.all_done(&r.sim) && r.facts.alive.get(&victim).map_or(0, BTreeSet::len) >= live
            });
            let mut report = run.report(
                ok && detected.is_some() && back.is_some(),
                detected.unwrap_or(0.0) + back.unwrap_or(0.0),
                t0,
                cpu0,
                &tr0,
            );
            report.detection_rounds = detected;
            report.recovery_rounds = back;
            report
        }
        Scenario::PartitionHeal => {
            let ok = run.converge_first();
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            let groups: Vec<u32> = (0..n).map(|i| u32::from(i >= n / 2)).collect();
            run.sim.partition(groups);
            let key = Key::new("side").expect("short");
            let (a, b) = (1usize.min(n - 1), n - 1);
            let (va, vb) = (value(&mut run.rng, p.value_bytes), value(&mut run.rng, p.value_bytes));
            run.sim.set(a, key.clone(), va.clone(), &mut run.facts);
            run.sim.set(b, key.clone(), vb.clone(), &mut run.facts);
            run.facts.expect(&run.sim, vec![(a, key.clone(), va), (b, key, vb)]);
            run.run_rounds(p.partition_rounds, |_| false);
            run.sim.heal();
            run.recover(ok, t0, cpu0, &tr0)
        }
        Scenario::Churn => {
            let ok = run.converge_first();
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            let mut down: Vec<usize> = Vec::new();
            for _ in 0..p.rounds {
                // each round one node leaves and one that left comes back
                let leaver = 1 + (run.rng.next_u64() as usize % (n - 1));
                if run.sim.running(leaver) {
                    run.sim.shutdown(leaver, &mut run.facts);
                    run.sim.crash(leaver);
                    down.push(leaver);
                }
                if down.len() > 2 {
                    let back = down.remove(0);
                    run.sim.restart(back);
                }
                let mut lb = run.sim.traffic.total_bytes();
                let mut lm = run.sim.traffic.total_messages();
                run.sim.run_for(interval, &mut run.facts);
                let r = run.rounds.len() as u64 + 1;
                run.record(r, &mut lb, &mut lm);
            }
            for back in down {
                run.sim.restart(back);
            }
            let mut facts = Vec::new();
            for i in 0..n {
                let key = Key::new("churn").expect("short");
                let v = value(&mut run.rng, p.value_bytes);
                run.sim.set(i, key.clone(), v.clone(), &mut run.facts);
                facts.push((i, key, v));
            }
            run.facts.expect(&run.sim, facts);
            run.recover(ok, t0, cpu0, &tr0)
        }
        Scenario::Removal => {
            let ok = run.converge_first();
            let (t0, cpu0, tr0) = (run.sim.now, run.sim.cpu, run.sim.traffic.clone());
            // the removed node and a stale peer are cut off; the rest removes it
            let (removed, stale) = (n - 1, n - 2);
            let groups: Vec<u32> = (0..n).map(|i| u32::from(i == removed || i == stale)).collect();
            run.sim.partition(groups);
            run.sim.run_for(interval * 2, &mut run.facts);
            let generation = run.sim.slots[removed].generation;
            run.sim.remove(0, removed, &mut run.facts).expect("node 0 can remove the node");
            run.facts.removed = Some((removed, generation));
            run.facts.resurrections = 0;
            run.run_rounds(p.partition_rounds, |_| false);
            run.sim.heal();
            run.run_rounds(p.rounds, |_| false);
            let id: NodeId = run.sim.ids()[removed].clone();
            let forgotten = (0..n)
                .filter(|&i| i != removed && run.sim.running(i))
                .all(|i| run.sim.node(i).is_some_and(|g| g.view().get(&id).is_none()));
            let mut report =
                run.report(ok && forgotten && run.facts.resurrections == 0, run.rounds.len() as f64, t0, cpu0, &tr0);
            report.resurrections = Some(run.facts.resurrections);
            report
        }
    }
}
