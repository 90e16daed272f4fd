//! The values and tombstones of one node's state, by key.

use alloc::vec::Vec;

use crate::{Key, VersionedValue};

/// A node's values and tombstones by key, in key order.
///
/// A vector sorted by key rather than a tree: a node has a handful of keys, and a
/// view holds one of these per node, so compactness matters more than O(log n)
/// inserts.
///
/// ```
/// use rumormill::{EndpointState, Generation, Key, Version, VersionedValue};
/// let state = EndpointState::from_parts(
///     Generation(1),
///     Version(3),
///     [(Key::DC, VersionedValue::live("eu", Version(1))), (Key::RACK, VersionedValue::live("r1", Version(2)))],
///     Version::ZERO,
/// );
/// let values = state.values();
/// assert_eq!(values.len(), 2);
/// assert_eq!(values.get(&Key::RACK).unwrap().version, Version(2));
/// let keys: Vec<&str> = values.keys().map(|k| k.as_str()).collect();
/// assert_eq!(keys, ["DC", "RACK"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Values {
    list: Vec<(Key, VersionedValue)>,
}

impl Values {
    fn find(&self, key: &Key) -> Result<usize, usize> {
        self.list.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// The value or tombstone of `key`.
    pub fn get(&self, key: &Key) -> Option<&VersionedValue> {
        self.find(key).ok().map(|i| &self.list[i].1)
    }

    /// Number of keys (values and tombstones).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Keys and their values, in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Key, &VersionedValue)> + DoubleEndedIterator {
        self.list.iter().map(|(k, v)| (k, v))
    }

    /// Keys, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Key> + DoubleEndedIterator {
        self.list.iter().map(|(k, _)| k)
    }

    /// Values, in key order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &VersionedValue> + DoubleEndedIterator {
        self.list.iter().map(|(_, v)| v)
    }

    pub(crate) fn insert(&mut self, key: Key, value: VersionedValue) -> Option<VersionedValue> {
        match self.find(&key) {
            Ok(i) => Some(core::mem::replace(&mut self.list[i].1, value)),
            Err(i) => {
                self.list.insert(i, (key, value));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<VersionedValue> {
        self.find(key).ok().map(|i| self.list.remove(i).1)
    }

    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&Key, &VersionedValue) -> bool) {
        self.list.retain(|(k, v)| keep(k, v));
    }

    /// Releases spare capacity (states live long; their key sets rarely grow).
    pub(crate) fn shrink(&mut self) {
        self.list.shrink_to_fit();
    }
}

impl core::fmt::Debug for Values {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for &'a Values {
    type Item = (&'a Key, &'a VersionedValue);
    type IntoIter = core::iter::Map<
        core::slice::Iter<'a, (Key, VersionedValue)>,
        fn(&'a (Key, VersionedValue)) -> (&'a Key, &'a VersionedValue),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.list.iter().map(|(k, v)| (k, v))
    }
}

impl IntoIterator for Values {
    type Item = (Key, VersionedValue);
    type IntoIter = alloc::vec::IntoIter<(Key, VersionedValue)>;
    fn into_iter(self) -> Self::IntoIter {
        self.list.into_iter()
    }
}

impl FromIterator<(Key, VersionedValue)> for Values {
    /// Of repeated keys, the last one given stays.
    fn from_iter<I: IntoIterator<Item = (Key, VersionedValue)>>(iter: I) -> Values {
        let mut v = Values::default();
        for (k, vv) in iter {
            v.insert(k, vv);
        }
        v.shrink();
        v
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Values {
    /// A map of keys to versioned values, in any order; a repeated key is an
    /// error, not a silent choice of one of its values.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Values;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a map of distinct keys to versioned values")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Values, A::Error> {
                // (no capacity from the size hint: it is the input's word)
                let mut list: Vec<(Key, VersionedValue)> = Vec::new();
                while let Some(entry) = map.next_entry::<Key, VersionedValue>()? {
                    list.push(entry);
                }
                list.sort_by(|a, b| a.0.cmp(&b.0));
                if let Some(w) = list.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Err(serde::de::Error::custom(alloc::format!("key {} repeated", w[0].0)));
                }
                list.shrink_to_fit();
                Ok(Values { list })
            }
        }
        d.deserialize_map(Visit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Version;

    fn live(s: &str, v: u64) -> VersionedValue {
        VersionedValue::live(s, Version(v))
    }

    #[test]
    fn stays_sorted_and_last_insert_wins() {
        let mut values: Values =
            [(Key::RACK, live("r1", 1)), (Key::DC, live("eu", 2)), (Key::RACK, live("r2", 3))].into_iter().collect();
        assert_eq!(values.len(), 2);
        assert_eq!(values.get(&Key::RACK), Some(&live("r2", 3)));
        assert!(values.keys().zip(values.keys().skip(1)).all(|(a, b)| a < b));

        assert_eq!(values.insert(Key::LOAD, live("1.0", 4)), None);
        assert_eq!(values.insert(Key::DC, live("us", 5)), Some(live("eu", 2)));
        assert!(values.keys().zip(values.keys().skip(1)).all(|(a, b)| a < b));

        assert_eq!(values.remove(&Key::DC), Some(live("us", 5)));
        assert_eq!(values.remove(&Key::DC), None);
        values.retain(|_, v| v.version > Version(3));
        assert_eq!(values.keys().collect::<Vec<_>>(), [&Key::LOAD]);
    }
}
