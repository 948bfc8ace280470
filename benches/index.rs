//! Secondary index costs, nimbus alone, on a `Buffered` database in a
//! temporary directory: PutItem of 1 KB items into tables with 0, 1 and 5
//! global secondary indexes (the write amplification of maintaining
//! entries in the item's batch), and a Query of 100 items on a global index
//! against the same Query on the base table. `index_put_overhead` (printed)
//! times PutItem on the three tables alternating within one run, median of
//! 5 repetitions, by wall clock and by CPU time, as ratios to the table
//! without an index. Run with
//! `cargo bench --bench index` (about 1 minute; `NIMBUS_BENCH_REPETITIONS=N`
//! runs N alternating repetitions instead of 5). Targets (issue 6): each
//! GSI adds at most 35% to PutItem; a GSI Query within 1.2x of the table's.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nimbus::kv::{GlobalSecondaryIndex, IndexProjection};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

#[path = "common/cpu.rs"]
mod cpu;
use cpu::{Clocks, median};
#[path = "common/engine.rs"]
mod engine;

const PARTITIONS: u64 = 100;
const SORT_KEYS: u64 = 100;

/// A 1 KB item with five string attributes a GSI can key on (`g0`..`g4`:
/// 100 distinct values each, so every index partition holds 100 items).
fn bench_item(p: u64, s: u64, version: u64) -> Item {
    let n = p * SORT_KEYS + s;
    let mut item = item! {
        "pk" => format!("user#{p:06}"), "sk" => s,
        "payload" => "x".repeat(900), "version" => version
    };
    for g in 0..5 {
        item.insert(format!("g{g}"), format!("v{:03}", (n + g) % 100).into());
    }
    item
}

fn open(dir: &std::path::Path, indexes: usize) -> Database {
    let db = Database::open_with(
        dir,
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    load(&db, "Bench", indexes);
    db.engine().flush().unwrap();
    db
}

/// Creates `table` with `indexes` GSIs (ALL projection) and loads it.
fn load(db: &Database, table: &str, indexes: usize) {
    let mut create = db
        .create_table(table)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N);
    for g in 0..indexes {
        let name = format!("g{g}");
        create = create
            .attribute_definition(name.clone(), ScalarType::S)
            .global_secondary_index(
                GlobalSecondaryIndex::new(format!("Gsi{g}"), name)
                    .sort_key("sk")
                    .projection(IndexProjection::all()),
            );
    }
    create.send().unwrap();
    for p in 0..PARTITIONS {
        for s in 0..SORT_KEYS {
            db.put_item(table).item(bench_item(p, s, 0)).send().unwrap();
        }
    }
}

/// PutItem cost on tables with 0, 1 and 5 GSIs in one `Buffered`
/// database, alternating between the tables within each of 5 repetitions
/// of 2,000 puts (so drift in the machine or in background work hits them
/// alike). Prints, per table, the medians of µs per put by wall clock, by
/// CPU time of the putting thread and by CPU time of the process, each as
/// a ratio to the table without an index (on a loaded machine the CPU
/// figures are the ones to trust: descheduling does not count).
fn put_overhead(_: &mut Criterion) {
    const PUTS: u64 = 2_000;
    let repetitions = cpu::repetitions();
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    let tables = [("gsi0", 0usize), ("gsi1", 1), ("gsi5", 5)];
    for (table, indexes) in tables {
        load(&db, table, indexes);
    }
    // Per table: µs per put by wall clock, thread CPU and process CPU.
    let mut costs: Vec<[Vec<f64>; 3]> = vec![Default::default(); tables.len()];
    let mut n = 0u64;
    for repetition in 0..repetitions {
        for offset in 0..tables.len() {
            let index = (repetition + offset) % tables.len();
            let items: Vec<Item> = (0..PUTS)
                .map(|_| {
                    n += 1;
                    let r = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (PARTITIONS * SORT_KEYS);
                    bench_item(r / SORT_KEYS, r % SORT_KEYS, n)
                })
                .collect();
            let start = Clocks::now();
            for item in items {
                db.put_item(tables[index].0).item(item).send().unwrap();
            }
            let spent = start.spent();
            let per_put =
                |d: Option<Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64() * 1e6 / PUTS as f64);
            costs[index][0].push(per_put(Some(spent.wall)));
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
    // The steadiest figure on a loaded machine: per repetition, a table's
    // thread CPU per put over the index-less table's (measured moments
    // apart), and the median of those ratios.
    let paired: Vec<f64> = (0..tables.len())
        .map(|t| {
            let mut ratios: Vec<f64> = costs[t][1]
                .iter()
                .zip(&costs[0][1])
                .map(|(cost, base)| cost / base)
                .collect();
            median(&mut ratios)
        })
        .collect();
    for ((table, indexes), m) in tables.iter().zip(&medians) {
        let ratio = |k: usize| m[k] / medians[0][k];
        let per_gsi = |k: usize| {
            if *indexes == 0 {
                0.0
            } else {
                (ratio(k) - 1.0) / *indexes as f64 * 100.0
            }
        };
        let paired = paired[tables.iter().position(|t| t.0 == *table).unwrap_or(0)];
        println!(
            "index_put_overhead buffered {table}: wall {:.2} us/put {:.2}x (+{:.0}%/GSI); \
             thread CPU {:.2} us/put {:.2}x (+{:.0}%/GSI), paired {paired:.2}x (+{:.0}%/GSI); \
             process CPU {:.2} us/put {:.2}x (+{:.0}%/GSI)",
            m[0],
            ratio(0),
            per_gsi(0),
            m[1],
            ratio(1),
            per_gsi(1),
            if *indexes == 0 {
                0.0
            } else {
                (paired - 1.0) / *indexes as f64 * 100.0
            },
            m[2],
            ratio(2),
            per_gsi(2),
        );
    }
}

fn put_item(c: &mut Criterion) {
    let mut group = c.benchmark_group("index/put_item_1kb");
    group.throughput(Throughput::Elements(1));
    for indexes in [0usize, 1, 5] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), indexes);
        let mut n = 0u64;
        let before = engine::Reading::now(&db);
        group.bench_function(format!("{indexes}_gsi"), |b| {
            b.iter_batched(
                || {
                    n += 1;
                    let r = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) % (PARTITIONS * SORT_KEYS);
                    bench_item(r / SORT_KEYS, r % SORT_KEYS, n)
                },
                |item| db.put_item("Bench").item(item).send().unwrap(),
                criterion::BatchSize::SmallInput,
            );
        });
        // Each table's own database: what its puts cost in the background.
        before.report(&db, &format!("index/put_item_1kb/{indexes}_gsi"), n);
    }
    group.finish();
}

fn query(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), 1);
    db.engine().compact().unwrap();
    let mut group = c.benchmark_group("index/query_100");
    group.throughput(Throughput::Elements(100));
    let mut n = 0u64;
    group.bench_function("base_table", |b| {
        b.iter(|| {
            n += 1;
            let page = db
                .query("Bench")
                .key_condition_expression("pk = :p")
                .value(":p", format!("user#{:06}", n % PARTITIONS))
                .send()
                .unwrap();
            black_box(page.count)
        });
    });
    group.bench_function("gsi", |b| {
        b.iter(|| {
            n += 1;
            let page = db
                .query("Bench")
                .index_name("Gsi0")
                .key_condition_expression("g0 = :v")
                .value(":v", format!("v{:03}", n % 100))
                .send()
                .unwrap();
            black_box(page.count)
        });
    });
    group.finish();
}

criterion_group!(benches, put_overhead, put_item, query);
criterion_main!(benches);
