//! On-demand backups on the wire: CreateBackup, DescribeBackup,
//! ListBackups, DeleteBackup and RestoreTableFromBackup.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::tables::{
    IndexInput, billing_mode, describe, global_index, key_schema_json, local_index,
    projection_json, throughput_json,
};
use crate::kv::{BackupDescription, BackupDetails, BackupStatus, BillingMode};
use crate::server::error::WireError;
use crate::server::wire::{Output, parse, required, table_name};

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn details_json(details: &BackupDetails) -> Value {
    json!({
        "BackupArn": details.backup_arn,
        "BackupName": details.backup_name,
        "BackupSizeBytes": details.backup_size_bytes,
        "BackupStatus": match details.backup_status {
            BackupStatus::Creating => "CREATING",
            BackupStatus::Deleted => "DELETED",
            BackupStatus::Available => "AVAILABLE",
        },
        "BackupType": "USER",
        "BackupCreationDateTime": seconds(details.backup_creation_date_time),
    })
}

fn description_json(description: &BackupDescription) -> Value {
    let source = &description.source_table_details;
    let features = &description.source_table_feature_details;
    let mut feature_json = serde_json::Map::new();
    if !features.local_secondary_indexes.is_empty() {
        let indexes: Vec<Value> = features
            .local_secondary_indexes
            .iter()
            .map(|index| {
                json!({
                    "IndexName": index.index_name,
                    "KeySchema": key_schema_json(&index.key_schema),
                    "Projection": projection_json(&index.projection),
                })
            })
            .collect();
        feature_json.insert("LocalSecondaryIndexes".into(), Value::Array(indexes));
    }
    if !features.global_secondary_indexes.is_empty() {
        let indexes: Vec<Value> = features
            .global_secondary_indexes
            .iter()
            .map(|index| {
                json!({
                    "IndexName": index.index_name,
                    "KeySchema": key_schema_json(&index.key_schema),
                    "Projection": projection_json(&index.projection),
                    "ProvisionedThroughput": throughput_json(index.provisioned_throughput.as_ref()),
                })
            })
            .collect();
        feature_json.insert("GlobalSecondaryIndexes".into(), Value::Array(indexes));
    }
    json!({
        "BackupDetails": details_json(&description.backup_details),
        "SourceTableDetails": {
            "TableName": source.table_name,
            "TableId": source.table_id,
            "TableArn": source.table_arn,
            "KeySchema": key_schema_json(&source.key_schema),
            "TableCreationDateTime": seconds(source.table_creation_date_time),
            "ItemCount": source.item_count,
            "TableSizeBytes": source.table_size_bytes,
            "BillingMode": match source.billing_mode {
                BillingMode::PayPerRequest => "PAY_PER_REQUEST",
                BillingMode::Provisioned => "PROVISIONED",
            },
        },
        "SourceTableFeatureDetails": feature_json,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BackupInput {
    table_name: Option<String>,
    backup_name: Option<String>,
    backup_arn: Option<String>,
}

/// `CreateBackup`.
pub fn create_backup(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: BackupInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let name = table_name(input.backup_name, "backupName")?;
    let output = context.db.create_backup(table).backup_name(name).send()?;
    Ok(Output::new()
        .set("BackupDetails", details_json(&output.backup_details))
        .into_body())
}

/// `DescribeBackup`.
pub fn describe_backup(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: BackupInput = parse(body)?;
    let arn = required(input.backup_arn, "backupArn")?;
    let output = context.db.describe_backup(arn).send()?;
    Ok(Output::new()
        .set(
            "BackupDescription",
            description_json(&output.backup_description),
        )
        .into_body())
}

/// `DeleteBackup`.
pub fn delete_backup(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: BackupInput = parse(body)?;
    let arn = required(input.backup_arn, "backupArn")?;
    let output = context.db.delete_backup(arn).send()?;
    Ok(Output::new()
        .set(
            "BackupDescription",
            description_json(&output.backup_description),
        )
        .into_body())
}

/// `ListBackups` (one page: nimbus returns every backup at once).
pub fn list_backups(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: BackupInput = parse(body)?;
    let mut request = context.db.list_backups();
    if let Some(table) = input.table_name {
        request = request.table_name(table_name(Some(table), "tableName")?);
    }
    let output = request.send()?;
    let summaries: Vec<Value> = output
        .backup_summaries
        .iter()
        .map(|summary| {
            let mut value = details_json(&summary.backup_details);
            value["TableName"] = json!(summary.table_name);
            value["TableArn"] = json!(summary.table_arn);
            value
        })
        .collect();
    Ok(Output::new().set("BackupSummaries", summaries).into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreInput {
    target_table_name: Option<String>,
    backup_arn: Option<String>,
    billing_mode_override: Option<String>,
    global_secondary_index_override: Option<Vec<IndexInput>>,
    local_secondary_index_override: Option<Vec<IndexInput>>,
}

/// `RestoreTableFromBackup`.
pub fn restore_table_from_backup(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: RestoreInput = parse(body)?;
    let target = table_name(input.target_table_name, "targetTableName")?;
    let arn = required(input.backup_arn, "backupArn")?;
    let mut request = context.db.restore_table_from_backup(target).backup_arn(arn);
    if let Some(mode) = billing_mode(input.billing_mode_override.as_deref())? {
        request = request.billing_mode_override(mode);
    }
    if let Some(indexes) = input.global_secondary_index_override {
        let indexes = indexes
            .into_iter()
            .map(global_index)
            .collect::<Result<Vec<_>, _>>()?;
        request = request.global_secondary_index_override(indexes);
    }
    if let Some(indexes) = input.local_secondary_index_override {
        let indexes = indexes
            .into_iter()
            .map(local_index)
            .collect::<Result<Vec<_>, _>>()?;
        request = request.local_secondary_index_override(indexes);
    }
    let output = request.send()?;
    Ok(Output::new()
        .set("TableDescription", describe(&output.table_description))
        .into_body())
}
