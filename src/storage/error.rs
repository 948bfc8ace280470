//! The storage engine's error type.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// What can go wrong in the storage engine.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O operation failed. The error is shared so that a terminal
    /// failure can be reported to every later caller.
    #[error("I/O error during {op} on {path}: {source}")]
    Io {
        /// What the engine was doing (`"append"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// A file's contents fail a checksum or are structurally invalid.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The damaged file.
        file: PathBuf,
        /// The byte offset of the damaged record or block.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// An earlier write or fsync failed, so the engine stopped accepting work:
    /// after a failed fsync the OS may have dropped the dirty pages, and
    /// retrying would acknowledge writes that are not on disk.
    #[error("the engine stopped after an earlier I/O failure: {cause}")]
    PreviousIo {
        /// The failure that stopped the engine.
        cause: Arc<StorageError>,
    },
    /// The caller passed something the engine cannot store.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Another process (or handle) holds the database directory.
    #[error("the database directory {0} is locked by another process")]
    Locked(PathBuf),
    /// The engine was closed.
    #[error("the database is closed")]
    Closed,
    /// A read replica refuses writes of its own: it only applies what its
    /// primary ships.
    #[error("this database is a read replica and refuses writes")]
    ReadOnlyReplica,
    /// A synchronous commit's batch is in the local log but not enough
    /// standbys acknowledged it in time: its outcome is unknown (it may
    /// survive a failover or not), and the primary stopped accepting
    /// commits, as PostgreSQL blocks rather than silently degrade.
    #[error(
        "replication: {acknowledged} of {required} standby acknowledgements for sequence {sequence} within {waited_ms} ms"
    )]
    ReplicationTimeout {
        /// The last sequence number of the unacknowledged group.
        sequence: u64,
        /// Acknowledgements received.
        acknowledged: usize,
        /// Acknowledgements the quorum needs.
        required: usize,
        /// How long the commit waited, in milliseconds.
        waited_ms: u64,
    },
    /// A newer epoch exists: this node was demoted (or fenced) and must
    /// rejoin as a replica.
    #[error("fenced: epoch {epoch} was superseded by epoch {newer}")]
    Fenced {
        /// This node's epoch.
        epoch: u64,
        /// The newer epoch seen.
        newer: u64,
    },
}

impl StorageError {
    /// An I/O error during `op` on `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source: Arc::new(source),
        }
    }

    /// A corruption error in `file` at `offset`.
    pub fn corruption(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> Self {
        Self::Corruption {
            file: file.into(),
            offset,
            reason: reason.into(),
        }
    }
}

/// The storage engine's result type.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
