//! Every scenario reaches its goal on a small cluster, and a run is deterministic.

use rumormill_sim::{Params, Report, Scenario, run};

fn small(scenario: Scenario) -> Params {
    Params { scenario, nodes: 40, keys: 4, rounds: 15, partition_rounds: 10, max_rounds: 200, ..Params::default() }
}

/// The fields that do not depend on the machine (CPU, memory, wall time do).
fn deterministic(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    let o = v.as_object_mut().unwrap();
    for machine in ["cpu_us_per_node_round", "cpu_us_by_call", "state_bytes_per_node", "peak_rss_bytes", "wall_ms"] {
        o.remove(machine);
    }
    v
}

#[test]
fn every_scenario_reaches_its_goal() {
    for scenario in [
        Scenario::ColdStart,
        Scenario::SingleUpdate,
        Scenario::Steady,
        Scenario::Crash,
        Scenario::PartitionHeal,
        Scenario::Churn,
        Scenario::Removal,
    ] {
        let r = run(&small(scenario), false);
        println!("{scenario:?}: converged {} in {:.1} rounds, {} bytes", r.converged, r.rounds, r.bytes_total);
        assert!(r.converged, "{scenario:?} did not reach its goal: {r:#?}");
        if scenario != Scenario::Churn {
            assert_eq!(r.false_convictions, 0, "{scenario:?}");
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let p = Params { loss: 0.1, duplicate: 0.05, ..small(Scenario::ColdStart) };
    let a = run(&p, false);
    let b = run(&p, false);
    assert_eq!(deterministic(&a), deterministic(&b));
    let c = run(&Params { seed: 2, ..p }, false);
    assert_ne!(deterministic(&a), deterministic(&c), "a different seed gives a different run");
}

#[test]
fn messages_stay_within_the_budget_and_loss_is_survived() {
    let p = Params { loss: 0.2, budget: 1400, ..small(Scenario::ColdStart) };
    let r = run(&p, false);
    assert!(r.converged);
    assert!(r.max_message_bytes <= 1400, "{}", r.max_message_bytes);
    assert!(r.lost > 0);
}

/// The CPU figure splits into what the calls handled: a steady round has timers,
/// SYNs, ACKs and ACK2s, and the parts add up to the whole.
#[test]
fn cpu_splits_by_call() {
    let r = run(&Params { rounds: 40, ..small(Scenario::Steady) }, false);
    let c = r.cpu_us_by_call;
    for (name, part) in [("timer", c.timer), ("syn", c.syn), ("ack", c.ack), ("ack2", c.ack2)] {
        assert!(part > 0.0, "{name}: {c:?}");
    }
    let sum = c.timer + c.syn + c.ack + c.ack2 + c.other;
    assert!((sum - r.cpu_us_per_node_round).abs() < 1e-6 * r.cpu_us_per_node_round.max(1.0), "{sum} vs {r:?}");
}
