//! Behaviour tests of DynamoDB Streams: which changes produce records and
//! what they carry, shards and their lineage across splits, iterator types
//! and expiry, retention trimming, and streams across disable and reopen.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::{
    ConditionCheck, Error, OperationType, Record, ShardIteratorType, StreamSpecification,
    StreamStatus, StreamViewType, TransactPut, TransactUpdate, WriteRequest,
};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

const START_SECS: u64 = 1_800_000_000;

fn spec(view: StreamViewType) -> StreamSpecification {
    StreamSpecification {
        stream_enabled: true,
        stream_view_type: Some(view),
    }
}

fn options(clock: &ManualClock) -> DatabaseOptions {
    DatabaseOptions::default()
        .clock(clock.clone())
        .background_threads(false)
}

fn clock() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + Duration::from_secs(START_SECS))
}

fn db_with_stream(view: StreamViewType) -> (Database, ManualClock, String) {
    let clock = clock();
    let db = Database::memory_with(options(&clock)).unwrap();
    let arn = create(&db, "Tbl", view);
    (db, clock, arn)
}

fn create(db: &Database, table: &str, view: StreamViewType) -> String {
    db.create_table(table)
        .partition_key("pk", ScalarType::S)
        .stream_specification(spec(view))
        .send()
        .unwrap();
    stream_arn(db, table)
}

fn stream_arn(db: &Database, table: &str) -> String {
    db.describe_table(table)
        .send()
        .unwrap()
        .table
        .latest_stream_arn
        .unwrap()
}

/// Every record of every shard, reading parents before children.
fn read_all(db: &Database, arn: &str) -> Vec<Record> {
    let shards = db
        .describe_stream(arn)
        .send()
        .unwrap()
        .stream_description
        .shards;
    shards
        .iter()
        .flat_map(|shard| read_shard(db, arn, &shard.shard_id))
        .collect()
}

/// The records of one shard from TRIM_HORIZON: to its end if it is
/// closed, until a page comes back empty if it is open.
fn read_shard(db: &Database, arn: &str, shard: &str) -> Vec<Record> {
    let mut iterator = Some(
        db.get_shard_iterator(arn, shard, ShardIteratorType::TrimHorizon)
            .send()
            .unwrap()
            .shard_iterator,
    );
    let mut records = Vec::new();
    while let Some(current) = iterator {
        let page = db.get_records(&current).send().unwrap();
        let empty = page.records.is_empty();
        records.extend(page.records);
        iterator = page.next_shard_iterator.filter(|_| !empty);
    }
    records
}

/// The id of the stream's first shard.
fn first_shard(db: &Database, arn: &str) -> String {
    db.describe_stream(arn)
        .send()
        .unwrap()
        .stream_description
        .shards[0]
        .shard_id
        .clone()
}

fn events(records: &[Record]) -> Vec<OperationType> {
    records.iter().map(|r| r.event_name).collect()
}

#[test]
fn insert_modify_and_remove_carry_keys_and_both_images() {
    let (db, _, arn) = db_with_stream(StreamViewType::NewAndOldImages);
    db.put_item("Tbl")
        .item(item! { "pk" => "a", "v" => 1 })
        .send()
        .unwrap();
    db.put_item("Tbl")
        .item(item! { "pk" => "a", "v" => 2 })
        .send()
        .unwrap();
    db.update_item("Tbl")
        .key(item! { "pk" => "a" })
        .update_expression("SET v = :v")
        .value(":v", 3)
        .send()
        .unwrap();
    db.delete_item("Tbl")
        .key(item! { "pk" => "a" })
        .send()
        .unwrap();
    let records = read_all(&db, &arn);
    use OperationType::*;
    assert_eq!(events(&records), [Insert, Modify, Modify, Remove]);
    let r = &records[1].dynamodb;
    assert_eq!(r.keys, item! { "pk" => "a" });
    assert_eq!(r.old_image, Some(item! { "pk" => "a", "v" => 1 }));
    assert_eq!(r.new_image, Some(item! { "pk" => "a", "v" => 2 }));
    assert_eq!(records[0].dynamodb.old_image, None);
    assert_eq!(records[3].dynamodb.new_image, None);
    assert_eq!(
        records[0].dynamodb.approximate_creation_date_time,
        UNIX_EPOCH + Duration::from_secs(START_SECS)
    );
    assert!(records.iter().all(|r| r.user_identity.is_none()));
    assert!(records.iter().all(|r| r.event_source == "aws:dynamodb"));
    let sequences: Vec<&str> = records
        .iter()
        .map(|r| r.dynamodb.sequence_number.as_str())
        .collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    assert!(sequences.iter().all(|s| s.len() >= 21));
    assert!(records.iter().all(|r| r.dynamodb.size_bytes > 0));
}

#[test]
fn each_view_type_keeps_only_its_images() {
    for (view, new, old) in [
        (StreamViewType::KeysOnly, false, false),
        (StreamViewType::NewImage, true, false),
        (StreamViewType::OldImage, false, true),
        (StreamViewType::NewAndOldImages, true, true),
    ] {
        let (db, _, arn) = db_with_stream(view);
        db.put_item("Tbl")
            .item(item! { "pk" => "a", "v" => 1 })
            .send()
            .unwrap();
        db.put_item("Tbl")
            .item(item! { "pk" => "a", "v" => 2 })
            .send()
            .unwrap();
        let records = read_all(&db, &arn);
        let modify = &records[1].dynamodb;
        assert_eq!(modify.stream_view_type, view);
        assert_eq!(modify.keys, item! { "pk" => "a" });
        assert_eq!(modify.new_image.is_some(), new, "{view:?}");
        assert_eq!(modify.old_image.is_some(), old, "{view:?}");
    }
}

#[test]
fn writes_that_change_nothing_produce_no_record() {
    let (db, _, arn) = db_with_stream(StreamViewType::NewAndOldImages);
    db.put_item("Tbl")
        .item(item! { "pk" => "a", "v" => 1 })
        .send()
        .unwrap();
    // The same item again, a missing attribute removed, a missing item
    // deleted (alone and in a batch), a no-op SET.
    db.put_item("Tbl")
        .item(item! { "pk" => "a", "v" => 1 })
        .send()
        .unwrap();
    db.update_item("Tbl")
        .key(item! { "pk" => "a" })
        .update_expression("REMOVE absent")
        .send()
        .unwrap();
    db.update_item("Tbl")
        .key(item! { "pk" => "a" })
        .update_expression("SET v = :v")
        .value(":v", 1)
        .send()
        .unwrap();
    db.delete_item("Tbl")
        .key(item! { "pk" => "nobody" })
        .send()
        .unwrap();
    db.batch_write_item()
        .request_items(
            "Tbl",
            vec![WriteRequest::Delete(item! { "pk" => "nobody" })],
        )
        .send()
        .unwrap();
    assert_eq!(events(&read_all(&db, &arn)), [OperationType::Insert]);
}

#[test]
fn a_transaction_writes_one_record_per_changed_item() {
    let (db, _, arn) = db_with_stream(StreamViewType::NewImage);
    db.put_item("Tbl")
        .item(item! { "pk" => "b", "n" => 1 })
        .send()
        .unwrap();
    db.put_item("Tbl")
        .item(item! { "pk" => "c" })
        .send()
        .unwrap();
    db.transact_write_items()
        .item(TransactPut::new("Tbl", item! { "pk" => "a" }))
        .item(
            TransactUpdate::new("Tbl", item! { "pk" => "b" }, "SET n = n + :one").value(":one", 1),
        )
        .item(
            ConditionCheck::new("Tbl", item! { "pk" => "c" })
                .condition_expression("attribute_exists(pk)"),
        )
        .send()
        .unwrap();
    let records = read_all(&db, &arn);
    assert_eq!(records.len(), 4);
    let last_two: Vec<(OperationType, Item)> = records[2..]
        .iter()
        .map(|r| (r.event_name, r.dynamodb.keys.clone()))
        .collect();
    assert_eq!(
        last_two,
        [
            (OperationType::Insert, item! { "pk" => "a" }),
            (OperationType::Modify, item! { "pk" => "b" }),
        ]
    );
    // A cancelled transaction leaves nothing.
    let cancelled = db
        .transact_write_items()
        .item(TransactPut::new("Tbl", item! { "pk" => "d" }))
        .item(
            ConditionCheck::new("Tbl", item! { "pk" => "zz" })
                .condition_expression("attribute_exists(pk)"),
        )
        .send();
    assert!(matches!(cancelled, Err(Error::TransactionCanceled { .. })));
    assert_eq!(read_all(&db, &arn).len(), 4);
}

#[test]
fn a_forced_split_closes_the_parent_and_loses_or_repeats_nothing() {
    let (db, _, arn) = db_with_stream(StreamViewType::NewImage);
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut write = |db: &Database, round: i64| {
        for n in 0..40 {
            let pk = format!("k{n}");
            db.put_item("Tbl")
                .item(item! { "pk" => pk.clone(), "round" => round })
                .send()
                .unwrap();
            expected.entry(pk).or_default().push(round);
        }
    };
    write(&db, 1);
    let (left, right) = db.split_stream_shard("Tbl", 1 << 63).unwrap();
    write(&db, 2);
    db.split_stream_shard("Tbl", 1 << 62).unwrap();
    write(&db, 3);

    let description = db.describe_stream(&arn).send().unwrap().stream_description;
    assert_eq!(description.shards.len(), 5);
    let parent = &description.shards[0];
    assert!(parent.parent_shard_id.is_none());
    assert!(
        parent
            .sequence_number_range
            .ending_sequence_number
            .is_some()
    );
    let children: Vec<_> = description.shards[1..3].iter().collect();
    assert_eq!(children[0].shard_id, left);
    assert_eq!(children[1].shard_id, right);
    for child in &children {
        assert_eq!(child.parent_shard_id.as_ref(), Some(&parent.shard_id));
        assert!(
            child.sequence_number_range.starting_sequence_number
                > *parent
                    .sequence_number_range
                    .ending_sequence_number
                    .as_ref()
                    .unwrap()
        );
    }
    let grandchildren = &description.shards[3..];
    assert!(
        grandchildren
            .iter()
            .all(|s| s.parent_shard_id.as_ref() == Some(&left))
    );

    // A drained closed shard ends its iterator chain.
    let iterator = db
        .get_shard_iterator(&arn, &parent.shard_id, ShardIteratorType::TrimHorizon)
        .send()
        .unwrap()
        .shard_iterator;
    let page = db.get_records(&iterator).limit(39).send().unwrap();
    assert_eq!(page.records.len(), 39);
    let after = db
        .get_records(page.next_shard_iterator.unwrap())
        .send()
        .unwrap();
    assert!(after.records.len() == 1 && after.next_shard_iterator.is_none());

    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for record in read_all(&db, &arn) {
        let image = record.dynamodb.new_image.unwrap();
        let pk = image.get("pk").unwrap().as_s().unwrap().to_owned();
        let round = image
            .get("round")
            .unwrap()
            .as_n()
            .unwrap()
            .to_i64()
            .unwrap();
        seen.entry(pk).or_default().push(round);
    }
    // Every write exactly once, each item's in order.
    assert_eq!(seen, expected);
}

#[test]
fn iterator_types_start_where_they_say() {
    let (db, _, arn) = db_with_stream(StreamViewType::KeysOnly);
    for n in 0..5 {
        db.put_item("Tbl")
            .item(item! { "pk" => format!("k{n}") })
            .send()
            .unwrap();
    }
    let shard = first_shard(&db, &arn);
    let all = read_all(&db, &arn);
    let third = all[2].dynamodb.sequence_number.clone();
    let iterator = |kind, seq: Option<&str>| {
        let mut request = db.get_shard_iterator(&arn, &shard, kind);
        if let Some(seq) = seq {
            request = request.sequence_number(seq);
        }
        request.send().map(|o| o.shard_iterator)
    };
    let read = |it: String| db.get_records(it).send().unwrap();
    let at = read(iterator(ShardIteratorType::AtSequenceNumber, Some(&third)).unwrap());
    assert_eq!(at.records.len(), 3);
    assert_eq!(at.records[0].dynamodb.sequence_number, third);
    let after = read(iterator(ShardIteratorType::AfterSequenceNumber, Some(&third)).unwrap());
    assert_eq!(after.records.len(), 2);
    let latest = read(iterator(ShardIteratorType::Latest, None).unwrap());
    assert!(latest.records.is_empty());
    db.put_item("Tbl")
        .item(item! { "pk" => "new" })
        .send()
        .unwrap();
    let next = read(latest.next_shard_iterator.unwrap());
    assert_eq!(next.records.len(), 1);
    assert_eq!(next.records[0].dynamodb.keys, item! { "pk" => "new" });
    let limited = db
        .get_records(iterator(ShardIteratorType::TrimHorizon, None).unwrap())
        .limit(2)
        .send()
        .unwrap();
    assert_eq!(limited.records.len(), 2);
    assert_eq!(read(limited.next_shard_iterator.unwrap()).records.len(), 4);

    assert!(matches!(
        iterator(ShardIteratorType::AtSequenceNumber, None),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        iterator(ShardIteratorType::AtSequenceNumber, Some("12x")),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        db.get_shard_iterator(&arn, "shardId-nope", ShardIteratorType::Latest)
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
    assert!(matches!(
        db.get_shard_iterator("arn:nope", &shard, ShardIteratorType::Latest)
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
    let it = iterator(ShardIteratorType::TrimHorizon, None).unwrap();
    assert!(matches!(
        db.get_records(&it).limit(1001).send(),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        db.get_records("not an iterator").send(),
        Err(Error::Validation(_))
    ));
}

#[test]
fn iterators_expire_after_fifteen_minutes() {
    let (db, clock, arn) = db_with_stream(StreamViewType::KeysOnly);
    let shard = first_shard(&db, &arn);
    let iterator = db
        .get_shard_iterator(&arn, &shard, ShardIteratorType::TrimHorizon)
        .send()
        .unwrap()
        .shard_iterator;
    clock.advance(Duration::from_secs(15 * 60));
    let page = db.get_records(&iterator).send().unwrap();
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        db.get_records(&iterator).send(),
        Err(Error::ExpiredIterator(_))
    ));
    // The returned iterator was issued later, so it still works.
    db.get_records(page.next_shard_iterator.unwrap())
        .send()
        .unwrap();
}

#[test]
fn records_past_retention_are_trimmed() {
    let (db, clock, arn) = db_with_stream(StreamViewType::KeysOnly);
    db.put_item("Tbl")
        .item(item! { "pk" => "old" })
        .send()
        .unwrap();
    let shard = first_shard(&db, &arn);
    let old_seq = read_all(&db, &arn)[0].dynamodb.sequence_number.clone();
    clock.advance(Duration::from_secs(23 * 3600));
    db.put_item("Tbl")
        .item(item! { "pk" => "young" })
        .send()
        .unwrap();
    db.trim_streams_now().unwrap();
    assert_eq!(read_all(&db, &arn).len(), 2, "nothing is 24 h old yet");
    clock.advance(Duration::from_secs(3601));
    db.trim_streams_now().unwrap();
    let left = read_all(&db, &arn);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].dynamodb.keys, item! { "pk" => "young" });
    assert!(matches!(
        db.get_shard_iterator(&arn, &shard, ShardIteratorType::AtSequenceNumber)
            .sequence_number(&old_seq)
            .send(),
        Err(Error::TrimmedDataAccess(_))
    ));
}

#[test]
fn an_iterator_behind_the_trim_floor_reports_trimmed_data() {
    let (db, clock, arn) = db_with_stream(StreamViewType::KeysOnly);
    db.put_item("Tbl")
        .item(item! { "pk" => "a" })
        .send()
        .unwrap();
    let shard = first_shard(&db, &arn);
    let iterator = db
        .get_shard_iterator(&arn, &shard, ShardIteratorType::TrimHorizon)
        .send()
        .unwrap()
        .shard_iterator;
    clock.advance(Duration::from_secs(24 * 3600 + 1));
    db.trim_streams_now().unwrap();
    // The iterator itself expired too; a fresh one at the old position is
    // what a checkpointed consumer would hold.
    assert!(db.get_records(&iterator).send().is_err());
}

#[test]
fn trimming_one_shard_does_not_report_trimmed_data_in_another() {
    let clock = clock();
    let db = Database::memory_with(
        options(&clock)
            .initial_partitions(2)
            .stream_retention(Duration::from_secs(60)),
    )
    .unwrap();
    let arn = create(&db, "Tbl", StreamViewType::KeysOnly);
    let shards: Vec<String> = db
        .describe_stream(&arn)
        .send()
        .unwrap()
        .stream_description
        .shards
        .into_iter()
        .map(|s| s.shard_id)
        .collect();
    assert_eq!(shards.len(), 2);
    // A key whose records go to the first shard.
    let busy_key = (0..64)
        .map(|i| format!("k{i}"))
        .find(|key| {
            db.put_item("Tbl")
                .item(item! { "pk" => key.as_str() })
                .send()
                .unwrap();
            read_shard(&db, &arn, &shards[0])
                .iter()
                .any(|r| r.dynamodb.keys == item! { "pk" => key.as_str() })
        })
        .expect("some key lands in the first shard");
    // A reader of the second shard, caught up; then only the first shard
    // is written, and its records (numbered past the reader) are trimmed.
    let [busy, quiet] = [&shards[0], &shards[1]].map(|shard| {
        db.get_shard_iterator(&arn, shard, ShardIteratorType::Latest)
            .send()
            .unwrap()
            .shard_iterator
    });
    db.put_item("Tbl")
        .item(item! { "pk" => busy_key.as_str(), "v" => 1 })
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(61));
    db.trim_streams_now().unwrap();
    assert!(read_shard(&db, &arn, &shards[0]).is_empty());
    // The first shard's reader lost a record, the second's nothing.
    assert!(matches!(
        db.get_records(&busy).send(),
        Err(Error::TrimmedDataAccess(_))
    ));
    let page = db.get_records(&quiet).send().unwrap();
    assert!(page.records.is_empty());
    // And it goes on reading the shard's new records.
    let mut iterator = page.next_shard_iterator.unwrap();
    let mut seen = Vec::new();
    for i in 0..64 {
        db.put_item("Tbl")
            .item(item! { "pk" => format!("q{i}") })
            .send()
            .unwrap();
        let page = db.get_records(&iterator).send().unwrap();
        seen.extend(page.records);
        iterator = page.next_shard_iterator.unwrap();
        if !seen.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 1, "a new record of the quiet shard");
}

#[test]
fn a_sequence_number_not_yet_handed_out_is_invalid() {
    let (db, _clock, arn) = db_with_stream(StreamViewType::KeysOnly);
    db.put_item("Tbl")
        .item(item! { "pk" => "a" })
        .send()
        .unwrap();
    let records = read_all(&db, &arn);
    let last: u64 = records[0].dynamodb.sequence_number.parse().unwrap();
    let shard = first_shard(&db, &arn);
    for kind in [
        ShardIteratorType::AtSequenceNumber,
        ShardIteratorType::AfterSequenceNumber,
    ] {
        // The last record's number is valid, the next one is not yet.
        assert!(
            db.get_shard_iterator(&arn, &shard, kind)
                .sequence_number(last.to_string())
                .send()
                .is_ok()
        );
        assert!(matches!(
            db.get_shard_iterator(&arn, &shard, kind)
                .sequence_number((last + 1).to_string())
                .send(),
            Err(Error::Validation(_))
        ));
    }
}

#[test]
fn a_disabled_stream_stays_readable_and_reenabling_makes_a_new_one() {
    let (db, clock, old_arn) = db_with_stream(StreamViewType::KeysOnly);
    db.put_item("Tbl")
        .item(item! { "pk" => "a" })
        .send()
        .unwrap();
    db.update_table("Tbl")
        .stream_specification(StreamSpecification {
            stream_enabled: false,
            stream_view_type: None,
        })
        .send()
        .unwrap();
    db.put_item("Tbl")
        .item(item! { "pk" => "b" })
        .send()
        .unwrap();
    let old = db
        .describe_stream(&old_arn)
        .send()
        .unwrap()
        .stream_description;
    assert_eq!(old.stream_status, StreamStatus::Disabled);
    assert!(
        old.shards[0]
            .sequence_number_range
            .ending_sequence_number
            .is_some()
    );
    assert_eq!(read_all(&db, &old_arn).len(), 1);

    clock.advance(Duration::from_secs(1));
    db.update_table("Tbl")
        .stream_specification(spec(StreamViewType::NewImage))
        .send()
        .unwrap();
    let new_arn = stream_arn(&db, "Tbl");
    assert_ne!(new_arn, old_arn);
    db.put_item("Tbl")
        .item(item! { "pk" => "c" })
        .send()
        .unwrap();
    assert_eq!(events(&read_all(&db, &new_arn)), [OperationType::Insert]);
    let listed = db.list_streams().table_name("Tbl").send().unwrap().streams;
    assert_eq!(listed.len(), 2);

    clock.advance(Duration::from_secs(24 * 3600));
    db.trim_streams_now().unwrap();
    assert!(matches!(
        db.describe_stream(&old_arn).send(),
        Err(Error::ResourceNotFound(_))
    ));
    assert_eq!(db.list_streams().send().unwrap().streams.len(), 1);
}

#[test]
fn a_stream_reenabled_within_the_millisecond_gets_an_arn_of_its_own() {
    let (db, _clock, first_arn) = db_with_stream(StreamViewType::KeysOnly);
    let disable = StreamSpecification {
        stream_enabled: false,
        stream_view_type: None,
    };
    let mut arns = vec![first_arn];
    // The clock stands still: every stream is created in one millisecond.
    for round in 0..3 {
        db.update_table("Tbl")
            .stream_specification(disable)
            .send()
            .unwrap();
        db.update_table("Tbl")
            .stream_specification(spec(StreamViewType::NewImage))
            .send()
            .unwrap();
        let arn = stream_arn(&db, "Tbl");
        assert!(!arns.contains(&arn), "round {round}: {arn} reused");
        arns.push(arn);
    }
    let latest = arns.last().unwrap();
    db.put_item("Tbl")
        .item(item! { "pk" => "a" })
        .send()
        .unwrap();
    let description = db
        .describe_stream(latest)
        .send()
        .unwrap()
        .stream_description;
    assert_eq!(description.stream_status, StreamStatus::Enabled);
    assert_eq!(events(&read_all(&db, latest)), [OperationType::Insert]);
    let mut listed: Vec<String> = db
        .list_streams()
        .table_name("Tbl")
        .send()
        .unwrap()
        .streams
        .into_iter()
        .map(|s| s.stream_arn)
        .collect();
    listed.sort();
    arns.sort();
    assert_eq!(listed, arns);
}

#[test]
fn deleting_the_table_disables_its_stream() {
    let (db, _, arn) = db_with_stream(StreamViewType::KeysOnly);
    db.put_item("Tbl")
        .item(item! { "pk" => "a" })
        .send()
        .unwrap();
    db.delete_table("Tbl").send().unwrap();
    let description = db.describe_stream(&arn).send().unwrap().stream_description;
    assert_eq!(description.stream_status, StreamStatus::Disabled);
    assert_eq!(read_all(&db, &arn).len(), 1);
}

#[test]
fn streams_and_sequence_numbers_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let (arn, first) = {
        let db = Database::open_with(dir.path(), options(&clock)).unwrap();
        let arn = create(&db, "Tbl", StreamViewType::KeysOnly);
        db.put_item("Tbl")
            .item(item! { "pk" => "a" })
            .send()
            .unwrap();
        db.split_stream_shard("Tbl", 1 << 63).unwrap();
        db.put_item("Tbl")
            .item(item! { "pk" => "b" })
            .send()
            .unwrap();
        let first = read_all(&db, &arn);
        db.close().unwrap();
        (arn, first)
    };
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    assert_eq!(read_all(&db, &arn), first);
    assert_eq!(
        db.describe_stream(&arn)
            .send()
            .unwrap()
            .stream_description
            .shards
            .len(),
        3
    );
    db.put_item("Tbl")
        .item(item! { "pk" => "c" })
        .send()
        .unwrap();
    let after = read_all(&db, &arn);
    assert_eq!(after.len(), 3);
    let max_before = first
        .iter()
        .map(|r| r.dynamodb.sequence_number.clone())
        .max()
        .unwrap();
    let newest = after
        .iter()
        .find(|r| r.dynamodb.keys == item! { "pk" => "c" })
        .unwrap();
    assert!(newest.dynamodb.sequence_number > max_before);
}

#[test]
fn list_streams_pages() {
    let clock = clock();
    let db = Database::memory_with(options(&clock)).unwrap();
    for table in ["Aaa", "Bbb", "Ccc"] {
        create(&db, table, StreamViewType::KeysOnly);
    }
    let first = db.list_streams().limit(2).send().unwrap();
    assert_eq!(first.streams.len(), 2);
    let rest = db
        .list_streams()
        .exclusive_start_stream_arn(first.last_evaluated_stream_arn.unwrap())
        .send()
        .unwrap();
    assert_eq!(rest.streams.len(), 1);
    assert_eq!(rest.streams[0].table_name, "Ccc");
    assert!(rest.last_evaluated_stream_arn.is_none());
    assert!(matches!(
        db.list_streams().limit(0).send(),
        Err(Error::Validation(_))
    ));
}
