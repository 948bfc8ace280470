//! The DynamoDB Streams read operations: `list_streams`, `describe_stream`,
//! `get_shard_iterator` and `get_records`.
//!
//! A shard iterator is an opaque string naming a stream keyspace, a shard,
//! the next sequence number to read and when it was issued, with a
//! checksum; it expires [`ITERATOR_LIFETIME`] after it was issued, by the
//! database's clock. A reader never reads at or past the stream's visible
//! bound (see `shard.rs`), so no record can appear behind an iterator.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::record::{StoredRecord, format_sequence, parse_sequence, record_key, shard_prefix};
use super::shard::{ShardDescriptor, StreamDescriptor, StreamLog};
use crate::Database;
use crate::kv::error::{Error, Result};
use crate::kv::schema::{KeySchemaElement, StreamViewType, constraint_error};
use crate::storage::Direction;

/// How long a shard iterator stays valid: 15 minutes, as in DynamoDB.
pub const ITERATOR_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// The most records one `get_records` returns (and its largest `limit`).
pub const GET_RECORDS_LIMIT_MAX: usize = 1000;
/// The most record bytes one `get_records` returns: 1 MB.
pub const GET_RECORDS_BYTES_MAX: u64 = 1 << 20;
/// The largest `limit` of `list_streams` and `describe_stream`.
const LIST_LIMIT_MAX: usize = 100;

/// A stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamStatus {
    /// Being created (never reported: creation is immediate here).
    Enabling,
    /// Records are being written.
    Enabled,
    /// Being disabled (never reported: disabling is immediate here).
    Disabling,
    /// No more records are written; the old ones stay readable for the
    /// retention period.
    Disabled,
}

/// One stream in `list_streams`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream's ARN-like id.
    pub stream_arn: String,
    /// Its table.
    pub table_name: String,
    /// Its label (creation time).
    pub stream_label: String,
}

/// A shard's range of sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceNumberRange {
    /// The first sequence number it may hold.
    pub starting_sequence_number: String,
    /// The last one, once the shard is closed.
    pub ending_sequence_number: Option<String>,
}

/// One shard in `describe_stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// Its id.
    pub shard_id: String,
    /// The shard it was split from (read that one first).
    pub parent_shard_id: Option<String>,
    /// Its sequence numbers.
    pub sequence_number_range: SequenceNumberRange,
}

/// `describe_stream`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamDescription {
    /// The stream's ARN-like id.
    pub stream_arn: String,
    /// Its label.
    pub stream_label: String,
    /// Whether records are still written.
    pub stream_status: StreamStatus,
    /// What the records carry.
    pub stream_view_type: StreamViewType,
    /// When it was created.
    pub creation_request_date_time: SystemTime,
    /// Its table.
    pub table_name: String,
    /// Its table's key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// Its shards, parents before children.
    pub shards: Vec<Shard>,
    /// Set when more shards follow (pass it as `exclusive_start_shard_id`).
    pub last_evaluated_shard_id: Option<String>,
}

fn not_found(what: &str) -> Error {
    Error::ResourceNotFound(format!("Requested resource not found: {what}"))
}

fn stream(db: &Database, arn: &str) -> Result<Arc<StreamLog>> {
    db.inner
        .streams
        .by_arn(arn)
        .ok_or_else(|| not_found(&format!("Stream: {arn} not found")))
}

fn check_limit(limit: Option<usize>, max: usize) -> Result<()> {
    match limit {
        Some(n) if n == 0 || n > max => Err(constraint_error(
            &n.to_string(),
            "limit",
            &format!("Member must have value between 1 and {max}"),
        )),
        _ => Ok(()),
    }
}

/// A `list_streams` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListStreams {
    db: Database,
    table_name: Option<String>,
    limit: Option<usize>,
    exclusive_start_stream_arn: Option<String>,
}

/// What `list_streams` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListStreamsOutput {
    /// The streams, by table name then creation.
    pub streams: Vec<StreamSummary>,
    /// Set when more follow.
    pub last_evaluated_stream_arn: Option<String>,
}

impl ListStreams {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            table_name: None,
            limit: None,
            exclusive_start_stream_arn: None,
        }
    }

    /// Only the streams of this table.
    pub fn table_name(mut self, table: impl Into<String>) -> Self {
        self.table_name = Some(table.into());
        self
    }

    /// At most this many streams (1..=100, default 100).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after this stream.
    pub fn exclusive_start_stream_arn(mut self, arn: impl Into<String>) -> Self {
        self.exclusive_start_stream_arn = Some(arn.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<ListStreamsOutput> {
        check_limit(self.limit, LIST_LIMIT_MAX)?;
        let limit = self.limit.unwrap_or(LIST_LIMIT_MAX);
        let mut summaries: Vec<StreamSummary> = self
            .db
            .inner
            .streams
            .all()
            .iter()
            .map(|log| log.descriptor())
            .filter(|d| self.table_name.as_ref().is_none_or(|t| *t == d.table_name))
            .map(|d| StreamSummary {
                stream_arn: d.arn(),
                table_name: d.table_name.clone(),
                stream_label: d.label.clone(),
            })
            .collect();
        if let Some(start) = &self.exclusive_start_stream_arn {
            let at = summaries.iter().position(|s| s.stream_arn == *start);
            summaries.drain(..at.map_or(0, |at| at + 1));
        }
        let more = summaries.len() > limit;
        summaries.truncate(limit);
        Ok(ListStreamsOutput {
            last_evaluated_stream_arn: more
                .then(|| summaries.last().map(|s| s.stream_arn.clone()))
                .flatten(),
            streams: summaries,
        })
    }
}

/// A `describe_stream` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeStream {
    db: Database,
    stream_arn: String,
    limit: Option<usize>,
    exclusive_start_shard_id: Option<String>,
}

/// What `describe_stream` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeStreamOutput {
    /// The stream and its shards.
    pub stream_description: StreamDescription,
}

fn describe_shard(descriptor: &StreamDescriptor, shard: &ShardDescriptor) -> Shard {
    let parent = shard
        .parent
        .and_then(|p| descriptor.shards.iter().find(|s| s.number == p))
        .map(|p| descriptor.shard_id(p))
        // A trimmed parent is still named, as DynamoDB does.
        .or_else(|| {
            shard.parent.map(|p| {
                let mut gone = shard.clone();
                gone.number = p;
                gone.created_millis = descriptor.created_millis;
                descriptor.shard_id(&gone)
            })
        });
    Shard {
        shard_id: descriptor.shard_id(shard),
        parent_shard_id: parent,
        sequence_number_range: SequenceNumberRange {
            starting_sequence_number: format_sequence(shard.starting_sequence),
            ending_sequence_number: shard.ending_sequence.map(format_sequence),
        },
    }
}

impl DescribeStream {
    pub(crate) fn new(db: Database, stream_arn: String) -> Self {
        Self {
            db,
            stream_arn,
            limit: None,
            exclusive_start_shard_id: None,
        }
    }

    /// At most this many shards (1..=100, default 100).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continues after this shard.
    pub fn exclusive_start_shard_id(mut self, shard_id: impl Into<String>) -> Self {
        self.exclusive_start_shard_id = Some(shard_id.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<DescribeStreamOutput> {
        check_limit(self.limit, LIST_LIMIT_MAX)?;
        let limit = self.limit.unwrap_or(LIST_LIMIT_MAX);
        let descriptor = stream(&self.db, &self.stream_arn)?.descriptor();
        // Shards are numbered in creation order, so parents come first.
        let mut shards: Vec<Shard> = descriptor
            .shards
            .iter()
            .map(|s| describe_shard(&descriptor, s))
            .collect();
        if let Some(start) = &self.exclusive_start_shard_id {
            let at = shards.iter().position(|s| s.shard_id == *start);
            shards.drain(..at.map_or(0, |at| at + 1));
        }
        let more = shards.len() > limit;
        shards.truncate(limit);
        Ok(DescribeStreamOutput {
            stream_description: StreamDescription {
                stream_arn: descriptor.arn(),
                stream_label: descriptor.label.clone(),
                stream_status: if descriptor.disabled_millis.is_some() {
                    StreamStatus::Disabled
                } else {
                    StreamStatus::Enabled
                },
                stream_view_type: descriptor.view_type,
                creation_request_date_time: UNIX_EPOCH
                    + Duration::from_millis(descriptor.created_millis),
                table_name: descriptor.table_name.clone(),
                key_schema: descriptor.key.key_schema(),
                last_evaluated_shard_id: more
                    .then(|| shards.last().map(|s| s.shard_id.clone()))
                    .flatten(),
                shards,
            },
        })
    }
}

/// Where a new shard iterator starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardIteratorType {
    /// At the oldest record not yet trimmed.
    TrimHorizon,
    /// After the newest record: only later changes are read.
    Latest,
    /// At the record with the given sequence number.
    AtSequenceNumber,
    /// Just after the record with the given sequence number.
    AfterSequenceNumber,
}

/// A `get_shard_iterator` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetShardIterator {
    db: Database,
    stream_arn: String,
    shard_id: String,
    kind: ShardIteratorType,
    sequence_number: Option<String>,
}

/// What `get_shard_iterator` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetShardIteratorOutput {
    /// The iterator to pass to `get_records`.
    pub shard_iterator: String,
}

/// A decoded shard iterator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Position {
    pub(crate) keyspace: u32,
    pub(crate) shard: u32,
    /// The next sequence number to read.
    pub(crate) next: u64,
    pub(crate) issued_millis: u64,
}

impl Position {
    pub(crate) fn encode(self) -> String {
        let body = format!(
            "{:08x}{:08x}{:016x}{:016x}",
            self.keyspace, self.shard, self.next, self.issued_millis
        );
        format!("{body}{:08x}", crc32fast::hash(body.as_bytes()))
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        if text.len() != 56 || !text.is_ascii() {
            return None;
        }
        let (body, check) = text.split_at(48);
        if u32::from_str_radix(check, 16).ok()? != crc32fast::hash(body.as_bytes()) {
            return None;
        }
        Some(Self {
            keyspace: u32::from_str_radix(&body[..8], 16).ok()?,
            shard: u32::from_str_radix(&body[8..16], 16).ok()?,
            next: u64::from_str_radix(&body[16..32], 16).ok()?,
            issued_millis: u64::from_str_radix(&body[32..48], 16).ok()?,
        })
    }
}

fn now_millis(db: &Database) -> u64 {
    db.inner.clock.since_epoch().as_millis() as u64
}

fn trimmed(what: &str) -> Error {
    Error::TrimmedDataAccess(format!(
        "The operation attempted to read past the oldest stream record in a shard: {what}"
    ))
}

impl GetShardIterator {
    pub(crate) fn new(
        db: Database,
        stream_arn: String,
        shard_id: String,
        kind: ShardIteratorType,
    ) -> Self {
        Self {
            db,
            stream_arn,
            shard_id,
            kind,
            sequence_number: None,
        }
    }

    /// The sequence number of `AtSequenceNumber` and `AfterSequenceNumber`.
    pub fn sequence_number(mut self, sequence_number: impl Into<String>) -> Self {
        self.sequence_number = Some(sequence_number.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<GetShardIteratorOutput> {
        let log = stream(&self.db, &self.stream_arn)?;
        let bound = log.visible_bound();
        let descriptor = log.descriptor();
        let shard = descriptor
            .shard_by_id(&self.shard_id)
            .ok_or_else(|| not_found(&format!("Shard {} not found", self.shard_id)))?;
        let floor = log.shard_trimmed_through(shard.number) + 1;
        // An open shard's numbers end where the stream has handed out none.
        let end = shard
            .ending_sequence
            .map_or_else(|| log.next_sequence(), |e| e + 1);
        let at = match (self.kind, &self.sequence_number) {
            (ShardIteratorType::TrimHorizon, None) => shard.starting_sequence.max(floor),
            (ShardIteratorType::Latest, None) => bound.min(end).max(shard.starting_sequence),
            (
                ShardIteratorType::AtSequenceNumber | ShardIteratorType::AfterSequenceNumber,
                Some(text),
            ) => {
                let sequence = parse_sequence(text)
                    .ok_or_else(|| Error::validation(format!("Invalid SequenceNumber: {text}")))?;
                if sequence < shard.starting_sequence || sequence >= end {
                    return Err(Error::validation(format!(
                        "Invalid SequenceNumber {text} for shard {}",
                        self.shard_id
                    )));
                }
                if sequence < floor {
                    return Err(trimmed(&self.shard_id));
                }
                if self.kind == ShardIteratorType::AtSequenceNumber {
                    sequence
                } else {
                    sequence + 1
                }
            }
            (ShardIteratorType::TrimHorizon | ShardIteratorType::Latest, Some(_)) => {
                return Err(Error::validation(
                    "SequenceNumber is only allowed with AT_SEQUENCE_NUMBER or \
                     AFTER_SEQUENCE_NUMBER",
                ));
            }
            (_, None) => {
                return Err(Error::validation(
                    "Must specify SequenceNumber with AT_SEQUENCE_NUMBER or \
                     AFTER_SEQUENCE_NUMBER",
                ));
            }
        };
        let position = Position {
            keyspace: log.keyspace,
            shard: shard.number,
            next: at,
            issued_millis: now_millis(&self.db),
        };
        Ok(GetShardIteratorOutput {
            shard_iterator: position.encode(),
        })
    }
}

/// A `get_records` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetRecords {
    db: Database,
    shard_iterator: String,
    limit: Option<usize>,
}

/// What `get_records` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct GetRecordsOutput {
    /// The records, in sequence order (possibly none, even if more follow).
    pub records: Vec<super::Record>,
    /// Where to continue; `None` once a closed shard is drained.
    pub next_shard_iterator: Option<String>,
}

impl GetRecords {
    pub(crate) fn new(db: Database, shard_iterator: String) -> Self {
        Self {
            db,
            shard_iterator,
            limit: None,
        }
    }

    /// At most this many records (1..=1000, default 1000).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<GetRecordsOutput> {
        check_limit(self.limit, GET_RECORDS_LIMIT_MAX)?;
        let limit = self.limit.unwrap_or(GET_RECORDS_LIMIT_MAX);
        let position = Position::decode(&self.shard_iterator)
            .ok_or_else(|| Error::validation("Invalid ShardIterator"))?;
        let now = now_millis(&self.db);
        let age = now.saturating_sub(position.issued_millis);
        if age > ITERATOR_LIFETIME.as_millis() as u64 {
            return Err(Error::ExpiredIterator(format!(
                "Iterator expired. The iterator was created at time {} while right now it is \
                 {now} which is further in the future than the tolerated delay of {} \
                 milliseconds.",
                position.issued_millis,
                ITERATOR_LIFETIME.as_millis()
            )));
        }
        let log = self
            .db
            .inner
            .streams
            .get(position.keyspace)
            .ok_or_else(|| not_found("Stream not found"))?;
        let (records, next) = read_shard(&self.db, &log, position, limit)?;
        Ok(GetRecordsOutput {
            records,
            next_shard_iterator: next.map(|next| {
                Position {
                    next,
                    issued_millis: now,
                    ..position
                }
                .encode()
            }),
        })
    }
}

/// Reads up to `limit` records (and about 1 MB) from `position`; returns
/// them and the next position (`None`: a closed shard is drained).
pub(crate) fn read_shard(
    db: &Database,
    log: &StreamLog,
    position: Position,
    limit: usize,
) -> Result<(Vec<super::Record>, Option<u64>)> {
    // The bound first: everything below it is settled before the scan.
    let bound = log.visible_bound();
    let descriptor = log.descriptor();
    let shard = match descriptor
        .shards
        .iter()
        .find(|s| s.number == position.shard)
    {
        Some(shard) => shard,
        None if position.next <= log.trimmed_through() => return Err(trimmed("shard trimmed")),
        None => return Err(not_found("Shard not found")),
    };
    let floor = log.shard_trimmed_through(shard.number) + 1;
    if position.next < floor {
        // Records of this shard from the position on were deleted.
        return Err(trimmed(&descriptor.shard_id(shard)));
    }
    let end = shard.ending_sequence.map_or(bound, |e| bound.min(e + 1));
    let shard_id = descriptor.shard_id(shard);
    let mut records = Vec::new();
    let mut next = position.next;
    let mut bytes = 0u64;
    let mut full = false;
    if next < end {
        let range = record_key(log.keyspace, shard.number, next)
            ..record_key(log.keyspace, shard.number, end);
        for row in db.inner.engine.range(range, Direction::Forward, None)? {
            let (key, value) = row?;
            let sequence = super::record::sequence_of_key(&key)
                .filter(|_| key.starts_with(&shard_prefix(log.keyspace, shard.number)))
                .ok_or_else(|| {
                    crate::storage::StorageError::corruption("stream record key", 0, "bad key")
                })?;
            let record = StoredRecord::decode(sequence, &value)?;
            if !records.is_empty() && bytes + record.size_bytes > GET_RECORDS_BYTES_MAX {
                full = true;
                break;
            }
            bytes += record.size_bytes;
            next = sequence + 1;
            records.push(record.into_record(descriptor.view_type, &shard_id));
            if records.len() == limit {
                full = true;
                break;
            }
        }
        if !full {
            // Nothing more below `end`: the position may move up to it.
            next = next.max(end);
        }
    }
    let drained = shard.ending_sequence.is_some_and(|e| next > e);
    Ok((records, (!drained).then_some(next)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_round_trip_and_reject_tampering() {
        let position = Position {
            keyspace: 17,
            shard: 3,
            next: 99,
            issued_millis: 1_700_000_000_000,
        };
        let text = position.encode();
        assert_eq!(Position::decode(&text), Some(position));
        let mut tampered = text.into_bytes();
        tampered[20] = if tampered[20] == b'1' { b'2' } else { b'1' };
        assert_eq!(
            Position::decode(&String::from_utf8(tampered).unwrap()),
            None
        );
        assert_eq!(Position::decode("short"), None);
        assert_eq!(Position::decode(&"é".repeat(28)), None);
    }
}
