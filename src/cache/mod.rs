//! A concurrent, byte-bounded, general-purpose cache, [`Cache<K, V>`], and
//! the DAX-style [`Accelerator`] over kv tables built on it.
//!
//! ```
//! use std::time::Duration;
//! use nimbus::cache::{Cache, Policy};
//!
//! let cache: Cache<String, Vec<u8>> = Cache::builder()
//!     .max_bytes(64 << 20)
//!     .weigher(|key: &String, value: &Vec<u8>| (key.len() + value.len()) as u64)
//!     .ttl(Duration::from_secs(300))
//!     .policy(Policy::Adaptive)
//!     .build();
//! cache.insert("user#1".to_owned(), b"Ada".to_vec()).unwrap();
//! assert_eq!(cache.get("user#1").as_deref(), Some(&b"Ada"[..]));
//! let loaded = cache.get_or_load("user#2".to_owned(), |_key| Ok::<_, String>(b"Bob".to_vec()));
//! assert_eq!(loaded.unwrap(), b"Bob");
//! ```
//!
//! # Budget and entry size
//! Every entry is charged its weigher's figure plus [`ENTRY_OVERHEAD_BYTES`];
//! the charges of the resident entries never add up to more than
//! `max_bytes`, at any instant. The budget is global across shards, so an
//! entry up to the maximum entry size (by default the whole budget, see
//! [`CacheBuilder::max_entry_bytes`]) is always accepted, evicting others;
//! a heavier one is refused with [`CacheError::EntryTooLarge`] and changes
//! nothing. A cached absence is charged `size_of::<K>()` plus the overhead.
//!
//! # Expiry
//! Expire-after-write, per cache ([`CacheBuilder::ttl`]), per entry
//! ([`Cache::insert_with_ttl`]) and for cached absences
//! ([`CacheBuilder::negative_ttl`]), optionally spread by ±jitter. Time
//! comes from an injectable [`Clock`]. An expired entry is a miss at once;
//! its memory is reclaimed when eviction meets it, when its key is written,
//! or by [`Cache::purge_expired`].
//!
//! # Policy
//! [`Policy::Adaptive`] (default) is S3-FIFO crossed with W-TinyLFU: a
//! probation FIFO, a main CLOCK queue, a ghost queue of recently dropped
//! hashes, a count-min frequency sketch that decides admission to the main
//! queue, a probation share tuned by hill climbing on the hit ratio, and
//! two miniature caches run on a 1/64 sample of the lookups that choose
//! whether a ghost hit must win that admission duel (it must on loops;
//! on recency-heavy traces it should not). A
//! hit takes its shard's read lock and bumps a 4-bit counter in the entry:
//! no global lock, no list write, no shared counter (statistics are
//! striped per thread). [`Policy::Lru`] keeps exact LRU order (one shard, a
//! hit takes its write lock). Measured against moka and quick_cache in
//! `benches/peers` (`cache` binary); figures in `benches/README.md`.
//!
//! # Loading
//! [`Cache::get_or_load`] and [`Cache::get_or_load_optional`] run one
//! loader per key however many callers miss at once; errors reach every
//! waiter and are not cached; `Ok(None)` of an optional loader is cached as
//! a negative entry. Writes to a key while it loads win over the load.
//!
//! The hand-written concurrency (budget reservation with cross-shard
//! eviction, entry hits under read locks, single-flight) is model-checked
//! with loom: `RUSTFLAGS="--cfg loom" cargo test --release --lib cache::`.

pub mod accelerator;
mod builder;
mod climber;
mod clock;
mod error;
mod flight;
mod ghost;
mod load;
mod shadow;
mod shard;
mod sharded;
mod sketch;
mod stats;

pub use accelerator::{Accelerator, AcceleratorBuilder, AcceleratorStats};
pub use builder::{
    CacheBuilder, ENTRY_OVERHEAD_BYTES, MAX_BYTES_DEFAULT, Policy, SHARD_BYTES_MIN, Weigher,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::CacheError;
pub use sharded::{Cache, Lookup};
pub use stats::CacheStats;

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
