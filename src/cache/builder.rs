//! The cache's configuration: [`CacheBuilder`] and [`Policy`].

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::Cache;
use super::clock::{Clock, SystemClock};

/// The default byte budget (64 MiB).
pub const MAX_BYTES_DEFAULT: u64 = 64 << 20;

/// Charged per entry on top of the weigher's figure: the slab slot (hash,
/// weight, deadline, queue links, hit counter), the index slot and their
/// share of free space at the tables' load factors. The entry a hit reads
/// (key, value, hit counter) is padded to a multiple of 32 bytes, so that
/// it never straddles two cache lines. The real figure beyond the key and
/// value is 45 to about 90 bytes depending on that padding: 54 for `u64`
/// keys and values, over 64 when the key and value end just past a
/// multiple of 32 bytes (a weigher can charge the padding for such types).
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// The default cache is cut into shards of at least this many bytes, so a
/// small cache keeps one policy over all its entries (its hit ratio) and a
/// large one spreads its lock traffic.
pub const SHARD_BYTES_MIN: u64 = 64 << 10;

/// Shards per available core in the default configuration.
const SHARDS_PER_CORE: usize = 4;

/// How the cache chooses what to evict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// The default: a probation FIFO and a main CLOCK queue with a ghost
    /// queue, TinyLFU admission through a frequency sketch, and a probation
    /// share adapted by hill climbing (S3-FIFO crossed with W-TinyLFU). It
    /// resists scans and loops and follows recency-heavy workloads. A hit
    /// takes a shard's read lock and bumps a counter in the entry.
    #[default]
    Adaptive,
    /// Exact least-recently-used order over the whole cache. That order is
    /// one list, so the cache has a single shard and a hit takes its write
    /// lock: choose it only when LRU's exact semantics matter.
    Lru,
}

/// Weighs an entry in bytes (key and value; the cache adds
/// [`ENTRY_OVERHEAD_BYTES`]).
pub type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// Builds a [`Cache`]: `Cache::builder().max_bytes(..).weigher(..).ttl(..).policy(..).build()`.
pub struct CacheBuilder<K, V> {
    pub(crate) max_bytes: u64,
    pub(crate) max_entry_bytes: Option<u64>,
    pub(crate) weigher: Weigher<K, V>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) negative_ttl: Option<Duration>,
    pub(crate) ttl_jitter: Duration,
    pub(crate) policy: Policy,
    pub(crate) shards: Option<usize>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl<K, V> fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_bytes", &self.max_bytes)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .field("ttl", &self.ttl)
            .field("negative_ttl", &self.negative_ttl)
            .field("ttl_jitter", &self.ttl_jitter)
            .field("policy", &self.policy)
            .field("shards", &self.shards)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        Self {
            max_bytes: MAX_BYTES_DEFAULT,
            max_entry_bytes: None,
            weigher: Arc::new(|_: &K, _: &V| (size_of::<K>() + size_of::<V>()) as u64),
            ttl: None,
            negative_ttl: None,
            ttl_jitter: Duration::ZERO,
            policy: Policy::default(),
            shards: None,
            clock: Arc::new(SystemClock::new()),
        }
    }
}

impl<K, V> CacheBuilder<K, V> {
    /// The byte budget: the weights of the resident entries (plus
    /// [`ENTRY_OVERHEAD_BYTES`] each) never add up to more.
    pub fn max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The largest entry (weight plus overhead) the cache accepts; inserting
    /// a heavier one returns [`CacheError::EntryTooLarge`](super::CacheError).
    /// Defaults to, and is capped at, the whole budget: an entry that fits
    /// the budget is accepted (evicting others as needed).
    pub fn max_entry_bytes(mut self, max_entry_bytes: u64) -> Self {
        self.max_entry_bytes = Some(max_entry_bytes);
        self
    }

    /// How many bytes a key and value take. The default charges their
    /// inline sizes (`size_of::<K>() + size_of::<V>()`), which undercounts
    /// heap data such as a `String`'s bytes.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u64 + Send + Sync + 'static) -> Self {
        self.weigher = Arc::new(weigher);
        self
    }

    /// Expire-after-write: entries expire this long after they were
    /// written (reads do not extend it). Default: never.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// How long a cached absence lives (from `insert_absent` or a loader's
    /// `None`). Default: the cache's TTL.
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Spreads each entry's TTL uniformly over `ttl ± jitter`, so entries
    /// written together do not all expire (and reload) together.
    pub fn ttl_jitter(mut self, jitter: Duration) -> Self {
        self.ttl_jitter = jitter;
        self
    }

    /// The eviction policy (default [`Policy::Adaptive`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The number of shards, rounded up to a power of two. Default: four per
    /// core, fewer for small budgets (at least [`SHARD_BYTES_MIN`] each);
    /// always 1 with [`Policy::Lru`].
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The time source of TTLs (default [`SystemClock`]); tests pass a
    /// [`ManualClock`](super::ManualClock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The shard count this configuration gets.
    pub(crate) fn shard_count(&self) -> usize {
        if self.policy == Policy::Lru {
            return 1;
        }
        let count = self.shards.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().map_or(1, usize::from);
            let by_bytes = usize::try_from(self.max_bytes / SHARD_BYTES_MIN).unwrap_or(usize::MAX);
            (cores * SHARDS_PER_CORE).min(by_bytes)
        });
        count.clamp(1, 1 << 16).next_power_of_two()
    }

    /// Builds the cache.
    pub fn build(self) -> Cache<K, V>
    where
        K: Hash + Eq + Clone + Send + Sync,
        V: Clone + Send + Sync,
    {
        Cache::from_builder(self)
    }
}
