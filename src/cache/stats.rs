//! The cache's statistics: counters striped per thread, so that counting a
//! hit writes only a cache line the counting thread owns (no shared counter
//! bounces between cores on the hit path).
//!
//! A thread claims one of [`OWNED_STRIPES`] process-wide stripe slots the
//! first time it counts and keeps it until it exits; it is then the only
//! writer of that stripe in every cache, so it adds with a plain load and
//! store, not a locked read-modify-write (a `lock xadd` per lookup cost
//! about a tenth of the Zipf get/insert mix in benches/peers). The claim
//! is released with `Release` and taken with `Acquire`, so the next owner
//! continues from the last value its predecessor wrote: no update is lost.
//! Threads beyond the owned slots share [`SHARED_STRIPES`] stripes with
//! atomic adds.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Stripes that belong to one thread at a time.
const OWNED_STRIPES: usize = 32;
/// Stripes shared, round-robin, by the threads that found no free owned
/// stripe.
const SHARED_STRIPES: usize = 4;

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

/// Per-thread-striped event counters: [`OWNED_STRIPES`] owned stripes,
/// then [`SHARED_STRIPES`] shared ones.
#[derive(Debug)]
pub(crate) struct StripedCounters {
    stripes: Box<[CachePadded<[AtomicU64; COUNTERS]>]>,
}

impl Default for StripedCounters {
    fn default() -> Self {
        Self {
            stripes: (0..OWNED_STRIPES + SHARED_STRIPES)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
        }
    }
}

/// Which owned stripe slots are taken, process-wide.
static STRIPE_OWNED: [AtomicBool; OWNED_STRIPES] =
    [const { AtomicBool::new(false) }; OWNED_STRIPES];

/// A thread's stripe: owned (released when the thread exits) or shared.
struct StripeClaim {
    index: usize,
    owned: bool,
}

impl StripeClaim {
    fn take() -> Self {
        for (index, slot) in STRIPE_OWNED.iter().enumerate() {
            if !slot.load(Ordering::Relaxed)
                && slot
                    .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                return Self { index, owned: true };
            }
        }
        static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);
        let shared = NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % SHARED_STRIPES;
        Self {
            index: OWNED_STRIPES + shared,
            owned: false,
        }
    }
}

impl Drop for StripeClaim {
    fn drop(&mut self) {
        if self.owned {
            STRIPE_OWNED[self.index].store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static STRIPE: StripeClaim = StripeClaim::take();
}

impl StripedCounters {
    /// Adds `n` to `counter`.
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        if n == 0 {
            return;
        }
        // A thread already tearing down its thread-locals counts on a
        // shared stripe.
        let (index, owned) = STRIPE
            .try_with(|claim| (claim.index, claim.owned))
            .unwrap_or((OWNED_STRIPES, false));
        let cell = &self.stripes[index][counter as usize];
        if owned {
            cell.store(cell.load(Ordering::Relaxed) + n, Ordering::Relaxed);
        } else {
            cell.fetch_add(n, Ordering::Relaxed);
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

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_from_more_threads_than_owned_stripes_are_all_kept() {
        let counters = StripedCounters::default();
        let threads = OWNED_STRIPES + 2 * SHARED_STRIPES;
        // Two waves: the second reuses the stripes the first released.
        for _ in 0..2 {
            let barrier = std::sync::Barrier::new(threads);
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        barrier.wait();
                        for _ in 0..1_000 {
                            counters.add(Counter::Hit, 1);
                        }
                        counters.add(Counter::Miss, 3);
                    });
                }
            });
        }
        assert_eq!(counters.sum(Counter::Hit), 2 * threads as u64 * 1_000);
        assert_eq!(counters.sum(Counter::Miss), 2 * threads as u64 * 3);
    }
}
