//! Loom models of the cache's hand-written concurrency: the global budget
//! reservation with cross-shard eviction, hits racing writes on one entry,
//! and single-flight loading (including a panicking loader).
//!
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib cache::`

use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// Entries weigh 16 + overhead; the budget holds two.
fn two_entry_cache(shards: usize) -> Cache<u64, u64> {
    Cache::builder()
        .max_bytes(2 * (16 + ENTRY_OVERHEAD_BYTES))
        .weigher(|_, _| 16)
        .shards(shards)
        .clock(ManualClock::new())
        .build()
}

/// The shard of `key` in a two-shard cache (loom's hasher is fixed).
fn cache_shard(key: u64) -> usize {
    let probe = two_entry_cache(2);
    probe.shard_of(probe.hash_key(&key))
}

/// Two shards, budget for two entries, two writers of new keys racing: each
/// may have to evict from the other's shard. No deadlock, the budget is
/// never exceeded, and the byte counter matches the entries.
#[test]
fn cache_loom_reservations_across_shards_keep_the_budget() {
    loom::model(|| {
        let cache = Arc::new(two_entry_cache(2));
        // Both resident entries in shard 0; one writer's key in shard 0, the
        // other's in shard 1, which is empty and must evict from shard 0.
        let in_shard = |shard: usize| {
            (0u64..)
                .filter(move |k| cache_shard(*k) == shard)
                .take(3)
                .collect::<Vec<_>>()
        };
        let (zero, one) = (in_shard(0), in_shard(1));
        cache.insert(zero[0], 0).unwrap();
        cache.insert(zero[1], 0).unwrap();
        let writers: Vec<_> = [zero[2], one[0]]
            .into_iter()
            .map(|key| {
                let cache = Arc::clone(&cache);
                loom::thread::spawn(move || {
                    cache.insert(key, key).unwrap();
                    assert!(cache.bytes_used() <= cache.max_bytes());
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert!(cache.bytes_used() <= cache.max_bytes());
        assert_eq!(cache.bytes_used(), cache.shard_bytes());
        assert_eq!(
            cache.len() as u64 * (16 + ENTRY_OVERHEAD_BYTES),
            cache.bytes_used()
        );
    });
}

/// A reader hitting an entry races a writer replacing it and a remover:
/// the reader sees the old value, the new one, or nothing, never anything
/// else, and the accounting ends exact.
#[test]
fn cache_loom_hits_race_replacement_and_removal() {
    loom::model(|| {
        let cache = Arc::new(two_entry_cache(1));
        cache.insert(1, 100).unwrap();
        let reader = {
            let cache = Arc::clone(&cache);
            loom::thread::spawn(move || {
                let seen = cache.get(&1);
                assert!(matches!(seen, None | Some(100) | Some(200)), "{seen:?}");
            })
        };
        let writer = {
            let cache = Arc::clone(&cache);
            loom::thread::spawn(move || {
                cache.insert(1, 200).unwrap();
            })
        };
        cache.remove(&1);
        reader.join().unwrap();
        writer.join().unwrap();
        let left = cache.get(&1);
        assert!(matches!(left, None | Some(200)), "{left:?}");
        assert_eq!(cache.bytes_used(), cache.shard_bytes());
    });
}

/// Two callers miss on one key at once: the loader runs once and both get
/// its value.
#[test]
fn cache_loom_single_flight_runs_one_loader() {
    loom::model(|| {
        let cache = Arc::new(two_entry_cache(1));
        let runs = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let cache = Arc::clone(&cache);
                let runs = Arc::clone(&runs);
                loom::thread::spawn(move || {
                    cache.get_or_load(7, |_| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, ()>(70)
                    })
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.join().unwrap(), Ok(70));
        }
        // A second caller that arrives after the first landed hits the
        // cache instead of loading; either way the value is loaded once.
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get(&7), Some(70));
    });
}

/// A loader error reaches the waiter and is not cached; a panicking
/// loader releases its waiter, which then loads for itself.
#[test]
fn cache_loom_errors_and_panics_release_waiters() {
    loom::model(|| {
        let cache = Arc::new(two_entry_cache(1));
        let failing = {
            let cache = Arc::clone(&cache);
            loom::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    cache.get_or_load(1, |_| -> Result<u64, u8> { panic!("loader bug") })
                }));
                // Either this caller led (and panicked) or it waited on the
                // other caller's load and got its error or value.
                match outcome {
                    Err(_) | Ok(Err(3)) | Ok(Ok(5)) => {}
                    Ok(other) => panic!("unexpected {other:?}"),
                }
            })
        };
        let erring = cache.get_or_load(1, |_| Err::<u64, u8>(3));
        assert!(matches!(erring, Err(3)), "{erring:?}");
        failing.join().unwrap();
        assert_eq!(
            cache.get(&1),
            None,
            "neither an error nor a panic is cached"
        );
        assert_eq!(cache.get_or_load(1, |_| Ok::<u64, u8>(5)), Ok(5));
    });
}
