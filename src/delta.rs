//! Filling deltas into a byte budget: scuttle-depth order and the prefix rule.

use alloc::vec::Vec;
use smallvec::SmallVec;

use crate::endpoint::Field;
use crate::message::{CompactField, Offset};
use crate::wire::{field_len, node_id_len, varint_len};
use crate::{CompactDelta, Delta, EndpointState, NodeId, Version};

/// How a delta names its node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ref {
    /// By id and generation.
    Full,
    /// By index within an agreed context.
    Compact(u32),
}

/// A node some peer should get fields of: those newer than `from`.
pub(crate) struct Candidate<'a> {
    pub(crate) node: &'a NodeId,
    pub(crate) state: &'a EndpointState,
    pub(crate) from: Version,
    pub(crate) reference: Ref,
}

/// Deltas that fit, and how many candidates did not fit whole.
#[derive(Default)]
pub(crate) struct Filled<'a> {
    pub(crate) full: Vec<Delta>,
    pub(crate) compact: Vec<CompactDelta>,
    /// For each compact delta, its full `from` and its node (a compact message's
    /// check covers them; the wire carries neither).
    pub(crate) sources: Vec<(Version, &'a NodeId)>,
    /// Candidates cut short or left out for lack of room.
    pub(crate) left_out: usize,
}

/// Whether a candidate's only field past `from` is (at most) its heartbeat, the
/// common case once a cluster has converged: then the heartbeat is the delta.
fn heartbeat_only(c: &Candidate<'_>) -> bool {
    c.state.values_max() <= c.from
}

/// The heartbeat a candidate sends when it sends nothing else.
fn sendable_heartbeat(c: &Candidate<'_>) -> Option<Offset> {
    let hb = c.state.heartbeat();
    (hb > c.from && hb <= c.state.max_version()).then(|| above(c.from, hb))
}

#[inline]
fn head_len(c: &Candidate<'_>, hb: Option<Offset>, values: usize) -> usize {
    let reference = match c.reference {
        Ref::Full => node_id_len(c.node) + varint_len(c.state.generation().0),
        // an upper bound: the wire sends the gap to the previous index
        Ref::Compact(i) => varint_len(u64::from(i)),
    };
    let from = match (c.reference, c.from.0) {
        (_, 0) => 0,
        (Ref::Full, f) => varint_len(f),
        (Ref::Compact(_), _) => 2,
    };
    reference + crate::wire::delta_head_len(from, c.state.purged(), hb, values)
}

fn above(from: Version, v: Version) -> Offset {
    Offset::Above(v.0 - from.0 - 1)
}

/// Fills as many candidates as fit in `room` bytes, taking from `room` what it
/// uses.
///
/// Order is scuttle-depth: the candidates missing the most fields first, ties in
/// the order of `tiebreak` (drawn from the caller's RNG). Each candidate's fields
/// go in ascending version order and stop at the first that does not fit, so a
/// receiver never gets a field without every older one (the heartbeat is a field
/// like any other here). A heartbeat at or below `from` carries nothing new and
/// is attached, as the reference does, only to a delta that has something else.
pub(crate) fn fill<'a, R: rand_core::Rng + ?Sized>(
    cands: Vec<Candidate<'a>>,
    room: &mut usize,
    rng: &mut R,
) -> Filled<'a> {
    // Ranking only decides what is left out: when every candidate fits whole, take
    // them in the order given, without drawing tie-breaks or sorting.
    // (Stops measuring at the first candidate past the room: a large page would
    // otherwise list every field of every candidate only to learn it must rank.)
    let mut whole_sum = 0usize;
    let mut fits: Vec<(usize, u64, usize)> = Vec::with_capacity(cands.len());
    for (i, c) in cands.iter().enumerate() {
        let len = whole_len(c);
        whole_sum += len;
        if whole_sum > *room {
            break;
        }
        if len > 0 {
            fits.push((len, 0, i));
        }
    }
    // (when all fit, each entry carries its whole length)
    let all_fit = whole_sum <= *room;
    let ranked: Vec<(usize, u64, usize)> = if all_fit {
        fits
    } else {
        // rank light keys (missing fields, tie-break, index); build field lists
        // only for the candidates visited
        let mut r: Vec<(usize, u64, usize)> = cands
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let missing = c.state.count_after(c.from);
                (missing > 0).then(|| (missing, rng.next_u64(), i))
            })
            .collect();
        r.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        r
    };
    let mut out = Filled {
        compact: Vec::with_capacity(ranked.len()),
        sources: Vec::with_capacity(ranked.len()),
        ..Filled::default()
    };
    for &(whole, _, i) in &ranked {
        let c = &cands[i];
        if heartbeat_only(c)
            && let Some(hb) = sendable_heartbeat(c)
        {
            // the steady-state case, without listing fields
            let len = if all_fit { whole } else { head_len(c, Some(hb), 0) };
            if len > *room {
                out.left_out += 1;
                continue;
            }
            *room -= len;
            push(c, Some(hb), core::iter::empty(), &mut out);
            continue;
        }
        let fields = c.state.fields_after(c.from);
        let mut hb: Option<Offset> = None;
        let mut values: SmallVec<[(usize, u64); 8]> = SmallVec::new(); // (index in fields, gap)
        let mut values_len = 0usize;
        let mut prev = c.from;
        let mut taken = 0usize;
        for (i, f) in fields.iter().enumerate() {
            let (next_hb, next_values_len, gap) = match f {
                Field::Heartbeat(v) => (Some(above(c.from, *v)), values_len, None),
                // two values at one version (only a misbehaving owner makes them)
                // cannot be sent in ascending order: stop, as if out of room
                Field::Value(_, vv) if vv.version <= prev => break,
                Field::Value(k, vv) => {
                    let gap = vv.version.0 - prev.0 - 1;
                    (hb, values_len + field_len(k, gap, &vv.value), Some(gap))
                }
            };
            let count = values.len() + usize::from(gap.is_some());
            if head_len(c, next_hb, count) + next_values_len > *room {
                break;
            }
            hb = next_hb;
            values_len = next_values_len;
            if let (Some(gap), Field::Value(_, vv)) = (gap, f) {
                values.push((i, gap));
                prev = vv.version;
            }
            taken += 1;
        }
        if taken == 0 {
            out.left_out += 1;
            continue;
        }
        if taken < fields.len() {
            out.left_out += 1;
        }
        // The planted bug of the `mutant` feature: the reference's rule of always
        // attaching the current heartbeat, even to a delta cut short, which raises
        // the receiver's max version past fields it never got.
        #[cfg(feature = "mutant")]
        if hb.is_none() && c.state.heartbeat() > c.from && c.state.heartbeat() <= c.state.max_version() {
            let attached = Some(above(c.from, c.state.heartbeat()));
            if head_len(c, attached, values.len()) + values_len <= *room {
                hb = attached;
            }
        }
        let stale_hb = c.state.heartbeat();
        if hb.is_none() && stale_hb > Version::ZERO && stale_hb <= c.from {
            let with_stale = Some(Offset::AtOrBelow(c.from.0 - stale_hb.0));
            if head_len(c, with_stale, values.len()) + values_len <= *room {
                hb = with_stale;
            }
        }
        *room -= head_len(c, hb, values.len()) + values_len;

        let picked = values.iter().map(|(i, _)| match fields[*i] {
            Field::Value(k, vv) => (k, vv),
            Field::Heartbeat(_) => unreachable!("only values are recorded"),
        });
        push(c, hb, picked, &mut out);
    }
    if !out.full.is_sorted_by(|a, b| a.node < b.node) {
        out.full.sort_unstable_by(|a, b| a.node.cmp(&b.node));
    }
    if !out.compact.is_sorted_by_key(|d| d.index) {
        // (ranked by missing fields: back to wire order, sources alongside)
        let mut pairs: Vec<_> =
            core::mem::take(&mut out.compact).into_iter().zip(core::mem::take(&mut out.sources)).collect();
        pairs.sort_unstable_by_key(|(d, _)| d.index);
        (out.compact, out.sources) = pairs.into_iter().unzip();
    }
    out
}

/// Adds a candidate's delta with heartbeat `hb` and values `picked`.
fn push<'a, 'v>(
    c: &Candidate<'a>,
    hb: Option<Offset>,
    picked: impl Iterator<Item = (&'v crate::Key, &'v crate::VersionedValue)>,
    out: &mut Filled<'a>,
) {
    match c.reference {
        Ref::Full => out.full.push(Delta {
            node: c.node.clone(),
            generation: c.state.generation(),
            from: c.from,
            purged: c.state.purged(),
            heartbeat: hb.map(|o| match o {
                Offset::Above(n) => Version(c.from.0 + n + 1),
                Offset::AtOrBelow(n) => Version(c.from.0 - n),
            }),
            values: picked.map(|(k, vv)| (k.clone(), vv.clone())).collect(),
        }),
        Ref::Compact(index) => {
            out.compact.push(CompactDelta {
                index,
                from: (c.from != Version::ZERO).then_some(c.from.0 as u16),
                purged: c.state.purged(),
                heartbeat: hb,
                fields: picked
                    .map(|(k, vv)| CompactField {
                        key: k.clone(),
                        offset: vv.version.0 - c.from.0,
                        value: vv.value.clone(),
                    })
                    .collect(),
            });
            out.sources.push((c.from, c.node));
        }
    }
}

/// The encoded length of a candidate's whole delta (every field it is missing, and
/// a stale heartbeat), or 0 if it is missing nothing.
fn whole_len(c: &Candidate<'_>) -> usize {
    if heartbeat_only(c)
        && let Some(hb) = sendable_heartbeat(c)
    {
        return head_len(c, Some(hb), 0);
    }
    let fields = c.state.fields_after(c.from);
    if fields.is_empty() {
        return 0;
    }
    let mut hb = None;
    let mut values = 0usize;
    let mut len = 0usize;
    let mut prev = c.from;
    for f in &fields {
        match f {
            Field::Heartbeat(v) => hb = Some(above(c.from, *v)),
            Field::Value(k, vv) => {
                len += field_len(k, vv.version.0.saturating_sub(prev.0).saturating_sub(1), &vv.value);
                prev = vv.version;
                values += 1;
            }
        }
    }
    let stale = c.state.heartbeat();
    if hb.is_none() && stale > Version::ZERO && stale <= c.from {
        hb = Some(Offset::AtOrBelow(c.from.0 - stale.0));
    }
    head_len(c, hb, values) + len
}
