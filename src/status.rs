//! Lifecycle statuses: the values of the `STATUS` key.

use core::fmt;

use crate::{EndpointState, Key};

/// A node's lifecycle status, as the reference Gossiper writes it in `STATUS`
/// (the text before the first comma; what follows, such as tokens, is the
/// application's).
///
/// ```
/// use rumormill::Status;
/// assert_eq!(Status::parse(b"NORMAL,-9223372036854775808"), Status::Normal);
/// assert!(Status::Left.is_dead_state());
/// assert!(!Status::Shutdown.is_dead_state());
/// assert_eq!(Status::parse(b"bespoke"), Status::Other("bespoke".into()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Status {
    /// Joining the cluster.
    Boot,
    /// Joining to replace another node.
    BootReplace,
    /// A full member.
    Normal,
    /// Leaving (decommissioning).
    Leaving,
    /// Left the cluster (a dead state).
    Left,
    /// Moving its tokens.
    Moving,
    /// Being removed by another node (a dead state).
    Removing,
    /// Removed by another node (a dead state).
    Removed,
    /// Hibernating, as a replacement target (a dead state).
    Hibernate,
    /// Shut down gracefully.
    Shutdown,
    /// Any other text.
    Other(alloc::string::String),
}

impl Status {
    /// The status a `STATUS` value names.
    pub fn parse(value: &[u8]) -> Status {
        let head = value.split(|b| *b == b',').next().unwrap_or_default();
        match head {
            b"BOOT" => Status::Boot,
            b"BOOT_REPLACE" => Status::BootReplace,
            b"NORMAL" => Status::Normal,
            b"LEAVING" => Status::Leaving,
            b"LEFT" => Status::Left,
            b"MOVING" => Status::Moving,
            b"removing" => Status::Removing,
            b"removed" => Status::Removed,
            b"hibernate" => Status::Hibernate,
            b"shutdown" => Status::Shutdown,
            other => Status::Other(alloc::string::String::from_utf8_lossy(other).into_owned()),
        }
    }

    /// The status of a state, if it has a live `STATUS` value.
    pub fn of(state: &EndpointState) -> Option<Status> {
        state.live_value(&Key::STATUS).map(|v| Status::parse(v.as_bytes()))
    }

    /// The text the reference writes for it.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Boot => "BOOT",
            Status::BootReplace => "BOOT_REPLACE",
            Status::Normal => "NORMAL",
            Status::Leaving => "LEAVING",
            Status::Left => "LEFT",
            Status::Moving => "MOVING",
            Status::Removing => "removing",
            Status::Removed => "removed",
            Status::Hibernate => "hibernate",
            Status::Shutdown => "shutdown",
            Status::Other(s) => s,
        }
    }

    /// The reference's dead states (`removing`, `removed`, `LEFT`, `hibernate`): a
    /// node in one is never marked alive and is not gossiped to as unreachable.
    pub fn is_dead_state(&self) -> bool {
        matches!(self, Status::Removing | Status::Removed | Status::Left | Status::Hibernate)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_states_are_the_references_and_every_status_round_trips() {
        let all = [
            Status::Boot,
            Status::BootReplace,
            Status::Normal,
            Status::Leaving,
            Status::Left,
            Status::Moving,
            Status::Removing,
            Status::Removed,
            Status::Hibernate,
            Status::Shutdown,
            Status::Other("bespoke".into()),
        ];
        let dead: alloc::vec::Vec<&str> = all.iter().filter(|s| s.is_dead_state()).map(Status::as_str).collect();
        assert_eq!(dead, ["LEFT", "removing", "removed", "hibernate"]);
        for s in &all {
            assert_eq!(&Status::parse(s.as_str().as_bytes()), s);
            // what follows the first comma (tokens, an expiry) is the application's
            assert_eq!(&Status::parse(alloc::format!("{s},123,abc").as_bytes()), s);
        }
    }
}
