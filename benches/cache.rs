//! Criterion benchmarks of nimbus's `Cache` alone: get hit, get miss,
//! insert (with eviction), and Zipf(0.99) 90 % reads with 1 and 2 threads.
//! Comparisons with moka and quick_cache are in `benches/peers` (`cache`).

// A bench: a failure should stop it loudly; criterion_group! generates undocumented items.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use nimbus::cache::Cache;

const ENTRIES: u64 = 100_000;
const ZIPF_KEYS: u64 = 1_000_000;

fn full_cache() -> Cache<u64, u64> {
    let cache = Cache::builder()
        .max_bytes(ENTRIES * (16 + nimbus::cache::ENTRY_OVERHEAD_BYTES))
        .weigher(|_, _| 16)
        .build();
    for key in 0..ENTRIES {
        cache.insert(key, key).unwrap();
    }
    cache
}

/// xorshift64: cheap and deterministic, so the generator is not measured.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Zipf(0.99) ranks over `ZIPF_KEYS` by inverting the CDF table (built once).
fn zipf_keys(count: usize, seed: u64) -> Vec<u64> {
    let weights: Vec<f64> = (1..=ZIPF_KEYS)
        .map(|r| 1.0 / (r as f64).powf(0.99))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut sum = 0.0;
    for w in weights {
        sum += w / total;
        cdf.push(sum);
    }
    let mut state = seed | 1;
    (0..count)
        .map(|_| {
            let u = (next(&mut state) >> 11) as f64 / (1u64 << 53) as f64;
            cdf.partition_point(|&c| c < u) as u64
        })
        .collect()
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache");
    group.throughput(Throughput::Elements(1));
    let cache = full_cache();
    let mut state = 7;
    group.bench_function("get_hit", |b| {
        b.iter(|| black_box(cache.get(&(next(&mut state) % ENTRIES))))
    });
    group.bench_function("get_miss", |b| {
        b.iter(|| black_box(cache.get(&(ENTRIES + next(&mut state) % ENTRIES))))
    });
    group.bench_function("insert_evicting", |b| {
        b.iter(|| {
            let key = next(&mut state);
            cache.insert(key, key).unwrap();
        })
    });
    group.finish();
}

fn zipf_mixed(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_zipf_90_read");
    let ops = zipf_keys(1 << 20, 11);
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter_custom(|iters| {
                let cache = full_cache();
                let barrier = Barrier::new(threads);
                let elapsed: Vec<Duration> = std::thread::scope(|scope| {
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let (cache, barrier, ops) = (&cache, &barrier, &ops);
                            scope.spawn(move || {
                                barrier.wait();
                                let start = Instant::now();
                                for i in 0..iters as usize {
                                    let key = ops[(i * 7 + t * 131) % ops.len()];
                                    if i % 10 == 0 {
                                        cache.insert(key, key).unwrap();
                                    } else {
                                        black_box(cache.get(&key));
                                    }
                                }
                                start.elapsed()
                            })
                        })
                        .collect();
                    handles.into_iter().map(|h| h.join().unwrap()).collect()
                });
                elapsed.into_iter().max().unwrap_or_default()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, single_thread, zipf_mixed);
criterion_main!(benches);
