//! Checkpoints (consistent copies) and verification of every live file.
//!
//! A checkpoint does not stop flushes or compactions (a compaction step
//! over a large table can take seconds, and a backup must not wait for
//! it): it syncs the log (every acknowledged write is then in a log file),
//! pins the oldest log it needs so no flush deletes it, takes the current
//! version together with its manifest state (holding the version keeps
//! its segments on disk), hard-links those segments, copies the logs from
//! the state's log number on (the one being written only up to what was
//! appended, not its preallocated zeros), and writes the manifest state
//! last. Opening the copy replays the copied logs; a record torn by the
//! copy is a torn tail and is cut, so the copy is consistent at the
//! sequence number of its last complete record.

use std::path::Path;

use super::state::Shared;
use crate::storage::error::{Result, StorageError};
use crate::storage::manifest;
use crate::storage::segment::SegmentReader;
use crate::storage::types::FileNumber;
use crate::storage::wal;

/// Bytes copied per read when copying a log into a checkpoint.
const LOG_COPY_CHUNK_BYTES: u64 = 1 << 20;

/// Keeps logs from `number` on while a checkpoint copies them.
struct LogPin<'a> {
    shared: &'a Shared,
    number: FileNumber,
}

impl<'a> LogPin<'a> {
    /// Pins the logs the durable manifest still needs (and every later one).
    fn new(shared: &'a Shared) -> Self {
        let mut pins = shared.log_pins.lock();
        let number = shared.versions.log_number();
        pins.push(number);
        Self { shared, number }
    }
}

impl Drop for LogPin<'_> {
    fn drop(&mut self) {
        let mut pins = self.shared.log_pins.lock();
        if let Some(at) = pins.iter().position(|&n| n == self.number) {
            pins.swap_remove(at);
        }
    }
}

impl Shared {
    pub(super) fn checkpoint(&self, target: &Path) -> Result<()> {
        self.check()?;
        if self.fs.exists(target) {
            return Err(StorageError::InvalidArgument(format!(
                "checkpoint target {} already exists",
                target.display()
            )));
        }
        let synced = self.pipeline()?.sync_log();
        self.latch(synced)?;
        // Pin before reading the state: the state's log number is then at
        // or after the pin (log numbers only grow), so every log it needs
        // stays until the copy is done.
        let _pin = LogPin::new(self);
        let (_version, state) = self.versions.pinned_state();
        let fs = self.fs.as_ref();
        fs.create_dir_all(target)
            .map_err(|e| StorageError::io("create_dir", target, e))?;
        for file in &state.files {
            let from = super::segment_file_path(&self.dir, file.number);
            let to = super::segment_file_path(target, file.number);
            fs.hard_link(&from, &to)
                .map_err(|e| StorageError::io("hard_link", &to, e))?;
        }
        for number in wal::list_logs(fs, &self.dir)? {
            if number >= state.log_number {
                // The log being written is copied up to what was appended
                // (after the sync above, so every acknowledged write), not
                // its preallocated zeros; older logs end at their last record
                // (a rotation cuts a log before the next one exists).
                let written = self.pipeline()?.log_written();
                let copy_len = written
                    .filter(|(current, _)| *current == number)
                    .map(|(_, len)| len);
                self.copy_log(number, copy_len, target)?;
            }
        }
        fs.sync_dir(target)
            .map_err(|e| StorageError::io("fsync_dir", target, e))?;
        manifest::write(fs, target, &state)?;
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs.sync_dir(parent)
                .map_err(|e| StorageError::io("fsync_dir", parent, e))?;
        }
        Ok(())
    }

    /// Copies log `number` into `target`, at most its first `len_max` bytes.
    fn copy_log(&self, number: u64, len_max: Option<u64>, target: &Path) -> Result<()> {
        let from = wal::log_file_path(&self.dir, number);
        let to = wal::log_file_path(target, number);
        // Unmapped: the log may be appended to, or cut at a rotation, while
        // it is copied.
        let source = self
            .fs
            .open_read_unmapped(&from)
            .map_err(|e| StorageError::io("open", &from, e))?;
        let mut out = self
            .fs
            .create(&to)
            .map_err(|e| StorageError::io("create", &to, e))?;
        let len = len_max.map_or(source.len(), |max| source.len().min(max));
        let mut offset = 0;
        let mut buf = Vec::new();
        while offset < len {
            let chunk = (len - offset).min(LOG_COPY_CHUNK_BYTES);
            buf.resize(usize::try_from(chunk).unwrap_or(usize::MAX), 0);
            source
                .read_exact_at(&mut buf, offset)
                .map_err(|e| StorageError::io("read", &from, e))?;
            out.append(&buf)
                .map_err(|e| StorageError::io("append", &to, e))?;
            offset += chunk;
        }
        out.sync_data()
            .map_err(|e| StorageError::io("fsync", &to, e))
    }

    /// Checks every block of every live segment and every record of every
    /// log the manifest still needs.
    pub(super) fn verify(&self) -> Result<()> {
        self.check()?;
        let _work = self.work.lock();
        let version = self.versions.current();
        for file in version.files() {
            let path = super::segment_file_path(&self.dir, file.number());
            let handle = self
                .fs
                .open_read(&path)
                .map_err(|e| StorageError::io("open", &path, e))?;
            SegmentReader::open(handle, path, file.number())?.verify()?;
        }
        let logs: Vec<_> = wal::list_logs(self.fs.as_ref(), &self.dir)?
            .into_iter()
            .filter(|&n| n >= self.versions.log_number())
            .collect();
        wal::recovery::verify(self.fs.as_ref(), &self.dir, &logs)?;
        Ok(())
    }
}
