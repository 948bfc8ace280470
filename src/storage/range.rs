//! Key ranges and iteration direction, shared by memtables, segments and
//! merge iterators.
//!
//! Ranges are over *user* keys; every version of a user key inside the range
//! is inside it. A source restricts its own output to the range, so merging
//! layers never re-check bounds.
#![cfg_attr(not(test), allow(dead_code))]

use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

/// The order in which an iterator walks its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Internal order: user key ascending, newest version first.
    Forward,
    /// The exact reverse of internal order: user key descending, oldest
    /// version of each key first.
    Reverse,
}

/// A range of user keys with independent lower and upper bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRange {
    /// The lower bound.
    pub(crate) start: Bound<Bytes>,
    /// The upper bound.
    pub(crate) end: Bound<Bytes>,
}

impl KeyRange {
    /// Every key.
    pub(crate) fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// The range with the given bounds.
    pub(crate) fn new(start: Bound<Bytes>, end: Bound<Bytes>) -> Self {
        Self { start, end }
    }

    /// Copies any `RangeBounds` over byte slices (`..`, `a..b`, `a..=b`, ...).
    pub(crate) fn from_bounds<K: AsRef<[u8]>>(bounds: impl RangeBounds<K>) -> Self {
        let copy = |bound: Bound<&K>| match bound {
            Bound::Included(key) => Bound::Included(Bytes::copy_from_slice(key.as_ref())),
            Bound::Excluded(key) => Bound::Excluded(Bytes::copy_from_slice(key.as_ref())),
            Bound::Unbounded => Bound::Unbounded,
        };
        Self {
            start: copy(bounds.start_bound()),
            end: copy(bounds.end_bound()),
        }
    }

    /// Whether `key` lies at or after the lower bound.
    pub(crate) fn is_after_start(&self, key: &[u8]) -> bool {
        match &self.start {
            Bound::Included(start) => key >= start.as_ref(),
            Bound::Excluded(start) => key > start.as_ref(),
            Bound::Unbounded => true,
        }
    }

    /// Whether `key` lies at or before the upper bound.
    pub(crate) fn is_before_end(&self, key: &[u8]) -> bool {
        match &self.end {
            Bound::Included(end) => key <= end.as_ref(),
            Bound::Excluded(end) => key < end.as_ref(),
            Bound::Unbounded => true,
        }
    }

    /// Whether `key` lies inside the range.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.is_after_start(key) && self.is_before_end(key)
    }

    /// Whether no key can lie inside the range (for example `b..a`).
    pub(crate) fn is_empty(&self) -> bool {
        match (&self.start, &self.end) {
            (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
            (Bound::Included(start), Bound::Included(end)) => start > end,
            (Bound::Included(start), Bound::Excluded(end))
            | (Bound::Excluded(start), Bound::Included(end))
            | (Bound::Excluded(start), Bound::Excluded(end)) => start >= end,
        }
    }
}

impl Default for KeyRange {
    fn default() -> Self {
        Self::all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_rust_range_semantics() {
        let range = KeyRange::from_bounds(b"b".as_slice()..b"d".as_slice());
        assert!(!range.contains(b"a"));
        assert!(range.contains(b"b"));
        assert!(range.contains(b"c\xff"));
        assert!(!range.contains(b"d"));
        let range = KeyRange::new(
            Bound::Excluded(Bytes::from_static(b"b")),
            Bound::Included(Bytes::from_static(b"d")),
        );
        assert!(!range.contains(b"b"));
        assert!(range.contains(b"d"));
        assert!(KeyRange::all().contains(b""));
    }

    #[test]
    fn inverted_and_degenerate_ranges_are_empty() {
        let key = |k: &'static [u8]| Bytes::from_static(k);
        assert!(KeyRange::new(Bound::Included(key(b"b")), Bound::Included(key(b"a"))).is_empty());
        assert!(KeyRange::new(Bound::Included(key(b"a")), Bound::Excluded(key(b"a"))).is_empty());
        assert!(KeyRange::new(Bound::Excluded(key(b"a")), Bound::Excluded(key(b"a"))).is_empty());
        assert!(!KeyRange::new(Bound::Included(key(b"a")), Bound::Included(key(b"a"))).is_empty());
        assert!(!KeyRange::all().is_empty());
    }
}
