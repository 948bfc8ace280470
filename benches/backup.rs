//! Backups, restores, exports and imports, nimbus alone, on a `Buffered`
//! database in a temporary directory. `create_backup` on tables of 16 MB
//! and 128 MB of 1 KB items (`NIMBUS_BENCH_BIG=1`: 1 GB), to show its cost
//! does not grow with the table (issue 11: ≤ 100 ms for 1 GB); restore,
//! export and import throughput on the 16 MB table. Run with
//! `cargo bench --bench backup`.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nimbus::kv::InputCompressionType;
use nimbus::storage::Durability;
use nimbus::{Database, DatabaseOptions, ScalarType, item};

const ITEM_BYTES: u64 = 1024;

fn table(db: &Database, name: &str) -> nimbus::kv::CreateTable {
    db.create_table(name)
        .partition_key("pk", ScalarType::S)
        .sort_key("sk", ScalarType::N)
}

/// A database holding `Bench` with `bytes` of 1 KB items.
fn loaded(dir: &std::path::Path, bytes: u64) -> Database {
    let db = Database::open_with(
        dir,
        DatabaseOptions::default().durability(Durability::Buffered),
    )
    .unwrap();
    table(&db, "Bench").send().unwrap();
    let items = bytes / ITEM_BYTES;
    for first in (0..items).step_by(25) {
        let mut batch = db.batch_write_item();
        for n in first..(first + 25).min(items) {
            batch = batch.put(
                "Bench",
                item! { "pk" => format!("p{:06}", n / 100), "sk" => n % 100, "payload" => "x".repeat(980) },
            );
        }
        batch.send().unwrap();
    }
    db.engine().flush().unwrap();
    db
}

fn create_backup(c: &mut Criterion) {
    let mut group = c.benchmark_group("backup/create_backup");
    group.sample_size(20);
    let big = std::env::var_os("NIMBUS_BENCH_BIG").is_some();
    let sizes: &[u64] = if big {
        &[16 << 20, 1 << 30]
    } else {
        &[16 << 20, 128 << 20]
    };
    for &bytes in sizes {
        let dir = tempfile::tempdir().unwrap();
        let db = loaded(dir.path(), bytes);
        group.bench_function(format!("{}MB", bytes >> 20), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let start = Instant::now();
                    let arn = db
                        .create_backup("Bench")
                        .backup_name("bench")
                        .send()
                        .unwrap()
                        .backup_details
                        .backup_arn;
                    total += start.elapsed();
                    db.delete_backup(arn).send().unwrap();
                }
                total
            });
        });
    }
    group.finish();
}

fn restore_export_import(c: &mut Criterion) {
    let bytes = 16u64 << 20;
    let dir = tempfile::tempdir().unwrap();
    let db = loaded(dir.path(), bytes);
    let arn = db
        .create_backup("Bench")
        .backup_name("bench")
        .send()
        .unwrap()
        .backup_details
        .backup_arn;
    db.objects().create_bucket("exports").send().unwrap();
    let mut group = c.benchmark_group("backup/16MB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(bytes));
    let mut n = 0;
    group.bench_function("restore_table_from_backup", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let name = format!("Restored{n}");
                let start = Instant::now();
                db.restore_table_from_backup(&name)
                    .backup_arn(&arn)
                    .send()
                    .unwrap();
                total += start.elapsed();
                db.delete_table(&name).send().unwrap();
            }
            total
        });
    });
    let mut data_prefix = String::new();
    group.bench_function("export_table_to_point_in_time", |b| {
        b.iter(|| {
            let export = db
                .export_table_to_point_in_time("Bench")
                .s3_bucket("exports")
                .send()
                .unwrap()
                .export_description;
            data_prefix = export
                .export_manifest
                .replace("manifest-summary.json", "data/");
        });
    });
    group.bench_function("import_table", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let name = format!("Imported{n}");
                let start = Instant::now();
                db.import_table()
                    .s3_bucket_source("exports", &data_prefix)
                    .input_compression_type(InputCompressionType::Gzip)
                    .table_creation_parameters(table(&db, &name))
                    .send()
                    .unwrap();
                total += start.elapsed();
                db.delete_table(&name).send().unwrap();
            }
            total
        });
    });
    group.finish();
}

criterion_group!(benches, create_backup, restore_export_import);
criterion_main!(benches);
