//! A DAX-style accelerator: an in-process, write-through cache in front of
//! the kv tables of one [`Database`], with DynamoDB Accelerator's semantics.
//!
//! ```
//! use std::time::Duration;
//! use nimbus::cache::Accelerator;
//! use nimbus::{Database, ScalarType, item};
//!
//! let db = Database::memory()?;
//! db.create_table("Users").partition_key("Id", ScalarType::S).send()?;
//! let accelerator = Accelerator::builder(db.clone())
//!     .item_ttl(Duration::from_secs(300))
//!     .query_ttl(Duration::from_secs(60))
//!     .max_bytes(64 << 20)
//!     .build();
//! accelerator.put_item("Users").item(item! { "Id" => "u1", "Name" => "Ada" }).send()?;
//! // Write-through: this read is served from the item cache.
//! let found = accelerator.get_item("Users").key(item! { "Id" => "u1" }).send()?;
//! assert_eq!(found.item, Some(item! { "Id" => "u1", "Name" => "Ada" }));
//! assert_eq!(accelerator.stats().item_hits, 1);
//! # Ok::<(), nimbus::kv::Error>(())
//! ```
//!
//! # The two caches
//! - The **item cache** serves `get_item` and `batch_get_item` (a batch is
//!   one lookup per key). An entry is keyed by table and canonical key and
//!   holds the whole item, or its absence (negative caching); a projection
//!   is applied on the way out, so one entry serves every projection and a
//!   write-through refreshes them all at once (the issue keys the item
//!   cache by table + key; DAX's own key format is not documented).
//! - The **query cache** serves `query` and `scan`. An entry is keyed by
//!   the canonical full request — table, index, every expression, the
//!   expression attribute names and values, scan direction, limit,
//!   exclusive start key, select, parallel-scan segment — and holds one
//!   result page (an empty page too).
//!
//! Each has its own TTL ([`ITEM_TTL_DEFAULT`], [`QUERY_TTL_DEFAULT`]: five
//! minutes, DAX's `record-ttl-millis` and `query-ttl-millis`), counted from
//! when the entry was written (reads do not extend it), and its half of
//! the byte budget; eviction is the general [`Cache`]'s.
//!
//! # Consistency (DAX's rules)
//! - Eventually consistent reads are served from the caches; a miss reads
//!   the table (eventually consistent, as DAX does) and caches the result.
//!   Concurrent misses on one entry read the table once.
//! - `consistent_read(true)` and `transact_get_items` pass through to the
//!   table and are never cached.
//! - Writes through the accelerator (`put_item`, `update_item`,
//!   `delete_item`, `batch_write_item`) update the item cache only after
//!   the table committed: a put stores the item written, an update its
//!   `ALL_NEW` image (asked of the table whatever the caller asked for,
//!   and the caller still gets what it asked for), a delete a negative
//!   entry. A write the table refuses (a failed condition, a validation
//!   error, a cancelled transaction) leaves the cache exactly as it was; a
//!   write whose outcome is unknown (a storage error) evicts its items.
//!   Writes through one accelerator to one item are applied to the cache
//!   in commit order (a stripe lock spans commit and cache update, as the
//!   table's own item lock spans its commit).
//! - `transact_write_items` refreshes every written item after the commit
//!   with one `TransactGetItems` (DAX does this in the background; here it
//!   is done before returning, so a read right after sees the new state).
//! - Writes do **not** touch the query cache: a cached Query or Scan keeps
//!   returning its stale page until its TTL ends (DAX behaviour). With
//!   [`AcceleratorBuilder::invalidate_queries_on_write`], a write instead
//!   drops the cached Query pages of the written partition key and every
//!   cached Scan page, and Query page of a secondary index, of the table.
//! - Writes made directly to the [`Database`] (write-around) are not seen
//!   until the cached entries expire.
//!
//! # Copies
//! Outputs are the table's own types (`GetItemOutput`, `QueryOutput`, ...)
//! and own their items; an [`Item`] is copy-on-write, so a hit hands out
//! the cached item by reference count, and a caller that changes its copy
//! copies the attributes then, never touching the cached one.
//! [`GetItem::send_shared`] wraps it in an `Arc`. A hit
//! allocates nothing of its own: its cache key is written in a per-thread
//! buffer and looked up borrowed (see "Accelerator" in
//! `benches/README.md`).
//!
//! # Consumed capacity
//! A response served from a cache read nothing from the table: when the
//! caller asked for `ReturnConsumedCapacity`, it reports the table with 0
//! capacity units (a request that waited on another's in-flight miss
//! counts as served from the cache). A miss reports what the table read.
//! The refresh read after `transact_write_items` is not reported (DAX
//! charges it to the table, 2 read units per item, in the background).
//!
//! # Cache-aside
//! [`Accelerator::cache_aside`] starts a [`Cache`] for the application's
//! own derived data (lazy loading with `get_or_load`), on the
//! accelerator's clock and item TTL.

mod builder;
mod keys;
mod query;
mod reads;
mod request;
mod stats;
mod tags;
mod transact;
mod writes;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use xxhash_rust::xxh3::xxh3_64;

use super::{Cache, CacheBuilder, Clock};
use crate::Database;
use crate::kv::{Capacity, ConsumedCapacity, ReturnConsumedCapacity, expr::Projection};
use crate::value::{Item, item_size};

pub use builder::{AcceleratorBuilder, ITEM_TTL_DEFAULT, MAX_BYTES_DEFAULT, QUERY_TTL_DEFAULT};
pub use query::{Query, Scan};
pub use reads::{BatchGetItem, GetItem};
pub use stats::AcceleratorStats;
pub use transact::{
    ConditionCheck, TransactDelete, TransactGetItems, TransactPut, TransactUpdate,
    TransactWriteItem, TransactWriteItems,
};
pub use writes::{BatchWriteItem, DeleteItem, PutItem, UpdateItem};

use keys::ItemKey;
use stats::{Counter, Counters};
use tags::QueryTags;

/// What the item cache holds for a key: the item, or `None` when the table
/// has no item with that key (a negative entry). The `Item` itself, not an
/// `Arc` of it: an item is already a shared, copy-on-write map, and one
/// reference count to bump (one cache line) keeps a hit cheap.
type CachedItem = Option<Item>;

/// One cached Query or Scan page (its consumed capacity is not kept: a hit
/// consumes none).
#[derive(Debug)]
struct CachedPage {
    items: Vec<Item>,
    count: usize,
    scanned_count: usize,
    last_evaluated_key: Option<Item>,
}

/// Estimated heap bytes per top-level attribute of a cached item beyond its
/// DynamoDB size: the name's and value's headers and the map node's share.
const ATTRIBUTE_OVERHEAD_BYTES: u64 = 64;

/// The budget of parsed projections kept so a projected hit does not parse
/// its projection again (apart from the accelerator's `max_bytes`).
const PROJECTION_CACHE_BYTES: u64 = 1 << 20;

/// Stripes of the write locks that order cache updates like commits.
const WRITE_STRIPES: usize = 1024;

/// The estimated memory of a cached item (its weight in the byte budget).
fn item_weight(item: &Item) -> u64 {
    item_size(item) as u64 + ATTRIBUTE_OVERHEAD_BYTES * item.len() as u64
}

/// The clock the accelerator's caches share (a `Clock` trait object as a
/// `Clock`).
#[derive(Debug, Clone)]
struct SharedClock(Arc<dyn Clock>);

impl Clock for SharedClock {
    fn now(&self) -> Duration {
        self.0.now()
    }
}

/// A DAX-style accelerator over one [`Database`]'s tables. Cheap to clone
/// (an `Arc` inside); `Send + Sync`. See the [module documentation](self).
#[derive(Clone)]
pub struct Accelerator {
    shared: Arc<Shared>,
}

impl fmt::Debug for Accelerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accelerator")
            .field("items", &self.shared.items)
            .field("queries", &self.shared.queries)
            .field("item_ttl", &self.shared.item_ttl)
            .field("query_ttl", &self.shared.query_ttl)
            .field("invalidate_queries_on_write", &self.shared.tags.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything the request builders share.
struct Shared {
    db: Database,
    items: Cache<ItemKey, CachedItem>,
    queries: Cache<Arc<[u8]>, Arc<CachedPage>>,
    projections: Cache<Arc<[u8]>, Arc<Projection>>,
    /// Present in the opt-in mode that invalidates queries on writes.
    tags: Option<QueryTags>,
    write_stripes: Box<[Mutex<()>]>,
    counters: Counters,
    item_ttl: Duration,
    query_ttl: Duration,
    clock: SharedClock,
}

impl Accelerator {
    /// A builder with the defaults: 5-minute TTLs, [`MAX_BYTES_DEFAULT`],
    /// the system clock, DAX's query-cache staleness.
    pub fn builder(db: Database) -> AcceleratorBuilder {
        AcceleratorBuilder::new(db)
    }

    /// An accelerator with the defaults.
    pub fn new(db: Database) -> Self {
        Self::builder(db).build()
    }

    /// The database behind the accelerator (writes made on it directly are
    /// not seen until cached entries expire).
    pub fn database(&self) -> &Database {
        &self.shared.db
    }

    /// Starts a `GetItem` request (item cache). The table is any string
    /// (`&str`, `String`, ...); a name of up to 30 bytes is kept inside the
    /// request, so a cache hit allocates nothing for it.
    pub fn get_item(&self, table: impl AsRef<str>) -> GetItem {
        GetItem::new(self.clone(), table.as_ref())
    }

    /// Starts a `BatchGetItem` request (item cache, one lookup per key).
    pub fn batch_get_item(&self) -> BatchGetItem {
        BatchGetItem::new(self.clone())
    }

    /// Starts a `Query` request (query cache).
    pub fn query(&self, table: impl Into<String>) -> Query {
        Query::new(self.clone(), table.into())
    }

    /// Starts a `Scan` request (query cache).
    pub fn scan(&self, table: impl Into<String>) -> Scan {
        Scan::new(self.clone(), table.into())
    }

    /// Starts a write-through `PutItem` request.
    pub fn put_item(&self, table: impl Into<String>) -> PutItem {
        PutItem::new(self.clone(), table.into())
    }

    /// Starts a write-through `UpdateItem` request.
    pub fn update_item(&self, table: impl Into<String>) -> UpdateItem {
        UpdateItem::new(self.clone(), table.into())
    }

    /// Starts a write-through `DeleteItem` request.
    pub fn delete_item(&self, table: impl Into<String>) -> DeleteItem {
        DeleteItem::new(self.clone(), table.into())
    }

    /// Starts a write-through `BatchWriteItem` request.
    pub fn batch_write_item(&self) -> BatchWriteItem {
        BatchWriteItem::new(self.clone())
    }

    /// Starts a `TransactWriteItems` request that refreshes its items in
    /// the item cache after the commit.
    pub fn transact_write_items(&self) -> TransactWriteItems {
        TransactWriteItems::new(self.clone())
    }

    /// Starts a `TransactGetItems` request (passed through, never cached).
    pub fn transact_get_items(&self) -> TransactGetItems {
        TransactGetItems::new(self.clone())
    }

    /// A builder of a cache for the application's own data (cache-aside,
    /// lazy loading), preset with the accelerator's clock and item TTL;
    /// set its budget and weigher, then load through `get_or_load`:
    ///
    /// ```
    /// use nimbus::cache::Accelerator;
    /// use nimbus::{Database, ScalarType, item};
    ///
    /// #[derive(Clone, serde::Deserialize)]
    /// struct User { #[serde(rename = "Name")] name: String }
    ///
    /// let db = Database::memory()?;
    /// db.create_table("Users").partition_key("Id", ScalarType::S).send()?;
    /// db.put_item("Users").item(item! { "Id" => "u1", "Name" => "Ada" }).send()?;
    /// let accelerator = Accelerator::new(db);
    /// let users = accelerator.cache_aside::<String, User>().max_bytes(1 << 20).build();
    ///
    /// let load = |id: &String| -> Result<Option<User>, String> {
    ///     let found = accelerator.get_item("Users").key(item! { "Id" => id.as_str() }).send();
    ///     let item = found.map_err(|e| e.to_string())?.item;
    ///     item.map(|item| nimbus::value::from_item(item).map_err(|e| e.to_string()))
    ///         .transpose()
    /// };
    /// let ada = users.get_or_load_optional("u1".to_owned(), load)?;
    /// assert_eq!(ada.map(|u| u.name).as_deref(), Some("Ada"));
    /// // Absent users are cached as absences: the loader does not run again.
    /// assert!(users.get_or_load_optional("u9".to_owned(), load)?.is_none());
    /// assert!(users.get_or_load_optional("u9".to_owned(), |_| -> Result<_, String> {
    ///     unreachable!("cached absence")
    /// })?.is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cache_aside<K, V>(&self) -> CacheBuilder<K, V> {
        builder::expiring(CacheBuilder::default(), self.shared.item_ttl)
            .clock(self.shared.clock.clone())
    }

    /// A snapshot of the accelerator's statistics.
    pub fn stats(&self) -> AcceleratorStats {
        let counters = &self.shared.counters;
        AcceleratorStats {
            item_hits: counters.sum(Counter::ItemHit),
            item_misses: counters.sum(Counter::ItemMiss),
            query_hits: counters.sum(Counter::QueryHit),
            query_misses: counters.sum(Counter::QueryMiss),
            pass_through_reads: counters.sum(Counter::PassThrough),
            item_writes: counters.sum(Counter::ItemWrite),
            query_invalidations: counters.sum(Counter::QueryInvalidation),
            item_cache: self.shared.items.stats(),
            query_cache: self.shared.queries.stats(),
        }
    }

    /// Empties both caches (loads in flight do not cache their results).
    pub fn invalidate_all(&self) {
        self.shared.items.invalidate_all();
        self.shared.queries.invalidate_all();
        if let Some(tags) = &self.shared.tags {
            tags.clear();
        }
    }
}

impl Shared {
    /// Locks the write stripes of `keys` (item cache keys) in ascending
    /// order, so two writers never wait on each other in a cycle.
    fn lock_writes<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys
            .into_iter()
            .map(|key| (xxh3_64(key) % WRITE_STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|stripe| self.write_stripes[stripe].lock())
            .collect()
    }

    /// Stores what the table now holds for an item key. An entry the cache
    /// refuses (heavier than its maximum entry size) must not leave the
    /// older value behind, so it evicts the key instead.
    fn store_item(&self, key: Vec<u8>, value: CachedItem) {
        let key = ItemKey::from(&key[..]);
        self.counters.add(Counter::ItemWrite, 1);
        if self.items.insert(key.clone(), value).is_err() {
            self.items.remove(key.as_bytes());
        }
    }

    /// Evicts item keys whose state after a failed write is unknown.
    fn evict_items<'a>(&self, keys: impl IntoIterator<Item = &'a [u8]>) {
        for key in keys {
            self.items.remove(key);
        }
    }

    /// The consumed capacity a response served from a cache reports.
    fn no_capacity(
        &self,
        requested: ReturnConsumedCapacity,
        table: &str,
    ) -> Option<ConsumedCapacity> {
        (requested != ReturnConsumedCapacity::None).then(|| ConsumedCapacity {
            table_name: table.to_owned(),
            table: (requested == ReturnConsumedCapacity::Indexes).then(Capacity::default),
            ..ConsumedCapacity::default()
        })
    }
}

/// Whether a failed write may have committed anyway, leaving the cached
/// state of its items unknown. Refusals (conditions, validation, missing
/// tables, cancelled transactions, throttling) change nothing.
fn outcome_unknown(error: &crate::kv::Error) -> bool {
    matches!(error, crate::kv::Error::Storage(_))
}
