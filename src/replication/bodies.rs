//! Object bodies in the replication stream. The object store keeps its
//! catalogue in the log but its bodies in pack files (value separation),
//! so a frame whose batch writes chunk locations (`C` rows) is preceded by
//! one [`Message::Chunk`] per chunk: the pack entry as the source stores
//! it. The follower writes each at the same pack and offset (so the rows
//! it applies name the same bytes), and applies the frame only once every
//! chunk it names is there, checked against its hash and synced; a chunk
//! that is missing (a lost or reordered message) makes it subscribe again,
//! and the catch-up re-sends chunks and frame together. This keeps the
//! lossless-failover promise for objects: a standby acknowledges a PUT's
//! batch only with its body durable.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::frame::{Message, NodeId};
use super::node::{NodeInner, ReplicationEvent, Role};
use crate::Database;
use crate::objects::into_storage_error;
use crate::objects::replica::{self, Effects, NamedChunk};
use crate::storage::{StorageError, WriteBatch};

/// Chunks the source reported it no longer has, remembered so their
/// frames may apply without them (the bound only costs a re-send).
const GONE_CHUNKS_MAX: usize = 16_384;

/// A chunk's identity at its location: `(tier, hash, pack, offset)`.
pub(crate) type ChunkAt = (u8, [u8; 32], u64, u64);

/// What a follower keeps about shipped chunks.
#[derive(Debug, Default)]
pub(crate) struct BodyState {
    /// Chunks its source no longer has (freed by a later batch).
    pub(crate) gone: BTreeSet<ChunkAt>,
}

/// Whether a follower may apply a batch now.
pub(crate) enum Readiness {
    /// Every chunk it names is in place and durable (or it names none).
    Ready,
    /// Chunks are missing: subscribe again to have them re-sent.
    Missing,
}

impl NodeInner {
    /// The chunk messages that must go ahead of the frame of `batch`, at
    /// the sender's `epoch` (none for a batch without chunk rows, or while
    /// the database is being swapped, when the follower asks again).
    pub(crate) fn chunk_messages(&self, epoch: u64, batch: &WriteBatch) -> Vec<Message> {
        let named = match replica::chunks_named(batch) {
            Ok(named) if !named.is_empty() => named,
            _ => return Vec::new(),
        };
        // `try_read`: this runs inside commits, which must not wait for a
        // reopen that may itself wait for them.
        let Some(db) = self.db.try_read().and_then(|db| db.clone()) else {
            return Vec::new();
        };
        let mut messages = Vec::with_capacity(named.len());
        for chunk in &named {
            let (tier, hash, location) = chunk;
            let entry = match db.inner.objects.shipped_entry(chunk) {
                Ok(Some(entry)) => entry,
                // Freed since: the follower may apply without it.
                Ok(None) => Bytes::new(),
                // Unreadable here: send nothing, so the follower asks
                // again rather than being told the chunk is gone.
                Err(_) => continue,
            };
            messages.push(Message::Chunk {
                epoch,
                tier: *tier as u8,
                hash: *hash,
                pack: location.pack,
                offset: location.offset,
                entry,
            });
        }
        self.state.lock().stats.chunks_sent += messages.len() as u64;
        messages
    }

    /// A follower receives a chunk: written in place if it comes from its
    /// source at its epoch (an older lineage's chunk could overwrite bytes
    /// of the current one at the same position).
    pub(crate) fn on_chunk(&self, from: NodeId, epoch: u64, chunk: ChunkAt, entry: Bytes) {
        {
            let state = self.state.lock();
            if state.role != (Role::Replica { source: from })
                || state.epochs.epoch != epoch
                || state.incoming.is_some()
            {
                return;
            }
        }
        let (tier, hash, pack, offset) = chunk;
        if entry.is_empty() {
            let mut bodies = self.bodies.lock();
            if bodies.gone.len() >= GONE_CHUNKS_MAX {
                bodies.gone.clear();
            }
            bodies.gone.insert(chunk);
            return;
        }
        let Some(db) = self.db.read().clone() else {
            return;
        };
        let placed = db
            .inner
            .objects
            .place_shipped(tier, &hash, pack, offset, &entry);
        let mut state = self.state.lock();
        match placed {
            Ok(()) => state.stats.chunks_placed += 1,
            Err(e) => state.event(ReplicationEvent::ApplyFailed {
                error: format!("placing a shipped chunk: {e}"),
            }),
        }
    }

    /// Whether `batch` may be applied to `db`: every chunk it names is in
    /// place (then synced) or was reported gone.
    pub(crate) fn bodies_ready(
        &self,
        db: &Database,
        batch: &WriteBatch,
    ) -> Result<Readiness, StorageError> {
        let named: Vec<NamedChunk> = replica::chunks_named(batch).map_err(into_storage_error)?;
        if named.is_empty() {
            return Ok(Readiness::Ready);
        }
        let objects = &db.inner.objects;
        let missing = objects.missing_chunks(&named, &self.bodies.lock().gone);
        if !missing.is_empty() {
            self.state.lock().stats.frames_awaiting_chunks += 1;
            return Ok(Readiness::Missing);
        }
        objects.sync_shipped().map_err(into_storage_error)?;
        Ok(Readiness::Ready)
    }

    /// After a batch with `effects` applied: re-read the object store's
    /// in-memory state if the batch changed it, and remove packs its
    /// primary's GC emptied.
    pub(crate) fn after_bodies_applied(&self, db: &Database, effects: Effects) {
        let objects = &db.inner.objects;
        let mut result = Ok(());
        if effects.reload {
            result = objects.reload();
        }
        if result.is_ok() && effects.sweep {
            result = objects.sweep_unnamed_packs().map(|_| ());
        }
        if let Err(e) = result {
            self.state.lock().event(ReplicationEvent::ApplyFailed {
                error: format!("object store after a replicated batch: {e}"),
            });
        }
    }
}
