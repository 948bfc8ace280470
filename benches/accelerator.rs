//! The DAX-style accelerator's hit path against the table it fronts:
//! GetItem of a 1 KB item served from the accelerator's item cache
//! (`cached`) and read from the table (`uncached`, `Database::get_item`),
//! on a `Buffered` database in a temporary directory. Run with
//! `cargo bench --bench accelerator` (about a minute).
//!
//! First a latency report: 5 repetitions, the paths taking turns, each
//! timing 50,000 GetItems of uniform random keys one by one, printing the
//! p50 and p99 of each path and the median ratio of its p50 to the
//! uncached p50 of the same repetition and key handling (the figures
//! `benches/README.md` records; the target is cached ≥ 5× faster). A
//! third path, `send_shared`, returns the item in an `Arc` (`send` hands
//! out a clone of the cached copy-on-write item). What a read returns is
//! dropped outside the timing.
//!
//! Each key is built just before its read, outside the timing, as a
//! caller builds the key it sends (so it is in the CPU caches when the
//! request reads and frees it). The last two rows time the method of
//! earlier runs, every key of a repetition built before its first read:
//! each request then reads and frees a key that has left the CPU caches,
//! on both paths. Then the same requests under criterion.
//!
//! The table holds 10,000 items (100 partitions × 100 sort keys), flushed
//! and compacted; the accelerator (64 MiB, 5-minute TTLs) has read every
//! item once before anything is timed, so every cached GetItem is a hit.
// `criterion_group!`-style benches define undocumented functions, and a
// bench that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use nimbus::cache::Accelerator;
use nimbus::storage::Durability;
use nimbus::value::item_size;
use nimbus::{AttributeValue, Database, DatabaseOptions, Item, ScalarType, item};

#[path = "common/data.rs"]
mod data;
use data::mix;

const TABLE: &str = "Bench";
const PARTITIONS: u64 = 100;
const SORT_KEYS: u64 = 100;
const ITEMS: u64 = PARTITIONS * SORT_KEYS;
/// The DynamoDB size of every item.
const ITEM_BYTES: usize = 1024;
const REPETITIONS: usize = 5;
const READS_PER_REPETITION: u64 = 50_000;

fn key_of(n: u64) -> Item {
    item! { "pk" => format!("user#{:04}", n / SORT_KEYS), "sk" => n % SORT_KEYS }
}

/// The key of the `n`-th random read.
fn random_key(n: u64) -> Item {
    key_of(mix(n) % ITEMS)
}

/// A 1 KB item whose payload is letters that do not repeat.
fn item_of(n: u64) -> Item {
    let mut item = key_of(n);
    item.insert("kind".to_owned(), AttributeValue::from("event"));
    let room = ITEM_BYTES - item_size(&item) - "payload".len();
    let payload: String = (0..room as u64)
        .map(|i| char::from(b'a' + (mix(n << 16 | i) % 26) as u8))
        .collect();
    item.insert("payload".to_owned(), AttributeValue::S(payload));
    assert_eq!(item_size(&item), ITEM_BYTES);
    item
}

fn loaded(dir: &std::path::Path) -> Database {
    let options = DatabaseOptions::default().durability(Durability::Buffered);
    let db = Database::open_with(dir, options).expect("open");
    db.create_table(TABLE)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
        .send()
        .expect("create table");
    for n in 0..ITEMS {
        db.put_item(TABLE).item(item_of(n)).send().expect("load");
    }
    db.engine().compact().expect("compact");
    db
}

/// The p50 and p99 of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    (at(0.50), at(0.99))
}

/// What a read returns, handed back so that it is dropped outside the
/// timing (dropping an uncached item frees its attributes).
enum Found {
    Owned(Option<Item>),
    Shared(Option<Arc<Item>>),
}

impl Found {
    fn is_some(&self) -> bool {
        match self {
            Found::Owned(item) => item.is_some(),
            Found::Shared(item) => item.is_some(),
        }
    }
}

/// One way to read an item by its key.
type Read<'a> = &'a dyn Fn(Item) -> Found;

/// When the keys a repetition reads are built.
#[derive(Clone, Copy, PartialEq)]
enum Keys {
    /// Each just before its read (outside the timing), as a caller builds
    /// the key it sends: it is in the CPU caches when the request runs.
    JustBefore,
    /// All of them before the first read: each key's map and strings have
    /// left the CPU caches by the time the request reads and frees them.
    AllAhead,
}

/// Times `read` on `READS_PER_REPETITION` random keys, one by one.
fn timed(first: u64, read: Read<'_>, keys: Keys) -> (Duration, Duration) {
    let mut ahead: Vec<Item> = match keys {
        Keys::AllAhead => (first..first + READS_PER_REPETITION)
            .rev()
            .map(random_key)
            .collect(),
        Keys::JustBefore => Vec::new(),
    };
    let mut samples = Vec::with_capacity(READS_PER_REPETITION as usize);
    for n in first..first + READS_PER_REPETITION {
        let key = match keys {
            Keys::AllAhead => ahead.pop().expect("one key per read"),
            Keys::JustBefore => random_key(n),
        };
        let start = Instant::now();
        let item = read(key);
        samples.push(start.elapsed());
        assert!(item.is_some(), "every key read exists");
    }
    percentiles(&mut samples)
}

/// The median over repetitions of one path's p50, p99 and p50 ratio
/// against the uncached path measured in the same repetition.
#[derive(Default)]
struct Row {
    p50s: Vec<Duration>,
    p99s: Vec<Duration>,
    ratios: Vec<f64>,
}

fn median<T: Copy + PartialOrd>(values: &mut [T]) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
}

fn latency_report(db: &Database, accelerator: &Accelerator) {
    let uncached = |key: Item| Found::Owned(db.get_item(TABLE).key(key).send().expect("get").item);
    let cached = |key: Item| {
        Found::Owned(
            accelerator
                .get_item(TABLE)
                .key(key)
                .send()
                .expect("get")
                .item,
        )
    };
    let shared = |key: Item| {
        Found::Shared(
            accelerator
                .get_item(TABLE)
                .key(key)
                .send_shared()
                .expect("get"),
        )
    };
    // Each path, when its keys are built, and the path whose p50 its
    // ratio divides (the uncached one with the same keys).
    let paths: [(&str, Read<'_>, Keys, usize); 5] = [
        (
            "uncached: Database::get_item",
            &uncached,
            Keys::JustBefore,
            0,
        ),
        (
            "cached: Accelerator::get_item(..).send()",
            &cached,
            Keys::JustBefore,
            0,
        ),
        (
            "cached: Accelerator::get_item(..).send_shared()",
            &shared,
            Keys::JustBefore,
            0,
        ),
        (
            "uncached, keys built ahead: Database::get_item",
            &uncached,
            Keys::AllAhead,
            3,
        ),
        (
            "cached, keys built ahead: Accelerator::get_item(..).send()",
            &cached,
            Keys::AllAhead,
            3,
        ),
    ];
    let mut rows: Vec<Row> = paths.iter().map(|_| Row::default()).collect();
    for repetition in 0..REPETITIONS {
        let first = repetition as u64 * READS_PER_REPETITION;
        // Rotate which path goes first.
        let mut results = [(Duration::ZERO, Duration::ZERO); 5];
        for turn in 0..paths.len() {
            let path = (turn + repetition) % paths.len();
            let (_, read, keys, _) = paths[path];
            results[path] = timed(first, read, keys);
        }
        for ((row, (p50, p99)), (_, _, _, baseline)) in rows.iter_mut().zip(results).zip(&paths) {
            row.p50s.push(p50);
            row.p99s.push(p99);
            row.ratios
                .push(results[*baseline].0.as_secs_f64() / p50.as_secs_f64());
        }
    }
    println!(
        "accelerator GetItem of 1 KB items (Buffered), median of {REPETITIONS} repetitions of \
         {READS_PER_REPETITION} random reads per path; item hit ratio {:.4}",
        accelerator.stats().item_hit_ratio()
    );
    for ((name, _, _, _), row) in paths.iter().zip(&mut rows) {
        println!(
            "  {name}: p50 {:?}, p99 {:?}, uncached p50 / this p50 = {:.2}x",
            median(&mut row.p50s),
            median(&mut row.p99s),
            median(&mut row.ratios),
        );
    }
}

fn criterion_benches(c: &mut Criterion, db: &Database, accelerator: &Accelerator) {
    let mut group = c.benchmark_group("accelerator_get_item");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    let mut next = 0;
    let mut step = move || {
        next += 1;
        random_key(next)
    };
    group.bench_function("uncached", |b| {
        b.iter_batched(
            &mut step,
            |key| black_box(db.get_item(TABLE).key(key).send().expect("get").item),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cached", |b| {
        b.iter_batched(
            &mut step,
            |key| {
                black_box(
                    accelerator
                        .get_item(TABLE)
                        .key(key)
                        .send()
                        .expect("get")
                        .item,
                )
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cached_shared", |b| {
        b.iter_batched(
            &mut step,
            |key| {
                black_box(
                    accelerator
                        .get_item(TABLE)
                        .key(key)
                        .send_shared()
                        .expect("get"),
                )
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = loaded(dir.path());
    let accelerator = Accelerator::builder(db.clone()).max_bytes(64 << 20).build();
    for n in 0..ITEMS {
        let found = accelerator
            .get_item(TABLE)
            .key(key_of(n))
            .send()
            .expect("warm");
        assert!(found.item.is_some());
    }
    latency_report(&db, &accelerator);
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion, &db, &accelerator);
    criterion.final_summary();
}
