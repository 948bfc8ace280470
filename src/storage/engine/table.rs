//! The table of open segments: a least-recently-used map from file number
//! to [`SegmentReader`], bounded by `EngineOptions::max_open_files`.
//!
//! An open segment holds a file descriptor, its memory map (or nothing, for
//! `pread`), its block index and its bloom filter. Evicting a reader only
//! drops the table's reference: an iterator that still reads the segment
//! keeps its clone until it is done, so the engine holds at most
//! `max_open_files` readers plus the ones live iterators are walking (each
//! iterator walks all overlapping L0 files and one file per lower level at
//! a time).

use std::collections::HashMap;

use parking_lot::Mutex;

use crate::storage::error::Result;
use crate::storage::segment::SegmentReader;
use crate::storage::types::FileNumber;

/// The default bound on cached open segments (LevelDB's `max_open_files`).
pub const MAX_OPEN_FILES_DEFAULT: usize = 1000;

#[derive(Debug)]
struct Slot {
    reader: SegmentReader,
    last_use: u64,
}

#[derive(Debug, Default)]
struct Slots {
    readers: HashMap<FileNumber, Slot>,
    /// Bumped on every use; a slot's `last_use` orders evictions.
    clock: u64,
}

/// Open segment readers, at most `capacity` of them.
#[derive(Debug)]
pub(super) struct SegmentTable {
    capacity: usize,
    slots: Mutex<Slots>,
}

impl SegmentTable {
    /// An empty table holding at most `capacity` readers (at least one).
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            slots: Mutex::new(Slots::default()),
        }
    }

    /// The reader of segment `number`, opened by `open` if the table does
    /// not hold it. The file is opened outside the lock, so a slow open
    /// never delays reads of other segments; two threads missing on the
    /// same segment may both open it, and the first to finish is kept.
    pub(super) fn get_or_open(
        &self,
        number: FileNumber,
        open: impl FnOnce() -> Result<SegmentReader>,
    ) -> Result<SegmentReader> {
        {
            let mut slots = self.slots.lock();
            slots.clock += 1;
            let now = slots.clock;
            if let Some(slot) = slots.readers.get_mut(&number) {
                slot.last_use = now;
                return Ok(slot.reader.clone());
            }
        }
        let reader = open()?;
        let mut slots = self.slots.lock();
        slots.clock += 1;
        let now = slots.clock;
        if let Some(slot) = slots.readers.get_mut(&number) {
            slot.last_use = now;
            return Ok(slot.reader.clone());
        }
        if slots.readers.len() >= self.capacity {
            evict_least_recent(&mut slots.readers);
        }
        slots.readers.insert(
            number,
            Slot {
                reader: reader.clone(),
                last_use: now,
            },
        );
        Ok(reader)
    }

    /// Forgets segment `number` (its file is about to be deleted).
    pub(super) fn remove(&self, number: FileNumber) {
        self.slots.lock().readers.remove(&number);
    }

    /// How many readers the table holds.
    pub(super) fn len(&self) -> usize {
        self.slots.lock().readers.len()
    }
}

/// Drops the least recently used reader. A linear scan: it runs only on a
/// miss, which opens a file and parses its index, a far larger cost.
fn evict_least_recent(readers: &mut HashMap<FileNumber, Slot>) {
    let oldest = readers
        .iter()
        .min_by_key(|(_, slot)| slot.last_use)
        .map(|(&number, _)| number);
    if let Some(number) = oldest {
        readers.remove(&number);
    }
}
