//! Point-in-time recovery: with a manual clock, random writes (every
//! attribute type, updates, deletes, batches, transactions, TTL deletes)
//! over simulated days; a restore to any chosen time equals a model replay
//! of the same writes, across base snapshots and a reopen; the latest
//! restorable time is now; bad times and disabled PITR fail with
//! DynamoDB's errors and create nothing; retention reclaims the archive
//! and old snapshots; a restore cut by a crash leaves no table.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nimbus::kv::{
    Error, GlobalSecondaryIndex, PointInTimeRecoveryStatus, TransactDelete, TransactPut,
    TransactUpdate,
};
use nimbus::storage::Durability;
use nimbus::time::ManualClock;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, Number, ScalarType, item};

const START_SECS: u64 = 1_800_000_000;
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Key = (String, i64);
type Model = BTreeMap<Key, Item>;

fn options(clock: &ManualClock) -> DatabaseOptions {
    DatabaseOptions::default()
        .durability(Durability::Buffered)
        .clock(clock.clone())
        .background_threads(false)
}

/// `Events`: pk `pk` (S), sk `sk` (N), GSI `ByKind` on `kind`, TTL on
/// `exp`, PITR enabled.
fn events(db: &Database) {
    db.create_table("Events")
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .attribute_definition("kind", ScalarType::S)
        .global_secondary_index(GlobalSecondaryIndex::new("ByKind", "kind"))
        .send()
        .unwrap();
    db.update_time_to_live("Events")
        .attribute_name("exp")
        .enabled(true)
        .send()
        .unwrap();
    db.update_continuous_backups("Events")
        .point_in_time_recovery_enabled(true)
        .send()
        .unwrap();
}

fn key_of(rng: &mut Rng) -> Key {
    (format!("p{}", rng.below(6)), rng.below(8) as i64)
}

fn key_item((pk, sk): &Key) -> Item {
    item! { "pk" => pk.as_str(), "sk" => *sk }
}

/// An item at `key` with a random mix of every attribute type.
fn random_item(rng: &mut Rng, key: &Key, now_secs: u64) -> Item {
    let n = rng.next();
    let mut item = key_item(key)
        .with("s", format!("v{n:x}"))
        .with("n", "-12.5e3".parse::<Number>().unwrap())
        .with("b", n.to_be_bytes().to_vec())
        .with("bool", n.is_multiple_of(2))
        .with("null", AttributeValue::Null)
        .with(
            "l",
            AttributeValue::L(vec![AttributeValue::from(n % 97), "x".into()]),
        )
        .with(
            "m",
            AttributeValue::M(BTreeMap::from([("inner".to_owned(), (n % 13).into())])),
        )
        .with(
            "ss",
            AttributeValue::string_set([format!("a{}", n % 3), "b".into()]),
        )
        .with("ns", AttributeValue::number_set([1, (n % 50) as i64 + 2]))
        .with(
            "bs",
            AttributeValue::binary_set([vec![1u8], vec![(n % 200) as u8 + 2]]),
        )
        .with("counter", 0);
    if !n.is_multiple_of(3) {
        item = item.with("kind", format!("k{}", n % 4));
    }
    if n.is_multiple_of(5) {
        // Already expired: the next sweep deletes it.
        item = item.with("exp", now_secs - 10);
    }
    item
}

/// One random change, applied to the table and to the model.
fn random_change(db: &Database, rng: &mut Rng, model: &mut Model, now_secs: u64) {
    match rng.below(10) {
        0..=3 => {
            let key = key_of(rng);
            let item = random_item(rng, &key, now_secs);
            db.put_item("Events").item(item.clone()).send().unwrap();
            model.insert(key, item);
        }
        4 | 5 => {
            let key = key_of(rng);
            let result = db
                .update_item("Events")
                .key(key_item(&key))
                .update_expression("SET #c = #c + :one")
                .name("#c", "counter")
                .value(":one", 1)
                .condition_expression("attribute_exists(pk)")
                .send();
            match model.get_mut(&key) {
                Some(item) => {
                    result.unwrap();
                    let counter = item["counter"].as_n().unwrap().to_i64().unwrap();
                    *item = item.clone().with("counter", counter + 1);
                }
                None => assert!(matches!(result, Err(Error::ConditionalCheckFailed { .. }))),
            }
        }
        6 => {
            let key = key_of(rng);
            db.delete_item("Events").key(key_item(&key)).send().unwrap();
            model.remove(&key);
        }
        7 => {
            let (a, b) = (key_of(rng), key_of(rng));
            if a == b {
                return;
            }
            let item = random_item(rng, &a, now_secs);
            db.batch_write_item()
                .put("Events", item.clone())
                .delete("Events", key_item(&b))
                .send()
                .unwrap();
            model.insert(a, item);
            model.remove(&b);
        }
        _ => {
            let (a, b, c) = (key_of(rng), key_of(rng), key_of(rng));
            if a == b || b == c || a == c || !model.contains_key(&c) {
                return;
            }
            let item = random_item(rng, &a, now_secs);
            db.transact_write_items()
                .item(TransactPut::new("Events", item.clone()))
                .item(TransactDelete::new("Events", key_item(&b)))
                .item(
                    TransactUpdate::new("Events", key_item(&c), "SET #c = :v")
                        .name("#c", "counter")
                        .value(":v", 100),
                )
                .send()
                .unwrap();
            model.insert(a, item);
            model.remove(&b);
            let updated = model[&c].clone().with("counter", 100);
            model.insert(c, updated);
        }
    }
}

/// Runs the TTL sweep and removes what it deletes from the model.
fn sweep(db: &Database, model: &mut Model, now_secs: u64) {
    let expired: Vec<Key> = model
        .iter()
        .filter(|(_, item)| {
            item.get("exp")
                .and_then(|v| v.as_n())
                .is_some_and(|n| n.to_i64().unwrap() as u64 <= now_secs)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let deleted = db.run_ttl_sweep_now().unwrap();
    assert_eq!(deleted, expired.len());
    for key in expired {
        model.remove(&key);
    }
}

fn contents(db: &Database, table: &str) -> Model {
    db.scan(table)
        .items()
        .map(|item| {
            let item = item.unwrap();
            let key = (
                item["pk"].as_s().unwrap().to_owned(),
                item["sk"].as_n().unwrap().to_i64().unwrap(),
            );
            (key, item)
        })
        .collect()
}

fn kinds(db: &Database, table: &str) -> usize {
    db.scan(table).index_name("ByKind").items().count()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn now_secs(clock: &ManualClock) -> u64 {
    clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

use nimbus::time::Clock;

/// Checks that restoring `Events` to each recorded second gives the
/// model's state then (items and index entries).
fn check_restores(db: &Database, states: &BTreeMap<u64, Model>, name: &str) {
    for (n, (secs, expected)) in states.iter().enumerate() {
        let target = format!("{name}{n}");
        let restored = db
            .restore_table_to_point_in_time("Events", &target)
            .restore_date_time(at(*secs))
            .send()
            .unwrap()
            .table_description;
        assert_eq!(restored.item_count, expected.len() as u64, "at {secs}");
        assert_eq!(&contents(db, &target), expected, "at {secs}");
        let with_kind = expected
            .values()
            .filter(|i| i.get("kind").is_some())
            .count();
        assert_eq!(kinds(db, &target), with_kind, "index at {secs}");
        db.delete_table(&target).send().unwrap();
    }
}

#[test]
fn restores_at_chosen_seconds_equal_a_model_replay() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let mut db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    let mut rng = Rng(7);
    let mut model = Model::new();
    let mut states = BTreeMap::new();
    let mut chosen = BTreeMap::new();
    for day in 0..3 {
        for step in 0..40 {
            clock.advance(Duration::from_secs(1));
            let now = now_secs(&clock);
            for _ in 0..rng.below(4) + 1 {
                random_change(&db, &mut rng, &mut model, now);
            }
            if step % 7 == 6 {
                sweep(&db, &mut model, now);
            }
            states.insert(now, model.clone());
        }
        // A day later: a new base snapshot, then (once) a reopen.
        clock.advance(DAY);
        let done = db.run_pitr_maintenance_now().unwrap();
        assert_eq!(done.snapshots_taken, 1, "day {day}");
        if day == 1 {
            db.close().unwrap();
            db = Database::open_with(dir.path(), options(&clock)).unwrap();
        }
    }
    assert_eq!(contents(&db, "Events"), model);
    // Every tenth second, the first and the last.
    for (n, (secs, state)) in states.iter().enumerate() {
        if n % 10 == 0 || n == states.len() - 1 {
            chosen.insert(*secs, state.clone());
        }
    }
    // The moment PITR was enabled: empty.
    chosen.insert(START_SECS, Model::new());
    check_restores(&db, &chosen, "At");
    assert_eq!(
        db.point_in_time_recovery_storage("Events")
            .unwrap()
            .snapshots,
        4
    );
}

#[test]
fn the_latest_restorable_time_is_now() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    let mut rng = Rng(11);
    let mut model = Model::new();
    for _ in 0..30 {
        clock.advance(Duration::from_millis(250));
        random_change(&db, &mut rng, &mut model, now_secs(&clock));
    }
    let described = db
        .describe_continuous_backups("Events")
        .send()
        .unwrap()
        .continuous_backups_description
        .point_in_time_recovery_description;
    assert_eq!(
        described.point_in_time_recovery_status,
        PointInTimeRecoveryStatus::Enabled
    );
    assert_eq!(described.recovery_period_in_days, Some(35));
    assert_eq!(described.latest_restorable_date_time, Some(clock.now()));
    assert_eq!(
        described.earliest_restorable_date_time,
        Some(at(START_SECS))
    );
    db.restore_table_to_point_in_time("Events", "Latest")
        .use_latest_restorable_time(true)
        .send()
        .unwrap();
    assert_eq!(contents(&db, "Latest"), model);
    // Writes at the same millisecond after a restore come after it.
    random_change(&db, &mut rng, &mut model, now_secs(&clock));
    db.restore_table_to_point_in_time("Events", "Latest2")
        .use_latest_restorable_time(true)
        .send()
        .unwrap();
    assert_eq!(contents(&db, "Latest2"), model);
}

#[test]
fn a_restore_while_writes_go_on_holds_exactly_the_writes_before_it() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acked, stop) = (db.clone(), Arc::clone(&acked), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 0i64;
            while !stop.load(Ordering::Acquire) {
                db.put_item("Events")
                    .item(item! { "pk" => "w", "sk" => n })
                    .send()
                    .unwrap();
                n += 1;
                acked.store(n as u64, Ordering::Release);
            }
        })
    };
    for round in 0..3 {
        while acked.load(Ordering::Acquire) < 50 * (round + 1) {
            std::thread::yield_now();
        }
        // All writes share one millisecond of the manual clock: only the
        // seal separates the restored ones from the later ones.
        let before = acked.load(Ordering::Acquire);
        let target = format!("During{round}");
        db.restore_table_to_point_in_time("Events", &target)
            .use_latest_restorable_time(true)
            .send()
            .unwrap();
        let after = acked.load(Ordering::Acquire);
        let restored: Vec<i64> = contents(&db, &target)
            .into_keys()
            .map(|(_, sk)| sk)
            .collect();
        let count = restored.len() as u64;
        assert!(
            before <= count && count <= after,
            "{before} <= {count} <= {after}"
        );
        assert_eq!(restored, (0..count as i64).collect::<Vec<_>>(), "a prefix");
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
}

#[test]
fn bad_requests_fail_with_dynamodb_errors_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    db.create_table("Plain")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(60));
    let restore = |time: SystemTime| {
        db.restore_table_to_point_in_time("Events", "Target")
            .restore_date_time(time)
            .send()
    };
    assert!(matches!(
        restore(at(START_SECS - 1)),
        Err(Error::InvalidRestoreTime(_))
    ));
    assert!(matches!(
        restore(at(START_SECS + 61)),
        Err(Error::InvalidRestoreTime(_))
    ));
    assert!(matches!(
        db.restore_table_to_point_in_time("Events", "Target").send(),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        db.restore_table_to_point_in_time("Events", "Target")
            .restore_date_time(at(START_SECS))
            .use_latest_restorable_time(true)
            .send(),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        db.restore_table_to_point_in_time("Plain", "Target")
            .use_latest_restorable_time(true)
            .send(),
        Err(Error::PointInTimeRecoveryUnavailable(_))
    ));
    assert!(matches!(
        db.restore_table_to_point_in_time("Missing", "Target")
            .use_latest_restorable_time(true)
            .send(),
        Err(Error::TableNotFound(_))
    ));
    assert!(matches!(
        db.restore_table_to_point_in_time("Events", "Plain")
            .use_latest_restorable_time(true)
            .send(),
        Err(Error::TableAlreadyExists(_))
    ));
    for days in [0, 36] {
        assert!(matches!(
            db.update_continuous_backups("Plain")
                .point_in_time_recovery(true, Some(days))
                .send(),
            Err(Error::Validation(_))
        ));
    }
    assert!(matches!(
        db.update_continuous_backups("Plain").send(),
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        db.describe_continuous_backups("Missing").send(),
        Err(Error::TableNotFound(_))
    ));
    assert!(matches!(
        db.restore_table_to_point_in_time("Events", "Target")
            .use_latest_restorable_time(true)
            .global_secondary_index_override([GlobalSecondaryIndex::new("Other", "kind")])
            .send(),
        Err(Error::Validation(_))
    ));
    assert!(db.describe_table("Target").send().is_err());
    // An empty override restores no index.
    let restored = db
        .restore_table_to_point_in_time("Events", "NoIndexes")
        .use_latest_restorable_time(true)
        .global_secondary_index_override([])
        .send()
        .unwrap()
        .table_description;
    assert!(restored.global_secondary_indexes.is_empty());
    db.delete_table("NoIndexes").send().unwrap();
    assert_eq!(db.list_tables().send().unwrap().table_names.len(), 2);

    let memory = Database::memory().unwrap();
    memory
        .create_table("Tbl")
        .partition_key("pk", ScalarType::S)
        .send()
        .unwrap();
    assert!(matches!(
        memory
            .update_continuous_backups("Tbl")
            .point_in_time_recovery_enabled(true)
            .send(),
        Err(Error::ContinuousBackupsUnavailable(_))
    ));
}

#[test]
fn retention_reclaims_archive_records_and_snapshots_past_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    db.update_continuous_backups("Events")
        .point_in_time_recovery(true, Some(1))
        .send()
        .unwrap();
    let mut rng = Rng(3);
    let mut model = Model::new();
    let mut states = BTreeMap::new();
    let hour = Duration::from_secs(3600);
    let mut reclaimed = 0;
    let mut peak = nimbus::kv::PitrStorage::default();
    for _ in 0..(4 * 24) {
        clock.advance(hour);
        let now = now_secs(&clock);
        for _ in 0..5 {
            random_change(&db, &mut rng, &mut model, now);
        }
        states.insert(now, model.clone());
        let storage = db.point_in_time_recovery_storage("Events").unwrap();
        peak.archive_records = peak.archive_records.max(storage.archive_records);
        peak.archive_bytes = peak.archive_bytes.max(storage.archive_bytes);
        reclaimed += db
            .run_pitr_maintenance_now()
            .unwrap()
            .archive_records_reclaimed;
    }
    let storage = db.point_in_time_recovery_storage("Events").unwrap();
    // Four days of writes, a one-day window: at most two days of records
    // (a snapshot is daily) and the two snapshots that cover the window.
    assert!(reclaimed > 0);
    assert!(
        storage.archive_records <= 2 * 24 * 5 + 4,
        "{storage:?} (peak {peak:?})"
    );
    assert!(storage.archive_bytes < peak.archive_bytes);
    assert!(storage.snapshots <= 2, "{storage:?}");
    let snapshot_dirs = std::fs::read_dir(dir.path().join("pitr"))
        .unwrap()
        .map(|table| std::fs::read_dir(table.unwrap().path()).unwrap().count())
        .sum::<usize>();
    assert_eq!(snapshot_dirs as u64, storage.snapshots);
    // The window's first second restores; the second before it does not.
    let now = now_secs(&clock);
    let earliest = now - 24 * 3600;
    let described = db
        .describe_continuous_backups("Events")
        .send()
        .unwrap()
        .continuous_backups_description
        .point_in_time_recovery_description;
    assert_eq!(described.earliest_restorable_date_time, Some(at(earliest)));
    let expected: BTreeMap<u64, Model> = states
        .range(earliest..)
        .step_by(6)
        .map(|(s, m)| (*s, m.clone()))
        .collect();
    check_restores(&db, &expected, "Kept");
    assert!(matches!(
        db.restore_table_to_point_in_time("Events", "Gone")
            .restore_date_time(at(earliest - 1))
            .send(),
        Err(Error::InvalidRestoreTime(_))
    ));
}

#[test]
fn disabling_drops_the_archive_and_enabling_again_starts_a_new_window() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    let mut rng = Rng(5);
    let mut model = Model::new();
    for _ in 0..20 {
        random_change(&db, &mut rng, &mut model, START_SECS);
    }
    let output = db
        .update_continuous_backups("Events")
        .point_in_time_recovery_enabled(false)
        .send()
        .unwrap();
    assert_eq!(
        output
            .continuous_backups_description
            .point_in_time_recovery_description
            .point_in_time_recovery_status,
        PointInTimeRecoveryStatus::Disabled
    );
    assert_eq!(
        db.point_in_time_recovery_storage("Events").unwrap(),
        nimbus::kv::PitrStorage::default()
    );
    assert!(!dir.path().join("pitr").read_dir().unwrap().any(|_| true));
    assert!(matches!(
        db.restore_table_to_point_in_time("Events", "Tgt")
            .use_latest_restorable_time(true)
            .send(),
        Err(Error::PointInTimeRecoveryUnavailable(_))
    ));
    clock.advance(Duration::from_secs(100));
    db.update_continuous_backups("Events")
        .point_in_time_recovery_enabled(true)
        .send()
        .unwrap();
    let described = db
        .describe_continuous_backups("Events")
        .send()
        .unwrap()
        .continuous_backups_description
        .point_in_time_recovery_description;
    assert_eq!(
        described.earliest_restorable_date_time,
        Some(at(START_SECS + 100))
    );
    // The new window's base holds the items written while PITR was off.
    db.restore_table_to_point_in_time("Events", "Again")
        .restore_date_time(at(START_SECS + 100))
        .send()
        .unwrap();
    assert_eq!(contents(&db, "Again"), model);
    // Deleting the table drops its archive; maintenance its snapshots.
    db.delete_table("Events").send().unwrap();
    let done = db.run_pitr_maintenance_now().unwrap();
    assert_eq!(done.snapshots_removed, 1);
    assert!(!dir.path().join("pitr").read_dir().unwrap().any(|_| true));
}

#[test]
fn an_export_at_a_past_time_writes_the_items_of_that_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(at(START_SECS));
    let db = Database::open_with(dir.path(), options(&clock)).unwrap();
    events(&db);
    db.objects().create_bucket("exports").send().unwrap();
    let mut rng = Rng(9);
    let mut model = Model::new();
    let mut states = BTreeMap::new();
    for _ in 0..30 {
        clock.advance(Duration::from_secs(1));
        let now = now_secs(&clock);
        random_change(&db, &mut rng, &mut model, now);
        states.insert(now, model.len() as u64);
    }
    for (secs, count) in states.iter().step_by(7) {
        let export = db
            .export_table_to_point_in_time("Events")
            .s3_bucket("exports")
            .s3_prefix(format!("at{secs}"))
            .export_time(at(*secs))
            .send()
            .unwrap()
            .export_description;
        assert_eq!(export.item_count, *count, "at {secs}");
        assert_eq!(export.export_time, at(*secs));
    }
    assert!(matches!(
        db.export_table_to_point_in_time("Events")
            .s3_bucket("exports")
            .export_time(at(START_SECS - 5))
            .send(),
        Err(Error::InvalidRestoreTime(_))
    ));
}

#[test]
fn a_restore_cut_by_a_crash_leaves_no_table_and_can_be_redone() {
    use nimbus::storage::fs::FileSystem;
    use nimbus::storage::sim::SimFileSystem;

    let disk = SimFileSystem::new();
    let clock = ManualClock::at(at(START_SECS));
    let boot = || {
        let session: Arc<dyn FileSystem> = Arc::new(disk.session());
        Database::open_on(
            session,
            "/db",
            DatabaseOptions::default().clock(clock.clone()),
        )
        .unwrap()
    };
    let mut rng = Rng(13);
    let mut model = Model::new();
    let mut keys_at = BTreeMap::new();
    {
        let db = boot();
        events(&db);
        for _ in 0..30 {
            clock.advance(Duration::from_secs(1));
            random_change(&db, &mut rng, &mut model, now_secs(&clock));
            keys_at.insert(
                now_secs(&clock),
                model.keys().cloned().collect::<BTreeSet<_>>(),
            );
        }
        db.close().unwrap();
    }
    let (secs, expected) = keys_at
        .iter()
        .nth(25)
        .map(|(s, k)| (*s, k.clone()))
        .unwrap();
    let mut completed = 0;
    for n in 1..7u64 {
        let target = format!("Restored{n}");
        {
            let db = boot();
            disk.fail_nth_write(n);
            let _ = db
                .restore_table_to_point_in_time("Events", &target)
                .restore_date_time(at(secs))
                .send();
            disk.crash(n);
        }
        let db = boot();
        match db.describe_table(&target).send() {
            Ok(output) => {
                completed += 1;
                assert_eq!(
                    output.table.item_count,
                    expected.len() as u64,
                    "restore {n}"
                );
                let keys: BTreeSet<Key> = contents(&db, &target).into_keys().collect();
                assert_eq!(keys, expected, "restore {n}");
            }
            Err(Error::ResourceNotFound(_)) => {}
            Err(other) => panic!("restore {n}: {other:?}"),
        }
        db.close().unwrap();
    }
    assert!(completed < 6, "some restores were cut");
    let db = boot();
    db.restore_table_to_point_in_time("Events", "Final")
        .restore_date_time(at(secs))
        .send()
        .unwrap();
    let keys: BTreeSet<Key> = contents(&db, "Final").into_keys().collect();
    assert_eq!(keys, expected);
}
