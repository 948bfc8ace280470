//! The storage engine's hot paths, nimbus alone: unsynced put, synced
//! commit of one write, point reads that hit and miss in the memtable and
//! in segments, 10-pair range scans, and a batch of 100 writes. 16-byte
//! keys, 100-byte values. Run with `cargo bench --bench storage`; the
//! comparison with fjall and redb is `benches/peers/` (see
//! `benches/README.md`).
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use nimbus::storage::{Direction, Durability, Engine, EngineOptions, WriteBatch};

#[path = "common/data.rs"]
mod data;
use data::mix;

/// Keys loaded before the read benches (about 12 MB: fits one memtable).
const ENTRIES: u64 = 100_000;
const VALUE_BYTES: usize = 100;

/// A 16-byte key; the read benches load even `n` only, so odd `n` miss.
fn key(n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&mix(n).to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

fn open(dir: &std::path::Path) -> Engine {
    let options = EngineOptions {
        durability: Durability::Buffered,
        ..EngineOptions::default()
    };
    Engine::open(dir, options).expect("open engine")
}

/// An engine holding keys `0, 2, 4, …` (`ENTRIES` of them), in its
/// memtable or, with `flushed`, in compacted segments.
fn loaded(dir: &std::path::Path, flushed: bool) -> Engine {
    let engine = open(dir);
    let value = [0x5au8; VALUE_BYTES];
    for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(1000) {
        let mut batch = WriteBatch::new();
        for &i in chunk {
            batch.put(&key(i * 2), &value);
        }
        engine.write(batch).expect("load");
    }
    if flushed {
        engine.compact().expect("compact");
    }
    engine
}

fn writes(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let engine = open(dir.path());
    let value = [0xa5u8; VALUE_BYTES];
    let mut n = 0u64;

    let mut group = c.benchmark_group("storage_write");
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("put_unsynced", |b| {
        b.iter(|| {
            n += 1;
            engine.put(&key(n), &value).expect("put")
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch_100_unsynced", |b| {
        b.iter_batched(
            || {
                let mut batch = WriteBatch::new();
                for _ in 0..100 {
                    n += 1;
                    batch.put(&key(n), &value);
                }
                batch
            },
            |batch| engine.write(batch).expect("write"),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // Each iteration waits for an fdatasync: few samples, short.
    let mut group = c.benchmark_group("storage_write");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));
    group.bench_function("commit_1_synced", |b| {
        b.iter(|| {
            n += 1;
            let mut batch = WriteBatch::new();
            batch.put(&key(n), &value);
            engine
                .write_with(batch, Durability::Sync)
                .expect("sync write")
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch_100_synced", |b| {
        b.iter_batched(
            || {
                let mut batch = WriteBatch::new();
                for _ in 0..100 {
                    n += 1;
                    batch.put(&key(n), &value);
                }
                batch
            },
            |batch| {
                engine
                    .write_with(batch, Durability::Sync)
                    .expect("sync write")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    engine.close().expect("close");
}

fn reads(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage_read");
    group.measurement_time(Duration::from_secs(3));
    for (place, flushed) in [("memtable", false), ("segments", true)] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        let engine = loaded(dir.path(), flushed);
        let mut n = 0u64;
        group.bench_function(format!("get_hit_{place}"), |b| {
            b.iter(|| {
                n = (n + 1) % ENTRIES;
                black_box(engine.get(&key(n * 2)).expect("get"))
            })
        });
        group.bench_function(format!("get_miss_{place}"), |b| {
            b.iter(|| {
                n = (n + 1) % ENTRIES;
                black_box(engine.get(&key(n * 2 + 1)).expect("get"))
            })
        });
        group.bench_function(format!("scan_10_{place}"), |b| {
            b.iter(|| {
                n = (n + 1) % ENTRIES;
                let start = key(n * 2);
                let start: &[u8] = &start;
                let mut bytes = 0;
                for pair in engine
                    .range(start.., Direction::Forward, None)
                    .expect("range")
                    .take(10)
                {
                    let (k, v) = pair.expect("scan");
                    bytes += k.len() + v.len();
                }
                black_box(bytes)
            })
        });
        engine.close().expect("close");
    }
    group.finish();
}

criterion_group!(benches, writes, reads);
criterion_main!(benches);
