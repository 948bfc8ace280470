//! A change to the set of live files and to the counters the manifest keeps.
//!
//! An edit is never written to disk by itself: the version set applies it to
//! the current version and writes the whole resulting state as the new
//! manifest. An edit is therefore all or nothing — either the new manifest
//! (with every change of the edit) is durable, or the old one is.

#![cfg_attr(not(test), allow(dead_code))]

use bytes::Bytes;

use super::FileMeta;
use crate::storage::types::{FileNumber, SequenceNumber};

/// Files to add and remove, and counters to advance, in one atomic step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    /// Files that become live, each in the level its `level` field names.
    pub added: Vec<FileMeta>,
    /// Files that stop being live, as `(level, number)`.
    pub removed: Vec<(u32, FileNumber)>,
    /// Raises the next file number to at least this.
    pub next_file_number: Option<FileNumber>,
    /// Raises the last durable sequence number to at least this.
    pub last_sequence: Option<SequenceNumber>,
    /// Raises the oldest WAL file number still needed; logs below it hold
    /// nothing that is not in segment files.
    pub log_number: Option<FileNumber>,
    /// Sets the compaction pointer of a level (`(level, largest user key of
    /// the last compaction's inputs there)`).
    pub compaction_pointers: Vec<(u32, Bytes)>,
}

impl VersionEdit {
    /// An edit that changes nothing.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Makes `file` live in level `file.level`.
    pub(crate) fn add_file(&mut self, file: FileMeta) -> &mut Self {
        self.added.push(file);
        self
    }

    /// Removes file `number` from `level`.
    pub(crate) fn remove_file(&mut self, level: u32, number: FileNumber) -> &mut Self {
        self.removed.push((level, number));
        self
    }

    /// Raises the next file number.
    pub(crate) fn set_next_file_number(&mut self, number: FileNumber) -> &mut Self {
        self.next_file_number = Some(number);
        self
    }

    /// Raises the last durable sequence number.
    pub(crate) fn set_last_sequence(&mut self, seq: SequenceNumber) -> &mut Self {
        self.last_sequence = Some(seq);
        self
    }

    /// Raises the oldest WAL file number still needed.
    pub(crate) fn set_log_number(&mut self, number: FileNumber) -> &mut Self {
        self.log_number = Some(number);
        self
    }

    /// Sets the compaction pointer of `level`.
    pub(crate) fn set_compaction_pointer(&mut self, level: u32, key: Bytes) -> &mut Self {
        self.compaction_pointers.push((level, key));
        self
    }
}
