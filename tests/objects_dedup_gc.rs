//! Content addressing: shared bytes are stored once, deleting one sharer
//! keeps the others readable, GC frees only unreferenced chunks after the
//! grace period, and a model test of random puts, copies, deletes, GC runs
//! and power losses never loses a referenced chunk.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::objects::{ObjectStoreOptions, Objects, StorageClass};
use nimbus::storage::sim::{SimFileSystem, SimRng};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

fn options() -> ObjectStoreOptions {
    ObjectStoreOptions {
        chunk_bytes_min: 2048,
        chunk_bytes_avg: 8192,
        chunk_bytes_max: 32768,
        gc_grace: Duration::from_secs(600),
        ..ObjectStoreOptions::default()
    }
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

/// Changes about `percent` of the bytes of `data` in a few runs.
fn edit(data: &[u8], percent: usize, seed: u64) -> Vec<u8> {
    let mut out = data.to_vec();
    let mut rng = SimRng::new(seed);
    let runs = 4;
    let run_len = data.len() * percent / 100 / runs;
    for _ in 0..runs {
        let at = rng.below_usize(data.len() - run_len);
        rng.fill(&mut out[at..at + run_len]);
    }
    out
}

#[test]
fn objects_sharing_most_bytes_store_them_once() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    let s3 = db.objects();
    s3.set_options(options()).unwrap();
    s3.create_bucket("dedup").send().unwrap();
    let base = random_bytes(1 << 20, 1);
    let variant = edit(&base, 1, 2);
    s3.put_object("dedup", "base")
        .body(base.clone())
        .send()
        .unwrap();
    let one = s3.verify().unwrap().live_bytes;
    s3.put_object("dedup", "variant")
        .body(variant.clone())
        .send()
        .unwrap();
    let two = s3.verify().unwrap().live_bytes;
    // The variant added far less than a second copy.
    assert!(two - one < one / 5, "one {one}, both {two}");
    // An identical third copy adds nothing.
    s3.put_object("dedup", "copy")
        .body(base.clone())
        .send()
        .unwrap();
    assert_eq!(s3.verify().unwrap().live_bytes, two);

    // Deleting the original keeps the sharers readable, even after GC.
    s3.delete_object("dedup", "base").send().unwrap();
    clock.advance(Duration::from_secs(3600));
    let gc = s3.gc().unwrap();
    assert_eq!(gc.chunks_freed, 0, "every chunk of base is still shared");
    assert_eq!(read(&s3, "dedup", "variant"), variant);
    assert_eq!(read(&s3, "dedup", "copy"), base);
    // Now the variant's own chunks lose their last reference.
    s3.delete_object("dedup", "variant").send().unwrap();
    let early = s3.gc().unwrap();
    assert_eq!(early.chunks_freed, 0, "within the grace period");
    clock.advance(Duration::from_secs(601));
    let late = s3.gc().unwrap();
    assert!(late.chunks_freed > 0);
    assert_eq!(read(&s3, "dedup", "copy"), base);
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    // Everything deleted: all chunks go, and the packs with them.
    s3.delete_object("dedup", "copy").send().unwrap();
    clock.advance(Duration::from_secs(601));
    s3.gc().unwrap();
    let empty = s3.verify().unwrap();
    assert_eq!((empty.chunks, empty.live_bytes), (0, 0));
    assert_eq!(empty.pack_bytes, 0, "{empty:?}");
}

#[test]
fn a_chunk_rereferenced_during_its_grace_period_survives_gc() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    let s3 = db.objects();
    s3.set_options(options()).unwrap();
    s3.create_bucket("revive").send().unwrap();
    let data = random_bytes(100_000, 5);
    s3.put_object("revive", "a")
        .body(data.clone())
        .send()
        .unwrap();
    s3.delete_object("revive", "a").send().unwrap();
    clock.advance(Duration::from_secs(300));
    s3.put_object("revive", "b")
        .body(data.clone())
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(s3.gc().unwrap().chunks_freed, 0);
    assert_eq!(read(&s3, "revive", "b"), data);
}

#[test]
fn copies_share_chunks_and_storage_class_changes_move_them() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.set_options(options()).unwrap();
    s3.create_bucket("copies").send().unwrap();
    let data = random_bytes(200_000, 9);
    let original = s3
        .put_object("copies", "a")
        .body(data.clone())
        .metadata("m", "1")
        .send()
        .unwrap();
    let before = s3.verify().unwrap();
    let copy = s3
        .copy_object("copies", "b")
        .copy_source("copies", "a")
        .send()
        .unwrap();
    assert_eq!(copy.e_tag, original.e_tag);
    assert_eq!(
        s3.verify().unwrap().live_bytes,
        before.live_bytes,
        "a copy writes no chunk"
    );
    let head = s3.head_object("copies", "b").send().unwrap();
    assert_eq!(head.metadata.get("m").map(String::as_str), Some("1"));
    // Copying onto itself without a change is refused.
    assert!(
        s3.copy_object("copies", "a")
            .copy_source("copies", "a")
            .send()
            .is_err()
    );
    // To a cold class: the chunks are compressed into cold packs.
    s3.copy_object("copies", "cold")
        .copy_source("copies", "a")
        .storage_class(StorageClass::StandardIa)
        .send()
        .unwrap();
    assert!(s3.verify().unwrap().chunks > before.chunks);
    assert_eq!(read(&s3, "copies", "cold"), data);
    s3.delete_object("copies", "a").send().unwrap();
    assert_eq!(read(&s3, "copies", "b"), data);
    assert!(s3.verify().unwrap().is_consistent());
}

/// What the model expects a key to hold: one of these contents (a failed
/// write may or may not have committed before the power loss).
type Model = BTreeMap<String, Vec<Vec<u8>>>;

fn open(fs: &SimFileSystem, clock: &ManualClock) -> Database {
    Database::open_on(
        Arc::new(fs.session()),
        "/db",
        DatabaseOptions::default()
            .clock(clock.clone())
            .background_threads(false),
    )
    .unwrap()
}

/// Reads every key, resolving the model's ambiguities to what was read.
fn check(db: &Database, model: &mut Model) {
    let s3 = db.objects();
    for (key, candidates) in model.iter_mut() {
        let got = match s3.get_object("model", key).send() {
            Ok(out) => Some(out.body.collect().unwrap().to_vec()),
            Err(nimbus::objects::Error::NoSuchKey { .. }) => None,
            Err(other) => panic!("{key}: {other:?}"),
        };
        let got = got.unwrap_or_default();
        assert!(
            candidates.contains(&got),
            "{key}: unexpected content of {} bytes",
            got.len()
        );
        *candidates = vec![got];
    }
    let report = s3.verify().unwrap();
    assert!(
        report.missing_chunks.is_empty() && report.damaged_entries.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.missing_references, 0, "{report:?}");
}

#[test]
fn gc_never_frees_a_referenced_chunk_across_random_operations_and_crashes() {
    let long = std::env::var_os("NIMBUS_LONG_TESTS").is_some();
    // Seed 7 loses the objects directory's own entry at its first power
    // loss unless it was synced (a bug this test found).
    let seeds: &[u64] = if long {
        &[42, 7, 1234, 99, 1, 2, 3]
    } else {
        &[42, 7]
    };
    for &seed in seeds {
        gc_model_run(seed, if long { 3000 } else { 400 });
    }
}

fn gc_model_run(seed: u64, steps: u64) {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let fs = SimFileSystem::new();
    let mut db = open(&fs, &clock);
    db.objects().set_options(options()).unwrap();
    db.objects().create_bucket("model").send().unwrap();
    let bases: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(60_000, 100 + i)).collect();
    let mut rng = SimRng::new(seed);
    let mut model: Model = BTreeMap::new();
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let mut failed = false;
    for step in 0..steps {
        let key = keys[rng.below_usize(keys.len())].clone();
        let old = model.get(&key).cloned().unwrap_or_else(|| vec![Vec::new()]);
        match rng.below(100) {
            0..=44 => {
                let base = &bases[rng.below_usize(bases.len())];
                let data = if rng.coin() {
                    base.clone()
                } else {
                    edit(base, 5, rng.next_u64())
                };
                if rng.below(10) == 0 {
                    fs.fail_nth_write(1 + rng.below(6));
                }
                let result = db
                    .objects()
                    .put_object("model", &key)
                    .body(data.clone())
                    .send();
                let mut next = old.clone();
                if result.is_ok() {
                    next = vec![data];
                } else {
                    next.push(data);
                    failed = true;
                }
                model.insert(key, next);
            }
            45..=59 => {
                let source = keys[rng.below_usize(keys.len())].clone();
                let source_content = model.get(&source).cloned();
                if let Some(contents) = source_content.filter(|c| c.len() == 1 && !c[0].is_empty())
                    && source != key
                {
                    db.objects()
                        .copy_object("model", &key)
                        .copy_source("model", &source)
                        .send()
                        .unwrap();
                    model.insert(key, contents);
                }
            }
            60..=79 => {
                db.objects().delete_object("model", &key).send().unwrap();
                model.insert(key, vec![Vec::new()]);
            }
            80..=89 => {
                clock.advance(Duration::from_secs(rng.below(900)));
                db.objects().gc().unwrap();
            }
            _ => {
                fs.crash(step);
                drop(db);
                db = open(&fs, &clock);
                check(&db, &mut model);
                continue;
            }
        }
        fs.clear_faults();
        if std::mem::take(&mut failed) || rng.below(20) == 0 {
            // A failed write may have stopped the engine or the packs:
            // reboot, as after power loss.
            fs.crash(step + 1_000_000);
            drop(db);
            db = open(&fs, &clock);
            check(&db, &mut model);
        }
    }
    fs.crash(u64::MAX);
    drop(db);
    let db = open(&fs, &clock);
    check(&db, &mut model);
    clock.advance(Duration::from_secs(3600));
    db.objects().gc().unwrap();
    check(&db, &mut model);
    let report = db.objects().verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
}

#[test]
fn verify_sees_chunks_appended_after_a_read_of_the_same_pack() {
    // A read caches a reader of the active pack; chunks appended after it
    // must still be found by verify's scan (they once were reported as
    // damaged entries).
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.set_options(options()).unwrap();
    s3.create_bucket("scan").send().unwrap();
    let first = random_bytes(100_000, 21);
    s3.put_object("scan", "a")
        .body(first.clone())
        .send()
        .unwrap();
    assert_eq!(read(&s3, "scan", "a"), first);
    s3.put_object("scan", "b")
        .body(random_bytes(100_000, 22))
        .send()
        .unwrap();
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert!(report.pack_bytes >= 200_000, "{report:?}");
}
