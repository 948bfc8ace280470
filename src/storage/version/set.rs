//! [`VersionSet`]: the current version, the file-number and sequence
//! counters, and the single manifest writer that makes every change durable
//! before readers can see it.
//!
//! Readers take the current version with a short lock and never wait for the
//! manifest writer; only edits serialize on it (like the single log writer,
//! it is the one lock held across disk I/O). A version becomes current only
//! after the manifest describing it is durable, and the version it replaces
//! is dropped only then, so a file's number reaches the obsolete list only
//! once a durable manifest no longer lists it and nobody can read it.

#![cfg_attr(not(test), allow(dead_code))]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use super::{ObsoleteFiles, Version, VersionEdit};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::manifest::{self, ManifestState};
use crate::storage::types::{FileNumber, SequenceNumber};

/// The live file set of one database directory and its durable manifest.
#[derive(Debug)]
pub(crate) struct VersionSet {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    current: Mutex<Arc<Version>>,
    writer: Mutex<ManifestWriter>,
    /// Allocated without the writer lock so flushes and compactions can
    /// name their output files while a manifest write is in flight.
    next_file_number: AtomicU64,
    last_sequence: AtomicU64,
    log_number: AtomicU64,
    obsolete: Arc<ObsoleteFiles>,
}

/// What only the manifest writer touches.
#[derive(Debug, Default)]
struct ManifestWriter {
    /// The first failed manifest write; every later edit returns it,
    /// because the durable manifest is then unknown.
    failure: Option<Arc<StorageError>>,
}

impl VersionSet {
    /// Opens the version set of `dir`: recovers its manifest, or writes an
    /// empty one if the directory has none. Removes a temporary manifest a
    /// crash left behind.
    ///
    /// Creating a fresh manifest is right only for a new database; the engine
    /// must check that a directory without a manifest holds no other files.
    pub(crate) fn open(fs: Arc<dyn FileSystem>, dir: &Path) -> Result<Self> {
        manifest::remove_leftover_temp(fs.as_ref(), dir)?;
        let state = match manifest::read(fs.as_ref(), dir)? {
            Some(state) => state,
            None => {
                let state = ManifestState {
                    // Number 0 is never allocated, so "log number 0" means
                    // "every log is needed".
                    next_file_number: 1,
                    ..ManifestState::default()
                };
                manifest::write(fs.as_ref(), dir, &state)?;
                state
            }
        };
        let obsolete = ObsoleteFiles::new();
        let version = Version::from_files(&state.files, &state.compaction_pointers, &obsolete)
            .map_err(|reason| {
                StorageError::corruption(dir.join(manifest::MANIFEST_FILE_NAME), 0, reason)
            })?;
        Ok(Self {
            fs,
            dir: dir.to_path_buf(),
            current: Mutex::new(Arc::new(version)),
            writer: Mutex::new(ManifestWriter::default()),
            next_file_number: AtomicU64::new(state.next_file_number),
            last_sequence: AtomicU64::new(state.last_sequence),
            log_number: AtomicU64::new(state.log_number),
            obsolete,
        })
    }

    /// The current version. Holding it keeps its files on disk.
    pub(crate) fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current.lock())
    }

    /// Allocates a new file number (for a WAL or segment file).
    pub(crate) fn new_file_number(&self) -> FileNumber {
        let number = self.next_file_number.fetch_add(1, Ordering::Relaxed);
        assert!(number < FileNumber::MAX, "file numbers exhausted");
        number
    }

    /// Makes sure `number` is never allocated, e.g. for a file recovery
    /// found on disk that the manifest does not list.
    pub(crate) fn mark_file_number_used(&self, number: FileNumber) {
        self.next_file_number
            .fetch_max(number.saturating_add(1), Ordering::Relaxed);
    }

    /// The number the next allocated file will get.
    pub(crate) fn next_file_number(&self) -> FileNumber {
        self.next_file_number.load(Ordering::Relaxed)
    }

    /// The last sequence number recorded in the durable manifest.
    pub(crate) fn last_sequence(&self) -> SequenceNumber {
        self.last_sequence.load(Ordering::Acquire)
    }

    /// The oldest WAL file number the durable manifest still needs.
    pub(crate) fn log_number(&self) -> FileNumber {
        self.log_number.load(Ordering::Acquire)
    }

    /// Applies `edit` to the current version, makes the result durable in a
    /// new manifest, and only then makes it current.
    ///
    /// The recorded last sequence is raised to cover every added file, so
    /// recovery never numbers a new write below data already in a segment.
    /// Panics if the edit is inconsistent with the current version (see
    /// [`Version::apply`]) or lowers the log number. After a failed manifest
    /// write every later call fails with [`StorageError::PreviousIo`].
    pub(crate) fn log_and_apply(&self, edit: &VersionEdit) -> Result<Arc<Version>> {
        let mut writer = self.writer.lock();
        if let Some(cause) = &writer.failure {
            return Err(StorageError::PreviousIo {
                cause: Arc::clone(cause),
            });
        }
        let base = self.current();
        let next = Arc::new(base.apply(edit, &self.obsolete));
        if let Some(number) = edit.next_file_number {
            self.mark_file_number_used(number.saturating_sub(1));
        }
        let next_file_number = self.next_file_number();
        for file in &edit.added {
            assert!(
                file.number < next_file_number,
                "edit adds file {} that was never allocated (next is {next_file_number})",
                file.number
            );
        }
        let log_number = edit.log_number.unwrap_or(self.log_number());
        assert!(
            log_number >= self.log_number(),
            "edit lowers the log number from {} to {log_number}",
            self.log_number()
        );
        let last_sequence = edit
            .added
            .iter()
            .map(|file| file.max_seq)
            .chain(edit.last_sequence)
            .fold(self.last_sequence(), SequenceNumber::max);
        let state = ManifestState {
            next_file_number,
            last_sequence,
            log_number,
            compaction_pointers: next.compaction_pointers(),
            files: next.files().map(|file| file.meta().clone()).collect(),
        };
        if let Err(error) = manifest::write(self.fs.as_ref(), &self.dir, &state) {
            self.obsolete.poison();
            writer.failure = Some(Arc::new(error.clone()));
            return Err(error);
        }
        self.last_sequence.store(last_sequence, Ordering::Release);
        self.log_number.store(log_number, Ordering::Release);
        *self.current.lock() = Arc::clone(&next);
        // `base` drops here; files only it listed become obsolete unless a
        // reader still holds them.
        drop(base);
        Ok(next)
    }

    /// The numbers of segment files that no durable manifest, version or
    /// reader references any more; the engine may delete them. Empty for
    /// ever after a failed manifest write.
    pub(crate) fn take_obsolete_files(&self) -> Vec<FileNumber> {
        self.obsolete.take()
    }

    /// The current version and the manifest state describing exactly it,
    /// read under the manifest writer's lock so that no edit lands between
    /// the two (a flush moves the log number and adds a segment in one
    /// edit; seeing one half of it would lose the flushed writes). Holding
    /// the version keeps its segments on disk, so a checkpoint can link
    /// them while flushes and compactions go on.
    pub(crate) fn pinned_state(&self) -> (Arc<Version>, ManifestState) {
        let _writer = self.writer.lock();
        let version = self.current();
        let state = ManifestState {
            next_file_number: self.next_file_number(),
            last_sequence: self.last_sequence(),
            log_number: self.log_number(),
            compaction_pointers: version.compaction_pointers(),
            files: version.files().map(|file| file.meta().clone()).collect(),
        };
        (version, state)
    }

    /// The manifest state of the current version (for checkpoints and
    /// diagnostics).
    pub(crate) fn manifest_state(&self) -> ManifestState {
        self.pinned_state().1
    }
}
