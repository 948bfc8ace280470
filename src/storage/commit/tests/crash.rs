//! Crash test: random commits, log switches, syncs and injected I/O faults
//! on the simulated disk, power loss at a random point, recovery — over
//! several crash/recover cycles. After every recovery:
//! - the replayed batches are a prefix of the batches submitted, in order,
//!   each complete and unchanged (no batch half-applied, none reordered);
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
    )
        .prop_map(|(durability, ops, fault, crash_seed, preallocate)| Cycle {
            durability,
            ops,
            fault,
            crash_seed,
            preallocate,
        })
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
                pipeline.switch_log(next_log).is_ok()
            }
            Op::SyncLog => pipeline.sync_log().is_ok(),
            Op::BackgroundRound => {
                pipeline.run_background_sync();
                pipeline.sync_log().is_ok()
            }
        };
        if ok && !matches!(op, Op::Commit { .. }) {
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

/// Recovers after a crash: replays every log, checks it against the model,
/// cuts the torn tail. Returns the next log number and last sequence number.
fn recover(fs: &SimFileSystem, model: &mut Model) -> (FileNumber, SequenceNumber) {
    let logs = list_logs(fs, dir()).unwrap();
    let mut replayed = Vec::new();
    let outcome: ReplayOutcome = recovery::replay(fs, dir(), &logs, |seq, batch| {
        replayed.push((seq, batch));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("recovery failed: {e}"));
    assert!(
        replayed.len() >= model.durable,
        "lost durable batches: replayed {}, durable {}",
        replayed.len(),
        model.durable
    );
    assert!(replayed.len() <= model.submitted.len(), "invented batches");
    let mut next_seq = 1;
    for (i, (first, batch)) in replayed.iter().enumerate() {
        assert_eq!(*first, next_seq, "batch {i} out of order");
        assert_eq!(batch, &model.submitted[i], "batch {i} differs");
        next_seq += batch.len() as u64;
    }
    recovery::cut_tail(fs, &outcome).unwrap();
    model.submitted.truncate(replayed.len());
    model.durable = replayed.len();
    let next_log = logs.last().copied().unwrap_or(0) + 1;
    (next_log, outcome.last_sequence.unwrap_or(0))
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
