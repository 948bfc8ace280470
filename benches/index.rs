//! Secondary index costs, nimbus alone, on a `Buffered` database in a
//! temporary directory: PutItem of 1 KB items into tables with 0, 1 and 5
//! global secondary indexes (the write amplification of maintaining
//! entries in the item's batch), and a Query of 100 items on a global index
//! against the same Query on the base table. Run with
//! `cargo bench --bench index` (about 1 minute). Targets (issue 6): each
//! GSI adds at most 35% to PutItem; a GSI Query within 1.2x of the table's.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nimbus::kv::{GlobalSecondaryIndex, IndexProjection};
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, Item, ScalarType, item};

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
    let mut create = db
        .create_table("Bench")
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
            db.put_item("Bench")
                .item(bench_item(p, s, 0))
                .send()
                .unwrap();
        }
    }
    db.engine().flush().unwrap();
    db
}

fn put_item(c: &mut Criterion) {
    let mut group = c.benchmark_group("index/put_item_1kb");
    group.throughput(Throughput::Elements(1));
    for indexes in [0usize, 1, 5] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), indexes);
        let mut n = 0u64;
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

criterion_group!(benches, put_item, query);
criterion_main!(benches);
