//! BatchGetItem and BatchWriteItem.
//!
//! A batch is validated whole before anything is read or written. Writes
//! of one batch lock their items in ascending stripe order and commit as
//! one engine batch: each write is atomic (DynamoDB's promise), and the
//! batch as a whole happens to be too.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use super::capacity::{IndexUnits, Tally, read_units, write_units};
use super::catalogue::TableHandle;
use super::error::{Error, Result};
use super::expr::{self, Projection};
use super::keys::{key_from_key_map, key_of_item};
use super::partitions::{row_token, run_pending};
use super::request::{
    CollectionTally, ConsumedCapacity, ExpressionAttributes, ItemCollectionMetrics,
    ReturnConsumedCapacity, ReturnItemCollectionMetrics,
};
use super::throttle::{ItemCharge, Target, admit_writes};
use super::views::read_item_at;
use super::write::{Staging, enter_tables, read_item};
use crate::Database;
use crate::index::IndexKind;
use crate::value::{Item, item_size, validate_item};

/// The most keys one BatchGetItem may request.
pub const BATCH_GET_ITEMS_MAX: usize = 100;
/// The most requests one BatchWriteItem may carry.
pub const BATCH_WRITE_ITEMS_MAX: usize = 25;
/// The most bytes a batch response (get) or request (write) may hold.
pub const BATCH_BYTES_MAX: usize = 16 * 1024 * 1024;

const DUPLICATES: &str = "Provided list of item keys contains duplicates";

/// The keys to read from one table, and how.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeysAndAttributes {
    /// The items' keys.
    pub keys: Vec<Item>,
    /// Which attributes to return.
    pub projection_expression: Option<String>,
    /// `#placeholder` -> name for the projection.
    pub expression_attribute_names: Option<BTreeMap<String, String>>,
    /// Whether to read the latest committed state.
    pub consistent_read: bool,
}

/// A `batch_get_item` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct BatchGetItem {
    db: Database,
    request_items: BTreeMap<String, KeysAndAttributes>,
    return_consumed_capacity: ReturnConsumedCapacity,
}

/// What `batch_get_item` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchGetItemOutput {
    /// The items found, by table (in no particular order).
    pub responses: BTreeMap<String, Vec<Item>>,
    /// Keys not read because the response reached 16 MB or their table (or
    /// partition) had no read capacity left; request them again.
    pub unprocessed_keys: BTreeMap<String, KeysAndAttributes>,
    /// The capacity consumed per table, if requested.
    pub consumed_capacity: Vec<ConsumedCapacity>,
}

impl BatchGetItem {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            request_items: BTreeMap::new(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// What to read from `table` (replaces an earlier entry for it).
    pub fn request_items(mut self, table: impl Into<String>, keys: KeysAndAttributes) -> Self {
        self.request_items.insert(table.into(), keys);
        self
    }

    /// Adds one key to read from `table`.
    pub fn key(mut self, table: impl Into<String>, key: impl Into<Item>) -> Self {
        self.request_items
            .entry(table.into())
            .or_default()
            .keys
            .push(key.into());
        self
    }

    /// Whether to report consumed capacity.
    pub fn return_consumed_capacity(mut self, value: ReturnConsumedCapacity) -> Self {
        self.return_consumed_capacity = value;
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<BatchGetItemOutput> {
        if self.request_items.is_empty() {
            return Err(Error::validation(
                "The requestItems parameter is required for BatchGetItem",
            ));
        }
        let mut total = 0;
        for (table, request) in &self.request_items {
            if request.keys.len() > BATCH_GET_ITEMS_MAX {
                return Err(Error::validation(format!(
                    "1 validation error detected: Value at 'RequestItems.{table}.member.Keys' \
                     failed to satisfy constraint: Member must have length less than or equal \
                     to 100"
                )));
            }
            total += request.keys.len();
        }
        if total > BATCH_GET_ITEMS_MAX {
            return Err(Error::validation(
                "Too many items requested for the BatchGetItem call",
            ));
        }
        let inner = &self.db.inner;
        // Validate everything before reading anything.
        let mut plans = Vec::new();
        for (table_name, request) in &self.request_items {
            let table = inner.kv.table(table_name)?;
            let definition = table.definition();
            let attributes = ExpressionAttributes {
                names: request.expression_attribute_names.clone(),
                values: None,
            };
            let mut placeholders =
                attributes.placeholders(request.projection_expression.is_some())?;
            let projection: Option<Projection> = request
                .projection_expression
                .as_deref()
                .map(|text| expr::parse_projection(text, &mut placeholders))
                .transpose()?;
            placeholders.check_unused()?;
            let mut seen = HashSet::new();
            let mut row_keys = Vec::new();
            for key in &request.keys {
                let row_key = key_from_key_map(&definition.key, key)?.row_key(definition.keyspace);
                if !seen.insert(row_key.clone()) {
                    return Err(Error::validation(DUPLICATES));
                }
                row_keys.push(row_key);
            }
            plans.push((table_name, request, projection, row_keys, table));
        }
        let mut output = BatchGetItemOutput::default();
        let mut snapshots = Vec::with_capacity(plans.len());
        for (_, request, _, _, _) in &plans {
            snapshots.push(inner.kv.eventual.snapshot(inner, request.consistent_read)?);
        }
        let mut response_bytes = 0;
        let (mut served, mut throttled) = (0usize, None);
        for ((table_name, request, projection, row_keys, table), snapshot) in
            plans.into_iter().zip(snapshots)
        {
            let definition = table.definition();
            // DynamoDB rounds each item of a batch up to 4 KB separately
            // (1.5 KB + 6.5 KB cost 12 KB), unlike a Query's single sum.
            let mut read = 0.0;
            for (key, row_key) in request.keys.iter().zip(&row_keys) {
                if response_bytes >= BATCH_BYTES_MAX {
                    let unprocessed = output
                        .unprocessed_keys
                        .entry(table_name.clone())
                        .or_insert_with(|| KeysAndAttributes {
                            keys: Vec::new(),
                            ..request.clone()
                        });
                    unprocessed.keys.push(key.clone());
                    continue;
                }
                // Provisioned tables: a key its table or partition cannot
                // serve now comes back unprocessed, as in DynamoDB.
                let token = row_token(row_key);
                let partition = table.partitions.partition(token);
                let target = Target {
                    db: inner,
                    table: &table,
                    definition: &definition,
                    partition: Some((&partition, token)),
                    index: None,
                };
                if let Err(error) = target.check_read() {
                    throttled = Some(error);
                    output
                        .unprocessed_keys
                        .entry(table_name.clone())
                        .or_insert_with(|| KeysAndAttributes {
                            keys: Vec::new(),
                            ..request.clone()
                        })
                        .keys
                        .push(key.clone());
                    continue;
                }
                served += 1;
                let found = read_item_at(inner, row_key, snapshot.as_deref())?
                    .filter(|item| !super::ttl::hides(inner, table_name, item));
                let units =
                    read_units(found.as_ref().map_or(0, item_size), request.consistent_read);
                // A key with no item still costs the minimum read.
                target.charge_read(units);
                read += units;
                if let Some(item) = found {
                    let item = match &projection {
                        Some(projection) => projection.apply(&item),
                        None => item,
                    };
                    response_bytes += item_size(&item);
                    output
                        .responses
                        .entry(table_name.clone())
                        .or_default()
                        .push(item);
                }
            }
            if self.return_consumed_capacity != ReturnConsumedCapacity::None {
                // A batch that found nothing still costs one read.
                if read == 0.0 {
                    read = read_units(0, request.consistent_read);
                }
                output.consumed_capacity.push(ConsumedCapacity {
                    table_name: table_name.clone(),
                    capacity_units: read,
                    read_capacity_units: read,
                    write_capacity_units: 0.0,
                    ..ConsumedCapacity::default()
                });
            }
        }
        // DynamoDB fails the call only when no key at all could be read.
        if let Some(error) = throttled
            && served == 0
        {
            return Err(error);
        }
        Ok(output)
    }
}

/// One write of a BatchWriteItem.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteRequest {
    /// Put this whole item.
    Put(Item),
    /// Delete the item with this key.
    Delete(Item),
}

/// A `batch_write_item` request.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct BatchWriteItem {
    db: Database,
    request_items: BTreeMap<String, Vec<WriteRequest>>,
    return_consumed_capacity: ReturnConsumedCapacity,
    return_item_collection_metrics: ReturnItemCollectionMetrics,
}

/// What `batch_write_item` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchWriteItemOutput {
    /// Writes not applied (throttled); send them again.
    pub unprocessed_items: BTreeMap<String, Vec<WriteRequest>>,
    /// The capacity consumed per table, if requested.
    pub consumed_capacity: Vec<ConsumedCapacity>,
    /// Per table, the item collections the writes changed (tables with
    /// local indexes), if requested.
    pub item_collection_metrics: BTreeMap<String, Vec<ItemCollectionMetrics>>,
}

/// One validated write.
struct PlannedWrite {
    table: Arc<TableHandle>,
    table_name: String,
    row_key: Vec<u8>,
    item: Option<Item>,
}

impl BatchWriteItem {
    pub(crate) fn new(db: Database) -> Self {
        Self {
            db,
            request_items: BTreeMap::new(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
            return_item_collection_metrics: ReturnItemCollectionMetrics::None,
        }
    }

    /// Adds writes to `table`.
    pub fn request_items(
        mut self,
        table: impl Into<String>,
        requests: impl IntoIterator<Item = WriteRequest>,
    ) -> Self {
        self.request_items
            .entry(table.into())
            .or_default()
            .extend(requests);
        self
    }

    /// Adds a put of `item` to `table`.
    pub fn put(self, table: impl Into<String>, item: impl Into<Item>) -> Self {
        self.request_items(table, [WriteRequest::Put(item.into())])
    }

    /// Adds a delete of `key` from `table`.
    pub fn delete(self, table: impl Into<String>, key: impl Into<Item>) -> Self {
        self.request_items(table, [WriteRequest::Delete(key.into())])
    }

    /// Whether to report consumed capacity.
    pub fn return_consumed_capacity(mut self, value: ReturnConsumedCapacity) -> Self {
        self.return_consumed_capacity = value;
        self
    }

    /// Whether to report the sizes of the item collections written to.
    pub fn return_item_collection_metrics(mut self, value: ReturnItemCollectionMetrics) -> Self {
        self.return_item_collection_metrics = value;
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<BatchWriteItemOutput> {
        if self.request_items.is_empty() {
            return Err(Error::validation(
                "The requestItems parameter is required for BatchWriteItem",
            ));
        }
        let total: usize = self.request_items.values().map(Vec::len).sum();
        if total > BATCH_WRITE_ITEMS_MAX || self.request_items.values().any(Vec::is_empty) {
            let tables: Vec<&str> = self.request_items.keys().map(String::as_str).collect();
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{{{}}}' at 'requestItems' failed to \
                 satisfy constraint: Map value must satisfy constraint: [Member must have length \
                 less than or equal to 25, Member must have length greater than or equal to 1]",
                tables.join(", ")
            )));
        }
        let inner = &self.db.inner;
        let mut planned = Vec::with_capacity(total);
        let mut seen = HashSet::new();
        let mut request_bytes = 0;
        for (table_name, requests) in &self.request_items {
            let table = inner.kv.table(table_name)?;
            let definition = table.definition();
            for request in requests {
                let (row_key, item) = match request {
                    WriteRequest::Put(item) => {
                        validate_item(item)?;
                        request_bytes += item_size(item);
                        let key = key_of_item(&definition.key, item)?;
                        (key.row_key(definition.keyspace), Some(item.clone()))
                    }
                    WriteRequest::Delete(key) => {
                        request_bytes += item_size(key);
                        let key = key_from_key_map(&definition.key, key)?;
                        (key.row_key(definition.keyspace), None)
                    }
                };
                if !seen.insert(row_key.clone()) {
                    return Err(Error::validation(DUPLICATES));
                }
                planned.push(PlannedWrite {
                    table: Arc::clone(&table),
                    table_name: table_name.clone(),
                    row_key,
                    item,
                });
            }
        }
        if request_bytes > BATCH_BYTES_MAX {
            return Err(Error::validation(
                "Item size has exceeded the maximum allowed size",
            ));
        }
        let _gates = enter_tables(planned.iter().map(|w| &w.table))?;
        let _locks = inner
            .kv
            .locks
            .lock_all(planned.iter().map(|w| w.row_key.as_slice()));
        let mut staging = Staging::new(inner);
        let mut changes = Vec::with_capacity(planned.len());
        let definitions: Vec<_> = planned.iter().map(|w| w.table.definition()).collect();
        // Per item: its table units (item and local index entries) and how
        // many index writes it staged.
        let mut shares: Vec<(f64, usize)> = Vec::with_capacity(planned.len());
        let mut staged_index_writes = 0;
        for (write, definition) in planned.iter().zip(&definitions) {
            let old = read_item(inner, &write.row_key)?;
            staging.stage(
                &write.table,
                definition,
                &write.row_key,
                old.as_ref(),
                write.item.as_ref(),
            )?;
            let (old_size, new_size) = (
                old.as_ref().map(item_size),
                write.item.as_ref().map(item_size),
            );
            changes.push((old_size, new_size));
            let total = staging.index_writes().count();
            let local: f64 = staging
                .index_writes()
                .skip(staged_index_writes)
                .filter(|w| w.kind == IndexKind::Local)
                .map(|w| w.units)
                .sum();
            shares.push((
                write_units(old_size.unwrap_or(0).max(new_size.unwrap_or(0))) + local,
                total - staged_index_writes,
            ));
            staged_index_writes = total;
        }
        let mut writes = staging.index_writes();
        let charges: Vec<ItemCharge<'_>> = planned
            .iter()
            .zip(&definitions)
            .zip(&shares)
            .map(|((write, definition), (units, index_writes))| ItemCharge {
                table: &write.table,
                definition,
                token: row_token(&write.row_key),
                units: *units,
                global: writes
                    .by_ref()
                    .take(*index_writes)
                    .filter(|w| w.kind == IndexKind::Global)
                    .map(|w| (w.name.as_str(), w.units))
                    .collect(),
            })
            .collect();
        // DynamoDB returns throttled writes as unprocessed, or fails when
        // none can be processed; nimbus admits the batch whole or not at
        // all, so a refusal is always the latter.
        admit_writes(inner, &charges).map_err(|(_, error)| error)?;
        drop(charges);
        drop(writes);
        let effects = staging.commit()?;
        let mut tally = Tally::default();
        let mut collections = CollectionTally::default();
        for ((write, (old, new)), mut effects) in planned.iter().zip(changes).zip(effects) {
            let units = write_units(old.unwrap_or(0).max(new.unwrap_or(0)));
            let indexes = effects
                .indexes
                .iter()
                .map(|w| -> IndexUnits<'_> { (w.kind, &w.name, 0.0, w.units) });
            tally.add(&write.table_name, (0.0, units), indexes);
            collections.add(&write.table_name, &mut effects);
        }
        drop(_locks);
        drop(_gates);
        for table in planned.iter().map(|w| &w.table) {
            run_pending(inner, table);
        }
        Ok(BatchWriteItemOutput {
            unprocessed_items: BTreeMap::new(),
            consumed_capacity: tally.report(self.return_consumed_capacity),
            item_collection_metrics: collections.report(self.return_item_collection_metrics),
        })
    }
}
