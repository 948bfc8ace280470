//! On-demand backups of tables (DynamoDB's CreateBackup, DescribeBackup,
//! ListBackups, DeleteBackup and RestoreTableFromBackup).
//!
//! A backup is an engine checkpoint — segments hard-linked, the manifest
//! and the log tail copied — in `backups/<id>/engine`, plus a descriptor
//! `backups/<id>/backup.json` naming the table and its definition. Taking
//! one costs the same for any table size, and writes go on meanwhile: the
//! checkpoint holds every write acknowledged before the call and none
//! half-applied. The directory is built under `<id>.tmp` and renamed once
//! complete, so a crash never leaves a half-made backup listed.
//!
//! A restore copies the table's rows (and its kept indexes' entries) from
//! the checkpoint into freshly allocated keyspaces, swapping only the
//! keyspace prefix. The new keyspaces are marked dropped in the batch that
//! allocates them, and the definition is published (and the marks removed)
//! in one batch at the end: a crash during a restore leaves no table, and
//! the next open purges the partial copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use super::catalogue::KvState;
use super::error::{Error, Result};
use super::partitions::{TablePartitions, row_token};
use super::progress::{OnProgress, Progress};
use super::schema::{
    BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, LocalSecondaryIndex,
    TableDefinition, TableDescription, TableStatus, validate_name,
};
use super::tables::describe;
use crate::Database;
use crate::db::DatabaseInner;
use crate::partition::map::PartitionMap;
use crate::partition::{KeyspaceId, keyspace_prefix};
use crate::storage::{Direction, Durability, Engine, EngineOptions, WriteBatch};
use crate::value::{decode_item, item_size};

/// The directory under the database's that holds backups.
const BACKUPS_DIR: &str = "backups";
/// The descriptor's file name inside a backup's directory.
const DESCRIPTOR: &str = "backup.json";
/// Rows copied per batch during a restore.
const RESTORE_BATCH_ROWS: usize = 1024;

/// A backup's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupStatus {
    /// Being taken (never observed: nimbus takes a backup within the call).
    Creating,
    /// Deleted (in `delete_backup`'s answer).
    Deleted,
    /// Ready to restore.
    Available,
}

/// Who made a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackupType {
    /// `create_backup` (the only kind nimbus makes).
    User,
}

/// The identity and size of a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupDetails {
    /// The backup's ARN-like id (what describe, delete and restore take).
    pub backup_arn: String,
    /// The name given at creation.
    pub backup_name: String,
    /// The table's size when the backup was taken.
    pub backup_size_bytes: u64,
    /// Available, or Deleted in `delete_backup`'s answer.
    pub backup_status: BackupStatus,
    /// Always [`BackupType::User`].
    pub backup_type: BackupType,
    /// When the backup was taken.
    pub backup_creation_date_time: SystemTime,
}

/// The table a backup was taken of, as it was then.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTableDetails {
    /// The table's name.
    pub table_name: String,
    /// The table's unique id.
    pub table_id: String,
    /// The table's ARN-like id.
    pub table_arn: String,
    /// The table's key schema.
    pub key_schema: Vec<KeySchemaElement>,
    /// When the table was created.
    pub table_creation_date_time: SystemTime,
    /// Its item count at backup time.
    pub item_count: u64,
    /// Its size at backup time.
    pub table_size_bytes: u64,
    /// Its billing mode.
    pub billing_mode: BillingMode,
}

/// The indexes a backup's table had.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceTableFeatureDetails {
    /// Its local secondary indexes.
    pub local_secondary_indexes: Vec<LocalSecondaryIndex>,
    /// Its global secondary indexes (ACTIVE ones; an index still being
    /// built is not part of the backup).
    pub global_secondary_indexes: Vec<GlobalSecondaryIndex>,
}

/// Everything known about a backup.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupDescription {
    /// Identity, size and state.
    pub backup_details: BackupDetails,
    /// The table backed up.
    pub source_table_details: SourceTableDetails,
    /// Its indexes.
    pub source_table_feature_details: SourceTableFeatureDetails,
}

/// One line of `list_backups`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSummary {
    /// The table's name.
    pub table_name: String,
    /// The table's ARN-like id.
    pub table_arn: String,
    /// The backup's identity, size and state.
    pub backup_details: BackupDetails,
}

/// The descriptor stored with a backup.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Descriptor {
    id: String,
    name: String,
    created_at_millis: u64,
    item_count: u64,
    size_bytes: u64,
    definition: TableDefinition,
}

impl Descriptor {
    fn arn(&self) -> String {
        format!("{}/backup/{}", self.definition.table_arn(), self.id)
    }

    fn details(&self, status: BackupStatus) -> BackupDetails {
        BackupDetails {
            backup_arn: self.arn(),
            backup_name: self.name.clone(),
            backup_size_bytes: self.size_bytes,
            backup_status: status,
            backup_type: BackupType::User,
            backup_creation_date_time: SystemTime::UNIX_EPOCH
                + Duration::from_millis(self.created_at_millis),
        }
    }

    fn description(&self, status: BackupStatus) -> BackupDescription {
        let definition = &self.definition;
        BackupDescription {
            backup_details: self.details(status),
            source_table_details: SourceTableDetails {
                table_name: definition.name.clone(),
                table_id: definition.table_id.clone(),
                table_arn: definition.table_arn(),
                key_schema: definition.key.key_schema(),
                table_creation_date_time: SystemTime::UNIX_EPOCH
                    + Duration::from_millis(definition.created_at_millis),
                item_count: self.item_count,
                table_size_bytes: self.size_bytes,
                billing_mode: definition.billing_mode,
            },
            source_table_feature_details: SourceTableFeatureDetails {
                local_secondary_indexes: definition
                    .local_indexes
                    .iter()
                    .map(|i| i.index.clone())
                    .collect(),
                global_secondary_indexes: definition
                    .global_indexes
                    .iter()
                    .map(|i| i.index.clone())
                    .collect(),
            },
        }
    }
}

fn backups_dir(db: &DatabaseInner) -> PathBuf {
    db.path.join(BACKUPS_DIR)
}

pub(super) fn io_error(what: &'static str, path: &Path, error: std::io::Error) -> Error {
    Error::Storage(crate::storage::StorageError::io(what, path, error))
}

pub(super) fn check_on_disk(db: &DatabaseInner) -> Result<()> {
    if db.engine.durability() == Durability::InMemory {
        return Err(Error::Validation(
            "Backups need a database on disk (Database::open); an in-memory database has none"
                .into(),
        ));
    }
    Ok(())
}

/// Reads the descriptor of the backup with id `id`.
fn read_descriptor(db: &DatabaseInner, id: &str) -> Result<Option<Descriptor>> {
    let path = backups_dir(db).join(id).join(DESCRIPTOR);
    if !db.fs.exists(&path) {
        return Ok(None);
    }
    let file = db
        .fs
        .open_read(&path)
        .map_err(|e| io_error("open", &path, e))?;
    let mut bytes = vec![0; file.len() as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(|e| io_error("read", &path, e))?;
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::Storage(crate::storage::StorageError::corruption(
            path.clone(),
            0,
            format!("backup descriptor: {e}"),
        ))
    })
}

/// The descriptor named by `arn`, or DynamoDB's BackupNotFoundException.
fn find(db: &DatabaseInner, arn: &str) -> Result<Descriptor> {
    let not_found = || Error::BackupNotFound(format!("Backup not found: {arn}"));
    let id = arn.rsplit_once("/backup/").ok_or_else(not_found)?.1;
    if id.is_empty() || id.contains(['/', '.']) {
        return Err(not_found());
    }
    match read_descriptor(db, id)? {
        Some(descriptor) if descriptor.arn() == arn => Ok(descriptor),
        _ => Err(not_found()),
    }
}

/// Every complete backup, oldest first.
fn all(db: &DatabaseInner) -> Result<Vec<Descriptor>> {
    let dir = backups_dir(db);
    if !db.fs.exists(&dir) {
        return Ok(Vec::new());
    }
    let names = db
        .fs
        .list_dir(&dir)
        .map_err(|e| io_error("list", &dir, e))?;
    let mut descriptors = Vec::new();
    for name in names.iter().filter(|n| !n.ends_with(".tmp")) {
        if let Some(descriptor) = read_descriptor(db, name)? {
            descriptors.push(descriptor);
        }
    }
    descriptors.sort_by(|a, b| (a.created_at_millis, &a.id).cmp(&(b.created_at_millis, &b.id)));
    Ok(descriptors)
}

/// Removes a directory tree through the database's file system.
pub(super) fn remove_tree(db: &DatabaseInner, path: &Path) -> Result<()> {
    let names = db
        .fs
        .list_dir(path)
        .map_err(|e| io_error("list", path, e))?;
    for name in names {
        let child = path.join(&name);
        if db.fs.list_dir(&child).is_ok() {
            remove_tree(db, &child)?;
        } else {
            db.fs
                .remove_file(&child)
                .map_err(|e| io_error("remove", &child, e))?;
        }
    }
    std::fs::remove_dir(path)
        .or_else(|e| match e.kind() {
            // The simulated disk has no directories of its own.
            std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(e),
        })
        .map_err(|e| io_error("remove_dir", path, e))
}

/// Takes an engine checkpoint into `<parent>/<id>/engine` with the
/// descriptor `json` beside it as `<parent>/<id>/<descriptor>`. The
/// directory is built as `<id>.tmp` and renamed once complete and synced,
/// so a crash never leaves a half-made checkpoint under its final name.
pub(super) fn write_checkpoint(
    db: &DatabaseInner,
    parent: &Path,
    id: &str,
    descriptor: &str,
    json: &[u8],
) -> Result<PathBuf> {
    let building = parent.join(format!("{id}.tmp"));
    db.fs
        .create_dir_all(&building)
        .map_err(|e| io_error("create_dir", &building, e))?;
    db.engine.checkpoint(building.join("engine"))?;
    let path = building.join(descriptor);
    let mut file = db
        .fs
        .create(&path)
        .map_err(|e| io_error("create", &path, e))?;
    file.append(json).map_err(|e| io_error("write", &path, e))?;
    file.sync_data().map_err(|e| io_error("fsync", &path, e))?;
    db.fs
        .sync_dir(&building)
        .map_err(|e| io_error("fsync_dir", &building, e))?;
    let done = parent.join(id);
    db.fs
        .rename(&building, &done)
        .map_err(|e| io_error("rename", &building, e))?;
    db.fs
        .sync_dir(parent)
        .map_err(|e| io_error("fsync_dir", parent, e))?;
    Ok(done)
}

/// Opens the engine of a checkpoint read-only in spirit: restores only
/// read it, and no background work runs on it.
pub(super) fn open_checkpoint(db: &DatabaseInner, path: &Path) -> Result<Engine> {
    let options = EngineOptions {
        durability: Durability::Buffered,
        background_threads: false,
        ..EngineOptions::default()
    };
    Ok(Engine::open_with(Arc::clone(&db.fs), path, options)?)
}

/// A restore in progress: the keyspaces it fills, marked dropped until
/// [`RestoreTarget::publish`] commits the table in one batch (so a crash
/// before that leaves no table, and the next open purges the rows).
pub(super) struct RestoreTarget {
    /// The first allocated keyspace (the table's); indexes follow it.
    pub(super) first: KeyspaceId,
    /// Every allocated keyspace, in [`TableDefinition::keyspaces`] order.
    pub(super) keyspaces: Vec<KeyspaceId>,
}

impl RestoreTarget {
    /// Allocates `count` keyspaces, marked dropped. Call it holding the
    /// DDL lock, after checking the target name is free.
    pub(super) fn begin(db: &DatabaseInner, count: usize) -> Result<Self> {
        let mut batch = WriteBatch::new();
        let first = db.kv.allocate_keyspaces(count as u32, &mut batch);
        let keyspaces: Vec<KeyspaceId> = (first..first + count as u32).collect();
        for keyspace in &keyspaces {
            KvState::mark_dropped(&mut batch, *keyspace);
        }
        db.engine.write(batch)?;
        Ok(Self { first, keyspaces })
    }

    /// Gives `definition` (the source's, indexes already chosen) the
    /// allocated keyspaces: the table's first, then its local and global
    /// indexes', in [`TableDefinition::keyspaces`] order.
    pub(super) fn assign_keyspaces(&self, definition: &mut TableDefinition) {
        definition.keyspace = self.first;
        let mut next = self.first + 1;
        for index in &mut definition.local_indexes {
            index.keyspace = next;
            next += 1;
        }
        for index in &mut definition.global_indexes {
            index.keyspace = next;
            next += 1;
        }
    }

    /// Publishes `definition` (the source's, indexes already chosen) as
    /// table `name` over the filled keyspaces, in one batch: a new id and
    /// creation time, no tags, stream, TTL or point-in-time recovery (as in
    /// DynamoDB). `counts` are the keyspaces' entry counts and sizes.
    pub(super) fn publish(
        self,
        db: &DatabaseInner,
        mut definition: TableDefinition,
        name: &str,
        counts: &[(i64, i64)],
        (map, now_nanos): (PartitionMap, u64),
    ) -> Result<Arc<super::catalogue::TableHandle>> {
        let now = db.clock.since_epoch();
        definition.name = name.to_owned();
        definition.created_at_millis = now.as_millis() as u64;
        definition.table_id =
            super::tables::table_id(&definition.name, self.first, definition.created_at_millis);
        definition.tags.clear();
        definition.stream_specification = None;
        definition.stream_keyspace = None;
        definition.time_to_live = None;
        definition.point_in_time_recovery = None;
        definition.on_demand_switches_millis = Vec::new();
        definition.stream_label = None;
        self.assign_keyspaces(&mut definition);
        let mut batch = WriteBatch::new();
        KvState::put_definition(&mut batch, &definition)?;
        super::partitions::stage_new_map(&mut batch, self.first, &map);
        for keyspace in &self.keyspaces {
            KvState::unmark_dropped(&mut batch, *keyspace);
        }
        db.engine.write(batch)?;
        let partitions = TablePartitions::new(map, Some(now_nanos));
        Ok(db.kv.insert_with_counts(definition, counts, partitions))
    }
}

/// A `create_backup` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CreateBackup {
    db: Database,
    table: String,
    backup_name: Option<String>,
    on_progress: OnProgress,
}

/// What `create_backup` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateBackupOutput {
    /// The new backup.
    pub backup_details: BackupDetails,
}

impl CreateBackup {
    /// Names the backup (3–255 characters of `[a-zA-Z0-9_.-]`; required).
    pub fn backup_name(mut self, name: impl Into<String>) -> Self {
        self.backup_name = Some(name.into());
        self
    }

    /// Registers a progress callback. A backup links the table's segments
    /// rather than copying its items, so it takes about as long for any
    /// size and is reported once, when done, with the table's item count
    /// and size.
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = OnProgress::new(callback);
        self
    }

    /// Takes the backup.
    pub fn send(self) -> Result<CreateBackupOutput> {
        let Some(name) = self.backup_name else {
            return Err(Error::validation(
                "1 validation error detected: Value null at 'backupName' failed to satisfy \
                 constraint: Member must not be null",
            ));
        };
        validate_name(&name, "backupName")?;
        validate_name(&self.table, "tableName")?;
        let db = &self.db.inner;
        check_on_disk(db)?;
        let table = db
            .kv
            .table(&self.table)
            .map_err(|_| Error::TableNotFound(format!("Table not found: {}", self.table)))?;
        let mut definition = (*table.definition()).clone();
        // An index still being built is not part of the backup.
        definition
            .global_indexes
            .retain(|i| i.status == IndexStatus::Active);
        let (item_count, size_bytes) = table.counts();
        let created_at_millis = db.clock.since_epoch().as_millis() as u64;
        let id = format!(
            "{created_at_millis:014}-{:08x}",
            xxh3_64(
                format!(
                    "{}/{name}/{:?}",
                    definition.table_id,
                    std::time::Instant::now()
                )
                .as_bytes()
            ) as u32
        );
        let descriptor = Descriptor {
            id: id.clone(),
            name,
            created_at_millis,
            item_count,
            size_bytes,
            definition,
        };
        let json = serde_json::to_vec_pretty(&descriptor)
            .map_err(|e| Error::Validation(format!("backup descriptor: {e}")))?;
        write_checkpoint(db, &backups_dir(db), &id, DESCRIPTOR, &json)?;
        self.on_progress.finish(&mut Progress {
            items_done: item_count,
            bytes_done: size_bytes,
            items_total: Some(item_count),
            finished: false,
        });
        Ok(CreateBackupOutput {
            backup_details: descriptor.details(BackupStatus::Available),
        })
    }
}

/// A `describe_backup` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeBackup {
    db: Database,
    backup_arn: String,
}

/// What `describe_backup` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeBackupOutput {
    /// The backup.
    pub backup_description: BackupDescription,
}

impl DescribeBackup {
    /// Runs the request.
    pub fn send(self) -> Result<DescribeBackupOutput> {
        let descriptor = find(&self.db.inner, &self.backup_arn)?;
        Ok(DescribeBackupOutput {
            backup_description: descriptor.description(BackupStatus::Available),
        })
    }
}

/// A `list_backups` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListBackups {
    db: Database,
    table_name: Option<String>,
}

/// What `list_backups` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ListBackupsOutput {
    /// The backups, oldest first.
    pub backup_summaries: Vec<BackupSummary>,
}

impl ListBackups {
    /// Lists only the backups of `table`.
    pub fn table_name(mut self, table: impl Into<String>) -> Self {
        self.table_name = Some(table.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<ListBackupsOutput> {
        let db = &self.db.inner;
        if db.engine.durability() == Durability::InMemory {
            return Ok(ListBackupsOutput {
                backup_summaries: Vec::new(),
            });
        }
        let backup_summaries = all(db)?
            .into_iter()
            .filter(|d| {
                self.table_name
                    .as_ref()
                    .is_none_or(|t| *t == d.definition.name)
            })
            .map(|d| BackupSummary {
                table_name: d.definition.name.clone(),
                table_arn: d.definition.table_arn(),
                backup_details: d.details(BackupStatus::Available),
            })
            .collect();
        Ok(ListBackupsOutput { backup_summaries })
    }
}

/// A `delete_backup` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteBackup {
    db: Database,
    backup_arn: String,
}

/// What `delete_backup` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DeleteBackupOutput {
    /// The backup, with status Deleted.
    pub backup_description: BackupDescription,
}

impl DeleteBackup {
    /// Runs the request.
    pub fn send(self) -> Result<DeleteBackupOutput> {
        let db = &self.db.inner;
        let _restores = db.kv.backups.lock();
        let descriptor = find(db, &self.backup_arn)?;
        let dir = backups_dir(db);
        let path = dir.join(&descriptor.id);
        // Unlist it first (the rename is atomic), then remove the files.
        let doomed = dir.join(format!("{}.tmp", descriptor.id));
        db.fs
            .rename(&path, &doomed)
            .map_err(|e| io_error("rename", &path, e))?;
        db.fs
            .sync_dir(&dir)
            .map_err(|e| io_error("fsync_dir", &dir, e))?;
        remove_tree(db, &doomed)?;
        Ok(DeleteBackupOutput {
            backup_description: descriptor.description(BackupStatus::Deleted),
        })
    }
}

/// A `restore_table_from_backup` request: a new table with the backup's
/// items, key schema, indexes (all, or those the overrides keep) and
/// billing mode. Stream settings are not restored (as in DynamoDB).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct RestoreTableFromBackup {
    db: Database,
    target_table_name: String,
    backup_arn: Option<String>,
    global_override: Option<Vec<GlobalSecondaryIndex>>,
    local_override: Option<Vec<LocalSecondaryIndex>>,
    billing_mode_override: Option<BillingMode>,
    on_progress: OnProgress,
}

/// What `restore_table_from_backup` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreTableFromBackupOutput {
    /// The restored table, ACTIVE.
    pub table_description: TableDescription,
}

impl RestoreTableFromBackup {
    /// The backup to restore (required).
    pub fn backup_arn(mut self, arn: impl Into<String>) -> Self {
        self.backup_arn = Some(arn.into());
        self
    }

    /// Keeps only these global secondary indexes (each must be one the
    /// backup has, unchanged); an empty list restores none.
    pub fn global_secondary_index_override(
        mut self,
        indexes: impl IntoIterator<Item = GlobalSecondaryIndex>,
    ) -> Self {
        self.global_override = Some(indexes.into_iter().collect());
        self
    }

    /// Keeps only these local secondary indexes (each must be one the
    /// backup has, unchanged); an empty list restores none.
    pub fn local_secondary_index_override(
        mut self,
        indexes: impl IntoIterator<Item = LocalSecondaryIndex>,
    ) -> Self {
        self.local_override = Some(indexes.into_iter().collect());
        self
    }

    /// Gives the restored table another billing mode.
    pub fn billing_mode_override(mut self, mode: BillingMode) -> Self {
        self.billing_mode_override = Some(mode);
        self
    }

    /// Calls `callback` as items are copied (every 1,024 and at the end;
    /// `items_total` is the table's item count at backup time).
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = OnProgress::new(callback);
        self
    }

    /// Runs the restore; returns once the table is ACTIVE with every item.
    pub fn send(self) -> Result<RestoreTableFromBackupOutput> {
        validate_name(&self.target_table_name, "targetTableName")?;
        let Some(arn) = &self.backup_arn else {
            return Err(Error::validation(
                "1 validation error detected: Value null at 'backupArn' failed to satisfy \
                 constraint: Member must not be null",
            ));
        };
        let db = &self.db.inner;
        check_on_disk(db)?;
        let _restores = db.kv.backups.lock();
        let descriptor = find(db, arn)?;
        let mut definition = descriptor.definition.clone();
        keep_overridden(
            &mut definition.global_indexes,
            self.global_override.as_deref(),
            |i| &i.index,
        )?;
        keep_overridden(
            &mut definition.local_indexes,
            self.local_override.as_deref(),
            |i| &i.index,
        )?;
        if let Some(mode) = self.billing_mode_override {
            definition.billing_mode = mode;
        }

        let _ddl = db.kv.ddl.lock();
        if db.kv.table(&self.target_table_name).is_ok() {
            return Err(Error::TableAlreadyExists(format!(
                "Table already exists: {}",
                self.target_table_name
            )));
        }
        let sources = definition.keyspaces();
        let target = RestoreTarget::begin(db, sources.len())?;
        let source = backups_dir(db).join(&descriptor.id).join("engine");
        let backup = open_checkpoint(db, &source)?;
        let now_nanos = super::partitions::now_nanos(db);
        let map = PartitionMap::new(db.partition_options.initial_partitions, now_nanos);
        let mut counts = Vec::with_capacity(sources.len());
        let mut progress = Progress {
            items_total: Some(descriptor.item_count),
            ..Progress::default()
        };
        for (n, (from, to)) in sources.iter().zip(&target.keyspaces).enumerate() {
            // Progress counts the table's items; index entries follow them.
            let report = (n == 0).then_some((&self.on_progress, &mut progress));
            let partitions = (n == 0).then_some(&map);
            counts.push(copy_keyspace(
                &backup,
                &db.engine,
                (*from, *to),
                report,
                partitions,
            )?);
        }
        backup.close()?;
        let handle = target.publish(
            db,
            definition,
            &self.target_table_name,
            &counts,
            (map, now_nanos),
        )?;
        Ok(RestoreTableFromBackupOutput {
            table_description: describe(&handle, TableStatus::Active),
        })
    }
}

/// Keeps the indexes `wanted` names (all when `None`); each wanted index
/// must be one of `indexes`, unchanged.
pub(super) fn keep_overridden<T, I: PartialEq + NamedIndex>(
    indexes: &mut Vec<T>,
    wanted: Option<&[I]>,
    index_of: impl Fn(&T) -> &I,
) -> Result<()> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    for index in wanted {
        if !indexes.iter().any(|i| index_of(i) == index) {
            return Err(Error::validation(format!(
                "One or more parameter values were invalid: the index override {} does not \
                 match an index of the backup or source table",
                index.name()
            )));
        }
    }
    indexes.retain(|i| wanted.contains(index_of(i)));
    Ok(())
}

/// An index definition's name.
pub(super) trait NamedIndex {
    fn name(&self) -> &str;
}

impl NamedIndex for GlobalSecondaryIndex {
    fn name(&self) -> &str {
        &self.index_name
    }
}

impl NamedIndex for LocalSecondaryIndex {
    fn name(&self) -> &str {
        &self.index_name
    }
}

/// Copies every row of keyspace `from` in `source` into keyspace `to` of
/// `target`; returns the rows' count and their items' total size.
fn copy_keyspace(
    source: &Engine,
    target: &Engine,
    (from, to): (KeyspaceId, KeyspaceId),
    mut progress: Option<(&OnProgress, &mut Progress)>,
    partitions: Option<&PartitionMap>,
) -> Result<(i64, i64)> {
    let prefix = keyspace_prefix(to);
    let (mut items, mut bytes) = (0i64, 0i64);
    let mut batch = WriteBatch::new();
    let mut rows = 0;
    for row in source.prefix(&keyspace_prefix(from), Direction::Forward, None)? {
        let (key, value) = row?;
        let item = decode_item(&value)?;
        let size = item_size(&item);
        items += 1;
        bytes += size as i64;
        if let Some((callback, progress)) = &mut progress {
            callback.item(progress, size as u64);
        }
        let mut new_key = Vec::with_capacity(key.len());
        new_key.extend_from_slice(&prefix);
        new_key.extend_from_slice(key.get(prefix.len()..).unwrap_or_default());
        if let Some(map) = partitions {
            map.get(row_token(&new_key)).account(None, Some(size));
        }
        batch.put(&new_key, &value);
        rows += 1;
        if rows == RESTORE_BATCH_ROWS {
            target.write(std::mem::take(&mut batch))?;
            rows = 0;
        }
    }
    if rows > 0 {
        target.write(batch)?;
    }
    if let Some((callback, progress)) = progress {
        callback.finish(progress);
    }
    Ok((items, bytes))
}

impl Database {
    /// Starts a `CreateBackup` request: a consistent backup of `table`,
    /// taken while writes go on, at a cost independent of its size.
    pub fn create_backup(&self, table: impl Into<String>) -> CreateBackup {
        CreateBackup {
            db: self.clone(),
            table: table.into(),
            backup_name: None,
            on_progress: OnProgress::default(),
        }
    }

    /// Starts a `DescribeBackup` request.
    pub fn describe_backup(&self, backup_arn: impl Into<String>) -> DescribeBackup {
        DescribeBackup {
            db: self.clone(),
            backup_arn: backup_arn.into(),
        }
    }

    /// Starts a `ListBackups` request.
    pub fn list_backups(&self) -> ListBackups {
        ListBackups {
            db: self.clone(),
            table_name: None,
        }
    }

    /// Starts a `DeleteBackup` request.
    pub fn delete_backup(&self, backup_arn: impl Into<String>) -> DeleteBackup {
        DeleteBackup {
            db: self.clone(),
            backup_arn: backup_arn.into(),
        }
    }

    /// Starts a `RestoreTableFromBackup` request creating
    /// `target_table_name`.
    pub fn restore_table_from_backup(
        &self,
        target_table_name: impl Into<String>,
    ) -> RestoreTableFromBackup {
        RestoreTableFromBackup {
            db: self.clone(),
            target_table_name: target_table_name.into(),
            backup_arn: None,
            global_override: None,
            local_override: None,
            billing_mode_override: None,
            on_progress: OnProgress::default(),
        }
    }
}
