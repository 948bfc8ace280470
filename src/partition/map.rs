//! A table's partitions: contiguous token ranges that together cover the
//! ring, each with its live item count and size, its throughput buckets,
//! and its measured heat.
//!
//! Rows are stored in token order, so a partition is a key range and a
//! split only changes this map (no row moves). Partition ids are never
//! reused: a split retires its parent's id and gives each child a fresh
//! one, so a stream shard named after a partition id is never reopened.
//!
//! Encoding (the catalogue row of the map, see docs/format-kv.md):
//!
//! ```text
//! u8 version = 1 | u64 next id | u32 count | count × (u64 id | u64 start | u64 parent id, 0 = none)
//! ```
//!
//! all big-endian, partitions in token order, the first starting at 0.

use std::sync::Arc;

use parking_lot::Mutex;

use super::bucket::TokenBucket;
use super::segment_tokens;

/// Reservoir samples of recent requests kept per partition to find the
/// token that halves its load.
const HEAT_SAMPLES: usize = 128;

/// Most partitions a table may have: bounds the map's size (DynamoDB has no
/// documented limit; 2^20 partitions of 10 GB is 10 PB).
pub(crate) const MAX_PARTITIONS: usize = 1 << 20;

/// The encoding version of a partition map row.
const MAP_VERSION: u8 = 1;

/// Throughput buckets of one partition (provisioned mode only).
#[derive(Debug, Clone)]
pub(crate) struct PartitionBuckets {
    /// Read units (at most the per-partition ceiling per second).
    pub(crate) read: TokenBucket,
    /// Write units (likewise).
    pub(crate) write: TokenBucket,
}

/// What a finished heat window says about a partition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum HeatVerdict {
    /// The load was above the threshold; splitting at `at` halves it.
    Split {
        /// First token of the right child.
        at: u64,
    },
    /// The load was above the threshold but one token (one partition key)
    /// carried at least half of it: no split can halve it.
    HotKey {
        /// The hot key's token.
        token: u64,
        /// Its units per second over the window.
        units_per_second: f64,
    },
}

/// The load of one partition in the current window.
#[derive(Debug, Clone)]
pub(crate) struct Heat {
    window_start_nanos: u64,
    units: f64,
    seen: u64,
    samples: Vec<(u64, f64)>,
    rng: u64,
}

impl Heat {
    fn new(seed: u64, now_nanos: u64) -> Self {
        Self {
            window_start_nanos: now_nanos,
            units: 0.0,
            seen: 0,
            samples: Vec::new(),
            rng: seed | 1,
        }
    }

    /// Records `units` spent on `token`. When the window that began
    /// earlier is over, first judges it against `threshold` units per
    /// second and starts a new one.
    pub(crate) fn record(
        &mut self,
        token: u64,
        units: f64,
        now_nanos: u64,
        window_nanos: u64,
        threshold: f64,
        range: (u64, Option<u64>),
    ) -> Option<HeatVerdict> {
        let elapsed = now_nanos.saturating_sub(self.window_start_nanos);
        let verdict = if elapsed >= window_nanos {
            let verdict = self.judge(elapsed, threshold, range);
            self.window_start_nanos = now_nanos;
            self.units = 0.0;
            self.seen = 0;
            self.samples.clear();
            verdict
        } else {
            None
        };
        self.units += units;
        self.seen += 1;
        // Reservoir sampling (Algorithm R) with a xorshift generator seeded
        // per partition, so tests see the same samples every run.
        if self.samples.len() < HEAT_SAMPLES {
            self.samples.push((token, units));
        } else {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            // A uniform slot in 0..seen by multiply-shift (no division on
            // the request path).
            let slot = ((u128::from(self.rng) * u128::from(self.seen)) >> 64) as usize;
            if slot < HEAT_SAMPLES {
                self.samples[slot] = (token, units);
            }
        }
        verdict
    }

    fn judge(
        &mut self,
        elapsed_nanos: u64,
        threshold: f64,
        (start, end): (u64, Option<u64>),
    ) -> Option<HeatVerdict> {
        let rate = self.units / (elapsed_nanos as f64 / 1e9);
        if rate < threshold || self.samples.is_empty() {
            return None;
        }
        self.samples.sort_unstable_by_key(|(token, _)| *token);
        let total: f64 = self.samples.iter().map(|(_, u)| u).sum();
        // The heaviest single token among the samples.
        let mut heaviest = (0u64, 0.0f64);
        let mut i = 0;
        while i < self.samples.len() {
            let token = self.samples[i].0;
            let mut weight = 0.0;
            while i < self.samples.len() && self.samples[i].0 == token {
                weight += self.samples[i].1;
                i += 1;
            }
            if weight > heaviest.1 {
                heaviest = (token, weight);
            }
        }
        let hot_key = HeatVerdict::HotKey {
            token: heaviest.0,
            units_per_second: rate * heaviest.1 / total,
        };
        if heaviest.1 * 2.0 >= total {
            return Some(hot_key);
        }
        // The boundary whose left side carries closest to half the load:
        // a split at token `t` leaves every token below `t` on the left.
        let mut best: Option<(f64, u64)> = None;
        let mut left = 0.0;
        let mut i = 0;
        while i < self.samples.len() {
            let token = self.samples[i].0;
            let gap = (left - total / 2.0).abs();
            if token > start && best.is_none_or(|(b, _)| gap < b) {
                best = Some((gap, token));
            }
            while i < self.samples.len() && self.samples[i].0 == token {
                left += self.samples[i].1;
                i += 1;
            }
        }
        let Some((_, at)) = best else {
            return Some(hot_key);
        };
        let inside = at > start && end.is_none_or(|end| at < end);
        Some(if inside {
            HeatVerdict::Split { at }
        } else {
            hot_key
        })
    }
}

/// One partition: a token range with its counts, buckets and heat.
#[derive(Debug)]
pub(crate) struct Partition {
    /// Unique, never reused.
    pub(crate) id: u64,
    /// First token.
    pub(crate) start: u64,
    /// First token of the next partition (`None`: the ring's end).
    pub(crate) end: Option<u64>,
    /// The partition this one was split from.
    pub(crate) parent: Option<u64>,
    counts: super::Counts,
    /// Throughput buckets (provisioned mode) and heat, under one lock so a
    /// request takes it once.
    pub(crate) load: Mutex<PartitionLoad>,
}

/// The mutable per-request state of a partition.
#[derive(Debug)]
pub(crate) struct PartitionLoad {
    /// `None` in on-demand mode.
    pub(crate) buckets: Option<PartitionBuckets>,
    pub(crate) heat: Heat,
}

impl Partition {
    fn new(id: u64, start: u64, end: Option<u64>, parent: Option<u64>, now_nanos: u64) -> Self {
        Self {
            id,
            start,
            end,
            parent,
            counts: super::Counts::default(),
            load: Mutex::new(PartitionLoad {
                buckets: None,
                heat: Heat::new(id.wrapping_mul(0x9e37_79b9_7f4a_7c15), now_nanos),
            }),
        }
    }

    /// Whether `token` lies in the partition.
    pub(crate) fn contains(&self, token: u64) -> bool {
        token >= self.start && self.end.is_none_or(|end| token < end)
    }

    /// Records that an item of `old` bytes became one of `new` bytes.
    pub(crate) fn account(&self, old: Option<usize>, new: Option<usize>) {
        self.counts.account(old, new);
    }

    /// Sets the counts (at open, after a recount, after a split).
    pub(crate) fn set_counts(&self, items: i64, bytes: i64) {
        self.counts.set(items, bytes);
    }

    /// (item count, size in bytes).
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.counts.get()
    }
}

/// Why a map row does not decode, or a split is impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapError(pub(crate) String);

/// The partitions of one table, in token order.
#[derive(Debug)]
pub(crate) struct PartitionMap {
    partitions: Vec<Arc<Partition>>,
    next_id: u64,
}

impl PartitionMap {
    /// `count` partitions of equal token ranges (ids 1..=count).
    pub(crate) fn new(count: u32, now_nanos: u64) -> Self {
        let count = count.clamp(1, MAX_PARTITIONS as u32);
        let partitions = (0..count)
            .map(|i| {
                let (start, end) = segment_tokens(i, count);
                Arc::new(Partition::new(
                    u64::from(i) + 1,
                    start,
                    end,
                    None,
                    now_nanos,
                ))
            })
            .collect();
        Self {
            partitions,
            next_id: u64::from(count) + 1,
        }
    }

    /// The partitions in token order.
    pub(crate) fn partitions(&self) -> &[Arc<Partition>] {
        &self.partitions
    }

    /// The index of the partition holding `token`.
    pub(crate) fn index_of(&self, token: u64) -> usize {
        self.partitions
            .partition_point(|p| p.start <= token)
            .saturating_sub(1)
    }

    /// The partition holding `token`.
    pub(crate) fn get(&self, token: u64) -> &Arc<Partition> {
        &self.partitions[self.index_of(token)]
    }

    /// The map after splitting partition `index` at token `at` (the right
    /// child's first token), with the children's counts; the children get
    /// fresh ids and copies of the parent's buckets.
    pub(crate) fn split(
        &self,
        index: usize,
        at: u64,
        left_counts: (i64, i64),
        right_counts: (i64, i64),
        now_nanos: u64,
    ) -> Result<Self, MapError> {
        let parent = self
            .partitions
            .get(index)
            .ok_or_else(|| MapError(format!("no partition {index}")))?;
        if at <= parent.start || parent.end.is_some_and(|end| at >= end) {
            return Err(MapError(format!(
                "token {at:#x} is not inside partition {} [{:#x}, {:?})",
                parent.id, parent.start, parent.end
            )));
        }
        if self.partitions.len() >= MAX_PARTITIONS {
            return Err(MapError("the table has the most partitions allowed".into()));
        }
        let left = Partition::new(
            self.next_id,
            parent.start,
            Some(at),
            Some(parent.id),
            now_nanos,
        );
        let right = Partition::new(self.next_id + 1, at, parent.end, Some(parent.id), now_nanos);
        left.set_counts(left_counts.0, left_counts.1);
        right.set_counts(right_counts.0, right_counts.1);
        let buckets = parent.load.lock().buckets.clone();
        left.load.lock().buckets = buckets.clone();
        right.load.lock().buckets = buckets;
        let mut partitions = self.partitions.clone();
        partitions.splice(index..=index, [Arc::new(left), Arc::new(right)]);
        Ok(Self {
            partitions,
            next_id: self.next_id + 2,
        })
    }

    /// The map's catalogue row.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(13 + 24 * self.partitions.len());
        out.push(MAP_VERSION);
        out.extend_from_slice(&self.next_id.to_be_bytes());
        out.extend_from_slice(&(self.partitions.len() as u32).to_be_bytes());
        for p in &self.partitions {
            out.extend_from_slice(&p.id.to_be_bytes());
            out.extend_from_slice(&p.start.to_be_bytes());
            out.extend_from_slice(&p.parent.unwrap_or(0).to_be_bytes());
        }
        out
    }

    /// Decodes a catalogue row, checking that the ranges start at 0, rise
    /// strictly and have ids below the next id.
    pub(crate) fn decode(bytes: &[u8], now_nanos: u64) -> Result<Self, MapError> {
        let bad = |what: &str| MapError(format!("partition map: {what}"));
        let u64_at = |at: usize| -> Result<u64, MapError> {
            bytes
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| bad("truncated"))
        };
        if bytes.first() != Some(&MAP_VERSION) {
            return Err(bad("unknown version"));
        }
        let next_id = u64_at(1)?;
        let count = bytes
            .get(9..13)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| bad("truncated"))? as usize;
        if count == 0 || count > MAX_PARTITIONS || bytes.len() != 13 + 24 * count {
            return Err(bad("wrong length"));
        }
        let mut raw = Vec::with_capacity(count);
        for i in 0..count {
            let at = 13 + 24 * i;
            let (id, start, parent) = (u64_at(at)?, u64_at(at + 8)?, u64_at(at + 16)?);
            if id == 0 || id >= next_id {
                return Err(bad("partition id out of range"));
            }
            raw.push((id, start, (parent != 0).then_some(parent)));
        }
        if raw[0].1 != 0 || raw.windows(2).any(|w| w[0].1 >= w[1].1) {
            return Err(bad("ranges do not rise from token 0"));
        }
        let partitions = (0..count)
            .map(|i| {
                let (id, start, parent) = raw[i];
                let end = raw.get(i + 1).map(|r| r.1);
                Arc::new(Partition::new(id, start, end, parent, now_nanos))
            })
            .collect();
        Ok(Self {
            partitions,
            next_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_partitions_split_the_ring_evenly_and_find_their_tokens() {
        let map = PartitionMap::new(4, 0);
        let starts: Vec<u64> = map.partitions().iter().map(|p| p.start).collect();
        assert_eq!(starts, [0, 1 << 62, 1 << 63, 3 << 62]);
        assert_eq!(map.index_of(0), 0);
        assert_eq!(map.index_of((1 << 62) - 1), 0);
        assert_eq!(map.index_of(1 << 62), 1);
        assert_eq!(map.index_of(u64::MAX), 3);
        assert!(map.get(u64::MAX).contains(u64::MAX));
    }

    #[test]
    fn a_split_replaces_its_parent_with_two_fresh_children() {
        let map = PartitionMap::new(2, 0);
        let split = map.split(1, (1 << 63) + 10, (3, 30), (4, 40), 0).unwrap();
        let ids: Vec<u64> = split.partitions().iter().map(|p| p.id).collect();
        assert_eq!(ids, [1, 3, 4]);
        assert_eq!(split.partitions()[1].parent, Some(2));
        assert_eq!(split.partitions()[1].end, Some((1 << 63) + 10));
        assert_eq!(split.partitions()[2].counts(), (4, 40));
        assert!(map.split(1, 1 << 63, (0, 0), (0, 0), 0).is_err());
        assert!(map.split(0, 1 << 63, (0, 0), (0, 0), 0).is_err());
        let again = PartitionMap::decode(&split.encode(), 0).unwrap();
        assert_eq!(again.encode(), split.encode());
        assert_eq!(again.partitions()[2].parent, Some(2));
    }

    #[test]
    fn damaged_map_rows_are_errors() {
        let good = PartitionMap::new(3, 0).encode();
        for cut in 0..good.len() {
            assert!(
                PartitionMap::decode(&good[..cut], 0).is_err(),
                "cut at {cut}"
            );
        }
        let mut unordered = good.clone();
        unordered[13 + 24 + 8..13 + 24 + 16].copy_from_slice(&0u64.to_be_bytes());
        assert!(PartitionMap::decode(&unordered, 0).is_err());
        let mut bad_id = good;
        bad_id[13..21].copy_from_slice(&99u64.to_be_bytes());
        assert!(PartitionMap::decode(&bad_id, 0).is_err());
    }

    const SECOND: u64 = 1_000_000_000;

    #[test]
    fn heat_splits_at_the_token_halving_the_load_or_names_a_hot_key() {
        let mut heat = Heat::new(7, 0);
        let range = (0, None);
        // Tokens 100..=103 carry equal load: splitting at 102 leaves 100
        // and 101 (half) on the left.
        for _ in 0..50 {
            for token in 100..104 {
                assert_eq!(heat.record(token, 1.0, 0, SECOND, 10.0, range), None);
            }
        }
        let verdict = heat.record(5, 0.0, SECOND, SECOND, 10.0, range);
        assert_eq!(verdict, Some(HeatVerdict::Split { at: 102 }));
        // Below the threshold: no verdict.
        heat.record(9, 5.0, SECOND + 1, SECOND, 10.0, range);
        assert_eq!(heat.record(9, 0.0, 3 * SECOND, SECOND, 10.0, range), None);
        // One token with most of the load is a hot key.
        for _ in 0..100 {
            heat.record(42, 3.0, 3 * SECOND, SECOND, 10.0, range);
            heat.record(43, 1.0, 3 * SECOND, SECOND, 10.0, range);
        }
        match heat.record(1, 0.0, 4 * SECOND, SECOND, 10.0, range) {
            Some(HeatVerdict::HotKey {
                token,
                units_per_second,
            }) => {
                assert_eq!(token, 42);
                assert!(units_per_second > 150.0, "{units_per_second}");
            }
            other => panic!("expected a hot key, got {other:?}"),
        }
    }
}
