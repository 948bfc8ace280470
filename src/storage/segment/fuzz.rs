//! The fuzzing entry point for segment parsing, and the in-memory file it
//! reads from.
//!
//! The fuzz target (`fuzz/fuzz_targets/storage_segment_open.rs`) and a
//! proptest feed arbitrary bytes here. Reading them must never panic; and
//! when a file passes `verify()`, every way of reading it must agree, so the
//! fuzzer also hunts for a file the checks accept but the readers misread.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::cache::BlockCache;
use super::reader::SegmentReader;
use crate::storage::fs::ReadFile;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{Entry, MAX_SEQUENCE_NUMBER};

/// How many entries the fuzz entry reads per iteration at most; a file of n
/// bytes holds fewer than n entries, this only bounds the time per input.
const ENTRIES_READ_MAX: usize = 100_000;

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

/// Opens `data` as a segment file through the map path, the `pread` path
/// and the cached `pread` path, reads a few keys, iterates both ways and
/// verifies. Panics only if a file that passes `verify()` reads
/// inconsistently — a bug the fuzzer should report.
#[doc(hidden)]
pub fn fuzz_segment_open(data: &[u8]) {
    let data = Bytes::copy_from_slice(data);
    for (sliceable, cached) in [(true, false), (false, false), (false, true)] {
        let file: Arc<dyn ReadFile> = Arc::new(MemoryFile::new(data.clone(), sliceable));
        let cache = cached.then(|| Arc::new(BlockCache::new(64 * 1024)));
        let Ok(segment) = SegmentReader::open_with_cache(file, PathBuf::from("fuzz.seg"), 1, cache)
        else {
            continue;
        };
        exercise(&segment, &data);
    }
}

fn exercise(segment: &SegmentReader, data: &Bytes) {
    let meta = segment.meta();
    let mut probes = vec![
        meta.smallest_key.clone(),
        meta.largest_key.clone(),
        Bytes::new(),
        Bytes::from_static(b"\xff\xff\xff\xff"),
    ];
    probes.push(data.slice(..data.len().min(8)));
    for key in &probes {
        for snapshot in [MAX_SEQUENCE_NUMBER, meta.min_seq, meta.max_seq / 2] {
            let _ = segment.get(key, snapshot);
        }
    }
    let forward = read_all(segment, KeyRange::all(), Direction::Forward);
    let reverse = read_all(segment, KeyRange::all(), Direction::Reverse);
    let middle = KeyRange::from_bounds(meta.smallest_key.as_ref()..=meta.largest_key.as_ref());
    let _ = read_all(segment, middle, Direction::Reverse);
    if segment.verify().is_err() {
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
}

/// Every entry of `range`, or `None` after an error.
fn read_all(segment: &SegmentReader, range: KeyRange, direction: Direction) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in segment.iter(range, direction).take(ENTRIES_READ_MAX) {
        entries.push(entry.ok()?);
    }
    Some(entries)
}
