//! The messages of the gossip round, exactly as they travel.
//!
//! # The round
//!
//! Once per gossip interval a node starts a round with a peer. It is the
//! three-message exchange of Cassandra and Scylla (the scuttlebutt paper's
//! digest / digest + deltas / deltas):
//!
//! ```text
//!   A (starts the round)                               B (chosen peer)
//!   |                                                  |
//!   |-- SYN: digest page ----------------------------->|  per node A lists:
//!   |        (node, generation, max version, purged)   |  (generation, max version)
//!   |                                                  |
//!   |                    B compares each digest with its own state (handle_syn):
//!   |                    - B is behind or does not know the node -> request it
//!   |                    - B is ahead  -> delta: B's fields newer than A's version
//!   |                    - the page covers an id range and B knows a node in it
//!   |                      that A did not list -> delta: B's whole state of it
//!   |                                                  |
//!   |<------------------------ ACK: requests + deltas -|
//!   |                                                  |
//!   |  A applies the deltas, then answers each request |
//!   |  with its fields newer than the requested version|
//!   |                                                  |
//!   |-- ACK2: deltas ---------------------------------->|  B applies the deltas
//! ```
//!
//! After one round both sides hold, for every node A listed, the newer of the two
//! states (subject to the byte budget, see below). Nothing else is needed: no acks,
//! no retries. A lost message only means the next round repairs it.
//!
//! # Deltas and the prefix rule
//!
//! Every node's state has a single version counter shared by its heartbeat and its
//! values, so "everything newer than version v" is a well-defined set. A delta for
//! a node carries its fields newer than `from` **in ascending version order**, and
//! when the budget forces it to leave a field out it leaves out every field with a
//! higher version too, *the heartbeat included*. The receiver can then raise its
//! max version for that node to the highest version it got and still hold every
//! field below it: that is the scuttlebutt invariant.
//!
//! The reference Gossiper always attaches the heartbeat to a delta. Under
//! truncation that would advance the receiver's max version past values it never
//! got, and because peers only ever send what is newer than that max, those values
//! would be lost for good. rumormill never does that.
//!
//! # Pages
//!
//! A SYN carries one [`DigestPage`]. When the whole digest does not fit the budget,
//! the page covers an id range ([`NodeRange`]) and successive SYNs walk the ranges,
//! so every node is covered within `ceil(digest size / budget)` rounds. Nodes
//! outside the page's range are neither requested nor pushed: absence outside the
//! range means nothing.
//!
//! In a steady cluster both ends know the same members at the same generations.
//! A [`CompactDigest`] then replaces node ids and generations by a hash of the
//! (id, generation) pairs in its range and sends only the low 16 bits of each max
//! version, plus a check hash over the full values. At 1,024 nodes that is about
//! 2 KiB where a full digest is tens of KiB. A receiver whose members differ, or
//! whose decoding fails the check, says so ([`Ack::resend`]) and the sender
//! answers with full pages.
//!
//! A compact page also marks each member that is *quiet*: its heartbeat is its
//! max version and none of its values is among its last [`QUIET_RUN`] versions.
//! In a steady cluster that is nearly every member, and a receiver behind on one
//! by at most `QUIET_RUN` versions misses only its heartbeat. A
//! [`Gossiper`](crate::Gossiper) takes that heartbeat from the page instead of
//! requesting it, so the round carries no request and no ACK2 delta for it:
//!
//! ```text
//!   A                                                  B
//!   |-- SYN: compact page (16-bit versions, quiet bits) -->|
//!   |        B behind on a quiet member by <= QUIET_RUN:  |
//!   |        B raises its heartbeat from the page (no request)
//!   |<-------------- ACK: requests for the rest + deltas -|
//!   |-- ACK2: deltas for those requests ----------------->|
//! ```
//!
//! The pure [`handle_syn`](crate::handle_syn) takes nothing from the page and
//! requests as before: taking is an optimisation a receiver may skip.
//!
//! Where members differ (a cluster starting, nodes joining), a [`HashedDigest`]
//! names each node by a 32-bit fingerprint of its id and generation, about 7 bytes
//! per node where a full digest takes 30 or more, so a 1,400-byte page covers
//! about 180 nodes instead of 35. The receiver matches fingerprints against its
//! own nodes and answers by the sender's member index: matched nodes compactly,
//! unmatched entries requested whole, its own unmatched nodes pushed whole. The
//! answer's check covers the ids it matched, so a fingerprint collision costs one
//! answer, never a wrong state; the sender answers requests by id.
//!
//! # Purged tombstones
//!
//! Deleted keys are kept as tombstones until the owner purges them after a grace
//! period and raises its `purged` floor. A peer whose max version for the owner is
//! below that floor may still hold keys deleted in the window it missed. Such a
//! peer is sent a zero-based delta (`from` = 0) and rebuilds its view of the owner
//! from it (see [`Change::Reset`](crate::Change::Reset)).
//!
//! [`NodeRange`]: crate::NodeRange

use alloc::vec::Vec;

use crate::{Generation, Key, NodeId, NodeRange, Value, Version, VersionedValue};

/// The name of a cluster, at most 255 bytes. Messages carry it and a receiver
/// rejects messages for any other cluster.
///
/// ```
/// use rumormill::ClusterName;
/// let name = ClusterName::new("prod-eu")?;
/// assert_eq!(name.as_bytes(), b"prod-eu");
/// # Ok::<(), rumormill::InvalidInput>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClusterName(Value);

impl ClusterName {
    /// A cluster name of at most 255 bytes.
    pub fn new(name: impl AsRef<[u8]>) -> Result<Self, crate::InvalidInput> {
        let name = name.as_ref();
        if name.len() > 255 {
            return Err(crate::InvalidInput::ClusterNameLength(name.len()));
        }
        Ok(ClusterName(Value::from(name)))
    }

    /// The name's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// What every message starts with: the cluster it belongs to and who sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Header {
    /// The sender's cluster.
    pub cluster: ClusterName,
    /// The sender.
    pub sender: NodeId,
    /// The sender's current generation.
    pub generation: Generation,
}

/// A whole message: header and body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Envelope {
    /// Cluster and sender.
    pub header: Header,
    /// The body.
    pub message: Message,
}

/// A message body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Message {
    /// Starts a round: the sender's digest page.
    Syn(Syn),
    /// Answers a SYN: requests and deltas.
    Ack(Ack),
    /// Answers an ACK: deltas.
    Ack2(Ack2),
    /// Asks the receiver to answer directly, so that a node is marked alive on its
    /// own word, not on hearsay.
    Echo(Echo),
    /// Answers an [`Echo`].
    EchoReply(Echo),
    /// The sender (the generation in the header) is shutting down: mark it down now
    /// rather than waiting for the failure detector.
    Shutdown,
}

/// An echo request or reply. The reply carries the request's nonce, and the
/// header of each carries its sender's generation, so a reply proves that this
/// incarnation of the node is up now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Echo {
    /// Chosen by the requester; repeated in the reply.
    pub nonce: u64,
}

/// What one node knows of another: the three numbers of the reference digest,
/// plus the owner's purge floor.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Digest {
    /// The node described.
    pub node: NodeId,
    /// Its generation as the sender knows it.
    pub generation: Generation,
    /// The sender holds every field of the node up to this version.
    pub max_version: Version,
    /// The owner's purge floor as the sender knows it (tombstones at or below it
    /// may have been forgotten).
    pub purged: Version,
}

/// The digest a SYN carries.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DigestPage {
    /// Digests of the listed nodes only, with no claim about any other node: the
    /// reference Gossiper's SYN. Listed nodes are answered; unlisted ones are
    /// neither requested nor pushed. An empty list is the shadow-round SYN of a
    /// node that knows nothing yet and is answered with every known state.
    Listed(Vec<Digest>),
    /// Every node the sender knows within `range`, in id order. A node in the
    /// range that is not listed is unknown to the sender and gets pushed to it.
    Range {
        /// The ids this page speaks for.
        range: NodeRange,
        /// The sender's digest of each node it knows in the range, ascending by id.
        digests: Vec<Digest>,
    },
    /// The same claim as `Range`, for a receiver that knows the same members at the
    /// same generations, in about 2 bytes per node.
    Compact(CompactDigest),
    /// The same claim as `Range` for any receiver, in about 7 bytes per node: each
    /// node named by a 32-bit fingerprint of its id and generation.
    Hashed(HashedDigest),
}

/// A digest page that names nodes by fingerprint: a 32-bit hash of (salt, id,
/// generation). A receiver matches the fingerprints against its own nodes in the
/// range; the answer refers to entries by their index (the sender's member index)
/// and carries a check over the ids it believes they stand for, so that a
/// fingerprint collision makes the answer fail its check instead of reaching the
/// wrong node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct HashedDigest {
    /// The sender's members described: every node it knows in the range.
    pub(crate) context: Context,
    /// Mixed into every fingerprint; the sender changes it from page to page, so
    /// that no two nodes collide for long.
    pub(crate) salt: u32,
    /// One entry per member, in member (id) order.
    pub(crate) entries: Vec<HashedEntry>,
}

/// A member of a [`HashedDigest`]: its fingerprint and the sender's versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct HashedEntry {
    /// Low 32 bits of the hash of (salt, id, generation).
    pub(crate) fingerprint: u32,
    /// The sender's max version of the node.
    pub(crate) max_version: Version,
    /// The owner's purge floor as the sender knows it.
    pub(crate) purged: Version,
}

impl HashedDigest {
    /// The members this page speaks for.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// How many members it describes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it describes no member.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A set of members both ends agree on: the nodes of a range, identified by a hash
/// of their ids and generations. Members are numbered from 0 in id order, and
/// compact entries refer to them by that index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Context {
    /// The ids covered.
    pub range: NodeRange,
    /// Hash of the (id, generation) pairs of all members in `range`, in id order.
    pub members: u64,
}

/// A digest page without ids: one truncated max version per member of a
/// [`Context`], in member order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CompactDigest {
    /// The members described.
    pub(crate) context: Context,
    /// Hash of every member's full (max version, purged) and of the quiet bits:
    /// lets the receiver check that it decoded the truncated versions right, and
    /// that the bits it acts on are the sender's.
    pub(crate) check: u64,
    /// The low 16 bits of each member's max version. The receiver restores each one
    /// as the value with these low bits nearest to its own max version.
    pub(crate) versions: Vec<u16>,
    /// One bit per member (member `i` is bit `i % 8` of byte `i / 8`): set when
    /// the member is quiet (see [`CompactDigest::is_quiet`]).
    pub(crate) quiet: Vec<u8>,
}

/// How many of a quiet member's latest versions are its heartbeat's alone (see
/// [`CompactDigest::is_quiet`]).
pub const QUIET_RUN: u64 = 8;

impl CompactDigest {
    /// The members this page speaks for.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// How many members it describes.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Whether it describes no member.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Whether member `i` is quiet at the sender: its max version is its
    /// heartbeat, and no value of it is newer than its max version less
    /// [`QUIET_RUN`]. A receiver that holds the member at a version `v` with
    /// `max - QUIET_RUN <= v < max` and `v >= 1` then misses only its heartbeat
    /// (the page's check makes sure both hold it at the same purge floor).
    ///
    /// ```
    /// use rumormill::{Budget, DigestPage, Generation, Key, NodeId, PageForm, QUIET_RUN, View, build_syn};
    /// let mut view = View::new(NodeId::new("a")?, Generation(1_700_000_000));
    /// view.set_local(Key::STATUS, "NORMAL")?;
    /// let page = |view: &View| match build_syn(view, Budget::unlimited(), None, PageForm::Compact).unwrap().syn.page {
    ///     DigestPage::Compact(c) => c,
    ///     _ => unreachable!(),
    /// };
    /// assert!(!page(&view).is_quiet(0));
    /// for _ in 0..QUIET_RUN {
    ///     view.beat()?;
    /// }
    /// assert!(page(&view).is_quiet(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_quiet(&self, i: usize) -> bool {
        self.quiet.get(i / 8).is_some_and(|byte| byte >> (i % 8) & 1 == 1)
    }
}

/// A SYN: starts a round.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Syn {
    /// The sender's digest page.
    pub page: DigestPage,
}

/// The fields of one node newer than some version, as one sender knows them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Delta {
    /// The node whose state this is.
    pub node: NodeId,
    /// Its generation.
    pub generation: Generation,
    /// The fields are those newer than this version, all of them up to the highest
    /// one carried (the prefix rule). 0 means the delta is the node's state from the
    /// beginning.
    pub from: Version,
    /// The owner's purge floor as the sender knows it.
    pub purged: Version,
    /// The node's heartbeat version, unless the budget cut it off.
    pub heartbeat: Option<Version>,
    /// Values and tombstones newer than `from`, in ascending version order.
    pub values: Vec<(Key, VersionedValue)>,
}

impl Delta {
    /// The highest version this delta carries (its heartbeat or a value).
    pub fn highest_version(&self) -> Option<Version> {
        let v = self.values.last().map(|(_, vv)| vv.version);
        match (v, self.heartbeat) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// A request in compact form: "send me member `index`'s fields newer than my max
/// version", which has these low 16 bits. Only used within a [`Context`] both
/// ends agreed on; the requester's purge floor is the responder's (the compact
/// digest check established that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct CompactRequest {
    /// Member index within the context.
    pub(crate) index: u32,
    /// Low 16 bits of the requester's max version of that member.
    pub(crate) max_version: u16,
}

/// A field of a [`CompactDelta`]: its version is `from + offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct CompactField {
    /// The key.
    pub(crate) key: Key,
    /// Version minus the delta's `from` (at least 1; strictly increasing).
    pub(crate) offset: u64,
    /// The value, `None` for a tombstone.
    pub(crate) value: Option<Value>,
}

/// Where a compact heartbeat lies relative to its delta's `from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) enum Offset {
    /// `from + n` (n >= 1).
    Above(u64),
    /// `from - n` (n >= 0): a stale heartbeat, as the reference attaches.
    AtOrBelow(u64),
}

/// A [`Delta`] for a member of a [`Context`]: index instead of id and generation,
/// and versions relative to a `from` sent as its low 16 bits (the receiver's own
/// max version, which it restores from them).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct CompactDelta {
    /// Member index within the context.
    pub(crate) index: u32,
    /// Low 16 bits of `from`, or `None` when `from` is 0.
    pub(crate) from: Option<u16>,
    /// The owner's purge floor as the sender knows it.
    pub(crate) purged: Version,
    /// The heartbeat relative to `from`, unless cut off.
    pub(crate) heartbeat: Option<Offset>,
    /// Fields newer than `from`, ascending.
    pub(crate) fields: Vec<CompactField>,
}

/// The compact part of an [`Ack`]: requests and deltas for members of the context
/// of the SYN's [`CompactDigest`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CompactAck {
    /// The members referred to.
    pub(crate) context: Context,
    /// Hash over the full values the truncated ones stand for (each request's max
    /// version and each delta's `from`), so the receiver can check its decoding.
    pub(crate) check: u64,
    /// Requests, ascending by index.
    pub(crate) requests: Vec<CompactRequest>,
    /// Deltas, ascending by index.
    pub(crate) deltas: Vec<CompactDelta>,
    /// `Some` when answering a [`HashedDigest`]: the members whose fingerprint
    /// the responder could not match, requested whole (ascending). The check then
    /// also covers the id the responder took each other index for.
    pub(crate) whole: Option<Vec<u32>>,
}

impl CompactAck {
    /// The members referred to.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Number of requests (whole ones included).
    pub fn request_count(&self) -> usize {
        self.requests.len() + self.whole.as_ref().map_or(0, Vec::len)
    }

    /// Number of deltas.
    pub fn delta_count(&self) -> usize {
        self.deltas.len()
    }

    /// Whether it answers a [`HashedDigest`] (its context is the SYN sender's
    /// members, not members both ends agree on).
    pub fn answers_hashed(&self) -> bool {
        self.whole.is_some()
    }
}

/// The compact part of an [`Ack2`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CompactDeltas {
    /// The members referred to.
    pub(crate) context: Context,
    /// Hash over each delta's full `from`.
    pub(crate) check: u64,
    /// Deltas, ascending by index.
    pub(crate) deltas: Vec<CompactDelta>,
}

impl CompactDeltas {
    /// The members referred to.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Number of deltas.
    pub fn delta_count(&self) -> usize {
        self.deltas.len()
    }
}

/// An ACK: answers a SYN.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ack {
    /// Nodes the responder wants, each with the version it has (ascending by id).
    pub requests: Vec<Digest>,
    /// What the responder has that the SYN's sender lacks (ascending by id).
    pub deltas: Vec<Delta>,
    /// Requests and deltas about members of the SYN's compact context.
    pub compact: Option<CompactAck>,
    /// The SYN's compact page of this range could not be used (different members,
    /// or the check failed). The SYN's sender answers with the next page of its
    /// full-page walk, so that repeated resends cover every node.
    pub resend: Option<NodeRange>,
}

/// An ACK2: answers the requests of an ACK.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Ack2 {
    /// Deltas, ascending by id.
    pub deltas: Vec<Delta>,
    /// Deltas about members of the ACK's compact context.
    pub compact: Option<CompactDeltas>,
}
