//! Point-in-time recovery on the wire: UpdateContinuousBackups,
//! DescribeContinuousBackups and RestoreTableToPointInTime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::{Value, json};

use super::Context;
use super::tables::{IndexInput, billing_mode, describe, global_index, local_index};
use crate::kv::{ContinuousBackupsDescription, ContinuousBackupsStatus, PointInTimeRecoveryStatus};
use crate::server::error::WireError;
use crate::server::wire::{Output, parse, required, table_name};

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn description_json(description: &ContinuousBackupsDescription) -> Value {
    let pitr = &description.point_in_time_recovery_description;
    let mut recovery = json!({
        "PointInTimeRecoveryStatus": match pitr.point_in_time_recovery_status {
            PointInTimeRecoveryStatus::Enabled => "ENABLED",
            PointInTimeRecoveryStatus::Disabled => "DISABLED",
        },
    });
    if let Some(days) = pitr.recovery_period_in_days {
        recovery["RecoveryPeriodInDays"] = json!(days);
    }
    if let Some(time) = pitr.earliest_restorable_date_time {
        recovery["EarliestRestorableDateTime"] = json!(seconds(time));
    }
    if let Some(time) = pitr.latest_restorable_date_time {
        recovery["LatestRestorableDateTime"] = json!(seconds(time));
    }
    json!({
        "ContinuousBackupsStatus": match description.continuous_backups_status {
            ContinuousBackupsStatus::Enabled => "ENABLED",
            ContinuousBackupsStatus::Disabled => "DISABLED",
        },
        "PointInTimeRecoveryDescription": recovery,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Specification {
    point_in_time_recovery_enabled: Option<bool>,
    recovery_period_in_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContinuousBackupsInput {
    table_name: Option<String>,
    point_in_time_recovery_specification: Option<Specification>,
}

/// `DescribeContinuousBackups`.
pub fn describe_continuous_backups(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ContinuousBackupsInput = parse(body)?;
    let table = table_name(input.table_name, "tableName")?;
    let output = context.db.describe_continuous_backups(table).send()?;
    Ok(Output::new()
        .set(
            "ContinuousBackupsDescription",
            description_json(&output.continuous_backups_description),
        )
        .into_body())
}

/// `UpdateContinuousBackups`.
pub fn update_continuous_backups(context: &Context, body: &[u8]) -> Result<Vec<u8>, WireError> {
    let input: ContinuousBackupsInput = parse(body)?;
    let specification = required(
        input.point_in_time_recovery_specification,
        "pointInTimeRecoverySpecification",
    )?;
    let table = table_name(input.table_name, "tableName")?;
    let mut request = context.db.update_continuous_backups(table);
    if let Some(enabled) = specification.point_in_time_recovery_enabled {
        request = request.point_in_time_recovery_enabled(enabled);
    }
    if let Some(days) = specification.recovery_period_in_days {
        request = request.recovery_period_in_days(days);
    }
    let output = request.send()?;
    Ok(Output::new()
        .set(
            "ContinuousBackupsDescription",
            description_json(&output.continuous_backups_description),
        )
        .into_body())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RestoreInput {
    source_table_name: Option<String>,
    source_table_arn: Option<String>,
    target_table_name: Option<String>,
    restore_date_time: Option<f64>,
    use_latest_restorable_time: Option<bool>,
    billing_mode_override: Option<String>,
    global_secondary_index_override: Option<Vec<IndexInput>>,
    local_secondary_index_override: Option<Vec<IndexInput>>,
}

/// `RestoreTableToPointInTime` (the source by name or by ARN).
pub fn restore_table_to_point_in_time(
    context: &Context,
    body: &[u8],
) -> Result<Vec<u8>, WireError> {
    let input: RestoreInput = parse(body)?;
    let target = table_name(input.target_table_name, "targetTableName")?;
    let source = match (input.source_table_name, input.source_table_arn) {
        (Some(name), _) => table_name(Some(name), "sourceTableName")?,
        (None, Some(arn)) => {
            let name = arn.rsplit_once(":table/").map(|(_, n)| n.to_owned());
            table_name(name, "sourceTableArn")?
        }
        (None, None) => table_name(None, "sourceTableName")?,
    };
    let mut request = context.db.restore_table_to_point_in_time(source, target);
    if let Some(time) = input.restore_date_time {
        if !time.is_finite() || time < 0.0 {
            return Err(WireError::from(crate::kv::Error::InvalidRestoreTime(
                "Invalid RestoreDateTime".into(),
            )));
        }
        request = request.restore_date_time(UNIX_EPOCH + Duration::from_secs_f64(time));
    }
    if let Some(latest) = input.use_latest_restorable_time {
        request = request.use_latest_restorable_time(latest);
    }
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
