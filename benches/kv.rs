//! The kv layer's request paths, nimbus alone, on a `Buffered` database in
//! a temporary directory: PutItem of 1 KB items, GetItem, UpdateItem (a
//! counter increment `ADD n :one`), Query of the 100 items of one
//! partition, Scan pages of 1,000 items and TransactWriteItems of 4 puts;
//! PutItem and GetItem also from 2 threads. Run with
//! `cargo bench --bench kv` (about 2 minutes). The comparison with raw
//! fjall, with p50/p99 latencies, is `benches/peers/src/bin/kv.rs` (see
//! `benches/README.md`).
//!
//! The table holds 20,000 items (200 partitions × 100 sort keys), flushed
//! and compacted before the reads; the write benches overwrite those items
//! (new items would grow the directory by a gigabyte a run). Each request's
//! inputs (the key or the 1 KB item) are built outside the timing, as a
//! caller would have them already.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::cell::Cell;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nimbus::kv::TransactPut;
use nimbus::storage::Durability;
use nimbus::value::item_size;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

#[path = "common/data.rs"]
mod data;
use data::{incompressible_text, mix};

const TABLE: &str = "Bench";
const PARTITIONS: u64 = 200;
const SORT_KEYS: u64 = 100;
const ITEMS: u64 = PARTITIONS * SORT_KEYS;
/// The DynamoDB size of every item the benches write.
const ITEM_BYTES: usize = 1024;
const SCAN_PAGE: usize = 1000;

/// The `n`-th random existing `(partition, sort key)`.
fn pick(n: u64) -> (u64, u64) {
    let r = mix(n) % ITEMS;
    (r / SORT_KEYS, r % SORT_KEYS)
}

fn partition_key(p: u64) -> String {
    format!("user#{p:06}")
}

fn key(p: u64, s: u64) -> Item {
    item! { "pk" => partition_key(p), "sk" => s }
}

/// A 1 KB item (by DynamoDB's size rules) whose payload is letters that
/// do not repeat, so block compression gains nothing.
fn full_item(p: u64, s: u64) -> Item {
    let mut item = item! { "pk" => partition_key(p), "sk" => s, "n" => 0, "kind" => "event" };
    let room = ITEM_BYTES - item_size(&item) - "payload".len();
    let payload = incompressible_text(room, (p << 32) | s);
    item.insert("payload".to_owned(), AttributeValue::S(payload));
    debug_assert_eq!(item_size(&item), ITEM_BYTES);
    item
}

/// A `Buffered` database with the bench table loaded, flushed and
/// compacted.
fn loaded(dir: &std::path::Path) -> Database {
    let options = DatabaseOptions::default().durability(Durability::Buffered);
    let db = Database::open_with(dir, options).expect("open");
    db.create_table(TABLE)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .send()
        .expect("create table");
    for p in 0..PARTITIONS {
        for s in 0..SORT_KEYS {
            db.put_item(TABLE)
                .item(full_item(p, s))
                .send()
                .expect("load");
        }
    }
    db.engine().compact().expect("compact");
    db
}

fn reads(c: &mut Criterion, db: &Database) {
    let mut group = c.benchmark_group("kv_read");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let next = Cell::new(0u64);
    let step = || {
        next.set(next.get() + 1);
        next.get()
    };
    group.bench_function("get_item", |b| {
        b.iter_batched(
            || {
                let (p, s) = pick(step());
                key(p, s)
            },
            |key| {
                let item = db.get_item(TABLE).key(key).send().expect("get").item;
                assert!(item.is_some(), "every key read exists");
                item
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("query_100", |b| {
        b.iter_batched(
            || partition_key(mix(step()) % PARTITIONS),
            |pk| {
                let page = db
                    .query(TABLE)
                    .key_condition_expression("pk = :p")
                    .value(":p", pk)
                    .send()
                    .expect("query");
                assert_eq!(page.count, SORT_KEYS as usize);
                page
            },
            BatchSize::SmallInput,
        )
    });
    // Pages through the whole table, starting over at its end.
    let mut start: Option<Item> = None;
    group.bench_function("scan_page_1000", |b| {
        b.iter(|| {
            let mut scan = db.scan(TABLE).limit(SCAN_PAGE);
            if let Some(key) = start.take() {
                scan = scan.exclusive_start_key(key);
            }
            let page = scan.send().expect("scan");
            start = page.last_evaluated_key.clone();
            black_box(page.items)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("kv_read_2_threads");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    group.bench_function("get_item", |b| {
        b.iter_custom(|iters| {
            let keys = || -> Vec<Item> {
                (0..iters.div_ceil(2))
                    .map(|_| {
                        let (p, s) = pick(step());
                        key(p, s)
                    })
                    .collect()
            };
            two_threads([keys(), keys()], |key| {
                assert!(
                    db.get_item(TABLE)
                        .key(key)
                        .send()
                        .expect("get")
                        .item
                        .is_some()
                );
            })
        })
    });
    group.finish();
}

/// Runs `op` on each input, the two lists on two threads at once, and
/// returns the wall time of the slower.
fn two_threads(inputs: [Vec<Item>; 2], op: impl Fn(Item) + Sync) -> Duration {
    let op = &op;
    let start = Instant::now();
    std::thread::scope(|scope| {
        for list in inputs {
            scope.spawn(move || list.into_iter().for_each(op));
        }
    });
    start.elapsed()
}

fn writes(c: &mut Criterion, db: &Database) {
    let mut group = c.benchmark_group("kv_write");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let next = Cell::new(1u64 << 50);
    let step = || {
        next.set(next.get() + 1);
        next.get()
    };
    group.bench_function("put_item_1kb", |b| {
        b.iter_batched(
            || {
                let (p, s) = pick(step());
                full_item(p, s)
            },
            |item| db.put_item(TABLE).item(item).send().expect("put"),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("update_item_add", |b| {
        b.iter_batched(
            || {
                let (p, s) = pick(step());
                key(p, s)
            },
            |key| {
                db.update_item(TABLE)
                    .key(key)
                    .update_expression("ADD n :one")
                    .value(":one", 1)
                    .send()
                    .expect("update")
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("transact_write_4_puts", |b| {
        b.iter_batched(
            || {
                // Four distinct items: consecutive sort keys of one partition.
                let (p, s) = pick(step());
                let s = s.min(SORT_KEYS - 4);
                (s..s + 4).map(|s| full_item(p, s)).collect::<Vec<_>>()
            },
            |items| {
                let mut request = db.transact_write_items();
                for item in items {
                    request = request.item(TransactPut::new(TABLE, item));
                }
                request.send().expect("transact")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("kv_write_2_threads");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    group.bench_function("put_item_1kb", |b| {
        b.iter_custom(|iters| {
            // Thread 0 writes even partitions and thread 1 odd ones, so
            // the two never wait for one item's lock.
            let items = |thread: u64| -> Vec<Item> {
                (0..iters.div_ceil(2))
                    .map(|_| {
                        let (p, s) = pick(step());
                        full_item((p & !1) | thread, s)
                    })
                    .collect()
            };
            two_threads([items(0), items(1)], |item| {
                db.put_item(TABLE).item(item).send().expect("put");
            })
        })
    });
    group.finish();
}

fn kv(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let db = loaded(dir.path());
    reads(c, &db);
    writes(c, &db);
    db.close().expect("close");
}

criterion_group!(benches, kv);
criterion_main!(benches);
