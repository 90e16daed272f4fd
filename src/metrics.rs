//! Counters: nothing is dropped without one of these going up.

/// What a [`Gossiper`](crate::Gossiper) has done and refused, since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Metrics {
    /// Rounds run.
    pub rounds: u64,
    /// Messages sent, by kind: SYN, ACK, ACK2, ECHO, ECHO_REPLY, SHUTDOWN.
    pub sent: [u64; 6],
    /// Bytes sent, by the same kinds.
    pub sent_bytes: [u64; 6],
    /// Messages received and decoded, by the same kinds.
    pub received: [u64; 6],
    /// Bytes received (decoded or not).
    pub received_bytes: u64,
    /// Messages that did not decode (wrong cluster excluded).
    pub decode_errors: u64,
    /// Frames longer than `Config::max_receive_bytes`, dropped undecoded.
    pub too_large: u64,
    /// Messages for another cluster.
    pub wrong_cluster: u64,
    /// Messages that claimed to come from this node.
    pub from_self: u64,
    /// Messages ignored because this node is not gossiping (shut down, removed, in
    /// its shadow round).
    pub ignored_not_gossiping: u64,
    /// ACKs that answered no SYN of ours (their state is not applied), ACK2s
    /// that answered no ACK of ours, echo replies that answer no echo in flight
    /// (late duplicates included), and shutdown notices from a node or generation
    /// this node does not hold.
    pub unsolicited: u64,
    /// Messages built that hit the budget (something left for a later round).
    pub budget_hits: u64,
    /// Compact parts that could not be used (members differ, or the check failed).
    pub context_errors: u64,
    /// Heartbeats taken from compact SYN pages (quiet members this node was just
    /// behind on, see [`CompactDigest::is_quiet`](crate::CompactDigest::is_quiet))
    /// instead of requested.
    pub heartbeats_taken: u64,
    /// Deltas not applied, by reason: own state, future generation, older
    /// generation, not contiguous, below purge floor, limits, malformed.
    pub ignored_deltas: [u64; 7],
    /// Deltas refused, and listed digests dropped, because their node was removed
    /// or is quarantined.
    pub refused_removed: u64,
    /// Removal records not kept: naming a generation more than a year ahead, or
    /// beyond `Limits::max_nodes` records; and removal values that do not decode
    /// (ignored whole, counted each time their node's status is looked at).
    pub removals_ignored: u64,
    /// SYNs answered without tracking the exchange, because `Limits::max_nodes`
    /// exchanges were already in flight (a flood of senders); their ACK2s are
    /// then refused as unsolicited.
    pub inflight_full: u64,
    /// Convictions by the failure detector.
    pub convictions: u64,
    /// Convictions skipped by the local-pause guard.
    pub convictions_paused: u64,
    /// Echoes sent, and echoes given up on.
    pub echoes: u64,
    /// See `echoes`.
    pub echo_timeouts: u64,
    /// Local pauses detected.
    pub pauses: u64,
    /// Messages refused by the sealing layer (feature `encryption`), by reason:
    /// a plain message while the keyring does not accept them, a malformed sealed
    /// frame (truncated, unknown seal version), a key not in the keyring, failed
    /// authentication (tampered with, sealed for another cluster or with another
    /// key), a sealed frame while this node has no keyring.
    pub seal_rejected: [u64; 5],
    /// Messages not sent because they could not be sealed (the generation's 2^64
    /// nonces are used up).
    pub seal_failures: u64,
}
