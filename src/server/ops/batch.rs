//! BatchGetItem, BatchWriteItem, TransactWriteItems and TransactGetItems on
//! the wire.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Context, apply_placeholders};
use crate::kv::{
    ConditionCheck, KeysAndAttributes, TransactDelete, TransactGet, TransactPut, TransactUpdate,
    TransactWriteItem, WriteRequest,
};
use crate::server::error::WireError;
use crate::server::ops::items::projection_of;
use crate::server::wire::{
    Names, Output, Values, consumed_capacity, on_failure, parse, required, return_capacity,
    return_metrics, table_name,
};
use crate::value::Item;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeysAndAttributesInput {
    keys: Option<Vec<Item>>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<Names>,
    consistent_read: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchGetInput {
    request_items: Option<BTreeMap<String, KeysAndAttributesInput>>,
    return_consumed_capacity: Option<String>,
}

fn keys_and_attributes_json(keys: &KeysAndAttributes) -> Value {
    let mut object = Map::new();
    object.insert("Keys".into(), json!(keys.keys));
    if let Some(projection) = &keys.projection_expression {
        object.insert("ProjectionExpression".into(), json!(projection));
    }
    if let Some(names) = &keys.expression_attribute_names {
        object.insert("ExpressionAttributeNames".into(), json!(names));
    }
    if keys.consistent_read {
        object.insert("ConsistentRead".into(), json!(true));
    }
    Value::Object(object)
}

/// `BatchGetItem`.
pub fn batch_get_item(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: BatchGetInput = parse(body)?;
    let request_items = required(input.request_items, "requestItems")?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let mut request = context
        .db
        .batch_get_item()
        .return_consumed_capacity(capacity);
    for (table, keys) in request_items {
        let table = table_name(Some(table), "requestItems.member.key")?;
        let (projection, names) = projection_of(
            keys.projection_expression,
            keys.attributes_to_get.as_deref(),
            keys.expression_attribute_names,
        )?;
        let keys = KeysAndAttributes {
            keys: required(keys.keys, &format!("requestItems.{table}.member.keys"))?,
            projection_expression: projection,
            expression_attribute_names: names,
            consistent_read: keys.consistent_read.unwrap_or(false),
        };
        request = request.request_items(table, keys);
    }
    let output = request.send()?;
    let unprocessed: Map<String, Value> = output
        .unprocessed_keys
        .iter()
        .map(|(table, keys)| (table.clone(), keys_and_attributes_json(keys)))
        .collect();
    let mut answer = Output::new()
        .set("Responses", &output.responses)
        .set("UnprocessedKeys", unprocessed);
    answer = answer.maybe("ConsumedCapacity", capacity_list(&output.consumed_capacity));
    Ok(answer.into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRequestInput {
    item: Option<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteRequestInput {
    key: Option<Item>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteRequestInput {
    put_request: Option<PutRequestInput>,
    delete_request: Option<DeleteRequestInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchWriteInput {
    request_items: Option<BTreeMap<String, Vec<WriteRequestInput>>>,
    return_consumed_capacity: Option<String>,
    return_item_collection_metrics: Option<String>,
}

fn write_request_json(request: &WriteRequest) -> Value {
    match request {
        WriteRequest::Put(item) => json!({"PutRequest": {"Item": item}}),
        WriteRequest::Delete(key) => json!({"DeleteRequest": {"Key": key}}),
    }
}

/// `BatchWriteItem`.
pub fn batch_write_item(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: BatchWriteInput = parse(body)?;
    let request_items = required(input.request_items, "requestItems")?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    return_metrics(input.return_item_collection_metrics.as_deref())?;
    let mut tables = BTreeMap::new();
    for (table, writes) in request_items {
        let table = table_name(Some(table), "requestItems.member.key")?;
        let mut requests = Vec::with_capacity(writes.len());
        for write in writes {
            requests.push(match (write.put_request, write.delete_request) {
                (Some(put), None) => WriteRequest::Put(required(put.item, "item")?),
                (None, Some(delete)) => WriteRequest::Delete(required(delete.key, "key")?),
                _ => {
                    return Err(WireError::validation(
                        "Supplied AttributeValue has more than one datatypes set, must contain \
                         exactly one of the supported datatypes",
                    ));
                }
            });
        }
        tables.insert(table, requests);
    }
    let mut request = context
        .db
        .batch_write_item()
        .return_consumed_capacity(capacity);
    for (table, requests) in tables {
        request = request.request_items(table, requests);
    }
    let output = request.send()?;
    let unprocessed: Map<String, Value> = output
        .unprocessed_items
        .iter()
        .map(|(table, writes)| {
            let list: Vec<Value> = writes.iter().map(write_request_json).collect();
            (table.clone(), Value::Array(list))
        })
        .collect();
    let mut answer = Output::new().set("UnprocessedItems", unprocessed);
    answer = answer.maybe("ConsumedCapacity", capacity_list(&output.consumed_capacity));
    Ok(answer.into_body())
}

/// The members of one transact write action (each action uses its own).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ActionInput {
    table_name: Option<String>,
    item: Option<Item>,
    key: Option<Item>,
    update_expression: Option<String>,
    condition_expression: Option<String>,
    projection_expression: Option<String>,
    expression_attribute_names: Option<Names>,
    expression_attribute_values: Option<Values>,
    return_values_on_condition_check_failure: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteItemInput {
    condition_check: Option<ActionInput>,
    put: Option<ActionInput>,
    delete: Option<ActionInput>,
    update: Option<ActionInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactWriteInput {
    transact_items: Option<Vec<TransactWriteItemInput>>,
    client_request_token: Option<String>,
    return_consumed_capacity: Option<String>,
    return_item_collection_metrics: Option<String>,
}

/// Sets an action's condition, failure return and placeholders.
macro_rules! action_options {
    ($action:expr, $input:expr) => {{
        let mut action = $action.return_values_on_condition_check_failure(on_failure(
            $input.return_values_on_condition_check_failure.as_deref(),
        )?);
        if let Some(condition) = $input.condition_expression {
            action = action.condition_expression(condition);
        }
        apply_placeholders!(
            action,
            $input.expression_attribute_names,
            $input.expression_attribute_values
        )
    }};
}

fn write_action(
    index: usize,
    action: TransactWriteItemInput,
) -> Result<TransactWriteItem, WireError> {
    let field = |member: &str| format!("transactItems.{}.member.{member}", index + 1);
    Ok(
        match (
            action.condition_check,
            action.put,
            action.delete,
            action.update,
        ) {
            (Some(check), None, None, None) => {
                let table =
                    table_name(check.table_name.clone(), &field("conditionCheck.tableName"))?;
                let key = required(check.key.clone(), &field("conditionCheck.key"))?;
                required(
                    check.condition_expression.as_ref(),
                    &field("conditionCheck.conditionExpression"),
                )?;
                action_options!(ConditionCheck::new(table, key), check).into()
            }
            (None, Some(put), None, None) => {
                let table = table_name(put.table_name.clone(), &field("put.tableName"))?;
                let item = required(put.item.clone(), &field("put.item"))?;
                action_options!(TransactPut::new(table, item), put).into()
            }
            (None, None, Some(delete), None) => {
                let table = table_name(delete.table_name.clone(), &field("delete.tableName"))?;
                let key = required(delete.key.clone(), &field("delete.key"))?;
                action_options!(TransactDelete::new(table, key), delete).into()
            }
            (None, None, None, Some(update)) => {
                let table = table_name(update.table_name.clone(), &field("update.tableName"))?;
                let key = required(update.key.clone(), &field("update.key"))?;
                let expression = required(
                    update.update_expression.clone(),
                    &field("update.updateExpression"),
                )?;
                action_options!(TransactUpdate::new(table, key, expression), update).into()
            }
            _ => {
                return Err(WireError::validation(
                    "TransactItems can only contain one of Check, Put, Update or Delete",
                ));
            }
        },
    )
}

/// `TransactWriteItems`.
pub fn transact_write_items(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TransactWriteInput = parse(body)?;
    let items = required(input.transact_items, "transactItems")?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    return_metrics(input.return_item_collection_metrics.as_deref())?;
    let actions = items
        .into_iter()
        .enumerate()
        .map(|(index, action)| write_action(index, action))
        .collect::<Result<Vec<_>, _>>()?;
    let mut request = context
        .db
        .transact_write_items()
        .transact_items(actions)
        .return_consumed_capacity(capacity);
    if let Some(token) = input.client_request_token {
        request = request.client_request_token(token);
    }
    let output = request.send()?;
    let mut answer = Output::new();
    answer = answer.maybe("ConsumedCapacity", capacity_list(&output.consumed_capacity));
    Ok(answer.into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGetItemInput {
    get: Option<ActionInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TransactGetInput {
    transact_items: Option<Vec<TransactGetItemInput>>,
    return_consumed_capacity: Option<String>,
}

/// `TransactGetItems`.
pub fn transact_get_items(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TransactGetInput = parse(body)?;
    let items = required(input.transact_items, "transactItems")?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let mut request = context
        .db
        .transact_get_items()
        .return_consumed_capacity(capacity);
    for (index, item) in items.into_iter().enumerate() {
        let field = |member: &str| format!("transactItems.{}.member.get.{member}", index + 1);
        let get = required(item.get, &format!("transactItems.{}.member.get", index + 1))?;
        let table = table_name(get.table_name, &field("tableName"))?;
        let key = required(get.key, &field("key"))?;
        let mut action = TransactGet::new(table, key);
        if let Some(projection) = get.projection_expression {
            action = action.projection_expression(projection);
        }
        if let Some(names) = get.expression_attribute_names {
            action = action.expression_attribute_names(names);
        }
        request = request.item(action);
    }
    let output = request.send()?;
    let responses: Vec<Value> = output
        .responses
        .iter()
        .map(|item| match item {
            Some(item) => json!({ "Item": item }),
            None => json!({}),
        })
        .collect();
    let mut answer = Output::new().set("Responses", responses);
    answer = answer.maybe("ConsumedCapacity", capacity_list(&output.consumed_capacity));
    Ok(answer.into_body())
}

/// The per-table `ConsumedCapacity` list of a multi-table answer, if any.
fn capacity_list(capacity: &[crate::kv::ConsumedCapacity]) -> Option<Vec<Value>> {
    (!capacity.is_empty()).then(|| capacity.iter().map(consumed_capacity).collect())
}
