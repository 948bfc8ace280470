//! Parameters shared by many requests: return-value and capacity options,
//! and the `ExpressionAttributeNames`/`Values` maps with the rules DynamoDB
//! applies to them.

use std::collections::BTreeMap;

use super::error::{Error, Result};
use super::expr::Placeholders;
use crate::value::{AttributeValue, Item};

/// What a write returns (`ReturnValues`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnValue {
    /// Nothing.
    #[default]
    None,
    /// The whole item as it was before.
    AllOld,
    /// The attributes the update touched, as they were.
    UpdatedOld,
    /// The whole item as it is after.
    AllNew,
    /// The attributes the update touched, as they are.
    UpdatedNew,
}

impl ReturnValue {
    /// DynamoDB's name of the value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "NONE",
            Self::AllOld => "ALL_OLD",
            Self::UpdatedOld => "UPDATED_OLD",
            Self::AllNew => "ALL_NEW",
            Self::UpdatedNew => "UPDATED_NEW",
        }
    }
}

/// What a failed condition returns (`ReturnValuesOnConditionCheckFailure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnValuesOnConditionCheckFailure {
    /// Nothing.
    #[default]
    None,
    /// The stored item.
    AllOld,
}

/// Whether a response reports consumed capacity (`ReturnConsumedCapacity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnConsumedCapacity {
    /// No report.
    #[default]
    None,
    /// The total.
    Total,
    /// The total and per index.
    Indexes,
}

/// The capacity an operation consumed (with `Indexes`, also broken down
/// into the table and each index it touched).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConsumedCapacity {
    /// The table.
    pub table_name: String,
    /// Read plus write units, the table's and its indexes'.
    pub capacity_units: f64,
    /// Read units.
    pub read_capacity_units: f64,
    /// Write units.
    pub write_capacity_units: f64,
    /// The table's own share (`ReturnConsumedCapacity::Indexes`).
    pub table: Option<Capacity>,
    /// Each local index's share, by name (`Indexes`).
    pub local_secondary_indexes: BTreeMap<String, Capacity>,
    /// Each global index's share, by name (`Indexes`).
    pub global_secondary_indexes: BTreeMap<String, Capacity>,
}

/// The units one table or index consumed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Capacity {
    /// Read plus write units.
    pub capacity_units: f64,
    /// Read units.
    pub read_capacity_units: f64,
    /// Write units.
    pub write_capacity_units: f64,
}

impl Capacity {
    /// `read` and `write` units.
    pub(crate) fn new(read: f64, write: f64) -> Self {
        Self {
            capacity_units: read + write,
            read_capacity_units: read,
            write_capacity_units: write,
        }
    }
}

/// Whether a write on a table with local indexes reports its item
/// collection's size (`ReturnItemCollectionMetrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReturnItemCollectionMetrics {
    /// No report.
    #[default]
    None,
    /// The size of the item collection written to.
    Size,
}

/// The size of the item collection a write touched: the partition key's
/// items and their local index entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemCollectionMetrics {
    /// The partition key attribute and its value.
    pub item_collection_key: Item,
    /// DynamoDB's estimate: lower and upper bound, in GB.
    pub size_estimation_range_gb: (f64, f64),
    /// The exact size in bytes (nimbus knows it).
    pub size_bytes: u64,
}

impl ItemCollectionMetrics {
    /// The metrics of a collection of `size_bytes`.
    pub(crate) fn new(item_collection_key: Item, size_bytes: u64) -> Self {
        const GB: f64 = (1u64 << 30) as f64;
        let low = (size_bytes as f64 / GB).floor();
        Self {
            item_collection_key,
            size_estimation_range_gb: (low, low + 1.0),
            size_bytes,
        }
    }
}

/// The item collections a multi-item write changed, per table, each with
/// its size after the request (BatchWriteItem, TransactWriteItems).
#[derive(Debug, Default)]
pub(crate) struct CollectionTally {
    tables: BTreeMap<String, Vec<ItemCollectionMetrics>>,
}

impl CollectionTally {
    /// Records the collection one write changed, if its table has one.
    pub(crate) fn add(&mut self, table: &str, effects: &mut super::write::Effects) {
        let Some((key, size)) = effects.collection.take() else {
            return;
        };
        let metrics = ItemCollectionMetrics::new(key, size);
        let list = self.tables.entry(table.to_owned()).or_default();
        // Writes are staged in order, so a later size is the newer one.
        match list
            .iter_mut()
            .find(|m| m.item_collection_key == metrics.item_collection_key)
        {
            Some(seen) => *seen = metrics,
            None => list.push(metrics),
        }
    }

    /// The metrics, if the request asked for them.
    pub(crate) fn report(
        self,
        wanted: ReturnItemCollectionMetrics,
    ) -> BTreeMap<String, Vec<ItemCollectionMetrics>> {
        match wanted {
            ReturnItemCollectionMetrics::None => BTreeMap::new(),
            ReturnItemCollectionMetrics::Size => self.tables,
        }
    }
}

/// The expression attribute maps of one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExpressionAttributes {
    pub(crate) names: Option<BTreeMap<String, String>>,
    pub(crate) values: Option<BTreeMap<String, AttributeValue>>,
}

/// An empty map used when a request gave none.
static NO_NAMES: BTreeMap<String, String> = BTreeMap::new();
static NO_VALUES: BTreeMap<String, AttributeValue> = BTreeMap::new();

impl ExpressionAttributes {
    pub(crate) fn name(&mut self, placeholder: impl Into<String>, name: impl Into<String>) {
        self.names
            .get_or_insert_with(BTreeMap::new)
            .insert(placeholder.into(), name.into());
    }

    pub(crate) fn value(
        &mut self,
        placeholder: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) {
        self.values
            .get_or_insert_with(BTreeMap::new)
            .insert(placeholder.into(), value.into());
    }

    /// The placeholders for parsing this request's expressions.
    /// `uses_expressions` is whether the request has any expression at all:
    /// maps given without one are DynamoDB validation errors, and so are
    /// empty maps.
    pub(crate) fn placeholders(&self, uses_expressions: bool) -> Result<Placeholders<'_>> {
        if let Some(names) = &self.names {
            if !uses_expressions {
                return Err(Error::validation(
                    "ExpressionAttributeNames can only be specified when using expressions",
                ));
            }
            if names.is_empty() {
                return Err(Error::validation(
                    "ExpressionAttributeNames must not be empty",
                ));
            }
        }
        if let Some(values) = &self.values {
            if !uses_expressions {
                return Err(Error::validation(
                    "ExpressionAttributeValues can only be specified when using expressions",
                ));
            }
            if values.is_empty() {
                return Err(Error::validation(
                    "ExpressionAttributeValues must not be empty",
                ));
            }
        }
        Ok(Placeholders::new(
            self.names.as_ref().unwrap_or(&NO_NAMES),
            self.values.as_ref().unwrap_or(&NO_VALUES),
        )?)
    }
}

/// Implements the expression-attribute setters on a request builder that
/// has an `attributes: ExpressionAttributes` field.
macro_rules! expression_attribute_setters {
    ($builder:ident) => {
        impl $builder {
            /// Sets `ExpressionAttributeNames` (`#placeholder` -> name).
            pub fn expression_attribute_names(
                mut self,
                names: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
            ) -> Self {
                let map = self.attributes.names.get_or_insert_with(Default::default);
                map.extend(names.into_iter().map(|(k, v)| (k.into(), v.into())));
                self
            }

            /// Sets `ExpressionAttributeValues` (`:placeholder` -> value).
            pub fn expression_attribute_values(
                mut self,
                values: impl IntoIterator<
                    Item = (impl Into<String>, impl Into<$crate::value::AttributeValue>),
                >,
            ) -> Self {
                let map = self.attributes.values.get_or_insert_with(Default::default);
                map.extend(values.into_iter().map(|(k, v)| (k.into(), v.into())));
                self
            }

            /// Adds one `#placeholder` -> attribute name.
            pub fn name(mut self, placeholder: impl Into<String>, name: impl Into<String>) -> Self {
                self.attributes.name(placeholder, name);
                self
            }

            /// Adds one `:placeholder` -> value.
            pub fn value(
                mut self,
                placeholder: impl Into<String>,
                value: impl Into<$crate::value::AttributeValue>,
            ) -> Self {
                self.attributes.value(placeholder, value);
                self
            }
        }
    };
}

/// Implements `return_consumed_capacity` on a builder with a
/// `return_consumed_capacity` field.
macro_rules! capacity_setter {
    ($builder:ident) => {
        impl $builder {
            /// Whether to report consumed capacity.
            pub fn return_consumed_capacity(
                mut self,
                value: $crate::kv::ReturnConsumedCapacity,
            ) -> Self {
                self.return_consumed_capacity = value;
                self
            }
        }
    };
}

/// Implements the setters every single-item write shares: condition,
/// return values, return values on a failed condition, capacity.
macro_rules! write_request_setters {
    ($builder:ident) => {
        $crate::kv::request::capacity_setter!($builder);

        impl $builder {
            /// A condition the stored item must meet.
            pub fn condition_expression(mut self, expression: impl Into<String>) -> Self {
                self.condition_expression = Some(expression.into());
                self
            }

            /// What to return (PutItem and DeleteItem accept `None` and
            /// `AllOld` only).
            pub fn return_values(mut self, value: $crate::kv::ReturnValue) -> Self {
                self.return_values = value;
                self
            }

            /// Whether to report the size of the item collection written
            /// to (tables with local secondary indexes).
            pub fn return_item_collection_metrics(
                mut self,
                value: $crate::kv::ReturnItemCollectionMetrics,
            ) -> Self {
                self.return_item_collection_metrics = value;
                self
            }

            /// Whether a failed condition returns the stored item.
            pub fn return_values_on_condition_check_failure(
                mut self,
                value: $crate::kv::ReturnValuesOnConditionCheckFailure,
            ) -> Self {
                self.on_failure = value;
                self
            }
        }
    };
}

pub(crate) use {capacity_setter, expression_attribute_setters, write_request_setters};
