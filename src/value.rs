//! Values and their versions.

use core::cmp::Ordering;
use core::fmt;

use crate::Version;
use crate::small::Small;

/// The default largest value, in bytes (the reference's limit is 65 535).
pub const DEFAULT_MAX_VALUE_LEN: usize = 64 * 1024;

/// Opaque value bytes. Values of up to 22 bytes are stored inline; longer ones are
/// shared, so cloning is cheap either way.
///
/// ```
/// use rumormill::Value;
/// let v = Value::from("NORMAL");
/// assert_eq!(v.as_bytes(), b"NORMAL");
/// assert_eq!(v.len(), 6);
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(Small);

impl Value {
    /// The value's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the value has no bytes.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Value {
        Value(Small::new(b))
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value(Small::new(s.as_bytes()))
    }
}

impl From<alloc::string::String> for Value {
    fn from(s: alloc::string::String) -> Value {
        Value(Small::from_vec(s.into_bytes()))
    }
}

impl From<alloc::vec::Vec<u8>> for Value {
    fn from(v: alloc::vec::Vec<u8>) -> Value {
        Value(Small::from_vec(v))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(s) => write!(f, "{s:?}"),
            Err(_) => write!(f, "{:02x?}", self.as_bytes()),
        }
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Value {
    /// UTF-8 values serialize as strings, others as byte sequences.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match core::str::from_utf8(self.as_bytes()) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.serialize_bytes(self.as_bytes()),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or bytes")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::from(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut bytes = alloc::vec::Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(Value::from(bytes))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Value {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = u.int_in_range(0..=32usize)?;
        Ok(Value::from(u.bytes(len)?))
    }
}

/// A value with the version its owner stamped it with; `value: None` is a
/// tombstone (the key was deleted at that version).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct VersionedValue {
    /// The value, or `None` for a deleted key.
    pub value: Option<Value>,
    /// The owner's version counter when it set or deleted the key.
    pub version: Version,
}

impl VersionedValue {
    /// A live value.
    pub fn live(value: impl Into<Value>, version: Version) -> Self {
        VersionedValue { value: Some(value.into()), version }
    }

    /// A tombstone.
    pub fn tombstone(version: Version) -> Self {
        VersionedValue { value: None, version }
    }

    /// Whether this is a tombstone.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The merge order: the higher version wins. Two different values at the same
    /// version can only come from a buggy or hostile owner; the order still decides
    /// between them the same way everywhere (a tombstone beats a value, then the
    /// larger bytes win), so merging stays commutative.
    pub fn merge_order(&self, other: &VersionedValue) -> Ordering {
        self.version.cmp(&other.version).then_with(|| match (&self.value, &other.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(a), Some(b)) => a.cmp(b),
        })
    }
}
