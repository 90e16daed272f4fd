//! A map from node id to `V`, as vectors sorted by id.
//!
//! Sorted and contiguous rather than a tree: walking every node (digests, every
//! round) is a slice walk, a compact reference is an index, and a lookup is a
//! binary search over a separate array of the ids' first 16 bytes (one number
//! each, so the search stays in a few cache lines), the full ids compared only on
//! a tie. Nodes are added in batches (a message may bring hundreds) merged in one
//! pass.

use alloc::vec::Vec;

use crate::{NodeId, NodeRange};

/// Values by node id, sorted by id, without repeats.
///
/// Ids and values are kept in two parallel vectors rather than one of pairs: the
/// walks of every round (digests, checks, heartbeats) read values only, and an id
/// (56 bytes) beside each value nearly doubled the memory they stream.
#[derive(Clone, Debug)]
pub(crate) struct SortedMap<V> {
    heads: Vec<u128>,
    ids: Vec<NodeId>,
    values: Vec<V>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap { heads: Vec::new(), ids: Vec::new(), values: Vec::new() }
    }
}

/// The view's nodes.
pub(crate) type Entries = SortedMap<crate::EndpointState>;

impl<V> SortedMap<V> {
    /// From any pairs (sorted here; a repeated id keeps its last value).
    pub(crate) fn from_iter(pairs: impl IntoIterator<Item = (NodeId, V)>) -> Self {
        let mut m = SortedMap::default();
        m.set_pairs(pairs.into_iter().collect());
        m
    }

    /// Replaces the entries with `pairs`, sorted (stably: of repeated ids, the
    /// last stays last, and is kept).
    fn set_pairs(&mut self, mut pairs: Vec<(NodeId, V)>) {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut ids: Vec<NodeId> = Vec::with_capacity(pairs.len());
        let mut values: Vec<V> = Vec::with_capacity(pairs.len());
        for (id, value) in pairs {
            if ids.last() == Some(&id) {
                if let Some(last) = values.last_mut() {
                    *last = value;
                }
            } else {
                ids.push(id);
                values.push(value);
            }
        }
        self.heads = ids.iter().map(NodeId::head).collect();
        self.ids = ids;
        self.values = values;
    }

    pub(crate) fn find(&self, id: &NodeId) -> Result<usize, usize> {
        let head = id.head();
        let lo = self.heads.partition_point(|h| *h < head);
        // ids sharing their first 16 bytes: a binary search of that run, comparing
        // in full. (A walk along the run was linear: a peer can choose ids with a
        // common 16-byte prefix, and with 60,000 of them in the view each lookup
        // took a linear scan, 300 ms per message of 2,000 deltas.)
        self.find_in_run(id, lo)
    }

    /// Finds `id` among the entries from `start` on whose head equals its head
    /// (`start` is the first entry whose head is not below it).
    fn find_in_run(&self, id: &NodeId, start: usize) -> Result<usize, usize> {
        let run = run_len(&self.heads[start..], id.head());
        match self.ids[start..start + run].binary_search(id) {
            Ok(i) => Ok(start + i),
            Err(i) => Err(start + i),
        }
    }

    /// Like [`SortedMap::find`], for ids looked up in ascending order: the search
    /// starts at `from` (the position just past the previous id) and gallops, so a
    /// batch of k sorted lookups costs O(k log(n/k)) rather than O(k log n). An id
    /// below the entry before `from` falls back to a plain search.
    pub(crate) fn find_from(&self, id: &NodeId, from: usize) -> Result<usize, usize> {
        let head = id.head();
        let heads = &self.heads;
        let from = from.min(heads.len());
        if from > 0 && heads[from - 1] >= head {
            return self.find(id);
        }
        // heads[..lo] are below `head`; gallop until heads[hi] is not
        let (mut lo, mut hi, mut step) = (from, from, 1);
        while hi < heads.len() && heads[hi] < head {
            lo = hi + 1;
            hi = lo + step;
            step *= 2;
        }
        let hi = hi.min(heads.len());
        self.find_in_run(id, lo + heads[lo..hi].partition_point(|h| *h < head))
    }

    /// The value of `id`, searching from `cursor` (see [`SortedMap::find_from`])
    /// and moving `cursor` past its position.
    pub(crate) fn get_mut_from(&mut self, id: &NodeId, cursor: &mut usize) -> Option<&mut V> {
        match self.find_from(id, *cursor) {
            Ok(i) => {
                *cursor = i + 1;
                Some(&mut self.values[i])
            }
            Err(i) => {
                *cursor = i;
                None
            }
        }
    }

    /// Like [`SortedMap::get_mut_from`], trying position `hint` first: a map
    /// that shadows another (the peers of a view's nodes) finds its entries at the
    /// same positions, give or take one.
    pub(crate) fn get_mut_hinted(&mut self, id: &NodeId, hint: usize, cursor: &mut usize) -> Option<&mut V> {
        if self.ids.get(hint) == Some(id) {
            *cursor = hint + 1;
            return Some(&mut self.values[hint]);
        }
        self.get_mut_from(id, cursor)
    }

    pub(crate) fn get(&self, id: &NodeId) -> Option<&V> {
        self.find(id).ok().map(|i| &self.values[i])
    }

    pub(crate) fn get_key_value(&self, id: &NodeId) -> Option<(&NodeId, &V)> {
        self.find(id).ok().map(|i| (&self.ids[i], &self.values[i]))
    }

    pub(crate) fn get_mut(&mut self, id: &NodeId) -> Option<&mut V> {
        self.find(id).ok().map(|i| &mut self.values[i])
    }

    /// Inserts or replaces one value (O(n) for a new id: use `merge` for many);
    /// returns the old value.
    pub(crate) fn insert(&mut self, id: NodeId, value: V) -> Option<V> {
        match self.find(&id) {
            Ok(i) => Some(core::mem::replace(&mut self.values[i], value)),
            Err(i) => {
                self.heads.insert(i, id.head());
                self.ids.insert(i, id);
                self.values.insert(i, value);
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, id: &NodeId) -> Option<V> {
        let i = self.find(id).ok()?;
        self.heads.remove(i);
        self.ids.remove(i);
        Some(self.values.remove(i))
    }

    /// Adds entries in one pass; an id already present (or repeated) keeps the
    /// value given last.
    pub(crate) fn merge(&mut self, added: Vec<(NodeId, V)>) {
        if added.is_empty() {
            return;
        }
        let mut pairs: Vec<(NodeId, V)> = Vec::with_capacity(self.ids.len() + added.len());
        pairs.extend(core::mem::take(&mut self.ids).into_iter().zip(core::mem::take(&mut self.values)));
        // sorted runs: the stable sort merges them in linear time
        pairs.extend(added);
        self.set_pairs(pairs);
    }

    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// The ids, in order.
    pub(crate) fn ids(&self) -> &[NodeId] {
        &self.ids
    }

    /// The values, in the ids' order.
    pub(crate) fn values(&self) -> &[V] {
        &self.values
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&NodeId, &V)> + DoubleEndedIterator {
        self.ids.iter().zip(&self.values)
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&NodeId, &mut V)> {
        self.ids.iter().zip(&mut self.values)
    }

    /// The ids and values within `range`.
    pub(crate) fn range(&self, range: &NodeRange) -> (&[NodeId], &[V]) {
        let bounds = self.range_bounds(range);
        (&self.ids[bounds.clone()], &self.values[bounds])
    }

    /// The positions of the entries within `range`.
    pub(crate) fn range_bounds(&self, range: &NodeRange) -> core::ops::Range<usize> {
        let start = range.start().map_or(0, |s| self.find(s).unwrap_or_else(|i| i));
        let end = range.end().map_or(self.ids.len(), |e| self.find(e).unwrap_or_else(|i| i));
        start..end.max(start)
    }

    /// The entry at `position`, mutably.
    pub(crate) fn at_mut(&mut self, position: usize) -> Option<(&NodeId, &mut V)> {
        Some((self.ids.get(position)?, self.values.get_mut(position)?))
    }
}

/// How many of `heads` (sorted, none below `head`) equal `head`: a check of the
/// first two for the usual run of 0 or 1, a binary search for longer ones.
fn run_len(heads: &[u128], head: u128) -> usize {
    match heads {
        [] => 0,
        [first, ..] if *first != head => 0,
        [_] => 1,
        [_, second, ..] if *second != head => 1,
        _ => heads.partition_point(|h| *h == head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_agree_with_a_btreemap_even_for_ids_sharing_their_head() {
        let ids: Vec<NodeId> =
            ["a", "b", "abcdefghijklmnop", "abcdefghijklmnopq", "abcdefghijklmnopr", "abcdefghijklmnop\0"]
                .iter()
                .map(|s| NodeId::new(s).unwrap())
                .collect();
        let mut m: SortedMap<usize> = SortedMap::default();
        let mut reference = alloc::collections::BTreeMap::new();
        for (i, id) in ids.iter().enumerate().rev() {
            m.insert(id.clone(), i);
            reference.insert(id.clone(), i);
        }
        let got: Vec<_> = m.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let want: Vec<_> = reference.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(got, want);
        for id in &ids {
            assert_eq!(m.get(id), reference.get(id));
        }
        assert!(m.get(&NodeId::new("abcdefghijklmnopz").unwrap()).is_none());
        let r = NodeRange::new(Some(ids[2].clone()), Some(ids[4].clone())).unwrap();
        assert_eq!(m.range(&r).0.len(), reference.range(ids[2].clone()..ids[4].clone()).count());
        let mut probes: Vec<NodeId> = ids.clone();
        probes.push(NodeId::new("abcdefghijklmnopz").unwrap());
        probes.push(NodeId::new("0").unwrap());
        probes.sort();
        // hinted lookups find the entry whatever the hint
        for id in &probes {
            for hint in 0..=m.len() + 1 {
                let mut cursor = 0;
                assert_eq!(m.get_mut_hinted(id, hint, &mut cursor).map(|v| *v), reference.get(id).copied());
            }
        }
        // sorted lookups from a cursor, and out-of-order ones, agree with find
        for start in 0..=m.len() + 1 {
            let mut cursor = start;
            for id in probes.iter().chain(probes.iter().rev()) {
                assert_eq!(m.find_from(id, cursor), m.find(id), "{id:?} from {cursor}");
                let found = m.get_mut_from(id, &mut cursor).map(|v| *v);
                assert_eq!(found, reference.get(id).copied());
            }
        }
        m.remove(&ids[3]);
        reference.remove(&ids[3]);
        assert_eq!(m.len(), reference.len());
        assert!(m.get(&ids[3]).is_none());
    }
}
