//! The catalogue: which tables exist, where their rows live, and their
//! item counts and sizes — persisted in the catalogue keyspace and cached
//! in memory as [`TableHandle`]s.
//!
//! Catalogue rows (keyspace 0, see docs/format-kv.md):
//!
//! ```text
//! 00000000 01 <name>          table definition (JSON)
//! 00000000 02                 next keyspace id (u32 BE)
//! 00000000 03 <keyspace BE>   a dropped keyspace whose rows are still being purged
//! 00000000 04 <keyspace BE>   item count and bytes (i64 BE each), saved at close
//! 00000000 05                 "closed cleanly": the saved counts are exact
//! 00000000 06 <keyspace BE>   a GSI backfill's progress (see index::backfill)
//! 00000000 10, 11             a table's partition map and counts (see kv::partitions)
//! 00000000 12, 13, 14         export and import descriptions, client tokens (kv::transfers)
//! ```
//!
//! Index keyspaces have their own count rows (tag 04), so `describe_table`
//! reports each index's entry count and size.
//!
//! Counts are kept exactly in memory while the database is open and saved
//! on close. The clean marker is removed when the database opens, so after
//! a crash the counts are recomputed by one scan of each table at open.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use super::error::{Error, Result};
use super::locks::KeyLocks;
use super::schema::TableDefinition;
pub(crate) use crate::partition::Counts;
use crate::partition::{CATALOGUE_KEYSPACE, FIRST_ALLOCATED_KEYSPACE, KeyspaceId, keyspace_prefix};
use crate::storage::{Direction, Engine, StorageError, WriteBatch};
use crate::value::{decode_item, item_size};

const TABLE_TAG: u8 = 1;
const NEXT_KEYSPACE_TAG: u8 = 2;
const DROPPED_TAG: u8 = 3;
const STATS_TAG: u8 = 4;
const CLEAN_TAG: u8 = 5;
/// A backfill's progress row (written by `index::backfill`).
pub(crate) const BACKFILL_TAG: u8 = 6;

/// Rows deleted per batch while purging a dropped table.
const PURGE_BATCH_ROWS: usize = 1024;

/// One open table: its definition and live statistics.
#[derive(Debug)]
pub(crate) struct TableHandle {
    definition: RwLock<Arc<TableDefinition>>,
    /// Writers hold it shared; `delete_table` takes it exclusively, so no
    /// write lands in a keyspace after its purge began. Index changes take
    /// it exclusively too, so every write sees one definition throughout.
    pub(crate) gate: RwLock<()>,
    pub(crate) dropped: AtomicBool,
    counts: Counts,
    /// The live state of each index, by keyspace.
    indexes: RwLock<HashMap<KeyspaceId, Arc<crate::index::IndexState>>>,
    /// Item collection sizes of a table with local indexes.
    pub(crate) collections: crate::index::Collections,
    /// Partitions: token ranges, their counts, buckets and heat.
    pub(crate) partitions: super::partitions::TablePartitions,
}

impl TableHandle {
    fn new(
        definition: TableDefinition,
        items: i64,
        bytes: i64,
        partitions: super::partitions::TablePartitions,
    ) -> Self {
        Self {
            partitions,
            definition: RwLock::new(Arc::new(definition)),
            gate: RwLock::new(()),
            dropped: AtomicBool::new(false),
            counts: Counts::new(items, bytes),
            indexes: RwLock::new(HashMap::new()),
            collections: crate::index::Collections::default(),
        }
    }

    /// The live state of the index in `keyspace` (created on first use).
    pub(crate) fn index_state(&self, keyspace: KeyspaceId) -> Arc<crate::index::IndexState> {
        if let Some(state) = self.indexes.read().get(&keyspace) {
            return Arc::clone(state);
        }
        Arc::clone(self.indexes.write().entry(keyspace).or_default())
    }

    /// Forgets a deleted index's live state.
    pub(crate) fn forget_index(&self, keyspace: KeyspaceId) {
        self.indexes.write().remove(&keyspace);
    }

    /// The current definition.
    pub(crate) fn definition(&self) -> Arc<TableDefinition> {
        Arc::clone(&self.definition.read())
    }

    pub(crate) fn set_definition(&self, definition: TableDefinition) {
        *self.definition.write() = Arc::new(definition);
    }

    /// Records that an item of `old` bytes became one of `new` bytes
    /// (`None`: absent).
    pub(crate) fn account(&self, old: Option<usize>, new: Option<usize>) {
        self.counts.account(old, new);
    }

    /// (item count, size in bytes).
    pub(crate) fn counts(&self) -> (u64, u64) {
        self.counts.get()
    }
}

/// The kv layer's state inside a `Database`.
#[derive(Debug)]
pub(crate) struct KvState {
    tables: RwLock<HashMap<String, Arc<TableHandle>>>,
    /// Serialises create/update/delete table.
    pub(crate) ddl: Mutex<()>,
    next_keyspace: Mutex<KeyspaceId>,
    pub(crate) locks: KeyLocks,
    pub(crate) eventual: super::views::EventualView,
    closed: AtomicBool,
    /// Background work (index backfills) holds it shared per step; close
    /// takes it exclusively, so no step commits after the counts are saved.
    pub(crate) quiesce: RwLock<()>,
    /// Restores and backup deletions hold it, so a backup is never
    /// deleted while a restore reads it.
    pub(crate) backups: Mutex<()>,
    /// Time and order stamps of point-in-time recovery archive records.
    pub(crate) pitr: super::pitr::ArchiveClock,
    /// Client-token claims and ids of exports and imports.
    pub(crate) transfers: super::transfers::TransferState,
}

pub(crate) fn catalogue_key(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut key = keyspace_prefix(CATALOGUE_KEYSPACE).to_vec();
    key.push(tag);
    key.extend_from_slice(rest);
    key
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::corruption("catalogue", 0, what)
}

impl KvState {
    /// Loads the catalogue, recounts tables after an unclean shutdown, and
    /// finishes purging dropped tables.
    pub(crate) fn load(engine: &Engine) -> Result<Self, StorageError> {
        let mut definitions = Vec::new();
        for row in engine.prefix(&catalogue_key(TABLE_TAG, &[]), Direction::Forward, None)? {
            let (_, value) = row?;
            let definition: TableDefinition = serde_json::from_slice(&value)
                .map_err(|e| corrupt(format!("table definition: {e}")))?;
            definitions.push(definition);
        }
        let next_keyspace = match engine.get(&catalogue_key(NEXT_KEYSPACE_TAG, &[]))? {
            Some(bytes) => u32::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt("next keyspace id"))?,
            ),
            None => FIRST_ALLOCATED_KEYSPACE,
        };
        let clean = engine.get(&catalogue_key(CLEAN_TAG, &[]))?.is_some();
        let mut tables = HashMap::new();
        let mut batch = WriteBatch::new();
        for definition in definitions {
            let mut counts = Vec::new();
            let (partitions, recounted) =
                super::partitions::load(engine, &definition, clean, &mut batch)?;
            for keyspace in definition.keyspaces() {
                let stats_key = catalogue_key(STATS_TAG, &keyspace.to_be_bytes());
                counts.push(match engine.get(&stats_key)? {
                    Some(saved) if clean => decode_stats(&saved)?,
                    // The partition recount already scanned the table.
                    _ if keyspace == definition.keyspace && recounted.is_some() => {
                        recounted.unwrap_or_default()
                    }
                    _ => recount(engine, keyspace)?,
                });
                batch.delete(&stats_key);
            }
            let (items, bytes) = counts[0];
            let handle = TableHandle::new(definition, items, bytes, partitions);
            let definition = handle.definition();
            for (keyspace, (items, bytes)) in definition.keyspaces().into_iter().zip(counts).skip(1)
            {
                handle.indexes.write().insert(
                    keyspace,
                    Arc::new(crate::index::IndexState::new(items, bytes)),
                );
            }
            tables.insert(definition.name.clone(), Arc::new(handle));
        }
        batch.delete(&catalogue_key(CLEAN_TAG, &[]));
        // A read replica writes nothing of its own: its primary's log is
        // the only source of its rows (see `refresh`).
        let read_only = engine.is_read_only();
        if !read_only {
            engine.write(batch)?;
            super::transfers::recover(engine)?;
        }
        let pitr = super::pitr::ArchiveClock::recover(
            engine,
            tables
                .values()
                .map(|t| t.definition())
                .collect::<Vec<_>>()
                .iter()
                .map(|d| &**d),
        )?;
        let state = Self {
            tables: RwLock::new(tables),
            ddl: Mutex::new(()),
            next_keyspace: Mutex::new(next_keyspace),
            locks: KeyLocks::new(),
            eventual: super::views::EventualView::default(),
            closed: AtomicBool::new(false),
            quiesce: RwLock::new(()),
            backups: Mutex::new(()),
            pitr,
            transfers: super::transfers::TransferState::default(),
        };
        for row in engine.prefix(&catalogue_key(DROPPED_TAG, &[]), Direction::Forward, None)? {
            let (key, _) = row?;
            let id = key
                .get(5..9)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| corrupt("dropped keyspace id"))?;
            if !read_only {
                purge_keyspace(engine, id)?;
            }
        }
        Ok(state)
    }

    /// Re-reads the table definitions from the engine: a read replica
    /// calls it after applying replicated batches that touched the
    /// catalogue, so tables created, updated or deleted on the primary
    /// appear here. A new table's counts come from one scan.
    pub(crate) fn refresh(&self, engine: &Engine) -> Result<(), StorageError> {
        let mut definitions = HashMap::new();
        for row in engine.prefix(&catalogue_key(TABLE_TAG, &[]), Direction::Forward, None)? {
            let (_, value) = row?;
            let definition: TableDefinition = serde_json::from_slice(&value)
                .map_err(|e| corrupt(format!("table definition: {e}")))?;
            definitions.insert(definition.name.clone(), definition);
        }
        if let Some(bytes) = engine.get(&catalogue_key(NEXT_KEYSPACE_TAG, &[]))? {
            let next = u32::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| corrupt("next keyspace id"))?,
            );
            *self.next_keyspace.lock() = next;
        }
        let mut tables = self.tables.write();
        tables.retain(|name, handle| {
            let keep = definitions
                .get(name)
                .is_some_and(|d| d.keyspace == handle.definition().keyspace);
            if !keep {
                handle.dropped.store(true, Ordering::Release);
            }
            keep
        });
        for (name, definition) in definitions {
            if let Some(handle) = tables.get(&name) {
                handle.set_definition(definition);
                continue;
            }
            // The scratch batch takes the count-row deletions `load` stages
            // for a primary; a replica never writes them.
            let mut scratch = WriteBatch::new();
            let (partitions, recounted) =
                super::partitions::load(engine, &definition, false, &mut scratch)?;
            let (items, bytes) = recounted.unwrap_or_default();
            tables.insert(
                name,
                Arc::new(TableHandle::new(definition, items, bytes, partitions)),
            );
        }
        Ok(())
    }

    /// The table called `name`.
    pub(crate) fn table(&self, name: &str) -> Result<Arc<TableHandle>> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::table_not_found(name))
    }

    /// Every table name, sorted.
    pub(crate) fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.read().keys().cloned().collect();
        names.sort();
        names
    }

    /// Allocates `count` fresh keyspace ids and returns the first; the new
    /// allocator value is added to `batch`, so ids are used at most once
    /// even if the batch is lost (the in-memory counter already moved on).
    pub(crate) fn allocate_keyspaces(&self, count: u32, batch: &mut WriteBatch) -> KeyspaceId {
        let mut next = self.next_keyspace.lock();
        let first = *next;
        *next += count;
        batch.put(&catalogue_key(NEXT_KEYSPACE_TAG, &[]), &next.to_be_bytes());
        first
    }

    /// Adds a table definition to `batch` (create or update).
    pub(crate) fn put_definition(
        batch: &mut WriteBatch,
        definition: &TableDefinition,
    ) -> Result<()> {
        let json = serde_json::to_vec(definition)
            .map_err(|e| Error::Storage(corrupt(format!("table definition: {e}"))))?;
        batch.put(&catalogue_key(TABLE_TAG, definition.name.as_bytes()), &json);
        Ok(())
    }

    /// Registers a created table (after its batch is committed).
    pub(crate) fn insert(
        &self,
        definition: TableDefinition,
        partitions: crate::partition::map::PartitionMap,
        created_nanos: u64,
    ) -> Arc<TableHandle> {
        let partitions = super::partitions::TablePartitions::new(partitions, Some(created_nanos));
        let handle = Arc::new(TableHandle::new(definition, 0, 0, partitions));
        self.tables
            .write()
            .insert(handle.definition().name.clone(), Arc::clone(&handle));
        handle
    }

    /// Deletes a table: removes its definition and marks its keyspaces
    /// dropped in one batch, then purges their rows.
    pub(crate) fn drop_table(&self, engine: &Engine, handle: &TableHandle) -> Result<()> {
        let _gate = handle.gate.write();
        let definition = handle.definition();
        let mut keyspaces = definition.keyspaces();
        // Its point-in-time archive goes with it (snapshots are removed by
        // the next PITR maintenance).
        keyspaces.extend(
            definition
                .point_in_time_recovery
                .as_ref()
                .map(|p| p.archive_keyspace),
        );
        let mut batch = WriteBatch::new();
        batch.delete(&catalogue_key(TABLE_TAG, definition.name.as_bytes()));
        super::partitions::stage_drop(&mut batch, definition.keyspace);
        for id in &keyspaces {
            batch.put(&catalogue_key(DROPPED_TAG, &id.to_be_bytes()), &[]);
        }
        engine.write(batch)?;
        handle.dropped.store(true, Ordering::Release);
        self.tables.write().remove(&definition.name);
        for id in keyspaces {
            purge_keyspace(engine, id)?;
        }
        Ok(())
    }

    /// Whether the database is closing (background work stops).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Every open table.
    pub(crate) fn handles(&self) -> Vec<Arc<TableHandle>> {
        self.tables.read().values().cloned().collect()
    }

    /// Adds the removal of `keyspace`'s "dropped" marker to `batch` (a
    /// restore publishing the keyspace it filled).
    pub(crate) fn unmark_dropped(batch: &mut WriteBatch, keyspace: KeyspaceId) {
        batch.delete(&catalogue_key(DROPPED_TAG, &keyspace.to_be_bytes()));
    }

    /// Registers a table restored with rows already in place: `counts` are
    /// the entry counts and sizes of its keyspaces, in
    /// [`TableDefinition::keyspaces`] order.
    pub(crate) fn insert_with_counts(
        &self,
        definition: TableDefinition,
        counts: &[(i64, i64)],
        partitions: super::partitions::TablePartitions,
    ) -> Arc<TableHandle> {
        let (items, bytes) = counts.first().copied().unwrap_or_default();
        let handle = Arc::new(TableHandle::new(definition, items, bytes, partitions));
        let definition = handle.definition();
        for (keyspace, (items, bytes)) in definition.keyspaces().into_iter().zip(counts).skip(1) {
            handle.indexes.write().insert(
                keyspace,
                Arc::new(crate::index::IndexState::new(*items, *bytes)),
            );
        }
        self.tables
            .write()
            .insert(definition.name.clone(), Arc::clone(&handle));
        handle
    }

    /// Adds the "dropped" marker of `keyspace` to `batch`: once committed,
    /// its rows are purged (now, or at the next open after a crash).
    pub(crate) fn mark_dropped(batch: &mut WriteBatch, keyspace: KeyspaceId) {
        batch.put(&catalogue_key(DROPPED_TAG, &keyspace.to_be_bytes()), &[]);
    }

    /// Saves the counts and the clean marker (on close or drop).
    pub(crate) fn save_on_close(&self, engine: &Engine) -> Result<(), StorageError> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // A read replica writes nothing of its own; its next open recounts.
        if engine.is_read_only() {
            return Ok(());
        }
        let _quiet = self.quiesce.write();
        let mut batch = WriteBatch::new();
        for handle in self.tables.read().values() {
            let definition = handle.definition();
            handle
                .partitions
                .save_counts(&mut batch, definition.keyspace);
            for keyspace in definition.keyspaces() {
                let (items, bytes) = if keyspace == definition.keyspace {
                    handle.counts()
                } else {
                    handle.index_state(keyspace).counts.get()
                };
                let mut value = Vec::with_capacity(16);
                value.extend_from_slice(&(items as i64).to_be_bytes());
                value.extend_from_slice(&(bytes as i64).to_be_bytes());
                batch.put(&catalogue_key(STATS_TAG, &keyspace.to_be_bytes()), &value);
            }
        }
        batch.put(&catalogue_key(CLEAN_TAG, &[]), &[]);
        engine.write(batch)?;
        engine.sync()
    }
}

fn decode_stats(saved: &[u8]) -> Result<(i64, i64), StorageError> {
    let items = saved.get(..8).and_then(|b| b.try_into().ok());
    let bytes = saved.get(8..16).and_then(|b| b.try_into().ok());
    match (items, bytes) {
        (Some(items), Some(bytes)) => Ok((i64::from_be_bytes(items), i64::from_be_bytes(bytes))),
        _ => Err(corrupt("table statistics")),
    }
}

/// Counts a table's items and bytes by scanning it.
fn recount(engine: &Engine, keyspace: KeyspaceId) -> Result<(i64, i64), StorageError> {
    let (mut items, mut bytes) = (0i64, 0i64);
    for row in engine.prefix(&keyspace_prefix(keyspace), Direction::Forward, None)? {
        let (_, value) = row?;
        let item = decode_item(&value).map_err(|e| corrupt(format!("item row: {e}")))?;
        items += 1;
        bytes += item_size(&item) as i64;
    }
    Ok((items, bytes))
}

/// Deletes every row of a dropped keyspace, then its dropped marker.
pub(crate) fn purge_keyspace(engine: &Engine, keyspace: KeyspaceId) -> Result<(), StorageError> {
    loop {
        let mut batch = WriteBatch::new();
        let mut rows = 0;
        for row in engine.prefix(&keyspace_prefix(keyspace), Direction::Forward, None)? {
            let (key, _) = row?;
            batch.delete(&key);
            rows += 1;
            if rows == PURGE_BATCH_ROWS {
                break;
            }
        }
        if rows == 0 {
            break;
        }
        engine.write(batch)?;
    }
    let mut batch = WriteBatch::new();
    batch.delete(&catalogue_key(DROPPED_TAG, &keyspace.to_be_bytes()));
    engine.write(batch)?;
    Ok(())
}
