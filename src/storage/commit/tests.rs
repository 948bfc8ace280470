//! Tests of the commit pipeline: sequence numbers, durability modes,
//! terminal errors, log switching, concurrency and crash recovery.

use std::path::Path;
use std::sync::{Arc, Barrier, OnceLock, Weak};

use super::*;
use crate::storage::sim::SimFileSystem;
use crate::storage::wal::{list_logs, log_file_path, recovery};

mod crash;
mod recycle;

fn dir() -> &'static Path {
    Path::new("/db")
}

fn disk() -> SimFileSystem {
    let fs = SimFileSystem::new();
    fs.create_dir_all(dir()).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

fn options(durability: Durability) -> CommitOptions {
    CommitOptions {
        durability,
        // Long enough never to fire during a test: rounds are triggered.
        background_sync_interval: BACKGROUND_SYNC_INTERVAL_MAX,
        ..CommitOptions::default()
    }
}

/// Everything the apply callback saw.
type Applied = Arc<parking_lot::Mutex<Vec<CommittedBatch>>>;

fn recording_apply() -> (ApplyFn, Applied) {
    let applied: Applied = Arc::default();
    let sink = Arc::clone(&applied);
    let apply: ApplyFn = Box::new(move |group| {
        sink.lock().extend_from_slice(group);
        Ok(())
    });
    (apply, applied)
}

fn open(fs: &SimFileSystem, durability: Durability) -> (CommitPipeline, Applied) {
    let (apply, applied) = recording_apply();
    let pipeline = CommitPipeline::open(
        Arc::new(fs.clone()),
        dir(),
        1,
        0,
        options(durability),
        apply,
    )
    .unwrap();
    (pipeline, applied)
}

fn batch(key: &[u8], entries: usize) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for i in 0..entries {
        batch.put(key, &[i as u8; 10]);
    }
    batch
}

/// Replays every log in `dir` (after a crash, say) into (first_seq, batch).
fn replay_dir(fs: &SimFileSystem) -> Vec<(SequenceNumber, WriteBatch)> {
    replay_dir_from(fs, 0)
}

/// Replays the logs in `dir` numbered `from` or later (the older ones are
/// obsolete, as after a flush) into (first_seq, batch).
fn replay_dir_from(fs: &SimFileSystem, from: FileNumber) -> Vec<(SequenceNumber, WriteBatch)> {
    let logs: Vec<FileNumber> = list_logs(fs, dir())
        .unwrap()
        .into_iter()
        .filter(|&n| n >= from)
        .collect();
    let mut seen = Vec::new();
    recovery::replay(fs, dir(), &logs, |seq, batch| {
        seen.push((seq, batch));
        Ok(())
    })
    .unwrap();
    seen
}

fn assert_previous_io(result: Result<impl std::fmt::Debug>) {
    match result {
        Err(StorageError::PreviousIo { .. }) => {}
        other => panic!("expected PreviousIo, got {other:?}"),
    }
}

#[test]
fn batches_get_dense_sequence_numbers_and_become_visible_in_order() {
    let fs = disk();
    let (pipeline, applied) = open(&fs, Durability::Sync);
    assert_eq!(pipeline.last_visible_sequence(), 0);
    assert_eq!(pipeline.commit(batch(b"a", 3), None).unwrap(), 3);
    assert_eq!(pipeline.last_visible_sequence(), 3);
    assert_eq!(pipeline.commit(batch(b"b", 1), None).unwrap(), 4);
    assert_eq!(pipeline.commit(WriteBatch::new(), None).unwrap(), 4);
    let applied = applied.lock();
    let firsts: Vec<_> = applied.iter().map(|c| c.first_seq).collect();
    assert_eq!(firsts, vec![1, 4]);
    assert_eq!(applied[0].batch, batch(b"a", 3));
    let replayed = replay_dir(&fs);
    assert_eq!(replayed.len(), 2);
    assert_eq!(replayed[1], (4, batch(b"b", 1)));
}

#[test]
fn a_pipeline_continues_from_the_recovered_sequence_number() {
    let fs = disk();
    let (apply, _) = recording_apply();
    let pipeline = CommitPipeline::open(
        Arc::new(fs.clone()),
        dir(),
        7,
        41,
        options(Durability::Sync),
        apply,
    )
    .unwrap();
    assert_eq!(pipeline.log_number(), 7);
    assert_eq!(pipeline.commit(batch(b"k", 2), None).unwrap(), 43);
    assert!(fs.exists(&log_file_path(dir(), 7)));
}

#[test]
fn sync_writes_are_durable_when_acknowledged() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Sync);
    for i in 0..5u8 {
        pipeline.commit(batch(&[i], 1), None).unwrap();
        let len = fs.read(&log_file_path(dir(), 1)).unwrap().len() as u64;
        assert_eq!(fs.durable_len(&log_file_path(dir(), 1)).unwrap(), len);
    }
    drop(pipeline);
    fs.crash(1);
    assert_eq!(replay_dir(&fs).len(), 5);
}

#[test]
fn buffered_writes_skip_fsync_until_the_background_round() {
    let fs = disk();
    let (pipeline, applied) = open(&fs, Durability::Buffered);
    let syncs_before = fs.stats().data_syncs;
    pipeline.commit(batch(b"a", 1), None).unwrap();
    pipeline.commit(batch(b"b", 1), None).unwrap();
    assert_eq!(applied.lock().len(), 2, "visible before durable");
    assert_eq!(fs.stats().data_syncs, syncs_before);
    let path = log_file_path(dir(), 1);
    assert_eq!(fs.durable_len(&path).unwrap(), 0);

    pipeline.run_background_sync();
    assert_eq!(fs.stats().data_syncs, syncs_before + 1);
    assert_eq!(
        fs.durable_len(&path).unwrap(),
        fs.read(&path).unwrap().len() as u64
    );
    // Nothing new: the next round does not sync again.
    pipeline.run_background_sync();
    assert_eq!(fs.stats().data_syncs, syncs_before + 1);
}

#[test]
fn a_per_write_override_changes_only_whether_that_group_syncs() {
    let fs = disk();
    let (sync_db, _) = open(&fs, Durability::Sync);
    let before = fs.stats().data_syncs;
    sync_db
        .commit(batch(b"a", 1), Some(Durability::Buffered))
        .unwrap();
    sync_db
        .commit(batch(b"b", 1), Some(Durability::InMemory))
        .unwrap();
    assert_eq!(fs.stats().data_syncs, before);
    sync_db.commit(batch(b"c", 1), None).unwrap();
    assert_eq!(fs.stats().data_syncs, before + 1);
    // The InMemory override was still logged.
    assert_eq!(replay_dir(&fs).len(), 3);
    drop(sync_db);

    let fs = disk();
    let (buffered_db, _) = open(&fs, Durability::Buffered);
    let before = fs.stats().data_syncs;
    buffered_db.commit(batch(b"a", 1), None).unwrap();
    assert_eq!(fs.stats().data_syncs, before);
    buffered_db
        .commit(batch(b"b", 1), Some(Durability::Sync))
        .unwrap();
    assert_eq!(fs.stats().data_syncs, before + 1);
}

#[test]
fn an_in_memory_pipeline_writes_no_files() {
    let fs = disk();
    let (pipeline, applied) = open(&fs, Durability::InMemory);
    pipeline
        .commit(batch(b"a", 2), Some(Durability::Sync))
        .unwrap();
    pipeline.commit(batch(b"b", 1), None).unwrap();
    assert_eq!(pipeline.switch_log(5).unwrap(), 1);
    assert_eq!(pipeline.log_number(), 5);
    pipeline.sync_log().unwrap();
    pipeline.run_background_sync();
    assert_eq!(applied.lock().len(), 2);
    assert_eq!(pipeline.last_visible_sequence(), 3);
    assert!(fs.list_dir(dir()).unwrap().is_empty());
    assert_eq!(fs.stats().appends, 0);
    pipeline.close().unwrap();
}

#[test]
fn a_failed_write_is_terminal_for_that_caller_and_every_later_one() {
    let fs = disk();
    let (pipeline, applied) = open(&fs, Durability::Buffered);
    pipeline.commit(batch(b"a", 1), None).unwrap();
    fs.fail_nth_write(1);
    assert_previous_io(pipeline.commit(batch(b"b", 1), None));
    assert_eq!(applied.lock().len(), 1, "a failed group is never applied");
    assert_eq!(pipeline.last_visible_sequence(), 1);
    assert_previous_io(pipeline.commit(batch(b"c", 1), None));
    assert_previous_io(pipeline.sync_log());
    assert_previous_io(pipeline.switch_log(2));
    assert_previous_io(pipeline.close());
}

#[test]
fn a_failed_fsync_is_terminal_and_never_retried() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Sync);
    fs.fail_nth_data_sync(1);
    let err = pipeline.commit(batch(b"a", 1), None).unwrap_err();
    match &err {
        StorageError::PreviousIo { cause } => {
            assert!(
                matches!(&**cause, StorageError::Io { op: "fsync", .. }),
                "{cause}"
            );
        }
        other => panic!("{other:?}"),
    }
    let syncs = fs.stats().data_syncs;
    assert_previous_io(pipeline.commit(batch(b"b", 1), None));
    assert_previous_io(pipeline.sync_log());
    assert_eq!(fs.stats().data_syncs, syncs, "no fsync after a failed one");
}

#[test]
fn a_failed_background_sync_is_terminal() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Buffered);
    pipeline.commit(batch(b"a", 1), None).unwrap();
    fs.fail_all_syncs();
    pipeline.run_background_sync();
    assert_previous_io(pipeline.commit(batch(b"b", 1), None));
}

#[test]
fn a_failed_apply_is_terminal() {
    let fs = disk();
    let apply: ApplyFn = Box::new(|group| {
        if group.iter().any(|c| c.first_seq > 1) {
            Err(StorageError::InvalidArgument("memtable refused".into()))
        } else {
            Ok(())
        }
    });
    let pipeline = CommitPipeline::open(
        Arc::new(fs.clone()),
        dir(),
        1,
        0,
        options(Durability::Sync),
        apply,
    )
    .unwrap();
    pipeline.commit(batch(b"a", 1), None).unwrap();
    assert_previous_io(pipeline.commit(batch(b"b", 1), None));
    assert_previous_io(pipeline.commit(batch(b"c", 1), None));
    assert_eq!(pipeline.last_visible_sequence(), 1);
}

#[test]
fn a_panicking_apply_stops_the_pipeline_instead_of_hanging_it() {
    let fs = disk();
    let apply: ApplyFn = Box::new(|group| {
        assert!(group[0].first_seq == 1, "simulated bug in apply");
        Ok(())
    });
    let pipeline = Arc::new(
        CommitPipeline::open(
            Arc::new(fs.clone()),
            dir(),
            1,
            0,
            options(Durability::Sync),
            apply,
        )
        .unwrap(),
    );
    pipeline.commit(batch(b"a", 1), None).unwrap();
    let panicking = Arc::clone(&pipeline);
    let joined = std::thread::spawn(move || panicking.commit(batch(b"b", 1), None)).join();
    assert!(joined.is_err());
    assert_previous_io(pipeline.commit(batch(b"c", 1), None));
}

#[test]
fn oversized_batches_are_rejected_without_stopping_the_pipeline() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Buffered);
    let mut huge = WriteBatch::new();
    huge.put(b"k", &vec![0; BATCH_BYTES_MAX]);
    assert!(matches!(
        pipeline.commit(huge, None),
        Err(StorageError::InvalidArgument(_))
    ));
    pipeline.commit(batch(b"a", 1), None).unwrap();
}

#[test]
fn invalid_options_are_rejected() {
    let fs = disk();
    for interval in [Duration::ZERO, BACKGROUND_SYNC_INTERVAL_MAX * 2] {
        let (apply, _) = recording_apply();
        let options = CommitOptions {
            background_sync_interval: interval,
            ..options(Durability::Sync)
        };
        let result = CommitPipeline::open(Arc::new(fs.clone()), dir(), 1, 0, options, apply);
        assert!(matches!(result, Err(StorageError::InvalidArgument(_))));
    }
    let (apply, _) = recording_apply();
    let result = CommitPipeline::open(
        Arc::new(fs.clone()),
        dir(),
        1,
        MAX_SEQUENCE_NUMBER,
        options(Durability::Sync),
        apply,
    );
    assert!(matches!(result, Err(StorageError::InvalidArgument(_))));
}

#[test]
fn preallocated_logs_are_overwritten_in_place_and_cut_when_switched() {
    let fs = disk();
    let (apply, applied) = recording_apply();
    let options = CommitOptions {
        log_preallocate_bytes: 64 << 10,
        ..options(Durability::Sync)
    };
    let pipeline = CommitPipeline::open(Arc::new(fs.clone()), dir(), 1, 0, options, apply).unwrap();
    let first = log_file_path(dir(), 1);
    assert_eq!(fs.read(&first).unwrap(), vec![0; 64 << 10]);
    for i in 0..5u8 {
        pipeline.commit(batch(&[i], 3), None).unwrap();
    }
    let (number, written) = pipeline.log_written().unwrap();
    assert_eq!(number, 1);
    assert!(written > 0 && written < 64 << 10, "{written}");
    // The records overwrote the zeros; the file keeps its size.
    let image = fs.read(&first).unwrap();
    assert_eq!(image.len(), 64 << 10);
    assert!(image[written as usize..].iter().all(|&b| b == 0));
    assert_eq!(fs.durable_len(&first).unwrap(), 64 << 10);

    pipeline.switch_log(2).unwrap();
    // The old log now ends at its last record, durably; the new one is
    // preallocated in turn.
    assert_eq!(fs.read(&first).unwrap().len() as u64, written);
    assert_eq!(fs.durable_len(&first).unwrap(), written);
    assert_eq!(fs.read(&log_file_path(dir(), 2)).unwrap().len(), 64 << 10);
    pipeline.commit(batch(b"after", 1), None).unwrap();
    drop(pipeline);

    // Both logs replay: the older one ends exactly, the newer in zeros.
    let mut replayed = 0;
    let outcome = recovery::replay(&fs, dir(), &[1, 2], |_, _| {
        replayed += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(replayed, 6);
    assert_eq!(applied.lock().len(), 6);
    let tail = outcome.newest.clone().unwrap();
    assert!(tail.torn.is_none());
    assert_eq!(tail.file_len, 64 << 10);
    assert!(recovery::cut_tail(&fs, &outcome).unwrap());
    assert_eq!(
        fs.durable_len(&log_file_path(dir(), 2)).unwrap(),
        tail.valid_len
    );
}

#[test]
fn switching_logs_syncs_the_old_one_and_durably_creates_the_new_one() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Buffered);
    pipeline.commit(batch(b"a", 2), None).unwrap();
    assert_eq!(pipeline.switch_log(4).unwrap(), 1);
    assert_eq!(pipeline.log_number(), 4);
    let old = log_file_path(dir(), 1);
    assert_eq!(
        fs.durable_len(&old).unwrap(),
        fs.read(&old).unwrap().len() as u64
    );
    pipeline
        .commit(batch(b"b", 1), Some(Durability::Sync))
        .unwrap();
    assert!(matches!(
        pipeline.switch_log(4),
        Err(StorageError::InvalidArgument(_))
    ));
    pipeline
        .commit(batch(b"c", 1), Some(Durability::Sync))
        .unwrap();
    drop(pipeline);
    for seed in 0..50 {
        fs.crash(seed);
        let replayed = replay_dir(&fs);
        let seqs: Vec<_> = replayed.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, vec![1, 3, 4], "seed {seed}");
    }
    assert_eq!(list_logs(&fs, dir()).unwrap(), vec![1, 4]);
}

#[test]
fn a_switch_from_the_apply_callback_falls_exactly_after_that_group() {
    let fs = disk();
    let me: Arc<OnceLock<Weak<CommitPipeline>>> = Arc::default();
    let handle = Arc::clone(&me);
    let apply: ApplyFn = Box::new(move |group| {
        if group.iter().any(|c| c.first_seq == 2)
            && let Some(pipeline) = handle.get().and_then(Weak::upgrade)
        {
            pipeline.switch_log(2)?;
        }
        Ok(())
    });
    let pipeline = Arc::new(
        CommitPipeline::open(
            Arc::new(fs.clone()),
            dir(),
            1,
            0,
            options(Durability::Sync),
            apply,
        )
        .unwrap(),
    );
    me.set(Arc::downgrade(&pipeline)).unwrap();
    for key in [b"a", b"b", b"c"] {
        pipeline.commit(batch(key, 1), None).unwrap();
    }
    let first_log: Vec<_> = {
        let mut seen = Vec::new();
        recovery::replay(&fs, dir(), &[1], |seq, _| {
            seen.push(seq);
            Ok(())
        })
        .unwrap();
        seen
    };
    assert_eq!(first_log, vec![1, 2]);
    assert_eq!(replay_dir(&fs).len(), 3);
}

#[test]
fn close_syncs_stops_and_refuses_later_commits() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Buffered);
    pipeline.commit(batch(b"a", 1), None).unwrap();
    pipeline.close().unwrap();
    let path = log_file_path(dir(), 1);
    assert_eq!(
        fs.durable_len(&path).unwrap(),
        fs.read(&path).unwrap().len() as u64
    );
    assert!(matches!(
        pipeline.commit(batch(b"b", 1), None),
        Err(StorageError::Closed)
    ));
    // Waiting for a round of a stopped syncer returns at once.
    pipeline.run_background_sync();
}

#[test]
fn one_group_shares_one_write_and_one_fsync() {
    let fs = disk();
    let gate = Arc::new(Barrier::new(2));
    let me: Arc<OnceLock<Weak<CommitPipeline>>> = Arc::default();
    let (handle, apply_gate) = (Arc::clone(&me), Arc::clone(&gate));
    let apply: ApplyFn = Box::new(move |group| {
        if group[0].first_seq == 1 {
            // Hold the first group until three writers queue behind it.
            apply_gate.wait();
            if let Some(pipeline) = handle.get().and_then(Weak::upgrade) {
                while pipeline.shared.queue.waiting_len() < 3 {
                    std::thread::yield_now();
                }
            }
        }
        Ok(())
    });
    let pipeline = Arc::new(
        CommitPipeline::open(
            Arc::new(fs.clone()),
            dir(),
            1,
            0,
            options(Durability::Sync),
            apply,
        )
        .unwrap(),
    );
    me.set(Arc::downgrade(&pipeline)).unwrap();
    let before = fs.stats();
    let first = {
        let pipeline = Arc::clone(&pipeline);
        std::thread::spawn(move || pipeline.commit(batch(b"first", 1), None).unwrap())
    };
    gate.wait();
    let followers: Vec<_> = (0..3u8)
        .map(|i| {
            let pipeline = Arc::clone(&pipeline);
            std::thread::spawn(move || pipeline.commit(batch(&[i], 1), None).unwrap())
        })
        .collect();
    assert_eq!(first.join().unwrap(), 1);
    let mut seqs: Vec<_> = followers.into_iter().map(|t| t.join().unwrap()).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![2, 3, 4]);
    let after = fs.stats();
    assert_eq!(after.appends - before.appends, 2, "one append per group");
    assert_eq!(
        after.data_syncs - before.data_syncs,
        2,
        "one fsync per group"
    );
}

#[test]
fn concurrent_sync_writers_are_all_replayed_densely_and_in_order() {
    const THREADS: usize = 4;
    const WRITES_PER_THREAD: usize = 60;
    let fs = disk();
    let (pipeline, applied) = open(&fs, Durability::Sync);
    let pipeline = Arc::new(pipeline);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let pipeline = Arc::clone(&pipeline);
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..WRITES_PER_THREAD {
                    let key = format!("t{t}-{i}");
                    let entries = 1 + (i % 3);
                    let last = pipeline
                        .commit(batch(key.as_bytes(), entries), None)
                        .unwrap();
                    acked.push((last, key, entries));
                }
                acked
            })
        })
        .collect();
    let acked: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    drop(pipeline);
    fs.crash(77);

    let replayed = replay_dir(&fs);
    assert_eq!(replayed.len(), THREADS * WRITES_PER_THREAD);
    let mut next = 1;
    for (first, batch) in &replayed {
        assert_eq!(*first, next, "sequence numbers are dense and ordered");
        next += batch.len() as u64;
    }
    for (last, key, entries) in acked {
        let found = replayed
            .iter()
            .find(|(first, b)| *first + b.len() as u64 - 1 == last)
            .unwrap_or_else(|| panic!("acknowledged write {key} at {last} missing"));
        assert_eq!(found.1, batch(key.as_bytes(), entries));
    }
    // The memtable saw the same order.
    let applied: Vec<_> = applied.lock().iter().map(|c| c.first_seq).collect();
    let replayed: Vec<_> = replayed.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(applied, replayed);
}
