//! Segment tests across writer, reader and iterator: round trips against a
//! `BTreeMap` model, every-byte corruption, and the fuzz entry point.

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use proptest::prelude::*;

use super::fuzz::MemoryFile;
use super::*;
use crate::storage::StorageError;
use crate::storage::fs::{FileSystem, OsFileSystem, ReadFile, WriteFile};
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{Entry, EntryKind, MAX_SEQUENCE_NUMBER, SequenceNumber};

/// A `WriteFile` into shared memory, so tests can open what they wrote.
#[derive(Debug, Clone, Default)]
pub(crate) struct VecFile(pub(crate) Arc<Mutex<Vec<u8>>>);

impl WriteFile for VecFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.lock().extend_from_slice(buf);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        crate::storage::fs::write_into_vec(&mut self.0.lock(), offset, buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.lock().truncate(len as usize);
        Ok(())
    }
    fn preallocate(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    fn len(&self) -> u64 {
        self.0.lock().len() as u64
    }
}

pub(crate) fn entry(key: &[u8], seq: SequenceNumber, kind: EntryKind, value: &[u8]) -> Entry {
    Entry {
        key: Bytes::copy_from_slice(key),
        seq,
        kind,
        value: Bytes::copy_from_slice(value),
    }
}

/// The bytes of a segment holding `entries` (already in internal order).
pub(crate) fn build_bytes(entries: &[Entry], options: SegmentOptions) -> (Vec<u8>, SegmentMeta) {
    let file = VecFile::default();
    let mut writer = SegmentWriter::new(
        Box::new(file.clone()),
        PathBuf::from("test.seg"),
        7,
        options,
    );
    for e in entries {
        writer.add(&e.key, e.seq, e.kind, &e.value).unwrap();
    }
    let meta = writer.finish().unwrap();
    let bytes = file.0.lock().clone();
    (bytes, meta)
}

pub(crate) fn open_bytes(bytes: Vec<u8>, sliceable: bool) -> Result<SegmentReader, StorageError> {
    let file: Arc<dyn ReadFile> = Arc::new(MemoryFile::new(bytes, sliceable));
    SegmentReader::open(file, PathBuf::from("test.seg"), 7)
}

fn small_blocks() -> SegmentOptions {
    SegmentOptions {
        block_size_bytes: 96,
        restart_interval: 3,
        ..SegmentOptions::default()
    }
}

fn sample_entries() -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut seq = 1000;
    for i in 0..60u32 {
        let key = format!("key{:03}", i);
        for version in 0..(1 + i % 3) {
            seq -= 1;
            let kind = if (i + version) % 4 == 3 {
                EntryKind::Delete
            } else {
                EntryKind::Put
            };
            let value = if kind == EntryKind::Put {
                format!("value-{i}-{version}")
            } else {
                String::new()
            };
            entries.push(entry(key.as_bytes(), seq, kind, value.as_bytes()));
        }
    }
    entries
}

fn collect(segment: &SegmentReader, range: KeyRange, direction: Direction) -> Vec<Entry> {
    segment
        .iter(range, direction)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

#[test]
fn writes_and_reads_back_through_every_read_path() {
    let entries = sample_entries();
    let (bytes, meta) = build_bytes(&entries, small_blocks());
    assert_eq!(meta.file_size_bytes, bytes.len() as u64);
    assert_eq!(meta.entry_count, entries.len() as u64);
    assert_eq!(meta.smallest_key.as_ref(), b"key000");
    assert_eq!(meta.largest_key.as_ref(), b"key059");
    assert_eq!(meta.min_seq, entries.iter().map(|e| e.seq).min().unwrap());
    assert_eq!(meta.max_seq, entries.iter().map(|e| e.seq).max().unwrap());
    for sliceable in [true, false] {
        let segment = open_bytes(bytes.clone(), sliceable).unwrap();
        assert_eq!(segment.meta(), meta);
        assert!(
            segment.index().len() > 10,
            "small blocks should give many blocks"
        );
        segment.verify().unwrap();
        assert_eq!(
            collect(&segment, KeyRange::all(), Direction::Forward),
            entries
        );
        let mut reverse = collect(&segment, KeyRange::all(), Direction::Reverse);
        reverse.reverse();
        assert_eq!(reverse, entries);
        for e in &entries {
            assert_eq!(
                segment.get(&e.key, e.seq).unwrap(),
                Some((e.kind, e.value.clone()))
            );
        }
        assert_eq!(segment.get(b"key0005", MAX_SEQUENCE_NUMBER).unwrap(), None);
        assert_eq!(segment.get(b"zzz", MAX_SEQUENCE_NUMBER).unwrap(), None);
        assert_eq!(segment.get(b"key000", 0).unwrap(), None);
    }
}

#[test]
fn writes_and_reads_through_the_os_file_system() {
    let entries = sample_entries();
    let dir = tempfile::tempdir().unwrap();
    for mmap in [true, false] {
        let fs = OsFileSystem::new(mmap);
        let path = dir.path().join(format!("{mmap}.seg"));
        let mut writer = SegmentWriter::create(&fs, &path, 3, SegmentOptions::default()).unwrap();
        for e in &entries {
            writer.add(&e.key, e.seq, e.kind, &e.value).unwrap();
        }
        let meta = writer.finish().unwrap();
        let file = fs.open_read(&path).unwrap();
        assert_eq!(file.len(), meta.file_size_bytes);
        let cache = Arc::new(BlockCache::new(1 << 20));
        let segment =
            SegmentReader::open_with_cache(file, path.clone(), 3, Some(cache.clone())).unwrap();
        assert_eq!(segment.path(), path.as_path());
        segment.verify().unwrap();
        for e in &entries {
            assert_eq!(
                segment.get(&e.key, e.seq).unwrap(),
                Some((e.kind, e.value.clone()))
            );
        }
        assert_eq!(cache.used_bytes() > 0, !mmap, "only the pread path caches");
    }
}

#[test]
fn huge_values_get_blocks_of_their_own() {
    let huge = vec![7u8; 3 * 4096];
    let entries = vec![
        entry(b"a", 3, EntryKind::Put, b""),
        entry(b"b", 2, EntryKind::Put, &huge),
        entry(b"c", 1, EntryKind::Put, b"small"),
    ];
    let (bytes, _) = build_bytes(&entries, SegmentOptions::default());
    let segment = open_bytes(bytes, true).unwrap();
    segment.verify().unwrap();
    assert_eq!(
        segment.get(b"b", 5).unwrap(),
        Some((EntryKind::Put, Bytes::from(huge)))
    );
    assert_eq!(
        segment.get(b"a", 5).unwrap(),
        Some((EntryKind::Put, Bytes::new()))
    );
    assert_eq!(
        collect(&segment, KeyRange::all(), Direction::Forward),
        entries
    );
}

#[test]
fn writer_rejects_misordered_entries_and_empty_segments() {
    let file = VecFile::default();
    let mut writer = SegmentWriter::new(
        Box::new(file),
        PathBuf::from("x"),
        1,
        SegmentOptions::default(),
    );
    writer.add(b"b", 5, EntryKind::Put, b"").unwrap();
    let misordered = [(b"a".as_slice(), 9), (b"b", 5), (b"b", 6)];
    for (key, seq) in misordered {
        assert!(matches!(
            writer.add(key, seq, EntryKind::Put, b""),
            Err(StorageError::InvalidArgument(_))
        ));
    }
    writer.add(b"b", 4, EntryKind::Delete, b"").unwrap();
    let too_long = vec![0u8; KEY_BYTES_MAX + 1];
    assert!(writer.add(&too_long, 1, EntryKind::Put, b"").is_err());
    assert!(
        writer
            .add(b"c", MAX_SEQUENCE_NUMBER + 1, EntryKind::Put, b"")
            .is_err()
    );
    assert_eq!(writer.entry_count(), 2);

    let empty = SegmentWriter::new(
        Box::new(VecFile::default()),
        PathBuf::from("y"),
        2,
        SegmentOptions::default(),
    );
    assert!(matches!(
        empty.finish(),
        Err(StorageError::InvalidArgument(_))
    ));
}

#[test]
fn rolling_never_splits_one_keys_versions() {
    let options = SegmentOptions {
        target_file_size_bytes: 300,
        block_size_bytes: 64,
        ..SegmentOptions::default()
    };
    let entries = sample_entries();
    let mut files: Vec<Vec<Entry>> = Vec::new();
    let mut writer: Option<SegmentWriter> = None;
    let mut current = Vec::new();
    for e in &entries {
        if writer
            .as_ref()
            .is_some_and(|w| w.should_roll_before(&e.key))
        {
            writer.take().unwrap().finish().unwrap();
            files.push(std::mem::take(&mut current));
        }
        let w = writer.get_or_insert_with(|| {
            SegmentWriter::new(Box::new(VecFile::default()), PathBuf::from("r"), 1, options)
        });
        w.add(&e.key, e.seq, e.kind, &e.value).unwrap();
        current.push(e.clone());
    }
    files.push(current);
    assert!(
        files.len() > 3,
        "expected several files, got {}",
        files.len()
    );
    for pair in files.windows(2) {
        let (last, first) = (pair[0].last().unwrap(), pair[1].first().unwrap());
        assert_ne!(last.key, first.key, "a key's versions straddle two files");
    }
}

#[test]
fn every_flipped_byte_is_detected() {
    let entries: Vec<_> = sample_entries().into_iter().take(12).collect();
    let (bytes, _) = build_bytes(
        &entries,
        SegmentOptions {
            block_size_bytes: 64,
            ..small_blocks()
        },
    );
    for position in 0..bytes.len() {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0x5a;
        for sliceable in [true, false] {
            let Ok(segment) = open_bytes(damaged.clone(), sliceable) else {
                continue;
            };
            // Reads return the right answer or an error, never a wrong one.
            for e in &entries {
                match segment.get(&e.key, e.seq) {
                    Ok(found) => {
                        assert_eq!(found, Some((e.kind, e.value.clone())), "byte {position}")
                    }
                    Err(StorageError::Corruption { .. }) => {}
                    Err(other) => panic!("byte {position}: unexpected error {other}"),
                }
            }
            for direction in [Direction::Forward, Direction::Reverse] {
                let mut expected = entries.clone();
                if direction == Direction::Reverse {
                    expected.reverse();
                }
                for (got, want) in segment.iter(KeyRange::all(), direction).zip(&expected) {
                    match got {
                        Ok(got) => assert_eq!(&got, want, "byte {position}"),
                        Err(_) => break,
                    }
                }
            }
            assert!(
                segment.verify().is_err(),
                "flip at byte {position} passed verify"
            );
        }
    }
}

#[test]
fn truncated_files_are_corruption() {
    let (bytes, _) = build_bytes(&sample_entries(), small_blocks());
    for len in (0..bytes.len()).step_by(7) {
        let result = open_bytes(bytes[..len].to_vec(), len % 2 == 0);
        assert!(
            matches!(result, Err(StorageError::Corruption { .. })),
            "length {len}"
        );
    }
}

#[test]
fn corruption_names_the_file_and_offset() {
    let (mut bytes, _) = build_bytes(&sample_entries(), small_blocks());
    bytes[10] ^= 1;
    let segment = open_bytes(bytes, true).unwrap();
    match segment.verify() {
        Err(StorageError::Corruption {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, Path::new("test.seg"));
            assert_eq!(offset, 0, "the first block starts at 0");
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}

// --- Model tests -----------------------------------------------------------

type Model = BTreeMap<(Vec<u8>, std::cmp::Reverse<u64>), (EntryKind, Vec<u8>)>;

fn key_of(n: u8) -> Vec<u8> {
    // Shared prefixes of varying length exercise prefix compression.
    let mut key = b"prefix/".to_vec();
    key.extend(std::iter::repeat_n(b'k', usize::from(n % 4)));
    key.push(n);
    key
}

fn arb_model() -> impl Strategy<Value = Model> {
    prop::collection::vec((0u8..40, 1u64..500, any::<bool>(), 0usize..40), 1..200).prop_map(|ops| {
        ops.into_iter()
            .map(|(key, seq, put, value_len)| {
                let kind = if put {
                    EntryKind::Put
                } else {
                    EntryKind::Delete
                };
                let value = if put {
                    vec![key ^ seq as u8; value_len]
                } else {
                    Vec::new()
                };
                ((key_of(key), std::cmp::Reverse(seq)), (kind, value))
            })
            .collect()
    })
}

fn arb_bound() -> impl Strategy<Value = Bound<Bytes>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0u8..42).prop_map(|k| Bound::Included(Bytes::from(key_of(k)))),
        (0u8..42).prop_map(|k| Bound::Excluded(Bytes::from(key_of(k)))),
    ]
}

fn model_entries(model: &Model) -> Vec<Entry> {
    model
        .iter()
        .map(|((key, seq), (kind, value))| entry(key, seq.0, *kind, value))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn reads_match_a_btreemap_model(
        model in arb_model(),
        block_size_bytes in prop_oneof![Just(32usize), Just(200), Just(4096)],
        restart_interval in 1usize..20,
        sliceable in any::<bool>(),
        probes in prop::collection::vec((0u8..42, 0u64..520), 20),
        start in arb_bound(),
        end in arb_bound(),
    ) {
        let entries = model_entries(&model);
        let options = SegmentOptions { block_size_bytes, restart_interval, ..SegmentOptions::default() };
        let (bytes, _) = build_bytes(&entries, options);
        let segment = open_bytes(bytes, sliceable).unwrap();
        segment.verify().unwrap();

        for (key, snapshot) in probes {
            let key = key_of(key);
            let expected = model
                .range((key.clone(), std::cmp::Reverse(snapshot))..)
                .next()
                .filter(|((k, _), _)| *k == key)
                .map(|(_, (kind, value))| (*kind, Bytes::from(value.clone())));
            prop_assert_eq!(segment.get(&key, snapshot).unwrap(), expected);
        }

        let range = KeyRange::new(start, end);
        let expected: Vec<Entry> = entries.iter().filter(|e| range.contains(&e.key)).cloned().collect();
        prop_assert_eq!(&collect(&segment, range.clone(), Direction::Forward), &expected);
        let mut reverse = collect(&segment, range, Direction::Reverse);
        reverse.reverse();
        prop_assert_eq!(&reverse, &expected);
    }
}

// --- Fuzz entry ------------------------------------------------------------

fn valid_segment_bytes() -> Vec<u8> {
    let entries: Vec<_> = sample_entries().into_iter().take(30).collect();
    build_bytes(
        &entries,
        SegmentOptions {
            block_size_bytes: 80,
            ..small_blocks()
        },
    )
    .0
}

#[test]
fn fuzz_entry_accepts_a_valid_segment() {
    // Valid input runs the consistency assertions in full.
    fuzz_segment_open(&valid_segment_bytes());
    fuzz_segment_open(&[]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn fuzz_entry_never_panics_on_mutated_segments(
        mutations in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = valid_segment_bytes();
        for (index, value) in mutations {
            let position = index.index(bytes.len());
            bytes[position] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        fuzz_segment_open(&bytes);
    }

    #[test]
    fn fuzz_entry_never_panics_on_random_bytes(
        mut bytes in prop::collection::vec(any::<u8>(), 0..400),
        with_tail in any::<bool>(),
    ) {
        if with_tail {
            // A valid-looking tail gets the random bytes past the magic check.
            let valid = valid_segment_bytes();
            bytes.extend_from_slice(&valid[valid.len() - 24..]);
        }
        fuzz_segment_open(&bytes);
    }
}
