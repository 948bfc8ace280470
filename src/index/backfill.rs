//! The backfill of a global secondary index added to a table that already
//! has items: a background thread walks the table in key order, in steps,
//! adding each item's entry, while writes keep the entries of the items it
//! has passed. Its progress is saved with each step, so after a crash or a
//! close it resumes where it stopped; items with a bad index key value are
//! left out and counted, as DynamoDB does.
//!
//! Each step holds the table's gate exclusively, so no write runs while a
//! step decides which items it covers: a write sees either the old cursor
//! (and leaves the entry to the step) or the new one (and maintains it).

use std::ops::Bound;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{IndexKind, IndexView, NotIndexed, Progress, entry_key, project};
use crate::db::DatabaseInner;
use crate::kv::{BACKFILL_TAG, IndexStatus, KvState, Result, TableHandle, catalogue_key};
use crate::partition::{KeyspaceId, keyspace_prefix, prefix_successor};
use crate::storage::{Direction, StorageError, WriteBatch};
use crate::value::{decode_item, encode_item, item_size};

/// Base items one step examines at most.
const STEP_ITEMS: usize = 256;

fn progress_key(keyspace: KeyspaceId) -> Vec<u8> {
    catalogue_key(BACKFILL_TAG, &keyspace.to_be_bytes())
}

fn encode_progress(progress: &Progress) -> Vec<u8> {
    let mut value = Vec::with_capacity(16 + progress.cursor.as_ref().map_or(0, Vec::len));
    value.extend_from_slice(&progress.scanned.to_be_bytes());
    value.extend_from_slice(&progress.skipped.to_be_bytes());
    if let Some(cursor) = &progress.cursor {
        value.extend_from_slice(cursor);
    }
    value
}

fn decode_progress(value: &[u8]) -> Result<Progress, StorageError> {
    let number = |range: std::ops::Range<usize>| {
        value
            .get(range)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| StorageError::corruption("catalogue", 0, "backfill progress"))
    };
    Ok(Progress {
        scanned: number(0..8)?,
        skipped: number(8..16)?,
        cursor: (value.len() > 16).then(|| value[16..].to_vec()),
    })
}

/// Starts the backfill of the new index in `keyspace` of `table` (its
/// progress was set to "not started" before the index was published).
pub(crate) fn start_backfill(db: &Arc<DatabaseInner>, table: &str, keyspace: KeyspaceId) {
    let weak = Arc::downgrade(db);
    let table = table.to_owned();
    let spawned = std::thread::Builder::new()
        .name(format!("nimbus-backfill-{keyspace}"))
        .spawn(move || run(&weak, &table, keyspace));
    // Without a thread the index stays CREATING; the next open retries.
    drop(spawned);
}

/// Restores the progress of every unfinished backfill and restarts them
/// (at open, before any write).
pub(crate) fn resume_backfills(db: &Arc<DatabaseInner>) -> Result<(), StorageError> {
    for handle in db.kv.handles() {
        let definition = handle.definition();
        for index in &definition.global_indexes {
            if index.status != IndexStatus::Creating {
                continue;
            }
            let progress = match db.engine.get(&progress_key(index.keyspace))? {
                Some(value) => decode_progress(&value)?,
                None => Progress::default(),
            };
            *handle.index_state(index.keyspace).backfill.lock() = Some(progress);
            start_backfill(db, &definition.name, index.keyspace);
        }
    }
    Ok(())
}

/// What a step found.
enum Step {
    /// Items were processed; more may follow.
    More(usize),
    /// Every item is covered.
    Done,
    /// The table, the index or the database is gone.
    Stop,
}

fn run(db: &Weak<DatabaseInner>, table: &str, keyspace: KeyspaceId) {
    loop {
        let Some(inner) = db.upgrade() else { return };
        let step = match step(&inner, table, keyspace) {
            Ok(step) => step,
            // A failed step (closed or failing engine) is retried at the
            // next open.
            Err(_) => return,
        };
        match step {
            Step::More(items) => {
                let pause = inner
                    .index_backfill_items_per_second
                    .map(|rate| Duration::from_secs_f64(items as f64 / rate.max(1) as f64));
                drop(inner);
                if let Some(pause) = pause {
                    std::thread::sleep(pause);
                }
            }
            Step::Done => {
                let _ = finish(&inner, table, keyspace);
                return;
            }
            Step::Stop => return,
        }
    }
}

/// Processes the next items after the cursor.
fn step(db: &DatabaseInner, table: &str, keyspace: KeyspaceId) -> Result<Step> {
    let _quiet = db.kv.quiesce.read();
    if db.kv.is_closed() {
        return Ok(Step::Stop);
    }
    let Ok(handle) = db.kv.table(table) else {
        return Ok(Step::Stop);
    };
    let _gate = handle.gate.write();
    let definition = handle.definition();
    let Some(global) = definition
        .global_indexes
        .iter()
        .find(|i| i.keyspace == keyspace && i.status == IndexStatus::Creating)
    else {
        return Ok(Step::Stop);
    };
    let index = IndexView {
        name: &global.index.index_name,
        kind: IndexKind::Global,
        key: &global.key,
        keyspace,
        projection: &global.index.projection,
        status: IndexStatus::Creating,
    };
    let state = handle.index_state(keyspace);
    let mut progress = state.backfill.lock().clone().unwrap_or_default();
    let table_prefix = keyspace_prefix(definition.keyspace);
    let end = match prefix_successor(&table_prefix) {
        Some(end) => Bound::Excluded(end),
        None => Bound::Unbounded,
    };
    let start = match &progress.cursor {
        Some(cursor) => Bound::Excluded(cursor.clone()),
        None => Bound::Included(table_prefix.to_vec()),
    };
    let mut batch = WriteBatch::new();
    let mut added = Vec::new();
    let mut items = 0;
    for row in db.engine.range((start, end), Direction::Forward, None)? {
        let (row_key, value) = row?;
        let item = decode_item(&value)?;
        progress.scanned += 1;
        match entry_key(&index, &item, &row_key) {
            Ok(key) => {
                let entry = project(&index, &definition.key, &item);
                let mut bytes = Vec::with_capacity(item_size(&entry) + 16);
                encode_item(&entry, &mut bytes);
                batch.put(&key, &bytes);
                added.push(item_size(&entry));
            }
            Err(NotIndexed::Missing) => {}
            Err(NotIndexed::Invalid(_)) => progress.skipped += 1,
        }
        progress.cursor = Some(row_key.to_vec());
        items += 1;
        if items == STEP_ITEMS {
            break;
        }
    }
    if items == 0 {
        // Every item is covered: from now on writes maintain all entries.
        progress.cursor = Some(prefix_successor(&table_prefix).unwrap_or_else(|| vec![0xFF; 5]));
        *state.backfill.lock() = Some(progress);
        return Ok(Step::Done);
    }
    batch.put(&progress_key(keyspace), &encode_progress(&progress));
    db.engine.write(batch)?;
    for size in added {
        state.counts.account(None, Some(size));
    }
    *state.backfill.lock() = Some(progress);
    Ok(Step::More(items))
}

/// Marks the index ACTIVE and forgets its progress.
fn finish(db: &DatabaseInner, table: &str, keyspace: KeyspaceId) -> Result<()> {
    let _quiet = db.kv.quiesce.read();
    let _ddl = db.kv.ddl.lock();
    let handle: Arc<TableHandle> = db.kv.table(table)?;
    let mut definition = (*handle.definition()).clone();
    let Some(index) = definition
        .global_indexes
        .iter_mut()
        .find(|i| i.keyspace == keyspace)
    else {
        return Ok(());
    };
    index.status = IndexStatus::Active;
    let mut batch = WriteBatch::new();
    KvState::put_definition(&mut batch, &definition)?;
    batch.delete(&progress_key(keyspace));
    db.engine.write(batch)?;
    let _gate = handle.gate.write();
    handle.set_definition(definition);
    *handle.index_state(keyspace).backfill.lock() = None;
    Ok(())
}
