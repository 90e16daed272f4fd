//! Shared generators for the property tests.
//!
//! States are never made up field by field: they come from an owner's history
//! (a sequence of local writes, deletes, heartbeats and purges on a real `View`),
//! and a peer's view of the owner is a prefix of one of the owner's snapshots, as
//! gossip produces. Merge laws are claimed for exactly these states.

#![allow(dead_code)]

use core::time::Duration;

use proptest::prelude::*;
use rumormill::{EndpointState, Generation, Key, NodeId, Timestamp, Version, VersionedValue, View};

/// Keys the histories use (few, so that they collide).
pub const KEYS: [&str; 8] = ["a", "b", "STATUS", "load", "DC", "RACK", "tokens", "schema"];

/// One local operation of an owner.
#[derive(Clone, Debug)]
pub enum OwnerOp {
    /// Set a key to `len` copies of a byte.
    Set(usize, u8, usize),
    Delete(usize),
    Beat,
    /// Purge tombstones older than this many seconds.
    Purge(u64),
}

pub fn owner_op() -> impl Strategy<Value = OwnerOp> {
    // keys 0 and 1 are hot, so set/delete/purge of one key happens often
    let k = prop_oneof![3 => 0..2usize, 1 => 0..KEYS.len()];
    prop_oneof![
        4 => (k.clone(), any::<u8>(), 1usize..12).prop_map(|(k, v, n)| OwnerOp::Set(k, v, n)),
        3 => k.prop_map(OwnerOp::Delete),
        4 => Just(OwnerOp::Beat),
        2 => (0u64..4).prop_map(OwnerOp::Purge),
    ]
}

pub fn key(i: usize) -> Key {
    Key::new(KEYS[i]).unwrap()
}

pub const T0: u64 = 1_700_000_000;

/// Applies one operation to an owner's view at second `t`.
pub fn run_op(view: &mut View, op: &OwnerOp, t: u64) {
    let now = Timestamp::from_secs(t);
    match op {
        OwnerOp::Set(k, v, n) => {
            view.set_local(key(*k), vec![*v; *n]).unwrap();
        }
        OwnerOp::Delete(k) => {
            view.delete_local(&key(*k), now).unwrap();
        }
        OwnerOp::Beat => {
            view.beat().unwrap();
        }
        OwnerOp::Purge(grace) => {
            view.purge_local(now, Duration::from_secs(*grace));
        }
    }
}

/// The owner's state after each operation (one second apart), starting with the
/// fresh state.
pub fn history(generation: u64, ops: &[OwnerOp]) -> Vec<EndpointState> {
    let mut owner = View::new(NodeId::new("owner").unwrap(), Generation(generation));
    let mut out = vec![owner.local_state().clone()];
    for (i, op) in ops.iter().enumerate() {
        run_op(&mut owner, op, T0 + i as u64);
        out.push(owner.local_state().clone());
    }
    out
}

/// A view of `snapshot` holding only its fields up to `cutoff`, as a truncated
/// delta from version 0 leaves it.
pub fn prefix(snapshot: &EndpointState, cutoff: Version) -> EndpointState {
    let hb = if snapshot.heartbeat() <= cutoff { snapshot.heartbeat() } else { Version::ZERO };
    let values: Vec<(Key, VersionedValue)> =
        snapshot.values().iter().filter(|(_, vv)| vv.version <= cutoff).map(|(k, v)| (k.clone(), v.clone())).collect();
    EndpointState::from_parts(snapshot.generation(), hb, values, snapshot.purged())
}

/// A position in `0..len` from a raw 64-bit choice (as `prop::sample::Index` does).
pub fn pos(raw: u64, len: usize) -> usize {
    ((u128::from(raw) * len as u128) >> 64) as usize
}

/// Picks a valid state from a history from two raw choices: a prefix of some
/// snapshot.
pub fn pick_raw(hist: &[EndpointState], which: u64, cut: u64) -> EndpointState {
    let snap = &hist[pos(which, hist.len())];
    prefix(snap, Version(pos(cut, snap.max_version().0 as usize + 1) as u64))
}

/// Picks a valid state from a history: a prefix of some snapshot.
pub fn pick(hist: &[EndpointState], which: prop::sample::Index, cut: prop::sample::Index) -> EndpointState {
    let snap = which.get(hist);
    let cutoff = Version(cut.index(snap.max_version().0 as usize + 1) as u64);
    prefix(snap, cutoff)
}

/// Every version of a history's final snapshot, with the field it belongs to:
/// what the owner wrote (values keyed by key name, "" for heartbeats).
pub fn written(hist: &[EndpointState]) -> std::collections::BTreeMap<u64, (String, Option<Vec<u8>>)> {
    let mut out = std::collections::BTreeMap::new();
    for s in hist {
        if s.heartbeat() > Version::ZERO {
            out.insert(s.heartbeat().0, (String::new(), None));
        }
        for (k, vv) in s.values() {
            out.insert(vv.version.0, (k.as_str().to_owned(), vv.value.as_ref().map(|v| v.as_bytes().to_vec())));
        }
    }
    out
}
