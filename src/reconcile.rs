//! What happens when a SYN, an ACK or an ACK2 arrives: pure functions from a view
//! and a message to the answer and the deltas to apply. Nothing here changes a
//! view; the driver applies deltas with [`View::apply`].
//!
//! The per-digest rules are those of the reference Gossiper
//! (`examineGossiper`), with two additions: a digest that is stale against the
//! owner's purge floor is answered from version 0, and a page that covers an id
//! range gets the nodes it does not list pushed whole.
//!
//! Once a cluster has converged nearly every delta only raises a heartbeat. The
//! [`Gossiper`](crate::Gossiper) resolves ACKs and ACK2s with those split off as
//! beats (`resolve_ack`, `resolve_ack2`), which it applies by position
//! (`View::apply_beats`) with the same result as [`View::apply`], and the rest as
//! deltas; the public functions return everything as deltas.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::delta::{self, Candidate, Ref};
use crate::digest::{self, ACK_CHECK, ACK_HASHED_CHECK, ACK2_CHECK, ContextError, Members, resolve_compact, restore};
use crate::hash::Hasher64x4;
use crate::message::{CompactField, CompactRequest, Offset};
use crate::wire::{context_len, digest_len, varint_len};
use crate::{
    Ack, Ack2, Budget, CompactAck, CompactDelta, CompactDeltas, CompactDigest, Context, Delta, Digest, DigestPage,
    EndpointState, HashedDigest, NodeId, NodeRange, QUIET_RUN, Syn, Version, VersionedValue, View,
};

/// A message built within a budget.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Built<M> {
    /// The message.
    pub message: M,
    /// How many requests or deltas were cut short or left out for lack of room
    /// (0: everything fit).
    pub left_out: usize,
    /// Why a compact part of the input could not be used, if one could not.
    pub context_error: Option<ContextError>,
}

/// Requests to answer in an ACK2 ([`build_ack2`]).
///
/// Requests by id say what each asks for: the node's fields newer than
/// `max_version` (of `generation`), given the requester's `purged`. Compact
/// requests name a member of the context they came in and hold the requester's
/// max version; they are answered by member index, without reading ids, while
/// the view's members in the context are still those the ACK was resolved
/// against, which applying the ACK's deltas cannot change when it has only
/// heartbeats (otherwise they are kept by id).
///
/// ```
/// use rumormill::Requests;
/// let none = Requests::default();
/// assert!(none.is_empty() && none.len() == 0);
/// ```
///
/// With the `serde` feature, reading requests back checks what resolving an ACK
/// guarantees: compact requests only with their context, member indices
/// ascending without repeats, no more indices than requests by id. Compact
/// requests name members by index in the context they came in; [`build_ack2`]
/// answers them so only while the view's members there hash the same (else by
/// id, or not at all), as it does for requests kept while the view changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(try_from = "RequestsForm"))]
pub struct Requests {
    /// By id: the full requests, then any compact ones kept by id.
    pub(crate) digests: Vec<Digest>,
    /// The context the compact ones came in, so they can be answered compactly.
    pub(crate) context: Option<Context>,
    /// The member index of each compact one kept by id: they are the last
    /// `indices.len()` digests, in the context's member order.
    pub(crate) indices: Vec<u32>,
    /// Compact requests kept by member index alone (index, the requester's max
    /// version), in member order, after the digests.
    pub(crate) by_index: Vec<(u32, Version)>,
}

/// [`Requests`] as serde reads them, before they are checked.
#[cfg(feature = "serde")]
#[derive(serde::Deserialize)]
struct RequestsForm {
    digests: Vec<Digest>,
    context: Option<Context>,
    indices: Vec<u32>,
    by_index: Vec<(u32, Version)>,
}

#[cfg(feature = "serde")]
impl TryFrom<RequestsForm> for Requests {
    type Error = &'static str;
    fn try_from(f: RequestsForm) -> Result<Self, Self::Error> {
        if f.context.is_none() && !(f.indices.is_empty() && f.by_index.is_empty()) {
            return Err("compact requests without their context");
        }
        if f.indices.len() > f.digests.len() {
            return Err("more member indices than requests by id");
        }
        let indices_ascend = f.indices.windows(2).all(|w| w[0] < w[1]);
        if !indices_ascend || !f.by_index.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err("member indices must ascend without repeats");
        }
        Ok(Requests { digests: f.digests, context: f.context, indices: f.indices, by_index: f.by_index })
    }
}

impl Requests {
    /// How many requests there are.
    pub fn len(&self) -> usize {
        self.digests.len() + self.by_index.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An ACK, resolved against the view: what to apply, and what to answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReceivedAck {
    /// Deltas to apply (before answering, as the reference does).
    pub deltas: Vec<Delta>,
    /// Requests to answer with [`build_ack2`].
    pub requests: Requests,
    /// The peer could not use our compact page of this range (its members differ):
    /// send it the next page of the full-page walk. Repeated resends walk every node.
    pub resend: Option<NodeRange>,
    /// Why the ACK's compact part could not be used, if it could not.
    pub context_error: Option<ContextError>,
}

/// An ACK2, resolved against the view.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ReceivedAck2 {
    /// Deltas to apply.
    pub deltas: Vec<Delta>,
    /// Why the ACK2's compact part could not be used, if it could not.
    pub context_error: Option<ContextError>,
}

/// What to do about one digest, by the reference's table.
enum Verdict {
    /// Ask for the node's fields newer than this (with our purge floor).
    Request(Version, Version),
    /// Send our fields newer than this.
    Send(Version),
    Skip,
}

/// The base version for a peer that holds `max` with purge floor `purged`: its
/// max version, or 0 when it is stale against our floor (it may hold keys that
/// were deleted and purged since, and must rebuild from the beginning).
fn base_for(local: &EndpointState, max: Version, purged: Version) -> Version {
    if local.purged() > max && local.purged() > purged { Version::ZERO } else { max }
}

/// `examineGossiper`, per digest `(node, rG, rV)` against our `(lG, lV)`.
fn examine(local: Option<&EndpointState>, d: &Remote) -> Verdict {
    let Some(l) = local else { return Verdict::Request(Version::ZERO, Version::ZERO) };
    match d.generation.cmp(&l.generation()) {
        Ordering::Greater => Verdict::Request(Version::ZERO, Version::ZERO),
        Ordering::Less => Verdict::Send(Version::ZERO),
        Ordering::Equal => match d.max_version.cmp(&l.max_version()) {
            Ordering::Equal => Verdict::Skip,
            Ordering::Greater => Verdict::Request(l.max_version(), l.purged()),
            Ordering::Less => Verdict::Send(base_for(l, d.max_version, d.purged)),
        },
    }
}

/// One digest of a page, next to this view's state of its node.
struct Entry<'p, 'v> {
    /// `None`: a hashed entry we could not match.
    node: Option<&'p NodeId>,
    remote: Remote,
    local: Option<(&'v NodeId, &'v EndpointState)>,
    reference: Ref,
}

/// What a digest says of a node (its id aside).
#[derive(Clone, Copy)]
struct Remote {
    generation: crate::Generation,
    max_version: Version,
    purged: Version,
}

impl From<&Digest> for Remote {
    fn from(d: &Digest) -> Self {
        Remote { generation: d.generation, max_version: d.max_version, purged: d.purged }
    }
}

/// A page lined up against the view.
struct Page<'p, 'v> {
    entries: Vec<Entry<'p, 'v>>,
    /// Nodes this view knows that the page covers but does not list: unknown to
    /// the sender, so pushed whole.
    unlisted: Vec<(&'v NodeId, &'v EndpointState)>,
    /// What compact references in the answer refer to.
    context: PageContext<'v>,
}

/// The index space of an answer's compact references.
enum PageContext<'v> {
    /// None: the answer names nodes by id.
    Ids,
    /// Members both ends agree on (a compact page).
    Agreed(Members<'v>),
    /// The sender's members, as fingerprinted in a hashed page.
    Hashed(Context),
}

/// Lines a page up against the view: a compact page by member index, a sorted page
/// by walking it and the view side by side, anything else by lookups.
fn resolve_page<'p, 'v>(view: &'v View, page: &'p DigestPage) -> Result<Page<'p, 'v>, ContextError>
where
    'v: 'p,
{
    let lookup = |d: &'p Digest| Entry {
        node: Some(&d.node),
        remote: Remote::from(d),
        local: view.nodes().get_key_value(&d.node),
        reference: Ref::Full,
    };
    match page {
        DigestPage::Listed(ds) => {
            let unlisted = if ds.is_empty() { view.iter().collect() } else { Vec::new() };
            Ok(Page { entries: ds.iter().map(lookup).collect(), unlisted, context: PageContext::Ids })
        }
        DigestPage::Range { range, digests } => {
            if !digests.windows(2).all(|w| w[0].node < w[1].node) {
                // not as the decoder delivers it: built by hand, so take the slow road
                let listed: BTreeSet<&NodeId> = digests.iter().map(|d| &d.node).collect();
                let unlisted = view.range(range).filter(|(id, _)| !listed.contains(id)).collect();
                return Ok(Page { entries: digests.iter().map(lookup).collect(), unlisted, context: PageContext::Ids });
            }
            let mut entries = Vec::with_capacity(digests.len());
            let mut unlisted = Vec::new();
            let mut mine = view.range(range).peekable();
            for d in digests {
                while let Some((id, s)) = mine.next_if(|(id, _)| *id < &d.node) {
                    unlisted.push((id, s));
                }
                let local = mine.next_if(|(id, _)| *id == &d.node);
                entries.push(Entry { node: Some(&d.node), remote: Remote::from(d), local, reference: Ref::Full });
            }
            unlisted.extend(mine);
            Ok(Page { entries, unlisted, context: PageContext::Ids })
        }
        DigestPage::Hashed(h) => Ok(resolve_hashed(view, h)),
        // (`handle_syn` answers these member by member, `answer_agreed`; lined up
        // here too so that tests can hold that to the general path)
        DigestPage::Compact(c) => {
            let members = resolve_compact(view, c)?;
            let versions = members.restored(&c.versions);
            let entries = (members.ids.iter().zip(members.states))
                .zip(versions)
                .enumerate()
                .map(|(i, ((id, s), max_version))| Entry {
                    node: Some(id),
                    remote: Remote { generation: s.generation(), max_version, purged: s.purged() },
                    local: Some((id, s)),
                    reference: Ref::Compact(i as u32),
                })
                .collect();
            Ok(Page { entries, unlisted: Vec::new(), context: PageContext::Agreed(members) })
        }
    }
}

/// Lines a hashed page up against the view by fingerprint. A fingerprint that two
/// entries share, or that two of our nodes share, matches nothing: its entries
/// are requested whole and our nodes pushed whole. A false match (one of our
/// nodes taking the fingerprint of a node we do not know) is caught by the
/// answer's check, which covers the ids we matched.
fn resolve_hashed<'p, 'v>(view: &'v View, h: &'p HashedDigest) -> Page<'p, 'v>
where
    'v: 'p,
{
    let (ids, states) = view.nodes().range(&h.context.range);
    let mine: Vec<(&NodeId, &EndpointState)> = ids.iter().zip(states).collect();
    let mut ours: Vec<(u32, usize)> =
        mine.iter().enumerate().map(|(i, (id, s))| (digest::fingerprint(h.salt, id, s.generation()), i)).collect();
    ours.sort_unstable();
    let mut theirs: Vec<(u32, usize)> = h.entries.iter().enumerate().map(|(i, e)| (e.fingerprint, i)).collect();
    theirs.sort_unstable();
    let unique = |list: &[(u32, usize)], k: usize| {
        let fp = list[k].0;
        (k == 0 || list[k - 1].0 != fp) && list.get(k + 1).is_none_or(|n| n.0 != fp)
    };
    let mut matched: Vec<Option<usize>> = alloc::vec![None; h.entries.len()];
    let mut used = alloc::vec![false; mine.len()];
    let (mut a, mut b) = (0, 0);
    while a < ours.len() && b < theirs.len() {
        match ours[a].0.cmp(&theirs[b].0) {
            Ordering::Less => a += 1,
            Ordering::Greater => b += 1,
            Ordering::Equal => {
                if unique(&ours, a) && unique(&theirs, b) {
                    matched[theirs[b].1] = Some(ours[a].1);
                    used[ours[a].1] = true;
                }
                a += 1;
                b += 1;
            }
        }
    }
    let entries = h
        .entries
        .iter()
        .zip(matched)
        .enumerate()
        .map(|(i, (e, m))| {
            let local = m.map(|k| mine[k]);
            Entry {
                node: local.map(|(id, _)| id),
                remote: Remote {
                    generation: local.map_or(crate::Generation(0), |(_, s)| s.generation()),
                    max_version: e.max_version,
                    purged: e.purged,
                },
                local,
                reference: Ref::Compact(i as u32),
            }
        })
        .collect();
    let unlisted = mine.iter().zip(used).filter(|(_, u)| !u).map(|(&m, _)| m).collect();
    Page { entries, unlisted, context: PageContext::Hashed(h.context.clone()) }
}

/// Answers a SYN.
///
/// For each digest the SYN lists, by the reference's table: a node we do not know,
/// or know at an older generation, is requested whole; one we know at a newer
/// generation is sent whole; at the same generation the side behind requests or
/// is sent what is newer than its max version; equal digests are skipped. A page
/// that covers an id range also gets every node we know in that range that it
/// does not list, whole; an empty listed page (a node in its shadow round) gets
/// every node we know. A compact page we cannot use is answered with an ACK that
/// asks for a full page of its range.
///
/// Requests take at most half the budget when there are deltas to send; deltas
/// fill the rest, scuttle-depth first, each node's fields in version order.
///
/// It takes nothing from the page: a member the page marks quiet is requested
/// like any other (a [`Gossiper`](crate::Gossiper) takes its heartbeat instead,
/// see [`CompactDigest::is_quiet`](crate::CompactDigest::is_quiet)).
pub fn handle_syn<R: rand_core::Rng + ?Sized>(view: &View, syn: &Syn, budget: Budget, rng: &mut R) -> Built<Ack> {
    answer_syn(view, syn, budget, rng, None)
}

/// [`handle_syn`], taking into `beats` (if given) the heartbeats of the quiet
/// members of a compact page this view is behind on by at most [`QUIET_RUN`]
/// versions (the local node's aside): they are not requested.
pub(crate) fn answer_syn<R: rand_core::Rng + ?Sized>(
    view: &View,
    syn: &Syn,
    budget: Budget,
    rng: &mut R,
    mut beats: Option<&mut Beats>,
) -> Built<Ack> {
    if let Some(b) = beats.as_deref_mut() {
        b.revision = view.revision();
    }
    if let DigestPage::Compact(c) = &syn.page {
        return match resolve_compact(view, c) {
            Ok(members) => {
                let take = beats.map(|b| (b, members.index_at(view.local_position())));
                answer_agreed(members, c, budget, rng, take)
            }
            Err(e) => {
                let ack = Ack { resend: Some(c.context.range.clone()), ..Ack::default() };
                Built { message: ack, left_out: 0, context_error: Some(e) }
            }
        };
    }
    match resolve_page(view, &syn.page) {
        Ok(page) => answer_page(page, budget, rng),
        // (only compact pages fail to resolve, and they are answered above)
        Err(e) => Built {
            message: Ack { resend: Some(NodeRange::FULL), ..Ack::default() },
            left_out: 0,
            context_error: Some(e),
        },
    }
}

/// [`handle_syn`] for any page, lined up against the view.
fn answer_page<R: rand_core::Rng + ?Sized>(page: Page<'_, '_>, budget: Budget, rng: &mut R) -> Built<Ack> {
    let context = page.context;
    let hashed = matches!(context, PageContext::Hashed(_));

    // sized for the worst case: growing them was a tenth of this function's time
    let listed = page.entries.len();
    let mut wanted: Vec<(u64, u64, Want<'_>)> = Vec::with_capacity(listed);
    let mut send: Vec<Candidate<'_>> = Vec::with_capacity(listed + page.unlisted.len());
    for e in page.entries {
        let Entry { node, remote: d, local, reference } = e;
        match examine(local.map(|(_, s)| s), &d) {
            Verdict::Skip => {}
            Verdict::Request(max_version, purged) => {
                let gap = match local {
                    Some((_, l)) if l.generation() == d.generation => d.max_version.0 - l.max_version().0,
                    _ => u64::MAX,
                };
                // A compact request carries no purge floor (the responder assumes its
                // own), so in a hashed page, where floors may differ, a node we hold
                // below the sender's floor is asked for whole.
                let behind_floor = d.purged > max_version && d.purged > purged;
                let want = match (reference, node) {
                    (Ref::Full, Some(node)) => {
                        Want::Full(Digest { node: node.clone(), generation: d.generation, max_version, purged })
                    }
                    (Ref::Compact(index), Some(node)) if !hashed || (max_version > Version::ZERO && !behind_floor) => {
                        Want::Compact { index, max_version, node }
                    }
                    (Ref::Compact(index), _) if hashed => Want::Whole(index),
                    // unmatched entries exist only in hashed pages
                    _ => continue,
                };
                wanted.push((gap, rng.next_u64(), want));
            }
            Verdict::Send(from) => {
                if let Some((node, state)) = local {
                    send.push(Candidate { node, state, from, reference });
                }
            }
        }
    }
    for (node, state) in page.unlisted {
        send.push(Candidate { node, state, from: Version::ZERO, reference: Ref::Full });
    }

    let compact = match &context {
        PageContext::Ids => None,
        PageContext::Agreed(m) => Some((&m.context, false)),
        PageContext::Hashed(c) => Some((c, true)),
    };
    let (mut room, request_room) = ack_room(budget, wanted.len(), send.len(), compact);

    let (picked, mut left_out) = pick_requests(wanted, |w| w.cost(), request_room, &mut room);
    let mut full_requests = Vec::new();
    let mut compact_requests: Vec<(CompactRequest, Version, &NodeId)> = Vec::with_capacity(picked.len());
    let mut whole: Vec<u32> = Vec::new();
    for want in picked {
        match want {
            Want::Full(request) => full_requests.push(request),
            Want::Compact { index, max_version, node } => {
                compact_requests.push((CompactRequest { index, max_version: max_version.0 as u16 }, max_version, node))
            }
            Want::Whole(index) => whole.push(index),
        }
    }
    if !full_requests.is_sorted_by(|a, b| a.node < b.node) {
        full_requests.sort_unstable_by(|a, b| a.node.cmp(&b.node));
    }
    if !compact_requests.is_sorted_by_key(|(r, _, _)| r.index) {
        compact_requests.sort_unstable_by_key(|(r, _, _)| r.index);
    }
    if !whole.is_sorted() {
        whole.sort_unstable();
    }

    let filled = delta::fill(send, &mut room, rng);
    left_out += filled.left_out;
    let (context, domain) = match context {
        PageContext::Ids => (None, ACK_CHECK),
        PageContext::Agreed(m) => (Some(m.context), ACK_CHECK),
        PageContext::Hashed(c) => (Some(c), ACK_HASHED_CHECK),
    };
    let parts = compact_requests
        .iter()
        .map(|(r, full, node)| (r.index, *full, *node))
        .chain(filled.compact.iter().zip(&filled.sources).map(|(d, (from, node))| (d.index, *from, *node)));
    // (`whole` is empty but for an answer to a hashed page)
    let check = context.as_ref().map_or(0, |c| check_of(domain, c.members, parts, &whole));
    let compact = context.map(|context| CompactAck {
        context,
        check,
        requests: compact_requests.into_iter().map(|(r, _, _)| r).collect(),
        deltas: filled.compact,
        whole: hashed.then_some(whole),
    });
    let ack = Ack { requests: full_requests, deltas: filled.full, compact, resend: None };
    Built { message: ack, left_out, context_error: None }
}

/// The room an ACK of `wanted` requests and `send` candidate deltas has for them
/// in `budget`, and how much of it requests may take (half, when there are deltas
/// to send). `compact` is the context of its compact part, and whether it answers
/// a hashed page (which adds the list of members asked for whole). The fixed cost
/// counts the lists at their largest possible size.
fn ack_room(budget: Budget, wanted: usize, send: usize, compact: Option<(&Context, bool)>) -> (usize, usize) {
    let counts = varint_len(wanted as u64) + varint_len(send as u64);
    let mut fixed = counts + 2;
    if let Some((context, hashed)) = compact {
        fixed += context_len(context) + 8 + counts + if hashed { varint_len(wanted as u64) } else { 0 };
    }
    let room = budget.body().saturating_sub(fixed);
    (room, if send == 0 { room } else { room / 2 })
}

/// The requests that fit in `request_room` (taken from `room` too), in the order
/// given, and how many were left out. `wanted` holds (gap, tie-break, request):
/// when not all fit, the largest gaps go first, ties by the tie-break.
fn pick_requests<W>(
    mut wanted: Vec<(u64, u64, W)>,
    cost: impl Fn(&W) -> usize,
    mut request_room: usize,
    room: &mut usize,
) -> (Vec<W>, usize) {
    // Ranking only decides which requests are left out: skip it when all fit (the
    // callers put them in wire order either way).
    let all_fit = wanted.iter().map(|(_, _, w)| cost(w)).sum::<usize>() <= request_room;
    if !all_fit {
        wanted.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    }
    let mut left_out = 0;
    // (collected into the list's own allocation)
    let picked = (wanted.into_iter())
        .filter_map(|(_, _, want)| {
            let c = cost(&want);
            if c > request_room {
                left_out += 1;
                return None;
            }
            request_room -= c;
            *room -= c;
            Some(want)
        })
        .collect();
    (picked, left_out)
}

/// [`handle_syn`] for a compact page of members we agree on, member by member:
/// the same answer as the general path (which the tests check) without lining
/// entries up, the common case once a cluster has converged. Both ends hold each
/// member at the same generation, and our purge floor stands for the sender's,
/// so each member is requested, sent from the sender's max version, or skipped.
fn answer_agreed<R: rand_core::Rng + ?Sized>(
    members: Members<'_>,
    page: &CompactDigest,
    budget: Budget,
    rng: &mut R,
    take: Option<(&mut Beats, Option<u32>)>,
) -> Built<Ack> {
    let (ids, states, versions) = (members.ids, members.states, &page.versions[..]);
    let n = states.len().min(versions.len());
    // the sender's max version of member `i` (the page's check passed)
    let theirs = |i: u32| members.restored_at(versions, i as usize);
    // Which members they are ahead on (listed from the front) and which behind
    // (from the back), without a branch per member: in a converged cluster it is
    // a coin toss for each, and mispredicting half of them was a tenth of this
    // function's time. (The two ends never cross: a + b <= i < n.)
    let mut split = alloc::vec![0u32; n];
    let (mut a, mut b) = (0, 0);
    for i in 0..n as u32 {
        let (ours, theirs) = (states[i as usize].max_version(), theirs(i));
        split[a] = i;
        split[n - 1 - b] = i;
        a += usize::from(theirs > ours);
        b += usize::from(theirs < ours);
    }
    if let Some((beats, local)) = take {
        a = take_quiet(&mut split[..a], &members, page, local, beats);
    }
    let (ahead, behind) = (&split[..a], &split[n - b..]);
    let send: Vec<Candidate<'_>> = (behind.iter().rev())
        .map(|&i| Candidate {
            node: &ids[i as usize],
            state: &states[i as usize],
            from: theirs(i),
            reference: Ref::Compact(i),
        })
        .collect();
    let (mut room, request_room) = ack_room(budget, ahead.len(), send.len(), Some((&members.context, false)));
    let ours = |i: u32| states[i as usize].max_version();
    let cost = |i: u32| varint_len(u64::from(i)) + 2;
    let wanted_cost: usize = ahead.iter().map(|&i| cost(i)).sum();
    // Each request draws a tie-break, in index order, used only to rank them
    // when not all fit; drawn either way, so that the node's later random
    // choices do not depend on whether they fit (and no list is made for them
    // when they do, the usual case).
    let ranked;
    let (picked, mut left_out): (&[u32], usize) = if wanted_cost <= request_room {
        ahead.iter().for_each(|_| _ = rng.next_u64());
        room -= wanted_cost;
        (ahead, 0)
    } else {
        // (gap, tie-break, index)
        let wanted: Vec<(u64, u64, u32)> =
            ahead.iter().map(|&i| (theirs(i).0 - ours(i).0, rng.next_u64(), i)).collect();
        let (mut picked, left_out) = pick_requests(wanted, |&i| cost(i), request_room, &mut room);
        picked.sort_unstable();
        ranked = picked;
        (&ranked, left_out)
    };
    let filled = delta::fill(send, &mut room, rng);
    left_out += filled.left_out;
    let parts = (picked.iter().map(|&i| (i, ours(i), &ids[i as usize])))
        .chain(filled.compact.iter().zip(&filled.sources).map(|(d, (from, node))| (d.index, *from, *node)));
    let check = check_of(ACK_CHECK, members.context.members, parts, &[]);
    let requests = picked.iter().map(|&index| CompactRequest { index, max_version: ours(index).0 as u16 }).collect();
    let compact = CompactAck { context: members.context, check, requests, deltas: filled.compact, whole: None };
    let ack = Ack { requests: Vec::new(), deltas: filled.full, compact: Some(compact), resend: None };
    Built { message: ack, left_out, context_error: None }
}

/// Moves the heartbeats of the quiet members among `ahead` (members the page's
/// sender is ahead on) that this view misses nothing else of into `beats`, and
/// keeps the others at the front of `ahead`. Returns how many are kept.
///
/// This view holds member `i` at `ours`, the sender at `theirs > ours`, and both
/// at the same generation and purge floor (the page's members hash and check
/// passed, so a request would be answered from `ours`). A quiet member has no
/// value above `theirs - QUIET_RUN`; when `ours` is at least that, the sender's
/// fields newer than `ours` are its heartbeat alone: the delta a request would
/// bring is exactly this beat. (A member held at version 0 is requested: a
/// delta from 0 stands for a whole state.)
fn take_quiet(
    ahead: &mut [u32],
    members: &Members<'_>,
    page: &CompactDigest,
    local: Option<u32>,
    beats: &mut Beats,
) -> usize {
    let mut kept = 0;
    beats.list.reserve(ahead.len());
    for k in 0..ahead.len() {
        let i = ahead[k];
        let state = &members.states[i as usize];
        let (ours, theirs) = (state.max_version(), members.restored_at(&page.versions, i as usize));
        let taken = page.is_quiet(i as usize)
            && Some(i) != local
            && ours.0 >= 1
            && ours.0.saturating_add(QUIET_RUN) >= theirs.0;
        if taken {
            beats.list.push(Beat { position: members.offset + i as usize, heartbeat: theirs });
        } else {
            ahead[kept] = i;
            kept += 1;
        }
    }
    kept
}

/// A request of an ACK in the making.
enum Want<'v> {
    /// By id.
    Full(Digest),
    /// By member index, with our max version (and, for the check, the node we
    /// took the member for).
    Compact { index: u32, max_version: Version, node: &'v NodeId },
    /// A hashed page's member we could not match: its whole state.
    Whole(u32),
}

impl Want<'_> {
    /// Its encoded length.
    fn cost(&self) -> usize {
        match self {
            Want::Full(request) => digest_len(request),
            Want::Compact { index, .. } => varint_len(u64::from(*index)) + 2,
            Want::Whole(index) => varint_len(u64::from(*index)),
        }
    }
}

/// The check of a compact ACK or ACK2, computed as its parts go by: a hash of the
/// full values its truncated ones stand for (each request's max version, each
/// delta's `from`, by member index), so the receiver can tell whether it restored
/// them right. The check of an ACK answering a hashed page also covers the id the
/// responder took each referenced member for, so that a fingerprint that matched
/// the wrong node fails it, and the indices it asks for whole.
struct Check {
    h: Hasher64x4,
    ids: bool,
}

impl Check {
    fn new(domain: u64, members: u64) -> Check {
        let mut h = Hasher64x4::new(domain);
        h.u64(members);
        Check { h, ids: domain == ACK_HASHED_CHECK }
    }

    /// A request (its max version) or a delta (its `from`) about member `index`.
    #[inline]
    fn add(&mut self, index: u32, v: Version, node: &NodeId) {
        self.h.u64(u64::from(index));
        self.h.u64(v.0);
        if self.ids {
            self.h.bytes(node.as_bytes());
        }
    }

    /// A request for member `index` whole (hashed answers only).
    fn whole(&mut self, index: u32) {
        self.h.u64(u64::from(index));
    }

    fn finish(&self) -> u64 {
        self.h.finish()
    }
}

/// The check of a compact ACK or ACK2 (see [`Check`]) over its requests and
/// deltas (member index, full version, member), and for an answer to a hashed
/// page the indices it asks for whole.
fn check_of<'a>(
    domain: u64,
    members: u64,
    parts: impl Iterator<Item = (u32, Version, &'a NodeId)>,
    whole: &[u32],
) -> u64 {
    let mut check = Check::new(domain, members);
    for (index, v, node) in parts {
        check.add(index, v, node);
    }
    for &index in whole {
        check.whole(index);
    }
    check.finish()
}

/// Restores a compact delta into a full one, relative to this view's state of the
/// member (`from` already restored). `None` if a version would overflow.
fn restore_delta(node: &NodeId, state: &EndpointState, from: Version, d: &CompactDelta) -> Option<Delta> {
    let heartbeat = match d.heartbeat {
        None => None,
        Some(Offset::Above(n)) => Some(Version(from.0.checked_add(n)?.checked_add(1)?)),
        Some(Offset::AtOrBelow(n)) => Some(Version(from.0.checked_sub(n)?)),
    };
    let values = d
        .fields
        .iter()
        .map(|CompactField { key, offset, value }| {
            Some((key.clone(), VersionedValue { value: value.clone(), version: Version(from.0.checked_add(*offset)?) }))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Delta { node: node.clone(), generation: state.generation(), from, purged: d.purged, heartbeat, values })
}

/// A compact delta that carries nothing but a heartbeat of a member this view
/// holds at the sender's purge floor and no lower than `from`: merged, it can only
/// raise the heartbeat. Once a cluster has converged nearly every delta is one;
/// the driver applies them by position ([`View::apply_beats`]) instead of as
/// [`Delta`]s looked up by id, with the same result as [`View::apply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Beat {
    /// The member's position among the view's nodes.
    pub(crate) position: usize,
    /// The heartbeat carried.
    pub(crate) heartbeat: Version,
}

/// Beats split off an ACK or ACK2 or taken from a SYN, with the revision of the
/// view they were resolved against (their positions hold only for it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Beats {
    pub(crate) revision: u64,
    pub(crate) list: Vec<Beat>,
}

/// The heartbeat of `d` if it is a beat for `state` (see [`Beat`]): exactly the
/// case where [`View::apply`] would raise the heartbeat and nothing else.
fn beat_of(state: &EndpointState, from: Version, d: &CompactDelta) -> Option<Version> {
    if !d.fields.is_empty() || from == Version::ZERO || d.purged != state.purged() || from > state.max_version() {
        return None;
    }
    match d.heartbeat {
        Some(Offset::Above(n)) => Some(Version(from.0.checked_add(n)?.checked_add(1)?)),
        _ => None,
    }
}

/// Compact deltas restored against this view: those to apply as deltas, and the
/// beats split off them (if asked for).
#[derive(Default)]
struct Restored {
    deltas: Vec<Delta>,
    beats: Vec<Beat>,
}

impl Restored {
    /// Moves the deltas to `deltas` and the beats to `beats` (if given).
    fn into(self, deltas: &mut Vec<Delta>, beats: Option<&mut Beats>) {
        append(deltas, self.deltas);
        if let Some(b) = beats {
            append(&mut b.list, self.beats);
        }
    }
}

/// Appends `more` to `list`, moving it whole when `list` is empty (a copy into a
/// new list was an allocation per message).
fn append<T>(list: &mut Vec<T>, mut more: Vec<T>) {
    if list.is_empty() {
        *list = more;
    } else {
        list.append(&mut more);
    }
}

/// Restores compact deltas against this view's states of their members, with
/// the beats of members other than the local node split off if `local` (its
/// position in the view) is given. Each delta's member and `from` go to
/// `check`.
fn restore_deltas(
    members: &Members<'_>,
    deltas: &[CompactDelta],
    local: Option<usize>,
    check: &mut Check,
) -> Result<Restored, ContextError> {
    let mut out = Restored {
        deltas: Vec::with_capacity(if local.is_some() { 0 } else { deltas.len() }),
        beats: Vec::with_capacity(if local.is_some() { deltas.len() } else { 0 }),
    };
    // by index: comparing each member's id with ours read a cold line per delta
    let local_index = local.map(|position| members.index_at(position));
    for d in deltas {
        let (node, state) = members.get(d.index)?;
        let from = match d.from {
            None => Version::ZERO,
            Some(low) => restore(low, state.max_version()),
        };
        check.add(d.index, from, node);
        if local_index.is_some_and(|local| local != Some(d.index))
            && let Some(heartbeat) = beat_of(state, from, d)
        {
            out.beats.push(Beat { position: members.offset + d.index as usize, heartbeat });
            continue;
        }
        out.deltas.push(restore_delta(node, state, from, d).ok_or(ContextError::CheckFailed)?);
    }
    Ok(out)
}

/// Resolves an ACK against the view: the deltas to apply and the requests to
/// answer. A compact part whose members differ from ours, or whose check fails,
/// is dropped whole (reported in `context_error`); the full parts still count.
pub fn handle_ack(view: &View, ack: &Ack) -> ReceivedAck {
    resolve_ack(view, ack, None)
}

/// [`handle_ack`], with the beats of the compact part split off into `beats` if
/// given (see [`Beat`]).
pub(crate) fn resolve_ack(view: &View, ack: &Ack, mut beats: Option<&mut Beats>) -> ReceivedAck {
    let mut out = ReceivedAck {
        deltas: ack.deltas.clone(),
        requests: Requests { digests: ack.requests.clone(), ..Requests::default() },
        resend: ack.resend.clone(),
        context_error: None,
    };
    if let Some(b) = beats.as_deref_mut() {
        b.revision = view.revision();
    }
    if let Some(c) = &ack.compact {
        let local = beats.is_some().then(|| view.local_position());
        match resolve_compact_ack(view, c, local) {
            Ok(ResolvedAck { members, wants, by_id, restored }) => {
                // heartbeats of members cannot change the members (values could:
                // a removal record makes a Gossiper forget nodes)
                let only_beats = ack.deltas.is_empty() && restored.deltas.iter().all(|d| d.values.is_empty());
                out.requests.digests.extend(by_id);
                restored.into(&mut out.deltas, beats);
                // (an answer to a hashed page has only requests by id)
                if c.whole.is_none() {
                    if only_beats {
                        // nothing to apply but beats: the members stay as they are
                        out.requests.by_index = wants;
                    } else {
                        out.requests.indices = wants.iter().map(|&(index, _)| index).collect();
                        out.requests.digests.extend(members.digests(wants.into_iter()));
                    }
                    out.requests.context = Some(c.context.clone());
                }
            }
            Err(e) => out.context_error = Some(e),
        }
    }
    out
}

/// Resolves the compact part of an ACK: its requests and its restored deltas
/// (beats split off if `local`, the local node's position in the view, is
/// given).
fn resolve_compact_ack<'v>(
    view: &'v View,
    c: &CompactAck,
    local: Option<usize>,
) -> Result<ResolvedAck<'v>, ContextError> {
    let members = Members::verify(view, &c.context)?;
    let hashed = c.whole.is_some();
    let mut check = Check::new(if hashed { ACK_HASHED_CHECK } else { ACK_CHECK }, c.context.members);
    let mut wants = Vec::with_capacity(c.requests.len());
    for r in &c.requests {
        let (node, state) = members.get(r.index)?;
        let max_version = restore(r.max_version, state.max_version());
        check.add(r.index, max_version, node);
        wants.push((r.index, max_version));
    }
    let restored = restore_deltas(&members, &c.deltas, local, &mut check)?;
    for &index in c.whole.iter().flatten() {
        check.whole(index);
    }
    if check.finish() != c.check {
        return Err(ContextError::CheckFailed);
    }
    let mut by_id = Vec::new();
    if hashed {
        // the peer does not share our members: these are answered by id
        by_id = members.digests(wants.drain(..));
        for &index in c.whole.iter().flatten() {
            let (node, state) = members.get(index)?;
            by_id.push(Digest {
                node: node.clone(),
                generation: state.generation(),
                max_version: Version::ZERO,
                purged: Version::ZERO,
            });
        }
    }
    Ok(ResolvedAck { members, wants, by_id, restored })
}

/// The compact part of an ACK, resolved: compact requests (member index, the
/// requester's max version), requests by id, and the restored deltas.
struct ResolvedAck<'v> {
    members: Members<'v>,
    wants: Vec<(u32, Version)>,
    by_id: Vec<Digest>,
    restored: Restored,
}

/// Builds the ACK2 answering `requests` (call it after applying the ACK's deltas,
/// as the reference does).
///
/// For each request `(node, g, v)`: with Scylla's generation guard, a node we know
/// at an older generation than `g` is skipped and one we know at a newer one is
/// sent whole; otherwise we send our fields newer than `v` (from 0 if the
/// requester is stale against our purge floor). An empty ACK2 is still an ACK2.
/// It has a compact part only if some requests came compact.
pub fn build_ack2<R: rand_core::Rng + ?Sized>(
    view: &View,
    requests: &Requests,
    budget: Budget,
    rng: &mut R,
) -> Built<Ack2> {
    // Answer compactly only if our members of the context are still what they were
    // (and not at all when nothing was asked compactly: an empty compact part is
    // 19 bytes of nothing, in most ACK2s of a steady cluster).
    let compact_asked = !requests.indices.is_empty() || !requests.by_index.is_empty();
    let members = (requests.context.as_ref().filter(|_| compact_asked))
        .map(|c| Members::current(view, &c.range))
        .filter(|m| requests.context.as_ref().is_some_and(|c| c.members == m.context.members));
    let mut send = Vec::with_capacity(requests.len());
    let first_compact = requests.digests.len() - requests.indices.len().min(requests.digests.len());
    for (i, r) in requests.digests.iter().enumerate() {
        // a compact request names its member by index: with the members unchanged,
        // no search is needed
        let known = match (&members, i.checked_sub(first_compact).and_then(|j| requests.indices.get(j))) {
            (Some(m), Some(&index)) => m.get(index).ok().filter(|(id, _)| **id == r.node).map(|e| (e, Some(index))),
            _ => None,
        };
        let ((node, state), index) = match known {
            Some(found) => found,
            None => match view.nodes().get_key_value(&r.node) {
                Some(e) => (e, members.as_ref().and_then(|m| m.index_of(&r.node))),
                None => continue,
            },
        };
        let from = match state.generation().cmp(&r.generation) {
            Ordering::Less => continue,
            Ordering::Greater => Version::ZERO,
            Ordering::Equal => base_for(state, r.max_version, r.purged),
        };
        let reference = index.map_or(Ref::Full, Ref::Compact);
        send.push(Candidate { node, state, from, reference });
    }
    // Compact requests by index alone: the same generation as ours and no purge
    // floor (the requester's is ours), as resolved; without our members of then,
    // they cannot be told apart and are left out (the requester asks again).
    let mut unanswered = 0;
    match &members {
        Some(m) => {
            for &(index, max_version) in &requests.by_index {
                let Ok((node, state)) = m.get(index) else {
                    unanswered += 1;
                    continue;
                };
                let from = base_for(state, max_version, state.purged());
                send.push(Candidate { node, state, from, reference: Ref::Compact(index) });
            }
        }
        None => unanswered = requests.by_index.len(),
    }
    let n = send.len() as u64;
    let mut fixed = varint_len(n) + 1;
    if let Some(m) = &members {
        fixed += context_len(&m.context) + 8 + varint_len(n);
    }
    let mut room = budget.body().saturating_sub(fixed);
    let filled = delta::fill(send, &mut room, rng);
    let compact = members.map(|m| {
        let parts = filled.compact.iter().zip(&filled.sources).map(|(d, (from, node))| (d.index, *from, *node));
        let check = check_of(ACK2_CHECK, m.context.members, parts, &[]);
        CompactDeltas { context: m.context.clone(), check, deltas: filled.compact }
    });
    Built {
        message: Ack2 { deltas: filled.full, compact },
        left_out: filled.left_out + unanswered,
        context_error: None,
    }
}

/// Resolves an ACK2 against the view: the deltas to apply.
pub fn handle_ack2(view: &View, ack2: &Ack2) -> ReceivedAck2 {
    resolve_ack2(view, ack2, None)
}

/// [`handle_ack2`], with the beats of the compact part split off into `beats` if
/// given (see [`Beat`]).
pub(crate) fn resolve_ack2(view: &View, ack2: &Ack2, mut beats: Option<&mut Beats>) -> ReceivedAck2 {
    let mut out = ReceivedAck2 { deltas: ack2.deltas.clone(), context_error: None };
    if let Some(b) = beats.as_deref_mut() {
        b.revision = view.revision();
    }
    if let Some(c) = &ack2.compact {
        let local = beats.is_some().then(|| view.local_position());
        let resolved = Members::verify(view, &c.context).and_then(|m| {
            let mut check = Check::new(ACK2_CHECK, c.context.members);
            let restored = restore_deltas(&m, &c.deltas, local, &mut check)?;
            if check.finish() != c.check {
                return Err(ContextError::CheckFailed);
            }
            Ok(restored)
        });
        match resolved {
            Ok(restored) => restored.into(&mut out.deltas, beats),
            Err(e) => out.context_error = Some(e),
        }
    }
    out
}

#[cfg(test)]
mod hashed_tests;

#[cfg(test)]
mod agreed_tests;
#[cfg(test)]
mod beat_tests;
#[cfg(test)]
mod quiet_tests;
#[cfg(test)]
mod request_tests;
