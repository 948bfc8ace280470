//! Multi-item writes on indexed tables: BatchWriteItem and
//! TransactWriteItems report capacity per index (`INDEXES`) and the item
//! collections they changed (`ReturnItemCollectionMetrics::Size`), as
//! PutItem does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use nimbus::kv::{
    ConsumedCapacity, GlobalSecondaryIndex, IndexProjection, LocalSecondaryIndex,
    ReturnConsumedCapacity, ReturnItemCollectionMetrics, TransactPut,
};
use nimbus::{Database, Item, ScalarType, item};

/// `Orders`: pk `customer`, sk `order`; LSI `ByDate` (KEYS_ONLY), GSI
/// `ByStatus`.
fn orders(db: &Database) {
    db.create_table("Orders")
        .partition_key("customer", ScalarType::S)
        .sort_key("order", ScalarType::N)
        .attribute_definition("date", ScalarType::S)
        .attribute_definition("status", ScalarType::S)
        .local_secondary_index(
            LocalSecondaryIndex::new("ByDate", "customer", "date")
                .projection(IndexProjection::keys_only()),
        )
        .global_secondary_index(GlobalSecondaryIndex::new("ByStatus", "status"))
        .send()
        .unwrap();
}

fn order(customer: &str, n: i64) -> Item {
    item! { "customer" => customer, "order" => n, "date" => "2024-01", "status" => "open" }
}

fn write_units(capacity: &ConsumedCapacity) -> (f64, f64, f64, f64) {
    (
        capacity.write_capacity_units,
        capacity.table.unwrap().write_capacity_units,
        capacity.local_secondary_indexes["ByDate"].write_capacity_units,
        capacity.global_secondary_indexes["ByStatus"].write_capacity_units,
    )
}

#[test]
fn batch_writes_report_index_capacity_and_item_collections() {
    let db = Database::memory().unwrap();
    orders(&db);
    let output = db
        .batch_write_item()
        .put("Orders", order("ada", 1))
        .put("Orders", order("ada", 2))
        .put("Orders", order("bob", 1))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .unwrap();
    assert_eq!(output.consumed_capacity.len(), 1);
    assert_eq!(
        write_units(&output.consumed_capacity[0]),
        (9.0, 3.0, 3.0, 3.0),
        "three items, each with one LSI and one GSI entry"
    );
    let collections = &output.item_collection_metrics["Orders"];
    let size_of = |customer: &str| {
        collections
            .iter()
            .find(|m| m.item_collection_key == item! { "customer" => customer })
            .unwrap()
            .size_bytes
    };
    assert_eq!(collections.len(), 2, "one entry per item collection");
    assert_eq!(
        size_of("ada"),
        2 * size_of("bob"),
        "the size after the whole batch"
    );
    // The size agrees with what a single write then reports.
    let single = db
        .put_item("Orders")
        .item(order("bob", 1))
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .unwrap();
    assert_eq!(
        single.item_collection_metrics.unwrap().size_bytes,
        size_of("bob")
    );

    // TOTAL leaves out the breakdown; NONE reports nothing.
    let total = db
        .batch_write_item()
        .delete("Orders", item! { "customer" => "ada", "order" => 1 })
        .return_consumed_capacity(ReturnConsumedCapacity::Total)
        .send()
        .unwrap();
    let capacity = &total.consumed_capacity[0];
    assert_eq!(capacity.write_capacity_units, 3.0);
    assert!(capacity.table.is_none() && capacity.global_secondary_indexes.is_empty());
    assert!(total.item_collection_metrics.is_empty());
}

#[test]
fn transactions_report_index_capacity_and_item_collections() {
    let db = Database::memory().unwrap();
    orders(&db);
    db.create_table("Plain")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    let output = db
        .transact_write_items()
        .item(TransactPut::new("Orders", order("ada", 1)))
        .item(TransactPut::new("Orders", order("bob", 1)))
        .item(TransactPut::new("Plain", item! { "pk" => "x" }))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .unwrap();
    let orders_capacity = output
        .consumed_capacity
        .iter()
        .find(|c| c.table_name == "Orders")
        .unwrap();
    // Table writes cost double in a transaction; index writes do not.
    assert_eq!(write_units(orders_capacity), (8.0, 4.0, 2.0, 2.0));
    let plain = output
        .consumed_capacity
        .iter()
        .find(|c| c.table_name == "Plain")
        .unwrap();
    assert_eq!(plain.write_capacity_units, 2.0);
    let collections = &output.item_collection_metrics;
    assert_eq!(collections.len(), 1, "Plain has no local index");
    let keys: Vec<&Item> = collections["Orders"]
        .iter()
        .map(|m| &m.item_collection_key)
        .collect();
    assert_eq!(
        keys,
        [
            &item! { "customer" => "ada" },
            &item! { "customer" => "bob" }
        ]
    );
    assert!(collections["Orders"].iter().all(|m| m.size_bytes > 0));
}
