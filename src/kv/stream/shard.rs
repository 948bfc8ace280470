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

use std::collections::{BTreeSet, HashMap};

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
    /// Per shard, the highest sequence number of its records trimmed (at
    /// most `trimmed_through`; absent: none): a position in a shard is
    /// trimmed only if that shard lost records at or after it, not
    /// because records of other shards with higher numbers went.
    shard_trimmed: HashMap<u32, u64>,
}

/// A stream's trim floors as stored in its trim row: the stream's floor
/// (8 bytes, big-endian), then for each shard that lost records its
/// number (4 bytes) and the highest trimmed sequence number among them
/// (8 bytes). A row of the floor alone (written before shards had floors
/// of their own) gives every shard the stream's floor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrimFloors {
    pub(crate) through: u64,
    /// `None`: not recorded per shard (an older row).
    pub(crate) shards: Option<HashMap<u32, u64>>,
}

impl TrimFloors {
    /// Parses a trim row's value.
    pub(crate) fn decode(value: &[u8]) -> Option<Self> {
        let (through, mut rest) = value.split_first_chunk::<8>()?;
        let through = u64::from_be_bytes(*through);
        if rest.is_empty() {
            return Some(Self {
                through,
                shards: None,
            });
        }
        let mut shards = HashMap::new();
        while !rest.is_empty() {
            let (number, after) = rest.split_first_chunk::<4>()?;
            let (floor, after) = after.split_first_chunk::<8>()?;
            shards.insert(u32::from_be_bytes(*number), u64::from_be_bytes(*floor));
            rest = after;
        }
        Some(Self {
            through,
            shards: Some(shards),
        })
    }

    /// The trim row's value (shards in number order).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut shards: Vec<(u32, u64)> = self
            .shards
            .iter()
            .flatten()
            .map(|(&number, &floor)| (number, floor))
            .collect();
        shards.sort_unstable();
        let mut value = Vec::with_capacity(8 + 12 * shards.len());
        value.extend_from_slice(&self.through.to_be_bytes());
        for (number, floor) in shards {
            value.extend_from_slice(&number.to_be_bytes());
            value.extend_from_slice(&floor.to_be_bytes());
        }
        value
    }
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
        trimmed: TrimFloors,
    ) -> Self {
        let trimmed_through = trimmed.through;
        let shard_trimmed = trimmed.shards.unwrap_or_else(|| {
            // Floors not recorded per shard: each shard may have lost
            // records up to the stream's floor.
            descriptor
                .shards
                .iter()
                .map(|shard| (shard.number, trimmed_through))
                .collect()
        });
        Self {
            keyspace: descriptor.keyspace,
            state: Mutex::new(LogState {
                descriptor,
                next_sequence: next_sequence.max(trimmed_through + 1).max(1),
                pending: BTreeSet::new(),
                trimmed_through,
                shard_trimmed,
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

    /// The trim floor: every record up to it is gone, in every shard.
    pub(crate) fn trimmed_through(&self) -> u64 {
        self.state.lock().trimmed_through
    }

    /// The highest sequence number of `shard`'s records that were trimmed
    /// (0: none): a reader of the shard at a position past it lost
    /// nothing.
    pub(crate) fn shard_trimmed_through(&self, shard: u32) -> u64 {
        let state = self.state.lock();
        state.shard_trimmed.get(&shard).copied().unwrap_or(0)
    }

    /// The sequence number the next record will get: numbers from it on
    /// were never handed out.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.state.lock().next_sequence
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
    pub(crate) fn advance_trim(&self, floors: &TrimFloors) -> Option<StreamDescriptor> {
        let mut state = self.state.lock();
        state.trimmed_through = state.trimmed_through.max(floors.through);
        for (&number, &floor) in floors.shards.iter().flatten() {
            let entry = state.shard_trimmed.entry(number).or_insert(0);
            *entry = (*entry).max(floor);
        }
        let floor = state.trimmed_through;
        let before = state.descriptor.shards.len();
        state
            .descriptor
            .shards
            .retain(|s| s.ending_sequence.is_none_or(|end| end > floor));
        let LogState {
            descriptor,
            shard_trimmed,
            ..
        } = &mut *state;
        shard_trimmed.retain(|number, _| descriptor.shards.iter().any(|s| s.number == *number));
        (state.descriptor.shards.len() != before).then(|| state.descriptor.clone())
    }

    /// The trim floors with `floors` folded in, as the trim row stores
    /// them: every shard still listed (those that lost nothing at 0, so
    /// the row is never mistaken for an older one without shards).
    pub(crate) fn floors_after(&self, floors: &TrimFloors) -> TrimFloors {
        let state = self.state.lock();
        let through = state.trimmed_through.max(floors.through);
        let mut shards: HashMap<u32, u64> = state
            .descriptor
            .shards
            .iter()
            .filter(|s| s.ending_sequence.is_none_or(|end| end > through))
            .map(|s| (s.number, 0))
            .collect();
        for source in [Some(&state.shard_trimmed), floors.shards.as_ref()] {
            for (&number, &floor) in source.into_iter().flatten() {
                if let Some(entry) = shards.get_mut(&number) {
                    *entry = (*entry).max(floor);
                }
            }
        }
        TrimFloors {
            through,
            shards: Some(shards),
        }
    }
}

/// The first descriptor of a new stream: one open shard per partition of
/// the table, `starts` being the partitions' first tokens in order (the
/// first is 0), as DynamoDB gives a stream a shard per partition.
pub(crate) fn new_descriptor(
    keyspace: KeyspaceId,
    definition: &crate::kv::schema::TableDefinition,
    view_type: StreamViewType,
    label: String,
    now_millis: u64,
    starts: &[u64],
) -> StreamDescriptor {
    let mut shards = Vec::with_capacity(starts.len().max(1));
    let mut firsts = starts.to_vec();
    if firsts.first() != Some(&0) {
        firsts.insert(0, 0);
    }
    for (number, first) in firsts.iter().enumerate() {
        let last = firsts.get(number + 1).map_or(u64::MAX, |next| next - 1);
        shards.push(ShardDescriptor {
            number: number as u32,
            parent: None,
            token_first: *first,
            token_last: last,
            starting_sequence: 1,
            ending_sequence: None,
            created_millis: now_millis,
        });
    }
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
        next_shard: shards.len() as u32,
        shards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trim_rows_round_trip_and_older_rows_give_every_shard_the_floor() {
        let floors = TrimFloors {
            through: 90,
            shards: Some(HashMap::from([(0, 90), (3, 41)])),
        };
        assert_eq!(TrimFloors::decode(&floors.encode()), Some(floors.clone()));
        let empty = TrimFloors {
            through: 7,
            shards: Some(HashMap::new()),
        };
        // A row of the floor alone is an older row: no per-shard floors.
        assert_eq!(
            TrimFloors::decode(&empty.encode()).map(|f| f.shards),
            Some(None)
        );
        let mut value = floors.encode();
        for cut in [0, 7, 9, value.len() - 1] {
            assert_eq!(TrimFloors::decode(&value[..cut]), None, "cut {cut}");
        }
        value.push(0);
        assert_eq!(TrimFloors::decode(&value), None);
    }
}
