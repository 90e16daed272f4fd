//! Ranges of node ids, which digest pages cover.

use core::fmt;

use crate::NodeId;

/// A half-open range of node ids in byte order: `start` included, `end` excluded,
/// `None` meaning unbounded on that side.
///
/// A digest page covers a range and lists every node its sender knows in it, so
/// a node in the range that the page does not list is one the sender does not know.
///
/// ```
/// use rumormill::{NodeId, NodeRange};
/// let b = NodeId::new("b")?;
/// let range = NodeRange::new(Some(b.clone()), None)?;
/// assert!(range.contains(&b));
/// assert!(!range.contains(&NodeId::new("a")?));
/// assert!(NodeRange::FULL.contains(&NodeId::new("a")?));
/// # Ok::<(), rumormill::InvalidInput>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct NodeRange {
    start: Option<NodeId>,
    end: Option<NodeId>,
}

impl NodeRange {
    /// Every node id.
    pub const FULL: NodeRange = NodeRange { start: None, end: None };

    /// A range; fails if `start` is not below `end`.
    pub fn new(start: Option<NodeId>, end: Option<NodeId>) -> Result<Self, crate::InvalidInput> {
        if let (Some(s), Some(e)) = (&start, &end)
            && s >= e
        {
            return Err(crate::InvalidInput::EmptyRange);
        }
        Ok(NodeRange { start, end })
    }

    /// The first id in the range, if bounded below.
    pub fn start(&self) -> Option<&NodeId> {
        self.start.as_ref()
    }

    /// The first id after the range, if bounded above.
    pub fn end(&self) -> Option<&NodeId> {
        self.end.as_ref()
    }

    /// Whether `id` lies in the range.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.start.as_ref().is_none_or(|s| id >= s) && self.end.as_ref().is_none_or(|e| id < e)
    }
}

impl fmt::Display for NodeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.start {
            Some(s) => write!(f, "[{s}, ")?,
            None => f.write_str("[.., ")?,
        }
        match &self.end {
            Some(e) => write!(f, "{e})"),
            None => f.write_str("..)"),
        }
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for NodeRange {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let a: Option<NodeId> = u.arbitrary()?;
        let b: Option<NodeId> = u.arbitrary()?;
        match (a, b) {
            (Some(x), Some(y)) if x == y => Ok(NodeRange { start: Some(x), end: None }),
            (Some(x), Some(y)) if x > y => Ok(NodeRange { start: Some(y), end: Some(x) }),
            (start, end) => Ok(NodeRange { start, end }),
        }
    }
}
