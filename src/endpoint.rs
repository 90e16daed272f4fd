//! What is known of one node: its heartbeat and values at one generation.

use smallvec::SmallVec;

use crate::{Digest, Generation, Key, NodeId, Value, Values, Version, VersionedValue};

/// The state of one node as some view knows it.
///
/// Besides the reference's heartbeat and values it keeps two numbers:
///
/// - `max_version`: this view holds every field of the node with a version up to
///   this one (the scuttlebutt invariant). It is what digests advertise, and the
///   highest version deltas from this view carry.
/// - `purged`: the owner's purge floor. Tombstones at or below it have been (or may
///   be) forgotten, so a view whose `max_version` is below it may still hold keys
///   deleted in the gap, and must be rebuilt from a view that has the floor.
///
/// States of one generation form a join-semilattice under [`EndpointState::join`].
///
/// ```
/// use rumormill::{EndpointState, Generation, Key, Version, VersionedValue};
/// let state = EndpointState::from_parts(
///     Generation(1),
///     Version(3),
///     [(Key::STATUS, VersionedValue::live("NORMAL", Version(2)))],
///     Version::ZERO,
/// );
/// assert_eq!(state.max_version(), Version(3));
/// assert_eq!(state.live_value(&Key::STATUS).unwrap().as_bytes(), b"NORMAL");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(from = "Parts"))]
pub struct EndpointState {
    generation: Generation,
    heartbeat: Version,
    values: Values,
    max_version: Version,
    purged: Version,
    /// The highest version among `values` (derived; kept so that the common case,
    /// a peer missing only the heartbeat, costs O(1)).
    #[cfg_attr(feature = "serde", serde(skip))]
    values_max: Version,
}

/// The serialized form; deserializing normalizes it like [`EndpointState::from_parts`].
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct Parts {
    generation: Generation,
    heartbeat: Version,
    /// (a repeated key is an error, see [`Values`])
    values: Values,
    #[serde(default)]
    max_version: Version,
    #[serde(default)]
    purged: Version,
}

#[cfg(feature = "serde")]
impl From<Parts> for EndpointState {
    fn from(p: Parts) -> Self {
        let mut s = EndpointState::from_parts(p.generation, p.heartbeat, p.values, p.purged);
        s.max_version = s.max_version.max(p.max_version);
        s
    }
}

/// One field of a state, as deltas carry them in version order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field<'a> {
    Heartbeat(Version),
    Value(&'a Key, &'a VersionedValue),
}

impl Field<'_> {
    pub(crate) fn version(&self) -> Version {
        match self {
            Field::Heartbeat(v) => *v,
            Field::Value(_, vv) => vv.version,
        }
    }
}

impl EndpointState {
    /// An empty state of `generation`: no heartbeat yet, no values.
    pub fn new(generation: Generation) -> Self {
        EndpointState {
            generation,
            heartbeat: Version::ZERO,
            values: Values::default(),
            max_version: Version::ZERO,
            purged: Version::ZERO,
            values_max: Version::ZERO,
        }
    }

    /// A state from its parts, as a complete view of the owner up to its highest
    /// version. Tombstones at or below `purged` are dropped.
    pub fn from_parts(
        generation: Generation,
        heartbeat: Version,
        values: impl IntoIterator<Item = (Key, VersionedValue)>,
        purged: Version,
    ) -> Self {
        let mut s = EndpointState::new(generation);
        s.heartbeat = heartbeat;
        s.purged = purged;
        s.max_version = heartbeat;
        for (k, vv) in values {
            s.max_version = s.max_version.max(vv.version);
            // at or below the floor (even a floor of 0), a tombstone is purged
            if !(vv.is_tombstone() && vv.version <= purged) {
                s.values.insert(k, vv);
            }
        }
        s.recompute_values_max();
        s.values.shrink();
        s
    }

    fn recompute_values_max(&mut self) {
        self.values_max = self.values.values().map(|vv| vv.version).max().unwrap_or_default();
    }

    /// The node's generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The heartbeat version (0 if none arrived yet).
    pub fn heartbeat(&self) -> Version {
        self.heartbeat
    }

    /// Every field up to this version is held (see the type's docs).
    pub fn max_version(&self) -> Version {
        self.max_version
    }

    /// The owner's purge floor as this view knows it.
    pub fn purged(&self) -> Version {
        self.purged
    }

    /// Values and tombstones by key.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// The value or tombstone of `key`.
    pub fn get(&self, key: &Key) -> Option<&VersionedValue> {
        self.values.get(key)
    }

    /// The live value of `key` (`None` if absent or deleted).
    pub fn live_value(&self, key: &Key) -> Option<&Value> {
        self.values.get(key).and_then(|vv| vv.value.as_ref())
    }

    /// Live values only.
    pub fn live_values(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.values.iter().filter_map(|(k, vv)| vv.value.as_ref().map(|v| (k, v)))
    }

    /// The digest a view with this state advertises for `node`.
    pub fn digest(&self, node: &NodeId) -> Digest {
        Digest { node: node.clone(), generation: self.generation, max_version: self.max_version, purged: self.purged }
    }

    /// The highest version among the values (0 if none).
    pub(crate) fn values_max(&self) -> Version {
        self.values_max
    }

    /// Whether it is quiet (see [`CompactDigest::is_quiet`](crate::CompactDigest::is_quiet)):
    /// its heartbeat is its max version and no value is among its last
    /// [`QUIET_RUN`](crate::QUIET_RUN) versions.
    pub(crate) fn is_quiet(&self) -> bool {
        self.heartbeat == self.max_version && self.values_max.0.saturating_add(crate::QUIET_RUN) <= self.max_version.0
    }

    /// How many fields [`EndpointState::fields_after`] would return.
    pub(crate) fn count_after(&self, from: Version) -> usize {
        let sendable = |v: Version| v > from && v <= self.max_version;
        let heartbeat = usize::from(sendable(self.heartbeat));
        if self.values_max <= from {
            return heartbeat;
        }
        heartbeat + self.values.values().filter(|vv| sendable(vv.version)).count()
    }

    /// The fields newer than `from` and at most `max_version`, in ascending version
    /// order: what a delta may carry. Fields above `max_version` may sit above a
    /// gap, and a receiver would take the highest version it got as complete.
    pub(crate) fn fields_after(&self, from: Version) -> SmallVec<[Field<'_>; 8]> {
        let sendable = |v: Version| v > from && v <= self.max_version;
        let mut out: SmallVec<[Field<'_>; 8]> = if self.values_max <= from {
            SmallVec::new()
        } else {
            self.values.iter().filter(|(_, vv)| sendable(vv.version)).map(|(k, vv)| Field::Value(k, vv)).collect()
        };
        if sendable(self.heartbeat) {
            out.push(Field::Heartbeat(self.heartbeat));
        }
        // versions are unique per generation for an honest owner; the key breaks
        // ties deterministically for any other input
        out.sort_unstable_by(|a, b| {
            a.version().cmp(&b.version()).then_with(|| match (a, b) {
                (Field::Heartbeat(_), Field::Heartbeat(_)) => core::cmp::Ordering::Equal,
                (Field::Heartbeat(_), _) => core::cmp::Ordering::Less,
                (_, Field::Heartbeat(_)) => core::cmp::Ordering::Greater,
                (Field::Value(ka, _), Field::Value(kb, _)) => ka.cmp(kb),
            })
        });
        out
    }

    /// Whether this side has seen every deletion up to the purge floor `floor`: it
    /// has the floor itself, or holds every version up to it (and the tombstones
    /// among them, not yet purged). Its live values at or below the floor are then
    /// current; a side that is neither may hold keys deleted and purged since.
    pub(crate) fn trusted_at(&self, floor: Version) -> bool {
        self.purged == floor || self.max_version >= floor
    }

    /// The least upper bound of two states of one node.
    ///
    /// A newer generation wins whole. Within a generation, with `F` the higher of
    /// the two purge floors:
    ///
    /// - fields at or below `F` come only from a side that has the floor `F`
    ///   (another side's may be keys deleted and purged since);
    /// - fields above `F` come from both sides;
    /// - each key keeps its highest version ([`VersionedValue::merge_order`]);
    /// - `max_version` is the highest of the sides that have the floor `F`, so the
    ///   result holds every field up to it (fields above it may be held too);
    /// - tombstones at or below `F` are dropped.
    ///
    /// Commutative, associative and idempotent over states whose tombstones all lie
    /// above their purge floor (the only ones this type lets exist).
    pub fn join(&self, other: &EndpointState) -> EndpointState {
        match self.generation.cmp(&other.generation) {
            core::cmp::Ordering::Greater => return self.clone(),
            core::cmp::Ordering::Less => return other.clone(),
            core::cmp::Ordering::Equal => {}
        }
        let floor = self.purged.max(other.purged);
        let mut out = EndpointState::new(self.generation);
        out.purged = floor;
        for side in [self, other] {
            let has_floor = side.purged == floor;
            if has_floor {
                out.max_version = out.max_version.max(side.max_version);
            }
            if has_floor || side.heartbeat > floor {
                out.heartbeat = out.heartbeat.max(side.heartbeat);
            }
            for (k, vv) in side.values.iter().filter(|(_, vv)| has_floor || vv.version > floor) {
                match out.values.get(k) {
                    Some(cur) if cur.merge_order(vv) != core::cmp::Ordering::Less => {}
                    _ => {
                        out.values.insert(k.clone(), vv.clone());
                    }
                }
            }
        }
        out.prune();
        out.recompute_values_max();
        out.values.shrink();
        out
    }

    /// Drops tombstones at or below the purge floor.
    pub(crate) fn prune(&mut self) {
        let floor = self.purged;
        if floor > Version::ZERO {
            let before = self.values.len();
            self.values.retain(|_, vv| !(vv.is_tombstone() && vv.version <= floor));
            if self.values.len() != before {
                self.recompute_values_max();
            }
        }
    }

    /// Whether the invariant holds: no tombstone lies at or below the purge floor.
    pub fn is_normalized(&self) -> bool {
        self.values.values().all(|vv| !(vv.is_tombstone() && vv.version <= self.purged))
    }

    // ----- crate-internal mutation, used by the view's commit and local writes -----

    pub(crate) fn set_value(&mut self, key: Key, vv: VersionedValue) {
        self.max_version = self.max_version.max(vv.version);
        let version = vv.version;
        let replaced = self.values.insert(key, vv);
        if version >= self.values_max {
            self.values_max = version;
        } else if replaced.is_some_and(|old| old.version == self.values_max) {
            self.recompute_values_max();
        }
    }

    pub(crate) fn set_heartbeat(&mut self, v: Version) {
        self.heartbeat = v;
        self.max_version = self.max_version.max(v);
    }

    pub(crate) fn raise_max_version(&mut self, v: Version) {
        self.max_version = self.max_version.max(v);
    }

    pub(crate) fn raise_purged(&mut self, v: Version) {
        if v > self.purged {
            self.purged = v;
            self.prune();
        }
    }

    pub(crate) fn remove_value(&mut self, key: &Key) -> Option<VersionedValue> {
        let removed = self.values.remove(key);
        if removed.as_ref().is_some_and(|vv| vv.version == self.values_max) {
            self.recompute_values_max();
        }
        removed
    }

    /// Live keys (for limits on new keys).
    pub(crate) fn key_count(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(generation: u64, hb: u64, purged: u64, vals: &[(&str, Option<&str>, u64)]) -> EndpointState {
        EndpointState::from_parts(
            Generation(generation),
            Version(hb),
            vals.iter().map(|(k, v, ver)| {
                (Key::new(k).unwrap(), VersionedValue { value: v.map(Value::from), version: Version(*ver) })
            }),
            Version(purged),
        )
    }

    #[test]
    fn newer_generation_wins_whole() {
        let old = st(1, 50, 0, &[("a", Some("x"), 40)]);
        let new = st(2, 1, 0, &[]);
        assert_eq!(old.join(&new), new);
        assert_eq!(new.join(&old), new);
    }

    #[test]
    fn same_generation_takes_highest_version_per_field() {
        let a = st(1, 10, 0, &[("a", Some("1"), 3), ("b", Some("2"), 9)]);
        let b = st(1, 7, 0, &[("a", Some("3"), 5), ("b", Some("0"), 2)]);
        let j = a.join(&b);
        assert_eq!(j.heartbeat(), Version(10));
        assert_eq!(j.live_value(&Key::new("a").unwrap()).unwrap().as_bytes(), b"3");
        assert_eq!(j.live_value(&Key::new("b").unwrap()).unwrap().as_bytes(), b"2");
        assert_eq!(j, b.join(&a));
    }

    #[test]
    fn a_stale_side_below_the_purge_floor_contributes_nothing() {
        // owner deleted "a" at 5 and purged it; the stale view still has "a" live
        let stale = st(1, 4, 0, &[("a", Some("zombie"), 3)]);
        let fresh = EndpointState { max_version: Version(20), ..st(1, 20, 5, &[("b", Some("y"), 6)]) };
        let j = stale.join(&fresh);
        assert!(j.get(&Key::new("a").unwrap()).is_none(), "the deleted key must not come back");
        assert_eq!(j, fresh);
    }

    #[test]
    fn tombstones_below_the_floor_are_pruned_on_join() {
        let a = st(1, 10, 0, &[("a", None, 5), ("b", Some("x"), 6)]);
        let b = st(1, 12, 7, &[("b", Some("x"), 6)]);
        let j = a.join(&b);
        assert!(j.get(&Key::new("a").unwrap()).is_none());
        assert!(j.is_normalized());
    }

    #[test]
    fn fields_after_are_in_version_order_with_the_heartbeat_in_place() {
        let s = st(1, 7, 0, &[("a", Some("1"), 9), ("b", Some("2"), 3), ("c", None, 5)]);
        let versions: Vec<u64> = s.fields_after(Version(3)).iter().map(|f| f.version().0).collect();
        assert_eq!(versions, [5, 7, 9]);
        assert!(s.fields_after(Version(9)).is_empty());
    }
}
