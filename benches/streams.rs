//! DynamoDB Streams costs, nimbus alone, on `Buffered` databases in
//! temporary directories: PutItem of 1 KB items into a table without a
//! stream and into tables with a `KEYS_ONLY`, a `NEW_IMAGE` and a
//! `NEW_AND_OLD_IMAGES` stream (the writes overwrite 2,000 existing items, so every record is a
//! MODIFY, alternating between the tables in one run); `get_records`
//! throughput over 10,000 records (pages of 1,000); and the latency from
//! the start of a PutItem to its record reaching an event-source mapping's
//! handler, as p50/p99 over 2,000 writes (printed) and as a criterion
//! mean. Run with `cargo bench --bench streams` (about 1 minute).
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nimbus::kv::{
    Record, ShardIteratorType, StartingPosition, StreamSpecification, StreamViewType,
};
use nimbus::storage::Durability;
use nimbus::value::item_size;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::{Clocks, median};
#[path = "common/engine.rs"]
mod engine;

#[path = "common/data.rs"]
mod data;
use data::{incompressible_text, mix};

const ITEMS: u64 = 2_000;
const ITEM_BYTES: usize = 1024;
const RECORDS: u64 = 10_000;
const LATENCY_SAMPLES: usize = 2_000;

/// A 1 KB item whose payload does not compress.
fn full_item(id: u64, version: u64) -> Item {
    let mut item = item! { "pk" => format!("user#{id:06}"), "v" => version };
    let room = ITEM_BYTES - item_size(&item) - "payload".len();
    let payload = incompressible_text(room, id ^ (version << 40));
    item.insert("payload".to_owned(), AttributeValue::S(payload));
    item
}

fn create(db: &Database, table: &str, view: Option<StreamViewType>) {
    let mut request = db.create_table(table).partition_key("pk", ScalarType::S);
    if let Some(view) = view {
        request = request.stream_specification(StreamSpecification {
            stream_enabled: true,
            stream_view_type: Some(view),
        });
    }
    request.send().expect("create table");
}

fn open(dir: &std::path::Path) -> Database {
    let options = DatabaseOptions::default().durability(Durability::Buffered);
    Database::open_with(dir, options).expect("open")
}

fn put_items(c: &mut Criterion) {
    let tables = [
        ("streams_off", None),
        ("keys_only", Some(StreamViewType::KeysOnly)),
        ("new_image", Some(StreamViewType::NewImage)),
        ("new_and_old_images", Some(StreamViewType::NewAndOldImages)),
    ];
    let mut group = c.benchmark_group("streams_put_item_1kb");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(1));
    let next = Cell::new(1u64);
    for (table, view) in tables {
        // Each table in a database of its own: in a shared one, each table
        // after the first would also pay for the flushes, compactions and
        // the deeper tree its predecessors' puts left behind (the first
        // table measured would always look cheapest).
        let dir = tempfile::tempdir().expect("temp dir");
        let db = open(dir.path());
        create(&db, table, view);
        for id in 0..ITEMS {
            db.put_item(table)
                .item(full_item(id, 0))
                .send()
                .expect("load");
        }
        let (before, first) = (engine::Reading::now(&db), next.get());
        group.bench_function(table, |b| {
            b.iter_batched(
                || {
                    next.set(next.get() + 1);
                    full_item(mix(next.get()) % ITEMS, next.get())
                },
                |item| db.put_item(table).item(item).send().expect("put"),
                BatchSize::SmallInput,
            )
        });
        before.report(
            &db,
            &format!("streams_put_item_1kb/{table}"),
            next.get() - first,
        );
    }
    group.finish();
}

/// PutItem cost per table, alternating between the tables within each of
/// 5 repetitions of 2,000 puts (so drift in the machine or in background
/// work hits them alike); prints the medians of puts/s by wall clock and of
/// µs per put by CPU time of the putting thread and of the process, each
/// as a ratio to the table without a stream (on a loaded machine the CPU
/// figures are the ones to trust: descheduling does not count).
fn put_overhead(_: &mut Criterion) {
    // Enough puts that the CPU clocks (tick-grained on some kernels)
    // resolve a repetition to a few percent.
    const PUTS: u64 = 20_000;
    let repetitions = cpu::repetitions();
    // `NIMBUS_STREAMS_MODES=buffered` measures only that database.
    let modes = std::env::var("NIMBUS_STREAMS_MODES").ok();
    for (mode, buffered) in [("in-memory", false), ("buffered", true)] {
        if modes
            .as_ref()
            .is_some_and(|m| !m.split(',').any(|x| x == mode))
        {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let db = if buffered {
            open(dir.path())
        } else {
            Database::memory().expect("memory")
        };
        // `NIMBUS_STREAMS_TABLES=off,new_image` measures only those (a
        // profile of one table's puts); the first named is the baseline.
        let only = std::env::var("NIMBUS_STREAMS_TABLES").ok();
        let tables: Vec<_> = [
            ("off", None),
            ("keys_only", Some(StreamViewType::KeysOnly)),
            ("new_image", Some(StreamViewType::NewImage)),
            ("new_and_old_images", Some(StreamViewType::NewAndOldImages)),
        ]
        .into_iter()
        .filter(|(table, _)| {
            only.as_ref()
                .is_none_or(|o| o.split(',').any(|t| t == *table))
        })
        .collect();
        for &(table, view) in &tables {
            create(&db, table, view);
            for id in 0..ITEMS {
                db.put_item(table)
                    .item(full_item(id, 0))
                    .send()
                    .expect("load");
            }
        }
        // Per table: puts/s by wall clock, µs per put of thread and
        // process CPU.
        let mut costs: Vec<[Vec<f64>; 3]> = vec![Default::default(); tables.len()];
        let mut version = 1;
        for repetition in 0..repetitions {
            for offset in 0..tables.len() {
                let index = (repetition + offset) % tables.len();
                let items: Vec<Item> = (0..PUTS)
                    .map(|n| {
                        version += 1;
                        full_item(mix(version ^ n) % ITEMS, version)
                    })
                    .collect();
                let start = Clocks::now();
                for item in items {
                    db.put_item(tables[index].0).item(item).send().expect("put");
                }
                let spent = start.spent();
                let per_put = |d: Option<Duration>| {
                    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6 / PUTS as f64)
                };
                costs[index][0].push(PUTS as f64 / spent.wall.as_secs_f64());
                costs[index][1].push(per_put(spent.thread_cpu));
                costs[index][2].push(per_put(spent.process_cpu));
            }
        }
        let medians: Vec<[f64; 3]> = costs
            .iter()
            .map(|[w, t, p]| {
                [
                    median(&mut w.clone()),
                    median(&mut t.clone()),
                    median(&mut p.clone()),
                ]
            })
            .collect();
        for (t, ((table, _), m)) in tables.iter().zip(&medians).enumerate() {
            // Per repetition, thread CPU per put over the stream-less
            // table's (measured moments apart): the steadiest figure.
            let mut ratios: Vec<f64> = costs[t][1]
                .iter()
                .zip(&costs[0][1])
                .map(|(cost, base)| cost / base)
                .collect();
            println!(
                "streams_put_overhead {mode} {table}: {:.0} puts/s, {:.2}x the table without a \
                 stream; thread CPU {:.2} us/put, {:.2}x the time, paired {:.2}x; process CPU \
                 {:.2} us/put, {:.2}x the time",
                m[0],
                m[0] / medians[0][0],
                m[1],
                m[1] / medians[0][1],
                median(&mut ratios),
                m[2],
                m[2] / medians[0][2],
            );
        }
    }
}

fn get_records(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(dir.path());
    create(&db, "Records", Some(StreamViewType::NewImage));
    for n in 0..RECORDS {
        db.put_item("Records")
            .item(full_item(n, 0))
            .send()
            .expect("load");
    }
    let arn = db
        .describe_table("Records")
        .send()
        .expect("describe")
        .table
        .latest_stream_arn
        .expect("stream");
    let shard = db
        .describe_stream(&arn)
        .send()
        .expect("describe stream")
        .stream_description
        .shards[0]
        .shard_id
        .clone();
    let mut group = c.benchmark_group("streams_get_records");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(RECORDS));
    group.bench_function("10k_records_1kb_new_image", |b| {
        b.iter(|| {
            let mut iterator = db
                .get_shard_iterator(&arn, &shard, ShardIteratorType::TrimHorizon)
                .send()
                .expect("iterator")
                .shard_iterator;
            let mut read = 0;
            while read < RECORDS as usize {
                let page = db.get_records(&iterator).send().expect("records");
                read += page.records.len();
                iterator = page.next_shard_iterator.expect("open shard");
                black_box(page.records);
            }
        })
    });
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn trigger_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = open(dir.path());
    create(&db, "Triggered", Some(StreamViewType::NewImage));
    let (tx, rx) = mpsc::channel::<Instant>();
    let tx = Mutex::new(tx);
    let mapping = db
        .create_event_source_mapping("Triggered", move |records: &[Record]| {
            let now = Instant::now();
            for _ in records {
                tx.lock().unwrap().send(now)?;
            }
            Ok(())
        })
        .batch_size(1)
        .starting_position(StartingPosition::Latest)
        .send()
        .expect("mapping");
    let next = Cell::new(0u64);
    let one = || {
        next.set(next.get() + 1);
        let item = full_item(next.get() % ITEMS, next.get());
        let start = Instant::now();
        db.put_item("Triggered").item(item).send().expect("put");
        let committed = start.elapsed();
        let handled = rx.recv_timeout(Duration::from_secs(10)).expect("delivery");
        (committed, handled.duration_since(start))
    };
    let mut commits = Vec::with_capacity(LATENCY_SAMPLES);
    let mut deliveries = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES {
        let (commit, delivery) = one();
        commits.push(commit);
        deliveries.push(delivery);
    }
    commits.sort();
    deliveries.sort();
    println!(
        "streams_trigger_latency over {LATENCY_SAMPLES} PutItems: put acknowledged p50 {:?} \
         p99 {:?}; handler called p50 {:?} p99 {:?} (from the start of the put)",
        percentile(&commits, 0.5),
        percentile(&commits, 0.99),
        percentile(&deliveries, 0.5),
        percentile(&deliveries, 0.99),
    );
    let mut group = c.benchmark_group("streams_trigger");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("put_to_handler", |b| {
        b.iter_custom(|iterations| (0..iterations).map(|_| one().1).sum())
    });
    group.finish();
    mapping.stop();
}

criterion_group!(
    benches,
    put_overhead,
    put_items,
    get_records,
    trigger_latency
);
criterion_main!(benches);
