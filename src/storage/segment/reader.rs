//! Opens a segment file and answers point reads; [`SegmentReader::verify`]
//! checks every byte.
//!
//! Opening reads and verifies the footer, the bloom filter and the block
//! index, and checks that the blocks tile the file exactly; data blocks are
//! verified when first read. With a memory map, blocks are `Bytes` slices of
//! the map (no copy) and a per-block bit remembers that a block's checksum
//! passed, since the file is immutable; without one, each block read is a
//! `pread`, optionally served from a shared [`BlockCache`].
#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use bytes::Bytes;

use super::block::{Block, BlockLookup};
use super::bloom::BloomFilter;
use super::cache::BlockCache;
use super::codec::{CHECKSUM_BYTES, Cursor, checksum};
use super::footer::{BlockHandle, Footer, TAIL_BYTES};
use super::index::BlockIndex;
pub(super) use super::index::IndexEntry;
use super::iter::SegmentIter;
use super::meta::SegmentMeta;
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::ReadFile;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{EntryKind, FileNumber, SequenceNumber, compare_internal};

/// The whole file as the owner of a `Bytes`, so slices of a memory map can be
/// handed out without copying and keep the map alive.
#[derive(Debug)]
struct MappedFile(Arc<dyn ReadFile>);

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        // Checked at open to be `Some` with the file's length; the file is
        // immutable, so it stays so.
        self.0.as_slice().unwrap_or_default()
    }
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    file_number: FileNumber,
    file: Arc<dyn ReadFile>,
    mapped: Option<Bytes>,
    file_size_bytes: u64,
    footer: Footer,
    filter: BloomFilter,
    index: BlockIndex,
    /// One bit per data block whose checksum passed (memory-mapped files only).
    verified: Vec<AtomicU64>,
    cache: Option<Arc<BlockCache>>,
}

/// An open segment. Cloning is cheap and shares the file.
#[derive(Debug, Clone)]
pub(crate) struct SegmentReader {
    inner: Arc<Inner>,
}

impl SegmentReader {
    /// Opens segment `file_number` from `file`, named `path` in errors.
    pub(crate) fn open(
        file: Arc<dyn ReadFile>,
        path: PathBuf,
        file_number: FileNumber,
    ) -> Result<Self> {
        Self::open_with_cache(file, path, file_number, None)
    }

    /// Opens a segment whose `pread`s go through `cache`.
    pub(crate) fn open_with_cache(
        file: Arc<dyn ReadFile>,
        path: PathBuf,
        file_number: FileNumber,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Self> {
        let file_size_bytes = file.len();
        let mapped = match file.as_slice() {
            Some(slice) if slice.len() as u64 == file_size_bytes => {
                Some(Bytes::from_owner(MappedFile(Arc::clone(&file))))
            }
            _ => None,
        };
        let source = Source {
            path: &path,
            file: file.as_ref(),
            mapped: mapped.as_ref(),
            file_size_bytes,
        };
        let footer = source.read_footer()?;
        let filter_payload = source.read_checked(footer.filter)?;
        let filter = BloomFilter::parse(filter_payload)
            .map_err(|e| e.in_file(&path, footer.filter.offset))?;
        let index = BlockIndex::new(
            source.read_index(&footer)?,
            &footer.smallest_key,
            &footer.largest_key,
        );
        let verified = if mapped.is_some() {
            (0..index.entries().len().div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                file_number,
                file,
                mapped,
                file_size_bytes,
                footer,
                filter,
                index,
                verified,
                cache,
            }),
        })
    }

    /// The segment's summary, from its footer.
    pub(crate) fn meta(&self) -> SegmentMeta {
        let footer = &self.inner.footer;
        SegmentMeta {
            file_number: self.inner.file_number,
            file_size_bytes: self.inner.file_size_bytes,
            smallest_key: footer.smallest_key.clone(),
            largest_key: footer.largest_key.clone(),
            min_seq: footer.min_seq,
            max_seq: footer.max_seq,
            entry_count: footer.entry_count,
        }
    }

    /// The file's path, as given at open.
    pub(crate) fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The newest version of `key` written at or before `snapshot_seq`; a
    /// tombstone is returned as such so the caller stops at this segment.
    pub(crate) fn get(
        &self,
        key: &[u8],
        snapshot_seq: SequenceNumber,
    ) -> Result<Option<(EntryKind, Bytes)>> {
        let footer = &self.inner.footer;
        if key < footer.smallest_key.as_ref()
            || key > footer.largest_key.as_ref()
            || !self.inner.filter.may_contain(key)
        {
            return Ok(None);
        }
        let position = self.inner.index.find(key, snapshot_seq);
        if position == self.inner.index.entries().len() {
            return Ok(None);
        }
        let block = self.read_block(position)?;
        match block.get(key, snapshot_seq) {
            Ok(BlockLookup::Found(_, kind, value)) => Ok(Some((kind, value))),
            Ok(BlockLookup::Absent) => Ok(None),
            Ok(BlockLookup::PastEnd) => Err(self.corruption(
                self.handle(position).offset,
                "block ends before the last key its index entry names",
            )),
            Err(e) => Err(e.in_file(&self.inner.path, self.handle(position).offset)),
        }
    }

    /// The entries whose user key lies in `range`, in `direction`.
    pub(crate) fn iter(&self, range: KeyRange, direction: Direction) -> SegmentIter {
        SegmentIter::new(self.clone(), range, direction)
    }

    /// The data blocks, as the index lists them.
    pub(super) fn index(&self) -> &[IndexEntry] {
        self.inner.index.entries()
    }

    fn handle(&self, position: usize) -> BlockHandle {
        self.inner
            .index
            .entries()
            .get(position)
            .map_or(BlockHandle { offset: 0, len: 0 }, |entry| entry.handle)
    }

    pub(super) fn corruption(&self, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::corruption(&self.inner.path, offset, reason)
    }

    /// Data block `position` of the index, verified.
    pub(super) fn read_block(&self, position: usize) -> Result<Block> {
        let handle = self.handle(position);
        let payload = self.read_block_payload(position, handle)?;
        Block::parse(payload).map_err(|e| e.in_file(&self.inner.path, handle.offset))
    }

    fn read_block_payload(&self, position: usize, handle: BlockHandle) -> Result<Bytes> {
        let inner = &*self.inner;
        let source = self.source();
        if inner.mapped.is_some() {
            let word = inner.verified.get(position / 64);
            let bit = 1u64 << (position % 64);
            if word.is_some_and(|word| word.load(AtomicOrdering::Relaxed) & bit != 0) {
                return source.read(handle.offset, handle.len);
            }
            let payload = source.read_checked(handle)?;
            if let Some(word) = word {
                word.fetch_or(bit, AtomicOrdering::Relaxed);
            }
            return Ok(payload);
        }
        if let Some(cache) = &inner.cache {
            if let Some(payload) = cache.get(inner.file_number, handle.offset) {
                return Ok(payload);
            }
            let payload = source.read_checked(handle)?;
            cache.insert(inner.file_number, handle.offset, payload.clone());
            return Ok(payload);
        }
        source.read_checked(handle)
    }

    /// Re-reads every region of the file and checks every checksum, the
    /// order of all entries, and that the footer, index and filter agree
    /// with the data. Ignores the verified bits and the cache.
    pub(crate) fn verify(&self) -> Result<()> {
        let source = self.source();
        let footer = source.read_footer()?;
        if footer != self.inner.footer {
            return Err(self.corruption(self.inner.file_size_bytes, "footer changed since open"));
        }
        source.read_checked(footer.filter)?;
        source.read_index(&footer)?;
        let mut previous: Option<(Bytes, SequenceNumber)> = None;
        let mut first_key = None;
        let mut count = 0u64;
        let (mut min_seq, mut max_seq) = (SequenceNumber::MAX, 0);
        for (position, index_entry) in self.inner.index.entries().iter().enumerate() {
            let handle = index_entry.handle;
            let payload = source.read_checked(handle)?;
            let entries = Block::parse(payload)
                .and_then(|block| block.entries())
                .map_err(|e| e.in_file(&self.inner.path, handle.offset))?;
            for entry in &entries {
                if let Some((key, seq)) = &previous
                    && compare_internal(key, *seq, &entry.key, entry.seq) != Ordering::Less
                {
                    return Err(self.corruption(handle.offset, "entries out of internal order"));
                }
                if previous.as_ref().is_none_or(|(key, _)| *key != entry.key)
                    && !self.inner.filter.may_contain(&entry.key)
                {
                    return Err(self.corruption(footer.filter.offset, "bloom filter misses a key"));
                }
                first_key.get_or_insert_with(|| entry.key.clone());
                min_seq = min_seq.min(entry.seq);
                max_seq = max_seq.max(entry.seq);
                count += 1;
                previous = Some((entry.key.clone(), entry.seq));
            }
            let last = entries.last().map(|entry| (&entry.key, entry.seq));
            if last != Some((&index_entry.last_key, index_entry.last_seq)) {
                return Err(self.corruption(
                    handle.offset,
                    format!("block {position} does not end with its index key"),
                ));
            }
        }
        let summary_matches = count == footer.entry_count
            && min_seq == footer.min_seq
            && max_seq == footer.max_seq
            && first_key.as_ref() == Some(&footer.smallest_key)
            && previous.map(|(key, _)| key) == Some(footer.largest_key.clone());
        if !summary_matches {
            return Err(self.corruption(
                self.inner.file_size_bytes,
                "footer summary disagrees with the entries",
            ));
        }
        Ok(())
    }

    fn source(&self) -> Source<'_> {
        Source {
            path: &self.inner.path,
            file: self.inner.file.as_ref(),
            mapped: self.inner.mapped.as_ref(),
            file_size_bytes: self.inner.file_size_bytes,
        }
    }
}

/// Bounds-checked reads of one file.
struct Source<'a> {
    path: &'a Path,
    file: &'a dyn ReadFile,
    mapped: Option<&'a Bytes>,
    file_size_bytes: u64,
}

impl Source<'_> {
    fn corruption(&self, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::corruption(self.path, offset, reason)
    }

    /// `len` bytes at `offset`, which must lie inside the file; allocates at
    /// most the file's size.
    fn read(&self, offset: u64, len: u64) -> Result<Bytes> {
        let in_file = offset
            .checked_add(len)
            .is_some_and(|end| end <= self.file_size_bytes);
        let (true, Ok(start), Ok(len)) = (in_file, usize::try_from(offset), usize::try_from(len))
        else {
            return Err(self.corruption(
                offset,
                format!("region of {len} bytes runs past the end of the file"),
            ));
        };
        if let Some(mapped) = self.mapped {
            // The map has the file's length (checked at open), so this holds.
            return mapped
                .get(start..start + len)
                .map(|_| mapped.slice(start..start + len))
                .ok_or_else(|| self.corruption(offset, "region runs past the end of the map"));
        }
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, offset)
            .map_err(|e| StorageError::io("read", self.path, e))?;
        Ok(Bytes::from(buf))
    }

    /// The payload of `handle`, after checking the checksum that follows it.
    fn read_checked(&self, handle: BlockHandle) -> Result<Bytes> {
        let with_sum = handle
            .len
            .checked_add(CHECKSUM_BYTES as u64)
            .ok_or_else(|| self.corruption(handle.offset, "block length overflows"))?;
        let region = self.read(handle.offset, with_sum)?;
        let payload_len = region.len() - CHECKSUM_BYTES;
        let stored = Cursor::at(&region, payload_len)
            .u64_le("checksum")
            .map_err(|e| e.in_file(self.path, handle.offset))?;
        let payload = region.slice(..payload_len);
        if checksum(&payload) != stored {
            return Err(self.corruption(handle.offset, "block checksum mismatch"));
        }
        Ok(payload)
    }

    fn read_footer(&self) -> Result<Footer> {
        let tail_start = self
            .file_size_bytes
            .checked_sub(TAIL_BYTES as u64)
            .ok_or_else(|| {
                self.corruption(
                    0,
                    format!(
                        "file of {} bytes is too short for a segment",
                        self.file_size_bytes
                    ),
                )
            })?;
        let tail = self.read(tail_start, TAIL_BYTES as u64)?;
        let body_len = Footer::body_len(&tail).map_err(|e| e.in_file(self.path, tail_start))?;
        let footer_start = tail_start.checked_sub(body_len as u64).ok_or_else(|| {
            self.corruption(tail_start, "footer body runs before the start of the file")
        })?;
        let footer_bytes = self.read(footer_start, body_len as u64 + TAIL_BYTES as u64)?;
        let footer =
            Footer::decode(&footer_bytes).map_err(|e| e.in_file(self.path, footer_start))?;
        // The regions tile the file: data blocks, filter, index, footer.
        let region_end = |handle: BlockHandle| {
            handle
                .offset
                .checked_add(handle.len)
                .and_then(|end| end.checked_add(CHECKSUM_BYTES as u64))
        };
        if footer.filter.offset == 0
            || region_end(footer.filter) != Some(footer.index.offset)
            || region_end(footer.index) != Some(footer_start)
        {
            return Err(self.corruption(footer_start, "filter and index do not tile the file"));
        }
        Ok(footer)
    }

    fn read_index(&self, footer: &Footer) -> Result<Vec<IndexEntry>> {
        let payload = self.read_checked(footer.index)?;
        let entries = Block::parse(payload)
            .and_then(|block| block.entries())
            .map_err(|e| e.in_file(self.path, footer.index.offset))?;
        let mut index = Vec::with_capacity(entries.len());
        let mut expected_offset = 0u64;
        for entry in entries {
            let mut cursor = Cursor::new(&entry.value);
            let handle = cursor
                .varint("block offset")
                .and_then(|offset| {
                    Ok(BlockHandle {
                        offset,
                        len: cursor.varint("block length")?,
                    })
                })
                .map_err(|e| e.in_file(self.path, footer.index.offset))?;
            if handle.offset != expected_offset {
                return Err(self.corruption(
                    footer.index.offset,
                    format!(
                        "index names a block at {} where one should start at {expected_offset}",
                        handle.offset
                    ),
                ));
            }
            expected_offset = handle
                .offset
                .checked_add(handle.len)
                .and_then(|end| end.checked_add(CHECKSUM_BYTES as u64))
                .filter(|&end| end <= footer.filter.offset)
                .ok_or_else(|| {
                    self.corruption(
                        footer.index.offset,
                        "index names a block past the data region",
                    )
                })?;
            if let Some(previous) = index.last() {
                let previous: &IndexEntry = previous;
                if compare_internal(&previous.last_key, previous.last_seq, &entry.key, entry.seq)
                    != Ordering::Less
                {
                    return Err(self.corruption(footer.index.offset, "index keys out of order"));
                }
            }
            index.push(IndexEntry::new(entry.key, entry.seq, handle));
        }
        if expected_offset != footer.filter.offset {
            return Err(self.corruption(footer.index.offset, "data blocks do not reach the filter"));
        }
        Ok(index)
    }
}
