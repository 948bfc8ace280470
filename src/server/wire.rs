//! The shapes shared by many operations on the wire: parsing a request
//! body into an operation's input (with DynamoDB's error classes), required
//! members and enum members with DynamoDB's validation messages, and the
//! JSON of consumed capacity and item collection metrics.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::error::WireError;
use crate::kv::{
    Capacity, ConsumedCapacity, ItemCollectionMetrics, ReturnConsumedCapacity,
    ReturnItemCollectionMetrics, ReturnValue, ReturnValuesOnConditionCheckFailure, Select,
};
use crate::value::{AttributeValue, from_json_error};

/// `#placeholder` -> name, as sent.
pub type Names = BTreeMap<String, String>;
/// `:placeholder` -> value, as sent.
pub type Values = BTreeMap<String, AttributeValue>;

/// Parses `body` as the input `T` of an operation. Malformed JSON and
/// members of the wrong JSON type are `SerializationException`s; invalid
/// attribute values are `ValidationException`s, as DynamoDB sorts them.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, WireError> {
    let body = if body.is_empty() { &b"{}"[..] } else { body };
    serde_json::from_slice(body).map_err(|error| WireError::from(from_json_error(error)))
}

/// DynamoDB's "1 validation error detected: Value '{value}' at '{field}'
/// failed to satisfy constraint: {constraint}".
pub fn constraint(value: &str, field: &str, constraint: &str) -> WireError {
    WireError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
         constraint: {constraint}"
    ))
}

/// A required member: DynamoDB's "Value null at '{field}' ... must not be
/// null" when absent.
pub fn required<T>(value: Option<T>, field: &str) -> Result<T, WireError> {
    value.ok_or_else(|| {
        WireError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy \
             constraint: Member must not be null"
        ))
    })
}

/// Checks a table (or index) name's length and characters before the
/// table is looked up, as DynamoDB's request validation does.
pub fn table_name(name: Option<String>, field: &str) -> Result<String, WireError> {
    let name = required(name, field)?;
    if name.len() < 3 {
        return Err(constraint(
            &name,
            field,
            "Member must have length greater than or equal to 3",
        ));
    }
    if name.len() > 255 {
        return Err(constraint(
            &name,
            field,
            "Member must have length less than or equal to 255",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(constraint(
            &name,
            field,
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
        ));
    }
    Ok(name)
}

/// Parses an enum member: `None` when absent, DynamoDB's enum-set error
/// when not one of `choices`.
pub fn choice<T: Copy>(
    value: Option<&str>,
    field: &str,
    choices: &[(&str, T)],
) -> Result<Option<T>, WireError> {
    let Some(value) = value else {
        return Ok(None);
    };
    choices
        .iter()
        .find(|(name, _)| *name == value)
        .map(|(_, choice)| Some(*choice))
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            constraint(
                value,
                field,
                &format!("Member must satisfy enum value set: [{}]", names.join(", ")),
            )
        })
}

/// `ReturnValues`.
pub fn return_values(value: Option<&str>) -> Result<ReturnValue, WireError> {
    Ok(choice(
        value,
        "returnValues",
        &[
            ("ALL_NEW", ReturnValue::AllNew),
            ("UPDATED_OLD", ReturnValue::UpdatedOld),
            ("ALL_OLD", ReturnValue::AllOld),
            ("NONE", ReturnValue::None),
            ("UPDATED_NEW", ReturnValue::UpdatedNew),
        ],
    )?
    .unwrap_or_default())
}

/// `ReturnValuesOnConditionCheckFailure`.
pub fn on_failure(value: Option<&str>) -> Result<ReturnValuesOnConditionCheckFailure, WireError> {
    Ok(choice(
        value,
        "returnValuesOnConditionCheckFailure",
        &[
            ("ALL_OLD", ReturnValuesOnConditionCheckFailure::AllOld),
            ("NONE", ReturnValuesOnConditionCheckFailure::None),
        ],
    )?
    .unwrap_or_default())
}

/// `ReturnConsumedCapacity`.
pub fn return_capacity(value: Option<&str>) -> Result<ReturnConsumedCapacity, WireError> {
    Ok(choice(
        value,
        "returnConsumedCapacity",
        &[
            ("INDEXES", ReturnConsumedCapacity::Indexes),
            ("TOTAL", ReturnConsumedCapacity::Total),
            ("NONE", ReturnConsumedCapacity::None),
        ],
    )?
    .unwrap_or_default())
}

/// `ReturnItemCollectionMetrics`.
pub fn return_metrics(value: Option<&str>) -> Result<ReturnItemCollectionMetrics, WireError> {
    Ok(choice(
        value,
        "returnItemCollectionMetrics",
        &[
            ("SIZE", ReturnItemCollectionMetrics::Size),
            ("NONE", ReturnItemCollectionMetrics::None),
        ],
    )?
    .unwrap_or_default())
}

/// `Select`.
pub fn select(value: Option<&str>) -> Result<Option<Select>, WireError> {
    choice(
        value,
        "select",
        &[
            ("SPECIFIC_ATTRIBUTES", Select::SpecificAttributes),
            ("COUNT", Select::Count),
            ("ALL_ATTRIBUTES", Select::AllAttributes),
            ("ALL_PROJECTED_ATTRIBUTES", Select::AllProjectedAttributes),
        ],
    )
}

fn capacity_json(capacity: &Capacity) -> Value {
    json!({
        "CapacityUnits": capacity.capacity_units,
        "ReadCapacityUnits": capacity.read_capacity_units,
        "WriteCapacityUnits": capacity.write_capacity_units,
    })
}

/// `ConsumedCapacity` as DynamoDB sends it.
pub fn consumed_capacity(capacity: &ConsumedCapacity) -> Value {
    let mut object = Map::new();
    object.insert("TableName".into(), json!(capacity.table_name));
    object.insert("CapacityUnits".into(), json!(capacity.capacity_units));
    if capacity.read_capacity_units > 0.0 {
        object.insert(
            "ReadCapacityUnits".into(),
            json!(capacity.read_capacity_units),
        );
    }
    if capacity.write_capacity_units > 0.0 {
        object.insert(
            "WriteCapacityUnits".into(),
            json!(capacity.write_capacity_units),
        );
    }
    if let Some(table) = &capacity.table {
        object.insert("Table".into(), capacity_json(table));
    }
    for (member, indexes) in [
        ("LocalSecondaryIndexes", &capacity.local_secondary_indexes),
        ("GlobalSecondaryIndexes", &capacity.global_secondary_indexes),
    ] {
        if !indexes.is_empty() {
            let map: Map<String, Value> = indexes
                .iter()
                .map(|(name, c)| (name.clone(), capacity_json(c)))
                .collect();
            object.insert(member.into(), Value::Object(map));
        }
    }
    Value::Object(object)
}

/// `ItemCollectionMetrics` as DynamoDB sends it.
pub fn collection_metrics(metrics: &ItemCollectionMetrics) -> Value {
    json!({
        "ItemCollectionKey": metrics.item_collection_key,
        "SizeEstimateRangeGB": [metrics.size_estimation_range_gb.0, metrics.size_estimation_range_gb.1],
    })
}

/// Builds a response object, leaving out absent members.
#[derive(Default)]
pub struct Output(Map<String, Value>);

impl Output {
    /// An empty object.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`.
    pub fn set(mut self, name: &str, value: impl serde::Serialize) -> Self {
        self.0.insert(
            name.into(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    /// Sets `name` when `value` is present.
    pub fn maybe<T: serde::Serialize>(self, name: &str, value: Option<T>) -> Self {
        match value {
            Some(value) => self.set(name, value),
            None => self,
        }
    }

    /// The serialized object.
    pub fn into_body(self) -> Vec<u8> {
        serde_json::to_vec(&Value::Object(self.0)).unwrap_or_default()
    }
}
