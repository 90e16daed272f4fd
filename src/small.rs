//! Short byte strings stored inline, longer ones shared (values, key names and,
//! with a larger inline buffer, node ids).
//!
//! Most gossiped values and custom keys are short (a status, a load figure, a
//! datacenter name). A view holds one copy per node per key, so a heap allocation
//! for each would dominate memory; up to [`INLINE`] bytes live in the handle
//! itself, which is no larger than a shared pointer.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cmp::Ordering;
use core::hash::{Hash, Hasher};

/// Bytes kept inline (the handle stays 24 bytes).
pub(crate) const INLINE: usize = 22;

/// Up to `N` bytes inline (at most 255), longer ones behind a shared pointer.
#[derive(Clone, Debug)]
pub(crate) enum Small<const N: usize = INLINE> {
    Inline { len: u8, buf: [u8; N] },
    Shared(Arc<[u8]>),
}

impl<const N: usize> Small<N> {
    pub(crate) fn new(bytes: &[u8]) -> Small<N> {
        if bytes.len() <= N {
            let mut buf = [0u8; N];
            buf[..bytes.len()].copy_from_slice(bytes);
            Small::Inline { len: bytes.len() as u8, buf }
        } else {
            Small::Shared(Arc::from(bytes))
        }
    }

    pub(crate) fn from_vec(v: alloc::vec::Vec<u8>) -> Small<N> {
        if v.len() <= N { Small::new(&v) } else { Small::Shared(Arc::from(v)) }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Small::Inline { len, buf } => &buf[..usize::from(*len)],
            Small::Shared(b) => b,
        }
    }

    /// Whether both share one allocation (then their bytes are equal).
    pub(crate) fn same(&self, other: &Small<N>) -> bool {
        matches!((self, other), (Small::Shared(a), Small::Shared(b)) if Arc::ptr_eq(a, b))
    }
}

/// A short name stored in 16 bytes: up to [`NAME_INLINE`] bytes inline, longer
/// ones behind a thin shared pointer (keys: one per value in every view, and
/// nearly always short).
#[derive(Clone, Debug)]
pub(crate) enum Name {
    Inline { len: u8, buf: [u8; NAME_INLINE] },
    Shared(Arc<Box<[u8]>>),
}

/// Bytes of a [`Name`] kept inline (the handle stays 16 bytes).
pub(crate) const NAME_INLINE: usize = 14;

impl Name {
    pub(crate) fn new(bytes: &[u8]) -> Name {
        if bytes.len() <= NAME_INLINE {
            let mut buf = [0u8; NAME_INLINE];
            buf[..bytes.len()].copy_from_slice(bytes);
            Name::Inline { len: bytes.len() as u8, buf }
        } else {
            Name::Shared(Arc::new(Box::from(bytes)))
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Name::Inline { len, buf } => &buf[..usize::from(*len)],
            Name::Shared(b) => b,
        }
    }
}

/// Equality, order and hash of the bytes, whatever the storage.
macro_rules! by_bytes {
    ([$($g:tt)*] $t:ty) => {
        impl<$($g)*> PartialEq for $t {
            fn eq(&self, other: &$t) -> bool {
                self.as_slice() == other.as_slice()
            }
        }

        impl<$($g)*> Eq for $t {}

        impl<$($g)*> Ord for $t {
            fn cmp(&self, other: &$t) -> Ordering {
                self.as_slice().cmp(other.as_slice())
            }
        }

        impl<$($g)*> PartialOrd for $t {
            fn partial_cmp(&self, other: &$t) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }

        impl<$($g)*> Hash for $t {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_slice().hash(state)
            }
        }
    };
}

by_bytes!([const N: usize] Small<N>);
by_bytes!([] Name);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_behave_alike() {
        for len in [0usize, 1, 21, 22, 23, 100] {
            let v: alloc::vec::Vec<u8> = (0..len as u8).collect();
            let a: Small = Small::new(&v);
            let b: Small = Small::from_vec(v.clone());
            assert_eq!(a.as_slice(), &v[..]);
            assert_eq!(a, b);
            assert_eq!(matches!(a, Small::Inline { .. }), len <= INLINE);
        }
        assert!(Small::<INLINE>::new(b"ab") < Small::new(b"abc"));
        assert!(Small::<INLINE>::new(&[7; 30]) > Small::new(&[7; 22]));
        assert_eq!(core::mem::size_of::<Small>(), 24);
    }

    #[test]
    fn names_short_and_long_behave_alike() {
        for len in [0usize, 1, 13, 14, 15, 100] {
            let v: alloc::vec::Vec<u8> = (0..len as u8).collect();
            let a = Name::new(&v);
            assert_eq!(a.as_slice(), &v[..]);
            assert_eq!(a, Name::new(&v));
            assert_eq!(matches!(a, Name::Inline { .. }), len <= NAME_INLINE);
        }
        assert!(Name::new(&[7; 30]) > Name::new(&[7; 14]));
        assert_eq!(core::mem::size_of::<Name>(), 16);
    }
}
