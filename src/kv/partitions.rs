//! A table's partitions as the kv layer keeps them: the durable map
//! (catalogue rows 0x10 and 0x11), per-partition counts maintained on
//! every write, splits for size and for heat, hot keys, and what
//! `describe_table` shows of them.
//!
//! Catalogue rows (keyspace 0, see docs/format-kv.md):
//!
//! ```text
//! 00000000 10 <table keyspace BE>   the partition map (partition::map encoding)
//! 00000000 11 <table keyspace BE>   per-partition counts saved at close:
//!                                   u32 count | count × (u64 id | i64 items | i64 bytes)
//! ```
//!
//! Every split goes through [`apply_partition_split`]: it holds the table's
//! gate exclusively (no write in flight), recounts the left child from its
//! rows, and commits the new map in one batch — the place where a stream
//! shard of the parent is closed and two child shards are opened.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::catalogue::{TableHandle, catalogue_key};
use super::error::{Error, Result};
use super::schema::{BillingMode, TableDefinition};
use crate::db::DatabaseInner;
use crate::partition::map::{HeatVerdict, Partition, PartitionMap};
use crate::partition::{keyspace_prefix, prefix_successor};
use crate::storage::{Direction, Engine, StorageError, WriteBatch};
use crate::value::{AttributeValue, decode_item, decode_key_value, item_size};

/// Catalogue tag of a table's partition map.
const MAP_TAG: u8 = 0x10;
/// Catalogue tag of a table's per-partition counts (saved at close).
const COUNTS_TAG: u8 = 0x11;

/// DynamoDB's largest partition: 10 GB; a partition above it splits.
pub const PARTITION_SPLIT_BYTES: u64 = 10 * (1 << 30);
/// Per-partition read ceiling, units per second (DynamoDB: 3,000 RCU).
pub const PARTITION_READ_UNITS_MAX: f64 = 3000.0;
/// Per-partition write ceiling, units per second (DynamoDB: 1,000 WCU).
pub const PARTITION_WRITE_UNITS_MAX: f64 = 1000.0;
/// Default heat threshold: 80% of a partition's ceiling, in write units per
/// second (a read unit counts as a third of a write unit, the ratio of the
/// two ceilings).
pub const HEAT_SPLIT_UNITS_PER_SECOND: f64 = 0.8 * PARTITION_WRITE_UNITS_MAX;
/// Default window over which the heat must be sustained.
pub const HEAT_SPLIT_WINDOW: Duration = Duration::from_secs(60);
/// Hot keys remembered per table (the most recent).
pub const HOT_KEYS_MAX: usize = 16;

/// How tables are partitioned (part of `DatabaseOptions`).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionOptions {
    /// Partitions a new table starts with (at least 1; default 1).
    pub initial_partitions: u32,
    /// A partition holding more item bytes splits (default 10 GB).
    pub split_bytes: u64,
    /// Load, in write units per second (read units count a third), above
    /// which a partition is hot (default 800); `None` disables heat splits.
    pub heat_units_per_second: Option<f64>,
    /// How long the load must stay above the threshold (default 60 s).
    pub heat_window: Duration,
}

impl Default for PartitionOptions {
    fn default() -> Self {
        Self {
            initial_partitions: 1,
            split_bytes: PARTITION_SPLIT_BYTES,
            heat_units_per_second: Some(HEAT_SPLIT_UNITS_PER_SECOND),
            heat_window: HEAT_SPLIT_WINDOW,
        }
    }
}

/// One partition as `describe_table` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionDescription {
    /// Unique id (never reused; a split's children get new ids).
    pub partition_id: u64,
    /// The partition it was split from, if any.
    pub parent_partition_id: Option<u64>,
    /// First token of its range.
    pub start_token: u64,
    /// First token after its range (`None`: up to the ring's end).
    pub end_token: Option<u64>,
    /// Items it holds.
    pub item_count: u64,
    /// Their size in bytes.
    pub size_bytes: u64,
}

/// A partition key that carried at least half of a hot partition's load,
/// which no split can divide.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    /// The partition key attribute and value.
    pub partition_key: (String, AttributeValue),
    /// Its token.
    pub token: u64,
    /// The partition holding it.
    pub partition_id: u64,
    /// Its load (write units per second; reads count a third) over the
    /// window in which it was found.
    pub units_per_second: f64,
}

/// Work a request found for after it releases the table's gate.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pending {
    /// Split `partition`: at `at` (heat), or at its median key (size).
    Split { partition: u64, at: Option<u64> },
    /// Record the key at `token` as hot.
    HotKey {
        partition: u64,
        token: u64,
        units_per_second: f64,
    },
}

/// The database clock in nanoseconds since the epoch.
pub(crate) fn now_nanos(db: &DatabaseInner) -> u64 {
    u64::try_from(db.clock.since_epoch().as_nanos()).unwrap_or(u64::MAX)
}

/// The partitions of one open table.
#[derive(Debug)]
pub(crate) struct TablePartitions {
    map: RwLock<Arc<PartitionMap>>,
    /// Splits and hot keys found on a request path, handled once it
    /// released the table's gate.
    pending: Mutex<Vec<Pending>>,
    has_pending: AtomicBool,
    /// Partitions that cannot split for size (one partition key).
    unsplittable: Mutex<Vec<u64>>,
    hot_keys: Mutex<Vec<HotKey>>,
    /// Throughput buckets of the table and its global indexes.
    pub(crate) throughput: super::throttle::TableThroughput,
}

impl TablePartitions {
    /// The partitions of a table; `created_nanos` for a table created in
    /// this session (its throughput accrues from then).
    pub(crate) fn new(map: PartitionMap, created_nanos: Option<u64>) -> Self {
        Self {
            map: RwLock::new(Arc::new(map)),
            pending: Mutex::new(Vec::new()),
            has_pending: AtomicBool::new(false),
            unsplittable: Mutex::new(Vec::new()),
            hot_keys: Mutex::new(Vec::new()),
            throughput: super::throttle::TableThroughput::new(created_nanos),
        }
    }

    /// The current map.
    pub(crate) fn map(&self) -> Arc<PartitionMap> {
        Arc::clone(&self.map.read())
    }

    /// The partition holding `token`.
    pub(crate) fn partition(&self, token: u64) -> Arc<Partition> {
        Arc::clone(self.map.read().get(token))
    }

    /// Accounts a committed write of the item with `token` and asks for a
    /// size split when its partition grew past `split_bytes`.
    pub(crate) fn account(
        &self,
        token: u64,
        old: Option<usize>,
        new: Option<usize>,
        split_bytes: u64,
    ) {
        let partition = self.partition(token);
        partition.account(old, new);
        if new > old
            && partition.counts().1 > split_bytes
            && !self.unsplittable.lock().contains(&partition.id)
        {
            self.request_split(partition.id, None);
        }
    }

    /// Adds `units` of load on `token` to its partition's heat; asks for a
    /// heat split, or records a hot key, when a hot window just ended.
    /// Provisioned tables with a stream are never split for heat (a
    /// DynamoDB rule); their hot keys are still reported.
    pub(crate) fn heat(
        &self,
        db: &DatabaseInner,
        definition: &TableDefinition,
        partition: &Partition,
        token: u64,
        units: f64,
    ) {
        let options = &db.partition_options;
        let Some(threshold) = options.heat_units_per_second else {
            return;
        };
        let now = now_nanos(db);
        let window = u64::try_from(options.heat_window.as_nanos()).unwrap_or(u64::MAX);
        let verdict = partition.load.lock().heat.record(
            token,
            units,
            now,
            window.max(1),
            threshold,
            (partition.start, partition.end),
        );
        match verdict {
            Some(HeatVerdict::Split { at }) => {
                let streamed = definition.billing_mode == BillingMode::Provisioned
                    && definition.stream_label.is_some();
                if !streamed {
                    self.request_split(partition.id, Some(at));
                }
            }
            Some(HeatVerdict::HotKey {
                token,
                units_per_second,
            }) => {
                self.pending.lock().push(Pending::HotKey {
                    partition: partition.id,
                    token,
                    units_per_second,
                });
                self.has_pending.store(true, Ordering::Release);
            }
            None => {}
        }
    }

    fn request_split(&self, partition: u64, at: Option<u64>) {
        let mut pending = self.pending.lock();
        let known = pending
            .iter()
            .any(|p| matches!(p, Pending::Split { partition: id, .. } if *id == partition));
        if !known {
            pending.push(Pending::Split { partition, at });
        }
        self.has_pending.store(true, Ordering::Release);
    }

    /// Whether a split or hot key waits to be handled (one atomic load, so
    /// request paths can ask cheaply).
    pub(crate) fn has_pending(&self) -> bool {
        self.has_pending.load(Ordering::Acquire)
    }

    /// The hot keys found so far (most recent last).
    pub(crate) fn hot_keys(&self) -> Vec<HotKey> {
        self.hot_keys.lock().clone()
    }

    /// What `describe_table` shows of each partition.
    pub(crate) fn describe(&self) -> Vec<PartitionDescription> {
        self.map()
            .partitions()
            .iter()
            .map(|p| {
                let (item_count, size_bytes) = p.counts();
                PartitionDescription {
                    partition_id: p.id,
                    parent_partition_id: p.parent,
                    start_token: p.start,
                    end_token: p.end,
                    item_count,
                    size_bytes,
                }
            })
            .collect()
    }

    /// Adds the counts row to `batch` (at close).
    pub(crate) fn save_counts(&self, batch: &mut WriteBatch, keyspace: u32) {
        let map = self.map();
        let mut value = Vec::with_capacity(4 + 24 * map.partitions().len());
        value.extend_from_slice(&(map.partitions().len() as u32).to_be_bytes());
        for p in map.partitions() {
            let (items, bytes) = p.counts();
            value.extend_from_slice(&p.id.to_be_bytes());
            value.extend_from_slice(&(items as i64).to_be_bytes());
            value.extend_from_slice(&(bytes as i64).to_be_bytes());
        }
        batch.put(&catalogue_key(COUNTS_TAG, &keyspace.to_be_bytes()), &value);
    }
}

fn corrupt(what: impl Into<String>) -> StorageError {
    StorageError::corruption("catalogue", 0, what)
}

/// The token of a row key (`keyspace | token | ...`).
pub(crate) fn row_token(row_key: &[u8]) -> u64 {
    row_key
        .get(4..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// The first engine key of token `token` in `keyspace`.
fn token_key(keyspace: u32, token: u64) -> Vec<u8> {
    let mut key = keyspace_prefix(keyspace).to_vec();
    key.extend_from_slice(&token.to_be_bytes());
    key
}

/// The engine key range of a partition's rows.
fn partition_keys(keyspace: u32, partition: &Partition) -> (Vec<u8>, Option<Vec<u8>>) {
    let end = match partition.end {
        Some(end) => Some(token_key(keyspace, end)),
        None => prefix_successor(&keyspace_prefix(keyspace)),
    };
    (token_key(keyspace, partition.start), end)
}

/// Adds a new table's partition map to its create batch.
pub(crate) fn stage_new_map(batch: &mut WriteBatch, keyspace: u32, map: &PartitionMap) {
    batch.put(
        &catalogue_key(MAP_TAG, &keyspace.to_be_bytes()),
        &map.encode(),
    );
}

/// Adds the removal of a dropped table's partition rows to `batch`.
pub(crate) fn stage_drop(batch: &mut WriteBatch, keyspace: u32) {
    batch.delete(&catalogue_key(MAP_TAG, &keyspace.to_be_bytes()));
    batch.delete(&catalogue_key(COUNTS_TAG, &keyspace.to_be_bytes()));
}

/// Loads a table's partitions at open: the map (one partition for tables
/// older than it), and their counts — saved ones after a clean close, else
/// recounted by one scan, whose table totals are returned so the
/// catalogue need not scan again. Removes the saved counts row, as the
/// catalogue does its own, so a crash forces the next recount.
pub(crate) fn load(
    engine: &Engine,
    definition: &TableDefinition,
    clean: bool,
    batch: &mut WriteBatch,
) -> Result<(TablePartitions, Option<(i64, i64)>), StorageError> {
    let keyspace = definition.keyspace;
    let map = match engine.get(&catalogue_key(MAP_TAG, &keyspace.to_be_bytes()))? {
        Some(bytes) => PartitionMap::decode(&bytes, 0).map_err(|e| corrupt(e.0))?,
        None => PartitionMap::new(1, 0),
    };
    let counts_key = catalogue_key(COUNTS_TAG, &keyspace.to_be_bytes());
    let saved = engine.get(&counts_key)?;
    batch.delete(&counts_key);
    let restored = match saved {
        Some(bytes) if clean => restore_counts(&map, &bytes),
        _ => false,
    };
    let totals = if restored {
        None
    } else {
        Some(recount(engine, keyspace, &map)?)
    };
    Ok((TablePartitions::new(map, None), totals))
}

/// Applies a saved counts row if it matches the map's partitions.
fn restore_counts(map: &PartitionMap, bytes: &[u8]) -> bool {
    let count = map.partitions().len();
    if bytes.len() != 4 + 24 * count || bytes[..4] != (count as u32).to_be_bytes() {
        return false;
    }
    let field = |at: usize| -> [u8; 8] {
        let mut out = [0u8; 8];
        out.copy_from_slice(&bytes[at..at + 8]);
        out
    };
    for (i, p) in map.partitions().iter().enumerate() {
        let at = 4 + 24 * i;
        if u64::from_be_bytes(field(at)) != p.id {
            return false;
        }
    }
    for (i, p) in map.partitions().iter().enumerate() {
        let at = 4 + 24 * i;
        p.set_counts(
            i64::from_be_bytes(field(at + 8)),
            i64::from_be_bytes(field(at + 16)),
        );
    }
    true
}

/// Counts every partition's items and bytes by one scan of the table, and
/// returns the table's totals.
fn recount(engine: &Engine, keyspace: u32, map: &PartitionMap) -> Result<(i64, i64), StorageError> {
    let mut counts = vec![(0i64, 0i64); map.partitions().len()];
    for row in engine.prefix(&keyspace_prefix(keyspace), Direction::Forward, None)? {
        let (key, value) = row?;
        let item = decode_item(&value).map_err(|e| corrupt(format!("item row: {e}")))?;
        let slot = &mut counts[map.index_of(row_token(&key))];
        slot.0 += 1;
        slot.1 += item_size(&item) as i64;
    }
    let mut totals = (0, 0);
    for (p, (items, bytes)) in map.partitions().iter().zip(counts) {
        p.set_counts(items, bytes);
        totals = (totals.0 + items, totals.1 + bytes);
    }
    Ok(totals)
}

/// Handles the splits and hot keys requests found, if any (call with no
/// gate of `table` held). A split that fails (a storage error) stays
/// queued and is retried by the next request; the request that found it
/// already succeeded, so the error is not its to report.
pub(crate) fn run_pending(db: &DatabaseInner, table: &TableHandle) {
    if !table.partitions.has_pending() {
        return;
    }
    let mut work: Vec<Pending> = {
        let mut pending = table.partitions.pending.lock();
        table.partitions.has_pending.store(false, Ordering::Release);
        std::mem::take(&mut *pending)
    };
    while let Some(item) = work.first().copied() {
        if handle(db, table, item).is_err() {
            table.partitions.pending.lock().extend(work);
            table.partitions.has_pending.store(true, Ordering::Release);
            return;
        }
        work.remove(0);
    }
}

fn handle(db: &DatabaseInner, table: &TableHandle, item: Pending) -> Result<()> {
    match item {
        Pending::Split { partition, at } => {
            let at = match at {
                Some(at) => Some(at),
                None => median_token(db, table, partition)?,
            };
            match at {
                Some(at) => {
                    apply_partition_split(db, table, partition, at)?;
                }
                None => table.partitions.unsplittable.lock().push(partition),
            }
        }
        Pending::HotKey {
            partition,
            token,
            units_per_second,
        } => record_hot_key(db, table, partition, token, units_per_second)?,
    }
    Ok(())
}

/// The token to split a partition at for size: that of its median item
/// (or the next token after the first, when the median shares it); `None`
/// when every item has one token (one partition key), which cannot split.
fn median_token(db: &DatabaseInner, table: &TableHandle, id: u64) -> Result<Option<u64>> {
    let map = table.partitions.map();
    let Some(partition) = map.partitions().iter().find(|p| p.id == id) else {
        return Ok(None);
    };
    let keyspace = table.definition().keyspace;
    let (start, end) = partition_keys(keyspace, partition);
    let half = partition.counts().0 / 2;
    let rows = match end {
        Some(end) => db.engine.range(start..end, Direction::Forward, None)?,
        None => db.engine.range(start.., Direction::Forward, None)?,
    };
    // Both children must hold rows: the split token is above the first
    // row's token.
    let mut first = None;
    for (seen, row) in rows.enumerate() {
        let (key, _) = row?;
        let token = row_token(&key);
        let first = *first.get_or_insert(token);
        if seen as u64 >= half && token > first {
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// Remembers the key at `token` as hot (the latest [`HOT_KEYS_MAX`]).
fn record_hot_key(
    db: &DatabaseInner,
    table: &TableHandle,
    partition: u64,
    token: u64,
    units_per_second: f64,
) -> Result<()> {
    let definition = table.definition();
    let prefix = token_key(definition.keyspace, token);
    let Some(row) = db.engine.prefix(&prefix, Direction::Forward, None)?.next() else {
        return Ok(());
    };
    let (key, _) = row?;
    let (name, scalar) = &definition.key.partition_key;
    let (value, _) = decode_key_value(*scalar, key.get(12..).unwrap_or_default())?;
    let mut hot = table.partitions.hot_keys.lock();
    hot.retain(|h| h.token != token);
    if hot.len() == HOT_KEYS_MAX {
        hot.remove(0);
    }
    hot.push(HotKey {
        partition_key: (name.clone(), value),
        token,
        partition_id: partition,
        units_per_second,
    });
    Ok(())
}

/// Splits partition `id` of `table` at token `at` (the right child's first
/// token): the one place a split is applied. Holds the table's gate
/// exclusively, so no write is in flight and the children's counts are
/// exact; counts the left child's rows (the right gets the rest); commits
/// the new map in one batch, then installs it. Returns the children's ids,
/// or `None` when the partition no longer exists or `at` is not inside it
/// (another split came first).
///
/// With a stream, the split also closes the stream shard covering `at`
/// and opens one per child (`stream::split_shard`).
pub(crate) fn apply_partition_split(
    db: &DatabaseInner,
    table: &TableHandle,
    id: u64,
    at: u64,
) -> Result<Option<(u64, u64)>> {
    let _gate = table.gate.write();
    if table.dropped.load(Ordering::Acquire) {
        return Err(Error::table_not_found(&table.definition().name));
    }
    let map = table.partitions.map();
    let Some(index) = map.partitions().iter().position(|p| p.id == id) else {
        return Ok(None);
    };
    let parent = &map.partitions()[index];
    if !parent.contains(at) || at == parent.start {
        return Ok(None);
    }
    let keyspace = table.definition().keyspace;
    let (start, _) = partition_keys(keyspace, parent);
    let (mut items, mut bytes) = (0i64, 0i64);
    for row in db
        .engine
        .range(start..token_key(keyspace, at), Direction::Forward, None)?
    {
        let (_, value) = row?;
        let item = decode_item(&value)?;
        items += 1;
        bytes += item_size(&item) as i64;
    }
    let (parent_items, parent_bytes) = parent.counts();
    let right = (parent_items as i64 - items, parent_bytes as i64 - bytes);
    let now = now_nanos(db);
    let next = map
        .split(index, at, (items, bytes), right, now)
        .map_err(|e| Error::Storage(corrupt(e.0)))?;
    let mut batch = WriteBatch::new();
    batch.put(
        &catalogue_key(MAP_TAG, &keyspace.to_be_bytes()),
        &next.encode(),
    );
    // The stream's shard covering the parent closes and two children open
    // in the same batch as the new map, under the gate, so no write lands
    // between the two splits and a crash keeps both or neither.
    let definition = table.definition();
    let streamed = definition.stream_label.is_some() && definition.stream_keyspace.is_some();
    let shard_split = if streamed {
        super::stream::split_shard(db, &definition.name, at, &mut batch)
    } else {
        Err(Error::validation("no stream"))
    };
    match shard_split {
        Ok(_) => {}
        Err(error @ Error::Storage(_)) => return Err(error),
        // No stream, or its shards no longer follow this partition (a
        // shard split refused before writing anything): the map alone.
        Err(_) => {
            db.engine.write(batch)?;
        }
    }
    let children = (next.partitions()[index].id, next.partitions()[index + 1].id);
    *table.partitions.map.write() = Arc::new(next);
    Ok(Some(children))
}
