//! A split's count of its left child is exact under writes made between
//! its snapshot and its apply step.

use super::*;
use crate::{Database, ScalarType, item};

fn put(db: &Database, pk: &str, bytes: usize) {
    db.put_item("Tbl")
        .item(item! { "pk" => pk, "pad" => "x".repeat(bytes) })
        .send()
        .unwrap();
}

#[test]
fn writes_during_the_count_are_added_by_the_probe() {
    let db = Database::memory().unwrap();
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    for n in 0..40 {
        put(&db, &format!("k{n}"), 50);
    }
    let inner = &db.inner;
    let table = inner.kv.table("Tbl").unwrap();
    let parent = table.partitions.map().partitions()[0].id;
    let at = u64::MAX / 2;
    let counting = begin_split(inner, &table, parent, at).unwrap().unwrap();
    // Between the snapshot and the apply step: new items, overwrites and
    // deletes on both sides of `at`.
    for n in 0..40 {
        match n % 4 {
            0 => put(&db, &format!("new{n}"), 70),
            1 => put(&db, &format!("k{n}"), 300),
            2 => {
                db.delete_item("Tbl")
                    .key(item! { "pk" => format!("k{n}") })
                    .send()
                    .unwrap();
            }
            _ => {}
        }
    }
    let left = counting.count_left(inner).unwrap();
    finish_split(inner, &table, counting, left)
        .unwrap()
        .unwrap();

    let map = table.partitions.map();
    let children = map.partitions();
    assert_eq!(children.len(), 2);
    let before_recount: Vec<(u64, u64)> = children.iter().map(|p| p.counts()).collect();
    recount(&inner.engine, table.definition().keyspace, &map).unwrap();
    let recounted: Vec<(u64, u64)> = children.iter().map(|p| p.counts()).collect();
    assert_eq!(before_recount, recounted);
    assert!(
        recounted.iter().all(|(items, _)| *items > 0),
        "{recounted:?}"
    );
}
