//! Table export and import on the wire: ExportTableToPointInTime (into a
//! bucket of the same database's object store), ImportTable (a new table
//! from objects of it), and DescribeExport, ListExports, DescribeImport,
//! ListImports over the descriptions kv keeps of both. Exports and imports
//! run to completion within the call, so the description they return is
//! already COMPLETED or FAILED; a poller sees the same, durably.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::tables::{
    CreateTableInput, create_table_request, describe, key_schema_json, projection_json, scalar_name,
};
use crate::kv::{
    BillingMode, ExportDescription, ExportFormat, ExportStatus, ExportType, ImportStatus,
    ImportTableDescription, InputCompressionType, InputFormat, ProvisionedThroughput,
    TableCreationParameters,
};
use crate::server::error::WireError;
use crate::server::wire::{Output, choice, parse, required};

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `value` without its null members, at any depth: DynamoDB leaves an
/// absent member out, and SDKs refuse a null where a timestamp goes.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(values) => Value::Array(values.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The table name in a table ARN (`...:table/<name>`), or the name itself.
fn table_of(arn: &str) -> &str {
    arn.rsplit_once(":table/")
        .map_or(arn, |(_, rest)| rest.split('/').next().unwrap_or(rest))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExportInput {
    table_arn: Option<String>,
    export_time: Option<f64>,
    client_token: Option<String>,
    s3_bucket: Option<String>,
    s3_prefix: Option<String>,
    export_format: Option<String>,
    export_type: Option<String>,
}

fn export_status(status: ExportStatus) -> &'static str {
    match status {
        ExportStatus::InProgress => "IN_PROGRESS",
        ExportStatus::Completed => "COMPLETED",
        ExportStatus::Failed => "FAILED",
    }
}

fn export_type(export_type: ExportType) -> &'static str {
    match export_type {
        ExportType::FullExport => "FULL_EXPORT",
    }
}

/// An `ExportDescription` as DynamoDB sends it.
fn export_json(description: &ExportDescription) -> Value {
    without_nulls(json!({
        "ExportArn": description.export_arn,
        "ExportStatus": export_status(description.export_status),
        "StartTime": seconds(description.start_time),
        "EndTime": description.end_time.map(seconds),
        "ExportTime": seconds(description.export_time),
        "ExportManifest": description.export_manifest,
        "TableArn": description.table_arn,
        "TableId": description.table_id,
        "ClientToken": description.client_token,
        "S3Bucket": description.s3_bucket,
        "S3Prefix": description.s3_prefix,
        "S3SseAlgorithm": description.s3_sse_algorithm,
        "ExportFormat": match description.export_format {
            ExportFormat::DynamoDbJson => "DYNAMODB_JSON",
        },
        "ExportType": export_type(description.export_type),
        "BilledSizeBytes": description.billed_size_bytes,
        "ItemCount": description.item_count,
        "FailureCode": description.failure_code,
        "FailureMessage": description.failure_message,
    }))
}

/// `ExportTableToPointInTime`: of the table as it is now, or at
/// `ExportTime` (the table needs point-in-time recovery and the time must
/// lie in its window).
pub fn export_table_to_point_in_time(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ExportInput = parse(body)?;
    let arn = required(input.table_arn, "tableArn")?;
    let bucket = required(input.s3_bucket, "s3Bucket")?;
    choice(
        input.export_format.as_deref(),
        "exportFormat",
        &[("DYNAMODB_JSON", ())],
    )?;
    choice(
        input.export_type.as_deref(),
        "exportType",
        &[("FULL_EXPORT", ())],
    )?;
    let table = table_of(&arn).to_owned();
    let mut request = context
        .db
        .export_table_to_point_in_time(&table)
        .s3_bucket(bucket);
    if let Some(prefix) = input.s3_prefix {
        request = request.s3_prefix(prefix);
    }
    if let Some(token) = input.client_token {
        request = request.client_token(token);
    }
    if let Some(time) = input.export_time {
        if !time.is_finite() || time < 0.0 {
            return Err(WireError::from(crate::kv::Error::InvalidRestoreTime(
                "Invalid ExportTime".into(),
            )));
        }
        request = request.export_time(UNIX_EPOCH + Duration::from_secs_f64(time));
    }
    let output = request.send()?;
    Ok(Output::new()
        .set("ExportDescription", export_json(&output.export_description))
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeExportInput {
    export_arn: Option<String>,
}

/// `DescribeExport`.
pub fn describe_export(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: DescribeExportInput = parse(body)?;
    let arn = required(input.export_arn, "exportArn")?;
    let output = context.db.describe_export(arn).send()?;
    Ok(Output::new()
        .set("ExportDescription", export_json(&output.export_description))
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListExportsInput {
    table_arn: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// A page size as sent, saturated into the `i32` the Rust API takes (the
/// range check then words the error with the saturated value).
fn page_size(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}

/// `ListExports`: newest first, `MaxResults` (1–25) per page.
pub fn list_exports(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ListExportsInput = parse(body)?;
    let mut request = context.db.list_exports();
    if let Some(arn) = input.table_arn {
        request = request.table_arn(arn);
    }
    if let Some(max) = input.max_results {
        request = request.max_results(page_size(max));
    }
    if let Some(token) = input.next_token {
        request = request.next_token(token);
    }
    let output = request.send()?;
    let summaries: Vec<Value> = output
        .export_summaries
        .iter()
        .map(|summary| {
            json!({
                "ExportArn": summary.export_arn,
                "ExportStatus": export_status(summary.export_status),
                "ExportType": export_type(summary.export_type),
            })
        })
        .collect();
    Ok(Output::new()
        .set("ExportSummaries", summaries)
        .maybe("NextToken", output.next_token)
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BucketSourceInput {
    s3_bucket: Option<String>,
    s3_key_prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CsvInput {
    delimiter: Option<String>,
    header_list: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FormatOptionsInput {
    csv: Option<CsvInput>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ImportInput {
    client_token: Option<String>,
    s3_bucket_source: Option<BucketSourceInput>,
    input_format: Option<String>,
    input_format_options: Option<FormatOptionsInput>,
    input_compression_type: Option<String>,
    table_creation_parameters: Option<CreateTableInput>,
}

fn import_status(status: ImportStatus) -> &'static str {
    match status {
        ImportStatus::InProgress => "IN_PROGRESS",
        ImportStatus::Completed => "COMPLETED",
        ImportStatus::Failed => "FAILED",
    }
}

fn input_format(format: InputFormat) -> &'static str {
    match format {
        InputFormat::DynamoDbJson => "DYNAMODB_JSON",
        InputFormat::Csv => "CSV",
    }
}

fn bucket_source_json(bucket: &str, key_prefix: Option<&str>) -> Value {
    json!({"S3Bucket": bucket, "S3KeyPrefix": key_prefix})
}

/// `TableCreationParameters` as DynamoDB sends them back.
fn creation_json(parameters: &TableCreationParameters) -> Value {
    let throughput = |t: &ProvisionedThroughput| json!({"ReadCapacityUnits": t.read_capacity_units, "WriteCapacityUnits": t.write_capacity_units});
    let indexes: Vec<Value> = parameters
        .global_secondary_indexes
        .iter()
        .map(|index| {
            json!({
                "IndexName": index.index_name,
                "KeySchema": key_schema_json(&index.key_schema),
                "Projection": projection_json(&index.projection),
                "ProvisionedThroughput": index.provisioned_throughput.as_ref().map(throughput),
            })
        })
        .collect();
    json!({
        "TableName": parameters.table_name,
        "AttributeDefinitions": parameters.attribute_definitions.iter().map(|a| json!({
            "AttributeName": a.attribute_name,
            "AttributeType": scalar_name(a.attribute_type),
        })).collect::<Vec<_>>(),
        "KeySchema": key_schema_json(&parameters.key_schema),
        "BillingMode": match parameters.billing_mode {
            BillingMode::PayPerRequest => "PAY_PER_REQUEST",
            BillingMode::Provisioned => "PROVISIONED",
        },
        "ProvisionedThroughput": parameters.provisioned_throughput.as_ref().map(throughput),
        "GlobalSecondaryIndexes": (!indexes.is_empty()).then_some(indexes),
    })
}

/// An `ImportTableDescription` as DynamoDB sends it (plus, in
/// ImportTable's answer, the created table's `TableDescription`).
fn import_json(description: &ImportTableDescription) -> Value {
    without_nulls(json!({
        "ImportArn": description.import_arn,
        "ImportStatus": import_status(description.import_status),
        "TableArn": description.table_arn,
        "TableId": description.table_id,
        "ClientToken": description.client_token,
        "S3BucketSource": bucket_source_json(&description.s3_bucket, description.s3_key_prefix.as_deref()),
        "InputFormat": input_format(description.input_format),
        "InputCompressionType": match description.input_compression_type {
            InputCompressionType::None => "NONE",
            InputCompressionType::Gzip => "GZIP",
        },
        "TableCreationParameters": creation_json(&description.table_creation_parameters),
        "StartTime": seconds(description.start_time),
        "EndTime": description.end_time.map(seconds),
        "ProcessedItemCount": description.processed_item_count,
        "ProcessedSizeBytes": description.processed_size_bytes,
        "ImportedItemCount": description.imported_item_count,
        "ErrorCount": description.error_count,
        "FailureCode": description.failure_code,
        "FailureMessage": description.failure_message,
        "TableDescription": description.table_description.as_ref().map(describe),
    }))
}

/// `ImportTable`.
pub fn import_table(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ImportInput = parse(body)?;
    let source = required(input.s3_bucket_source, "s3BucketSource")?;
    let bucket = required(source.s3_bucket, "s3BucketSource.s3Bucket")?;
    let format_name = required(input.input_format, "inputFormat")?;
    let format = choice(
        Some(format_name.as_str()),
        "inputFormat",
        &[
            ("DYNAMODB_JSON", InputFormat::DynamoDbJson),
            ("CSV", InputFormat::Csv),
        ],
    )?
    .unwrap_or_default();
    let compression_name = input
        .input_compression_type
        .unwrap_or_else(|| "NONE".to_owned());
    let compression = choice(
        Some(compression_name.as_str()),
        "inputCompressionType",
        &[
            ("NONE", InputCompressionType::None),
            ("GZIP", InputCompressionType::Gzip),
        ],
    )?
    .unwrap_or_default();
    let client_token = input.client_token;
    let mut parameters = required(input.table_creation_parameters, "tableCreationParameters")?;
    let (_, table) = create_table_request(context, &mut parameters)?;
    let mut request = context
        .db
        .import_table()
        .s3_bucket_source(bucket, source.s3_key_prefix.unwrap_or_default())
        .input_format(format)
        .input_compression_type(compression)
        .table_creation_parameters(table);
    if let Some(token) = client_token {
        request = request.client_token(token);
    }
    if let Some(csv) = input.input_format_options.and_then(|o| o.csv) {
        if let Some(delimiter) = csv.delimiter {
            let mut chars = delimiter.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => request = request.csv_delimiter(c),
                _ => {
                    return Err(WireError::validation(
                        "The CSV delimiter must be one character",
                    ));
                }
            }
        }
        if let Some(header) = csv.header_list {
            request = request.csv_header(header);
        }
    }
    let output = request.send()?;
    Ok(Output::new()
        .set(
            "ImportTableDescription",
            import_json(&output.import_table_description),
        )
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeImportInput {
    import_arn: Option<String>,
}

/// `DescribeImport`.
pub fn describe_import(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: DescribeImportInput = parse(body)?;
    let arn = required(input.import_arn, "importArn")?;
    let output = context.db.describe_import(arn).send()?;
    Ok(Output::new()
        .set(
            "ImportTableDescription",
            import_json(&output.import_table_description),
        )
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListImportsInput {
    table_arn: Option<String>,
    page_size: Option<i64>,
    next_token: Option<String>,
}

/// `ListImports`: newest first, `PageSize` (1–25) per page.
pub fn list_imports(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ListImportsInput = parse(body)?;
    let mut request = context.db.list_imports();
    if let Some(arn) = input.table_arn {
        request = request.table_arn(arn);
    }
    if let Some(size) = input.page_size {
        request = request.page_size(page_size(size));
    }
    if let Some(token) = input.next_token {
        request = request.next_token(token);
    }
    let output = request.send()?;
    let summaries: Vec<Value> = output
        .import_summary_list
        .iter()
        .map(|summary| {
            without_nulls(json!({
                "ImportArn": summary.import_arn,
                "ImportStatus": import_status(summary.import_status),
                "TableArn": summary.table_arn,
                "S3BucketSource": bucket_source_json(&summary.s3_bucket, summary.s3_key_prefix.as_deref()),
                "InputFormat": input_format(summary.input_format),
                "StartTime": seconds(summary.start_time),
                "EndTime": summary.end_time.map(seconds),
            }))
        })
        .collect();
    Ok(Output::new()
        .set("ImportSummaryList", summaries)
        .maybe("NextToken", output.next_token)
        .into_body())
}
