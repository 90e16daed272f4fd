//! Sealing (feature `encryption`): authenticated encryption of whole messages
//! with XChaCha20-Poly1305 and a keyring that can be rotated in a live cluster.
//!
//! # Why XChaCha20-Poly1305
//!
//! Its 192-bit nonce has room for a per-sender prefix (128 bits derived from the
//! node id and generation) beside a 64-bit message counter, so nonces are unique
//! by construction instead of by a random draw from whatever RNG the caller
//! passes. It is fast and constant-time in portable software, with no need for
//! AES instructions on the CPU. AES-256-GCM's 96-bit nonce leaves no such room.
//!
//! # Frame
//!
//! ```text
//! offset  size  field
//! 0       2     magic "RX"
//! 2       1     seal version (1)
//! 3       4     key id (big-endian): the first 4 bytes of SHA-256("rumormill key id v1" || key)
//! 7       24    nonce: 16-byte sender prefix || 8-byte big-endian counter
//! 31      n     ciphertext of a whole plain message (docs/wire.md)
//! 31+n    16    Poly1305 tag
//! ```
//!
//! The associated data is the first 7 bytes followed by the cluster name, so a
//! frame sealed for another cluster fails authentication even under the same key.
//!
//! # Nonces
//!
//! The prefix is the first 16 bytes of SHA-256("rumormill nonce v2" || id length
//! || id || generation || salt), and the counter counts the messages sealed in
//! that generation. Two nodes, or two lives of one node, share a prefix only if
//! they share the id, the generation and the salt, or by a 128-bit hash
//! collision. Sharing id and generation is what the gossip protocol already
//! forbids (a restarted node must take a newer generation, or its peers ignore
//! it), so uniqueness does not rest on the caller's RNG. The salt (the node's
//! start time and one RNG draw, see [`NonceSequence`]) is a second line for a
//! restart that reuses a generation by mistake.
//!
//! # Replay
//!
//! A replayed frame opens again. Within the cluster that is harmless: applying
//! state is idempotent and an ACK or ACK2 that answers nothing in flight is
//! refused (see docs/security.md). Sealing keeps strangers out; it does not hide
//! who talks to whom or how much.

use alloc::vec::Vec;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305};
use sha2::{Digest, Sha256};

use crate::{ClusterName, Generation, NodeId};

/// First bytes of a sealed frame (a plain message starts with [`MAGIC`](crate::MAGIC)).
pub const SEAL_MAGIC: [u8; 2] = *b"RX";
/// The sealed-frame version this crate writes and reads.
pub const SEAL_VERSION: u8 = 1;
/// Bytes sealing adds to a message: magic, version, key id, nonce and tag.
pub const SEAL_OVERHEAD: usize = HEAD_LEN + NONCE_LEN + TAG_LEN;

const HEAD_LEN: usize = 2 + 1 + 4;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A 256-bit key. Its `Debug` output shows only its [`KeyId`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// A key from 32 bytes, which must be secret and uniformly random (for example
    /// from the operating system's RNG, or `openssl rand -hex 32`).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        SecretKey(bytes)
    }

    /// The key's public fingerprint, carried in every frame it seals.
    pub fn id(&self) -> KeyId {
        let h = Sha256::new().chain_update(b"rumormill key id v1").chain_update(self.0).finalize();
        KeyId(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    }
}

impl core::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

/// A key's public fingerprint: 32 bits of a hash of the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct KeyId(pub u32);

impl core::fmt::Display for KeyId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// Keys that open messages, one of which (the primary) seals.
///
/// Rotating without downtime: add the new key on every node, then make it primary
/// on every node, then remove the old key from every node. At every step each
/// node can open what every other node seals.
///
/// ```
/// use rumormill::{ClusterName, Generation, Keyring, NodeId, NonceSequence, SecretKey};
/// let cluster = ClusterName::new("prod")?;
/// let (old, new) = (SecretKey::from_bytes([1; 32]), SecretKey::from_bytes([2; 32]));
/// let mut ring = Keyring::new(old.clone());
/// let mut nonces = NonceSequence::new(&NodeId::new("a")?, Generation(1), 0);
/// let sealed = ring.seal(&cluster, &mut nonces, b"hello")?;
///
/// ring.add(new.clone())?;
/// ring.set_primary(new.id())?;
/// ring.remove(old.id())?;
/// assert!(ring.open(&cluster, &sealed).is_err()); // the old key is gone
/// let again = ring.seal(&cluster, &mut nonces, b"hello")?;
/// assert_eq!(ring.open(&cluster, &again)?, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Keyring {
    primary: KeyId,
    /// Sorted by id; a handful of keys at most, so a vector beats a map.
    keys: Vec<(KeyId, SecretKey)>,
    accept_plaintext: bool,
    send_plaintext: bool,
}

impl Keyring {
    /// A keyring whose only key is the primary.
    pub fn new(primary: SecretKey) -> Self {
        Keyring {
            primary: primary.id(),
            keys: alloc::vec![(primary.id(), primary)],
            accept_plaintext: false,
            send_plaintext: false,
        }
    }

    /// The key that seals.
    pub fn primary(&self) -> KeyId {
        self.primary
    }

    /// Every key that opens, in id order.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// Adds a key that opens (adding a key already present does nothing).
    ///
    /// # Errors
    ///
    /// [`KeyringError::IdCollision`] if a different key has the same id; the
    /// keyring is unchanged.
    pub fn add(&mut self, key: SecretKey) -> Result<KeyId, KeyringError> {
        let id = key.id();
        match self.keys.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) if self.keys[at].1 == key => Ok(id),
            Ok(_) => Err(KeyringError::IdCollision(id)),
            Err(at) => {
                self.keys.insert(at, (id, key));
                Ok(id)
            }
        }
    }

    /// Makes a key already in the keyring the one that seals.
    ///
    /// # Errors
    ///
    /// [`KeyringError::Unknown`] if it is not in the keyring; nothing changed.
    pub fn set_primary(&mut self, id: KeyId) -> Result<(), KeyringError> {
        self.find(id).ok_or(KeyringError::Unknown(id))?;
        self.primary = id;
        Ok(())
    }

    /// Removes a key: messages sealed with it no longer open.
    ///
    /// # Errors
    ///
    /// [`KeyringError::Unknown`] if it is not in the keyring, and
    /// [`KeyringError::IsPrimary`] if it is the primary; nothing changed.
    pub fn remove(&mut self, id: KeyId) -> Result<(), KeyringError> {
        if id == self.primary {
            return Err(KeyringError::IsPrimary(id));
        }
        let at = self.keys.binary_search_by_key(&id, |(i, _)| *i).map_err(|_| KeyringError::Unknown(id))?;
        self.keys.remove(at);
        Ok(())
    }

    /// Whether plain (unsealed) messages are accepted, and whether this node sends
    /// its messages plain, for turning encryption on in a live cluster: first give
    /// every node a keyring that accepts and sends plain messages (every node can
    /// now open sealed ones), then stop sending plain on every node, then stop
    /// accepting plain. Both are off by default.
    pub fn set_plaintext(&mut self, accept: bool, send: bool) {
        self.accept_plaintext = accept;
        self.send_plaintext = send;
    }

    /// Whether plain messages are accepted (see [`Keyring::set_plaintext`]).
    pub fn accepts_plaintext(&self) -> bool {
        self.accept_plaintext
    }

    /// Whether this node sends plain messages (see [`Keyring::set_plaintext`]).
    pub fn sends_plaintext(&self) -> bool {
        self.send_plaintext
    }

    fn find(&self, id: KeyId) -> Option<&SecretKey> {
        self.keys.binary_search_by_key(&id, |(i, _)| *i).ok().map(|at| &self.keys[at].1)
    }

    /// Seals a message with the primary key and the next nonce of `nonces`. The
    /// frame is [`SEAL_OVERHEAD`] bytes longer than the message.
    ///
    /// # Errors
    ///
    /// [`SealError::NoncesExhausted`] after 2^64 messages in one generation.
    pub fn seal(
        &self,
        cluster: &ClusterName,
        nonces: &mut NonceSequence,
        message: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let nonce = nonces.next().ok_or(SealError::NoncesExhausted)?;
        // the primary is always in the keyring: only a message of about 256 GiB fails
        self.seal_with(self.primary, cluster, nonce, message).ok_or(SealError::TooLong)
    }

    /// Seals with a given key and nonce; `None` if the key is not in the keyring
    /// (or the message is too long). Only [`Keyring::seal`] chooses nonces for
    /// sending; this is for checking that opening inverts sealing.
    pub(crate) fn seal_with(
        &self,
        id: KeyId,
        cluster: &ClusterName,
        nonce: [u8; NONCE_LEN],
        message: &[u8],
    ) -> Option<Vec<u8>> {
        let key = self.find(id)?;
        let mut out = Vec::with_capacity(message.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&SEAL_MAGIC);
        out.push(SEAL_VERSION);
        out.extend_from_slice(&id.0.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(message);
        let aad = associated_data(&out[..HEAD_LEN], cluster);
        let start = HEAD_LEN + NONCE_LEN;
        let tag = XChaCha20Poly1305::new(&key.0.into())
            .encrypt_inout_detached(&nonce.into(), &aad, (&mut out[start..]).into())
            .ok()?;
        out.extend_from_slice(&tag);
        Some(out)
    }

    /// Opens a sealed frame: the message inside, if a key of the keyring sealed
    /// it for this cluster and nobody changed a bit of it since. Allocates the
    /// message's length, no more.
    ///
    /// # Errors
    ///
    /// [`OpenError`] says why; nothing is returned then.
    pub fn open(&self, cluster: &ClusterName, frame: &[u8]) -> Result<Vec<u8>, OpenError> {
        if frame.get(..2) != Some(&SEAL_MAGIC[..]) {
            return Err(OpenError::NotSealed);
        }
        if frame.len() < SEAL_OVERHEAD {
            return Err(OpenError::Truncated { len: frame.len() });
        }
        if frame[2] != SEAL_VERSION {
            return Err(OpenError::UnsupportedVersion(frame[2]));
        }
        let id = KeyId(u32::from_be_bytes([frame[3], frame[4], frame[5], frame[6]]));
        let key = self.find(id).ok_or(OpenError::UnknownKey(id))?;
        let (body, tag) = frame.split_at(frame.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = body[HEAD_LEN..HEAD_LEN + NONCE_LEN].try_into().expect("length checked");
        let tag: [u8; TAG_LEN] = tag.try_into().expect("length checked");
        let mut message = body[HEAD_LEN + NONCE_LEN..].to_vec();
        let aad = associated_data(&frame[..HEAD_LEN], cluster);
        XChaCha20Poly1305::new(&key.0.into())
            .decrypt_inout_detached(&nonce.into(), &aad, message.as_mut_slice().into(), &tag.into())
            .map_err(|_| OpenError::Unauthentic)?;
        Ok(message)
    }
}

impl PartialEq for Keyring {
    /// Keyrings are equal when they hold the same keys, primary and settings.
    fn eq(&self, other: &Self) -> bool {
        self.primary == other.primary
            && self.keys == other.keys
            && self.accept_plaintext == other.accept_plaintext
            && self.send_plaintext == other.send_plaintext
    }
}

impl core::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary)
            .field("keys", &self.keys.iter().map(|(id, _)| *id).collect::<Vec<_>>())
            .field("accept_plaintext", &self.accept_plaintext)
            .field("send_plaintext", &self.send_plaintext)
            .finish()
    }
}

fn associated_data(head: &[u8], cluster: &ClusterName) -> Vec<u8> {
    let mut aad = Vec::with_capacity(head.len() + cluster.as_bytes().len());
    aad.extend_from_slice(head);
    aad.extend_from_slice(cluster.as_bytes());
    aad
}

/// The nonces one node uses in one generation: a 16-byte prefix hashed from its
/// id, its generation and a salt, then a 64-bit counter. Two nodes, or two lives
/// of one node, share a prefix only if they share id, generation and salt, or by a
/// 128-bit hash collision; the counter never wraps. So nonces never repeat under
/// a key while every life of a node takes a newer generation, as the protocol
/// requires, whatever RNG the caller passes.
///
/// The salt guards the case the protocol forbids but a careless restart can
/// cause: a node started again at a generation it used before (its clock went
/// back, or `Generation::from_secs` in the same second). A
/// [`Gossiper`](crate::Gossiper) salts with the time it was created (ms) and one
/// draw of its RNG, so its lives repeat nonces only if they were started at the
/// same millisecond, at the same generation, with RNGs that draw the same.
///
/// ```
/// use rumormill::{Generation, NodeId, NonceSequence};
/// let a = NodeId::new("a")?;
/// let mut first = NonceSequence::new(&a, Generation(1), 0);
/// let mut restarted = NonceSequence::new(&a, Generation(2), 0);
/// assert_ne!(first.next(), restarted.next());
/// assert_ne!(first.next(), NonceSequence::new(&a, Generation(1), 0).next());
/// // a life that reuses generation 1 by mistake, with another salt
/// assert_ne!(NonceSequence::new(&a, Generation(1), 7).next(), NonceSequence::new(&a, Generation(1), 0).next());
/// # Ok::<(), rumormill::InvalidInput>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NonceSequence {
    generation: Generation,
    prefix: [u8; 16],
    next: Option<u64>,
}

impl NonceSequence {
    /// The sequence of `node` in `generation` with `salt`, from its first nonce.
    pub fn new(node: &NodeId, generation: Generation, salt: u128) -> Self {
        let id = node.as_bytes();
        let h = Sha256::new()
            .chain_update(b"rumormill nonce v2")
            .chain_update([id.len() as u8])
            .chain_update(id)
            .chain_update(generation.0.to_be_bytes())
            .chain_update(salt.to_be_bytes())
            .finalize();
        let mut prefix = [0; 16];
        prefix.copy_from_slice(&h[..16]);
        NonceSequence { generation, prefix, next: Some(0) }
    }

    /// The generation the sequence belongs to.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The next nonce, or `None` once all 2^64 are used.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<[u8; 24]> {
        let n = self.next?;
        self.next = n.checked_add(1);
        let mut nonce = [0; 24];
        nonce[..16].copy_from_slice(&self.prefix);
        nonce[16..].copy_from_slice(&n.to_be_bytes());
        Some(nonce)
    }
}

/// Why a keyring was not changed. Nothing changed in every case.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The key is not in the keyring.
    #[error("key {0} is not in the keyring (nothing changed)")]
    Unknown(KeyId),
    /// The primary key cannot be removed; make another key primary first.
    #[error("key {0} is the primary key: make another one primary first (nothing changed)")]
    IsPrimary(KeyId),
    /// A different key with the same 32-bit id is in the keyring.
    #[error("a different key with id {0} is already in the keyring (nothing changed)")]
    IdCollision(KeyId),
}

/// Why a message could not be sealed. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// 2^64 messages were sealed in this generation; restart with a newer one.
    #[error("all 2^64 nonces of this generation are used: restart with a newer generation")]
    NoncesExhausted,
    /// The message is too long for the cipher (about 256 GiB).
    #[error("the message is too long to seal")]
    TooLong,
}

/// Why a frame did not open. No state changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// It does not start with [`SEAL_MAGIC`]: a plain message, or noise.
    #[error("not a sealed frame")]
    NotSealed,
    /// Shorter than the [`SEAL_OVERHEAD`] every sealed frame has.
    #[error("a sealed frame of {len} bytes is shorter than the {SEAL_OVERHEAD}-byte seal overhead")]
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// A seal version this build does not read.
    #[error("sealed frame version {0}; this build reads version {SEAL_VERSION}")]
    UnsupportedVersion(u8),
    /// Sealed with a key not in the keyring (removed, or never added).
    #[error("sealed with key {0}, which is not in the keyring")]
    UnknownKey(KeyId),
    /// The tag does not match: the frame was changed, sealed for another cluster,
    /// or sealed with a different key that has the same id.
    #[error("authentication failed: tampered with, sealed for another cluster, or with another key")]
    Unauthentic,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterName {
        ClusterName::new("c").unwrap()
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let ring = Keyring::new(SecretKey::from_bytes([7; 32]));
        let mut nonces = NonceSequence::new(&NodeId::new("a").unwrap(), Generation(5), 0);
        let frame = ring.seal(&cluster(), &mut nonces, b"state of the cluster").unwrap();
        assert_eq!(frame.len(), 20 + SEAL_OVERHEAD);
        assert_eq!(ring.open(&cluster(), &frame).unwrap(), b"state of the cluster");
        for i in 0..frame.len() {
            let mut bad = frame.clone();
            bad[i] ^= 0x01;
            assert!(ring.open(&cluster(), &bad).is_err(), "byte {i} changed and still opened");
        }
        for len in 0..frame.len() {
            assert!(ring.open(&cluster(), &frame[..len]).is_err());
        }
        assert_eq!(ring.open(&ClusterName::new("d").unwrap(), &frame), Err(OpenError::Unauthentic));
    }

    #[test]
    fn the_primary_stays_and_unknown_keys_are_refused() {
        let a = SecretKey::from_bytes([1; 32]);
        let mut ring = Keyring::new(a.clone());
        assert_eq!(ring.remove(a.id()), Err(KeyringError::IsPrimary(a.id())));
        assert_eq!(ring.set_primary(KeyId(3)), Err(KeyringError::Unknown(KeyId(3))));
        assert_eq!(ring.add(a.clone()), Ok(a.id()));
        assert_eq!(ring.key_ids().count(), 1);
    }

    #[test]
    fn counters_run_out_instead_of_wrapping() {
        let mut nonces = NonceSequence::new(&NodeId::new("a").unwrap(), Generation(1), 0);
        nonces.next = Some(u64::MAX);
        assert!(nonces.next().is_some());
        assert_eq!(nonces.next(), None);
        let ring = Keyring::new(SecretKey::from_bytes([1; 32]));
        assert_eq!(ring.seal(&cluster(), &mut nonces, b"x"), Err(SealError::NoncesExhausted));
    }
}
