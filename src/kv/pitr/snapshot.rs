//! Base snapshots of point-in-time recovery, and retention.
//!
//! A base snapshot is an engine checkpoint (the same as an on-demand
//! backup's, `kv::backup::write_checkpoint`) under
//! `<db>/pitr/<table id>/<time ms, 20 digits>/{engine/, snapshot.json}`,
//! taken with the table's gate held exclusively right after the archive
//! clock was sealed: it holds exactly the table's changes stamped at or
//! before its time. One is taken when PITR is enabled, then one per
//! [`PITR_SNAPSHOT_INTERVAL`], so a restore replays at most a day of the
//! archive.
//!
//! Retention keeps the newest snapshot at or before the earliest
//! restorable time and every later one; older snapshots are removed and
//! archive records older than the oldest kept snapshot deleted.
//! Directories of tables without PITR (disabled, deleted, or an enable
//! cut by a crash) are removed too.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::PitrDefinition;
use super::archive;
use crate::db::DatabaseInner;
use crate::kv::backup::{io_error, remove_tree, write_checkpoint};
use crate::kv::catalogue::TableHandle;
use crate::kv::error::{Error, Result};
use crate::kv::schema::TableDefinition;
use crate::storage::WriteBatch;

/// How often a new base snapshot is taken of a PITR-enabled table.
pub const PITR_SNAPSHOT_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// The directory under the database's that holds base snapshots.
const PITR_DIR: &str = "pitr";
/// The descriptor's file name inside a snapshot's directory.
const DESCRIPTOR: &str = "snapshot.json";

/// What `snapshot.json` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Descriptor {
    table_name: String,
    table_id: String,
    /// The table's item keyspace in the checkpoint.
    keyspace: u32,
    time_millis: u64,
}

/// One complete base snapshot.
#[derive(Debug, Clone)]
pub(super) struct Snapshot {
    /// Its seal time: it holds every change stamped at or before it.
    pub(super) time_millis: u64,
    /// The table's item keyspace in the checkpoint.
    pub(super) keyspace: u32,
    /// The checkpoint's engine directory.
    pub(super) engine: PathBuf,
    dir: PathBuf,
}

fn table_dir(db: &DatabaseInner, table_id: &str) -> PathBuf {
    db.path.join(PITR_DIR).join(table_id)
}

/// Takes a base snapshot of `table`. The caller holds the table's gate
/// exclusively and has just sealed the archive clock at `time_millis`.
pub(super) fn take(
    db: &DatabaseInner,
    definition: &TableDefinition,
    time_millis: u64,
) -> Result<()> {
    let descriptor = Descriptor {
        table_name: definition.name.clone(),
        table_id: definition.table_id.clone(),
        keyspace: definition.keyspace,
        time_millis,
    };
    let json = serde_json::to_vec_pretty(&descriptor)
        .map_err(|e| Error::Validation(format!("snapshot descriptor: {e}")))?;
    let dir = table_dir(db, &definition.table_id);
    db.fs
        .create_dir_all(&dir)
        .map_err(|e| io_error("create_dir", &dir, e))?;
    write_checkpoint(db, &dir, &format!("{time_millis:020}"), DESCRIPTOR, &json)?;
    Ok(())
}

/// The complete snapshots of table `table_id`, oldest first.
pub(super) fn list(db: &DatabaseInner, table_id: &str) -> Result<Vec<Snapshot>> {
    let dir = table_dir(db, table_id);
    if !db.fs.exists(&dir) {
        return Ok(Vec::new());
    }
    let names = db
        .fs
        .list_dir(&dir)
        .map_err(|e| io_error("list", &dir, e))?;
    let mut snapshots = Vec::new();
    for name in names.iter().filter(|n| !n.ends_with(".tmp")) {
        let path = dir.join(name).join(DESCRIPTOR);
        if !db.fs.exists(&path) {
            continue;
        }
        let file = db
            .fs
            .open_read(&path)
            .map_err(|e| io_error("open", &path, e))?;
        let mut bytes = vec![0; file.len() as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| io_error("read", &path, e))?;
        let descriptor: Descriptor = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Storage(crate::storage::StorageError::corruption(
                path.clone(),
                0,
                format!("snapshot descriptor: {e}"),
            ))
        })?;
        snapshots.push(Snapshot {
            time_millis: descriptor.time_millis,
            keyspace: descriptor.keyspace,
            engine: dir.join(name).join("engine"),
            dir: dir.join(name),
        });
    }
    snapshots.sort_by_key(|s| s.time_millis);
    Ok(snapshots)
}

/// Removes every snapshot of table `table_id` (PITR disabled).
pub(super) fn remove_all(db: &DatabaseInner, table_id: &str) -> Result<()> {
    let dir = table_dir(db, table_id);
    if db.fs.exists(&dir) {
        remove_tree(db, &dir)?;
    }
    Ok(())
}

/// What one round of retention did, summed over tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PitrMaintenance {
    /// Base snapshots taken.
    pub snapshots_taken: u64,
    /// Base snapshots removed (past the window, or of tables without
    /// PITR).
    pub snapshots_removed: u64,
    /// Archive records deleted.
    pub archive_records_reclaimed: u64,
    /// Their bytes (keys and values).
    pub archive_bytes_reclaimed: u64,
}

/// Takes due snapshots and applies retention to every PITR-enabled table,
/// then removes the snapshot directories of tables without PITR.
pub(crate) fn maintain(db: &DatabaseInner) -> Result<PitrMaintenance> {
    let mut done = PitrMaintenance::default();
    if db.engine.durability() == crate::storage::Durability::InMemory {
        return Ok(done);
    }
    // Restores read snapshots holding the same locks, in the same order.
    let _restores = db.kv.backups.lock();
    let _ddl = db.kv.ddl.lock();
    let mut enabled = Vec::new();
    for handle in db.kv.handles() {
        let definition = handle.definition();
        if let Some(pitr) = &definition.point_in_time_recovery {
            maintain_table(db, &handle, &definition, pitr, &mut done)?;
            enabled.push(definition.table_id.clone());
        }
    }
    let root = db.path.join(PITR_DIR);
    if db.fs.exists(&root) {
        let names = db
            .fs
            .list_dir(&root)
            .map_err(|e| io_error("list", &root, e))?;
        for name in names.into_iter().filter(|n| !enabled.contains(n)) {
            done.snapshots_removed += list(db, &name)?.len() as u64;
            remove_tree(db, &root.join(name))?;
        }
    }
    Ok(done)
}

fn maintain_table(
    db: &DatabaseInner,
    handle: &Arc<TableHandle>,
    definition: &TableDefinition,
    pitr: &PitrDefinition,
    done: &mut PitrMaintenance,
) -> Result<()> {
    let now = super::now_millis(db);
    let mut snapshots = list(db, &definition.table_id)?;
    let newest = snapshots.last().map_or(0, |s| s.time_millis);
    if now.saturating_sub(newest) >= PITR_SNAPSHOT_INTERVAL.as_millis() as u64 {
        // Flushed first (writers not blocked): the checkpoint's log tail,
        // which a restore replays to open it, is then only what came since.
        db.engine.flush()?;
        let _gate = handle.gate.write();
        let sealed = db.kv.pitr.seal(now);
        take(db, definition, sealed)?;
        let mut batch = WriteBatch::new();
        archive::stage_snapshot_marker(db, pitr.archive_keyspace, sealed, &mut batch);
        db.engine.write(batch)?;
        done.snapshots_taken += 1;
        snapshots = list(db, &definition.table_id)?;
    }
    let earliest = super::earliest_restorable(db, pitr);
    // Snapshots of an earlier enablement are of no use to this window.
    let (stale, usable): (Vec<Snapshot>, Vec<Snapshot>) = snapshots
        .into_iter()
        .partition(|s| s.time_millis < pitr.enabled_at_millis);
    let keep_from = usable
        .iter()
        .rposition(|s| s.time_millis <= earliest)
        .unwrap_or(0);
    for snapshot in stale.iter().chain(&usable[..keep_from]) {
        remove_tree(db, &snapshot.dir)?;
        done.snapshots_removed += 1;
    }
    if let Some(oldest) = usable.get(keep_from) {
        let (rows, bytes) =
            archive::reclaim_before(&db.engine, pitr.archive_keyspace, oldest.time_millis)?;
        done.archive_records_reclaimed += rows;
        done.archive_bytes_reclaimed += bytes;
    }
    Ok(())
}
