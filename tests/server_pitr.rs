//! Point-in-time recovery over raw HTTP: UpdateContinuousBackups,
//! DescribeContinuousBackups and RestoreTableToPointInTime answer with
//! DynamoDB's shapes and errors, and match the Rust API on the same
//! database (with a manual clock, so restore times are exact).
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod server_client;

use std::time::{Duration, UNIX_EPOCH};

use nimbus::server::ServerOptions;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};
use serde_json::json;
use server_client::{Client, create_table};

const START_SECS: u64 = 1_800_000_000;

#[test]
fn continuous_backups_and_point_in_time_restores_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(START_SECS));
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default()
            .clock(clock.clone())
            .background_threads(false),
    )
    .unwrap();
    let mut client = Client::start_with(db.clone(), ServerOptions::default());
    create_table(&mut client, "Music", false);

    let described = client.ok("DescribeContinuousBackups", json!({"TableName": "Music"}));
    assert_eq!(
        described["ContinuousBackupsDescription"],
        json!({
            "ContinuousBackupsStatus": "ENABLED",
            "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"}
        })
    );
    client.fails(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "Music", "TargetTableName": "Copy", "UseLatestRestorableTime": true}),
        "PointInTimeRecoveryUnavailableException",
    );
    client.fails(
        "UpdateContinuousBackups",
        json!({"TableName": "Music", "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 40}}),
        "ValidationException",
    );
    client.fails(
        "UpdateContinuousBackups",
        json!({"TableName": "Music"}),
        "ValidationException",
    );
    client.fails(
        "DescribeContinuousBackups",
        json!({"TableName": "Missing"}),
        "TableNotFoundException",
    );
    let updated = client.ok(
        "UpdateContinuousBackups",
        json!({"TableName": "Music", "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": true, "RecoveryPeriodInDays": 7}}),
    );
    let recovery = &updated["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"];
    assert_eq!(recovery["PointInTimeRecoveryStatus"], "ENABLED");
    assert_eq!(recovery["RecoveryPeriodInDays"], 7);
    assert_eq!(
        recovery["EarliestRestorableDateTime"],
        json!(START_SECS as f64)
    );
    assert_eq!(
        recovery["LatestRestorableDateTime"],
        json!(START_SECS as f64)
    );

    clock.advance(Duration::from_secs(10));
    client.ok(
        "PutItem",
        json!({"TableName": "Music", "Item": {"pk": {"S": "Acme"}, "n": {"N": "1"}}}),
    );
    clock.advance(Duration::from_secs(10));
    client.ok(
        "PutItem",
        json!({"TableName": "Music", "Item": {"pk": {"S": "Acme"}, "n": {"N": "2"}}}),
    );
    client.ok(
        "PutItem",
        json!({"TableName": "Music", "Item": {"pk": {"S": "Zed"}}}),
    );

    let restored = client.ok(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "Music", "TargetTableName": "AtTen",
               "RestoreDateTime": (START_SECS + 15) as f64}),
    );
    assert_eq!(restored["TableDescription"]["TableName"], "AtTen");
    assert_eq!(restored["TableDescription"]["TableStatus"], "ACTIVE");
    assert_eq!(restored["TableDescription"]["ItemCount"], 1);
    let item = client.ok(
        "GetItem",
        json!({"TableName": "AtTen", "Key": {"pk": {"S": "Acme"}}}),
    );
    assert_eq!(item["Item"]["n"], json!({"N": "1"}));

    let arn =
        client.ok("DescribeTable", json!({"TableName": "Music"}))["Table"]["TableArn"].clone();
    let latest = client.ok(
        "RestoreTableToPointInTime",
        json!({"SourceTableArn": arn, "TargetTableName": "Latest",
               "UseLatestRestorableTime": true}),
    );
    assert_eq!(latest["TableDescription"]["ItemCount"], 2);
    // The Rust API sees the same tables.
    assert_eq!(
        db.describe_table("Latest").send().unwrap().table.item_count,
        2
    );

    client.fails(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "Music", "TargetTableName": "Early",
               "RestoreDateTime": (START_SECS - 1) as f64}),
        "InvalidRestoreTimeException",
    );
    client.fails(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "Music", "TargetTableName": "AtTen",
               "UseLatestRestorableTime": true}),
        "TableAlreadyExistsException",
    );
    client.fails(
        "RestoreTableToPointInTime",
        json!({"SourceTableName": "Nope", "TargetTableName": "X1x",
               "UseLatestRestorableTime": true}),
        "TableNotFoundException",
    );
    let disabled = client.ok(
        "UpdateContinuousBackups",
        json!({"TableName": "Music", "PointInTimeRecoverySpecification": {
            "PointInTimeRecoveryEnabled": false}}),
    );
    assert_eq!(
        disabled["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"],
        json!({"PointInTimeRecoveryStatus": "DISABLED"})
    );
}
