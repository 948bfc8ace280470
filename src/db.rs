//! [`Database`]: one directory, one storage engine, and the services built
//! on it — the handle a user opens first.
//!
//! Each service hangs its operations off `Database` in its own module
//! (`impl Database` blocks in `kv`, `objects`, ...), so this file only owns
//! opening, options and closing. That is the one place where a lower layer
//! names a higher one: `Database` is the crate's root, like `lib.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::kv::KvState;
use crate::storage::fs::FileSystem;
use crate::storage::sim::SimFileSystem;
use crate::storage::{Durability, Engine, EngineOptions, Result};
use crate::time::{Clock, SystemClock};

/// How a database is opened.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// The storage engine's options (durability, memtable and block-cache
    /// budgets, compaction, background threads).
    pub engine: EngineOptions,
    /// The wall clock of TTL, lifecycle and idempotency windows; default
    /// the system clock.
    pub clock: Arc<dyn Clock>,
    /// How stale an eventually consistent read may be (default zero: every
    /// read sees the latest committed state). Within the bound, such reads
    /// share one snapshot, as a read replica would serve them.
    pub eventual_read_staleness: Duration,
    /// The most bytes an item collection (a partition key's items and
    /// their local index entries) may hold: 10 GB, as in DynamoDB.
    pub item_collection_size_limit: u64,
    /// Paces global index backfills to at most this many items per second
    /// (default: as fast as they go).
    pub index_backfill_items_per_second: Option<u64>,
    /// How tables are partitioned: initial count, size and heat splits.
    pub partitions: crate::kv::PartitionOptions,
    /// How long stream records are kept (default 24 h, as in DynamoDB).
    pub stream_retention: Duration,
    /// How often the background TTL sweep runs: expired items are deleted
    /// at most about this long after they expire (default 1 s).
    pub ttl_sweep_interval: Duration,
    /// Whether reads hide items whose TTL has passed but that the sweep
    /// has not deleted yet (default false: returned, as DynamoDB does).
    pub ttl_hide_expired_items: bool,
    /// How often the background thread delivers object events, applies
    /// lifecycle rules and collects unreferenced chunks.
    pub object_schedule: crate::objects::ObjectSchedule,
}

/// DynamoDB's item collection size limit: 10 GB.
pub const ITEM_COLLECTION_SIZE_LIMIT: u64 = 10 * (1 << 30);

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            engine: EngineOptions::default(),
            clock: Arc::new(SystemClock),
            eventual_read_staleness: Duration::ZERO,
            item_collection_size_limit: ITEM_COLLECTION_SIZE_LIMIT,
            index_backfill_items_per_second: None,
            partitions: crate::kv::PartitionOptions::default(),
            stream_retention: crate::kv::DEFAULT_STREAM_RETENTION,
            ttl_sweep_interval: crate::kv::DEFAULT_TTL_SWEEP_INTERVAL,
            ttl_hide_expired_items: false,
            object_schedule: crate::objects::ObjectSchedule::default(),
        }
    }
}

impl DatabaseOptions {
    /// Sets when writes are acknowledged (default [`Durability::Sync`]).
    pub fn durability(mut self, durability: Durability) -> Self {
        self.engine.durability = durability;
        self
    }

    /// Sets the memtable size at which it is flushed (memory budget).
    pub fn memtable_bytes(mut self, bytes: usize) -> Self {
        self.engine.memtable_bytes_max = bytes;
        self
    }

    /// Sets the block cache size for `pread` reads (memory budget).
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.engine.block_cache_bytes = bytes;
        self
    }

    /// Sets the wall clock (tests pass a [`ManualClock`](crate::time::ManualClock)).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Lets eventually consistent reads be served from a snapshot at most
    /// `bound` old (by the database's clock).
    pub fn eventual_read_staleness(mut self, bound: Duration) -> Self {
        self.eventual_read_staleness = bound;
        self
    }

    /// Sets the item collection size limit (tests use kilobytes).
    pub fn item_collection_size_limit(mut self, bytes: u64) -> Self {
        self.item_collection_size_limit = bytes;
        self
    }

    /// Paces global index backfills to `items` per second.
    pub fn index_backfill_items_per_second(mut self, items: u64) -> Self {
        self.index_backfill_items_per_second = Some(items);
        self
    }

    /// Sets how many partitions a new table starts with (default 1).
    pub fn initial_partitions(mut self, count: u32) -> Self {
        self.partitions.initial_partitions = count.max(1);
        self
    }

    /// Sets the size above which a partition splits (default 10 GB; tests
    /// use kilobytes).
    pub fn partition_split_bytes(mut self, bytes: u64) -> Self {
        self.partitions.split_bytes = bytes;
        self
    }

    /// Sets when a partition splits for heat: a load above
    /// `units_per_second` (write units; reads count a third) sustained for
    /// `window`. `None` disables heat splits.
    pub fn partition_heat_split(mut self, units_per_second: Option<f64>, window: Duration) -> Self {
        self.partitions.heat_units_per_second = units_per_second;
        self.partitions.heat_window = window;
        self
    }

    /// Sets how long stream records are kept.
    pub fn stream_retention(mut self, retention: Duration) -> Self {
        self.stream_retention = retention;
        self
    }

    /// Sets how often the background TTL sweep runs.
    pub fn ttl_sweep_interval(mut self, interval: Duration) -> Self {
        self.ttl_sweep_interval = interval;
        self
    }

    /// Hides expired-but-unswept items from GetItem, BatchGetItem,
    /// TransactGetItems, Query and Scan (writes and conditions still see
    /// them until the sweep deletes them).
    pub fn ttl_hide_expired_items(mut self, hide: bool) -> Self {
        self.ttl_hide_expired_items = hide;
        self
    }

    /// Sets how often the background thread delivers object events,
    /// applies lifecycle rules and collects unreferenced chunks.
    pub fn object_schedule(mut self, schedule: crate::objects::ObjectSchedule) -> Self {
        self.object_schedule = schedule;
        self
    }

    /// Whether background threads flush, compact, sweep expired items,
    /// trim streams and run the object store's events, lifecycle and GC
    /// (default true; without them, tests trigger the work with
    /// `run_ttl_sweep_now`, `trim_streams_now`, `deliver_events`,
    /// `run_lifecycle` and `gc`).
    pub fn background_threads(mut self, on: bool) -> Self {
        self.engine.background_threads = on;
        self
    }
}

/// A nimbus database: tables, objects and caches over one directory.
/// Cheap to clone (an `Arc` inside); every clone is the same database.
///
/// ```
/// let db = nimbus::Database::memory().unwrap();
/// assert!(db.list_tables().send().unwrap().table_names.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) inner: Arc<DatabaseInner>,
}

/// What every clone of a [`Database`] shares.
#[derive(Debug)]
pub(crate) struct DatabaseInner {
    pub(crate) engine: Engine,
    #[allow(dead_code)]
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) path: PathBuf,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) eventual_read_staleness: Duration,
    pub(crate) item_collection_size_limit: u64,
    pub(crate) index_backfill_items_per_second: Option<u64>,
    pub(crate) partition_options: crate::kv::PartitionOptions,
    pub(crate) stream_retention: Duration,
    pub(crate) ttl_sweep_interval: Duration,
    pub(crate) ttl_hide_expired_items: bool,
    pub(crate) object_schedule: crate::objects::ObjectSchedule,
    pub(crate) kv: KvState,
    /// Every stream, by keyspace.
    pub(crate) streams: crate::kv::Streams,
    /// The TTL sweep and stream trimming thread.
    pub(crate) sweeper: crate::kv::Sweeper,
    /// The object store (`db.objects()`): pack files and catalogue state.
    pub(crate) objects: crate::objects::ObjectStore,
    /// Multi-active replication (`db.multi_active()`).
    pub(crate) multi_active: crate::replication::multi::MultiActiveState,
}

/// The engine options a database opens its engine with: the caller's, with
/// segments split at keyspace boundaries (every row key starts with its
/// keyspace id), so each table, index and stream compacts on its own.
pub(crate) fn engine_options(options: &DatabaseOptions) -> EngineOptions {
    EngineOptions {
        segment_split_prefix_bytes: std::mem::size_of::<crate::partition::KeyspaceId>(),
        ..options.engine.clone()
    }
}

impl Database {
    /// Opens (or creates) the database in `path` with default options
    /// (`Sync` durability).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, DatabaseOptions::default())
    }

    /// Opens (or creates) the database in `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: DatabaseOptions) -> Result<Self> {
        let fs: Arc<dyn FileSystem> =
            Arc::new(crate::storage::fs::OsFileSystem::new(options.engine.mmap));
        let engine = Engine::open(path.as_ref(), engine_options(&options))?;
        Self::assemble(engine, fs, path.as_ref(), options)
    }

    /// A database that lives only in memory (no files; for tests and
    /// scratch work). Everything is lost when the last clone is dropped.
    pub fn memory() -> Result<Self> {
        Self::memory_with(DatabaseOptions::default())
    }

    /// An in-memory database with `options` (their durability is ignored).
    pub fn memory_with(mut options: DatabaseOptions) -> Result<Self> {
        options.engine.durability = Durability::InMemory;
        let fs: Arc<dyn FileSystem> = Arc::new(SimFileSystem::new());
        let path = Path::new("/nimbus");
        let engine = Engine::open_with(Arc::clone(&fs), path, engine_options(&options))?;
        Self::assemble(engine, fs, path, options)
    }

    /// Opens the database in `path` on `fs` (a simulated disk in crash
    /// tests).
    #[doc(hidden)]
    pub fn open_on(
        fs: Arc<dyn FileSystem>,
        path: impl AsRef<Path>,
        options: DatabaseOptions,
    ) -> Result<Self> {
        let engine = Engine::open_with(Arc::clone(&fs), path.as_ref(), engine_options(&options))?;
        Self::assemble(engine, fs, path.as_ref(), options)
    }

    pub(crate) fn assemble(
        engine: Engine,
        fs: Arc<dyn FileSystem>,
        path: &Path,
        options: DatabaseOptions,
    ) -> Result<Self> {
        let kv = KvState::load(&engine)?;
        let now_millis = options.clock.since_epoch().as_millis() as u64;
        let streams = crate::kv::Streams::load(&engine, &kv, now_millis).map_err(|e| match e {
            crate::kv::Error::Storage(e) => e,
            other => {
                crate::storage::StorageError::corruption("stream catalogue", 0, other.to_string())
            }
        })?;
        let multi_active = crate::replication::multi::MultiActiveState::load(&engine)?;
        let background = options.engine.background_threads;
        let objects = crate::objects::ObjectStore::open(
            &engine,
            Arc::clone(&fs),
            path,
            Arc::clone(&options.clock),
            options.engine.durability,
        )?;
        let inner = Arc::new(DatabaseInner {
            engine,
            fs,
            path: path.to_path_buf(),
            clock: options.clock,
            eventual_read_staleness: options.eventual_read_staleness,
            item_collection_size_limit: options.item_collection_size_limit,
            index_backfill_items_per_second: options.index_backfill_items_per_second,
            partition_options: options.partitions,
            stream_retention: options.stream_retention,
            ttl_sweep_interval: options.ttl_sweep_interval,
            ttl_hide_expired_items: options.ttl_hide_expired_items,
            object_schedule: options.object_schedule,
            kv,
            streams,
            sweeper: crate::kv::Sweeper::default(),
            objects,
            multi_active,
        });
        crate::index::resume_backfills(&inner)?;
        if background {
            crate::kv::Sweeper::start(&inner);
        }
        Ok(Self { inner })
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The storage engine under every service (statistics, checkpoints,
    /// explicit flushes).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Makes every acknowledged write durable (fsyncs the log).
    pub fn sync(&self) -> Result<()> {
        self.inner.engine.sync()
    }

    /// Writes a consistent copy of the whole database — every table,
    /// index, stream and object — into the new directory `dir`, while
    /// writes continue; [`Database::open`] on `dir` opens it as it was at
    /// one instant. Immutable files (segments, object packs) are
    /// hard-linked, so it costs little space and time, which needs `dir` on
    /// the same file system. On-demand table backups live apart (see
    /// [`create_backup`](Database::create_backup)) and are not copied.
    ///
    /// An in-memory database has no directory to copy:
    /// [`StorageError::InvalidArgument`](crate::storage::StorageError::InvalidArgument).
    pub fn checkpoint(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        if self.inner.engine.durability() == Durability::InMemory {
            return Err(crate::storage::StorageError::InvalidArgument(
                "an in-memory database has no directory to checkpoint".to_string(),
            ));
        }
        self.inner
            .objects
            .checkpoint(dir, || self.inner.engine.checkpoint(dir))
    }

    /// Flushes, stops background work and closes the files. Later calls on
    /// any clone fail with `Closed`.
    pub fn close(&self) -> Result<()> {
        crate::replication::multi::stop_background(&self.inner);
        crate::kv::stop_background(&self.inner);
        self.inner.kv.save_on_close(&self.inner.engine)?;
        self.inner.engine.close()
    }
}

impl Drop for DatabaseInner {
    fn drop(&mut self) {
        self.sweeper.signal_stop();
        self.multi_active.runner.signal_stop();
        // Saves the tables' counts so the next open need not recount them.
        // An error here (a failed or closed engine) only costs that
        // recount, so it is not reported.
        let _ = self.kv.save_on_close(&self.engine);
    }
}
