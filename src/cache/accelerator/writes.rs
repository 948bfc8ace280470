//! Write-through: `put_item`, `update_item`, `delete_item` and
//! `batch_write_item` go to the table first; only once the table committed
//! does the item cache take the new state (a put's item, an update's
//! `ALL_NEW` image, a delete's absence). The item's write stripe is held
//! from before the commit until the cache is updated, so writes through
//! the accelerator reach the cache in commit order.

use std::collections::BTreeMap;

use super::keys::{item_key, key_definition, key_map_of, partition_tag_of, table_tag};
use super::request::{
    ExpressionAttributes, expression_attribute_setters, field_setters, text_setters,
    with_attributes,
};
use super::stats::Counter;
use super::{Accelerator, CachedItem, Shared, outcome_unknown};
use crate::kv::{
    BatchWriteItemOutput, DeleteItemOutput, KeyDefinition, PutItemOutput, Result,
    ReturnConsumedCapacity, ReturnValue, ReturnValuesOnConditionCheckFailure, UpdateItemOutput,
    WriteRequest,
};
use crate::value::Item;

/// What the item cache should hold for a target after a committed write.
pub(super) enum After {
    /// The item's new state.
    Store(CachedItem),
    /// The new state is unknown: drop what was cached.
    Evict,
    /// The write was not applied (unprocessed): the cached state stands.
    Keep,
}

/// One item a write changes: its item-cache key and, in the opt-in query
/// invalidation mode, the tag of its partition.
pub(super) struct Target {
    key: Vec<u8>,
    partition_tag: Option<Vec<u8>>,
}

impl Shared {
    /// The write target of the item with key map `key` in `table` (`None`
    /// when the partition tag is needed but the table cannot be described:
    /// the write will fail).
    pub(super) fn target(
        &self,
        table: &str,
        key: &Item,
        definition: Option<&KeyDefinition>,
    ) -> Option<Target> {
        let partition_tag = match (&self.tags, definition) {
            (None, _) => None,
            (Some(_), Some(definition)) => Some(partition_tag_of(table, definition, key)?),
            (Some(_), None) => {
                let definition = key_definition(&self.db, table).ok()?;
                Some(partition_tag_of(table, &definition, key)?)
            }
        };
        Some(Target {
            key: item_key(table, key),
            partition_tag,
        })
    }

    /// Runs `write` under the targets' write stripes; once it succeeded,
    /// stores what `after` says each target now holds and (opt-in) drops
    /// the query pages of their partitions and tables.
    pub(super) fn write_through<T>(
        &self,
        tables: &[&str],
        targets: Vec<Target>,
        write: impl FnOnce() -> Result<T>,
        after: impl FnOnce(&T) -> Vec<After>,
    ) -> Result<T> {
        let _stripes = self.lock_writes(targets.iter().map(|t| t.key.as_slice()));
        let output = match write() {
            Ok(output) => output,
            Err(error) => {
                if outcome_unknown(&error) {
                    self.evict_items(targets.iter().map(|t| t.key.as_slice()));
                }
                return Err(error);
            }
        };
        let states = after(&output);
        if let Some(tags) = &self.tags {
            let mut invalidated: Vec<Vec<u8>> =
                tables.iter().map(|table| table_tag(table)).collect();
            invalidated.extend(targets.iter().filter_map(|t| t.partition_tag.clone()));
            let dropped = tags.invalidate(&invalidated, &self.queries);
            self.counters.add(Counter::QueryInvalidation, dropped);
        }
        for (target, state) in targets.into_iter().zip(states) {
            match state {
                After::Store(value) => self.store_item(target.key, value),
                After::Evict => {
                    self.items.remove(&target.key[..]);
                }
                After::Keep => {}
            }
        }
        Ok(output)
    }
}

/// A write-through `put_item` request: once the table stored the item, the
/// item cache holds it.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutItem {
    accelerator: Accelerator,
    table: String,
    item: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_values: ReturnValue,
    return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure,
    return_consumed_capacity: ReturnConsumedCapacity,
}

/// Implements the setters every single-item write shares.
macro_rules! write_setters {
    ($builder:ident) => {
        expression_attribute_setters!($builder);
        text_setters!($builder {
            /// A condition the stored item must meet; if it does not, the
            /// cache is left as it was.
            condition_expression,
        });
        field_setters!($builder {
            /// What to return.
            return_values: ReturnValue,
            /// Whether a failed condition returns the stored item.
            return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure,
            /// Whether to report consumed capacity.
            return_consumed_capacity: ReturnConsumedCapacity,
        });
    };
}

write_setters!(PutItem);

impl PutItem {
    pub(super) fn new(accelerator: Accelerator, table: String) -> Self {
        Self {
            accelerator,
            table,
            item: Item::new(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            return_values: ReturnValue::None,
            return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure::None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// The item to write (key attributes included).
    pub fn item(mut self, item: impl Into<Item>) -> Self {
        self.item = item.into();
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<PutItemOutput> {
        let shared = &self.accelerator.shared;
        let mut request = shared
            .db
            .put_item(self.table.clone())
            .item(self.item.clone())
            .return_values(self.return_values)
            .return_values_on_condition_check_failure(self.return_values_on_condition_check_failure)
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(condition) = &self.condition_expression {
            request = request.condition_expression(condition.clone());
        }
        let request = with_attributes!(request, self.attributes);
        // Without the table's key (no such table, a key attribute missing)
        // the table refuses the item, and nothing is cached.
        let target = key_definition(&shared.db, &self.table)
            .ok()
            .and_then(|definition| {
                let key = key_map_of(&definition, &self.item)?;
                shared.target(&self.table, &key, Some(&definition))
            });
        let Some(target) = target else {
            return request.send();
        };
        let item = self.item;
        shared.write_through(
            &[&self.table],
            vec![target],
            || request.send(),
            |_| vec![After::Store(Some(item))],
        )
    }
}

/// A write-through `update_item` request: once the table committed, the
/// item cache holds the item's `ALL_NEW` image.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UpdateItem {
    accelerator: Accelerator,
    table: String,
    key: Item,
    update_expression: Option<String>,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_values: ReturnValue,
    return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure,
    return_consumed_capacity: ReturnConsumedCapacity,
}

write_setters!(UpdateItem);
text_setters!(UpdateItem {
    /// The update: `SET`, `REMOVE`, `ADD`, `DELETE` clauses.
    update_expression,
});

impl UpdateItem {
    pub(super) fn new(accelerator: Accelerator, table: String) -> Self {
        Self {
            accelerator,
            table,
            key: Item::new(),
            update_expression: None,
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            return_values: ReturnValue::None,
            return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure::None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// The item's key attributes.
    pub fn key(mut self, key: impl Into<Item>) -> Self {
        self.key = key.into();
        self
    }

    /// Runs the request. The table is asked for `ALL_NEW` when the caller
    /// asked for `NONE` or `ALL_NEW`; for the other return values, the new
    /// image is read back (consistently, under the item's write stripe).
    pub fn send(self) -> Result<UpdateItemOutput> {
        let shared = &self.accelerator.shared;
        let asks_new = matches!(self.return_values, ReturnValue::None | ReturnValue::AllNew);
        let mut request = shared
            .db
            .update_item(self.table.clone())
            .key(self.key.clone())
            .return_values(if asks_new {
                ReturnValue::AllNew
            } else {
                self.return_values
            })
            .return_values_on_condition_check_failure(self.return_values_on_condition_check_failure)
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(update) = &self.update_expression {
            request = request.update_expression(update.clone());
        }
        if let Some(condition) = &self.condition_expression {
            request = request.condition_expression(condition.clone());
        }
        let request = with_attributes!(request, self.attributes);
        let Some(target) = shared.target(&self.table, &self.key, None) else {
            return request.send();
        };
        let mut output = shared.write_through(
            &[&self.table],
            vec![target],
            || request.send(),
            |output| {
                let new = if asks_new {
                    After::Store(output.attributes.clone())
                } else {
                    let read = shared
                        .db
                        .get_item(self.table.clone())
                        .key(self.key.clone())
                        .consistent_read(true)
                        .send();
                    read.map_or(After::Evict, |read| After::Store(read.item))
                };
                vec![new]
            },
        )?;
        if self.return_values == ReturnValue::None {
            output.attributes = None;
        }
        Ok(output)
    }
}

/// A write-through `delete_item` request: once the table deleted the item,
/// the item cache holds its absence.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteItem {
    accelerator: Accelerator,
    table: String,
    key: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_values: ReturnValue,
    return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure,
    return_consumed_capacity: ReturnConsumedCapacity,
}

write_setters!(DeleteItem);

impl DeleteItem {
    pub(super) fn new(accelerator: Accelerator, table: String) -> Self {
        Self {
            accelerator,
            table,
            key: Item::new(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            return_values: ReturnValue::None,
            return_values_on_condition_check_failure: ReturnValuesOnConditionCheckFailure::None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// The item's key attributes.
    pub fn key(mut self, key: impl Into<Item>) -> Self {
        self.key = key.into();
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<DeleteItemOutput> {
        let shared = &self.accelerator.shared;
        let mut request = shared
            .db
            .delete_item(self.table.clone())
            .key(self.key.clone())
            .return_values(self.return_values)
            .return_values_on_condition_check_failure(self.return_values_on_condition_check_failure)
            .return_consumed_capacity(self.return_consumed_capacity);
        if let Some(condition) = &self.condition_expression {
            request = request.condition_expression(condition.clone());
        }
        let request = with_attributes!(request, self.attributes);
        let Some(target) = shared.target(&self.table, &self.key, None) else {
            return request.send();
        };
        shared.write_through(
            &[&self.table],
            vec![target],
            || request.send(),
            |_| vec![After::Store(None)],
        )
    }
}

/// A write-through `batch_write_item` request: every put and delete the
/// table applied reaches the item cache; unprocessed ones do not.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct BatchWriteItem {
    accelerator: Accelerator,
    request_items: BTreeMap<String, Vec<WriteRequest>>,
    return_consumed_capacity: ReturnConsumedCapacity,
}

field_setters!(BatchWriteItem {
    /// Whether to report consumed capacity, per table.
    return_consumed_capacity: ReturnConsumedCapacity,
});

impl BatchWriteItem {
    pub(super) fn new(accelerator: Accelerator) -> Self {
        Self {
            accelerator,
            request_items: BTreeMap::new(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
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

    /// The targets of every write, in request order, or `None` if one has
    /// no key the table would accept (then the table refuses the batch).
    fn targets(&self) -> Option<Vec<(Target, &str, &WriteRequest)>> {
        let shared = &self.accelerator.shared;
        let mut targets = Vec::new();
        for (table, requests) in &self.request_items {
            let definition = key_definition(&shared.db, table).ok()?;
            for request in requests {
                let key = match request {
                    WriteRequest::Put(item) => key_map_of(&definition, item)?,
                    WriteRequest::Delete(key) => key.clone(),
                };
                targets.push((
                    shared.target(table, &key, Some(&definition))?,
                    table.as_str(),
                    request,
                ));
            }
        }
        Some(targets)
    }

    /// Runs the request.
    pub fn send(self) -> Result<BatchWriteItemOutput> {
        let shared = &self.accelerator.shared;
        let request = shared
            .db
            .batch_write_item()
            .return_consumed_capacity(self.return_consumed_capacity);
        let request = self
            .request_items
            .iter()
            .fold(request, |request, (table, writes)| {
                request.request_items(table.clone(), writes.iter().cloned())
            });
        let Some(planned) = self.targets() else {
            return request.send();
        };
        let tables: Vec<&str> = self.request_items.keys().map(String::as_str).collect();
        let mut targets = Vec::with_capacity(planned.len());
        let mut writes = Vec::with_capacity(planned.len());
        for (target, table, write) in planned {
            targets.push(target);
            writes.push((table, write));
        }
        shared.write_through(
            &tables,
            targets,
            || request.send(),
            |output| {
                writes
                    .iter()
                    .map(|(table, write)| {
                        let unprocessed = output
                            .unprocessed_items
                            .get(*table)
                            .is_some_and(|left| left.contains(write));
                        match write {
                            _ if unprocessed => After::Keep,
                            WriteRequest::Put(item) => After::Store(Some(item.clone())),
                            WriteRequest::Delete(_) => After::Store(None),
                        }
                    })
                    .collect()
            },
        )
    }
}
