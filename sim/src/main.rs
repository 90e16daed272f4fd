//! `rumormill-sim`: simulate a cluster and report how it did.
//!
//! ```text
//! rumormill-sim --scenario cold-start --nodes 1000            # a table
//! rumormill-sim --scenario steady --nodes 1024 --json         # one JSON object
//! rumormill-sim --scenario single-update --plot spread.svg    # and a plot
//! ```

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use rumormill::{Fanout, PhiModel};
use rumormill_sim::memory::Counting;
use rumormill_sim::{Params, Scenario, plot, run};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Simulates a rumormill cluster on a virtual clock and reports convergence,
/// bytes, CPU and memory. Deterministic: the same arguments give the same run.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// What to simulate.
    #[arg(long, value_enum, default_value = "cold-start")]
    scenario: Scenario,
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Keys each node sets.
    #[arg(long, default_value_t = 8)]
    keys: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 16)]
    value_bytes: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Message loss rate, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Message duplication rate, 0 to 1.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Largest message a node sends, bytes.
    #[arg(long, default_value_t = 65_000)]
    budget: usize,
    /// Network latency range in microseconds, `lo,hi` (uniform).
    #[arg(long, default_value = "500,1500", value_parser = parse_range)]
    latency_us: (u64, u64),
    /// Rounds of the measured phase (steady, churn, removal).
    #[arg(long, default_value_t = 20)]
    rounds: u64,
    /// Rounds the partition lasts (partition-heal, removal).
    #[arg(long, default_value_t = 30)]
    partition_rounds: u64,
    /// Give up after this many rounds.
    #[arg(long, default_value_t = 1000)]
    max_rounds: u64,
    /// Peer choice: `reference`, `chunked:K` or `random:K`.
    #[arg(long, default_value = "reference", value_parser = parse_fanout)]
    fanout: Fanout,
    /// Failure detector model: `exponential` (the reference's) or `normal` (Akka's).
    #[arg(long, default_value = "exponential", value_parser = parse_detector)]
    detector: PhiModel,
    /// Send every digest in full form (no compact pages).
    #[arg(long)]
    no_compact: bool,
    /// Name nodes by full id, not by fingerprint, in pages for peers that may know
    /// other members.
    #[arg(long)]
    no_hashed: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw the fraction of up-to-date nodes per round into this SVG file.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once(',').ok_or("expected lo,hi")?;
    let (a, b): (u64, u64) =
        (a.trim().parse().map_err(|e| format!("{e}"))?, b.trim().parse().map_err(|e| format!("{e}"))?);
    if a > b {
        return Err("lo must not exceed hi".into());
    }
    Ok((a, b))
}

fn parse_fanout(s: &str) -> Result<Fanout, String> {
    match s.split_once(':') {
        None if s == "reference" => Ok(Fanout::Reference),
        Some(("chunked", k)) => k.parse().map(Fanout::Chunked).map_err(|e| format!("{e}")),
        Some(("random", k)) => k.parse().map(Fanout::Random).map_err(|e| format!("{e}")),
        _ => Err("expected reference, chunked:K or random:K".into()),
    }
}

fn parse_detector(s: &str) -> Result<PhiModel, String> {
    match s {
        "exponential" => Ok(PhiModel::Exponential),
        "normal" => Ok(PhiModel::AKKA),
        _ => Err("expected exponential or normal".into()),
    }
}

fn main() -> ExitCode {
    let a = Args::parse();
    if !(0.0..=1.0).contains(&a.loss) || !(0.0..=1.0).contains(&a.duplicate) {
        eprintln!("error: --loss and --duplicate are rates between 0 and 1");
        return ExitCode::from(2);
    }
    if a.nodes < 2 || a.budget < 1000 {
        eprintln!(
            "error: at least 2 nodes, and a budget of at least 1000 bytes (values must fit beside the worst-case overhead)"
        );
        return ExitCode::from(2);
    }
    let p = Params {
        scenario: a.scenario,
        nodes: a.nodes,
        keys: a.keys,
        value_bytes: a.value_bytes,
        seed: a.seed,
        loss: a.loss,
        duplicate: a.duplicate,
        budget: a.budget,
        latency_us: a.latency_us,
        rounds: a.rounds,
        partition_rounds: a.partition_rounds,
        max_rounds: a.max_rounds,
        fanout: a.fanout,
        detector: a.detector,
        compact: !a.no_compact,
        hashed: !a.no_hashed,
    };
    let started = Instant::now();
    if !a.json {
        eprintln!("simulating {:?} with {} nodes ...", p.scenario, p.nodes);
    }
    let mut report = run(&p, true);
    report.wall_ms = started.elapsed().as_millis() as u64;
    if let Some(path) = &a.plot
        && let Err(e) = plot::draw(&report, path)
    {
        eprintln!("error: cannot draw {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    if a.json {
        println!("{}", serde_json::to_string(&report).expect("a report serializes"));
    } else {
        print!("{}", report.table());
    }
    if report.converged { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
