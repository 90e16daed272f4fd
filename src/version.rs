//! Generations and versions: the two numbers every piece of gossiped state carries.

use core::fmt;

/// Seconds in the year past `now` beyond which a generation is not believed.
pub const MAX_GENERATION_AHEAD_SECS: u64 = 365 * 24 * 60 * 60;

/// A node's incarnation: by convention the wall-clock second at which its process
/// started, and always larger than any generation it used before.
///
/// A newer generation replaces all state of the older one. A generation more than
/// a year ahead of the receiver's clock is ignored ([`Generation::is_believable`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Generation(pub u64);

impl Generation {
    /// Whether a peer's claim of this generation can be believed at `now`: it is not
    /// more than a year ahead of the clock. The reference checks this only for nodes
    /// it already knows; rumormill checks it for every node.
    ///
    /// ```
    /// use rumormill::{Generation, Timestamp};
    /// let now = Timestamp::from_secs(1_700_000_000);
    /// assert!(Generation(1_700_000_000).is_believable(now));
    /// assert!(!Generation(1_700_000_000 + 366 * 86_400).is_believable(now));
    /// ```
    pub fn is_believable(self, now: crate::Timestamp) -> bool {
        self.0 <= now.as_secs().saturating_add(MAX_GENERATION_AHEAD_SECS)
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A version within one generation of one node.
///
/// Every node has a single counter per generation, shared by its heartbeat and all
/// of its values: each local change takes the next number. Version 0 means
/// "nothing yet"; the first version used is 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Version(pub u64);

impl Version {
    /// Nothing yet.
    pub const ZERO: Version = Version(0);

    /// The next version, or `None` at `u64::MAX` (the counter never wraps).
    pub fn next(self) -> Option<Version> {
        self.0.checked_add(1).map(Version)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
