//! Shadow caches: two miniature copies of the adaptive policy, run on a
//! spatial sample of the lookups (one key hash in 64), that decide how
//! a miss on a ghost enters the cache.
//!
//! A key missed again soon after probation dropped it (a ghost hit) can
//! either duel `main`'s CLOCK victim on the frequency sketch, as every
//! other candidate does, or go straight to `main` (S3-FIFO's rule).
//! Neither is right for every workload: the duel keeps a loop larger than
//! the cache from flushing `main` (loop and zigzag patterns fall from
//! about 50 % to 5 % without it), while on recency-heavy traces the
//! sketch's memory of keys that have gone cold makes newly warm keys lose
//! (the P3 trace at 160,000 entries: 49 % with the duel, 55 % without).
//! The miniatures, one per rule, see the same sampled keys at 1/64 of the
//! cache's size (SHARDS-style sampling: Waldspurger et al., "Cache
//! Modeling and Optimization using Miniature Simulations", ATC '17); for
//! each period the cache takes the free rule if its miniature hit more than
//! the duel's by a clear margin in the last one, else the duel. Below
//! [`CAPACITY_MIN`] sampled entries a miniature says too little, and the
//! cache keeps the duel.
//!
//! A sampled lookup costs two miniature lookups under a lock taken with
//! `try_lock` (a busy lock skips the sample): about 8 more instructions per
//! lookup on average (callgrind, benches/peers' Zipf workload).

use super::Policy;
use super::shard::{Budget, NEVER, Shard, Slot};

/// A lookup is sampled when these bits of its hash are zero: one in 64.
/// Bits 40–45: the shard choice (bits 20 and up, as many as there are
/// shards), the index's bucket (low bits) and control byte (top seven)
/// use others, so sampled keys spread over shards and buckets like any.
/// Sparser samples (1/128, 1/256) gave P3 at 160,000 entries 49.8–53.9 %:
/// too few keys for a stable verdict.
const SAMPLE_MASK: u64 = 63 << 40;

/// The size of a miniature relative to the cache.
const SAMPLE_RATE: u64 = 64;

/// The smallest miniature (in entries) whose verdict the cache follows.
pub(crate) const CAPACITY_MIN: u64 = 256;

/// A period lasts this many times the miniature's size in sampled
/// lookups (and at least [`PERIOD_LOOKUPS_MIN`]). On P3 at 160,000
/// entries, 3 gave 52.8–54.2 % (median 53.9 %, eight runs); 10 turned to
/// the free rule in one run of three (49.0–53.2 %), late in the trace.
const PERIOD_CAPACITIES: u64 = 3;

/// The shortest period, in sampled lookups.
const PERIOD_LOOKUPS_MIN: u64 = 1_000;

/// Ghost hits enter freely for the next period only when that miniature
/// hit more than the duel's by this share of the period's lookups (in
/// thousandths); the duel is the default. Miniatures of a loop tie but
/// for a period's noise of about 1 %.
const MARGIN_PERMILLE: u64 = 10;

/// Whether a lookup of `hash` is sampled.
#[inline]
pub(crate) fn sampled(hash: u64) -> bool {
    hash & SAMPLE_MASK == 0
}

/// The two miniatures: `[duel, free]` (how a ghost hit enters `main`).
#[derive(Debug)]
pub(crate) struct Shadow {
    variants: [Shard<u64, ()>; 2],
    /// Hits of each miniature in the current period.
    hits: [u64; 2],
    /// Sampled lookups in the current period.
    lookups: u64,
    /// The miniatures' size in entries (0 until the first period ends).
    capacity: u64,
    /// The rule in force: ghost hits enter `main` freely.
    ghost_free: bool,
}

impl Shadow {
    pub(crate) fn new() -> Self {
        Self {
            variants: [
                Shard::new(Policy::Adaptive, 0x5bd1_e995),
                Shard::new(Policy::Adaptive, 0x2545_f491),
            ],
            hits: [0; 2],
            lookups: 0,
            capacity: 0,
            ghost_free: false,
        }
    }

    /// Runs a sampled lookup of `hash` through both miniatures, with the
    /// cache's probation share. When a period ends, resizes them to
    /// `entries()` (the cache's entry count) / 64 and returns the rule
    /// the cache should use from now on (`true`: ghost hits enter `main`
    /// freely).
    pub(crate) fn lookup(
        &mut self,
        hash: u64,
        small_permille: u32,
        entries: impl FnOnce() -> u64,
    ) -> Option<bool> {
        self.lookups += 1;
        if self.capacity >= CAPACITY_MIN {
            for (variant, ghost_free) in [(0, false), (1, true)] {
                let budget = Budget {
                    share_bytes: self.capacity,
                    small_permille,
                    ghost_free,
                };
                if self.access(variant, hash, budget) {
                    self.hits[variant] += 1;
                }
            }
        }
        let period = (PERIOD_CAPACITIES * self.capacity).max(PERIOD_LOOKUPS_MIN);
        if self.lookups < period {
            return None;
        }
        let margin = self.lookups * MARGIN_PERMILLE / 1000;
        let [duel, free] = self.hits;
        self.ghost_free = self.capacity >= CAPACITY_MIN && free > duel + margin;
        self.hits = [0; 2];
        self.lookups = 0;
        self.capacity = entries() / SAMPLE_RATE;
        Some(self.ghost_free)
    }

    /// One lookup in a miniature (entries weigh 1, so its budget is in
    /// entries): a hit bumps the entry, a miss inserts it after making
    /// room. Returns whether it hit.
    fn access(&mut self, variant: usize, hash: u64, budget: Budget) -> bool {
        let shard = &mut self.variants[variant];
        if let Some(index) = shard.find(hash, &hash) {
            if let Some(entry) = shard.entry(index) {
                entry.touch();
            }
            return true;
        }
        while shard.len() as u64 >= budget.share_bytes {
            if shard.evict_one(0, budget).is_none() {
                break;
            }
        }
        shard.insert_new(hash, Slot::Present(()), hash, 1, NEVER, budget);
        false
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::cache::{Cache, ENTRY_OVERHEAD_BYTES};

    /// A hash that is sampled, for key `i` (distinct keys, distinct hashes).
    fn key(i: u64) -> u64 {
        // Bits 40..46 stay zero; the rest mixes `i`.
        let mixed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (mixed & !SAMPLE_MASK) | 1
    }

    fn run(shadow: &mut Shadow, stream: impl Iterator<Item = u64>, entries: u64) -> Vec<bool> {
        stream
            .filter_map(|i| shadow.lookup(key(i), 10, || entries))
            .collect()
    }

    #[test]
    fn sampling_takes_one_hash_in_64() {
        let taken = (0..64_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .filter(|&h| sampled(h))
            .count();
        assert!((800..1200).contains(&taken), "{taken}");
    }

    #[test]
    fn a_cache_too_small_to_sample_keeps_the_duel() {
        let mut shadow = Shadow::new();
        // 64 × 100 entries: miniatures of 100, below the minimum.
        let decisions = run(&mut shadow, (0..20_000).map(|i| i % 50), 6_400);
        assert!(!decisions.is_empty());
        assert!(decisions.iter().all(|&free| !free));
        assert_eq!(shadow.hits, [0, 0], "nothing was simulated");
    }

    #[test]
    fn a_cache_looping_over_twice_its_size_keeps_half_its_hits() {
        // Large enough to be sampled (miniatures of 320 entries). Ghost
        // hits let in freely would flush `main` every pass (about 5 %).
        let entries = 20_480;
        let cache: Cache<u64, u64> = Cache::builder()
            .max_bytes(entries * (16 + ENTRY_OVERHEAD_BYTES))
            .weigher(|_: &u64, _: &u64| 16)
            .build();
        let mut hits = 0u64;
        let trace = (0..30u64).flat_map(|_| 0..2 * entries);
        let mut lookups = 0u64;
        for key in trace {
            lookups += 1;
            if cache.get(&key).is_some() {
                hits += 1;
            } else {
                cache.insert(key, key).unwrap();
            }
        }
        let ratio = hits as f64 / lookups as f64;
        assert!(ratio > 0.45, "{ratio}");
    }

    #[test]
    fn a_shifting_working_set_frees_ghost_hits() {
        let mut shadow = Shadow::new();
        // Miniatures of 500 entries. Each phase reuses a fresh set of
        // 450 keys, each key many times but with reuse distances longer
        // than probation: the sketch remembers the previous phases' keys
        // as frequent, so under the duel each new set loses to the old.
        let mut rng = 0x1234_5678_u64;
        let stream = (0..40u64).flat_map(move |phase| {
            (0..20_000u64)
                .map(move |_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    phase * 1_000 + rng % 450
                })
                .collect::<Vec<_>>()
        });
        let decisions = run(&mut shadow, stream, 500 * SAMPLE_RATE);
        let free = decisions.iter().filter(|&&free| free).count();
        assert!(free * 2 > decisions.len(), "{decisions:?}");
    }
}
