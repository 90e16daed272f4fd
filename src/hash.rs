//! A small deterministic 64-bit hash for digests that both ends must compute alike.
//!
//! It is not cryptographic and need not be: it only tells two honest views apart.
//! A forged message can at worst make a compact digest look mismatched (a resend)
//! or lose one exchange; authentication belongs to the sealing layer.

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;
const K2: u64 = 0x94d0_49bb_1331_11eb;

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
        self.mix(b.len() as u64);
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(last));
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        // splitmix64's finaliser
        let mut z = self.state ^ self.len.wrapping_mul(K0);
        z = (z ^ (z >> 30)).wrapping_mul(K1);
        z = (z ^ (z >> 27)).wrapping_mul(K2);
        z ^ (z >> 31)
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
}
