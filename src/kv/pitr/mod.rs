//! Point-in-time recovery (DynamoDB's UpdateContinuousBackups,
//! DescribeContinuousBackups and RestoreTableToPointInTime): restore a
//! table, into a new table, exactly as it was at any millisecond of its
//! recovery window (1–35 days, default 35).
//!
//! How it works (the on-disk rows are in docs/format-kv.md):
//!
//! - **Archive** (`archive`): while PITR is enabled, every change of an
//!   item (put, update, delete, batch, transaction, TTL delete) adds a
//!   record — the item's key and new image or a tombstone, with its time —
//!   to the table's archive keyspace, in the same engine batch as the
//!   change, so the archive is exactly the committed history.
//! - **Base snapshots** (`snapshot`): an engine checkpoint (the machinery
//!   of on-demand backups) taken when PITR is enabled and then daily, each
//!   holding exactly the changes stamped at or before its time.
//! - **Restore** (`restore`): the newest snapshot at or before the target
//!   time, plus the last archived change of each item in (snapshot, time],
//!   written into fresh keyspaces published in one batch (the machinery of
//!   `restore_table_from_backup`), so a crash leaves no half-made table.
//! - **Retention**: the background sweeper (or
//!   [`Database::run_pitr_maintenance_now`]) takes due snapshots and
//!   removes snapshots and archive records no restore in the window needs.
//!
//! The archive is synchronous with the table, so the latest restorable
//! time is now (DynamoDB's lags about five minutes), and the one
//! `describe_continuous_backups` reports is a cut: a restore to it holds
//! exactly the writes acknowledged before the call, none after. Disabling PITR drops
//! the archive and snapshots; enabling it again starts a new window.
//!
//! ```
//! use nimbus::{Database, ScalarType, item};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path())?;
//! db.create_table("Users").partition_key("id", ScalarType::S).send()?;
//! db.update_continuous_backups("Users")
//!     .point_in_time_recovery_enabled(true)
//!     .send()?;
//! db.put_item("Users").item(item! { "id" => "u1" }).send()?;
//! db.restore_table_to_point_in_time("Users", "UsersCopy")
//!     .use_latest_restorable_time(true)
//!     .send()?;
//! assert!(db.get_item("UsersCopy").key(item! { "id" => "u1" }).send()?.item.is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod archive;
mod restore;
mod snapshot;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub(crate) use archive::{ArchiveClock, stage_change};
pub use restore::{RestoreTableToPointInTime, RestoreTableToPointInTimeOutput};
pub(crate) use restore::{check_restore_time, for_each_item_at};
pub(crate) use snapshot::maintain;
pub use snapshot::{PITR_SNAPSHOT_INTERVAL, PitrMaintenance};

use super::backup::check_on_disk;
use super::catalogue::KvState;
use super::error::{Error, Result};
use super::schema::{TableDefinition, validate_name};
use crate::Database;
use crate::db::DatabaseInner;
use crate::storage::{Durability, WriteBatch};

/// The shortest recovery period DynamoDB accepts, in days.
pub const RECOVERY_PERIOD_DAYS_MIN: u32 = 1;
/// The longest (and default) recovery period, in days.
pub const RECOVERY_PERIOD_DAYS_MAX: u32 = 35;

const DAY_MILLIS: u64 = 24 * 3600 * 1000;

/// A table's point-in-time recovery, as stored in its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PitrDefinition {
    /// The keyspace of its archived change log.
    pub archive_keyspace: u32,
    /// When it was enabled (the first base snapshot's time), ms since the
    /// epoch.
    pub enabled_at_millis: u64,
    /// The recovery window, in days (1–35).
    pub recovery_period_in_days: u32,
}

/// Whether continuous backups are possible (always for a database on
/// disk, never for an in-memory one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContinuousBackupsStatus {
    /// Backups and PITR can be used.
    Enabled,
    /// An in-memory database: no backups.
    Disabled,
}

/// Whether a table has point-in-time recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PointInTimeRecoveryStatus {
    /// Changes are archived; restores are possible within the window.
    Enabled,
    /// No archive.
    Disabled,
}

/// A table's point-in-time recovery state.
#[derive(Debug, Clone, PartialEq)]
pub struct PointInTimeRecoveryDescription {
    /// Enabled or Disabled.
    pub point_in_time_recovery_status: PointInTimeRecoveryStatus,
    /// The window in days (when enabled).
    pub recovery_period_in_days: Option<u32>,
    /// The earliest time a restore can target (when enabled).
    pub earliest_restorable_date_time: Option<SystemTime>,
    /// The latest time a restore can target: now (when enabled).
    pub latest_restorable_date_time: Option<SystemTime>,
}

/// `describe_continuous_backups`'s and `update_continuous_backups`'s
/// answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousBackupsDescription {
    /// Whether backups are possible at all.
    pub continuous_backups_status: ContinuousBackupsStatus,
    /// The table's point-in-time recovery.
    pub point_in_time_recovery_description: PointInTimeRecoveryDescription,
}

/// What `describe_continuous_backups` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct DescribeContinuousBackupsOutput {
    /// The table's continuous backups.
    pub continuous_backups_description: ContinuousBackupsDescription,
}

/// What `update_continuous_backups` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateContinuousBackupsOutput {
    /// The table's continuous backups after the change.
    pub continuous_backups_description: ContinuousBackupsDescription,
}

/// The storage point-in-time recovery uses for one table (a nimbus
/// extension: what retention reclaims).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PitrStorage {
    /// Archived change records.
    pub archive_records: u64,
    /// Their bytes (keys and values, before compression).
    pub archive_bytes: u64,
    /// Base snapshots kept.
    pub snapshots: u64,
}

pub(crate) fn now_millis(db: &DatabaseInner) -> u64 {
    db.clock.since_epoch().as_millis() as u64
}

fn time_of(millis: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis)
}

/// The earliest restorable time of a table's PITR now.
pub(crate) fn earliest_restorable(db: &DatabaseInner, pitr: &PitrDefinition) -> u64 {
    let latest = db.kv.pitr.latest(now_millis(db));
    let window = u64::from(pitr.recovery_period_in_days) * DAY_MILLIS;
    latest.saturating_sub(window).max(pitr.enabled_at_millis)
}

/// The description of `definition`'s continuous backups. The caller holds
/// the table's gate exclusively: the latest restorable time reported is a
/// seal, so a restore to it holds exactly the writes acknowledged before
/// this call.
fn description(db: &DatabaseInner, definition: &TableDefinition) -> ContinuousBackupsDescription {
    let continuous_backups_status = match db.engine.durability() {
        Durability::InMemory => ContinuousBackupsStatus::Disabled,
        _ => ContinuousBackupsStatus::Enabled,
    };
    let point_in_time_recovery_description = match &definition.point_in_time_recovery {
        Some(pitr) => PointInTimeRecoveryDescription {
            point_in_time_recovery_status: PointInTimeRecoveryStatus::Enabled,
            recovery_period_in_days: Some(pitr.recovery_period_in_days),
            latest_restorable_date_time: Some(time_of(db.kv.pitr.seal(now_millis(db)))),
            earliest_restorable_date_time: Some(time_of(earliest_restorable(db, pitr))),
        },
        None => PointInTimeRecoveryDescription {
            point_in_time_recovery_status: PointInTimeRecoveryStatus::Disabled,
            recovery_period_in_days: None,
            earliest_restorable_date_time: None,
            latest_restorable_date_time: None,
        },
    };
    ContinuousBackupsDescription {
        continuous_backups_status,
        point_in_time_recovery_description,
    }
}

/// The table called `name`, or DynamoDB's TableNotFoundException.
fn source_table(db: &DatabaseInner, name: &str) -> Result<std::sync::Arc<super::TableHandle>> {
    db.kv
        .table(name)
        .map_err(|_| Error::TableNotFound(format!("Table not found: {name}")))
}

/// A `describe_continuous_backups` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DescribeContinuousBackups {
    db: Database,
    table: String,
}

impl DescribeContinuousBackups {
    /// Runs the request.
    pub fn send(self) -> Result<DescribeContinuousBackupsOutput> {
        validate_name(&self.table, "tableName")?;
        let db = &self.db.inner;
        let table = source_table(db, &self.table)?;
        let _gate = table.gate.write();
        Ok(DescribeContinuousBackupsOutput {
            continuous_backups_description: description(db, &table.definition()),
        })
    }
}

/// An `update_continuous_backups` request: enables point-in-time recovery
/// (taking the first base snapshot), changes its window, or disables it
/// (dropping the archive and snapshots).
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UpdateContinuousBackups {
    db: Database,
    table: String,
    enabled: Option<bool>,
    recovery_period_in_days: Option<u32>,
}

impl UpdateContinuousBackups {
    /// `PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled`
    /// (required).
    pub fn point_in_time_recovery_enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// `PointInTimeRecoverySpecification.RecoveryPeriodInDays`: 1–35,
    /// default 35 (only with PITR enabled).
    pub fn recovery_period_in_days(mut self, days: u32) -> Self {
        self.recovery_period_in_days = Some(days);
        self
    }

    /// Both fields of the specification at once.
    pub fn point_in_time_recovery(
        self,
        enabled: bool,
        recovery_period_in_days: Option<u32>,
    ) -> Self {
        let request = self.point_in_time_recovery_enabled(enabled);
        match recovery_period_in_days {
            Some(days) => request.recovery_period_in_days(days),
            None => request,
        }
    }

    /// Runs the request.
    pub fn send(self) -> Result<UpdateContinuousBackupsOutput> {
        validate_name(&self.table, "tableName")?;
        let Some(enabled) = self.enabled else {
            return Err(Error::validation(
                "1 validation error detected: Value null at \
                 'pointInTimeRecoverySpecification.pointInTimeRecoveryEnabled' failed to \
                 satisfy constraint: Member must not be null",
            ));
        };
        if let Some(days) = self.recovery_period_in_days {
            if !(RECOVERY_PERIOD_DAYS_MIN..=RECOVERY_PERIOD_DAYS_MAX).contains(&days) {
                return Err(Error::validation(format!(
                    "1 validation error detected: Value '{days}' at \
                     'pointInTimeRecoverySpecification.recoveryPeriodInDays' failed to satisfy \
                     constraint: Member must have value between {RECOVERY_PERIOD_DAYS_MIN} and \
                     {RECOVERY_PERIOD_DAYS_MAX}"
                )));
            }
            if !enabled {
                return Err(Error::validation(
                    "RecoveryPeriodInDays can only be set when PointInTimeRecoveryEnabled is true",
                ));
            }
        }
        let db = &self.db.inner;
        let _restores = db.kv.backups.lock();
        let _ddl = db.kv.ddl.lock();
        let table = source_table(db, &self.table)?;
        if let Err(Error::Validation(message)) = check_on_disk(db) {
            return Err(Error::ContinuousBackupsUnavailable(message));
        }
        let _gate = table.gate.write();
        let mut definition = (*table.definition()).clone();
        let period = self
            .recovery_period_in_days
            .unwrap_or(RECOVERY_PERIOD_DAYS_MAX);
        match (enabled, definition.point_in_time_recovery.take()) {
            (true, Some(mut pitr)) => {
                // Already on: only the window changes (DynamoDB keeps it).
                if self.recovery_period_in_days.is_some() {
                    pitr.recovery_period_in_days = period;
                }
                definition.point_in_time_recovery = Some(pitr);
                let mut batch = WriteBatch::new();
                KvState::put_definition(&mut batch, &definition)?;
                db.engine.write(batch)?;
            }
            (true, None) => {
                let mut batch = WriteBatch::new();
                let archive_keyspace = db.kv.allocate_keyspaces(1, &mut batch);
                db.engine.write(batch)?;
                let sealed = db.kv.pitr.seal(now_millis(db));
                snapshot::take(db, &definition, sealed)?;
                definition.point_in_time_recovery = Some(PitrDefinition {
                    archive_keyspace,
                    enabled_at_millis: sealed,
                    recovery_period_in_days: period,
                });
                let mut batch = WriteBatch::new();
                KvState::put_definition(&mut batch, &definition)?;
                archive::stage_snapshot_marker(db, archive_keyspace, sealed, &mut batch);
                db.engine.write(batch)?;
            }
            (false, Some(pitr)) => {
                let mut batch = WriteBatch::new();
                KvState::put_definition(&mut batch, &definition)?;
                KvState::mark_dropped(&mut batch, pitr.archive_keyspace);
                db.engine.write(batch)?;
                super::catalogue::purge_keyspace(&db.engine, pitr.archive_keyspace)?;
                snapshot::remove_all(db, &definition.table_id)?;
            }
            (false, None) => {}
        }
        table.set_definition(definition.clone());
        Ok(UpdateContinuousBackupsOutput {
            continuous_backups_description: description(db, &definition),
        })
    }
}

impl Database {
    /// Starts an `UpdateContinuousBackups` request on `table`.
    pub fn update_continuous_backups(&self, table: impl Into<String>) -> UpdateContinuousBackups {
        UpdateContinuousBackups {
            db: self.clone(),
            table: table.into(),
            enabled: None,
            recovery_period_in_days: None,
        }
    }

    /// Starts a `DescribeContinuousBackups` request on `table`.
    pub fn describe_continuous_backups(
        &self,
        table: impl Into<String>,
    ) -> DescribeContinuousBackups {
        DescribeContinuousBackups {
            db: self.clone(),
            table: table.into(),
        }
    }

    /// Takes due base snapshots and reclaims archive records and snapshots
    /// past every PITR window now (the background sweeper does it
    /// periodically).
    pub fn run_pitr_maintenance_now(&self) -> Result<PitrMaintenance> {
        maintain(&self.inner)
    }

    /// The archive records and base snapshots `table`'s point-in-time
    /// recovery holds (a nimbus extension; zero without PITR).
    pub fn point_in_time_recovery_storage(&self, table: impl AsRef<str>) -> Result<PitrStorage> {
        let db = &self.inner;
        let table = source_table(db, table.as_ref())?;
        let definition = table.definition();
        let Some(pitr) = &definition.point_in_time_recovery else {
            return Ok(PitrStorage::default());
        };
        let (archive_records, archive_bytes) = archive::size(&db.engine, pitr.archive_keyspace)?;
        let snapshots = snapshot::list(db, &definition.table_id)?.len() as u64;
        Ok(PitrStorage {
            archive_records,
            archive_bytes,
            snapshots,
        })
    }
}
