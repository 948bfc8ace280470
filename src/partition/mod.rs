//! Consistent-hash partitions: key -> token -> partition, splits, and the
//! ring that places token ranges on nodes.
//!
//! This file fixes the engine key layout every service stores under
//! (ARCHITECTURE.md, "Keys and partitions"):
//!
//! ```text
//! keyspace id (u32 BE) | token (u64 BE) | encoded partition key | encoded sort key
//! ```
//!
//! Keyspace ids are allocated once and never reused, so a dropped table's
//! leftover rows can never be read as another table's. The fixed ids below
//! 16 belong to system keyspaces; tables and indexes get ids from
//! `FIRST_ALLOCATED_KEYSPACE` up.
//!
//! - [`ring`] (public): placement of token ranges on many nodes.
//! - `map`: a table's partitions — token ranges with counts, heat and
//!   throughput buckets — and how one splits (the kv layer persists it and
//!   decides when, in `kv::partitions`).
//! - `bucket`: the token bucket of provisioned throughput.

// Used by kv and objects as they land.
#![allow(dead_code)]

pub(crate) mod bucket;
mod counts;
pub(crate) mod map;
pub mod ring;

pub use ring::{Node, RangeMove, Ring, RingBuilder, RingError, TokenRange};

pub(crate) use counts::Counts;
use xxhash_rust::xxh3::xxh3_64;

/// A keyspace id: the first four bytes of every engine key.
pub(crate) type KeyspaceId = u32;

/// The catalogue: table definitions, the keyspace allocator, and other
/// database-wide metadata of the kv layer.
pub(crate) const CATALOGUE_KEYSPACE: KeyspaceId = 0;

/// The object store's catalogue (buckets, versions, uploads, chunk
/// reference counts, outbox).
pub(crate) const OBJECTS_KEYSPACE: KeyspaceId = 1;

/// Transaction bookkeeping of the kv layer (idempotency tokens).
pub(crate) const TRANSACTIONS_KEYSPACE: KeyspaceId = 2;

/// Multi-active replication's hidden rows: item versions, tombstones, the
/// outbox of local changes and peer cursors (`replication::multi`).
pub(crate) const MULTI_ACTIVE_KEYSPACE: KeyspaceId = 9;

/// The first id handed to tables and indexes.
pub(crate) const FIRST_ALLOCATED_KEYSPACE: KeyspaceId = 16;

/// The bytes of a keyspace id that prefix its keys.
pub(crate) fn keyspace_prefix(id: KeyspaceId) -> [u8; 4] {
    id.to_be_bytes()
}

/// The 64-bit token of an encoded partition key: where it lies on the ring.
pub fn token(encoded_partition_key: &[u8]) -> u64 {
    xxh3_64(encoded_partition_key)
}

/// The engine key of a row: `keyspace | token | partition key | sort key`.
/// The two key parts are already in the order-preserving encoding, so the
/// concatenation sorts by token, then partition key, then sort key.
pub(crate) fn row_key(
    keyspace: KeyspaceId,
    encoded_partition_key: &[u8],
    encoded_sort_key: &[u8],
) -> Vec<u8> {
    let mut key = Vec::with_capacity(12 + encoded_partition_key.len() + encoded_sort_key.len());
    key.extend_from_slice(&keyspace_prefix(keyspace));
    key.extend_from_slice(&token(encoded_partition_key).to_be_bytes());
    key.extend_from_slice(encoded_partition_key);
    key.extend_from_slice(encoded_sort_key);
    key
}

/// The prefix shared by every row of one partition key.
pub(crate) fn partition_prefix(keyspace: KeyspaceId, encoded_partition_key: &[u8]) -> Vec<u8> {
    row_key(keyspace, encoded_partition_key, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_one_partition_share_its_prefix_and_sort_by_sort_key() {
        let a = row_key(20, b"pk\0\x01", b"a\0\x01");
        let b = row_key(20, b"pk\0\x01", b"b\0\x01");
        let prefix = partition_prefix(20, b"pk\0\x01");
        assert!(a.starts_with(&prefix) && b.starts_with(&prefix));
        assert!(a < b);
        assert_eq!(&a[..4], &20u32.to_be_bytes());
        assert_ne!(token(b"pk\0\x01"), token(b"pl\0\x01"));
    }
}

/// The first key after every key that starts with `prefix` (`None` when
/// no such key exists: the prefix is all `0xFF`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The token range `[start, end)` of parallel-scan segment `segment` of
/// `total` (`end` is `None` for the last segment: up to the ring's end).
/// Segments are disjoint and together cover every token.
pub(crate) fn segment_tokens(segment: u32, total: u32) -> (u64, Option<u64>) {
    let bound = |s: u32| ((u128::from(s) << 64) / u128::from(total)) as u64;
    let start = bound(segment);
    let end = (segment + 1 < total).then(|| bound(segment + 1));
    (start, end)
}

#[cfg(test)]
mod segment_tests {
    use super::*;

    #[test]
    fn segments_are_disjoint_and_cover_the_ring() {
        for total in [1u32, 2, 3, 7, 1000] {
            let mut expected_start = 0u64;
            for segment in 0..total {
                let (start, end) = segment_tokens(segment, total);
                assert_eq!(start, expected_start);
                match end {
                    Some(end) => expected_start = end,
                    None => assert_eq!(segment, total - 1),
                }
            }
        }
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff]), None);
    }
}
