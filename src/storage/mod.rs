//! The durable storage engine: one write-ahead log, memtables, immutable
//! sorted segment files, a manifest, background compaction, MVCC snapshots
//! and checkpoints. Every durable change of every service passes through it
//! as one atomic batch.
//!
//! This layer knows nothing of items, tables or objects: it stores ordered
//! byte keys and byte values.
//!
//! Parts, bottom up: [`fs`] (the file-system boundary; `sim` is its
//! fault-injecting test double), `batch` and `wal` (the log), `commit`
//! (group commit), `memtable`, `segment` (sorted files), `merge` (read and
//! compaction iterators), `manifest` and `version` (which files are live),
//! `compaction` (the leveled policy), and [`Engine`], which ties them
//! together.

mod batch;
pub(crate) mod commit;
pub(crate) mod compaction;
mod engine;
mod error;
pub mod fs;
#[doc(hidden)]
pub mod manifest;
pub(crate) mod memtable;
pub(crate) mod merge;
pub(crate) mod range;
#[doc(hidden)]
pub mod segment;
#[doc(hidden)]
pub mod sim;
pub mod types;
pub(crate) mod version;
#[doc(hidden)]
pub mod wal;

pub(crate) use batch::ValueRef;
pub use batch::WriteBatch;
pub use commit::Durability;
pub use compaction::CompactionOptions;
pub use engine::{
    BLOCK_CACHE_BYTES_DEFAULT, Engine, EngineIter, EngineOptions, EngineStats,
    IMMUTABLE_MEMTABLES_MAX, LOG_PREALLOCATE_BYTES_DEFAULT, LevelStats, MAX_OPEN_FILES_DEFAULT,
    MEMTABLE_BYTES_MAX_DEFAULT, Snapshot,
};
pub use error::{Result, StorageError};
pub use range::Direction;
pub use segment::SegmentOptions;
pub(crate) use types::EntryKind;
