//! Node identity.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

use crate::small::Small;

/// The longest node id, in bytes (the wire gives its length one byte).
pub const MAX_NODE_ID_LEN: usize = 255;

/// An opaque node id of 1 to 255 bytes: a host id, a name or an address, as the
/// user chooses.
///
/// Ids order by their bytes. That order is part of the protocol: digest pages
/// cover ranges of it, and every map the library keeps is sorted by it, so the
/// same inputs always give the same bytes on the wire.
///
/// Cloning is cheap: ids of up to 38 bytes (host ids, addresses, UUID strings)
/// are stored inline, longer ones behind a reference count. Comparing is cheap
/// too: the first 16 bytes are kept as a number, so most comparisons never look
/// at the bytes.
///
/// ```
/// use rumormill::NodeId;
/// let id = NodeId::new("10.0.0.1:7000")?;
/// assert_eq!(id.as_bytes(), b"10.0.0.1:7000");
/// assert_eq!(id.to_string(), "10.0.0.1:7000");
/// assert!(NodeId::new("").is_err());
/// # Ok::<(), rumormill::InvalidInput>(())
/// ```
#[derive(Clone)]
pub struct NodeId {
    /// The first 16 bytes, big-endian, zero-padded, as (high, low) words: ordering
    /// by it first is ordering by the bytes, with the bytes consulted only on a tie.
    /// (Two words rather than a `u128`, whose 16-byte alignment would pad the id.)
    head: [u64; 2],
    bytes: Small<ID_INLINE>,
}

/// Bytes of an id kept inline (the id stays 56 bytes). Inline ids clone without
/// touching shared memory: a view applies thousands of heartbeats a round, and an
/// atomic count on a cold cache line per clone and drop was most of their cost.
const ID_INLINE: usize = 38;

fn head_of(bytes: &[u8]) -> [u64; 2] {
    let mut b = [0u8; 16];
    let n = bytes.len().min(16);
    b[..n].copy_from_slice(&bytes[..n]);
    let word =
        |i: usize| u64::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3], b[i + 4], b[i + 5], b[i + 6], b[i + 7]]);
    [word(0), word(8)]
}

impl NodeId {
    /// Orders two ids with equal heads. Ids of at most 16 bytes are their heads
    /// cut to their lengths, so the shorter is a prefix of the longer: lengths
    /// decide, without reading the bytes again.
    fn cmp_tail(&self, other: &NodeId) -> Ordering {
        let (a, b) = (self.as_bytes(), other.as_bytes());
        if a.len() <= 16 && b.len() <= 16 {
            a.len().cmp(&b.len())
        } else if self.bytes.same(&other.bytes) {
            Ordering::Equal
        } else {
            a.cmp(b)
        }
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &NodeId) -> bool {
        self.head == other.head && self.cmp_tail(other) == Ordering::Equal
    }
}

impl Eq for NodeId {}

impl Ord for NodeId {
    fn cmp(&self, other: &NodeId) -> Ordering {
        self.head.cmp(&other.head).then_with(|| self.cmp_tail(other))
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &NodeId) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for NodeId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl NodeId {
    /// Makes an id from bytes; fails if they are empty or longer than 255 bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Self, crate::InvalidInput> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() || bytes.len() > MAX_NODE_ID_LEN {
            return Err(crate::InvalidInput::NodeIdLength(bytes.len()));
        }
        Ok(NodeId { head: head_of(bytes), bytes: Small::new(bytes) })
    }

    /// The first 16 bytes as a big-endian number (zero-padded): orders like the
    /// bytes, up to ties.
    pub(crate) fn head(&self) -> u128 {
        (u128::from(self.head[0]) << 64) | u128::from(self.head[1])
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.as_slice()
    }
}

impl fmt::Display for NodeId {
    /// Printable UTF-8 ids print as they are; any other id prints as `0x` and hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => f.write_str(s),
            _ => {
                f.write_str("0x")?;
                for b in self.as_bytes() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl TryFrom<&str> for NodeId {
    type Error = crate::InvalidInput;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        NodeId::new(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for NodeId {
    /// UTF-8 ids serialize as strings, others as byte sequences.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.serialize_bytes(self.as_bytes()),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = NodeId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node id of 1 to 255 bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NodeId, E> {
                NodeId::new(v).map_err(E::custom)
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<NodeId, E> {
                NodeId::new(v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<NodeId, A::Error> {
                let mut bytes = alloc::vec::Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    if bytes.len() == MAX_NODE_ID_LEN {
                        return Err(serde::de::Error::custom("node id longer than 255 bytes"));
                    }
                    bytes.push(b);
                }
                NodeId::new(bytes).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for NodeId {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(1..=16usize)?;
        let bytes = u.bytes(len)?;
        NodeId::new(bytes).map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_stays_56_bytes_and_short_ones_live_inline() {
        assert_eq!(core::mem::size_of::<NodeId>(), 56);
        assert!(matches!(NodeId::new([7u8; ID_INLINE]).unwrap().bytes, Small::Inline { .. }));
        assert!(matches!(NodeId::new([7u8; ID_INLINE + 1]).unwrap().bytes, Small::Shared(_)));
    }

    /// The order must stay the order of the bytes: digest pages cover ranges of it.
    #[test]
    fn order_is_byte_order_whatever_the_lengths() {
        let ids: Vec<&[u8]> = vec![
            b"a",
            b"a\0",
            b"a\0\0",
            b"ab",
            b"abcdefghijklmnop",
            b"abcdefghijklmnop\0",
            b"abcdefghijklmnopq",
            b"abcdefghijklmnoq",
            b"b",
            &[0xff; 20],
            &[0xff; 16],
            &[0xff; 38],
            &[0xff; 39],
            &[0xfe; 39],
            &[0],
            &[0, 0],
        ];
        for x in &ids {
            for y in &ids {
                let (a, b) = (NodeId::new(x).unwrap(), NodeId::new(y).unwrap());
                assert_eq!(a.cmp(&b), x.cmp(y), "{x:?} vs {y:?}");
                assert_eq!(a == b, x == y);
            }
        }
    }
}
