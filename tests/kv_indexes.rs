//! Behaviour tests of global and local secondary indexes: projections,
//! sparse indexes, maintenance on every write, key validation, paging,
//! backfill (also across a crash), deletion, item collections, capacity,
//! and a model test against brute-force scans.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nimbus::kv::{
    Error, GlobalSecondaryIndex, IndexProjection, IndexStatus, LocalSecondaryIndex,
    ReturnConsumedCapacity, ReturnItemCollectionMetrics, Select,
};
use nimbus::storage::sim::SimFileSystem;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

fn validation(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Validation(message)) => message,
        other => panic!("expected a ValidationException, got {other:?}"),
    }
}

/// `Orders`: pk `customer`, sk `order`; LSI `ByDate` (KEYS_ONLY on
/// `date`), LSI `ByTotal` (INCLUDE `status` on `total`); GSI `ByStatus`
/// (`status`, `date`, ALL), GSI `ByCity` (`city`, KEYS_ONLY).
fn orders(db: &Database) {
    db.create_table("Orders")
        .partition_key("customer", ScalarType::S)
        .sort_key("order", ScalarType::N)
        .attribute_definition("date", ScalarType::S)
        .attribute_definition("total", ScalarType::N)
        .attribute_definition("status", ScalarType::S)
        .attribute_definition("city", ScalarType::S)
        .local_secondary_index(
            LocalSecondaryIndex::new("ByDate", "customer", "date")
                .projection(IndexProjection::keys_only()),
        )
        .local_secondary_index(
            LocalSecondaryIndex::new("ByTotal", "customer", "total")
                .projection(IndexProjection::include(["status"])),
        )
        .global_secondary_index(GlobalSecondaryIndex::new("ByStatus", "status").sort_key("date"))
        .global_secondary_index(
            GlobalSecondaryIndex::new("ByCity", "city").projection(IndexProjection::keys_only()),
        )
        .send()
        .unwrap();
}

fn order(customer: &str, n: i64, status: &str, date: &str) -> Item {
    item! {
        "customer" => customer, "order" => n, "status" => status, "date" => date,
        "total" => n * 10, "city" => "Oslo", "note" => format!("order {n}")
    }
}

fn wait_active(db: &Database, table: &str, index: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let description = db.describe_table(table).send().unwrap().table;
        let gsi = description
            .global_secondary_indexes
            .iter()
            .find(|g| g.index_name == index)
            .expect("index listed");
        if gsi.index_status == IndexStatus::Active {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "index {index} never became ACTIVE"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn projections_are_honoured_and_local_indexes_fetch_the_rest() {
    let db = Database::memory().unwrap();
    orders(&db);
    for n in 0..5 {
        db.put_item("Orders")
            .item(order("ada", n, "open", &format!("2024-0{}", n + 1)))
            .send()
            .unwrap();
    }
    // KEYS_ONLY: the table's key and the index's key only.
    let page = db
        .query("Orders")
        .index_name("ByDate")
        .key_condition_expression("customer = :c AND #d >= :d")
        .name("#d", "date")
        .value(":c", "ada")
        .value(":d", "2024-03")
        .send()
        .unwrap();
    assert_eq!(page.count, 3);
    for entry in &page.items {
        let names: BTreeSet<&str> = entry.keys().map(String::as_str).collect();
        assert_eq!(names, BTreeSet::from(["customer", "order", "date"]));
    }
    // INCLUDE: the keys and the listed attributes, sorted by the index key.
    let page = db
        .query("Orders")
        .index_name("ByTotal")
        .key_condition_expression("customer = :c")
        .value(":c", "ada")
        .scan_index_forward(false)
        .send()
        .unwrap();
    let names: BTreeSet<&str> = page.items[0].keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["customer", "order", "total", "status"])
    );
    assert_eq!(page.items[0]["total"], 40.into(), "descending by total");
    // ALL_ATTRIBUTES on a local index fetches the base items, and charges
    // the table for them.
    let page = db
        .query("Orders")
        .index_name("ByDate")
        .key_condition_expression("customer = :c")
        .value(":c", "ada")
        .select(Select::AllAttributes)
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .unwrap();
    assert_eq!(page.items[0]["note"], "order 0".into());
    let capacity = page.consumed_capacity.unwrap();
    assert!(capacity.table.unwrap().read_capacity_units > 0.0);
    assert!(capacity.local_secondary_indexes["ByDate"].read_capacity_units > 0.0);
    // A projection naming a non-projected attribute fetches too.
    let page = db
        .query("Orders")
        .index_name("ByDate")
        .key_condition_expression("customer = :c")
        .value(":c", "ada")
        .projection_expression("note")
        .send()
        .unwrap();
    assert_eq!(page.items[4], item! { "note" => "order 4" });
    // KEYS_ONLY global index.
    let page = db
        .query("Orders")
        .index_name("ByCity")
        .key_condition_expression("city = :c")
        .value(":c", "Oslo")
        .send()
        .unwrap();
    assert_eq!(page.count, 5);
    assert!(
        page.items
            .iter()
            .all(|e| e.len() == 3 && !e.contains_key("note"))
    );
    // A global index cannot return attributes it does not store.
    let all = db
        .query("Orders")
        .index_name("ByCity")
        .key_condition_expression("city = :c")
        .value(":c", "Oslo")
        .select(Select::AllAttributes)
        .send();
    assert_eq!(
        validation(all),
        "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not \
         supported for global secondary index ByCity because its projection type is not ALL"
    );
}

#[test]
fn global_indexes_are_sparse_and_follow_every_write() {
    let db = Database::memory().unwrap();
    orders(&db);
    let by_status = |status: &str| -> Vec<i64> {
        db.query("Orders")
            .index_name("ByStatus")
            .key_condition_expression("#s = :s")
            .name("#s", "status")
            .value(":s", status)
            .items()
            .map(|i| i.unwrap()["order"].as_n().unwrap().to_i64().unwrap())
            .collect()
    };
    db.put_item("Orders")
        .item(order("ada", 1, "open", "2024-01"))
        .send()
        .unwrap();
    // No `status`: not in ByStatus (sparse), still in the table.
    db.put_item("Orders")
        .item(item! { "customer" => "ada", "order" => 2, "date" => "2024-02" })
        .send()
        .unwrap();
    assert_eq!(by_status("open"), vec![1]);
    // The index key changes: the entry moves.
    db.update_item("Orders")
        .key(item! { "customer" => "ada", "order" => 1 })
        .update_expression("SET #s = :s")
        .name("#s", "status")
        .value(":s", "shipped")
        .send()
        .unwrap();
    assert_eq!(by_status("open"), Vec::<i64>::new());
    assert_eq!(by_status("shipped"), vec![1]);
    // A projected attribute changes: the entry follows.
    db.update_item("Orders")
        .key(item! { "customer" => "ada", "order" => 1 })
        .update_expression("SET note = :n")
        .value(":n", "late")
        .send()
        .unwrap();
    let entry = db
        .query("Orders")
        .index_name("ByStatus")
        .key_condition_expression("#s = :s")
        .name("#s", "status")
        .value(":s", "shipped")
        .send()
        .unwrap()
        .items
        .remove(0);
    assert_eq!(entry["note"], "late".into());
    // The key attribute disappears: the entry is removed.
    db.update_item("Orders")
        .key(item! { "customer" => "ada", "order" => 1 })
        .update_expression("REMOVE #s")
        .name("#s", "status")
        .send()
        .unwrap();
    assert_eq!(by_status("shipped"), Vec::<i64>::new());
    // A delete removes the entries of every index.
    db.put_item("Orders")
        .item(order("bob", 3, "open", "2024-03"))
        .send()
        .unwrap();
    db.delete_item("Orders")
        .key(item! { "customer" => "bob", "order" => 3 })
        .send()
        .unwrap();
    assert_eq!(by_status("open"), Vec::<i64>::new());
    let description = db.describe_table("Orders").send().unwrap().table;
    let count = |name: &str| {
        description
            .global_secondary_indexes
            .iter()
            .map(|g| (g.index_name.as_str(), g.item_count))
            .chain(
                description
                    .local_secondary_indexes
                    .iter()
                    .map(|l| (l.index_name.as_str(), l.item_count)),
            )
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
    };
    assert_eq!(description.item_count, 2);
    assert_eq!(count("ByStatus"), 0);
    assert_eq!(
        count("ByCity"),
        1,
        "order 1 kept its city; order 3 was deleted"
    );
    assert_eq!(count("ByDate"), 2);
    assert_eq!(count("ByTotal"), 1, "order 1 has a total");
}

#[test]
fn bad_index_key_values_reject_the_whole_write() {
    let db = Database::memory().unwrap();
    orders(&db);
    let wrong_type = db
        .put_item("Orders")
        .item(item! { "customer" => "ada", "order" => 1, "status" => 5 })
        .send();
    assert_eq!(
        validation(wrong_type),
        "One or more parameter values were invalid: Type mismatch for Index Key status \
         Expected: S Actual: N IndexName: ByStatus"
    );
    let empty = db
        .put_item("Orders")
        .item(item! { "customer" => "ada", "order" => 1, "city" => "" })
        .send();
    assert!(validation(empty).contains("IndexName: ByCity, IndexKey: city"));
    let update = db
        .update_item("Orders")
        .key(item! { "customer" => "ada", "order" => 1 })
        .update_expression("SET #t = :t")
        .name("#t", "total")
        .value(":t", "lots")
        .send();
    assert!(validation(update).contains("Type mismatch for Index Key total"));
    // One bad item rejects the whole batch.
    let batch = db
        .batch_write_item()
        .put("Orders", order("ada", 2, "open", "2024-01"))
        .put(
            "Orders",
            item! { "customer" => "ada", "order" => 3, "date" => 7 },
        )
        .send();
    assert!(validation(batch).contains("IndexName: ByDate"));
    // Nothing was written by any of them.
    assert_eq!(db.scan("Orders").send().unwrap().count, 0);
    for index in ["ByStatus", "ByCity"] {
        assert_eq!(db.scan("Orders").index_name(index).send().unwrap().count, 0);
    }
}

#[test]
fn index_pages_resume_from_table_and_index_keys() {
    let db = Database::memory().unwrap();
    orders(&db);
    // Ten orders share status and date: ties come back in base key order.
    for (customer, n) in [("cy", 3), ("ada", 2), ("bob", 1), ("ada", 1), ("cy", 1)] {
        db.put_item("Orders")
            .item(order(customer, n, "open", "2024-01"))
            .send()
            .unwrap();
    }
    let query = db
        .query("Orders")
        .index_name("ByStatus")
        .key_condition_expression("#s = :s")
        .name("#s", "status")
        .value(":s", "open")
        .limit(2);
    let first = query.send().unwrap();
    let last = first.last_evaluated_key.clone().unwrap();
    let names: BTreeSet<&str> = last.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["customer", "order", "status", "date"])
    );
    let all: Vec<(String, i64)> = query
        .clone()
        .items()
        .map(|i| {
            let i = i.unwrap();
            (
                i["customer"].as_s().unwrap().to_owned(),
                i["order"].as_n().unwrap().to_i64().unwrap(),
            )
        })
        .collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all.len(), 5);
    assert_eq!(all, sorted, "ties on the index key are ordered by base key");
    // The start key must carry the table's and the index's keys.
    let mut missing = last.clone();
    missing.remove("date");
    assert_eq!(
        validation(query.clone().exclusive_start_key(missing).send()),
        "The provided starting key is invalid"
    );
    let mut outside = last.clone();
    outside.insert("status".into(), "closed".into());
    assert!(
        validation(query.clone().exclusive_start_key(outside).send())
            .contains("outside query boundaries")
    );
    // Global indexes are eventually consistent only; unknown names fail.
    assert_eq!(
        validation(query.clone().consistent_read(true).send()),
        "Consistent reads are not supported on global secondary indexes"
    );
    assert_eq!(
        validation(db.scan("Orders").index_name("Nope").send()),
        "The table does not have the specified index: Nope"
    );
    // A parallel scan of an index covers every entry once.
    let mut seen = Vec::new();
    for segment in 0..3 {
        for entry in db
            .scan("Orders")
            .index_name("ByStatus")
            .segment(segment)
            .total_segments(3)
            .limit(1)
            .items()
        {
            let entry = entry.unwrap();
            seen.push((
                entry["customer"].as_s().unwrap().to_owned(),
                entry["order"].as_n().unwrap().to_i64().unwrap(),
            ));
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 5);
}

#[test]
fn a_global_index_added_later_is_backfilled_then_active() {
    let db = Database::memory().unwrap();
    db.create_table("Users")
        .partition_key("id", ScalarType::N)
        .send()
        .unwrap();
    for id in 0..1000 {
        let mut user = item! { "id" => id, "name" => format!("user{id}") };
        match id % 10 {
            0 => {} // no team: not indexed
            1 => {
                user.insert("team".into(), 7.into()); // wrong type: skipped
            }
            _ => {
                user.insert("team".into(), format!("t{}", id % 3).into());
            }
        }
        db.put_item("Users").item(user).send().unwrap();
    }
    let created = db
        .update_table("Users")
        .attribute_definition("team", ScalarType::S)
        .create_global_secondary_index(
            GlobalSecondaryIndex::new("ByTeam", "team")
                .sort_key("name")
                .projection(IndexProjection::include(["id"])),
        )
        .send();
    // `name` is a sort key too, so it needs a definition.
    assert!(validation(created).contains("Some index key attributes are not defined"));
    db.update_table("Users")
        .attribute_definition("team", ScalarType::S)
        .attribute_definition("name", ScalarType::S)
        .create_global_secondary_index(GlobalSecondaryIndex::new("ByTeam", "team").sort_key("name"))
        .send()
        .unwrap();
    // Writes go on during the backfill.
    for id in 1000..1100 {
        db.put_item("Users")
            .item(item! { "id" => id, "name" => format!("user{id}"), "team" => "t0" })
            .send()
            .unwrap();
    }
    db.delete_item("Users")
        .key(item! { "id" => 2 })
        .send()
        .unwrap();
    wait_active(&db, "Users", "ByTeam");
    let mut total = 0;
    for team in ["t0", "t1", "t2"] {
        let from_index: BTreeSet<i64> = db
            .query("Users")
            .index_name("ByTeam")
            .key_condition_expression("team = :t")
            .value(":t", team)
            .items()
            .map(|i| i.unwrap()["id"].as_n().unwrap().to_i64().unwrap())
            .collect();
        let from_scan: BTreeSet<i64> = db
            .scan("Users")
            .filter_expression("team = :t")
            .value(":t", team)
            .items()
            .map(|i| i.unwrap()["id"].as_n().unwrap().to_i64().unwrap())
            .collect();
        assert_eq!(from_index, from_scan, "team {team}");
        total += from_index.len() as u64;
    }
    let description = db.describe_table("Users").send().unwrap().table;
    let gsi = &description.global_secondary_indexes[0];
    assert_eq!(gsi.item_count, total);
    assert_eq!(
        total,
        800 - 1 + 100,
        "8 of 10 items per ten, minus id 2, plus 100"
    );
    // The 100 wrong-typed items were left out, not fatal; after the
    // backfill the same write is refused.
    let refused = db
        .put_item("Users")
        .item(item! { "id" => 1, "name" => "x", "team" => 7 })
        .send();
    assert!(validation(refused).contains("Type mismatch for Index Key team"));
}

#[test]
fn an_interrupted_backfill_resumes_after_a_crash() {
    let disk = SimFileSystem::new();
    let ids = 0..3000i64;
    {
        let session: Arc<dyn nimbus::storage::fs::FileSystem> = Arc::new(disk.session());
        let options = DatabaseOptions::default().index_backfill_items_per_second(20_000);
        let db = Database::open_on(session, "/db", options).unwrap();
        db.create_table("Users")
            .partition_key("id", ScalarType::N)
            .send()
            .unwrap();
        let mut batch = db.batch_write_item();
        for id in ids.clone() {
            batch = batch.put(
                "Users",
                item! { "id" => id, "team" => format!("t{}", id % 2) },
            );
            if id % 25 == 24 {
                batch.send().unwrap();
                batch = db.batch_write_item();
            }
        }
        db.update_table("Users")
            .attribute_definition("team", ScalarType::S)
            .create_global_secondary_index(GlobalSecondaryIndex::new("ByTeam", "team"))
            .send()
            .unwrap();
        // Crash part-way through.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let gsi = db
                .describe_table("Users")
                .send()
                .unwrap()
                .table
                .global_secondary_indexes[0]
                .clone();
            assert_eq!(
                gsi.index_status,
                IndexStatus::Creating,
                "crash before the end"
            );
            if gsi.backfill_items_scanned >= 512 {
                break;
            }
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        disk.crash(11);
    }
    let session: Arc<dyn nimbus::storage::fs::FileSystem> = Arc::new(disk.session());
    let db = Database::open_on(session, "/db", DatabaseOptions::default()).unwrap();
    wait_active(&db, "Users", "ByTeam");
    for team in ["t0", "t1"] {
        let ids: Vec<i64> = db
            .query("Users")
            .index_name("ByTeam")
            .key_condition_expression("team = :t")
            .value(":t", team)
            .items()
            .map(|i| i.unwrap()["id"].as_n().unwrap().to_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), 1500, "every item of {team} exactly once");
        assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 1500);
    }
    let gsi = db
        .describe_table("Users")
        .send()
        .unwrap()
        .table
        .global_secondary_indexes[0]
        .clone();
    assert_eq!(gsi.item_count, 3000);
}

#[test]
fn deleting_a_global_index_reclaims_it() {
    let db = Database::memory().unwrap();
    orders(&db);
    db.put_item("Orders")
        .item(order("ada", 1, "open", "2024-01"))
        .send()
        .unwrap();
    let output = db
        .update_table("Orders")
        .delete_global_secondary_index("ByStatus")
        .send()
        .unwrap();
    let deleting = output
        .table_description
        .global_secondary_indexes
        .iter()
        .find(|g| g.index_name == "ByStatus")
        .unwrap();
    assert_eq!(deleting.index_status, IndexStatus::Deleting);
    let description = db.describe_table("Orders").send().unwrap().table;
    assert_eq!(description.global_secondary_indexes.len(), 1);
    assert!(
        !description
            .attribute_definitions
            .iter()
            .any(|d| d.attribute_name == "status"),
        "an attribute no key uses any more is no longer defined"
    );
    assert!(
        validation(db.scan("Orders").index_name("ByStatus").send())
            .contains("does not have the specified index")
    );
    // Writes no longer touch it; recreating it backfills from scratch.
    db.put_item("Orders")
        .item(order("bob", 2, "open", "2024-02"))
        .send()
        .unwrap();
    db.update_table("Orders")
        .attribute_definition("status", ScalarType::S)
        .attribute_definition("date", ScalarType::S)
        .create_global_secondary_index(GlobalSecondaryIndex::new("ByStatus", "status"))
        .send()
        .unwrap();
    wait_active(&db, "Orders", "ByStatus");
    assert_eq!(
        db.scan("Orders")
            .index_name("ByStatus")
            .send()
            .unwrap()
            .count,
        2
    );
    let missing = db
        .update_table("Orders")
        .delete_global_secondary_index("Nope")
        .send();
    assert!(matches!(missing, Err(Error::ResourceNotFound(_))));
}

#[test]
fn item_collections_are_limited_and_reported() {
    let options = DatabaseOptions::default().item_collection_size_limit(8192);
    let db = Database::memory_with(options).unwrap();
    orders(&db);
    let put = |n: i64, note: &str| {
        db.put_item("Orders")
            .item(item! { "customer" => "ada", "order" => n, "date" => "2024", "note" => note })
            .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
            .send()
    };
    let first = put(1, "x").unwrap();
    let metrics = first.item_collection_metrics.unwrap();
    assert_eq!(metrics.item_collection_key, item! { "customer" => "ada" });
    assert_eq!(metrics.size_estimation_range_gb, (0.0, 1.0));
    let one = metrics.size_bytes;
    assert!(one > 0);
    let second = put(2, "x").unwrap().item_collection_metrics.unwrap();
    assert_eq!(
        second.size_bytes,
        2 * one,
        "two equal items and their entries"
    );
    // Growing past the limit fails and writes nothing.
    let big = "y".repeat(9000);
    assert!(matches!(
        put(3, &big),
        Err(Error::ItemCollectionSizeLimitExceeded(_))
    ));
    assert_eq!(db.scan("Orders").send().unwrap().count, 2);
    // Shrinking is always allowed; other collections are independent.
    db.delete_item("Orders")
        .key(item! { "customer" => "ada", "order" => 2 })
        .send()
        .unwrap();
    db.put_item("Orders")
        .item(item! { "customer" => "bob", "order" => 1, "note" => "y".repeat(6000) })
        .send()
        .unwrap();
    // A table without local indexes reports nothing.
    db.create_table("Plain")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    let plain = db
        .put_item("Plain")
        .item(item! { "pk" => "a" })
        .return_item_collection_metrics(ReturnItemCollectionMetrics::Size)
        .send()
        .unwrap();
    assert!(plain.item_collection_metrics.is_none());
}

#[test]
fn index_writes_are_charged_per_index() {
    let db = Database::memory().unwrap();
    orders(&db);
    let output = db
        .put_item("Orders")
        .item(order("ada", 1, "open", "2024-01"))
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .unwrap();
    let capacity = output.consumed_capacity.unwrap();
    assert_eq!(capacity.table.unwrap().write_capacity_units, 1.0);
    assert_eq!(
        capacity.global_secondary_indexes["ByStatus"].write_capacity_units,
        1.0
    );
    assert_eq!(
        capacity.global_secondary_indexes["ByCity"].write_capacity_units,
        1.0
    );
    assert_eq!(capacity.local_secondary_indexes.len(), 2);
    assert_eq!(
        capacity.write_capacity_units, 5.0,
        "table plus four indexes"
    );
    // Changing an index key costs that index a delete and a put.
    let output = db
        .update_item("Orders")
        .key(item! { "customer" => "ada", "order" => 1 })
        .update_expression("SET #s = :s")
        .name("#s", "status")
        .value(":s", "shipped")
        .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
        .send()
        .unwrap();
    let capacity = output.consumed_capacity.unwrap();
    assert_eq!(
        capacity.global_secondary_indexes["ByStatus"].write_capacity_units,
        2.0
    );
    // INCLUDE projects status into ByTotal: one write there; ByDate and
    // ByCity store nothing that changed.
    assert_eq!(
        capacity.local_secondary_indexes["ByTotal"].write_capacity_units,
        1.0
    );
    assert!(!capacity.local_secondary_indexes.contains_key("ByDate"));
    assert!(!capacity.global_secondary_indexes.contains_key("ByCity"));
}

#[test]
fn indexes_and_their_counts_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::open(dir.path()).unwrap();
        orders(&db);
        for n in 0..20 {
            db.put_item("Orders")
                .item(order(
                    "ada",
                    n,
                    if n % 2 == 0 { "open" } else { "done" },
                    "2024",
                ))
                .send()
                .unwrap();
        }
        db.close().unwrap();
    }
    let db = Database::open(dir.path()).unwrap();
    let description = db.describe_table("Orders").send().unwrap().table;
    assert_eq!(description.local_secondary_indexes.len(), 2);
    let by_status = &description.global_secondary_indexes[0];
    assert_eq!(by_status.index_name, "ByStatus");
    assert_eq!(by_status.index_status, IndexStatus::Active);
    assert_eq!(by_status.item_count, 20);
    let open = db
        .query("Orders")
        .index_name("ByStatus")
        .key_condition_expression("#s = :s")
        .name("#s", "status")
        .value(":s", "open")
        .send()
        .unwrap();
    assert_eq!(open.count, 10);
}

/// A tiny deterministic generator for the model test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn index_queries_match_brute_force_scans_over_random_writes() {
    let db = Database::memory().unwrap();
    orders(&db);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let statuses = ["open", "done", "lost"];
    for step in 0..3000 {
        let customer = format!("c{}", rng.below(4));
        let n = rng.below(40) as i64;
        let key = item! { "customer" => customer.clone(), "order" => n };
        match rng.below(5) {
            0 | 1 => {
                let mut item = order(
                    &customer,
                    n,
                    statuses[rng.below(3) as usize],
                    &format!("d{}", rng.below(5)),
                );
                if rng.below(4) == 0 {
                    item.remove("status");
                }
                db.put_item("Orders").item(item).send().unwrap();
            }
            2 => {
                db.update_item("Orders")
                    .key(key)
                    .update_expression("SET #s = :s, #t = :t")
                    .name("#s", "status")
                    .name("#t", "total")
                    .value(":s", statuses[rng.below(3) as usize])
                    .value(":t", rng.below(100) as i64)
                    .send()
                    .unwrap();
            }
            3 => {
                db.update_item("Orders")
                    .key(key)
                    .update_expression("REMOVE #d")
                    .name("#d", "date")
                    .send()
                    .unwrap();
            }
            _ => {
                db.delete_item("Orders").key(key).send().unwrap();
            }
        }
        if step % 500 != 499 {
            continue;
        }
        let table: Vec<Item> = db.scan("Orders").items().map(Result::unwrap).collect();
        for status in statuses {
            let mut expected: Vec<(String, String, i64)> = table
                .iter()
                .filter(|i| i.get("status") == Some(&status.into()) && i.contains_key("date"))
                .map(|i| {
                    (
                        i["date"].as_s().unwrap().to_owned(),
                        i["customer"].as_s().unwrap().to_owned(),
                        i["order"].as_n().unwrap().to_i64().unwrap(),
                    )
                })
                .collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let got: Vec<Item> = db
                .query("Orders")
                .index_name("ByStatus")
                .key_condition_expression("#s = :s")
                .name("#s", "status")
                .value(":s", status)
                .limit(7)
                .items()
                .map(Result::unwrap)
                .collect();
            let got_keys: Vec<(String, String, i64)> = got
                .iter()
                .map(|i| {
                    (
                        i["date"].as_s().unwrap().to_owned(),
                        i["customer"].as_s().unwrap().to_owned(),
                        i["order"].as_n().unwrap().to_i64().unwrap(),
                    )
                })
                .collect();
            // Sorted by the index sort key; the same set of items.
            assert!(got_keys.windows(2).all(|w| w[0].0 <= w[1].0));
            let as_set = |v: &[(String, String, i64)]| v.iter().cloned().collect::<BTreeSet<_>>();
            assert_eq!(as_set(&got_keys), as_set(&expected), "status {status}");
            assert_eq!(got_keys.len(), expected.len());
            // ALL projection: each entry equals its item.
            for entry in &got {
                assert!(table.contains(entry));
            }
        }
        for c in 0..4 {
            let customer = format!("c{c}");
            let expected: Vec<i64> = {
                let mut rows: Vec<(i64, i64)> = table
                    .iter()
                    .filter(|i| i["customer"] == customer.as_str().into())
                    .filter_map(|i| {
                        let total = i.get("total")?.as_n()?.to_i64()?;
                        Some((total, i["order"].as_n().unwrap().to_i64().unwrap()))
                    })
                    .collect();
                rows.sort();
                rows.into_iter().map(|(_, order)| order).collect()
            };
            let got: Vec<i64> = db
                .query("Orders")
                .index_name("ByTotal")
                .key_condition_expression("customer = :c")
                .value(":c", customer.as_str())
                .consistent_read(true)
                .items()
                .map(|i| i.unwrap()["order"].as_n().unwrap().to_i64().unwrap())
                .collect();
            assert_eq!(
                got, expected,
                "LSI ByTotal of {customer}: total, then order"
            );
        }
    }
}
