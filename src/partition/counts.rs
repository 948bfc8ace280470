//! Entry counts and sizes kept exactly in memory: of a table, an index or
//! one partition of a table.

use std::sync::atomic::{AtomicI64, Ordering};

/// Live entry count and size of a table, index or partition, exact while
/// open.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    items: AtomicI64,
    bytes: AtomicI64,
}

impl Counts {
    pub(crate) fn new(items: i64, bytes: i64) -> Self {
        Self {
            items: AtomicI64::new(items),
            bytes: AtomicI64::new(bytes),
        }
    }

    /// Records that an entry of `old` bytes became one of `new` bytes
    /// (`None`: absent).
    pub(crate) fn account(&self, old: Option<usize>, new: Option<usize>) {
        let delta_items = i64::from(new.is_some()) - i64::from(old.is_some());
        let delta_bytes = new.unwrap_or(0) as i64 - old.unwrap_or(0) as i64;
        if delta_items != 0 {
            self.items.fetch_add(delta_items, Ordering::Relaxed);
        }
        if delta_bytes != 0 {
            self.bytes.fetch_add(delta_bytes, Ordering::Relaxed);
        }
    }

    /// Sets the counts (at open, after a recount, after a split).
    pub(crate) fn set(&self, items: i64, bytes: i64) {
        self.items.store(items, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    /// (entry count, size in bytes), as signed deltas may be negative.
    pub(crate) fn signed(&self) -> (i64, i64) {
        (
            self.items.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    /// (entry count, size in bytes).
    pub(crate) fn get(&self) -> (u64, u64) {
        (
            self.items.load(Ordering::Relaxed).max(0) as u64,
            self.bytes.load(Ordering::Relaxed).max(0) as u64,
        )
    }
}
