//! Rounds over hashed pages, including the ways fingerprints can mislead.

use alloc::format;
use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::*;
use crate::digest::fingerprint;
use crate::{Generation, Key, PageForm, Timestamp, build_syn};

const T0: u64 = 1_700_000_000;

fn id(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

/// Every owner's history: keys k1..k6 at versions 1..6, then a heartbeat at 7.
const HISTORY: u64 = 7;

/// `node`'s state (generation T0) up to version `upto` of its history.
fn state_of(node: &str, upto: u64) -> Delta {
    let values: Vec<(Key, VersionedValue)> = (1..HISTORY.min(upto + 1))
        .map(|v| {
            let value = Some(crate::Value::from(format!("{node}-{v}").into_bytes()));
            (Key::new(&format!("k{v}")).unwrap(), VersionedValue { value, version: Version(v) })
        })
        .collect();
    Delta {
        node: id(node),
        generation: Generation(T0),
        from: Version::ZERO,
        purged: Version::ZERO,
        heartbeat: (upto >= HISTORY).then_some(Version(HISTORY)),
        values,
    }
}

fn view(local: &str, others: &[(&str, u64)]) -> View {
    let mut v = View::new(id(local), Generation(T0));
    let deltas: Vec<Delta> = others.iter().map(|(n, k)| state_of(n, *k)).collect();
    let applied = v.apply(&deltas, Timestamp::from_secs(T0));
    assert!(applied.ignored.is_empty());
    v
}

fn hashed_syn(v: &View) -> Syn {
    build_syn(v, Budget::unlimited(), None, PageForm::Hashed).unwrap().syn
}

fn hashed_page(syn: &mut Syn) -> &mut HashedDigest {
    match &mut syn.page {
        DigestPage::Hashed(h) => h,
        other => panic!("not a hashed page: {other:?}"),
    }
}

/// One whole round a -> b over a hashed page, unlimited budgets.
fn round(a: &mut View, b: &mut View, syn: &Syn) -> ReceivedAck {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let now = Timestamp::from_secs(T0);
    let ack = handle_syn(b, syn, Budget::unlimited(), &mut rng).message;
    let received = handle_ack(a, &ack);
    a.apply(&received.deltas, now);
    let ack2 = build_ack2(a, &received.requests, Budget::unlimited(), &mut rng).message;
    assert!(ack2.compact.is_none(), "an answer to a hashed page goes by id");
    let got = handle_ack2(b, &ack2);
    b.apply(&got.deltas, now);
    received
}

#[test]
fn one_round_over_a_hashed_page_gives_both_sides_the_newer_of_everything() {
    // shared nodes at different versions, and nodes only one side knows
    let mut a = view("a", &[("s1", 5), ("s2", 1), ("only-a", 2)]);
    let mut b = view("b", &[("s1", 2), ("s2", 7), ("only-b", 7)]);
    let syn = hashed_syn(&a);
    let received = round(&mut a, &mut b, &syn);
    assert_eq!(received.context_error, None);
    for name in ["a", "b", "s1", "s2", "only-a", "only-b"] {
        let (x, y) = (a.get(&id(name)), b.get(&id(name)));
        assert!(x.is_some(), "a lacks {name}");
        assert_eq!(x, y, "a and b differ on {name}");
    }
    assert_eq!(a.get(&id("s1")).unwrap().max_version(), Version(5));
    assert_eq!(a.get(&id("s2")).unwrap().max_version(), Version(7));
}

#[test]
fn a_fingerprint_that_matches_the_wrong_node_fails_the_check_and_changes_nothing() {
    // a lists "y", which b does not know; b knows "x", which a does not. Forge the
    // fingerprint of y into that of b's x: b takes the entry for x and sends x's
    // newer fields under y's index. The check, over the ids b matched, refuses them.
    let mut a = view("a", &[("y", 1)]);
    let mut b = view("b", &[("x", 7)]);
    let mut syn = hashed_syn(&a);
    let page = hashed_page(&mut syn);
    let salt = page.salt;
    let y = a.nodes().ids().iter().position(|n| *n == id("y")).unwrap();
    page.entries[y].fingerprint = fingerprint(salt, &id("x"), Generation(T0));
    let before = a.get(&id("y")).cloned();
    let received = round(&mut a, &mut b, &syn);
    assert_eq!(received.context_error, Some(ContextError::CheckFailed));
    assert_eq!(a.get(&id("y")).cloned(), before, "x's fields must not land on y");
    assert!(a.get(&id("x")).is_none(), "matched, so not pushed; a learns x in a later round");
}

#[test]
fn a_fingerprint_two_entries_share_matches_nothing() {
    // a lists p and q under one fingerprint, b knows p: b cannot tell them apart,
    // so it asks for both whole and pushes its p whole
    let mut a = view("a", &[("p", 2), ("q", 3)]);
    let mut b = view("b", &[("p", 1)]);
    let mut syn = hashed_syn(&a);
    let page = hashed_page(&mut syn);
    let salt = page.salt;
    let list = a.nodes().ids();
    let p = list.iter().position(|n| *n == id("p")).unwrap();
    let q = list.iter().position(|n| *n == id("q")).unwrap();
    page.entries[q].fingerprint = fingerprint(salt, &id("p"), Generation(T0));
    assert_eq!(page.entries[p].fingerprint, page.entries[q].fingerprint);
    let ack = handle_syn(&b, &syn, Budget::unlimited(), &mut ChaCha8Rng::seed_from_u64(1)).message;
    let compact = ack.compact.as_ref().unwrap();
    let whole = compact.whole.as_deref().unwrap();
    assert!(whole.contains(&(p as u32)) && whole.contains(&(q as u32)), "{whole:?}");
    assert!(ack.deltas.iter().any(|d| d.node == id("p") && d.from == Version::ZERO), "b's p goes whole");
    let received = round(&mut a, &mut b, &syn);
    assert_eq!(received.context_error, None);
    assert_eq!(b.get(&id("p")).unwrap().max_version(), Version(2));
    assert_eq!(b.get(&id("q")).unwrap().max_version(), Version(3));
}

#[test]
fn an_answer_to_a_page_whose_members_changed_since_is_refused_whole() {
    let mut a = view("a", &[("m", 1)]);
    let b = view("b", &[("m", 4)]);
    let syn = hashed_syn(&a);
    let ack = handle_syn(&b, &syn, Budget::unlimited(), &mut ChaCha8Rng::seed_from_u64(1)).message;
    assert!(ack.compact.as_ref().is_some_and(|c| c.delta_count() > 0));
    // a learns another node before the ACK arrives: its member indexes moved
    a.apply(&[state_of("late", 1)], Timestamp::from_secs(T0));
    let received = handle_ack(&a, &ack);
    assert!(matches!(received.context_error, Some(ContextError::MembersDiffer(_))));
    assert!(received.deltas.iter().all(|d| d.node != id("m")), "nothing of the compact part is applied");
}

#[test]
fn a_node_held_below_the_senders_purge_floor_is_asked_for_whole() {
    // b holds m at version 1; a's m has purged tombstones up to 5: b may hold keys
    // deleted since, so it must rebuild m from version 0, not from 1
    let mut a = view("a", &[("m", 7)]);
    let b = view("b", &[("m", 1)]);
    let floor = state_of("m", 7);
    let raised = Delta { purged: Version(5), values: Vec::new(), heartbeat: None, from: Version(7), ..floor };
    a.apply(&[raised], Timestamp::from_secs(T0));
    assert_eq!(a.get(&id("m")).unwrap().purged(), Version(5));
    let syn = hashed_syn(&a);
    let ack = handle_syn(&b, &syn, Budget::unlimited(), &mut ChaCha8Rng::seed_from_u64(1)).message;
    let compact = ack.compact.as_ref().unwrap();
    let m = a.nodes().ids().iter().position(|n| *n == id("m")).unwrap() as u32;
    assert!(compact.requests.iter().all(|r| r.index != m), "not by version");
    assert!(compact.whole.as_ref().is_some_and(|w| w.contains(&m)), "but whole");
    let received = handle_ack(&a, &ack);
    let asked = received.requests.digests.iter().find(|d| d.node == id("m")).unwrap();
    assert_eq!(asked.max_version, Version::ZERO);
}
