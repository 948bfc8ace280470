//! Merge, visibility and compaction tests against a model of every write.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;
use crate::storage::StorageError;
use crate::storage::segment::SegmentOptions;
use crate::storage::segment::tests::{build_bytes, entry, open_bytes};
use crate::storage::types::MAX_SEQUENCE_NUMBER;

fn sorted(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| compare_internal(&a.key, a.seq, &b.key, b.seq));
    entries
}

fn vec_source(entries: Vec<Entry>, direction: Direction) -> EntryIter {
    let mut entries = sorted(entries);
    if direction == Direction::Reverse {
        entries.reverse();
    }
    Box::new(entries.into_iter().map(Ok))
}

#[test]
fn merges_sources_in_internal_order_both_ways() {
    let a = vec![
        entry(b"a", 5, EntryKind::Put, b"a5"),
        entry(b"c", 1, EntryKind::Put, b"c1"),
    ];
    let b = vec![
        entry(b"a", 7, EntryKind::Delete, b""),
        entry(b"b", 2, EntryKind::Put, b"b2"),
    ];
    let c = vec![
        entry(b"a", 6, EntryKind::Put, b"a6"),
        entry(b"d", 3, EntryKind::Put, b"d3"),
    ];
    let all = sorted([a.clone(), b.clone(), c.clone()].concat());
    for direction in [Direction::Forward, Direction::Reverse] {
        let sources = [&a, &b, &c]
            .map(|s| vec_source(s.clone(), direction))
            .into();
        let merged: Vec<_> = MergeIter::new(sources, direction)
            .map(Result::unwrap)
            .collect();
        let mut expected = all.clone();
        if direction == Direction::Reverse {
            expected.reverse();
        }
        assert_eq!(merged, expected);
    }
}

#[test]
fn one_write_in_two_sources_is_yielded_once() {
    let shared = entry(b"k", 4, EntryKind::Put, b"v");
    for direction in [Direction::Forward, Direction::Reverse] {
        let sources = vec![
            vec_source(
                vec![shared.clone(), entry(b"j", 9, EntryKind::Put, b"")],
                direction,
            ),
            vec_source(vec![shared.clone()], direction),
        ];
        assert_eq!(MergeIter::new(sources, direction).count(), 2);
    }
}

#[test]
fn a_source_error_ends_the_merge() {
    let failing: EntryIter = Box::new(
        vec![
            Ok(entry(b"b", 1, EntryKind::Put, b"")),
            Err(StorageError::corruption("bad.seg", 42, "test")),
            Ok(entry(b"z", 1, EntryKind::Put, b"")),
        ]
        .into_iter(),
    );
    let healthy = vec_source(
        vec![
            entry(b"a", 2, EntryKind::Put, b"x"),
            entry(b"c", 3, EntryKind::Put, b""),
        ],
        Direction::Forward,
    );
    let results: Vec<_> = VisibleIter::new(
        vec![healthy, failing],
        MAX_SEQUENCE_NUMBER,
        Direction::Forward,
    )
    .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results[0].is_ok());
    assert!(matches!(
        results[1],
        Err(StorageError::Corruption { offset: 42, .. })
    ));
}

#[test]
fn visible_view_hides_tombstones_and_newer_versions() {
    let entries = vec![
        entry(b"a", 1, EntryKind::Put, b"a1"),
        entry(b"a", 3, EntryKind::Delete, b""),
        entry(b"a", 5, EntryKind::Put, b"a5"),
        entry(b"b", 2, EntryKind::Put, b"b2"),
        entry(b"b", 4, EntryKind::Delete, b""),
    ];
    let view = |snapshot, direction| -> Vec<(Bytes, Bytes)> {
        VisibleIter::new(
            vec![vec_source(entries.clone(), direction)],
            snapshot,
            direction,
        )
        .map(Result::unwrap)
        .collect()
    };
    let pair = |k: &'static [u8], v: &'static [u8]| (Bytes::from_static(k), Bytes::from_static(v));
    assert_eq!(view(0, Direction::Forward), vec![]);
    assert_eq!(
        view(2, Direction::Forward),
        vec![pair(b"a", b"a1"), pair(b"b", b"b2")]
    );
    assert_eq!(
        view(2, Direction::Reverse),
        vec![pair(b"b", b"b2"), pair(b"a", b"a1")]
    );
    assert_eq!(view(3, Direction::Forward), vec![pair(b"b", b"b2")]);
    assert_eq!(view(4, Direction::Reverse), vec![]);
    assert_eq!(view(9, Direction::Reverse), vec![pair(b"a", b"a5")]);
}

#[test]
fn compaction_keeps_what_snapshots_can_read() {
    let input = vec![
        entry(b"a", 9, EntryKind::Put, b"a9"),
        entry(b"a", 7, EntryKind::Put, b"a7"),
        entry(b"a", 4, EntryKind::Put, b"a4"),
        entry(b"a", 2, EntryKind::Put, b"a2"),
        entry(b"b", 5, EntryKind::Delete, b""),
        entry(b"b", 3, EntryKind::Put, b"b3"),
        entry(b"c", 8, EntryKind::Delete, b""),
        entry(b"c", 1, EntryKind::Put, b"c1"),
    ];
    let compact = |bottommost| {
        let mut iter = CompactionIter::new(
            vec![vec_source(input.clone(), Direction::Forward)],
            6,
            bottommost,
        );
        let out: Vec<_> = iter
            .by_ref()
            .map(Result::unwrap)
            .map(|e| (e.key, e.seq))
            .collect();
        (out, iter.dropped_versions())
    };
    let key = Bytes::from_static;
    // a: 9 and 7 are newer than the oldest snapshot; 4 is what it reads; 2 is hidden.
    // b: the tombstone at 5 is what the oldest snapshot reads.
    // c: the tombstone at 8 is newer than every snapshot; 1 is what they read.
    let (kept, dropped) = compact(false);
    assert_eq!(
        kept,
        vec![
            (key(b"a"), 9),
            (key(b"a"), 7),
            (key(b"a"), 4),
            (key(b"b"), 5),
            (key(b"c"), 8),
            (key(b"c"), 1)
        ]
    );
    assert_eq!(dropped, 2);
    let (kept, dropped) = compact(true);
    assert_eq!(
        kept,
        vec![
            (key(b"a"), 9),
            (key(b"a"), 7),
            (key(b"a"), 4),
            (key(b"c"), 8),
            (key(b"c"), 1)
        ]
    );
    assert_eq!(dropped, 3);
}

// --- Model tests -----------------------------------------------------------

/// One write: key number, whether it is a put, value byte, and which source
/// holds it (0 = memtable, 1..=3 = segments; 4 = memtable and segment 1, as
/// during a flush).
type Op = (u8, bool, u8, u8);

fn key_of(n: u8) -> Bytes {
    Bytes::from(format!("key/{:02}", n))
}

fn writes(ops: &[Op]) -> Vec<(Entry, u8)> {
    ops.iter()
        .enumerate()
        .map(|(index, &(key, put, value, source))| {
            let kind = if put {
                EntryKind::Put
            } else {
                EntryKind::Delete
            };
            let value = if put {
                vec![value; usize::from(value % 7)]
            } else {
                Vec::new()
            };
            (entry(&key_of(key), index as u64 + 1, kind, &value), source)
        })
        .collect()
}

/// The memtable and segments holding `writes`, newest-first by convention.
fn sources(writes: &[(Entry, u8)]) -> Vec<Source> {
    let memtable = Memtable::new();
    let mut segment_entries: [Vec<Entry>; 3] = Default::default();
    for (e, source) in writes {
        if matches!(source, 0 | 4) {
            memtable.insert(e.key.clone(), e.seq, e.kind, e.value.clone());
        }
        match source {
            1..=3 => segment_entries[usize::from(*source) - 1].push(e.clone()),
            4 => segment_entries[0].push(e.clone()),
            _ => {}
        }
    }
    let options = SegmentOptions {
        block_size_bytes: 64,
        restart_interval: 2,
        ..SegmentOptions::default()
    };
    let mut sources = vec![Source::Memtable(memtable)];
    for (index, entries) in segment_entries.into_iter().enumerate() {
        if !entries.is_empty() {
            let (bytes, _) = build_bytes(&sorted(entries), options);
            sources.push(Source::Segment(open_bytes(bytes, index % 2 == 0).unwrap()));
        }
    }
    sources
}

/// What a reader at `snapshot` sees in `range`, forwards.
fn model_view(
    writes: &[(Entry, u8)],
    range: &KeyRange,
    snapshot: SequenceNumber,
) -> Vec<(Bytes, Bytes)> {
    let mut newest: BTreeMap<Bytes, &Entry> = BTreeMap::new();
    for (e, _) in writes {
        if e.seq <= snapshot && range.contains(&e.key) {
            newest.insert(e.key.clone(), e);
        }
    }
    newest
        .into_values()
        .filter(|e| e.kind == EntryKind::Put)
        .map(|e| (e.key.clone(), e.value.clone()))
        .collect()
}

fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0u8..30, prop::bool::weighted(0.7), any::<u8>(), 0u8..5),
        0..250,
    )
}

fn arb_bound() -> impl Strategy<Value = Bound<Bytes>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0u8..31).prop_map(|k| Bound::Included(key_of(k))),
        (0u8..31).prop_map(|k| Bound::Excluded(key_of(k))),
    ]
}

fn view_of(entries: Vec<Entry>, range: &KeyRange, snapshot: SequenceNumber) -> Vec<(Bytes, Bytes)> {
    let entries: Vec<_> = entries
        .into_iter()
        .filter(|e| range.contains(&e.key))
        .collect();
    VisibleIter::new(
        vec![vec_source(entries, Direction::Forward)],
        snapshot,
        Direction::Forward,
    )
    .map(Result::unwrap)
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn visible_view_over_memtable_and_segments_matches_the_model(
        ops in arb_ops(),
        snapshot in 0u64..260,
        start in arb_bound(),
        end in arb_bound(),
    ) {
        let writes = writes(&ops);
        let sources = sources(&writes);
        let range = KeyRange::new(start, end);
        let expected = model_view(&writes, &range, snapshot);
        let forward: Vec<_> = VisibleIter::over(&sources, &range, snapshot, Direction::Forward)
            .collect::<Result<_>>()
            .unwrap();
        prop_assert_eq!(&forward, &expected);
        let mut reverse: Vec<_> = VisibleIter::over(&sources, &range, snapshot, Direction::Reverse)
            .collect::<Result<_>>()
            .unwrap();
        reverse.reverse();
        prop_assert_eq!(&reverse, &expected);
    }

    #[test]
    fn compaction_preserves_every_snapshots_view(
        ops in arb_ops(),
        oldest_snapshot in 0u64..260,
        bottommost in any::<bool>(),
    ) {
        let writes = writes(&ops);
        let sources = sources(&writes);
        let iters = sources.iter().map(|s| s.iter(&KeyRange::all(), Direction::Forward)).collect();
        let output: Vec<Entry> = CompactionIter::new(iters, oldest_snapshot, bottommost)
            .collect::<Result<_>>()
            .unwrap();
        let input: Vec<Entry> = writes.iter().map(|(e, _)| e.clone()).collect();
        prop_assert_eq!(&output, &sorted(output.clone()), "output out of order");

        // Readers at the oldest live snapshot or later see no difference.
        let latest = input.len() as u64 + 1;
        for snapshot in oldest_snapshot..=latest.max(oldest_snapshot) {
            prop_assert_eq!(
                view_of(output.clone(), &KeyRange::all(), snapshot),
                view_of(input.clone(), &KeyRange::all(), snapshot),
                "snapshot {}", snapshot
            );
        }
        // Nothing unreadable survives: per key, one version at or before the
        // oldest snapshot, and no such tombstone at the bottommost level.
        let mut old_versions: BTreeMap<Bytes, Vec<&Entry>> = BTreeMap::new();
        for e in output.iter().filter(|e| e.seq <= oldest_snapshot) {
            old_versions.entry(e.key.clone()).or_default().push(e);
        }
        for versions in old_versions.values() {
            prop_assert_eq!(versions.len(), 1);
            prop_assert!(!(bottommost && versions[0].kind == EntryKind::Delete));
        }
    }
}
