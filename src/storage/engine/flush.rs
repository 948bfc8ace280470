//! Flushing immutable memtables to L0 segments and deleting the files that
//! become obsolete once the manifest no longer needs them.
//!
//! Order of a flush (the crash-safety argument is in
//! `docs/format-engine.md`): write and sync the segment, sync the
//! directory so its name is durable, install it with a manifest edit that
//! also raises the log number past the memtable's log, and only after that
//! edit is durable delete the old logs and obsolete segments.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::EngineOptions;
use super::state::{ImmutableMemtable, Shared, file_meta};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::segment::{SegmentMeta, SegmentOptions, SegmentWriter};
use crate::storage::types::{Entry, FileNumber};
use crate::storage::version::VersionEdit;
use crate::storage::wal;

/// The segment options the engine writes with: the compaction's target
/// file size wins, so flush and compaction outputs agree.
pub(super) fn segment_options(options: &EngineOptions) -> SegmentOptions {
    SegmentOptions {
        target_file_size_bytes: options.compaction.target_file_size_bytes,
        ..options.segment
    }
}

/// Writes `entries` (internal order) to segment `number` in `dir`, syncs
/// it and its directory entry. Returns `None` (and leaves no file) if there
/// were no entries.
pub(super) fn write_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    number: FileNumber,
    options: &EngineOptions,
    entries: impl Iterator<Item = Entry>,
) -> Result<Option<SegmentMeta>> {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return Ok(None);
    }
    let path = super::segment_file_path(dir, number);
    let mut writer = SegmentWriter::create(fs, &path, number, segment_options(options))?;
    for entry in entries {
        writer.add(&entry.key, entry.seq, entry.kind, &entry.value)?;
    }
    let meta = writer.finish()?;
    fs.sync_dir(dir)
        .map_err(|e| StorageError::io("fsync_dir", dir, e))?;
    Ok(Some(meta))
}

impl Shared {
    /// Flushes every immutable memtable, oldest first, in this thread.
    pub(super) fn run_pending_flushes(&self) -> Result<()> {
        loop {
            self.check()?;
            let work = self.work.lock();
            let flushed = self.flush_oldest_locked();
            if !self.latch(flushed)? {
                return Ok(());
            }
            drop(work);
            self.progressed();
        }
    }

    /// Flushes the oldest immutable memtable, if there is one, and returns
    /// whether there was. The caller holds the work lock: a compaction
    /// calls this between two of its output files, so that writers waiting
    /// for a flush do not wait for the whole compaction.
    pub(super) fn flush_oldest_locked(&self) -> Result<bool> {
        let Some(oldest) = self.read_state().immutable.first().cloned() else {
            return Ok(false);
        };
        self.flush_one(&oldest)?;
        Ok(true)
    }

    /// Flushes `memtable` (the oldest immutable one) and installs it. The
    /// caller holds the work lock.
    fn flush_one(&self, memtable: &Arc<ImmutableMemtable>) -> Result<()> {
        let number = self.versions.new_file_number();
        let entries = memtable.memtable.iter(
            crate::storage::range::KeyRange::all(),
            crate::storage::range::Direction::Forward,
        );
        let meta = write_segment(self.fs.as_ref(), &self.dir, number, &self.options, entries)?;
        let mut edit = VersionEdit::new();
        edit.set_log_number(memtable.next_log_number);
        if let Some(meta) = &meta {
            self.counters
                .flush_bytes
                .fetch_add(meta.file_size_bytes, Ordering::Relaxed);
            edit.add_file(file_meta(meta, 0));
        }
        let version = self.versions.log_and_apply(&edit)?;
        self.install_version(version, Some(memtable));
        self.record_flush(memtable);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.delete_obsolete_files()
    }

    /// Deletes logs older than the durable manifest's log number (and than
    /// any log a running checkpoint copies) and every segment no version or
    /// reader references (a checkpoint holds the version it links).
    pub(super) fn delete_obsolete_files(&self) -> Result<()> {
        let mut deleted = 0u64;
        for number in self.versions.take_obsolete_files() {
            self.segments.remove(number);
            let path = super::segment_file_path(&self.dir, number);
            self.fs
                .remove_file(&path)
                .map_err(|e| StorageError::io("remove", &path, e))?;
            deleted += 1;
        }
        // Read under the pins' lock, so a checkpoint pinning at the same
        // time either sees this log number or is seen here.
        let log_number = {
            let pins = self.log_pins.lock();
            let needed = self.versions.log_number();
            pins.iter().copied().fold(needed, FileNumber::min)
        };
        for number in wal::list_logs(self.fs.as_ref(), &self.dir)? {
            if number >= log_number {
                break;
            }
            let path = wal::log_file_path(&self.dir, number);
            self.fs
                .remove_file(&path)
                .map_err(|e| StorageError::io("remove", &path, e))?;
            deleted += 1;
        }
        self.counters
            .files_deleted
            .fetch_add(deleted, Ordering::Relaxed);
        Ok(())
    }
}
