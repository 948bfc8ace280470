//! The replication stream's unit and the protocol's messages.
//!
//! One [`Frame`] carries one WAL batch exactly as the primary logged it
//! (its first sequence number, count and encoded entries), a checksum over
//! `sequence | payload`, and the epoch of the node that *sends* it. The
//! epoch is the fencing token: a receiver at a newer epoch rejects the
//! frame, whatever epoch committed the batch (a new primary re-sends older
//! batches stamped with its own epoch during catch-up). The checksum does
//! not cover the epoch, so a batch has the same checksum on every node
//! that holds it.
//!
//! The checksum is per frame, not rolling: divergence between an old
//! primary and the new one is found from the epoch history (where each
//! epoch began) plus the checksum of the frame at the replica's last
//! position when the source still retains it (Kafka KIP-101's leader-epoch
//! truncation point, LiteFS's position + checksum).

use std::path::Path;

use bytes::Bytes;
use xxhash_rust::xxh3::Xxh3;

use crate::storage::{StorageError, WriteBatch};

/// A node of a replication group.
pub type NodeId = u64;

/// One WAL batch on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The sender's epoch (the fencing token).
    pub epoch: u64,
    /// The sequence number of the batch's first entry.
    pub sequence: u64,
    /// The sequence number of the batch's last entry.
    pub last_sequence: u64,
    /// `xxh3(sequence | payload)`.
    pub checksum: u64,
    /// The batch as the WAL encodes it (header included).
    pub payload: Vec<u8>,
    /// The level a synchronous commit waits for (`None`: asynchronous);
    /// from `Durable` up the follower fsyncs before acknowledging.
    pub ack: Option<AckLevel>,
}

/// How far a synchronous commit waits for a standby: PostgreSQL's
/// `synchronous_commit` levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AckLevel {
    /// The standby received the frame (in memory).
    Received,
    /// The standby wrote it to its log (`remote_write`). A follower
    /// writes and applies a frame in one step (its engine's log write,
    /// then its memtable insert, a few microseconds apart), so its written
    /// and applied positions advance together: `Written` and `Applied`
    /// wait equally long, and neither waits for the standby's fsync.
    Written,
    /// The standby fsynced it (`on`; the default).
    Durable,
    /// The standby applied it: visible to its readers (`remote_apply`).
    Applied,
}

impl AckLevel {
    /// The follower's position at this level.
    pub fn position(self, progress: &Progress) -> u64 {
        match self {
            Self::Received => progress.received,
            Self::Written => progress.written,
            Self::Durable => progress.durable,
            Self::Applied => progress.applied,
        }
    }
}

impl Frame {
    /// Frames `batch`, numbered from `sequence`, for `epoch`.
    pub(crate) fn new(
        epoch: u64,
        sequence: u64,
        batch: &WriteBatch,
        ack: Option<AckLevel>,
    ) -> Self {
        let mut payload = Vec::new();
        batch.encode_into(sequence, &mut payload);
        let last_sequence = sequence + u64::from(batch.count()).saturating_sub(1);
        Self {
            epoch,
            sequence,
            last_sequence,
            checksum: frame_checksum(sequence, &payload),
            payload,
            ack,
        }
    }

    /// Whether the checksum matches the contents.
    pub fn is_intact(&self) -> bool {
        self.checksum == frame_checksum(self.sequence, &self.payload)
    }

    /// Decodes the batch; a payload that does not parse, or whose numbering
    /// disagrees with the frame's, is `Corruption`.
    pub(crate) fn batch(&self) -> Result<WriteBatch, StorageError> {
        let (first, batch) =
            WriteBatch::decode(&self.payload, Path::new("replication frame"), self.sequence)?;
        let last = first + u64::from(batch.count()).saturating_sub(1);
        if first != self.sequence || last != self.last_sequence || batch.is_empty() {
            return Err(StorageError::corruption(
                "replication frame",
                self.sequence,
                format!(
                    "frame says {}..={} but its batch is {first}..={last}",
                    self.sequence, self.last_sequence
                ),
            ));
        }
        Ok(batch)
    }
}

/// The checksum of a frame's contents.
pub(crate) fn frame_checksum(sequence: u64, payload: &[u8]) -> u64 {
    let mut hasher = Xxh3::new();
    hasher.update(&sequence.to_le_bytes());
    hasher.update(payload);
    hasher.digest()
}

/// How far a follower has got, by sequence number, at each ack level.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Frames received, in order, up to here.
    pub received: u64,
    /// Written to the follower's log (write(2)).
    pub written: u64,
    /// Written and fsynced.
    pub durable: u64,
    /// Applied: visible to the follower's readers.
    pub applied: u64,
}

/// A message between two nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Source → follower: a batch.
    Frame(Frame),
    /// Source → follower, ahead of a frame whose batch names an object
    /// chunk (a `C` row): the pack entry holding it exactly as the source
    /// stores it, for the follower to write at the same pack and offset.
    /// Object bodies live in pack files, not in the log, so this is how
    /// they reach replicas; the follower applies the frame only once every
    /// chunk it names is in place, intact and synced.
    Chunk {
        /// The source's epoch.
        epoch: u64,
        /// The chunk's storage tier (0 hot, 1 cold).
        tier: u8,
        /// Its BLAKE3 hash.
        hash: [u8; 32],
        /// The pack the frame's row names.
        pack: u64,
        /// The entry's offset in that pack.
        offset: u64,
        /// The entry (52-byte header and stored bytes); empty when the
        /// source no longer has the chunk (a later batch freed it), so the
        /// frame may apply without it.
        entry: Bytes,
    },
    /// Source → follower: the source's epoch and last sequence number, so
    /// a follower that lost the last frames notices and asks again.
    Heartbeat {
        /// The source's epoch.
        epoch: u64,
        /// The source's last sequence number.
        last_sequence: u64,
    },
    /// Source → follower: the answer to `Subscribe` when streaming starts:
    /// the source's epoch and where each epoch of its lineage began.
    Welcome {
        /// The source's epoch.
        epoch: u64,
        /// `(epoch, first sequence number)`, oldest first.
        starts: Vec<(u64, u64)>,
        /// The source's lineage, which the follower adopts.
        lineage: u64,
    },
    /// Follower → source: stream to me from after `last_sequence`.
    Subscribe {
        /// The follower's epoch (of its last frame).
        epoch: u64,
        /// The follower's last applied sequence number.
        last_sequence: u64,
        /// The checksum of the frame ending at `last_sequence`, if known.
        last_checksum: Option<u64>,
        /// The follower's lineage (0: none yet); another lineage than the
        /// source's gets a snapshot, whatever its position.
        lineage: u64,
    },
    /// Follower → source: progress.
    Ack {
        /// The follower's epoch.
        epoch: u64,
        /// Its positions.
        progress: Progress,
    },
    /// Either way: the sender is at a newer epoch than the message it got.
    Fenced {
        /// The newer epoch.
        epoch: u64,
    },
    /// Source → follower: you are too far behind (or diverged); fetch
    /// snapshot `id` (a checkpoint of `files` files at `epoch`).
    NeedSnapshot {
        /// The snapshot's identifier (unique per source).
        id: u64,
        /// The source's epoch.
        epoch: u64,
        /// How many files the snapshot has.
        files: u32,
        /// The source's epoch history (see `Welcome`).
        starts: Vec<(u64, u64)>,
        /// The lineage of the snapshot's history.
        lineage: u64,
    },
    /// Follower → source: send the piece of snapshot `id` at `file`,
    /// `offset` (how a transfer resumes after loss or restart).
    SnapshotRequest {
        /// The snapshot.
        id: u64,
        /// The file's index in the snapshot.
        file: u32,
        /// The byte offset in that file.
        offset: u64,
    },
    /// Source → follower: one chunk of a snapshot file.
    SnapshotChunk {
        /// The snapshot.
        id: u64,
        /// The file's index.
        file: u32,
        /// The file's name.
        name: String,
        /// Where the chunk starts.
        offset: u64,
        /// The file's length.
        file_len: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Source → follower: snapshot `id` is gone; subscribe again.
    SnapshotGone {
        /// The snapshot.
        id: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_round_trips_its_batch_and_detects_damage() {
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        batch.delete(b"gone");
        let frame = Frame::new(3, 41, &batch, Some(AckLevel::Durable));
        assert!(frame.is_intact());
        assert_eq!(frame.last_sequence, 42);
        assert_eq!(frame.batch().unwrap(), batch);
        let mut damaged = frame.clone();
        damaged.payload[13] ^= 1;
        assert!(!damaged.is_intact());
        let mut moved = frame.clone();
        moved.sequence = 40;
        assert!(!moved.is_intact());
        let mut lying = frame;
        lying.last_sequence = 50;
        assert!(lying.batch().is_err());
    }
}
