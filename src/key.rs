//! Keys of gossiped values, and the well-known keys of the reference Gossiper.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash, Hasher};

/// The longest key, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// The well-known keys, in wire order: the position is the one-byte code a key is
/// sent as. The list only grows at its end (codes are part of wire format v1).
const WELL_KNOWN: [&str; 29] = [
    "STATUS",
    "LOAD",
    "SCHEMA",
    "DC",
    "RACK",
    "RELEASE_VERSION",
    "REMOVAL_COORDINATOR",
    "INTERNAL_IP",
    "RPC_ADDRESS",
    "SEVERITY",
    "NET_VERSION",
    "HOST_ID",
    "TOKENS",
    "RPC_READY",
    "INTERNAL_ADDRESS_AND_PORT",
    "NATIVE_ADDRESS_AND_PORT",
    "STATUS_WITH_PORT",
    "SSTABLE_VERSIONS",
    "DISK_USAGE",
    "INDEX_STATUS",
    "SUPPORTED_FEATURES",
    "CACHE_HITRATES",
    "SCHEMA_TABLES_VERSION",
    "VIEW_BACKLOG",
    "SHARD_COUNT",
    "IGNORE_MSB_BITS",
    "CDC_GENERATION_ID",
    "SNITCH_NAME",
    "GROUP0_STATE_ID",
];

/// The code of a well-known key name. Every well-known name starts with an
/// uppercase letter, so any other name skips the table.
fn well_known_code(name: &str) -> Option<u8> {
    if !name.as_bytes().first().is_some_and(u8::is_ascii_uppercase) {
        return None;
    }
    WELL_KNOWN.iter().position(|k| *k == name).map(|code| code as u8)
}

/// The key of a gossiped value: a UTF-8 string of 1 to 255 bytes.
///
/// Any string is allowed. The keys the reference Gossiper uses (STATUS, LOAD, DC,
/// RACK, HOST_ID, TOKENS, ...) are constants on this type and travel as a single
/// byte; a key built from the same string is the same key.
///
/// ```
/// use rumormill::Key;
/// assert_eq!(Key::new("STATUS")?, Key::STATUS);
/// assert_eq!(Key::DC.as_str(), "DC");
/// let custom = Key::new("shard-load")?;
/// assert!(custom.well_known_code().is_none());
/// # Ok::<(), rumormill::InvalidInput>(())
/// ```
#[derive(Clone)]
pub struct Key(Repr);

#[derive(Clone)]
enum Repr {
    Known(u8),
    /// UTF-8 (checked on construction); short names inline.
    Custom(crate::small::Name),
}

macro_rules! well_known {
    ($($name:ident = $code:literal),* $(,)?) => {
        impl Key {
            $(
                #[doc = concat!("The well-known key `", stringify!($name), "`.")]
                pub const $name: Key = Key(Repr::Known($code));
            )*
        }
    };
}

well_known! {
    STATUS = 0, LOAD = 1, SCHEMA = 2, DC = 3, RACK = 4, RELEASE_VERSION = 5,
    REMOVAL_COORDINATOR = 6, INTERNAL_IP = 7, RPC_ADDRESS = 8, SEVERITY = 9,
    NET_VERSION = 10, HOST_ID = 11, TOKENS = 12, RPC_READY = 13,
    INTERNAL_ADDRESS_AND_PORT = 14, NATIVE_ADDRESS_AND_PORT = 15, STATUS_WITH_PORT = 16,
    SSTABLE_VERSIONS = 17, DISK_USAGE = 18, INDEX_STATUS = 19, SUPPORTED_FEATURES = 20,
    CACHE_HITRATES = 21, SCHEMA_TABLES_VERSION = 22, VIEW_BACKLOG = 23, SHARD_COUNT = 24,
    IGNORE_MSB_BITS = 25, CDC_GENERATION_ID = 26, SNITCH_NAME = 27, GROUP0_STATE_ID = 28,
}

impl Key {
    /// Makes a key; fails if `name` is empty or longer than 255 bytes.
    pub fn new(name: &str) -> Result<Key, crate::InvalidInput> {
        if name.is_empty() || name.len() > MAX_KEY_LEN {
            return Err(crate::InvalidInput::KeyLength(name.len()));
        }
        Ok(match well_known_code(name) {
            Some(code) => Key(Repr::Known(code)),
            None => Key(Repr::Custom(crate::small::Name::new(name.as_bytes()))),
        })
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Known(code) => WELL_KNOWN[usize::from(*code)],
            // built from a &str, so this cannot fail
            Repr::Custom(name) => core::str::from_utf8(name.as_slice()).unwrap_or_default(),
        }
    }

    /// The key's bytes (its text in UTF-8): byte order is text order.
    fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Known(code) => WELL_KNOWN[usize::from(*code)].as_bytes(),
            Repr::Custom(name) => name.as_slice(),
        }
    }

    /// The one-byte wire code of a well-known key, `None` for any other key.
    pub fn well_known_code(&self) -> Option<u8> {
        match self.0 {
            Repr::Known(code) => Some(code),
            Repr::Custom(_) => None,
        }
    }

    /// The well-known key with this wire code.
    pub fn from_well_known_code(code: u8) -> Option<Key> {
        (usize::from(code) < WELL_KNOWN.len()).then_some(Key(Repr::Known(code)))
    }

    /// Whether `name` is the text of a well-known key (such keys are always sent as
    /// their code, so a spelled-out one on the wire is not canonical).
    pub(crate) fn is_well_known_name(name: &str) -> bool {
        well_known_code(name).is_some()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (&self.0, &other.0) {
            (Repr::Known(a), Repr::Known(b)) => a == b,
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for Key {}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.as_str())
    }
}

impl TryFrom<&str> for Key {
    type Error = crate::InvalidInput;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Key::new(s)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <alloc::borrow::Cow<'de, str>>::deserialize(d)?;
        Key::new(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Key {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        if u.ratio(1, 2)? {
            let code = u.int_in_range(0..=(WELL_KNOWN.len() - 1) as u8)?;
            return Ok(Key(Repr::Known(code)));
        }
        let len = u.int_in_range(1..=12usize)?;
        let name: alloc::string::String =
            (0..len).map(|_| u.int_in_range(b'a'..=b'z').map(char::from)).collect::<Result<_, _>>()?;
        Key::new(&name).map_err(|_| arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_codes_round_trip_and_order_by_text() {
        for (code, name) in WELL_KNOWN.iter().enumerate() {
            let key = Key::new(name).unwrap();
            assert_eq!(key.well_known_code(), Some(code as u8));
            assert_eq!(Key::from_well_known_code(code as u8).unwrap().as_str(), *name);
        }
        assert!(Key::from_well_known_code(WELL_KNOWN.len() as u8).is_none());
        assert!(Key::DC < Key::LOAD);
        assert!(Key::new("AAA").unwrap() < Key::DC);
    }

    #[test]
    fn key_length_is_checked() {
        assert!(Key::new("").is_err());
        assert!(Key::new(&"k".repeat(256)).is_err());
        assert!(Key::new(&"k".repeat(255)).is_ok());
    }
}
