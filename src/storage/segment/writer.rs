//! Writes one segment file from entries given in internal order.
//!
//! The writer appends data blocks as they fill, then the bloom filter, the
//! block index and the footer, and finally `sync_data`s the file: the
//! segment is complete and durable before `finish` returns its metadata, so
//! the manifest may reference it. The writer never renames, removes or syncs
//! directories; installing the file is the manifest's job.
#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::block::BlockBuilder;
use super::codec::{checksum, put_varint};
use super::footer::{BlockHandle, Footer};
use super::meta::SegmentMeta;
use super::{KEY_BYTES_MAX, SegmentOptions, VALUE_BYTES_MAX, bloom};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::{FileSystem, WriteFile};
use crate::storage::types::{
    EntryKind, FileNumber, MAX_SEQUENCE_NUMBER, SequenceNumber, compare_internal,
};

/// Bytes buffered before an `append`, so a segment of small blocks is
/// written in few system calls.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// The index stores every key in full: it is small, and a restart per entry
/// makes every binary-search probe a single decode.
const INDEX_RESTART_INTERVAL: usize = 1;

/// Builds one segment file.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    file: Box<dyn WriteFile>,
    path: PathBuf,
    file_number: FileNumber,
    options: SegmentOptions,
    block: BlockBuilder,
    index: BlockBuilder,
    key_hashes: Vec<u64>,
    buffer: Vec<u8>,
    appended_bytes: u64,
    last_key: Vec<u8>,
    last_seq: SequenceNumber,
    smallest_key: Option<Bytes>,
    min_seq: SequenceNumber,
    max_seq: SequenceNumber,
    entry_count: u64,
    /// The first I/O failure; the file is unusable after it.
    failure: Option<StorageError>,
}

impl SegmentWriter {
    /// Creates `path` through `fs` and writes segment `file_number` to it.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        path: &Path,
        file_number: FileNumber,
        options: SegmentOptions,
    ) -> Result<Self> {
        let file = fs
            .create(path)
            .map_err(|e| StorageError::io("create", path, e))?;
        Ok(Self::new(file, path.to_path_buf(), file_number, options))
    }

    /// Writes segment `file_number` to the empty `file`, named `path` in errors.
    pub(crate) fn new(
        file: Box<dyn WriteFile>,
        path: PathBuf,
        file_number: FileNumber,
        options: SegmentOptions,
    ) -> Self {
        assert!(
            file.is_empty(),
            "segment {} must start empty",
            path.display()
        );
        Self {
            file,
            path,
            file_number,
            block: BlockBuilder::new(options.restart_interval.max(1)),
            index: BlockBuilder::new(INDEX_RESTART_INTERVAL),
            options,
            key_hashes: Vec::new(),
            buffer: Vec::with_capacity(WRITE_BUFFER_BYTES),
            appended_bytes: 0,
            last_key: Vec::new(),
            last_seq: 0,
            smallest_key: None,
            min_seq: SequenceNumber::MAX,
            max_seq: 0,
            entry_count: 0,
            failure: None,
        }
    }

    /// Appends one entry. Entries must come in strictly increasing internal
    /// order (user key ascending, newer versions first); anything else, or a
    /// key, value or sequence number beyond the limits, is `InvalidArgument`.
    pub(crate) fn add(
        &mut self,
        key: &[u8],
        seq: SequenceNumber,
        kind: EntryKind,
        value: &[u8],
    ) -> Result<()> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        if key.len() > KEY_BYTES_MAX || value.len() > VALUE_BYTES_MAX || seq > MAX_SEQUENCE_NUMBER {
            return Err(StorageError::InvalidArgument(format!(
                "entry of {} key bytes, {} value bytes, sequence number {seq} exceeds the segment limits",
                key.len(),
                value.len()
            )));
        }
        let new_key = self.entry_count == 0 || key != self.last_key.as_slice();
        if self.entry_count > 0
            && compare_internal(&self.last_key, self.last_seq, key, seq) != Ordering::Less
        {
            return Err(StorageError::InvalidArgument(format!(
                "segment {}: entry (seq {seq}) added out of internal order",
                self.path.display()
            )));
        }
        if new_key {
            self.key_hashes.push(bloom::key_hash(key));
        }
        if self.smallest_key.is_none() {
            self.smallest_key = Some(Bytes::copy_from_slice(key));
        }
        self.block.add(key, seq, kind, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.last_seq = seq;
        self.min_seq = self.min_seq.min(seq);
        self.max_seq = self.max_seq.max(seq);
        self.entry_count += 1;
        if self.block.estimated_size() >= self.options.block_size_bytes {
            self.finish_block()?;
        }
        Ok(())
    }

    /// Bytes of data so far, including the open block; the finished file adds
    /// the filter, index and footer (about 2 % more at default options).
    pub(crate) fn file_size_bytes(&self) -> u64 {
        let open_block = if self.block.is_empty() {
            0
        } else {
            self.block.estimated_size()
        };
        self.appended_bytes + self.buffer.len() as u64 + open_block as u64
    }

    /// The user key of the last entry added, if any.
    pub(crate) fn last_key(&self) -> Option<&[u8]> {
        (self.entry_count > 0).then_some(self.last_key.as_slice())
    }

    /// How many entries were added.
    pub(crate) fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// Whether a compaction should finish this file before adding an entry
    /// for `next_key`: the file reached its target size and `next_key` starts
    /// a new user key, so one key's versions never straddle two files.
    pub(crate) fn should_roll_before(&self, next_key: &[u8]) -> bool {
        self.entry_count > 0
            && self.file_size_bytes() >= self.options.target_file_size_bytes
            && next_key != self.last_key.as_slice()
    }

    /// Writes the filter, index and footer, syncs the file and returns its
    /// metadata. A segment needs at least one entry.
    pub(crate) fn finish(mut self) -> Result<SegmentMeta> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        let Some(smallest_key) = self.smallest_key.take() else {
            return Err(StorageError::InvalidArgument(format!(
                "segment {} has no entries",
                self.path.display()
            )));
        };
        if !self.block.is_empty() {
            self.finish_block()?;
        }
        let filter_payload = bloom::build(&self.key_hashes, self.options.bloom_bits_per_key);
        let filter = self.write_checked(&filter_payload)?;
        let index_payload = self.index.finish();
        let index = self.write_checked(&index_payload)?;
        let largest_key = Bytes::copy_from_slice(&self.last_key);
        let footer = Footer {
            filter,
            index,
            entry_count: self.entry_count,
            min_seq: self.min_seq,
            max_seq: self.max_seq,
            smallest_key: smallest_key.clone(),
            largest_key: largest_key.clone(),
        };
        self.buffer.extend_from_slice(&footer.encode());
        self.flush()?;
        self.file
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.path, e))?;
        let file_size_bytes = self.appended_bytes;
        assert_eq!(
            self.file.len(),
            file_size_bytes,
            "segment {}: file length disagrees with the bytes appended",
            self.path.display()
        );
        Ok(SegmentMeta {
            file_number: self.file_number,
            file_size_bytes,
            smallest_key,
            largest_key,
            min_seq: self.min_seq,
            max_seq: self.max_seq,
            entry_count: self.entry_count,
        })
    }

    fn finish_block(&mut self) -> Result<()> {
        let payload = self.block.finish();
        let handle = self.write_checked(&payload)?;
        let mut encoded = Vec::with_capacity(20);
        put_varint(&mut encoded, handle.offset);
        put_varint(&mut encoded, handle.len);
        // The index key is the block's last entry, so the first index entry at
        // or after a target names the block holding the target's successor.
        self.index
            .add(&self.last_key, self.last_seq, EntryKind::Put, &encoded);
        Ok(())
    }

    /// Buffers `payload` and its checksum; returns where the payload lands.
    fn write_checked(&mut self, payload: &[u8]) -> Result<BlockHandle> {
        let handle = BlockHandle {
            offset: self.appended_bytes + self.buffer.len() as u64,
            len: payload.len() as u64,
        };
        self.buffer.extend_from_slice(payload);
        self.buffer
            .extend_from_slice(&checksum(payload).to_le_bytes());
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.flush()?;
        }
        Ok(handle)
    }

    fn flush(&mut self) -> Result<()> {
        if let Err(e) = self.file.append(&self.buffer) {
            let failure = StorageError::io("append", &self.path, e);
            self.failure = Some(failure.clone());
            return Err(failure);
        }
        self.appended_bytes += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }
}
