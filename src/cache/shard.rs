//! One shard of the cache: its index, its entries and its eviction policy.
//!
//! Entries live in a slab (`Vec` of slots, reused through a free list) and
//! are found through a `HashTable<u32>` of slab indices, so each key is
//! stored once. An entry is split in two parallel slabs by who reads it: a
//! hit reads only its [`Entry`] (key, value, hit counter: 32 bytes for
//! `u64` keys and values), while what only the policy reads under the
//! write lock (hash, weight, deadline, queue links) lives in [`Meta`]. The
//! entries a hit reads are thus half as many cache lines as whole records
//! would be (a hit on a 64-byte record in benches/peers stalled on two
//! lines). Every entry is on one intrusive queue, linked by slab indices:
//!
//! - [`Policy::Adaptive`]: a probation FIFO (`small`) and a main CLOCK queue
//!   (`main`). A hit only bumps the entry's 4-bit `freq` (one relaxed atomic,
//!   under the shard's *read* lock). New keys enter `small`; leaving it, a
//!   key's hits there are counted in the frequency sketch and it is admitted
//!   to `main` only if `main` has room or the sketch rates it above `main`'s
//!   CLOCK victim (TinyLFU), else it is dropped and its hash remembered in
//!   the ghost queue. A miss on a ghost goes straight to `main` if it wins
//!   the same duel, or without one when the cache's shadow miniatures
//!   found that better for the workload (see `shadow`). `main` is a
//!   CLOCK: the hand gives an entry with `freq > 0` another round (and
//!   counts that hit in the sketch), and evicts the first one at zero. The share of `small` is set by the
//!   cache's hill climber.
//! - [`Policy::Lru`]: `main` alone as an exact LRU list; a hit moves the entry
//!   to the back under the shard's write lock.
//!
//! The shard never calls user code (weighers, loaders, `Drop` of values is
//! the only exception, and it cannot reach the cache), so it never panics
//! while its lock is held.

use std::borrow::Borrow;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use hashbrown::{HashMap, HashTable};

use super::Policy;
use super::flight::Flight;
use super::ghost::GhostQueue;
use super::sketch::FrequencySketch;
use crate::sync::AtomicU8;

/// The hasher of keys: foldhash, randomly seeded (resists hash flooding).
#[cfg(not(any(test, loom)))]
pub(crate) type CacheHasher = hashbrown::DefaultHashBuilder;
/// The hasher of keys: fixed in tests and under loom, which must be
/// deterministic (a random seed changes sketch collisions and shards).
#[cfg(any(test, loom))]
pub(crate) type CacheHasher =
    std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;

/// "No entry" in a queue link.
const NIL: u32 = u32::MAX;

/// The deadline of an entry that never expires.
pub(crate) const NEVER: u64 = u64::MAX;

/// A hit counter saturates here (4 bits): hits between two visits of the
/// policy are folded into the frequency sketch up to this many, and an
/// entry of `main` survives at most this many extra CLOCK rounds. (2 bits,
/// S3-FIFO's choice, lost 0.5 to 1.5 pp on OLTP and P3 in benches/peers.)
const FREQ_MAX: u8 = 15;

/// What an entry caches.
#[derive(Debug)]
pub(crate) enum Slot<V> {
    /// A value.
    Present(V),
    /// A cached absence (negative entry).
    Absent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Small,
    Main,
}

/// What a hit reads of a cached entry.
///
/// Aligned to 32 bytes so that an entry of 32 bytes or less never straddles
/// two cache lines: a large slab comes from `mmap` through the allocator at
/// 16 bytes past a page boundary, where half of 8-byte-aligned 32-byte
/// entries would cross a line, and a hit on one would wait for two misses.
/// (Larger entries are padded to a multiple of 32 bytes.)
#[derive(Debug)]
#[repr(align(32))]
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) slot: Slot<V>,
    /// Hits since the policy last looked (0..=[`FREQ_MAX`]).
    freq: AtomicU8,
    /// Which queue holds the entry (in the padding after `freq`, which
    /// keeps [`Meta`] at 32 bytes).
    queue: Queue,
    /// The entry's weight if under [`WEIGHT_IN_META`] (the usual case),
    /// else that marker: a rewrite of a resident key reads its old weight
    /// here, in the line its key compare has just loaded, not in [`Meta`]
    /// (in the padding after `queue` for `u64` keys and values).
    weight: u32,
}

/// [`Entry::weight`] of an entry whose weight is only in its [`Meta`].
const WEIGHT_IN_META: u32 = u32::MAX;

/// The [`Entry::weight`] recorded for `weight`.
fn weight_hint(weight: u64) -> u32 {
    // A weight of exactly `u32::MAX` reads as the marker: also right.
    u32::try_from(weight).unwrap_or(WEIGHT_IN_META)
}

/// What the policy and the budget read of a cached entry (never a hit,
/// unless the cache has deadlines). 32 bytes, aligned to 32 so that one
/// never straddles two cache lines (see [`Entry`]).
#[derive(Debug, Clone, Copy)]
#[repr(align(32))]
pub(crate) struct Meta {
    pub(crate) hash: u64,
    /// Bytes charged to the budget, overhead included.
    pub(crate) weight: u64,
    /// Clock nanoseconds at which the entry expires, or [`NEVER`].
    pub(crate) deadline_nanos: u64,
    prev: u32,
    next: u32,
}

impl Meta {
    /// Whether the entry's TTL has passed at `now_nanos`.
    pub(crate) fn is_expired(&self, now_nanos: u64) -> bool {
        self.deadline_nanos != NEVER && now_nanos >= self.deadline_nanos
    }
}

/// An entry taken out of its shard.
#[derive(Debug)]
pub(crate) struct Removed<V> {
    pub(crate) slot: Slot<V>,
    pub(crate) meta: Meta,
}

impl<K, V> Entry<K, V> {
    /// Records a hit: the only write a hit makes, and none once saturated.
    pub(crate) fn touch(&self) {
        let freq = self.freq.load(Ordering::Relaxed);
        if freq < FREQ_MAX {
            // A racing hit may be lost; the counter is a hint, not a count.
            self.freq.store(freq + 1, Ordering::Relaxed);
        }
    }
}

/// Why an entry left the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Evicted to make room.
    Size,
    /// Its TTL had passed.
    Expired,
}

/// How the cache's budget applies to one shard when it evicts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// The shard's fair share of the cache's bytes.
    pub(crate) share_bytes: u64,
    /// The probation queue's target, in thousandths of the share.
    pub(crate) small_permille: u32,
    /// Whether a miss on a ghost enters `main` without the duel (chosen
    /// by the cache's shadow miniatures, see `shadow`).
    pub(crate) ghost_free: bool,
}

impl Budget {
    fn small_bytes(self) -> u64 {
        self.share_bytes / 1000 * u64::from(self.small_permille)
            + self.share_bytes % 1000 * u64::from(self.small_permille) / 1000
    }

    fn main_bytes(self) -> u64 {
        self.share_bytes - self.small_bytes()
    }
}

/// A queue of entries: a circular doubly linked list through their
/// [`Meta`]s, so the CLOCK hand gives an entry another round by moving
/// `head` one step, without relinking anything.
#[derive(Debug, Clone, Copy)]
struct List {
    /// The front (the next candidate for eviction); its `prev` is the back.
    head: u32,
    len: usize,
    bytes: u64,
}

impl Default for List {
    fn default() -> Self {
        Self {
            head: NIL,
            len: 0,
            bytes: 0,
        }
    }
}

/// One shard: guarded by one lock in the cache.
///
/// `repr(C)` with the index and the slab first: after the lock word, they
/// are what a hit reads of the shard, and so share the lock's cache line.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Shard<K, V> {
    table: HashTable<u32>,
    slab: Vec<Option<Entry<K, V>>>,
    /// Parallel to `slab`; stale at free indices.
    meta: Vec<Meta>,
    free: Vec<u32>,
    small: List,
    main: List,
    ghost: GhostQueue,
    sketch: FrequencySketch,
    policy: Policy,
    /// Loads in flight for keys of this shard (see `flight`).
    pub(crate) flights: HashMap<K, Arc<Flight<V>>, CacheHasher>,
    /// Inserts since this shard last offered a sample to the hill climber.
    pub(crate) inserts_since_climb: u32,
    rng: u64,
}

/// Appends `index` to the back of `list`.
fn link_back(meta: &mut [Meta], list: &mut List, index: u32) {
    let head = list.head;
    let tail = meta.get(head as usize).map_or(index, |front| front.prev);
    let Some(entry) = meta.get_mut(index as usize) else {
        return;
    };
    let weight = entry.weight;
    if head == NIL {
        entry.prev = index;
        entry.next = index;
        list.head = index;
    } else {
        entry.prev = tail;
        entry.next = head;
        if let Some(back) = meta.get_mut(tail as usize) {
            back.next = index;
        }
        if let Some(front) = meta.get_mut(head as usize) {
            front.prev = index;
        }
    }
    list.len += 1;
    list.bytes += weight;
}

/// Takes `index` out of `list`.
fn unlink(meta: &mut [Meta], list: &mut List, index: u32) {
    let Some(entry) = meta.get_mut(index as usize) else {
        return;
    };
    let (prev, next, weight) = (entry.prev, entry.next, entry.weight);
    entry.prev = NIL;
    entry.next = NIL;
    if next == index {
        list.head = NIL;
    } else {
        if let Some(previous) = meta.get_mut(prev as usize) {
            previous.next = next;
        }
        if let Some(following) = meta.get_mut(next as usize) {
            following.prev = prev;
        }
        if list.head == index {
            list.head = next;
        }
    }
    list.len -= 1;
    list.bytes -= weight;
}

/// Moves the front of `list` to the back (one step of a CLOCK hand).
fn rotate(meta: &[Meta], list: &mut List) {
    if let Some(front) = meta.get(list.head as usize) {
        list.head = front.next;
    }
}

impl<K: Hash + Eq, V> Shard<K, V> {
    /// An empty shard; `seed` makes its TTL jitter reproducible.
    pub(crate) fn new(policy: Policy, seed: u64) -> Self {
        Self {
            table: HashTable::new(),
            slab: Vec::new(),
            meta: Vec::new(),
            free: Vec::new(),
            small: List::default(),
            main: List::default(),
            ghost: GhostQueue::default(),
            sketch: FrequencySketch::new(0),
            policy,
            flights: HashMap::default(),
            inserts_since_climb: 0,
            rng: seed | 1,
        }
    }

    /// Resident entries, expired ones included.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// The slab index of `key`'s entry.
    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slab = &self.slab;
        self.table
            .find(hash, |&i| {
                slab.get(i as usize)
                    .and_then(Option::as_ref)
                    .is_some_and(|entry| entry.key.borrow() == key)
            })
            .copied()
    }

    /// The slab index and entry of `key`, in one probe (the hit path).
    #[inline]
    pub(crate) fn find_entry<Q>(&self, hash: u64, key: &Q) -> Option<(u32, &Entry<K, V>)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let slab = &self.slab;
        let mut found = None;
        self.table.find(hash, |&i| {
            match slab.get(i as usize).and_then(Option::as_ref) {
                Some(entry) if entry.key.borrow() == key => {
                    found = Some((i, entry));
                    true
                }
                _ => false,
            }
        });
        found
    }

    /// The entry at slab index `index`.
    pub(crate) fn entry(&self, index: u32) -> Option<&Entry<K, V>> {
        self.slab.get(index as usize).and_then(Option::as_ref)
    }

    /// The policy's record of the live entry at `index`.
    pub(crate) fn meta(&self, index: u32) -> Option<&Meta> {
        self.entry(index)?;
        self.meta.get(index as usize)
    }

    /// Records a hit on `index` under the write lock ([`Policy::Lru`]):
    /// moves it to the back of the LRU list.
    pub(crate) fn touch_lru(&mut self, index: u32) {
        if self.main.head == index {
            rotate(&self.meta, &mut self.main);
        } else {
            unlink(&mut self.meta, &mut self.main, index);
            link_back(&mut self.meta, &mut self.main, index);
        }
    }

    /// A uniform random number (xorshift64*), for TTL jitter.
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Adds a new entry for a key that has none in this shard.
    pub(crate) fn insert_new(
        &mut self,
        key: K,
        slot: Slot<V>,
        hash: u64,
        weight: u64,
        deadline_nanos: u64,
        budget: Budget,
    ) {
        self.sketch.increment(hash);
        let queue = match self.policy {
            Policy::Lru => Queue::Main,
            Policy::Adaptive => {
                if self.ghost.take(hash)
                    && (budget.ghost_free || self.admits_to_main(hash, weight, budget))
                {
                    Queue::Main
                } else {
                    Queue::Small
                }
            }
        };
        let entry = Entry {
            key,
            slot,
            freq: AtomicU8::new(0),
            queue,
            weight: weight_hint(weight),
        };
        let meta = Meta {
            hash,
            weight,
            deadline_nanos,
            prev: NIL,
            next: NIL,
        };
        let index = match self.free.pop() {
            Some(index) => {
                self.slab[index as usize] = Some(entry);
                self.meta[index as usize] = meta;
                index
            }
            None => {
                self.slab.push(Some(entry));
                self.meta.push(meta);
                (self.slab.len() - 1) as u32
            }
        };
        let list = match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        };
        link_back(&mut self.meta, list, index);
        let meta = &self.meta;
        self.table.insert_unique(hash, index, |&i| {
            meta.get(i as usize).map_or(0, |meta| meta.hash)
        });
        self.sketch.ensure_capacity(self.table.len());
    }

    /// The weight charged for the live entry at `index` (0 if none), read
    /// from its [`Entry`] when it fits there.
    pub(crate) fn weight(&self, index: u32) -> u64 {
        match self.entry(index) {
            Some(entry) if entry.weight != WEIGHT_IN_META => u64::from(entry.weight),
            Some(_) => self.meta.get(index as usize).map_or(0, |meta| meta.weight),
            None => 0,
        }
    }

    /// Rewrites the entry at `index` in place (a write to a resident key,
    /// whose [`weight`](Self::weight) is `old_weight`): new value, weight
    /// and deadline (`None`: unchanged, which a caller may pass only when
    /// it knows the entry has no deadline and gets none). The write counts as an access: the entry keeps its queue and
    /// gets a hit ([`Policy::Adaptive`]) or moves to the back
    /// ([`Policy::Lru`]). Returns the old value.
    ///
    /// An equal weight and an unchanged deadline leave [`Meta`] unread and
    /// unwritten: the rewrite of a hot key touches one cache line.
    pub(crate) fn replace_at(
        &mut self,
        index: u32,
        slot: Slot<V>,
        old_weight: u64,
        weight: u64,
        deadline_nanos: Option<u64>,
    ) -> Option<Slot<V>> {
        let entry = self.slab.get_mut(index as usize)?.as_mut()?;
        let old_slot = std::mem::replace(&mut entry.slot, slot);
        entry.weight = weight_hint(weight);
        let queue = entry.queue;
        if weight != old_weight || deadline_nanos.is_some() {
            let meta = self.meta.get_mut(index as usize)?;
            meta.weight = weight;
            if let Some(deadline_nanos) = deadline_nanos {
                meta.deadline_nanos = deadline_nanos;
            }
        }
        let list = match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        };
        list.bytes = list.bytes - old_weight + weight;
        match self.policy {
            Policy::Adaptive => {
                if let Some(entry) = self.entry(index) {
                    entry.touch();
                }
            }
            Policy::Lru => self.touch_lru(index),
        }
        Some(old_slot)
    }

    /// Removes the entry at `index` and returns it.
    pub(crate) fn remove_at(&mut self, index: u32) -> Option<Removed<V>> {
        let meta = *self.meta(index)?;
        let queue = self.entry(index)?.queue;
        let list = match queue {
            Queue::Small => &mut self.small,
            Queue::Main => &mut self.main,
        };
        unlink(&mut self.meta, list, index);
        if let Ok(found) = self.table.find_entry(meta.hash, |&i| i == index) {
            found.remove();
        }
        self.free.push(index);
        let entry = self.slab.get_mut(index as usize).and_then(Option::take)?;
        Some(Removed {
            slot: entry.slot,
            meta,
        })
    }

    /// Evicts one entry (expired ones first when the policy meets them) and
    /// returns its weight and why, or `None` if the shard is empty.
    pub(crate) fn evict_one(&mut self, now_nanos: u64, budget: Budget) -> Option<(u64, Reason)> {
        // Each step either evicts or spends a hit count (at most FREQ_MAX
        // per entry) or moves an entry from `small` to `main` (once each).
        let mut steps_left = (self.len() + 1) * (usize::from(FREQ_MAX) + 2);
        while steps_left > 0 {
            steps_left -= 1;
            let from_small = self.policy == Policy::Adaptive
                && self.small.len > 0
                && (self.small.bytes > budget.small_bytes() || self.main.len == 0);
            let index = if from_small {
                self.small.head
            } else {
                self.main.head
            };
            let meta = *self.meta(index)?;
            let (hash, weight) = (meta.hash, meta.weight);
            if meta.is_expired(now_nanos) {
                self.remove_at(index);
                return Some((weight, Reason::Expired));
            }
            if self.policy == Policy::Lru {
                self.remove_at(index);
                return Some((weight, Reason::Size));
            }
            let freq = self.entry(index)?.freq.load(Ordering::Relaxed);
            if from_small {
                // Hits in probation count in the sketch; then the entry duels
                // like any other (S3-FIFO's free pass for any hit let
                // zigzag patterns flush `main`: 8 % vs LRU's 25 %).
                self.sketch.increment_by(hash, freq);
                if let Some(entry) = self.entry(index) {
                    entry.freq.store(0, Ordering::Relaxed);
                }
                if self.admits_to_main(hash, weight, budget) {
                    unlink(&mut self.meta, &mut self.small, index);
                    link_back(&mut self.meta, &mut self.main, index);
                    if let Some(Some(entry)) = self.slab.get_mut(index as usize) {
                        entry.queue = Queue::Main;
                    }
                    continue;
                }
                self.ghost.push(hash, self.table.len());
                self.remove_at(index);
                return Some((weight, Reason::Size));
            }
            if freq > 0 {
                self.second_chance(index, freq);
                continue;
            }
            // `main` is over its target (the climber grew `small`): its victim
            // still duels the probation head, so a burst of one-time keys
            // cannot push out a hot set through a growing `small`.
            if let Some(&candidate) = self.meta(self.small.head) {
                let (candidate_hash, candidate_weight) = (candidate.hash, candidate.weight);
                if self.sketch.frequency(hash) >= self.sketch.frequency(candidate_hash)
                    && !candidate.is_expired(now_nanos)
                {
                    let candidate_index = self.small.head;
                    self.ghost.push(candidate_hash, self.table.len());
                    self.remove_at(candidate_index);
                    return Some((candidate_weight, Reason::Size));
                }
            }
            self.remove_at(index);
            return Some((weight, Reason::Size));
        }
        None
    }

    /// The CLOCK hand passes `main`'s front entry, at `index`: spends one
    /// of its hits (counting it in the sketch) and gives it another round.
    fn second_chance(&mut self, index: u32, freq: u8) {
        let (Some(entry), Some(meta)) = (self.entry(index), self.meta.get(index as usize)) else {
            return;
        };
        debug_assert_eq!(self.main.head, index, "the hand is at the front");
        entry.freq.store(freq - 1, Ordering::Relaxed);
        let hash = meta.hash;
        self.sketch.increment(hash);
        rotate(&self.meta, &mut self.main);
    }

    /// Whether a candidate for `main` gets in: freely while `main` is under
    /// its target, else only if the sketch rates it above the entry the
    /// CLOCK hand would evict next (TinyLFU's duel).
    fn admits_to_main(&mut self, hash: u64, weight: u64, budget: Budget) -> bool {
        if self.main.bytes + weight <= budget.main_bytes() {
            return true;
        }
        let mut steps_left = self.main.len * usize::from(FREQ_MAX + 1);
        while steps_left > 0 {
            steps_left -= 1;
            let index = self.main.head;
            let (Some(victim), Some(meta)) = (self.entry(index), self.meta.get(index as usize))
            else {
                return true;
            };
            let freq = victim.freq.load(Ordering::Relaxed);
            if freq == 0 {
                return self.sketch.frequency(hash) > self.sketch.frequency(meta.hash);
            }
            self.second_chance(index, freq);
        }
        true
    }

    /// Removes every entry that has expired at `now_nanos`; returns how many
    /// and their total weight.
    pub(crate) fn purge_expired(&mut self, now_nanos: u64) -> (u64, u64) {
        let expired: Vec<u32> = (0..self.slab.len() as u32)
            .filter(|&index| self.meta(index).is_some_and(|m| m.is_expired(now_nanos)))
            .collect();
        let mut bytes = 0;
        for &index in &expired {
            if let Some(removed) = self.remove_at(index) {
                bytes += removed.meta.weight;
            }
        }
        (expired.len() as u64, bytes)
    }

    /// Removes every entry (the ghost queue and sketch too); returns how
    /// many and their total weight. Loads in flight are left to the caller.
    pub(crate) fn clear(&mut self) -> (u64, u64) {
        let entries = self.table.len() as u64;
        let bytes = self.small.bytes + self.main.bytes;
        self.table.clear();
        self.slab.clear();
        self.meta.clear();
        self.free.clear();
        self.small = List::default();
        self.main = List::default();
        self.ghost.clear();
        self.sketch = FrequencySketch::new(0);
        (entries, bytes)
    }

    /// Bytes held by this shard's entries.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.small.bytes + self.main.bytes
    }

    /// The keys in eviction order (next victim first), for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn keys_in_queue_order(&self) -> Vec<&K> {
        let mut keys = Vec::new();
        for list in [&self.small, &self.main] {
            let mut index = list.head;
            for _ in 0..list.len {
                let (Some(entry), Some(meta)) = (self.entry(index), self.meta(index)) else {
                    break;
                };
                keys.push(&entry.key);
                index = meta.next;
            }
        }
        keys
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_hit_reads_32_bytes_and_the_policy_32_more_for_u64_entries() {
        assert_eq!(size_of::<Option<Entry<u64, u64>>>(), 32);
        assert_eq!(size_of::<Meta>(), 32);
    }
}
