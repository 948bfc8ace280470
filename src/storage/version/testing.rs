//! Test helpers shared by the version, manifest and compaction tests:
//! deterministic proptest settings, a seeded RNG, and generators of valid
//! file sets.

use bytes::Bytes;
use proptest::test_runner::{Config, RngSeed};

use super::{FileMeta, LEVEL_COUNT, level_number};
use crate::storage::types::{FileNumber, SequenceNumber};

/// Proptest settings with a fixed seed and no regression files, so every
/// run tests the same cases.
pub(crate) fn proptest_config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x6e69_6d62_7573),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A small seeded RNG (SplitMix64) for tests that build structures from a seed.
#[derive(Debug, Clone)]
pub(crate) struct TestRng(u64);

impl TestRng {
    /// An RNG whose sequence is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound > 0`).
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    /// An index in `0..bound` (`bound > 0`).
    pub(crate) fn index(&mut self, bound: usize) -> usize {
        usize::try_from(self.below(bound as u64)).unwrap()
    }

    /// True with probability `1 / n`.
    pub(crate) fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// A short key over a tiny alphabet, so keys collide and ranges touch.
    pub(crate) fn key(&mut self) -> Bytes {
        let len = self.index(3);
        (0..len)
            .map(|_| b'a' + u8::try_from(self.below(5)).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }
}

/// A file record with the given keys and otherwise plain values.
pub(crate) fn meta(level: u32, number: FileNumber, smallest: &str, largest: &str) -> FileMeta {
    FileMeta {
        level,
        number,
        size_bytes: 100,
        smallest: Bytes::copy_from_slice(smallest.as_bytes()),
        largest: Bytes::copy_from_slice(largest.as_bytes()),
        min_seq: number,
        max_seq: number,
        entries: 1,
    }
}

/// A random file set that satisfies every version invariant: overlapping
/// L0 files with disjoint sequence ranges, sorted non-overlapping lower
/// levels that sometimes share a boundary key. Numbers are unique and below
/// the returned next file number; sequences are at most the returned last
/// sequence.
pub(crate) fn random_file_set(
    rng: &mut TestRng,
    files_per_level_max: usize,
) -> (Vec<FileMeta>, FileNumber, SequenceNumber) {
    let mut files = Vec::new();
    let mut number: FileNumber = 1 + rng.below(5);
    let mut seq: SequenceNumber = 0;
    for level in 0..LEVEL_COUNT {
        let count = rng.index(files_per_level_max + 1);
        let mut keys: Vec<Bytes> = (0..count * 2).map(|_| rng.key()).collect();
        keys.sort();
        let mut cursor = 0;
        let mut previous_largest: Option<Bytes> = None;
        for _ in 0..count {
            let (smallest, largest) = if level == 0 {
                let (a, b) = (rng.key(), rng.key());
                (a.clone().min(b.clone()), a.max(b))
            } else {
                let shares = previous_largest.is_some() && rng.one_in(3);
                let smallest = match (&previous_largest, shares) {
                    (Some(prev), true) => prev.clone(),
                    _ => match keys.get(cursor) {
                        Some(key) if previous_largest.as_ref().is_none_or(|p| key > p) => {
                            key.clone()
                        }
                        _ => break,
                    },
                };
                cursor += 1;
                let largest = match keys.get(cursor) {
                    Some(key) if key >= &smallest && !rng.one_in(4) => key.clone(),
                    _ => smallest.clone(),
                };
                cursor += 1;
                (smallest, largest)
            };
            previous_largest = Some(largest.clone());
            let min_seq = seq + 1;
            seq += 1 + rng.below(10);
            files.push(FileMeta {
                level: level_number(level),
                number,
                size_bytes: 1 + rng.below(1000),
                smallest,
                largest,
                min_seq,
                max_seq: seq,
                entries: rng.below(10_000),
            });
            number += 1 + rng.below(3);
        }
    }
    // Shuffle so nothing relies on the generator's order.
    for i in (1..files.len()).rev() {
        let j = rng.index(i + 1);
        files.swap(i, j);
    }
    (files, number + rng.below(3), seq + rng.below(3))
}
