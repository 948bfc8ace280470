//! Log recycling in the engine: a flushed log is kept and becomes a later
//! log, and every acknowledged write survives reopening and power loss.

use std::collections::BTreeMap;
use std::path::Path;

use super::{check, key, open_sim, small_options};
use crate::storage::engine::EngineOptions;
use crate::storage::sim::SimFileSystem;
use crate::storage::wal::{list_logs, log_file_path};

fn value(i: u32) -> Vec<u8> {
    format!("value-{i}-{}", "x".repeat(40)).into_bytes()
}

/// Whether the current log holds bytes of an earlier life past its records
/// (a new log holds only preallocated zeros there).
fn current_log_is_reused(fs: &SimFileSystem, engine: &crate::storage::engine::Engine) -> bool {
    let Some((number, written)) = engine.shared().pipeline().expect("open").log_written() else {
        return false;
    };
    let image = fs
        .read(&log_file_path(Path::new("/db"), number))
        .expect("read");
    image
        .get(written as usize..)
        .is_some_and(|tail| tail.iter().any(|&b| b != 0))
}

#[test]
fn flushed_logs_are_reused_and_every_write_survives_reopen_and_power_loss() {
    let fs = SimFileSystem::new();
    let options = small_options();
    assert_eq!(options.log_recycle_files, 1);
    let engine = open_sim(&fs, options.clone()).expect("open");
    let mut model = BTreeMap::new();
    let mut reused = 0;
    for i in 0..3_000u32 {
        engine.put(&key(i), &value(i)).expect("put");
        model.insert(key(i), value(i));
        if i % 50 == 0 {
            engine.flush().expect("flush");
            reused += usize::from(current_log_is_reused(&fs, &engine));
            let logs = list_logs(&fs, Path::new("/db")).expect("list");
            let live = engine.shared().versions.log_number();
            let kept = logs.iter().filter(|&&n| n < live).count();
            assert!(kept <= 1, "logs {logs:?}, live from {live}");
        }
    }
    assert!(reused > 10, "only {reused} reused logs seen");
    engine.close().expect("close");
    let engine = open_sim(&fs, options.clone()).expect("reopen");
    check(&engine, &model, 3_000);

    // Sync writes into a reused log, then power loss at once.
    for i in 3_000..3_400u32 {
        engine.put(&key(i), &value(i)).expect("put");
        model.insert(key(i), value(i));
    }
    assert!(current_log_is_reused(&fs, &engine));
    drop(engine);
    for seed in 0..20 {
        fs.crash(seed);
        let engine = open_sim(&fs, options.clone()).expect("open after power loss");
        check(&engine, &model, 3_400);
        engine.close().expect("close");
    }
}

#[test]
fn with_recycling_off_every_obsolete_log_is_deleted() {
    let fs = SimFileSystem::new();
    let options = EngineOptions {
        log_recycle_files: 0,
        ..small_options()
    };
    let engine = open_sim(&fs, options).expect("open");
    for i in 0..1_000u32 {
        engine.put(&key(i), &value(i)).expect("put");
        if i % 50 == 0 {
            engine.flush().expect("flush");
            assert!(!current_log_is_reused(&fs, &engine));
            let live = engine.shared().versions.log_number();
            let logs = list_logs(&fs, Path::new("/db")).expect("list");
            assert!(logs.iter().all(|&n| n >= live), "{logs:?}");
        }
    }
}
