//! The database's background thread runs the object store's timed work by
//! itself: events reach their handlers, lifecycle rules expire objects and
//! GC frees unreferenced chunks, each on its `ObjectSchedule` interval,
//! with no explicit call; and it stops with the database.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::sync::mpsc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use nimbus::objects::{
    Error, LifecycleExpiration, LifecycleFilter, LifecycleRule, ObjectSchedule, ObjectStoreOptions,
};
use nimbus::storage::sim::SimRng;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions};

const DAY: Duration = Duration::from_secs(86_400);

/// How long a test waits for the thread before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

fn open(schedule: ObjectSchedule) -> (Database, ManualClock) {
    let clock = ManualClock::at(UNIX_EPOCH + 19_700 * DAY + Duration::from_secs(36_000));
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .object_schedule(schedule),
    )
    .unwrap();
    let s3 = db.objects();
    s3.set_options(ObjectStoreOptions {
        chunk_bytes_min: 2048,
        chunk_bytes_avg: 8192,
        chunk_bytes_max: 32768,
        gc_grace: Duration::from_secs(60),
        ..ObjectStoreOptions::default()
    })
    .unwrap();
    s3.create_bucket("bgw").send().unwrap();
    (db, clock)
}

/// Every task every `every`.
fn every(every: Duration) -> ObjectSchedule {
    ObjectSchedule {
        event_delivery_interval: every,
        lifecycle_interval: every,
        gc_interval: every,
    }
}

/// Polls `done` until it holds, failing after [`PATIENCE`].
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < PATIENCE,
            "the background thread never {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn events_reach_their_handler_without_a_delivery_call() {
    let (db, _clock) = open(ObjectSchedule {
        event_delivery_interval: Duration::from_millis(10),
        ..ObjectSchedule::default()
    });
    let s3 = db.objects();
    s3.create_subscription("q")
        .bucket("bgw")
        .event_pattern("s3:ObjectCreated:*")
        .send()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    s3.set_event_handler("q", move |event| {
        tx.lock()
            .unwrap()
            .send(event.key.clone())
            .map_err(|e| e.to_string())
    })
    .unwrap();
    for key in ["a", "b", "c"] {
        s3.put_object("bgw", key).body("v").send().unwrap();
    }
    let got: Vec<String> = (0..3).map(|_| rx.recv_timeout(PATIENCE).unwrap()).collect();
    assert_eq!(got, ["a", "b", "c"], "in commit order, each once");
    eventually("emptied the outbox", || {
        s3.receive_events("q", 10).unwrap().is_empty()
    });
    assert!(rx.try_recv().is_err(), "no event delivered twice");
}

#[test]
fn lifecycle_rules_and_gc_run_by_themselves() {
    let (db, clock) = open(every(Duration::from_millis(10)));
    let s3 = db.objects();
    s3.put_bucket_lifecycle_configuration("bgw")
        .rule(LifecycleRule {
            expiration: Some(LifecycleExpiration::Days(1)),
            ..LifecycleRule::new("tmp", LifecycleFilter::prefix("tmp/"))
        })
        .send()
        .unwrap();
    let mut body = vec![0u8; 200_000];
    SimRng::new(7).fill(&mut body);
    s3.put_object("bgw", "tmp/big")
        .body(body.clone())
        .send()
        .unwrap();
    s3.put_object("bgw", "keep/big")
        .body(body[..100_000].to_vec())
        .send()
        .unwrap();
    let stored = s3.verify().unwrap().chunks;

    // Two days later the rule expires tmp/big; after the grace period GC
    // frees the chunks only it used.
    clock.advance(2 * DAY);
    eventually("expired tmp/big", || {
        matches!(
            s3.head_object("bgw", "tmp/big").send(),
            Err(Error::NoSuchKey { .. })
        )
    });
    clock.advance(Duration::from_secs(120));
    eventually("freed the expired object's chunks", || {
        s3.verify().unwrap().chunks < stored
    });
    let report = s3.verify().unwrap();
    assert!(report.is_consistent(), "{report:?}");
    let kept = s3
        .get_object("bgw", "keep/big")
        .send()
        .unwrap()
        .body
        .collect()
        .unwrap();
    assert_eq!(&kept[..], &body[..100_000]);
}

#[test]
fn without_background_threads_the_explicit_calls_do_the_work() {
    let clock = ManualClock::at(UNIX_EPOCH + 19_700 * DAY);
    let db = Database::memory_with(
        DatabaseOptions::default()
            .clock(clock.clone())
            .background_threads(false)
            .object_schedule(every(Duration::from_millis(1))),
    )
    .unwrap();
    let s3 = db.objects();
    s3.create_bucket("bgw").send().unwrap();
    s3.put_bucket_lifecycle_configuration("bgw")
        .rule(LifecycleRule {
            expiration: Some(LifecycleExpiration::Days(1)),
            ..LifecycleRule::new("all", LifecycleFilter::default())
        })
        .send()
        .unwrap();
    s3.put_object("bgw", "k").body("v").send().unwrap();
    clock.advance(3 * DAY);
    // No thread runs even a 1 ms schedule; the explicit call does the work.
    std::thread::sleep(Duration::from_millis(50));
    assert!(s3.head_object("bgw", "k").send().is_ok());
    let report = s3.run_lifecycle().unwrap();
    assert_eq!(report.current_versions_expired, 1, "{report:?}");
    assert!(s3.head_object("bgw", "k").send().is_err());
}
