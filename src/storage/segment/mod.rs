//! Segments: immutable sorted files of internal entries (an SSTable).
//!
//! A segment is written once by `SegmentWriter` — data blocks, a bloom
//! filter, a block index and a footer, each checksummed — synced, and only
//! then referenced by the manifest; it is never modified afterwards, which is
//! what makes reading it through a memory map sound. `SegmentReader` reads
//! through the `ReadFile` trait, zero-copy from the map when there is one and
//! by positional reads (optionally through a `BlockCache`) otherwise.
//!
//! Everything read from a file is bounds-checked: a damaged or hostile file is
//! `StorageError::Corruption { file, offset, reason }`, never a panic and
//! never an allocation larger than the file. The byte layout is specified in
//! `docs/format-segment.md`.
// Until the engine uses them, some re-exports are only used by tests.
#![cfg_attr(not(test), allow(unused_imports))]

#[doc(hidden)]
pub mod bench;
mod block;
mod bloom;
mod cache;
mod codec;
mod footer;
mod fuzz;
mod index;
mod iter;
pub(crate) mod meta;
mod reader;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

pub(crate) use cache::BlockCache;
#[doc(hidden)]
pub use fuzz::{fuzz_segment, fuzz_segment_open};
pub(crate) use meta::SegmentMeta;
pub(crate) use reader::SegmentReader;
pub(crate) use writer::SegmentWriter;

/// The longest user key a segment stores, in bytes. Generous for DynamoDB's
/// keys (2 KiB partition + 1 KiB sort key plus the keyspace prefix); the
/// reader rejects longer lengths as corruption before allocating for them.
pub(crate) const KEY_BYTES_MAX: usize = 64 * 1024;

/// The longest value a segment stores, in bytes. Item values are at most
/// 400 KB (DynamoDB's item limit); object bodies are value-separated into
/// chunk files, so nothing near this limit reaches a segment.
pub(crate) const VALUE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// How a segment is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentOptions {
    /// A data block is closed once its payload reaches this size; a single
    /// entry larger than it gets a block of its own.
    pub block_size_bytes: usize,
    /// A full key is stored every this many entries of a data block.
    pub restart_interval: usize,
    /// Bloom filter bits per distinct user key.
    pub bloom_bits_per_key: u32,
    /// The segment writer's `should_roll_before` asks for a new file once the
    /// current one reaches this size.
    pub target_file_size_bytes: u64,
}

impl Default for SegmentOptions {
    /// 4 KiB blocks (one page per block read), LevelDB's restart interval of
    /// 16, 10 bits per key (about 1 % false positives) and 64 MiB files.
    fn default() -> Self {
        Self {
            block_size_bytes: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            target_file_size_bytes: 64 * 1024 * 1024,
        }
    }
}
