//! Buckets, PUT/GET/HEAD/DELETE, conditional requests (including racing
//! creators), ranges, metadata, listing and hash-checked reads, through
//! the public API.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use nimbus::objects::{ByteStream, Error, ObjectStoreOptions, Objects};
use nimbus::storage::fs::FileSystem;
use nimbus::storage::sim::{SimFileSystem, SimRng};
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

fn small_chunks(s3: &Objects<'_>) {
    s3.set_options(ObjectStoreOptions {
        chunk_bytes_min: 2048,
        chunk_bytes_avg: 8192,
        chunk_bytes_max: 32768,
        ..ObjectStoreOptions::default()
    })
    .unwrap();
}

#[test]
fn buckets_are_created_listed_and_deleted_only_when_empty() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    for bad in ["ab", "Upper", "a..b", "10.0.0.1", "-dash", "xn--abc"] {
        assert!(matches!(
            s3.create_bucket(bad).send(),
            Err(Error::InvalidBucketName { .. })
        ));
    }
    s3.create_bucket("zeta").send().unwrap();
    s3.create_bucket("alpha").send().unwrap();
    assert!(matches!(
        s3.create_bucket("alpha").send(),
        Err(Error::BucketAlreadyOwnedByYou { .. })
    ));
    let names: Vec<_> = s3
        .list_buckets()
        .send()
        .unwrap()
        .buckets
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);
    s3.head_bucket("alpha").send().unwrap();
    assert!(matches!(
        s3.head_bucket("nope").send(),
        Err(Error::NoSuchBucket { .. })
    ));
    s3.put_object("alpha", "k").body("x").send().unwrap();
    assert!(matches!(
        s3.delete_bucket("alpha").send(),
        Err(Error::BucketNotEmpty { .. })
    ));
    s3.delete_object("alpha", "k").send().unwrap();
    s3.delete_bucket("alpha").send().unwrap();
    assert!(matches!(
        s3.put_object("alpha", "k").body("x").send(),
        Err(Error::NoSuchBucket { .. })
    ));
    // A re-created bucket of the same name starts empty.
    s3.create_bucket("alpha").send().unwrap();
    assert_eq!(s3.list_objects_v2("alpha").send().unwrap().key_count, 0);
}

#[test]
fn objects_round_trip_with_metadata_inline_and_chunked() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    small_chunks(&s3);
    s3.create_bucket("data").send().unwrap();
    for (key, len) in [("empty", 0), ("tiny", 10), ("edge", 4096), ("big", 200_000)] {
        let data = random_bytes(len, len as u64);
        let put = s3
            .put_object("data", key)
            .body(data.clone())
            .content_type("application/octet-stream")
            .metadata("Owner", "zoë")
            .send()
            .unwrap();
        let got = s3.get_object("data", key).send().unwrap();
        assert_eq!(got.e_tag, put.e_tag);
        assert_eq!(got.content_length, len as u64);
        assert_eq!(
            got.content_type.as_deref(),
            Some("application/octet-stream")
        );
        assert_eq!(got.metadata.get("owner").map(String::as_str), Some("zoë"));
        assert_eq!(got.body.collect().unwrap(), data);
        let head = s3.head_object("data", key).send().unwrap();
        assert_eq!(head.content_length, len as u64);
    }
    // The same bytes give the same ETag; different bytes a different one.
    let a = s3
        .put_object("data", "a")
        .body(random_bytes(100_000, 1))
        .send()
        .unwrap();
    let b = s3
        .put_object("data", "b")
        .body(random_bytes(100_000, 1))
        .send()
        .unwrap();
    let c = s3
        .put_object("data", "c")
        .body(random_bytes(100_000, 2))
        .send()
        .unwrap();
    assert_eq!(a.e_tag, b.e_tag);
    assert_ne!(a.e_tag, c.e_tag);
    // Metadata over 2 KB is refused and nothing is stored.
    assert!(matches!(
        s3.put_object("data", "meta")
            .metadata("k", "v".repeat(2048))
            .send(),
        Err(Error::MetadataTooLarge { .. })
    ));
    assert!(matches!(
        s3.head_object("data", "meta").send(),
        Err(Error::NoSuchKey {
            delete_marker: false,
            ..
        })
    ));
    assert!(matches!(
        s3.put_object("data", "k".repeat(1025)).send(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn bodies_stream_from_readers_and_into_readers() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    small_chunks(&s3);
    s3.create_bucket("stream").send().unwrap();
    let data = random_bytes(300_001, 7);
    let reader = std::io::Cursor::new(data.clone());
    let from_reader = s3
        .put_object("stream", "r")
        .body(ByteStream::from_reader(reader))
        .send()
        .unwrap();
    let from_bytes = s3
        .put_object("stream", "b")
        .body(data.clone())
        .send()
        .unwrap();
    assert_eq!(from_reader.e_tag, from_bytes.e_tag);
    let mut out = Vec::new();
    let mut body = s3.get_object("stream", "r").send().unwrap().body;
    let mut buf = [0u8; 1000];
    loop {
        let read = body.read(&mut buf).unwrap();
        if read == 0 {
            break;
        }
        out.extend_from_slice(&buf[..read]);
    }
    assert_eq!(out, data);
}

#[test]
fn ranges_and_part_numbers_select_bytes() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    small_chunks(&s3);
    s3.create_bucket("ranges").send().unwrap();
    let data = random_bytes(100_000, 3);
    s3.put_object("ranges", "k")
        .body(data.clone())
        .send()
        .unwrap();
    let read = |range: &str| {
        let got = s3.get_object("ranges", "k").range(range).send().unwrap();
        (
            got.content_range.clone(),
            got.body.collect().unwrap().to_vec(),
        )
    };
    assert_eq!(
        read("bytes=0-9"),
        (Some("bytes 0-9/100000".into()), data[..10].to_vec())
    );
    assert_eq!(
        read("bytes=50000-"),
        (
            Some("bytes 50000-99999/100000".into()),
            data[50_000..].to_vec()
        )
    );
    assert_eq!(
        read("bytes=-7"),
        (
            Some("bytes 99993-99999/100000".into()),
            data[99_993..].to_vec()
        )
    );
    assert_eq!(read("bytes=33333-66666").1, data[33_333..=66_666].to_vec());
    assert!(matches!(
        s3.get_object("ranges", "k").range("bytes=100000-").send(),
        Err(Error::InvalidRange { size: 100_000, .. })
    ));
    assert_eq!(
        s3.get_object("ranges", "k")
            .part_number(1)
            .send()
            .unwrap()
            .content_length,
        100_000
    );
    assert!(matches!(
        s3.get_object("ranges", "k").part_number(2).send(),
        Err(Error::InvalidRange { .. })
    ));
}

#[test]
fn conditional_reads_follow_rfc_9110() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    let s3 = db.objects();
    s3.create_bucket("cond").send().unwrap();
    let put = s3.put_object("cond", "k").body("v").send().unwrap();
    let modified = clock.now_for_test();
    let before = modified - Duration::from_secs(10);
    let after = modified + Duration::from_secs(10);
    let get = || s3.get_object("cond", "k");
    assert!(get().if_match(&put.e_tag).send().is_ok());
    assert!(get().if_match(format!("\"{}\"", put.e_tag)).send().is_ok());
    assert!(matches!(
        get().if_match("other").send(),
        Err(Error::PreconditionFailed { .. })
    ));
    assert!(matches!(
        get().if_none_match(&put.e_tag).send(),
        Err(Error::NotModified { .. })
    ));
    assert!(get().if_none_match("other").send().is_ok());
    assert!(matches!(
        get().if_modified_since(after).send(),
        Err(Error::NotModified { .. })
    ));
    assert!(get().if_modified_since(before).send().is_ok());
    assert!(matches!(
        get().if_unmodified_since(before).send(),
        Err(Error::PreconditionFailed { .. })
    ));
    // If-Match true wins over If-Unmodified-Since false.
    assert!(
        get()
            .if_match(&put.e_tag)
            .if_unmodified_since(before)
            .send()
            .is_ok()
    );
    // If-None-Match false with If-Modified-Since true: 304.
    assert!(matches!(
        get()
            .if_none_match(&put.e_tag)
            .if_modified_since(before)
            .send(),
        Err(Error::NotModified { .. })
    ));
}

trait NowForTest {
    fn now_for_test(&self) -> std::time::SystemTime;
}

impl NowForTest for ManualClock {
    fn now_for_test(&self) -> std::time::SystemTime {
        nimbus::time::Clock::now(self)
    }
}

#[test]
fn conditional_writes_create_only_and_compare_and_swap() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("cas").send().unwrap();
    let first = s3
        .put_object("cas", "k")
        .body("1")
        .if_none_match("*")
        .send()
        .unwrap();
    assert!(matches!(
        s3.put_object("cas", "k")
            .body("2")
            .if_none_match("*")
            .send(),
        Err(Error::PreconditionFailed { .. })
    ));
    assert!(matches!(
        s3.put_object("cas", "k")
            .body("2")
            .if_none_match("abc")
            .send(),
        Err(Error::InvalidRequest(_))
    ));
    let second = s3
        .put_object("cas", "k")
        .body("2")
        .if_match(&first.e_tag)
        .send()
        .unwrap();
    assert!(matches!(
        s3.put_object("cas", "k")
            .body("3")
            .if_match(&first.e_tag)
            .send(),
        Err(Error::PreconditionFailed { .. })
    ));
    assert!(matches!(
        s3.put_object("cas", "missing")
            .body("3")
            .if_match(&first.e_tag)
            .send(),
        Err(Error::NoSuchKey { .. })
    ));
    assert_eq!(
        s3.get_object("cas", "k")
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        &b"2"[..]
    );
    // A conditional delete.
    assert!(matches!(
        s3.delete_object("cas", "k").if_match(&first.e_tag).send(),
        Err(Error::PreconditionFailed { .. })
    ));
    s3.delete_object("cas", "k")
        .if_match(&second.e_tag)
        .send()
        .unwrap();
    // A delete marker counts as absent for if_none_match.
    s3.create_bucket("cas-versioned").send().unwrap();
    s3.put_bucket_versioning("cas-versioned")
        .status(nimbus::objects::BucketVersioningStatus::Enabled)
        .send()
        .unwrap();
    s3.put_object("cas-versioned", "k")
        .body("1")
        .send()
        .unwrap();
    s3.delete_object("cas-versioned", "k").send().unwrap();
    s3.put_object("cas-versioned", "k")
        .body("2")
        .if_none_match("*")
        .send()
        .unwrap();
}

#[test]
fn of_racing_creators_exactly_one_wins() {
    let db = Database::memory().unwrap();
    db.objects().create_bucket("race").send().unwrap();
    for round in 0..20 {
        let key = format!("k{round}");
        let winners: Vec<bool> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|writer| {
                    let db = db.clone();
                    let key = key.clone();
                    scope.spawn(move || {
                        match db
                            .objects()
                            .put_object("race", &key)
                            .body(format!("writer {writer}"))
                            .if_none_match("*")
                            .send()
                        {
                            Ok(_) => true,
                            Err(Error::PreconditionFailed { .. }) => false,
                            Err(other) => panic!("{other:?}"),
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            winners.iter().filter(|won| **won).count(),
            1,
            "round {round}"
        );
    }
}

#[test]
fn listing_rolls_up_prefixes_pages_and_sorts_utf8_bytes() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("list").send().unwrap();
    let keys = [
        "a.txt",
        "docs/2024/x",
        "docs/2024/y",
        "docs/readme",
        "docs/ü",
        "photos/1.jpg",
        "z",
        "\u{FFFF}",
        "é",
        "a",
        "docs/",
    ];
    for key in keys {
        s3.put_object("list", key)
            .body(key.to_owned())
            .send()
            .unwrap();
    }
    s3.put_object("list", "gone/x").body("x").send().unwrap();
    s3.delete_object("list", "gone/x").send().unwrap();
    let all: Vec<String> = s3
        .list_objects_v2("list")
        .send()
        .unwrap()
        .contents
        .into_iter()
        .map(|o| o.key)
        .collect();
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(all, sorted);

    let top = s3.list_objects_v2("list").delimiter("/").send().unwrap();
    assert_eq!(top.common_prefixes, ["docs/", "photos/"]);
    let top_keys: Vec<_> = top.contents.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(top_keys, ["a", "a.txt", "z", "é", "\u{FFFF}"]);
    assert_eq!(top.key_count, 7);

    let docs = s3
        .list_objects_v2("list")
        .prefix("docs/")
        .delimiter("/")
        .send()
        .unwrap();
    assert_eq!(docs.common_prefixes, ["docs/2024/"]);
    let doc_keys: Vec<_> = docs.contents.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(doc_keys, ["docs/", "docs/readme", "docs/ü"]);

    // Pages of 2 with the delimiter: prefixes count against max_keys.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut request = s3.list_objects_v2("list").delimiter("/").max_keys(2);
        if let Some(t) = &token {
            request = request.continuation_token(t);
        }
        let page = request.send().unwrap();
        assert!(page.key_count <= 2);
        seen.extend(page.contents.iter().map(|o| o.key.clone()));
        seen.extend(page.common_prefixes.iter().cloned());
        if !page.is_truncated {
            break;
        }
        token = page.next_continuation_token;
    }
    seen.sort();
    let mut expected: Vec<String> = top_keys.iter().map(|k| (*k).to_owned()).collect();
    expected.extend(["docs/".to_owned(), "photos/".to_owned()]);
    expected.sort();
    assert_eq!(seen, expected);

    let after = s3
        .list_objects_v2("list")
        .start_after("docs/ü")
        .send()
        .unwrap();
    assert_eq!(after.contents.first().unwrap().key, "photos/1.jpg");
    assert!(matches!(
        s3.list_objects_v2("list")
            .continuation_token("garbage!")
            .send(),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_corrupt_chunk_is_an_error_never_data() {
    let fs = SimFileSystem::new();
    let db = Database::open_on(Arc::new(fs.clone()), "/db", DatabaseOptions::default()).unwrap();
    let s3 = db.objects();
    small_chunks(&s3);
    s3.create_bucket("rot").send().unwrap();
    let data = random_bytes(50_000, 9);
    s3.put_object("rot", "k").body(data.clone()).send().unwrap();
    let dir = Path::new("/db/objects");
    let pack = fs
        .list_dir(dir)
        .unwrap()
        .into_iter()
        .find(|n| n.ends_with(".pack"))
        .unwrap();
    // Flip a byte well inside the first chunk's data.
    fs.corrupt(&dir.join(pack), 16 + 52 + 100, b"\xAA\xBB")
        .unwrap();
    db.close().unwrap();
    let db = Database::open_on(Arc::new(fs.clone()), "/db", DatabaseOptions::default()).unwrap();
    let result = db
        .objects()
        .get_object("rot", "k")
        .send()
        .unwrap()
        .body
        .collect();
    assert!(
        matches!(result, Err(Error::Corruption { .. })),
        "{result:?}"
    );
    // A range that avoids the damaged chunk still reads.
    let tail = db
        .objects()
        .get_object("rot", "k")
        .range("bytes=-10")
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap();
    assert_eq!(tail, data[data.len() - 10..]);
}

#[test]
fn large_bodies_take_the_pipelined_and_parallel_paths_intact() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    small_chunks(&s3);
    s3.create_bucket("large").send().unwrap();
    let data = random_bytes(6 << 20, 11);
    let from_bytes = s3
        .put_object("large", "b")
        .body(data.clone())
        .send()
        .unwrap();
    let from_reader = s3
        .put_object("large", "r")
        .body(ByteStream::from_reader(std::io::Cursor::new(data.clone())))
        .send()
        .unwrap();
    assert_eq!(from_bytes.e_tag, from_reader.e_tag);
    for key in ["b", "r"] {
        assert_eq!(
            s3.get_object("large", key)
                .send()
                .unwrap()
                .body
                .collect()
                .unwrap(),
            data
        );
    }
    let range = s3
        .get_object("large", "b")
        .range("bytes=12345-5012344")
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap();
    assert_eq!(range, data[12_345..5_012_345]);
}

/// A reader that fails after `ok` bytes.
struct FailingReader {
    ok: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.ok == 0 {
            return Err(std::io::Error::other("the network went away"));
        }
        let len = buf.len().min(self.ok);
        buf[..len].fill(7);
        self.ok -= len;
        Ok(len)
    }
}

#[test]
fn a_body_that_fails_midway_stores_nothing() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    small_chunks(&s3);
    s3.create_bucket("fails").send().unwrap();
    s3.put_object("fails", "k").body("old").send().unwrap();
    let result = s3
        .put_object("fails", "k")
        .body(ByteStream::from_reader(FailingReader { ok: 3 << 20 }))
        .send();
    assert!(matches!(result, Err(Error::Body(_))), "{result:?}");
    assert_eq!(
        s3.get_object("fails", "k")
            .send()
            .unwrap()
            .body
            .collect()
            .unwrap(),
        &b"old"[..]
    );
    assert!(s3.verify().unwrap().is_consistent());
}

#[test]
fn max_keys_zero_returns_an_empty_untruncated_page() {
    let db = Database::memory().unwrap();
    let s3 = db.objects();
    s3.create_bucket("zero").send().unwrap();
    s3.put_object("zero", "k").body("v").send().unwrap();
    let page = s3.list_objects_v2("zero").max_keys(0).send().unwrap();
    assert_eq!((page.key_count, page.is_truncated), (0, false));
    let versions = s3.list_object_versions("zero").max_keys(0).send().unwrap();
    assert!(versions.entries.is_empty() && !versions.is_truncated);
}
