//! Applying deltas: what happens to a view when state arrives from a peer.
//!
//! [`plan`] is pure: it reads the view and the deltas and says what would change
//! (a [`Merge`]). Committing the plan is mechanical. Every delta either changes
//! something, changes nothing because it is old news, or is ignored for a reason
//! reported in [`Ignored`]; nothing is dropped silently.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::entries::Entries;
use crate::{Delta, EndpointState, Generation, Key, NodeId, Timestamp, Version, VersionedValue, View};

/// Something a merge changed, for the driver to turn into events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Change {
    /// A node this view did not know.
    Joined {
        /// The node.
        node: NodeId,
        /// Its generation.
        generation: Generation,
    },
    /// A known node with a newer generation: it restarted, and its state was
    /// replaced whole.
    Restarted {
        /// The node.
        node: NodeId,
        /// The generation it had.
        previous: Generation,
        /// The new generation.
        generation: Generation,
    },
    /// A newer heartbeat of a known node, same generation.
    Heartbeat {
        /// The node.
        node: NodeId,
        /// The new heartbeat version.
        version: Version,
    },
    /// A key of a known node was set or deleted (same generation): a deletion
    /// when `new` is a tombstone (see [`Change::is_deletion`]).
    Value {
        /// The node.
        node: NodeId,
        /// The key.
        key: Key,
        /// What the view held before (`None`: nothing).
        old: Option<VersionedValue>,
        /// What it holds now; a tombstone if the key was deleted, `None` if a
        /// [`Change::Reset`] dropped a key the owner had deleted long ago.
        new: Option<VersionedValue>,
    },
    /// The view of a node was rebuilt: the owner purged tombstones this view had
    /// never received, so keys deleted in that window might have lingered here.
    /// Followed by [`Change::Value`] for every key that changed.
    Reset {
        /// The node.
        node: NodeId,
        /// The owner's purge floor that triggered it.
        purged: Version,
    },
}

impl Change {
    /// Whether this change deletes a key: a [`Change::Value`] whose new value is a
    /// tombstone, or one a reset dropped while it was live.
    ///
    /// ```
    /// use rumormill::{Change, Key, NodeId, Version, VersionedValue};
    /// let node = NodeId::new("b")?;
    /// let old = Some(VersionedValue::live("x", Version(3)));
    /// let deleted = Change::Value { node, key: Key::LOAD, old, new: Some(VersionedValue::tombstone(Version(4))) };
    /// assert!(deleted.is_deletion());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_deletion(&self) -> bool {
        match self {
            Change::Value { new: Some(v), .. } => v.is_tombstone(),
            Change::Value { old: Some(v), new: None, .. } => !v.is_tombstone(),
            _ => false,
        }
    }
}

/// A delta (or part of one) that was not applied, and why. The view is unchanged
/// by it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Ignored {
    /// State of the local node: never taken from a peer. When the peer's claim is
    /// newer than the local state (a newer generation, or a higher version in the
    /// current one) the driver must move its own version past it.
    OwnState {
        /// Generation claimed.
        generation: Generation,
        /// Highest version claimed.
        version: Version,
    },
    /// A generation more than a year ahead of the clock.
    FutureGeneration {
        /// The node.
        node: NodeId,
        /// The generation claimed.
        generation: Generation,
    },
    /// A generation older than the one known.
    OlderGeneration {
        /// The node.
        node: NodeId,
        /// The generation in the delta.
        generation: Generation,
    },
    /// The delta starts above what this view holds (or, for a node or generation
    /// this view does not have, does not start at the beginning), so applying it
    /// would leave a gap.
    NotContiguous {
        /// The node.
        node: NodeId,
        /// The delta's base version.
        from: Version,
        /// This view's max version of the node.
        max_version: Version,
    },
    /// The sender has not seen the owner's newest purge floor nor every version up
    /// to it, so its old values may be of keys deleted since.
    BelowPurgeFloor {
        /// The node.
        node: NodeId,
    },
    /// The view holds the most nodes its limits allow.
    TooManyNodes {
        /// The node that was not added.
        node: NodeId,
    },
    /// The node would hold more keys than the limits allow.
    TooManyKeys {
        /// The node.
        node: NodeId,
    },
    /// A value longer than the limit.
    ValueTooLarge {
        /// The node.
        node: NodeId,
        /// The key.
        key: Key,
        /// Its length.
        len: usize,
    },
    /// Versions not strictly ascending above `from`, or a repeated key (only
    /// possible for deltas built by hand; the decoder rejects such bytes).
    Malformed {
        /// The node.
        node: NodeId,
    },
}

/// What a commit changed and what it ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Applied {
    /// Changes, in the order the deltas came.
    pub changes: Vec<Change>,
    /// Deltas not applied, with the reason.
    pub ignored: Vec<Ignored>,
}

/// How one node's state changes.
#[derive(Clone, Debug)]
enum Patch {
    /// A new node, a restart or a reset: the state is replaced.
    Replace(EndpointState),
    /// A same-generation merge.
    Update { heartbeat: Option<Version>, max_version: Version, purged: Version, set: Vec<(Key, VersionedValue)> },
}

impl Patch {
    fn apply_to(self, state: &mut EndpointState) {
        match self {
            Patch::Replace(s) => *state = s,
            Patch::Update { heartbeat, max_version, purged, set } => {
                if let Some(hb) = heartbeat {
                    state.set_heartbeat(hb);
                }
                for (k, vv) in set {
                    state.set_value(k, vv);
                }
                state.raise_max_version(max_version);
                state.raise_purged(purged);
            }
        }
    }
}

/// The outcome of [`View::plan`]: what applying some deltas would change.
/// Commit it with [`View::commit`].
#[derive(Clone, Debug)]
pub struct Merge {
    revision: u64,
    now: Timestamp,
    deltas: Vec<Delta>,
    planned: Planned,
}

/// Patches per node plus the report.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    patches: BTreeMap<NodeId, Patch>,
    applied: Applied,
}

impl Merge {
    pub(crate) fn new(view: &View, deltas: &[Delta], now: Timestamp) -> Merge {
        Merge { revision: view.revision(), now, deltas: deltas.to_vec(), planned: plan(view, deltas, now) }
    }

    /// What would change.
    pub fn changes(&self) -> &[Change] {
        &self.planned.applied.changes
    }

    /// What would be ignored, and why.
    pub fn ignored(&self) -> &[Ignored] {
        &self.planned.applied.ignored
    }

    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }

    pub(crate) fn deltas(&self) -> &[Delta] {
        &self.deltas
    }

    pub(crate) fn into_planned(self) -> Planned {
        self.planned
    }
}

impl Planned {
    pub(crate) fn changes_state(&self) -> bool {
        !self.patches.is_empty()
    }

    pub(crate) fn commit_into(self, nodes: &mut Entries) -> Applied {
        for (node, patch) in self.patches {
            match patch {
                Patch::Replace(s) => {
                    nodes.insert(node, s);
                }
                update => {
                    if let Some(state) = nodes.get_mut(&node) {
                        update.apply_to(state);
                    }
                }
            }
        }
        self.applied
    }
}

/// Computes what applying `deltas` (in order) to `view` would change.
pub(crate) fn plan(view: &View, deltas: &[Delta], now: Timestamp) -> Planned {
    let mut patches: BTreeMap<NodeId, Patch> = BTreeMap::new();
    let mut applied = Applied::default();
    let mut new_nodes = 0usize;
    for d in deltas {
        // A node met twice in one batch: fold its pending patch into a full state so
        // the second delta merges against the first one's result.
        if let Some(Patch::Update { .. }) = patches.get(&d.node) {
            let mut s = view.get(&d.node).cloned().expect("updates are only planned for known nodes");
            let pending = patches.remove(&d.node).expect("just seen");
            pending.apply_to(&mut s);
            patches.insert(d.node.clone(), Patch::Replace(s));
        }
        let base = match patches.get(&d.node) {
            Some(Patch::Replace(s)) => Some(s),
            _ => view.get(&d.node),
        };
        let known = view.len() + new_nodes;
        match merge_delta(view.local_id(), base, d, now, view.limits(), known, &mut applied.changes) {
            Err(why) => applied.ignored.push(why),
            Ok(None) => {}
            Ok(Some(patch)) => {
                if view.get(&d.node).is_none() && !patches.contains_key(&d.node) {
                    new_nodes += 1;
                }
                match patches.get_mut(&d.node) {
                    Some(Patch::Replace(s)) => patch.apply_to(s),
                    _ => {
                        patches.insert(d.node.clone(), patch);
                    }
                }
            }
        }
    }
    Planned { patches, applied }
}

/// Applies `deltas` in order to `nodes`, in place: the same rules as [`plan`]
/// followed by a commit, with one map lookup per delta. Returns what changed,
/// whether the set of (node, generation) pairs changed, and whether any state
/// changed at all (a purge floor can rise with no [`Change`] to report).
pub(crate) fn apply_in_place(
    nodes: &mut Entries,
    local: &NodeId,
    limits: &crate::Limits,
    deltas: &[Delta],
    now: Timestamp,
) -> (Applied, bool, bool) {
    let mut applied = Applied { changes: Vec::with_capacity(deltas.len()), ignored: Vec::new() };
    let mut members_changed = false;
    let mut touched = false;
    // nodes learned in this batch, merged in at the end, in one pass
    let mut added: Vec<(NodeId, EndpointState)> = Vec::new();
    // deltas usually come sorted by node (a compact message's always do): each
    // lookup starts where the last one ended
    let mut cursor = 0;
    for d in deltas {
        let known = nodes.len() + added.len();
        let slot = match nodes.get_mut_from(&d.node, &mut cursor) {
            Some(state) => Some(state),
            None => added.iter_mut().find(|(id, _)| *id == d.node).map(|(_, s)| s),
        };
        match slot {
            Some(state) => match merge_delta(local, Some(state), d, now, limits, known, &mut applied.changes) {
                Err(why) => applied.ignored.push(why),
                Ok(None) => {}
                Ok(Some(patch)) => {
                    touched = true;
                    let generation = state.generation();
                    patch.apply_to(state);
                    members_changed |= state.generation() != generation;
                }
            },
            None => match merge_delta(local, None, d, now, limits, known, &mut applied.changes) {
                Err(why) => applied.ignored.push(why),
                Ok(None) => {}
                Ok(Some(patch)) => {
                    let mut state = EndpointState::new(d.generation);
                    patch.apply_to(&mut state);
                    added.push((d.node.clone(), state));
                    members_changed = true;
                    touched = true;
                }
            },
        }
    }
    nodes.merge(added);
    (applied, members_changed, touched)
}

/// The state a zero-based delta stands for.
fn state_of(d: &Delta) -> EndpointState {
    EndpointState::from_parts(d.generation, d.heartbeat.unwrap_or(Version::ZERO), d.values.iter().cloned(), d.purged)
}

/// The checks every delta passes first: a believable generation, then its shape
/// and sizes against the limits.
fn believable_and_valid(d: &Delta, limits: &crate::Limits, now: Timestamp) -> Result<(), Ignored> {
    if !d.generation.is_believable(now) {
        return Err(Ignored::FutureGeneration { node: d.node.clone(), generation: d.generation });
    }
    validate(d, limits)
}

/// The state a delta stands for, checked as [`View::apply`](crate::View::apply)
/// checks one for a node it does not hold: whole (from the beginning), with a
/// believable generation, within the limits. (A shadow round collects such
/// states apart from any view.)
pub(crate) fn whole_state(d: &Delta, limits: &crate::Limits, now: Timestamp) -> Result<EndpointState, Ignored> {
    believable_and_valid(d, limits, now)?;
    if d.from != Version::ZERO {
        return Err(Ignored::NotContiguous { node: d.node.clone(), from: d.from, max_version: Version::ZERO });
    }
    Ok(state_of(d))
}

/// Checks a delta's shape and its sizes against the limits.
fn validate(d: &Delta, limits: &crate::Limits) -> Result<(), Ignored> {
    // The key count first: it bounds the work below by the limits. (Checked last, a
    // 64 KB delta of 13,000 fields cost a quadratic scan before being refused.)
    if d.values.len() > limits.max_keys_per_node {
        return Err(Ignored::TooManyKeys { node: d.node.clone() });
    }
    // repeated keys: a scan for a few fields, a set beyond (the limit may be large)
    let mut seen = (d.values.len() > 16).then(alloc::collections::BTreeSet::new);
    let mut prev = d.from;
    for (i, (k, vv)) in d.values.iter().enumerate() {
        let repeated = match &mut seen {
            None => d.values[..i].iter().any(|(k2, _)| k2 == k),
            Some(set) => !set.insert(k),
        };
        if vv.version <= prev || repeated {
            return Err(Ignored::Malformed { node: d.node.clone() });
        }
        prev = vv.version;
        if let Some(v) = &vv.value
            && v.len() > limits.max_value_len
        {
            return Err(Ignored::ValueTooLarge { node: d.node.clone(), key: k.clone(), len: v.len() });
        }
    }
    Ok(())
}

/// The patch to apply, if any (its changes pushed to the caller's list), or why
/// the delta was ignored (nothing pushed).
type Outcome = Result<Option<Patch>, Ignored>;

/// What one delta does to what the view knows of its node (`base`).
///
/// The rules, in order:
/// 1. State of the local node is never taken.
/// 2. A generation more than a year ahead of `now` is not believed, for any node.
/// 3. A node not known yet, or a newer generation, is taken whole, if the delta
///    starts at the beginning (otherwise there would be a gap).
/// 4. An older generation is ignored.
/// 5. Same generation, whole state (from 0): the join ([`EndpointState::join`]),
///    which rebuilds a view that is stale against the sender's purge floor.
/// 6. Same generation, partial: ignored if the view is stale against the sender's
///    purge floor or the delta starts above the view's max version; otherwise each
///    field keeps its highest version. A sender below the floor that has not seen
///    every version up to it contributes nothing.
fn merge_delta(
    local: &NodeId,
    base: Option<&EndpointState>,
    d: &Delta,
    now: Timestamp,
    limits: &crate::Limits,
    known_nodes: usize,
    changes: &mut Vec<Change>,
) -> Outcome {
    let node = &d.node;
    if node == local {
        return Err(Ignored::OwnState {
            generation: d.generation,
            version: d.highest_version().unwrap_or(d.from).max(d.from),
        });
    }
    believable_and_valid(d, limits, now)?;
    let not_contiguous = |max_version| Ignored::NotContiguous { node: node.clone(), from: d.from, max_version };
    let Some(b) = base else {
        if d.from != Version::ZERO {
            return Err(not_contiguous(Version::ZERO));
        }
        if known_nodes >= limits.max_nodes {
            return Err(Ignored::TooManyNodes { node: node.clone() });
        }
        changes.push(Change::Joined { node: node.clone(), generation: d.generation });
        return Ok(Some(Patch::Replace(state_of(d))));
    };
    match d.generation.cmp(&b.generation()) {
        Ordering::Less => return Err(Ignored::OlderGeneration { node: node.clone(), generation: d.generation }),
        Ordering::Greater => {
            if d.from != Version::ZERO {
                return Err(not_contiguous(Version::ZERO));
            }
            changes.push(Change::Restarted { node: node.clone(), previous: b.generation(), generation: d.generation });
            return Ok(Some(Patch::Replace(state_of(d))));
        }
        Ordering::Equal => {}
    }

    let floor = b.purged().max(d.purged);
    if d.from == Version::ZERO {
        // A whole state (from the beginning): the join. If it brings a higher purge
        // floor, what this view held below the floor is replaced by it: keys deleted
        // and purged in between cannot linger.
        let joined = b.join(&state_of(d));
        if joined == *b {
            return Ok(None);
        }
        // the join's keys are the union of both: within the limit, or ignored
        if joined.key_count() > limits.max_keys_per_node {
            return Err(Ignored::TooManyKeys { node: node.clone() });
        }
        if d.purged > b.purged() {
            changes.push(Change::Reset { node: node.clone(), purged: floor });
        } else if joined.heartbeat() > b.heartbeat() {
            changes.push(Change::Heartbeat { node: node.clone(), version: joined.heartbeat() });
        }
        diff_values(node, b, &joined, changes);
        return Ok(Some(Patch::Replace(joined)));
    }
    if !b.trusted_at(floor) {
        // This view missed deletions the owner has since purged: only a state from
        // the beginning can replace it.
        return Err(not_contiguous(b.max_version()));
    }
    if d.from > b.max_version() {
        return Err(not_contiguous(b.max_version()));
    }
    let fragment_max = d.highest_version().unwrap_or(d.from).max(d.from);
    if d.purged != floor && fragment_max < floor {
        return Err(Ignored::BelowPurgeFloor { node: node.clone() });
    }

    let new_keys = d.values.iter().filter(|(k, _)| b.get(k).is_none()).count();
    if b.key_count() + new_keys > limits.max_keys_per_node {
        return Err(Ignored::TooManyKeys { node: node.clone() });
    }
    let mut set = Vec::new();
    for (k, vv) in &d.values {
        if vv.is_tombstone() && vv.version <= floor {
            continue; // purged: the key stays deleted or absent
        }
        let old = b.get(k);
        if old.is_some_and(|cur| cur.merge_order(vv) != Ordering::Less) {
            continue;
        }
        changes.push(Change::Value { node: node.clone(), key: k.clone(), old: old.cloned(), new: Some(vv.clone()) });
        set.push((k.clone(), vv.clone()));
    }
    let heartbeat = d.heartbeat.filter(|hb| *hb > b.heartbeat());
    if let Some(version) = heartbeat {
        changes.push(Change::Heartbeat { node: node.clone(), version });
    }
    let max_version = b.max_version().max(fragment_max);
    if set.is_empty() && heartbeat.is_none() && max_version == b.max_version() && floor == b.purged() {
        return Ok(None);
    }
    Ok(Some(Patch::Update { heartbeat, max_version, purged: floor, set }))
}

/// Value changes between two states of one node (for a reset).
fn diff_values(node: &NodeId, old: &EndpointState, new: &EndpointState, out: &mut Vec<Change>) {
    for (k, vv) in new.values() {
        if old.get(k) != Some(vv) {
            out.push(Change::Value {
                node: node.clone(),
                key: k.clone(),
                old: old.get(k).cloned(),
                new: Some(vv.clone()),
            });
        }
    }
    for (k, vv) in old.values() {
        if new.get(k).is_none() && !vv.is_tombstone() {
            out.push(Change::Value { node: node.clone(), key: k.clone(), old: Some(vv.clone()), new: None });
        }
    }
}
