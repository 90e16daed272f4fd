//! A node's view of the cluster: its own state, which only it writes, and what it
//! has learned of every other node.

use alloc::collections::BTreeMap;
use core::time::Duration;

use crate::entries::Entries;
use crate::merge::{self, Applied, Merge};
use crate::{
    Delta, Digest, EndpointState, Generation, InvalidInput, Key, NodeId, NodeRange, Timestamp, Value, Version,
    VersionedValue, WriteError,
};

/// Bounds on what a view holds. Deltas that would exceed them are ignored and
/// reported ([`Ignored`](crate::Ignored)); local writes beyond them are refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Limits {
    /// Largest value, in bytes (default 64 KiB). A node's removal records
    /// ([`Gossiper::remove`](crate::Gossiper::remove)) are one value of about 40
    /// bytes per removed node, within this limit.
    pub max_value_len: usize,
    /// Most keys (values and tombstones) per node (default 1,024).
    pub max_keys_per_node: usize,
    /// Most nodes in the view, the local one included (default 65,536).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_value_len: crate::DEFAULT_MAX_VALUE_LEN, max_keys_per_node: 1024, max_nodes: 65_536 }
    }
}

/// The replicated state as one node sees it.
///
/// It holds one [`EndpointState`] per known node, its own included. Only the local
/// node's state is written here ([`View::set_local`], [`View::delete_local`],
/// [`View::beat`]); every other state changes only by applying deltas
/// ([`View::apply`]), which never touch the local node's state.
///
/// ```
/// use rumormill::{Generation, Key, NodeId, View};
/// let mut view = View::new(NodeId::new("a")?, Generation(1_700_000_000));
/// let v = view.set_local(Key::STATUS, "NORMAL")?;
/// assert_eq!(view.local_state().live_value(&Key::STATUS).unwrap().as_bytes(), b"NORMAL");
/// assert_eq!(view.local_state().max_version(), v);
/// assert!(view.beat()? > v);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// With the `serde` feature a view serializes as its local id, every node's
/// state (ascending by id), its limits, the local tombstones' times and its
/// revision; reading one back checks that the local state is there, the ids
/// ascend without repeats, and the local tombstone times name local tombstones.
#[derive(Clone, Debug)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "ViewForm", into = "ViewForm")
)]
pub struct View {
    local: NodeId,
    nodes: Entries,
    /// The local node's generation (it changes only by a restart or renewal).
    local_generation: Generation,
    limits: Limits,
    /// When each local tombstone was written, for purging after the grace period.
    deleted_at: BTreeMap<Key, Timestamp>,
    revision: u64,
    /// The hash of all (id, generation) pairs, computed when first needed after
    /// the members changed (compact digests of the whole view use it every round).
    members: std::sync::OnceLock<u64>,
    /// Counts changes of the members (ids or generations): whoever keeps a table
    /// lined up with the view's positions checks it again when this moves.
    members_epoch: u64,
    /// The local node's position among the nodes, found when first needed after
    /// the members changed (a binary search over cold ids cost a miss per step,
    /// several times per message).
    local_at: std::sync::OnceLock<usize>,
}

/// A [`View`] as serde writes and reads it.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct ViewForm {
    local: NodeId,
    /// Every node's state, the local one included, ascending by id.
    nodes: alloc::vec::Vec<(NodeId, EndpointState)>,
    limits: Limits,
    deleted_at: BTreeMap<Key, Timestamp>,
    revision: u64,
}

#[cfg(feature = "serde")]
impl From<View> for ViewForm {
    fn from(v: View) -> Self {
        let nodes = v.nodes.iter().map(|(id, s)| (id.clone(), s.clone())).collect();
        ViewForm { local: v.local, nodes, limits: v.limits, deleted_at: v.deleted_at, revision: v.revision }
    }
}

#[cfg(feature = "serde")]
impl TryFrom<ViewForm> for View {
    type Error = alloc::string::String;
    fn try_from(f: ViewForm) -> Result<Self, Self::Error> {
        if let Some(w) = f.nodes.windows(2).find(|w| w[0].0 >= w[1].0) {
            return Err(alloc::format!("node ids must ascend without repeats: {} then {}", w[0].0, w[1].0));
        }
        let view = View::from_states(f.local, f.nodes).map_err(|e| alloc::format!("{e}"))?;
        let local = view.local_state();
        if let Some(k) = f.deleted_at.keys().find(|k| !local.get(k).is_some_and(VersionedValue::is_tombstone)) {
            return Err(alloc::format!("a deletion time for {k}, which is not a local tombstone"));
        }
        Ok(View { deleted_at: f.deleted_at, revision: f.revision, ..view.with_limits(f.limits) })
    }
}

impl View {
    /// A view holding only the local node, at `generation`, with its first
    /// heartbeat (version 1) and default limits.
    pub fn new(local: NodeId, generation: Generation) -> Self {
        let mut state = EndpointState::new(generation);
        state.set_heartbeat(Version(1));
        let nodes = Entries::from_iter([(local.clone(), state)]);
        View {
            local,
            nodes,
            local_generation: generation,
            limits: Limits::default(),
            deleted_at: BTreeMap::new(),
            revision: 0,
            members: std::sync::OnceLock::new(),
            members_epoch: 0,
            local_at: std::sync::OnceLock::new(),
        }
    }

    /// Rebuilds a view from states (for instance saved ones, or a test vector).
    /// The local node's state must be among them.
    pub fn from_states(
        local: NodeId,
        states: impl IntoIterator<Item = (NodeId, EndpointState)>,
    ) -> Result<Self, InvalidInput> {
        let nodes = Entries::from_iter(states);
        let Some(local_generation) = nodes.get(&local).map(EndpointState::generation) else {
            return Err(InvalidInput::MissingLocalState);
        };
        Ok(View {
            local,
            nodes,
            local_generation,
            limits: Limits::default(),
            deleted_at: BTreeMap::new(),
            revision: 0,
            members: std::sync::OnceLock::new(),
            members_epoch: 0,
            local_at: std::sync::OnceLock::new(),
        })
    }

    /// Replaces the limits (existing state is kept even if it exceeds them).
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The local node's id.
    pub fn local_id(&self) -> &NodeId {
        &self.local
    }

    /// The local node's state.
    pub fn local_state(&self) -> &EndpointState {
        &self.nodes.values()[self.local_position()]
    }

    /// The local node's position among the nodes (see [`View::nodes`]).
    pub(crate) fn local_position(&self) -> usize {
        let at = *self.local_at.get_or_init(|| {
            // the constructors put it there and nothing removes it
            self.nodes.find(&self.local).expect("the local state is always present")
        });
        debug_assert_eq!(self.nodes.ids()[at], self.local, "a stale local position");
        at
    }

    /// The local node's generation.
    pub fn local_generation(&self) -> Generation {
        self.local_generation
    }

    /// What is known of `node`.
    pub fn get(&self, node: &NodeId) -> Option<&EndpointState> {
        self.nodes.get(node)
    }

    /// Every known node in id order, the local one included.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&NodeId, &EndpointState)> + DoubleEndedIterator {
        self.nodes.iter()
    }

    /// The known nodes within `range`, in id order.
    pub fn range(&self, range: &NodeRange) -> impl ExactSizeIterator<Item = (&NodeId, &EndpointState)> {
        let (ids, states) = self.nodes.range(range);
        ids.iter().zip(states)
    }

    /// Number of known nodes, the local one included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a view knows at least its own node.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// This view's digest of `node`.
    pub fn digest(&self, node: &NodeId) -> Option<Digest> {
        self.nodes.get(node).map(|s| s.digest(node))
    }

    /// A number that changes whenever the view does.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn local_mut(&mut self) -> &mut EndpointState {
        self.revision += 1;
        let at = self.local_position();
        self.nodes.at_mut(at).expect("the local state is always present").1
    }

    fn next_version(&self) -> Result<Version, WriteError> {
        self.local_state().max_version().next().ok_or(WriteError::VersionsExhausted)
    }

    /// Sets a local key, stamped with the next version, which it returns.
    pub fn set_local(&mut self, key: Key, value: impl Into<Value>) -> Result<Version, WriteError> {
        let value = value.into();
        if value.len() > self.limits.max_value_len {
            return Err(WriteError::ValueTooLarge { len: value.len(), max: self.limits.max_value_len });
        }
        let local = self.local_state();
        if local.get(&key).is_none() && local.key_count() >= self.limits.max_keys_per_node {
            return Err(WriteError::TooManyKeys { max: self.limits.max_keys_per_node });
        }
        let version = self.next_version()?;
        self.deleted_at.remove(&key);
        self.local_mut().set_value(key, VersionedValue::live(value, version));
        Ok(version)
    }

    /// Deletes a local key: writes a tombstone at the next version, which it
    /// returns. A key that is absent or already deleted is left alone (`None`).
    pub fn delete_local(&mut self, key: &Key, now: Timestamp) -> Result<Option<Version>, WriteError> {
        if self.local_state().live_value(key).is_none() {
            return Ok(None);
        }
        let version = self.next_version()?;
        self.deleted_at.insert(key.clone(), now);
        self.local_mut().set_value(key.clone(), VersionedValue::tombstone(version));
        Ok(Some(version))
    }

    /// Bumps the local heartbeat to the next version, which it returns.
    pub fn beat(&mut self) -> Result<Version, WriteError> {
        let version = self.next_version()?;
        self.local_mut().set_heartbeat(version);
        Ok(version)
    }

    /// Moves the local version counter to at least `version`, so the next local
    /// change is newer than it. For when a peer claims a version of this node's
    /// state (in this generation) that this node never wrote, typically state from
    /// before a crash.
    ///
    /// It ends with a heartbeat above `version`, so the new max version is carried
    /// by a field peers can receive.
    pub fn advance_local_version(&mut self, version: Version) -> Result<Version, WriteError> {
        // Nothing lies past u64::MAX: refuse before raising the counter, or the error
        // would leave it raised (a max version that no field carries) although a
        // `WriteError` means nothing changed.
        if version.next().is_none() {
            return Err(WriteError::VersionsExhausted);
        }
        if version >= self.local_state().max_version() {
            self.local_mut().raise_max_version(version);
        }
        self.beat()
    }

    /// Purges local tombstones written at least `grace` before `now`, raising the
    /// local purge floor to the highest purged version, which it returns.
    ///
    /// Peers drop their copies of those tombstones when the new floor reaches them.
    /// A peer that missed a deletion and now holds a max version below the floor
    /// gets this node's whole state instead of a delta, and rebuilds its view of it.
    ///
    /// Purging is a change of the owner's state, so like any other it takes a
    /// version: the heartbeat is bumped. That moves the owner's digest, so peers
    /// ask for the new version and the floor travels with it (a peer that holds any
    /// later version has the floor too), and the max version stays carried by a
    /// field peers can receive.
    pub fn purge_local(&mut self, now: Timestamp, grace: Duration) -> Option<Version> {
        let due: alloc::vec::Vec<Key> = self
            .deleted_at
            .iter()
            .filter(|(_, at)| now.saturating_since(**at) >= grace)
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return None;
        }
        let mut floor = self.local_state().purged();
        for k in &due {
            self.deleted_at.remove(k);
            if let Some(vv) = self.local_state().get(k)
                && vv.is_tombstone()
            {
                floor = floor.max(vv.version);
            }
        }
        let local = self.local_mut();
        for k in &due {
            if local.get(k).is_some_and(VersionedValue::is_tombstone) {
                local.remove_value(k);
            }
        }
        local.raise_purged(floor);
        // cannot fail: the counter was below u64::MAX when the tombstone was written
        let _ = self.beat();
        Some(floor)
    }

    /// Computes what applying `deltas` would change, without changing anything
    /// (a pure function of the view and the deltas).
    pub fn plan(&self, deltas: &[Delta], now: Timestamp) -> Merge {
        Merge::new(self, deltas, now)
    }

    /// The view `deltas` make of this one, and what changed: [`View::apply`] as a
    /// pure function, leaving this view as it is (it copies the view: for a
    /// driver that keeps one view, `apply` changes it in place).
    ///
    /// ```
    /// use rumormill::{Change, Delta, Generation, Key, NodeId, Timestamp, Version, VersionedValue, View};
    /// let view = View::new(NodeId::new("a")?, Generation(1_700_000_000));
    /// let delta = Delta {
    ///     node: NodeId::new("b")?,
    ///     generation: Generation(1_700_000_100),
    ///     from: Version::ZERO,
    ///     purged: Version::ZERO,
    ///     heartbeat: Some(Version(2)),
    ///     values: vec![(Key::STATUS, VersionedValue::live("NORMAL", Version(1)))],
    /// };
    /// let (next, applied) = view.applied(&[delta], Timestamp::from_secs(1_700_000_200));
    /// assert!(matches!(applied.changes[0], Change::Joined { .. }));
    /// assert_eq!((view.len(), next.len()), (1, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn applied(&self, deltas: &[Delta], now: Timestamp) -> (View, Applied) {
        let mut next = self.clone();
        let applied = next.apply(deltas, now);
        (next, applied)
    }

    /// Applies deltas received from a peer, returning what changed and what was
    /// ignored (and why). The local node's state is never taken from a peer.
    ///
    /// Same as `view.commit(view.plan(deltas, now))`, in one pass.
    pub fn apply(&mut self, deltas: &[Delta], now: Timestamp) -> Applied {
        let (applied, members_changed, touched) =
            merge::apply_in_place(&mut self.nodes, &self.local, &self.limits, deltas, now);
        if touched {
            self.revision += 1;
        }
        if members_changed {
            self.members_changed();
        }
        applied
    }

    /// Applies beats resolved against this revision of the view (see
    /// [`Beat`](crate::reconcile::Beat)): the same as applying them as deltas,
    /// without a lookup each. Calls `advanced` with the position and id of each
    /// node whose heartbeat advanced, as it goes, and pushes what was ignored to
    /// `ignored`.
    ///
    /// Beats resolved against another revision are not applied (their positions
    /// may name other nodes); the driver applies them before anything else can
    /// change the view, so this does not happen.
    pub(crate) fn apply_beats(
        &mut self,
        beats: &crate::reconcile::Beats,
        now: Timestamp,
        ignored: &mut Vec<crate::Ignored>,
        mut advanced: impl FnMut(usize, &NodeId),
    ) {
        debug_assert_eq!(beats.revision, self.revision, "beats resolved against another revision");
        if beats.revision != self.revision {
            return;
        }
        let mut any = false;
        for beat in &beats.list {
            let Some((node, state)) = self.nodes.at_mut(beat.position) else { continue };
            // as `apply` would: a generation that has become unbelievable is not
            // advanced (only a clock that went back makes one)
            if !state.generation().is_believable(now) {
                ignored.push(crate::Ignored::FutureGeneration { node: node.clone(), generation: state.generation() });
                continue;
            }
            if beat.heartbeat > state.heartbeat() {
                state.set_heartbeat(beat.heartbeat);
                any = true;
                advanced(beat.position, node);
            }
        }
        if any {
            self.revision += 1;
        }
    }

    /// Commits a [`Merge`] computed by [`View::plan`] on this view. A plan computed
    /// on an older revision is recomputed first, so it cannot clobber newer state.
    pub fn commit(&mut self, plan: Merge) -> Applied {
        let planned = if plan.revision() == self.revision {
            plan.into_planned()
        } else {
            merge::plan(self, plan.deltas(), plan.now())
        };
        self.commit_planned(planned)
    }

    fn commit_planned(&mut self, planned: merge::Planned) -> Applied {
        if planned.changes_state() {
            self.revision += 1;
            // a commit may add nodes or change generations
            self.members_changed();
        }
        planned.commit_into(&mut self.nodes)
    }

    /// Forgets `node` entirely (not the local node). Returns its last state.
    pub fn remove(&mut self, node: &NodeId) -> Option<EndpointState> {
        if *node == self.local {
            return None;
        }
        let removed = self.nodes.remove(node);
        if removed.is_some() {
            self.revision += 1;
            self.members_changed();
        }
        removed
    }

    /// Starts a new generation of the local node: its state is replaced by an empty
    /// one at `generation` (which must be newer) with a fresh heartbeat. Values the
    /// node wants to keep must be set again.
    pub fn restart_local(&mut self, generation: Generation) -> Result<(), InvalidInput> {
        if generation <= self.local_generation() {
            return Err(InvalidInput::GenerationNotNewer);
        }
        let mut state = EndpointState::new(generation);
        state.set_heartbeat(Version(1));
        self.deleted_at.clear();
        *self.local_mut() = state;
        self.local_generation = generation;
        self.members_changed();
        Ok(())
    }

    /// Moves the local node to a newer `generation`, keeping its live values: they
    /// are written again, in key order, at the first versions of the new
    /// generation, after a first heartbeat. For a node that finds peers holding a
    /// newer generation of itself than the one it runs.
    pub fn renew_local_generation(&mut self, generation: Generation) -> Result<(), InvalidInput> {
        if generation <= self.local_generation() {
            return Err(InvalidInput::GenerationNotNewer);
        }
        let live: alloc::vec::Vec<(Key, Value)> =
            self.local_state().live_values().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut state = EndpointState::new(generation);
        state.set_heartbeat(Version(1));
        for (i, (k, v)) in live.into_iter().enumerate() {
            state.set_value(k, VersionedValue::live(v, Version(i as u64 + 2)));
        }
        self.deleted_at.clear();
        *self.local_mut() = state;
        self.local_generation = generation;
        self.members_changed();
        Ok(())
    }

    fn members_changed(&mut self) {
        self.members = std::sync::OnceLock::new();
        self.local_at = std::sync::OnceLock::new();
        self.members_epoch += 1;
    }

    /// Moves whenever the members change (see `members_epoch`).
    pub(crate) fn members_epoch(&self) -> u64 {
        self.members_epoch
    }

    /// The members hash of the whole view (all (id, generation) pairs).
    pub(crate) fn members_hash(&self) -> u64 {
        *self.members.get_or_init(|| crate::digest::members_hash(self.iter()))
    }

    pub(crate) fn nodes(&self) -> &Entries {
        &self.nodes
    }
}
