//! Group commit through the engine: concurrent `Sync` writers share log
//! syncs (the queue's own tests check that a lone writer never gathers).

use std::time::Duration;

use super::{open_sim, small_options};
use crate::storage::engine::EngineOptions;
use crate::storage::sim::SimFileSystem;

/// A disk whose flush takes as long as a slow SSD's, so the gathering
/// window (half the measured sync time) dwarfs thread wake-up jitter.
const SYNC_LATENCY: Duration = Duration::from_millis(2);
const COMMITS_PER_WRITER: u32 = 40;

fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes_max: 1 << 20,
        ..small_options()
    }
}

#[test]
fn two_sync_writers_in_a_loop_share_most_syncs() {
    let fs = SimFileSystem::new();
    fs.set_sync_latency(SYNC_LATENCY);
    let engine = open_sim(&fs, options()).expect("open");
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let engine = engine.clone();
            scope.spawn(move || {
                for i in 0..COMMITS_PER_WRITER {
                    let key = format!("w{writer}-{i:04}");
                    engine.put(key.as_bytes(), b"v").expect("put");
                }
            });
        }
    });
    let stats = engine.stats();
    assert_eq!(stats.write_batches, u64::from(2 * COMMITS_PER_WRITER));
    // Without gathering each sync carries one batch (each writer returns
    // just after the other's group started); with it, nearly two.
    let per_sync = stats.write_batches as f64 / stats.log_syncs as f64;
    assert!(per_sync >= 1.5, "{per_sync:.2} batches per sync: {stats:?}");
}

#[test]
fn a_lone_sync_writer_syncs_once_per_commit() {
    let fs = SimFileSystem::new();
    fs.set_sync_latency(SYNC_LATENCY);
    let engine = open_sim(&fs, options()).expect("open");
    for i in 0..COMMITS_PER_WRITER {
        engine
            .put(format!("k{i:04}").as_bytes(), b"v")
            .expect("put");
    }
    let stats = engine.stats();
    assert_eq!(stats.commit_groups, u64::from(COMMITS_PER_WRITER));
    assert_eq!(stats.log_syncs, u64::from(COMMITS_PER_WRITER));
}
