//! PutItem, GetItem, UpdateItem and DeleteItem: request builders and their
//! outputs.

use super::capacity::{IndexUnits, read_units, report, report_with_indexes, write_units};
use super::error::{Error, Result};
use super::expr::{self, ItemState, Projection};
use super::keys::{key_from_key_map, key_of_item};
use super::partitions::{row_token, run_pending};
use super::request::{
    ConsumedCapacity, ExpressionAttributes, ItemCollectionMetrics, ReturnConsumedCapacity,
    ReturnItemCollectionMetrics, ReturnValue, ReturnValuesOnConditionCheckFailure, capacity_setter,
    expression_attribute_setters, write_request_setters,
};
use super::throttle::Target;
use super::views::read_item_at;
use super::write::{Effects, StoredItem, write_item};
use crate::Database;
use crate::value::{Item, MAX_ITEM_BYTES, item_size, validate_item};

/// DynamoDB's message for a `ReturnValues` PutItem and DeleteItem refuse.
fn check_put_delete_return_values(value: ReturnValue) -> Result<()> {
    match value {
        ReturnValue::None | ReturnValue::AllOld => Ok(()),
        _ => Err(Error::validation(
            "ReturnValues can only be ALL_OLD or NONE",
        )),
    }
}

/// The capacity report of a single-item write: the item's units and its
/// index entries'.
fn write_report(
    wanted: ReturnConsumedCapacity,
    table: &str,
    size: usize,
    effects: &Effects,
) -> Option<ConsumedCapacity> {
    let indexes = effects
        .indexes
        .iter()
        .map(|w| -> IndexUnits<'_> { (w.kind, &w.name, 0.0, w.units) });
    report_with_indexes(wanted, table, (0.0, write_units(size)), indexes)
}

/// The item collection metrics of a write, if asked for (and the table
/// has local indexes).
fn collection_metrics(
    wanted: ReturnItemCollectionMetrics,
    effects: &mut Effects,
) -> Option<ItemCollectionMetrics> {
    if wanted == ReturnItemCollectionMetrics::None {
        return None;
    }
    let (key, size) = effects.collection.take()?;
    Some(ItemCollectionMetrics::new(key, size))
}

/// Parses the condition of a write whose only expression it is (PutItem,
/// DeleteItem), checking that every placeholder is used.
fn parse_condition_only(
    attributes: &ExpressionAttributes,
    expression: Option<&str>,
) -> Result<Option<expr::Condition>> {
    let mut placeholders = attributes.placeholders(expression.is_some())?;
    let condition = expression
        .map(|text| expr::parse_condition(text, &mut placeholders))
        .transpose()?;
    placeholders.check_unused()?;
    Ok(condition)
}

/// The item a write returns for `ALL_OLD` (or `None`).
fn all_old(return_values: ReturnValue, old: Option<StoredItem>) -> Result<Option<Item>> {
    match (return_values, old) {
        (ReturnValue::AllOld, Some(old)) => old.into_item().map(Some),
        _ => Ok(None),
    }
}

/// A `put_item` request: writes a whole item, replacing any stored one.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutItem {
    db: Database,
    table: String,
    item: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_values: ReturnValue,
    on_failure: ReturnValuesOnConditionCheckFailure,
    return_consumed_capacity: ReturnConsumedCapacity,
    return_item_collection_metrics: ReturnItemCollectionMetrics,
}

expression_attribute_setters!(PutItem);
write_request_setters!(PutItem);

/// What `put_item` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PutItemOutput {
    /// The size of the item collection written to, if requested (tables
    /// with local secondary indexes).
    pub item_collection_metrics: Option<ItemCollectionMetrics>,
    /// The replaced item, with `ReturnValue::AllOld`.
    pub attributes: Option<Item>,
    /// The capacity consumed, if requested.
    pub consumed_capacity: Option<ConsumedCapacity>,
}

impl PutItem {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            item: Item::new(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            return_values: ReturnValue::None,
            on_failure: ReturnValuesOnConditionCheckFailure::None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
            return_item_collection_metrics: ReturnItemCollectionMetrics::None,
        }
    }

    /// The item to write (key attributes included).
    pub fn item(mut self, item: impl Into<Item>) -> Self {
        self.item = item.into();
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<PutItemOutput> {
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        check_put_delete_return_values(self.return_values)?;
        let condition =
            parse_condition_only(&self.attributes, self.condition_expression.as_deref())?;
        validate_item(&self.item)?;
        let key = key_of_item(&definition.key, &self.item)?;
        let row_key = key.row_key(definition.keyspace);
        let new_size = item_size(&self.item);
        let mut written = write_item(
            inner,
            &table,
            &row_key,
            condition.as_ref(),
            self.on_failure,
            |_| Ok(Some(self.item)),
        )?;
        let old_size = written.old.as_ref().map(StoredItem::size).transpose()?;
        let old_size = old_size.unwrap_or(0);
        Ok(PutItemOutput {
            consumed_capacity: write_report(
                self.return_consumed_capacity,
                &self.table,
                new_size.max(old_size),
                &written.effects,
            ),
            item_collection_metrics: collection_metrics(
                self.return_item_collection_metrics,
                &mut written.effects,
            ),
            attributes: all_old(self.return_values, written.old)?,
        })
    }
}

/// A `get_item` request: reads one item by its key.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetItem {
    db: Database,
    table: String,
    key: Item,
    consistent_read: bool,
    projection_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_consumed_capacity: ReturnConsumedCapacity,
}

expression_attribute_setters!(GetItem);
capacity_setter!(GetItem);

/// What `get_item` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GetItemOutput {
    /// The item (projected), if one has the key.
    pub item: Option<Item>,
    /// The capacity consumed, if requested.
    pub consumed_capacity: Option<ConsumedCapacity>,
}

impl GetItem {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            key: Item::new(),
            consistent_read: false,
            projection_expression: None,
            attributes: ExpressionAttributes::default(),
            return_consumed_capacity: ReturnConsumedCapacity::None,
        }
    }

    /// The item's key attributes.
    pub fn key(mut self, key: impl Into<Item>) -> Self {
        self.key = key.into();
        self
    }

    /// Whether to read the latest committed state (always true today: an
    /// eventually consistent read is served from the same state).
    pub fn consistent_read(mut self, consistent: bool) -> Self {
        self.consistent_read = consistent;
        self
    }

    /// Which attributes to return.
    pub fn projection_expression(mut self, expression: impl Into<String>) -> Self {
        self.projection_expression = Some(expression.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<GetItemOutput> {
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        let mut placeholders = self
            .attributes
            .placeholders(self.projection_expression.is_some())?;
        let projection = self
            .projection_expression
            .as_deref()
            .map(|text| expr::parse_projection(text, &mut placeholders))
            .transpose()?;
        placeholders.check_unused()?;
        let key = key_from_key_map(&definition.key, &self.key)?;
        let row_key = key.row_key(definition.keyspace);
        let token = row_token(&row_key);
        let partition = table.partitions.partition(token);
        let target = Target {
            db: inner,
            table: &table,
            definition: &definition,
            partition: Some((&partition, token)),
            index: None,
        };
        target.check_read()?;
        let snapshot = inner.kv.eventual.snapshot(inner, self.consistent_read)?;
        let item = read_item_at(inner, &row_key, snapshot.as_deref())?;
        let size = item.as_ref().map_or(0, item_size);
        let units = read_units(size, self.consistent_read);
        target.charge_read(units);
        run_pending(inner, &table);
        let item = item.filter(|item| !super::ttl::hides(inner, &self.table, item));
        Ok(GetItemOutput {
            consumed_capacity: report(self.return_consumed_capacity, &self.table, units, 0.0),
            item: match (item, projection) {
                (Some(item), Some(projection)) => Some(projection.apply(&item)),
                (item, None) => item,
                (None, Some(_)) => None,
            },
        })
    }
}

/// An `update_item` request: edits (or creates) one item with an update
/// expression.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct UpdateItem {
    db: Database,
    table: String,
    key: Item,
    update_expression: Option<String>,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_values: ReturnValue,
    on_failure: ReturnValuesOnConditionCheckFailure,
    return_consumed_capacity: ReturnConsumedCapacity,
    return_item_collection_metrics: ReturnItemCollectionMetrics,
}

expression_attribute_setters!(UpdateItem);
write_request_setters!(UpdateItem);

/// What `update_item` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateItemOutput {
    /// The size of the item collection written to, if requested (tables
    /// with local secondary indexes).
    pub item_collection_metrics: Option<ItemCollectionMetrics>,
    /// The attributes `return_values` asked for.
    pub attributes: Option<Item>,
    /// The capacity consumed, if requested.
    pub consumed_capacity: Option<ConsumedCapacity>,
}

impl UpdateItem {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            key: Item::new(),
            update_expression: None,
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            return_values: ReturnValue::None,
            on_failure: ReturnValuesOnConditionCheckFailure::None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
            return_item_collection_metrics: ReturnItemCollectionMetrics::None,
        }
    }

    /// The item's key attributes.
    pub fn key(mut self, key: impl Into<Item>) -> Self {
        self.key = key.into();
        self
    }

    /// The update: `SET`, `REMOVE`, `ADD`, `DELETE` clauses.
    pub fn update_expression(mut self, expression: impl Into<String>) -> Self {
        self.update_expression = Some(expression.into());
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<UpdateItemOutput> {
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        let mut placeholders = self.attributes.placeholders(
            self.update_expression.is_some() || self.condition_expression.is_some(),
        )?;
        let update = self
            .update_expression
            .as_deref()
            .map(|text| expr::parse_update(text, &mut placeholders))
            .transpose()?;
        let condition = self
            .condition_expression
            .as_deref()
            .map(|text| expr::parse_condition(text, &mut placeholders))
            .transpose()?;
        placeholders.check_unused()?;
        let key = key_from_key_map(&definition.key, &self.key)?;
        if let Some(update) = &update {
            update.check_key_attributes(definition.key.names())?;
        }
        let row_key = key.row_key(definition.keyspace);
        let mut written = write_item(
            inner,
            &table,
            &row_key,
            condition.as_ref(),
            self.on_failure,
            |old| {
                let (mut item, state) = match old {
                    Some(old) => (old.item()?.clone(), ItemState::Existing),
                    None => (self.key.clone(), ItemState::New),
                };
                if let Some(update) = &update {
                    update.apply(&mut item, state)?;
                }
                // UpdateItem words the size limit its own way.
                if item_size(&item) > MAX_ITEM_BYTES {
                    return Err(Error::validation(
                        "Item size to update has exceeded the maximum allowed size",
                    ));
                }
                validate_item(&item)?;
                Ok(Some(item))
            },
        )?;
        // Decoded already: the update read it.
        let old = written.old.map(StoredItem::into_item).transpose()?;
        let size = old
            .as_ref()
            .map_or(0, item_size)
            .max(written.new.as_ref().map_or(0, item_size));
        let updated = |image: Option<&Item>| -> Option<Item> {
            let update = update.as_ref()?;
            let projection = Projection::from_paths(update.target_paths().cloned().collect());
            let projected = projection.apply(image?);
            (!projected.is_empty()).then_some(projected)
        };
        let attributes = match self.return_values {
            ReturnValue::None => None,
            ReturnValue::AllOld => old.clone(),
            ReturnValue::AllNew => written.new.clone(),
            ReturnValue::UpdatedOld => updated(old.as_ref()),
            ReturnValue::UpdatedNew => updated(written.new.as_ref()),
        };
        Ok(UpdateItemOutput {
            attributes,
            consumed_capacity: write_report(
                self.return_consumed_capacity,
                &self.table,
                size,
                &written.effects,
            ),
            item_collection_metrics: collection_metrics(
                self.return_item_collection_metrics,
                &mut written.effects,
            ),
        })
    }
}

/// A `delete_item` request: removes one item by its key.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteItem {
    db: Database,
    table: String,
    key: Item,
    condition_expression: Option<String>,
    attributes: ExpressionAttributes,
    return_values: ReturnValue,
    on_failure: ReturnValuesOnConditionCheckFailure,
    return_consumed_capacity: ReturnConsumedCapacity,
    return_item_collection_metrics: ReturnItemCollectionMetrics,
}

expression_attribute_setters!(DeleteItem);
write_request_setters!(DeleteItem);

/// What `delete_item` returns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeleteItemOutput {
    /// The size of the item collection written to, if requested (tables
    /// with local secondary indexes).
    pub item_collection_metrics: Option<ItemCollectionMetrics>,
    /// The deleted item, with `ReturnValue::AllOld`.
    pub attributes: Option<Item>,
    /// The capacity consumed, if requested.
    pub consumed_capacity: Option<ConsumedCapacity>,
}

impl DeleteItem {
    pub(crate) fn new(db: Database, table: String) -> Self {
        Self {
            db,
            table,
            key: Item::new(),
            condition_expression: None,
            attributes: ExpressionAttributes::default(),
            return_values: ReturnValue::None,
            on_failure: ReturnValuesOnConditionCheckFailure::None,
            return_consumed_capacity: ReturnConsumedCapacity::None,
            return_item_collection_metrics: ReturnItemCollectionMetrics::None,
        }
    }

    /// The item's key attributes.
    pub fn key(mut self, key: impl Into<Item>) -> Self {
        self.key = key.into();
        self
    }

    /// Runs the request.
    pub fn send(self) -> Result<DeleteItemOutput> {
        let inner = &self.db.inner;
        let table = inner.kv.table(&self.table)?;
        let definition = table.definition();
        check_put_delete_return_values(self.return_values)?;
        let condition =
            parse_condition_only(&self.attributes, self.condition_expression.as_deref())?;
        let key = key_from_key_map(&definition.key, &self.key)?;
        let mut written = write_item(
            inner,
            &table,
            &key.row_key(definition.keyspace),
            condition.as_ref(),
            self.on_failure,
            |_| Ok(None),
        )?;
        let size = written.old.as_ref().map(StoredItem::size).transpose()?;
        let size = size.unwrap_or(0);
        Ok(DeleteItemOutput {
            consumed_capacity: write_report(
                self.return_consumed_capacity,
                &self.table,
                size,
                &written.effects,
            ),
            item_collection_metrics: collection_metrics(
                self.return_item_collection_metrics,
                &mut written.effects,
            ),
            attributes: all_old(self.return_values, written.old)?,
        })
    }
}
