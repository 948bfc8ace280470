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

use bytes::Bytes;

use super::EngineOptions;
use super::state::{ImmutableMemtable, Shared, file_meta};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::memtable::Memtable;
use crate::storage::merge::CompactionIter;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::segment::{SegmentMeta, SegmentOptions, SegmentWriter};
use crate::storage::types::{Entry, FileNumber, SequenceNumber};
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

/// The entries a flush of `memtable` writes: every version some reader
/// may still need, as a compaction keeps them (`CompactionIter` with
/// `oldest_snapshot`, tombstones kept since older versions may lie below).
/// A key overwritten within one memtable is flushed once, not once per
/// write, as RocksDB's flush does: an overwrite-heavy table, and each of
/// its index entries, no longer pays its flush and its L0 compaction once
/// per put.
pub(super) fn flush_entries(
    memtable: &Memtable,
    oldest_snapshot: SequenceNumber,
) -> CompactionIter {
    let entries = memtable.iter(KeyRange::all(), Direction::Forward).map(Ok);
    CompactionIter::new(vec![Box::new(entries)], oldest_snapshot, false)
}

/// Writes `entries` (internal order) to L0 segments in `dir`, one file
/// per split prefix (`segment_split_prefix_bytes`; one file when 0),
/// numbered by `new_number`, syncs them and their directory entries.
/// Returns their metadata, in key order: none (and no file) if there were
/// no entries.
pub(super) fn write_segments(
    fs: &dyn FileSystem,
    dir: &Path,
    mut new_number: impl FnMut() -> FileNumber,
    options: &EngineOptions,
    entries: impl Iterator<Item = Result<Entry>>,
) -> Result<Vec<SegmentMeta>> {
    let mut written = Vec::new();
    let mut writer: Option<SegmentWriter> = None;
    let mut last_key = Bytes::new();
    for entry in entries {
        let entry = entry?;
        let split =
            super::crosses_split_prefix(options.segment_split_prefix_bytes, &last_key, &entry.key);
        if let Some(current) = writer.take_if(|_| split) {
            written.push(current.finish()?);
        }
        let current = match &mut writer {
            Some(current) => current,
            None => {
                let number = new_number();
                let path = super::segment_file_path(dir, number);
                writer.insert(SegmentWriter::create(
                    fs,
                    &path,
                    number,
                    segment_options(options),
                )?)
            }
        };
        current.add(&entry.key, entry.seq, entry.kind, &entry.value)?;
        last_key = entry.key;
    }
    if let Some(current) = writer {
        written.push(current.finish()?);
    }
    if !written.is_empty() {
        fs.sync_dir(dir)
            .map_err(|e| StorageError::io("fsync_dir", dir, e))?;
    }
    Ok(written)
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
        let oldest_snapshot = self.oldest_snapshot()?;
        let entries = flush_entries(&memtable.memtable, oldest_snapshot);
        let written = write_segments(
            self.fs.as_ref(),
            &self.dir,
            || self.versions.new_file_number(),
            &self.options,
            entries,
        )?;
        let mut edit = VersionEdit::new();
        edit.set_log_number(memtable.next_log_number);
        for meta in &written {
            self.counters
                .flush_bytes
                .fetch_add(meta.file_size_bytes, Ordering::Relaxed);
            edit.add_file(file_meta(meta, 0));
        }
        let version = self.versions.log_and_apply(&edit)?;
        self.raise_horizon(oldest_snapshot);
        self.install_version(version, Some(memtable));
        self.record_flush(memtable);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.delete_obsolete_files()
    }

    /// Deletes logs older than the durable manifest's log number (and than
    /// any log a running checkpoint copies), except those the commit
    /// pipeline keeps for reuse, and every segment no version or reader
    /// references (a checkpoint holds the version it links).
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
            // (No pipeline yet while the engine opens: nothing to reuse for.)
            if self.pipeline.get().is_some_and(|p| p.recycle_log(number)) {
                // Kept to become a later log (see `EngineOptions::log_recycle_files`).
                continue;
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
