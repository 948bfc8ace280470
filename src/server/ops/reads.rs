//! Query and Scan on the wire, legacy `KeyConditions`, `QueryFilter`,
//! `ScanFilter` and `AttributesToGet` included.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Context, apply_placeholders, resolve_placeholders};
use crate::kv::Select;
use crate::server::error::WireError;
use crate::server::legacy::{Condition, Translator, check_not_mixed};
use crate::server::wire::{
    Names, Output, Values, consumed_capacity, parse, return_capacity, select, table_name,
};
use crate::value::Item;

/// The members Query and Scan share (Scan ignores the Query-only ones,
/// which serde leaves `None`).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReadInput {
    table_name: Option<String>,
    index_name: Option<String>,
    key_condition_expression: Option<String>,
    key_conditions: Option<BTreeMap<String, Condition>>,
    filter_expression: Option<String>,
    query_filter: Option<BTreeMap<String, Condition>>,
    scan_filter: Option<BTreeMap<String, Condition>>,
    conditional_operator: Option<String>,
    projection_expression: Option<String>,
    attributes_to_get: Option<Vec<String>>,
    expression_attribute_names: Option<Names>,
    expression_attribute_values: Option<Values>,
    scan_index_forward: Option<bool>,
    limit: Option<i64>,
    exclusive_start_key: Option<Item>,
    select: Option<String>,
    consistent_read: Option<bool>,
    segment: Option<i64>,
    total_segments: Option<i64>,
    return_consumed_capacity: Option<String>,
}

/// The expressions of a read after legacy translation.
struct ReadExpressions {
    key_condition: Option<String>,
    filter: Option<String>,
    projection: Option<String>,
    names: Option<Names>,
    values: Option<Values>,
}

impl ReadInput {
    fn expressions(&mut self, filter_member: &'static str) -> Result<ReadExpressions, WireError> {
        // Each operation reads only its own member (DynamoDB ignores
        // members an operation does not define).
        let legacy_filter = if filter_member == "QueryFilter" {
            self.query_filter.take()
        } else {
            self.scan_filter.take()
        };
        let mut legacy = Vec::new();
        if self.key_conditions.is_some() {
            legacy.push("KeyConditions");
        }
        if legacy_filter.is_some() {
            legacy.push(filter_member);
        }
        if self.attributes_to_get.is_some() {
            legacy.push("AttributesToGet");
        }
        if self.conditional_operator.is_some() && legacy_filter.is_none() {
            legacy.push("ConditionalOperator");
        }
        let mut modern = Vec::new();
        for (member, present) in [
            (
                "KeyConditionExpression",
                self.key_condition_expression.is_some(),
            ),
            ("FilterExpression", self.filter_expression.is_some()),
            ("ProjectionExpression", self.projection_expression.is_some()),
        ] {
            if present {
                modern.push(member);
            }
        }
        check_not_mixed(&legacy, &modern)?;
        let mut translator = Translator::new();
        let mut expressions = ReadExpressions {
            key_condition: self.key_condition_expression.take(),
            filter: self.filter_expression.take(),
            projection: self.projection_expression.take(),
            names: None,
            values: None,
        };
        if let Some(conditions) = &self.key_conditions {
            expressions.key_condition = Some(translator.key_conditions(conditions)?);
        }
        if let Some(filter) = &legacy_filter {
            expressions.filter =
                Some(translator.conditions(filter, self.conditional_operator.as_deref())?)
                    .filter(|text| !text.is_empty());
        }
        if let Some(attributes) = &self.attributes_to_get {
            expressions.projection = Some(translator.projection(attributes)?);
        }
        (expressions.names, expressions.values) = resolve_placeholders(
            !legacy.is_empty(),
            &translator,
            self.expression_attribute_names.take(),
            self.expression_attribute_values.take(),
        )?;
        Ok(expressions)
    }
}

/// A limit of 1 or more, as `usize`.
fn limit_of(
    limit: Option<i64>,
    message: impl FnOnce(i64) -> String,
) -> Result<Option<usize>, WireError> {
    match limit {
        Some(value) if value < 1 => Err(WireError::validation(message(value))),
        Some(value) => Ok(Some(usize::try_from(value).unwrap_or(usize::MAX))),
        None => Ok(None),
    }
}

/// The answer of a Query or Scan page.
fn page_output(
    items: Vec<Item>,
    count: usize,
    scanned_count: usize,
    last_evaluated_key: Option<Item>,
    capacity: Option<crate::kv::ConsumedCapacity>,
    select: Option<Select>,
) -> Vec<u8> {
    let mut output = Output::new();
    if select != Some(Select::Count) {
        output = output.set("Items", items);
    }
    output
        .set("Count", count)
        .set("ScannedCount", scanned_count)
        .maybe("LastEvaluatedKey", last_evaluated_key)
        .maybe("ConsumedCapacity", capacity.as_ref().map(consumed_capacity))
        .into_body()
}

/// `Query`.
pub fn query(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut input: ReadInput = parse(body)?;
    let table = table_name(input.table_name.take(), "tableName")?;
    if let Some(index) = input.index_name.take() {
        input.index_name = Some(table_name(Some(index), "indexName")?);
    }
    let selected = select(input.select.as_deref())?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let limit = limit_of(input.limit, |_| {
        "1 validation error detected: Value at 'Limit' failed to satisfy constraint: Member \
         must have value greater than or equal to 1"
            .to_owned()
    })?;
    let expressions = input.expressions("QueryFilter")?;
    let mut request = context
        .db
        .query(table)
        .scan_index_forward(input.scan_index_forward.unwrap_or(true))
        .consistent_read(input.consistent_read.unwrap_or(false))
        .return_consumed_capacity(capacity);
    if let Some(index) = input.index_name {
        request = request.index_name(index);
    }
    if let Some(key_condition) = expressions.key_condition {
        request = request.key_condition_expression(key_condition);
    }
    if let Some(filter) = expressions.filter {
        request = request.filter_expression(filter);
    }
    if let Some(projection) = expressions.projection {
        request = request.projection_expression(projection);
    }
    if let Some(limit) = limit {
        request = request.limit(limit);
    }
    if let Some(start) = input.exclusive_start_key {
        request = request.exclusive_start_key(start);
    }
    if let Some(selected) = selected {
        request = request.select(selected);
    }
    let request = apply_placeholders!(request, expressions.names, expressions.values);
    let output = request.send()?;
    Ok(page_output(
        output.items,
        output.count,
        output.scanned_count,
        output.last_evaluated_key,
        output.consumed_capacity,
        selected,
    ))
}

/// `Scan`.
pub fn scan(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut input: ReadInput = parse(body)?;
    let table = table_name(input.table_name.take(), "tableName")?;
    if let Some(index) = input.index_name.take() {
        input.index_name = Some(table_name(Some(index), "indexName")?);
    }
    let selected = select(input.select.as_deref())?;
    let capacity = return_capacity(input.return_consumed_capacity.as_deref())?;
    let limit = limit_of(input.limit, |value| {
        format!(
            "1 validation error detected: Value '{value}' at 'limit' failed to satisfy \
             constraint: Member must have value greater than or equal to 1"
        )
    })?;
    let segment = segment_of(input.segment, "segment", 0)?;
    let total_segments = segment_of(input.total_segments, "totalSegments", 1)?;
    let expressions = input.expressions("ScanFilter")?;
    let mut request = context
        .db
        .scan(table)
        .consistent_read(input.consistent_read.unwrap_or(false))
        .return_consumed_capacity(capacity);
    if let Some(index) = input.index_name {
        request = request.index_name(index);
    }
    if let Some(filter) = expressions.filter {
        request = request.filter_expression(filter);
    }
    if let Some(projection) = expressions.projection {
        request = request.projection_expression(projection);
    }
    if let Some(limit) = limit {
        request = request.limit(limit);
    }
    if let Some(start) = input.exclusive_start_key {
        request = request.exclusive_start_key(start);
    }
    if let Some(selected) = selected {
        request = request.select(selected);
    }
    if let Some(segment) = segment {
        request = request.segment(segment);
    }
    if let Some(total) = total_segments {
        request = request.total_segments(total);
    }
    let request = apply_placeholders!(request, expressions.names, expressions.values);
    let output = request.send()?;
    Ok(page_output(
        output.items,
        output.count,
        output.scanned_count,
        output.last_evaluated_key,
        output.consumed_capacity,
        selected,
    ))
}

/// `Segment` or `TotalSegments`: at least `minimum`, at most 1,000,000.
fn segment_of(value: Option<i64>, field: &str, minimum: i64) -> Result<Option<u32>, WireError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if value < minimum {
        return Err(WireError::validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
             constraint: Member must have value greater than or equal to {minimum}"
        )));
    }
    u32::try_from(value).map(Some).map_err(|_| {
        WireError::validation(format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
             constraint: Member must have value less than or equal to 1000000"
        ))
    })
}
