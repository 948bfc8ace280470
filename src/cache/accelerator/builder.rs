//! The accelerator's configuration: [`AcceleratorBuilder`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::super::{Cache, CacheBuilder, Clock, SystemClock};
use super::keys::ItemKey;
use super::stats::Counters;
use super::tags::QueryTags;
use super::{
    Accelerator, CachedItem, CachedPage, PROJECTION_CACHE_BYTES, Shared, SharedClock,
    WRITE_STRIPES, item_weight,
};
use crate::Database;

/// How long an item-cache entry lives after it was written: DAX's default
/// `record-ttl-millis` (300,000 ms).
pub const ITEM_TTL_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// How long a query-cache entry lives after it was written: DAX's default
/// `query-ttl-millis` (300,000 ms).
pub const QUERY_TTL_DEFAULT: Duration = Duration::from_secs(5 * 60);

/// The default byte budget of both caches together (64 MiB).
pub const MAX_BYTES_DEFAULT: u64 = 64 << 20;

/// Builds an [`Accelerator`]: `Accelerator::builder(db).item_ttl(..)
/// .query_ttl(..).max_bytes(..).clock(..).invalidate_queries_on_write(..)
/// .build()`.
pub struct AcceleratorBuilder {
    db: Database,
    item_ttl: Duration,
    query_ttl: Duration,
    max_bytes: u64,
    clock: Arc<dyn Clock>,
    invalidate_queries_on_write: bool,
}

impl fmt::Debug for AcceleratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcceleratorBuilder")
            .field("item_ttl", &self.item_ttl)
            .field("query_ttl", &self.query_ttl)
            .field("max_bytes", &self.max_bytes)
            .field("clock", &self.clock)
            .field(
                "invalidate_queries_on_write",
                &self.invalidate_queries_on_write,
            )
            .finish_non_exhaustive()
    }
}

impl AcceleratorBuilder {
    pub(super) fn new(db: Database) -> Self {
        Self {
            db,
            item_ttl: ITEM_TTL_DEFAULT,
            query_ttl: QUERY_TTL_DEFAULT,
            max_bytes: MAX_BYTES_DEFAULT,
            clock: Arc::new(SystemClock::new()),
            invalidate_queries_on_write: false,
        }
    }

    /// How long an item-cache entry (an item or a cached absence) lives
    /// after it was written (default [`ITEM_TTL_DEFAULT`]). Zero, as DAX's
    /// `record-ttl-millis` 0, means entries do not expire: they leave
    /// when evicted or replaced by a write through the accelerator.
    pub fn item_ttl(mut self, ttl: Duration) -> Self {
        self.item_ttl = ttl;
        self
    }

    /// How long a query-cache entry lives after it was written (default
    /// [`QUERY_TTL_DEFAULT`]). Zero, as DAX's `query-ttl-millis` 0, means
    /// pages do not expire: they leave only when evicted.
    pub fn query_ttl(mut self, ttl: Duration) -> Self {
        self.query_ttl = ttl;
        self
    }

    /// The byte budget, split evenly between the item and the query cache
    /// (default [`MAX_BYTES_DEFAULT`]). Entries are charged an estimate of
    /// their memory: key bytes, DynamoDB item sizes, and per-attribute and
    /// per-entry overheads.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The time source of both TTLs (default: the system's monotonic
    /// clock); tests pass a [`ManualClock`](super::super::ManualClock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Opt-in: a write through the accelerator also drops the cached Query
    /// pages of the written item's partition key and every cached Scan page
    /// and secondary-index Query page of its table. Default `false`, DAX's behaviour: writes never touch
    /// the query cache, whose pages stay stale until their TTL ends.
    pub fn invalidate_queries_on_write(mut self, invalidate: bool) -> Self {
        self.invalidate_queries_on_write = invalidate;
        self
    }

    /// Builds the accelerator.
    pub fn build(self) -> Accelerator {
        let clock = SharedClock(self.clock);
        let half = self.max_bytes / 2;
        let items = expiring(Cache::builder(), self.item_ttl)
            .max_bytes(half)
            .weigher(|key: &ItemKey, value: &CachedItem| {
                key.as_bytes().len() as u64 + value.as_ref().map_or(0, item_weight)
            })
            .clock(clock.clone())
            .build();
        let queries = expiring(Cache::builder(), self.query_ttl)
            .max_bytes(self.max_bytes - half)
            .weigher(|key: &Arc<[u8]>, page: &Arc<CachedPage>| {
                let items: u64 = page.items.iter().map(item_weight).sum();
                key.len() as u64 + items + page.last_evaluated_key.as_ref().map_or(0, item_weight)
            })
            .clock(clock.clone())
            .build();
        let projections = Cache::builder()
            .max_bytes(PROJECTION_CACHE_BYTES)
            .weigher(|key: &Arc<[u8]>, _| 2 * key.len() as u64)
            .build();
        Accelerator {
            shared: Arc::new(Shared {
                db: self.db,
                items,
                queries,
                projections,
                tags: self.invalidate_queries_on_write.then(QueryTags::default),
                write_stripes: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
                counters: Counters::default(),
                item_ttl: self.item_ttl,
                query_ttl: self.query_ttl,
                clock,
            }),
        }
    }
}

/// `builder` with entries expiring `ttl` after their write; a zero `ttl`
/// (DAX's 0) leaves them without expiry.
pub(super) fn expiring<K, V>(builder: CacheBuilder<K, V>, ttl: Duration) -> CacheBuilder<K, V> {
    if ttl.is_zero() {
        builder
    } else {
        builder.ttl(ttl)
    }
}
