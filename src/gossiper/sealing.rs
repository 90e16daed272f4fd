//! The Gossiper's sealing layer (feature `encryption`): every message it sends is
//! sealed with the keyring's primary key, and every frame it receives is opened
//! before it is decoded. Without the feature, or without a keyring, bytes pass
//! through unchanged.

use alloc::borrow::Cow;
use alloc::vec::Vec;

use super::Gossiper;

/// Indexes of [`Metrics::seal_rejected`](crate::Metrics::seal_rejected).
#[cfg(feature = "encryption")]
mod reason {
    pub(super) const PLAIN_REFUSED: usize = 0;
    pub(super) const MALFORMED: usize = 1;
    pub(super) const UNKNOWN_KEY: usize = 2;
    pub(super) const UNAUTHENTIC: usize = 3;
    pub(super) const NO_KEYRING: usize = 4;
}

#[cfg(feature = "encryption")]
impl<R: rand_core::Rng> Gossiper<R> {
    /// The keyring, to rotate keys at run time (see [`Keyring`](crate::Keyring)).
    /// `None` if the node runs without one.
    pub fn keyring_mut(&mut self) -> Option<&mut crate::Keyring> {
        self.config.keyring.as_mut()
    }

    /// Turns sealing on (`Some`) or off (`None`) at run time.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ValueDoesNotFit`](crate::ConfigError::ValueDoesNotFit) if
    /// the largest value would no longer fit a sealed message; nothing changed.
    pub fn set_keyring(&mut self, keyring: Option<crate::Keyring>) -> Result<(), crate::ConfigError> {
        let mut config = self.config.clone();
        config.keyring = keyring;
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// The bytes to send for an encoded message, or `None` if it cannot be sealed.
    pub(super) fn seal(&mut self, plain: Vec<u8>) -> Option<Vec<u8>> {
        let Some(ring) = self.config.keyring.as_ref().filter(|r| !r.sends_plaintext()) else {
            return Some(plain);
        };
        let generation = self.view.local_generation();
        let nonces = match &mut self.nonces {
            Some(n) if n.generation() == generation => n,
            slot => {
                // salted with this life's start and a draw: see `NonceSequence`
                let salt = u128::from(self.started.as_millis()) << 64 | u128::from(self.rng.next_u64());
                slot.insert(crate::NonceSequence::new(self.view.local_id(), generation, salt))
            }
        };
        ring.seal(&self.config.cluster, nonces, &plain).ok()
    }

    /// The plain message in received bytes, or `None` (counted) if they are refused.
    pub(super) fn unseal<'a>(&mut self, bytes: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        let sealed = bytes.starts_with(&crate::SEAL_MAGIC);
        let refused = match (&self.config.keyring, sealed) {
            (None, false) => return Some(Cow::Borrowed(bytes)),
            (None, true) => reason::NO_KEYRING,
            (Some(ring), false) if ring.accepts_plaintext() => return Some(Cow::Borrowed(bytes)),
            (Some(_), false) => reason::PLAIN_REFUSED,
            (Some(ring), true) => match ring.open(&self.config.cluster, bytes) {
                Ok(plain) => return Some(Cow::Owned(plain)),
                Err(crate::OpenError::UnknownKey(_)) => reason::UNKNOWN_KEY,
                Err(crate::OpenError::Unauthentic) => reason::UNAUTHENTIC,
                Err(_) => reason::MALFORMED,
            },
        };
        self.metrics.seal_rejected[refused] += 1;
        None
    }
}

#[cfg(not(feature = "encryption"))]
impl<R: rand_core::Rng> Gossiper<R> {
    pub(super) fn seal(&mut self, plain: Vec<u8>) -> Option<Vec<u8>> {
        Some(plain)
    }

    pub(super) fn unseal<'a>(&mut self, bytes: &'a [u8]) -> Option<Cow<'a, [u8]>> {
        Some(Cow::Borrowed(bytes))
    }
}
