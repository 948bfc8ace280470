//! The metadata of one live segment file, and the reference counting that
//! tells the engine when a file nobody can read any more may be deleted.
//!
//! A segment file is shared by every [`Version`](super::Version) that lists
//! it and by every reader that took a handle from one. Each file number has
//! exactly one [`FileGuard`]; when the last [`LiveFile`] holding it is
//! dropped, the guard records the number in the shared [`ObsoleteFiles`]
//! list. The engine deletes only numbers it takes from that list, so a file
//! is never removed while a version or reader can still reach it.

#![cfg_attr(not(test), allow(dead_code))]

use crate::storage::segment::SegmentMeta;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::storage::types::{FileNumber, SequenceNumber};

/// What the manifest and the version set know about one segment file.
///
/// The segment module's `SegmentMeta` plus the file's level;
/// [`FileMeta::from_segment`] converts (the manifest keeps its own encoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FileMeta {
    /// The level the file lives in (0 = newest, overlapping files).
    pub level: u32,
    /// The file's number (names it in the directory).
    pub number: FileNumber,
    /// The file's length in bytes.
    pub size_bytes: u64,
    /// The smallest user key stored in the file.
    pub smallest: Bytes,
    /// The largest user key stored in the file.
    pub largest: Bytes,
    /// The smallest sequence number of any entry in the file.
    pub min_seq: SequenceNumber,
    /// The largest sequence number of any entry in the file.
    pub max_seq: SequenceNumber,
    /// How many entries (versions of keys, tombstones included) it holds.
    pub entries: u64,
}

impl FileMeta {
    /// The record of the segment a writer just finished, placed in `level`.
    pub(crate) fn from_segment(meta: &SegmentMeta, level: u32) -> Self {
        Self {
            level,
            number: meta.file_number,
            size_bytes: meta.file_size_bytes,
            smallest: meta.smallest_key.clone(),
            largest: meta.largest_key.clone(),
            min_seq: meta.min_seq,
            max_seq: meta.max_seq,
            entries: meta.entry_count,
        }
    }

    /// Whether the file's user-key range meets the inclusive range
    /// `[smallest, largest]`.
    pub(crate) fn overlaps(&self, smallest: &[u8], largest: &[u8]) -> bool {
        self.smallest.as_ref() <= largest && smallest <= self.largest.as_ref()
    }

    /// Whether `key` lies within the file's user-key range.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.smallest.as_ref() <= key && key <= self.largest.as_ref()
    }

    /// Why this record cannot describe a real file, if it cannot.
    pub(crate) fn check(&self, level_count: u32) -> Result<(), String> {
        if self.level >= level_count {
            return Err(format!(
                "file {} is in level {} but there are only {level_count} levels",
                self.number, self.level
            ));
        }
        if self.smallest > self.largest {
            return Err(format!(
                "file {} has its smallest key after its largest",
                self.number
            ));
        }
        if self.min_seq > self.max_seq {
            return Err(format!(
                "file {} has min_seq {} > max_seq {}",
                self.number, self.min_seq, self.max_seq
            ));
        }
        Ok(())
    }
}

/// The numbers of files that no version or reader references any more.
///
/// Shared by every [`FileGuard`] of one version set.
#[derive(Debug, Default)]
pub(crate) struct ObsoleteFiles {
    state: Mutex<ObsoleteState>,
}

#[derive(Debug, Default)]
struct ObsoleteState {
    numbers: Vec<FileNumber>,
    /// Set when a manifest write failed: the durable manifest may then be
    /// the old or the new one, so no file is known to be unreferenced by it.
    poisoned: bool,
}

impl ObsoleteFiles {
    /// A new, empty list.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn record(&self, number: FileNumber) {
        let mut state = self.state.lock();
        if !state.poisoned {
            state.numbers.push(number);
        }
    }

    /// Takes the numbers that became unreferenced since the last call, in
    /// the order they did. Every one is absent from the current version and
    /// from every version or handle still alive, so its file may be deleted.
    pub(crate) fn take(&self) -> Vec<FileNumber> {
        std::mem::take(&mut self.state.lock().numbers)
    }

    /// Stops recording: after a failed manifest write the engine cannot
    /// know which manifest is durable, and deleting a file the durable one
    /// lists would lose data. Numbers already recorded are dropped too.
    pub(crate) fn poison(&self) {
        let mut state = self.state.lock();
        state.poisoned = true;
        state.numbers.clear();
    }
}

/// The one owner of a file number's lifetime; see the module doc.
pub(crate) struct FileGuard {
    number: FileNumber,
    obsolete: Arc<ObsoleteFiles>,
}

impl FileGuard {
    /// A guard for `number` that reports to `obsolete` when dropped.
    pub(crate) fn new(number: FileNumber, obsolete: &Arc<ObsoleteFiles>) -> Arc<Self> {
        Arc::new(Self {
            number,
            obsolete: Arc::clone(obsolete),
        })
    }
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        self.obsolete.record(self.number);
    }
}

impl fmt::Debug for FileGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileGuard")
            .field("number", &self.number)
            .finish()
    }
}

/// A file as listed by a version: its metadata and its lifetime guard.
///
/// Readers clone the `Arc<LiveFile>` they read from, which keeps the file on
/// disk until they are done even if compaction has removed it meanwhile.
#[derive(Debug)]
pub(crate) struct LiveFile {
    meta: FileMeta,
    guard: Arc<FileGuard>,
}

impl LiveFile {
    /// A live file with metadata `meta` whose lifetime `guard` tracks.
    pub(crate) fn new(meta: FileMeta, guard: Arc<FileGuard>) -> Arc<Self> {
        assert_eq!(
            meta.number, guard.number,
            "a file's guard must be the one of its own number"
        );
        Arc::new(Self { meta, guard })
    }

    /// The file's metadata.
    pub(crate) fn meta(&self) -> &FileMeta {
        &self.meta
    }

    /// The file's number.
    pub(crate) fn number(&self) -> FileNumber {
        self.meta.number
    }

    /// The guard shared by every listing of this file number, so a file
    /// moved to another level keeps a single lifetime.
    pub(crate) fn guard(&self) -> &Arc<FileGuard> {
        &self.guard
    }
}
