//! The accelerator's statistics: DAX's cache hit and miss metrics, counted
//! in per-thread stripes so a hit writes only a cache line its thread owns.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::super::CacheStats;

/// A snapshot of an accelerator's counters (DAX's `ItemCacheHits`,
/// `ItemCacheMisses`, `QueryCacheHits`, `QueryCacheMisses`, ...), counted
/// from when it was built, and of its two caches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AcceleratorStats {
    /// Item lookups (`get_item`, and each key of `batch_get_item`) served
    /// from the item cache, cached absences and shared in-flight misses
    /// included.
    pub item_hits: u64,
    /// Item lookups that read the table.
    pub item_misses: u64,
    /// `query` and `scan` pages served from the query cache.
    pub query_hits: u64,
    /// `query` and `scan` pages that read the table.
    pub query_misses: u64,
    /// Reads passed through uncached: consistent reads, transactional
    /// reads, and requests the table must answer with an error.
    pub pass_through_reads: u64,
    /// Item-cache entries written after a table commit (write-through and
    /// transaction refreshes).
    pub item_writes: u64,
    /// Query-cache entries dropped by writes (opt-in mode only).
    pub query_invalidations: u64,
    /// The item cache's own statistics (bytes, entries, evictions).
    pub item_cache: CacheStats,
    /// The query cache's own statistics.
    pub query_cache: CacheStats,
}

impl AcceleratorStats {
    /// `item_hits / (item_hits + item_misses)`, or 0 before any lookup.
    pub fn item_hit_ratio(&self) -> f64 {
        ratio(self.item_hits, self.item_misses)
    }

    /// `query_hits / (query_hits + query_misses)`, or 0 before any lookup.
    pub fn query_hit_ratio(&self) -> f64 {
        ratio(self.query_hits, self.query_misses)
    }
}

fn ratio(hits: u64, misses: u64) -> f64 {
    let lookups = hits + misses;
    if lookups == 0 {
        0.0
    } else {
        hits as f64 / lookups as f64
    }
}

/// What a counter counts.
#[derive(Debug, Clone, Copy)]
pub(super) enum Counter {
    ItemHit,
    ItemMiss,
    QueryHit,
    QueryMiss,
    PassThrough,
    ItemWrite,
    QueryInvalidation,
}

const COUNTERS: usize = 7;

/// Counter stripes (a power of two).
const STRIPES: usize = 8;

/// Per-thread-striped event counters.
#[derive(Debug)]
pub(super) struct Counters {
    stripes: Box<[CachePadded<[AtomicU64; COUNTERS]>]>,
}

impl Default for Counters {
    fn default() -> Self {
        let stripe = || CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)));
        Self {
            stripes: (0..STRIPES).map(|_| stripe()).collect(),
        }
    }
}

/// This thread's stripe: a Fibonacci hash of the address of a thread-local
/// (distinct for every live thread), so no shared counter hands them out.
fn stripe_of_this_thread() -> usize {
    thread_local! {
        static MARK: u8 = const { 0 };
    }
    let address = MARK.with(|mark| std::ptr::from_ref(mark) as usize as u64);
    (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - STRIPES.trailing_zeros())) as usize
}

impl Counters {
    /// Adds `n` to `counter`.
    pub(super) fn add(&self, counter: Counter, n: u64) {
        self.stripes[stripe_of_this_thread()][counter as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// The total of `counter` over all stripes.
    pub(super) fn sum(&self, counter: Counter) -> u64 {
        let count = |stripe: &CachePadded<[AtomicU64; COUNTERS]>| {
            stripe[counter as usize].load(Ordering::Relaxed)
        };
        self.stripes.iter().map(count).sum()
    }
}
