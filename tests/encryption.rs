//! Sealed gossip (feature `encryption`): clusters converge sealed and within their
//! budgets, strangers and tampered frames change nothing and are counted, nonces
//! never repeat, and keys rotate in a live cluster without a message refused.
#![cfg(feature = "encryption")]

mod support;

use std::collections::BTreeSet;

use core::time::Duration;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    ClusterName, Config, ConfigError, Generation, Gossiper, Key, Keyring, NodeId, OpenError, SEAL_OVERHEAD, SecretKey,
    Timestamp,
};
use support::{Cluster, T0, id};

const PLAIN_REFUSED: usize = 0;
const MALFORMED: usize = 1;
const UNKNOWN_KEY: usize = 2;
const UNAUTHENTIC: usize = 3;
const NO_KEYRING: usize = 4;

fn key(b: u8) -> SecretKey {
    SecretKey::from_bytes([b; 32])
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn sealed_cluster(n: usize, ring: &Keyring, seed: u64, configure: impl Fn(&mut Config)) -> Cluster {
    let mut c = Cluster::new(
        n,
        &[0],
        |cfg| {
            cfg.keyring = Some(ring.clone());
            configure(cfg);
        },
        seed,
    );
    for i in 0..n {
        c.set(i, "STATUS", "NORMAL");
    }
    c
}

fn rejected(c: &Cluster) -> [u64; 5] {
    let mut sum = [0; 5];
    for i in c.running() {
        for (s, r) in sum.iter_mut().zip(c.node(i).metrics().seal_rejected) {
            *s += r;
        }
    }
    sum
}

/// Sets a new value on one node and runs until everyone has it: gossip works.
fn news_spreads(c: &mut Cluster, from: usize, value: &str) {
    c.set(from, "NEWS", value);
    c.run_while_not(secs(30), |c| c.converged())
        .unwrap_or_else(|| panic!("news from node {from} did not spread ({value})"));
}

#[test]
fn a_sealed_cluster_converges_within_its_budget() {
    let ring = Keyring::new(key(1));
    let mut c = sealed_cluster(6, &ring, 1, |cfg| {
        cfg.max_message_bytes = 1_400;
        cfg.limits.max_value_len = 448;
    });
    // more state than fits one message: the budget is hit, yet every frame fits
    for i in 0..6 {
        for k in 0..16 {
            c.set(i, &format!("BIG{k}"), &"x".repeat(100));
        }
    }
    c.run_while_not(secs(60), |c| c.converged()).expect("a sealed cluster converges");
    let hits: u64 = c.running().iter().map(|&i| c.node(i).metrics().budget_hits).sum();
    assert!(hits > 0, "the scenario must fill messages to the budget");
    assert!(c.largest <= 1_400, "a sealed frame of {} bytes", c.largest);
    assert!(c.largest > 1_400 - 150, "frames are filled up to the budget, seal included ({})", c.largest);
    assert_eq!(rejected(&c), [0; 5]);
}

/// A real frame from a node of the cluster, and the node it was for.
fn captured_frame(c: &mut Cluster, from: usize) -> (NodeId, Vec<u8>) {
    let now = c.now + secs(1);
    let out = c.node_mut(from).handle_timeout(now);
    let t = out.transmits.into_iter().next().expect("a round sends a SYN");
    (t.to, t.bytes)
}

#[test]
fn strangers_tampering_and_plain_messages_change_nothing_and_are_counted() {
    let ring = Keyring::new(key(1));
    let mut c = sealed_cluster(3, &ring, 2, |_| {});
    c.run_while_not(secs(30), |c| c.converged()).expect("converges");
    let now = c.now;
    let victim = 0;
    let before = c.node(victim).view().revision();

    // a stranger that has the cluster's name but another key
    let mut stranger_config = c.config.clone();
    stranger_config.keyring = Some(Keyring::new(key(9)));
    let stranger = |config: Config| {
        Gossiper::new(config, NodeId::new("stranger").unwrap(), Generation(T0), now, ChaCha8Rng::seed_from_u64(5))
            .unwrap()
    };
    let mut s = stranger(stranger_config.clone());
    s.set(now, Key::new("EVIL").unwrap(), "1").unwrap();
    let syn = s.handle_timeout(now + secs(2)).transmits.remove(0).bytes;
    let out = c.node_mut(victim).handle_datagram(now, &syn);
    assert!(out.transmits.is_empty() && out.events.is_empty());
    assert_eq!(c.node(victim).metrics().seal_rejected[UNKNOWN_KEY], 1);

    // a plain message
    stranger_config.keyring = None;
    let mut p = stranger(stranger_config.clone());
    let syn = p.handle_timeout(now + secs(2)).transmits.remove(0).bytes;
    assert!(c.node_mut(victim).handle_datagram(now, &syn).transmits.is_empty());
    assert_eq!(c.node(victim).metrics().seal_rejected[PLAIN_REFUSED], 1);

    // the right key, but sealed for another cluster
    stranger_config.cluster = ClusterName::new("other").unwrap();
    stranger_config.keyring = Some(ring.clone());
    let mut o = stranger(stranger_config);
    let syn = o.handle_timeout(now + secs(2)).transmits.remove(0).bytes;
    assert!(c.node_mut(victim).handle_datagram(now, &syn).transmits.is_empty());
    assert_eq!(c.node(victim).metrics().seal_rejected[UNAUTHENTIC], 1);

    // a member's real frame with one bit flipped, anywhere past the key id
    let (to, frame) = captured_frame(&mut c, 1);
    let to = (0..3).find(|&i| id(i) == to).unwrap();
    let to_before = c.node(to).view().revision();
    let mut flips = 0;
    for at in 7..frame.len() {
        let mut bad = frame.clone();
        bad[at] ^= 0x20;
        let out = c.node_mut(to).handle_datagram(now, &bad);
        assert!(out.transmits.is_empty() && out.events.is_empty(), "flipped byte {at} was acted on");
        flips += 1;
    }
    let tampered = c.node(to).metrics().seal_rejected[UNAUTHENTIC] - u64::from(to == victim);
    assert_eq!(tampered, flips);
    // truncated: malformed or unauthentic (or, too short for the magic, plain),
    // never acted on, each counted once
    let rejected_before = c.node(to).metrics().seal_rejected;
    for len in 0..frame.len() {
        let out = c.node_mut(to).handle_datagram(now, &frame[..len]);
        assert!(out.transmits.is_empty() && out.events.is_empty(), "a frame cut to {len} bytes was acted on");
    }
    let rejected = c.node(to).metrics().seal_rejected;
    let more = |i: usize| rejected[i] - rejected_before[i];
    assert_eq!(more(PLAIN_REFUSED), 2, "0 and 1 bytes");
    assert_eq!(more(MALFORMED), 47 - 2, "shorter than a seal");
    assert_eq!(more(UNAUTHENTIC), frame.len() as u64 - 47, "a tag that does not verify");
    assert_eq!(c.node(to).view().revision(), to_before, "no state changed at the receiver");

    assert_eq!(c.node(victim).view().revision(), before, "no state changed");
    assert!(c.node(victim).view().get(&NodeId::new("stranger").unwrap()).is_none());
    // and the genuine frame still works
    assert!(!c.node_mut(to).handle_datagram(now, &frame).transmits.is_empty(), "the real SYN is answered");
}

#[test]
fn a_node_without_a_keyring_counts_sealed_frames_it_cannot_open() {
    let mut c = Cluster::new(2, &[0], |_| {}, 3);
    let mut config = c.config.clone();
    config.keyring = Some(Keyring::new(key(1)));
    let now = c.now;
    let mut sealed =
        Gossiper::new(config, NodeId::new("sealed").unwrap(), Generation(T0), now, ChaCha8Rng::seed_from_u64(1))
            .unwrap();
    let syn = sealed.handle_timeout(now + secs(2)).transmits.remove(0).bytes;
    assert!(c.node_mut(0).handle_datagram(now, &syn).transmits.is_empty());
    assert_eq!(c.node(0).metrics().seal_rejected[NO_KEYRING], 1);
    assert_eq!(c.node(0).metrics().decode_errors, 0, "counted once, as what it is");
}

/// Every frame's nonce, across nodes that share their RNG seed and across a
/// restart, is distinct.
#[test]
fn nonces_never_repeat_across_nodes_sharing_a_seed_and_restarts() {
    let mut config = Config::new(ClusterName::new("n").unwrap());
    config.keyring = Some(Keyring::new(key(1)));
    config.seeds = vec![id(0)];
    let start = Timestamp::from_secs(T0);
    let node = |i: usize, generation: u64, now: Timestamp| {
        // the same RNG seed for every node and every life
        Gossiper::new(config.clone(), id(i), Generation(generation), now, ChaCha8Rng::seed_from_u64(42)).unwrap()
    };
    let mut nodes: Vec<_> = (0..3).map(|i| node(i, T0, start)).collect();
    let mut nonces = BTreeSet::new();
    let mut frames = 0;
    let mut now = start;
    let mut run = |nodes: &mut Vec<Gossiper<ChaCha8Rng>>, until: Timestamp, now: &mut Timestamp| {
        while *now < until {
            *now = *now + Duration::from_millis(50);
            let mut queue: Vec<_> = nodes.iter_mut().flat_map(|g| g.handle_timeout(*now).transmits).collect();
            while let Some(t) = queue.pop() {
                assert!(nonces.insert(t.bytes[7..31].to_vec()), "a nonce repeated");
                frames += 1;
                let to = (0..nodes.len()).find(|&i| id(i) == t.to).unwrap();
                queue.extend(nodes[to].handle_datagram(*now, &t.bytes).transmits);
            }
        }
    };
    run(&mut nodes, start + secs(20), &mut now);
    // node 1 restarts with the same seed: a newer generation, a fresh counter
    nodes[1] = node(1, T0 + 100, now);
    run(&mut nodes, now + secs(20), &mut now);
    assert!(frames > 200, "only {frames} frames");
    assert_eq!(nonces.len(), frames);
    assert!(nodes.iter().all(|g| g.metrics().seal_rejected == [0; 5]));
}

/// The protocol requires a newer generation at every restart; a restart that
/// reuses one by mistake still gets nonces of its own: from its start time when
/// the RNG seed is the same, from its RNG when the start time is the same.
#[test]
fn a_restart_that_reuses_its_generation_gets_new_nonces() {
    let mut config = Config::new(ClusterName::new("n").unwrap());
    config.keyring = Some(Keyring::new(key(1)));
    config.seeds = vec![id(1)];
    let start = Timestamp::from_secs(T0);
    // the nonces of a life's first 20 frames (its rounds' SYNs to the seed)
    let nonces = |started: Timestamp, rng_seed: u64| -> BTreeSet<Vec<u8>> {
        let mut g =
            Gossiper::new(config.clone(), id(0), Generation(T0), started, ChaCha8Rng::seed_from_u64(rng_seed)).unwrap();
        let mut out = BTreeSet::new();
        let mut now = started;
        while out.len() < 20 {
            now = now + Duration::from_millis(250);
            out.extend(g.handle_timeout(now).transmits.into_iter().map(|t| t.bytes[7..31].to_vec()));
        }
        out
    };
    let first = nonces(start, 42);
    assert_eq!(first, nonces(start, 42), "(the same life again is the same, byte for byte)");
    for (started, rng_seed) in [(start + Duration::from_millis(1), 42), (start, 43)] {
        let again = nonces(started, rng_seed);
        assert!(first.is_disjoint(&again), "a nonce repeated (start {started}, RNG seed {rng_seed})");
    }
}

/// The whole rotation in a live cluster: add the new key everywhere, make it
/// primary everywhere, remove the old one everywhere, one node at a time, with
/// news spreading at every step and not one message refused. A node left on the
/// old key alone is then shut out.
#[test]
fn keys_rotate_in_a_live_cluster_without_a_message_refused() {
    let (old, new) = (key(1), key(2));
    let n = 5;
    let mut c = sealed_cluster(n, &Keyring::new(old.clone()), 4, |_| {});
    c.run_while_not(secs(30), |c| c.converged()).expect("converges");
    let mut step = 0;
    for i in 0..n {
        c.node_mut(i).keyring_mut().unwrap().add(new.clone()).unwrap();
        step += 1;
        news_spreads(&mut c, (i + 1) % n, &format!("added-{step}"));
    }
    for i in 0..n {
        c.node_mut(i).keyring_mut().unwrap().set_primary(new.id()).unwrap();
        step += 1;
        news_spreads(&mut c, (i + 2) % n, &format!("primary-{step}"));
    }
    for i in 0..n {
        c.node_mut(i).keyring_mut().unwrap().remove(old.id()).unwrap();
        step += 1;
        news_spreads(&mut c, (i + 3) % n, &format!("removed-{step}"));
    }
    assert_eq!(rejected(&c), [0; 5], "no message was refused during the rotation");
    assert!(c.running().iter().all(|&i| c.node(i).metrics().sent[0] > 0));

    // a node restarted with only the old key can no longer talk to the cluster
    c.config.keyring = Some(Keyring::new(old));
    c.restart(4);
    c.set(4, "STATUS", "NORMAL");
    c.run_for(secs(10));
    let refused: u64 = (0..4).map(|i| c.node(i).metrics().seal_rejected[UNKNOWN_KEY]).sum();
    assert!(refused > 0, "the stale node's frames are refused as sealed with an unknown key");
    assert!(c.node(4).view().get(&id(0)).is_none(), "it learned nothing from the cluster");
}

/// Turning encryption on in a plain cluster without downtime: keyrings that accept
/// and send plain messages, then sealed sending, then plain refused.
#[test]
fn encryption_turns_on_in_a_live_cluster() {
    let n = 4;
    let mut c = Cluster::new(n, &[0], |_| {}, 5);
    for i in 0..n {
        c.set(i, "STATUS", "NORMAL");
    }
    c.run_while_not(secs(30), |c| c.converged()).expect("converges plain");
    let mut ring = Keyring::new(key(3));
    ring.set_plaintext(true, true);
    for (accept, send) in [(true, true), (true, false), (false, false)] {
        ring.set_plaintext(accept, send);
        for i in 0..n {
            c.node_mut(i).set_keyring(Some(ring.clone())).unwrap();
            news_spreads(&mut c, (i + 1) % n, &format!("{accept}-{send}-{i}"));
        }
    }
    assert_eq!(rejected(&c), [0; 5]);
    // from now on a plain stranger is refused
    let now = c.now;
    let mut config = c.config.clone();
    config.keyring = None;
    let mut plain =
        Gossiper::new(config, NodeId::new("plain").unwrap(), Generation(T0), now, ChaCha8Rng::seed_from_u64(1))
            .unwrap();
    let syn = plain.handle_timeout(now + secs(2)).transmits.remove(0).bytes;
    c.node_mut(0).handle_datagram(now, &syn);
    assert_eq!(c.node(0).metrics().seal_rejected[PLAIN_REFUSED], 1);
}

#[test]
fn budgets_leave_room_for_the_seal() {
    let mut config = Config::new(ClusterName::new("b").unwrap());
    config.validate().unwrap();
    // the tightest budget that holds the largest value in plain ...
    config.max_message_bytes = 1_000;
    config.limits.max_value_len = 1;
    let fits = |config: &Config, len: usize| {
        let mut c = config.clone();
        c.limits.max_value_len = len;
        c.validate().is_ok()
    };
    while fits(&config, config.limits.max_value_len + 1) {
        config.limits.max_value_len += 1;
    }
    config.validate().unwrap();
    // ... cannot hold it sealed
    let mut sealed = config.clone();
    sealed.keyring = Some(Keyring::new(key(1)));
    assert!(matches!(sealed.validate(), Err(ConfigError::ValueDoesNotFit { .. })));
    sealed.limits.max_value_len -= SEAL_OVERHEAD;
    sealed.validate().unwrap();
    // a running node refuses a keyring its budget cannot carry, and keeps running plain
    let now = Timestamp::from_secs(T0);
    let mut g = Gossiper::new(config.clone(), id(0), Generation(T0), now, ChaCha8Rng::seed_from_u64(1)).unwrap();
    assert!(g.set_keyring(Some(Keyring::new(key(1)))).is_err());
    assert!(g.keyring_mut().is_none());
    // the WAN preset is ready for sealing
    let mut wan = Config::wan(ClusterName::new("wan").unwrap());
    wan.keyring = Some(Keyring::new(key(1)));
    wan.validate().unwrap();
}

#[test]
fn a_frame_opens_only_with_its_cluster_and_key() {
    let cluster = ClusterName::new("c").unwrap();
    let mut ring = Keyring::new(key(1));
    let mut nonces = rumormill::NonceSequence::new(&id(0), Generation(1), 0);
    let frame = ring.seal(&cluster, &mut nonces, b"hello").unwrap();
    assert_eq!(frame.len(), 5 + SEAL_OVERHEAD);
    assert_eq!(ring.open(&ClusterName::new("d").unwrap(), &frame), Err(OpenError::Unauthentic));
    assert_eq!(Keyring::new(key(2)).open(&cluster, &frame), Err(OpenError::UnknownKey(key(1).id())));
    ring.add(key(2)).unwrap();
    ring.set_primary(key(2).id()).unwrap();
    assert_eq!(ring.open(&cluster, &frame).unwrap(), b"hello", "old keys still open");
}
