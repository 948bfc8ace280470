//! Behaviour tests of stream consumers: the event-source mapping (batches,
//! order, retries, bisection, on-failure destinations, a failing shard
//! blocking only itself, resuming after a crash) and the pull consumer
//! with durable checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use nimbus::kv::{
    BATCHING_WINDOW_MAX, Error, FailedBatch, FailureReason, HandlerError, OnFailure, Record,
    ShardIteratorType, StartingPosition, StreamSpecification, StreamViewType,
};
use nimbus::storage::sim::SimFileSystem;
use nimbus::time::ManualClock;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

/// How long a test waits for an expected delivery before failing.
const PATIENCE: Duration = Duration::from_secs(20);

fn create(db: &Database, table: &str) {
    db.create_table(table)
        .partition_key("pk", ScalarType::S)
        .stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(StreamViewType::NewImage),
        })
        .send()
        .unwrap();
}

fn db() -> Database {
    let db = Database::memory().unwrap();
    create(&db, "Events");
    db
}

fn put(db: &Database, pk: &str) {
    db.put_item("Events")
        .item(item! { "pk" => pk })
        .send()
        .unwrap();
}

fn pk(record: &Record) -> String {
    record
        .dynamodb
        .keys
        .get("pk")
        .unwrap()
        .as_s()
        .unwrap()
        .to_owned()
}

/// A handler, what it delivered, and how often it was called.
type Forwarding = (
    Box<dyn Fn(&[Record]) -> Result<(), HandlerError> + Send + Sync>,
    Receiver<Vec<String>>,
    Arc<AtomicUsize>,
);

/// A handler that forwards each batch's keys and fails on `poison` keys.
fn forwarding(poison: &'static [&'static str]) -> Forwarding {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let handler = move |records: &[Record]| -> Result<(), HandlerError> {
        counter.fetch_add(1, Ordering::SeqCst);
        let keys: Vec<String> = records.iter().map(pk).collect();
        if keys.iter().any(|k| poison.contains(&k.as_str())) {
            return Err("poison record".into());
        }
        tx.lock().unwrap().send(keys)?;
        Ok(())
    };
    (Box::new(handler), rx, calls)
}

fn receive(rx: &Receiver<Vec<String>>, count: usize) -> Vec<String> {
    let mut keys = Vec::new();
    while keys.len() < count {
        keys.extend(rx.recv_timeout(PATIENCE).expect("a delivery"));
    }
    keys
}

/// Waits (up to `PATIENCE`) until `done` holds.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn batches_arrive_in_order_and_no_larger_than_the_batch_size() {
    let db = db();
    for n in 0..10 {
        put(&db, &format!("k{n:02}"));
    }
    let (handler, rx, _) = forwarding(&[]);
    let mapping = db
        .create_event_source_mapping("Events", handler)
        .batch_size(3)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    let mut keys = Vec::new();
    while keys.len() < 10 {
        let batch = rx.recv_timeout(PATIENCE).unwrap();
        assert!(batch.len() <= 3);
        keys.extend(batch);
    }
    let expected: Vec<String> = (0..10).map(|n| format!("k{n:02}")).collect();
    assert_eq!(keys, expected);
    put(&db, "later");
    assert_eq!(receive(&rx, 1), ["later"]);
    mapping.stop();
    put(&db, "after stop");
    assert!(rx.try_recv().is_err());
}

#[test]
fn latest_skips_what_was_written_before() {
    let db = db();
    put(&db, "before");
    let (handler, rx, _) = forwarding(&[]);
    let _mapping = db
        .create_event_source_mapping("Events", handler)
        .send()
        .unwrap();
    put(&db, "after");
    assert_eq!(receive(&rx, 1), ["after"]);
    db.close().unwrap();
}

#[test]
fn a_failing_batch_is_retried_until_it_succeeds() {
    let db = db();
    let failures = Arc::new(AtomicUsize::new(2));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let left = Arc::clone(&failures);
    let _mapping = db
        .create_event_source_mapping("Events", move |records: &[Record]| {
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err("transient".into());
            }
            tx.lock()
                .unwrap()
                .send(records.iter().map(pk).collect::<Vec<_>>())?;
            Ok(())
        })
        .retry_backoff(Duration::ZERO)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    put(&db, "a");
    assert_eq!(rx.recv_timeout(PATIENCE).unwrap(), ["a"]);
    assert_eq!(failures.load(Ordering::SeqCst), 0);
    db.close().unwrap();
}

#[test]
fn bisecting_isolates_a_poison_record_and_reports_it() {
    let db = db();
    for key in ["a", "b", "poison", "c"] {
        put(&db, key);
    }
    let (handler, rx, _) = forwarding(&["poison"]);
    let (failed_tx, failed_rx) = mpsc::channel::<FailedBatch>();
    let failed_tx = Mutex::new(failed_tx);
    let _mapping = db
        .create_event_source_mapping("Events", handler)
        .batch_size(4)
        .bisect_batch_on_function_error(true)
        .maximum_retry_attempts(2)
        .retry_backoff(Duration::ZERO)
        .on_failure(OnFailure::Callback(Arc::new(move |batch: &FailedBatch| {
            failed_tx.lock().unwrap().send(batch.clone()).unwrap();
        })))
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    let failed = failed_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(failed.batch_size, 1);
    assert_eq!(failed.reason, FailureReason::RetryAttemptsExhausted);
    assert_eq!(failed.start_sequence_number, failed.end_sequence_number);
    assert_eq!(failed.error, "poison record");
    assert_eq!(receive(&rx, 3), ["a", "b", "c"]);
    // Delivery goes on after the skipped record.
    put(&db, "d");
    assert_eq!(receive(&rx, 1), ["d"]);
    db.close().unwrap();
}

/// An on-failure destination that forwards each skipped batch.
fn failures() -> (OnFailure, Receiver<FailedBatch>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let destination = OnFailure::Callback(Arc::new(move |batch: &FailedBatch| {
        tx.lock().unwrap().send(batch.clone()).unwrap();
    }));
    (destination, rx)
}

#[test]
fn a_panicking_handler_is_retried_as_configured_then_reported() {
    let db = db();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let (destination, failed_rx) = failures();
    let _mapping = db
        .create_event_source_mapping("Events", move |records: &[Record]| {
            counter.fetch_add(1, Ordering::SeqCst);
            let keys: Vec<String> = records.iter().map(pk).collect();
            if let Some(key) = keys.iter().find(|k| k.starts_with("crash")) {
                panic!("cannot handle {key}");
            }
            tx.lock().unwrap().send(keys)?;
            Ok(())
        })
        .batch_size(1)
        .maximum_retry_attempts(1)
        .retry_backoff(Duration::ZERO)
        .on_failure(destination)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    put(&db, "crash-1");
    let failed = failed_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(failed.reason, FailureReason::RetryAttemptsExhausted);
    assert_eq!(failed.batch_size, 1);
    assert_eq!(failed.error, "handler panicked: cannot handle crash-1");
    assert_eq!(calls.load(Ordering::SeqCst), 2, "a first try and one retry");
    // The worker survived its handler's panic and goes on.
    put(&db, "fine");
    assert_eq!(receive(&rx, 1), ["fine"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(failed_rx.try_recv().is_err());
    db.close().unwrap();
}

#[test]
fn records_that_age_out_while_being_retried_are_reported_and_skipped() {
    let clock = ManualClock::at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let db = Database::memory_with(DatabaseOptions::default().clock(clock.clone())).unwrap();
    create(&db, "Events");
    let (handler, rx, calls) = forwarding(&["stale"]);
    let (destination, failed_rx) = failures();
    let _mapping = db
        .create_event_source_mapping("Events", handler)
        .maximum_record_age(Duration::from_secs(60))
        .retry_backoff(Duration::from_millis(1))
        .on_failure(destination)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    put(&db, "stale");
    wait_until(|| calls.load(Ordering::SeqCst) > 0);
    // Fresh at the first attempt; an hour old at a later retry.
    clock.advance(Duration::from_secs(3600));
    let failed = failed_rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(failed.reason, FailureReason::RecordAgeExceeded);
    assert_eq!(failed.batch_size, 1);
    put(&db, "fresh");
    assert_eq!(receive(&rx, 1), ["fresh"]);
    assert!(failed_rx.try_recv().is_err());
    db.close().unwrap();
}

#[test]
fn a_table_destination_receives_the_failed_batch_metadata() {
    let db = db();
    db.create_table("Failures")
        .partition_key("id", ScalarType::S)
        .send()
        .unwrap();
    let (handler, rx, calls) = forwarding(&["poison"]);
    let _mapping = db
        .create_event_source_mapping("Events", handler)
        .batch_size(1)
        .maximum_retry_attempts(1)
        .retry_backoff(Duration::ZERO)
        .on_failure(OnFailure::Table("Failures".into()))
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    put(&db, "poison");
    put(&db, "fine");
    assert_eq!(receive(&rx, 1), ["fine"]);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "a first try, a retry, then the next batch"
    );
    let items = db.scan("Failures").send().unwrap().items;
    assert_eq!(items.len(), 1);
    let reported = &items[0];
    assert_eq!(
        reported.get("batch_size").unwrap().as_n().unwrap().to_i64(),
        Some(1)
    );
    assert_eq!(
        reported.get("reason").unwrap().as_s(),
        Some("RetryAttemptsExhausted")
    );
    assert!(
        reported
            .get("id")
            .unwrap()
            .as_s()
            .unwrap()
            .starts_with("Events-mapping/shardId-")
    );
    db.close().unwrap();
}

#[test]
fn bad_mapping_settings_are_refused() {
    let db = db();
    let attempts = [
        db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
            .batch_size(0),
        db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
            .batch_size(10_001),
        db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
            .maximum_batching_window(Duration::from_secs(301)),
        db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
            .maximum_retry_attempts(10_001),
        db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
            .maximum_record_age(Duration::from_secs(1)),
        db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
            .name("bad name"),
    ];
    for attempt in attempts {
        assert!(matches!(attempt.send(), Err(Error::Validation(_))));
    }
    // The longest window itself is allowed.
    db.create_event_source_mapping("Events", |_: &[Record]| Ok(()))
        .maximum_batching_window(BATCHING_WINDOW_MAX)
        .send()
        .unwrap()
        .stop();
    assert!(matches!(
        db.create_event_source_mapping("Missing", |_: &[Record]| Ok(()))
            .send(),
        Err(Error::ResourceNotFound(_))
    ));
}

fn ignore(_: &[Record]) -> Result<(), HandlerError> {
    Ok(())
}

#[test]
fn a_name_in_use_by_a_running_mapping_is_refused_until_it_stops() {
    let db = db();
    create(&db, "Other");
    let (handler, rx, _) = forwarding(&[]);
    let first = db
        .create_event_source_mapping("Events", handler)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    put(&db, "a");
    assert_eq!(receive(&rx, 1), ["a"]);
    // Each would share the first's checkpoints: unnamed on the same
    // table, or named alike on any table.
    let taken = [
        db.create_event_source_mapping("Events", ignore),
        db.create_event_source_mapping("Events", ignore)
            .name("Events-mapping"),
        db.create_event_source_mapping("Other", ignore)
            .name("Events-mapping"),
    ];
    for attempt in taken {
        match attempt.send() {
            Err(Error::ResourceInUse(message)) => {
                assert!(message.contains("distinct name"), "{message}");
            }
            other => panic!("expected ResourceInUse, got {other:?}"),
        }
    }
    let audit = db
        .create_event_source_mapping("Events", ignore)
        .name("audit")
        .send()
        .unwrap();
    // Stopping frees the name; the next mapping under it resumes.
    first.stop();
    put(&db, "b");
    let (handler, rx, _) = forwarding(&[]);
    let _again = db
        .create_event_source_mapping("Events", handler)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    assert_eq!(receive(&rx, 1), ["b"]);
    audit.stop();
    db.close().unwrap();
}

/// Which shard each key's records are in, by reading the stream.
fn shards_of(db: &Database) -> BTreeMap<String, String> {
    let arn = db
        .describe_table("Events")
        .send()
        .unwrap()
        .table
        .latest_stream_arn
        .unwrap();
    let mut shards = BTreeMap::new();
    for shard in db
        .describe_stream(&arn)
        .send()
        .unwrap()
        .stream_description
        .shards
    {
        let iterator = db
            .get_shard_iterator(&arn, &shard.shard_id, ShardIteratorType::TrimHorizon)
            .send()
            .unwrap()
            .shard_iterator;
        for record in db.get_records(iterator).send().unwrap().records {
            shards.insert(pk(&record), shard.shard_id.clone());
        }
    }
    shards
}

#[test]
fn a_failing_batch_blocks_only_its_own_shard() {
    let db = db();
    db.split_stream_shard("Events", 1 << 63).unwrap();
    put(&db, "stuck");
    let keys: Vec<String> = (0..40).map(|n| format!("k{n}")).collect();
    for key in &keys {
        put(&db, key);
    }
    let shards = shards_of(&db);
    let stuck_shard = shards["stuck"].clone();
    let free: BTreeSet<String> = keys
        .iter()
        .filter(|k| shards[*k] != stuck_shard)
        .cloned()
        .collect();
    assert!(
        !free.is_empty() && free.len() < keys.len(),
        "both shards get keys"
    );
    let (handler, rx, _) = forwarding(&["stuck"]);
    let _mapping = db
        .create_event_source_mapping("Events", handler)
        .batch_size(1)
        .retry_backoff(Duration::from_millis(1))
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    let delivered: BTreeSet<String> = receive(&rx, free.len()).into_iter().collect();
    assert_eq!(delivered, free);
    db.close().unwrap();
    assert!(rx.try_recv().is_err(), "nothing behind the stuck record");
}

#[test]
fn parents_are_delivered_before_their_children() {
    let db = db();
    for n in 0..20 {
        db.put_item("Events")
            .item(item! { "pk" => format!("k{n}"), "v" => 1 })
            .send()
            .unwrap();
    }
    db.split_stream_shard("Events", 1 << 63).unwrap();
    for n in 0..20 {
        db.put_item("Events")
            .item(item! { "pk" => format!("k{n}"), "v" => 2 })
            .send()
            .unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let _mapping = db
        .create_event_source_mapping("Events", move |records: &[Record]| {
            for record in records {
                let image = record.dynamodb.new_image.clone().unwrap();
                tx.lock().unwrap().send(image)?;
            }
            Ok(())
        })
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for _ in 0..40 {
        let image: Item = rx.recv_timeout(PATIENCE).unwrap();
        let key = image.get("pk").unwrap().as_s().unwrap().to_owned();
        let v = image.get("v").unwrap().as_n().unwrap().to_i64().unwrap();
        versions.entry(key).or_default().push(v);
    }
    assert!(versions.values().all(|v| v == &[1, 2]), "{versions:?}");
    db.close().unwrap();
}

#[test]
fn delivery_resumes_after_the_last_acknowledged_batch_after_a_crash() {
    let disk = SimFileSystem::new();
    let open = |disk: &SimFileSystem| {
        let session: Arc<dyn nimbus::storage::fs::FileSystem> = Arc::new(disk.session());
        Database::open_on(session, "/db", DatabaseOptions::default()).unwrap()
    };
    let acknowledged = {
        let db = open(&disk);
        create(&db, "Events");
        for n in 0..9 {
            put(&db, &format!("k{n}"));
        }
        // Acknowledges two batches of 3, then fails the third forever,
        // telling the test each time it fails.
        let (tx, rx) = mpsc::channel::<Result<Vec<String>, ()>>();
        let tx = Mutex::new(tx);
        let _mapping = db
            .create_event_source_mapping("Events", move |records: &[Record]| {
                let keys: Vec<String> = records.iter().map(pk).collect();
                if keys.contains(&"k6".to_owned()) {
                    let _ = tx.lock().unwrap().send(Err(()));
                    return Err("mail server down".into());
                }
                tx.lock().unwrap().send(Ok(keys))?;
                Ok(())
            })
            .name("mailer")
            .batch_size(3)
            .retry_backoff(Duration::from_millis(1))
            .starting_position(StartingPosition::TrimHorizon)
            .send()
            .unwrap();
        let mut acknowledged = Vec::new();
        // The third batch is read only after the second's checkpoint is
        // saved (and synced): once it fails, crash.
        while let Ok(keys) = rx.recv_timeout(PATIENCE).unwrap() {
            acknowledged.extend(keys);
        }
        disk.crash(7);
        acknowledged
    };
    assert_eq!(acknowledged, ["k0", "k1", "k2", "k3", "k4", "k5"]);
    let db = open(&disk);
    let (handler, rx, _) = forwarding(&[]);
    let _mapping = db
        .create_event_source_mapping("Events", handler)
        .name("mailer")
        .batch_size(3)
        .starting_position(StartingPosition::TrimHorizon)
        .send()
        .unwrap();
    assert_eq!(receive(&rx, 3), ["k6", "k7", "k8"]);
    db.close().unwrap();
}

#[test]
fn a_pull_consumer_resumes_from_its_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let options = || DatabaseOptions::default().background_threads(false);
    {
        let db = Database::open_with(dir.path(), options()).unwrap();
        create(&db, "Events");
        for n in 0..5 {
            put(&db, &format!("k{n}"));
        }
        let consumer = db
            .stream_consumer("Events", "analytics")
            .starting_position(StartingPosition::TrimHorizon)
            .open()
            .unwrap();
        let first = consumer.next_batch(2).unwrap().unwrap();
        assert_eq!(
            first.records.iter().map(pk).collect::<Vec<_>>(),
            ["k0", "k1"]
        );
        consumer.checkpoint(&first).unwrap();
        // Taken but never checkpointed: delivered again after reopen.
        let second = consumer.next_batch(2).unwrap().unwrap();
        assert_eq!(
            second.records.iter().map(pk).collect::<Vec<_>>(),
            ["k2", "k3"]
        );
        db.close().unwrap();
    }
    let db = Database::open_with(dir.path(), options()).unwrap();
    let consumer = db.stream_consumer("Events", "analytics").open().unwrap();
    let again = consumer.next_batch(10).unwrap().unwrap();
    assert_eq!(
        again.records.iter().map(pk).collect::<Vec<_>>(),
        ["k2", "k3", "k4"]
    );
    consumer.checkpoint(&again).unwrap();
    assert!(consumer.next_batch(10).unwrap().is_none());
    // Another name starts on its own.
    let other = db
        .stream_consumer("Events", "audit")
        .starting_position(StartingPosition::TrimHorizon)
        .open()
        .unwrap();
    assert_eq!(other.next_batch(10).unwrap().unwrap().records.len(), 5);
    assert!(matches!(
        db.stream_consumer("Events", "").open(),
        Err(Error::Validation(_))
    ));
}

#[test]
fn a_pull_consumer_reads_children_only_after_their_parent_is_checkpointed() {
    let db = Database::memory_with(DatabaseOptions::default().background_threads(false)).unwrap();
    create(&db, "Events");
    put(&db, "first");
    db.split_stream_shard("Events", 1 << 63).unwrap();
    put(&db, "second");
    let consumer = db
        .stream_consumer("Events", "reader")
        .starting_position(StartingPosition::TrimHorizon)
        .open()
        .unwrap();
    let parent = consumer.next_batch(10).unwrap().unwrap();
    assert_eq!(parent.records.iter().map(pk).collect::<Vec<_>>(), ["first"]);
    assert!(consumer.next_batch(10).unwrap().is_none(), "children wait");
    consumer.checkpoint(&parent).unwrap();
    let child = consumer.next_batch(10).unwrap().unwrap();
    assert_eq!(child.records.iter().map(pk).collect::<Vec<_>>(), ["second"]);
}
