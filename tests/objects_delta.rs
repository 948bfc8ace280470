//! Versions stored as differences: a new version of a key stores only the
//! bytes it changed (plus pieces of the previous version's chunks), reads
//! back exactly, whole and by range, keeps its ETag and copies, and stays
//! readable after the version it was stored against is deleted and its
//! unshared chunks collected.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::time::{Duration, UNIX_EPOCH};

use nimbus::objects::{BucketVersioningStatus, ObjectStoreOptions, Objects, PutObjectOutput};
use nimbus::storage::sim::SimRng;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

/// Chunks of 128 KiB on average: the default's shape at a test's scale.
fn options() -> ObjectStoreOptions {
    ObjectStoreOptions {
        chunk_bytes_min: 32 << 10,
        chunk_bytes_avg: 128 << 10,
        chunk_bytes_max: 512 << 10,
        gc_grace: Duration::from_secs(600),
        ..ObjectStoreOptions::default()
    }
}

fn setup(clock: &ManualClock) -> Database {
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    let s3 = db.objects();
    s3.set_options(options()).unwrap();
    s3.create_bucket("files").send().unwrap();
    s3.put_bucket_versioning("files")
        .status(BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    db
}

fn clock() -> ManualClock {
    ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

fn put(s3: &Objects<'_>, bucket: &str, key: &str, data: &[u8]) -> PutObjectOutput {
    s3.put_object(bucket, key)
        .body(data.to_vec())
        .send()
        .unwrap()
}

fn read_version(s3: &Objects<'_>, key: &str, version: &str) -> Vec<u8> {
    s3.get_object("files", key)
        .version_id(version)
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap()
        .to_vec()
}

/// Deletes version `version` of `key` for good and collects after the
/// grace period.
fn delete_version_and_collect(s3: &Objects<'_>, clock: &ManualClock, key: &str, version: String) {
    s3.delete_object("files", key)
        .version_id(version)
        .send()
        .unwrap();
    clock.advance(Duration::from_secs(601));
    s3.gc().unwrap();
}

/// Rewrites `len` bytes at a random place.
fn rewrite(data: &mut [u8], len: usize, rng: &mut SimRng) {
    let at = rng.below_usize(data.len() - len);
    rng.fill(&mut data[at..at + len]);
}

#[test]
fn twenty_versions_with_one_percent_rewritten_store_little_more_than_one() {
    let clock = clock();
    let db = setup(&clock);
    let s3 = db.objects();
    let mut rng = SimRng::new(7);
    let mut data = random_bytes(8 << 20, 1);
    let mut versions = Vec::new();
    let mut one = 0;
    for round in 0..20 {
        if round > 0 {
            let len = data.len() / 100;
            rewrite(&mut data, len, &mut rng);
        }
        let put = put(&s3, "files", "db.img", &data);
        versions.push((put.version_id.unwrap(), data.clone()));
        if round == 0 {
            one = s3.verify().unwrap().live_bytes;
        }
    }
    let all = s3.verify().unwrap();
    assert!(all.is_consistent(), "{all:?}");
    // The edits alone are 19 % of one version; pieces cost nothing more
    // than the bytes between them (chunking alone stores about 19 × (1 % +
    // one 128 KiB chunk) ≈ 48 % more here).
    let ratio = all.live_bytes as f64 / one as f64;
    eprintln!("20 versions stored in {ratio:.3}× one");
    assert!(ratio < 1.25, "stored {ratio:.3}× one version");
    for (version, expected) in &versions {
        assert!(
            read_version(&s3, "db.img", version) == *expected,
            "{version}"
        );
    }
}

#[test]
fn insertions_and_deletions_realign_and_read_back_exactly() {
    let clock = clock();
    let db = setup(&clock);
    let s3 = db.objects();
    let first = random_bytes(4 << 20, 2);
    put(&s3, "files", "doc", &first);
    let one = s3.verify().unwrap().live_bytes;
    // 3,000 bytes inserted in the middle, 5,000 removed near the end.
    let mut second = first[..1_500_000].to_vec();
    second.extend_from_slice(&random_bytes(3_000, 3));
    second.extend_from_slice(&first[1_500_000..3_000_000]);
    second.extend_from_slice(&first[3_005_000..]);
    let put = put(&s3, "files", "doc", &second);
    let added = s3.verify().unwrap().live_bytes - one;
    assert!(
        added < 16 << 10,
        "an insertion and a deletion stored {added} bytes"
    );
    assert!(read_version(&s3, "doc", &put.version_id.unwrap()) == second);
    // Ranges across the pieces.
    let mut rng = SimRng::new(11);
    for _ in 0..40 {
        let start = rng.below_usize(second.len());
        let end = start + rng.below_usize(second.len() - start).min(600_000);
        let got = s3
            .get_object("files", "doc")
            .range(format!("bytes={start}-{end}"))
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap();
        let end = end.min(second.len() - 1);
        assert!(got[..] == second[start..=end], "{start}-{end}");
    }
}

#[test]
fn a_difference_has_the_etag_of_its_content_and_so_do_its_copies() {
    let clock = clock();
    let db = setup(&clock);
    let s3 = db.objects();
    let mut data = random_bytes(2 << 20, 4);
    put(&s3, "files", "a", &data);
    rewrite(&mut data, 10_000, &mut SimRng::new(5));
    let edited = put(&s3, "files", "a", &data);
    // The same bytes under a key with no history: stored whole.
    let fresh = put(&s3, "files", "b", &data);
    assert_eq!(edited.e_tag, fresh.e_tag);
    let copy = s3
        .copy_object("files", "c")
        .copy_source("files", "a")
        .send()
        .unwrap();
    assert_eq!(copy.e_tag, edited.e_tag);
    let got = s3
        .get_object("files", "c")
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap();
    assert!(got[..] == data[..]);
}

#[test]
fn a_difference_outlives_the_version_it_was_stored_against() {
    let clock = clock();
    let db = setup(&clock);
    let s3 = db.objects();
    let first = random_bytes(3 << 20, 6);
    let old = put(&s3, "files", "log", &first);
    let mut second = first.clone();
    rewrite(&mut second, 30_000, &mut SimRng::new(8));
    let new = put(&s3, "files", "log", &second);
    delete_version_and_collect(&s3, &clock, "log", old.version_id.unwrap());
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert!(read_version(&s3, "log", &new.version_id.clone().unwrap()) == second);
    // Deleting the last version frees every chunk, the old ones too.
    delete_version_and_collect(&s3, &clock, "log", new.version_id.unwrap());
    let empty = s3.verify().unwrap();
    assert_eq!((empty.chunks, empty.live_bytes), (0, 0), "{empty:?}");
}

#[test]
fn unrelated_and_unversioned_rewrites_are_stored_whole_and_correct() {
    let clock = clock();
    let db = setup(&clock);
    let s3 = db.objects();
    s3.create_bucket("plain").send().unwrap();
    let first = random_bytes(2 << 20, 9);
    put(&s3, "plain", "k", &first);
    let one = s3.verify().unwrap().live_bytes;
    // A different body replacing it shares nothing and needs it all.
    let other = random_bytes(2 << 20, 10);
    put(&s3, "plain", "k", &other);
    clock.advance(Duration::from_secs(601));
    s3.gc().unwrap();
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    assert!((report.live_bytes as f64) > 0.99 * one as f64);
    // The null version replaced in place: the edit is stored as a
    // difference from the body it replaces, which GC must then keep.
    let mut edited = other.clone();
    rewrite(&mut edited, 5_000, &mut SimRng::new(12));
    put(&s3, "plain", "k", &edited);
    clock.advance(Duration::from_secs(601));
    s3.gc().unwrap();
    assert!(s3.verify().unwrap().is_consistent());
    let got = s3
        .get_object("plain", "k")
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap();
    assert!(got[..] == edited[..]);
}

/// One random edit: overwrite, insert or delete a run somewhere.
fn random_edit(data: &mut Vec<u8>, rng: &mut SimRng) {
    let len = 1 + rng.below_usize(40_000);
    let at = rng.below_usize(data.len());
    match rng.below_usize(3) {
        0 => {
            let end = (at + len).min(data.len());
            rng.fill(&mut data[at..end]);
        }
        1 => {
            let mut inserted = vec![0u8; len];
            rng.fill(&mut inserted);
            data.splice(at..at, inserted);
        }
        _ => {
            let end = (at + len).min(data.len());
            if data.len() - (end - at) > 100_000 {
                data.drain(at..end);
            }
        }
    }
}

#[test]
fn random_edits_deletes_and_gc_never_change_a_version() {
    for seed in 0..6u64 {
        let clock = clock();
        let db = setup(&clock);
        let s3 = db.objects();
        let mut rng = SimRng::new(100 + seed);
        let mut data = random_bytes(600_000 + rng.below_usize(1_400_000), seed);
        let mut live: Vec<(String, Vec<u8>)> = Vec::new();
        for step in 0..14 {
            for _ in 0..1 + rng.below_usize(4) {
                random_edit(&mut data, &mut rng);
            }
            let put = put(&s3, "files", "f", &data);
            live.push((put.version_id.unwrap(), data.clone()));
            // Now and then delete a random older version and collect.
            if step % 3 == 2 && live.len() > 2 {
                let (version, _) = live.remove(rng.below_usize(live.len() - 1));
                delete_version_and_collect(&s3, &clock, "f", version);
            }
        }
        let report = s3.verify().unwrap();
        assert!(report.is_consistent(), "seed {seed}: {report:?}");
        for (version, expected) in &live {
            assert!(
                read_version(&s3, "f", version) == *expected,
                "seed {seed}, {version}"
            );
            let start = rng.below_usize(expected.len());
            let end = start + rng.below_usize(expected.len() - start);
            let got = s3
                .get_object("files", "f")
                .version_id(version)
                .range(format!("bytes={start}-{end}"))
                .send()
                .unwrap()
                .body
                .collect()
                .unwrap();
            assert!(
                got[..] == expected[start..=end],
                "seed {seed}, {version} {start}-{end}"
            );
        }
    }
}
