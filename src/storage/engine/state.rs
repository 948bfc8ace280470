//! The engine's shared state: the read state readers take by `Arc`, the
//! open-segment table, the snapshot registry, the error latch and the
//! counters behind [`EngineStats`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::EngineOptions;
use super::open::DirectoryLock;
use super::table::SegmentTable;
use crate::storage::commit::CommitPipeline;
use crate::storage::compaction::{
    CompactionOptions, WriteControl, estimate_pending_compaction_bytes, l0_depth, write_control,
};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::memtable::{ChunkPool, Memtable};
use crate::storage::segment::{BlockCache, SegmentMeta, SegmentReader};
use crate::storage::types::{FileNumber, SequenceNumber};
use crate::storage::version::{FileMeta, LEVEL_COUNT, Version, VersionSet, level_number};

/// A memtable that no longer takes writes and waits for its flush.
#[derive(Debug)]
pub(super) struct ImmutableMemtable {
    pub(super) memtable: Memtable,
    /// The log created when it was rotated out: once it is flushed, every
    /// older log holds nothing that is not in a segment.
    pub(super) next_log_number: FileNumber,
    /// When it stopped taking writes: its flush is done `bytes / (done -
    /// max(rotated_at, previous flush done))` after, which is the drain
    /// rate writers are paced to.
    pub(super) rotated_at: Instant,
}

/// What a reader needs, taken as one `Arc` so a read never waits for a
/// writer and sees memtables and files that fit together.
#[derive(Debug)]
pub(super) struct ReadState {
    pub(super) active: Memtable,
    /// Oldest first.
    pub(super) immutable: Vec<Arc<ImmutableMemtable>>,
    pub(super) version: Arc<Version>,
}

/// Monotonic counters, exposed through [`EngineStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) write_batches: AtomicU64,
    pub(super) write_bytes: AtomicU64,
    pub(super) write_slowdowns: AtomicU64,
    pub(super) write_slowdown_us: AtomicU64,
    pub(super) write_stops: AtomicU64,
    pub(super) flushes: AtomicU64,
    pub(super) flush_bytes: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) trivial_moves: AtomicU64,
    pub(super) compaction_read_bytes: AtomicU64,
    pub(super) compaction_write_bytes: AtomicU64,
    pub(super) point_reads: AtomicU64,
    pub(super) segment_probes: AtomicU64,
    pub(super) files_deleted: AtomicU64,
}

/// Everything the engine's handles, its background thread and its apply
/// callback share.
pub(crate) struct Shared {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) dir: PathBuf,
    pub(super) options: EngineOptions,
    pub(super) versions: VersionSet,
    pub(super) pipeline: OnceLock<CommitPipeline>,
    pub(super) read_state: Mutex<Arc<ReadState>>,
    pub(super) segments: SegmentTable,
    pub(super) block_cache: Option<Arc<BlockCache>>,
    /// The memtables' arena chunks, kept for reuse by later memtables.
    pub(super) arena_pool: Arc<ChunkPool>,
    /// Open snapshots: sequence number → how many.
    pub(super) snapshots: Mutex<BTreeMap<SequenceNumber, usize>>,
    /// Serializes flushes, compactions, verification and file deletion:
    /// the engine runs one manifest-changing job at a time. Checkpoints do
    /// not take it (they pin a version and its logs instead), so they never
    /// wait for a long compaction step.
    pub(super) work: Mutex<()>,
    /// The oldest log each running checkpoint still copies: no log at or
    /// after the smallest is deleted until its checkpoint is done.
    pub(super) log_pins: Mutex<Vec<FileNumber>>,
    /// Signalled when background work may be due or was done.
    pub(super) wake: Condvar,
    pub(super) wake_lock: Mutex<bool>,
    /// Signalled after every flush, compaction or failure, for stopped writers.
    pub(super) progress: Condvar,
    pub(super) progress_lock: Mutex<()>,
    pub(super) failure: Mutex<Option<StorageError>>,
    pub(super) closed: AtomicBool,
    /// No immutable memtable waits and neither L0 nor the compaction
    /// backlog slows writes: the write path skips its throttle. Refreshed
    /// under the read-state lock whenever the read state is replaced.
    pub(super) unthrottled: AtomicBool,
    /// The highest `oldest_snapshot` any installed flush or compaction
    /// dropped versions below: a read at an older sequence number (taken
    /// before that install, without a snapshot) could miss a version the
    /// install dropped, so such a read takes a newer one (`read_now`).
    pub(super) horizon: AtomicU64,
    /// Write delay imposed but not yet slept, in microseconds.
    pub(super) slowdown_debt_us: AtomicU64,
    /// How fast flushes drain memtables, in memtable bytes per second of
    /// wall time (a moving average; 0 before the first flush).
    pub(super) flush_rate_bytes_per_s: AtomicU64,
    /// When the last flush was installed.
    pub(super) last_flush_done: Mutex<Option<Instant>>,
    pub(super) counters: Counters,
    /// Released by `close`, so the directory can be reopened while
    /// clones of a closed engine linger.
    pub(super) lock: Mutex<Option<DirectoryLock>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Fails if the engine is closed or latched an error.
    pub(super) fn check(&self) -> Result<()> {
        if let Some(error) = &*self.failure.lock() {
            return Err(error.clone());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        Ok(())
    }

    /// Latches `error` (wrapped as [`StorageError::PreviousIo`] unless it
    /// already is one) and returns what every later call sees.
    pub(super) fn fail(&self, error: StorageError) -> StorageError {
        let latched = match error {
            StorageError::PreviousIo { .. } | StorageError::Closed => error,
            other => StorageError::PreviousIo {
                cause: Arc::new(other),
            },
        };
        let mut failure = self.failure.lock();
        let result = failure.get_or_insert(latched).clone();
        drop(failure);
        self.notify();
        self.progressed();
        result
    }

    /// Runs `f`, latching any I/O or corruption error it returns.
    pub(super) fn latch<T>(&self, result: Result<T>) -> Result<T> {
        result.map_err(|error| match error {
            StorageError::InvalidArgument(_)
            | StorageError::Closed
            | StorageError::ReadOnlyReplica
            | StorageError::ReplicationTimeout { .. }
            | StorageError::Fenced { .. } => error,
            other => self.fail(other),
        })
    }

    pub(super) fn pipeline(&self) -> Result<&CommitPipeline> {
        self.pipeline.get().ok_or(StorageError::Closed)
    }

    pub(super) fn read_state(&self) -> Arc<ReadState> {
        Arc::clone(&self.read_state.lock())
    }

    /// Replaces the read state's version after a manifest install.
    pub(super) fn install_version(
        &self,
        version: Arc<Version>,
        flushed: Option<&Arc<ImmutableMemtable>>,
    ) {
        let mut state = self.read_state.lock();
        let immutable = state
            .immutable
            .iter()
            .filter(|m| flushed.is_none_or(|f| !Arc::ptr_eq(m, f)))
            .cloned()
            .collect();
        let next = ReadState {
            active: state.active.clone(),
            immutable,
            version,
        };
        self.publish_read_state(&mut state, next);
    }

    /// Replaces the read state, whose lock the caller holds as `slot`.
    pub(super) fn publish_read_state(&self, slot: &mut Arc<ReadState>, next: ReadState) {
        let unthrottled = next.immutable.is_empty()
            && backlog_control(&next.version, &self.options.compaction) == WriteControl::Normal;
        *slot = Arc::new(next);
        self.unthrottled.store(unthrottled, Ordering::Release);
    }

    /// The open reader of segment `number`, opening it on first use.
    pub(super) fn segment(&self, number: FileNumber) -> Result<SegmentReader> {
        self.segments.get_or_open(number, || {
            let path = super::segment_file_path(&self.dir, number);
            let file = self
                .fs
                .open_read(&path)
                .map_err(|e| StorageError::io("open", &path, e))?;
            SegmentReader::open_with_cache(file, path, number, self.block_cache.clone())
        })
    }

    /// Records that an install about to be published dropped versions
    /// hidden from every reader at or after `oldest_snapshot`. Called
    /// before the install, so a reader that sees the new read state also
    /// sees the raised horizon.
    pub(super) fn raise_horizon(&self, oldest_snapshot: SequenceNumber) {
        self.horizon.fetch_max(oldest_snapshot, Ordering::AcqRel);
    }

    /// The latest visible sequence number and a read state that holds
    /// every version a read at it needs. The sequence number is read first
    /// (a read state taken first could miss a memtable rotated in after
    /// it); if a flush or compaction that dropped versions newer than it
    /// was installed in between, both are read again, and after a few such
    /// races they are read under the snapshot registry's lock, which no
    /// flush or compaction can compute its `oldest_snapshot` through.
    pub(super) fn read_now(&self) -> Result<(SequenceNumber, Arc<ReadState>)> {
        for _ in 0..READ_NOW_OPTIMISTIC_TRIES {
            let seq = self.pipeline()?.last_visible_sequence();
            let state = self.read_state();
            if self.horizon.load(Ordering::Acquire) <= seq {
                return Ok((seq, state));
            }
        }
        let _registry = self.snapshots.lock();
        let seq = self.pipeline()?.last_visible_sequence();
        Ok((seq, self.read_state()))
    }

    /// The oldest sequence number a reader may still read at.
    pub(super) fn oldest_snapshot(&self) -> Result<SequenceNumber> {
        let snapshots = self.snapshots.lock();
        let latest = self.pipeline()?.last_visible_sequence();
        Ok(snapshots.keys().next().copied().unwrap_or(latest))
    }

    /// Folds the flush of `memtable`, installed now, into the drain rate.
    pub(super) fn record_flush(&self, memtable: &ImmutableMemtable) {
        let done = Instant::now();
        let mut last = self.last_flush_done.lock();
        // Its flush could not start before it was rotated out, nor before
        // the previous flush was done.
        let started = last.map_or(memtable.rotated_at, |last| last.max(memtable.rotated_at));
        *last = Some(done);
        drop(last);
        let seconds = done.duration_since(started).as_secs_f64();
        let bytes = memtable.memtable.approximate_memory_bytes() as f64;
        if seconds <= 0.0 || bytes <= 0.0 {
            return;
        }
        let sample = (bytes / seconds).min(u64::MAX as f64) as u64;
        let old = self.flush_rate_bytes_per_s.load(Ordering::Relaxed);
        // Weight 1/4: follows a change of pace within a few flushes.
        let rate = if old == 0 {
            sample
        } else {
            old - old / 4 + sample / 4
        };
        self.flush_rate_bytes_per_s.store(rate, Ordering::Relaxed);
    }

    /// Wakes the background thread.
    pub(super) fn notify(&self) {
        *self.wake_lock.lock() = true;
        self.wake.notify_all();
    }

    /// Wakes writers waiting for background progress.
    pub(super) fn progressed(&self) {
        let _guard = self.progress_lock.lock();
        self.progress.notify_all();
    }

    pub(super) fn stats(&self) -> EngineStats {
        let state = self.read_state();
        let version = &state.version;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (commit_groups, log_syncs) = self
            .pipeline
            .get()
            .map_or((0, 0), CommitPipeline::group_counts);
        let c = &self.counters;
        let levels = (0..LEVEL_COUNT)
            .map(|level| LevelStats {
                files: version.level_files(level).len(),
                bytes: version.level_bytes(level),
            })
            .collect();
        let live_bytes: u64 = (0..LEVEL_COUNT).map(|l| version.level_bytes(l)).sum();
        EngineStats {
            levels,
            live_bytes,
            memtable_bytes: state.active.approximate_memory_bytes() as u64
                + state
                    .immutable
                    .iter()
                    .map(|m| m.memtable.approximate_memory_bytes() as u64)
                    .sum::<u64>(),
            immutable_memtables: state.immutable.len(),
            open_segments: self.segments.len(),
            last_sequence: self
                .pipeline
                .get()
                .map_or(0, CommitPipeline::last_visible_sequence),
            write_batches: load(&c.write_batches),
            write_bytes: load(&c.write_bytes),
            commit_groups,
            log_syncs,
            write_slowdowns: load(&c.write_slowdowns),
            write_slowdown_us: load(&c.write_slowdown_us),
            write_stops: load(&c.write_stops),
            flushes: load(&c.flushes),
            flush_bytes: load(&c.flush_bytes),
            compactions: load(&c.compactions),
            trivial_moves: load(&c.trivial_moves),
            compaction_read_bytes: load(&c.compaction_read_bytes),
            compaction_write_bytes: load(&c.compaction_write_bytes),
            point_reads: load(&c.point_reads),
            segment_probes: load(&c.segment_probes),
            files_deleted: load(&c.files_deleted),
        }
    }
}

/// How many times [`Shared::read_now`] retries without a lock: each retry
/// needs another install to land between two adjacent loads.
const READ_NOW_OPTIMISTIC_TRIES: usize = 4;

/// What the compaction backlog of `version` (L0 files and estimated
/// pending compaction bytes) asks of writers.
pub(super) fn backlog_control(version: &Version, options: &CompactionOptions) -> WriteControl {
    write_control(
        l0_depth(version),
        estimate_pending_compaction_bytes(version, options),
        options,
    )
}

/// The shape of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelStats {
    /// Live files in the level.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

/// A snapshot of the engine's counters (monotonic since open) and shape.
///
/// Amplification: write amplification is `(flush_bytes +
/// compaction_write_bytes) / write_bytes`; read amplification of a point
/// read is `segment_probes / point_reads`; space amplification is
/// `live_bytes` over the size of the live data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Per level, L0 first.
    pub levels: Vec<LevelStats>,
    /// Bytes of all live segment files.
    pub live_bytes: u64,
    /// Bytes held by the active and immutable memtables.
    pub memtable_bytes: u64,
    /// Immutable memtables waiting for their flush.
    pub immutable_memtables: usize,
    /// Segment readers held open by the engine's table (at most
    /// `EngineOptions::max_open_files`; iterators may hold a few more).
    pub open_segments: usize,
    /// The last visible sequence number.
    pub last_sequence: SequenceNumber,
    /// Batches written.
    pub write_batches: u64,
    /// Encoded batch bytes written (the user bytes of write amplification).
    pub write_bytes: u64,
    /// Commit groups: batches committed together through one log write.
    pub commit_groups: u64,
    /// Commit groups that synced the log: with concurrent `Sync` writers,
    /// `write_batches / log_syncs` is how many batches share an fsync.
    pub log_syncs: u64,
    /// Batches that were delayed because compaction fell behind.
    pub write_slowdowns: u64,
    /// Total delay imposed on those batches, in microseconds.
    pub write_slowdown_us: u64,
    /// Batches that had to wait until compaction or a flush caught up.
    pub write_stops: u64,
    /// Memtables flushed.
    pub flushes: u64,
    /// Bytes of segments written by flushes.
    pub flush_bytes: u64,
    /// Compactions that rewrote files.
    pub compactions: u64,
    /// Compactions that only moved a file down a level.
    pub trivial_moves: u64,
    /// Bytes read by compactions.
    pub compaction_read_bytes: u64,
    /// Bytes written by compactions.
    pub compaction_write_bytes: u64,
    /// Point reads served.
    pub point_reads: u64,
    /// Segments consulted by point reads.
    pub segment_probes: u64,
    /// Obsolete segment and log files deleted.
    pub files_deleted: u64,
}

impl EngineStats {
    /// Bytes written to segments per byte written by users (0 before any write).
    pub fn write_amplification(&self) -> f64 {
        if self.write_bytes == 0 {
            return 0.0;
        }
        (self.flush_bytes + self.compaction_write_bytes) as f64 / self.write_bytes as f64
    }

    /// Segments probed per point read (0 before any read).
    pub fn read_amplification(&self) -> f64 {
        if self.point_reads == 0 {
            return 0.0;
        }
        self.segment_probes as f64 / self.point_reads as f64
    }

    /// Live segment bytes per byte of the last non-empty level, which holds
    /// most live data under leveled compaction (RocksDB's estimate; 0 for
    /// an empty database).
    pub fn space_amplification(&self) -> f64 {
        match self.levels.iter().rev().find(|level| level.bytes > 0) {
            Some(last) => self.live_bytes as f64 / last.bytes as f64,
            None => 0.0,
        }
    }
}

/// The manifest's record of a segment the writer just finished, in `level`.
pub(super) fn file_meta(meta: &SegmentMeta, level: usize) -> FileMeta {
    FileMeta::from_segment(meta, level_number(level))
}
