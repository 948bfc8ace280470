//! The memtable: the newest writes, held in a concurrent ordered map until
//! they are flushed to a segment file.
//!
//! Entries are ordered by [`compare_internal`] (user key ascending, newest
//! version first), so a point read is one seek and iteration yields internal
//! entries ready for merging. The map is a lock-free skip list: the engine's
//! commit leader inserts (one writer at a time) while any number of readers
//! look up and iterate without ever blocking on it or on each other.
//!
//! The memtable never removes an entry; it is dropped whole after its flush.
//! It owns no file and does no I/O.
//!
//! Keys and values live in an arena of chunks ([`Memtable::store`]): the
//! commit leader copies each batch's encoded entries into the current chunk
//! and the skip list's keys and values are `Bytes` slices of it, so a
//! small batch costs one skip-list node allocation per entry and nothing
//! else; a chunk is reused by a later memtable (or freed) when the
//! memtable and every `Bytes` read from it are gone ([`arena`]).
#![cfg_attr(not(test), allow(dead_code))]

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

mod arena;

use arena::Arena;
pub(crate) use arena::ChunkPool;

use super::range::{Direction, KeyRange};
use super::types::{Entry, EntryKind, SequenceNumber, compare_internal, key_prefix};

/// Bookkeeping bytes charged per entry on top of its key and value: a skip
/// list node (refcount, height, on average 1.33 tower pointers), the key's and
/// value's `Bytes` headers, the kind, and allocator rounding. An estimate; it
/// only has to keep rotation at the configured size roughly honest.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 96;

/// How many entries an iterator copies out of the skip list on its first
/// seek: short scans (a Query page of a few items) copy little.
const ITER_CHUNK_ENTRIES_FIRST: usize = 8;

/// The most entries an iterator copies per seek; each refill doubles the
/// chunk up to this, so long scans amortise their seeks.
const ITER_CHUNK_ENTRIES_MAX: usize = 128;

/// A version's key in the skip list, ordered by [`compare_internal`].
/// `prefix` is [`key_prefix`] of `key`: most comparisons during a skip-list
/// search end on it without reading the key bytes.
///
/// `prefix` is the last field (`repr(C)` keeps the order) because the skip
/// list lays a node out as value, key, reference count, tower: a search
/// step reads the node's tower pointer and then its prefix, and with the
/// prefix right before the tower both are usually in one cache line.
#[derive(Debug, Clone)]
#[repr(C)]
struct InternalKey {
    key: Bytes,
    seq: SequenceNumber,
    prefix: u64,
}

impl InternalKey {
    fn new(key: Bytes, seq: SequenceNumber) -> Self {
        Self {
            prefix: key_prefix(&key),
            key,
            seq,
        }
    }
}

/// Orders `(prefix, key, seq)` triples: prefix first (see [`key_prefix`]),
/// then [`compare_internal`].
fn compare_prefixed(a: (u64, &[u8], SequenceNumber), b: (u64, &[u8], SequenceNumber)) -> Ordering {
    match a.0.cmp(&b.0) {
        Ordering::Equal => compare_internal(a.1, a.2, b.1, b.2),
        order => order,
    }
}

/// What a lookup compares against without building an owned [`InternalKey`]:
/// the skip list accepts any `Q` that its key type borrows as, and a trait
/// object lets a borrowed `(&[u8], seq)` stand in, so a point read allocates
/// nothing.
trait LookupKey {
    fn parts(&self) -> (u64, &[u8], SequenceNumber);
}

impl LookupKey for InternalKey {
    fn parts(&self) -> (u64, &[u8], SequenceNumber) {
        (self.prefix, &self.key, self.seq)
    }
}

/// A borrowed point-read probe.
struct Probe<'a> {
    prefix: u64,
    key: &'a [u8],
    seq: SequenceNumber,
}

impl LookupKey for Probe<'_> {
    fn parts(&self) -> (u64, &[u8], SequenceNumber) {
        (self.prefix, self.key, self.seq)
    }
}

impl<'a> Borrow<dyn LookupKey + 'a> for InternalKey {
    fn borrow(&self) -> &(dyn LookupKey + 'a) {
        self
    }
}

impl Ord for dyn LookupKey + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_prefixed(self.parts(), other.parts())
    }
}

impl PartialOrd for dyn LookupKey + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn LookupKey + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn LookupKey + '_ {}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_prefixed(self.parts(), other.parts())
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for InternalKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for InternalKey {}

#[derive(Debug)]
struct Version {
    kind: EntryKind,
    value: Bytes,
}

#[derive(Debug)]
struct Inner {
    map: SkipMap<InternalKey, Version>,
    memory_bytes: AtomicUsize,
    arena: Arena,
}

/// A concurrent ordered map of internal entries. Cloning is cheap and shares
/// the map, so iterators own a clone and outlive any borrow.
#[derive(Debug, Clone)]
pub(crate) struct Memtable {
    inner: Arc<Inner>,
}

impl Memtable {
    /// An empty memtable whose arena keeps no chunks for later memtables.
    pub(crate) fn new() -> Self {
        Self::with_pool(ChunkPool::new(0))
    }

    /// An empty memtable whose arena takes chunks from `pool` and gives
    /// them back: an engine's memtables share one.
    pub(crate) fn with_pool(pool: Arc<ChunkPool>) -> Self {
        Self {
            inner: Arc::new(Inner {
                map: SkipMap::new(),
                memory_bytes: AtomicUsize::new(0),
                arena: Arena::new(pool),
            }),
        }
    }

    /// Copies `data` into the memtable's arena and returns the copy, whose
    /// slices ([`Bytes::slice_ref`]) cost no allocation. Slices of it are
    /// what [`Memtable::insert`] should be given.
    pub(crate) fn store(&self, data: &[u8]) -> Bytes {
        self.store_parts(&[data])
    }

    /// [`Memtable::store`] of the concatenation of `parts`.
    fn store_parts(&self, parts: &[&[u8]]) -> Bytes {
        self.inner.arena.copy(parts)
    }

    /// Adds every operation of a batch's encoded entries, `buffer` (a copy
    /// from [`Memtable::store`] or any `Bytes` holding exactly
    /// [`WriteBatch::entries`](super::batch::WriteBatch::entries)), entry
    /// `i` as version `first_seq + i`; keys and values are slices of
    /// `buffer`, but for spliced values (a copy entry with a prefix or
    /// suffix), which are joined into the arena. Returns how many entries
    /// it inserted.
    ///
    /// One epoch pin covers every insert: the skip list pins per insert
    /// (and again to release the entry it returns), and a nested pin is a
    /// counter increment where a first pin is a full fence. The memory
    /// charge is added once: the buffer's length (values a batch copies
    /// share its bytes) and each entry's overhead.
    pub(crate) fn insert_batch(&self, buffer: &Bytes, first_seq: SequenceNumber) -> usize {
        let _pinned = crossbeam_epoch::pin();
        let mut count = 0;
        let mut joined_bytes = 0;
        for (i, op) in super::batch::BatchIter::over(buffer).enumerate() {
            let value = match op.value.as_slice() {
                Some(value) => buffer.slice_ref(value),
                None => {
                    joined_bytes += op.value.len();
                    self.store_parts(&op.value.parts())
                }
            };
            self.inner.map.insert(
                InternalKey::new(buffer.slice_ref(op.key), first_seq + i as u64),
                Version {
                    kind: op.kind,
                    value,
                },
            );
            count += 1;
        }
        let charge = buffer.len() + joined_bytes + count * ENTRY_OVERHEAD_BYTES;
        self.inner
            .memory_bytes
            .fetch_add(charge, AtomicOrdering::Relaxed);
        count
    }

    /// Adds one version. Sequence numbers are unique per entry, so `(key,
    /// seq)` is never already present; callers insert one at a time.
    ///
    /// The memory charge counts the key's and value's lengths: `Bytes` that
    /// are slices of a larger buffer keep that buffer alive, which the WAL's
    /// batch decoding makes a wash (a batch's entries cover its buffer).
    pub(crate) fn insert(&self, key: Bytes, seq: SequenceNumber, kind: EntryKind, value: Bytes) {
        let charge = key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
        self.inner
            .map
            .insert(InternalKey::new(key, seq), Version { kind, value });
        self.inner
            .memory_bytes
            .fetch_add(charge, AtomicOrdering::Relaxed);
    }

    /// The newest version of `key` written at or before `snapshot_seq`, if
    /// any; a tombstone is returned as such so the caller stops looking in
    /// older sources.
    pub(crate) fn get(
        &self,
        key: &[u8],
        snapshot_seq: SequenceNumber,
    ) -> Option<(EntryKind, Bytes)> {
        let probe = Probe {
            prefix: key_prefix(key),
            key,
            seq: snapshot_seq,
        };
        let found = self
            .inner
            .map
            .lower_bound(Bound::Included(&probe as &dyn LookupKey))?;
        if found.key().key.as_ref() != key {
            return None;
        }
        let version = found.value();
        Some((version.kind, version.value.clone()))
    }

    /// The approximate memory held, in bytes, for deciding when to rotate.
    pub(crate) fn approximate_memory_bytes(&self) -> usize {
        self.inner.memory_bytes.load(AtomicOrdering::Relaxed)
    }

    /// The number of entries (versions, not distinct keys).
    pub(crate) fn len(&self) -> usize {
        self.inner.map.len()
    }

    /// Whether nothing was inserted.
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.map.is_empty()
    }

    /// The entries whose user key lies in `range`, in `direction`. The
    /// iterator sees entries inserted while it runs if they sort after its
    /// position; they carry sequence numbers newer than any snapshot taken
    /// before, so a snapshot read filters them out.
    pub(crate) fn iter(&self, range: KeyRange, direction: Direction) -> MemtableIter {
        let exhausted = range.is_empty();
        MemtableIter {
            memtable: self.clone(),
            lower: lower_internal_bound(range.start),
            upper: upper_internal_bound(range.end),
            direction,
            buffer: VecDeque::new(),
            chunk: ITER_CHUNK_ENTRIES_FIRST,
            exhausted,
        }
    }
}

/// The smallest internal key of the range: every version sorts after
/// `(k, u64::MAX)` and before or at `(k, 0)`.
fn lower_internal_bound(bound: Bound<Bytes>) -> Bound<InternalKey> {
    match bound {
        Bound::Included(key) => Bound::Included(InternalKey::new(key, u64::MAX)),
        Bound::Excluded(key) => Bound::Excluded(InternalKey::new(key, 0)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn upper_internal_bound(bound: Bound<Bytes>) -> Bound<InternalKey> {
    match bound {
        Bound::Included(key) => Bound::Included(InternalKey::new(key, 0)),
        Bound::Excluded(key) => Bound::Excluded(InternalKey::new(key, u64::MAX)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// An owning iterator over a memtable range. It copies entries (reference
/// counted `Bytes`, no data copies) out of the skip list a chunk at a time and
/// narrows its remaining range past the chunk, so it holds no borrow.
#[derive(Debug)]
pub(crate) struct MemtableIter {
    memtable: Memtable,
    lower: Bound<InternalKey>,
    upper: Bound<InternalKey>,
    direction: Direction,
    buffer: VecDeque<Entry>,
    /// How many entries the next refill copies.
    chunk: usize,
    exhausted: bool,
}

impl MemtableIter {
    fn refill(&mut self) {
        let range = self
            .memtable
            .inner
            .map
            .range((self.lower.clone(), self.upper.clone()));
        let to_entry = |item: crossbeam_skiplist::map::Entry<'_, InternalKey, Version>| Entry {
            key: item.key().key.clone(),
            seq: item.key().seq,
            kind: item.value().kind,
            value: item.value().value.clone(),
        };
        let chunk = self.chunk;
        self.chunk = (chunk * 2).min(ITER_CHUNK_ENTRIES_MAX);
        match self.direction {
            Direction::Forward => self.buffer.extend(range.take(chunk).map(to_entry)),
            Direction::Reverse => self.buffer.extend(range.rev().take(chunk).map(to_entry)),
        }
        if self.buffer.len() < chunk {
            self.exhausted = true;
        }
        if let Some(last) = self.buffer.back() {
            let past = Bound::Excluded(InternalKey::new(last.key.clone(), last.seq));
            match self.direction {
                Direction::Forward => self.lower = past,
                Direction::Reverse => self.upper = past,
            }
        }
    }
}

impl Iterator for MemtableIter {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if self.buffer.is_empty() && !self.exhausted {
            self.refill();
        }
        self.buffer.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::arena::{ARENA_CHUNK_BYTES, ARENA_DEDICATED_BYTES_MIN};
    use super::*;

    fn bytes(key: &[u8]) -> Bytes {
        Bytes::copy_from_slice(key)
    }

    #[test]
    fn get_returns_newest_version_at_or_before_the_snapshot() {
        let memtable = Memtable::new();
        memtable.insert(bytes(b"k"), 5, EntryKind::Put, bytes(b"v5"));
        memtable.insert(bytes(b"k"), 9, EntryKind::Delete, Bytes::new());
        memtable.insert(bytes(b"k"), 12, EntryKind::Put, bytes(b"v12"));
        memtable.insert(bytes(b"j"), 7, EntryKind::Put, bytes(b"j7"));
        memtable.insert(bytes(b"l"), 1, EntryKind::Put, bytes(b"l1"));
        assert_eq!(memtable.get(b"k", 4), None);
        assert_eq!(memtable.get(b"k", 5), Some((EntryKind::Put, bytes(b"v5"))));
        assert_eq!(memtable.get(b"k", 8), Some((EntryKind::Put, bytes(b"v5"))));
        assert_eq!(
            memtable.get(b"k", 9),
            Some((EntryKind::Delete, Bytes::new()))
        );
        assert_eq!(
            memtable.get(b"k", u64::MAX),
            Some((EntryKind::Put, bytes(b"v12")))
        );
        assert_eq!(memtable.get(b"kk", u64::MAX), None);
        assert_eq!(memtable.get(b"", u64::MAX), None);
        assert_eq!(memtable.len(), 5);
    }

    #[test]
    fn arena_copies_stay_intact_across_chunks_and_dedicated_buffers() {
        let memtable = Memtable::new();
        // Sizes that fill chunks unevenly, one exactly filling the rest of
        // a chunk, and ones large enough for a buffer of their own.
        let mut sizes = vec![0, 1, 100, 3_000, ARENA_CHUNK_BYTES - 3_101];
        sizes.extend([
            ARENA_DEDICATED_BYTES_MIN - 1,
            ARENA_DEDICATED_BYTES_MIN,
            200_000,
        ]);
        sizes.extend((0..500).map(|i| (i * 37) % 700));
        let stored: Vec<(Vec<u8>, Bytes)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let data: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
                let copy = memtable.store(&data);
                (data, copy)
            })
            .collect();
        for (data, copy) in &stored {
            assert_eq!(copy.as_ref(), data.as_slice());
        }
        // Slices outlive the memtable.
        let (data, copy) = &stored[3];
        let slice = copy.slice_ref(&copy[10..20]);
        drop(memtable);
        assert_eq!(slice.as_ref(), &data[10..20]);
    }

    #[test]
    fn memory_accounting_counts_keys_values_and_overhead() {
        let memtable = Memtable::new();
        assert!(memtable.is_empty());
        memtable.insert(bytes(b"abc"), 1, EntryKind::Put, bytes(&[0; 100]));
        memtable.insert(bytes(b"abc"), 2, EntryKind::Delete, Bytes::new());
        assert_eq!(
            memtable.approximate_memory_bytes(),
            3 + 100 + 3 + 2 * ENTRY_OVERHEAD_BYTES
        );
    }

    #[test]
    fn iterators_cross_chunk_boundaries_in_both_directions() {
        let memtable = Memtable::new();
        let count = ITER_CHUNK_ENTRIES_MAX as u64 * 3 + 5;
        for i in 0..count {
            // Two versions per key so chunk boundaries fall between versions.
            let key = bytes(format!("{:04}", i / 2).as_bytes());
            memtable.insert(key, i, EntryKind::Put, Bytes::new());
        }
        let forward: Vec<_> = memtable.iter(KeyRange::all(), Direction::Forward).collect();
        let mut reverse: Vec<_> = memtable.iter(KeyRange::all(), Direction::Reverse).collect();
        reverse.reverse();
        assert_eq!(forward.len() as u64, count);
        assert_eq!(forward, reverse);
        assert!(forward.windows(2).all(|pair| {
            compare_internal(&pair[0].key, pair[0].seq, &pair[1].key, pair[1].seq) == Ordering::Less
        }));
    }

    #[test]
    fn readers_run_while_the_writer_inserts() {
        let memtable = Memtable::new();
        std::thread::scope(|scope| {
            let writer = memtable.clone();
            scope.spawn(move || {
                for seq in 0..2_000u64 {
                    writer.insert(bytes(&seq.to_be_bytes()), seq, EntryKind::Put, Bytes::new());
                }
            });
            for _ in 0..20 {
                // Whatever a reader sees is sorted and contains no torn entry.
                let seen: Vec<_> = memtable.iter(KeyRange::all(), Direction::Forward).collect();
                assert!(seen.iter().all(|e| e.key.as_ref() == e.seq.to_be_bytes()));
                assert!(seen.windows(2).all(|w| w[0].key < w[1].key));
            }
        });
        assert_eq!(memtable.len(), 2_000);
    }

    type Model = BTreeMap<(Vec<u8>, std::cmp::Reverse<u64>), (EntryKind, Vec<u8>)>;

    fn arb_ops() -> impl Strategy<Value = Vec<(u8, bool, u8)>> {
        prop::collection::vec((0u8..12, any::<bool>(), any::<u8>()), 0..120)
    }

    fn build(ops: &[(u8, bool, u8)]) -> (Memtable, Model) {
        let memtable = Memtable::new();
        let mut model = Model::new();
        for (seq, &(key, put, value)) in ops.iter().enumerate() {
            let key = vec![b'a' + key / 3; 1 + usize::from(key % 3)];
            let kind = if put {
                EntryKind::Put
            } else {
                EntryKind::Delete
            };
            let value = if put { vec![value; 3] } else { Vec::new() };
            memtable.insert(bytes(&key), seq as u64, kind, bytes(&value));
            model.insert((key, std::cmp::Reverse(seq as u64)), (kind, value));
        }
        (memtable, model)
    }

    fn arb_bound() -> impl Strategy<Value = Bound<Bytes>> {
        prop_oneof![
            Just(Bound::Unbounded),
            (0u8..12)
                .prop_map(|k| Bound::Included(bytes(&vec![b'a' + k / 3; 1 + usize::from(k % 3)]))),
            (0u8..12)
                .prop_map(|k| Bound::Excluded(bytes(&vec![b'a' + k / 3; 1 + usize::from(k % 3)]))),
        ]
    }

    proptest! {
        /// Keys around the eight-byte prefix boundary (shorter, equal and
        /// longer, with zero and non-zero bytes) iterate in byte order and
        /// are found by point reads.
        #[test]
        fn prefix_comparison_orders_keys_as_bytes(
            keys in prop::collection::btree_set(
                prop::collection::vec(prop::sample::select(vec![0u8, 1, 0x7f, 0xff]), 0..12),
                1..40,
            ),
        ) {
            let memtable = Memtable::new();
            for (seq, key) in keys.iter().rev().enumerate() {
                memtable.insert(bytes(key), seq as u64 + 1, EntryKind::Put, bytes(key));
            }
            let walked: Vec<Vec<u8>> = memtable
                .iter(KeyRange::all(), Direction::Forward)
                .map(|entry| entry.key.to_vec())
                .collect();
            let expected: Vec<Vec<u8>> = keys.iter().cloned().collect();
            prop_assert_eq!(walked, expected);
            for key in &keys {
                prop_assert_eq!(memtable.get(key, u64::MAX), Some((EntryKind::Put, bytes(key))));
            }
        }

        #[test]
        fn get_and_range_iteration_match_a_model(
            ops in arb_ops(),
            snapshot in 0u64..130,
            probe in 0u8..12,
            start in arb_bound(),
            end in arb_bound(),
        ) {
            let (memtable, model) = build(&ops);
            let key = vec![b'a' + probe / 3; 1 + usize::from(probe % 3)];
            let expected = model
                .range((key.clone(), std::cmp::Reverse(snapshot))..)
                .next()
                .filter(|((k, _), _)| *k == key)
                .map(|(_, (kind, value))| (*kind, bytes(value)));
            prop_assert_eq!(memtable.get(&key, snapshot), expected);

            let range = KeyRange::new(start, end);
            let expected: Vec<Entry> = model
                .iter()
                .filter(|((k, _), _)| range.contains(k))
                .map(|((k, seq), (kind, value))| Entry {
                    key: bytes(k),
                    seq: seq.0,
                    kind: *kind,
                    value: bytes(value),
                })
                .collect();
            let forward: Vec<_> = memtable.iter(range.clone(), Direction::Forward).collect();
            prop_assert_eq!(&forward, &expected);
            let mut reverse: Vec<_> = memtable.iter(range, Direction::Reverse).collect();
            reverse.reverse();
            prop_assert_eq!(&reverse, &expected);
        }
    }
}
