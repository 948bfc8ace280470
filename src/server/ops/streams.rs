//! Time to live and DynamoDB Streams on the wire: UpdateTimeToLive and
//! DescribeTimeToLive (DynamoDB's service), and ListStreams,
//! DescribeStream, GetShardIterator and GetRecords (the Streams service,
//! `DynamoDBStreams_20120810`, on the same port).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::tables::key_schema_json;
use crate::kv::{
    OperationType, Record, ShardIteratorType, StreamStatus, StreamViewType, TimeToLiveStatus,
};
use crate::server::error::WireError;
use crate::server::wire::{Output, choice, parse, required, table_name};

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn view_name(view: StreamViewType) -> &'static str {
    match view {
        StreamViewType::KeysOnly => "KEYS_ONLY",
        StreamViewType::NewImage => "NEW_IMAGE",
        StreamViewType::OldImage => "OLD_IMAGE",
        StreamViewType::NewAndOldImages => "NEW_AND_OLD_IMAGES",
    }
}

/// A limit parameter within `1..=max`.
fn limit(value: Option<i64>, field: &str, max: i64) -> Result<Option<usize>, WireError> {
    match value {
        None => Ok(None),
        Some(n) if (1..=max).contains(&n) => Ok(Some(n as usize)),
        Some(n) => Err(WireError::validation(format!(
            "1 validation error detected: Value '{n}' at '{field}' failed to satisfy constraint: \
             Member must have value {}",
            if n < 1 {
                "greater than or equal to 1".to_owned()
            } else {
                format!("less than or equal to {max}")
            }
        ))),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlSpecificationInput {
    enabled: Option<bool>,
    attribute_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlInput {
    table_name: Option<String>,
    time_to_live_specification: Option<TtlSpecificationInput>,
}

/// `UpdateTimeToLive`.
pub fn update_time_to_live(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TtlInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let spec = required(input.time_to_live_specification, "timeToLiveSpecification")?;
    let enabled = required(spec.enabled, "timeToLiveSpecification.enabled")?;
    let attribute = required(spec.attribute_name, "timeToLiveSpecification.attributeName")?;
    let output = context
        .db
        .update_time_to_live(table)
        .attribute_name(attribute)
        .enabled(enabled)
        .send()?;
    let spec = output.time_to_live_specification;
    Ok(Output::new()
        .set(
            "TimeToLiveSpecification",
            json!({"Enabled": spec.enabled, "AttributeName": spec.attribute_name}),
        )
        .into_body())
}

/// `DescribeTimeToLive`.
pub fn describe_time_to_live(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: TtlInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let description = context
        .db
        .describe_time_to_live(table)
        .send()?
        .time_to_live_description;
    let status = match description.time_to_live_status {
        TimeToLiveStatus::Enabling => "ENABLING",
        TimeToLiveStatus::Disabling => "DISABLING",
        TimeToLiveStatus::Enabled => "ENABLED",
        TimeToLiveStatus::Disabled => "DISABLED",
    };
    let mut out = json!({"TimeToLiveStatus": status});
    if let Some(name) = description.attribute_name {
        out["AttributeName"] = json!(name);
    }
    Ok(Output::new().set("TimeToLiveDescription", out).into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamsInput {
    table_name: Option<String>,
    stream_arn: Option<String>,
    limit: Option<i64>,
    exclusive_start_stream_arn: Option<String>,
    exclusive_start_shard_id: Option<String>,
    shard_id: Option<String>,
    shard_iterator_type: Option<String>,
    sequence_number: Option<String>,
    shard_iterator: Option<String>,
}

/// `ListStreams`.
pub fn list_streams(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: StreamsInput = parse(body)?;
    let mut request = context.db.list_streams();
    if let Some(table) = input.table_name {
        request = request.table_name(table_name(Some(table), "tableName")?);
    }
    if let Some(n) = limit(input.limit, "limit", 100)? {
        request = request.limit(n);
    }
    if let Some(arn) = input.exclusive_start_stream_arn {
        request = request.exclusive_start_stream_arn(arn);
    }
    let output = request.send()?;
    let streams: Vec<Value> = output
        .streams
        .iter()
        .map(|s| {
            json!({"StreamArn": s.stream_arn, "TableName": s.table_name, "StreamLabel": s.stream_label})
        })
        .collect();
    Ok(Output::new()
        .set("Streams", streams)
        .maybe("LastEvaluatedStreamArn", output.last_evaluated_stream_arn)
        .into_body())
}

/// `DescribeStream`.
pub fn describe_stream(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: StreamsInput = parse(body)?;
    let arn = required(input.stream_arn, "streamArn")?;
    let mut request = context.db.describe_stream(arn);
    if let Some(n) = limit(input.limit, "limit", 100)? {
        request = request.limit(n);
    }
    if let Some(shard) = input.exclusive_start_shard_id {
        request = request.exclusive_start_shard_id(shard);
    }
    let description = request.send()?.stream_description;
    let shards: Vec<Value> = description
        .shards
        .iter()
        .map(|shard| {
            let mut range = json!({
                "StartingSequenceNumber": shard.sequence_number_range.starting_sequence_number,
            });
            if let Some(end) = &shard.sequence_number_range.ending_sequence_number {
                range["EndingSequenceNumber"] = json!(end);
            }
            let mut out = json!({"ShardId": shard.shard_id, "SequenceNumberRange": range});
            if let Some(parent) = &shard.parent_shard_id {
                out["ParentShardId"] = json!(parent);
            }
            out
        })
        .collect();
    let status = match description.stream_status {
        StreamStatus::Enabling => "ENABLING",
        StreamStatus::Enabled => "ENABLED",
        StreamStatus::Disabling => "DISABLING",
        StreamStatus::Disabled => "DISABLED",
    };
    let mut out = json!({
        "StreamArn": description.stream_arn,
        "StreamLabel": description.stream_label,
        "StreamStatus": status,
        "StreamViewType": view_name(description.stream_view_type),
        "CreationRequestDateTime": seconds(description.creation_request_date_time),
        "TableName": description.table_name,
        "KeySchema": key_schema_json(&description.key_schema),
        "Shards": shards,
    });
    if let Some(last) = description.last_evaluated_shard_id {
        out["LastEvaluatedShardId"] = json!(last);
    }
    Ok(Output::new().set("StreamDescription", out).into_body())
}

/// `GetShardIterator`.
pub fn get_shard_iterator(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: StreamsInput = parse(body)?;
    let arn = required(input.stream_arn, "streamArn")?;
    let shard = required(input.shard_id, "shardId")?;
    let kind = choice(
        Some(required(input.shard_iterator_type, "shardIteratorType")?.as_str()),
        "shardIteratorType",
        &[
            ("TRIM_HORIZON", ShardIteratorType::TrimHorizon),
            ("LATEST", ShardIteratorType::Latest),
            ("AT_SEQUENCE_NUMBER", ShardIteratorType::AtSequenceNumber),
            (
                "AFTER_SEQUENCE_NUMBER",
                ShardIteratorType::AfterSequenceNumber,
            ),
        ],
    )?
    .unwrap_or(ShardIteratorType::TrimHorizon);
    let mut request = context.db.get_shard_iterator(arn, shard, kind);
    if let Some(sequence) = input.sequence_number {
        request = request.sequence_number(sequence);
    }
    let output = request.send()?;
    Ok(Output::new()
        .set("ShardIterator", output.shard_iterator)
        .into_body())
}

/// One record as GetRecords sends it (its members are camelCase on the
/// wire, unlike the rest of the API).
fn record_json(record: &Record) -> Value {
    let stream = &record.dynamodb;
    let mut dynamodb = json!({
        "ApproximateCreationDateTime": seconds(stream.approximate_creation_date_time).floor(),
        "Keys": stream.keys,
        "SequenceNumber": stream.sequence_number,
        "SizeBytes": stream.size_bytes,
        "StreamViewType": view_name(stream.stream_view_type),
    });
    if let Some(image) = &stream.new_image {
        dynamodb["NewImage"] = json!(image);
    }
    if let Some(image) = &stream.old_image {
        dynamodb["OldImage"] = json!(image);
    }
    let mut out = json!({
        "eventID": record.event_id,
        "eventName": match record.event_name {
            OperationType::Insert => "INSERT",
            OperationType::Modify => "MODIFY",
            OperationType::Remove => "REMOVE",
        },
        "eventVersion": record.event_version,
        "eventSource": record.event_source,
        "awsRegion": "local",
        "dynamodb": dynamodb,
    });
    if let Some(identity) = &record.user_identity {
        out["userIdentity"] =
            json!({"PrincipalId": identity.principal_id, "Type": identity.r#type});
    }
    out
}

/// `GetRecords`.
pub fn get_records(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: StreamsInput = parse(body)?;
    let iterator = required(input.shard_iterator, "shardIterator")?;
    let mut request = context.db.get_records(iterator);
    if let Some(n) = limit(input.limit, "limit", 1000)? {
        request = request.limit(n);
    }
    let output = request.send()?;
    let records: Vec<Value> = output.records.iter().map(record_json).collect();
    Ok(Output::new()
        .set("Records", records)
        .maybe("NextShardIterator", output.next_shard_iterator)
        .into_body())
}
