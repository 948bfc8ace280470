//! Doc-hidden handles through which `benches/storage_segment.rs` drives the
//! crate-internal segment writer and reader (a bench is another crate and
//! sees only `pub` items). Not part of the engine's API.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{BlockCache, SegmentOptions, SegmentReader, SegmentWriter};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{EntryKind, MAX_SEQUENCE_NUMBER};

/// Writes `entries` (sorted by key, distinct keys) as puts into a new
/// segment at `path` with default options; returns the file size in bytes.
pub fn build_segment<'a>(
    fs: &dyn FileSystem,
    path: &Path,
    entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<u64> {
    let mut writer = SegmentWriter::create(fs, path, 1, SegmentOptions::default())?;
    for (seq, (key, value)) in entries.into_iter().enumerate() {
        writer.add(key, seq as u64, EntryKind::Put, value)?;
    }
    Ok(writer.finish()?.file_size_bytes)
}

/// An open segment for benchmarks.
#[derive(Debug, Clone)]
pub struct BenchSegment(SegmentReader);

impl BenchSegment {
    /// Opens the segment at `path`, with a block cache of `cache_bytes` for
    /// the `pread` path if given.
    pub fn open(fs: &dyn FileSystem, path: &Path, cache_bytes: Option<usize>) -> Result<Self> {
        let file = fs
            .open_read(path)
            .map_err(|e| StorageError::io("open", path, e))?;
        let cache = cache_bytes.map(|bytes| Arc::new(BlockCache::new(bytes)));
        SegmentReader::open_with_cache(file, path.to_path_buf(), 1, cache).map(Self)
    }

    /// The newest value of `key`, if it is present and not deleted.
    pub fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self
            .0
            .get(key, MAX_SEQUENCE_NUMBER)?
            .and_then(|(kind, value)| (kind == EntryKind::Put).then_some(value)))
    }

    /// Reads up to `limit` entries from `start` on; returns how many.
    pub fn scan(&self, start: &[u8], limit: usize) -> Result<usize> {
        let range = KeyRange::from_bounds(start..);
        let mut count = 0;
        for entry in self.0.iter(range, Direction::Forward).take(limit) {
            entry?;
            count += 1;
        }
        Ok(count)
    }
}
