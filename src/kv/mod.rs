//! DynamoDB-style tables on the storage engine: the catalogue, items and
//! their keys, expressions, Query and Scan, batches and transactions.
//!
//! Operations hang off [`Database`] (or a [`Table`] handle) and are named
//! after DynamoDB's, with builders whose setters are the request's
//! parameters:
//!
//! ```
//! use nimbus::kv::ReturnValue;
//! use nimbus::{Database, ScalarType, item};
//!
//! let db = Database::memory()?;
//! db.create_table("Music")
//!     .partition_key("Artist", ScalarType::S)
//!     .sort_key("SongTitle", ScalarType::S)
//!     .send()?;
//! db.put_item("Music")
//!     .item(item! { "Artist" => "Acme", "SongTitle" => "Hi", "Plays" => 1 })
//!     .condition_expression("attribute_not_exists(Artist)")
//!     .send()?;
//! let updated = db
//!     .update_item("Music")
//!     .key(item! { "Artist" => "Acme", "SongTitle" => "Hi" })
//!     .update_expression("SET Plays = Plays + :one")
//!     .value(":one", 1)
//!     .return_values(ReturnValue::UpdatedNew)
//!     .send()?;
//! assert_eq!(updated.attributes, Some(item! { "Plays" => 2 }));
//! # Ok::<(), nimbus::kv::Error>(())
//! ```
//!
//! Rows live under `keyspace | token | partition key | sort key`
//! (`partition`), items are stored in the compact encoding of
//! `value::encode_item`, and every write of an item takes its lock
//! (`locks`) so conditions and transactions are serializable.

mod backup;
mod batch;
mod capacity;
mod catalogue;
mod error;
mod export;
pub mod expr;
mod import;
mod index_ddl;
mod index_read;
mod items;
mod keys;
mod locks;
mod page;
mod partitions;
mod pitr;
mod progress;
mod query;
mod request;
mod schema;
mod stream;
mod sweeper;
mod tables;
mod tags;
mod throttle;
mod transact;
mod transfer_reads;
mod transfers;
mod trigger;
mod ttl;
mod views;
mod write;

pub use crate::db::ITEM_COLLECTION_SIZE_LIMIT;
pub use backup::{
    BackupDescription, BackupDetails, BackupStatus, BackupSummary, BackupType, CreateBackup,
    CreateBackupOutput, DeleteBackup, DeleteBackupOutput, DescribeBackup, DescribeBackupOutput,
    ListBackups, ListBackupsOutput, RestoreTableFromBackup, RestoreTableFromBackupOutput,
    SourceTableDetails, SourceTableFeatureDetails,
};
pub use batch::{
    BATCH_BYTES_MAX, BATCH_GET_ITEMS_MAX, BATCH_WRITE_ITEMS_MAX, BatchGetItem, BatchGetItemOutput,
    BatchWriteItem, BatchWriteItemOutput, KeysAndAttributes, WriteRequest,
};
pub(crate) use capacity::write_units;
pub use capacity::{READ_UNIT_BYTES, WRITE_UNIT_BYTES};
pub(crate) use catalogue::{BACKFILL_TAG, Counts, KvState, TableHandle, catalogue_key};
pub use error::{CancellationReason, Error, Result};
pub use export::{
    ExportDescription, ExportFormat, ExportStatus, ExportTableToPointInTime,
    ExportTableToPointInTimeOutput, ExportType,
};
pub use import::{
    IMPORT_ERRORS_REPORTED, ImportError, ImportStatus, ImportTable, ImportTableDescription,
    ImportTableOutput, InputCompressionType, InputFormat, TableCreationParameters,
};
pub use index_ddl::GlobalSecondaryIndexUpdate;
pub use items::{
    DeleteItem, DeleteItemOutput, GetItem, GetItemOutput, PutItem, PutItemOutput, UpdateItem,
    UpdateItemOutput,
};
pub use page::{MAX_PAGE_BYTES, Select};
pub use partitions::{
    HEAT_SPLIT_UNITS_PER_SECOND, HEAT_SPLIT_WINDOW, HOT_KEYS_MAX, HotKey, PARTITION_READ_UNITS_MAX,
    PARTITION_SPLIT_BYTES, PARTITION_WRITE_UNITS_MAX, PartitionDescription, PartitionOptions,
};
pub(crate) use pitr::PitrDefinition;
pub use pitr::{
    ContinuousBackupsDescription, ContinuousBackupsStatus, DescribeContinuousBackups,
    DescribeContinuousBackupsOutput, PITR_SNAPSHOT_INTERVAL, PitrMaintenance, PitrStorage,
    PointInTimeRecoveryDescription, PointInTimeRecoveryStatus, RECOVERY_PERIOD_DAYS_MAX,
    RECOVERY_PERIOD_DAYS_MIN, RestoreTableToPointInTime, RestoreTableToPointInTimeOutput,
    UpdateContinuousBackups, UpdateContinuousBackupsOutput,
};
pub use progress::{PROGRESS_EVERY_ITEMS, Progress};
pub use query::{Items, MAX_TOTAL_SEGMENTS, Paged, Query, QueryOutput, Scan, ScanOutput};
pub use request::{
    Capacity, ConsumedCapacity, ItemCollectionMetrics, ReturnConsumedCapacity,
    ReturnItemCollectionMetrics, ReturnValue, ReturnValuesOnConditionCheckFailure,
};
pub(crate) use schema::TableDefinition;
pub use schema::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, GlobalSecondaryIndexDescription,
    IndexProjection, IndexStatus, KeyDefinition, KeySchemaElement, KeyType, LocalSecondaryIndex,
    LocalSecondaryIndexDescription, MAX_GLOBAL_SECONDARY_INDEXES, MAX_LOCAL_SECONDARY_INDEXES,
    MAX_PROJECTED_NON_KEY_ATTRIBUTES, ProjectionType, ProvisionedThroughput, StreamSpecification,
    StreamViewType, TableDescription, TableStatus,
};
pub(crate) use stream::Streams;
pub use stream::{
    DEFAULT_STREAM_RETENTION, DescribeStream, DescribeStreamOutput, GET_RECORDS_BYTES_MAX,
    GET_RECORDS_LIMIT_MAX, GetRecords, GetRecordsOutput, GetShardIterator, GetShardIteratorOutput,
    ITERATOR_LIFETIME, Identity, ListStreams, ListStreamsOutput, OperationType, Record,
    SequenceNumberRange, Shard, ShardIteratorType, StreamDescription, StreamRecord, StreamStatus,
    StreamSummary,
};
pub(crate) use sweeper::Sweeper;
pub use tables::{
    CreateTable, CreateTableOutput, DeleteTable, DeleteTableOutput, DescribeTable,
    DescribeTableOutput, LIST_TABLES_LIMIT_MAX, ListTables, ListTablesOutput,
    ON_DEMAND_SWITCHES_PER_DAY, UpdateTable, UpdateTableOutput,
};
pub use tags::{
    ListTagsOfResource, TAG_KEY_CHARS_MAX, TAG_VALUE_CHARS_MAX, TAGS_PER_RESOURCE_MAX, Tag,
    TagResource, UntagResource,
};
pub use throttle::{INDEX_THROTTLED, TABLE_THROTTLED};
pub use transact::{
    CLIENT_REQUEST_TOKEN_MAX, ConditionCheck, IDEMPOTENCY_WINDOW, TRANSACT_ITEMS_MAX,
    TRANSACT_PAYLOAD_BYTES_MAX, TRANSACTION_LOCK_PATIENCE, TransactDelete, TransactGet,
    TransactGetItems, TransactGetItemsOutput, TransactPut, TransactUpdate, TransactWriteItem,
    TransactWriteItems, TransactWriteItemsOutput,
};
pub use transfer_reads::{
    DescribeExport, DescribeExportOutput, DescribeImport, DescribeImportOutput, ExportSummary,
    ImportSummary, LIST_EXPORTS_MAX_RESULTS, LIST_IMPORTS_PAGE_SIZE_MAX, ListExports,
    ListExportsOutput, ListImports, ListImportsOutput,
};
pub use transfers::{CLIENT_TOKEN_WINDOW, INTERRUPTED_FAILURE_CODE};
pub use trigger::{
    BATCH_SIZE_MAX, BATCHING_WINDOW_MAX, ConsumerBatch, CreateEventSourceMapping,
    EventSourceMapping, FailedBatch, FailureReason, Handler, HandlerError, OnFailure,
    OpenStreamConsumer, RECORD_AGE_MAX, RETRY_ATTEMPTS_MAX, StartingPosition, StreamConsumer,
};
pub use ttl::{
    DEFAULT_TTL_SWEEP_INTERVAL, DescribeTimeToLive, DescribeTimeToLiveOutput, TTL_IGNORED_AFTER,
    TimeToLiveDescription, TimeToLiveSpecification, TimeToLiveStatus, UpdateTimeToLive,
    UpdateTimeToLiveOutput,
};
pub(crate) use {stream::trim_streams, ttl::sweep_expired};
// The multi-active apply path (replication::multi) writes items through these.
pub(crate) use keys::{key_from_key_map, key_map_of};
pub(crate) use partitions::run_pending as run_pending_splits;
pub(crate) use write::{Staging, read_item};

/// Stops the kv layer's background threads (sweeper, event-source
/// mappings) before the database closes.
pub(crate) fn stop_background(db: &crate::db::DatabaseInner) {
    db.sweeper.stop();
    db.streams.stop_mappings();
}

use crate::Database;

/// Implements the item operations on a type with `db` and a way to name
/// the table.
impl Database {
    /// Starts a `CreateTable` request.
    pub fn create_table(&self, table: impl Into<String>) -> CreateTable {
        CreateTable::new(self.clone(), table.into())
    }

    /// Starts a `DescribeTable` request.
    pub fn describe_table(&self, table: impl Into<String>) -> DescribeTable {
        DescribeTable::new(self.clone(), table.into())
    }

    /// Starts a `ListTables` request.
    pub fn list_tables(&self) -> ListTables {
        ListTables::new(self.clone())
    }

    /// Starts an `UpdateTable` request.
    pub fn update_table(&self, table: impl Into<String>) -> UpdateTable {
        UpdateTable::new(self.clone(), table.into())
    }

    /// Starts a `DeleteTable` request.
    pub fn delete_table(&self, table: impl Into<String>) -> DeleteTable {
        DeleteTable::new(self.clone(), table.into())
    }

    /// Starts a `PutItem` request.
    pub fn put_item(&self, table: impl Into<String>) -> PutItem {
        PutItem::new(self.clone(), table.into())
    }

    /// Starts a `GetItem` request.
    pub fn get_item(&self, table: impl Into<String>) -> GetItem {
        GetItem::new(self.clone(), table.into())
    }

    /// Starts an `UpdateItem` request.
    pub fn update_item(&self, table: impl Into<String>) -> UpdateItem {
        UpdateItem::new(self.clone(), table.into())
    }

    /// Starts a `DeleteItem` request.
    pub fn delete_item(&self, table: impl Into<String>) -> DeleteItem {
        DeleteItem::new(self.clone(), table.into())
    }

    /// Starts a `Query` request.
    pub fn query(&self, table: impl Into<String>) -> Query {
        Query::new(self.clone(), table.into())
    }

    /// Starts a `Scan` request.
    pub fn scan(&self, table: impl Into<String>) -> Scan {
        Scan::new(self.clone(), table.into())
    }

    /// Starts a `BatchGetItem` request.
    pub fn batch_get_item(&self) -> BatchGetItem {
        BatchGetItem::new(self.clone())
    }

    /// Starts a `BatchWriteItem` request.
    pub fn batch_write_item(&self) -> BatchWriteItem {
        BatchWriteItem::new(self.clone())
    }

    /// Starts a `TransactWriteItems` request.
    pub fn transact_write_items(&self) -> TransactWriteItems {
        TransactWriteItems::new(self.clone())
    }

    /// Starts a `TransactGetItems` request.
    pub fn transact_get_items(&self) -> TransactGetItems {
        TransactGetItems::new(self.clone())
    }

    /// A handle on one table, so its name is given once.
    pub fn table(&self, table: impl Into<String>) -> Table {
        Table {
            db: self.clone(),
            name: table.into(),
        }
    }
}

/// One table of a [`Database`]: the item operations without repeating the
/// table's name.
#[derive(Debug, Clone)]
pub struct Table {
    db: Database,
    name: String,
}

impl Table {
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a `DescribeTable` request.
    pub fn describe(&self) -> DescribeTable {
        self.db.describe_table(self.name.clone())
    }

    /// Starts a `PutItem` request.
    pub fn put_item(&self) -> PutItem {
        self.db.put_item(self.name.clone())
    }

    /// Starts a `GetItem` request.
    pub fn get_item(&self) -> GetItem {
        self.db.get_item(self.name.clone())
    }

    /// Starts an `UpdateItem` request.
    pub fn update_item(&self) -> UpdateItem {
        self.db.update_item(self.name.clone())
    }

    /// Starts a `DeleteItem` request.
    pub fn delete_item(&self) -> DeleteItem {
        self.db.delete_item(self.name.clone())
    }

    /// Starts a `Query` request.
    pub fn query(&self) -> Query {
        self.db.query(self.name.clone())
    }

    /// Starts a `Scan` request.
    pub fn scan(&self) -> Scan {
        self.db.scan(self.name.clone())
    }
}
