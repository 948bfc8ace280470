//! RestoreTableToPointInTime: the table's items at a chosen time, rebuilt
//! from the newest base snapshot at or before it plus the archive, into a
//! new table (with its indexes rebuilt from the items), published in one
//! batch through `kv::backup::RestoreTarget`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{PitrDefinition, archive, now_millis, snapshot, source_table};
use crate::Database;
use crate::db::DatabaseInner;
use crate::index::{Image, IndexWrite, stage_entries};
use crate::kv::backup::{RestoreTarget, check_on_disk, keep_overridden, open_checkpoint};
use crate::kv::catalogue::TableHandle;
use crate::kv::error::{Error, Result};
use crate::kv::partitions::row_token;
use crate::kv::progress::{OnProgress, Progress};
use crate::kv::schema::{
    BillingMode, GlobalSecondaryIndex, IndexStatus, LocalSecondaryIndex, TableDefinition,
    TableDescription, TableStatus, validate_name,
};
use crate::kv::tables::describe;
use crate::partition::keyspace_prefix;
use crate::partition::map::PartitionMap;
use crate::storage::{Direction, WriteBatch};
use crate::value::{decode_item, item_size};

/// Rows written per batch during a restore.
const RESTORE_BATCH_ROWS: usize = 1024;

/// Seals the archive clock for `table` and returns its restore window
/// `(earliest, latest)` in ms: every change stamped at or before `latest`
/// is committed, every later one will be stamped after it.
pub(crate) fn restore_window(
    db: &DatabaseInner,
    table: &TableHandle,
) -> Result<(PitrDefinition, TableDefinition, u64, u64)> {
    let _gate = table.gate.write();
    let definition = (*table.definition()).clone();
    let Some(pitr) = definition.point_in_time_recovery.clone() else {
        return Err(Error::PointInTimeRecoveryUnavailable(format!(
            "Point in time recovery is not enabled for table '{}'",
            definition.name
        )));
    };
    let latest = db.kv.pitr.seal(now_millis(db));
    let earliest = super::earliest_restorable(db, &pitr);
    Ok((pitr, definition, earliest, latest))
}

/// Calls `visit(row suffix, encoded item)` for every item of the table as
/// it was at `time_millis`, in row order. The caller holds
/// `db.kv.backups` (so no snapshot is removed meanwhile) and has checked
/// that `time_millis` lies in the window after sealing the clock.
pub(crate) fn for_each_item_at<E: From<Error>>(
    db: &DatabaseInner,
    definition: &TableDefinition,
    pitr: &PitrDefinition,
    time_millis: u64,
    mut visit: impl FnMut(&[u8], &[u8]) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let fail = |error: Error| E::from(error);
    let storage = |error: crate::storage::StorageError| E::from(Error::from(error));
    let snapshots = snapshot::list(db, &definition.table_id).map_err(fail)?;
    let Some(base) = snapshots
        .iter()
        .rev()
        .find(|s| s.time_millis <= time_millis && s.time_millis >= pitr.enabled_at_millis)
    else {
        return Err(fail(Error::InvalidRestoreTime(format!(
            "No base snapshot of table '{}' covers the restore time",
            definition.name
        ))));
    };
    let changes = archive::changes_between(
        &db.engine,
        pitr.archive_keyspace,
        base.time_millis,
        time_millis,
    )
    .map_err(storage)?;
    let mut changes = changes.into_iter().peekable();
    let engine = open_checkpoint(db, &base.engine).map_err(fail)?;
    let prefix = keyspace_prefix(base.keyspace);
    for row in engine
        .prefix(&prefix, Direction::Forward, None)
        .map_err(storage)?
    {
        let (key, value) = row.map_err(storage)?;
        let suffix = key.get(prefix.len()..).unwrap_or_default();
        // Changed items sorting before this row: new ones (or deleted
        // again), visited in order.
        while let Some((changed, _)) = changes.peek() {
            if changed.as_slice() >= suffix {
                break;
            }
            if let Some((changed, Some(image))) = changes.next() {
                visit(&changed, &image)?;
            }
        }
        match changes.peek() {
            Some((changed, _)) if changed.as_slice() == suffix => {
                if let Some((changed, Some(image))) = changes.next() {
                    visit(&changed, &image)?;
                }
            }
            _ => visit(suffix, &value)?,
        }
    }
    for (changed, image) in changes {
        if let Some(image) = image {
            visit(&changed, &image)?;
        }
    }
    engine.close().map_err(storage)?;
    Ok(())
}

/// Checks `time` against the window of `table`'s PITR (sealing the
/// clock); returns the PITR, the definition and the time in ms.
pub(crate) fn check_restore_time(
    db: &DatabaseInner,
    table: &TableHandle,
    time: SystemTime,
) -> Result<(PitrDefinition, TableDefinition, u64)> {
    let (pitr, definition, earliest, latest) = restore_window(db, table)?;
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    if millis < earliest || millis > latest {
        return Err(Error::InvalidRestoreTime(format!(
            "Invalid RestoreDateTime: it must be between {earliest} and {latest} \
             (milliseconds since the epoch)"
        )));
    }
    Ok((pitr, definition, millis))
}

/// A `restore_table_to_point_in_time` request: a new table with the
/// source's items as they were at the chosen time, and the source's
/// current key schema, indexes (all, or those the overrides keep) and
/// billing mode. Stream, TTL and PITR settings are not restored.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct RestoreTableToPointInTime {
    db: Database,
    source_table_name: String,
    target_table_name: String,
    restore_date_time: Option<SystemTime>,
    use_latest_restorable_time: bool,
    global_override: Option<Vec<GlobalSecondaryIndex>>,
    local_override: Option<Vec<LocalSecondaryIndex>>,
    billing_mode_override: Option<BillingMode>,
    on_progress: OnProgress,
}

/// What `restore_table_to_point_in_time` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreTableToPointInTimeOutput {
    /// The restored table, ACTIVE.
    pub table_description: TableDescription,
}

impl RestoreTableToPointInTime {
    /// The time to restore to (within the window; millisecond precision).
    pub fn restore_date_time(mut self, time: SystemTime) -> Self {
        self.restore_date_time = Some(time);
        self
    }

    /// Restores to the latest restorable time (now) instead.
    pub fn use_latest_restorable_time(mut self, latest: bool) -> Self {
        self.use_latest_restorable_time = latest;
        self
    }

    /// Keeps only these global secondary indexes (each must be one the
    /// source has, unchanged); an empty list restores none.
    pub fn global_secondary_index_override(
        mut self,
        indexes: impl IntoIterator<Item = GlobalSecondaryIndex>,
    ) -> Self {
        self.global_override = Some(indexes.into_iter().collect());
        self
    }

    /// Keeps only these local secondary indexes (each must be one the
    /// source has, unchanged); an empty list restores none.
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

    /// Calls `callback` as items are written (every 1,024 and at the end;
    /// `items_total` is unknown until the end).
    pub fn on_progress(mut self, callback: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.on_progress = OnProgress::new(callback);
        self
    }

    fn validate(&self) -> Result<()> {
        validate_name(&self.source_table_name, "sourceTableName")?;
        validate_name(&self.target_table_name, "targetTableName")?;
        if self.use_latest_restorable_time && self.restore_date_time.is_some() {
            return Err(Error::validation(
                "Only one of RestoreDateTime or UseLatestRestorableTime can be specified",
            ));
        }
        if !self.use_latest_restorable_time && self.restore_date_time.is_none() {
            return Err(Error::validation(
                "Either RestoreDateTime or UseLatestRestorableTime must be specified",
            ));
        }
        Ok(())
    }

    /// Runs the restore; returns once the table is ACTIVE with every item.
    pub fn send(self) -> Result<RestoreTableToPointInTimeOutput> {
        self.validate()?;
        let db = &self.db.inner;
        check_on_disk(db)?;
        let _restores = db.kv.backups.lock();
        let source = source_table(db, &self.source_table_name)?;
        let (pitr, mut definition, time) = match self.restore_date_time {
            Some(time) => check_restore_time(db, &source, time)?,
            None => {
                let (pitr, definition, _, latest) = restore_window(db, &source)?;
                (pitr, definition, latest)
            }
        };
        // An index still being built is not restored (as for backups).
        definition
            .global_indexes
            .retain(|i| i.status == IndexStatus::Active);
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
        let target = RestoreTarget::begin(db, definition.keyspaces().len())?;
        let mut rebased = definition.clone();
        target.assign_keyspaces(&mut rebased);
        let now_nanos = crate::kv::partitions::now_nanos(db);
        let map = PartitionMap::new(db.partition_options.initial_partitions, now_nanos);
        let mut writer = Writer {
            db,
            source: &source,
            definition: &rebased,
            map: &map,
            batch: WriteBatch::new(),
            rows: 0,
            counts: vec![(0, 0); rebased.keyspaces().len()],
            progress: Progress::default(),
            on_progress: &self.on_progress,
        };
        for_each_item_at::<Error>(db, &definition, &pitr, time, |suffix, image| {
            writer.write(suffix, image)
        })?;
        let counts = writer.finish()?;
        let handle = target.publish(
            db,
            definition,
            &self.target_table_name,
            &counts,
            (map, now_nanos),
        )?;
        Ok(RestoreTableToPointInTimeOutput {
            table_description: describe(&handle, TableStatus::Active),
        })
    }
}

/// Writes restored items, and their index entries, into the target's
/// keyspaces.
struct Writer<'a> {
    db: &'a DatabaseInner,
    /// The source table: `stage_entries` asks it only about indexes still
    /// being built, and the restored definition has none.
    source: &'a Arc<TableHandle>,
    /// The restored definition, with the target's keyspaces.
    definition: &'a TableDefinition,
    map: &'a PartitionMap,
    batch: WriteBatch,
    rows: usize,
    /// Entry counts and sizes per keyspace, in `keyspaces()` order.
    counts: Vec<(i64, i64)>,
    progress: Progress,
    on_progress: &'a OnProgress,
}

impl Writer<'_> {
    fn write(&mut self, suffix: &[u8], image: &[u8]) -> Result<()> {
        let mut row_key = keyspace_prefix(self.definition.keyspace).to_vec();
        row_key.extend_from_slice(suffix);
        let item = decode_item(image)?;
        let size = item_size(&item);
        self.map.get(row_token(&row_key)).account(None, Some(size));
        let mut writes: Vec<IndexWrite> = Vec::new();
        let mut shared = None;
        stage_entries(
            (&mut self.batch, &mut shared),
            self.source,
            self.definition,
            &row_key,
            None,
            Some(Image {
                item: &item,
                size,
                encoded: Some(image),
            }),
            &mut writes,
        )?;
        self.batch.put_shared(&row_key, image, &mut shared);
        let keyspaces = self.definition.keyspaces();
        if let Some(counts) = self.counts.first_mut() {
            counts.0 += 1;
            counts.1 += size as i64;
        }
        for write in writes {
            if let (Some(n), Some(new)) = (
                keyspaces.iter().position(|k| *k == write.keyspace),
                write.new,
            ) && let Some(counts) = self.counts.get_mut(n)
            {
                counts.0 += 1;
                counts.1 += new as i64;
            }
        }
        self.on_progress.item(&mut self.progress, size as u64);
        self.rows += 1;
        if self.rows >= RESTORE_BATCH_ROWS {
            self.db.engine.write(std::mem::take(&mut self.batch))?;
            self.rows = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<(i64, i64)>> {
        if !self.batch.is_empty() {
            self.db.engine.write(std::mem::take(&mut self.batch))?;
        }
        self.progress.items_total = Some(self.progress.items_done);
        self.on_progress.finish(&mut self.progress);
        Ok(self.counts)
    }
}

impl Database {
    /// Starts a `RestoreTableToPointInTime` request creating
    /// `target_table_name` from `source_table_name`'s history.
    pub fn restore_table_to_point_in_time(
        &self,
        source_table_name: impl Into<String>,
        target_table_name: impl Into<String>,
    ) -> RestoreTableToPointInTime {
        RestoreTableToPointInTime {
            db: self.clone(),
            source_table_name: source_table_name.into(),
            target_table_name: target_table_name.into(),
            restore_date_time: None,
            use_latest_restorable_time: false,
            global_override: None,
            local_override: None,
            billing_mode_override: None,
            on_progress: OnProgress::default(),
        }
    }
}
