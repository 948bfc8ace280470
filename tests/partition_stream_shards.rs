//! A partition split of a table with a stream closes the shard covering
//! the split token and opens two children naming it as parent; every
//! change is recorded exactly once across parent and children, and each
//! item's records stay in order.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;

use nimbus::kv::{ShardIteratorType, StreamSpecification, StreamViewType};
use nimbus::{Database, DatabaseOptions, ScalarType, item};

#[test]
fn a_size_split_splits_the_stream_shard_without_losing_a_record() {
    let db = Database::memory_with(
        DatabaseOptions::default()
            .partition_split_bytes(8 * 1024)
            .background_threads(false),
    )
    .unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(StreamViewType::NewImage),
        })
        .send()
        .unwrap();
    // Two writes per item (insert, then modify) across the splits.
    for round in 0..2 {
        for n in 0..60 {
            db.put_item("Tbl")
                .item(item! { "pk" => format!("k{n:03}"), "round" => round, "pad" => "x".repeat(400) })
                .send()
                .unwrap();
        }
    }
    let table = db.describe_table("Tbl").send().unwrap().table;
    assert!(table.partitions.len() > 1, "the table split");
    let arn = table.latest_stream_arn.unwrap();
    let shards = db
        .describe_stream(&arn)
        .send()
        .unwrap()
        .stream_description
        .shards;
    assert_eq!(
        shards.len(),
        2 * table.partitions.len() - 1,
        "one shard per partition, plus every closed parent"
    );
    let closed = shards
        .iter()
        .filter(|s| s.sequence_number_range.ending_sequence_number.is_some())
        .count();
    assert_eq!(closed, table.partitions.len() - 1);
    for shard in &shards {
        if let Some(parent) = &shard.parent_shard_id {
            assert!(shards.iter().any(|s| &s.shard_id == parent), "lineage");
        }
    }
    // Every record exactly once; per item, round 0 before round 1.
    let seen = records_by_item(&db, &arn);
    assert_eq!(seen.values().map(Vec::len).sum::<usize>(), 120);
    assert_eq!(seen.len(), 60);
    assert!(seen.values().all(|rounds| rounds == &[0, 1]), "{seen:?}");
}

/// The `round` of every record of every shard of stream `arn`, by item.
fn records_by_item(db: &Database, arn: &str) -> BTreeMap<String, Vec<i64>> {
    let shards = db
        .describe_stream(arn)
        .send()
        .unwrap()
        .stream_description
        .shards;
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for shard in &shards {
        let mut iterator = Some(
            db.get_shard_iterator(arn, &shard.shard_id, ShardIteratorType::TrimHorizon)
                .send()
                .unwrap()
                .shard_iterator,
        );
        while let Some(current) = iterator {
            let page = db.get_records(&current).send().unwrap();
            let empty = page.records.is_empty();
            for record in page.records {
                let image = record.dynamodb.new_image.unwrap();
                seen.entry(image["pk"].as_s().unwrap().to_owned())
                    .or_default()
                    .push(image["round"].as_n().unwrap().to_i64().unwrap());
            }
            iterator = page.next_shard_iterator.filter(|_| !empty);
        }
    }
    seen
}

#[test]
fn a_stream_opens_one_shard_per_partition() {
    let db = Database::memory_with(
        DatabaseOptions::default()
            .initial_partitions(4)
            .background_threads(false),
    )
    .unwrap();
    let spec = StreamSpecification {
        stream_enabled: true,
        stream_view_type: Some(StreamViewType::NewImage),
    };
    db.create_table("AtCreation")
        .partition_key("pk", ScalarType::S)
        .stream_specification(spec)
        .send()
        .unwrap();
    db.create_table("Later")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    db.update_table("Later")
        .stream_specification(spec)
        .send()
        .unwrap();
    for table in ["AtCreation", "Later"] {
        let described = db.describe_table(table).send().unwrap().table;
        assert_eq!(described.partitions.len(), 4);
        let arn = described.latest_stream_arn.unwrap();
        let shards = db
            .describe_stream(&arn)
            .send()
            .unwrap()
            .stream_description
            .shards;
        assert_eq!(shards.len(), 4, "{table}: one open shard per partition");
        assert!(shards.iter().all(|s| s.parent_shard_id.is_none()
            && s.sequence_number_range.ending_sequence_number.is_none()));
        for n in 0..40 {
            db.put_item(table)
                .item(item! { "pk" => format!("k{n:02}"), "round" => 0 })
                .send()
                .unwrap();
        }
        let seen = records_by_item(&db, &arn);
        assert_eq!(seen.len(), 40, "{table}: every write recorded once");
        assert!(seen.values().all(|rounds| rounds == &[0]));
    }
}
