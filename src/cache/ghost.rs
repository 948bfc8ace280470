//! The ghost queue: hashes (never keys or values) of entries recently
//! evicted from the probation queue, in eviction order. A miss on a key
//! still remembered here means the probation queue was too short for it, so
//! the key goes straight to the main queue (S3-FIFO's rule).

use std::collections::VecDeque;

use hashbrown::HashTable;

/// The smallest number of hashes a ghost queue remembers.
const GHOST_ENTRIES_MIN: usize = 16;

/// A bounded FIFO set of key hashes.
#[derive(Debug, Default)]
pub(crate) struct GhostQueue {
    /// Eviction order: `(hash, generation)`.
    order: VecDeque<(u64, u64)>,
    /// The live hashes and the generation of their latest push; an `order`
    /// record whose generation differs is dead (the hash was taken or
    /// pushed again since).
    live: HashTable<(u64, u64)>,
    generation: u64,
}

impl GhostQueue {
    /// Remembers `hash`, forgetting the oldest hashes beyond `capacity`
    /// (at least [`GHOST_ENTRIES_MIN`]).
    pub(crate) fn push(&mut self, hash: u64, capacity: usize) {
        self.generation += 1;
        let generation = self.generation;
        match self.live.find_mut(hash, |&(h, _)| h == hash) {
            Some(slot) => slot.1 = generation,
            None => {
                self.live
                    .insert_unique(hash, (hash, generation), |&(h, _)| h);
            }
        }
        self.order.push_back((hash, generation));
        let capacity = capacity.max(GHOST_ENTRIES_MIN);
        while self.order.len() > capacity {
            let Some((old, old_generation)) = self.order.pop_front() else {
                break;
            };
            if let Ok(slot) = self
                .live
                .find_entry(old, |&(h, g)| h == old && g == old_generation)
            {
                slot.remove();
            }
        }
    }

    /// Forgets `hash` and says whether it was remembered.
    pub(crate) fn take(&mut self, hash: u64) -> bool {
        match self.live.find_entry(hash, |&(h, _)| h == hash) {
            Ok(slot) => {
                slot.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Forgets everything.
    pub(crate) fn clear(&mut self) {
        self.order.clear();
        self.live.clear();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_hashes_and_forgets_the_oldest() {
        let mut ghost = GhostQueue::default();
        for hash in 0..20u64 {
            ghost.push(hash, 16);
        }
        assert!(!ghost.take(3), "pushed out by capacity");
        assert!(ghost.take(4));
        assert!(!ghost.take(4), "taking forgets");
        assert!(ghost.take(19));
    }

    #[test]
    fn a_repushed_hash_survives_its_older_record() {
        let mut ghost = GhostQueue::default();
        ghost.push(7, 16);
        for hash in 100..110u64 {
            ghost.push(hash, 16);
        }
        ghost.push(7, 16);
        for hash in 200..210u64 {
            ghost.push(hash, 16);
        }
        // The first record of 7 fell out; the second one is still live.
        assert!(ghost.take(7));
    }
}
