//! The cache's error type.

/// What the cache can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The entry weighs more than the cache's maximum entry size (see
    /// [`CacheBuilder::max_entry_bytes`](super::CacheBuilder::max_entry_bytes));
    /// the cache is unchanged, and an older entry under the same key is
    /// left in place.
    #[error(
        "cache entry of {weight_bytes} bytes exceeds the maximum entry size of {max_entry_bytes} bytes"
    )]
    EntryTooLarge {
        /// The entry's weight, per-entry overhead included.
        weight_bytes: u64,
        /// The largest weight the cache accepts.
        max_entry_bytes: u64,
    },
}
