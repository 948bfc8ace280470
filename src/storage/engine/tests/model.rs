//! Model test: random puts, deletes, batches, snapshots, reads, iteration,
//! flushes, compactions, checkpoints and reopens on the simulated disk, checked against
//! a `BTreeMap` after every step.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;

use super::{open_sim, small_options};
use crate::storage::batch::WriteBatch;
use crate::storage::engine::{Engine, EngineOptions, Snapshot};
use crate::storage::range::Direction;
use crate::storage::sim::SimFileSystem;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Cases per run: moderate in CI, many with NIMBUS_LONG_TESTS=1.
fn cases() -> u32 {
    if std::env::var_os("NIMBUS_LONG_TESTS").is_some() {
        50_000
    } else {
        2_000
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Batch(Vec<(u8, Option<Vec<u8>>)>),
    Get(u8),
    Snapshot,
    ReleaseSnapshot(usize),
    GetAt(usize, u8),
    Iterate(Option<usize>, u8, u8, bool),
    Flush,
    Compact,
    Checkpoint,
    Reopen,
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..200)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (any::<u8>(), value()).prop_map(|(k, v)| Op::Put(k % 64, v)),
        8 => any::<u8>().prop_map(|k| Op::Delete(k % 64)),
        6 => prop::collection::vec((any::<u8>(), prop::option::of(value())), 1..8)
            .prop_map(|ops| Op::Batch(ops.into_iter().map(|(k, v)| (k % 64, v)).collect())),
        8 => any::<u8>().prop_map(|k| Op::Get(k % 64)),
        3 => Just(Op::Snapshot),
        2 => any::<usize>().prop_map(Op::ReleaseSnapshot),
        5 => (any::<usize>(), any::<u8>()).prop_map(|(s, k)| Op::GetAt(s, k % 64)),
        4 => (prop::option::of(any::<usize>()), any::<u8>(), any::<u8>(), any::<bool>())
            .prop_map(|(s, a, b, rev)| Op::Iterate(s, a % 64, b % 64, rev)),
        2 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("k{k:03}").into_bytes()
}

/// Small memtables, and segments split where the first three bytes of
/// the key change (`k00`..`k06`: seven "keyspaces"), so flushes write
/// several disjoint L0 files and compactions move some of them trivially;
/// the other engine tests cover unsplit segments.
fn options() -> EngineOptions {
    EngineOptions {
        memtable_bytes_max: 2 * 1024,
        segment_split_prefix_bytes: 3,
        ..small_options()
    }
}

fn check_range(
    engine: &Engine,
    model: &Model,
    snapshot: Option<&Snapshot>,
    a: u8,
    b: u8,
    rev: bool,
) {
    let (low, high) = (key(a.min(b)), key(a.max(b)));
    let direction = if rev {
        Direction::Reverse
    } else {
        Direction::Forward
    };
    let got: Vec<(Vec<u8>, Vec<u8>)> = engine
        .range(low.as_slice()..=high.as_slice(), direction, snapshot)
        .expect("range")
        .map(|pair| {
            let (k, v) = pair.expect("iterate");
            (k.to_vec(), v.to_vec())
        })
        .collect();
    let mut expected: Vec<_> = model
        .range(low..=high)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rev {
        expected.reverse();
    }
    assert_eq!(got, expected);
}

fn run(ops: Vec<Op>) {
    let fs = SimFileSystem::new();
    let mut engine = open_sim(&fs, options()).expect("open");
    let mut model = Model::new();
    let mut snapshots: Vec<(Snapshot, Model)> = Vec::new();
    let mut checkpoints = 0;
    for op in ops {
        match op {
            Op::Put(k, v) => {
                engine.put(&key(k), &v).expect("put");
                model.insert(key(k), v);
            }
            Op::Delete(k) => {
                engine.delete(&key(k)).expect("delete");
                model.remove(&key(k));
            }
            Op::Batch(ops) => {
                let mut batch = WriteBatch::new();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            batch.put(&key(k), &v);
                            model.insert(key(k), v);
                        }
                        None => {
                            batch.delete(&key(k));
                            model.remove(&key(k));
                        }
                    }
                }
                engine.write(batch).expect("write");
            }
            Op::Get(k) => {
                let got = engine.get(&key(k)).expect("get").map(|v| v.to_vec());
                assert_eq!(got, model.get(&key(k)).cloned());
            }
            Op::Snapshot => snapshots.push((engine.snapshot().expect("snapshot"), model.clone())),
            Op::ReleaseSnapshot(i) if !snapshots.is_empty() => {
                snapshots.remove(i % snapshots.len());
            }
            Op::GetAt(i, k) if !snapshots.is_empty() => {
                let (snapshot, old) = &snapshots[i % snapshots.len()];
                let got = engine
                    .get_at(snapshot, &key(k))
                    .expect("get_at")
                    .map(|v| v.to_vec());
                assert_eq!(got, old.get(&key(k)).cloned());
            }
            Op::Iterate(Some(i), a, b, rev) if !snapshots.is_empty() => {
                let (snapshot, old) = &snapshots[i % snapshots.len()];
                check_range(&engine, old, Some(snapshot), a, b, rev);
            }
            Op::Iterate(_, a, b, rev) => check_range(&engine, &model, None, a, b, rev),
            Op::Flush => engine.flush().expect("flush"),
            Op::Compact => engine.compact().expect("compact"),
            Op::Checkpoint => {
                checkpoints += 1;
                let dir = format!("/checkpoint-{checkpoints}");
                engine.checkpoint(&dir).expect("checkpoint");
                let copy = Engine::open_with(Arc::new(fs.clone()), &dir, options())
                    .expect("open checkpoint");
                check_range(&copy, &model, None, 0, 255, false);
                copy.close().expect("close checkpoint");
            }
            Op::Reopen => {
                snapshots.clear();
                engine.close().expect("close");
                engine = open_sim(&fs, options()).expect("reopen");
            }
            Op::ReleaseSnapshot(_) | Op::GetAt(..) => {}
        }
    }
    check_range(&engine, &model, None, 0, 255, false);
    engine.verify().expect("verify");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_a_btreemap_model(ops in prop::collection::vec(op(), 1..300)) {
        run(ops);
    }
}
