//! Reads: point reads, snapshots and iterators.
//!
//! A read first takes the last visible sequence number, then an `Arc` of
//! the read state: everything at or before that number is in a memtable of
//! that state or in a file of its version (a flush installs its file and
//! drops its memtable in one swap), so the read sees every acknowledged
//! write and never waits for a writer.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Engine;
use super::state::{ReadState, Shared};
use crate::storage::error::Result;
use crate::storage::merge::{EntryIter, Source, VisibleIter};
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{Entry, EntryKind, SequenceNumber};
use crate::storage::version::{LEVEL_COUNT, LiveFile};

/// A consistent view of the engine at one sequence number. While it is
/// alive, compaction keeps every version it can see. Dropping it releases
/// them.
#[derive(Debug)]
pub struct Snapshot {
    shared: Arc<Shared>,
    seq: SequenceNumber,
}

impl Snapshot {
    /// The sequence number the snapshot reads at.
    pub fn sequence(&self) -> SequenceNumber {
        self.seq
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let mut snapshots = self.shared.snapshots.lock();
        if let Some(count) = snapshots.get_mut(&self.seq) {
            *count -= 1;
            if *count == 0 {
                snapshots.remove(&self.seq);
            }
        }
    }
}

/// An iterator over `(key, value)` pairs of a range, holding the read
/// state (and so the files) it reads.
pub struct EngineIter {
    inner: VisibleIter,
    _state: Arc<ReadState>,
}

impl std::fmt::Debug for EngineIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineIter").finish_non_exhaustive()
    }
}

impl Iterator for EngineIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next()
    }
}

impl Engine {
    /// The current value of `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let shared = self.shared();
        shared.check()?;
        let (seq, state) = shared.read_now()?;
        shared.get_in(&state, key, seq)
    }

    /// The value of `key` as of `snapshot`.
    pub fn get_at(&self, snapshot: &Snapshot, key: &[u8]) -> Result<Option<Bytes>> {
        self.shared().check()?;
        self.shared().get_at(key, snapshot.seq)
    }

    /// A snapshot of everything written so far.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let shared = self.shared();
        shared.check()?;
        let mut snapshots = shared.snapshots.lock();
        // Under the registry lock, so a compaction computing the oldest
        // snapshot either sees this one or ran before it existed.
        let seq = shared.pipeline()?.last_visible_sequence();
        *snapshots.entry(seq).or_insert(0) += 1;
        Ok(Snapshot {
            shared: Arc::clone(shared),
            seq,
        })
    }

    /// The pairs whose key lies in `range`, in `direction`, as of
    /// `snapshot` (or now).
    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
        direction: Direction,
        snapshot: Option<&Snapshot>,
    ) -> Result<EngineIter> {
        self.iter_over(KeyRange::from_bounds(range), direction, snapshot)
    }

    /// The pairs whose key starts with `prefix`, in `direction`.
    pub fn prefix(
        &self,
        prefix: &[u8],
        direction: Direction,
        snapshot: Option<&Snapshot>,
    ) -> Result<EngineIter> {
        let start = Bound::Included(Bytes::copy_from_slice(prefix));
        let end = match prefix_successor(prefix) {
            Some(end) => Bound::Excluded(Bytes::from(end)),
            None => Bound::Unbounded,
        };
        self.iter_over(KeyRange::new(start, end), direction, snapshot)
    }

    fn iter_over(
        &self,
        range: KeyRange,
        direction: Direction,
        snapshot: Option<&Snapshot>,
    ) -> Result<EngineIter> {
        let shared = self.shared();
        shared.check()?;
        let (seq, state) = match snapshot {
            Some(snapshot) => (snapshot.seq, shared.read_state()),
            None => shared.read_now()?,
        };
        let mut sources: Vec<EntryIter> = Vec::new();
        sources.push(Source::Memtable(state.active.clone()).iter(&range, direction));
        for memtable in state.immutable.iter().rev() {
            sources.push(Source::Memtable(memtable.memtable.clone()).iter(&range, direction));
        }
        let (lower, upper) = (as_slice_bound(&range.start), as_slice_bound(&range.end));
        // L0 files overlap each other: each is its own source, newest first.
        for file in state.version.overlapping(0, lower, upper) {
            let reader = shared.segment(file.number())?;
            sources.push(Source::Segment(reader).iter(&range, direction));
        }
        // A lower level's files are disjoint and sorted: one source walks
        // them in turn, opening each only when the walk reaches it.
        for level in 1..LEVEL_COUNT {
            let mut files = state.version.overlapping(level, lower, upper);
            if files.is_empty() {
                continue;
            }
            if direction == Direction::Reverse {
                files.reverse();
            }
            sources.push(Box::new(LevelIter {
                shared: Arc::clone(shared),
                files: files.into(),
                range: range.clone(),
                direction,
                current: None,
            }));
        }
        Ok(EngineIter {
            inner: VisibleIter::new(sources, seq, direction),
            _state: state,
        })
    }
}

impl Shared {
    pub(super) fn get_at(&self, key: &[u8], seq: SequenceNumber) -> Result<Option<Bytes>> {
        self.get_in(&self.read_state(), key, seq)
    }

    /// The value of `key` at `seq` in `state`.
    fn get_in(&self, state: &ReadState, key: &[u8], seq: SequenceNumber) -> Result<Option<Bytes>> {
        self.counters.point_reads.fetch_add(1, Ordering::Relaxed);
        let memtables =
            std::iter::once(&state.active).chain(state.immutable.iter().rev().map(|m| &m.memtable));
        for memtable in memtables {
            if let Some((kind, value)) = memtable.get(key, seq) {
                return Ok(visible(kind, value));
            }
        }
        for file in state.version.files_for_key(key) {
            if file.meta().min_seq > seq {
                continue;
            }
            self.counters.segment_probes.fetch_add(1, Ordering::Relaxed);
            let reader = self.segment(file.number())?;
            if let Some((kind, value)) = reader.get(key, seq)? {
                return Ok(visible(kind, value));
            }
        }
        Ok(None)
    }
}

/// The files of one level below L0, walked one after the other in
/// `direction`; each is opened only when the walk reaches it, so a scan
/// holds one file per level, not the whole level.
struct LevelIter {
    shared: Arc<Shared>,
    /// The files still to walk, in walk order.
    files: VecDeque<Arc<LiveFile>>,
    range: KeyRange,
    direction: Direction,
    current: Option<EntryIter>,
}

impl Iterator for LevelIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.as_mut().and_then(Iterator::next) {
                return Some(entry);
            }
            let file = self.files.pop_front()?;
            match self.shared.segment(file.number()) {
                Ok(reader) => {
                    self.current = Some(Source::Segment(reader).iter(&self.range, self.direction));
                }
                Err(error) => {
                    // Ends the walk: a level with a hole must not read as
                    // if the missing file were empty.
                    self.files.clear();
                    self.current = None;
                    return Some(Err(error));
                }
            }
        }
    }
}

/// `bound` borrowed as a byte-slice bound.
fn as_slice_bound(bound: &Bound<Bytes>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(key) => Bound::Included(key.as_ref()),
        Bound::Excluded(key) => Bound::Excluded(key.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn visible(kind: EntryKind, value: Bytes) -> Option<Bytes> {
    (kind == EntryKind::Put).then_some(value)
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` if there is none (the prefix is empty or all `0xff`).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
