//! Log shipping: a synchronous standby (RDS Multi-AZ), asynchronous read
//! replicas and chains of them, catch-up, snapshots, epochs and failover —
//! all over the engine's one write-ahead log. (Multi-active tables live in
//! `multi/`.)
//!
//! - [`frame`]: the stream's unit — one WAL batch as `{epoch, sequence,
//!   checksum, payload}` — and the protocol's messages;
//! - [`transport`]: the [`Transport`] trait and the deterministic
//!   in-process [`MemoryNetwork`] with fault injection; [`tcp`]: the
//!   [`TcpTransport`] between processes (messages encoded by `wire`;
//!   [`fuzz`] is the fuzz entry point for everything read off the network);
//! - `node`: [`ReplicationNode`], its roles and public API; `source` (the
//!   shipping side: the commit hook, quorum waits, subscriptions), `bodies`
//!   (object-store chunks shipped ahead of the frames naming them),
//!   `follower` (the applying side), `snapshot` (chunked resumable
//!   snapshots), `transfer` (the durable record that lets a snapshot
//!   transfer resume after the replica restarts), `retained` (the retained
//!   log's bounded copy on disk, so a restarted source still serves
//!   catch-up), `epoch` (the persisted epoch history);
//! - [`failover`]: failure detection with leases and the voter hook for
//!   automatic promotion.
//!
//! Guarantees, and how they are kept:
//! - *Lossless semi-sync*: the engine calls the replication hook after its
//!   local append and before a group becomes visible, so with a sync
//!   policy no reader sees a write before the quorum acknowledged it.
//! - *No silent degrade*: without an ack the commit fails after the
//!   timeout with `StorageError::ReplicationTimeout` and the primary stops
//!   (the outcome of that write is unknown); degrading to asynchronous is
//!   an opt-in that emits an event and counts.
//! - *Fencing*: every message carries the sender's epoch; a node at a
//!   newer epoch rejects it, and a primary that sees a newer epoch stops
//!   accepting writes. A promotion persists its epoch before it acts.
//! - *Idempotence*: a frame applied twice is a no-op (the engine refuses
//!   to re-commit a sequence number it has).
//! - *Object bodies*: the object store keeps bodies in pack files beside
//!   the log, so a frame that names chunks is preceded by their pack
//!   entries, which the follower writes at the same pack and offset and
//!   syncs before it applies the frame (`bodies`;
//!   `docs/format-replication.md`, "Object bodies"); a snapshot carries
//!   the packs themselves, installed under the same numbers.

mod bodies;
mod epoch;
mod error;
pub mod failover;
mod follower;
pub mod frame;
#[doc(hidden)]
pub mod fuzz;
pub mod multi;
mod node;
mod retained;
mod snapshot;
mod source;
pub mod tcp;
mod transfer;
pub mod transport;
mod wire;

#[cfg(test)]
mod bodies_tests;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;

pub use error::{ReplicationError, Result};
pub use frame::{AckLevel, Frame, Message, NodeId, Progress};
pub use node::{
    FollowerLag, NodeOptions, Quorum, RETAINED_FRAMES_DEFAULT, ReplicationEvent, ReplicationNode,
    ReplicationStats, Role, SNAPSHOT_CHUNK_BYTES_DEFAULT, SyncPolicy,
};
pub use tcp::TcpTransport;
pub use transport::{Endpoint, Faults, MemoryNetwork, Transport};
pub use wire::WireError;
