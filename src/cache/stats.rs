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

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Stripes that belong to one thread at a time (with the shared ones, a
/// power of two: the stripe index is masked, not divided).
const OWNED_STRIPES: usize = 28;
/// Stripes shared, round-robin, by the threads that found no free owned
/// stripe.
const SHARED_STRIPES: usize = 4;
const _: () = assert!((OWNED_STRIPES + SHARED_STRIPES).is_power_of_two());

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
    stripes: Box<[CachePadded<[AtomicU64; COUNTERS]>; OWNED_STRIPES + SHARED_STRIPES]>,
}

impl Default for StripedCounters {
    fn default() -> Self {
        Self {
            stripes: Box::new(std::array::from_fn(|_| {
                CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0)))
            })),
        }
    }
}

/// Which owned stripe slots are taken, process-wide.
static STRIPE_OWNED: [AtomicBool; OWNED_STRIPES] =
    [const { AtomicBool::new(false) }; OWNED_STRIPES];

/// In [`STRIPE`]: the thread owns the stripe (else it shares it).
const STRIPE_OWNED_BIT: usize = 1 << 8;
/// In [`STRIPE`]: the thread has no stripe yet.
const STRIPE_UNSET: usize = usize::MAX;

thread_local! {
    /// This thread's stripe index, with [`STRIPE_OWNED_BIT`] if it owns
    /// it. A plain `Cell` (no destructor) so the hot path reads it with one
    /// load; the claim's release lives in [`CLAIM`].
    static STRIPE: Cell<usize> = const { Cell::new(STRIPE_UNSET) };
    /// Releases this thread's owned stripe when the thread exits.
    static CLAIM: StripeRelease = const { StripeRelease(Cell::new(None)) };
}

/// Gives an owned stripe back when its thread exits.
struct StripeRelease(Cell<Option<usize>>);

impl Drop for StripeRelease {
    fn drop(&mut self) {
        if let Some(index) = self.0.get() {
            // Later counts of this thread (from other thread-local
            // destructors) go to a shared stripe.
            let _ = STRIPE.try_with(|stripe| stripe.set(OWNED_STRIPES));
            STRIPE_OWNED[index].store(false, Ordering::Release);
        }
    }
}

/// Claims a stripe for this thread: a free owned one if any (registered
/// for release at thread exit), else a shared one.
#[cold]
fn claim_stripe() -> usize {
    for (index, slot) in STRIPE_OWNED.iter().enumerate() {
        if !slot.load(Ordering::Relaxed)
            && slot
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // A thread already tearing down its thread-locals cannot
            // register the release: it gives the stripe straight back.
            if CLAIM.try_with(|claim| claim.0.set(Some(index))).is_err() {
                slot.store(false, Ordering::Release);
                break;
            }
            return index | STRIPE_OWNED_BIT;
        }
    }
    static NEXT_SHARED: AtomicUsize = AtomicUsize::new(0);
    OWNED_STRIPES + NEXT_SHARED.fetch_add(1, Ordering::Relaxed) % SHARED_STRIPES
}

impl StripedCounters {
    /// Adds `n` to `counter`.
    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let stripe = STRIPE
            .try_with(|stripe| {
                let mut value = stripe.get();
                if value == STRIPE_UNSET {
                    value = claim_stripe();
                    stripe.set(value);
                }
                value
            })
            .unwrap_or(OWNED_STRIPES);
        let index = (stripe & !STRIPE_OWNED_BIT) & (OWNED_STRIPES + SHARED_STRIPES - 1);
        let cell = &self.stripes[index][counter as usize];
        if stripe & STRIPE_OWNED_BIT != 0 {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            );
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
