//! The durable storage engine: one write-ahead log, memtables, immutable
//! sorted segment files, a manifest, background compaction, MVCC snapshots
//! and checkpoints. Every durable change of every service passes through it
//! as one atomic batch.
//!
//! This layer knows nothing of items, tables or objects: it stores ordered
//! byte keys and byte values.

mod batch;
pub(crate) mod commit;
mod error;
pub mod fs;
#[doc(hidden)]
pub mod sim;
pub mod types;
#[doc(hidden)]
pub mod wal;

pub use error::{Result, StorageError};
