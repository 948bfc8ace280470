//! One stream's live state ([`StreamLog`]): its descriptor (view type,
//! shards with their token ranges and lineage), the sequence allocator,
//! and the set of sequence numbers reserved by writes not yet committed.
//!
//! Sequence numbers are allocated per stream (so they increase in every
//! shard) under one mutex, when a write is staged and while it holds its
//! item's lock, so the records of one item are in modification order.
//! Because batches commit in any order, a reader never goes past the
//! oldest reservation still pending ([`StreamLog::visible_bound`]): a
//! record it has not seen yet can never appear *behind* its position.

use std::collections::BTreeSet;

use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::kv::catalogue::catalogue_key;
use crate::kv::error::{Error, Result};
use crate::kv::schema::{KeyDefinition, StreamViewType};
use crate::partition::KeyspaceId;
use crate::storage::{StorageError, WriteBatch};

/// The catalogue tag of stream rows (see docs/format-kv.md).
pub(crate) const STREAM_TAG: u8 = 7;
/// Sub-key of a stream's descriptor row.
const DESCRIPTOR_ROW: u8 = 0;
/// Sub-key of a stream's trim floor row.
const TRIMMED_ROW: u8 = 1;

/// One shard as the catalogue stores it: a token range of the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardDescriptor {
    /// The shard's number within its stream (part of record keys).
    pub(crate) number: u32,
    /// The shard it was split from.
    pub(crate) parent: Option<u32>,
    /// The first token it covers.
    pub(crate) token_first: u64,
    /// The last token it covers (inclusive, so one shard covers all).
    pub(crate) token_last: u64,
    /// The first sequence number it may hold.
    pub(crate) starting_sequence: u64,
    /// The last sequence number it may hold, once closed.
    pub(crate) ending_sequence: Option<u64>,
    /// When it was opened (milliseconds since the epoch).
    pub(crate) created_millis: u64,
}

/// A stream as the catalogue stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamDescriptor {
    /// The keyspace its records live in.
    pub(crate) keyspace: KeyspaceId,
    pub(crate) table_name: String,
    pub(crate) table_id: String,
    pub(crate) table_arn: String,
    pub(crate) label: String,
    pub(crate) view_type: StreamViewType,
    pub(crate) key: KeyDefinition,
    pub(crate) created_millis: u64,
    /// Set when the stream was disabled (or its table deleted); it stays
    /// readable for the retention period after that.
    pub(crate) disabled_millis: Option<u64>,
    /// The number the next shard gets.
    pub(crate) next_shard: u32,
    /// Every shard still listed (closed shards leave once trimmed).
    pub(crate) shards: Vec<ShardDescriptor>,
}

impl StreamDescriptor {
    /// The stream's ARN-like id.
    pub(crate) fn arn(&self) -> String {
        format!("{}/stream/{}", self.table_arn, self.label)
    }

    /// DynamoDB-shaped id of shard `number`: `shardId-<created ms, 20
    /// digits>-<number, 8 hex digits>`.
    pub(crate) fn shard_id(&self, shard: &ShardDescriptor) -> String {
        format!("shardId-{:020}-{:08x}", shard.created_millis, shard.number)
    }

    /// The shard named `id`.
    pub(crate) fn shard_by_id(&self, id: &str) -> Option<&ShardDescriptor> {
        let number = id
            .strip_prefix("shardId-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, hex)| u32::from_str_radix(hex, 16).ok())?;
        self.shards
            .iter()
            .find(|s| s.number == number && self.shard_id(s) == id)
    }

    /// The catalogue key of the descriptor of the stream in `keyspace`.
    pub(crate) fn row_key(keyspace: KeyspaceId) -> Vec<u8> {
        stream_row(keyspace, DESCRIPTOR_ROW)
    }

    /// Adds the descriptor to `batch`.
    pub(crate) fn put(&self, batch: &mut WriteBatch) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|e| {
            Error::Storage(StorageError::corruption(
                "stream descriptor",
                0,
                e.to_string(),
            ))
        })?;
        batch.put(&Self::row_key(self.keyspace), &json);
        Ok(())
    }
}

/// The catalogue key of row `row` of the stream in `keyspace`.
fn stream_row(keyspace: KeyspaceId, row: u8) -> Vec<u8> {
    let mut rest = keyspace.to_be_bytes().to_vec();
    rest.push(row);
    catalogue_key(STREAM_TAG, &rest)
}

/// The catalogue key of the trim floor of the stream in `keyspace`.
pub(crate) fn trimmed_row_key(keyspace: KeyspaceId) -> Vec<u8> {
    stream_row(keyspace, TRIMMED_ROW)
}

/// Which kind of stream row a catalogue key under [`STREAM_TAG`] is.
pub(crate) enum StreamRow {
    Descriptor,
    Trimmed(KeyspaceId),
}

/// Parses a catalogue key under [`STREAM_TAG`].
pub(crate) fn parse_stream_row(key: &[u8]) -> Option<StreamRow> {
    // 4 bytes of catalogue keyspace, the tag, 4 bytes of keyspace, the row.
    let keyspace = key
        .get(5..9)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)?;
    match (key.get(9), key.len()) {
        (Some(&DESCRIPTOR_ROW), 10) => Some(StreamRow::Descriptor),
        (Some(&TRIMMED_ROW), 10) => Some(StreamRow::Trimmed(keyspace)),
        _ => None,
    }
}

/// The mutable part of a [`StreamLog`], under one mutex.
#[derive(Debug)]
pub(crate) struct LogState {
    pub(crate) descriptor: StreamDescriptor,
    /// The next sequence number to hand out.
    next_sequence: u64,
    /// Sequence numbers reserved by writes that have not finished.
    pending: BTreeSet<u64>,
    /// Every record with a sequence number up to this one was trimmed.
    pub(crate) trimmed_through: u64,
}

/// The live state of one stream.
#[derive(Debug)]
pub(crate) struct StreamLog {
    pub(crate) keyspace: KeyspaceId,
    pub(crate) state: Mutex<LogState>,
    /// Signalled when the visible bound may have moved (a write ended) or
    /// shards changed; consumers wait on it instead of polling.
    changed: Condvar,
}

/// A sequence number reserved for a record in a staged write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reservation {
    pub(crate) shard: u32,
    pub(crate) sequence: u64,
}

impl StreamLog {
    /// A stream's state: `next_sequence` is one past the highest number
    /// ever used (from its records and its trim floor).
    pub(crate) fn new(
        descriptor: StreamDescriptor,
        next_sequence: u64,
        trimmed_through: u64,
    ) -> Self {
        Self {
            keyspace: descriptor.keyspace,
            state: Mutex::new(LogState {
                descriptor,
                next_sequence: next_sequence.max(trimmed_through + 1).max(1),
                pending: BTreeSet::new(),
                trimmed_through,
            }),
            changed: Condvar::new(),
        }
    }

    /// Reserves the next sequence number in the open shard covering
    /// `token`; `None` if the stream has no open shard (disabled).
    pub(crate) fn reserve(&self, token: u64) -> Option<Reservation> {
        let mut state = self.state.lock();
        let shard = state
            .descriptor
            .shards
            .iter()
            .find(|s| {
                s.ending_sequence.is_none() && s.token_first <= token && token <= s.token_last
            })?
            .number;
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        state.pending.insert(sequence);
        Some(Reservation { shard, sequence })
    }

    /// Ends a reservation (its write committed or failed).
    pub(crate) fn release(&self, sequence: u64) {
        self.state.lock().pending.remove(&sequence);
        self.changed.notify_all();
    }

    /// Waits until the visible bound passes `bound` or `timeout` elapses.
    pub(crate) fn wait_beyond(&self, bound: u64, timeout: Duration) {
        let mut state = self.state.lock();
        let visible = state
            .pending
            .first()
            .copied()
            .unwrap_or(state.next_sequence);
        if visible <= bound {
            self.changed.wait_for(&mut state, timeout);
        }
    }

    /// Wakes every waiter (a consumer is stopping, shards changed).
    pub(crate) fn wake_all(&self) {
        self.changed.notify_all();
    }

    /// Every record below this sequence number is committed or will never
    /// exist; readers stop before it.
    pub(crate) fn visible_bound(&self) -> u64 {
        let state = self.state.lock();
        state
            .pending
            .first()
            .copied()
            .unwrap_or(state.next_sequence)
    }

    /// A copy of the descriptor.
    pub(crate) fn descriptor(&self) -> StreamDescriptor {
        self.state.lock().descriptor.clone()
    }

    /// The trim floor.
    pub(crate) fn trimmed_through(&self) -> u64 {
        self.state.lock().trimmed_through
    }

    /// Closes the open shard containing `token` and opens two children
    /// splitting its range at `token` (`[first, token - 1]` and
    /// `[token, last]`), durably, under the allocator lock so no record
    /// lands in the parent after its ending sequence number. Returns the
    /// children's numbers.
    pub(crate) fn split(
        &self,
        engine: &crate::storage::Engine,
        token: u64,
        now_millis: u64,
        batch: &mut WriteBatch,
    ) -> Result<(u32, u32)> {
        let mut state = self.state.lock();
        let index = state
            .descriptor
            .shards
            .iter()
            .position(|s| {
                s.ending_sequence.is_none() && s.token_first <= token && token <= s.token_last
            })
            .ok_or_else(|| Error::validation("No open shard covers the token"))?;
        let parent = state.descriptor.shards[index].clone();
        if token == parent.token_first {
            return Err(Error::validation(
                "A split token must lie inside the shard, after its first token",
            ));
        }
        // The parent ends at the last number handed out; writes still
        // pending in it hold numbers at most this.
        let ending = state.next_sequence - 1;
        let mut descriptor = state.descriptor.clone();
        descriptor.shards[index].ending_sequence = Some(ending);
        let first = descriptor.next_shard;
        for (number, (token_first, token_last)) in [
            (first, (parent.token_first, token - 1)),
            (first + 1, (token, parent.token_last)),
        ] {
            descriptor.shards.push(ShardDescriptor {
                number,
                parent: Some(parent.number),
                token_first,
                token_last,
                starting_sequence: ending + 1,
                ending_sequence: None,
                created_millis: now_millis,
            });
        }
        descriptor.next_shard += 2;
        descriptor.put(batch)?;
        engine.write(std::mem::take(batch))?;
        state.descriptor = descriptor;
        self.changed.notify_all();
        Ok((first, first + 1))
    }

    /// Closes every open shard and marks the stream disabled at `now`,
    /// durably. A disabled stream gets no more records.
    pub(crate) fn disable(&self, engine: &crate::storage::Engine, now_millis: u64) -> Result<()> {
        let mut state = self.state.lock();
        if state.descriptor.disabled_millis.is_some() {
            return Ok(());
        }
        let ending = state.next_sequence - 1;
        let mut descriptor = state.descriptor.clone();
        descriptor.disabled_millis = Some(now_millis);
        for shard in &mut descriptor.shards {
            if shard.ending_sequence.is_none() {
                shard.ending_sequence = Some(ending);
            }
        }
        let mut batch = WriteBatch::new();
        descriptor.put(&mut batch)?;
        engine.write(batch)?;
        state.descriptor = descriptor;
        Ok(())
    }

    /// Records that every record up to `through` was trimmed, dropping
    /// closed shards that hold nothing any more; returns the new
    /// descriptor if shards were dropped (to be persisted by the caller in
    /// the trim batch).
    pub(crate) fn advance_trim(&self, through: u64) -> Option<StreamDescriptor> {
        let mut state = self.state.lock();
        state.trimmed_through = state.trimmed_through.max(through);
        let floor = state.trimmed_through;
        let before = state.descriptor.shards.len();
        state
            .descriptor
            .shards
            .retain(|s| s.ending_sequence.is_none_or(|end| end > floor));
        (state.descriptor.shards.len() != before).then(|| state.descriptor.clone())
    }
}

/// The first descriptor of a new stream: one open shard over every token.
pub(crate) fn new_descriptor(
    keyspace: KeyspaceId,
    definition: &crate::kv::schema::TableDefinition,
    view_type: StreamViewType,
    label: String,
    now_millis: u64,
) -> StreamDescriptor {
    StreamDescriptor {
        keyspace,
        table_name: definition.name.clone(),
        table_id: definition.table_id.clone(),
        table_arn: definition.table_arn(),
        label,
        view_type,
        key: definition.key.clone(),
        created_millis: now_millis,
        disabled_millis: None,
        next_shard: 1,
        shards: vec![ShardDescriptor {
            number: 0,
            parent: None,
            token_first: 0,
            token_last: u64::MAX,
            starting_sequence: 1,
            ending_sequence: None,
            created_millis: now_millis,
        }],
    }
}
