//! Tests of the compaction policy: scores, input choice, trivial moves,
//! bottommost detection, backlog estimate and write throttling.

use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::storage::types::FileNumber;
use crate::storage::version::testing::{TestRng, meta, proptest_config, random_file_set};
use crate::storage::version::{
    FileMeta, LEVEL_COUNT, LiveFile, ObsoleteFiles, Version, level_number,
};

fn version_of(files: &[FileMeta]) -> Version {
    Version::from_files(files, &[], &ObsoleteFiles::new()).unwrap()
}

fn sized(mut file: FileMeta, size_bytes: u64) -> FileMeta {
    file.size_bytes = size_bytes;
    file
}

fn numbers(files: &[Arc<LiveFile>]) -> Vec<FileNumber> {
    files.iter().map(|file| file.number()).collect()
}

/// Options small enough that a handful of 100-byte files trigger compaction.
fn small_options() -> CompactionOptions {
    CompactionOptions {
        level_base_bytes: 250,
        target_file_size_bytes: 100,
        compaction_input_bytes_max: 1000,
        ..CompactionOptions::default()
    }
}

#[test]
fn the_defaults_are_valid_and_bad_options_are_rejected() {
    CompactionOptions::default().validate().unwrap();
    let bad = [
        CompactionOptions {
            l0_compaction_trigger_files: 0,
            ..CompactionOptions::default()
        },
        CompactionOptions {
            level_size_multiplier: 1,
            ..CompactionOptions::default()
        },
        CompactionOptions {
            l0_stop_writes_files: 20,
            ..CompactionOptions::default()
        },
        CompactionOptions {
            l0_slowdown_writes_files: 3,
            ..CompactionOptions::default()
        },
        CompactionOptions {
            pending_compaction_stop_bytes: 1,
            ..CompactionOptions::default()
        },
        CompactionOptions {
            compaction_input_bytes_max: 1,
            ..CompactionOptions::default()
        },
    ];
    for options in bad {
        assert!(options.validate().is_err(), "{options:?}");
    }
}

#[test]
fn level_targets_grow_by_the_multiplier() {
    let options = CompactionOptions::default();
    assert_eq!(level_target_bytes(&options, 1), 64 << 20);
    assert_eq!(level_target_bytes(&options, 2), 640 << 20);
    assert_eq!(level_target_bytes(&options, 4), 64_000 << 20);
}

#[test]
fn scores_are_file_count_over_trigger_and_size_over_target() {
    let options = small_options();
    let files = [
        meta(0, 1, "a", "b"),
        meta(0, 2, "a", "b"),
        sized(meta(1, 3, "a", "b"), 500),
        sized(meta(2, 4, "a", "b"), 1250),
    ];
    let scores = compaction_scores(&version_of(&files), &options);
    assert_eq!(scores.len(), LEVEL_COUNT - 1);
    assert_eq!(&scores[..3], &[0.5, 2.0, 0.5]);
    let compaction = pick_compaction(&version_of(&files), &options).unwrap();
    assert_eq!((compaction.level, compaction.output_level), (1, 2));
    assert_eq!(compaction.score, 2.0);
}

#[test]
fn nothing_is_picked_below_every_trigger() {
    let files = [meta(0, 1, "a", "b"), sized(meta(1, 2, "a", "b"), 249)];
    assert!(pick_compaction(&version_of(&files), &small_options()).is_none());
}

#[test]
fn level0_takes_its_oldest_files_up_to_the_cap_and_all_overlapping_level1_files() {
    let mut files: Vec<FileMeta> = (1..=5).map(|n| sized(meta(0, n, "c", "m"), 300)).collect();
    files.push(sized(meta(1, 10, "a", "b"), 10));
    files.push(sized(meta(1, 11, "d", "e"), 10));
    files.push(sized(meta(1, 12, "k", "p"), 10));
    files.push(sized(meta(1, 13, "q", "r"), 10));
    let compaction = pick_compaction(&version_of(&files), &small_options()).unwrap();
    assert_eq!(compaction.level, 0);
    // Three 300-byte files fit in the 1000-byte cap; the oldest go first.
    assert_eq!(numbers(&compaction.inputs), vec![1, 2, 3]);
    assert_eq!(numbers(&compaction.output_level_inputs), vec![11, 12]);
    assert_eq!(compaction.input_bytes(), 900 + 20);
    assert_eq!(compaction.smallest.as_ref(), b"c");
    assert_eq!(compaction.largest.as_ref(), b"p");
    assert!(!compaction.trivial_move);
}

#[test]
fn level0_urgency_is_its_depth_not_its_file_count() {
    // Two flushes, each cut into three disjoint files: depth 2, six files.
    let mut files = Vec::new();
    for (flush, number) in [(0u64, 1u64), (1, 4)] {
        for (i, (low, high)) in [("a", "b"), ("c", "d"), ("e", "f")].into_iter().enumerate() {
            let mut file = meta(0, number + i as u64, low, high);
            (file.min_seq, file.max_seq) = (10 * flush + 1, 10 * flush + 9);
            files.push(file);
        }
    }
    // Something below every range, so nothing moves trivially.
    files.push(meta(1, 20, "a", "f"));
    let version = version_of(&files);
    assert_eq!(l0_depth(&version), 2);
    let options = small_options();
    assert_eq!(compaction_scores(&version, &options)[0], 0.5);
    assert!(pick_compaction(&version, &options).is_none());
}

#[test]
fn level0_takes_only_the_files_sharing_keys_with_its_oldest() {
    let options = CompactionOptions {
        l0_compaction_trigger_files: 2,
        ..small_options()
    };
    let files = [
        meta(0, 1, "a", "c"),
        meta(0, 2, "x", "z"),
        meta(0, 3, "b", "d"),
        meta(0, 4, "d", "e"),
        meta(0, 5, "m", "n"),
        meta(1, 10, "a", "z"),
    ];
    let compaction = pick_compaction(&version_of(&files), &options).unwrap();
    // 1 and 3 overlap, 3 and 4 share "d"; 2 and 5 touch none of them.
    assert_eq!(numbers(&compaction.inputs), vec![1, 3, 4]);
    assert_eq!(numbers(&compaction.output_level_inputs), vec![10]);
}

#[test]
fn a_level0_file_overlapping_nothing_older_moves_down_at_once() {
    let files = [
        meta(0, 1, "a", "c"),
        // Newer and overlapping nothing older: movable, though L0 is
        // below its trigger.
        meta(0, 2, "x", "z"),
        meta(1, 10, "a", "b"),
    ];
    let compaction = pick_compaction(&version_of(&files), &small_options()).unwrap();
    assert!(compaction.trivial_move);
    assert_eq!(numbers(&compaction.inputs), vec![2]);
    // A file with an older overlapping one stays, however little is below.
    let files = [
        meta(0, 1, "a", "c"),
        meta(0, 2, "b", "z"),
        meta(1, 10, "a", "b"),
    ];
    assert!(pick_compaction(&version_of(&files), &small_options()).is_none());
}

#[test]
fn a_level_over_target_moves_a_file_down_before_merging_one() {
    let options = small_options();
    let files = [
        sized(meta(1, 1, "a", "b"), 200),
        sized(meta(1, 2, "c", "d"), 200),
        meta(2, 10, "a", "b"),
    ];
    let compaction = pick_compaction(&version_of(&files), &options).unwrap();
    assert_eq!(compaction.level, 1);
    assert!(compaction.trivial_move);
    assert_eq!(numbers(&compaction.inputs), vec![2]);
}

#[test]
fn level0_always_takes_at_least_one_file() {
    let files: Vec<FileMeta> = (1..=4).map(|n| sized(meta(0, n, "a", "b"), 5000)).collect();
    let compaction = pick_compaction(&version_of(&files), &small_options()).unwrap();
    assert_eq!(numbers(&compaction.inputs), vec![1]);
    assert!(compaction.trivial_move, "one file, nothing below");
}

#[test]
fn the_compaction_pointer_sweeps_a_level_round_robin() {
    let options = small_options();
    let files = [
        meta(1, 1, "a", "b"),
        meta(1, 2, "c", "d"),
        meta(1, 3, "e", "f"),
    ];
    let obsolete = ObsoleteFiles::new();
    let mut version = Arc::new(version_of(&files));
    let mut picked = Vec::new();
    for _ in 0..4 {
        let compaction = pick_compaction(&version, &options).unwrap();
        picked.push(numbers(&compaction.inputs));
        // Record only the pointer, so the level stays over its target.
        let mut edit = crate::storage::version::VersionEdit::new();
        edit.set_compaction_pointer(1, compaction.largest.clone());
        assert_eq!(
            compaction.edit(Vec::new()).compaction_pointers,
            edit.compaction_pointers
        );
        version = Arc::new(version.apply(&edit, &obsolete));
    }
    assert_eq!(picked, vec![vec![1], vec![2], vec![3], vec![1]]);
}

#[test]
fn inputs_expand_to_files_sharing_a_boundary_user_key() {
    let options = small_options();
    let files = [
        meta(1, 1, "a", "c"),
        meta(1, 2, "c", "c"),
        meta(1, 3, "c", "e"),
        meta(1, 4, "f", "g"),
        meta(2, 5, "a", "b"),
        meta(2, 6, "b", "b"),
        meta(2, 7, "f", "h"),
        meta(2, 8, "h", "i"),
        meta(2, 9, "j", "k"),
    ];
    let compaction = pick_compaction(&version_of(&files), &options).unwrap();
    assert_eq!(numbers(&compaction.inputs), vec![1, 2, 3]);
    // [a, e] overlaps 5 and 6, nothing else.
    assert_eq!(numbers(&compaction.output_level_inputs), vec![5, 6]);

    // Picking from "f" on: file 4 overlaps 7 and, through the shared "h",
    // takes 8 too, or 8's older versions of "h" would outlive a tombstone
    // dropped at the bottom.
    let mut edit = crate::storage::version::VersionEdit::new();
    edit.set_compaction_pointer(1, "e".into());
    let version = version_of(&files).apply(&edit, &ObsoleteFiles::new());
    let compaction = pick_compaction(&version, &options).unwrap();
    assert_eq!(numbers(&compaction.inputs), vec![4]);
    assert_eq!(numbers(&compaction.output_level_inputs), vec![7, 8]);
}

#[test]
fn a_file_overlapping_nothing_below_moves_trivially_keeping_its_number() {
    let options = small_options();
    let files = [sized(meta(1, 1, "a", "b"), 300), meta(2, 2, "x", "z")];
    let version = version_of(&files);
    let compaction = pick_compaction(&version, &options).unwrap();
    assert!(compaction.trivial_move);
    assert!(compaction.bottommost);
    let obsolete = ObsoleteFiles::new();
    let moved = version.apply(&compaction.trivial_move_edit(), &obsolete);
    assert_eq!(numbers(moved.level_files(2)), vec![1, 2]);
    assert!(moved.level_files(1).is_empty());
    drop(version);
    drop(compaction);
    assert!(obsolete.take().is_empty());
}

#[test]
fn no_trivial_move_when_the_grandparent_overlap_is_too_large() {
    let options = small_options();
    let files = [
        sized(meta(1, 1, "a", "b"), 300),
        sized(meta(3, 2, "a", "z"), 5000),
    ];
    let compaction = pick_compaction(&version_of(&files), &options).unwrap();
    assert!(!compaction.trivial_move);
    assert!(!compaction.bottommost, "level 3 holds keys in range");
}

#[test]
fn bottommost_means_no_overlapping_data_below_the_output() {
    let options = small_options();
    let mut files = vec![
        sized(meta(1, 1, "c", "d"), 300),
        meta(2, 2, "c", "c"),
        meta(4, 3, "e", "f"),
    ];
    assert!(
        pick_compaction(&version_of(&files), &options)
            .unwrap()
            .bottommost
    );
    files.push(meta(5, 4, "a", "c"));
    assert!(
        !pick_compaction(&version_of(&files), &options)
            .unwrap()
            .bottommost
    );
}

#[test]
fn the_compaction_edit_replaces_every_input_with_the_outputs() {
    let options = small_options();
    let files = [
        sized(meta(1, 1, "a", "d"), 300),
        meta(2, 2, "b", "c"),
        meta(2, 3, "d", "e"),
    ];
    let version = version_of(&files);
    let compaction = pick_compaction(&version, &options).unwrap();
    let edit = compaction.edit(vec![meta(2, 9, "a", "c"), meta(2, 10, "d", "e")]);
    let next = version.apply(&edit, &ObsoleteFiles::new());
    assert!(next.level_files(1).is_empty());
    assert_eq!(numbers(next.level_files(2)), vec![9, 10]);
    assert_eq!(
        next.compaction_pointer(1).map(|k| k.as_ref()),
        Some(&b"d"[..])
    );
}

#[test]
fn pending_bytes_count_the_excess_of_every_level() {
    let options = small_options();
    let calm = [meta(0, 1, "a", "b"), sized(meta(1, 2, "a", "b"), 250)];
    assert_eq!(
        estimate_pending_compaction_bytes(&version_of(&calm), &options),
        0
    );
    // L1 is 250 over target; it merges into an L2 twice its size.
    let busy = [
        sized(meta(1, 1, "a", "b"), 500),
        sized(meta(2, 2, "a", "b"), 1000),
    ];
    assert_eq!(
        estimate_pending_compaction_bytes(&version_of(&busy), &options),
        750
    );
    // Four L0 files count in full and flow into L1.
    let l0: Vec<FileMeta> = (1..=4).map(|n| sized(meta(0, n, "a", "b"), 100)).collect();
    assert_eq!(
        estimate_pending_compaction_bytes(&version_of(&l0), &options),
        400 + 150
    );
}

#[test]
fn memtable_delay_fades_in_with_the_fill_once_one_more_rotation_would_stop() {
    let max = 1000;
    let delay = |waiting, active, batch| memtable_delay_us(waiting, 2, active, max, batch, 1 << 20);
    // Nothing waits, or a rotation would still leave room: no delay.
    assert_eq!(delay(0, 999, 1 << 20), 0);
    // The last allowed memtable waits: zero up to a half-full active
    // memtable, then rising with the square of the fill past it, without a
    // step.
    assert_eq!(delay(1, 0, 1 << 20), 0);
    assert_eq!(delay(1, max / 2, 1 << 20), 0);
    let mut previous = 0;
    for active in (0..=max).step_by(10) {
        let now = delay(1, active, 1 << 20);
        assert!(now >= previous, "{active}: {now} < {previous}");
        assert!(now - previous <= 50_000, "a step at {active}");
        previous = now;
    }
    // Full: the batch's bytes at the drain rate (1 MiB at 1 MiB/s).
    assert_eq!(delay(1, max, 1 << 20), 1_000_000);
    assert_eq!(delay(1, 2 * max, 1 << 20), 1_000_000);
    assert_eq!(delay(1, max * 3 / 4, 1 << 20), 250_000);
    // Proportional to the batch's bytes, inversely to the drain rate.
    assert_eq!(delay(1, max * 3 / 4, 1 << 10), 244);
    assert_eq!(delay(1, max * 3 / 4, 0), 0);
    assert_eq!(memtable_delay_us(1, 2, max, max, 1 << 20, 2 << 20), 500_000);
    // At the stop itself the engine waits instead.
    assert_eq!(delay(2, max, 1 << 20), 0);
    let invalid = CompactionOptions {
        memtable_slowdown_bytes_per_s: 0,
        ..CompactionOptions::default()
    };
    assert!(invalid.validate().is_err());
}

#[test]
fn writes_run_freely_then_slow_then_stop() {
    let options = CompactionOptions::default();
    assert_eq!(write_control(0, 0, &options), WriteControl::Normal);
    assert_eq!(write_control(20, 0, &options), WriteControl::Normal);
    for l0_files in 21..36 {
        assert!(
            matches!(
                write_control(l0_files, 0, &options),
                WriteControl::SlowDown { .. }
            ),
            "{l0_files} L0 files must slow writes before they stop"
        );
    }
    assert_eq!(write_control(36, 0, &options), WriteControl::Stop);
    assert_eq!(write_control(0, 256 << 30, &options), WriteControl::Stop);
    let almost = write_control(35, 0, &options).delay_us().unwrap();
    assert!(almost > options.write_delay_max_us * 8 / 10, "{almost}");
    assert_eq!(WriteControl::Stop.delay_us(), None);
}

#[test]
fn the_delay_rises_continuously_with_pending_bytes() {
    let options = CompactionOptions::default();
    let slow = options.pending_compaction_slowdown_bytes;
    let stop = options.pending_compaction_stop_bytes;
    let steps = 100_000u64;
    // The delay's slope is at most 2 × max over the range; one step may
    // also round by 1 µs.
    let step_delay_max = 2 * options.write_delay_max_us / steps + 1;
    let mut previous = 0u64;
    for i in 0..steps {
        let bytes = slow + (stop - slow) / steps * i;
        let delay = write_control(0, bytes, &options).delay_us().unwrap();
        assert!(delay >= previous, "monotone at {bytes}");
        assert!(delay - previous <= step_delay_max, "continuous at {bytes}");
        previous = delay;
    }
    assert!(previous + step_delay_max >= options.write_delay_max_us);
}

proptest! {
    #![proptest_config(proptest_config(512))]

    #[test]
    fn the_throttle_is_monotone_in_both_signals(
        l0 in 0usize..50,
        extra_l0 in 0usize..5,
        bytes in 0u64..(300 << 30),
        extra_bytes in 0u64..(10 << 30),
    ) {
        let options = CompactionOptions::default();
        let rank = |control: WriteControl| control.delay_us().unwrap_or(u64::MAX);
        let base = rank(write_control(l0, bytes, &options));
        prop_assert!(rank(write_control(l0 + extra_l0, bytes, &options)) >= base);
        prop_assert!(rank(write_control(l0, bytes + extra_bytes, &options)) >= base);
    }

    /// On random valid versions, every picked compaction obeys the rules
    /// that keep reads correct, and installing its result keeps every
    /// level invariant.
    #[test]
    fn picked_compactions_are_correct_on_random_versions(seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let (files, next_number, _) = random_file_set(&mut rng, 8);
        let options = CompactionOptions {
            l0_compaction_trigger_files: 1 + rng.index(4),
            level_base_bytes: 1 + rng.below(2000),
            level_size_multiplier: 2 + rng.below(9),
            target_file_size_bytes: 1,
            compaction_input_bytes_max: 1 + rng.below(3000),
            ..CompactionOptions::default()
        };
        let version = version_of(&files);
        if let Some(compaction) = pick_compaction(&version, &options) {
            check_compaction(&version, &compaction, next_number, &options);
        }
    }
}

fn check_compaction(
    version: &Version,
    compaction: &Compaction,
    next_number: FileNumber,
    options: &CompactionOptions,
) {
    let (level, output) = (compaction.level, compaction.output_level);
    assert_eq!(output, level + 1);
    assert!(!compaction.inputs.is_empty());
    let in_range = |file: &Arc<LiveFile>| {
        file.meta()
            .overlaps(&compaction.smallest, &compaction.largest)
    };
    let input_numbers = numbers(&compaction.inputs);
    if level == 0 {
        // Every L0 file left behind that shares a key with an input is
        // newer than that input.
        for left in version.level_files(0) {
            if input_numbers.contains(&left.number()) {
                continue;
            }
            let left = left.meta();
            for taken in &compaction.inputs {
                let taken = taken.meta();
                if left.overlaps(&taken.smallest, &taken.largest) {
                    assert!(
                        left.min_seq > taken.max_seq,
                        "{left:?} left above {taken:?}"
                    );
                }
            }
        }
    } else {
        // No file left in the input level shares a key with the inputs.
        let (low, high) = (
            &compaction.inputs[0].meta().smallest,
            &compaction.inputs.last().unwrap().meta().largest,
        );
        for file in version.level_files(level) {
            if !input_numbers.contains(&file.number()) {
                assert!(file.meta().largest < *low || file.meta().smallest > *high);
            }
        }
    }
    // The output level's inputs are exactly its files in the final range:
    // none left behind shares a key with the outputs.
    let expected: Vec<_> = version
        .level_files(output)
        .iter()
        .filter(|f| in_range(f))
        .map(|f| f.number())
        .collect();
    assert_eq!(numbers(&compaction.output_level_inputs), expected);
    let below_empty =
        (output + 1..LEVEL_COUNT).all(|l| version.level_files(l).iter().all(|f| !in_range(f)));
    assert_eq!(compaction.bottommost, below_empty);
    assert_eq!(
        compaction.trivial_move,
        compaction.inputs.len() == 1
            && compaction.output_level_inputs.is_empty()
            && version
                .level_files(output + 1)
                .iter()
                .filter(|f| in_range(f))
                .map(|f| f.meta().size_bytes)
                .sum::<u64>()
                <= options.compaction_input_bytes_max
    );
    // Installing one merged output file keeps every invariant.
    let mut merged = meta(level_number(output), next_number, "", "");
    merged.smallest = compaction.smallest.clone();
    merged.largest = compaction.largest.clone();
    merged.max_seq = compaction
        .all_inputs()
        .map(|f| f.meta().max_seq)
        .max()
        .unwrap();
    merged.min_seq = compaction
        .all_inputs()
        .map(|f| f.meta().min_seq)
        .min()
        .unwrap();
    let next = version.apply(&compaction.edit(vec![merged]), &ObsoleteFiles::new());
    assert_eq!(
        next.file_count(),
        version.file_count() + 1 - compaction.all_inputs().count()
    );
    if compaction.trivial_move {
        let moved = version.apply(&compaction.trivial_move_edit(), &ObsoleteFiles::new());
        assert!(moved.contains_file(input_numbers[0]));
    }
}
