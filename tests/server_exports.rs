//! DescribeExport, ListExports, DescribeImport and ListImports over raw
//! HTTP: DynamoDB's shapes (epoch-second times, no null members, a
//! ListImports NextToken of the pattern the API declares), its errors
//! (`ExportNotFoundException`, `ImportNotFoundException`, validation of
//! page sizes, `ExportConflictException` on a reused client token), and
//! the same answers as the Rust API on the same database.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod server_client;

use std::time::{Duration, UNIX_EPOCH};

use nimbus::server::ServerOptions;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};
use serde_json::{Value, json};
use server_client::{Client, create_table};

const START_SECS: u64 = 1_800_000_000;

fn no_nulls(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Object(object) => object.values().all(no_nulls),
        Value::Array(values) => values.iter().all(no_nulls),
        _ => true,
    }
}

fn import_request(prefix: &str, table: &str) -> Value {
    json!({
        "S3BucketSource": {"S3Bucket": "exports", "S3KeyPrefix": prefix},
        "InputFormat": "DYNAMODB_JSON",
        "InputCompressionType": "GZIP",
        "TableCreationParameters": {
            "TableName": table,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        }
    })
}

#[test]
fn exports_and_imports_are_described_and_listed_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(START_SECS));
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default()
            .clock(clock.clone())
            .background_threads(false),
    )
    .unwrap();
    db.objects().create_bucket("exports").send().unwrap();
    let mut client = Client::start_with(db.clone(), ServerOptions::default());
    create_table(&mut client, "source", false);
    for n in 0..12 {
        client.ok(
            "PutItem",
            json!({"TableName": "source", "Item": {"pk": {"S": format!("k{n}")}}}),
        );
    }
    let table_arn = client.ok("DescribeTable", json!({"TableName": "source"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut exports = Vec::new();
    for n in 0..3 {
        clock.advance(Duration::from_secs(1));
        let export = client.ok(
            "ExportTableToPointInTime",
            json!({"TableArn": table_arn, "S3Bucket": "exports", "ClientToken": format!("t{n}")}),
        )["ExportDescription"]
            .clone();
        exports.push(export);
    }
    let export = exports[0].clone();
    assert!(no_nulls(&export), "{export}");
    assert_eq!(export["ExportStatus"], "COMPLETED");
    assert_eq!(export["ExportType"], "FULL_EXPORT");
    assert_eq!(export["ExportFormat"], "DYNAMODB_JSON");
    assert_eq!(export["S3SseAlgorithm"], "AES256");
    assert_eq!(export["ClientToken"], "t0");
    assert_eq!(export["StartTime"], json!((START_SECS + 1) as f64));
    assert!(export["EndTime"].is_f64());
    assert_eq!(export["ItemCount"], 12);

    let described = client.ok("DescribeExport", json!({"ExportArn": export["ExportArn"]}));
    assert_eq!(described["ExportDescription"], export);
    let rust = db
        .describe_export(export["ExportArn"].as_str().unwrap())
        .send()
        .unwrap()
        .export_description;
    assert_eq!(rust.item_count, 12);

    // The same token with the same parameters: the first export again.
    let replayed = client.ok(
        "ExportTableToPointInTime",
        json!({"TableArn": table_arn, "S3Bucket": "exports", "ClientToken": "t0"}),
    );
    assert_eq!(replayed["ExportDescription"], export);
    client.fails(
        "ExportTableToPointInTime",
        json!({"TableArn": table_arn, "S3Bucket": "exports", "S3Prefix": "p", "ClientToken": "t0"}),
        "ExportConflictException",
    );

    let first = client.ok("ListExports", json!({"MaxResults": 2}));
    let summaries = first["ExportSummaries"].as_array().unwrap();
    assert_eq!(summaries.len(), 2);
    assert_eq!(
        summaries[0],
        json!({"ExportArn": exports[2]["ExportArn"], "ExportStatus": "COMPLETED",
               "ExportType": "FULL_EXPORT"})
    );
    let rest = client.ok(
        "ListExports",
        json!({"TableArn": table_arn, "NextToken": first["NextToken"]}),
    );
    assert_eq!(rest["ExportSummaries"][0]["ExportArn"], export["ExportArn"]);
    assert!(rest.get("NextToken").is_none());

    let data = export["ExportManifest"]
        .as_str()
        .unwrap()
        .replace("manifest-summary.json", "data/");
    let mut imports = Vec::new();
    for table in ["copy1", "copy2"] {
        clock.advance(Duration::from_secs(1));
        imports.push(
            client.ok("ImportTable", import_request(&data, table))["ImportTableDescription"]
                .clone(),
        );
    }
    let import = imports[0].clone();
    assert_eq!(import["ImportStatus"], "COMPLETED");
    assert_eq!(import["ImportedItemCount"], 12);
    assert_eq!(import["InputCompressionType"], "GZIP");
    assert_eq!(
        import["TableCreationParameters"]["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    assert_eq!(
        import["TableCreationParameters"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    let described = client.ok("DescribeImport", json!({"ImportArn": import["ImportArn"]}))
        ["ImportTableDescription"]
        .clone();
    assert!(no_nulls(&described), "{described}");
    // DescribeImport has no TableDescription (ImportTable's answer does).
    let mut expected = import.clone();
    expected.as_object_mut().unwrap().remove("TableDescription");
    assert_eq!(described, expected);
    assert_eq!(described["TableId"], import["TableDescription"]["TableId"]);

    let page = client.ok("ListImports", json!({"PageSize": 1}));
    assert_eq!(
        page["ImportSummaryList"][0]["ImportArn"],
        imports[1]["ImportArn"]
    );
    assert_eq!(
        page["ImportSummaryList"][0]["S3BucketSource"],
        json!({"S3Bucket": "exports", "S3KeyPrefix": data})
    );
    let token = page["NextToken"].as_str().unwrap().to_owned();
    assert!(token.len() >= 112 && token.len().is_multiple_of(16));
    let rest = client.ok("ListImports", json!({"PageSize": 1, "NextToken": token}));
    assert_eq!(
        rest["ImportSummaryList"][0]["ImportArn"],
        import["ImportArn"]
    );
    assert!(rest.get("NextToken").is_none());
    let copy2 = imports[1]["TableArn"].clone();
    let filtered = client.ok("ListImports", json!({"TableArn": copy2}));
    assert_eq!(filtered["ImportSummaryList"].as_array().unwrap().len(), 1);
}

#[test]
fn unknown_arns_and_bad_page_sizes_get_dynamodb_errors() {
    let mut client = Client::start();
    let arn = "arn:nimbus:dynamodb:local:000000000000:table/t/export/00000000000000-00000000";
    let message = client.fails(
        "DescribeExport",
        json!({"ExportArn": arn}),
        "ExportNotFoundException",
    );
    assert!(message.contains(arn));
    client.fails(
        "DescribeImport",
        json!({"ImportArn": arn.replace("export", "import")}),
        "ImportNotFoundException",
    );
    client.fails("DescribeExport", json!({}), "ValidationException");
    client.fails(
        "DescribeImport",
        json!({"ImportArn": "short"}),
        "ValidationException",
    );
    let message = client.fails(
        "ListExports",
        json!({"MaxResults": 26}),
        "ValidationException",
    );
    assert_eq!(
        message,
        "1 validation error detected: Value '26' at 'maxResults' failed to satisfy \
         constraint: Member must have value less than or equal to 25"
    );
    client.fails("ListImports", json!({"PageSize": 0}), "ValidationException");
    client.fails(
        "ListImports",
        json!({"NextToken": "not-a-token"}),
        "ValidationException",
    );
    client.fails(
        "ListExports",
        json!({"MaxResults": "ten"}),
        "SerializationException",
    );
    // Nothing recorded yet: empty lists, no token.
    let empty = client.ok("ListExports", json!({}));
    assert_eq!(empty, json!({"ExportSummaries": []}));
    let empty = client.ok("ListImports", json!({}));
    assert_eq!(empty, json!({"ImportSummaryList": []}));
}

#[test]
fn an_import_of_a_missing_bucket_is_listed_as_failed() {
    let mut client = Client::start();
    let failed =
        client.ok("ImportTable", import_request("x/", "never"))["ImportTableDescription"].clone();
    assert_eq!(failed["ImportStatus"], "FAILED");
    assert_eq!(failed["FailureCode"], "S3NoSuchBucket");
    assert!(failed.get("TableId").is_none());
    let listed = client.ok("ListImports", json!({}));
    assert_eq!(listed["ImportSummaryList"][0]["ImportStatus"], "FAILED");
    let described = client.ok("DescribeImport", json!({"ImportArn": failed["ImportArn"]}));
    assert_eq!(
        described["ImportTableDescription"]["FailureCode"],
        "S3NoSuchBucket"
    );
    client.fails(
        "DescribeTable",
        json!({"TableName": "never"}),
        "ResourceNotFoundException",
    );
}
