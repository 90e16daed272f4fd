//! Removal records: how the removal of a node spreads and stays final.
//!
//! Removing a node (decommissioned, replaced) must be final: its state must not
//! come back when some stale peer gossips it later. The reference quarantines a
//! removed node for 60 s, after which a stale peer brings it back, over and over
//! (Scylla issues 14991, 11217, 3192).
//!
//! Here the node that removes another writes a record `(node, generation, expiry)`
//! into its own state, under the key [`REMOVED_KEY`], and gossip spreads it like
//! any value. Every node that learns a record forgets that node and from then on
//! refuses its state at that generation or older, from any peer, until the record
//! expires (a long time: three days by default, the reference's LEFT expiry). The
//! removed node itself, on learning it, goes silent. A node that genuinely starts
//! again has a newer generation and joins as usual.

use alloc::vec::Vec;

use crate::{Generation, Key, NodeId, Timestamp, Value};

/// The key under which a node publishes its removal records.
pub const REMOVED_KEY: &str = "REMOVED_NODES";

/// The key, as a [`Key`].
pub(crate) fn removed_key() -> Key {
    Key::new(REMOVED_KEY).expect("a short key")
}

/// One removal: `node`, at `generation` or older, is out until `expires`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Removal {
    /// The removed node.
    pub node: NodeId,
    /// Its generation when removed; newer generations are welcome.
    pub generation: Generation,
    /// When the record stops applying.
    pub expires: Timestamp,
}

/// Encodes records as the value of [`REMOVED_KEY`]: per record a length-prefixed
/// id, then the generation and the expiry (ms) as LEB128 varints.
pub(crate) fn encode(records: &[Removal]) -> Value {
    let mut out = Vec::new();
    for r in records {
        out.push(r.node.as_bytes().len() as u8);
        out.extend_from_slice(r.node.as_bytes());
        for mut v in [r.generation.0, r.expires.as_millis()] {
            while v >= 0x80 {
                out.push((v as u8) | 0x80);
                v >>= 7;
            }
            out.push(v as u8);
        }
    }
    Value::from(out)
}

/// Decodes a value of [`REMOVED_KEY`]; `None` if it is not well formed (a peer's
/// garbage is then ignored whole).
pub(crate) fn decode(value: &[u8]) -> Option<Vec<Removal>> {
    let mut out = Vec::new();
    let mut rest = value;
    let varint = |rest: &mut &[u8]| -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&b, tail) = rest.split_first()?;
            *rest = tail;
            if i == 9 && b > 1 {
                return None; // more than 64 bits
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while let Some((&len, tail)) = rest.split_first() {
        let id = tail.get(..usize::from(len))?;
        rest = &tail[usize::from(len)..];
        let node = NodeId::new(id).ok()?;
        let generation = Generation(varint(&mut rest)?);
        let expires = Timestamp::from_millis(varint(&mut rest)?);
        out.push(Removal { node, generation, expires });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_garbage_is_rejected() {
        let records = vec![
            Removal {
                node: NodeId::new("a").unwrap(),
                generation: Generation(1_700_000_000),
                expires: Timestamp::from_secs(9),
            },
            Removal {
                node: NodeId::new("bb").unwrap(),
                generation: Generation(0),
                expires: Timestamp::from_millis(u64::MAX),
            },
        ];
        let v = encode(&records);
        assert_eq!(decode(v.as_bytes()), Some(records));
        assert_eq!(decode(&[]), Some(vec![]));
        assert_eq!(decode(&[5, b'a']), None);
        assert_eq!(decode(&[0]), None);
        assert_eq!(decode(&[1, b'a', 0xff]), None);
    }
}
