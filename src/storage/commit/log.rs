//! The current log file of a file-backed commit pipeline: appending groups,
//! syncing, and switching to a new file.
//!
//! Two handles point at the current log: the writer (used by the group
//! leader, under the writer lock) and a sync-only handle (used by the
//! background syncer, under its own lock), so a background fsync never
//! blocks writers that only need write(2). `fsync` of any handle makes the
//! whole file's data durable.
//!
//! With preallocation, each new log is extended with zeros up front so
//! that appends overwrite in place (an `fdatasync` then has no file size to
//! commit), and a log is cut back to its last record when the next one
//! replaces it.
//!
//! With recycling, an obsolete log (flushed, needed by no checkpoint) is
//! kept instead of deleted and becomes a later log: renamed to the new
//! number and overwritten from its start. Its pages are still cached and
//! its blocks allocated, so appends neither zero-fill fresh pages nor
//! allocate blocks. The records of its earlier life carry the old log
//! number in every fragment, so the reader stops at the first of them as at
//! preallocated zeros (docs/format-wal.md, "How a log ends").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::storage::batch::WriteBatch;
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::{FileSystem, WriteFile};
use crate::storage::types::{FileNumber, SequenceNumber};
use crate::storage::wal::log_file_path;
use crate::storage::wal::writer::LogWriter;

use super::CommitOptions;

/// The log files of a pipeline.
#[derive(Debug)]
pub(super) struct LogFiles {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    preallocate_bytes: u64,
    /// Obsolete logs kept for reuse, at most `recycle_max`.
    recycled: Mutex<Recycled>,
    recycle_max: usize,
    writer: Mutex<WriterSlot>,
    syncer: Mutex<SyncSlot>,
    /// Bytes appended to the current log.
    written_len: AtomicU64,
    /// Bytes of the current log known to be durable.
    synced_len: AtomicU64,
}

/// The obsolete logs a [`LogFiles`] keeps for reuse.
#[derive(Debug, Default)]
struct Recycled {
    /// Kept and not yet reused, oldest first.
    kept: Vec<FileNumber>,
    /// The newest log ever kept (reused or not).
    newest_kept: Option<FileNumber>,
}

#[derive(Debug)]
struct WriterSlot {
    log: LogWriter,
}

#[derive(Debug)]
struct SyncSlot {
    file: Box<dyn WriteFile>,
    path: PathBuf,
}

impl LogFiles {
    /// Creates log `number` in `dir` and makes its name durable.
    pub(super) fn create(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        number: FileNumber,
        options: &CommitOptions,
    ) -> Result<Self> {
        let preallocate_bytes = options.log_preallocate_bytes;
        let (log, sync_handle) = create_log(fs.as_ref(), dir, number, preallocate_bytes)?;
        Ok(Self {
            fs,
            dir: dir.to_path_buf(),
            preallocate_bytes,
            recycled: Mutex::new(Recycled::default()),
            recycle_max: options.log_recycle_files,
            writer: Mutex::new(WriterSlot { log }),
            syncer: Mutex::new(sync_handle),
            written_len: AtomicU64::new(0),
            synced_len: AtomicU64::new(0),
        })
    }

    /// The current log's number.
    pub(super) fn number(&self) -> FileNumber {
        self.writer.lock().log.number()
    }

    /// The directory holding the logs.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current log's number and the bytes appended to it so far (the
    /// file may be longer: preallocated zeros).
    pub(super) fn written(&self) -> (FileNumber, u64) {
        let slot = self.writer.lock();
        (slot.log.number(), slot.log.len())
    }

    /// Locks the writer of the current log. While the guard lives no other
    /// group can append and the log cannot be switched.
    pub(super) fn writer(&self) -> LogWriterGuard<'_> {
        LogWriterGuard {
            files: self,
            slot: self.writer.lock(),
        }
    }

    /// Syncs the current log if anything appended is not yet durable,
    /// through the sync handle so that writers are not blocked.
    pub(super) fn sync_pending(&self) -> Result<()> {
        let mut slot = self.syncer.lock();
        let written = self.written_len.load(Ordering::Acquire);
        if written <= self.synced_len.load(Ordering::Acquire) {
            return Ok(());
        }
        slot.file
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &slot.path, e))?;
        self.synced_len.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }

    /// Keeps obsolete log `number` for reuse if there is room (see
    /// [`super::CommitPipeline::recycle_log`]).
    ///
    /// Obsolete logs are offered in increasing order (each deletion pass
    /// lists them ascending, and a log becomes obsolete only after every
    /// older one). A pass that listed a kept log may offer it again after a
    /// switch renamed it away: any number up to the newest kept one is
    /// answered "kept", so the caller never deletes (or re-queues) a file
    /// that is now a live log.
    pub(super) fn recycle(&self, number: FileNumber) -> bool {
        let mut recycled = self.recycled.lock();
        if recycled.newest_kept.is_some_and(|newest| number <= newest) {
            return true;
        }
        if recycled.kept.len() >= self.recycle_max {
            return false;
        }
        recycled.kept.push(number);
        recycled.newest_kept = Some(number);
        true
    }

    /// The logs kept for reuse, oldest first.
    #[cfg(test)]
    pub(super) fn recycled(&self) -> Vec<FileNumber> {
        self.recycled.lock().kept.clone()
    }

    /// Log `number`: a kept obsolete log renamed and reused if there is
    /// one (the oldest), else a new file.
    fn next_log(&self, number: FileNumber) -> Result<(LogWriter, SyncSlot)> {
        let fs = self.fs.as_ref();
        let kept = {
            let mut recycled = self.recycled.lock();
            (!recycled.kept.is_empty()).then(|| recycled.kept.remove(0))
        };
        let Some(old) = kept else {
            return create_log(fs, &self.dir, number, self.preallocate_bytes);
        };
        let from = log_file_path(&self.dir, old);
        match reuse_log(fs, &self.dir, &from, number, self.preallocate_bytes) {
            Ok(opened) => Ok(opened),
            Err(Reuse::Unsupported) => {
                // Nothing was renamed: delete the old log and start afresh.
                fs.remove_file(&from)
                    .map_err(|e| StorageError::io("remove", &from, e))?;
                create_log(fs, &self.dir, number, self.preallocate_bytes)
            }
            Err(Reuse::Failed(e)) => Err(e),
        }
    }

    /// Syncs the current log, creates log `number`, makes its name durable,
    /// and makes it current. Returns the previous log's number.
    ///
    /// The old log is synced first so that only the newest log can ever
    /// have a torn tail, which is what recovery relies on.
    pub(super) fn switch(&self, number: FileNumber) -> Result<FileNumber> {
        let mut slot = self.writer.lock();
        let old = slot.log.number();
        if number <= old {
            return Err(StorageError::InvalidArgument(format!(
                "new log number {number} must exceed the current {old}"
            )));
        }
        if self.preallocate_bytes > 0 || self.recycle_max > 0 {
            // Older logs end exactly at their last record, so recovery can
            // call anything after it damage (preallocated zeros, or records
            // of a reused log's earlier life); the sync below makes the cut
            // durable before the next log exists.
            slot.log
                .cut_to_written()
                .map_err(|e| StorageError::io("truncate", slot.log.path(), e))?;
        }
        slot.log
            .sync()
            .map_err(|e| StorageError::io("fsync", slot.log.path(), e))?;
        let (log, sync_handle) = self.next_log(number)?;
        // Swap the sync handle first, while writers are held off by the
        // writer lock, so the syncer never pairs a new length with an old file.
        let mut syncer = self.syncer.lock();
        *syncer = sync_handle;
        self.written_len.store(0, Ordering::Release);
        self.synced_len.store(0, Ordering::Release);
        drop(syncer);
        slot.log = log;
        Ok(old)
    }
}

/// Exclusive access to the current log's writer.
pub(super) struct LogWriterGuard<'a> {
    files: &'a LogFiles,
    slot: parking_lot::MutexGuard<'a, WriterSlot>,
}

impl LogWriterGuard<'_> {
    /// Appends one record per batch (each numbered from its first sequence
    /// number) with a single write, then syncs if `sync`.
    pub(super) fn append_group<'b>(
        &mut self,
        batches: impl Iterator<Item = (SequenceNumber, &'b WriteBatch)>,
        sync: bool,
    ) -> Result<()> {
        let log = &mut self.slot.log;
        for (first_seq, batch) in batches {
            // Framed straight from the batch: no scratch copy of the record.
            let header = batch.encode_header(first_seq);
            log.buffer_record_parts(&[&header, batch.entries()]);
        }
        log.write_buffered()
            .map_err(|e| StorageError::io("append", log.path(), e))?;
        self.files.written_len.store(log.len(), Ordering::Release);
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Syncs the log through the writer, if anything appended is not yet
    /// durable.
    pub(super) fn sync(&mut self) -> Result<()> {
        let written = self.files.written_len.load(Ordering::Acquire);
        if written <= self.files.synced_len.load(Ordering::Acquire) {
            return Ok(());
        }
        let log = &mut self.slot.log;
        log.sync()
            .map_err(|e| StorageError::io("fsync", log.path(), e))?;
        self.files.synced_len.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }
}

/// Why an obsolete log was not reused.
enum Reuse {
    /// The file system cannot overwrite in place; nothing was changed.
    Unsupported,
    /// An I/O error.
    Failed(StorageError),
}

impl From<StorageError> for Reuse {
    fn from(e: StorageError) -> Self {
        Reuse::Failed(e)
    }
}

/// Reuses the obsolete log at `from` as log `number`: opens it for
/// overwriting and renames it, then finishes it as a new log. Its old
/// records stay behind the cursor until overwritten; they carry their own
/// log number, so the reader stops at them. Until the directory sync the
/// old name may survive a crash instead, and recovery deletes it as
/// obsolete.
fn reuse_log(
    fs: &dyn FileSystem,
    dir: &Path,
    from: &Path,
    number: FileNumber,
    preallocate_bytes: u64,
) -> std::result::Result<(LogWriter, SyncSlot), Reuse> {
    let path = unused_log_path(fs, dir, number)?;
    let file = match fs.open_overwrite(from) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => return Err(Reuse::Unsupported),
        Err(e) => return Err(Reuse::Failed(StorageError::io("open", from, e))),
    };
    fs.rename(from, &path)
        .map_err(|e| StorageError::io("rename", &path, e))?;
    Ok(finish_log(fs, dir, file, path, number, preallocate_bytes)?)
}

/// Creates log `number`: the writer, and a second handle for syncing.
fn create_log(
    fs: &dyn FileSystem,
    dir: &Path,
    number: FileNumber,
    preallocate_bytes: u64,
) -> Result<(LogWriter, SyncSlot)> {
    let path = unused_log_path(fs, dir, number)?;
    let file = fs
        .create(&path)
        .map_err(|e| StorageError::io("create", &path, e))?;
    finish_log(fs, dir, file, path, number, preallocate_bytes)
}

/// The path of log `number`, which must not exist yet.
fn unused_log_path(fs: &dyn FileSystem, dir: &Path, number: FileNumber) -> Result<PathBuf> {
    let path = log_file_path(dir, number);
    if fs.exists(&path) {
        return Err(StorageError::InvalidArgument(format!(
            "log {} already exists",
            path.display()
        )));
    }
    Ok(path)
}

/// Makes `file`, now named `path`, log `number`: extends it to
/// `preallocate_bytes` if shorter, makes its name durable and opens the
/// second handle for syncing.
fn finish_log(
    fs: &dyn FileSystem,
    dir: &Path,
    mut file: Box<dyn WriteFile>,
    path: PathBuf,
    number: FileNumber,
    preallocate_bytes: u64,
) -> Result<(LogWriter, SyncSlot)> {
    let io = |op| {
        let path = path.clone();
        move |e| StorageError::io(op, path, e)
    };
    if preallocate_bytes > 0 {
        file.preallocate(preallocate_bytes)
            .map_err(io("preallocate"))?;
    }
    // Without this, a crash could lose the new name and with it every
    // record acknowledged as durable in this log.
    fs.sync_dir(dir).map_err(io("fsync directory"))?;
    let sync_file = fs.open_append(&path).map_err(io("open"))?;
    Ok((
        LogWriter::new(file, path.clone(), number),
        SyncSlot {
            file: sync_file,
            path,
        },
    ))
}
