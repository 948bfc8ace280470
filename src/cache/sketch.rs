//! A count-min frequency sketch with 4-bit counters (Caffeine's blocked
//! `FrequencySketch` layout: 16 counters per `u64`, a key's four counters
//! in one 64-byte block, so a lookup or increment touches one cache line),
//! the popularity memory behind the cache's admission duels (TinyLFU).
//!
//! Counts age: after `10 × width` increments every counter is halved, so
//! the sketch estimates recent popularity, not all-time popularity. It lives
//! inside a shard and is only touched under the shard's write lock, so it
//! needs no atomics and costs a hit nothing.

/// Mixes a key hash into the block and counter choices (a splitmix64
/// finaliser), so keys that share low hash bits still spread.
fn spread(hash: u64) -> u64 {
    let mut h = hash ^ (hash >> 33);
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Counters saturate at this value (4 bits).
const COUNTER_MAX: u64 = 15;

/// Clears the top bit of every 4-bit counter after a right shift (halving).
const HALVE_MASK: u64 = 0x7777_7777_7777_7777;

/// The smallest table, in words.
const WIDTH_MIN_WORDS: usize = 16;

/// Words per block (64 bytes).
const BLOCK_WORDS: usize = 8;

/// A count-min sketch of 4-bit counters.
#[derive(Debug)]
pub(crate) struct FrequencySketch {
    table: Vec<u64>,
    /// Increments since the last halving.
    additions: u64,
    /// Halve every counter after this many increments.
    sample_size: u64,
}

impl FrequencySketch {
    /// A sketch sized for about `entries` distinct hot keys.
    pub(crate) fn new(entries: usize) -> Self {
        let words = entries.max(WIDTH_MIN_WORDS).next_power_of_two();
        Self {
            table: vec![0; words],
            additions: 0,
            sample_size: 10 * words as u64,
        }
    }

    /// How many keys the sketch is sized for.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn capacity(&self) -> usize {
        self.table.len()
    }

    /// Grows the sketch (forgetting its counts) when the shard holds more
    /// entries than it was sized for; weighted caches learn their entry
    /// count only as they fill.
    pub(crate) fn ensure_capacity(&mut self, entries: usize) {
        if entries > self.table.len() {
            *self = Self::new(entries.saturating_mul(2));
        }
    }

    /// The estimated recent frequency of `hash` (0..=15).
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        let mut min = COUNTER_MAX;
        for (word, shift) in self.counters(hash) {
            min = min.min((self.table[word] >> shift) & 0xf);
        }
        min as u8
    }

    /// Counts one access to `hash`.
    pub(crate) fn increment(&mut self, hash: u64) {
        self.increment_by(hash, 1);
    }

    /// Counts `times` accesses to `hash` at once: each counter ends where
    /// `times` calls of [`increment`](Self::increment) would leave it, and
    /// the increments that raised a counter count toward aging (a halving
    /// they bring on comes after all of them, not between).
    pub(crate) fn increment_by(&mut self, hash: u64, times: u8) {
        if times == 0 {
            return;
        }
        let mut lowest = COUNTER_MAX;
        for (word, shift) in self.counters(hash) {
            let counter = (self.table[word] >> shift) & 0xf;
            lowest = lowest.min(counter);
            let raised = (counter + u64::from(times)).min(COUNTER_MAX);
            self.table[word] += (raised - counter) << shift;
        }
        // The k-th single increment raises some counter while the lowest
        // is under the maximum: for the first `COUNTER_MAX - lowest`.
        let added = u64::from(times).min(COUNTER_MAX - lowest);
        if added > 0 {
            self.additions += added;
            if self.additions >= self.sample_size {
                self.halve();
            }
        }
    }

    /// The word index and bit shift of each of `hash`'s four counters: one
    /// block, two words per row, one of 16 counters in the word.
    fn counters(&self, hash: u64) -> [(usize, u64); 4] {
        let block_hash = spread(hash);
        let counter_hash = spread(block_hash ^ 0x9e37_79b9_7f4a_7c15);
        let blocks = self.table.len() / BLOCK_WORDS;
        let block = (block_hash as usize & (blocks - 1)) * BLOCK_WORDS;
        std::array::from_fn(|row| {
            let h = counter_hash >> (row * 8);
            let word = block + (row << 1) + (h & 1) as usize;
            let counter = (h >> 1) & 15;
            (word, counter << 2)
        })
    }

    fn halve(&mut self) {
        for word in &mut self.table {
            *word = (*word >> 1) & HALVE_MASK;
        }
        self.additions /= 2;
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn frequency_counts_increments_and_saturates_at_fifteen() {
        let mut sketch = FrequencySketch::new(64);
        let hash = 0x1234_5678_9abc_def0;
        assert_eq!(sketch.frequency(hash), 0);
        for expected in 1..=20u8 {
            sketch.increment(hash);
            assert_eq!(sketch.frequency(hash), expected.min(15));
        }
    }

    #[test]
    fn increment_by_matches_repeated_increments() {
        let hashes = [
            0x1234_5678_9abc_def0_u64,
            0xdead_beef,
            7,
            0x9e37_79b9_7f4a_7c15,
        ];
        let mut single = FrequencySketch::new(1 << 10);
        let mut batched = FrequencySketch::new(1 << 10);
        for (round, times) in [0u8, 1, 3, 15, 2, 9, 14, 1].into_iter().enumerate() {
            let hash = hashes[round % hashes.len()];
            for _ in 0..times {
                single.increment(hash);
            }
            batched.increment_by(hash, times);
            assert_eq!(single.table, batched.table, "round {round}");
            assert_eq!(single.additions, batched.additions, "round {round}");
        }
    }

    #[test]
    fn aging_halves_counts_after_the_sample_size() {
        let mut sketch = FrequencySketch::new(16);
        let hot = 0xdead_beef_u64;
        for _ in 0..8 {
            sketch.increment(hot);
        }
        assert_eq!(sketch.frequency(hot), 8);
        // Distinct keys push the sketch past its sample size (10 × 16).
        for key in 0..200u64 {
            sketch.increment(key.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(sketch.frequency(hot) <= 4, "{}", sketch.frequency(hot));
    }

    #[test]
    fn growing_resizes_only_when_needed() {
        let mut sketch = FrequencySketch::new(100);
        let before = sketch.capacity();
        sketch.ensure_capacity(before);
        assert_eq!(sketch.capacity(), before);
        sketch.ensure_capacity(before + 1);
        assert!(sketch.capacity() > before);
    }
}
