//! Behaviour tests of time to live: the settings and their validation, and
//! the sweep (driven by a manual clock and `run_ttl_sweep_now`): which items
//! expire, index maintenance, and the service identity on stream records.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::{
    Error, GlobalSecondaryIndex, Identity, OperationType, ShardIteratorType, StreamSpecification,
    StreamViewType, TTL_IGNORED_AFTER, TimeToLiveStatus,
};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, ScalarType, item};

const NOW: u64 = 1_800_000_000;

fn setup() -> (Database, ManualClock) {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(NOW));
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .background_threads(false),
    )
    .unwrap();
    db.create_table("Sessions")
        .partition_key("id", ScalarType::S)
        .attribute_definition("user", ScalarType::S)
        .global_secondary_index(GlobalSecondaryIndex::new("ByUser", "user"))
        .stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(StreamViewType::NewAndOldImages),
        })
        .send()
        .unwrap();
    (db, clock)
}

fn validation<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn settings_follow_dynamodb_rules() {
    let (db, _) = setup();
    let described = db.describe_time_to_live("Sessions").send().unwrap();
    assert_eq!(
        described.time_to_live_description.time_to_live_status,
        TimeToLiveStatus::Disabled
    );
    assert_eq!(
        validation(
            db.update_time_to_live("Sessions")
                .attribute_name("exp")
                .enabled(false)
                .send()
        ),
        "TimeToLive is already disabled"
    );
    let output = db
        .update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(true)
        .send()
        .unwrap();
    assert_eq!(output.time_to_live_specification.attribute_name, "exp");
    let described = db.describe_time_to_live("Sessions").send().unwrap();
    assert_eq!(
        described.time_to_live_description.time_to_live_status,
        TimeToLiveStatus::Enabled
    );
    assert_eq!(
        described.time_to_live_description.attribute_name.as_deref(),
        Some("exp")
    );
    assert_eq!(
        validation(
            db.update_time_to_live("Sessions")
                .attribute_name("exp")
                .enabled(true)
                .send()
        ),
        "TimeToLive is already enabled"
    );
    assert_eq!(
        validation(
            db.update_time_to_live("Sessions")
                .attribute_name("other")
                .enabled(true)
                .send()
        ),
        "TimeToLive is already enabled"
    );
    assert!(
        validation(
            db.update_time_to_live("Sessions")
                .attribute_name("other")
                .enabled(false)
                .send()
        )
        .contains("different AttributeName")
    );
    assert!(
        validation(db.update_time_to_live("Sessions").enabled(true).send())
            .contains("AttributeName")
    );
    assert!(matches!(
        db.update_time_to_live("Nope")
            .attribute_name("exp")
            .enabled(true)
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
    db.update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(false)
        .send()
        .unwrap();
    let described = db.describe_time_to_live("Sessions").send().unwrap();
    assert_eq!(
        described.time_to_live_description.time_to_live_status,
        TimeToLiveStatus::Disabled
    );
}

#[test]
fn the_sweep_deletes_only_expired_numbers_and_reports_the_service() {
    let (db, clock) = setup();
    db.update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(true)
        .send()
        .unwrap();
    let ancient = NOW - TTL_IGNORED_AFTER.as_secs() - 10;
    let items = [
        item! { "id" => "expired", "user" => "u", "exp" => NOW - 1 },
        item! { "id" => "fractional", "user" => "u", "exp" => nimbus::AttributeValue::N("1799999999.5".parse().unwrap()) },
        item! { "id" => "future", "user" => "u", "exp" => NOW + 60 },
        item! { "id" => "string", "user" => "u", "exp" => "1" },
        item! { "id" => "ancient", "user" => "u", "exp" => ancient },
        item! { "id" => "none", "user" => "u" },
    ];
    for item in items {
        db.put_item("Sessions").item(item).send().unwrap();
    }
    // Expired but unswept items are still returned, as in DynamoDB.
    assert!(
        db.get_item("Sessions")
            .key(item! { "id" => "expired" })
            .send()
            .unwrap()
            .item
            .is_some()
    );
    assert_eq!(db.run_ttl_sweep_now().unwrap(), 2);
    assert_eq!(db.run_ttl_sweep_now().unwrap(), 0);
    let left: Vec<String> = db
        .scan("Sessions")
        .send()
        .unwrap()
        .items
        .iter()
        .map(|i| i.get("id").unwrap().as_s().unwrap().to_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, ["ancient", "future", "none", "string"]);
    let by_user = db
        .query("Sessions")
        .index_name("ByUser")
        .key_condition_expression("#u = :u")
        .name("#u", "user")
        .value(":u", "u")
        .send()
        .unwrap();
    assert_eq!(
        by_user.items.len(),
        4,
        "index entries of swept items are gone"
    );

    clock.advance(Duration::from_secs(61));
    assert_eq!(db.run_ttl_sweep_now().unwrap(), 1);

    let arn = db
        .describe_table("Sessions")
        .send()
        .unwrap()
        .table
        .latest_stream_arn
        .unwrap();
    let shard = db
        .describe_stream(&arn)
        .send()
        .unwrap()
        .stream_description
        .shards[0]
        .shard_id
        .clone();
    let iterator = db
        .get_shard_iterator(&arn, &shard, ShardIteratorType::TrimHorizon)
        .send()
        .unwrap()
        .shard_iterator;
    let records = db.get_records(iterator).send().unwrap().records;
    assert_eq!(records.len(), 9);
    let removes: Vec<_> = records[6..].iter().collect();
    for record in &removes {
        assert_eq!(record.event_name, OperationType::Remove);
        assert_eq!(record.user_identity, Some(Identity::dynamodb_service()));
        assert!(record.dynamodb.old_image.is_some());
    }
    assert!(records[..6].iter().all(|r| r.user_identity.is_none()));
    // A user's delete carries no identity.
    db.delete_item("Sessions")
        .key(item! { "id" => "none" })
        .send()
        .unwrap();
}

#[test]
fn an_update_that_extends_the_ttl_wins_over_the_sweep() {
    let (db, clock) = setup();
    db.update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(true)
        .send()
        .unwrap();
    db.put_item("Sessions")
        .item(item! { "id" => "s", "exp" => NOW + 10 })
        .send()
        .unwrap();
    db.update_item("Sessions")
        .key(item! { "id" => "s" })
        .update_expression("SET #e = :e")
        .name("#e", "exp")
        .value(":e", NOW + 1000)
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(20));
    assert_eq!(db.run_ttl_sweep_now().unwrap(), 0);
    // Disabled TTL deletes nothing.
    db.update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(false)
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(2000));
    assert_eq!(db.run_ttl_sweep_now().unwrap(), 0);
}

#[test]
fn the_background_sweep_deletes_expired_items_by_itself() {
    let db = Database::memory_with(
        DatabaseOptions::default().ttl_sweep_interval(Duration::from_millis(1)),
    )
    .unwrap();
    db.create_table("Sessions")
        .partition_key("id", ScalarType::S)
        .send()
        .unwrap();
    db.update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(true)
        .send()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    db.put_item("Sessions")
        .item(item! { "id" => "s", "exp" => now - 1 })
        .send()
        .unwrap();
    assert!(db.wait_for_background_sweep());
    let item = db
        .get_item("Sessions")
        .key(item! { "id" => "s" })
        .send()
        .unwrap()
        .item;
    assert!(
        item.is_none(),
        "the background sweep deleted the expired item"
    );
    db.close().unwrap();
}

#[test]
fn an_option_hides_expired_items_from_reads_until_they_are_swept() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(NOW));
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .background_threads(false)
            .ttl_hide_expired_items(true),
    )
    .unwrap();
    db.create_table("Sessions")
        .partition_key("id", ScalarType::S)
        .send()
        .unwrap();
    db.update_time_to_live("Sessions")
        .attribute_name("exp")
        .enabled(true)
        .send()
        .unwrap();
    db.put_item("Sessions")
        .item(item! { "id" => "a", "exp" => NOW + 10 })
        .send()
        .unwrap();
    db.put_item("Sessions")
        .item(item! { "id" => "b", "exp" => NOW + 1000 })
        .send()
        .unwrap();
    let get = |id: &str| {
        db.get_item("Sessions")
            .key(item! { "id" => id })
            .send()
            .unwrap()
            .item
    };
    assert!(get("a").is_some());
    clock.advance(Duration::from_secs(10));
    assert!(get("a").is_none(), "expired: hidden before the sweep");
    assert!(get("b").is_some());
    let scanned = db.scan("Sessions").send().unwrap();
    assert_eq!((scanned.count, scanned.scanned_count), (1, 2));
    let batch = db
        .batch_get_item()
        .request_items(
            "Sessions",
            nimbus::kv::KeysAndAttributes {
                keys: vec![item! { "id" => "a" }, item! { "id" => "b" }],
                ..Default::default()
            },
        )
        .send()
        .unwrap();
    assert_eq!(batch.responses["Sessions"].len(), 1);
    let transact = db
        .transact_get_items()
        .item(nimbus::kv::TransactGet::new(
            "Sessions",
            item! { "id" => "a" },
        ))
        .send()
        .unwrap();
    assert_eq!(transact.responses, [None]);
    // The item is still stored until the sweep deletes it.
    assert_eq!(db.run_ttl_sweep_now().unwrap(), 1);
}
