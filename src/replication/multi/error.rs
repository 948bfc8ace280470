//! The errors of multi-active replication.

use super::clock::ReplicaId;
use crate::storage::StorageError;

/// What can go wrong configuring or running multi-active replication.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A table operation failed (the table is missing, has another key
    /// schema, or a write failed).
    #[error(transparent)]
    Kv(#[from] crate::kv::Error),
    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The replica has no id yet: call `configure` first.
    #[error("multi-active replication is not configured on this database")]
    NotConfigured,
    /// The database already belongs to a group under another replica id;
    /// an id never changes, or peers would mistake its writes for another
    /// replica's.
    #[error("this database is replica {stored}, not {requested}")]
    ReplicaIdMismatch {
        /// The id stored in the database.
        stored: ReplicaId,
        /// The id asked for.
        requested: ReplicaId,
    },
    /// A configuration that cannot work (a replica listed as its own peer,
    /// a duplicate peer).
    #[error("ValidationException: {0}")]
    Validation(String),
    /// A hidden replication row could not be decoded.
    #[error("corrupt {what}: {reason}")]
    Corruption {
        /// Which row.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    pub(crate) fn corruption(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Corruption {
            what,
            reason: reason.into(),
        }
    }
}

/// The result of multi-active operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for crate::kv::Error {
    /// The write path's hook reports replication row failures as kv
    /// errors (a corrupt hidden row is storage corruption).
    fn from(error: Error) -> Self {
        match error {
            Error::Kv(e) => e,
            Error::Storage(e) => crate::kv::Error::Storage(e),
            other => crate::kv::Error::Storage(StorageError::corruption(
                "multi-active replication rows",
                0,
                other.to_string(),
            )),
        }
    }
}
