//! Benchmarks of segment files: building one of 100k entries (16-byte keys,
//! 100-byte values), point reads that hit and miss, and 10-entry range
//! scans, through the memory map and through `pread` with a block cache.
//! They catch gross slowness; the target for the engine is at least 1M
//! cached point reads per second per thread.
// `criterion_group!` defines undocumented public functions, and a bench
// that cannot set up has nothing to measure, so it may panic.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use nimbus::storage::fs::OsFileSystem;
use nimbus::storage::segment::bench::{BenchSegment, build_segment};

#[path = "common/data.rs"]
mod data;
use data::mix;

const ENTRIES: u64 = 100_000;
const VALUE_BYTES: usize = 100;
const BLOCK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A 16-byte key; odd `n` never appear in the segment (misses).
fn key(n: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&mix(n).to_be_bytes());
    key[8..].copy_from_slice(&n.to_be_bytes());
    key
}

fn sorted_keys() -> Vec<[u8; 16]> {
    let mut keys: Vec<_> = (0..ENTRIES).map(|i| key(i * 2)).collect();
    keys.sort_unstable();
    keys
}

fn segments(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let fs = OsFileSystem::default();
    let keys = sorted_keys();
    let value = [0x5au8; VALUE_BYTES];
    let entries = || keys.iter().map(|k| (k.as_slice(), value.as_slice()));
    let path = dir.path().join("read.seg");
    build_segment(&fs, &path, entries()).expect("build");

    let mut group = c.benchmark_group("segment");
    group.sample_size(10);
    let build_path = dir.path().join("build.seg");
    group.bench_function("build_100k", |b| {
        b.iter(|| build_segment(&fs, &build_path, entries()).expect("build"))
    });
    group.finish();

    let mapped = BenchSegment::open(&fs, &path, None).expect("open mapped");
    let pread = BenchSegment::open(&OsFileSystem::new(false), &path, Some(BLOCK_CACHE_BYTES))
        .expect("open pread");
    let mut group = c.benchmark_group("segment");
    for (name, segment) in [("mmap", &mapped), ("pread_cached", &pread)] {
        let mut n = 0u64;
        group.bench_function(format!("get_hit_{name}"), |b| {
            b.iter(|| {
                n = (n + 1) % ENTRIES;
                black_box(segment.get(&key(n * 2)).expect("get"))
            })
        });
        group.bench_function(format!("get_miss_{name}"), |b| {
            b.iter(|| {
                n = (n + 1) % ENTRIES;
                black_box(segment.get(&key(n * 2 + 1)).expect("get"))
            })
        });
        group.bench_function(format!("scan_10_{name}"), |b| {
            b.iter(|| {
                n = (n + 1) % ENTRIES;
                black_box(segment.scan(&key(n * 2), 10).expect("scan"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, segments);
criterion_main!(benches);
