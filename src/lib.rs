//! nimbus: the data services a Rust program would otherwise rent from a cloud,
//! embedded in one directory on disk, with no server.
//!
//! - [`value`] — DynamoDB's `AttributeValue` model: validation, canonical
//!   numbers, item size, DynamoDB JSON, serde conversion and the
//!   order-preserving key encoding every table is stored under.
//! - [`storage`] — the durable engine: one write-ahead log, memtables, sorted
//!   segment files, compaction, snapshots and checkpoints.
//! - `partition`, `kv`, `index`, `objects`, `replication`, `cache` — the
//!   services built on them (see `ARCHITECTURE.md`).
//!
//! Layers only use the ones below them; this file re-exports the public face.

pub mod value;

// Compiles and runs the README's example as a doctest, so it cannot rot.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

pub use value::{AttributeType, AttributeValue, Item, Number, ScalarType, ValueError};

pub mod storage;

pub mod partition;

pub mod time;

mod db;
pub use db::{Database, DatabaseOptions};

pub mod kv;

pub(crate) mod index;

pub mod objects;

pub mod replication;

pub mod cache;

#[cfg(feature = "server")]
pub mod server;

/// Locks and atomics of hand-written concurrent code, swapped for loom's
/// under `--cfg loom`.
pub(crate) mod sync;
