//! Opening a directory: the lock, recovery from the manifest and logs, and
//! removal of files a crash left behind.
//!
//! Recovery flushes the replayed memtable to an L0 segment before accepting
//! writes (rather than keeping it with its logs): the new log then starts a
//! fresh, dense sequence, a log whose torn tail was cut is never appended
//! to or replayed again, and every older log can be deleted at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock, Weak};

use parking_lot::{Condvar, Mutex};

use super::state::{Counters, ReadState, Shared};
use super::table::SegmentTable;
use super::{EngineOptions, IMMUTABLE_MEMTABLES_MAX};
use crate::storage::commit::{CommitOptions, CommitPipeline, CommittedBatch};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::memtable::{ChunkPool, Memtable};
use crate::storage::segment::BlockCache;
use crate::storage::version::{VersionEdit, VersionSet};
use crate::storage::wal;

/// Paths held open by [`DirectoryLock::acquire_in_process`], keyed by the
/// file system's address, so one process cannot open a directory twice.
static IN_PROCESS_LOCKS: Mutex<Vec<(usize, PathBuf)>> = Mutex::new(Vec::new());

/// Exclusive ownership of a database directory while an engine has it open.
#[derive(Debug)]
pub(crate) struct DirectoryLock {
    /// The OS lock file (its `flock` is released when it closes).
    _file: Option<std::fs::File>,
    in_process: Option<(usize, PathBuf)>,
}

impl DirectoryLock {
    /// Takes an advisory OS lock on `dir/LOCK`. This is the one place the
    /// engine touches `std::fs` directly: locking is not part of the
    /// `FileSystem` contract, and a simulated disk needs none.
    pub(super) fn acquire_os(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create_dir", dir, e))?;
        let path = dir.join(super::LOCK_FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self {
                _file: Some(file),
                in_process: None,
            }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StorageError::Locked(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(e)) => Err(StorageError::io("lock", &path, e)),
        }
    }

    /// Registers `dir` on `fs` as open in this process.
    pub(super) fn acquire_in_process(fs: &Arc<dyn FileSystem>, dir: &Path) -> Result<Self> {
        let key = (Arc::as_ptr(fs).cast::<()>() as usize, dir.to_path_buf());
        let mut locks = IN_PROCESS_LOCKS.lock();
        if locks.contains(&key) {
            return Err(StorageError::Locked(dir.to_path_buf()));
        }
        locks.push(key.clone());
        Ok(Self {
            _file: None,
            in_process: Some(key),
        })
    }
}

impl Drop for DirectoryLock {
    fn drop(&mut self) {
        if let Some(key) = self.in_process.take() {
            IN_PROCESS_LOCKS.lock().retain(|held| *held != key);
        }
    }
}

/// Recovers the database in `dir` and returns the engine's shared state
/// with its commit pipeline running (the background thread is not started).
pub(super) fn recover(
    fs: Arc<dyn FileSystem>,
    dir: &Path,
    options: EngineOptions,
    lock: DirectoryLock,
) -> Result<Arc<Shared>> {
    options.compaction.validate()?;
    if options.memtable_bytes_max == 0 {
        return Err(StorageError::InvalidArgument(
            "memtable_bytes_max must be positive".into(),
        ));
    }
    if options.max_open_files == 0 {
        return Err(StorageError::InvalidArgument(
            "max_open_files must be positive".into(),
        ));
    }
    let fresh = !fs.exists(dir);
    fs.create_dir_all(dir)
        .map_err(|e| StorageError::io("create_dir", dir, e))?;
    if fresh && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The directory's own name must be durable before anything in it is.
        fs.sync_dir(parent)
            .map_err(|e| StorageError::io("fsync_dir", parent, e))?;
    }
    let names = fs
        .list_dir(dir)
        .map_err(|e| StorageError::io("list", dir, e))?;
    let has_manifest = names
        .iter()
        .any(|n| n == crate::storage::manifest::MANIFEST_FILE_NAME);
    let is_data = |n: &String| {
        wal::parse_log_file_name(n).is_some() || super::parse_segment_file_name(n).is_some()
    };
    if !has_manifest && names.iter().any(is_data) {
        return Err(StorageError::corruption(
            dir.join(crate::storage::manifest::MANIFEST_FILE_NAME),
            0,
            "the directory holds logs or segments but no manifest",
        ));
    }
    let versions = VersionSet::open(Arc::clone(&fs), dir)?;
    for file in versions.current().files() {
        let path = super::segment_file_path(dir, file.number());
        if !fs.exists(&path) {
            return Err(StorageError::corruption(
                path,
                0,
                "the manifest lists a segment that is missing",
            ));
        }
    }
    for name in &names {
        if let Some(number) =
            wal::parse_log_file_name(name).or_else(|| super::parse_segment_file_name(name))
        {
            versions.mark_file_number_used(number);
        }
    }

    // Replay every log the manifest still needs into one memtable.
    let logs: Vec<_> = wal::list_logs(fs.as_ref(), dir)?
        .into_iter()
        .filter(|&n| n >= versions.log_number())
        .collect();
    let arena_pool =
        ChunkPool::new((IMMUTABLE_MEMTABLES_MAX + 1).saturating_mul(options.memtable_bytes_max));
    let recovered = Memtable::with_pool(Arc::clone(&arena_pool));
    let outcome = wal::recovery::replay(fs.as_ref(), dir, &logs, |first_seq, batch| {
        let buffer = recovered.store(batch.entries());
        recovered.insert_batch(&buffer, first_seq);
        Ok(())
    })?;
    if let Some(last) = outcome.last_sequence
        && last < versions.last_sequence()
        && !recovered.is_empty()
    {
        return Err(StorageError::corruption(
            wal::log_file_path(dir, logs.first().copied().unwrap_or_default()),
            0,
            format!(
                "logs end at sequence number {last}, before the manifest's {}",
                versions.last_sequence()
            ),
        ));
    }
    wal::recovery::cut_tail(fs.as_ref(), &outcome)?;
    let last_sequence = outcome
        .last_sequence
        .unwrap_or(0)
        .max(versions.last_sequence());

    let new_log = versions.new_file_number();
    let mut edit = VersionEdit::new();
    edit.set_log_number(new_log)
        .set_last_sequence(last_sequence);
    if !recovered.is_empty() {
        let written = super::flush::write_segments(
            fs.as_ref(),
            dir,
            || versions.new_file_number(),
            &options,
            // No reader or snapshot exists yet: only the newest version of
            // each key is needed.
            super::flush::flush_entries(&recovered, last_sequence),
        )?;
        for meta in &written {
            edit.add_file(super::state::file_meta(meta, 0));
        }
    }
    let version = versions.log_and_apply(&edit)?;
    remove_unlisted_files(fs.as_ref(), dir, &versions)?;

    let block_cache = (!options.mmap && options.block_cache_bytes > 0)
        .then(|| Arc::new(BlockCache::new(options.block_cache_bytes)));
    let commit_options = CommitOptions {
        durability: options.durability,
        background_sync_interval: options.background_sync_interval,
        log_preallocate_bytes: options
            .log_preallocate_bytes
            .min(options.memtable_bytes_max as u64),
        log_recycle_files: options.log_recycle_files,
        ..CommitOptions::default()
    };
    let options_max_open_files = options.max_open_files;
    let shared = Arc::new(Shared {
        fs: Arc::clone(&fs),
        dir: dir.to_path_buf(),
        options,
        versions,
        pipeline: OnceLock::new(),
        read_state: Mutex::new(Arc::new(ReadState {
            active: Memtable::with_pool(Arc::clone(&arena_pool)),
            immutable: Vec::new(),
            version,
        })),
        arena_pool,
        segments: SegmentTable::new(options_max_open_files),
        block_cache,
        snapshots: Mutex::new(Default::default()),
        work: Mutex::new(()),
        log_pins: Mutex::new(Vec::new()),
        wake: Condvar::new(),
        wake_lock: Mutex::new(false),
        progress: Condvar::new(),
        progress_lock: Mutex::new(()),
        failure: Mutex::new(None),
        closed: AtomicBool::new(false),
        // Refreshed below, once the version's backlog is known.
        unthrottled: AtomicBool::new(false),
        slowdown_debt_us: std::sync::atomic::AtomicU64::new(0),
        horizon: std::sync::atomic::AtomicU64::new(0),
        flush_rate_bytes_per_s: std::sync::atomic::AtomicU64::new(0),
        last_flush_done: Mutex::new(None),
        counters: Counters::default(),
        lock: Mutex::new(Some(lock)),
    });
    {
        let mut slot = shared.read_state.lock();
        let state = ReadState {
            active: slot.active.clone(),
            immutable: Vec::new(),
            version: Arc::clone(&slot.version),
        };
        shared.publish_read_state(&mut slot, state);
    }
    let weak = Arc::downgrade(&shared);
    let pipeline = CommitPipeline::open(
        fs,
        dir,
        new_log,
        last_sequence,
        commit_options,
        Box::new(move |group| apply_group(&weak, group)),
    )?;
    if shared.pipeline.set(pipeline).is_err() {
        return Err(StorageError::InvalidArgument(
            "the commit pipeline was started twice".into(),
        ));
    }
    Ok(shared)
}

/// The commit pipeline's apply callback: inserts a group into the active
/// memtable and rotates it once it is full.
fn apply_group(shared: &Weak<Shared>, group: &[CommittedBatch]) -> Result<()> {
    let Some(shared) = shared.upgrade() else {
        return Err(StorageError::Closed);
    };
    let active = shared.read_state().active.clone();
    // One epoch pin for the whole group (see `Memtable::insert_batch`).
    let _pinned = crossbeam_epoch::pin();
    for committed in group {
        // Keys and values are slices of a copy of the batch's encoded
        // entries in the memtable's arena: no allocation but the nodes'.
        let buffer = active.store(committed.batch.entries());
        active.insert_batch(&buffer, committed.first_seq);
    }
    if active.approximate_memory_bytes() >= shared.options.memtable_bytes_max {
        // Inside the callback no other group is between append and apply,
        // so the log boundary falls exactly at the memtable boundary.
        shared.rotate_locked()?;
    }
    Ok(())
}

/// Deletes segments the manifest does not list (outputs of a flush or
/// compaction a crash interrupted) and logs older than its log number.
fn remove_unlisted_files(fs: &dyn FileSystem, dir: &Path, versions: &VersionSet) -> Result<()> {
    let version = versions.current();
    let live: HashSet<_> = version.files().map(|f| f.number()).collect();
    let names = fs
        .list_dir(dir)
        .map_err(|e| StorageError::io("list", dir, e))?;
    let mut removed = false;
    for name in names {
        let stale = match (
            super::parse_segment_file_name(&name),
            wal::parse_log_file_name(&name),
        ) {
            (Some(number), _) => !live.contains(&number),
            (_, Some(number)) => number < versions.log_number(),
            _ => false,
        };
        if stale {
            let path = dir.join(&name);
            fs.remove_file(&path)
                .map_err(|e| StorageError::io("remove", &path, e))?;
            removed = true;
        }
    }
    if removed {
        fs.sync_dir(dir)
            .map_err(|e| StorageError::io("fsync_dir", dir, e))?;
    }
    Ok(())
}
