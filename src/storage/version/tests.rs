//! Tests of versions, edits, lookups and obsolete-file tracking.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::testing::{TestRng, meta, proptest_config, random_file_set};
use super::*;
use crate::storage::types::FileNumber;

fn numbers(files: &[Arc<LiveFile>]) -> Vec<FileNumber> {
    files.iter().map(|file| file.number()).collect()
}

fn version_of(files: &[FileMeta]) -> (Version, Arc<ObsoleteFiles>) {
    let obsolete = ObsoleteFiles::new();
    let version = Version::from_files(files, &[], &obsolete).unwrap();
    (version, obsolete)
}

#[test]
fn level0_is_ordered_newest_first_and_lower_levels_by_key() {
    let mut old = meta(0, 1, "a", "z");
    old.max_seq = 5;
    let mut new = meta(0, 2, "a", "z");
    new.max_seq = 9;
    let files = [old, new, meta(1, 3, "m", "p"), meta(1, 4, "a", "c")];
    let (version, _) = version_of(&files);
    assert_eq!(numbers(version.level_files(0)), vec![2, 1]);
    assert_eq!(numbers(version.level_files(1)), vec![4, 3]);
    assert_eq!(version.level_bytes(1), 200);
    assert_eq!(version.file_count(), 4);
}

#[test]
fn key_lookup_visits_level0_newest_first_then_one_file_per_level() {
    let files = [
        meta(0, 1, "a", "k"),
        meta(0, 2, "m", "z"),
        meta(0, 3, "c", "d"),
        meta(1, 4, "a", "c"),
        meta(1, 5, "d", "f"),
        meta(2, 6, "a", "z"),
    ];
    let (version, _) = version_of(&files);
    let found: Vec<_> = version.files_for_key(b"d").map(|f| f.number()).collect();
    assert_eq!(found, vec![3, 1, 5, 6]);
    let found: Vec<_> = version.files_for_key(b"l").map(|f| f.number()).collect();
    assert_eq!(found, vec![6]);
}

#[test]
fn key_lookup_returns_every_file_sharing_a_boundary_key_in_order() {
    let files = [
        meta(1, 1, "a", "c"),
        meta(1, 2, "c", "c"),
        meta(1, 3, "c", "f"),
        meta(1, 4, "g", "h"),
    ];
    let (version, _) = version_of(&files);
    let found: Vec<_> = version.files_for_key(b"c").map(|f| f.number()).collect();
    assert_eq!(found, vec![1, 2, 3]);
    let range = version.overlapping(1, Bound::Excluded(b"c"), Bound::Included(b"g"));
    assert_eq!(numbers(&range), vec![3, 4]);
}

#[test]
#[should_panic(expected = "which does not list it")]
fn removing_a_file_that_is_not_live_panics() {
    let (version, obsolete) = version_of(&[meta(1, 1, "a", "b")]);
    let mut edit = VersionEdit::new();
    edit.remove_file(2, 1);
    let _ = version.apply(&edit, &obsolete);
}

#[test]
#[should_panic(expected = "overlap in level 1")]
fn adding_an_overlapping_file_below_level0_panics() {
    let (version, obsolete) = version_of(&[meta(1, 1, "a", "f")]);
    let mut edit = VersionEdit::new();
    edit.add_file(meta(1, 2, "e", "g"));
    let _ = version.apply(&edit, &obsolete);
}

#[test]
#[should_panic(expected = "already live")]
fn adding_a_live_file_number_again_panics() {
    let (version, obsolete) = version_of(&[meta(0, 1, "a", "f")]);
    let mut edit = VersionEdit::new();
    edit.add_file(meta(2, 1, "a", "f"));
    let _ = version.apply(&edit, &obsolete);
}

#[test]
fn a_removed_file_is_obsolete_only_after_every_version_and_reader_drops_it() {
    let (version, obsolete) = version_of(&[meta(0, 1, "a", "f"), meta(0, 2, "a", "f")]);
    let reader_file = Arc::clone(&version.level_files(0)[1]);
    assert_eq!(reader_file.number(), 1);
    let mut edit = VersionEdit::new();
    edit.remove_file(0, 1);
    let next = version.apply(&edit, &obsolete);
    assert!(!next.contains_file(1));
    assert!(obsolete.take().is_empty(), "the old version still lists it");
    drop(version);
    assert!(obsolete.take().is_empty(), "a reader still holds it");
    drop(reader_file);
    assert_eq!(obsolete.take(), vec![1]);
    assert!(obsolete.take().is_empty(), "each number is reported once");
    drop(next);
    assert_eq!(obsolete.take(), vec![2]);
}

#[test]
fn a_moved_file_keeps_one_lifetime_across_levels() {
    let (version, obsolete) = version_of(&[meta(1, 7, "a", "f")]);
    let mut edit = VersionEdit::new();
    edit.remove_file(1, 7).add_file(meta(2, 7, "a", "f"));
    let moved = version.apply(&edit, &obsolete);
    drop(version);
    assert!(obsolete.take().is_empty(), "the moved file is still live");
    assert_eq!(numbers(moved.level_files(2)), vec![7]);
    drop(moved);
    assert_eq!(obsolete.take(), vec![7]);
}

#[test]
fn a_poisoned_obsolete_list_reports_nothing() {
    let (version, obsolete) = version_of(&[meta(0, 1, "a", "f")]);
    obsolete.poison();
    drop(version);
    assert!(obsolete.take().is_empty());
}

#[test]
fn compaction_pointers_are_set_by_edits() {
    let (version, obsolete) = version_of(&[]);
    let mut edit = VersionEdit::new();
    edit.set_compaction_pointer(3, Bytes::from_static(b"k"));
    let next = version.apply(&edit, &obsolete);
    assert_eq!(
        next.compaction_pointer(3).map(|k| k.as_ref()),
        Some(&b"k"[..])
    );
    assert_eq!(
        next.compaction_pointers(),
        vec![(3, Bytes::from_static(b"k"))]
    );
    assert_eq!(version.compaction_pointer(3), None);
}

#[test]
fn the_file_set_check_rejects_every_broken_invariant() {
    assert!(check_file_set(&[meta(1, 1, "a", "c"), meta(1, 2, "c", "d")]).is_ok());
    assert!(check_file_set(&[meta(1, 1, "a", "c"), meta(1, 2, "b", "d")]).is_err());
    assert!(check_file_set(&[meta(0, 1, "a", "c"), meta(1, 1, "x", "y")]).is_err());
    assert!(check_file_set(&[meta(7, 1, "a", "c")]).is_err());
    assert!(check_file_set(&[meta(0, 1, "b", "a")]).is_err());
    let mut seqs = meta(0, 1, "a", "b");
    seqs.min_seq = 9;
    seqs.max_seq = 8;
    assert!(check_file_set(&[seqs]).is_err());
}

/// The files of `level` that may hold `key`, by brute force.
fn brute_force_key(version: &Version, key: &[u8]) -> Vec<FileNumber> {
    (0..LEVEL_COUNT)
        .flat_map(|level| version.level_files(level).iter())
        .filter(|file| file.meta().may_contain(key))
        .map(|file| file.number())
        .collect()
}

/// Whether a file meets the range, by brute force: some key of the file's
/// range lies in the bounds, i.e. the ranges intersect.
fn brute_force_overlaps(file: &FileMeta, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> bool {
    let starts_before_upper = match upper {
        Bound::Included(b) => file.smallest.as_ref() <= b,
        Bound::Excluded(b) => file.smallest.as_ref() < b,
        Bound::Unbounded => true,
    };
    let ends_after_lower = match lower {
        Bound::Included(b) => file.largest.as_ref() >= b,
        Bound::Excluded(b) => file.largest.as_ref() > b,
        Bound::Unbounded => true,
    };
    starts_before_upper && ends_after_lower
}

fn random_bound(rng: &mut TestRng) -> (Bytes, u64) {
    (rng.key(), rng.below(3))
}

fn as_bound(key: &Bytes, kind: u64) -> Bound<&[u8]> {
    match kind {
        0 => Bound::Included(key.as_ref()),
        1 => Bound::Excluded(key.as_ref()),
        _ => Bound::Unbounded,
    }
}

fn check_lookups(version: &Version, rng: &mut TestRng) {
    for _ in 0..20 {
        let key = rng.key();
        let found: Vec<_> = version.files_for_key(&key).map(|f| f.number()).collect();
        assert_eq!(found, brute_force_key(version, &key), "key {key:?}");
        let (lower, lower_kind) = random_bound(rng);
        let (upper, upper_kind) = random_bound(rng);
        let (lower, upper) = (as_bound(&lower, lower_kind), as_bound(&upper, upper_kind));
        for level in 0..LEVEL_COUNT {
            let expected: Vec<_> = version
                .level_files(level)
                .iter()
                .filter(|file| brute_force_overlaps(file.meta(), lower, upper))
                .map(|file| file.number())
                .collect();
            let found = numbers(&version.overlapping(level, lower, upper));
            assert_eq!(found, expected, "level {level} range {lower:?}..{upper:?}");
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn lookups_match_brute_force_on_random_file_sets(seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let (files, _, _) = random_file_set(&mut rng, 8);
        let (version, _) = version_of(&files);
        prop_assert_eq!(version.file_count(), files.len());
        check_lookups(&version, &mut rng);
    }

    #[test]
    fn random_edits_keep_invariants_and_match_a_model(seed in any::<u64>()) {
        run_edit_model(seed);
    }
}

/// The model: live files by number, and every number ever added.
struct Model {
    live: BTreeMap<FileNumber, FileMeta>,
    next_number: FileNumber,
    next_seq: u64,
}

impl Model {
    fn new_file(&mut self, level: u32, smallest: Bytes, largest: Bytes) -> FileMeta {
        self.next_number += 1;
        self.next_seq += 10;
        FileMeta {
            level,
            number: self.next_number,
            size_bytes: 10,
            smallest,
            largest,
            min_seq: self.next_seq - 9,
            max_seq: self.next_seq,
            entries: 1,
        }
    }

    /// An edit that installs `[smallest, largest]` in `level`, removing the
    /// files of that level it would overlap (as a compaction would).
    fn install(&mut self, level: u32, smallest: Bytes, largest: Bytes) -> VersionEdit {
        let mut edit = VersionEdit::new();
        if level > 0 {
            let conflicting: Vec<_> = self
                .live
                .values()
                .filter(|f| f.level == level)
                .filter(|f| !(f.largest <= smallest || f.smallest >= largest))
                .map(|f| f.number)
                .collect();
            for number in conflicting {
                edit.remove_file(level, number);
                self.live.remove(&number);
            }
        }
        let file = self.new_file(level, smallest, largest);
        self.live.insert(file.number, file.clone());
        edit.add_file(file);
        edit
    }
}

impl Model {
    /// A random file-set change, applied to the model, or `None` if the
    /// drawn change is impossible right now.
    fn random_edit(&mut self, rng: &mut TestRng) -> Option<VersionEdit> {
        if rng.one_in(2) || self.live.is_empty() {
            let level = u32::try_from(rng.index(LEVEL_COUNT)).unwrap();
            let (a, b) = (rng.key(), rng.key());
            return Some(self.install(level, a.clone().min(b.clone()), a.max(b)));
        }
        let number = *self.live.keys().nth(rng.index(self.live.len())).unwrap();
        let file = self.live[&number].clone();
        let mut edit = VersionEdit::new();
        edit.remove_file(file.level, number);
        if rng.one_in(2) {
            self.live.remove(&number);
            return Some(edit);
        }
        // A trivial move one level down, if the destination is free.
        let target = file.level + 1;
        let blocked = usize::try_from(target).unwrap() >= LEVEL_COUNT
            || self.live.values().any(|f| {
                f.level == target && !(f.largest < file.smallest || f.smallest > file.largest)
            });
        if blocked {
            return None;
        }
        let mut moved = file;
        moved.level = target;
        self.live.insert(number, moved.clone());
        edit.add_file(moved);
        Some(edit)
    }
}

/// What readers hold: whole versions and single file handles.
#[derive(Default)]
struct Readers {
    versions: Vec<Arc<Version>>,
    files: Vec<Arc<LiveFile>>,
}

impl Readers {
    /// A reader takes the current version or one of its files, and maybe
    /// another lets go of what it held.
    fn shuffle(&mut self, current: &Arc<Version>, rng: &mut TestRng) {
        if rng.one_in(2) {
            self.versions.push(Arc::clone(current));
        } else if let Some(file) = current.files().nth(rng.index(current.file_count().max(1))) {
            self.files.push(Arc::clone(file));
        }
        if rng.one_in(2) && !self.versions.is_empty() {
            self.versions.swap_remove(rng.index(self.versions.len()));
        }
        if rng.one_in(2) && !self.files.is_empty() {
            self.files.swap_remove(rng.index(self.files.len()));
        }
    }

    fn referenced(&self, current: &Version) -> BTreeSet<FileNumber> {
        let mut numbers: BTreeSet<FileNumber> = current.files().map(|f| f.number()).collect();
        for version in &self.versions {
            numbers.extend(version.files().map(|f| f.number()));
        }
        numbers.extend(self.files.iter().map(|f| f.number()));
        numbers
    }
}

fn check_matches_model(current: &Version, model: &Model) {
    let mut in_version: Vec<FileMeta> = current.files().map(|f| f.meta().clone()).collect();
    in_version.sort_by_key(|f| f.number);
    let in_model: Vec<FileMeta> = model.live.values().cloned().collect();
    assert_eq!(in_version, in_model);
    check_file_set(&in_version).unwrap();
    for level in 0..LEVEL_COUNT {
        for pair in current.level_files(level).windows(2) {
            let (a, b) = (pair[0].meta(), pair[1].meta());
            if level == 0 {
                assert!(a.max_seq > b.max_seq, "L0 newest first");
            } else {
                assert!(a.largest <= b.smallest, "sorted, non-overlapping");
            }
        }
    }
}

fn run_edit_model(seed: u64) {
    let mut rng = TestRng::new(seed);
    let obsolete = ObsoleteFiles::new();
    let mut model = Model {
        live: BTreeMap::new(),
        next_number: 0,
        next_seq: 0,
    };
    let mut ever: BTreeSet<FileNumber> = BTreeSet::new();
    let mut reported: BTreeSet<FileNumber> = BTreeSet::new();
    let mut current = Arc::new(Version::empty());
    let mut readers = Readers::default();
    for _ in 0..60 {
        let edit = if rng.one_in(4) {
            readers.shuffle(&current, &mut rng);
            VersionEdit::new()
        } else {
            match model.random_edit(&mut rng) {
                Some(edit) => edit,
                None => continue,
            }
        };
        ever.extend(edit.added.iter().map(|f| f.number));
        current = Arc::new(current.apply(&edit, &obsolete));
        check_matches_model(&current, &model);
        check_lookups(&current, &mut rng);

        // Obsolete = ever added minus referenced by anything still alive.
        for number in obsolete.take() {
            assert!(reported.insert(number), "{number} reported twice");
        }
        let referenced = readers.referenced(&current);
        let expected: BTreeSet<FileNumber> = ever.difference(&referenced).copied().collect();
        assert_eq!(reported, expected);
    }
}
