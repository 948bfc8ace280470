//! The replication module's error type.

use crate::storage::StorageError;

/// What can go wrong in replication.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicationError {
    /// The storage engine failed (including `ReplicationTimeout` and
    /// `Fenced` from a commit).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The operation needs a primary and this node is not one.
    #[error("node {node} is not the primary")]
    NotPrimary {
        /// This node.
        node: u64,
    },
    /// The operation needs a replica and this node is not one.
    #[error("node {node} is not a replica")]
    NotReplica {
        /// This node.
        node: u64,
    },
    /// The failover coordinator (third voter, lease store) refused.
    #[error("promotion of node {node} refused: {reason}")]
    PromotionRefused {
        /// The candidate.
        node: u64,
        /// Why.
        reason: String,
    },
    /// Bad configuration.
    #[error("invalid replication configuration: {0}")]
    InvalidConfiguration(String),
}

/// The replication module's result type.
pub type Result<T, E = ReplicationError> = std::result::Result<T, E>;
