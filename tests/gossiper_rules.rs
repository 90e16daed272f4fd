//! One test per rule of the reference Gossiper that the scenarios do not pin down.

mod support;

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    Ack, ClusterName, Config, Delta, Echo, Envelope, Event, Generation, Gossiper, Header, Key, Message, NodeId, Status,
    Timestamp, Version,
};
use support::{Cluster, T0, id};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config(seeds: &[usize]) -> Config {
    let mut c = Config::new(ClusterName::new("scenario").unwrap());
    c.seeds = seeds.iter().map(|&i| id(i)).collect();
    c
}

fn node(i: usize, generation: u64, now: Timestamp) -> Gossiper<ChaCha8Rng> {
    Gossiper::new(config(&[0]), id(i), Generation(generation), now, ChaCha8Rng::seed_from_u64(i as u64)).unwrap()
}

fn envelope(from: usize, generation: u64, message: Message) -> Vec<u8> {
    let header =
        Header { cluster: ClusterName::new("scenario").unwrap(), sender: id(from), generation: Generation(generation) };
    Envelope { header, message }.encode()
}

fn everyone_up(c: &Cluster) -> bool {
    c.converged() && c.running().into_iter().all(|j| c.all_see(j, true))
}

#[test]
fn an_ack_that_answers_no_syn_of_ours_is_not_applied() {
    let now = Timestamp::from_secs(T0);
    let mut a = node(0, T0, now);
    let delta = Delta {
        node: id(1),
        generation: Generation(T0),
        from: Version::ZERO,
        purged: Version::ZERO,
        heartbeat: Some(Version(9)),
        values: vec![],
    };
    let ack = Message::Ack(Ack { deltas: vec![delta], ..Ack::default() });
    let out = a.handle_datagram(now, &envelope(1, T0, ack));
    assert!(out.transmits.is_empty(), "no ACK2 for an ACK that answers nothing");
    assert!(a.view().get(&id(1)).is_none(), "its state was not applied");
    assert_eq!(a.metrics().unsolicited, 1);
}

#[test]
fn an_unsolicited_ack2_is_not_applied_either() {
    let now = Timestamp::from_secs(T0);
    let mut a = node(0, T0, now);
    let delta = Delta {
        node: id(1),
        generation: Generation(T0),
        from: Version::ZERO,
        purged: Version::ZERO,
        heartbeat: Some(Version(9)),
        values: vec![],
    };
    let ack2 = Message::Ack2(rumormill::Ack2 { deltas: vec![delta], compact: None });
    a.handle_datagram(now, &envelope(1, T0, ack2));
    assert!(a.view().get(&id(1)).is_none());
    assert_eq!(a.metrics().unsolicited, 1);
}

#[test]
fn a_node_is_marked_up_only_by_an_echo_from_its_current_generation() {
    let now = Timestamp::from_secs(T0);
    let codec = rumormill::Codec::new(ClusterName::new("scenario").unwrap());
    let mut a = node(1, T0, now);
    let mut seed = node(0, T0, now);
    // a round: a's SYN, the seed's ACK; a learns the seed's state by hearsay
    let syn = a.handle_timeout(now + secs(1)).transmits.remove(0);
    let ack = seed.handle_datagram(now + secs(1), &syn.bytes).transmits.remove(0);
    let out = a.handle_datagram(now + secs(1), &ack.bytes);
    assert!(out.events.iter().any(|e| matches!(e, Event::Joined { .. })));
    assert!(!a.is_up(&id(0)), "known, but not up on hearsay");
    let nonce = out
        .transmits
        .iter()
        .find_map(|t| match codec.decode(&t.bytes).unwrap().message {
            Message::Echo(e) => Some(e.nonce),
            _ => None,
        })
        .expect("an echo to the new node");
    // a reply from another generation of it, or with another nonce, does not count
    a.handle_datagram(now + secs(1), &envelope(0, T0 + 7, Message::EchoReply(Echo { nonce })));
    a.handle_datagram(now + secs(1), &envelope(0, T0, Message::EchoReply(Echo { nonce: nonce ^ 1 })));
    assert!(!a.is_up(&id(0)));
    // its own answer does
    let out = a.handle_datagram(now + secs(1), &envelope(0, T0, Message::EchoReply(Echo { nonce })));
    assert!(a.is_up(&id(0)));
    assert_eq!(out.events, vec![Event::Alive { node: id(0) }]);
}

/// Rounds that find nothing to do skip the walk over the peers (debug builds
/// check each such round against the walk): a peer convicted, then back through
/// an echo, must be live again at the next round.
#[test]
fn a_peer_back_after_a_conviction_is_live_again_at_the_next_round() {
    let t = |s: u64| Timestamp::from_secs(T0 + s);
    let mut a = node(1, T0, t(0));
    let mut seed = node(0, T0, t(0));
    // messages go back and forth between the two until none is left; a's events
    let exchange = |a: &mut Gossiper<ChaCha8Rng>, seed: &mut Gossiper<ChaCha8Rng>, now: Timestamp| {
        let mut to_seed = a.handle_timeout(now).transmits;
        let mut events = Vec::new();
        while !to_seed.is_empty() {
            let to_a: Vec<_> = to_seed.drain(..).flat_map(|m| seed.handle_datagram(now, &m.bytes).transmits).collect();
            for m in to_a {
                let out = a.handle_datagram(now, &m.bytes);
                events.extend(out.events);
                to_seed.extend(out.transmits);
            }
        }
        events
    };
    exchange(&mut a, &mut seed, t(1));
    assert!(a.is_up(&id(0)), "up through its echo");
    // the seed falls silent until the detector convicts it, then a few rounds more
    let mut s = 2;
    while a.is_up(&id(0)) {
        a.handle_timeout(t(s));
        s += 1;
        assert!(s < 120, "convicted at last");
    }
    for _ in 0..5 {
        a.handle_timeout(t(s));
        s += 1;
    }
    // it answers again: its newer heartbeat has a echo it, and it replies
    seed.handle_timeout(t(s));
    let events = exchange(&mut a, &mut seed, t(s));
    assert!(events.contains(&Event::Alive { node: id(0) }), "{events:?}");
    for _ in 0..3 {
        s += 1;
        assert!(a.handle_timeout(t(s)).transmits.iter().any(|x| x.to == id(0)));
    }
    assert!(a.is_up(&id(0)));
}

#[test]
fn time_going_back_and_early_or_repeated_timeouts_are_harmless() {
    let now = Timestamp::from_secs(T0);
    let mut a = node(0, T0, now);
    let first = a.handle_timeout(now + secs(2));
    let rounds = a.metrics().rounds;
    assert!(rounds >= 1);
    // the same time again, an earlier time, and a time before the deadline
    for t in [now + secs(2), now, Timestamp::from_secs(0), now + Duration::from_millis(2100)] {
        let out = a.handle_timeout(t);
        assert!(out.transmits.is_empty() && out.events.is_empty());
        assert!(out.next_deadline >= first.next_deadline.min(out.next_deadline));
    }
    assert_eq!(a.metrics().rounds, rounds, "no extra round");
    // the deadline always moves forward once it is met
    let d = a.next_deadline();
    a.handle_timeout(d);
    assert!(a.next_deadline() > d);
}

#[test]
fn the_shadow_round_learns_from_the_seeds_without_joining() {
    let mut c = Cluster::new(3, &[0], |_| {}, 12);
    for i in 0..3 {
        c.set(i, "HOST_ID", &format!("host-{i}"));
    }
    c.run_while_not(secs(30), everyone_up).expect("converges");
    // node 3 starts with a shadow round
    let now = c.now;
    let mut d =
        Gossiper::new_shadow(config(&[0]), id(3), Generation(T0 + 100), now, ChaCha8Rng::seed_from_u64(3)).unwrap();
    let out = d.handle_timeout(now);
    assert_eq!(out.transmits.len(), 1, "an empty SYN to the seed");
    assert_eq!(out.transmits[0].to, id(0));
    let ack = c.node_mut(0).handle_datagram(now, &out.transmits[0].bytes);
    assert_eq!(ack.transmits.len(), 1);
    let done = d.handle_datagram(now, &ack.transmits[0].bytes);
    let Some(Event::ShadowRound { states, timed_out }) = done.events.first() else { panic!("no shadow round event") };
    assert!(!timed_out);
    assert_eq!(states.len(), 3, "every known state");
    assert!(states.iter().all(|(_, s)| s.live_value(&Key::HOST_ID).is_some()));
    assert_eq!(d.view().len(), 1, "nothing was applied");
    // while waiting to join it does not gossip
    assert!(d.handle_timeout(now + secs(10)).transmits.is_empty());
    d.join(now + secs(10));
    assert!(!d.handle_timeout(now + secs(12)).transmits.is_empty(), "gossips after join");
}

#[test]
fn the_shadow_round_retries_and_times_out_like_the_reference() {
    let now = Timestamp::from_secs(T0);
    let mut d =
        Gossiper::new_shadow(config(&[0, 1]), id(3), Generation(T0), now, ChaCha8Rng::seed_from_u64(3)).unwrap();
    let mut syns = 0;
    let mut t = now;
    let mut timed_out = false;
    while t <= now + secs(40) {
        let out = d.handle_timeout(t);
        syns += out.transmits.len();
        timed_out |= out.events.iter().any(|e| matches!(e, Event::ShadowRound { timed_out: true, .. }));
        t = t + secs(1);
    }
    // the seeds never answer: an empty SYN to each of 2 seeds at 0, 5, ..., 25 s
    assert_eq!(syns, 2 * 6);
    assert!(timed_out, "gives up after RING_DELAY (30 s)");
    // a responder in its own shadow round answers an empty SYN with an empty ACK
    let mut e = Gossiper::new_shadow(config(&[0]), id(4), Generation(T0), now, ChaCha8Rng::seed_from_u64(4)).unwrap();
    let syn = Message::Syn(rumormill::Syn { page: rumormill::DigestPage::Listed(vec![]) });
    let out = e.handle_datagram(now, &envelope(3, T0, syn));
    assert_eq!(out.transmits.len(), 1);
    let codec = rumormill::Codec::new(ClusterName::new("scenario").unwrap());
    assert_eq!(codec.decode(&out.transmits[0].bytes).unwrap().message, Message::Ack(Ack::default()));
}

#[test]
fn a_node_settles_once_membership_stops_changing() {
    let mut c = Cluster::new(6, &[0], |_| {}, 13);
    c.run_for(Duration::from_millis(1500));
    assert!(!c.node(3).is_settled(c.now), "not before settle_min");
    let took = c.run_while_not(secs(30), |c| c.running().into_iter().all(|i| c.node(i).is_settled(c.now)));
    assert!(took.is_some(), "settles");
    // a change of a non-chatter key unsettles it; a chatter key does not
    c.set(2, "LOAD", "3.0");
    c.run_for(secs(2));
    assert!(c.node(3).is_settled(c.now), "LOAD is chatter");
    c.set(2, "SCHEMA", "v2");
    c.run_while_not(secs(10), |c| c.values(3, 2).contains_key("SCHEMA")).expect("spreads");
    assert!(!c.node(3).is_settled(c.now), "SCHEMA is not");
}

#[test]
fn a_node_moves_past_versions_of_its_own_state_from_before_a_crash() {
    let mut c = Cluster::new(3, &[0], |_| {}, 14);
    for v in 0..30 {
        c.set(1, "counter", &v.to_string());
    }
    c.run_while_not(secs(30), everyone_up).expect("converges");
    let before = c.node(0).view().get(&id(1)).unwrap().max_version();
    // node 1 crashes and comes back with the same generation: its counter starts
    // over, below the versions peers hold of it
    c.crash(1);
    let now = c.now;
    c.nodes[1] =
        Some(Gossiper::new(c.config.clone(), id(1), Generation(T0), now, ChaCha8Rng::seed_from_u64(99)).unwrap());
    c.set(1, "fresh", "after the crash");
    assert!(c.node(1).view().local_state().max_version() < before);
    c.run_while_not(secs(60), |c| c.values(0, 1).contains_key("fresh") && c.values(2, 1).contains_key("fresh"))
        .expect("its values written after the crash spread");
    assert!(c.count(1, |e| matches!(e, Event::GenerationRenewed { .. })) >= 1, "it moved past the old versions");
    for i in [0, 2] {
        assert!(!c.values(i, 1).contains_key("counter"), "the lost incarnation's keys are gone at node {i}");
    }
}

#[test]
fn a_node_renews_a_generation_older_than_one_peers_hold() {
    let mut c = Cluster::new(3, &[0], |_| {}, 15);
    c.run_while_not(secs(30), everyone_up).expect("converges");
    // node 2 comes back with an older generation (its clock went back)
    c.crash(2);
    let now = c.now;
    c.nodes[2] =
        Some(Gossiper::new(c.config.clone(), id(2), Generation(T0 - 100), now, ChaCha8Rng::seed_from_u64(98)).unwrap());
    c.set(2, "STATUS", "NORMAL");
    c.run_while_not(secs(60), |c| c.values(0, 2).get("STATUS").is_some_and(|s| s == "NORMAL") && c.all_see(2, true))
        .expect("renewed and seen");
    let renewed = c.events[2].iter().find_map(|(_, e)| match e {
        Event::GenerationRenewed { generation, .. } => Some(*generation),
        _ => None,
    });
    assert!(renewed.is_some_and(|g| g.0 > T0));
}

#[test]
fn at_most_one_exchange_is_in_flight_per_peer_and_a_lost_one_is_retried() {
    let now = Timestamp::from_secs(T0);
    for retries in [0u32, 2] {
        let mut config = config(&[0]);
        config.round_retries = retries;
        let timeout = config.exchange_timeout;
        let mut a = Gossiper::new(config, id(1), Generation(T0), now, ChaCha8Rng::seed_from_u64(1)).unwrap();
        // the seed never answers; tick every 50 ms for 20 rounds
        let mut sent: Vec<Timestamp> = Vec::new();
        for tick in 0..400u64 {
            let t = now + Duration::from_millis(50 * tick);
            let out = a.handle_timeout(t);
            sent.extend(out.transmits.iter().filter(|x| x.to == id(0)).map(|_| t));
        }
        for pair in sent.windows(2) {
            assert!(pair[1].saturating_since(pair[0]) >= timeout, "two SYNs in flight to one peer: {pair:?}");
        }
        // one per round, plus the retries of a lost one
        let per_round = sent.len() as f64 / 20.0;
        assert!((per_round - f64::from(1 + retries)).abs() <= 0.1, "{retries} retries: {per_round} SYNs per round");
    }
}

#[test]
fn left_states_expire_and_are_quarantined() {
    let mut c = Cluster::new(4, &[0], |cfg| cfg.dead_state_expiry = Duration::from_secs(20), 16);
    c.run_while_not(secs(30), everyone_up).expect("converges");
    let now = c.now;
    let out = c.node_mut(3).set_status(now, Status::Left).unwrap();
    c.absorb(3, out);
    c.run_while_not(secs(10), |c| c.all_see(3, false)).expect("LEFT is a dead state");
    c.crash(3); // it is gone
    c.run_while_not(secs(60), |c| (0..3).all(|i| c.node(i).view().get(&id(3)).is_none()))
        .expect("evicted after the expiry");
    for i in 0..3 {
        assert_eq!(c.count(i, |e| matches!(e, Event::Evicted { node } if *node == id(3))), 1);
    }
}

#[test]
fn silent_fat_clients_are_evicted() {
    let mut c = Cluster::new(4, &[0], |cfg| cfg.fat_client = Some((Key::TOKENS, Duration::from_secs(10))), 17);
    for i in 0..3 {
        c.set(i, "TOKENS", "-42");
    }
    c.run_while_not(secs(30), everyone_up).expect("converges");
    c.crash(3); // no TOKENS: a fat client
    c.crash(2); // a token owner
    c.run_for(secs(90));
    for i in 0..2 {
        assert!(c.node(i).view().get(&id(3)).is_none(), "the silent fat client is evicted");
        assert!(c.node(i).view().get(&id(2)).is_some(), "a dead token owner is kept");
    }
}

#[test]
fn snapshots_are_shared_until_something_changes() {
    let mut c = Cluster::new(3, &[0], |_| {}, 18);
    c.run_while_not(secs(30), everyone_up).expect("converges");
    let a = c.node_mut(0).snapshot();
    let b = c.node_mut(0).snapshot();
    assert!(std::sync::Arc::ptr_eq(&a, &b), "unchanged: the same snapshot");
    assert_eq!(a.members.len(), 3);
    assert_eq!(a.live().count(), 3);
    c.run_for(secs(2));
    let d = c.node_mut(0).snapshot();
    assert!(d.revision > a.revision, "heartbeats changed the view");
    // snapshots can go to other threads
    let handle = std::thread::spawn(move || d.members.len());
    assert_eq!(handle.join().unwrap(), 3);
}

#[test]
fn messages_for_another_cluster_garbage_and_our_own_are_counted_and_ignored() {
    let now = Timestamp::from_secs(T0);
    let mut a = node(0, T0, now);
    let other = Envelope {
        header: Header { cluster: ClusterName::new("other").unwrap(), sender: id(1), generation: Generation(T0) },
        message: Message::Shutdown,
    }
    .encode();
    a.handle_datagram(now, &other);
    a.handle_datagram(now, b"garbage");
    a.handle_datagram(now, &envelope(0, T0, Message::Shutdown));
    let m = a.metrics();
    assert_eq!((m.wrong_cluster, m.decode_errors, m.from_self), (1, 1, 1));
    assert_eq!(a.view().len(), 1);
    let _ = NodeId::new("x").unwrap();
}

/// The push half of an exchange (the ACK2) is lost: the node that answered the
/// SYN with requests pulls the state itself, once, with a SYN of its own. A
/// delivered ACK2, or an ACK that asked for nothing, leaves nothing to pull.
#[test]
fn a_lost_ack2_is_made_up_for_by_a_syn_back() {
    let start = Timestamp::from_secs(T0);
    let syn_from = |b: &mut Gossiper<ChaCha8Rng>, now: Timestamp| {
        let t = b.handle_timeout(now).transmits;
        t.into_iter().find(|t| t.to == id(0)).expect("b's round sends a SYN to the seed a").bytes
    };
    for ack2_arrives in [false, true] {
        let mut a = node(0, T0, start);
        let mut b = node(1, T0, start);
        b.set(start, Key::DC, "dc1").unwrap();
        let now = start + secs(1);
        a.handle_timeout(now); // a's round: its next is an interval away
        // b's SYN names b, unknown to a: a's ACK requests b's state
        let out = a.handle_datagram(now, &syn_from(&mut b, now));
        let ack = out.transmits.into_iter().find(|t| t.to == id(1)).unwrap().bytes;
        // (b also echoes a, which it just learned of)
        let ack2: Vec<_> = b.handle_datagram(now, &ack).transmits.into_iter().filter(|t| t.bytes[3] == 3).collect();
        assert_eq!(ack2.len(), 1);
        if ack2_arrives {
            a.handle_datagram(now, &ack2[0].bytes);
        }
        let timeout = a.config().exchange_timeout;
        assert_eq!(a.next_deadline() <= now + timeout, !ack2_arrives, "a wakes up to pull only when it must");
        let later = now + timeout;
        let pulls: Vec<_> = a.handle_timeout(later).transmits.into_iter().filter(|t| t.to == id(1)).collect();
        assert_eq!(pulls.len(), usize::from(!ack2_arrives), "ACK2 arrived: {ack2_arrives}");
        if let Some(syn) = pulls.first() {
            // the pull works: b answers with its state, a learns it
            let ack = b.handle_datagram(later, &syn.bytes).transmits.remove(0);
            a.handle_datagram(later, &ack.bytes);
            assert_eq!(a.view().get(&id(1)).unwrap().live_value(&Key::DC).unwrap().as_bytes(), b"dc1");
        }
        // once only
        assert!(a.handle_timeout(later).transmits.is_empty());
    }
}

/// The reference counts any newer heartbeat of a peer, whoever relays it: two
/// nodes that cannot reach each other but both reach a third keep seeing each
/// other up. Cut off from the relay as well, the same silence convicts.
#[test]
fn a_heartbeat_relayed_by_a_third_node_keeps_a_peer_up() {
    for relayed in [true, false] {
        let mut c = Cluster::new(3, &[2], |_| {}, 21);
        c.run_while_not(secs(30), everyone_up).expect("converges");
        c.run_for(secs(20)); // the detectors learn the rhythm
        let dead_before = c.count(0, |e| matches!(e, Event::Dead { node } if *node == id(1)));
        if relayed {
            c.partition(&[&[0, 2], &[1, 2]]); // only the link between 0 and 1 is cut
        } else {
            c.partition(&[&[0, 2], &[1]]);
        }
        c.run_for(secs(120));
        let convicted = c.count(0, |e| matches!(e, Event::Dead { node } if *node == id(1))) - dead_before;
        if relayed {
            assert_eq!(convicted, 0, "relayed heartbeats keep node 1 up at node 0");
            assert!(c.node(0).is_up(&id(1)) && c.node(1).is_up(&id(0)));
        } else {
            assert_eq!(convicted, 1, "unrelayed, the same silence convicts");
        }
    }
}

/// Scylla's markAlive: an echo left unanswered is given up after `echo_timeout`
/// and counted; the node stays down, and its next newer heartbeat starts a new
/// echo with a fresh nonce.
#[test]
fn an_unanswered_echo_is_given_up_after_the_echo_timeout() {
    let t0 = Timestamp::from_secs(T0);
    let codec = rumormill::Codec::new(ClusterName::new("scenario").unwrap());
    let echoes_in = |out: &rumormill::Output| -> Vec<u64> {
        out.transmits
            .iter()
            .filter_map(|t| match codec.decode(&t.bytes).unwrap().message {
                Message::Echo(e) => Some(e.nonce),
                _ => None,
            })
            .collect()
    };
    let mut a = node(1, T0, t0);
    let timeout = a.config().echo_timeout;
    // a learns the seed by hearsay: an ACK to its SYN carrying the seed's state
    let mut seed = node(0, T0, t0);
    let syn = a.handle_timeout(t0 + secs(1)).transmits.remove(0);
    let ack = seed.handle_datagram(t0 + secs(1), &syn.bytes).transmits.remove(0);
    let first = echoes_in(&a.handle_datagram(t0 + secs(1), &ack.bytes));
    assert_eq!(first.len(), 1);
    // the seed never answers; a's rounds run past the echo timeout
    let mut t = t0 + secs(1);
    while t <= t0 + secs(1) + timeout + secs(2) {
        a.handle_timeout(t);
        t = t + Duration::from_millis(500);
    }
    assert_eq!(a.metrics().echo_timeouts, 1);
    assert!(!a.is_up(&id(0)));
    // a newer heartbeat of the seed reaches a (its messages go back and forth
    // until none is left): a new echo, a new nonce
    seed.handle_timeout(t);
    let mut to_seed: Vec<_> = a.handle_timeout(t).transmits.into_iter().filter(|x| x.to == id(0)).collect();
    let mut again = Vec::new();
    while !to_seed.is_empty() {
        let to_a: Vec<_> = to_seed.drain(..).flat_map(|m| seed.handle_datagram(t, &m.bytes).transmits).collect();
        for m in to_a {
            let out = a.handle_datagram(t, &m.bytes);
            again.extend(echoes_in(&out));
            // the echo itself is not answered
            to_seed.extend(
                out.transmits
                    .into_iter()
                    .filter(|x| !matches!(codec.decode(&x.bytes).unwrap().message, Message::Echo(_))),
            );
        }
    }
    assert_eq!(again.len(), 1, "a new echo");
    assert_ne!(again[0], first[0], "with a fresh nonce");
}

/// A node in a dead state (here LEFT) is never asked for an echo, never marked
/// up, and never picked as an unreachable peer to gossip to (Cassandra 4.0+):
/// it still gossips itself, and gets answers, but no SYN and no echo.
#[test]
fn a_node_in_a_dead_state_is_not_echoed_marked_up_or_gossiped_to() {
    let mut c = Cluster::new(4, &[0], |_| {}, 22);
    let now = c.now;
    let out = c.node_mut(3).set_status(now, Status::Left).unwrap();
    c.absorb(3, out);
    c.run_for(secs(60));
    assert!(c.converged(), "its state spreads like any other");
    for i in 0..3 {
        assert!(!c.node(i).is_up(&id(3)), "node {i} sees the LEFT node down");
        assert_eq!(c.count(i, |e| matches!(e, Event::Alive { node } if *node == id(3))), 0);
    }
    let received = c.node(3).metrics().received;
    assert_eq!((received[0], received[3]), (0, 0), "SYNs and echoes received by the LEFT node");
    assert!(received[1] > 30, "its own SYNs are answered ({} ACKs)", received[1]);
}
