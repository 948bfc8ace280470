//! The open-segment table: the engine keeps at most `max_open_files`
//! readers, and scans open only the files they reach.

use super::{check, fill, key, open_sim, small_options};
use crate::storage::engine::EngineOptions;
use crate::storage::error::StorageError;
use crate::storage::range::Direction;
use crate::storage::sim::SimFileSystem;

fn live_files(stats: &crate::storage::engine::EngineStats) -> usize {
    stats.levels.iter().map(|level| level.files).sum()
}

#[test]
fn open_segments_stay_within_max_open_files() {
    let fs = SimFileSystem::new();
    let options = EngineOptions {
        max_open_files: 3,
        ..small_options()
    };
    let engine = open_sim(&fs, options.clone()).expect("open");
    let n = 600;
    let model = fill(&engine, n);
    engine.flush().expect("flush");
    engine.compact().expect("compact");
    let stats = engine.stats();
    assert!(live_files(&stats) > 3, "too few files to test: {stats:?}");
    // Every read path, evicting and reopening readers as it goes.
    check(&engine, &model, n);
    check(&engine, &model, n);
    assert!(engine.stats().open_segments <= 3, "{:?}", engine.stats());
    engine.close().expect("close");

    let engine = open_sim(&fs, options).expect("reopen");
    check(&engine, &model, n);
    assert!(engine.stats().open_segments <= 3);
}

#[test]
fn a_short_scan_opens_only_the_files_it_reaches() {
    let fs = SimFileSystem::new();
    let engine = open_sim(&fs, small_options()).expect("open");
    let n = 600;
    let model = fill(&engine, n);
    engine.flush().expect("flush");
    engine.compact().expect("compact");
    let stats = engine.stats();
    let level0 = stats.levels[0].files;
    let lower_levels = stats.levels.iter().skip(1).filter(|l| l.files > 0).count();
    assert!(live_files(&stats) > 6, "too few files to test: {stats:?}");
    engine.close().expect("close");

    let engine = open_sim(&fs, small_options()).expect("reopen");
    assert_eq!(engine.stats().open_segments, 0);
    let start = key(n / 2);
    for direction in [Direction::Forward, Direction::Reverse] {
        let (range_start, range_end) = match direction {
            Direction::Forward => (start.clone(), key(n)),
            Direction::Reverse => (key(0), start.clone()),
        };
        let got: Vec<_> = engine
            .range(
                range_start.as_slice()..range_end.as_slice(),
                direction,
                None,
            )
            .expect("range")
            .take(10)
            .map(|pair| pair.expect("scan").0.to_vec())
            .collect();
        let expected: Vec<_> = match direction {
            Direction::Forward => model
                .range(start.clone()..)
                .take(10)
                .map(|(k, _)| k.clone())
                .collect(),
            Direction::Reverse => model
                .range(..start.clone())
                .rev()
                .take(10)
                .map(|(k, _)| k.clone())
                .collect(),
        };
        assert_eq!(got, expected);
    }
    // Each scan reads every overlapping L0 file and, per lower level, the
    // file holding its start and possibly the next one.
    let open = engine.stats().open_segments;
    assert!(
        open <= level0 + 4 * lower_levels,
        "{open} open of {stats:?}"
    );
    assert!(open < live_files(&stats), "{open} open of {stats:?}");
}

#[test]
fn zero_max_open_files_is_refused() {
    let fs = SimFileSystem::new();
    let options = EngineOptions {
        max_open_files: 0,
        ..small_options()
    };
    assert!(matches!(
        open_sim(&fs, options),
        Err(StorageError::InvalidArgument(_))
    ));
}
