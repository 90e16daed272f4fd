//! What a [`Gossiper`](crate::Gossiper) hands back from every call.

use alloc::vec::Vec;

use crate::{Generation, Key, NodeId, Removal, Timestamp, Value};

/// Bytes to send to a peer. The driver maps the node id to an address.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Transmit {
    /// The destination.
    pub to: NodeId,
    /// The encoded message; never longer than `Config::max_message_bytes`.
    pub bytes: Vec<u8>,
}

/// The result of any call into a [`Gossiper`](crate::Gossiper): what to send, what
/// happened, and when to call [`Gossiper::handle_timeout`](crate::Gossiper::handle_timeout)
/// next. Nothing is queued inside: handle it all and the node holds nothing back.
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Output {
    /// Messages to send now.
    pub transmits: Vec<Transmit>,
    /// Events, in the order they happened.
    pub events: Vec<Event>,
    /// The latest time at which `handle_timeout` should be called. Calling earlier,
    /// or more than once, is harmless.
    pub next_deadline: Timestamp,
}

/// Something that happened, for the application to act on.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Event {
    /// A node this one did not know.
    Joined {
        /// The node.
        node: NodeId,
        /// Its generation.
        generation: Generation,
    },
    /// A known node came back with a newer generation: it restarted, and its old
    /// state is gone.
    Restarted {
        /// The node.
        node: NodeId,
        /// The generation it had.
        previous: Generation,
        /// The new one.
        generation: Generation,
    },
    /// A node answered an echo: it is up.
    Alive {
        /// The node.
        node: NodeId,
    },
    /// A node was convicted by the failure detector, or announced its shutdown.
    Dead {
        /// The node.
        node: NodeId,
    },
    /// A node announced a graceful shutdown (followed by `Dead` if it was alive).
    ShutDown {
        /// The node.
        node: NodeId,
    },
    /// A key of a node was set (`new` is `Some`) or deleted (`new` is `None`).
    Changed {
        /// The node.
        node: NodeId,
        /// The key.
        key: Key,
        /// The value before, if it had one.
        old: Option<Value>,
        /// The value now, if it has one.
        new: Option<Value>,
    },
    /// A node was removed (by this node or another): it is forgotten, and its state
    /// at that generation will not be accepted again until the removal expires.
    Removed {
        /// The removal.
        removal: Removal,
    },
    /// A node was forgotten: a LEFT or removed state expired, or a silent fat client
    /// was evicted.
    Evicted {
        /// The node.
        node: NodeId,
    },
    /// This node was removed by another: it has gone silent. To rejoin it must
    /// start again with a newer generation.
    SelfRemoved {
        /// The removal.
        removal: Removal,
    },
    /// A peer holds state of this node that this process never wrote: a newer
    /// version of its generation (it restarted without a newer generation) or a
    /// newer generation (its clock went back, or another process uses the same
    /// id). It moved to a newer generation, keeping its current values, so that
    /// peers replace the earlier incarnation's state whole.
    GenerationRenewed {
        /// The generation it had.
        previous: Generation,
        /// The new one.
        generation: Generation,
    },
    /// This node was not called for longer than the pause threshold; nobody is
    /// convicted until the pause guard ends.
    LocalPause {
        /// How long it was not called.
        millis: u64,
    },
    /// The shadow round is over.
    ShadowRound {
        /// What was learned (empty if it timed out); not applied to the view.
        states: Vec<(NodeId, crate::EndpointState)>,
        /// Whether it timed out instead of completing.
        timed_out: bool,
    },
}
