//! The cache's statistics: counters striped per thread, so that counting a
//! hit writes only a cache line the counting thread owns (no shared counter
//! bounces between cores on the hit path).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Counter stripes; threads are spread over them round-robin.
const STRIPES: usize = 16;

/// A snapshot of a cache's counters. Counts start at zero when the cache
/// is built; `bytes_used` and `entries` are the current totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Lookups that found a live entry (a cached value or a cached absence).
    pub hits: u64,
    /// Lookups that found nothing live.
    pub misses: u64,
    /// Entries written by `insert*`, `insert_absent` and loads.
    pub inserts: u64,
    /// Entries evicted to make room within the byte budget.
    pub evicted_size: u64,
    /// Entries dropped because their TTL had passed.
    pub evicted_expired: u64,
    /// Entries dropped by `remove` or `invalidate_all`, or replaced by an
    /// insert under the same key.
    pub removed: u64,
    /// Loader runs of `get_or_load*` (concurrent misses on one key run one).
    pub loads: u64,
    /// Loader runs that returned an error.
    pub load_errors: u64,
    /// Bytes charged to the budget now (weights plus per-entry overhead).
    pub bytes_used: u64,
    /// Entries resident now, expired ones not yet reclaimed included.
    pub entries: u64,
}

impl CacheStats {
    /// `hits / (hits + misses)`, or 0 before any lookup.
    pub fn hit_ratio(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

/// What a counter counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    Hit,
    Miss,
    Insert,
    EvictedSize,
    EvictedExpired,
    Removed,
    Load,
    LoadError,
}

const COUNTERS: usize = 8;

/// Per-thread-striped event counters.
#[derive(Debug)]
pub(crate) struct StripedCounters {
    stripes: Box<[CachePadded<[AtomicU64; COUNTERS]>]>,
}

impl Default for StripedCounters {
    fn default() -> Self {
        Self {
            stripes: (0..STRIPES)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }
}

fn stripe_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    STRIPE.with(|stripe| {
        let mut index = stripe.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES;
            stripe.set(index);
        }
        index
    })
}

impl StripedCounters {
    /// Adds `n` to `counter`.
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        if n != 0 {
            self.stripes[stripe_of_this_thread()][counter as usize].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total of `counter` over all stripes.
    pub(crate) fn sum(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|stripe| stripe[counter as usize].load(Ordering::Relaxed))
            .sum()
    }
}
