//! Partitions of a table: the initial count, splits at a size threshold
//! and for heat (with a manual clock), hot keys, reopening after a split
//! and after a crash, and Query/Scan results unchanged by splits.

// Tests fail loudly on any unexpected error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, UNIX_EPOCH};

use nimbus::kv::PartitionDescription;
use nimbus::time::ManualClock;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

fn clock() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn create(db: &Database) {
    db.create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .send()
        .unwrap();
}

fn partitions(db: &Database) -> Vec<PartitionDescription> {
    db.describe_table("Tbl").send().unwrap().table.partitions
}

fn put(db: &Database, pk: &str, sk: i64, bytes: usize) {
    db.put_item("Tbl")
        .item(item! { "pk" => pk, "sk" => sk, "data" => "x".repeat(bytes) })
        .send()
        .unwrap();
}

/// Every item, by Scan, sorted by key.
fn scan_all(db: &Database) -> Vec<Item> {
    let mut items: Vec<Item> = db
        .scan("Tbl")
        .items()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    items.sort_by_key(|i| format!("{:?}{:?}", i.get("pk"), i.get("sk")));
    items
}

fn query_all(db: &Database, pk: &str) -> Vec<Item> {
    db.query("Tbl")
        .key_condition_expression("pk = :p")
        .value(":p", pk)
        .items()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn assert_partitions_consistent(parts: &[PartitionDescription], items: u64, bytes: u64) {
    assert_eq!(parts[0].start_token, 0);
    for pair in parts.windows(2) {
        assert_eq!(pair[0].end_token, Some(pair[1].start_token));
    }
    assert_eq!(parts.last().unwrap().end_token, None);
    assert_eq!(parts.iter().map(|p| p.item_count).sum::<u64>(), items);
    assert_eq!(parts.iter().map(|p| p.size_bytes).sum::<u64>(), bytes);
}

#[test]
fn a_new_table_starts_with_the_configured_partitions_of_equal_ranges() {
    let db = Database::memory_with(DatabaseOptions::default().initial_partitions(4)).unwrap();
    create(&db);
    let parts = partitions(&db);
    assert_eq!(parts.len(), 4);
    let starts: Vec<u64> = parts.iter().map(|p| p.start_token).collect();
    assert_eq!(starts, [0, 1 << 62, 1 << 63, 3 << 62]);
    for i in 0..40 {
        put(&db, &format!("k{i}"), i, 10);
    }
    let description = db.describe_table("Tbl").send().unwrap().table;
    assert_partitions_consistent(
        &description.partitions,
        description.item_count,
        description.table_size_bytes,
    );
    assert!(description.partitions.iter().all(|p| p.item_count > 0));
}

#[test]
fn a_partition_over_the_size_threshold_splits_at_its_median_and_reads_are_unchanged() {
    let db =
        Database::memory_with(DatabaseOptions::default().partition_split_bytes(8 * 1024)).unwrap();
    create(&db);
    for i in 0..20 {
        put(&db, &format!("k{i}"), i, 100);
    }
    let before_scan = scan_all(&db);
    let before_query = query_all(&db, "k3");
    assert_eq!(partitions(&db).len(), 1);
    for i in 20..80 {
        put(&db, &format!("k{i}"), i, 100);
    }
    let parts = partitions(&db);
    assert!(parts.len() >= 2, "{parts:?}");
    let description = db.describe_table("Tbl").send().unwrap().table;
    assert_partitions_consistent(&parts, 80, description.table_size_bytes);
    for p in &parts {
        assert!(p.size_bytes <= 8 * 1024, "{p:?}");
        assert!(p.parent_partition_id.is_some());
    }
    // The first split was at the median: its children hold about half each.
    let ids: Vec<u64> = parts.iter().map(|p| p.partition_id).collect();
    assert!(!ids.contains(&1), "the parent's id is retired: {ids:?}");
    assert_eq!(query_all(&db, "k3"), before_query);
    let after = scan_all(&db);
    assert_eq!(after.len(), 80);
    for item in &before_scan {
        assert!(after.contains(item));
    }
    // Deleting shrinks the right partition's counts.
    db.delete_item("Tbl")
        .key(item! { "pk" => "k3", "sk" => 3 })
        .send()
        .unwrap();
    let description = db.describe_table("Tbl").send().unwrap().table;
    assert_partitions_consistent(&description.partitions, 79, description.table_size_bytes);
}

#[test]
fn one_partition_key_larger_than_the_threshold_cannot_split() {
    let db =
        Database::memory_with(DatabaseOptions::default().partition_split_bytes(2 * 1024)).unwrap();
    create(&db);
    for i in 0..30 {
        put(&db, "only", i, 100);
    }
    assert_eq!(partitions(&db).len(), 1);
    assert_eq!(query_all(&db, "only").len(), 30);
}

#[test]
fn splits_and_counts_survive_reopen_clean_and_after_a_crash() {
    use nimbus::storage::fs::FileSystem;
    use nimbus::storage::sim::SimFileSystem;
    use std::sync::Arc;

    let disk = SimFileSystem::new();
    let open = || {
        let session: Arc<dyn FileSystem> = Arc::new(disk.session());
        let options = DatabaseOptions::default().partition_split_bytes(6 * 1024);
        Database::open_on(session, "/db", options).unwrap()
    };
    let (parts, size) = {
        let db = open();
        create(&db);
        for i in 0..60 {
            put(&db, &format!("k{i}"), i, 100);
        }
        let description = db.describe_table("Tbl").send().unwrap().table;
        db.close().unwrap();
        (description.partitions, description.table_size_bytes)
    };
    assert!(parts.len() >= 2);
    {
        let db = open();
        assert_eq!(partitions(&db), parts);
        // Power loss without a close: the counts of this session are never
        // saved, so the next open must recount them from the rows.
        put(&db, "late", 1, 100);
        disk.crash(3);
    }
    let db = open();
    let after = partitions(&db);
    assert_eq!(after.len(), parts.len());
    let description = db.describe_table("Tbl").send().unwrap().table;
    assert!(description.table_size_bytes > size);
    assert_partitions_consistent(&after, 61, description.table_size_bytes);
    assert_eq!(scan_all(&db).len(), 61);
}

fn heat_db(clock: &ManualClock) -> Database {
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .partition_heat_split(Some(50.0), Duration::from_secs(10)),
    )
    .unwrap();
    create(&db);
    db
}

#[test]
fn a_partition_hot_for_a_whole_window_splits_at_the_token_halving_its_load() {
    let clock = clock();
    let db = heat_db(&clock);
    for i in 0..40 {
        put(&db, &format!("k{i}"), i, 10);
    }
    let before = scan_all(&db);
    // 80 one-unit writes per second spread evenly over 40 keys, for more
    // than the 10 s window: above the 50 units/s threshold throughout.
    for _second in 0..11 {
        for round in 0..2 {
            for i in 0..40 {
                put(&db, &format!("k{i}"), i, 10 + round);
            }
        }
        clock.advance(Duration::from_secs(1));
    }
    let parts = partitions(&db);
    assert_eq!(parts.len(), 2, "{parts:?}");
    // The split halves the load: the 40 equally hot keys divide evenly
    // (within the sampling's precision).
    let left = parts[0].item_count as i64;
    assert!((left - 20).abs() <= 8, "{parts:?}");
    assert!(
        db.describe_table("Tbl")
            .send()
            .unwrap()
            .table
            .hot_keys
            .is_empty()
    );
    let after = scan_all(&db);
    assert_eq!(after.len(), before.len());
}

#[test]
fn a_cool_partition_does_not_split() {
    let clock = clock();
    let db = heat_db(&clock);
    for _second in 0..30 {
        for i in 0..20 {
            put(&db, &format!("k{i}"), i, 10);
        }
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(partitions(&db).len(), 1);
}

#[test]
fn one_hot_partition_key_is_reported_instead_of_split() {
    let clock = clock();
    let db = heat_db(&clock);
    for _second in 0..11 {
        for i in 0..90 {
            put(&db, "celebrity", i % 3, 10);
        }
        for i in 0..10 {
            put(&db, &format!("fan{i}"), i, 10);
        }
        clock.advance(Duration::from_secs(1));
    }
    let description = db.describe_table("Tbl").send().unwrap().table;
    assert_eq!(description.partitions.len(), 1);
    let hot = &description.hot_keys;
    assert_eq!(hot.len(), 1, "{hot:?}");
    assert_eq!(
        hot[0].partition_key,
        ("pk".to_owned(), AttributeValue::S("celebrity".into()))
    );
    assert!(hot[0].units_per_second > 50.0, "{hot:?}");
}

#[test]
fn splits_during_concurrent_writes_keep_every_partition_count_exact() {
    use nimbus::storage::fs::FileSystem;
    use nimbus::storage::sim::{SimFileSystem, SimRng};
    use std::sync::Arc;

    let disk = SimFileSystem::new();
    let open = || {
        let session: Arc<dyn FileSystem> = Arc::new(disk.session());
        let options = DatabaseOptions::default().partition_split_bytes(8 * 1024);
        Database::open_on(session, "/db", options).unwrap()
    };
    let parts = {
        let db = open();
        create(&db);
        // Two writers put, overwrite and delete keys all over the ring while
        // the table splits under them (each split counts its left child on
        // a snapshot while these writes go on).
        let writers: Vec<_> = (0..2u64)
            .map(|w| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut rng = SimRng::new(w + 1);
                    for _ in 0..600 {
                        let pk = format!("k{}", rng.below_usize(150));
                        let sk = rng.below_usize(3) as i64;
                        if rng.below_usize(4) == 0 {
                            db.delete_item("Tbl")
                                .key(item! { "pk" => pk, "sk" => sk })
                                .send()
                                .unwrap();
                        } else {
                            put(&db, &pk, sk, 20 + rng.below_usize(200));
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        db.sync().unwrap();
        let parts = partitions(&db);
        // Power loss after the sync: nothing is lost, but the counts are
        // not saved, so the next open recounts every partition from its rows.
        disk.crash(7);
        parts
    };
    assert!(parts.len() >= 4, "{} partitions", parts.len());
    let db = open();
    assert_eq!(partitions(&db), parts, "in-memory counts equal a recount");
    let total: u64 = parts.iter().map(|p| p.item_count).sum();
    assert_eq!(scan_all(&db).len() as u64, total);
}
