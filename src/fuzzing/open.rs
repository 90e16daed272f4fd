//! The decryption path on arbitrary bytes (feature `encryption`).

use alloc::vec::Vec;

use crate::{
    ClusterName, Config, Generation, Gossiper, Keyring, NodeId, OpenError, SEAL_OVERHEAD, SecretKey, Timestamp,
};

const CLUSTER: &str = "fuzz";

/// The keyring the harness opens with: two keys, the second primary. Frames in
/// [`open_seeds`] are sealed with it, so mutations of them reach the cipher.
fn keyring() -> Keyring {
    let mut ring = Keyring::new(SecretKey::from_bytes([0x11; 32]));
    let second = SecretKey::from_bytes([0x22; 32]);
    ring.add(second.clone()).expect("distinct keys");
    ring.set_primary(second.id()).expect("just added");
    ring
}

/// Opens arbitrary bytes as a sealed frame, then hands them to a Gossiper that
/// seals.
///
/// The properties: opening never panics and allocates at most the frame's length;
/// a frame that opens is exactly what sealing its contents again with the same key
/// and nonce gives (so opening is the inverse of sealing and nothing else opens,
/// short of a forgery: any input that opens without being a seed or a seed's
/// exact copy is a bug); a frame that does not open is refused by the Gossiper,
/// counted once in `seal_rejected`, and changes nothing. Returns whether the bytes
/// opened.
///
/// # Panics
///
/// When a property fails: that is the bug the fuzzer looks for.
pub fn open(data: &[u8]) -> bool {
    let cluster = ClusterName::new(CLUSTER).expect("short name");
    let ring = keyring();
    let opened = ring.open(&cluster, data);
    if let Ok(plain) = &opened {
        assert_eq!(plain.len() + SEAL_OVERHEAD, data.len(), "the seal overhead is exact");
        let nonce: [u8; 24] = data[7..31].try_into().expect("length checked by open");
        let key_id = crate::KeyId(u32::from_be_bytes([data[3], data[4], data[5], data[6]]));
        let again = ring.seal_with(key_id, &cluster, nonce, plain).expect("a key that opened seals");
        assert_eq!(again, data, "opening is not the inverse of sealing");
    }
    let mut config = Config::new(cluster);
    config.keyring = Some(ring);
    let now = Timestamp::from_secs(1_700_000_000);
    let node = NodeId::new("fuzz-node").expect("short id");
    let rng = super::harnesses::SplitMix64(data.len() as u64);
    let mut g = Gossiper::new(config, node, Generation(1_700_000_000), now, rng).expect("valid config");
    let (revision, rejected) = (g.view().revision(), g.metrics().seal_rejected.iter().sum::<u64>());
    let out = g.handle_datagram(now, data);
    if let Err(why) = &opened {
        let counted = g.metrics().seal_rejected.iter().sum::<u64>() - rejected;
        let too_large = g.metrics().too_large;
        assert_eq!(counted + too_large, 1, "a frame that did not open ({why}) is counted once");
        assert!(out.transmits.is_empty() && out.events.is_empty(), "a frame that did not open was acted on");
        assert_eq!(g.view().revision(), revision, "a frame that did not open changed the view");
        if matches!(why, OpenError::NotSealed) {
            assert_eq!(g.metrics().seal_rejected[0] + too_large, 1, "a plain frame is refused as plain");
        }
    }
    opened.is_ok()
}

/// Sealed frames of the given plain messages, for seeding the corpus of `open`.
pub fn open_seeds(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let cluster = ClusterName::new(CLUSTER).expect("short name");
    let ring = keyring();
    let mut nonces = crate::NonceSequence::new(&NodeId::new("seed").expect("short id"), Generation(1), 0);
    messages.iter().map(|m| ring.seal(&cluster, &mut nonces, m).expect("nonces left")).collect()
}
