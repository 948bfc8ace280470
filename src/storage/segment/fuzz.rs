//! The fuzzing entry points for segment parsing, and the in-memory file
//! they read from.
//!
//! The fuzz target (`fuzz/fuzz_targets/storage_segment_open.rs`) and
//! proptests feed arbitrary bytes here. Reading them must never panic and
//! must fail only with `Corruption`; and when a file passes `verify()`, every
//! way of reading it must agree, so the fuzzer also hunts for a file the
//! checks accept but the readers misread.
//!
//! Random bytes almost never carry valid xxh3 checksums, so they stop at the
//! first checksum and the decoders behind it stay unexplored. [`fuzz_segment`]
//! therefore has two modes, chosen by the first input byte:
//! - *raw* (even byte): the rest of the input is the file;
//! - *reframe* (odd byte): the rest describes a valid segment and byte edits
//!   to it, whose checksums are recomputed after the edits (see `reframe`),
//!   so the block, index, filter and footer decoders see hostile content
//!   behind valid checksums.

mod reframe;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::cache::BlockCache;
use super::reader::SegmentReader;
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::ReadFile;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{Entry, MAX_SEQUENCE_NUMBER};

/// How many entries the fuzz entry reads per iteration at most; a file of n
/// bytes holds fewer than n entries, this only bounds the time per input.
const ENTRIES_READ_MAX: usize = 100_000;

/// Written keys used as point-read probes; they pass the bloom filter, so
/// the lookup reaches the index and the block decoder.
const PROBE_KEYS_MAX: usize = 8;

/// Probes also used as range bounds (a scan each way per probe), which
/// drive the restart-point binary search of a seek.
const RANGE_PROBES_MAX: usize = 4;

/// The name and number the fuzzed segment is written and opened under.
const FUZZ_PATH: &str = "fuzz.seg";
const FUZZ_FILE_NUMBER: u64 = 1;

/// A read-only file held in memory, with or without a slice view (to drive
/// both the map and the `pread` paths of the reader).
#[derive(Debug)]
pub(crate) struct MemoryFile {
    data: Bytes,
    sliceable: bool,
}

impl MemoryFile {
    /// `data` as a file; `sliceable` says whether `as_slice` offers it.
    pub(crate) fn new(data: impl Into<Bytes>, sliceable: bool) -> Self {
        Self {
            data: data.into(),
            sliceable,
        }
    }
}

impl ReadFile for MemoryFile {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| self.data.get(start..start.checked_add(buf.len())?));
        match bytes {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the file",
            )),
        }
    }

    fn as_slice(&self) -> Option<&[u8]> {
        self.sliceable.then_some(self.data.as_ref())
    }
}

/// The fuzz target's entry: the first byte chooses the mode (even: raw,
/// odd: reframe, see the module doc), the rest is that mode's input.
#[doc(hidden)]
pub fn fuzz_segment(data: &[u8]) {
    match data.split_first() {
        Some((mode, rest)) if mode & 1 == 1 => fuzz_segment_reframe(rest),
        Some((_, rest)) => fuzz_segment_open(rest),
        None => {}
    }
}

/// Raw mode: opens `data` as a segment file through the map path, the
/// `pread` path and the cached `pread` path, reads a few keys, iterates both
/// ways and verifies. Panics only if a read fails with anything but
/// `Corruption`, or a file that passes `verify()` reads inconsistently — a
/// bug the fuzzer should report.
#[doc(hidden)]
pub fn fuzz_segment_open(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    let probes = [data.slice(..data.len().min(8))];
    read_every_way(&data, &probes);
}

/// Reframe mode: builds a segment from `data`, edits it, reseals its
/// checksums and reads it every way, as [`fuzz_segment_open`] does; an
/// unedited segment must moreover read back exactly what was written.
fn fuzz_segment_reframe(data: &[u8]) {
    let reframed = reframe::reframe(data);
    if reframed.file == reframed.pristine {
        assert_reads_back(&reframed.file, &reframed.entries);
    }
    read_every_way(&reframed.file, &probe_keys(&reframed.entries));
}

/// The three ways the engine opens a segment: map, `pread`, cached `pread`.
fn open_every_way(data: &Bytes) -> impl Iterator<Item = Result<SegmentReader>> + '_ {
    [(true, false), (false, false), (false, true)]
        .into_iter()
        .map(|(sliceable, cached)| {
            let file: Arc<dyn ReadFile> = Arc::new(MemoryFile::new(data.clone(), sliceable));
            let cache = cached.then(|| Arc::new(BlockCache::new(64 * 1024)));
            SegmentReader::open_with_cache(file, PathBuf::from(FUZZ_PATH), FUZZ_FILE_NUMBER, cache)
        })
}

fn read_every_way(data: &Bytes, probes: &[Bytes]) {
    for opened in open_every_way(data) {
        if let Some(segment) = unless_corrupt(opened) {
            exercise(&segment, probes);
        }
    }
}

/// `result`'s value, or `None` after a `Corruption` error. Any other error
/// is a bug: the file is in memory, so only its content can be wrong.
fn unless_corrupt<T>(result: Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(StorageError::Corruption { .. }) => None,
        Err(other) => panic!("reading a segment failed with a non-corruption error: {other}"),
    }
}

fn exercise(segment: &SegmentReader, probes: &[Bytes]) {
    let meta = segment.meta();
    let mut keys = vec![
        meta.smallest_key.clone(),
        meta.largest_key.clone(),
        Bytes::new(),
        Bytes::from_static(b"\xff\xff\xff\xff"),
    ];
    keys.extend_from_slice(probes);
    for key in &keys {
        for snapshot in [MAX_SEQUENCE_NUMBER, meta.min_seq, meta.max_seq / 2] {
            unless_corrupt(segment.get(key, snapshot));
        }
    }
    let forward = read_all(segment, KeyRange::all(), Direction::Forward);
    let reverse = read_all(segment, KeyRange::all(), Direction::Reverse);
    let middle = KeyRange::from_bounds(meta.smallest_key.as_ref()..=meta.largest_key.as_ref());
    read_all(segment, middle, Direction::Reverse);
    let bounded: Vec<_> = probes
        .iter()
        .take(RANGE_PROBES_MAX)
        .map(|key| {
            let from = KeyRange::from_bounds(key.as_ref()..);
            let to = KeyRange::from_bounds(..=key.as_ref());
            let from = read_all(segment, from, Direction::Forward);
            let to = read_all(segment, to, Direction::Reverse);
            (key, from, to)
        })
        .collect();
    if unless_corrupt(segment.verify()).is_none() {
        return;
    }
    // The file passed every check, so every reading must agree.
    let (Some(forward), Some(mut reverse)) = (forward, reverse) else {
        panic!("a verified segment failed to iterate");
    };
    reverse.reverse();
    assert_eq!(forward, reverse, "forward and reverse iteration disagree");
    assert_eq!(
        forward.len() as u64,
        meta.entry_count,
        "entry count disagrees"
    );
    for entry in forward.iter().take(64) {
        let found = segment.get(&entry.key, entry.seq);
        let expected = Some((entry.kind, entry.value.clone()));
        assert!(
            matches!(found, Ok(ref got) if *got == expected),
            "get disagrees with iteration: {found:?} vs {expected:?}"
        );
    }
    for (key, from, to) in bounded {
        let expected: Vec<_> = forward.iter().filter(|e| e.key >= key).cloned().collect();
        assert!(
            from.as_ref() == Some(&expected),
            "a scan from {key:?} disagrees with the full scan"
        );
        let mut expected: Vec<_> = forward.iter().filter(|e| e.key <= key).cloned().collect();
        expected.reverse();
        assert!(
            to.as_ref() == Some(&expected),
            "a reverse scan to {key:?} disagrees with the full scan"
        );
    }
}

/// Every entry of `range`, or `None` after a `Corruption` error.
fn read_all(segment: &SegmentReader, range: KeyRange, direction: Direction) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in segment.iter(range, direction).take(ENTRIES_READ_MAX) {
        entries.push(unless_corrupt(entry)?);
    }
    Some(entries)
}

/// An unedited segment opens every way, verifies, and holds exactly `entries`.
fn assert_reads_back(file: &Bytes, entries: &[Entry]) {
    for opened in open_every_way(file) {
        let segment = match opened {
            Ok(segment) => segment,
            Err(e) => panic!("an unedited segment failed to open: {e}"),
        };
        let verified = segment.verify();
        assert!(
            verified.is_ok(),
            "an unedited segment failed to verify: {verified:?}"
        );
        let read = read_all(&segment, KeyRange::all(), Direction::Forward);
        assert!(
            read.as_deref() == Some(entries),
            "an unedited segment reads back other entries"
        );
    }
}

/// Up to [`PROBE_KEYS_MAX`] distinct written keys, spread over `entries`.
fn probe_keys(entries: &[Entry]) -> Vec<Bytes> {
    let mut keys: Vec<Bytes> = entries.iter().map(|e| e.key.clone()).collect();
    keys.dedup();
    let step = keys.len().div_ceil(PROBE_KEYS_MAX).max(1);
    keys.into_iter().step_by(step).collect()
}
