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
    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut total = 0;
    for shard in &shards {
        let mut iterator = Some(
            db.get_shard_iterator(&arn, &shard.shard_id, ShardIteratorType::TrimHorizon)
                .send()
                .unwrap()
                .shard_iterator,
        );
        while let Some(current) = iterator {
            let page = db.get_records(&current).send().unwrap();
            let empty = page.records.is_empty();
            for record in page.records {
                total += 1;
                let image = record.dynamodb.new_image.unwrap();
                seen.entry(image["pk"].as_s().unwrap().to_owned())
                    .or_default()
                    .push(image["round"].as_n().unwrap().to_i64().unwrap());
            }
            iterator = page.next_shard_iterator.filter(|_| !empty);
        }
    }
    assert_eq!(total, 120);
    assert_eq!(seen.len(), 60);
    assert!(seen.values().all(|rounds| rounds == &[0, 1]), "{seen:?}");
}
