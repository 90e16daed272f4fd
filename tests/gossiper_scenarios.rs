//! Scenario tests of the Gossiper: several nodes on a virtual clock.

mod support;

use core::time::Duration;

use rumormill::{Event, Fanout, Key, PhiModel, Status};
use support::{Cluster, id};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn start(n: usize, seeds: &[usize], seed: u64) -> Cluster {
    start_with(n, seeds, seed, |_| {})
}

fn start_with(n: usize, seeds: &[usize], seed: u64, configure: impl Fn(&mut rumormill::Config)) -> Cluster {
    let mut c = Cluster::new(n, seeds, configure, seed);
    for i in 0..n {
        c.set(i, "STATUS", "NORMAL");
        c.set(i, "DC", if i % 2 == 0 { "dc1" } else { "dc2" });
    }
    c
}

fn everyone_up(c: &Cluster) -> bool {
    c.converged() && c.running().into_iter().all(|j| c.all_see(j, true))
}

#[test]
fn cold_start_from_one_seed() {
    let mut c = start(16, &[0], 1);
    let took = c.run_while_not(secs(60), everyone_up).expect("16 nodes converge and see each other up");
    println!("cold start of 16 nodes from one seed: {took:?}");
    assert!(took <= secs(20), "took {took:?}");
    for i in 0..16 {
        assert_eq!(c.count(i, |e| matches!(e, Event::Joined { .. })), 15, "node {i} learned every other node once");
        assert_eq!(c.count(i, |e| matches!(e, Event::Dead { .. })), 0, "no false convictions");
    }
}

/// Once a cluster is steady, nearly every heartbeat a node is behind on comes
/// with the compact SYN itself (quiet members): ACKs carry few requests and
/// ACK2s little, while every node keeps seeing every other up.
#[test]
fn steady_rounds_take_heartbeats_from_the_syn() {
    let mut c = start(16, &[0], 3);
    c.run_while_not(secs(60), everyone_up).expect("16 nodes converge");
    // past the last value change by more than QUIET_RUN rounds
    c.run_for(secs(12));
    let sum =
        |c: &Cluster, f: &dyn Fn(&rumormill::Metrics) -> u64| (0..16).map(|i| f(c.node(i).metrics())).sum::<u64>();
    let before = (sum(&c, &|m| m.heartbeats_taken), sum(&c, &|m| m.sent_bytes[2]), sum(&c, &|m| m.sent[2]));
    c.run_for(secs(30));
    let taken = sum(&c, &|m| m.heartbeats_taken) - before.0;
    let (ack2_bytes, ack2s) = (sum(&c, &|m| m.sent_bytes[2]) - before.1, sum(&c, &|m| m.sent[2]) - before.2);
    println!("30 s of 16 steady nodes: {taken} heartbeats taken, {ack2s} ACK2s of {ack2_bytes} bytes");
    // 16 nodes, ~30 rounds each, each SYN's receiver behind on some of 16 members
    assert!(taken > 16 * 30, "{taken} heartbeats taken");
    // an ACK2 that answers no request is its header and two bytes
    assert!(ack2_bytes < ack2s * 30, "{ack2s} ACK2s of {ack2_bytes} bytes");
    assert!(everyone_up(&c));
    for i in 0..16 {
        assert_eq!(c.count(i, |e| matches!(e, Event::Dead { .. })), 0, "no false convictions");
    }
}

/// A crashed node is convicted by each observer at the first status check after
/// its detector's phi crosses the threshold, counting from the last heartbeat of the
/// node that reached that observer (possibly relayed after the crash), and everyone
/// sees it down; restarted with a newer generation it is seen up again with its
/// new state.
fn crash_and_restart(model: PhiModel, seed: u64) {
    let mut c = start_with(8, &[0], seed, |cfg| cfg.detector.model = model);
    c.run_while_not(secs(60), everyone_up).expect("converges");
    c.run_for(secs(30)); // let the detectors learn the heartbeat rhythm
    let config = c.config.detector;
    let victim = 3;
    let crashed_at = c.now;
    c.crash(victim);
    let took = c.run_while_not(secs(120), |c| c.all_see(victim, false)).expect("everyone sees the crash");
    println!("{model:?}: all observers convicted the crashed node {took:?} after the crash");
    for i in c.running().into_iter().filter(|&i| i != victim) {
        // the window no longer changes once the node is silent: it holds the last
        // heartbeat that arrived and the intervals the prediction rests on
        let w = c.node(i).detector(&id(victim)).unwrap().clone();
        let mut crossing = w.last();
        while w.phi(&config, crossing) <= config.threshold {
            crossing = crossing + Duration::from_millis(10);
        }
        let (at, _) = c.events[i]
            .iter()
            .find(|(t, e)| *t >= crashed_at && matches!(e, Event::Dead { node } if *node == id(victim)))
            .expect("a Dead event");
        // status checks run once per round
        assert!(
            *at + Duration::from_millis(10) >= crossing,
            "node {i} convicted at {at}, before phi crossed at {crossing}"
        );
        assert!(*at <= crossing + c.config.interval, "node {i} convicted at {at}, phi crossed at {crossing}");
    }
    // restart: a newer generation, new values
    c.restart(victim);
    c.set(victim, "STATUS", "NORMAL");
    c.set(victim, "DC", "dc-new");
    c.run_while_not(secs(60), |c| c.all_see(victim, true) && c.converged()).expect("seen up again");
    for i in c.running().into_iter().filter(|&i| i != victim) {
        assert_eq!(c.values(i, victim).get("DC").map(String::as_str), Some("dc-new"));
        assert_eq!(c.count(i, |e| matches!(e, Event::Restarted { node, .. } if *node == id(victim))), 1);
    }
}

#[test]
fn a_crash_is_convicted_as_the_reference_detector_predicts_and_a_restart_rejoins() {
    crash_and_restart(PhiModel::Exponential, 2);
}

#[test]
fn a_crash_is_convicted_as_the_normal_detector_predicts_and_a_restart_rejoins() {
    crash_and_restart(PhiModel::AKKA, 3);
}

#[test]
fn graceful_shutdown_marks_the_node_down_at_once() {
    let mut c = start(6, &[0], 4);
    c.run_while_not(secs(60), everyone_up).expect("converges");
    let now = c.now;
    let out = c.node_mut(2).shutdown(now);
    assert_eq!(out.transmits.len(), 5, "every live peer is told");
    c.absorb(2, out);
    c.run_for(Duration::from_millis(50));
    assert!(c.all_see(2, false), "down within a message's latency, not after the detector's 18 s");
    for i in [0, 1, 3, 4, 5] {
        assert_eq!(c.count(i, |e| matches!(e, Event::ShutDown { node } if *node == id(2))), 1);
        assert_eq!(c.count(i, |e| matches!(e, Event::Dead { node } if *node == id(2))), 1);
    }
    // it stays down: it sends nothing more, and nobody marks it up again
    let sent = c.node(2).metrics().sent.iter().sum::<u64>();
    c.run_for(secs(60));
    assert!(c.all_see(2, false));
    assert_eq!(c.node(2).metrics().sent.iter().sum::<u64>(), sent, "a shut-down node is silent");
    for i in [0, 1, 3, 4, 5] {
        assert_eq!(c.count(i, |e| matches!(e, Event::Alive { node } if *node == id(2))), 1, "only its first Alive");
    }
}

#[test]
fn a_removed_node_never_comes_back_but_a_new_generation_does() {
    let mut c = start(7, &[0], 5);
    c.run_while_not(secs(60), everyone_up).expect("converges");
    // node 6 is decommissioned: it stays running but is partitioned away with
    // node 5, which keeps its state (a stale peer)
    c.partition(&[&[0, 1, 2, 3, 4], &[5, 6]]);
    c.run_for(secs(2));
    let now = c.now;
    let out = c.node_mut(0).remove(now, &id(6)).unwrap();
    c.absorb(0, out);
    c.run_while_not(secs(60), |c| (0..5).all(|i| c.node(i).view().get(&id(6)).is_none()))
        .expect("the removal spreads through the majority");
    for i in 1..5 {
        assert_eq!(c.count(i, |e| matches!(e, Event::Removed { removal } if removal.node == id(6))), 1, "node {i}");
    }
    // the stale side rejoins, long after the reference's 60 s quarantine
    c.run_for(secs(120));
    c.heal();
    let mut removed_seen = false;
    for _ in 0..600 {
        c.run_for(secs(6));
        for i in [0, 1, 2, 3, 4, 5] {
            assert!(c.node(i).view().get(&id(6)).is_none(), "node {i} holds the removed node again at {}", c.now);
        }
        removed_seen |= c.count(6, |e| matches!(e, Event::SelfRemoved { .. })) > 0;
    }
    assert!(removed_seen, "the removed node learned it was removed and went silent");
    assert!(c.node(5).view().get(&id(6)).is_none());
    // an hour later nobody holds it; then it starts again with a newer generation
    c.restart(6);
    c.set(6, "STATUS", "NORMAL");
    c.run_while_not(secs(60), |c| c.all_see(6, true) && c.converged()).expect("a new generation joins");
}

#[test]
fn a_partition_that_splits_the_seeds_heals() {
    let mut c = start(8, &[0, 4], 6);
    c.run_while_not(secs(60), everyone_up).expect("converges");
    c.partition(&[&[0, 1, 2, 3], &[4, 5, 6, 7]]);
    c.run_while_not(secs(120), |c| {
        (0..4).all(|i| (4..8).all(|j| !c.node(i).is_up(&id(j)) && !c.node(j).is_up(&id(i))))
    })
    .expect("each side sees the other down");
    // each side goes on changing things
    c.set(1, "LOAD", "1.5");
    c.set(5, "LOAD", "2.5");
    c.run_for(secs(10));
    c.heal();
    let took = c.run_while_not(secs(120), everyone_up).expect("the partition heals");
    println!("partition healed in {took:?}");
    assert_eq!(c.values(6, 1).get("LOAD").map(String::as_str), Some("1.5"));
    assert_eq!(c.values(2, 5).get("LOAD").map(String::as_str), Some("2.5"));
}

/// Node 0's false convictions and its `LocalPause` events.
fn pause_scenario(pause_threshold: Duration) -> (usize, usize) {
    let mut c = start_with(8, &[0], 7, |cfg| cfg.pause_threshold = pause_threshold);
    c.run_while_not(secs(60), everyone_up).expect("converges");
    c.run_for(secs(30));
    // node 0 is frozen for longer than it takes to convict: a GC pause, a
    // suspended VM; nobody hears from it and it hears nothing
    c.freeze(0);
    c.run_for(secs(25));
    c.thaw(0);
    c.run_for(secs(30));
    (c.count(0, |e| matches!(e, Event::Dead { .. })), c.count(0, |e| matches!(e, Event::LocalPause { .. })))
}

#[test]
fn the_local_pause_guard_prevents_a_false_conviction_storm() {
    let (storm, _) = pause_scenario(Duration::from_secs(3600)); // guard off
    assert!(storm >= 5, "without the guard the paused node convicts its peers ({storm})");
    let (guarded, pauses) = pause_scenario(Duration::from_secs(5));
    assert_eq!(guarded, 0, "the guard keeps the paused node from convicting anyone");
    assert_eq!(pauses, 1, "and says so, once");
}

#[test]
fn scylla_chunked_fanout_and_status_changes() {
    let mut c = start_with(12, &[0], 8, |cfg| cfg.fanout = Fanout::Chunked(10));
    c.run_while_not(secs(60), everyone_up).expect("converges with the chunked fanout");
    // a node that leaves: LEFT is a dead state, the node is marked down at once
    let now = c.now;
    let out = c.node_mut(4).set_status(now, Status::Left).unwrap();
    c.absorb(4, out);
    c.run_while_not(secs(30), |c| c.all_see(4, false)).expect("a LEFT node is down");
    for i in c.running().into_iter().filter(|&i| i != 4) {
        let changed =
            c.count(i, |e| matches!(e, Event::Changed { node, key, .. } if *node == id(4) && *key == Key::STATUS));
        assert!(changed >= 1);
    }
}
