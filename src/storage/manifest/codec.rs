//! The manifest's byte encoding; `docs/format-manifest.md` specifies it.
//!
//! Decoding trusts nothing: every length is bounded by the bytes that remain
//! before anything is allocated, every field is range-checked, and any
//! damage is a [`StorageError::Corruption`] naming the offset of the field
//! that failed, never a panic.

use std::path::Path;

use bytes::Bytes;

use super::ManifestState;
use crate::storage::error::{Result, StorageError};
use crate::storage::types::MAX_SEQUENCE_NUMBER;
use crate::storage::version::{FileMeta, LEVEL_COUNT, check_file_set, level_index};

/// The first bytes of every manifest.
pub(crate) const MANIFEST_MAGIC: [u8; 8] = *b"NIMBMANI";

/// The only format version this code reads and writes.
pub(crate) const MANIFEST_FORMAT_VERSION: u32 = 1;

/// Magic (8) + format version (4) + body length (4) + crc32 (4).
pub(crate) const MANIFEST_HEADER_BYTES: usize = 20;

/// The largest body accepted. At ~100 bytes per file plus keys this allows
/// well over a million segment files, far beyond what the level targets
/// produce, while bounding what a damaged length can make us allocate.
pub(crate) const MANIFEST_BODY_BYTES_MAX: usize = 256 << 20;

/// The longest user key a file boundary or compaction pointer may have.
/// DynamoDB keys are at most 2 KiB partition + 1 KiB sort key; 64 KiB leaves
/// room for the keyspace prefix and for every other service's keys.
pub(crate) const MANIFEST_KEY_BYTES_MAX: usize = 64 << 10;

/// Bytes of a file record without its keys: level, five u64 fields
/// (number, size, min and max sequence, entries) and two key lengths.
const FILE_RECORD_FIXED_BYTES: usize = 4 + 8 * 5 + 4 + 4;

/// Bytes of a compaction pointer record without its key: level, key length.
const POINTER_RECORD_FIXED_BYTES: usize = 4 + 4;

/// Bytes of the body before the pointer records: three u64 counters.
const COUNTERS_BYTES: usize = 8 * 3;

/// The complete manifest file for `state`.
///
/// Panics if `state` breaks an invariant that decoding checks: writing a
/// manifest that the next open would reject would make the database
/// unopenable.
pub(crate) fn encode(state: &ManifestState) -> Vec<u8> {
    if let Err(reason) = check_state(state) {
        panic!("refusing to write an invalid manifest: {reason}");
    }
    frame(&encode_body(state))
}

/// [`encode`] without the invariant checks, so tests can write manifests
/// that decoding must reject.
#[cfg(test)]
pub(crate) fn encode_unchecked(state: &ManifestState) -> Vec<u8> {
    frame(&encode_body(state))
}

/// The header for `body`, followed by `body`.
fn frame(body: &[u8]) -> Vec<u8> {
    assert!(
        body.len() <= MANIFEST_BODY_BYTES_MAX,
        "manifest body of {} bytes exceeds the {MANIFEST_BODY_BYTES_MAX}-byte limit",
        body.len()
    );
    let mut out = Vec::with_capacity(MANIFEST_HEADER_BYTES + body.len());
    out.extend_from_slice(&MANIFEST_MAGIC);
    out.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&length_u32(body.len()).to_le_bytes());
    let crc = checksum(&out[MANIFEST_MAGIC.len()..], body);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(body);
    out
}

fn encode_body(state: &ManifestState) -> Vec<u8> {
    let keys: usize = state
        .files
        .iter()
        .map(|f| f.smallest.len() + f.largest.len())
        .sum();
    let mut body =
        Vec::with_capacity(COUNTERS_BYTES + 8 + state.files.len() * FILE_RECORD_FIXED_BYTES + keys);
    body.extend_from_slice(&state.next_file_number.to_le_bytes());
    body.extend_from_slice(&state.last_sequence.to_le_bytes());
    body.extend_from_slice(&state.log_number.to_le_bytes());
    body.extend_from_slice(&length_u32(state.compaction_pointers.len()).to_le_bytes());
    for (level, key) in &state.compaction_pointers {
        body.extend_from_slice(&level.to_le_bytes());
        put_key(&mut body, key);
    }
    body.extend_from_slice(&length_u32(state.files.len()).to_le_bytes());
    for file in &state.files {
        body.extend_from_slice(&file.level.to_le_bytes());
        body.extend_from_slice(&file.number.to_le_bytes());
        body.extend_from_slice(&file.size_bytes.to_le_bytes());
        body.extend_from_slice(&file.min_seq.to_le_bytes());
        body.extend_from_slice(&file.max_seq.to_le_bytes());
        body.extend_from_slice(&file.entries.to_le_bytes());
        put_key(&mut body, &file.smallest);
        put_key(&mut body, &file.largest);
    }
    body
}

fn put_key(body: &mut Vec<u8>, key: &[u8]) {
    body.extend_from_slice(&length_u32(key.len()).to_le_bytes());
    body.extend_from_slice(key);
}

/// A length that `check_state` has already bounded, as stored.
fn length_u32(len: usize) -> u32 {
    match u32::try_from(len) {
        Ok(len) => len,
        Err(_) => panic!("length {len} does not fit a manifest length field"),
    }
}

/// CRC-32 (IEEE, `crc32fast`) over the header fields after the magic and the
/// body, so a damaged version or length fails the checksum too.
fn checksum(header_fields: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header_fields);
    hasher.update(body);
    hasher.finalize()
}

/// Decodes a whole manifest file read from `file`.
pub(crate) fn decode(data: &[u8], file: &Path) -> Result<ManifestState> {
    let corrupt =
        |offset: usize, reason: String| StorageError::corruption(file, offset_u64(offset), reason);
    let header = data.get(..MANIFEST_HEADER_BYTES).ok_or_else(|| {
        corrupt(
            data.len(),
            format!(
                "manifest of {} bytes is shorter than its {MANIFEST_HEADER_BYTES}-byte header",
                data.len()
            ),
        )
    })?;
    let mut reader = Reader::new(header, 0, file);
    let magic = reader.take(MANIFEST_MAGIC.len(), "magic")?;
    if magic != MANIFEST_MAGIC {
        return Err(corrupt(0, "bad magic: not a nimbus manifest".to_owned()));
    }
    let version = reader.u32("format version")?;
    if version != MANIFEST_FORMAT_VERSION {
        return Err(corrupt(
            8,
            format!("unsupported manifest format version {version}"),
        ));
    }
    let body_len = reader.u32("body length")?;
    let stored_crc = reader.u32("checksum")?;
    let body_len = usize::try_from(body_len).unwrap_or(usize::MAX);
    if body_len > MANIFEST_BODY_BYTES_MAX {
        return Err(corrupt(
            12,
            format!("body length {body_len} exceeds {MANIFEST_BODY_BYTES_MAX}"),
        ));
    }
    let body = &data[MANIFEST_HEADER_BYTES..];
    if body.len() != body_len {
        return Err(corrupt(
            12,
            format!(
                "header says the body has {body_len} bytes but {} follow it (truncated or extended file)",
                body.len()
            ),
        ));
    }
    let computed = checksum(&header[MANIFEST_MAGIC.len()..16], body);
    if computed != stored_crc {
        return Err(corrupt(
            16,
            format!("checksum mismatch: stored {stored_crc:#010x}, computed {computed:#010x}"),
        ));
    }
    decode_body(body, offset_u64(MANIFEST_HEADER_BYTES), file)
}

/// Decodes and validates a manifest body that starts at `base_offset` of
/// `file`. Separate from [`decode`] so the fuzzer reaches the parser without
/// having to forge a checksum.
pub(crate) fn decode_body(body: &[u8], base_offset: u64, file: &Path) -> Result<ManifestState> {
    let mut reader = Reader::new(body, base_offset, file);
    let next_file_number = reader.u64("next file number")?;
    let last_sequence = reader.u64("last sequence")?;
    let log_number = reader.u64("log number")?;
    let pointer_count = reader.count(POINTER_RECORD_FIXED_BYTES, "compaction pointer count")?;
    let mut compaction_pointers = Vec::with_capacity(pointer_count);
    for _ in 0..pointer_count {
        let level = reader.u32("compaction pointer level")?;
        let key = reader.key("compaction pointer key")?;
        compaction_pointers.push((level, key));
    }
    let file_count = reader.count(FILE_RECORD_FIXED_BYTES, "file count")?;
    let mut files = Vec::with_capacity(file_count);
    for _ in 0..file_count {
        files.push(FileMeta {
            level: reader.u32("file level")?,
            number: reader.u64("file number")?,
            size_bytes: reader.u64("file size")?,
            min_seq: reader.u64("file min_seq")?,
            max_seq: reader.u64("file max_seq")?,
            entries: reader.u64("file entry count")?,
            smallest: reader.key("file smallest key")?,
            largest: reader.key("file largest key")?,
        });
    }
    if reader.remaining() != 0 {
        return Err(reader.error(format!(
            "{} unexpected bytes after the last file record",
            reader.remaining()
        )));
    }
    let state = ManifestState {
        next_file_number,
        last_sequence,
        log_number,
        compaction_pointers,
        files,
    };
    check_state(&state).map_err(|reason| StorageError::corruption(file, base_offset, reason))?;
    Ok(state)
}

/// The invariants every manifest satisfies, checked before writing and
/// after reading.
fn check_state(state: &ManifestState) -> Result<(), String> {
    if state.last_sequence > MAX_SEQUENCE_NUMBER {
        return Err(format!(
            "last sequence {} is out of range",
            state.last_sequence
        ));
    }
    if state.log_number > state.next_file_number {
        return Err(format!(
            "log number {} is not below the next file number {}",
            state.log_number, state.next_file_number
        ));
    }
    let mut pointer_levels = [false; LEVEL_COUNT];
    for (level, key) in &state.compaction_pointers {
        let Some(seen) = pointer_levels.get_mut(level_index(*level)) else {
            return Err(format!("compaction pointer for missing level {level}"));
        };
        if std::mem::replace(seen, true) {
            return Err(format!("two compaction pointers for level {level}"));
        }
        if key.len() > MANIFEST_KEY_BYTES_MAX {
            return Err(format!("compaction pointer key of {} bytes", key.len()));
        }
    }
    for file in &state.files {
        if file.number >= state.next_file_number {
            return Err(format!(
                "file {} is not below the next file number {}",
                file.number, state.next_file_number
            ));
        }
        if file.max_seq > state.last_sequence {
            return Err(format!(
                "file {} holds sequence {} beyond the last sequence {}",
                file.number, file.max_seq, state.last_sequence
            ));
        }
        if file.smallest.len().max(file.largest.len()) > MANIFEST_KEY_BYTES_MAX {
            return Err(format!(
                "file {} has a key over {MANIFEST_KEY_BYTES_MAX} bytes",
                file.number
            ));
        }
    }
    check_file_set(&state.files)
}

fn offset_u64(offset: usize) -> u64 {
    u64::try_from(offset).unwrap_or(u64::MAX)
}

/// A bounds-checked little-endian cursor that reports absolute offsets.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base_offset: u64,
    file: &'a Path,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], base_offset: u64, file: &'a Path) -> Self {
        Self {
            data,
            pos: 0,
            base_offset,
            file,
        }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn error(&self, reason: String) -> StorageError {
        let offset = self.base_offset.saturating_add(offset_u64(self.pos));
        StorageError::corruption(self.file, offset, reason)
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return Err(self.error(format!(
                "{what} needs {len} bytes but only {} remain (truncated)",
                self.remaining()
            )));
        };
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let bytes = self.take(4, what)?;
        let mut array = [0u8; 4];
        array.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(array))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let bytes = self.take(8, what)?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// A record count, rejected unless that many records of at least
    /// `record_bytes_min` bytes fit in what remains — this bounds the
    /// allocation the count leads to.
    fn count(&mut self, record_bytes_min: usize, what: &str) -> Result<usize> {
        let at = self.pos;
        let count = usize::try_from(self.u32(what)?).unwrap_or(usize::MAX);
        let fits = count
            .checked_mul(record_bytes_min)
            .is_some_and(|bytes| bytes <= self.remaining());
        if !fits {
            self.pos = at;
            return Err(self.error(format!(
                "{what} {count} cannot fit in the {} bytes that remain",
                self.remaining().saturating_sub(4)
            )));
        }
        Ok(count)
    }

    fn key(&mut self, what: &str) -> Result<Bytes> {
        let at = self.pos;
        let len = usize::try_from(self.u32(what)?).unwrap_or(usize::MAX);
        if len > MANIFEST_KEY_BYTES_MAX {
            self.pos = at;
            return Err(self.error(format!(
                "{what} length {len} exceeds {MANIFEST_KEY_BYTES_MAX}"
            )));
        }
        Ok(Bytes::copy_from_slice(self.take(len, what)?))
    }
}
