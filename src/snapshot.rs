//! An immutable copy of the cluster view, for other threads.

use alloc::collections::BTreeMap;

use crate::{EndpointState, NodeId, Status};

/// Whether a node is up, as this node judges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Liveness {
    /// Answered an echo and not convicted since.
    Up,
    /// Convicted, shut down, in a dead state, or not confirmed yet.
    Down,
}

/// One node in a [`Snapshot`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Member {
    /// Its state.
    pub state: EndpointState,
    /// Whether it is up (the local node always is).
    pub liveness: Liveness,
    /// Its `STATUS`, if it has one.
    pub status: Option<Status>,
    /// Its failure detector's phi now (0 for the local node).
    pub phi: f64,
}

/// The view at one moment: cheap to share (behind an `Arc`), never changes.
/// `revision` changes whenever the view or anyone's liveness does.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Snapshot {
    /// Changes whenever the view does.
    pub revision: u64,
    /// The local node.
    pub local: NodeId,
    /// Every known node, the local one included, in id order.
    pub members: BTreeMap<NodeId, Member>,
}

impl Snapshot {
    /// The nodes that are up, the local one included.
    pub fn live(&self) -> impl Iterator<Item = &NodeId> {
        self.members.iter().filter(|(_, m)| m.liveness == Liveness::Up).map(|(id, _)| id)
    }
}
