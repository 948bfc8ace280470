//! Criterion benchmarks of nimbus's object store alone: PUT and GET of
//! 4 KiB objects (inline) with `Buffered` durability, PUT of a 4 KiB
//! object with `Sync`, PUT and GET of a large object (chunked, BLAKE3,
//! pack files), and the chunker plus hashing on their own. Comparisons with
//! `object_store`'s LocalFileSystem and plain files are in `benches/peers`
//! (`--bin objects`).
//!
//! `NIMBUS_BENCH_QUICK=1` shrinks the large object from 64 MiB to 8 MiB
//! and the measurement times, for a development run.

// A bench: a failure should stop it loudly; criterion_group! generates undocumented items.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nimbus::storage::Durability;
use nimbus::storage::sim::SimRng;
use nimbus::{Database, DatabaseOptions};

fn quick() -> bool {
    std::env::var_os("NIMBUS_BENCH_QUICK").is_some_and(|v| v != "0")
}

fn large_bytes() -> usize {
    if quick() { 8 << 20 } else { 64 << 20 }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    SimRng::new(seed).fill(&mut data);
    data
}

fn open(dir: &std::path::Path, durability: Durability) -> Database {
    let db = Database::open_with(dir, DatabaseOptions::default().durability(durability)).unwrap();
    db.objects().create_bucket("bench").send().unwrap();
    db
}

fn small_objects(c: &mut Criterion) {
    let mut group = c.benchmark_group("objects_4k");
    group.throughput(Throughput::Elements(1));
    if quick() {
        group.measurement_time(Duration::from_secs(2));
    }
    let body = bytes::Bytes::from(random_bytes(4096, 1));
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Durability::Buffered);
    let s3 = db.objects();
    let mut n = 0u64;
    group.bench_function("put_buffered", |b| {
        b.iter(|| {
            n += 1;
            s3.put_object("bench", format!("k{:06}", n % 10_000))
                .body(body.clone())
                .send()
                .unwrap()
        })
    });
    for i in 0..10_000 {
        s3.put_object("bench", format!("k{i:06}"))
            .body(body.clone())
            .send()
            .unwrap();
    }
    let mut i = 0u64;
    group.bench_function("get", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            let out = s3.get_object("bench", format!("k{i:06}")).send().unwrap();
            black_box(out.body.collect().unwrap())
        })
    });
    group.bench_function("head", |b| {
        b.iter(|| {
            i = (i + 7919) % 10_000;
            black_box(s3.head_object("bench", format!("k{i:06}")).send().unwrap())
        })
    });
    drop(db);
    let sync_dir = tempfile::tempdir().unwrap();
    let db = open(sync_dir.path(), Durability::Sync);
    let s3 = db.objects();
    group.sample_size(20);
    group.bench_function("put_sync", |b| {
        b.iter(|| {
            n += 1;
            s3.put_object("bench", format!("k{n}"))
                .body(body.clone())
                .send()
                .unwrap()
        })
    });
    group.finish();
}

fn large_objects(c: &mut Criterion) {
    let len = large_bytes();
    let mut group = c.benchmark_group("objects_large");
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(10);
    if quick() {
        group.measurement_time(Duration::from_secs(3));
    }
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), Durability::Sync);
    let s3 = db.objects();
    // A fresh body per iteration, so dedup does not turn the PUT into a no-op.
    let mut seed = 0u64;
    let bodies: Vec<bytes::Bytes> = (0..2).map(|s| random_bytes(len, 100 + s).into()).collect();
    group.bench_function("put_sync_fresh_bytes", |b| {
        b.iter_batched(
            || {
                seed += 1;
                let mut body = bodies[(seed % 2) as usize].to_vec();
                // Rewrite the first 8 bytes of every 64 KiB: every chunk is new.
                for (index, chunk) in body.chunks_mut(64 * 1024).enumerate() {
                    chunk[..8].copy_from_slice(&(seed * 1_000_003 + index as u64).to_le_bytes());
                }
                bytes::Bytes::from(body)
            },
            |body| s3.put_object("bench", "large").body(body).send().unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    group.bench_function("put_sync_deduplicated", |b| {
        b.iter(|| {
            s3.put_object("bench", "dup")
                .body(bodies[0].clone())
                .send()
                .unwrap()
        })
    });
    group.bench_function("get", |b| {
        b.iter(|| {
            let mut body = s3.get_object("bench", "dup").send().unwrap().body;
            let mut total = 0;
            while let Some(piece) = body.next_bytes() {
                total += piece.unwrap().len();
            }
            assert_eq!(total, len);
        })
    });
    group.finish();
    drop(db);
    // Deleted bodies leave pack files behind until gc(); the temporary
    // directory goes with them.
}

criterion_group!(benches, small_objects, large_objects);
criterion_main!(benches);
