//! Provisioned throughput enforcement: token buckets per table, per
//! partition and per global index, consulted before a request has any
//! effect; and the load every request adds to its partition's heat, in
//! both capacity modes.
//!
//! - Table buckets fill at the provisioned rate and bank up to 300 s of
//!   unused units (burst capacity). Local index writes spend the table's
//!   write units, as in DynamoDB.
//! - Partition buckets fill at the per-partition ceiling (3,000 RCU /
//!   1,000 WCU) and bank one second: a hot partition may use the table's
//!   whole capacity (adaptive capacity), never more than its ceiling.
//! - Global index buckets come from the index's provisioned throughput; a
//!   write whose index entries exceed it is refused, so GSI back-pressure
//!   throttles the base table as DynamoDB does.
//! - Writes are checked with their exact cost before they commit; reads
//!   are admitted when the buckets hold their minimum cost and charged
//!   their actual cost after (possibly into debt, delaying later reads).
//! - On-demand tables are not throttled: only heat is measured.

use parking_lot::Mutex;

use super::catalogue::TableHandle;
use super::error::{Error, Result};
use super::partitions::now_nanos;
use super::schema::{BillingMode, ProvisionedThroughput, TableDefinition};
use crate::db::DatabaseInner;
use crate::partition::bucket::{BURST_SECONDS, TokenBucket};
use crate::partition::map::{Partition, PartitionBuckets};

use super::partitions::{PARTITION_READ_UNITS_MAX, PARTITION_WRITE_UNITS_MAX};

/// DynamoDB's message when a table's (or a partition's) capacity is spent.
pub const TABLE_THROTTLED: &str = "The level of configured provisioned throughput for the table \
     was exceeded. Consider increasing your provisioning level with the UpdateTable API.";

/// DynamoDB's message when a global index's write capacity is spent.
pub const INDEX_THROTTLED: &str = "The level of configured provisioned throughput for one or \
     more global secondary indexes of the table was exceeded. Consider increasing your \
     provisioning level for the under-provisioned global secondary indexes with the \
     UpdateTable API";

/// Read units count a third of a write unit in a partition's heat (the
/// ratio of the per-partition ceilings).
const READ_HEAT_WEIGHT: f64 = PARTITION_WRITE_UNITS_MAX / PARTITION_READ_UNITS_MAX;

/// The smallest read: half a unit (eventually consistent).
const MIN_READ_UNITS: f64 = 0.5;

/// The provisioned rates buckets were built for.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    table: ProvisionedThroughput,
    indexes: Vec<(String, Option<ProvisionedThroughput>)>,
}

impl Config {
    fn of(definition: &TableDefinition) -> Option<Self> {
        if definition.billing_mode != BillingMode::Provisioned {
            return None;
        }
        Some(Self {
            table: definition.provisioned_throughput?,
            indexes: definition
                .global_indexes
                .iter()
                .map(|g| (g.index.index_name.clone(), g.index.provisioned_throughput))
                .collect(),
        })
    }
}

/// A read and a write bucket.
#[derive(Debug, Clone)]
struct Pair {
    read: TokenBucket,
    write: TokenBucket,
}

impl Pair {
    fn burst(throughput: ProvisionedThroughput, now: u64) -> Self {
        let (read, write) = (
            throughput.read_capacity_units as f64,
            throughput.write_capacity_units as f64,
        );
        Self {
            read: TokenBucket::new(read, read * BURST_SECONDS, now),
            write: TokenBucket::new(write, write * BURST_SECONDS, now),
        }
    }
}

#[derive(Debug)]
struct Buckets {
    config: Config,
    table: Pair,
    /// Per global index with provisioned throughput, by name.
    indexes: Vec<(String, Pair)>,
}

/// The buckets of a provisioned table (rebuilt when its throughput changes).
#[derive(Debug, Default)]
pub(crate) struct TableThroughput {
    buckets: Mutex<Option<Buckets>>,
    /// When the table was created in this session: its buckets fill from
    /// then, not from its first request. Tables loaded at open start
    /// afresh at their first request (burst credit is not persisted).
    created_nanos: Option<u64>,
}

impl TableThroughput {
    pub(crate) fn new(created_nanos: Option<u64>) -> Self {
        Self {
            buckets: Mutex::new(None),
            created_nanos,
        }
    }
}

fn partition_buckets(now: u64) -> PartitionBuckets {
    PartitionBuckets {
        read: TokenBucket::new(PARTITION_READ_UNITS_MAX, PARTITION_READ_UNITS_MAX, now),
        write: TokenBucket::new(PARTITION_WRITE_UNITS_MAX, PARTITION_WRITE_UNITS_MAX, now),
    }
}

/// Makes `slot` hold buckets built for `config` (rebuilt when the table's
/// throughput changed; a new table's fill from its creation).
fn ensure_buckets<'s>(
    throughput: &TableThroughput,
    slot: &'s mut Option<Buckets>,
    config: Config,
    now: u64,
) -> &'s mut Buckets {
    let start = match slot {
        None => throughput
            .created_nanos
            .map_or(now, |created| created.min(now)),
        Some(_) => now,
    };
    if slot.as_ref().is_some_and(|b| b.config != config) {
        // The throughput changed (update_table): start over at the new rates.
        *slot = None;
    }
    slot.get_or_insert_with(|| Buckets {
        table: Pair::burst(config.table, start),
        indexes: config
            .indexes
            .iter()
            .filter_map(|(name, t)| t.map(|t| (name.clone(), Pair::burst(t, start))))
            .collect(),
        config,
    })
}

/// Runs `f` on the table's buckets, (re)built for `config` first.
fn with_buckets<T>(
    throughput: &TableThroughput,
    config: Config,
    now: u64,
    f: impl FnOnce(&mut Buckets) -> T,
) -> T {
    let mut guard = throughput.buckets.lock();
    f(ensure_buckets(throughput, &mut guard, config, now))
}

/// Where a request lands: its table and, for item requests on the base
/// table, the partition of its token.
pub(crate) struct Target<'a> {
    pub(crate) db: &'a DatabaseInner,
    pub(crate) table: &'a TableHandle,
    pub(crate) definition: &'a TableDefinition,
    /// `(partition, token)` of an item request on the base table.
    pub(crate) partition: Option<(&'a Partition, u64)>,
    /// The global index a read goes to.
    pub(crate) index: Option<&'a str>,
}

impl Target<'_> {
    /// Fails, before the read has any effect, when the table (or index,
    /// or partition) cannot serve even the smallest read now.
    pub(crate) fn check_read(&self) -> Result<()> {
        let Some(config) = Config::of(self.definition) else {
            return Ok(());
        };
        let now = now_nanos(self.db);
        with_buckets(&self.table.partitions.throughput, config, now, |b| {
            let bucket = match self.index {
                Some(name) => match b.indexes.iter_mut().find(|(n, _)| n == name) {
                    Some((_, pair)) => &mut pair.read,
                    None => return Ok(()),
                },
                None => &mut b.table.read,
            };
            if !bucket.allows(MIN_READ_UNITS, now) {
                return Err(Error::ProvisionedThroughputExceeded(TABLE_THROTTLED.into()));
            }
            if let Some((partition, _)) = self.partition {
                let mut load = partition.load.lock();
                let buckets = load.buckets.get_or_insert_with(|| partition_buckets(now));
                if !buckets.read.allows(MIN_READ_UNITS, now) {
                    return Err(Error::ProvisionedThroughputExceeded(TABLE_THROTTLED.into()));
                }
            }
            Ok(())
        })
    }

    /// Charges a served read of `units`.
    pub(crate) fn charge_read(&self, units: f64) {
        let partition = self.partition.map(|(partition, _)| partition);
        self.spend_read(units, partition.as_slice());
        if let Some((partition, token)) = self.partition {
            self.table.partitions.heat(
                self.db,
                self.definition,
                partition,
                token,
                units * READ_HEAT_WEIGHT,
            );
        }
    }

    /// Charges a served Scan page of `units` on the base table or a local
    /// index: the table's bucket, and the partitions whose tokens the page
    /// read (`partitions`, in token order) share the units evenly. A scan
    /// adds no heat: reading every key once makes no key hot.
    pub(crate) fn charge_scan(&self, units: f64, partitions: &[&Partition]) {
        self.spend_read(units, partitions);
    }

    /// Spends `units` from the table's (or global index's) read bucket and
    /// an even share of them from each of `partitions`.
    fn spend_read(&self, units: f64, partitions: &[&Partition]) {
        let Some(config) = Config::of(self.definition) else {
            return;
        };
        let now = now_nanos(self.db);
        with_buckets(&self.table.partitions.throughput, config, now, |b| {
            let bucket = match self.index {
                Some(name) => b
                    .indexes
                    .iter_mut()
                    .find(|(n, _)| n == name)
                    .map(|(_, pair)| &mut pair.read),
                None => Some(&mut b.table.read),
            };
            if let Some(bucket) = bucket {
                bucket.spend(units, now);
            }
            let share = units / partitions.len().max(1) as f64;
            for partition in partitions {
                let mut load = partition.load.lock();
                let buckets = load.buckets.get_or_insert_with(|| partition_buckets(now));
                buckets.read.spend(share, now);
            }
        });
    }

    /// Admits and charges a write of `units` on the table (its item and
    /// local index entries) and `global` units on global indexes, or fails
    /// charging nothing.
    pub(crate) fn admit_write(&self, units: f64, global: &[(&str, f64)]) -> Result<()> {
        if let Some(config) = Config::of(self.definition) {
            let now = now_nanos(self.db);
            with_buckets(&self.table.partitions.throughput, config, now, |b| {
                for (name, index_units) in global {
                    if let Some((_, pair)) = b.indexes.iter_mut().find(|(n, _)| n == name)
                        && !pair.write.allows(*index_units, now)
                    {
                        return Err(Error::ProvisionedThroughputExceeded(INDEX_THROTTLED.into()));
                    }
                }
                if !b.table.write.allows(units, now) {
                    return Err(Error::ProvisionedThroughputExceeded(TABLE_THROTTLED.into()));
                }
                if let Some((partition, _)) = self.partition {
                    let mut load = partition.load.lock();
                    let buckets = load.buckets.get_or_insert_with(|| partition_buckets(now));
                    if !buckets.write.allows(units, now) {
                        return Err(Error::ProvisionedThroughputExceeded(TABLE_THROTTLED.into()));
                    }
                    buckets.write.spend(units, now);
                }
                b.table.write.spend(units, now);
                for (name, index_units) in global {
                    if let Some((_, pair)) = b.indexes.iter_mut().find(|(n, _)| n == name) {
                        pair.write.spend(*index_units, now);
                    }
                }
                Ok(())
            })?;
        }
        self.heat(units);
        Ok(())
    }

    /// Charges a write that had to be paid without being admitted (a
    /// failed condition: DynamoDB charges it too).
    pub(crate) fn charge_write(&self, units: f64) {
        if let Some(config) = Config::of(self.definition) {
            let now = now_nanos(self.db);
            with_buckets(&self.table.partitions.throughput, config, now, |b| {
                b.table.write.spend(units, now);
                if let Some((partition, _)) = self.partition {
                    let mut load = partition.load.lock();
                    let buckets = load.buckets.get_or_insert_with(|| partition_buckets(now));
                    buckets.write.spend(units, now);
                }
            });
        }
        self.heat(units);
    }

    fn heat(&self, units: f64) {
        if let Some((partition, token)) = self.partition {
            self.table
                .partitions
                .heat(self.db, self.definition, partition, token, units);
        }
    }
}

/// One item's share of a multi-item write (BatchWriteItem,
/// TransactWriteItems).
pub(crate) struct ItemCharge<'a> {
    pub(crate) table: &'a TableHandle,
    pub(crate) definition: &'a TableDefinition,
    pub(crate) token: u64,
    /// Units on the table: the item and its local index entries.
    pub(crate) units: f64,
    /// Units per global index.
    pub(crate) global: Vec<(&'a str, f64)>,
}

/// Admits and charges every item of a multi-item write, or none: the
/// whole write is refused, with the index of the first item that did not
/// fit, when a table, partition or global index lacks the units. Locks
/// tables' buckets in keyspace order, then partitions in token order, as
/// single-item requests do (table, then partition), so none can deadlock.
pub(crate) fn admit_writes(
    db: &DatabaseInner,
    charges: &[ItemCharge<'_>],
) -> Result<(), (usize, Error)> {
    let now = now_nanos(db);
    let mut provisioned: Vec<(u32, &TableThroughput, Config)> = Vec::new();
    for charge in charges {
        let keyspace = charge.definition.keyspace;
        if provisioned.iter().any(|(k, _, _)| *k == keyspace) {
            continue;
        }
        if let Some(config) = Config::of(charge.definition) {
            provisioned.push((keyspace, &charge.table.partitions.throughput, config));
        }
    }
    provisioned.sort_by_key(|(k, _, _)| *k);
    let mut tables = Vec::with_capacity(provisioned.len());
    for (keyspace, throughput, config) in provisioned {
        let mut guard = throughput.buckets.lock();
        ensure_buckets(throughput, &mut guard, config, now);
        tables.push((keyspace, guard));
    }
    // The partitions of provisioned tables with their summed units and the
    // first item landing in each, in (keyspace, token) order.
    let mut partitions: Vec<(u32, std::sync::Arc<Partition>, f64, usize)> = Vec::new();
    for (i, charge) in charges.iter().enumerate() {
        let keyspace = charge.definition.keyspace;
        if !tables.iter().any(|(k, _)| *k == keyspace) {
            continue;
        }
        let partition = charge.table.partitions.partition(charge.token);
        match partitions
            .iter_mut()
            .find(|(k, p, _, _)| *k == keyspace && p.id == partition.id)
        {
            Some(entry) => entry.2 += charge.units,
            None => partitions.push((keyspace, partition, charge.units, i)),
        }
    }
    partitions.sort_by_key(|(k, p, _, _)| (*k, p.start));
    let mut loads: Vec<_> = partitions
        .iter()
        .map(|(_, p, _, _)| p.load.lock())
        .collect();
    // Check everything first, so a refusal charges nothing.
    for (keyspace, guard) in &mut tables {
        let Some(buckets) = guard.as_mut() else {
            continue;
        };
        let mine = || {
            charges
                .iter()
                .enumerate()
                .filter(|(_, c)| c.definition.keyspace == *keyspace)
        };
        let units: f64 = mine().map(|(_, c)| c.units).sum();
        let first = mine().map(|(i, _)| i).next().unwrap_or(0);
        for (name, pair) in &mut buckets.indexes {
            let index_units: f64 = mine()
                .flat_map(|(_, c)| c.global.iter())
                .filter(|(n, _)| n == name)
                .map(|(_, u)| u)
                .sum();
            if index_units > 0.0 && !pair.write.allows(index_units, now) {
                return Err((
                    first,
                    Error::ProvisionedThroughputExceeded(INDEX_THROTTLED.into()),
                ));
            }
        }
        if !buckets.table.write.allows(units, now) {
            return Err((
                first,
                Error::ProvisionedThroughputExceeded(TABLE_THROTTLED.into()),
            ));
        }
    }
    for ((_, _, units, first), load) in partitions.iter().zip(&mut loads) {
        let buckets = load.buckets.get_or_insert_with(|| partition_buckets(now));
        if !buckets.write.allows(*units, now) {
            return Err((
                *first,
                Error::ProvisionedThroughputExceeded(TABLE_THROTTLED.into()),
            ));
        }
    }
    for ((_, _, units, _), load) in partitions.iter().zip(&mut loads) {
        if let Some(buckets) = load.buckets.as_mut() {
            buckets.write.spend(*units, now);
        }
    }
    for (keyspace, guard) in &mut tables {
        let Some(buckets) = guard.as_mut() else {
            continue;
        };
        for charge in charges
            .iter()
            .filter(|c| c.definition.keyspace == *keyspace)
        {
            buckets.table.write.spend(charge.units, now);
            for (name, index_units) in &charge.global {
                if let Some((_, pair)) = buckets.indexes.iter_mut().find(|(n, _)| n == name) {
                    pair.write.spend(*index_units, now);
                }
            }
        }
    }
    drop(loads);
    drop(tables);
    for charge in charges {
        let partition = charge.table.partitions.partition(charge.token);
        charge.table.partitions.heat(
            db,
            charge.definition,
            &partition,
            charge.token,
            charge.units,
        );
    }
    Ok(())
}
