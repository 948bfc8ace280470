//! Backups, restores, exports and imports, nimbus alone, on a `Buffered`
//! database in a temporary directory. `create_backup` on tables of 16 MB
//! and 128 MB of 1 KB items (`NIMBUS_BENCH_BIG=1`: 1 GB), to show its cost
//! does not grow with the table (issue 11: ≤ 100 ms for 1 GB); restore,
//! export and import throughput on the 16 MB table; point-in-time
//! recovery: restore throughput (items/s) replaying the archive and from a
//! base snapshot, and PutItem with PITR on against off (the archive
//! record's cost). Run with `cargo bench --bench backup`.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nimbus::kv::InputCompressionType;
use nimbus::storage::Durability;
use nimbus::time::{Clock, ManualClock};
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
        report_backup_bytes(&db, dir.path(), bytes);
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

/// Prints what one backup of the table occupies: bytes it shares with the
/// database (hard-linked segments) and bytes of its own (the copied log
/// tail, the manifest, the descriptor).
fn report_backup_bytes(db: &Database, dir: &std::path::Path, table_bytes: u64) {
    use std::os::unix::fs::MetadataExt;
    let arn = db
        .create_backup("Bench")
        .backup_name("bytes")
        .send()
        .unwrap()
        .backup_details
        .backup_arn;
    let (mut shared, mut own) = (0u64, 0u64);
    let mut stack = vec![dir.join("backups")];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.nlink() > 1 {
                shared += meta.len();
            } else {
                own += meta.len();
            }
        }
    }
    println!(
        "backup of a {} MB table: {:.1} MB shared with the database (hard links), {:.3} MB of its own",
        table_bytes >> 20,
        shared as f64 / 1e6,
        own as f64 / 1e6
    );
    db.delete_backup(arn).send().unwrap();
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

/// Items of the PITR restore benches (16 MB of 1 KB items).
const PITR_ITEMS: u64 = 16 << 10;

fn pitr_restore(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default()
            .durability(Durability::Buffered)
            .clock(clock.clone())
            .background_threads(false),
    )
    .unwrap();
    table(&db, "Bench").send().unwrap();
    db.update_continuous_backups("Bench")
        .point_in_time_recovery_enabled(true)
        .send()
        .unwrap();
    for first in (0..PITR_ITEMS).step_by(25) {
        clock.advance(Duration::from_millis(1));
        let mut batch = db.batch_write_item();
        for n in first..(first + 25).min(PITR_ITEMS) {
            batch = batch.put(
                "Bench",
                item! { "pk" => format!("p{:06}", n / 100), "sk" => n % 100, "payload" => "x".repeat(980) },
            );
        }
        batch.send().unwrap();
    }
    db.engine().flush().unwrap();
    let loaded = clock.now();
    let mut group = c.benchmark_group("backup/pitr_16MB");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PITR_ITEMS));
    let mut n = 0;
    // Every item comes from the archive (the base snapshot is empty).
    group.bench_function("restore_replaying_archive", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let target = format!("Replayed{n}");
                let start = Instant::now();
                db.restore_table_to_point_in_time("Bench", &target)
                    .restore_date_time(loaded)
                    .send()
                    .unwrap();
                total += start.elapsed();
                db.delete_table(&target).send().unwrap();
            }
            total
        });
    });
    // A day later a new base snapshot holds every item: no replay.
    clock.advance(Duration::from_secs(24 * 3600));
    db.run_pitr_maintenance_now().unwrap();
    group.bench_function("restore_from_snapshot", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                n += 1;
                let target = format!("Restored{n}");
                let start = Instant::now();
                db.restore_table_to_point_in_time("Bench", &target)
                    .use_latest_restorable_time(true)
                    .send()
                    .unwrap();
                total += start.elapsed();
                db.delete_table(&target).send().unwrap();
            }
            total
        });
    });
    group.finish();
}

/// PutItem of 1 KB items on two tables of one database, PITR off and on,
/// measured in the same run (the ratio is the archive record's cost).
fn pitr_put_item(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open_with(
        dir.path(),
        DatabaseOptions::default()
            .durability(Durability::Buffered)
            .background_threads(false),
    )
    .unwrap();
    for name in ["PitrOff", "PitrOn"] {
        table(&db, name).send().unwrap();
    }
    db.update_continuous_backups("PitrOn")
        .point_in_time_recovery_enabled(true)
        .send()
        .unwrap();
    let payload = "x".repeat(980);
    alternate_put_items(&db, &payload);
    let mut group = c.benchmark_group("backup/put_item_1KB");
    group.throughput(Throughput::Elements(1));
    for name in ["PitrOff", "PitrOn"] {
        let mut n = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                db.put_item(name)
                    .item(item! { "pk" => format!("p{:06}", n % 10_000), "sk" => n % 100, "payload" => payload.as_str() })
                    .send()
                    .unwrap();
            });
        });
    }
    group.finish();
}

/// Puts per table per repetition of the alternating comparison.
const ALTERNATE_PUTS: u64 = 4_000;
/// Repetitions (the medians of these are reported).
const ALTERNATE_REPETITIONS: usize = 7;

/// PITR off and on measured alternately in one run, as
/// shared/BENCHMARKS.md asks: prints each side's median µs per PutItem
/// and the ratio on/off (criterion's separate runs drift with the order).
fn alternate_put_items(db: &Database, payload: &str) {
    let mut per_put = [Vec::new(), Vec::new()];
    let mut n = 0u64;
    for _ in 0..ALTERNATE_REPETITIONS {
        for (side, name) in ["PitrOff", "PitrOn"].into_iter().enumerate() {
            let start = Instant::now();
            for _ in 0..ALTERNATE_PUTS {
                n += 1;
                db.put_item(name)
                    .item(item! { "pk" => format!("p{:06}", n % 10_000), "sk" => n % 100, "payload" => payload })
                    .send()
                    .unwrap();
            }
            per_put[side].push(start.elapsed().as_secs_f64() * 1e6 / ALTERNATE_PUTS as f64);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let off = median(&mut per_put[0]);
    let on = median(&mut per_put[1]);
    eprintln!(
        "put_item 1 KB, Buffered, alternating x{ALTERNATE_REPETITIONS}: PITR off {off:.2} µs, \
         on {on:.2} µs, ratio on/off {:.2}",
        on / off
    );
}

criterion_group!(
    benches,
    create_backup,
    restore_export_import,
    pitr_restore,
    pitr_put_item
);
criterion_main!(benches);
