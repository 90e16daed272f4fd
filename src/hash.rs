//! A small deterministic 64-bit hash for digests that both ends must compute alike.
//!
//! It is not cryptographic and need not be: it only tells two honest views apart.
//! A forged message can at worst make a compact digest look mismatched (a resend)
//! or lose one exchange; authentication belongs to the sealing layer.

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;
const K2: u64 = 0x94d0_49bb_1331_11eb;

/// The words `bytes` hashes: the length, then the bytes as little-endian words,
/// the last zero-padded.
fn words(b: &[u8], mut word: impl FnMut(u64)) {
    word(b.len() as u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        word(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        word(u64::from_le_bytes(last));
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Hasher64 {
    state: u64,
    len: u64,
}

impl Hasher64 {
    pub(crate) fn new(domain: u64) -> Self {
        Hasher64 { state: domain ^ K0, len: 0 }
    }

    fn mix(&mut self, word: u64) {
        self.state = (self.state ^ word).wrapping_mul(K1).rotate_left(29).wrapping_mul(K2);
        self.len = self.len.wrapping_add(1);
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.mix(v);
    }

    /// Length-prefixed, so that ("ab", "c") and ("a", "bc") differ.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        words(b, |w| self.mix(w));
    }

    pub(crate) fn finish(&self) -> u64 {
        // splitmix64's finaliser
        let mut z = self.state ^ self.len.wrapping_mul(K0);
        z = (z ^ (z >> 30)).wrapping_mul(K1);
        z = (z ^ (z >> 27)).wrapping_mul(K2);
        z ^ (z >> 31)
    }
}

/// Four [`Hasher64`] chains fed words in turn (word `i` goes to chain `i mod 4`),
/// folded into one at the end: the same mixing, but four independent chains keep
/// the multiplier busy where one chain waits on each multiplication's latency.
/// Checks over thousands of versions a message use it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hasher64x4 {
    domain: u64,
    /// The chains: word `n` goes to `lanes[n mod 4]`.
    lanes: [u64; 4],
    len: u64,
}

impl Hasher64x4 {
    pub(crate) fn new(domain: u64) -> Self {
        let s = domain ^ K0;
        Hasher64x4 { domain, lanes: [s, s.wrapping_add(1), s.wrapping_add(2), s.wrapping_add(3)], len: 0 }
    }

    /// Word `n` goes to lane `n mod 4`. (The lanes are not rotated instead: a
    /// hasher kept in memory then moved them with loads wider than its stores,
    /// a stall per word.)
    #[inline]
    pub(crate) fn u64(&mut self, word: u64) {
        let lane = &mut self.lanes[(self.len % 4) as usize];
        *lane = (*lane ^ word).wrapping_mul(K1).rotate_left(29).wrapping_mul(K2);
        self.len = self.len.wrapping_add(1);
    }

    /// Pairs of words, as [`Hasher64x4::u64`] on each in turn, with the lanes
    /// in registers (rotated so the next word's lane comes first) for a long run.
    #[inline]
    pub(crate) fn pairs(&mut self, pairs: impl Iterator<Item = (u64, u64)>) {
        let mix = |lane: u64, word: u64| (lane ^ word).wrapping_mul(K1).rotate_left(29).wrapping_mul(K2);
        let mut l = self.lanes;
        l.rotate_left((self.len % 4) as usize);
        let mut n = 0u64;
        for (x, y) in pairs {
            let [a, b, c, d] = l;
            l = [c, d, mix(a, x), mix(b, y)];
            n += 2;
        }
        self.len = self.len.wrapping_add(n);
        l.rotate_right((self.len % 4) as usize);
        self.lanes = l;
    }

    /// Length-prefixed, as [`Hasher64::bytes`].
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        words(b, |w| self.u64(w));
    }

    pub(crate) fn finish(&self) -> u64 {
        // the lanes in order (the lane of word 0 first), then one chain over them
        let mut h = Hasher64::new(self.domain);
        for lane in self.lanes {
            h.u64(lane);
        }
        h.u64(self.len);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_sensitive() {
        let h = |parts: &[&[u8]]| {
            let mut s = Hasher64::new(1);
            for p in parts {
                s.bytes(p);
            }
            s.finish()
        };
        // pinned: the value is part of the wire format (compact digests)
        assert_eq!(h(&[b"node-1"]), h(&[b"node-1"]));
        assert_ne!(h(&[b"ab", b"c"]), h(&[b"a", b"bc"]));
        assert_ne!(h(&[b"node-1"]), h(&[b"node-2"]));
        assert_ne!(Hasher64::new(1).finish(), Hasher64::new(2).finish());
    }

    /// The lanes are the spec's `lane[n mod 4]` (docs/wire.md §9.4), for every
    /// count of words modulo 4, fed a word at a time or in pairs.
    #[test]
    fn four_lanes_follow_the_spec() {
        let spec = |domain: u64, words: &[u64]| {
            let mut lane = [0u64; 4];
            for (j, l) in lane.iter_mut().enumerate() {
                *l = (domain ^ K0).wrapping_add(j as u64);
            }
            for (n, w) in words.iter().enumerate() {
                let l = &mut lane[n % 4];
                *l = (*l ^ w).wrapping_mul(K1).rotate_left(29).wrapping_mul(K2);
            }
            let mut h = Hasher64::new(domain);
            for l in lane {
                h.u64(l);
            }
            h.u64(words.len() as u64);
            h.finish()
        };
        let words: Vec<u64> = (0..23u64).map(|i| i.wrapping_mul(0x1234_5678_9abc_def1)).collect();
        for n in 0..words.len() {
            let mut h = Hasher64x4::new(7);
            for w in &words[..n] {
                h.u64(*w);
            }
            assert_eq!(h.finish(), spec(7, &words[..n]), "{n} words");
            // single words, then pairs, then a single one: the same chains
            for lead in 0..4.min(n) {
                let mut h = Hasher64x4::new(7);
                words[..lead].iter().for_each(|w| h.u64(*w));
                let paired = (n - lead) / 2 * 2;
                h.pairs(words[lead..lead + paired].chunks(2).map(|p| (p[0], p[1])));
                words[lead + paired..n].iter().for_each(|w| h.u64(*w));
                assert_eq!(h.finish(), spec(7, &words[..n]), "{n} words, {lead} first");
            }
        }
        // order matters within a lane and across lanes
        let hash = |ws: &[u64]| {
            let mut h = Hasher64x4::new(7);
            ws.iter().for_each(|w| h.u64(*w));
            h.finish()
        };
        assert_ne!(hash(&[1, 2]), hash(&[2, 1]));
        assert_ne!(hash(&[1, 0, 0, 0, 2]), hash(&[2, 0, 0, 0, 1]));
        assert_ne!(hash(&[0]), hash(&[0, 0]));
    }
}
