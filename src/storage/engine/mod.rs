//! The engine: one directory, one log, memtables, segments and a manifest,
//! tied together behind [`Engine`].
//!
//! - `open`: recovery (manifest, log replay, torn-tail cut, leftover files);
//! - `write`: batches through the commit pipeline, memtable rotation, write
//!   throttling;
//! - `read`: point reads, snapshots and iterators over an `Arc` of the
//!   current read state, so readers never wait for writers;
//! - `flush`: immutable memtable to L0 segment, installed through the manifest;
//! - `compact`: execution of the compactions `compaction` picks;
//! - `checkpoint`: hard-linked consistent copies;
//! - `background`: the thread that flushes and compacts, its error latch.
//!
//! The file lifecycle and the crash-safety argument of every install are
//! in `docs/format-engine.md`.

mod background;
mod checkpoint;
mod compact;
mod flush;
mod open;
mod read;
mod replicated;
mod state;
mod table;
mod write;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use read::{EngineIter, Snapshot};
pub use state::{EngineStats, LevelStats};
pub use table::MAX_OPEN_FILES_DEFAULT;

use super::commit::{BACKGROUND_SYNC_INTERVAL_DEFAULT, Durability};
use super::compaction::CompactionOptions;
use super::error::Result;
use super::fs::{FileSystem, OsFileSystem};
use super::segment::SegmentOptions;
use super::types::FileNumber;
use state::Shared;

/// The default memtable size at which it is rotated and flushed: 64 MiB
/// (RocksDB's default write buffer).
pub const MEMTABLE_BYTES_MAX_DEFAULT: usize = 64 << 20;

/// The default preallocation of each log file: 64 MiB (fjall's), capped
/// by the memtable size.
pub const LOG_PREALLOCATE_BYTES_DEFAULT: u64 = 64 << 20;
/// Default [`EngineOptions::log_recycle_files`]: one log, enough for the
/// steady state (the previous log is flushed and kept while the current one
/// fills, then becomes the next).
pub const LOG_RECYCLE_FILES_DEFAULT: usize = 1;

/// The default block cache size, used when segments are read by `pread`.
pub const BLOCK_CACHE_BYTES_DEFAULT: usize = 32 << 20;

/// How many immutable memtables may wait for their flush before writers
/// stop: with the active one this bounds memtable memory at
/// `(IMMUTABLE_MEMTABLES_MAX + 1) × memtable_bytes_max`.
pub const IMMUTABLE_MEMTABLES_MAX: usize = 2;

/// The extension of segment files (`000012.seg`).
const SEGMENT_EXTENSION: &str = "seg";

/// The name of the directory lock file.
const LOCK_FILE_NAME: &str = "LOCK";

/// How an engine is configured.
///
/// Memory budget: the memtables hold at most
/// `(IMMUTABLE_MEMTABLES_MAX + 1) × memtable_bytes_max` bytes (writers stop
/// while that many wait for a flush), plus `block_cache_bytes` of cached
/// blocks; memory-mapped segments are paged by the OS and not counted.
/// Flushed memtables' arena chunks are kept for the next memtables (so
/// writes do not fault in fresh pages), within the same bound: live and
/// kept chunks together hold at most that many bytes beyond what readers
/// still pin.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// When a write is acknowledged; default [`Durability::Sync`].
    pub durability: Durability,
    /// The memtable size in bytes at which it is rotated and flushed to an
    /// L0 segment; default [`MEMTABLE_BYTES_MAX_DEFAULT`].
    pub memtable_bytes_max: usize,
    /// The compaction policy and write throttling; default
    /// [`CompactionOptions::default`].
    pub compaction: CompactionOptions,
    /// The segment layout; default [`SegmentOptions::default`] (its
    /// `target_file_size_bytes` is replaced by the compaction's).
    pub segment: SegmentOptions,
    /// How often `Buffered` writes are synced; default 100 ms.
    pub background_sync_interval: Duration,
    /// Each new log file is extended with zeros to this many bytes, capped
    /// at `memtable_bytes_max` (a log holds about one memtable), so commits
    /// overwrite in place and their `fdatasync` has no file size to update;
    /// 0 disables it. Default [`LOG_PREALLOCATE_BYTES_DEFAULT`]. The
    /// extension is sparse where the file system allows it.
    pub log_preallocate_bytes: u64,
    /// How many obsolete logs are kept and reused as later logs instead of
    /// being deleted (RocksDB's `recycle_log_file_num`); default
    /// [`LOG_RECYCLE_FILES_DEFAULT`], 0 disables it. A reused log's pages
    /// are still in the page cache and its blocks allocated, so an append
    /// neither zero-fills a fresh page nor allocates a block, and a
    /// `fdatasync` has no allocation to commit. Each kept log occupies its
    /// size on disk until reused. Records left from its earlier life carry
    /// another log number, so recovery stops at them (docs/format-wal.md).
    pub log_recycle_files: usize,
    /// Bytes of the block cache for `pread` reads (0 disables it); default
    /// [`BLOCK_CACHE_BYTES_DEFAULT`].
    pub block_cache_bytes: usize,
    /// Whether [`Engine::open`] memory-maps segments; default true.
    pub mmap: bool,
    /// Whether the engine runs a background thread for flushes and
    /// compactions; default true. Without it they run only when
    /// [`Engine::flush`], [`Engine::compact`] or
    /// [`Engine::wait_for_background`] is called (deterministic tests).
    pub background_threads: bool,
    /// How many segment readers (file descriptor, memory map, block index
    /// and bloom filter each) the engine keeps open, least recently used
    /// evicted first; default [`MAX_OPEN_FILES_DEFAULT`].
    pub max_open_files: usize,
    /// Flushes and compactions start a new segment file where the first
    /// this-many bytes of the key change, so no segment holds keys of two
    /// keyspaces (a `Database` sets 4, its keyspace id). A keyspace whose
    /// keys only grow (stream records) then flushes into files that overlap
    /// nothing below and move down the levels without being rewritten.
    /// Default 0: files are cut by size alone.
    pub segment_split_prefix_bytes: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            memtable_bytes_max: MEMTABLE_BYTES_MAX_DEFAULT,
            compaction: CompactionOptions::default(),
            segment: SegmentOptions::default(),
            background_sync_interval: BACKGROUND_SYNC_INTERVAL_DEFAULT,
            log_preallocate_bytes: LOG_PREALLOCATE_BYTES_DEFAULT,
            log_recycle_files: LOG_RECYCLE_FILES_DEFAULT,
            block_cache_bytes: BLOCK_CACHE_BYTES_DEFAULT,
            mmap: true,
            background_threads: true,
            max_open_files: MAX_OPEN_FILES_DEFAULT,
            segment_split_prefix_bytes: 0,
        }
    }
}

/// A storage engine over one directory. Cheap to clone; every clone is the
/// same engine, which closes when [`Engine::close`] is called or the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct Engine {
    handle: Arc<background::Handle>,
}

impl Engine {
    /// Opens (or creates) the database in `path` on the operating system's
    /// file system. Another open of the same directory, in this process or
    /// another, fails with [`StorageError::Locked`](super::StorageError::Locked)
    /// until this engine is closed.
    pub fn open(path: impl AsRef<Path>, options: EngineOptions) -> Result<Self> {
        let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem::new(options.mmap));
        let lock = open::DirectoryLock::acquire_os(path.as_ref())?;
        Self::open_locked(fs, path.as_ref(), options, lock)
    }

    /// Opens (or creates) the database in `path` on `fs` (a simulated disk in
    /// tests). Two opens of one path on one `fs` in this process fail with
    /// [`StorageError::Locked`](super::StorageError::Locked).
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        path: impl AsRef<Path>,
        options: EngineOptions,
    ) -> Result<Self> {
        let lock = open::DirectoryLock::acquire_in_process(&fs, path.as_ref())?;
        Self::open_locked(fs, path.as_ref(), options, lock)
    }

    fn open_locked(
        fs: Arc<dyn FileSystem>,
        path: &Path,
        options: EngineOptions,
        lock: open::DirectoryLock,
    ) -> Result<Self> {
        let shared = open::recover(fs, path, options, lock)?;
        Ok(Self {
            handle: background::Handle::start(shared)?,
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        self.handle.shared()
    }

    /// Forces the active memtable to a segment and waits until every
    /// memtable written so far is flushed.
    pub fn flush(&self) -> Result<()> {
        self.shared().check()?;
        self.shared().rotate_now()?;
        self.shared().run_pending_flushes()
    }

    /// Flushes, then runs compactions until no level is over its target.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        self.shared().run_pending_compactions()
    }

    /// Does every flush and compaction the engine has pending, in the
    /// caller's thread, and returns when none is left (deterministic tests
    /// call this instead of sleeping).
    pub fn wait_for_background(&self) -> Result<()> {
        self.shared().check()?;
        self.shared().run_pending_flushes()?;
        self.shared().run_pending_compactions()
    }

    /// Makes every write acknowledged so far durable (for `Buffered` writes;
    /// a no-op for an `InMemory` engine).
    pub fn sync(&self) -> Result<()> {
        let shared = self.shared();
        shared.check()?;
        let synced = shared.pipeline()?.sync_log();
        shared.latch(synced)
    }

    /// Reads and checks every checksum of every live segment and log.
    pub fn verify(&self) -> Result<()> {
        self.shared().verify()
    }

    /// Counters and level shapes.
    pub fn stats(&self) -> EngineStats {
        self.shared().stats()
    }

    /// Writes a consistent copy of the database into the new directory
    /// `dir` (segments hard-linked, manifest and log tail copied), openable
    /// with [`Engine::open`]. The copy holds at least every write
    /// acknowledged before the call.
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.shared().checkpoint(dir.as_ref())
    }

    /// Stops the background thread, syncs the log and releases the
    /// directory. Later calls on any clone return
    /// [`StorageError::Closed`](super::StorageError::Closed).
    pub fn close(&self) -> Result<()> {
        self.handle.close()
    }

    /// The durability the engine was opened with.
    pub fn durability(&self) -> Durability {
        self.shared().options.durability
    }

    /// The directory of the database.
    pub fn path(&self) -> &Path {
        &self.shared().dir
    }
}

/// Whether `next` starts a new segment after `last` under a split prefix
/// of `prefix_bytes` (see [`EngineOptions::segment_split_prefix_bytes`]):
/// their first `prefix_bytes` bytes (or whole key, if shorter) differ.
pub(crate) fn crosses_split_prefix(prefix_bytes: usize, last: &[u8], next: &[u8]) -> bool {
    prefix_bytes > 0 && last[..last.len().min(prefix_bytes)] != next[..next.len().min(prefix_bytes)]
}

/// The file name of segment `number` (`000012.seg`).
pub(crate) fn segment_file_name(number: FileNumber) -> String {
    format!("{number:06}.{SEGMENT_EXTENSION}")
}

/// The path of segment `number` in `dir`.
pub(crate) fn segment_file_path(dir: &Path, number: FileNumber) -> PathBuf {
    dir.join(segment_file_name(number))
}

/// The number of a segment file name, or `None` if `name` is not one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<FileNumber> {
    let digits = name.strip_suffix(SEGMENT_EXTENSION)?.strip_suffix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
