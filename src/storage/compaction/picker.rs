//! Choosing the next compaction: level scores, input files, and the edit
//! that installs the result.
//!
//! Correctness rules the picker upholds (a violation would let an older
//! version of a key shadow a newer one):
//! - From L0 it takes a file only with every *older* L0 file that shares a
//!   key with it: an L0 file left behind is newer than everything in L1 it
//!   overlaps, so newest-first reads stay right. L0 files that overlap have
//!   disjoint sequence ranges, since they come from different memtables;
//!   the files one flush writes (cut at keyspace boundaries) share a
//!   sequence range but no key, so their relative order does not matter.
//!
//! What it prefers, to spend as little rewriting as possible:
//! - L0's urgency is its *depth*, the most L0 files covering one key (what
//!   a point read probes), not its file count: a flush cut into one file
//!   per keyspace adds many files but one level of depth.
//! - A file that can move down without a rewrite (it overlaps nothing in
//!   the level below and, in L0, no older file) moves first: in L0 at
//!   once, whatever the depth (a manifest edit, no data written), and in a
//!   level over its target before any file that needs a merge. Append-only
//!   keyspaces (stream records, time-ordered keys) flush into files that
//!   never overlap what is below, so they descend without being rewritten.
//! - From Ln (n >= 1) it never takes a file without the neighbours that
//!   share a boundary user key with it: moving the newer versions of a key
//!   down while older ones stay above would invert their order.
//! - It takes every file of the output level that overlaps the inputs, so
//!   the output level stays non-overlapping.

use std::sync::Arc;

use bytes::Bytes;

use super::CompactionOptions;
use crate::storage::version::{
    FileMeta, LEVEL_COUNT, LiveFile, Version, VersionEdit, level_number,
};

/// One compaction the engine should run.
#[derive(Debug, Clone)]
pub(crate) struct Compaction {
    /// The level compacted out of.
    pub level: usize,
    /// The level the outputs go to (`level + 1`).
    pub output_level: usize,
    /// The score that made this level the most urgent (>= 1).
    pub score: f64,
    /// The input files of `level` (oldest first for L0, by key below).
    pub inputs: Vec<Arc<LiveFile>>,
    /// The files of `output_level` overlapping the inputs, by key.
    pub output_level_inputs: Vec<Arc<LiveFile>>,
    /// The smallest user key of all inputs.
    pub smallest: Bytes,
    /// The largest user key of all inputs.
    pub largest: Bytes,
    /// The single input can be re-labelled into `output_level` without
    /// rewriting it: it overlaps nothing there and has no neighbour to merge.
    pub trivial_move: bool,
    /// No level below `output_level` holds any key in `[smallest, largest]`,
    /// so a tombstone no snapshot still needs can be dropped, not written.
    pub bottommost: bool,
}

impl Compaction {
    /// The bytes the compaction reads.
    pub(crate) fn input_bytes(&self) -> u64 {
        self.all_inputs().map(|file| file.meta().size_bytes).sum()
    }

    /// Every input file, both levels.
    pub(crate) fn all_inputs(&self) -> impl Iterator<Item = &Arc<LiveFile>> {
        self.inputs.iter().chain(&self.output_level_inputs)
    }

    /// The edit that replaces every input with `outputs` (all of which must
    /// be in `output_level`) and advances the level's compaction pointer.
    pub(crate) fn edit(&self, outputs: Vec<FileMeta>) -> VersionEdit {
        let mut edit = self.removal_edit();
        for output in outputs {
            assert_eq!(
                output.level,
                level_number(self.output_level),
                "compaction output {} must go to level {}",
                output.number,
                self.output_level
            );
            edit.add_file(output);
        }
        edit
    }

    /// The edit of a trivial move: the one input file, re-labelled into
    /// `output_level`, keeping its number and contents.
    pub(crate) fn trivial_move_edit(&self) -> VersionEdit {
        assert!(
            self.trivial_move,
            "compaction of level {} is not a trivial move",
            self.level
        );
        let mut edit = self.removal_edit();
        for file in &self.inputs {
            let mut meta = file.meta().clone();
            meta.level = level_number(self.output_level);
            edit.add_file(meta);
        }
        edit
    }

    fn removal_edit(&self) -> VersionEdit {
        let mut edit = VersionEdit::new();
        for file in &self.inputs {
            edit.remove_file(level_number(self.level), file.number());
        }
        for file in &self.output_level_inputs {
            edit.remove_file(level_number(self.output_level), file.number());
        }
        if self.level > 0
            && let Some(largest) = self.inputs.iter().map(|f| &f.meta().largest).max()
        {
            edit.set_compaction_pointer(level_number(self.level), largest.clone());
        }
        edit
    }
}

/// The target size in bytes of `level` (>= 1): `level_base_bytes ×
/// level_size_multiplier^(level-1)`, saturating.
pub(crate) fn level_target_bytes(options: &CompactionOptions, level: usize) -> u64 {
    assert!(level >= 1, "L0 has a file-count trigger, not a target size");
    let mut target = options.level_base_bytes;
    for _ in 1..level {
        target = target.saturating_mul(options.level_size_multiplier);
    }
    target
}

/// The urgency of compacting each level except the last (which has nowhere
/// to go): L0 by file count ÷ trigger, Ln by size ÷ target. A score of 1
/// or more means the level needs compaction.
pub(crate) fn compaction_scores(version: &Version, options: &CompactionOptions) -> Vec<f64> {
    (0..LEVEL_COUNT - 1)
        .map(|level| {
            if level == 0 {
                l0_depth(version) as f64 / options.l0_compaction_trigger_files as f64
            } else {
                version.level_bytes(level) as f64 / level_target_bytes(options, level) as f64
            }
        })
        .collect()
}

/// The most L0 files that cover one key ([`Version::l0_depth`]).
pub(crate) fn l0_depth(version: &Version) -> usize {
    version.l0_depth()
}

/// The compaction to run next, or `None` if no level has reached its
/// trigger. An L0 file that can move down without a rewrite always can
/// (see the module doc). Ties between scores go to the upper level, whose
/// backlog hurts reads more.
pub(crate) fn pick_compaction(
    version: &Version,
    options: &CompactionOptions,
) -> Option<Compaction> {
    if let Some(moved) = l0_trivial_move(version, options) {
        return Some(moved);
    }
    let scores = compaction_scores(version, options);
    let mut best: Option<(usize, f64)> = None;
    for (level, &score) in scores.iter().enumerate() {
        if score >= 1.0 && best.is_none_or(|(_, best_score)| score > best_score) {
            best = Some((level, score));
        }
    }
    let (level, score) = best?;
    if level == 0 {
        return Some(build(
            version,
            options,
            0,
            score,
            pick_l0_inputs(version, options),
        ));
    }
    let movable = level_trivial_move(version, options, level, score);
    movable.or_else(|| {
        let inputs = pick_level_inputs(version, level);
        Some(build(version, options, level, score, inputs))
    })
}

/// The oldest L0 file that overlaps no older L0 file and can move to L1
/// without a rewrite, as a trivial move (scored 1: due now).
fn l0_trivial_move(version: &Version, options: &CompactionOptions) -> Option<Compaction> {
    let files = version.level_files(0);
    // L0 is kept newest first: `files[i + 1..]` are older than `files[i]`.
    for (i, file) in files.iter().enumerate().rev() {
        let meta = file.meta();
        let older = files.get(i + 1..).unwrap_or(&[]);
        if older
            .iter()
            .any(|o| o.meta().overlaps(&meta.smallest, &meta.largest))
        {
            continue;
        }
        let compaction = build(version, options, 0, 1.0, vec![Arc::clone(file)]);
        if compaction.trivial_move {
            return Some(compaction);
        }
    }
    None
}

/// The oldest L0 file and the L0 files that share keys with it, directly
/// or through one another, oldest first, as many as fit in the input cap
/// (at least one). Every L0 file left behind either shares no key with an
/// input or is newer than every input (a prefix of the group by age is
/// taken), which is what reads need.
fn pick_l0_inputs(version: &Version, options: &CompactionOptions) -> Vec<Arc<LiveFile>> {
    // Oldest first.
    let files: Vec<&Arc<LiveFile>> = version.level_files(0).iter().rev().collect();
    let in_group = overlap_group_of_first(&files);
    let mut inputs = Vec::new();
    let mut bytes = 0u64;
    for (file, _) in files
        .iter()
        .zip(&in_group)
        .filter(|(_, in_group)| **in_group)
    {
        let size = file.meta().size_bytes;
        if !inputs.is_empty() && bytes.saturating_add(size) > options.compaction_input_bytes_max {
            break;
        }
        bytes = bytes.saturating_add(size);
        inputs.push(Arc::clone(file));
    }
    inputs
}

/// Which of `files` share keys with `files[0]`, directly or through one
/// another: the files whose ranges merge, sorted by smallest key, into the
/// same run of overlapping ranges as the first's.
fn overlap_group_of_first(files: &[&Arc<LiveFile>]) -> Vec<bool> {
    let mut by_key: Vec<usize> = (0..files.len()).collect();
    by_key.sort_by(|&a, &b| files[a].meta().smallest.cmp(&files[b].meta().smallest));
    let mut run_of = vec![0usize; files.len()];
    let mut run = 0usize;
    let mut run_largest: Option<&[u8]> = None;
    for &i in &by_key {
        let meta = files[i].meta();
        match run_largest {
            Some(largest) if meta.smallest.as_ref() <= largest => {
                run_largest = Some(largest.max(meta.largest.as_ref()));
            }
            Some(_) => {
                run += 1;
                run_largest = Some(meta.largest.as_ref());
            }
            None => run_largest = Some(meta.largest.as_ref()),
        }
        run_of[i] = run;
    }
    match run_of.first() {
        Some(&first) => run_of.iter().map(|&r| r == first).collect(),
        None => Vec::new(),
    }
}

/// The first file of `level` (from its compaction pointer, wrapping) that
/// can move to the level below without a rewrite, as a trivial move.
fn level_trivial_move(
    version: &Version,
    options: &CompactionOptions,
    level: usize,
    score: f64,
) -> Option<Compaction> {
    let files = version.level_files(level);
    let start = match version.compaction_pointer(level) {
        Some(pointer) => files.partition_point(|f| f.meta().largest.as_ref() <= pointer.as_ref()),
        None => 0,
    };
    for i in (start..files.len()).chain(0..start.min(files.len())) {
        let (first, last) = expand_to_boundaries(files, i, i);
        if first != last {
            continue;
        }
        let meta = files[i].meta();
        if !overlapping_run(version, level + 1, &meta.smallest, &meta.largest).is_empty() {
            continue;
        }
        let compaction = build(version, options, level, score, vec![Arc::clone(&files[i])]);
        if compaction.trivial_move {
            return Some(compaction);
        }
    }
    None
}

/// The first file of `level` past its compaction pointer (wrapping to the
/// first file), with the neighbours sharing its boundary keys.
fn pick_level_inputs(version: &Version, level: usize) -> Vec<Arc<LiveFile>> {
    let files = version.level_files(level);
    let start = match version.compaction_pointer(level) {
        Some(pointer) => files.partition_point(|f| f.meta().largest.as_ref() <= pointer.as_ref()),
        None => 0,
    };
    let start = if start < files.len() { start } else { 0 };
    let (first, last) = expand_to_boundaries(files, start, start);
    files.get(first..=last).unwrap_or(&[]).to_vec()
}

/// Widens the run `files[first..=last]` of a sorted level until neither end
/// shares a user key with the file beyond it.
fn expand_to_boundaries(
    files: &[Arc<LiveFile>],
    mut first: usize,
    mut last: usize,
) -> (usize, usize) {
    while first > 0 && files[first - 1].meta().largest == files[first].meta().smallest {
        first -= 1;
    }
    while last + 1 < files.len() && files[last + 1].meta().smallest == files[last].meta().largest {
        last += 1;
    }
    (first, last)
}

/// The files of sorted `level` overlapping `[smallest, largest]`, expanded
/// to whole boundary keys.
fn overlapping_run(
    version: &Version,
    level: usize,
    smallest: &[u8],
    largest: &[u8],
) -> Vec<Arc<LiveFile>> {
    let files = version.level_files(level);
    let first = files.partition_point(|f| f.meta().largest.as_ref() < smallest);
    let end = files.partition_point(|f| f.meta().smallest.as_ref() <= largest);
    if first >= end {
        return Vec::new();
    }
    let (first, last) = expand_to_boundaries(files, first, end - 1);
    files.get(first..=last).unwrap_or(&[]).to_vec()
}

fn key_range<'a>(files: impl Iterator<Item = &'a Arc<LiveFile>>) -> Option<(Bytes, Bytes)> {
    files.fold(None, |range, file| {
        let meta = file.meta();
        Some(match range {
            None => (meta.smallest.clone(), meta.largest.clone()),
            Some((smallest, largest)) => (
                smallest.min(meta.smallest.clone()),
                largest.max(meta.largest.clone()),
            ),
        })
    })
}

fn build(
    version: &Version,
    options: &CompactionOptions,
    level: usize,
    score: f64,
    inputs: Vec<Arc<LiveFile>>,
) -> Compaction {
    assert!(
        !inputs.is_empty(),
        "level {level} scored {score} but has no files"
    );
    let output_level = level + 1;
    let Some((smallest, largest)) = key_range(inputs.iter()) else {
        unreachable!("inputs are not empty");
    };
    let output_level_inputs = overlapping_run(version, output_level, &smallest, &largest);
    let Some((smallest, largest)) = key_range(inputs.iter().chain(&output_level_inputs)) else {
        unreachable!("inputs are not empty");
    };
    let below = |from: usize| {
        (from..LEVEL_COUNT).map(|l| version.overlapping_inclusive(l, &smallest, &largest))
    };
    let bottommost = below(output_level + 1).all(|files| files.is_empty());
    let grandparent_bytes: u64 = below(output_level + 1)
        .next()
        .unwrap_or_default()
        .iter()
        .map(|file| file.meta().size_bytes)
        .sum();
    let trivial_move = inputs.len() == 1
        && output_level_inputs.is_empty()
        && grandparent_bytes <= options.compaction_input_bytes_max;
    Compaction {
        level,
        output_level,
        score,
        inputs,
        output_level_inputs,
        smallest,
        largest,
        trivial_move,
        bottommost,
    }
}

/// An estimate of the bytes compaction must rewrite to bring every level
/// back within its target (RocksDB's estimate): L0's bytes once it reaches
/// its trigger, and for each level over target the excess plus the share of
/// the next level it will be merged with. Drives write throttling.
pub(crate) fn estimate_pending_compaction_bytes(
    version: &Version,
    options: &CompactionOptions,
) -> u64 {
    let mut pending: u128 = 0;
    let mut incoming: u128 = 0;
    if l0_depth(version) >= options.l0_compaction_trigger_files {
        incoming = u128::from(version.level_bytes(0));
        pending += incoming;
    }
    for level in 1..LEVEL_COUNT - 1 {
        let size = u128::from(version.level_bytes(level)) + incoming;
        let target = u128::from(level_target_bytes(options, level));
        if size > target {
            let excess = size - target;
            let next = u128::from(version.level_bytes(level + 1));
            // Pushing `excess` down also rewrites the part of the next level
            // it overlaps, estimated by the ratio of the two levels' sizes.
            pending += excess * (next + size) / size;
            incoming = excess;
        } else {
            incoming = 0;
        }
    }
    u64::try_from(pending).unwrap_or(u64::MAX)
}
