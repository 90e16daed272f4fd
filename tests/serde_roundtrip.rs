//! Every public data type goes to JSON and back (feature `serde`), and what
//! comes back behaves as what went out; JSON that would break a type's
//! invariants is refused with an error, not a panic.
#![cfg(feature = "serde")]

mod support;

use core::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rumormill::{
    ArrivalWindow, Budget, ClusterName, Config, Delta, DetectorConfig, Echo, EndpointState, Envelope, Generation,
    Gossiper, Header, Key, Limits, Message, NodeId, PageForm, ReceivedAck, Timestamp, Values, Version, VersionedValue,
    View, build_ack2, build_syn, handle_ack, handle_syn,
};
use serde::{Serialize, de::DeserializeOwned};
use support::{Cluster, T0, id};

fn round_trip<T: Serialize + DeserializeOwned>(x: &T) -> T {
    let json = serde_json::to_string(x).expect("serializes");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

fn same<T: Serialize + DeserializeOwned + PartialEq + core::fmt::Debug>(x: &T) {
    assert_eq!(&round_trip(x), x);
}

/// A view of `me` with three other nodes: values, tombstones, a purge floor.
fn busy_view() -> View {
    let mut v = View::new(id(0), Generation(T0));
    v.set_local(Key::STATUS, "NORMAL").unwrap();
    v.set_local(Key::new("gone").unwrap(), "soon").unwrap();
    v.delete_local(&Key::new("gone").unwrap(), Timestamp::from_secs(T0 + 5)).unwrap();
    let deltas: Vec<Delta> = (1..4)
        .map(|i| Delta {
            node: id(i),
            generation: Generation(T0 + i as u64),
            from: Version::ZERO,
            purged: Version(u64::from(i == 2)),
            heartbeat: Some(Version(9)),
            values: vec![
                (Key::DC, VersionedValue::live("dc1", Version(2))),
                (Key::new("old").unwrap(), VersionedValue::tombstone(Version(4))),
                (Key::LOAD, VersionedValue::live(&[0xff, 0x00, 0x80][..], Version(6))),
            ],
        })
        .collect();
    let applied = v.apply(&deltas, Timestamp::from_secs(T0 + 10));
    assert!(applied.ignored.is_empty(), "{:?}", applied.ignored);
    v
}

#[test]
fn views_values_and_states_come_back_equal_and_behave_the_same() {
    let v = busy_view().with_limits(rumormill::Limits { max_keys_per_node: 50, ..rumormill::Limits::default() });
    let back = round_trip(&v);
    assert_eq!(back.local_id(), v.local_id());
    assert_eq!(back.revision(), v.revision());
    assert_eq!(back.limits(), v.limits());
    for i in 0..4 {
        assert_eq!(back.get(&id(i)), v.get(&id(i)), "node {i}");
        assert_eq!(back.digest(&id(i)), v.digest(&id(i)));
    }
    // the same SYN, the same answer
    let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id(0), generation: Generation(T0) };
    let budget = Budget::new(1400, &header).unwrap();
    for form in [PageForm::Full, PageForm::Compact, PageForm::Hashed] {
        let syn = build_syn(&v, budget, None, form).unwrap();
        assert_eq!(build_syn(&back, budget, None, form).unwrap(), syn);
        let answer = |w: &View| handle_syn(w, &syn.syn, budget, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(answer(&back), answer(&v));
    }
    // the local tombstone is purged at the same time
    let (mut a, mut b) = (v.clone(), back);
    let later = Timestamp::from_secs(T0 + 10_000);
    assert_eq!(a.purge_local(later, Duration::from_secs(60)), b.purge_local(later, Duration::from_secs(60)));
    same(a.local_state());
    let values: Values = a.local_state().values().clone();
    same(&values);
    same(&rumormill::Limits::default());
}

#[test]
fn messages_outputs_and_results_come_back_equal() {
    let v = busy_view();
    let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id(0), generation: Generation(T0) };
    let budget = Budget::new(1400, &header).unwrap();
    same(&budget);
    let built = build_syn(&v, budget, None, PageForm::Compact).unwrap();
    same(&built);
    same(&Envelope { header: header.clone(), message: Message::Syn(built.syn.clone()) });
    // a node knowing nothing asks; v's ACK pushes what it knows
    let mut fresh = View::new(id(9), Generation(T0));
    let asking = build_syn(&fresh, budget, None, PageForm::Full).unwrap();
    let ack = handle_syn(&v, &asking.syn, budget, &mut ChaCha8Rng::seed_from_u64(2));
    assert!(!ack.message.deltas.is_empty());
    same(&ack);
    same(&Envelope { header, message: Message::Ack(ack.message.clone()) });
    let received =
        rumormill::handle_ack2(&fresh, &rumormill::Ack2 { deltas: ack.message.deltas.clone(), compact: None });
    same(&received);
    let applied = fresh.apply(&received.deltas, Timestamp::from_secs(T0 + 20));
    assert!(!applied.changes.is_empty());
    same(&applied);
    same(&handle_ack(&v, &ack.message));
}

#[test]
fn gossiper_outputs_snapshots_and_detector_windows_come_back_equal() {
    // one exchange between two nodes: every output on the way
    let mut config = Config::new(ClusterName::new("scenario").unwrap());
    config.seeds = vec![id(0)];
    let t = Timestamp::from_secs(T0);
    let node = |i: usize| {
        Gossiper::new(config.clone(), id(i), Generation(T0), t, ChaCha8Rng::seed_from_u64(i as u64)).unwrap()
    };
    let (mut seed, mut a) = (node(0), node(1));
    let mut outputs = vec![a.handle_timeout(t + Duration::from_secs(1))];
    let syn = outputs[0].transmits[0].bytes.clone();
    outputs.push(seed.handle_datagram(t + Duration::from_secs(1), &syn));
    let ack = outputs[1].transmits[0].bytes.clone();
    outputs.push(a.handle_datagram(t + Duration::from_secs(1), &ack));
    assert!(outputs.iter().all(|o| !o.transmits.is_empty()) && !outputs[2].events.is_empty());
    for o in &outputs {
        same(o);
    }
    let mut c = Cluster::new(3, &[0], |_| {}, 31);
    c.run_while_not(Duration::from_secs(30), |c| c.converged()).expect("converges");
    c.run_for(Duration::from_secs(5));
    let snapshot = c.node_mut(1).snapshot();
    same(&*snapshot);
    for (_, e) in c.events.iter().flatten() {
        same(e);
    }
    let config = DetectorConfig::default();
    let w = c.node(1).detector(&id(0)).expect("a peer").clone();
    let back: ArrivalWindow = round_trip(&w);
    assert_eq!(back, w);
    let at = c.now + Duration::from_secs(3);
    assert_eq!(back.phi(&config, at), w.phi(&config, at));
    same(&Config::new(ClusterName::new("c").unwrap()));
}

#[test]
fn json_that_breaks_an_invariant_is_refused() {
    let v = busy_view();
    let json = serde_json::to_value(&v).unwrap();
    let refuse = |j: serde_json::Value, why: &str| {
        let got = serde_json::from_value::<View>(j);
        assert!(got.is_err(), "{why}: accepted");
    };
    // the local node's state missing
    let mut no_local = json.clone();
    no_local["local"] = serde_json::to_value(NodeId::new("stranger").unwrap()).unwrap();
    refuse(no_local, "no local state");
    // ids out of order, or repeated
    let mut swapped = json.clone();
    swapped["nodes"].as_array_mut().unwrap().swap(0, 1);
    refuse(swapped, "ids out of order");
    let mut repeated = json.clone();
    let first = repeated["nodes"][0].clone();
    repeated["nodes"].as_array_mut().unwrap().insert(0, first);
    refuse(repeated, "an id repeated");
    // a deletion time for a key that is not a local tombstone
    let mut stray = json.clone();
    stray["deleted_at"]["STATUS"] = serde_json::json!(1);
    refuse(stray, "a deletion time for a live key");
    // a budget too small to build anything; detector windows out of range
    assert!(serde_json::from_str::<Budget>(r#"{"body":3}"#).is_err());
    let w = ArrivalWindow::new(&DetectorConfig::default(), Timestamp::from_secs(T0));
    let good = serde_json::to_value(&w).unwrap();
    for (field, bad) in [("current", 4), ("window", 1), ("window", 70_000), ("filling", 0), ("filling", 60_000)] {
        let mut j = good.clone();
        j[field] = serde_json::json!(bad);
        assert!(serde_json::from_value::<ArrivalWindow>(j).is_err(), "{field} = {bad} accepted");
    }
    let mut j = good.clone();
    j["sums"][0] = serde_json::json!(u32::MAX);
    assert!(serde_json::from_value::<ArrivalWindow>(j).is_err(), "a block sum past what it can hold");
    // an invalid entry: an empty node id, an empty key, a state without its generation
    let mut bad_id = json.clone();
    bad_id["nodes"][1][0] = serde_json::json!("");
    refuse(bad_id, "an empty node id");
    let mut bad_key = json.clone();
    bad_key["nodes"][1][1]["values"][""] = bad_key["nodes"][1][1]["values"]["DC"].clone();
    refuse(bad_key, "an empty key");
    let mut no_generation = json.clone();
    no_generation["nodes"][1][1].as_object_mut().unwrap().remove("generation");
    refuse(no_generation, "a state without its generation");
    refuse(serde_json::json!({}), "nothing at all");
    // values: keys in any order, none repeated
    let vv = serde_json::to_string(&VersionedValue::live("x", Version(1))).unwrap();
    for good in [format!(r#"{{"DC":{vv},"RACK":{vv}}}"#), format!(r#"{{"RACK":{vv},"DC":{vv}}}"#)] {
        let good: Values = serde_json::from_str(&good).unwrap();
        assert_eq!(good.keys().collect::<Vec<_>>(), [&Key::DC, &Key::RACK]);
    }
    for bad in [format!(r#"{{"DC":{vv},"DC":{vv}}}"#), format!(r#"{{"":{vv}}}"#)] {
        assert!(serde_json::from_str::<Values>(&bad).is_err(), "{bad} accepted");
        // nor inside a state
        let state = format!(r#"{{"generation":1,"heartbeat":2,"values":{bad}}}"#);
        assert!(serde_json::from_str::<EndpointState>(&state).is_err(), "{state} accepted");
    }
    // states come back normalized whatever the JSON says
    let s: EndpointState = round_trip(v.get(&id(2)).unwrap());
    assert!(s.is_normalized());
}

#[test]
fn a_view_read_back_applies_like_the_original() {
    let limits = Limits { max_keys_per_node: 4, max_nodes: 5, ..Limits::default() };
    let v = busy_view().with_limits(limits);
    let back = round_trip(&v);
    let delta = |i: usize, generation: u64, from: u64, keys: usize| Delta {
        node: id(i),
        generation: Generation(generation),
        from: Version(from),
        purged: Version::ZERO,
        heartbeat: Some(Version(20)),
        values: (0..keys)
            .map(|k| (Key::new(&format!("k{k}")).unwrap(), VersionedValue::live("v", Version(10 + k as u64))))
            .collect(),
    };
    let deltas = [
        delta(1, T0 + 1, 9, 1),  // one more key: within the limit
        delta(2, T0 + 2, 9, 3),  // three more: past max_keys_per_node, ignored
        delta(3, T0 + 50, 0, 2), // a restart
        delta(5, T0 + 5, 0, 1),  // a new node
        delta(6, T0 + 6, 0, 1),  // another: past max_nodes, ignored
        delta(0, T0 + 9, 0, 1),  // the local node: never taken from a peer
    ];
    let now = Timestamp::from_secs(T0 + 30);
    let (a, applied) = v.applied(&deltas, now);
    let (b, applied_back) = back.applied(&deltas, now);
    assert_eq!(applied_back, applied);
    assert!(!applied.changes.is_empty() && !applied.ignored.is_empty(), "{applied:?}");
    assert_eq!(b.revision(), a.revision());
    assert_eq!(b.iter().collect::<Vec<_>>(), a.iter().collect::<Vec<_>>());
    for i in 0..7 {
        assert_eq!(b.digest(&id(i)), a.digest(&id(i)), "node {i}");
    }
    // and it serializes as the original does, before and after
    assert_eq!(serde_json::to_value(&back).unwrap(), serde_json::to_value(&v).unwrap());
    assert_eq!(serde_json::to_value(&b).unwrap(), serde_json::to_value(&a).unwrap());
}

#[test]
fn every_message_kind_and_compact_requests_come_back_and_are_answered_the_same() {
    let header = Header { cluster: ClusterName::new("c").unwrap(), sender: id(0), generation: Generation(T0) };
    let budget = Budget::new(1400, &header).unwrap();
    for message in [Message::Echo(Echo { nonce: 7 }), Message::EchoReply(Echo { nonce: 7 }), Message::Shutdown] {
        same(&Envelope { header: header.clone(), message });
    }
    // b knows the same members as a: a's compact page is usable, and b's ACK asks
    // for a's newer heartbeat by member index (and, once b wrote a value of its
    // own, pushes it, so the requests are kept by id as well)
    for b_writes in [false, true] {
        let mut a = busy_view();
        let states: Vec<(NodeId, EndpointState)> = a.iter().map(|(i, s)| (i.clone(), s.clone())).collect();
        let mut b = View::from_states(id(1), states).unwrap();
        a.beat().unwrap();
        if b_writes {
            b.set_local(Key::new("mine").unwrap(), "yes").unwrap();
        }
        let syn = build_syn(&a, budget, None, PageForm::Compact).unwrap();
        let ack = handle_syn(&b, &syn.syn, budget, &mut ChaCha8Rng::seed_from_u64(4));
        same(&ack);
        same(&Envelope { header: header.clone(), message: Message::Ack(ack.message.clone()) });
        let received = handle_ack(&a, &ack.message);
        let json = serde_json::to_value(&received).unwrap();
        let compact = if b_writes { "indices" } else { "by_index" };
        assert!(!json["requests"][compact].as_array().unwrap().is_empty(), "{json}");
        let back: ReceivedAck = round_trip(&received);
        assert_eq!(back, received);
        let answer = |r: &ReceivedAck| build_ack2(&a, &r.requests, budget, &mut ChaCha8Rng::seed_from_u64(5));
        let ack2 = answer(&received);
        assert_eq!(answer(&back), ack2);
        assert!(ack2.message.compact.as_ref().is_some_and(|c| c.delta_count() > 0), "{ack2:?}");
        same(&ack2);
        same(&Envelope { header: header.clone(), message: Message::Ack2(ack2.message.clone()) });
        same(&rumormill::handle_ack2(&b, &ack2.message));
        // requests that break what resolving an ACK guarantees are refused
        let refuse = |change: &dyn Fn(&mut serde_json::Value), why: &str| {
            let mut j = json.clone();
            change(&mut j["requests"]);
            assert!(serde_json::from_value::<ReceivedAck>(j).is_err(), "{why}: accepted");
        };
        refuse(&|r| r["context"] = serde_json::Value::Null, "compact requests without a context");
        refuse(
            &|r| {
                let first = r[compact][0].clone();
                r[compact].as_array_mut().unwrap().push(first);
            },
            "an index repeated",
        );
        if b_writes {
            refuse(&|r| r["digests"] = serde_json::json!([]), "more indices than requests by id");
        }
    }
}
