//! PutItem, GetItem, UpdateItem and DeleteItem on the wire: each parses
//! its input, checks its shape, translates legacy parameters and runs the
//! kv request of the same name.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Context, apply_placeholders, resolve_placeholders};
use crate::kv::ReturnValue;
use crate::server::error::WireError;
use crate::server::legacy::{
    AttributeValueUpdate, ExpectedAttributeValue, Translator, check_not_mixed,
};
use crate::server::wire::{
    Names, Output, Values, collection_metrics, consumed_capacity, on_failure, parse, required,
    return_capacity, return_metrics, return_values, table_name,
};
use crate::value::{Item, validate_item};

/// PutItem's and DeleteItem's rule on `ReturnValues`, checked (with the
/// item's own rules) before the table is looked up, as DynamoDB orders
/// its validation; the kv layer checks the same after its lookup.
fn check_put_delete_return_values(value: ReturnValue) -> Result<(), WireError> {
    match value {
        ReturnValue::None | ReturnValue::AllOld => Ok(()),
        _ => Err(WireError::validation(
            "ReturnValues can only be ALL_OLD or NONE",
        )),
    }
}

/// The members every single-item write shares.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WriteInput {
    table_name: Option<String>,
    item: Option<Item>,
    key: Option<Item>,
    update_expression: Option<String>,
    condition_expression: Option<String>,
    expression_attribute_names: Option<Names>,
    expression_attribute_values: Option<Values>,
    return_values: Option<String>,
    return_values_on_condition_check_failure: Option<String>,
    return_consumed_capacity: Option<String>,
    return_item_collection_metrics: Option<String>,
    expected: Option<BTreeMap<String, ExpectedAttributeValue>>,
    attribute_updates: Option<BTreeMap<String, AttributeValueUpdate>>,
    conditional_operator: Option<String>,
}

/// A write's expressions after legacy translation.
struct WriteExpressions {
    condition: Option<String>,
    update: Option<String>,
    names: Option<Names>,
    values: Option<Values>,
}

impl WriteInput {
    fn expressions(&mut self) -> Result<WriteExpressions, WireError> {
        let mut legacy = Vec::new();
        if self.attribute_updates.is_some() {
            legacy.push("AttributeUpdates");
        }
        if self.expected.is_some() {
            legacy.push("Expected");
        }
        if self.conditional_operator.is_some() && self.expected.is_none() {
            legacy.push("ConditionalOperator");
        }
        let mut modern = Vec::new();
        if self.update_expression.is_some() {
            modern.push("UpdateExpression");
        }
        if self.condition_expression.is_some() {
            modern.push("ConditionExpression");
        }
        check_not_mixed(&legacy, &modern)?;
        let mut translator = Translator::new();
        let mut condition = self.condition_expression.take();
        let mut update = self.update_expression.take();
        if let Some(expected) = &self.expected {
            condition = Some(translator.expected(expected, self.conditional_operator.as_deref())?)
                .filter(|text| !text.is_empty());
        }
        if let Some(updates) = &self.attribute_updates {
            update = Some(translator.attribute_updates(updates)?).filter(|text| !text.is_empty());
        }
        let (names, values) = resolve_placeholders(
            !legacy.is_empty(),
            &translator,
            self.expression_attribute_names.take(),
            self.expression_attribute_values.take(),
        )?;
        Ok(WriteExpressions {
            condition,
            update,
            names,
            values,
        })
    }
}

/// Serializes the members every single-item write answers with.
fn write_output(
    attributes: Option<Item>,
    capacity: Option<crate::kv::ConsumedCapacity>,
    metrics: Option<crate::kv::ItemCollectionMetrics>,
) -> Vec<u8> {
    Output::new()
        .maybe("Attributes", attributes)
        .maybe("ConsumedCapacity", capacity.as_ref().map(consumed_capacity))
        .maybe(
            "ItemCollectionMetrics",
            metrics.as_ref().map(collection_metrics),
        )
        .into_body()
}

/// `PutItem`.
pub fn put_item(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut input: WriteInput = parse(body)?;
    let table = table_name(input.table_name.take(), "tableName")?;
    let item = required(input.item.take(), "item")?;
    let returns = return_values(input.return_values.as_deref())?;
    check_put_delete_return_values(returns)?;
    validate_item(&item)?;
    let on_failure = on_failure(input.return_values_on_condition_check_failure.as_deref())?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let metrics = return_metrics(input.return_item_collection_metrics.as_deref())?;
    let expressions = input.expressions()?;
    let mut request = context
        .db
        .put_item(table)
        .item(item)
        .return_values(returns)
        .return_values_on_condition_check_failure(on_failure)
        .return_consumed_capacity(capacity)
        .return_item_collection_metrics(metrics);
    if let Some(condition) = expressions.condition {
        request = request.condition_expression(condition);
    }
    let request = apply_placeholders!(request, expressions.names, expressions.values);
    let output = request.send()?;
    Ok(write_output(
        output.attributes,
        output.consumed_capacity,
        output.item_collection_metrics,
    ))
}

/// `UpdateItem`.
pub fn update_item(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut input: WriteInput = parse(body)?;
    let table = table_name(input.table_name.take(), "tableName")?;
    let key = required(input.key.take(), "key")?;
    validate_item(&key)?;
    let returns = return_values(input.return_values.as_deref())?;
    let on_failure = on_failure(input.return_values_on_condition_check_failure.as_deref())?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let metrics = return_metrics(input.return_item_collection_metrics.as_deref())?;
    let expressions = input.expressions()?;
    let mut request = context
        .db
        .update_item(table)
        .key(key)
        .return_values(returns)
        .return_values_on_condition_check_failure(on_failure)
        .return_consumed_capacity(capacity)
        .return_item_collection_metrics(metrics);
    if let Some(update) = expressions.update {
        request = request.update_expression(update);
    }
    if let Some(condition) = expressions.condition {
        request = request.condition_expression(condition);
    }
    let request = apply_placeholders!(request, expressions.names, expressions.values);
    let output = request.send()?;
    Ok(write_output(
        output.attributes,
        output.consumed_capacity,
        output.item_collection_metrics,
    ))
}

/// `DeleteItem`.
pub fn delete_item(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut input: WriteInput = parse(body)?;
    let table = table_name(input.table_name.take(), "tableName")?;
    let key = required(input.key.take(), "key")?;
    validate_item(&key)?;
    let returns = return_values(input.return_values.as_deref())?;
    let on_failure = on_failure(input.return_values_on_condition_check_failure.as_deref())?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let metrics = return_metrics(input.return_item_collection_metrics.as_deref())?;
    check_put_delete_return_values(returns)?;
    let expressions = input.expressions()?;
    let mut request = context
        .db
        .delete_item(table)
        .key(key)
        .return_values(returns)
        .return_values_on_condition_check_failure(on_failure)
        .return_consumed_capacity(capacity)
        .return_item_collection_metrics(metrics);
    if let Some(condition) = expressions.condition {
        request = request.condition_expression(condition);
    }
    let request = apply_placeholders!(request, expressions.names, expressions.values);
    let output = request.send()?;
    Ok(write_output(
        output.attributes,
        output.consumed_capacity,
        output.item_collection_metrics,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetItemInput {
    table_name: Option<String>,
    key: Option<Item>,
    consistent_read: Option<bool>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<Names>,
    return_consumed_capacity: Option<String>,
}

/// `GetItem`.
pub fn get_item(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: GetItemInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let key = required(input.key, "key")?;
    validate_item(&key)?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let (projection, names) = projection_of(
        input.projection_expression,
        input.attributes_to_get.as_deref(),
        input.expression_attribute_names,
    )?;
    let mut request = context
        .db
        .get_item(table)
        .key(key)
        .consistent_read(input.consistent_read.unwrap_or(false))
        .return_consumed_capacity(capacity);
    if let Some(projection) = projection {
        request = request.projection_expression(projection);
    }
    if let Some(names) = names {
        request = request.expression_attribute_names(names);
    }
    let output = request.send()?;
    Ok(Output::new()
        .maybe("Item", output.item)
        .maybe(
            "ConsumedCapacity",
            output.consumed_capacity.as_ref().map(consumed_capacity),
        )
        .into_body())
}

/// A projection from `ProjectionExpression` or legacy `AttributesToGet`,
/// with the names it needs.
pub fn projection_of(
    expression: Option<String>,
    attributes_to_get: Option<&[String]>,
    names: Option<Names>,
) -> Result<(Option<String>, Option<Names>), WireError> {
    let Some(attributes) = attributes_to_get else {
        return Ok((expression, names));
    };
    let modern: &[&str] = if expression.is_some() {
        &["ProjectionExpression"]
    } else {
        &[]
    };
    check_not_mixed(&["AttributesToGet"], modern)?;
    let mut translator = Translator::new();
    let projection = translator.projection(attributes)?;
    let (names, _) = resolve_placeholders(true, &translator, names, None)?;
    Ok((Some(projection), names))
}
