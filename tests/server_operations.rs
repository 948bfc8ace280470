//! Every served operation over raw HTTP, checked against DynamoDB's
//! documented request and response shapes and against the Rust API on the
//! same database (one implementation, two faces), legacy parameters
//! included.
#![cfg(feature = "server")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

mod server_client;

use nimbus::server::ServerOptions;
use nimbus::{Database, item};
use serde_json::json;
use server_client::{Client, create_table};

fn put(client: &mut Client, table: &str, item: serde_json::Value) {
    client.ok("PutItem", json!({"TableName": table, "Item": item}));
}

#[test]
fn create_describe_list_update_delete_table() {
    let mut client = Client::start();
    let created = client.ok(
        "CreateTable",
        json!({
            "TableName": "Music",
            "KeySchema": [
                {"AttributeName": "Artist", "KeyType": "HASH"},
                {"AttributeName": "Song", "KeyType": "RANGE"}
            ],
            "AttributeDefinitions": [
                {"AttributeName": "Artist", "AttributeType": "S"},
                {"AttributeName": "Song", "AttributeType": "S"},
                {"AttributeName": "Year", "AttributeType": "N"}
            ],
            "GlobalSecondaryIndexes": [{
                "IndexName": "ByYear",
                "KeySchema": [{"AttributeName": "Year", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"}
            }],
            "BillingMode": "PAY_PER_REQUEST",
            "Tags": [{"Key": "team", "Value": "audio"}]
        }),
    );
    let description = &created["TableDescription"];
    assert_eq!(description["TableName"], "Music");
    assert_eq!(description["TableStatus"], "ACTIVE");
    assert_eq!(
        description["KeySchema"][1],
        json!({"AttributeName": "Song", "KeyType": "RANGE"})
    );
    assert_eq!(
        description["GlobalSecondaryIndexes"][0]["IndexStatus"],
        "ACTIVE"
    );
    assert_eq!(
        description["BillingModeSummary"]["BillingMode"],
        "PAY_PER_REQUEST"
    );
    let arn = description["TableArn"].as_str().unwrap().to_owned();

    let described = client.ok("DescribeTable", json!({"TableName": "Music"}));
    assert_eq!(described["Table"]["TableArn"], arn);
    assert_eq!(described["Table"]["ItemCount"], 0);

    let message = client.fails(
        "CreateTable",
        json!({
            "TableName": "Music",
            "KeySchema": [{"AttributeName": "Artist", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "Artist", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        }),
        "ResourceInUseException",
    );
    assert_eq!(message, "Table already exists: Music");

    create_table(&mut client, "Other", false);
    let listed = client.ok("ListTables", json!({"Limit": 1}));
    assert_eq!(
        listed,
        json!({"TableNames": ["Music"], "LastEvaluatedTableName": "Music"})
    );
    let rest = client.ok("ListTables", json!({"ExclusiveStartTableName": "Music"}));
    assert_eq!(rest, json!({"TableNames": ["Other"]}));

    // Tags: given at creation, added, removed, dropped with the table.
    let tags = client.ok("ListTagsOfResource", json!({"ResourceArn": arn}));
    assert_eq!(tags["Tags"], json!([{"Key": "team", "Value": "audio"}]));
    client.ok(
        "TagResource",
        json!({"ResourceArn": arn, "Tags": [{"Key": "env", "Value": "dev"}]}),
    );
    client.ok(
        "UntagResource",
        json!({"ResourceArn": arn, "TagKeys": ["team"]}),
    );
    let tags = client.ok("ListTagsOfResource", json!({"ResourceArn": arn}));
    assert_eq!(tags["Tags"], json!([{"Key": "env", "Value": "dev"}]));

    // An on-demand index has no throughput to change.
    let message = client.fails(
        "UpdateTable",
        json!({
            "TableName": "Music",
            "GlobalSecondaryIndexUpdates": [{"Update": {
                "IndexName": "ByYear",
                "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
            }}]
        }),
        "ValidationException",
    );
    assert!(message.contains("PAY_PER_REQUEST"), "{message}");
    let updated = client.ok(
        "UpdateTable",
        json!({
            "TableName": "Music",
            "GlobalSecondaryIndexUpdates": [{"Delete": {"IndexName": "ByYear"}}]
        }),
    );
    assert_eq!(updated["TableDescription"]["TableName"], "Music");
    let message = client.fails(
        "UpdateTable",
        json!({"TableName": "Music"}),
        "ValidationException",
    );
    assert!(message.starts_with("At least one of"), "{message}");

    let deleted = client.ok("DeleteTable", json!({"TableName": "Music"}));
    assert_eq!(deleted["TableDescription"]["TableName"], "Music");
    client.fails(
        "DescribeTable",
        json!({"TableName": "Music"}),
        "ResourceNotFoundException",
    );
    client.fails(
        "ListTagsOfResource",
        json!({"ResourceArn": arn}),
        "ResourceNotFoundException",
    );
}

#[test]
fn absent_billing_mode_means_provisioned_as_on_the_wire() {
    let mut client = Client::start();
    let created = client.ok(
        "CreateTable",
        json!({
            "TableName": "old_style",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 7}
        }),
    );
    let description = &created["TableDescription"];
    assert_eq!(
        description["ProvisionedThroughput"]["WriteCapacityUnits"],
        7
    );
    assert!(description.get("BillingModeSummary").is_none());
    let message = client.fails(
        "CreateTable",
        json!({
            "TableName": "no_capacity",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}]
        }),
        "ValidationException",
    );
    assert_eq!(
        message,
        "One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits \
         must both be specified when BillingMode is PROVISIONED"
    );

    // A provisioned index's capacity changes through UpdateTable.
    client.ok(
        "CreateTable",
        json!({
            "TableName": "with_index",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "g", "AttributeType": "S"}
            ],
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
            "GlobalSecondaryIndexes": [{
                "IndexName": "ByG",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}
            }]
        }),
    );
    let update = json!({
        "TableName": "with_index",
        "GlobalSecondaryIndexUpdates": [{"Update": {
            "IndexName": "ByG",
            "ProvisionedThroughput": {"ReadCapacityUnits": 3, "WriteCapacityUnits": 4}
        }}]
    });
    client.ok("UpdateTable", update.clone());
    let described = client.ok("DescribeTable", json!({"TableName": "with_index"}));
    let throughput = &described["Table"]["GlobalSecondaryIndexes"][0]["ProvisionedThroughput"];
    assert_eq!(
        (
            &throughput["ReadCapacityUnits"],
            &throughput["WriteCapacityUnits"]
        ),
        (&json!(3), &json!(4))
    );
    let message = client.fails("UpdateTable", update, "ValidationException");
    assert!(message.contains("will not change"), "{message}");
}

#[test]
fn item_operations_match_the_rust_api() {
    let db = Database::memory().unwrap();
    let mut client = Client::start_with(db.clone(), ServerOptions::default());
    create_table(&mut client, "items", false);
    put(
        &mut client,
        "items",
        json!({"pk": {"S": "a"}, "n": {"N": "1"}, "tags": {"SS": ["x", "y"]}}),
    );

    // Written over HTTP, read through the Rust API.
    let stored = db
        .get_item("items")
        .key(item! {"pk" => "a"})
        .send()
        .unwrap()
        .item
        .unwrap();
    assert_eq!(
        stored.to_json(),
        r#"{"n":{"N":"1"},"pk":{"S":"a"},"tags":{"SS":["x","y"]}}"#
    );

    let got = client.ok(
        "GetItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ProjectionExpression": "#n", "ExpressionAttributeNames": {"#n": "n"}}),
    );
    assert_eq!(got, json!({"Item": {"n": {"N": "1"}}}));
    let missing = client.ok(
        "GetItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "zz"}}}),
    );
    assert_eq!(missing, json!({}));

    let updated = client.ok(
        "UpdateItem",
        json!({
            "TableName": "items",
            "Key": {"pk": {"S": "a"}},
            "UpdateExpression": "SET n = n + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ReturnValues": "UPDATED_NEW",
            "ReturnConsumedCapacity": "TOTAL"
        }),
    );
    assert_eq!(updated["Attributes"], json!({"n": {"N": "2"}}));
    assert_eq!(updated["ConsumedCapacity"]["TableName"], "items");
    assert_eq!(updated["ConsumedCapacity"]["CapacityUnits"], 1.0);

    let failed = client.call(
        "PutItem",
        json!({
            "TableName": "items",
            "Item": {"pk": {"S": "a"}},
            "ConditionExpression": "attribute_not_exists(pk)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD"
        }),
    );
    assert_eq!(failed.status, 400);
    let body = failed.json();
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
    );
    assert_eq!(body["message"], "The conditional request failed");
    assert_eq!(body["Item"]["n"], json!({"N": "2"}));

    let deleted = client.ok(
        "DeleteItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_OLD"}),
    );
    assert_eq!(deleted["Attributes"]["pk"], json!({"S": "a"}));
    assert!(
        db.get_item("items")
            .key(item! {"pk" => "a"})
            .send()
            .unwrap()
            .item
            .is_none()
    );

    let message = client.fails(
        "DeleteItem",
        json!({"TableName": "items", "Key": {"pk": {"S": "a"}}, "ReturnValues": "ALL_NEW"}),
        "ValidationException",
    );
    assert!(
        message.ends_with("ReturnValues can only be ALL_OLD or NONE"),
        "{message}"
    );
}

#[test]
fn query_and_scan_page_like_dynamodb() {
    let mut client = Client::start();
    create_table(&mut client, "events", true);
    for i in 0..5 {
        put(
            &mut client,
            "events",
            json!({"pk": {"S": "p"}, "sk": {"S": format!("s{i}")}, "v": {"N": i.to_string()}}),
        );
    }
    put(
        &mut client,
        "events",
        json!({"pk": {"S": "q"}, "sk": {"S": "s0"}}),
    );
    let page = client.ok(
        "Query",
        json!({
            "TableName": "events",
            "KeyConditionExpression": "pk = :p AND sk >= :s",
            "FilterExpression": "v <> :two",
            "ExpressionAttributeValues": {":p": {"S": "p"}, ":s": {"S": "s1"}, ":two": {"N": "2"}},
            "Limit": 3,
            "ScanIndexForward": false
        }),
    );
    assert_eq!(page["Count"], 2);
    assert_eq!(page["ScannedCount"], 3);
    assert_eq!(page["Items"][0]["sk"], json!({"S": "s4"}));
    assert_eq!(
        page["LastEvaluatedKey"],
        json!({"pk": {"S": "p"}, "sk": {"S": "s2"}})
    );

    let count = client.ok("Scan", json!({"TableName": "events", "Select": "COUNT"}));
    assert_eq!(count, json!({"Count": 6, "ScannedCount": 6}));
    let message = client.fails(
        "Query",
        json!({"TableName": "events"}),
        "ValidationException",
    );
    assert_eq!(
        message,
        "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request."
    );
    let message = client.fails(
        "Scan",
        json!({"TableName": "events", "Limit": 0}),
        "ValidationException",
    );
    assert!(message.contains("Value '0' at 'limit'"), "{message}");
    let segment = client.ok(
        "Scan",
        json!({"TableName": "events", "Segment": 0, "TotalSegments": 2}),
    );
    let other = client.ok(
        "Scan",
        json!({"TableName": "events", "Segment": 1, "TotalSegments": 2}),
    );
    assert_eq!(
        segment["Count"].as_u64().unwrap() + other["Count"].as_u64().unwrap(),
        6
    );
}

#[test]
fn legacy_parameters_are_translated() {
    let mut client = Client::start();
    create_table(&mut client, "old", true);
    // Expected (Exists=false) on PutItem.
    for i in 0..3 {
        client.ok(
            "PutItem",
            json!({
                "TableName": "old",
                "Item": {"pk": {"S": "p"}, "sk": {"S": format!("s{i}")}, "size": {"N": (i * 10).to_string()}},
                "Expected": {"pk": {"Exists": false}}
            }),
        );
    }
    client.fails(
        "PutItem",
        json!({"TableName": "old", "Item": {"pk": {"S": "p"}, "sk": {"S": "s0"}}, "Expected": {"pk": {"Exists": false}}}),
        "ConditionalCheckFailedException",
    );
    // KeyConditions + QueryFilter + AttributesToGet.
    let page = client.ok(
        "Query",
        json!({
            "TableName": "old",
            "KeyConditions": {
                "pk": {"ComparisonOperator": "EQ", "AttributeValueList": [{"S": "p"}]},
                "sk": {"ComparisonOperator": "BETWEEN", "AttributeValueList": [{"S": "s0"}, {"S": "s1"}]}
            },
            "QueryFilter": {"size": {"ComparisonOperator": "GT", "AttributeValueList": [{"N": "5"}]}},
            "AttributesToGet": ["sk"]
        }),
    );
    assert_eq!(page["Items"], json!([{"sk": {"S": "s1"}}]));
    // AttributeUpdates with Expected value.
    let updated = client.ok(
        "UpdateItem",
        json!({
            "TableName": "old",
            "Key": {"pk": {"S": "p"}, "sk": {"S": "s2"}},
            "AttributeUpdates": {
                "size": {"Action": "ADD", "Value": {"N": "1"}},
                "note": {"Action": "PUT", "Value": {"S": "hi"}}
            },
            "Expected": {"size": {"Value": {"N": "20"}}},
            "ReturnValues": "ALL_NEW"
        }),
    );
    assert_eq!(updated["Attributes"]["size"], json!({"N": "21"}));
    assert_eq!(updated["Attributes"]["note"], json!({"S": "hi"}));
    // ScanFilter with ConditionalOperator OR.
    let scanned = client.ok(
        "Scan",
        json!({
            "TableName": "old",
            "ScanFilter": {
                "size": {"ComparisonOperator": "EQ", "AttributeValueList": [{"N": "0"}]},
                "note": {"ComparisonOperator": "NOT_NULL"}
            },
            "ConditionalOperator": "OR"
        }),
    );
    assert_eq!(scanned["Count"], 2);
    // Mixing legacy and expression parameters is DynamoDB's error.
    let message = client.fails(
        "GetItem",
        json!({
            "TableName": "old",
            "Key": {"pk": {"S": "p"}, "sk": {"S": "s0"}},
            "AttributesToGet": ["sk"],
            "ProjectionExpression": "sk"
        }),
        "ValidationException",
    );
    assert_eq!(
        message,
        "Can not use both expression and non-expression parameters in the same request: \
         Non-expression parameters: {AttributesToGet} Expression parameters: {ProjectionExpression}"
    );
}

#[test]
fn batches_and_transactions() {
    let mut client = Client::start();
    create_table(&mut client, "batch", false);
    let written = client.ok(
        "BatchWriteItem",
        json!({"RequestItems": {"batch": [
            {"PutRequest": {"Item": {"pk": {"S": "a"}, "v": {"N": "1"}}}},
            {"PutRequest": {"Item": {"pk": {"S": "b"}, "v": {"N": "2"}}}},
            {"PutRequest": {"Item": {"pk": {"S": "c"}}}}
        ]}}),
    );
    assert_eq!(written, json!({"UnprocessedItems": {}}));
    client.ok(
        "BatchWriteItem",
        json!({"RequestItems": {"batch": [{"DeleteRequest": {"Key": {"pk": {"S": "c"}}}}]}}),
    );
    let read = client.ok(
        "BatchGetItem",
        json!({"RequestItems": {"batch": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}, {"pk": {"S": "c"}}]}}}),
    );
    let mut items = read["Responses"]["batch"].as_array().unwrap().clone();
    items.sort_by_key(|item| item["pk"]["S"].as_str().unwrap().to_owned());
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["v"], json!({"N": "2"}));
    assert_eq!(read["UnprocessedKeys"], json!({}));
    let message = client.fails(
        "BatchGetItem",
        json!({"RequestItems": {"batch": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "a"}}]}}}),
        "ValidationException",
    );
    assert_eq!(message, "Provided list of item keys contains duplicates");

    client.ok(
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Put": {"TableName": "batch", "Item": {"pk": {"S": "t"}, "v": {"N": "5"}}}},
            {"Update": {"TableName": "batch", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET v = v + :d", "ExpressionAttributeValues": {":d": {"N": "10"}}}}
        ]}),
    );
    let canceled = client.call(
        "TransactWriteItems",
        json!({"TransactItems": [
            {"Delete": {"TableName": "batch", "Key": {"pk": {"S": "b"}}}},
            {"ConditionCheck": {"TableName": "batch", "Key": {"pk": {"S": "t"}}, "ConditionExpression": "v = :x", "ExpressionAttributeValues": {":x": {"N": "6"}}}}
        ]}),
    );
    assert_eq!(canceled.status, 400);
    let body = canceled.json();
    assert_eq!(
        body["__type"],
        "com.amazonaws.dynamodb.v20120810#TransactionCanceledException"
    );
    assert_eq!(
        body["message"],
        "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ConditionalCheckFailed]"
    );
    assert_eq!(
        body["CancellationReasons"],
        json!([{"Code": "None"}, {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}])
    );
    let got = client.ok(
        "TransactGetItems",
        json!({"TransactItems": [
            {"Get": {"TableName": "batch", "Key": {"pk": {"S": "a"}}}},
            {"Get": {"TableName": "batch", "Key": {"pk": {"S": "nope"}}}},
            {"Get": {"TableName": "batch", "Key": {"pk": {"S": "b"}}, "ProjectionExpression": "pk"}}
        ]}),
    );
    assert_eq!(
        got["Responses"],
        json!([
            {"Item": {"pk": {"S": "a"}, "v": {"N": "11"}}},
            {},
            {"Item": {"pk": {"S": "b"}}}
        ])
    );
}

#[test]
fn persistent_data_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        let mut client = Client::start_with(db.clone(), ServerOptions::default());
        create_table(&mut client, "durable", false);
        put(
            &mut client,
            "durable",
            json!({"pk": {"S": "k"}, "v": {"S": "kept"}}),
        );
        client.server.take().unwrap().shutdown();
        db.close().unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    let mut client = Client::start_with(db, ServerOptions::default());
    let got = client.ok(
        "GetItem",
        json!({"TableName": "durable", "Key": {"pk": {"S": "k"}}}),
    );
    assert_eq!(got["Item"]["v"], json!({"S": "kept"}));
}

#[test]
fn backups_are_taken_listed_restored_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path()).unwrap();
    let mut client = Client::start_with(db, ServerOptions::default());
    create_table(&mut client, "source", false);
    put(
        &mut client,
        "source",
        json!({"pk": {"S": "k"}, "v": {"N": "1"}}),
    );
    let created = client.ok(
        "CreateBackup",
        json!({"TableName": "source", "BackupName": "nightly"}),
    );
    let details = &created["BackupDetails"];
    assert_eq!(details["BackupName"], "nightly");
    assert_eq!(details["BackupStatus"], "AVAILABLE");
    assert_eq!(details["BackupType"], "USER");
    let arn = details["BackupArn"].as_str().unwrap().to_owned();

    let listed = client.ok("ListBackups", json!({"TableName": "source"}));
    assert_eq!(listed["BackupSummaries"][0]["BackupArn"], arn);
    assert_eq!(listed["BackupSummaries"][0]["TableName"], "source");
    let described = client.ok("DescribeBackup", json!({"BackupArn": arn}));
    assert_eq!(
        described["BackupDescription"]["SourceTableDetails"]["ItemCount"],
        1
    );

    let restored = client.ok(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "restored", "BackupArn": arn}),
    );
    assert_eq!(restored["TableDescription"]["TableName"], "restored");
    let got = client.ok(
        "GetItem",
        json!({"TableName": "restored", "Key": {"pk": {"S": "k"}}}),
    );
    assert_eq!(got["Item"]["v"], json!({"N": "1"}));
    client.fails(
        "RestoreTableFromBackup",
        json!({"TargetTableName": "restored", "BackupArn": arn}),
        "TableAlreadyExistsException",
    );

    let deleted = client.ok("DeleteBackup", json!({"BackupArn": arn}));
    assert_eq!(
        deleted["BackupDescription"]["BackupDetails"]["BackupStatus"],
        "DELETED"
    );
    client.fails(
        "DescribeBackup",
        json!({"BackupArn": arn}),
        "BackupNotFoundException",
    );
    client.fails(
        "CreateBackup",
        json!({"TableName": "missing", "BackupName": "b01"}),
        "TableNotFoundException",
    );
}

#[test]
fn tables_export_to_and_import_from_the_object_store() {
    let db = Database::memory().unwrap();
    db.objects().create_bucket("exports").send().unwrap();
    let mut client = Client::start_with(db, ServerOptions::default());
    create_table(&mut client, "source", false);
    for n in 0..30 {
        put(
            &mut client,
            "source",
            json!({"pk": {"S": format!("k{n}")}, "v": {"N": n.to_string()}}),
        );
    }
    let arn = client.ok("DescribeTable", json!({"TableName": "source"}))["Table"]["TableArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let export = client.ok(
        "ExportTableToPointInTime",
        json!({"TableArn": arn, "S3Bucket": "exports", "S3Prefix": "x"}),
    )["ExportDescription"]
        .clone();
    assert_eq!(export["ExportStatus"], "COMPLETED");
    assert_eq!(export["ItemCount"], 30);
    let data = export["ExportManifest"]
        .as_str()
        .unwrap()
        .replace("manifest-summary.json", "data/");
    let import = client.ok(
        "ImportTable",
        json!({
            "S3BucketSource": {"S3Bucket": "exports", "S3KeyPrefix": data},
            "InputFormat": "DYNAMODB_JSON",
            "InputCompressionType": "GZIP",
            "TableCreationParameters": {
                "TableName": "copy",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "BillingMode": "PAY_PER_REQUEST"
            }
        }),
    )["ImportTableDescription"]
        .clone();
    assert_eq!(import["ImportStatus"], "COMPLETED");
    assert_eq!(
        (
            import["ImportedItemCount"].clone(),
            import["ErrorCount"].clone()
        ),
        (json!(30), json!(0))
    );
    let got = client.ok(
        "GetItem",
        json!({"TableName": "copy", "Key": {"pk": {"S": "k7"}}}),
    );
    assert_eq!(got["Item"]["v"], json!({"N": "7"}));
    client.fails(
        "ImportTable",
        json!({"S3BucketSource": {"S3Bucket": "exports"}, "InputFormat": "ION",
               "TableCreationParameters": {"TableName": "bad"}}),
        "ValidationException",
    );
}

#[test]
fn time_to_live_and_streams_are_served() {
    let mut client = Client::start();
    client.ok(
        "CreateTable",
        json!({
            "TableName": "events",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        }),
    );
    let updated = client.ok(
        "UpdateTimeToLive",
        json!({"TableName": "events",
               "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "expires"}}),
    );
    assert_eq!(
        updated["TimeToLiveSpecification"]["AttributeName"],
        "expires"
    );
    let described = client.ok("DescribeTimeToLive", json!({"TableName": "events"}));
    assert_eq!(
        described["TimeToLiveDescription"],
        json!({"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"})
    );
    client.fails(
        "UpdateTimeToLive",
        json!({"TableName": "events",
               "TimeToLiveSpecification": {"Enabled": true, "AttributeName": "expires"}}),
        "ValidationException",
    );
    put(
        &mut client,
        "events",
        json!({"pk": {"S": "a"}, "v": {"N": "1"}}),
    );
    put(
        &mut client,
        "events",
        json!({"pk": {"S": "a"}, "v": {"N": "2"}}),
    );

    let listed = client.ok(
        "DynamoDBStreams_20120810.ListStreams",
        json!({"TableName": "events"}),
    );
    let arn = listed["Streams"][0]["StreamArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let table = client.ok("DescribeTable", json!({"TableName": "events"}));
    assert_eq!(table["Table"]["LatestStreamArn"], arn);
    let stream = client.ok(
        "DynamoDBStreams_20120810.DescribeStream",
        json!({"StreamArn": arn}),
    );
    let description = &stream["StreamDescription"];
    assert_eq!(description["StreamStatus"], "ENABLED");
    assert_eq!(description["StreamViewType"], "NEW_AND_OLD_IMAGES");
    let shard = description["Shards"][0]["ShardId"]
        .as_str()
        .unwrap()
        .to_owned();
    let iterator = client.ok(
        "DynamoDBStreams_20120810.GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"}),
    )["ShardIterator"]
        .clone();
    let page = client.ok(
        "DynamoDBStreams_20120810.GetRecords",
        json!({"ShardIterator": iterator, "Limit": 10}),
    );
    let records = page["Records"].as_array().unwrap();
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["INSERT", "MODIFY"]);
    assert_eq!(records[1]["dynamodb"]["OldImage"]["v"], json!({"N": "1"}));
    assert_eq!(records[1]["dynamodb"]["NewImage"]["v"], json!({"N": "2"}));
    assert_eq!(records[0]["dynamodb"]["Keys"], json!({"pk": {"S": "a"}}));
    assert!(page["NextShardIterator"].is_string());
    client.fails(
        "DynamoDBStreams_20120810.GetShardIterator",
        json!({"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "SIDEWAYS"}),
        "ValidationException",
    );
}
