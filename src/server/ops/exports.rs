//! Table export and import on the wire: ExportTableToPointInTime (into a
//! bucket of the same database's object store) and ImportTable (a new table
//! from objects of it). Both run to completion within the call, so the
//! description they return is already COMPLETED or FAILED.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::tables::{CreateTableInput, create_table_request, describe};
use crate::kv::{
    ExportDescription, ExportStatus, ImportStatus, ImportTableDescription, InputCompressionType,
    InputFormat,
};
use crate::server::error::WireError;
use crate::server::wire::{Output, choice, parse, required};

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
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
    s3_bucket: Option<String>,
    s3_prefix: Option<String>,
    export_format: Option<String>,
    export_type: Option<String>,
}

fn export_json(description: &ExportDescription, table_id: &str) -> Value {
    json!({
        "ExportArn": description.export_arn,
        "ExportStatus": match description.export_status {
            ExportStatus::Completed => "COMPLETED",
            ExportStatus::Failed => "FAILED",
        },
        "StartTime": seconds(description.export_time),
        "EndTime": seconds(description.export_time),
        "ExportTime": seconds(description.export_time),
        "ExportManifest": description.export_manifest,
        "TableArn": description.table_arn,
        "TableId": table_id,
        "S3Bucket": description.s3_bucket,
        "S3Prefix": description.s3_prefix,
        "S3SseAlgorithm": "AES256",
        "ExportFormat": "DYNAMODB_JSON",
        "ExportType": "FULL_EXPORT",
        "BilledSizeBytes": description.billed_size_bytes,
        "ItemCount": description.item_count,
        "FailureCode": description.failure_code,
        "FailureMessage": description.failure_message,
    })
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
    let table_id = context.db.describe_table(&table).send()?.table.table_id;
    let mut request = context
        .db
        .export_table_to_point_in_time(&table)
        .s3_bucket(bucket);
    if let Some(prefix) = input.s3_prefix {
        request = request.s3_prefix(prefix);
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
        .set(
            "ExportDescription",
            export_json(&output.export_description, &table_id),
        )
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
    s3_bucket_source: Option<BucketSourceInput>,
    input_format: Option<String>,
    input_format_options: Option<FormatOptionsInput>,
    input_compression_type: Option<String>,
    table_creation_parameters: Option<CreateTableInput>,
}

fn import_json(description: &ImportTableDescription, format: &str, compression: &str) -> Value {
    let table = description.table_description.as_ref();
    json!({
        "ImportArn": description.import_arn,
        "ImportStatus": match description.import_status {
            ImportStatus::Completed => "COMPLETED",
            ImportStatus::Failed => "FAILED",
        },
        "TableArn": table.map(|t| t.table_arn.clone()),
        "TableId": table.map(|t| t.table_id.clone()),
        "S3BucketSource": {
            "S3Bucket": description.s3_bucket,
            "S3KeyPrefix": description.s3_key_prefix,
        },
        "InputFormat": format,
        "InputCompressionType": compression,
        "ProcessedItemCount": description.processed_item_count,
        "ProcessedSizeBytes": description.processed_size_bytes,
        "ImportedItemCount": description.imported_item_count,
        "ErrorCount": description.error_count,
        "FailureCode": description.failure_code,
        "FailureMessage": description.failure_message,
        "TableDescription": table.map(describe),
    })
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
    let mut parameters = required(input.table_creation_parameters, "tableCreationParameters")?;
    let (_, table) = create_table_request(context, &mut parameters)?;
    let mut request = context
        .db
        .import_table()
        .s3_bucket_source(bucket, source.s3_key_prefix.unwrap_or_default())
        .input_format(format)
        .input_compression_type(compression)
        .table_creation_parameters(table);
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
            import_json(
                &output.import_table_description,
                &format_name,
                &compression_name,
            ),
        )
        .into_body())
}
