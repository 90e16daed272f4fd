//! Wire format v1: encoding, decoding and exact sizes. `docs/wire.md` describes it
//! byte by byte.
//!
//! Decoding is strict: it accepts exactly the bytes the encoder produces (no
//! overlong varints, lists in their canonical order, no unused flag bits), so a
//! message that decodes re-encodes to the same bytes.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use crate::message::{CompactField, CompactRequest, HashedEntry, Offset};
use crate::{
    Ack, Ack2, ClusterName, CompactAck, CompactDelta, CompactDeltas, CompactDigest, Context, DecodeError, Delta,
    Digest, DigestPage, Echo, Envelope, Generation, HashedDigest, Header, Key, Message, NodeId, NodeRange, Syn, Value,
    Version, VersionedValue,
};

/// First bytes of every message.
pub const MAGIC: [u8; 2] = *b"RM";
/// The wire format version this crate writes and reads.
pub const WIRE_VERSION: u8 = 1;

const KIND_SYN: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_ACK2: u8 = 3;
const KIND_ECHO: u8 = 4;
const KIND_ECHO_REPLY: u8 = 5;
const KIND_SHUTDOWN: u8 = 6;

const PAGE_LISTED: u8 = 0;
const PAGE_RANGE: u8 = 1;
const PAGE_COMPACT: u8 = 2;
const PAGE_HASHED: u8 = 3;

/// Tags of an ACK's compact part: absent, over agreed members, answering a hashed page.
const ACK_COMPACT_NONE: u8 = 0;
const ACK_COMPACT_AGREED: u8 = 1;
const ACK_COMPACT_HASHED: u8 = 2;

const FLAG_FROM: u8 = 1;
const FLAG_HEARTBEAT: u8 = 2;
const FLAG_PURGED: u8 = 4;
const FLAG_STALE_HEARTBEAT: u8 = 8;
const FLAGS_KNOWN: u8 = FLAG_FROM | FLAG_HEARTBEAT | FLAG_PURGED | FLAG_STALE_HEARTBEAT;

/// Encoded length of `v` as a LEB128 varint.
pub(crate) const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded length of a length-prefixed node id.
pub(crate) fn node_id_len(id: &NodeId) -> usize {
    1 + id.as_bytes().len()
}

pub(crate) fn key_len(key: &Key) -> usize {
    match key.well_known_code() {
        Some(_) => 2,
        None => 1 + key.as_str().len(),
    }
}

pub(crate) fn value_len(value: &Option<Value>) -> usize {
    match value {
        None => 1,
        Some(v) => varint_len(v.len() as u64 + 1) + v.len(),
    }
}

fn opt_id_len(id: Option<&NodeId>) -> usize {
    id.map_or(1, node_id_len)
}

pub(crate) fn range_len(r: &NodeRange) -> usize {
    opt_id_len(r.start()) + opt_id_len(r.end())
}

pub(crate) fn context_len(c: &Context) -> usize {
    range_len(&c.range) + 8
}

/// Encoded length of one digest entry (also of one full request).
pub(crate) fn digest_len(d: &Digest) -> usize {
    node_id_len(&d.node) + varint_len(d.generation.0) + varint_len(d.max_version.0) + varint_len(d.purged.0)
}

fn heartbeat_offset(from: Version, hb: Version) -> Offset {
    if hb > from { Offset::Above(hb.0 - from.0 - 1) } else { Offset::AtOrBelow(from.0 - hb.0) }
}

fn offset_len(o: Offset) -> usize {
    match o {
        Offset::Above(n) | Offset::AtOrBelow(n) => varint_len(n),
    }
}

/// Encoded length of one field (key, version gap, value) after a field at `prev`.
pub(crate) fn field_len(key: &Key, gap: u64, value: &Option<Value>) -> usize {
    key_len(key) + varint_len(gap) + value_len(value)
}

/// Length of everything in a delta but its reference (id and generation, or index)
/// and its fields: flags, from, purged, heartbeat, field count.
pub(crate) fn delta_head_len(from_len: usize, purged: Version, hb: Option<Offset>, fields: usize) -> usize {
    1 + from_len
        + if purged.0 != 0 { varint_len(purged.0) } else { 0 }
        + hb.map_or(0, offset_len)
        + varint_len(fields as u64)
}

pub(crate) fn full_from_len(from: Version) -> usize {
    if from.0 != 0 { varint_len(from.0) } else { 0 }
}

pub(crate) fn delta_len(d: &Delta) -> usize {
    let mut n = node_id_len(&d.node)
        + varint_len(d.generation.0)
        + delta_head_len(
            full_from_len(d.from),
            d.purged,
            d.heartbeat.map(|h| heartbeat_offset(d.from, h)),
            d.values.len(),
        );
    let mut prev = d.from.0;
    for (k, vv) in &d.values {
        n += field_len(k, vv.version.0.wrapping_sub(prev).wrapping_sub(1), &vv.value);
        prev = vv.version.0;
    }
    n
}

fn compact_delta_len(d: &CompactDelta, prev_index: Option<u32>) -> usize {
    let mut n = varint_len(index_gap(prev_index, d.index))
        + delta_head_len(if d.from.is_some() { 2 } else { 0 }, d.purged, d.heartbeat, d.fields.len());
    let mut prev = 0u64;
    for f in &d.fields {
        n += field_len(&f.key, f.offset.wrapping_sub(prev).wrapping_sub(1), &f.value);
        prev = f.offset;
    }
    n
}

fn index_gap(prev: Option<u32>, index: u32) -> u64 {
    match prev {
        None => u64::from(index),
        Some(p) => u64::from(index.wrapping_sub(p).wrapping_sub(1)),
    }
}

fn list_len<T>(items: &[T], each: impl Fn(&T) -> usize) -> usize {
    varint_len(items.len() as u64) + items.iter().map(each).sum::<usize>()
}

/// Encoded length of a header.
pub fn header_len(h: &Header) -> usize {
    MAGIC.len() + 2 + 1 + h.cluster.as_bytes().len() + node_id_len(&h.sender) + varint_len(h.generation.0)
}

pub(crate) fn page_len(p: &DigestPage) -> usize {
    1 + match p {
        DigestPage::Listed(ds) => list_len(ds, digest_len),
        DigestPage::Range { range, digests } => range_len(range) + list_len(digests, digest_len),
        DigestPage::Compact(c) => {
            let n = c.versions.len();
            context_len(&c.context) + 8 + varint_len(n as u64) + 2 * n + n.div_ceil(8)
        }
        DigestPage::Hashed(h) => {
            hashed_fixed_len(&h.context, h.entries.len()) + h.entries.iter().map(hashed_entry_len).sum::<usize>()
        }
    }
}

/// Encoded length of a hashed page without its entries (and without the page tag).
pub(crate) fn hashed_fixed_len(context: &Context, entries: usize) -> usize {
    context_len(context) + 4 + varint_len(entries as u64)
}

/// Encoded length of one hashed page entry.
pub(crate) fn hashed_entry_len(e: &HashedEntry) -> usize {
    4 + varint_len(e.max_version.0) + varint_len(e.purged.0)
}

/// Encoded length of an ascending index list (gaps).
pub(crate) fn indices_len(indices: &[u32]) -> usize {
    let mut n = varint_len(indices.len() as u64);
    let mut prev = None;
    for &i in indices {
        n += varint_len(index_gap(prev, i));
        prev = Some(i);
    }
    n
}

fn compact_deltas_len(deltas: &[CompactDelta]) -> usize {
    let mut n = varint_len(deltas.len() as u64);
    let mut prev = None;
    for d in deltas {
        n += compact_delta_len(d, prev);
        prev = Some(d.index);
    }
    n
}

fn compact_requests_len(reqs: &[CompactRequest]) -> usize {
    let mut n = varint_len(reqs.len() as u64);
    let mut prev = None;
    for r in reqs {
        n += varint_len(index_gap(prev, r.index)) + 2;
        prev = Some(r.index);
    }
    n
}

impl Message {
    /// Encoded length of the body.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Syn(s) => page_len(&s.page),
            Message::Ack(a) => {
                list_len(&a.requests, digest_len)
                    + list_len(&a.deltas, delta_len)
                    + 1
                    + a.compact.as_ref().map_or(0, |c| {
                        context_len(&c.context)
                            + 8
                            + compact_requests_len(&c.requests)
                            + compact_deltas_len(&c.deltas)
                            + c.whole.as_deref().map_or(0, indices_len)
                    })
                    + 1
                    + a.resend.as_ref().map_or(0, range_len)
            }
            Message::Ack2(a) => {
                list_len(&a.deltas, delta_len)
                    + 1
                    + a.compact.as_ref().map_or(0, |c| context_len(&c.context) + 8 + compact_deltas_len(&c.deltas))
            }
            Message::Echo(_) | Message::EchoReply(_) => 8,
            Message::Shutdown => 0,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Message::Syn(_) => KIND_SYN,
            Message::Ack(_) => KIND_ACK,
            Message::Ack2(_) => KIND_ACK2,
            Message::Echo(_) => KIND_ECHO,
            Message::EchoReply(_) => KIND_ECHO_REPLY,
            Message::Shutdown => KIND_SHUTDOWN,
        }
    }
}

impl Envelope {
    /// The exact number of bytes [`Envelope::encode`] produces, computed without
    /// encoding.
    pub fn encoded_len(&self) -> usize {
        header_len(&self.header) + self.message.encoded_len()
    }

    /// Encodes the message.
    ///
    /// ```
    /// use rumormill::{ClusterName, Codec, DigestPage, Envelope, Generation, Header, Message, NodeId, Syn};
    /// let header = Header {
    ///     cluster: ClusterName::new("demo")?,
    ///     sender: NodeId::new("a")?,
    ///     generation: Generation(1_700_000_000),
    /// };
    /// let env = Envelope { header, message: Message::Syn(Syn { page: DigestPage::Listed(vec![]) }) };
    /// let bytes = env.encode();
    /// assert_eq!(bytes.len(), env.encoded_len());
    /// let codec = Codec::new(ClusterName::new("demo")?);
    /// assert_eq!(codec.decode(&bytes)?, env);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded message to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&MAGIC);
        out.push(WIRE_VERSION);
        out.push(self.message.kind());
        let cluster = self.header.cluster.as_bytes();
        out.push(cluster.len() as u8);
        out.extend_from_slice(cluster);
        put_id(out, &self.header.sender);
        put_varint(out, self.header.generation.0);
        match &self.message {
            Message::Syn(s) => put_page(out, &s.page),
            Message::Ack(a) => {
                put_digests(out, &a.requests);
                put_deltas(out, &a.deltas);
                match &a.compact {
                    None => out.push(ACK_COMPACT_NONE),
                    Some(c) => {
                        out.push(if c.whole.is_some() { ACK_COMPACT_HASHED } else { ACK_COMPACT_AGREED });
                        put_context(out, &c.context);
                        out.extend_from_slice(&c.check.to_le_bytes());
                        put_varint(out, c.requests.len() as u64);
                        let mut prev = None;
                        for r in &c.requests {
                            put_varint(out, index_gap(prev, r.index));
                            out.extend_from_slice(&r.max_version.to_le_bytes());
                            prev = Some(r.index);
                        }
                        put_compact_deltas(out, &c.deltas);
                        if let Some(whole) = &c.whole {
                            put_indices(out, whole);
                        }
                    }
                }
                match &a.resend {
                    None => out.push(0),
                    Some(r) => {
                        out.push(1);
                        put_range(out, r);
                    }
                }
            }
            Message::Echo(e) | Message::EchoReply(e) => out.extend_from_slice(&e.nonce.to_le_bytes()),
            Message::Shutdown => {}
            Message::Ack2(a) => {
                put_deltas(out, &a.deltas);
                match &a.compact {
                    None => out.push(0),
                    Some(c) => {
                        out.push(1);
                        put_context(out, &c.context);
                        out.extend_from_slice(&c.check.to_le_bytes());
                        put_compact_deltas(out, &c.deltas);
                    }
                }
            }
        }
    }
}

fn put_indices(out: &mut Vec<u8>, indices: &[u32]) {
    put_varint(out, indices.len() as u64);
    let mut prev = None;
    for &i in indices {
        put_varint(out, index_gap(prev, i));
        prev = Some(i);
    }
}

fn put_id(out: &mut Vec<u8>, id: &NodeId) {
    out.push(id.as_bytes().len() as u8);
    out.extend_from_slice(id.as_bytes());
}

fn put_opt_id(out: &mut Vec<u8>, id: Option<&NodeId>) {
    match id {
        None => out.push(0),
        Some(id) => put_id(out, id),
    }
}

fn put_range(out: &mut Vec<u8>, r: &NodeRange) {
    put_opt_id(out, r.start());
    put_opt_id(out, r.end());
}

fn put_context(out: &mut Vec<u8>, c: &Context) {
    put_range(out, &c.range);
    out.extend_from_slice(&c.members.to_le_bytes());
}

fn put_key(out: &mut Vec<u8>, k: &Key) {
    match k.well_known_code() {
        Some(code) => {
            out.push(0);
            out.push(code);
        }
        None => {
            out.push(k.as_str().len() as u8);
            out.extend_from_slice(k.as_str().as_bytes());
        }
    }
}

fn put_value(out: &mut Vec<u8>, v: &Option<Value>) {
    match v {
        None => out.push(0),
        Some(v) => {
            put_varint(out, v.len() as u64 + 1);
            out.extend_from_slice(v.as_bytes());
        }
    }
}

fn put_digest(out: &mut Vec<u8>, d: &Digest) {
    put_id(out, &d.node);
    put_varint(out, d.generation.0);
    put_varint(out, d.max_version.0);
    put_varint(out, d.purged.0);
}

fn put_digests(out: &mut Vec<u8>, ds: &[Digest]) {
    put_varint(out, ds.len() as u64);
    for d in ds {
        put_digest(out, d);
    }
}

fn put_page(out: &mut Vec<u8>, p: &DigestPage) {
    match p {
        DigestPage::Listed(ds) => {
            out.push(PAGE_LISTED);
            put_digests(out, ds);
        }
        DigestPage::Range { range, digests } => {
            out.push(PAGE_RANGE);
            put_range(out, range);
            put_digests(out, digests);
        }
        DigestPage::Compact(c) => {
            out.push(PAGE_COMPACT);
            put_context(out, &c.context);
            out.extend_from_slice(&c.check.to_le_bytes());
            put_varint(out, c.versions.len() as u64);
            for v in &c.versions {
                out.extend_from_slice(&v.to_le_bytes());
            }
            // exactly one bit per member, whatever the struct holds
            let n = c.versions.len();
            out.extend((0..n.div_ceil(8)).map(|b| {
                let byte = c.quiet.get(b).copied().unwrap_or(0);
                let used = n - 8 * b;
                if used >= 8 { byte } else { byte & ((1u8 << used) - 1) }
            }));
        }
        DigestPage::Hashed(h) => {
            out.push(PAGE_HASHED);
            put_context(out, &h.context);
            out.extend_from_slice(&h.salt.to_le_bytes());
            put_varint(out, h.entries.len() as u64);
            for e in &h.entries {
                out.extend_from_slice(&e.fingerprint.to_le_bytes());
                put_varint(out, e.max_version.0);
                put_varint(out, e.purged.0);
            }
        }
    }
}

/// How a delta's `from` is written: absent (0), a varint, or its low 16 bits.
#[derive(Clone, Copy)]
enum FromField {
    Zero,
    Full(u64),
    Low16(u16),
}

fn put_head(out: &mut Vec<u8>, from: FromField, purged: Version, hb: Option<Offset>, fields: usize) {
    let mut flags = 0;
    if !matches!(from, FromField::Zero) {
        flags |= FLAG_FROM;
    }
    if purged.0 != 0 {
        flags |= FLAG_PURGED;
    }
    match hb {
        Some(Offset::Above(_)) => flags |= FLAG_HEARTBEAT,
        Some(Offset::AtOrBelow(_)) => flags |= FLAG_HEARTBEAT | FLAG_STALE_HEARTBEAT,
        None => {}
    }
    out.push(flags);
    match from {
        FromField::Zero => {}
        FromField::Full(v) => put_varint(out, v),
        FromField::Low16(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
    if purged.0 != 0 {
        put_varint(out, purged.0);
    }
    if let Some(Offset::Above(n) | Offset::AtOrBelow(n)) = hb {
        put_varint(out, n);
    }
    put_varint(out, fields as u64);
}

fn put_deltas(out: &mut Vec<u8>, ds: &[Delta]) {
    put_varint(out, ds.len() as u64);
    for d in ds {
        put_id(out, &d.node);
        put_varint(out, d.generation.0);
        put_head(
            out,
            if d.from.0 == 0 { FromField::Zero } else { FromField::Full(d.from.0) },
            d.purged,
            d.heartbeat.map(|h| heartbeat_offset(d.from, h)),
            d.values.len(),
        );
        let mut prev = d.from.0;
        for (k, vv) in &d.values {
            put_key(out, k);
            put_varint(out, vv.version.0.wrapping_sub(prev).wrapping_sub(1));
            put_value(out, &vv.value);
            prev = vv.version.0;
        }
    }
}

fn put_compact_deltas(out: &mut Vec<u8>, ds: &[CompactDelta]) {
    put_varint(out, ds.len() as u64);
    let mut prev_index = None;
    for d in ds {
        put_varint(out, index_gap(prev_index, d.index));
        prev_index = Some(d.index);
        let from = d.from.map_or(FromField::Zero, FromField::Low16);
        put_head(out, from, d.purged, d.heartbeat, d.fields.len());
        let mut prev = 0u64;
        for f in &d.fields {
            put_key(out, &f.key);
            put_varint(out, f.offset.wrapping_sub(prev).wrapping_sub(1));
            put_value(out, &f.value);
            prev = f.offset;
        }
    }
}

/// Decodes messages of one cluster, within limits.
///
/// Decoding never panics, returns a typed [`DecodeError`] for any input it does not
/// accept, and allocates at most a small constant times the input's length: every
/// count in a message is checked against the bytes left before anything is
/// reserved for it.
#[derive(Clone, Debug)]
pub struct Codec {
    cluster: ClusterName,
    max_value_len: usize,
}

impl Codec {
    /// A codec for `cluster` accepting values up to the default limit (64 KiB).
    pub fn new(cluster: ClusterName) -> Self {
        Codec { cluster, max_value_len: crate::DEFAULT_MAX_VALUE_LEN }
    }

    /// Sets the largest value accepted.
    pub fn with_max_value_len(mut self, max: usize) -> Self {
        self.max_value_len = max;
        self
    }

    /// The cluster this codec accepts.
    pub fn cluster(&self) -> &ClusterName {
        &self.cluster
    }

    /// Decodes one message. Has no state, so an error changes nothing.
    pub fn decode(&self, bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let mut r = Reader { buf: bytes, pos: 0, max_value_len: self.max_value_len };
        let magic = r.take(2)?;
        if magic != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8()?;
        if version != WIRE_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind = r.u8()?;
        if !(KIND_SYN..=KIND_SHUTDOWN).contains(&kind) {
            return Err(DecodeError::UnknownKind(kind));
        }
        let len = usize::from(r.u8()?);
        let cluster = r.take(len)?;
        if cluster != self.cluster.as_bytes() {
            return Err(DecodeError::WrongCluster);
        }
        let sender = r.node_id()?;
        let generation = Generation(r.varint()?);
        let message = match kind {
            KIND_SYN => Message::Syn(Syn { page: r.page()? }),
            KIND_ACK => {
                let requests = r.digests()?;
                let deltas = r.deltas()?;
                let at = r.pos;
                let compact = match r.u8()? {
                    ACK_COMPACT_NONE => None,
                    tag @ (ACK_COMPACT_AGREED | ACK_COMPACT_HASHED) => {
                        let context = r.context()?;
                        let check = r.u64()?;
                        let requests = r.compact_requests()?;
                        let deltas = r.compact_deltas()?;
                        let whole = if tag == ACK_COMPACT_HASHED { Some(r.indices()?) } else { None };
                        Some(CompactAck { context, check, requests, deltas, whole })
                    }
                    tag => return Err(DecodeError::BadTag { tag, at }),
                };
                let resend = match r.tag()? {
                    false => None,
                    true => Some(r.range()?),
                };
                Message::Ack(Ack { requests, deltas, compact, resend })
            }
            KIND_ECHO => Message::Echo(Echo { nonce: r.u64()? }),
            KIND_ECHO_REPLY => Message::EchoReply(Echo { nonce: r.u64()? }),
            KIND_SHUTDOWN => Message::Shutdown,
            _ => {
                let deltas = r.deltas()?;
                let compact = match r.tag()? {
                    false => None,
                    true => {
                        let context = r.context()?;
                        let check = r.u64()?;
                        let deltas = r.compact_deltas()?;
                        Some(CompactDeltas { context, check, deltas })
                    }
                };
                Message::Ack2(Ack2 { deltas, compact })
            }
        };
        if r.pos != bytes.len() {
            return Err(DecodeError::TrailingBytes(bytes.len() - r.pos));
        }
        Ok(Envelope { header: Header { cluster: self.cluster.clone(), sender, generation }, message })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    max_value_len: usize,
}

/// The keys already read in one delta, for the duplicate-key check.
///
/// A linear scan per field made that check quadratic: a 64 KB datagram holds about
/// 13,000 fields with distinct two-byte keys, and decoding one took most of a
/// second (tests/hostile_input.rs). Past a few fields the keys go into a set, so a
/// delta costs O(n log n); small deltas, the usual ones, still allocate nothing.
struct SeenKeys {
    set: Option<BTreeSet<Key>>,
}

impl SeenKeys {
    /// Field counts up to this are checked by a scan of the fields read so far.
    const SCAN: usize = 16;

    fn new(count: usize) -> Self {
        SeenKeys { set: (count > Self::SCAN).then(BTreeSet::new) }
    }

    /// Whether `key` was seen before (`read` are the keys read so far); notes it.
    fn repeated<'k>(&mut self, key: &Key, mut read: impl Iterator<Item = &'k Key>) -> bool {
        match &mut self.set {
            None => read.any(|k| k == key),
            Some(set) => !set.insert(key.clone()),
        }
    }
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated { at: self.pos });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn tag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            t => Err(DecodeError::BadTag { tag: t, at: self.pos - 1 }),
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // one byte: most varints of a message (gaps, counts, offsets)
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.long_varint()
    }

    fn long_varint(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(DecodeError::BadVarint { at });
            }
            v |= bits << (7 * i);
            if b & 0x80 == 0 {
                // canonical: no trailing zero group, except the value 0 itself
                if b == 0 && i > 0 {
                    return Err(DecodeError::BadVarint { at });
                }
                return Ok(v);
            }
        }
        Err(DecodeError::BadVarint { at })
    }

    /// A count of items each at least `min_len` bytes long: rejected before any
    /// allocation if the bytes left cannot hold that many.
    fn count(&mut self, min_len: usize) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.varint()?;
        let fits = (self.remaining() / min_len.max(1)) as u64;
        if n > fits {
            return Err(DecodeError::CountTooLarge { count: n, at });
        }
        Ok(n as usize)
    }

    fn node_id(&mut self) -> Result<NodeId, DecodeError> {
        let at = self.pos;
        let len = usize::from(self.u8()?);
        let bytes = self.take(len)?;
        NodeId::new(bytes).map_err(|_| DecodeError::BadNodeId { at })
    }

    fn opt_node_id(&mut self) -> Result<Option<NodeId>, DecodeError> {
        let len = usize::from(self.u8()?);
        if len == 0 {
            return Ok(None);
        }
        let at = self.pos;
        let bytes = self.take(len)?;
        NodeId::new(bytes).map(Some).map_err(|_| DecodeError::BadNodeId { at })
    }

    fn range(&mut self) -> Result<NodeRange, DecodeError> {
        let at = self.pos;
        let start = self.opt_node_id()?;
        let end = self.opt_node_id()?;
        NodeRange::new(start, end).map_err(|_| DecodeError::BadRange { at })
    }

    fn context(&mut self) -> Result<Context, DecodeError> {
        let range = self.range()?;
        let members = self.u64()?;
        Ok(Context { range, members })
    }

    fn key(&mut self) -> Result<Key, DecodeError> {
        let at = self.pos;
        let len = usize::from(self.u8()?);
        if len == 0 {
            let code = self.u8()?;
            return Key::from_well_known_code(code).ok_or(DecodeError::BadKey { at });
        }
        let bytes = self.take(len)?;
        let text = core::str::from_utf8(bytes).map_err(|_| DecodeError::BadKey { at })?;
        if Key::is_well_known_name(text) {
            return Err(DecodeError::BadKey { at });
        }
        Key::new(text).map_err(|_| DecodeError::BadKey { at })
    }

    fn value(&mut self) -> Result<Option<Value>, DecodeError> {
        let at = self.pos;
        let n = self.varint()?;
        if n == 0 {
            return Ok(None);
        }
        let len = n - 1;
        if len > self.max_value_len as u64 {
            return Err(DecodeError::ValueTooLarge { len, max: self.max_value_len, at });
        }
        let bytes = self.take(len as usize)?;
        Ok(Some(Value::from(bytes)))
    }

    fn digest(&mut self) -> Result<Digest, DecodeError> {
        Ok(Digest {
            node: self.node_id()?,
            generation: Generation(self.varint()?),
            max_version: Version(self.varint()?),
            purged: Version(self.varint()?),
        })
    }

    fn digests(&mut self) -> Result<Vec<Digest>, DecodeError> {
        // node id (2) + three varints
        let n = self.count(5)?;
        let mut out: Vec<Digest> = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.pos;
            let d = self.digest()?;
            if out.last().is_some_and(|p| p.node >= d.node) {
                return Err(DecodeError::NotAscending { at });
            }
            out.push(d);
        }
        Ok(out)
    }

    fn page(&mut self) -> Result<DigestPage, DecodeError> {
        let at = self.pos;
        match self.u8()? {
            PAGE_LISTED => Ok(DigestPage::Listed(self.digests()?)),
            PAGE_RANGE => {
                let range = self.range()?;
                let at = self.pos;
                let digests = self.digests()?;
                if digests.iter().any(|d| !range.contains(&d.node)) {
                    return Err(DecodeError::OutOfRange { at });
                }
                Ok(DigestPage::Range { range, digests })
            }
            PAGE_COMPACT => {
                let context = self.context()?;
                let check = self.u64()?;
                let n = self.count(2)?;
                // (`count` checked the bytes are there: one slice, not n reads)
                let versions = self.take(2 * n)?.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
                let at = self.pos;
                let quiet = self.take(n.div_ceil(8))?.to_vec();
                // bits past the last member are 0 (canonical form)
                if let Some(&last) = quiet.last()
                    && n % 8 != 0
                    && last >> (n % 8) != 0
                {
                    return Err(DecodeError::BadFlags { flags: last, at: at + quiet.len() - 1 });
                }
                Ok(DigestPage::Compact(CompactDigest { context, check, versions, quiet }))
            }
            PAGE_HASHED => {
                let context = self.context()?;
                let salt = self.u32()?;
                // fingerprint (4) + two varints (1 each)
                let n = self.count(6)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let fingerprint = self.u32()?;
                    let max_version = Version(self.varint()?);
                    let purged = Version(self.varint()?);
                    entries.push(HashedEntry { fingerprint, max_version, purged });
                }
                Ok(DigestPage::Hashed(HashedDigest { context, salt, entries }))
            }
            tag => Err(DecodeError::BadTag { tag, at }),
        }
    }

    /// Flags, from (via `read_from`), purged, heartbeat offset and field count.
    fn head<F>(
        &mut self,
        read_from: impl FnOnce(&mut Self) -> Result<F, DecodeError>,
    ) -> Result<(Option<F>, Version, Option<Offset>, usize), DecodeError> {
        let at = self.pos;
        let flags = self.u8()?;
        if flags & !FLAGS_KNOWN != 0 || (flags & FLAG_STALE_HEARTBEAT != 0 && flags & FLAG_HEARTBEAT == 0) {
            return Err(DecodeError::BadFlags { flags, at });
        }
        let from = if flags & FLAG_FROM != 0 { Some(read_from(self)?) } else { None };
        let purged = if flags & FLAG_PURGED != 0 {
            let p = self.varint()?;
            if p == 0 {
                return Err(DecodeError::BadFlags { flags, at });
            }
            Version(p)
        } else {
            Version::ZERO
        };
        let hb = if flags & FLAG_HEARTBEAT != 0 {
            let n = self.varint()?;
            Some(if flags & FLAG_STALE_HEARTBEAT != 0 { Offset::AtOrBelow(n) } else { Offset::Above(n) })
        } else {
            None
        };
        // key (2) + gap (1) + value (1)
        let fields = self.count(4)?;
        Ok((from, purged, hb, fields))
    }

    fn deltas(&mut self) -> Result<Vec<Delta>, DecodeError> {
        // id (2) + generation (1) + flags (1) + field count (1)
        let n = self.count(5)?;
        let mut out: Vec<Delta> = Vec::with_capacity(n);
        for _ in 0..n {
            let at = self.pos;
            let node = self.node_id()?;
            if out.last().is_some_and(|p| p.node >= node) {
                return Err(DecodeError::NotAscending { at });
            }
            let generation = Generation(self.varint()?);
            let head_at = self.pos;
            let (from, purged, hb, count) = self.head(|r| r.varint())?;
            let from = match from {
                // the flag says a `from` follows, and 0 is written by leaving it out
                Some(0) => return Err(DecodeError::BadFlags { flags: self.buf[head_at], at: head_at }),
                Some(f) => Version(f),
                None => Version::ZERO,
            };
            let heartbeat = match hb {
                None => None,
                Some(Offset::Above(n)) => Some(Version(
                    from.0
                        .checked_add(n)
                        .and_then(|v| v.checked_add(1))
                        .ok_or(DecodeError::VersionOverflow { at: head_at })?,
                )),
                Some(Offset::AtOrBelow(n)) => {
                    Some(Version(from.0.checked_sub(n).ok_or(DecodeError::VersionOverflow { at: head_at })?))
                }
            };
            let mut values = Vec::with_capacity(count);
            let mut seen = SeenKeys::new(count);
            let mut prev = from.0;
            for _ in 0..count {
                let at = self.pos;
                let key = self.key()?;
                let gap = self.varint()?;
                let version =
                    prev.checked_add(gap).and_then(|v| v.checked_add(1)).ok_or(DecodeError::VersionOverflow { at })?;
                let value = self.value()?;
                if seen.repeated(&key, values.iter().map(|(k, _): &(Key, VersionedValue)| k)) {
                    return Err(DecodeError::DuplicateKey { at });
                }
                values.push((key, VersionedValue { value, version: Version(version) }));
                prev = version;
            }
            out.push(Delta { node, generation, from, purged, heartbeat, values });
        }
        Ok(out)
    }

    fn compact_requests(&mut self) -> Result<Vec<CompactRequest>, DecodeError> {
        let n = self.count(3)?;
        let mut out = Vec::with_capacity(n);
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let index = self.index(prev)?;
            out.push(CompactRequest { index, max_version: self.u16()? });
            prev = Some(index);
        }
        Ok(out)
    }

    fn indices(&mut self) -> Result<Vec<u32>, DecodeError> {
        let n = self.count(1)?;
        let mut out = Vec::with_capacity(n);
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let index = self.index(prev)?;
            out.push(index);
            prev = Some(index);
        }
        Ok(out)
    }

    fn index(&mut self, prev: Option<u32>) -> Result<u32, DecodeError> {
        let at = self.pos;
        let gap = self.varint()?;
        let base = prev.map_or(0, |p| u64::from(p) + 1);
        base.checked_add(gap).and_then(|i| u32::try_from(i).ok()).ok_or(DecodeError::BadIndex { at })
    }

    fn compact_deltas(&mut self) -> Result<Vec<CompactDelta>, DecodeError> {
        // index (1) + flags (1) + field count (1)
        let n = self.count(3)?;
        let mut out = Vec::with_capacity(n);
        let mut prev_index: Option<u32> = None;
        for _ in 0..n {
            let index = self.index(prev_index)?;
            prev_index = Some(index);
            let (from, purged, heartbeat, count) = self.head(|r| r.u16())?;
            let mut fields: Vec<CompactField> = Vec::with_capacity(count);
            let mut seen = SeenKeys::new(count);
            let mut prev = 0u64;
            for _ in 0..count {
                let at = self.pos;
                let key = self.key()?;
                let gap = self.varint()?;
                let offset =
                    prev.checked_add(gap).and_then(|v| v.checked_add(1)).ok_or(DecodeError::VersionOverflow { at })?;
                let value = self.value()?;
                if seen.repeated(&key, fields.iter().map(|f| &f.key)) {
                    return Err(DecodeError::DuplicateKey { at });
                }
                fields.push(CompactField { key, offset, value });
                prev = offset;
            }
            out.push(CompactDelta { index, from, purged, heartbeat, fields });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn varint_lengths_match_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            assert_eq!(out.len(), varint_len(v), "{v}");
            let mut r = Reader { buf: &out, pos: 0, max_value_len: 0 };
            assert_eq!(r.varint().unwrap(), v);
        }
    }

    #[test]
    fn overlong_varints_are_rejected() {
        for bad in [&[0x80, 0x00][..], &[0xff; 11][..], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]] {
            let mut r = Reader { buf: bad, pos: 0, max_value_len: 0 };
            assert!(matches!(r.varint(), Err(DecodeError::BadVarint { .. }) | Err(DecodeError::Truncated { .. })));
        }
    }
}
