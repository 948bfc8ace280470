//! DynamoDB Streams: every change of an item of a table with a stream is
//! recorded, in the same engine batch as the change (`kv::write::Staging`),
//! in the stream's own keyspace; readers page through shards with
//! iterators; a trimmer deletes records older than the retention period.
//!
//! What this module owns: the stream catalogue rows (tag 07), the record
//! rows, the in-memory [`Streams`] registry and the readers. It never
//! writes an item: records only describe changes that `Staging` commits.
//!
//! ```
//! use nimbus::kv::{ShardIteratorType, StreamSpecification, StreamViewType};
//! use nimbus::{Database, ScalarType, item};
//!
//! let db = Database::memory()?;
//! db.create_table("Users")
//!     .partition_key("id", ScalarType::S)
//!     .stream_specification(StreamSpecification {
//!         stream_enabled: true,
//!         stream_view_type: Some(StreamViewType::NewImage),
//!     })
//!     .send()?;
//! db.put_item("Users").item(item! { "id" => "u1" }).send()?;
//! let arn = db.describe_table("Users").send()?.table.latest_stream_arn.unwrap();
//! let stream = db.describe_stream(&arn).send()?.stream_description;
//! let iterator = db
//!     .get_shard_iterator(&arn, &stream.shards[0].shard_id, ShardIteratorType::TrimHorizon)
//!     .send()?
//!     .shard_iterator;
//! let records = db.get_records(&iterator).send()?.records;
//! assert_eq!(records[0].dynamodb.new_image, Some(item! { "id" => "u1" }));
//! # Ok::<(), nimbus::kv::Error>(())
//! ```

mod reader;
mod record;
mod shard;
mod trim;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

pub use reader::{
    DescribeStream, DescribeStreamOutput, GET_RECORDS_BYTES_MAX, GET_RECORDS_LIMIT_MAX, GetRecords,
    GetRecordsOutput, GetShardIterator, GetShardIteratorOutput, ITERATOR_LIFETIME, ListStreams,
    ListStreamsOutput, SequenceNumberRange, Shard, ShardIteratorType, StreamDescription,
    StreamStatus, StreamSummary,
};
pub(crate) use reader::{Position, read_shard};
pub(crate) use record::{Change, parse_sequence, put_change, record_key};
pub use record::{Identity, OperationType, Record, StreamRecord};
pub(crate) use shard::{Reservation, StreamDescriptor as StreamDescriptorView, StreamLog};
pub use trim::DEFAULT_STREAM_RETENTION;
pub(crate) use trim::trim_streams;

use super::catalogue::{KvState, catalogue_key};
use super::error::{Error, Result};
use super::schema::{StreamViewType, TableDefinition};
use super::trigger::EventSourceMapping;
use crate::db::DatabaseInner;
use crate::partition::KeyspaceId;
use crate::storage::{Direction, Engine, StorageError, WriteBatch};
use shard::{StreamRow, new_descriptor, parse_stream_row};

/// Every stream of the database, enabled or kept for reading after being
/// disabled, by keyspace.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    logs: RwLock<HashMap<KeyspaceId, Arc<StreamLog>>>,
    /// Running event-source mappings, stopped when the database closes.
    mappings: parking_lot::Mutex<Vec<EventSourceMapping>>,
}

impl Streams {
    /// Loads every stream from the catalogue. A stream whose table no
    /// longer names it (a crash between the table's and the stream's
    /// update) is disabled now.
    pub(crate) fn load(engine: &Engine, kv: &KvState, now_millis: u64) -> Result<Self> {
        let mut descriptors = Vec::new();
        let mut trimmed = HashMap::new();
        for row in engine.prefix(
            &catalogue_key(shard::STREAM_TAG, &[]),
            Direction::Forward,
            None,
        )? {
            let (key, value) = row?;
            match parse_stream_row(&key) {
                Some(StreamRow::Descriptor) => {
                    let descriptor: shard::StreamDescriptor = serde_json::from_slice(&value)
                        .map_err(|e| corrupt(format!("stream descriptor: {e}")))?;
                    descriptors.push(descriptor);
                }
                Some(StreamRow::Trimmed(keyspace)) => {
                    let floors = shard::TrimFloors::decode(&value)
                        .ok_or_else(|| corrupt("stream trim floor"))?;
                    trimmed.insert(keyspace, floors);
                }
                None => return Err(corrupt("unknown stream row").into()),
            }
        }
        let streams = Self::default();
        for descriptor in descriptors {
            let mut last = 0;
            for shard in &descriptor.shards {
                let prefix = record::shard_prefix(descriptor.keyspace, shard.number);
                if let Some(row) = engine.prefix(&prefix, Direction::Reverse, None)?.next() {
                    let (key, _) = row?;
                    let sequence =
                        record::sequence_of_key(&key).ok_or_else(|| corrupt("record key"))?;
                    last = last.max(sequence);
                }
                last = last.max(shard.ending_sequence.unwrap_or(0));
                last = last.max(shard.starting_sequence.saturating_sub(1));
            }
            let keyspace = descriptor.keyspace;
            let owned = kv.table(&descriptor.table_name).is_ok_and(|table| {
                let definition = table.definition();
                definition.table_id == descriptor.table_id
                    && definition.stream_keyspace == Some(keyspace)
            });
            let disabled = descriptor.disabled_millis.is_some();
            let floors = trimmed.remove(&keyspace).unwrap_or(shard::TrimFloors {
                through: 0,
                shards: Some(HashMap::new()),
            });
            let log = Arc::new(StreamLog::new(descriptor, last + 1, floors));
            if !owned && !disabled {
                log.disable(engine, now_millis)?;
            }
            streams.logs.write().insert(keyspace, log);
        }
        Ok(streams)
    }

    /// The stream in `keyspace`.
    pub(crate) fn get(&self, keyspace: KeyspaceId) -> Option<Arc<StreamLog>> {
        self.logs.read().get(&keyspace).cloned()
    }

    /// Every stream, ordered by table name, then creation time.
    pub(crate) fn all(&self) -> Vec<Arc<StreamLog>> {
        let mut logs: Vec<(String, u64, Arc<StreamLog>)> = self
            .logs
            .read()
            .values()
            .map(|log| {
                let d = log.descriptor();
                (d.table_name, d.created_millis, Arc::clone(log))
            })
            .collect();
        logs.sort_by(|a, b| (&a.0, a.1, a.2.keyspace).cmp(&(&b.0, b.1, b.2.keyspace)));
        logs.into_iter().map(|(_, _, log)| log).collect()
    }

    /// The stream whose ARN is `arn`.
    pub(crate) fn by_arn(&self, arn: &str) -> Option<Arc<StreamLog>> {
        self.logs
            .read()
            .values()
            .find(|log| log.descriptor().arn() == arn)
            .cloned()
    }

    fn insert(&self, log: Arc<StreamLog>) {
        self.logs.write().insert(log.keyspace, log);
    }

    /// Starts a mapping with `start` and registers it, unless a running
    /// mapping of this database is named `name`: the two would share one
    /// set of checkpoints, so each would deliver every record, and after a
    /// restart either could resume from the other's position.
    pub(crate) fn add_mapping(
        &self,
        name: &str,
        start: impl FnOnce() -> Result<EventSourceMapping>,
    ) -> Result<EventSourceMapping> {
        // Held while `start` runs, so that of two requests for one name
        // only the first passes the check.
        let mut mappings = self.mappings.lock();
        mappings.retain(EventSourceMapping::is_running);
        if mappings.iter().any(|mapping| mapping.name() == name) {
            return Err(Error::ResourceInUse(format!(
                "An event source mapping named {name} is already running on this database; \
                 give the new mapping a distinct name, or stop the running one first"
            )));
        }
        let mapping = start()?;
        mappings.push(mapping.clone());
        Ok(mapping)
    }

    /// Stops every mapping (on close).
    pub(crate) fn stop_mappings(&self) {
        let mappings = std::mem::take(&mut *self.mappings.lock());
        for mapping in mappings {
            mapping.stop();
        }
    }

    /// Forgets a purged stream.
    pub(crate) fn remove(&self, keyspace: KeyspaceId) {
        self.logs.write().remove(&keyspace);
    }
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::corruption("stream catalogue", 0, what)
}

/// A stream created in the batch that creates (or updates) its table; it
/// is registered with [`PendingStream::register`] once that batch commits
/// and before any write can see the table's new definition.
#[must_use = "a created stream must be registered after its batch commits"]
pub(crate) struct PendingStream(Arc<StreamLog>);

impl PendingStream {
    /// Makes the stream live.
    pub(crate) fn register(self, db: &DatabaseInner) {
        db.streams.insert(self.0);
    }
}

/// Creates the stream of `definition` in `batch`: allocates its keyspace,
/// labels it and names it in the definition, and adds its descriptor.
///
/// The label (the last part of the stream's ARN) is the creation time to
/// the millisecond. A table's stream re-enabled within the millisecond
/// its predecessor was created (or under a clock set back) is created
/// one millisecond after the newest stream of the table still listed, so
/// every stream of a table has an ARN of its own.
pub(crate) fn create_stream(
    db: &DatabaseInner,
    definition: &mut TableDefinition,
    view_type: StreamViewType,
    partition_starts: &[u64],
    batch: &mut WriteBatch,
) -> Result<PendingStream> {
    let keyspace = db.kv.allocate_keyspaces(1, batch);
    let table_arn = definition.table_arn();
    let newest = db
        .streams
        .all()
        .iter()
        .map(|log| log.descriptor())
        .filter(|d| d.table_arn == table_arn)
        .map(|d| d.created_millis)
        .max();
    let now_millis = db.clock.since_epoch().as_millis() as u64;
    let now_millis = newest.map_or(now_millis, |newest| now_millis.max(newest + 1));
    let label = crate::kv::tables::stream_label(std::time::Duration::from_millis(now_millis));
    definition.stream_label = Some(label.clone());
    definition.stream_keyspace = Some(keyspace);
    let descriptor = new_descriptor(
        keyspace,
        definition,
        view_type,
        label,
        now_millis,
        partition_starts,
    );
    descriptor.put(batch)?;
    let floors = shard::TrimFloors {
        through: 0,
        shards: Some(HashMap::new()),
    };
    Ok(PendingStream(Arc::new(StreamLog::new(
        descriptor, 1, floors,
    ))))
}

/// Disables the stream in `keyspace` (its table disabled it or was
/// deleted); it stays readable for the retention period.
pub(crate) fn disable_stream(db: &DatabaseInner, keyspace: KeyspaceId) -> Result<()> {
    match db.streams.get(keyspace) {
        Some(log) => log.disable(&db.engine, db.clock.since_epoch().as_millis() as u64),
        None => Ok(()),
    }
}

/// Closes the open shard of `table`'s stream that contains `token` and
/// opens two children that name it as parent (the partition split calls
/// this when it splits the partition at `token`), committing the change in
/// one batch with what `batch` already holds (the partition map's change,
/// so the two splits are atomic). Returns the children's shard ids. Durable
/// before it returns; on an error nothing of `batch` was written.
pub(crate) fn split_shard(
    db: &DatabaseInner,
    table: &str,
    token: u64,
    batch: &mut WriteBatch,
) -> Result<(String, String)> {
    let handle = db.kv.table(table)?;
    let keyspace = handle
        .definition()
        .stream_keyspace
        .ok_or_else(|| super::error::Error::validation("The table has no enabled stream"))?;
    let log = db
        .streams
        .get(keyspace)
        .ok_or_else(|| super::error::Error::table_not_found(table))?;
    let now_millis = db.clock.since_epoch().as_millis() as u64;
    let (left, right) = log.split(&db.engine, token, now_millis, batch)?;
    let descriptor = log.descriptor();
    let id = |number| {
        descriptor
            .shards
            .iter()
            .find(|s| s.number == number)
            .map(|s| descriptor.shard_id(s))
            .unwrap_or_default()
    };
    Ok((id(left), id(right)))
}

/// Adds the record of `change` (whose sides differ) of the item at
/// `row_key` to `batch`, reserving its sequence number; `None` if the table
/// has no stream with an open shard. With the reservation comes where the
/// record's new image lies in `batch`, if it holds one (see
/// [`put_change`]).
pub(crate) fn stage_record(
    db: &DatabaseInner,
    definition: &TableDefinition,
    row_key: &[u8],
    change: Change<'_>,
    service: bool,
    batch: &mut WriteBatch,
) -> Option<(Reserved, Option<crate::storage::ValueRef>)> {
    // A definition copied without its stream (a restored table clears the
    // label) must not write into the original table's stream.
    definition.stream_label.as_ref()?;
    let keyspace = definition.stream_keyspace?;
    let log = db.streams.get(keyspace)?;
    let view = definition
        .stream_specification
        .and_then(|s| s.stream_view_type)
        .unwrap_or(StreamViewType::KeysOnly);
    let token = row_key
        .get(4..12)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0);
    let now_millis = db.clock.since_epoch().as_millis() as u64;
    let reservation = log.reserve(token)?;
    let new_image_at = put_change(
        batch,
        &record_key(keyspace, reservation.shard, reservation.sequence),
        &definition.key,
        view,
        change,
        now_millis,
        service,
    );
    Some(((log, reservation), new_image_at))
}

/// A record's reserved sequence number in its stream's log.
pub(crate) type Reserved = (Arc<StreamLog>, Reservation);

/// Releases reservations when dropped, whether their batch committed or
/// not, so readers are never held back by a write that ended.
#[derive(Debug, Default)]
pub(crate) struct Reservations(Vec<Reserved>);

impl Reservations {
    pub(crate) fn push(&mut self, entry: Reserved) {
        self.0.push(entry);
    }
}

impl Drop for Reservations {
    fn drop(&mut self) {
        for (log, reservation) in &self.0 {
            log.release(reservation.sequence);
        }
    }
}

/// Implements the DynamoDB Streams operations on [`crate::Database`].
impl crate::Database {
    /// Starts a `ListStreams` request.
    pub fn list_streams(&self) -> ListStreams {
        ListStreams::new(self.clone())
    }

    /// Starts a `DescribeStream` request.
    pub fn describe_stream(&self, stream_arn: impl Into<String>) -> DescribeStream {
        DescribeStream::new(self.clone(), stream_arn.into())
    }

    /// Starts a `GetShardIterator` request.
    pub fn get_shard_iterator(
        &self,
        stream_arn: impl Into<String>,
        shard_id: impl Into<String>,
        shard_iterator_type: ShardIteratorType,
    ) -> GetShardIterator {
        GetShardIterator::new(
            self.clone(),
            stream_arn.into(),
            shard_id.into(),
            shard_iterator_type,
        )
    }

    /// Starts a `GetRecords` request.
    pub fn get_records(&self, shard_iterator: impl Into<String>) -> GetRecords {
        GetRecords::new(self.clone(), shard_iterator.into())
    }

    /// Splits the open shard of `table`'s stream that covers `token` into
    /// two children (what a partition split does). Public for tests of
    /// shard lineage; the partition layer calls it on its splits.
    #[doc(hidden)]
    pub fn split_stream_shard(&self, table: &str, token: u64) -> Result<(String, String)> {
        split_shard(&self.inner, table, token, &mut WriteBatch::new())
    }

    /// Deletes every stream record older than the retention period now,
    /// and forgets disabled streams past it (the background trimmer does
    /// this periodically).
    pub fn trim_streams_now(&self) -> Result<()> {
        trim_streams(&self.inner)
    }
}
