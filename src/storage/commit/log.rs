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

/// The log files of a pipeline.
#[derive(Debug)]
pub(super) struct LogFiles {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    preallocate_bytes: u64,
    writer: Mutex<WriterSlot>,
    syncer: Mutex<SyncSlot>,
    /// Bytes appended to the current log.
    written_len: AtomicU64,
    /// Bytes of the current log known to be durable.
    synced_len: AtomicU64,
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
        preallocate_bytes: u64,
    ) -> Result<Self> {
        let (log, sync_handle) = create_log(fs.as_ref(), dir, number, preallocate_bytes)?;
        Ok(Self {
            fs,
            dir: dir.to_path_buf(),
            preallocate_bytes,
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
        if self.preallocate_bytes > 0 {
            // Older logs end exactly at their last record, so recovery can
            // call anything after it damage; the sync below makes the cut
            // durable before the next log exists.
            slot.log
                .cut_to_written()
                .map_err(|e| StorageError::io("truncate", slot.log.path(), e))?;
        }
        slot.log
            .sync()
            .map_err(|e| StorageError::io("fsync", slot.log.path(), e))?;
        let (log, sync_handle) =
            create_log(self.fs.as_ref(), &self.dir, number, self.preallocate_bytes)?;
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

/// Creates log `number`: the writer, and a second handle for syncing.
fn create_log(
    fs: &dyn FileSystem,
    dir: &Path,
    number: FileNumber,
    preallocate_bytes: u64,
) -> Result<(LogWriter, SyncSlot)> {
    let path = log_file_path(dir, number);
    let io = |op| {
        let path = path.clone();
        move |e| StorageError::io(op, path, e)
    };
    if fs.exists(&path) {
        return Err(StorageError::InvalidArgument(format!(
            "log {} already exists",
            path.display()
        )));
    }
    let mut file = fs.create(&path).map_err(io("create"))?;
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
