//! A bounded cache of verified data blocks for segments read by `pread`
//! (memory-mapped segments need none: the page cache is their cache).
//!
//! Blocks are keyed by (file number, offset) — file numbers are never
//! reused, so a key never names two different blocks. The budget counts each
//! block's payload plus [`SLOT_OVERHEAD_BYTES`]; eviction is CLOCK (second
//! chance) per shard, which approximates LRU without reordering on every hit.
//! Shards bound lock contention: a lookup holds one shard's lock for a hash
//! probe and a reference-count increment, never across I/O.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::storage::types::FileNumber;

/// Independent shards; a power of two so the shard is a mask of the hash.
const SHARDS: usize = 16;

/// Bytes charged per cached block beyond its payload: the map slot, the
/// clock queue entry and the `Bytes` header.
pub(crate) const SLOT_OVERHEAD_BYTES: usize = 96;

type BlockKey = (FileNumber, u64);

#[derive(Debug)]
struct Slot {
    block: Bytes,
    referenced: bool,
}

#[derive(Debug, Default)]
struct Shard {
    slots: HashMap<BlockKey, Slot>,
    clock: VecDeque<BlockKey>,
    used_bytes: usize,
}

impl Shard {
    /// Evicts until `incoming` more bytes fit in `capacity`. Each step either
    /// evicts or clears one reference bit, so it ends within two laps.
    fn make_room(&mut self, incoming: usize, capacity: usize) {
        while self.used_bytes + incoming > capacity {
            let Some(key) = self.clock.pop_front() else {
                return;
            };
            match self.slots.get_mut(&key) {
                Some(slot) if slot.referenced => {
                    slot.referenced = false;
                    self.clock.push_back(key);
                }
                Some(_) => {
                    if let Some(slot) = self.slots.remove(&key) {
                        self.used_bytes -= charge(&slot.block);
                    }
                }
                None => {}
            }
        }
    }
}

fn charge(block: &Bytes) -> usize {
    block.len() + SLOT_OVERHEAD_BYTES
}

/// A byte-budgeted block cache shared by any number of segment readers.
#[derive(Debug)]
pub(crate) struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity_bytes: usize,
}

impl BlockCache {
    /// A cache holding at most about `capacity_bytes` (split evenly across
    /// shards; a block larger than one shard's share is never cached).
    pub(crate) fn new(capacity_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_capacity_bytes: capacity_bytes / SHARDS,
        }
    }

    fn shard(&self, key: BlockKey) -> &Mutex<Shard> {
        let mut raw = [0u8; 16];
        raw[..8].copy_from_slice(&key.0.to_le_bytes());
        raw[8..].copy_from_slice(&key.1.to_le_bytes());
        let hash = xxhash_rust::xxh3::xxh3_64(&raw) as usize;
        &self.shards[hash & (SHARDS - 1)]
    }

    /// The cached block at `offset` of file `file_number`.
    pub(crate) fn get(&self, file_number: FileNumber, offset: u64) -> Option<Bytes> {
        let key = (file_number, offset);
        let mut shard = self.shard(key).lock();
        let slot = shard.slots.get_mut(&key)?;
        slot.referenced = true;
        Some(slot.block.clone())
    }

    /// Caches a verified block.
    pub(crate) fn insert(&self, file_number: FileNumber, offset: u64, block: Bytes) {
        let key = (file_number, offset);
        let size = charge(&block);
        if size > self.shard_capacity_bytes {
            return;
        }
        let mut shard = self.shard(key).lock();
        if shard.slots.contains_key(&key) {
            return;
        }
        shard.make_room(size, self.shard_capacity_bytes);
        shard.used_bytes += size;
        shard.slots.insert(
            key,
            Slot {
                block,
                referenced: false,
            },
        );
        shard.clock.push_back(key);
    }

    /// Bytes currently charged against the budget.
    pub(crate) fn used_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().used_bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_its_budget() {
        let cache = BlockCache::new(SHARDS * 10_000);
        for offset in 0..2_000u64 {
            cache.insert(1, offset * 4096, Bytes::from(vec![0u8; 1000]));
            assert!(cache.used_bytes() <= SHARDS * 10_000);
        }
        assert!(
            cache.used_bytes() > SHARDS * 5_000,
            "cache evicts too eagerly"
        );
        assert!(cache.get(1, 1999 * 4096).is_some(), "newest block evicted");
    }

    #[test]
    fn referenced_blocks_get_a_second_chance() {
        // One shard's worth of budget holds about 9 blocks of 1000 bytes.
        let cache = BlockCache::new(SHARDS * 10_000);
        let keys: Vec<_> = (0..5_000u64)
            .map(|offset| (2, offset))
            .filter(|&key| std::ptr::eq(cache.shard(key), cache.shard((2, 0))))
            .take(30)
            .collect();
        cache.insert(keys[0].0, keys[0].1, Bytes::from(vec![1u8; 1000]));
        for &(file, offset) in &keys[1..] {
            assert!(
                cache.get(keys[0].0, keys[0].1).is_some(),
                "hot block evicted"
            );
            cache.insert(file, offset, Bytes::from(vec![0u8; 1000]));
        }
        assert!(cache.get(keys[1].0, keys[1].1).is_none(), "cold block kept");
    }

    #[test]
    fn oversized_blocks_are_not_cached() {
        let cache = BlockCache::new(SHARDS * 100);
        cache.insert(1, 0, Bytes::from(vec![0u8; 200]));
        assert!(cache.get(1, 0).is_none());
        assert_eq!(cache.used_bytes(), 0);
    }
}
