//! The object store's shared state ([`ObjectStore`]): the engine it keeps
//! its catalogue in, the pack files, the locks that make conditional
//! writes atomic, the chunker and the store-wide options.
//!
//! Locking (no lock is taken while holding a later one in this list):
//! 1. `gate` — read by every object operation for its whole duration;
//!    written by bucket deletion, versioning changes and the GC sweep, so
//!    those never interleave with a write in flight (a chunk found by a
//!    dedup check cannot be freed before the write referencing it commits).
//! 2. one of `key_locks` — held from reading a key's versions to
//!    committing the batch that changes them, so a condition checked is a
//!    condition that holds at commit (of N racing `if_none_match("*")`
//!    creators exactly one wins).
//! 3. pack and reader locks, inside the pack set, for single appends.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, MutexGuard, RwLock};

use super::chunker::Chunker;
use super::codec::{Reader, Writer};
use super::error::{Error, Result};
use super::events::EventHub;
use super::keys;
use super::limits::{
    CHUNK_BYTES_AVG_DEFAULT, CHUNK_BYTES_LIMIT_MAX, CHUNK_BYTES_LIMIT_MIN, CHUNK_BYTES_MAX_DEFAULT,
    CHUNK_BYTES_MIN_DEFAULT, GC_GRACE_SECONDS_DEFAULT, INLINE_BYTES_LIMIT,
    INLINE_BYTES_MAX_DEFAULT, MIN_PART_BYTES_DEFAULT,
};
use super::pack::PackSet;
use super::record::BucketRecord;
use crate::storage::fs::FileSystem;
use crate::storage::{Direction, Durability, Engine, StorageError, WriteBatch};
use crate::time::Clock;

/// How many stripes the per-key locks are spread over.
const KEY_LOCK_STRIPES: usize = 1024;

/// The directory of pack files inside the database directory.
pub(crate) const OBJECTS_DIR: &str = "objects";

/// Store-wide settings, kept in the catalogue (they survive reopening).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStoreOptions {
    /// Bodies up to this many bytes are stored inline in their catalogue
    /// row; default [`INLINE_BYTES_MAX_DEFAULT`], at most
    /// [`INLINE_BYTES_LIMIT`].
    pub inline_bytes_max: usize,
    /// The content-defined chunker's minimum chunk size.
    pub chunk_bytes_min: usize,
    /// The chunker's average chunk size (a power of two works best).
    pub chunk_bytes_avg: usize,
    /// The chunker's maximum chunk size.
    pub chunk_bytes_max: usize,
    /// The minimum size of every multipart part but the last (S3: 5 MiB;
    /// tests lower it).
    pub min_part_bytes: u64,
    /// How long an unreferenced chunk is kept before `gc()` frees it.
    pub gc_grace: Duration,
}

impl Default for ObjectStoreOptions {
    fn default() -> Self {
        Self {
            inline_bytes_max: INLINE_BYTES_MAX_DEFAULT,
            chunk_bytes_min: CHUNK_BYTES_MIN_DEFAULT,
            chunk_bytes_avg: CHUNK_BYTES_AVG_DEFAULT,
            chunk_bytes_max: CHUNK_BYTES_MAX_DEFAULT,
            min_part_bytes: MIN_PART_BYTES_DEFAULT,
            gc_grace: Duration::from_secs(GC_GRACE_SECONDS_DEFAULT),
        }
    }
}

impl ObjectStoreOptions {
    fn validate(&self) -> Result<()> {
        let (min, avg, max) = (
            self.chunk_bytes_min,
            self.chunk_bytes_avg,
            self.chunk_bytes_max,
        );
        if !(CHUNK_BYTES_LIMIT_MIN <= min
            && min <= avg
            && avg <= max
            && max <= CHUNK_BYTES_LIMIT_MAX)
        {
            return Err(Error::InvalidArgument(format!(
                "chunk sizes must satisfy {CHUNK_BYTES_LIMIT_MIN} <= min <= avg <= max <= \
                 {CHUNK_BYTES_LIMIT_MAX}, not {min}/{avg}/{max}"
            )));
        }
        if self.inline_bytes_max > INLINE_BYTES_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "the inline threshold is at most {INLINE_BYTES_LIMIT} bytes"
            )));
        }
        if self.min_part_bytes == 0 {
            return Err(Error::InvalidArgument(
                "the minimum part size must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The persistent store configuration: the chunker's secret seed and the
/// options.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreConfig {
    seed: [u8; 32],
    next_bucket_id: u64,
    options: ObjectStoreOptions,
}

impl StoreConfig {
    fn encode(&self) -> Vec<u8> {
        let o = &self.options;
        let mut w = Writer::with_capacity(80);
        w.u8(1)
            .raw(&self.seed)
            .varint(self.next_bucket_id)
            .varint(o.inline_bytes_max as u64)
            .varint(o.chunk_bytes_min as u64)
            .varint(o.chunk_bytes_avg as u64)
            .varint(o.chunk_bytes_max as u64)
            .varint(o.min_part_bytes)
            .varint(o.gc_grace.as_secs());
        w.finish()
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "store config");
        if r.u8()? != 1 {
            return Err(Error::corrupt_row("store config: unknown format"));
        }
        let seed = r.array::<32>()?;
        let next_bucket_id = r.varint()?;
        let options = ObjectStoreOptions {
            inline_bytes_max: r.len(INLINE_BYTES_LIMIT)?,
            chunk_bytes_min: r.len(CHUNK_BYTES_LIMIT_MAX)?,
            chunk_bytes_avg: r.len(CHUNK_BYTES_LIMIT_MAX)?,
            chunk_bytes_max: r.len(CHUNK_BYTES_LIMIT_MAX)?,
            min_part_bytes: r.varint()?,
            gc_grace: Duration::from_secs(r.varint()?),
        };
        r.finish()?;
        options
            .validate()
            .map_err(|_| Error::corrupt_row("store config: invalid options"))?;
        Ok(Self {
            seed,
            next_bucket_id,
            options,
        })
    }
}

/// Unique ids (version ids, upload ids, body ids): a keyed BLAKE3 of a
/// counter, keyed by a per-process random key, so ids never repeat and
/// reveal nothing.
#[derive(Debug)]
struct IdSource {
    key: [u8; 32],
    counter: AtomicU64,
}

impl IdSource {
    fn new() -> Self {
        let mut material = Vec::new();
        for salt in 0..4u64 {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(salt);
            material.extend_from_slice(&hasher.finish().to_le_bytes());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        material.extend_from_slice(&now.to_le_bytes());
        material.extend_from_slice(&std::process::id().to_le_bytes());
        Self {
            key: blake3::derive_key("nimbus objects id source v1", &material),
            counter: AtomicU64::new(0),
        }
    }

    fn next(&self) -> [u8; 32] {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        *blake3::keyed_hash(&self.key, &n.to_le_bytes()).as_bytes()
    }
}

/// The object store of one database. Users reach it through
/// [`Database::objects`](crate::Database::objects).
#[derive(Debug, Clone)]
pub struct ObjectStore {
    pub(crate) inner: Arc<StoreInner>,
}

/// Everything the store's operations share.
#[derive(Debug)]
pub(crate) struct StoreInner {
    pub(crate) engine: Engine,
    pub(crate) packs: PackSet,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) gate: RwLock<()>,
    key_locks: Box<[Mutex<()>]>,
    ids: IdSource,
    config: RwLock<StoreConfig>,
    chunker: RwLock<Arc<Chunker>>,
    /// Every bucket by name: loaded at open, changed only by the bucket
    /// operations right after their commit (they hold the gate for
    /// writing), so object operations never read bucket rows.
    buckets: RwLock<HashMap<String, BucketRecord>>,
    pub(crate) events: EventHub,
}

impl ObjectStore {
    /// Opens the store of the database in `path` (pack files under
    /// `path/objects/`), creating its configuration on first use.
    pub(crate) fn open(
        engine: &Engine,
        fs: Arc<dyn FileSystem>,
        path: &Path,
        clock: Arc<dyn Clock>,
        durability: Durability,
    ) -> crate::storage::Result<Self> {
        Self::open_inner(engine, fs, path, clock, durability).map_err(into_storage_error)
    }

    fn open_inner(
        engine: &Engine,
        fs: Arc<dyn FileSystem>,
        path: &Path,
        clock: Arc<dyn Clock>,
        durability: Durability,
    ) -> Result<Self> {
        let packs = PackSet::open(
            fs,
            &path.join(OBJECTS_DIR),
            durability != Durability::InMemory,
        )?;
        let ids = IdSource::new();
        let config = match engine.get(&keys::config())? {
            Some(bytes) => StoreConfig::decode(&bytes)?,
            None => {
                let config = StoreConfig {
                    seed: ids.next(),
                    next_bucket_id: 1,
                    options: ObjectStoreOptions::default(),
                };
                // A read replica writes nothing: its primary's config
                // arrives through the replicated log.
                if !engine.is_read_only() {
                    engine.put(&keys::config(), &config.encode())?;
                }
                config
            }
        };
        let chunker = Arc::new(chunker_for(&config));
        let events = EventHub::open(engine)?;
        let buckets = load_buckets(engine)?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                engine: engine.clone(),
                packs,
                clock,
                gate: RwLock::new(()),
                key_locks: (0..KEY_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                ids,
                config: RwLock::new(config),
                chunker: RwLock::new(chunker),
                buckets: RwLock::new(buckets),
                events,
            }),
        })
    }
}

impl ObjectStore {
    /// Reads the store's in-memory catalogue state (configuration and
    /// chunker, buckets, subscriptions) again from the engine: on a
    /// replica, after replicated batches changed those rows.
    pub(crate) fn reload(&self) -> Result<()> {
        let inner = &self.inner;
        let _gate = inner.gate.write();
        if let Some(bytes) = inner.engine.get(&keys::config())? {
            let config = StoreConfig::decode(&bytes)?;
            *inner.chunker.write() = Arc::new(chunker_for(&config));
            *inner.config.write() = config;
        }
        *inner.buckets.write() = load_buckets(&inner.engine)?;
        inner.events.reload(&inner.engine)
    }

    /// Adds the store to a whole-database checkpoint in `target`:
    /// `engine_checkpoint` copies the catalogue (object rows and chunk
    /// locations), then every pack is hard-linked under
    /// `target/objects/`. The gate is held for reading throughout, so no
    /// GC rewrite moves a chunk between the two steps; a put racing the
    /// checkpoint either committed its row before the engine copy (and its
    /// chunks, synced before the row, are in the linked packs) or is not in
    /// the checkpoint at all.
    pub(crate) fn checkpoint(
        &self,
        target: &Path,
        engine_checkpoint: impl FnOnce() -> crate::storage::Result<()>,
    ) -> crate::storage::Result<()> {
        let _gate = self.inner.gate.read();
        engine_checkpoint()?;
        self.inner
            .packs
            .link_into(&target.join(OBJECTS_DIR))
            .map_err(into_storage_error)
    }

    /// [`checkpoint`](Self::checkpoint) for a caller that must never wait
    /// for the gate: `Ok(false)`, with nothing written, when a writer
    /// holds it or waits for it. A replication source takes its snapshots
    /// on the thread that delivers acknowledgements (or, in process, on a
    /// committing thread), and a GC sweep or bucket change holds the gate
    /// for writing while its commit waits for exactly such an
    /// acknowledgement; waiting here would stall both until the commit
    /// timed out.
    pub(crate) fn try_checkpoint(
        &self,
        target: &Path,
        engine_checkpoint: impl FnOnce() -> crate::storage::Result<()>,
    ) -> crate::storage::Result<bool> {
        let Some(_gate) = self.inner.gate.try_read() else {
            return Ok(false);
        };
        engine_checkpoint()?;
        self.inner
            .packs
            .link_into(&target.join(OBJECTS_DIR))
            .map_err(into_storage_error)?;
        Ok(true)
    }
}

/// Every bucket record, by name.
fn load_buckets(engine: &Engine) -> Result<HashMap<String, BucketRecord>> {
    let mut buckets = HashMap::new();
    for row in engine.prefix(
        &keys::tag_prefix(keys::TAG_BUCKET),
        Direction::Forward,
        None,
    )? {
        let (key, value) = row?;
        buckets.insert(keys::parse_bucket(&key)?, BucketRecord::decode(&value)?);
    }
    Ok(buckets)
}

fn chunker_for(config: &StoreConfig) -> Chunker {
    let o = &config.options;
    Chunker::new(
        &config.seed,
        o.chunk_bytes_min,
        o.chunk_bytes_avg,
        o.chunk_bytes_max,
    )
}

/// The engine error an object-store error is reported as where storage
/// errors are expected (`Database::open`, replication's apply).
pub(crate) fn into_storage_error(error: Error) -> StorageError {
    match error {
        Error::Storage(error) => error,
        Error::Corruption {
            file,
            offset,
            reason,
        } => StorageError::corruption(file, offset, reason),
        other => StorageError::InvalidArgument(other.to_string()),
    }
}

impl StoreInner {
    /// The current time in nanoseconds since the epoch.
    pub(crate) fn now_nanos(&self) -> u64 {
        u64::try_from(self.clock.since_epoch().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A fresh 16-byte id.
    pub(crate) fn new_id16(&self) -> [u8; 16] {
        let mut id = [0u8; 16];
        id.copy_from_slice(&self.ids.next()[..16]);
        id
    }

    /// A fresh 8-byte id (the random half of a version id).
    pub(crate) fn new_id8(&self) -> [u8; 8] {
        let mut id = [0u8; 8];
        id.copy_from_slice(&self.ids.next()[..8]);
        id
    }

    pub(crate) fn options(&self) -> ObjectStoreOptions {
        self.config.read().options.clone()
    }

    pub(crate) fn chunker(&self) -> Arc<Chunker> {
        Arc::clone(&self.chunker.read())
    }

    /// Replaces the store options (persisted).
    pub(crate) fn set_options(&self, options: ObjectStoreOptions) -> Result<()> {
        options.validate()?;
        let mut config = self.config.write();
        let mut next = config.clone();
        next.options = options;
        self.engine.put(&keys::config(), &next.encode())?;
        *self.chunker.write() = Arc::new(chunker_for(&next));
        *config = next;
        Ok(())
    }

    /// Allocates a bucket id, adding the config update to `batch` (the
    /// caller holds the gate for writing, so ids cannot race).
    pub(crate) fn allocate_bucket_id(&self, batch: &mut WriteBatch) -> (u64, impl FnOnce() + '_) {
        let mut next = self.config.read().clone();
        let id = next.next_bucket_id;
        next.next_bucket_id += 1;
        batch.put(&keys::config(), &next.encode());
        let commit = move || *self.config.write() = next;
        (id, commit)
    }

    /// Locks the stripe of `(bucket id, key)`.
    pub(crate) fn lock_key(&self, bucket_id: u64, key: &str) -> MutexGuard<'_, ()> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&bucket_id.to_le_bytes());
        hasher.update(key.as_bytes());
        let stripe = (hasher.digest() % KEY_LOCK_STRIPES as u64) as usize;
        self.key_locks[stripe].lock()
    }

    /// The bucket named `name`, or `NoSuchBucket`.
    pub(crate) fn bucket(&self, name: &str) -> Result<BucketRecord> {
        self.find_bucket(name)?
            .ok_or_else(|| Error::no_such_bucket(name))
    }

    pub(crate) fn find_bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        Ok(self.buckets.read().get(name).cloned())
    }

    /// Every bucket, by name.
    pub(crate) fn all_buckets(&self) -> Vec<(String, BucketRecord)> {
        let mut all: Vec<_> = self
            .buckets
            .read()
            .iter()
            .map(|(name, record)| (name.clone(), record.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Records a committed bucket change (`None`: deleted). The caller
    /// holds the gate for writing.
    pub(crate) fn bucket_changed(&self, name: &str, record: Option<BucketRecord>) {
        let mut buckets = self.buckets.write();
        match record {
            Some(record) => buckets.insert(name.to_owned(), record),
            None => buckets.remove(name),
        };
    }
}

/// Nanoseconds since the epoch as a `SystemTime`.
pub(crate) fn system_time(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

/// A `SystemTime` as nanoseconds since the epoch (clamped).
pub(crate) fn nanos_of(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_bad_options() {
        let config = StoreConfig {
            seed: [5; 32],
            next_bucket_id: 9,
            options: ObjectStoreOptions::default(),
        };
        assert_eq!(StoreConfig::decode(&config.encode()).unwrap(), config);
        let bad = ObjectStoreOptions {
            chunk_bytes_min: 10,
            ..ObjectStoreOptions::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids = IdSource::new();
        let a = ids.next();
        let b = ids.next();
        assert_ne!(a, b);
        assert_ne!(IdSource::new().next(), a);
    }
}
