//! Merging the read path's sources — memtables and segments — into one
//! ordered stream, and the two views built on it:
//!
//! - [`VisibleIter`], what a reader sees: each user key's newest version at or
//!   before a snapshot, tombstones hidden, as `(key, value)` pairs;
//! - [`CompactionIter`], what a compaction writes: every version some live
//!   snapshot may still read, tombstones dropped only at the bottommost level.
//!
//! Sources are already restricted to the range being read and walk it in
//! the same direction; the merge only orders them. It never blocks writers:
//! memtable sources copy entries out of the skip list, segment sources read
//! immutable files.
#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bytes::Bytes;

use super::error::Result;
use super::memtable::Memtable;
use super::range::{Direction, KeyRange};
use super::segment::SegmentReader;
use super::types::{Entry, EntryKind, SequenceNumber, compare_internal};

/// A source of internal entries in one direction over one range.
pub(crate) type EntryIter = Box<dyn Iterator<Item = Result<Entry>> + Send>;

/// Something the read path merges: a memtable (active or being flushed) or a
/// segment.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A memtable.
    Memtable(Memtable),
    /// An open segment.
    Segment(SegmentReader),
}

impl Source {
    /// The source's entries in `range`, in `direction`; a segment whose key
    /// span misses the range is skipped without reading it.
    pub(crate) fn iter(&self, range: &KeyRange, direction: Direction) -> EntryIter {
        match self {
            Self::Memtable(memtable) => Box::new(memtable.iter(range.clone(), direction).map(Ok)),
            Self::Segment(segment) if segment.meta().overlaps(range) => {
                Box::new(segment.iter(range.clone(), direction))
            }
            Self::Segment(_) => Box::new(std::iter::empty()),
        }
    }
}

/// The heap slot of one source's current entry.
struct Head {
    entry: Entry,
    source: usize,
    direction: Direction,
}

impl Ord for Head {
    /// `BinaryHeap` pops the greatest: the entry first in the walk direction,
    /// and between equal entries the one from the earlier (newer) source.
    fn cmp(&self, other: &Self) -> Ordering {
        let order = compare_internal(
            &self.entry.key,
            self.entry.seq,
            &other.entry.key,
            other.entry.seq,
        );
        let order = match self.direction {
            Direction::Forward => order.reverse(),
            Direction::Reverse => order,
        };
        order.then_with(|| other.source.cmp(&self.source))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

/// A k-way merge of sources into internal order (or its reverse).
///
/// Sources are listed newest first. Sequence numbers are unique, so the same
/// `(key, seq)` in two sources is one write seen twice (say, a memtable and
/// the segment it was flushed to, both still listed during the switch); the
/// merge yields it once, from the newest source. After an error it yields
/// nothing more.
pub(crate) struct MergeIter {
    sources: Vec<EntryIter>,
    heap: BinaryHeap<Head>,
    direction: Direction,
    started: bool,
    failed: bool,
    last: Option<(Bytes, SequenceNumber)>,
}

impl MergeIter {
    /// Merges `sources` (newest first), each walking `direction`.
    pub(crate) fn new(sources: Vec<EntryIter>, direction: Direction) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            direction,
            started: false,
            failed: false,
            last: None,
        }
    }

    /// Moves source `source` to its next entry, into the heap.
    fn advance(&mut self, source: usize) -> Result<()> {
        if let Some(next) = self.sources.get_mut(source).and_then(Iterator::next) {
            self.heap.push(Head {
                entry: next?,
                source,
                direction: self.direction,
            });
        }
        Ok(())
    }

    fn next_entry(&mut self) -> Result<Option<Entry>> {
        if !self.started {
            self.started = true;
            for source in 0..self.sources.len() {
                self.advance(source)?;
            }
        }
        while let Some(head) = self.heap.pop() {
            self.advance(head.source)?;
            let entry = head.entry;
            if self
                .last
                .as_ref()
                .is_some_and(|(key, seq)| *seq == entry.seq && *key == entry.key)
            {
                continue;
            }
            self.last = Some((entry.key.clone(), entry.seq));
            return Ok(Some(entry));
        }
        Ok(None)
    }
}

impl Iterator for MergeIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.failed {
            return None;
        }
        let next = self.next_entry();
        fuse_on_error(&mut self.failed, next)
    }
}

/// The user's view of merged sources at a snapshot: for each user key, the
/// newest version with `seq <= snapshot`, skipped if it is a tombstone.
/// Yields `(key, value)` in the direction of its sources.
pub(crate) struct VisibleIter {
    merged: MergeIter,
    snapshot: SequenceNumber,
    direction: Direction,
    /// Forward: the key whose visible version was already decided.
    decided_key: Option<Bytes>,
    /// Reverse: the first entry of the next key, read ahead.
    lookahead: Option<Entry>,
    failed: bool,
}

impl VisibleIter {
    /// The view of `sources` (newest first), each already restricted to the
    /// range and walking `direction`, at `snapshot`.
    pub(crate) fn new(
        sources: Vec<EntryIter>,
        snapshot: SequenceNumber,
        direction: Direction,
    ) -> Self {
        Self {
            merged: MergeIter::new(sources, direction),
            snapshot,
            direction,
            decided_key: None,
            lookahead: None,
            failed: false,
        }
    }

    /// The view of `range` across `sources` (newest first) at `snapshot`.
    pub(crate) fn over(
        sources: &[Source],
        range: &KeyRange,
        snapshot: SequenceNumber,
        direction: Direction,
    ) -> Self {
        let iters = sources
            .iter()
            .map(|source| source.iter(range, direction))
            .collect();
        Self::new(iters, snapshot, direction)
    }

    /// Forward: versions arrive newest first, so the first visible one decides.
    fn next_forward(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        while let Some(entry) = self.merged.next().transpose()? {
            if entry.seq > self.snapshot || self.decided_key.as_ref() == Some(&entry.key) {
                continue;
            }
            self.decided_key = Some(entry.key.clone());
            if entry.kind == EntryKind::Put {
                return Ok(Some((entry.key, entry.value)));
            }
        }
        Ok(None)
    }

    /// Reverse: versions arrive oldest first, so a key is decided only when
    /// the next key (or the end) shows up; the last visible version wins.
    fn next_reverse(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        loop {
            let first = match self.lookahead.take() {
                Some(entry) => entry,
                None => match self.merged.next().transpose()? {
                    Some(entry) => entry,
                    None => return Ok(None),
                },
            };
            let key = first.key.clone();
            let mut newest_visible = (first.seq <= self.snapshot).then_some(first);
            while let Some(entry) = self.merged.next().transpose()? {
                if entry.key != key {
                    self.lookahead = Some(entry);
                    break;
                }
                if entry.seq <= self.snapshot {
                    newest_visible = Some(entry);
                }
            }
            if let Some(entry) = newest_visible.filter(|entry| entry.kind == EntryKind::Put) {
                return Ok(Some((entry.key, entry.value)));
            }
        }
    }
}

impl Iterator for VisibleIter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        if self.failed {
            return None;
        }
        let next = match self.direction {
            Direction::Forward => self.next_forward(),
            Direction::Reverse => self.next_reverse(),
        };
        match next {
            Ok(pair) => pair.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The versions a compaction keeps, in internal order.
///
/// With `oldest_snapshot` the oldest sequence number any live snapshot reads
/// at (the latest sequence number when no snapshot is open), a version is
/// kept if it is newer than `oldest_snapshot` (some snapshot or the present
/// may read it) or it is the newest version at or before it (the oldest
/// snapshot reads it); older versions are hidden from every reader and
/// dropped. A tombstone at or before `oldest_snapshot` is dropped too when
/// the output is the bottommost level — no older version of its key can
/// exist below to resurface — and kept otherwise.
pub(crate) struct CompactionIter {
    merged: MergeIter,
    oldest_snapshot: SequenceNumber,
    bottommost: bool,
    current_key: Option<Bytes>,
    /// Whether a version of `current_key` at or before `oldest_snapshot` was
    /// seen, hiding every older one.
    covered: bool,
    dropped_versions: u64,
    failed: bool,
}

impl CompactionIter {
    /// Compacts `sources` (newest first, each walking forward).
    pub(crate) fn new(
        sources: Vec<EntryIter>,
        oldest_snapshot: SequenceNumber,
        bottommost: bool,
    ) -> Self {
        Self {
            merged: MergeIter::new(sources, Direction::Forward),
            oldest_snapshot,
            bottommost,
            current_key: None,
            covered: false,
            dropped_versions: 0,
            failed: false,
        }
    }

    /// How many input versions (tombstones included) were dropped so far.
    pub(crate) fn dropped_versions(&self) -> u64 {
        self.dropped_versions
    }

    fn next_entry(&mut self) -> Result<Option<Entry>> {
        while let Some(entry) = self.merged.next().transpose()? {
            if self.current_key.as_ref() != Some(&entry.key) {
                self.current_key = Some(entry.key.clone());
                self.covered = false;
            } else if self.covered {
                self.dropped_versions += 1;
                continue;
            }
            if entry.seq <= self.oldest_snapshot {
                self.covered = true;
                if self.bottommost && entry.kind == EntryKind::Delete {
                    self.dropped_versions += 1;
                    continue;
                }
            }
            return Ok(Some(entry));
        }
        Ok(None)
    }
}

impl Iterator for CompactionIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        if self.failed {
            return None;
        }
        let next = self.next_entry();
        fuse_on_error(&mut self.failed, next)
    }
}

/// Passes `next` on, latching `failed` on an error so the iterator ends
/// there: an iterator over damaged data stops at the damage.
fn fuse_on_error(failed: &mut bool, next: Result<Option<Entry>>) -> Option<Result<Entry>> {
    match next {
        Ok(entry) => entry.map(Ok),
        Err(error) => {
            *failed = true;
            Some(Err(error))
        }
    }
}

#[cfg(test)]
mod tests;
