//! Whole-database checkpoints: `Database::checkpoint` copies every table
//! and every object (catalogue rows and pack files) as of one instant while
//! writes go on; the copy opens as a database of its own, unaffected by
//! what the original does afterwards (more writes, deletes, a GC that
//! rewrites and removes packs).
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use nimbus::objects::{ObjectStoreOptions, Objects};
use nimbus::storage::sim::SimRng;
use nimbus::storage::{Durability, StorageError};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, ScalarType, item};

fn options(clock: &ManualClock) -> DatabaseOptions {
    DatabaseOptions::default()
        .durability(Durability::Buffered)
        .clock(clock.clone())
}

fn clock() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

/// Small chunks, so a few hundred KiB make many chunks in pack files.
fn small_chunks() -> ObjectStoreOptions {
    ObjectStoreOptions {
        chunk_bytes_min: 2048,
        chunk_bytes_avg: 8192,
        chunk_bytes_max: 32768,
        gc_grace: Duration::from_secs(60),
        ..ObjectStoreOptions::default()
    }
}

fn body(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

fn read(s3: &Objects<'_>, bucket: &str, key: &str) -> Vec<u8> {
    s3.get_object(bucket, key)
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap()
        .to_vec()
}

fn setup(db: &Database) {
    db.create_table("Users")
        .partition_key("id", ScalarType::N)
        .send()
        .unwrap();
    let s3 = db.objects();
    s3.set_options(small_chunks()).unwrap();
    s3.create_bucket("media").send().unwrap();
}

#[test]
fn a_checkpoint_is_the_whole_database_at_one_instant() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let db = Database::open_with(dir.path().join("live"), options(&clock)).unwrap();
    setup(&db);
    let s3 = db.objects();
    for id in 0..50u64 {
        db.put_item("Users")
            .item(item! { "id" => id, "name" => format!("user-{id}") })
            .send()
            .unwrap();
    }
    let mut bodies = BTreeMap::new();
    for n in 0..6u64 {
        let data = body(100_000 + n as usize * 7_000, n);
        s3.put_object("media", format!("big-{n}"))
            .body(data.clone())
            .send()
            .unwrap();
        bodies.insert(format!("big-{n}"), data);
    }
    s3.put_object("media", "tiny")
        .body(b"inline".to_vec())
        .send()
        .unwrap();
    bodies.insert("tiny".to_string(), b"inline".to_vec());

    let copy = dir.path().join("copy");
    db.checkpoint(&copy).unwrap();

    // The original moves on: new items and objects, deletes, and a GC that
    // frees the deleted bodies and rewrites or removes their packs.
    db.put_item("Users")
        .item(item! { "id" => 999u64, "name" => "late" })
        .send()
        .unwrap();
    db.delete_item("Users")
        .key(item! { "id" => 0u64 })
        .send()
        .unwrap();
    for n in 0..6u64 {
        s3.delete_object("media", format!("big-{n}"))
            .send()
            .unwrap();
    }
    s3.put_object("media", "after")
        .body(body(50_000, 77))
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    let gc = s3.gc().unwrap();
    assert!(gc.chunks_freed > 0, "{gc:?}");
    assert!(
        gc.packs_removed > 0,
        "the deleted bodies' packs went: {gc:?}"
    );
    db.close().unwrap();
    drop(db);

    let restored = Database::open_with(&copy, options(&clock)).unwrap();
    let users = restored.scan("Users").send().unwrap();
    assert_eq!(users.count, 50, "the late put and the delete are not in it");
    assert!(
        restored
            .get_item("Users")
            .key(item! { "id" => 0u64 })
            .send()
            .unwrap()
            .item
            .is_some()
    );
    let s3 = restored.objects();
    let listed: Vec<String> = s3
        .list_objects_v2("media")
        .send()
        .unwrap()
        .contents
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, bodies.keys().cloned().collect::<Vec<_>>());
    for (key, data) in &bodies {
        assert_eq!(&read(&s3, "media", key), data, "{key}");
    }
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    // The copy is a database of its own: it takes writes.
    s3.put_object("media", "new")
        .body(body(40_000, 9))
        .send()
        .unwrap();
    assert_eq!(read(&s3, "media", "new"), body(40_000, 9));
}

#[test]
fn a_checkpoint_taken_during_writes_holds_every_write_acknowledged_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let db = Database::open_with(dir.path().join("live"), options(&clock)).unwrap();
    setup(&db);
    let acknowledged = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, acknowledged, stop) = (db.clone(), acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                db.objects()
                    .put_object("media", format!("o{n:05}"))
                    .body(body(20_000, n))
                    .send()
                    .unwrap();
                db.put_item("Users")
                    .item(item! { "id" => n, "object" => format!("o{n:05}") })
                    .send()
                    .unwrap();
                n += 1;
                acknowledged.store(n, Ordering::Release);
            }
        })
    };
    while acknowledged.load(Ordering::Acquire) < 20 {
        std::thread::yield_now();
    }
    let before = acknowledged.load(Ordering::Acquire);
    let copy = dir.path().join("copy");
    db.checkpoint(&copy).unwrap();
    let started_after = acknowledged.load(Ordering::Acquire);
    while acknowledged.load(Ordering::Acquire) < started_after + 10 {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    db.close().unwrap();
    drop(db);

    let restored = Database::open_with(&copy, options(&clock)).unwrap();
    let s3 = restored.objects();
    let keys: Vec<String> = s3
        .list_objects_v2("media")
        .send()
        .unwrap()
        .contents
        .into_iter()
        .map(|o| o.key)
        .collect();
    let objects = keys.len() as u64;
    assert!(
        objects >= before,
        "{objects} objects, {before} acknowledged before"
    );
    // A prefix of the writer's puts, each body whole.
    for (n, key) in keys.iter().enumerate() {
        assert_eq!(key, &format!("o{n:05}"));
        assert_eq!(read(&s3, "media", key), body(20_000, n as u64));
    }
    let items = restored.scan("Users").send().unwrap().count as u64;
    assert!(items >= before && (items == objects || items + 1 == objects));
    assert!(s3.verify().unwrap().is_consistent());
}

#[test]
fn checkpoint_refuses_an_existing_target_and_an_in_memory_database() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let db = Database::open_with(dir.path().join("live"), options(&clock)).unwrap();
    setup(&db);
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).unwrap();
    let error = db.checkpoint(&taken).unwrap_err();
    assert!(matches!(error, StorageError::InvalidArgument(_)), "{error}");
    assert_eq!(
        std::fs::read_dir(&taken).unwrap().count(),
        0,
        "nothing written"
    );

    let memory = Database::memory().unwrap();
    let error = memory.checkpoint(dir.path().join("mem")).unwrap_err();
    assert!(matches!(error, StorageError::InvalidArgument(_)), "{error}");
    assert!(!dir.path().join("mem").exists());
}
