//! What a run reports: a human table, or one JSON object with stable field names
//! (documented in the README).

use std::io::{IsTerminal, Write};

use core::time::Duration;
use rumormill::Timestamp;
use serde::Serialize;

use crate::engine::{Cpu, Sim, Traffic};
use crate::scenario::{Params, Scenario, push_pull_rounds};

/// One round of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RoundStats {
    /// The round (from 1).
    pub round: u64,
    /// Fraction of running nodes up to date at its end.
    pub up_to_date: f64,
    /// Fraction of (node, fact) pairs held: how far the news has spread, where
    /// `up_to_date` only counts nodes that have all of it.
    pub facts_held: f64,
    /// Bytes sent during it.
    pub bytes: u64,
    /// Messages sent during it.
    pub messages: u64,
}

/// The outcome of a run. Field names are stable: they are the JSON interface.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: Scenario,
    /// Nodes.
    pub nodes: usize,
    /// Keys per node.
    pub keys: usize,
    /// Bytes per value.
    pub value_bytes: usize,
    /// Seed.
    pub seed: u64,
    /// Loss rate.
    pub loss: f64,
    /// Message budget, bytes.
    pub budget: usize,
    /// Whether the scenario's goal was reached.
    pub converged: bool,
    /// Rounds of the measured phase until the goal (fractional: when it was met).
    pub rounds: f64,
    /// Virtual time of the measured phase, ms.
    pub virtual_ms: u64,
    /// The push-pull epidemic's rounds to inform all nodes (mean field).
    pub push_pull_rounds: u64,
    /// Cold start: the bandwidth bound, the fewest rounds in which every node
    /// could receive every other node's state at the budget (see the README).
    pub bandwidth_rounds: Option<f64>,
    /// Messages sent during the measured phase.
    pub messages: u64,
    /// Bytes sent during the measured phase.
    pub bytes_total: u64,
    /// Of which SYN.
    pub bytes_syn: u64,
    /// Of which ACK.
    pub bytes_ack: u64,
    /// Of which ACK2.
    pub bytes_ack2: u64,
    /// Of which ECHO, ECHO_REPLY and SHUTDOWN.
    pub bytes_other: u64,
    /// The largest message of the whole run.
    pub max_message_bytes: usize,
    /// Messages built that hit the budget (some content left for later), all nodes.
    pub budget_hits: u64,
    /// Thread CPU time inside the nodes' calls, per node per round (measured phase).
    pub cpu_us_per_node_round: f64,
    /// The same, by what the calls handled.
    pub cpu_us_by_call: CpuByCall,
    /// Heap bytes per node at the end (all of a node's state, detector and
    /// bookkeeping), from a counting allocator; absent without it.
    pub state_bytes_per_node: Option<u64>,
    /// Peak resident set of the simulator process.
    pub peak_rss_bytes: Option<u64>,
    /// Convictions of nodes that were up and reachable.
    pub false_convictions: u64,
    /// Bytes sent per node per round (measured phase); for `steady`.
    pub bytes_per_node_round: f64,
    /// Messages lost by the network.
    pub lost: u64,
    /// Crash: rounds until every live node saw the crash.
    pub detection_rounds: Option<f64>,
    /// Crash, partition-heal, churn: rounds of the recovery after the fault ended.
    pub recovery_rounds: Option<f64>,
    /// Removal: how often the removed node came back (must be 0).
    pub resurrections: Option<u64>,
    /// Wall-clock time of the whole run, ms.
    pub wall_ms: u64,
    /// Per round of the measured phase.
    pub per_round: Vec<RoundStats>,
}

/// CPU per node per round by what the calls handled (see [`crate::Cpu`]), µs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct CpuByCall {
    /// Timers (rounds, retries) and local calls.
    pub timer: f64,
    /// Datagrams holding a SYN (answering it with an ACK).
    pub syn: f64,
    /// Datagrams holding an ACK (applying it, answering with an ACK2).
    pub ack: f64,
    /// Datagrams holding an ACK2.
    pub ack2: f64,
    /// Other datagrams (echoes, shutdowns, sealed or undecodable frames).
    pub other: f64,
}

impl CpuByCall {
    fn new(cpu: &Cpu, node_rounds: f64) -> CpuByCall {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / node_rounds;
        let [timer, syn, ack, ack2, other] = cpu.by_call.map(us);
        CpuByCall { timer, syn, ack, ack2, other }
    }
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        p: &Params,
        sim: &Sim,
        converged: bool,
        rounds: f64,
        from: Timestamp,
        cpu_from: Cpu,
        traffic_from: &Traffic,
        per_round: &[RoundStats],
        false_convictions: u64,
    ) -> Report {
        let t = &sim.traffic;
        let d = |k: usize| t.bytes[k] - traffic_from.bytes[k];
        let virtual_ms = sim.now.saturating_since(from).as_millis() as u64;
        let node_rounds = (p.nodes as f64 * (virtual_ms as f64 / sim.config.interval.as_millis() as f64)).max(1.0);
        let bytes_total = t.total_bytes() - traffic_from.total_bytes();
        let cpu = sim.cpu.since(&cpu_from);
        let running = (0..sim.len()).filter(|&i| sim.running(i)).count().max(1) as u64;
        let budget_hits = (0..sim.len()).filter_map(|i| sim.node(i)).map(|g| g.metrics().budget_hits).sum();
        Report {
            scenario: p.scenario,
            nodes: p.nodes,
            keys: p.keys,
            value_bytes: p.value_bytes,
            seed: p.seed,
            loss: p.loss,
            budget: p.budget,
            converged,
            rounds,
            virtual_ms,
            push_pull_rounds: push_pull_rounds(p.nodes),
            bandwidth_rounds: None,
            messages: t.total_messages() - traffic_from.total_messages(),
            bytes_total,
            bytes_syn: d(0),
            bytes_ack: d(1),
            bytes_ack2: d(2),
            bytes_other: d(3) + d(4) + d(5),
            max_message_bytes: t.max_message,
            budget_hits,
            cpu_us_per_node_round: cpu.total.as_secs_f64() * 1e6 / node_rounds,
            cpu_us_by_call: CpuByCall::new(&cpu, node_rounds),
            state_bytes_per_node: crate::memory::live_heap().map(|b| b / running),
            peak_rss_bytes: crate::memory::peak_rss(),
            false_convictions,
            bytes_per_node_round: bytes_total as f64 / node_rounds,
            lost: t.lost - traffic_from.lost,
            detection_rounds: None,
            recovery_rounds: None,
            resurrections: None,
            wall_ms: 0,
            per_round: per_round.to_vec(),
        }
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let kib = |b: u64| format!("{:.1} KiB", b as f64 / 1024.0);
        let opt = |v: Option<u64>| v.map_or("n/a".to_owned(), |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)));
        let mut row = |k: &str, v: String| s.push_str(&format!("  {k:<26} {v}\n"));
        row("scenario", format!("{:?}", self.scenario));
        row("nodes / keys / value bytes", format!("{} / {} / {}", self.nodes, self.keys, self.value_bytes));
        row("seed / loss / budget", format!("{} / {:.0} % / {} B", self.seed, self.loss * 100.0, self.budget));
        row("converged", format!("{}", self.converged));
        row("rounds", format!("{:.1}   (push-pull bound {})", self.rounds, self.push_pull_rounds));
        if let Some(r) = self.bandwidth_rounds {
            row("  bandwidth bound", format!("{r:.1} rounds"));
        }
        if let Some(r) = self.detection_rounds {
            row("  crash seen by all after", format!("{r:.1} rounds"));
        }
        if let Some(r) = self.recovery_rounds {
            row("  recovery", format!("{r:.1} rounds"));
        }
        if let Some(r) = self.resurrections {
            row("  resurrections", format!("{r}"));
        }
        row("virtual time", format!("{:.1} s", self.virtual_ms as f64 / 1000.0));
        row("messages", format!("{}", self.messages));
        row(
            "bytes",
            format!(
                "{} (SYN {}, ACK {}, ACK2 {}, other {})",
                kib(self.bytes_total),
                kib(self.bytes_syn),
                kib(self.bytes_ack),
                kib(self.bytes_ack2),
                kib(self.bytes_other)
            ),
        );
        row("bytes per node per round", format!("{:.0} B", self.bytes_per_node_round));
        row("largest message", format!("{} B", self.max_message_bytes));
        row("budget hits", format!("{}", self.budget_hits));
        row("CPU per node per round", format!("{:.1} us", self.cpu_us_per_node_round));
        let c = &self.cpu_us_by_call;
        row(
            "  by call",
            format!(
                "timer {:.1}, SYN {:.1}, ACK {:.1}, ACK2 {:.1}, other {:.1} us",
                c.timer, c.syn, c.ack, c.ack2, c.other
            ),
        );
        row("heap per node", self.state_bytes_per_node.map_or("n/a".to_owned(), kib));
        row("peak RSS", opt(self.peak_rss_bytes));
        row("false convictions", format!("{}", self.false_convictions));
        row("lost messages", format!("{}", self.lost));
        row("wall time", format!("{:.1} s", self.wall_ms as f64 / 1000.0));
        s
    }
}

/// Rounds between progress lines when stderr is not a terminal.
const LOG_EVERY: u64 = 100;

/// Progress on stderr: a bar in a terminal, otherwise a line every
/// 100 rounds (so long runs with `--json` can be followed).
pub struct Progress {
    max: u64,
    enabled: bool,
}

impl Progress {
    pub(crate) fn new(max: u64) -> Progress {
        Progress { max, enabled: std::io::stderr().is_terminal() }
    }

    pub(crate) fn tick(&mut self, round: u64, complete: usize, running: usize) {
        if !self.enabled {
            // not a terminal (a log file, or `--json` piped on): a line now and then,
            // so that long runs can be followed
            if round.is_multiple_of(LOG_EVERY) {
                eprintln!("round {round}/{}: {complete}/{running} nodes up to date", self.max);
            }
            return;
        }
        let width = 30;
        let filled = (complete * width) / running.max(1);
        let bar: String = (0..width).map(|i| if i < filled { '#' } else { '.' }).collect();
        let mut e = std::io::stderr();
        let _ = write!(e, "\r  round {round:>4}/{}  [{bar}] {complete}/{running} up to date ", self.max);
        let _ = e.flush();
    }

    pub(crate) fn finish(&self) {
        if self.enabled {
            let _ = writeln!(std::io::stderr());
        }
    }
}
