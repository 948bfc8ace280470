//! Reframe mode: a valid segment built from fuzz input, edited, then
//! resealed.
//!
//! The input names the writer's options and the entries, which the real
//! `SegmentWriter` turns into a file, and byte edits to that file. After the
//! edits, a small walk of the footer and index *as edited* finds the data
//! blocks, filter, index and footer and recomputes their checksums, so the
//! reader gets past every checksum to the decoders behind it.

use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::{FUZZ_FILE_NUMBER, FUZZ_PATH};
use crate::storage::fs::WriteFile;
use crate::storage::segment::SegmentOptions;
use crate::storage::segment::block::Block;
use crate::storage::segment::codec::{CHECKSUM_BYTES, Cursor, checksum, u32_at};
use crate::storage::segment::footer::{BlockHandle, TAIL_BYTES};
use crate::storage::segment::writer::SegmentWriter;
use crate::storage::types::{Entry, EntryKind, compare_internal};

/// Entries of a reframed segment at most: at small block sizes enough for
/// many blocks and restart intervals, few enough to build in microseconds.
const REFRAME_ENTRIES_MAX: usize = 64;

/// Edits applied to a reframed segment at most; a few already make most
/// files fail, more only slow each input down.
const REFRAME_EDITS_MAX: usize = 32;

/// Bytes of one encoded edit: what, position (u16), operand.
const EDIT_BYTES: usize = 4;

/// A file written in memory; clones share the bytes, so they stay readable
/// after the writer that owned the file is gone.
#[derive(Debug, Clone, Default)]
struct MemoryWriteFile(Arc<Mutex<Vec<u8>>>);

impl WriteFile for MemoryWriteFile {
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
        self.0
            .lock()
            .truncate(usize::try_from(len).unwrap_or(usize::MAX));
        Ok(())
    }

    fn preallocate(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.0.lock().len() as u64
    }
}

/// A segment built from fuzz input, and what was done to it.
#[derive(Debug)]
pub(super) struct Reframed {
    /// What the writer wrote.
    pub(super) entries: Vec<Entry>,
    /// The writer's file.
    pub(super) pristine: Bytes,
    /// The file after the edits and the resealing.
    pub(super) file: Bytes,
}

/// Decodes reframe input. The segment comes first, the edits last, so
/// that mutating an entry does not shift the edits:
///
/// ```text
/// byte 0     block size: 1 + 8·b bytes
/// byte 1     restart interval: 1 + b % 16
/// byte 2     bloom bits per key: 1 + b % 32
/// byte 3     entry count: 1 + b % REFRAME_ENTRIES_MAX
/// entries    header h (bit 0: Put, bit 1: the previous entry's key,
///            bits 2–7: key length), key bytes unless bit 1, sequence
///            number (LEB128, at most 8 bytes), and for a Put a length byte
///            and the value
/// edits      n edits of EDIT_BYTES each (see `apply_edits`)
/// last byte  n, modulo REFRAME_EDITS_MAX + 1
/// ```
///
/// Entries that end early read as zeros; they are sorted into internal
/// order and duplicates dropped, so every input makes a segment.
pub(super) fn reframe(data: &[u8]) -> Reframed {
    let (segment, edits) = split_edits(data);
    let mut input = Input { rest: segment };
    let options = SegmentOptions {
        block_size_bytes: 1 + 8 * usize::from(input.byte()),
        restart_interval: 1 + usize::from(input.byte() % 16),
        bloom_bits_per_key: 1 + u32::from(input.byte() % 32),
        ..SegmentOptions::default()
    };
    let entries = reframe_entries(&mut input);
    let pristine = write_segment(&entries, options);
    let mut file = pristine.clone();
    apply_edits(&mut file, edits);
    reseal(&mut file);
    Reframed {
        entries,
        pristine: Bytes::from(pristine),
        file: Bytes::from(file),
    }
}

/// Reframe input split into the segment's part and the edits' part.
fn split_edits(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&count, rest)) = data.split_last() else {
        return (data, &[]);
    };
    let edits_len = usize::from(count) % (REFRAME_EDITS_MAX + 1) * EDIT_BYTES;
    rest.split_at(rest.len() - edits_len.min(rest.len()))
}

/// Fuzz input read front to back; past its end every byte reads as zero.
struct Input<'a> {
    rest: &'a [u8],
}

impl<'a> Input<'a> {
    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.rest.split_first() else {
            return 0;
        };
        self.rest = rest;
        first
    }

    /// The next `len` bytes, fewer at the end of the input.
    fn bytes(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.rest.split_at(len.min(self.rest.len()));
        self.rest = rest;
        taken
    }

    /// A LEB128 number of at most 8 bytes: 56 bits, so at most
    /// `MAX_SEQUENCE_NUMBER`.
    fn sequence_number(&mut self) -> u64 {
        let mut value = 0;
        for shift in (0..56).step_by(7) {
            let byte = self.byte();
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
}

fn reframe_entries(input: &mut Input) -> Vec<Entry> {
    let count = 1 + usize::from(input.byte()) % REFRAME_ENTRIES_MAX;
    let mut entries = Vec::with_capacity(count);
    let mut key = Bytes::new();
    while entries.len() < count && !input.is_empty() {
        let header = input.byte();
        if header & 2 == 0 {
            key = Bytes::copy_from_slice(input.bytes(usize::from(header >> 2)));
        }
        let seq = input.sequence_number();
        let (kind, value) = if header & 1 == 1 {
            let len = usize::from(input.byte());
            (EntryKind::Put, Bytes::copy_from_slice(input.bytes(len)))
        } else {
            (EntryKind::Delete, Bytes::new())
        };
        entries.push(Entry {
            key: key.clone(),
            seq,
            kind,
            value,
        });
    }
    if entries.is_empty() {
        entries.push(Entry {
            key: Bytes::from_static(b"key"),
            seq: 1,
            kind: EntryKind::Put,
            value: Bytes::from_static(b"value"),
        });
    }
    entries.sort_by(|a, b| compare_internal(&a.key, a.seq, &b.key, b.seq));
    entries.dedup_by(|a, b| a.key == b.key && a.seq == b.seq);
    entries
}

/// The file the real writer makes of `entries` (in strict internal order).
fn write_segment(entries: &[Entry], options: SegmentOptions) -> Vec<u8> {
    let file = MemoryWriteFile::default();
    let mut writer = SegmentWriter::new(
        Box::new(file.clone()),
        PathBuf::from(FUZZ_PATH),
        FUZZ_FILE_NUMBER,
        options,
    );
    for entry in entries {
        let added = writer.add(&entry.key, entry.seq, entry.kind, &entry.value);
        assert!(added.is_ok(), "the writer rejected an entry: {added:?}");
    }
    let finished = writer.finish();
    assert!(
        finished.is_ok(),
        "the writer failed in memory: {finished:?}"
    );
    file.0.lock().clone()
}

/// Where the footer says the filter, index and footer lie, read without
/// checking anything but bounds: after an edit the footer is not trusted.
#[derive(Debug, Clone, Copy)]
struct Layout {
    filter: BlockHandle,
    index: BlockHandle,
    footer_start: usize,
    tail_start: usize,
}

impl Layout {
    fn read(file: &[u8]) -> Option<Self> {
        let tail_start = file.len().checked_sub(TAIL_BYTES)?;
        let body_len = u32_at(file, tail_start, "footer body length").ok()?;
        let footer_start = tail_start.checked_sub(usize::try_from(body_len).ok()?)?;
        let mut cursor = Cursor::at(file, footer_start);
        let mut field = || cursor.u64_le("footer field").ok();
        let filter = BlockHandle {
            offset: field()?,
            len: field()?,
        };
        let index = BlockHandle {
            offset: field()?,
            len: field()?,
        };
        Some(Self {
            filter,
            index,
            footer_start,
            tail_start,
        })
    }
}

/// The payload range of `handle` if the payload and its checksum lie in a
/// file of `file_len` bytes.
fn payload_range(file_len: usize, handle: BlockHandle) -> Option<Range<usize>> {
    let start = usize::try_from(handle.offset).ok()?;
    let end = start.checked_add(usize::try_from(handle.len).ok()?)?;
    (end.checked_add(CHECKSUM_BYTES)? <= file_len).then_some(start..end)
}

/// Applies `edits`, `EDIT_BYTES` bytes each:
/// - what (bits 0–2, modulo 5): set, xor, add, insert or remove a byte;
/// - region (bits 3–5, modulo 5): the whole file, the data blocks, the
///   filter, the index or the footer body, as the writer laid them out, so
///   an edit can aim at one decoder;
/// - position: u16, modulo the region's length;
/// - operand: the byte to set, xor, add or insert.
fn apply_edits(file: &mut Vec<u8>, edits: &[u8]) {
    let Some(layout) = Layout::read(file) else {
        return;
    };
    let payload = |handle| payload_range(file.len(), handle).unwrap_or(0..0);
    let regions = [
        0..file.len(),
        0..payload(layout.filter).start,
        payload(layout.filter),
        payload(layout.index),
        layout.footer_start..layout.tail_start,
    ];
    for edit in edits.chunks_exact(EDIT_BYTES) {
        let &[what, low, high, operand] = edit else {
            continue;
        };
        let position = u16::from_le_bytes([low, high]);
        let region = &regions[usize::from(what >> 3) % regions.len()];
        let position = region.start + usize::from(position) % region.len().max(1);
        match (what & 7) % 5 {
            3 => file.insert(position.min(file.len()), operand),
            4 if position < file.len() => {
                file.remove(position);
            }
            edit => {
                if let Some(byte) = file.get_mut(position) {
                    *byte = match edit {
                        0 => operand,
                        1 => *byte ^ operand,
                        _ => byte.wrapping_add(operand),
                    };
                }
            }
        }
    }
}

/// Recomputes every checksum that the file's footer and index, as they are
/// now, lead to: the data blocks the index names, the filter, the index, and
/// last the footer. Regions that hostile handles place outside the file are
/// skipped; where they overlap, the later checksum wins, as it would for a
/// writer that wrote them in this order.
fn reseal(file: &mut [u8]) {
    let Some(layout) = Layout::read(file) else {
        return;
    };
    for handle in data_block_handles(file, layout.index) {
        seal(file, handle);
    }
    seal(file, layout.filter);
    seal(file, layout.index);
    let sum_start = layout.tail_start + 8;
    if let Some(covered) = file.get(layout.footer_start..sum_start) {
        let sum = checksum(covered).to_le_bytes();
        if let Some(stored) = file.get_mut(sum_start..sum_start + CHECKSUM_BYTES) {
            stored.copy_from_slice(&sum);
        }
    }
}

/// Writes the checksum of `handle`'s payload after it, if both fit the file.
fn seal(file: &mut [u8], handle: BlockHandle) {
    let Some(payload) = payload_range(file.len(), handle) else {
        return;
    };
    let sum = checksum(&file[payload.clone()]).to_le_bytes();
    file[payload.end..payload.end + CHECKSUM_BYTES].copy_from_slice(&sum);
}

/// The data-block handles the index payload at `index` names, up to its
/// first entry that fails to decode.
fn data_block_handles(file: &[u8], index: BlockHandle) -> Vec<BlockHandle> {
    let Some(payload) = payload_range(file.len(), index) else {
        return Vec::new();
    };
    let Ok(block) = Block::parse(Bytes::copy_from_slice(&file[payload])) else {
        return Vec::new();
    };
    let mut handles = Vec::new();
    let (mut pos, mut key) = (0, Vec::new());
    // Each entry takes at least one byte, so this ends within the payload.
    while let Ok(Some((entry, next))) = block.next_entry(pos, &mut key) {
        let value = block.to_entry(&entry, &key).value;
        let mut cursor = Cursor::new(&value);
        let (Ok(offset), Ok(len)) = (cursor.varint("offset"), cursor.varint("length")) else {
            break;
        };
        handles.push(BlockHandle { offset, len });
        pos = next;
    }
    handles
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::storage::fs::ReadFile;
    use crate::storage::segment::fuzz::{MemoryFile, fuzz_segment, fuzz_segment_reframe};
    use crate::storage::segment::reader::SegmentReader;

    /// Key, sequence number and value (`None`: a tombstone).
    type TestEntry = (&'static [u8], u8, Option<&'static [u8]>);

    /// Reframe input for `entries` in 65-byte blocks with a restart every 2
    /// entries, then `edits`.
    fn reframe_input(entries: &[TestEntry], edits: &[[u8; EDIT_BYTES]]) -> Vec<u8> {
        let mut input = vec![8, 1, 10, entries.len() as u8 - 1];
        for (key, seq, value) in entries {
            input.push(((key.len() as u8) << 2) | u8::from(value.is_some()));
            input.extend_from_slice(key);
            input.push(*seq & 0x7f);
            if let Some(value) = value {
                input.push(value.len() as u8);
                input.extend_from_slice(value);
            }
        }
        input.extend(edits.iter().flatten());
        input.push(edits.len() as u8);
        input
    }

    fn sample_entries() -> Vec<TestEntry> {
        vec![
            (b"apple", 9, Some(b"red")),
            (b"apple", 4, None),
            (b"banana", 7, Some(b"yellow")),
            (b"cherry", 8, Some(b"dark red")),
            (b"cherry", 2, Some(b"pale")),
            (b"damson", 5, Some(b"purple")),
        ]
    }

    fn open(file: &Bytes) -> SegmentReader {
        let file: Arc<dyn ReadFile> = Arc::new(MemoryFile::new(file.clone(), true));
        SegmentReader::open(file, PathBuf::from(FUZZ_PATH), FUZZ_FILE_NUMBER).unwrap()
    }

    #[test]
    fn unedited_reframe_input_reads_back_every_entry() {
        let input = reframe_input(&sample_entries(), &[]);
        let reframed = reframe(&input);
        assert_eq!(reframed.file, reframed.pristine);
        assert_eq!(reframed.entries.len(), 6);
        assert_eq!(reframed.entries[0].seq, 9, "newest version first");
        let segment = open(&reframed.file);
        segment.verify().unwrap();
        assert!(segment.index().len() > 1, "small blocks make several");
        fuzz_segment(&[&[1][..], &input].concat());
    }

    #[test]
    fn a_resealed_edit_reaches_the_block_decoder() {
        // Add 1 to byte 12 of the data region, the last byte of the first
        // entry (lengths 0, 5, 3; "apple"; a 2-byte trailer; "red").
        let input = reframe_input(&sample_entries(), &[[2 | (1 << 3), 12, 0, 1]]);
        let reframed = reframe(&input);
        assert_ne!(reframed.file, reframed.pristine);
        let segment = open(&reframed.file);
        // Without the resealing the block's checksum would fail here.
        segment.verify().unwrap();
        assert_eq!(
            segment.get(b"apple", 9).unwrap(),
            Some((EntryKind::Put, Bytes::from_static(b"ree")))
        );
        fuzz_segment(&[&[1][..], &input].concat());
    }

    #[test]
    fn reseal_restores_every_checksum_and_nothing_else() {
        let pristine = reframe(&reframe_input(&sample_entries(), &[])).pristine;
        let layout = Layout::read(&pristine).unwrap();
        let mut handles = data_block_handles(&pristine, layout.index);
        assert!(handles.len() > 1);
        handles.extend([layout.filter, layout.index]);
        let mut sums: Vec<usize> = handles
            .iter()
            .map(|handle| payload_range(pristine.len(), *handle).unwrap().end)
            .collect();
        sums.push(layout.tail_start + 8);
        let mut file = pristine.to_vec();
        reseal(&mut file);
        assert_eq!(file, pristine);
        for position in sums.iter().flat_map(|&sum| sum..sum + CHECKSUM_BYTES) {
            let mut damaged = pristine.to_vec();
            damaged[position] ^= 0x40;
            reseal(&mut damaged);
            assert_eq!(damaged, pristine, "checksum byte {position} not restored");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn reframe_mode_never_panics(data in prop::collection::vec(any::<u8>(), 0..1200)) {
            fuzz_segment_reframe(&data);
        }

        #[test]
        fn reframe_mode_never_panics_on_edited_valid_entries(
            edits in prop::collection::vec(any::<[u8; EDIT_BYTES]>(), 1..6),
        ) {
            fuzz_segment_reframe(&reframe_input(&sample_entries(), &edits));
        }
    }
}
