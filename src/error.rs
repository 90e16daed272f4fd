//! Errors. Each variant says whether anything changed.

/// A value given to a constructor was out of its allowed range. Nothing was built,
/// so nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A node id must be 1 to 255 bytes long.
    #[error("node id of {0} bytes: must be 1 to 255")]
    NodeIdLength(usize),
    /// A key must be 1 to 255 bytes long.
    #[error("key of {0} bytes: must be 1 to 255")]
    KeyLength(usize),
    /// A cluster name must be at most 255 bytes long.
    #[error("cluster name of {0} bytes: must be at most 255")]
    ClusterNameLength(usize),
    /// A range's start must lie below its end.
    #[error("range start is not below its end")]
    EmptyRange,
    /// A view needs the local node's own state.
    #[error("the states given do not include the local node")]
    MissingLocalState,
    /// A restart needs a generation newer than the current one.
    #[error("the new generation is not newer than the current one")]
    GenerationNotNewer,
}

/// Bytes that are not a message this codec accepts. Decoding keeps no state, so
/// nothing changed; positions are byte offsets into the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends in the middle of a field.
    #[error("message truncated at byte {at}")]
    Truncated {
        /// Where the input ran out: the offset of the first byte that was needed
        /// and missing.
        at: usize,
    },
    /// The first two bytes are not the rumormill magic.
    #[error("not a rumormill message (bad magic)")]
    BadMagic,
    /// A wire format version this crate does not speak.
    #[error("unsupported wire version {0}")]
    UnsupportedVersion(u8),
    /// A message kind this crate does not know.
    #[error("unknown message kind {0}")]
    UnknownKind(u8),
    /// The message belongs to another cluster.
    #[error("message for another cluster")]
    WrongCluster,
    /// A varint that is overlong, too large for 64 bits, or not canonical.
    #[error("bad varint at byte {at}")]
    BadVarint {
        /// Where it starts.
        at: usize,
    },
    /// A count larger than the bytes left could hold.
    #[error("count {count} at byte {at} cannot fit in the rest of the message")]
    CountTooLarge {
        /// The count claimed.
        count: u64,
        /// Where it was read.
        at: usize,
    },
    /// An empty node id.
    #[error("bad node id at byte {at}")]
    BadNodeId {
        /// Where it starts.
        at: usize,
    },
    /// A key that is not UTF-8, an unknown well-known code, or a well-known key
    /// spelled out (not canonical).
    #[error("bad key at byte {at}")]
    BadKey {
        /// Where it starts.
        at: usize,
    },
    /// A value longer than the codec's limit.
    #[error("value of {len} bytes at byte {at} exceeds the limit of {max}")]
    ValueTooLarge {
        /// Its claimed length.
        len: u64,
        /// The codec's limit.
        max: usize,
        /// Where it starts.
        at: usize,
    },
    /// A list that is not in strictly ascending order (or repeats an entry).
    #[error("entries not in ascending order at byte {at}")]
    NotAscending {
        /// Where the offending entry starts.
        at: usize,
    },
    /// The same key twice in one delta.
    #[error("duplicate key at byte {at}")]
    DuplicateKey {
        /// Where the repeated key starts.
        at: usize,
    },
    /// Flag bits this version does not define, inconsistent ones, or a flag
    /// announcing a field whose value is 0 (0 is written by leaving the field out).
    #[error("bad flags {flags:#04x} at byte {at}")]
    BadFlags {
        /// The flags byte.
        flags: u8,
        /// Where it is.
        at: usize,
    },
    /// A tag byte out of range.
    #[error("bad tag {tag} at byte {at}")]
    BadTag {
        /// The tag.
        tag: u8,
        /// Where it is.
        at: usize,
    },
    /// A version computed from offsets does not fit in 64 bits.
    #[error("version overflow at byte {at}")]
    VersionOverflow {
        /// Where it was read.
        at: usize,
    },
    /// A member index that does not fit in 32 bits.
    #[error("bad member index at byte {at}")]
    BadIndex {
        /// Where it was read.
        at: usize,
    },
    /// A range whose start is not below its end.
    #[error("bad range at byte {at}")]
    BadRange {
        /// Where it starts.
        at: usize,
    },
    /// A digest outside the range its page claims.
    #[error("digest outside its page's range at byte {at}")]
    OutOfRange {
        /// Where the list starts.
        at: usize,
    },
    /// Bytes after the end of the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// A local write was refused. The view is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The value is longer than the view's limit.
    #[error("value of {len} bytes exceeds the limit of {max}")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The node already holds the most keys allowed.
    #[error("the node already holds {max} keys, the limit")]
    TooManyKeys {
        /// The limit.
        max: usize,
    },
    /// The version counter reached `u64::MAX`; the node must restart with a new
    /// generation.
    #[error("version counter exhausted: restart with a new generation")]
    VersionsExhausted,
}

/// A message cannot be built within the byte budget. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// The budget does not even hold the header and the smallest body.
    #[error("budget of {budget} bytes is below the {needed} bytes the smallest message needs")]
    TooSmall {
        /// The budget given.
        budget: usize,
        /// The least that would work.
        needed: usize,
    },
    /// The body budget cannot hold a digest page describing even one node.
    #[error("body budget of {body} bytes cannot hold a page of one node ({needed} bytes)")]
    PageTooSmall {
        /// Body bytes available.
        body: usize,
        /// Body bytes a one-node page needs.
        needed: usize,
    },
}
