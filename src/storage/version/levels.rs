//! [`Version`]: one immutable snapshot of which segment files are live in
//! which level, and the lookups the read path and compaction need.
//!
//! Level 0 holds flushed memtables; its files may overlap and are kept
//! newest first (by largest sequence number), so a reader that stops at the
//! first hit sees the newest version of a key. Levels 1 and below hold
//! sorted runs: their files are ordered by key and do not overlap, except
//! that two neighbours may share one boundary user key when a compaction
//! split that key's versions (the earlier file then holds the newer ones).
//! A version never changes; an edit produces a new one.

#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::{FileGuard, FileMeta, LiveFile, ObsoleteFiles, VersionEdit};
use crate::storage::types::FileNumber;

/// How many levels the tree has (L0 to L6, as in LevelDB and RocksDB). With
/// a 64 MiB L1 and a multiplier of 10 the last level's target is 64 TiB,
/// beyond any database this engine is meant for.
pub(crate) const LEVEL_COUNT: usize = 7;

/// The live files of every level at one moment; see the module doc.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    levels: Vec<Vec<Arc<LiveFile>>>,
    compaction_pointers: Vec<Option<Bytes>>,
    /// [`Version::l0_depth`], computed on first use: the write path asks
    /// for it on every throttled batch.
    l0_depth: OnceLock<usize>,
}

impl Default for Version {
    fn default() -> Self {
        Self::empty()
    }
}

impl Version {
    /// A version with no files.
    pub(crate) fn empty() -> Self {
        Self {
            levels: vec![Vec::new(); LEVEL_COUNT],
            compaction_pointers: vec![None; LEVEL_COUNT],
            l0_depth: OnceLock::new(),
        }
    }

    /// Builds the version a recovered manifest describes, or says why the
    /// file set breaks a level invariant. Every file gets a fresh guard.
    pub(crate) fn from_files(
        files: &[FileMeta],
        compaction_pointers: &[(u32, Bytes)],
        obsolete: &Arc<ObsoleteFiles>,
    ) -> Result<Self, String> {
        check_file_set(files)?;
        let mut version = Self::empty();
        for meta in files {
            let guard = FileGuard::new(meta.number, obsolete);
            version.levels[level_index(meta.level)].push(LiveFile::new(meta.clone(), guard));
        }
        for (level, key) in compaction_pointers {
            let slot = version
                .compaction_pointers
                .get_mut(level_index(*level))
                .ok_or_else(|| format!("compaction pointer for missing level {level}"))?;
            *slot = Some(key.clone());
        }
        for (level, files) in version.levels.iter_mut().enumerate() {
            sort_level(level, files);
        }
        Ok(version)
    }

    /// The files of `level` in read order (L0 newest first, L1+ by key).
    pub(crate) fn level_files(&self, level: usize) -> &[Arc<LiveFile>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// The total size of `level`'s files in bytes.
    pub(crate) fn level_bytes(&self, level: usize) -> u64 {
        self.level_files(level)
            .iter()
            .map(|file| file.meta().size_bytes)
            .sum()
    }

    /// How many files are live in all levels.
    pub(crate) fn file_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Every live file, level by level in read order.
    pub(crate) fn files(&self) -> impl Iterator<Item = &Arc<LiveFile>> {
        self.levels.iter().flatten()
    }

    /// The largest user key of the last compaction out of `level`, if any:
    /// the next one starts after it, so compaction sweeps the key space.
    pub(crate) fn compaction_pointer(&self, level: usize) -> Option<&Bytes> {
        self.compaction_pointers.get(level).and_then(Option::as_ref)
    }

    /// Every compaction pointer that is set, as `(level, key)`.
    pub(crate) fn compaction_pointers(&self) -> Vec<(u32, Bytes)> {
        self.compaction_pointers
            .iter()
            .enumerate()
            .filter_map(|(level, key)| Some((level_number(level), key.clone()?)))
            .collect()
    }

    /// Whether file `number` is live in any level.
    pub(crate) fn contains_file(&self, number: FileNumber) -> bool {
        self.files().any(|file| file.number() == number)
    }

    /// The files that may hold `key`, in the order a point read must consult
    /// them: the overlapping L0 files newest first, then in each lower level
    /// the (at most one, or a few sharing `key` as a boundary) file whose
    /// range covers it, found by binary search.
    pub(crate) fn files_for_key<'a>(&'a self, key: &'a [u8]) -> KeyFiles<'a> {
        KeyFiles {
            version: self,
            key,
            level: 0,
            index: 0,
        }
    }

    /// The files of `level` whose key range meets `(lower, upper)`, in read order.
    pub(crate) fn overlapping(
        &self,
        level: usize,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Vec<Arc<LiveFile>> {
        let files = self.level_files(level);
        let meets = |file: &&Arc<LiveFile>| {
            satisfies_lower(&file.meta().largest, lower)
                && satisfies_upper(&file.meta().smallest, upper)
        };
        if level == 0 {
            return files.iter().filter(meets).cloned().collect();
        }
        let start = files.partition_point(|file| !satisfies_lower(&file.meta().largest, lower));
        files
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|file| satisfies_upper(&file.meta().smallest, upper))
            .cloned()
            .collect()
    }

    /// The files of `level` that meet the inclusive range `[smallest, largest]`.
    pub(crate) fn overlapping_inclusive(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<LiveFile>> {
        self.overlapping(level, Bound::Included(smallest), Bound::Included(largest))
    }

    /// The version this one becomes under `edit`.
    ///
    /// Panics (in release builds too) if the edit is inconsistent with this
    /// version — removing a file that is not there, adding one that already
    /// is, or making a level below L0 overlap — because installing such a
    /// version would lose or resurrect data.
    pub(crate) fn apply(&self, edit: &VersionEdit, obsolete: &Arc<ObsoleteFiles>) -> Self {
        let mut levels = self.levels.clone();
        let mut touched = [false; LEVEL_COUNT];
        // A file removed from one level and added to another (a trivial
        // move) keeps its guard, so its single lifetime spans both listings.
        let mut removed_guards: HashMap<FileNumber, Arc<FileGuard>> = HashMap::new();
        for &(level, number) in &edit.removed {
            let index = level_index(level);
            assert!(
                index < LEVEL_COUNT,
                "edit removes file {number} from missing level {level}"
            );
            let files = &mut levels[index];
            let position = files.iter().position(|file| file.number() == number);
            let Some(position) = position else {
                panic!("edit removes file {number} from level {level}, which does not list it");
            };
            let file = files.remove(position);
            removed_guards.insert(number, Arc::clone(file.guard()));
            touched[index] = true;
        }
        let mut live: HashSet<FileNumber> = levels.iter().flatten().map(|f| f.number()).collect();
        for meta in &edit.added {
            if let Err(reason) = meta.check(level_number(LEVEL_COUNT)) {
                panic!("edit adds an invalid file: {reason}");
            }
            assert!(
                live.insert(meta.number),
                "edit adds file {} which is already live",
                meta.number
            );
            let guard = match removed_guards.get(&meta.number) {
                Some(guard) => Arc::clone(guard),
                None => FileGuard::new(meta.number, obsolete),
            };
            let index = level_index(meta.level);
            levels[index].push(LiveFile::new(meta.clone(), guard));
            touched[index] = true;
        }
        for (level, files) in levels.iter_mut().enumerate() {
            if touched[level] {
                sort_level(level, files);
                if let Err(reason) = check_level(level, files.iter().map(|f| f.meta())) {
                    panic!("edit breaks a level invariant: {reason}");
                }
            }
        }
        let mut compaction_pointers = self.compaction_pointers.clone();
        for (level, key) in &edit.compaction_pointers {
            let index = level_index(*level);
            assert!(
                index < LEVEL_COUNT,
                "compaction pointer for missing level {level}"
            );
            compaction_pointers[index] = Some(key.clone());
        }
        Self {
            levels,
            compaction_pointers,
            l0_depth: OnceLock::new(),
        }
    }

    /// The most L0 files that cover one key: how many L0 files a point read
    /// may probe, and what L0's compaction trigger and write throttling
    /// count. Files of one flush are disjoint, so this is at most the
    /// number of flushes in L0, however many keyspaces each wrote.
    pub(crate) fn l0_depth(&self) -> usize {
        *self.l0_depth.get_or_init(|| {
            // A sweep over the files' inclusive ranges: starts sort before
            // ends at an equal key, since a range ending at `k` and one
            // starting at `k` share it.
            let files = self.level_files(0);
            let mut events: Vec<(&[u8], bool)> = Vec::with_capacity(files.len() * 2);
            for file in files {
                events.push((file.meta().smallest.as_ref(), false));
                events.push((file.meta().largest.as_ref(), true));
            }
            events.sort_unstable();
            let (mut depth, mut deepest) = (0usize, 0usize);
            for (_, is_end) in events {
                if is_end {
                    depth = depth.saturating_sub(1);
                } else {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
            }
            deepest
        })
    }
}

/// The iterator of [`Version::files_for_key`].
#[derive(Debug)]
pub(crate) struct KeyFiles<'a> {
    version: &'a Version,
    key: &'a [u8],
    level: usize,
    /// The next file of `level` to look at; for L1+ it is set by binary
    /// search when the level is entered.
    index: usize,
}

impl<'a> Iterator for KeyFiles<'a> {
    type Item = &'a Arc<LiveFile>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.level < LEVEL_COUNT {
            let files = self.version.level_files(self.level);
            if self.level == 0 {
                while let Some(file) = files.get(self.index) {
                    self.index += 1;
                    if file.meta().may_contain(self.key) {
                        return Some(file);
                    }
                }
            } else if let Some(file) = files.get(self.index) {
                // Files of a sorted level that contain the key form one
                // contiguous run, so the first miss ends the level.
                if file.meta().may_contain(self.key) {
                    self.index += 1;
                    return Some(file);
                }
            }
            self.level += 1;
            let key = self.key;
            self.index = self
                .version
                .level_files(self.level)
                .partition_point(|file| file.meta().largest.as_ref() < key);
        }
        None
    }
}

/// Checks what every version's file set must satisfy: valid records, unique
/// numbers, and sorted, non-overlapping levels below L0.
pub(crate) fn check_file_set(files: &[FileMeta]) -> Result<(), String> {
    let mut numbers = HashSet::new();
    let mut levels: Vec<Vec<&FileMeta>> = vec![Vec::new(); LEVEL_COUNT];
    for meta in files {
        meta.check(level_number(LEVEL_COUNT))?;
        if !numbers.insert(meta.number) {
            return Err(format!("file {} is listed twice", meta.number));
        }
        levels[level_index(meta.level)].push(meta);
    }
    for (level, metas) in levels.iter_mut().enumerate() {
        metas.sort_by(|a, b| read_order(level, a, b));
        check_level(level, metas.iter().copied())?;
    }
    Ok(())
}

/// Puts a level's files in read order.
fn sort_level(level: usize, files: &mut [Arc<LiveFile>]) {
    files.sort_by(|a, b| read_order(level, a.meta(), b.meta()));
}

/// L0: newest data first. L1+: by key range; two files holding only one
/// shared key order newest first.
fn read_order(level: usize, a: &FileMeta, b: &FileMeta) -> Ordering {
    if level == 0 {
        return b.max_seq.cmp(&a.max_seq).then(b.number.cmp(&a.number));
    }
    a.smallest
        .cmp(&b.smallest)
        .then_with(|| a.largest.cmp(&b.largest))
        .then(b.max_seq.cmp(&a.max_seq))
}

/// Checks one level's files, given in read order.
fn check_level<'a>(level: usize, files: impl Iterator<Item = &'a FileMeta>) -> Result<(), String> {
    let mut previous: Option<&FileMeta> = None;
    for meta in files {
        if level_index(meta.level) != level {
            return Err(format!(
                "file {} says level {} but is listed in level {level}",
                meta.number, meta.level
            ));
        }
        if let Some(prev) = previous
            && level > 0
            && prev.largest > meta.smallest
        {
            return Err(format!(
                "files {} and {} overlap in level {level}",
                prev.number, meta.number
            ));
        }
        previous = Some(meta);
    }
    Ok(())
}

fn satisfies_lower(key: &[u8], lower: Bound<&[u8]>) -> bool {
    match lower {
        Bound::Included(bound) => key >= bound,
        Bound::Excluded(bound) => key > bound,
        Bound::Unbounded => true,
    }
}

fn satisfies_upper(key: &[u8], upper: Bound<&[u8]>) -> bool {
    match upper {
        Bound::Included(bound) => key <= bound,
        Bound::Excluded(bound) => key < bound,
        Bound::Unbounded => true,
    }
}

/// A level number from a file record as an index. Saturates so an absurd
/// number fails the `< LEVEL_COUNT` checks instead of wrapping.
pub(crate) fn level_index(level: u32) -> usize {
    usize::try_from(level).unwrap_or(usize::MAX)
}

/// A level index as stored in file records.
pub(crate) fn level_number(level: usize) -> u32 {
    u32::try_from(level).unwrap_or(u32::MAX)
}
