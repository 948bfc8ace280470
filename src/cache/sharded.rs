//! [`Cache`]: the shards, the global byte budget, lookups and writes.
//!
//! The budget is global, not split per shard: an insert reserves its weight
//! in one atomic counter with a compare-and-swap that never lets the total
//! pass `max_bytes`, evicting from its own shard first and, when that shard
//! has nothing left, from the others (taking their locks one at a time,
//! never while holding its own). So an entry that fits the budget always
//! gets in, whatever shard its key hashes to, and the budget holds at every
//! instant, not just between operations.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use super::builder::{CacheBuilder, ENTRY_OVERHEAD_BYTES, Policy, Weigher};
use super::climber::{Climber, SMALL_PERMILLE_START};
use super::clock::Clock;
use super::error::CacheError;
use super::flight::Flight;
use super::shadow::{self, Shadow};
use super::shard::{Budget, CacheHasher, NEVER, Reason, Shard, Slot};
use super::stats::{CacheStats, Counter, StripedCounters};
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, Mutex, RwLock, WriteGuard};

/// A shard offers the hill climber a sample every this many inserts.
const CLIMB_EVERY_INSERTS: u32 = 256;

/// A shard behind its lock, on its own cache line.
pub(super) type LockedShard<K, V> = CachePadded<RwLock<Shard<K, V>>>;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<V> {
    /// A live value.
    Hit(V),
    /// A live negative entry: the key is known to be absent.
    Absent,
    /// Nothing live.
    Miss,
}

/// A concurrent, sharded, byte-bounded cache with TTLs and single-flight
/// loading. See the [module documentation](super).
pub struct Cache<K, V> {
    pub(super) shards: Box<[LockedShard<K, V>]>,
    shard_mask: u64,
    hasher: CacheHasher,
    weigher: Weigher<K, V>,
    policy: Policy,
    max_bytes: u64,
    max_entry_bytes: u64,
    ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
    jitter_nanos: u64,
    clock: Arc<dyn Clock>,
    /// Whether any entry has a deadline; until then nothing reads the clock.
    has_deadlines: AtomicBool,
    used_bytes: CachePadded<AtomicU64>,
    small_permille: AtomicU32,
    climber: Mutex<Climber>,
    /// How a ghost hit enters `main`, as the shadow miniatures decided.
    ghost_free: AtomicBool,
    shadow: Mutex<Shadow>,
    pub(super) counters: StripedCounters,
}

impl<K, V> fmt::Debug for Cache<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("policy", &self.policy)
            .field("shards", &self.shards.len())
            .field("max_bytes", &self.max_bytes)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("bytes_used", &self.used_bytes.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync,
    V: Clone + Send + Sync,
{
    /// A builder with the defaults: 64 MiB, [`Policy::Adaptive`], no TTL.
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::default()
    }

    /// A cache of `max_bytes` with the other defaults.
    pub fn new(max_bytes: u64) -> Self {
        Self::builder().max_bytes(max_bytes).build()
    }

    pub(super) fn from_builder(builder: CacheBuilder<K, V>) -> Self {
        let shard_count = builder.shard_count();
        let shards = (0..shard_count)
            .map(|i| {
                let seed = 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1);
                CachePadded::new(RwLock::new(Shard::new(builder.policy, seed)))
            })
            .collect();
        let max_entry_bytes = builder
            .max_entry_bytes
            .map_or(builder.max_bytes, |max| max.min(builder.max_bytes));
        Self {
            shards,
            shard_mask: shard_count as u64 - 1,
            hasher: CacheHasher::default(),
            weigher: builder.weigher,
            policy: builder.policy,
            max_bytes: builder.max_bytes,
            max_entry_bytes,
            ttl: builder.ttl,
            negative_ttl: builder.negative_ttl.or(builder.ttl),
            jitter_nanos: nanos(builder.ttl_jitter),
            clock: builder.clock,
            has_deadlines: AtomicBool::new(false),
            used_bytes: CachePadded::new(AtomicU64::new(0)),
            small_permille: AtomicU32::new(SMALL_PERMILLE_START),
            climber: Mutex::new(Climber::default()),
            ghost_free: AtomicBool::new(false),
            shadow: Mutex::new(Shadow::new()),
            counters: StripedCounters::default(),
        }
    }

    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(super) fn hash_key(&self, key: &K) -> u64 {
        self.hash(key)
    }

    pub(super) fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    pub(super) fn negative_ttl(&self) -> Option<Duration> {
        self.negative_ttl
    }

    /// The shard of `hash`. Bits 20.. pick it: the index uses the low bits
    /// and the top seven, so shards do not skew either.
    pub(super) fn shard_of(&self, hash: u64) -> usize {
        ((hash >> 20) & self.shard_mask) as usize
    }

    fn now_nanos(&self) -> u64 {
        nanos(self.clock.now())
    }

    /// Clock time for expiry checks; 0 (nothing expired) until an entry
    /// with a deadline exists, so caches without TTLs never read the clock.
    fn expiry_now(&self) -> u64 {
        if self.has_deadlines.load(Ordering::Relaxed) {
            self.now_nanos()
        } else {
            0
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            share_bytes: self.max_bytes / self.shards.len() as u64,
            small_permille: self.small_permille.load(Ordering::Relaxed),
            ghost_free: self.ghost_free.load(Ordering::Relaxed),
        }
    }

    /// The cached value of `key`, if live.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.lookup(key) {
            Lookup::Hit(value) => Some(value),
            Lookup::Absent | Lookup::Miss => None,
        }
    }

    /// The live value of `key`, counting a hit; on anything else nothing
    /// is counted, so a caller that falls back to
    /// [`get_or_load`](Self::get_or_load) with an owned key counts the
    /// lookup once (the accelerator's hit path, which thus never builds
    /// an owned key).
    ///
    /// `warm` sees the value as soon as the entry is found, before the
    /// expiry check and the clone: a value behind a pointer can start
    /// loading the cache line its clone will write (a reference count)
    /// while the rest of the lookup runs.
    pub(crate) fn get_if_hit<Q>(&self, key: &Q, warm: impl FnOnce(&V)) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let Lookup::Hit(value) = self.probe_warming(hash, key, warm) else {
            return None;
        };
        self.count(hash, Counter::Hit);
        Some(value)
    }

    /// Whether `key` has a live entry (a value or a cached absence). Counts
    /// as a lookup in the statistics.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        !matches!(self.lookup(key), Lookup::Miss)
    }

    /// What the cache holds for `key`: a value, a cached absence, or nothing.
    #[inline]
    pub fn lookup<Q>(&self, key: &Q) -> Lookup<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let found = self.probe(hash, key);
        let counter = match found {
            Lookup::Miss => Counter::Miss,
            Lookup::Hit(_) | Lookup::Absent => Counter::Hit,
        };
        self.count(hash, counter);
        found
    }

    /// Counts a lookup of `hash` (`Hit` or `Miss`) and, for one hash in 64,
    /// runs it through the shadow miniatures.
    #[inline]
    pub(super) fn count(&self, hash: u64, counter: Counter) {
        self.counters.add(counter, 1);
        if shadow::sampled(hash) && self.policy == Policy::Adaptive {
            self.shadow_lookup(hash);
        }
    }

    /// A sampled lookup, unless another thread is simulating one (a
    /// skipped sample only thins the sample).
    #[cold]
    fn shadow_lookup(&self, hash: u64) {
        let Some(mut shadow) = self.shadow.try_lock() else {
            return;
        };
        let small_permille = self.small_permille.load(Ordering::Relaxed);
        if let Some(free) = shadow.lookup(hash, small_permille, || self.len() as u64) {
            self.ghost_free.store(free, Ordering::Relaxed);
        }
    }

    /// Looks `key` up without counting it.
    #[inline]
    pub(super) fn probe<Q>(&self, hash: u64, key: &Q) -> Lookup<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.probe_warming(hash, key, |_| {})
    }

    /// [`probe`](Self::probe), calling `warm` on the value as soon as its
    /// entry is found (see [`get_if_hit`](Self::get_if_hit)).
    #[inline]
    fn probe_warming<Q>(&self, hash: u64, key: &Q, warm: impl FnOnce(&V)) -> Lookup<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.policy == Policy::Lru {
            return self.probe_lru(hash, key);
        }
        // The clock is read before the probe, not after it: reading it
        // (`rdtscp`, or `lfence; rdtsc`) waits for every load before it, so
        // read after the probe it would wait out the probe's cache misses
        // and keep the loads after it from overlapping them. A time taken
        // a little before the lookup is as good a "now" for expiry.
        let early_now = self.expiry_now();
        let shard = self.shards[self.shard_of(hash)].read();
        let Some((index, entry)) = shard.find_entry(hash, key) else {
            return Lookup::Miss;
        };
        if let Slot::Present(value) = &entry.slot {
            warm(value);
        }
        if self.is_expired_at(&shard, index, early_now) {
            return Lookup::Miss;
        }
        entry.touch();
        match &entry.slot {
            Slot::Present(value) => Lookup::Hit(value.clone()),
            Slot::Absent => Lookup::Absent,
        }
    }

    /// [`probe`](Self::probe) under [`Policy::Lru`]: a hit moves the entry,
    /// so it takes the write lock. Kept out of line so the adaptive hit
    /// path stays small.
    #[inline(never)]
    fn probe_lru<Q>(&self, hash: u64, key: &Q) -> Lookup<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shard = self.shards[self.shard_of(hash)].write();
        let Some(index) = shard.find(hash, key) else {
            return Lookup::Miss;
        };
        let Some(entry) = shard.entry(index) else {
            return Lookup::Miss;
        };
        if self.is_expired(&shard, index) {
            return Lookup::Miss;
        }
        let found = match &entry.slot {
            Slot::Present(value) => Lookup::Hit(value.clone()),
            Slot::Absent => Lookup::Absent,
        };
        shard.touch_lru(index);
        found
    }

    /// Whether the entry at `index` of `shard` (locked by the caller) has
    /// expired. Caches without deadlines answer without reading the entry's
    /// [`Meta`](super::shard::Meta) (another cache line); entries without
    /// one, without reading the clock.
    #[inline]
    fn is_expired(&self, shard: &Shard<K, V>, index: u32) -> bool {
        self.is_expired_at(shard, index, 0)
    }

    /// [`is_expired`](Self::is_expired) at `early_now`, the clock read
    /// before the shard was locked, when it was read (not 0): the first
    /// entry with a deadline may have been inserted since the caller found
    /// none, and then the clock is read now.
    #[inline]
    fn is_expired_at(&self, shard: &Shard<K, V>, index: u32, early_now: u64) -> bool {
        self.has_deadlines.load(Ordering::Relaxed)
            && shard.meta(index).is_some_and(|meta| {
                meta.deadline_nanos != NEVER
                    && meta.is_expired(if early_now == 0 {
                        self.now_nanos()
                    } else {
                        early_now
                    })
            })
    }

    /// What `shard` (locked by the caller) holds for `key`, without
    /// counting or touching it.
    pub(super) fn peek_locked(&self, shard: &Shard<K, V>, hash: u64, key: &K) -> Lookup<V> {
        let Some(index) = shard.find(hash, key) else {
            return Lookup::Miss;
        };
        let Some(entry) = shard.entry(index) else {
            return Lookup::Miss;
        };
        if self.is_expired(shard, index) {
            return Lookup::Miss;
        }
        match &entry.slot {
            Slot::Present(value) => Lookup::Hit(value.clone()),
            Slot::Absent => Lookup::Absent,
        }
    }

    /// Caches `value` under `key` with the cache's TTL, replacing any entry
    /// for `key`. Evicts other entries as needed to stay within the budget.
    pub fn insert(&self, key: K, value: V) -> Result<(), CacheError> {
        self.insert_with(key, Slot::Present(value), self.ttl, None)
    }

    /// Like [`insert`](Self::insert), with this entry's own TTL.
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) -> Result<(), CacheError> {
        self.insert_with(key, Slot::Present(value), Some(ttl), None)
    }

    /// Caches the absence of `key` (a negative entry) for the negative TTL:
    /// lookups then answer [`Lookup::Absent`] and loads do not run.
    pub fn insert_absent(&self, key: K) -> Result<(), CacheError> {
        self.insert_with(key, Slot::Absent, self.negative_ttl, None)
    }

    /// The weight of an entry for `key`: of `value`, or of a cached
    /// absence (`None`), which is charged `size_of::<K>()` for its key.
    fn weigh(&self, key: &K, value: Option<&V>) -> u64 {
        let payload = match value {
            Some(value) => (self.weigher)(key, value),
            None => size_of::<K>() as u64,
        };
        payload.saturating_add(ENTRY_OVERHEAD_BYTES)
    }

    fn deadline(&self, shard: &mut Shard<K, V>, ttl: Option<Duration>) -> u64 {
        let Some(ttl) = ttl else {
            return NEVER;
        };
        // Written once: lookups read this flag, so a store per insert would
        // bounce its cache line between cores.
        if !self.has_deadlines.load(Ordering::Relaxed) {
            self.has_deadlines.store(true, Ordering::Relaxed);
        }
        let mut ttl_nanos = nanos(ttl);
        if self.jitter_nanos > 0 {
            let spread = self.jitter_nanos.saturating_mul(2).saturating_add(1);
            let offset = shard.next_random() % spread;
            ttl_nanos = (ttl_nanos.saturating_add(offset)).saturating_sub(self.jitter_nanos);
        }
        self.now_nanos().saturating_add(ttl_nanos).min(NEVER - 1)
    }

    /// The write path of every insert. `flight` is the caller's own load
    /// when it lands a loaded value: the value is then dropped if a write
    /// overtook the load.
    pub(super) fn insert_with(
        &self,
        key: K,
        slot: Slot<V>,
        ttl: Option<Duration>,
        flight: Option<&Arc<Flight<V>>>,
    ) -> Result<(), CacheError> {
        let weight = match &slot {
            Slot::Present(value) => self.weigh(&key, Some(value)),
            Slot::Absent => self.weigh(&key, None),
        };
        if weight > self.max_entry_bytes {
            return Err(CacheError::EntryTooLarge {
                weight_bytes: weight,
                max_entry_bytes: self.max_entry_bytes,
            });
        }
        let hash = self.hash(&key);
        let shard_index = self.shard_of(hash);
        loop {
            let mut shard = self.shards[shard_index].write();
            match flight {
                Some(own) if own.is_stale() => return Ok(()),
                Some(_) => {}
                None => mark_flight_stale(&shard, &key),
            }
            if let Some(index) = shard.find(hash, &key) {
                let old_weight = shard.weight(index);
                // A rewrite that fits without evicting (the usual update of
                // a hot key) stays in place: no unlink, no relink, no index
                // update, no sketch write.
                if weight <= old_weight || self.try_reserve(weight - old_weight) {
                    let deadline = self.deadline(&mut shard, ttl);
                    // No entry has had a deadline (the flag is set before
                    // one is written, under a shard lock held here), so
                    // this one's is `NEVER` already and stays unwritten.
                    let unchanged =
                        deadline == NEVER && !self.has_deadlines.load(Ordering::Relaxed);
                    let deadline = (!unchanged).then_some(deadline);
                    let old = shard.replace_at(index, slot, old_weight, weight, deadline);
                    self.release(old_weight.saturating_sub(weight));
                    self.counters.add(Counter::Removed, 1);
                    self.inserted(shard, old);
                    return Ok(());
                }
                if let Some(old) = shard.remove_at(index) {
                    self.release(old.meta.weight);
                    self.counters.add(Counter::Removed, 1);
                }
            }
            if !self.reserve(&mut shard, weight) {
                drop(shard);
                self.evict_elsewhere(shard_index, weight);
                continue;
            }
            let deadline = self.deadline(&mut shard, ttl);
            shard.insert_new(key, slot, hash, weight, deadline, self.budget());
            self.inserted(shard, None);
            return Ok(());
        }
    }

    /// Counts an insert, unlocks its shard, then drops the value it
    /// replaced (user `Drop` code runs outside the lock) and offers the
    /// hill climber a sample when the shard's turn has come.
    fn inserted(&self, mut shard: WriteGuard<'_, Shard<K, V>>, replaced: Option<Slot<V>>) {
        self.counters.add(Counter::Insert, 1);
        shard.inserts_since_climb += 1;
        let climb = shard.inserts_since_climb >= CLIMB_EVERY_INSERTS;
        if climb {
            shard.inserts_since_climb = 0;
        }
        drop(shard);
        drop(replaced);
        if climb && self.policy == Policy::Adaptive {
            self.climb();
        }
    }

    /// Reserves `bytes` more of the budget if they fit without evicting.
    fn try_reserve(&self, bytes: u64) -> bool {
        self.used_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= self.max_bytes)
            })
            .is_ok()
    }

    /// Reserves `weight` bytes of the budget, evicting from `shard` as
    /// needed; false if the shard ran out of entries first.
    fn reserve(&self, shard: &mut WriteGuard<'_, Shard<K, V>>, weight: u64) -> bool {
        let mut now = None;
        loop {
            let used = self.used_bytes.load(Ordering::Acquire);
            if used.saturating_add(weight) <= self.max_bytes {
                if self
                    .used_bytes
                    .compare_exchange_weak(used, used + weight, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            let now = *now.get_or_insert_with(|| self.expiry_now());
            match shard.evict_one(now, self.budget()) {
                Some((evicted, reason)) => self.count_eviction(evicted, reason),
                None => return false,
            }
        }
    }

    /// Evicts from the shards other than `skip` until `weight` more bytes
    /// fit, one shard lock at a time.
    fn evict_elsewhere(&self, skip: usize, weight: u64) {
        let now = self.expiry_now();
        for step in 1..self.shards.len() {
            let mut shard = self.shards[(skip + step) % self.shards.len()].write();
            while self
                .used_bytes
                .load(Ordering::Acquire)
                .saturating_add(weight)
                > self.max_bytes
            {
                match shard.evict_one(now, self.budget()) {
                    Some((evicted, reason)) => self.count_eviction(evicted, reason),
                    None => break,
                }
            }
            if self
                .used_bytes
                .load(Ordering::Acquire)
                .saturating_add(weight)
                <= self.max_bytes
            {
                return;
            }
        }
    }

    fn count_eviction(&self, weight: u64, reason: Reason) {
        self.release(weight);
        let counter = match reason {
            Reason::Size => Counter::EvictedSize,
            Reason::Expired => Counter::EvictedExpired,
        };
        self.counters.add(counter, 1);
    }

    fn release(&self, bytes: u64) {
        if bytes > 0 {
            self.used_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
    }

    /// Offers the hill climber a sample, unless another thread is at it.
    fn climb(&self) {
        let Some(mut climber) = self.climber.try_lock() else {
            return;
        };
        let hits = self.counters.sum(Counter::Hit);
        let lookups = hits + self.counters.sum(Counter::Miss);
        let entries = self.len() as u64;
        if let Some(permille) = climber.sample(hits, lookups, entries) {
            self.small_permille.store(permille, Ordering::Relaxed);
        }
    }

    /// Removes `key`'s entry and returns its value (`None` if it had none,
    /// or a cached absence, or an expired one). A load of `key` in flight
    /// will not cache its result.
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let now = self.expiry_now();
        let mut shard = self.shards[self.shard_of(hash)].write();
        mark_flight_stale(&shard, key);
        let removed = shard.find(hash, key).and_then(|i| shard.remove_at(i))?;
        drop(shard);
        self.release(removed.meta.weight);
        self.counters.add(Counter::Removed, 1);
        match removed.slot {
            Slot::Present(value) if !removed.meta.is_expired(now) => Some(value),
            Slot::Present(_) | Slot::Absent => None,
        }
    }

    /// Removes every entry; loads in flight will not cache their results.
    pub fn invalidate_all(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.write();
            for flight in shard.flights.values() {
                flight.mark_stale();
            }
            let (entries, bytes) = shard.clear();
            drop(shard);
            self.release(bytes);
            self.counters.add(Counter::Removed, entries);
        }
    }

    /// Drops every expired entry now and returns how many. Expired entries
    /// are otherwise reclaimed when eviction meets them or their key is
    /// written; until then they count against the budget.
    pub fn purge_expired(&self) -> u64 {
        if !self.has_deadlines.load(Ordering::Relaxed) {
            return 0;
        }
        let now = self.now_nanos();
        let mut purged = 0;
        for shard in self.shards.iter() {
            let (entries, bytes) = shard.write().purge_expired(now);
            self.release(bytes);
            self.counters.add(Counter::EvictedExpired, entries);
            purged += entries;
        }
        purged
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.counters.sum(Counter::Hit),
            misses: self.counters.sum(Counter::Miss),
            inserts: self.counters.sum(Counter::Insert),
            evicted_size: self.counters.sum(Counter::EvictedSize),
            evicted_expired: self.counters.sum(Counter::EvictedExpired),
            removed: self.counters.sum(Counter::Removed),
            loads: self.counters.sum(Counter::Load),
            load_errors: self.counters.sum(Counter::LoadError),
            bytes_used: self.used_bytes.load(Ordering::Acquire),
            entries: self.len() as u64,
        }
    }

    /// Bytes charged to the budget now.
    pub fn bytes_used(&self) -> u64 {
        self.used_bytes.load(Ordering::Acquire)
    }

    /// Resident entries, expired ones not yet reclaimed included (counted
    /// shard by shard: a global counter would be one more shared write on
    /// every insert and eviction).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.read().len()).sum()
    }

    /// Whether the cache holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The largest entry (weight plus overhead) the cache accepts.
    pub fn max_entry_bytes(&self) -> u64 {
        self.max_entry_bytes
    }

    /// The eviction policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The weight an entry would be charged (the weigher's figure plus
    /// [`ENTRY_OVERHEAD_BYTES`]).
    pub fn weight_of(&self, key: &K, value: &V) -> u64 {
        self.weigh(key, Some(value))
    }

    /// The sum of the shards' own byte counts, for tests that check it
    /// against the global counter.
    #[cfg(test)]
    pub(super) fn shard_bytes(&self) -> u64 {
        self.shards.iter().map(|shard| shard.read().bytes()).sum()
    }
}

/// Marks a load of `key` in flight (if any) stale; called under the shard's
/// write lock by every write of `key`.
fn mark_flight_stale<K, V, Q>(shard: &Shard<K, V>, key: &Q)
where
    K: Hash + Eq + Borrow<Q>,
    Q: Hash + Eq + ?Sized,
    V: Clone,
{
    if !shard.flights.is_empty()
        && let Some(flight) = shard.flights.get(key)
    {
        flight.mark_stale();
    }
}
