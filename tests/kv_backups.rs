//! On-demand backups: a backup taken while writes go on restores exactly a
//! consistent state at least as new as every write acknowledged before it;
//! restores bring back items, indexes (or only those kept by overrides)
//! and counts; backups are listed, described and deleted; everything
//! survives reopen; bad requests fail with DynamoDB's errors and change
//! nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nimbus::kv::{BackupStatus, Error, GlobalSecondaryIndex, IndexProjection};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

fn open(dir: &std::path::Path) -> Database {
    Database::open_with(
        dir,
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap()
}

/// `Events`: pk `id` (N), GSI `ByKind` (`kind`, KEYS_ONLY), GSI `ByDay`.
fn events(db: &Database) {
    db.create_table("Events")
        .partition_key("id", ScalarType::N)
        .attribute_definition("kind", ScalarType::S)
        .attribute_definition("day", ScalarType::S)
        .global_secondary_index(
            GlobalSecondaryIndex::new("ByKind", "kind").projection(IndexProjection::keys_only()),
        )
        .global_secondary_index(GlobalSecondaryIndex::new("ByDay", "day"))
        .send()
        .unwrap();
}

fn event(id: u64) -> Item {
    item! { "id" => id, "kind" => format!("k{}", id % 3), "day" => format!("d{}", id % 7), "body" => "x".repeat(100) }
}

fn ids(db: &Database, table: &str) -> BTreeSet<u64> {
    db.scan(table)
        .items()
        .map(|i| i.unwrap()["id"].as_n().unwrap().to_i64().unwrap() as u64)
        .collect()
}

#[test]
fn a_backup_taken_during_writes_restores_a_consistent_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    events(&db);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acknowledged, stop) = (db.clone(), Arc::clone(&acknowledged), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut id = 0;
            while !stop.load(Ordering::Relaxed) || id < 2000 {
                db.put_item("Events").item(event(id)).send().unwrap();
                id += 1;
                acknowledged.store(id, Ordering::Release);
            }
        })
    };
    while acknowledged.load(Ordering::Acquire) < 500 {
        std::thread::yield_now();
    }
    let before = acknowledged.load(Ordering::Acquire);
    let backup = db
        .create_backup("Events")
        .backup_name("during-writes")
        .send()
        .unwrap()
        .backup_details;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(backup.backup_status, BackupStatus::Available);

    let restored = db
        .restore_table_from_backup("Restored")
        .backup_arn(&backup.backup_arn)
        .send()
        .unwrap()
        .table_description;
    // One writer puts ids in order: the backup holds exactly 0..n for some
    // n covering every put acknowledged before the backup began.
    let got = ids(&db, "Restored");
    let n = got.len() as u64;
    assert!(
        n >= before,
        "backup lost acknowledged writes: {n} < {before}"
    );
    assert_eq!(got, (0..n).collect::<BTreeSet<u64>>());
    assert_eq!(restored.item_count, n);
    let original = db.describe_table("Events").send().unwrap().table;
    assert!(
        original.item_count >= 2000,
        "the table kept changing meanwhile"
    );
    // Indexes came back with their entries, and answer queries.
    assert_eq!(restored.global_secondary_indexes.len(), 2);
    assert_eq!(restored.global_secondary_indexes[0].item_count, n);
    let k1 = db
        .query("Restored")
        .index_name("ByKind")
        .key_condition_expression("kind = :k")
        .value(":k", "k1")
        .items()
        .count() as u64;
    assert_eq!(k1, (0..n).filter(|i| i % 3 == 1).count() as u64);
    // The restored table is a table like any other, and survives reopen.
    db.put_item("Restored")
        .item(event(1_000_000))
        .send()
        .unwrap();
    db.close().unwrap();
    drop(db);
    let db = open(dir.path());
    assert_eq!(ids(&db, "Restored").len() as u64, n + 1);
    assert_eq!(
        db.describe_table("Restored")
            .send()
            .unwrap()
            .table
            .item_count,
        n + 1
    );
    let listed = db.list_backups().send().unwrap().backup_summaries;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].backup_details.backup_arn, backup.backup_arn);
}

#[test]
fn backups_are_listed_described_deleted_and_restored_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    events(&db);
    db.create_table("Other")
        .partition_key("id", ScalarType::N)
        .send()
        .unwrap();
    for id in 0..100 {
        db.put_item("Events").item(event(id)).send().unwrap();
    }
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = std::sync::Arc::clone(&reports);
    let first = db
        .create_backup("Events")
        .backup_name("first")
        .on_progress(move |p| sink.lock().unwrap().push(*p))
        .send()
        .unwrap()
        .backup_details;
    // One report, at the end, with the table's counts.
    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].finished);
    assert_eq!(reports[0].items_done, 100);
    assert_eq!(reports[0].items_total, Some(100));
    assert_eq!(reports[0].bytes_done, first.backup_size_bytes);
    db.delete_item("Events")
        .key(item! { "id" => 0 })
        .send()
        .unwrap();
    let second = db
        .create_backup("Events")
        .backup_name("second")
        .send()
        .unwrap()
        .backup_details;
    let other = db
        .create_backup("Other")
        .backup_name("other")
        .send()
        .unwrap()
        .backup_details;
    assert_ne!(first.backup_arn, second.backup_arn);
    let names = |table: Option<&str>| {
        let mut request = db.list_backups();
        if let Some(table) = table {
            request = request.table_name(table);
        }
        let mut names: Vec<String> = request
            .send()
            .unwrap()
            .backup_summaries
            .into_iter()
            .map(|s| s.backup_details.backup_name)
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(None), ["first", "other", "second"]);
    assert_eq!(names(Some("Events")), ["first", "second"]);
    let described = db
        .describe_backup(&first.backup_arn)
        .send()
        .unwrap()
        .backup_description;
    assert_eq!(described.source_table_details.table_name, "Events");
    assert_eq!(described.source_table_details.item_count, 100);
    assert_eq!(
        described
            .source_table_feature_details
            .global_secondary_indexes
            .len(),
        2
    );

    // Restore the first backup keeping only ByDay, watching its progress.
    let last_progress = Arc::new(std::sync::Mutex::new(None));
    let by_day = described
        .source_table_feature_details
        .global_secondary_indexes[1]
        .clone();
    assert_eq!(by_day.index_name, "ByDay");
    let restored = db
        .restore_table_from_backup("FromFirst")
        .backup_arn(&first.backup_arn)
        .on_progress({
            let last = Arc::clone(&last_progress);
            move |p| *last.lock().unwrap() = Some(*p)
        })
        .global_secondary_index_override([by_day])
        .send()
        .unwrap()
        .table_description;
    assert_eq!(restored.item_count, 100);
    let last = last_progress.lock().unwrap().unwrap();
    assert_eq!(
        (last.items_done, last.items_total, last.finished),
        (100, Some(100), true)
    );
    let kept: Vec<&str> = restored
        .global_secondary_indexes
        .iter()
        .map(|g| g.index_name.as_str())
        .collect();
    assert_eq!(kept, ["ByDay"]);
    assert!(ids(&db, "FromFirst").contains(&0));
    assert!(!ids(&db, "Events").contains(&0));
    let none = db
        .restore_table_from_backup("FromSecond")
        .backup_arn(&second.backup_arn)
        .global_secondary_index_override([])
        .send()
        .unwrap()
        .table_description;
    assert!(none.global_secondary_indexes.is_empty());
    assert_eq!(none.item_count, 99);

    // Errors: an existing target, an unknown backup, a foreign index in an
    // override, a missing table, a bad name — and nothing changes.
    let tables_before = db.list_tables().send().unwrap().table_names;
    assert!(matches!(
        db.restore_table_from_backup("Other")
            .backup_arn(&first.backup_arn)
            .send(),
        Err(Error::TableAlreadyExists(_))
    ));
    let missing = format!("{}x", first.backup_arn);
    assert!(matches!(
        db.restore_table_from_backup("New")
            .backup_arn(&missing)
            .send(),
        Err(Error::BackupNotFound(_))
    ));
    assert!(matches!(
        db.describe_backup("nonsense").send(),
        Err(Error::BackupNotFound(_))
    ));
    let foreign = db
        .restore_table_from_backup("New")
        .backup_arn(&first.backup_arn)
        .global_secondary_index_override([GlobalSecondaryIndex::new("Elsewhere", "kind")])
        .send();
    assert!(matches!(foreign, Err(Error::Validation(_))));
    assert!(matches!(
        db.create_backup("Nope").backup_name("x-backup").send(),
        Err(Error::TableNotFound(_))
    ));
    assert!(matches!(
        db.create_backup("Events").backup_name("a").send(),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        db.create_backup("Events").send(),
        Err(Error::Validation(_))
    ));
    assert_eq!(db.list_tables().send().unwrap().table_names, tables_before);

    // Delete: gone from the list; restoring it fails; the others stay.
    let deleted = db
        .delete_backup(&other.backup_arn)
        .send()
        .unwrap()
        .backup_description;
    assert_eq!(deleted.backup_details.backup_status, BackupStatus::Deleted);
    assert_eq!(names(None), ["first", "second"]);
    assert!(matches!(
        db.delete_backup(&other.backup_arn).send(),
        Err(Error::BackupNotFound(_))
    ));
    assert!(matches!(
        db.restore_table_from_backup("New")
            .backup_arn(&other.backup_arn)
            .send(),
        Err(Error::BackupNotFound(_))
    ));
}

#[test]
fn an_in_memory_database_has_no_backups() {
    let db = Database::memory().unwrap();
    events(&db);
    assert!(matches!(
        db.create_backup("Events").backup_name("mem").send(),
        Err(Error::Validation(_))
    ));
    assert!(
        db.list_backups()
            .send()
            .unwrap()
            .backup_summaries
            .is_empty()
    );
}

#[test]
fn a_restore_cut_by_a_crash_leaves_no_table_and_can_be_redone() {
    use nimbus::storage::fs::FileSystem;
    use nimbus::storage::sim::SimFileSystem;

    let disk = SimFileSystem::new();
    let boot = || {
        let session: Arc<dyn FileSystem> = Arc::new(disk.session());
        Database::open_on(session, "/db", DatabaseOptions::default()).unwrap()
    };
    let arn = {
        let db = boot();
        events(&db);
        for chunk in 0..5u64 {
            let mut batch = db.batch_write_item();
            for id in chunk * 25..chunk * 25 + 25 {
                batch = batch.put("Events", event(id));
            }
            batch.send().unwrap();
        }
        let arn = db
            .create_backup("Events")
            .backup_name("before-crash")
            .send()
            .unwrap()
            .backup_details
            .backup_arn;
        db.close().unwrap();
        arn
    };
    // Cut the restore at a different write each time, crash, and reboot:
    // the target is either complete or absent, never partial.
    let mut completed = 0;
    for n in 1..7u64 {
        let target = format!("Restored{n}");
        {
            let db = boot();
            disk.fail_nth_write(n);
            let _ = db
                .restore_table_from_backup(&target)
                .backup_arn(&arn)
                .send();
            disk.crash(n);
        }
        let db = boot();
        match db.describe_table(&target).send() {
            Ok(output) => {
                completed += 1;
                assert_eq!(output.table.item_count, 125, "restore {n}");
                assert_eq!(ids(&db, &target).len(), 125, "restore {n}");
            }
            Err(Error::ResourceNotFound(_)) => {}
            Err(other) => panic!("restore {n}: {other:?}"),
        }
        db.close().unwrap();
    }
    assert!(completed < 6, "some restores were cut");
    let db = boot();
    let restored = db
        .restore_table_from_backup("Final")
        .backup_arn(&arn)
        .send()
        .unwrap()
        .table_description;
    assert_eq!(restored.item_count, 125);
}
