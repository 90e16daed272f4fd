//! Digest pages: building the SYN's page within a budget, and the compact form's
//! member hashes, truncated versions and checks.

use alloc::vec::Vec;

use crate::hash::{Hasher64, Hasher64x4};
use crate::message::HashedEntry;
use crate::wire::{digest_len, header_len, node_id_len, varint_len};
use crate::{
    BudgetError, CompactDigest, Context, Digest, DigestPage, EndpointState, Generation, HashedDigest, Header, NodeId,
    NodeRange, Syn, Version, View,
};

const MEMBERS: u64 = 0x6d65_6d62_6572_7331; // "members1"
const DIGEST_CHECK: u64 = 0x6469_6765_7374_3131;
const FINGERPRINT: u64 = 0x6669_6e67_6572_7031; // "fingerp1"
const SALT: u64 = 0x7361_6c74_7361_6c31;
pub(crate) const ACK_CHECK: u64 = 0x6163_6b63_6865_636b;
pub(crate) const ACK2_CHECK: u64 = 0x6163_6b32_6368_6b31;
pub(crate) const ACK_HASHED_CHECK: u64 = 0x6163_6b68_6173_6831; // "ackhash1"

/// The byte budget of one message. Every builder keeps the encoded message,
/// header included, within it.
///
/// ```
/// use rumormill::{Budget, ClusterName, Generation, Header, NodeId};
/// let header = Header { cluster: ClusterName::new("c")?, sender: NodeId::new("a")?, generation: Generation(1) };
/// let budget = Budget::new(1400, &header)?;
/// assert!(budget.body() < 1400);
/// assert!(Budget::new(8, &header).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(try_from = "BudgetForm"))]
pub struct Budget {
    body: usize,
}

/// A budget as serde reads it: checked to hold the smallest body.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct BudgetForm {
    body: usize,
}

#[cfg(feature = "serde")]
impl TryFrom<BudgetForm> for Budget {
    type Error = alloc::string::String;
    fn try_from(f: BudgetForm) -> Result<Self, Self::Error> {
        if f.body < Budget::MIN_BODY {
            return Err(alloc::format!("a budget's body of {} bytes is below {}", f.body, Budget::MIN_BODY));
        }
        Ok(Budget { body: f.body })
    }
}

impl Budget {
    /// The least body any builder needs (an empty ACK).
    pub const MIN_BODY: usize = 4;

    /// A budget of `total` bytes for messages with this header; fails if it cannot
    /// hold the header and the smallest body.
    pub fn new(total: usize, header: &Header) -> Result<Budget, BudgetError> {
        let needed = header_len(header) + Self::MIN_BODY;
        if total < needed {
            return Err(BudgetError::TooSmall { budget: total, needed });
        }
        Ok(Budget { body: total - header_len(header) })
    }

    /// No limit, as the reference Gossiper works (and the conformance vectors).
    pub const fn unlimited() -> Budget {
        Budget { body: usize::MAX / 4 }
    }

    /// Bytes left for the body.
    pub fn body(&self) -> usize {
        self.body
    }
}

/// Which kind of page [`build_syn`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum PageForm {
    /// Ids, generations and full versions: any receiver can use it.
    Full,
    /// Member hash and 16-bit versions: about 2 bytes per node, usable by a
    /// receiver that knows the same members at the same generations.
    Compact,
    /// Fingerprints instead of ids, full versions: about 7 bytes per node, usable
    /// by any receiver (see [`HashedDigest`](crate::HashedDigest)). It describes
    /// five times as many nodes as a full page in the same budget, and its answer
    /// refers to them by index; the answer is lost if the sender's members in the
    /// range change before it arrives.
    Hashed,
}

/// A SYN built by [`build_syn`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BuiltSyn {
    /// The message.
    pub syn: Syn,
    /// Where the next page starts (`None`: the walk wrapped around; the next page
    /// starts from the lowest id).
    pub next: Option<NodeId>,
    /// How many nodes the page describes.
    pub covered: usize,
}

/// Builds a SYN whose page starts at `start` (`None`: the lowest id) and covers as
/// many nodes as fit the budget. Calling it again with the returned `next` walks
/// the whole view: with `N` nodes, a page overhead `H` (header, page tag, two range
/// bounds, a count and, for compact pages, two hashes) and entries of at most `E`
/// bytes (17 bits for compact pages: 2 bytes and a quiet bit), a walk takes at
/// most `ceil(N / floor((budget - H) / E))` pages. Keep one walk per
/// [`PageForm`]: a compact page that covers everything would otherwise send the
/// full walk back to its start.
///
/// Fails only if not even one node's entry fits.
pub fn build_syn(view: &View, budget: Budget, start: Option<&NodeId>, form: PageForm) -> Result<BuiltSyn, BudgetError> {
    // a start past the last node (it may have been removed since) wraps around
    let range_start = start.filter(|s| view.nodes().ids().last().is_some_and(|last| last >= *s)).cloned();
    let tail = NodeRange::new(range_start.clone(), None).unwrap_or(NodeRange::FULL);
    let start_len = range_start.as_ref().map_or(1, node_id_len);
    // tag + start bound (+ end bound and entries below)
    let fixed = 1
        + start_len
        + match form {
            PageForm::Full => 0,
            PageForm::Compact => 16,
            PageForm::Hashed => 12,
        };
    let mut entries = 0usize;
    let mut used = 0usize;
    let mut end: Option<NodeId> = None;
    // a compact page's quiet bits for `n` members
    let bits = |n: usize| if form == PageForm::Compact { n.div_ceil(8) } else { 0 };
    // Compact entries are 2 bytes and a bit: when the whole tail fits even with
    // the longest end bound (an id is at most 255 bytes), every step of the walk
    // below would fit too, so the page takes it without reading each id (the
    // usual case once a cluster has converged).
    let tail_len = view.nodes().range(&tail).0.len();
    if form == PageForm::Compact
        && fixed + 256 + varint_len(tail_len as u64) + 2 * tail_len + bits(tail_len) <= budget.body()
    {
        entries = tail_len;
    } else {
        let mut iter = view.range(&tail).peekable();
        while let Some((id, state)) = iter.next() {
            let entry = match form {
                PageForm::Full => digest_len(&state.digest(id)),
                PageForm::Compact => 2,
                PageForm::Hashed => 4 + varint_len(state.max_version().0) + varint_len(state.purged().0),
            };
            let next_end_len = iter.peek().map_or(1, |(next, _)| node_id_len(next));
            let total = fixed + next_end_len + varint_len(entries as u64 + 1) + used + entry + bits(entries + 1);
            if total > budget.body() {
                if entries == 0 {
                    return Err(BudgetError::PageTooSmall { body: budget.body(), needed: total });
                }
                end = Some(id.clone());
                break;
            }
            entries += 1;
            used += entry;
        }
    }
    let range = NodeRange::new(range_start, end.clone()).expect("the page holds at least its first node");
    let page = match form {
        PageForm::Full => DigestPage::Range {
            range: range.clone(),
            digests: view.range(&range).map(|(id, s)| s.digest(id)).collect(),
        },
        PageForm::Compact => DigestPage::Compact(compact_digest(view, range)),
        PageForm::Hashed => DigestPage::Hashed(hashed_digest(view, range)),
    };
    Ok(BuiltSyn { syn: Syn { page }, next: end, covered: entries })
}

/// The empty SYN of a node in its shadow round: answered with every known state.
pub fn shadow_syn() -> Syn {
    Syn { page: DigestPage::Listed(Vec::new()) }
}

/// Hash of the (id, generation) pairs of `members`, in order.
pub(crate) fn members_hash<'a>(members: impl Iterator<Item = (&'a NodeId, &'a EndpointState)>) -> u64 {
    let mut h = Hasher64::new(MEMBERS);
    for (id, s) in members {
        h.bytes(id.as_bytes());
        h.u64(s.generation().0);
    }
    h.finish()
}

/// The members hash of `list`, the view's members in `range`: cached for the whole
/// view.
fn range_hash(view: &View, range: &NodeRange, (ids, states): (&[NodeId], &[EndpointState])) -> u64 {
    if *range == NodeRange::FULL { view.members_hash() } else { members_hash(ids.iter().zip(states)) }
}

/// The check over a compact page's full values and its quiet bits (as
/// little-endian words of 8 bytes, the last padded with zeros). The bits are
/// covered because a receiver acts on them: a bit flipped on the way would let it
/// take a heartbeat past a value it never got.
pub(crate) fn digest_check(members: u64, entries: impl Iterator<Item = (Version, Version)>, quiet: &[u8]) -> u64 {
    let mut h = Hasher64x4::new(DIGEST_CHECK);
    h.u64(members);
    h.pairs(entries.map(|(max, purged)| (max.0, purged.0)));
    for chunk in quiet.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h.u64(u64::from_le_bytes(word));
    }
    h.finish()
}

fn compact_digest(view: &View, range: NodeRange) -> CompactDigest {
    let list = view.nodes().range(&range);
    let members = range_hash(view, &range, list);
    let states = list.1;
    let versions = states.iter().map(|s| s.max_version().0 as u16).collect();
    let mut quiet = alloc::vec![0u8; states.len().div_ceil(8)];
    for (i, s) in states.iter().enumerate() {
        quiet[i / 8] |= u8::from(s.is_quiet()) << (i % 8);
    }
    let check = digest_check(members, states.iter().map(|s| (s.max_version(), s.purged())), &quiet);
    CompactDigest { context: Context { range, members }, check, versions, quiet }
}

/// A node's fingerprint in a hashed page with this salt.
pub(crate) fn fingerprint(salt: u32, id: &NodeId, generation: Generation) -> u32 {
    let mut h = Hasher64::new(FINGERPRINT ^ u64::from(salt));
    h.bytes(id.as_bytes());
    h.u64(generation.0);
    h.finish() as u32
}

fn hashed_digest(view: &View, range: NodeRange) -> HashedDigest {
    let list = view.nodes().range(&range);
    let members = range_hash(view, &range, list);
    // Deterministic, yet new every round (the local heartbeat moves), so that two
    // nodes whose fingerprints collide do not stay confused.
    let mut h = Hasher64::new(SALT);
    h.u64(members);
    h.u64(view.local_state().max_version().0);
    let salt = h.finish() as u32;
    let entries = (list.0.iter().zip(list.1))
        .map(|(id, s)| HashedEntry {
            fingerprint: fingerprint(salt, id, s.generation()),
            max_version: s.max_version(),
            purged: s.purged(),
        })
        .collect();
    HashedDigest { context: Context { range, members }, salt, entries }
}

/// Why a compact part could not be used. Nothing was applied from it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ContextError {
    /// The sender knows other members (or generations) in the range.
    #[error("the sender's members in {0} differ from ours")]
    MembersDiffer(NodeRange),
    /// The truncated versions did not decode to what the sender meant.
    #[error("compact versions failed their check")]
    CheckFailed,
    /// An index past the last member, or a count that does not match.
    #[error("member index out of range")]
    BadIndex,
}

/// The members of a context, as this view knows them, verified against its hash.
pub(crate) struct Members<'a> {
    pub(crate) context: Context,
    pub(crate) ids: &'a [NodeId],
    /// Their states, in the same order.
    pub(crate) states: &'a [EndpointState],
    /// Where the members start among the view's nodes.
    pub(crate) offset: usize,
}

impl<'a> Members<'a> {
    /// This view's members in `context.range`, if their hash matches.
    pub(crate) fn verify(view: &'a View, context: &Context) -> Result<Members<'a>, ContextError> {
        let bounds = view.nodes().range_bounds(&context.range);
        let (offset, ids, states) = (bounds.start, &view.nodes().ids()[bounds.clone()], &view.nodes().values()[bounds]);
        if range_hash(view, &context.range, (ids, states)) != context.members {
            return Err(ContextError::MembersDiffer(context.range.clone()));
        }
        Ok(Members { context: context.clone(), ids, states, offset })
    }

    /// This view's members in `range`, with their current hash.
    pub(crate) fn current(view: &'a View, range: &NodeRange) -> Members<'a> {
        let bounds = view.nodes().range_bounds(range);
        let (offset, ids, states) = (bounds.start, &view.nodes().ids()[bounds.clone()], &view.nodes().values()[bounds]);
        let members = range_hash(view, range, (ids, states));
        Members { context: Context { range: range.clone(), members }, ids, states, offset }
    }

    pub(crate) fn get(&self, index: u32) -> Result<(&'a NodeId, &'a EndpointState), ContextError> {
        let i = index as usize;
        Ok((self.ids.get(i).ok_or(ContextError::BadIndex)?, self.states.get(i).ok_or(ContextError::BadIndex)?))
    }

    /// Requests by id for compact ones (member index, the requester's max
    /// version), which carry no purge floor: the responder assumes its own.
    /// The indices must be valid (they were resolved against these members).
    pub(crate) fn digests(&self, wants: impl Iterator<Item = (u32, Version)>) -> Vec<Digest> {
        wants
            .map(|(index, max_version)| {
                let (node, state) = (&self.ids[index as usize], &self.states[index as usize]);
                Digest { node: node.clone(), generation: state.generation(), max_version, purged: state.purged() }
            })
            .collect()
    }

    /// The max version a compact page's sender holds of member `i`, from the
    /// page's 16-bit `versions`, restored against ours.
    pub(crate) fn restored_at(&self, versions: &[u16], i: usize) -> Version {
        restore(versions[i], self.states[i].max_version())
    }

    /// [`Members::restored_at`] of every member, in order.
    pub(crate) fn restored<'s>(&'s self, versions: &'s [u16]) -> impl Iterator<Item = Version> + 's {
        (0..self.states.len().min(versions.len())).map(|i| self.restored_at(versions, i))
    }

    /// Index among the members of the view's node at `position`.
    pub(crate) fn index_at(&self, position: usize) -> Option<u32> {
        position.checked_sub(self.offset).filter(|&i| i < self.states.len()).map(|i| i as u32)
    }

    /// Index of `node` among the members.
    pub(crate) fn index_of(&self, node: &NodeId) -> Option<u32> {
        self.ids.binary_search(node).ok().map(|i| i as u32)
    }
}

/// The value with low 16 bits `low` nearest to `reference` (exact whenever the two
/// differ by less than 2^15).
#[inline]
pub(crate) fn restore(low: u16, reference: Version) -> Version {
    // The signed 16-bit step from the reference's low bits to `low`: within
    // (-2^15, 2^15) it lands on the only candidate nearer than 2^15. A step of
    // exactly -2^15 (a tie) or one past either end of u64 goes the long way.
    let step = low.wrapping_sub(reference.0 as u16) as i16;
    if step != i16::MIN
        && let Some(v) = reference.0.checked_add_signed(i64::from(step))
    {
        return Version(v);
    }
    restore_by_candidates(low, reference)
}

/// [`restore`] as docs/wire.md §9.3 states it: the nearest of three candidates.
#[cold]
#[inline(never)]
fn restore_by_candidates(low: u16, reference: Version) -> Version {
    let r = reference.0;
    let base = (r & !0xffff) | u64::from(low);
    let mut best = base;
    for cand in [base.checked_sub(0x1_0000), base.checked_add(0x1_0000)].into_iter().flatten() {
        if cand.abs_diff(r) < best.abs_diff(r) {
            best = cand;
        }
    }
    Version(best)
}

/// Resolves a compact page: this view's members of its context, verified by their
/// hash, and the page's versions and quiet bits by their check. The max version
/// the sender holds of member `i` is `members.restored_at(&c.versions, i)`.
/// (The versions are restored again where they are used rather than kept: a
/// restore is a few instructions, a list of them an allocation.)
pub(crate) fn resolve_compact<'v>(view: &'v View, c: &CompactDigest) -> Result<Members<'v>, ContextError> {
    let members = Members::verify(view, &c.context)?;
    if members.states.len() != c.versions.len() {
        return Err(ContextError::BadIndex);
    }
    let entries = members.restored(&c.versions).zip(members.states).map(|(v, s)| (v, s.purged()));
    if digest_check(c.context.members, entries, &c.quiet) != c.check {
        return Err(ContextError::CheckFailed);
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_agrees_with_the_spec_everywhere() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut refs = alloc::vec![0u64, 1, 0x7fff, 0x8000, 0xffff, 0x1_0000, u64::MAX, u64::MAX - 0x8000];
        for _ in 0..2_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            refs.push(x >> (x % 64));
        }
        for r in refs {
            for low in (0..=u16::MAX).step_by(251).chain([0, 1, 0x7fff, 0x8000, 0xffff, r as u16 ^ 0x8000]) {
                assert_eq!(restore(low, Version(r)), restore_by_candidates(low, Version(r)), "r={r} low={low}");
            }
        }
    }

    #[test]
    fn restore_is_exact_within_half_the_window() {
        for r in [0u64, 5, 40_000, 65_535, 65_536, 1_000_000, u64::MAX - 3] {
            for d in [-32_767i64, -1, 0, 1, 32_767] {
                let Some(x) = r.checked_add_signed(d) else { continue };
                assert_eq!(restore(x as u16, Version(r)), Version(x), "r={r} x={x}");
            }
        }
    }
}
