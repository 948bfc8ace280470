//! Crash test: random commits, log switches, syncs, retirements of older
//! logs (as a flush makes them obsolete: each is offered for reuse, and
//! deleted if the pipeline does not keep it) and injected I/O faults on the
//! simulated disk, power loss at a random point, recovery — over several
//! crash/recover cycles. After every recovery:
//! - the replayed batches (from the logs not retired) are a prefix of the
//!   batches submitted to those logs, in order, each complete and unchanged
//!   (no batch half-applied, none reordered, none from a reused log's
//!   earlier life);
//! - that prefix holds at least every batch acknowledged as durable;
//! - recovery itself never fails or panics.

use proptest::prelude::*;

use super::*;
use crate::storage::wal::recovery::ReplayOutcome;

/// Cases per run: moderate in CI, many with NIMBUS_LONG_TESTS=1.
fn cases() -> u32 {
    if std::env::var_os("NIMBUS_LONG_TESTS").is_some() {
        10_000
    } else {
        256
    }
}

#[derive(Debug, Clone)]
enum Op {
    Commit {
        durability: Option<Durability>,
        entries: usize,
        value_bytes: usize,
    },
    SwitchLog,
    SyncLog,
    BackgroundRound,
    /// Every log before the current one becomes obsolete (a flush).
    Retire,
}

#[derive(Debug, Clone)]
enum Fault {
    Write(u64),
    DataSync(u64),
    DirSync(u64),
}

#[derive(Debug, Clone)]
struct Cycle {
    durability: Durability,
    ops: Vec<Op>,
    fault: Option<Fault>,
    crash_seed: u64,
    /// Bytes each new log is preallocated to (0: none).
    preallocate: u64,
    /// Obsolete logs the pipeline keeps for reuse.
    recycle: usize,
}

fn op() -> impl Strategy<Value = Op> {
    let durability = prop_oneof![
        Just(None),
        Just(Some(Durability::Sync)),
        Just(Some(Durability::Buffered)),
        Just(Some(Durability::InMemory)),
    ];
    let value_bytes = prop_oneof![8 => 0..300usize, 1 => 5_000..40_000usize];
    prop_oneof![
        12 => (durability, 1..4usize, value_bytes).prop_map(|(durability, entries, value_bytes)| {
            Op::Commit { durability, entries, value_bytes }
        }),
        1 => Just(Op::SwitchLog),
        1 => Just(Op::SyncLog),
        1 => Just(Op::BackgroundRound),
        1 => Just(Op::Retire),
    ]
}

fn cycle() -> impl Strategy<Value = Cycle> {
    let fault = prop_oneof![
        3 => Just(None),
        1 => (1..30u64).prop_map(|n| Some(Fault::Write(n))),
        1 => (1..30u64).prop_map(|n| Some(Fault::DataSync(n))),
        1 => (1..6u64).prop_map(|n| Some(Fault::DirSync(n))),
    ];
    (
        prop_oneof![Just(Durability::Sync), Just(Durability::Buffered)],
        prop::collection::vec(op(), 0..40),
        fault,
        any::<u64>(),
        // None, less than one block, and more than the cycle writes.
        prop_oneof![Just(0u64), Just(4096), Just(200 << 10)],
        0..3usize,
    )
        .prop_map(
            |(durability, ops, fault, crash_seed, preallocate, recycle)| Cycle {
                durability,
                ops,
                fault,
                crash_seed,
                preallocate,
                recycle,
            },
        )
}

/// What the test knows about the history across cycles.
#[derive(Debug, Default)]
struct Model {
    /// Every batch submitted since the start, in submission (= sequence) order,
    /// as far as the last recovery kept it.
    submitted: Vec<WriteBatch>,
    /// How many leading batches of `submitted` must survive a crash.
    durable: usize,
    /// The next batch's distinguishing marker.
    marker: u64,
    /// Logs below this number are obsolete: recovery ignores them.
    live_from: FileNumber,
    /// How many leading batches of `submitted` are in obsolete logs.
    retired: usize,
    /// The index in `submitted` of each log's first batch.
    log_starts: std::collections::BTreeMap<FileNumber, usize>,
}

impl Model {
    fn next_batch(&mut self, entries: usize, value_bytes: usize) -> WriteBatch {
        self.marker += 1;
        let mut batch = WriteBatch::new();
        for i in 0..entries {
            let key = format!("batch{}-{i}", self.marker);
            batch.put(
                key.as_bytes(),
                &vec![(self.marker % 251) as u8; value_bytes],
            );
        }
        if entries > 1 {
            batch.delete(format!("gone{}", self.marker).as_bytes());
        }
        batch
    }
}

/// Runs one cycle's operations until they end or the pipeline stops.
fn run_cycle(
    fs: &SimFileSystem,
    cycle: &Cycle,
    model: &mut Model,
    log: FileNumber,
    last: SequenceNumber,
) {
    let (apply, _) = recording_apply();
    let mut options = options(cycle.durability);
    options.group_bytes_max = 16 << 10;
    options.log_preallocate_bytes = cycle.preallocate;
    options.log_recycle_files = cycle.recycle;
    model.log_starts.insert(log, model.submitted.len());
    let Ok(pipeline) = CommitPipeline::open(Arc::new(fs.clone()), dir(), log, last, options, apply)
    else {
        panic!("opening on a healthy disk failed");
    };
    match cycle.fault {
        Some(Fault::Write(n)) => fs.fail_nth_write(n),
        Some(Fault::DataSync(n)) => fs.fail_nth_data_sync(n),
        Some(Fault::DirSync(n)) => fs.fail_nth_dir_sync(n),
        None => {}
    }
    let mut next_log = log;
    for op in &cycle.ops {
        let ok = match op {
            Op::Commit {
                durability,
                entries,
                value_bytes,
            } => {
                let batch = model.next_batch(*entries, *value_bytes);
                model.submitted.push(batch.clone());
                let result = pipeline.commit(batch, *durability);
                let synced = durability.unwrap_or(cycle.durability) == Durability::Sync;
                if result.is_ok() && synced {
                    model.durable = model.submitted.len();
                }
                result.is_ok()
            }
            Op::SwitchLog => {
                next_log += 1;
                let switched = pipeline.switch_log(next_log).is_ok();
                if switched {
                    model.log_starts.insert(next_log, model.submitted.len());
                }
                switched
            }
            Op::Retire => {
                // What a flush does: the manifest moves its log number up
                // (the model's `live_from`), then each older log is kept
                // for reuse or deleted.
                model.live_from = next_log;
                model.retired = model.log_starts[&next_log];
                for number in list_logs(fs, dir()).unwrap() {
                    if number < next_log && !pipeline.recycle_log(number) {
                        let _ = fs.remove_file(&log_file_path(dir(), number));
                    }
                }
                true
            }
            Op::SyncLog => pipeline.sync_log().is_ok(),
            Op::BackgroundRound => {
                pipeline.run_background_sync();
                pipeline.sync_log().is_ok()
            }
        };
        if ok && !matches!(op, Op::Commit { .. } | Op::Retire) {
            model.durable = model.submitted.len();
        }
        if !ok {
            // Terminal: every later call fails the same way.
            assert_previous_io(pipeline.commit(batch(b"after", 1), None));
            break;
        }
    }
    drop(pipeline);
}

/// Recovers after a crash: replays every live log, checks it against the
/// model, cuts the torn tail and deletes obsolete logs (as the engine's
/// open does). Returns the next log number and last sequence number.
fn recover(fs: &SimFileSystem, model: &mut Model) -> (FileNumber, SequenceNumber) {
    let all = list_logs(fs, dir()).unwrap();
    let logs: Vec<FileNumber> = all
        .iter()
        .copied()
        .filter(|&n| n >= model.live_from)
        .collect();
    let mut replayed = Vec::new();
    let outcome: ReplayOutcome = recovery::replay(fs, dir(), &logs, |seq, batch| {
        replayed.push((seq, batch));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    let live = &model.submitted[model.retired..];
    let durable = model.durable.saturating_sub(model.retired);
    assert!(
        replayed.len() >= durable,
        "lost durable batches: replayed {}, durable {durable}",
        replayed.len(),
    );
    assert!(replayed.len() <= live.len(), "invented batches");
    let retired_seqs: u64 = model.submitted[..model.retired]
        .iter()
        .map(|b| b.len() as u64)
        .sum();
    let mut next_seq = 1 + retired_seqs;
    for (i, (first, batch)) in replayed.iter().enumerate() {
        assert_eq!(*first, next_seq, "batch {i} out of order");
        assert_eq!(batch, &live[i], "batch {i} differs");
        next_seq += batch.len() as u64;
    }
    recovery::cut_tail(fs, &outcome).unwrap();
    for &number in all.iter().filter(|&&n| n < model.live_from) {
        fs.remove_file(&log_file_path(dir(), number)).unwrap();
    }
    model.submitted.truncate(model.retired + replayed.len());
    model.durable = model.submitted.len();
    let next_log = all.last().copied().unwrap_or(0) + 1;
    let last = outcome.last_sequence.unwrap_or(next_seq - 1);
    (next_log, last)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn crash_recovery_keeps_every_durable_batch_whole_and_in_order(
        cycles in prop::collection::vec(cycle(), 1..4),
    ) {
        let fs = disk();
        let mut model = Model::default();
        let (mut log, mut last) = (1, 0);
        for cycle in &cycles {
            run_cycle(&fs, cycle, &mut model, log, last);
            fs.crash(cycle.crash_seed);
            (log, last) = recover(&fs, &mut model);
        }
    }
}
