//! Engine behaviour through its public API: reads across flush, compaction
//! and reopen; snapshots; checkpoints; the directory lock; latched errors.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::{Engine, EngineOptions};
use crate::storage::batch::WriteBatch;
use crate::storage::compaction::CompactionOptions;
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::range::Direction;
use crate::storage::segment::SegmentOptions;
use crate::storage::sim::SimFileSystem;

mod crash;
mod files;
mod group;
mod model;
mod recycle;

/// Small sizes so a few hundred writes rotate, flush and compact.
pub(super) fn small_options() -> EngineOptions {
    let target = 4 * 1024;
    EngineOptions {
        memtable_bytes_max: 8 * 1024,
        compaction: CompactionOptions {
            l0_compaction_trigger_files: 2,
            level_base_bytes: 16 * 1024,
            target_file_size_bytes: target,
            compaction_input_bytes_max: 25 * target,
            ..CompactionOptions::default()
        },
        segment: SegmentOptions {
            block_size_bytes: 512,
            ..SegmentOptions::default()
        },
        background_threads: false,
        ..EngineOptions::default()
    }
}

pub(super) fn open_sim(fs: &SimFileSystem, options: EngineOptions) -> Result<Engine> {
    let fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    Engine::open_with(fs, "/db", options)
}

/// An engine with default options whose flushes and compactions run only
/// when a test asks, so the test decides when files appear.
fn open_foreground(fs: &SimFileSystem) -> Engine {
    open_sim(
        fs,
        EngineOptions {
            background_threads: false,
            ..EngineOptions::default()
        },
    )
    .expect("open")
}

pub(super) fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

fn value(i: u32, round: u32) -> Vec<u8> {
    format!("value-{i}-{round}-{}", "x".repeat((i % 7) as usize * 10)).into_bytes()
}

fn collect(iter: impl Iterator<Item = Result<(Bytes, Bytes)>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    iter.map(|pair| {
        let (k, v) = pair.expect("iteration failed");
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

/// Writes keys 0..n twice, deletes every third, and returns the expected map.
pub(super) fn fill(engine: &Engine, n: u32) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = std::collections::BTreeMap::new();
    for round in 0..2 {
        for i in 0..n {
            engine.put(&key(i), &value(i, round)).expect("put");
            model.insert(key(i), value(i, round));
        }
    }
    for i in (0..n).step_by(3) {
        engine.delete(&key(i)).expect("delete");
        model.remove(&key(i));
    }
    model
}

pub(super) fn check(engine: &Engine, model: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>, n: u32) {
    for i in 0..n {
        let got = engine.get(&key(i)).expect("get").map(|v| v.to_vec());
        assert_eq!(got, model.get(&key(i)).cloned(), "key {i}");
    }
    let expected: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let forward = collect(
        engine
            .range::<&[u8]>(.., Direction::Forward, None)
            .expect("range"),
    );
    assert_eq!(forward, expected);
    let mut reverse = collect(
        engine
            .range::<&[u8]>(.., Direction::Reverse, None)
            .expect("range"),
    );
    reverse.reverse();
    assert_eq!(reverse, expected);
    let low = key(n / 4);
    let high = key(n / 2);
    let bounded = collect(
        engine
            .range(low.as_slice()..high.as_slice(), Direction::Forward, None)
            .expect("range"),
    );
    let expected_bounded: Vec<_> = model
        .range(low.clone()..high.clone())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(bounded, expected_bounded);
}

#[test]
fn put_get_delete_and_ranges_hold_across_flush_compaction_and_reopen() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    let n = 400;
    let model = fill(&engine, n);
    check(&engine, &model, n);
    engine.flush().expect("flush");
    check(&engine, &model, n);
    assert!(engine.stats().flushes > 0);
    engine.compact().expect("compact");
    check(&engine, &model, n);
    let stats = engine.stats();
    assert!(stats.compactions + stats.trivial_moves > 0, "{stats:?}");
    // Compaction output was cut into several files of about the target size.
    let lower_files: usize = stats.levels.iter().skip(1).map(|level| level.files).sum();
    assert!(lower_files > 1, "{stats:?}");
    assert!(stats.write_amplification() > 0.0);
    assert!(stats.read_amplification() > 0.0);
    assert!(stats.space_amplification() >= 1.0);
    engine.verify().expect("verify");
    engine.close().expect("close");

    let engine = open_sim(&fs, small_options()).expect("reopen");
    check(&engine, &model, n);
    engine.verify().expect("verify after reopen");
}

#[test]
fn unflushed_writes_are_recovered_from_the_log() {
    let fs = SimFileSystem::new();
    let engine = open_foreground(&fs);
    engine.put(b"a", b"1").expect("put");
    let mut batch = WriteBatch::new();
    batch.put(b"b", b"2");
    batch.delete(b"a");
    engine.write(batch).expect("write");
    drop(engine);
    let engine = open_sim(&fs, EngineOptions::default()).expect("reopen");
    assert_eq!(engine.get(b"a").expect("get"), None);
    assert_eq!(
        engine.get(b"b").expect("get"),
        Some(Bytes::from_static(b"2"))
    );
    // The recovered memtable was flushed and its log deleted.
    assert_eq!(engine.stats().levels[0].files, 1);
}

#[test]
fn snapshots_keep_old_versions_across_flush_and_compaction() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    let n = 300;
    for i in 0..n {
        engine.put(&key(i), &value(i, 0)).expect("put");
    }
    let snapshot = engine.snapshot().expect("snapshot");
    let model = fill(&engine, n);
    engine.compact().expect("compact");
    for i in 0..n {
        let old = engine.get_at(&snapshot, &key(i)).expect("get_at");
        assert_eq!(old.map(|v| v.to_vec()), Some(value(i, 0)), "key {i}");
    }
    let old_range = collect(
        engine
            .range::<&[u8]>(.., Direction::Forward, Some(&snapshot))
            .expect("range"),
    );
    assert_eq!(old_range.len(), n as usize);
    check(&engine, &model, n);
    drop(snapshot);
    // Without the snapshot, a full compaction may drop the old versions.
    engine.compact().expect("compact");
    check(&engine, &model, n);
}

#[test]
fn prefix_iterates_only_matching_keys_in_both_directions() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    for k in [
        &b"a"[..],
        b"ab",
        b"abc",
        b"abd",
        b"ac",
        b"b",
        b"ab\xff",
        b"ab\xff\xff",
    ] {
        engine.put(k, k).expect("put");
    }
    engine.flush().expect("flush");
    engine.put(b"abz", b"abz").expect("put");
    let keys = |direction| {
        collect(engine.prefix(b"ab", direction, None).expect("prefix"))
            .into_iter()
            .map(|(k, _)| k)
            .collect::<Vec<_>>()
    };
    let forward = keys(Direction::Forward);
    let expected: Vec<Vec<u8>> = vec![
        b"ab".to_vec(),
        b"abc".to_vec(),
        b"abd".to_vec(),
        b"abz".to_vec(),
        b"ab\xff".to_vec(),
        b"ab\xff\xff".to_vec(),
    ];
    assert_eq!(forward, expected);
    let mut reverse = keys(Direction::Reverse);
    reverse.reverse();
    assert_eq!(reverse, expected);
}

#[test]
fn checkpoint_opens_with_the_same_data() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    let n = 250;
    let model = fill(&engine, n);
    engine.flush().expect("flush");
    engine.put(b"zz-in-log-only", b"tail").expect("put");
    engine.checkpoint("/copy").expect("checkpoint");
    engine.put(b"zz-after", b"later").expect("put");
    engine.compact().expect("compact after checkpoint");

    let copy_fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let copy = Engine::open_with(copy_fs, "/copy", small_options()).expect("open checkpoint");
    check(&copy, &model_with(&model, b"zz-in-log-only", b"tail"), n);
    assert_eq!(copy.get(b"zz-after").expect("get"), None);
    copy.verify().expect("verify checkpoint");
    assert!(matches!(
        engine.checkpoint("/copy"),
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn preallocated_logs_end_exactly_once_older_and_checkpoints_copy_what_was_written() {
    let fs = SimFileSystem::new();
    let options = small_options();
    let preallocated = options.memtable_bytes_max as u64;
    let engine = open_sim(&fs, options.clone()).expect("open");
    let mut model = std::collections::BTreeMap::new();
    let mut i = 0;
    // Until one memtable waits for its flush: its log is then older.
    while engine.stats().immutable_memtables == 0 {
        engine.put(&key(i), &value(i, 0)).expect("put");
        model.insert(key(i), value(i, 0));
        i += 1;
    }
    for _ in 0..3 {
        engine.put(&key(i), &value(i, 0)).expect("put");
        model.insert(key(i), value(i, 0));
        i += 1;
    }
    let logs = crate::storage::wal::list_logs(&fs, Path::new("/db")).expect("list");
    assert_eq!(logs.len(), 2, "{logs:?}");
    let log_len = |dir: &str, number| {
        fs.read(&crate::storage::wal::log_file_path(Path::new(dir), number))
            .expect("read")
            .len() as u64
    };
    let (older, newest) = (logs[0], logs[1]);
    assert!(
        log_len("/db", older) < preallocated,
        "the older log was not cut"
    );
    assert_eq!(log_len("/db", newest), preallocated);
    engine.verify().expect("verify");

    engine.checkpoint("/copy").expect("checkpoint");
    assert_eq!(log_len("/copy", older), log_len("/db", older));
    let copied = log_len("/copy", newest);
    assert!(copied > 0 && copied < preallocated, "{copied}");
    let copy_fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let copy = Engine::open_with(copy_fs, "/copy", options.clone()).expect("open checkpoint");
    check(&copy, &model, i);
    engine.close().expect("close");
    let engine = open_sim(&fs, options).expect("reopen");
    check(&engine, &model, i);
}

#[test]
fn a_checkpoint_does_not_wait_for_flushes_or_compactions() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    let model = fill(&engine, 250);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        // A long compaction step holds the work lock; the checkpoint must
        // not wait for it. (Held inside the scope, so a failure unwinds it
        // before the scope joins the checkpoint thread.)
        let work = engine.shared().work.lock();
        scope.spawn(|| done.send(engine.checkpoint("/copy")).expect("send"));
        let result = finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the checkpoint waited for the work lock");
        result.expect("checkpoint");
        drop(work);
    });
    let copy_fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let copy = Engine::open_with(copy_fs, "/copy", small_options()).expect("open checkpoint");
    check(&copy, &model, 250);
}

#[test]
fn a_pinned_version_keeps_its_segments_and_a_log_pin_keeps_its_logs() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    let model = fill(&engine, 250);
    engine.flush().expect("flush");
    let shared = Arc::clone(engine.shared());
    let (version, state) = shared.versions.pinned_state();
    let pinned_logs = {
        let mut pins = shared.log_pins.lock();
        pins.push(state.log_number);
        crate::storage::wal::list_logs(&fs, Path::new("/db")).expect("list")
    };
    let exists = |number| fs.exists(&super::segment_file_path(Path::new("/db"), number));
    // Rewrite everything: compaction replaces every pinned segment, the
    // flushes move the log number past every pinned log.
    for round in 1..=3 {
        for i in 0..250 {
            engine.put(&key(i), &value(i, round)).expect("put");
        }
        engine.compact().expect("compact");
    }
    let now = shared.versions.manifest_state();
    assert!(now.log_number > state.log_number);
    for file in &state.files {
        assert!(
            !now.files.iter().any(|f| f.number == file.number),
            "segment {} was not compacted away",
            file.number
        );
        assert!(
            exists(file.number),
            "pinned segment {} deleted",
            file.number
        );
    }
    let logs = crate::storage::wal::list_logs(&fs, Path::new("/db")).expect("list");
    for number in pinned_logs.iter().filter(|&&n| n >= state.log_number) {
        assert!(logs.contains(number), "pinned log {number} deleted");
    }
    // Linked while pinned, the old state still opens as the old data.
    fs.create_dir_all(Path::new("/old")).expect("mkdir");
    for file in &state.files {
        fs.hard_link(
            &super::segment_file_path(Path::new("/db"), file.number),
            &super::segment_file_path(Path::new("/old"), file.number),
        )
        .expect("link");
    }
    crate::storage::manifest::write(&fs, Path::new("/old"), &state).expect("manifest");
    let old_fs: Arc<dyn FileSystem> = Arc::new(fs.clone());
    let old = Engine::open_with(old_fs, "/old", small_options()).expect("open old state");
    check(&old, &model, 250);
    // Unpinned, the next deletion removes them.
    drop(version);
    shared.log_pins.lock().clear();
    engine.put(&key(0), &value(0, 9)).expect("put");
    engine.compact().expect("compact");
    for file in &state.files {
        assert!(
            !exists(file.number),
            "segment {} kept after unpinning",
            file.number
        );
    }
    // Every older log is gone but the one kept for reuse.
    let logs = crate::storage::wal::list_logs(&fs, Path::new("/db")).expect("list");
    let obsolete = logs
        .iter()
        .filter(|&&n| n < shared.versions.log_number())
        .count();
    assert!(obsolete <= super::LOG_RECYCLE_FILES_DEFAULT, "{logs:?}");
}

fn model_with(
    model: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>,
    key: &[u8],
    value: &[u8],
) -> std::collections::BTreeMap<Vec<u8>, Vec<u8>> {
    let mut model = model.clone();
    model.insert(key.to_vec(), value.to_vec());
    model
}

#[test]
fn a_second_open_of_a_directory_is_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(dir.path(), EngineOptions::default()).expect("open");
    engine.put(b"k", b"v").expect("put");
    assert!(matches!(
        Engine::open(dir.path(), EngineOptions::default()),
        Err(StorageError::Locked(_))
    ));
    engine.close().expect("close");
    assert!(matches!(engine.get(b"k"), Err(StorageError::Closed)));
    drop(engine);
    let engine = Engine::open(dir.path(), EngineOptions::default()).expect("reopen");
    assert_eq!(
        engine.get(b"k").expect("get"),
        Some(Bytes::from_static(b"v"))
    );

    let fs: Arc<dyn FileSystem> = Arc::new(SimFileSystem::new());
    let first = Engine::open_with(Arc::clone(&fs), "/db", small_options()).expect("open");
    assert!(matches!(
        Engine::open_with(Arc::clone(&fs), "/db", small_options()),
        Err(StorageError::Locked(_))
    ));
    drop(first);
    Engine::open_with(fs, "/db", small_options()).expect("open after drop");
}

#[test]
fn background_thread_flushes_and_compacts_without_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        background_threads: true,
        durability: crate::storage::commit::Durability::Buffered,
        ..small_options()
    };
    let engine = Engine::open(dir.path(), options).expect("open");
    let n = 600;
    let model = fill(&engine, n);
    engine.wait_for_background().expect("wait");
    check(&engine, &model, n);
    let stats = engine.stats();
    assert!(stats.flushes > 0, "{stats:?}");
    engine.close().expect("close");
    let engine = Engine::open(dir.path(), small_options()).expect("reopen");
    check(&engine, &model, n);
}

#[test]
fn a_failed_fsync_latches_the_engine() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    engine.put(b"a", b"1").expect("put");
    fs.fail_nth_data_sync(1);
    assert!(engine.put(b"b", b"2").is_err());
    fs.clear_faults();
    for result in [
        engine.put(b"c", b"3").map(|_| ()),
        engine.get(b"a").map(|_| ()),
        engine.flush(),
    ] {
        assert!(
            matches!(result, Err(StorageError::PreviousIo { .. })),
            "{result:?}"
        );
    }
}

#[test]
fn a_failed_flush_latches_the_engine() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    engine.put(b"a", b"1").expect("put");
    fs.fail_nth_dir_sync(1);
    assert!(engine.flush().is_err());
    fs.clear_faults();
    assert!(matches!(
        engine.put(b"c", b"3"),
        Err(StorageError::PreviousIo { .. })
    ));
}

#[test]
fn leftover_segments_are_deleted_on_open() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    engine.put(b"a", b"1").expect("put");
    engine.close().expect("close");
    drop(engine);
    let stray = Path::new("/db/999999.seg");
    fs.write_durable(stray, b"half a segment")
        .expect("write stray");
    let engine = open_sim(&fs, small_options()).expect("reopen");
    assert!(!FileSystem::exists(&fs, stray));
    assert_eq!(
        engine.get(b"a").expect("get"),
        Some(Bytes::from_static(b"1"))
    );
    // The stray's number is never reused.
    engine.put(b"b", b"2").expect("put");
    engine.flush().expect("flush");
}

#[test]
fn corrupt_segment_is_reported_with_file_and_offset() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    for i in 0..50 {
        engine.put(&key(i), &value(i, 0)).expect("put");
    }
    engine.flush().expect("flush");
    engine.close().expect("close");
    drop(engine);
    let names = FileSystem::list_dir(&fs, Path::new("/db")).expect("list");
    let segment = names
        .iter()
        .find(|name| name.ends_with(".seg"))
        .expect("a segment");
    fs.corrupt(&Path::new("/db").join(segment), 10, b"garbage")
        .expect("corrupt");
    let engine = open_sim(&fs, small_options()).expect("reopen");
    match engine.verify() {
        Err(StorageError::Corruption { file, .. }) => assert!(file.ends_with(segment)),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn writers_slow_down_as_the_last_allowed_memtable_fills_before_they_stop() {
    let fs = SimFileSystem::new();
    let mut options = small_options();
    // Slow enough that one batch's delay shows in whole microseconds (the
    // delays add up to about 25 ms of sleep).
    options.compaction.memtable_slowdown_bytes_per_s = 64 << 10;
    let engine = open_sim(&fs, options).expect("open");
    let batch = vec![7u8; 100];
    let mut i = 0;
    let mut put = |engine: &Engine| {
        engine.put(&key(i), &batch).expect("put");
        i += 1;
    };
    while engine.stats().immutable_memtables == 0 {
        put(&engine);
    }
    let stats = engine.stats();
    assert_eq!((stats.write_slowdowns, stats.write_stops), (0, 0));
    // One memtable waits (no background thread flushes it): once the
    // active one is half full each batch is delayed, more as it fills, and
    // none stops yet.
    let mut delays = Vec::new();
    while engine.stats().immutable_memtables == 1 {
        let before = engine.stats().write_slowdown_us;
        put(&engine);
        delays.push(engine.stats().write_slowdown_us - before);
    }
    let stats = engine.stats();
    assert_eq!(stats.write_stops, 0, "{stats:?}");
    assert!(delays.len() > 10, "{delays:?}");
    assert!(
        delays.windows(2).all(|pair| pair[0] <= pair[1]),
        "{delays:?}"
    );
    let delayed = delays.iter().filter(|&&d| d > 0).count();
    assert!(delayed > 5 && delayed < delays.len(), "{delays:?}");
    let last = *delays.last().unwrap_or(&0);
    assert!(delays[delays.len() - delayed] < last / 10, "{delays:?}");
    assert_eq!(stats.write_slowdowns, delayed as u64, "{stats:?}");
    // Now two wait: the next batch stops (and, with no background thread,
    // flushes them itself).
    put(&engine);
    let stats = engine.stats();
    assert_eq!(stats.write_stops, 1, "{stats:?}");
    assert_eq!(stats.immutable_memtables, 0, "{stats:?}");
}

#[test]
fn a_compaction_flushes_waiting_memtables_between_its_output_files() {
    let fs = SimFileSystem::new();
    // Memtables large enough that the setup rotates only when asked.
    let options = EngineOptions {
        memtable_bytes_max: 64 << 10,
        ..small_options()
    };
    let engine = open_sim(&fs, options.clone()).expect("open");
    let mut model = std::collections::BTreeMap::new();
    let mut i = 0;
    // Even keys, then odd ones, by 150s.
    let mut put = |engine: &Engine, model: &mut std::collections::BTreeMap<_, _>| {
        let k = (i * 2 + i / 150) % 300;
        engine.put(&key(k), &value(i, 1)).expect("put");
        model.insert(key(k), value(i, 1));
        i += 1;
    };
    // Every key in L1 first, so no L0 file can move down without a merge.
    for _ in 0..300 {
        put(&engine, &mut model);
    }
    engine.compact().expect("compact");
    assert_eq!(engine.stats().levels[0].files, 0);
    // Two L0 files: an L0 compaction is due (the trigger is 2).
    for _ in 0..2 {
        for _ in 0..150 {
            put(&engine, &mut model);
        }
        engine.flush().expect("flush");
    }
    assert_eq!(engine.stats().levels[0].files, 2);
    // A memtable waits for its flush (nothing runs in the background).
    while engine.stats().immutable_memtables == 0 {
        put(&engine, &mut model);
    }
    let before = engine.stats();
    assert!(engine.shared().run_one_compaction().expect("compact"));
    let after = engine.stats();
    assert!(
        after.compaction_write_bytes > 4 * 4096,
        "one output only: {after:?}"
    );
    assert_eq!(after.immutable_memtables, 0, "{after:?}");
    assert_eq!(after.flushes, before.flushes + 1, "{after:?}");
    // The compacted files left L0; the flushed one is there, read first.
    assert_eq!(after.levels[0].files, 1, "{after:?}");
    check(&engine, &model, 300);
    engine.close().expect("close");
    let engine = open_sim(&fs, options).expect("reopen");
    check(&engine, &model, 300);
    engine.verify().expect("verify");
}

#[test]
fn writers_are_slowed_before_they_are_stopped() {
    let fs = SimFileSystem::new();
    let mut options = small_options();
    options.compaction.l0_compaction_trigger_files = 1;
    options.compaction.l0_slowdown_writes_files = 2;
    options.compaction.l0_stop_writes_files = 4;
    options.compaction.write_delay_max_us = 100;
    let engine = open_sim(&fs, options).expect("open");
    // Every file holds `shared`, so each flush deepens L0 by one.
    let l0_files_after_flush = |i: u32| {
        let mut batch = WriteBatch::new();
        batch.put(&key(i), b"v");
        batch.put(b"shared", b"v");
        engine.write(batch).expect("write");
        engine.flush().expect("flush");
        engine.stats().levels[0].files
    };
    assert_eq!(l0_files_after_flush(0), 1);
    assert_eq!(l0_files_after_flush(1), 2);
    assert_eq!(l0_files_after_flush(2), 3);
    let stats = engine.stats();
    assert_eq!((stats.write_slowdowns, stats.write_stops), (0, 0));
    // With 3 L0 files (between 2 and 4) the next write is delayed.
    assert_eq!(l0_files_after_flush(3), 4);
    let stats = engine.stats();
    assert_eq!(
        (stats.write_slowdowns, stats.write_stops),
        (1, 0),
        "{stats:?}"
    );
    assert!(stats.write_slowdown_us > 0);
    // At the stop threshold the writer waits; without a background thread
    // it runs the compaction itself.
    engine.put(b"after-stop", b"v").expect("put");
    let stats = engine.stats();
    assert_eq!(stats.write_stops, 1, "{stats:?}");
    assert!(stats.levels[0].files < 4, "{stats:?}");
    for i in 0..4 {
        assert_eq!(
            engine.get(&key(i)).expect("get"),
            Some(Bytes::from_static(b"v"))
        );
    }
}

#[test]
fn data_without_a_manifest_is_refused() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    engine.put(b"a", b"1").expect("put");
    engine.flush().expect("flush");
    engine.close().expect("close");
    drop(engine);
    FileSystem::remove_file(&fs, Path::new("/db/MANIFEST")).expect("remove manifest");
    assert!(matches!(
        open_sim(&fs, small_options()),
        Err(StorageError::Corruption { .. })
    ));
}

#[test]
fn concurrent_writers_and_readers_see_every_acknowledged_write() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<Engine>();
    const WRITERS: u32 = 4;
    const KEYS_PER_WRITER: u32 = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        background_threads: true,
        durability: crate::storage::commit::Durability::Buffered,
        ..small_options()
    };
    let engine = Engine::open(dir.path(), options).expect("open");
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let engine = engine.clone();
            scope.spawn(move || {
                for i in 0..KEYS_PER_WRITER {
                    let k = format!("w{writer}-{i:05}").into_bytes();
                    engine.put(&k, &k).expect("put");
                    // Read-your-writes while flushes and compactions run.
                    assert_eq!(engine.get(&k).expect("get").as_deref(), Some(k.as_slice()));
                }
            });
        }
        let reader = engine.clone();
        scope.spawn(move || {
            for _ in 0..20 {
                let snapshot = reader.snapshot().expect("snapshot");
                let count = reader
                    .range::<&[u8]>(.., Direction::Forward, Some(&snapshot))
                    .expect("range")
                    .collect::<Result<Vec<_>>>()
                    .expect("iterate")
                    .len();
                // Every pair is one put; a snapshot sees a prefix of each
                // writer's puts, never more than were written.
                assert!(count <= (WRITERS * KEYS_PER_WRITER) as usize);
            }
        });
    });
    engine.wait_for_background().expect("wait");
    let all = engine
        .range::<&[u8]>(.., Direction::Forward, None)
        .expect("range")
        .collect::<Result<Vec<_>>>()
        .expect("iterate")
        .len();
    assert_eq!(all, (WRITERS * KEYS_PER_WRITER) as usize);
    engine.verify().expect("verify");
}

#[test]
fn in_memory_engine_writes_no_log_but_reads_across_rotation() {
    let fs = SimFileSystem::new();
    let options = EngineOptions {
        durability: crate::storage::commit::Durability::InMemory,
        ..small_options()
    };
    let engine = open_sim(&fs, options).expect("open");
    let n = 300;
    let model = fill(&engine, n);
    engine.compact().expect("compact");
    check(&engine, &model, n);
    let names = FileSystem::list_dir(&fs, Path::new("/db")).expect("list");
    assert!(
        !names.iter().any(|name| name.ends_with(".log")),
        "{names:?}"
    );
}

#[test]
fn damage_inside_a_log_is_corruption_at_open() {
    let fs = SimFileSystem::new();
    let engine = open_foreground(&fs);
    for i in 0..20 {
        engine.put(&key(i), &value(i, 0)).expect("put");
    }
    engine.close().expect("close");
    drop(engine);
    let names = FileSystem::list_dir(&fs, Path::new("/db")).expect("list");
    let log = names
        .iter()
        .find(|name| name.ends_with(".log"))
        .expect("a log");
    // Damage the first record; valid records follow, so it is no torn tail.
    fs.corrupt(&Path::new("/db").join(log), 10, b"\xde\xad")
        .expect("corrupt");
    match open_sim(&fs, EngineOptions::default()) {
        Err(StorageError::Corruption { file, .. }) => assert!(file.ends_with(log)),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn checkpoint_during_writes_is_a_prefix_of_them() {
    const PUTS: u32 = 1_500;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = EngineOptions {
        background_threads: true,
        ..small_options()
    };
    let engine = Engine::open(dir.path().join("db"), options).expect("open");
    let acknowledged_before = std::thread::scope(|scope| {
        let writer = engine.clone();
        let writes = scope.spawn(move || {
            for i in 0..PUTS {
                writer.put(&key(i), &value(i, 0)).expect("put");
            }
        });
        while engine.stats().last_sequence < u64::from(PUTS / 3) {
            std::thread::yield_now();
        }
        let acknowledged_before = engine.stats().last_sequence;
        engine
            .checkpoint(dir.path().join("copy"))
            .expect("checkpoint");
        writes.join().expect("writer");
        acknowledged_before
    });
    let copy = Engine::open(dir.path().join("copy"), small_options()).expect("open copy");
    let keys: Vec<_> = collect(
        copy.range::<&[u8]>(.., Direction::Forward, None)
            .expect("range"),
    )
    .into_iter()
    .map(|(k, _)| k)
    .collect();
    let expected: Vec<_> = (0..keys.len() as u32).map(key).collect();
    assert_eq!(keys, expected, "the copy is not a prefix of the writes");
    assert!(keys.len() as u64 >= acknowledged_before);
    copy.verify().expect("verify copy");
}
