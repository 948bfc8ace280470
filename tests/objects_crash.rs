//! Power loss during object writes, on the simulated disk: a large PUT
//! interrupted at any write or sync leaves the old version or the new one,
//! whole and hash-checked, never a mix; an acknowledged PUT survives.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::sync::Arc;

use nimbus::objects::{Error, ObjectStoreOptions};
use nimbus::storage::sim::{SimFileSystem, SimRng};
use nimbus::{Database, DatabaseOptions};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

fn open(fs: &SimFileSystem) -> Database {
    Database::open_on(
        Arc::new(fs.session()),
        "/db",
        DatabaseOptions::default().background_threads(false),
    )
    .unwrap()
}

/// The body of `key` after a reopen, read whole (every chunk hash checked).
fn read_back(fs: &SimFileSystem) -> Vec<u8> {
    let db = open(fs);
    let body = db
        .objects()
        .get_object("crash", "big")
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap()
        .to_vec();
    let report = db.objects().verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    db.close().unwrap();
    body
}

fn setup(fs: &SimFileSystem, old: &[u8]) {
    let db = open(fs);
    let s3 = db.objects();
    s3.set_options(ObjectStoreOptions {
        chunk_bytes_min: 4096,
        chunk_bytes_avg: 16384,
        chunk_bytes_max: 65536,
        ..ObjectStoreOptions::default()
    })
    .unwrap();
    s3.create_bucket("crash").send().unwrap();
    s3.put_object("crash", "big")
        .body(old.to_vec())
        .send()
        .unwrap();
    db.close().unwrap();
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Write(u64),
    DataSync(u64),
    DirSync(u64),
}

#[test]
fn a_put_interrupted_anywhere_leaves_the_old_or_the_new_version() {
    let old = random_bytes(400_000, 1);
    let new = random_bytes(400_000, 2);
    let mut faults = Vec::new();
    for n in 1..=40 {
        faults.push(Fault::Write(n));
    }
    for n in 1..=6 {
        faults.push(Fault::DataSync(n));
        faults.push(Fault::DirSync(n));
    }
    let (mut saw_old, mut saw_new) = (0, 0);
    for (index, fault) in faults.into_iter().enumerate() {
        let fs = SimFileSystem::new();
        setup(&fs, &old);
        let db = open(&fs);
        match fault {
            Fault::Write(n) => fs.fail_nth_write(n),
            Fault::DataSync(n) => fs.fail_nth_data_sync(n),
            Fault::DirSync(n) => fs.fail_nth_dir_sync(n),
        }
        let acknowledged = db
            .objects()
            .put_object("crash", "big")
            .body(new.clone())
            .send();
        fs.crash(index as u64);
        drop(db);
        let body = read_back(&fs);
        if acknowledged.is_ok() {
            assert_eq!(body, new, "{fault:?}: an acknowledged put was lost");
        }
        assert!(body == old || body == new, "{fault:?}: a mix of versions");
        if body == old {
            saw_old += 1;
        } else {
            saw_new += 1;
        }
    }
    // The faults reached both sides of the commit point.
    assert!(saw_old > 0 && saw_new > 0, "old {saw_old}, new {saw_new}");
}

#[test]
fn acknowledged_puts_survive_power_loss() {
    let fs = SimFileSystem::new();
    setup(&fs, b"old");
    let db = open(&fs);
    let mut expected = Vec::new();
    for i in 0..10u64 {
        let data = random_bytes(10_000 + i as usize * 7_000, 100 + i);
        db.objects()
            .put_object("crash", format!("k{i}"))
            .body(data.clone())
            .send()
            .unwrap();
        expected.push(data);
    }
    fs.crash(7);
    drop(db);
    let db = open(&fs);
    for (i, data) in expected.iter().enumerate() {
        let body = db
            .objects()
            .get_object("crash", format!("k{i}"))
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap();
        assert_eq!(&body[..], &data[..]);
    }
}

#[test]
fn a_failed_pack_sync_stops_chunked_writes_until_reopen() {
    let fs = SimFileSystem::new();
    setup(&fs, b"old");
    let db = open(&fs);
    fs.fail_nth_data_sync(1);
    let first = db
        .objects()
        .put_object("crash", "x")
        .body(random_bytes(100_000, 5))
        .send();
    assert!(first.is_err());
    let second = db
        .objects()
        .put_object("crash", "y")
        .body(random_bytes(100_000, 6))
        .send();
    assert!(matches!(second, Err(Error::Storage(_))), "{second:?}");
}

#[test]
fn buffered_puts_lost_to_power_loss_are_lost_whole() {
    let fs = SimFileSystem::new();
    let open_buffered = || {
        Database::open_on(
            Arc::new(fs.session()),
            "/db",
            DatabaseOptions::default()
                .durability(nimbus::storage::Durability::Buffered)
                .background_threads(false),
        )
        .unwrap()
    };
    setup(&fs, b"old");
    for round in 0..5u64 {
        let db = open_buffered();
        let mut written = Vec::new();
        for i in 0..8u64 {
            let data = random_bytes(20_000 + 3_000 * i as usize, round * 100 + i);
            db.objects()
                .put_object("crash", format!("r{round}k{i}"))
                .body(data.clone())
                .send()
                .unwrap();
            written.push(data);
        }
        fs.crash(round);
        drop(db);
        let db = open_buffered();
        for (i, data) in written.iter().enumerate() {
            // Gone (a Buffered write may be lost) or whole, never damaged.
            match db
                .objects()
                .get_object("crash", format!("r{round}k{i}"))
                .send()
            {
                Ok(out) => assert_eq!(&out.body.collect().unwrap()[..], &data[..]),
                Err(Error::NoSuchKey { .. }) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert!(db.objects().verify().unwrap().is_consistent());
        db.close().unwrap();
    }
}
