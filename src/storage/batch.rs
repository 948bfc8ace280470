//! Write batches: the unit of atomicity of the engine.
//!
//! A [`WriteBatch`] is an ordered list of puts and deletes that commit
//! together: one batch is one WAL record, gets consecutive sequence numbers
//! (entry `i` gets `first_seq + i`) and becomes visible all at once.
//!
//! Encoding (all integers little-endian; see `docs/format-wal.md`):
//!
//! ```text
//! first_seq u64 | count u32 | count × ( kind u8 | varint key_len | key | varint value_len | value )
//! ```
//!
//! The batch keeps its entries already encoded, so committing one copies it
//! into the log buffer once. [`WriteBatch::decode`] validates every length
//! against the bytes actually present before using it, so damaged input is
//! `Corruption`, never a panic or a huge allocation.

#![cfg_attr(not(test), allow(dead_code))]

use std::path::Path;

use super::error::{Result, StorageError};
use super::types::{EntryKind, MAX_SEQUENCE_NUMBER, SequenceNumber};

/// Bytes of the batch header: first sequence number (u64) and count (u32).
pub(crate) const BATCH_HEADER_BYTES: usize = 12;

/// The largest encoded batch the engine accepts. A DynamoDB transaction is
/// at most 4 MB and object bodies never pass through the log, so 64 MiB
/// leaves ample room while bounding the memory a (possibly damaged) log
/// record can make recovery allocate.
pub(crate) const BATCH_BYTES_MAX: usize = 64 << 20;

/// The smallest encoded entry: a kind byte and two one-byte zero lengths.
const ENTRY_BYTES_MIN: usize = 3;

/// The longest LEB128 encoding of a u64.
const VARINT_BYTES_MAX: usize = 10;

/// An ordered list of puts and deletes applied atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    /// The encoded entries, without the header.
    entries: Vec<u8>,
    count: u32,
}

/// One operation of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOp<'a> {
    /// Put or delete.
    pub(crate) kind: EntryKind,
    /// The user key.
    pub(crate) key: &'a [u8],
    /// The value (empty for a delete).
    pub(crate) value: &'a [u8],
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends "set `key` to `value`".
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.push(EntryKind::Put, key, value);
    }

    /// Appends "delete `key`".
    pub fn delete(&mut self, key: &[u8]) {
        self.push(EntryKind::Delete, key, &[]);
    }

    fn push(&mut self, kind: EntryKind, key: &[u8], value: &[u8]) {
        // One reservation per entry: a one-entry batch is then a single
        // allocation of its exact size, instead of three growing ones.
        self.entries.reserve(
            1 + varint_len(key.len() as u64)
                + key.len()
                + varint_len(value.len() as u64)
                + value.len(),
        );
        self.entries.push(kind as u8);
        put_varint(&mut self.entries, key.len() as u64);
        self.entries.extend_from_slice(key);
        put_varint(&mut self.entries, value.len() as u64);
        self.entries.extend_from_slice(value);
        // A batch of 2^32 entries is at least 12 GiB, far above
        // BATCH_BYTES_MAX, so the commit path rejects it before the
        // saturated count could be written.
        self.count = self.count.saturating_add(1);
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The number of operations as stored in the header.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The size of the encoded batch in bytes, header included.
    pub(crate) fn encoded_len(&self) -> usize {
        BATCH_HEADER_BYTES + self.entries.len()
    }

    /// Removes every operation.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.count = 0;
    }

    /// The operations in order.
    pub(crate) fn iter(&self) -> BatchIter<'_> {
        BatchIter {
            rest: &self.entries,
        }
    }

    /// The encoded entries, for copying them out whole (decode a copy with
    /// [`BatchIter::over`]).
    pub(crate) fn entries(&self) -> &[u8] {
        &self.entries
    }

    /// Appends the encoding of this batch, numbered from `first_seq`, to `out`.
    pub(crate) fn encode_into(&self, first_seq: SequenceNumber, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&first_seq.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.entries);
    }

    /// Decodes a batch read from `file` at `offset` (used only to name the
    /// place of any damage), returning its first sequence number.
    pub(crate) fn decode(
        record: &[u8],
        file: &Path,
        offset: u64,
    ) -> Result<(SequenceNumber, WriteBatch)> {
        let corrupt = |reason: String| StorageError::corruption(file, offset, reason);
        if record.len() > BATCH_HEADER_BYTES + BATCH_BYTES_MAX {
            return Err(corrupt(format!(
                "batch of {} bytes is too large",
                record.len()
            )));
        }
        let header = record
            .first_chunk::<BATCH_HEADER_BYTES>()
            .ok_or_else(|| corrupt(format!("batch of {} bytes has no header", record.len())))?;
        let entries = record.get(BATCH_HEADER_BYTES..).unwrap_or_default();
        let (seq_bytes, count_bytes) = header.split_at(8);
        let first_seq = u64::from_le_bytes(seq_bytes.try_into().unwrap_or_default());
        let count = u32::from_le_bytes(count_bytes.try_into().unwrap_or_default());
        if count == 0 {
            return Err(corrupt("batch has no entries".into()));
        }
        let last_seq = first_seq
            .checked_add(u64::from(count) - 1)
            .filter(|last| *last <= MAX_SEQUENCE_NUMBER);
        if last_seq.is_none() {
            return Err(corrupt(format!(
                "sequence numbers {first_seq} + {count} overflow"
            )));
        }
        if (count as usize).saturating_mul(ENTRY_BYTES_MIN) > entries.len() {
            return Err(corrupt(format!(
                "count {count} does not fit in {} bytes",
                entries.len()
            )));
        }
        let mut rest = entries;
        for index in 0..count {
            rest = parse_entry(rest)
                .map_err(|why| corrupt(format!("entry {index}: {why}")))?
                .1;
        }
        if !rest.is_empty() {
            return Err(corrupt(format!(
                "{} bytes after the last entry",
                rest.len()
            )));
        }
        let batch = WriteBatch {
            entries: entries.to_vec(),
            count,
        };
        Ok((first_seq, batch))
    }
}

/// Parses one entry from the front of `bytes`.
fn parse_entry(bytes: &[u8]) -> std::result::Result<(BatchOp<'_>, &[u8]), &'static str> {
    let (&tag, rest) = bytes.split_first().ok_or("truncated")?;
    let kind = EntryKind::from_tag(tag).ok_or("unknown kind")?;
    let (key, rest) = take_slice(rest).ok_or("bad key length")?;
    let (value, rest) = take_slice(rest).ok_or("bad value length")?;
    if kind == EntryKind::Delete && !value.is_empty() {
        return Err("delete with a value");
    }
    Ok((BatchOp { kind, key, value }, rest))
}

/// Splits a varint-length-prefixed slice off the front of `bytes`.
fn take_slice(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, used) = get_varint(bytes)?;
    let rest = bytes.get(used..)?;
    let len = usize::try_from(len).ok()?;
    rest.split_at_checked(len)
}

/// Iterator over a batch's operations.
#[derive(Debug, Clone)]
pub(crate) struct BatchIter<'a> {
    rest: &'a [u8],
}

impl<'a> BatchIter<'a> {
    /// Decodes a copy of a batch's [`WriteBatch::entries`], so the
    /// operations' slices point into that copy.
    pub(crate) fn over(entries: &'a [u8]) -> Self {
        Self { rest: entries }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        // The entries were built by `push` or validated by `decode`, so a
        // parse failure here is impossible; stopping is the safe answer.
        let (op, rest) = parse_entry(self.rest).ok()?;
        self.rest = rest;
        Some(op)
    }
}

/// Appends `value` as LEB128.
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The length of the LEB128 encoding of `value`.
fn varint_len(value: u64) -> usize {
    // 7 bits per byte; zero still takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads a LEB128 value from the front of `bytes`: the value and the bytes used.
fn get_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &byte) in bytes.iter().take(VARINT_BYTES_MAX).enumerate() {
        let bits = u64::from(byte & 0x7f);
        let shift = 7 * i as u32;
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn path() -> &'static Path {
        Path::new("/db/000001.log")
    }

    #[test]
    fn varints_round_trip_and_reject_overlong_input() {
        for value in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(get_varint(&out), Some((value, out.len())));
            assert_eq!(varint_len(value), out.len(), "{value}");
        }
        assert_eq!(get_varint(&[0x80; 11]), None);
        assert_eq!(get_varint(&[0x80]), None);
        // 2^64 does not fit.
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(get_varint(&too_big), None);
    }

    #[test]
    fn batch_round_trips_with_sequence_numbers() {
        let mut batch = WriteBatch::new();
        batch.put(b"k1", b"v1");
        batch.delete(b"k2");
        batch.put(b"", b"");
        let mut out = Vec::new();
        batch.encode_into(42, &mut out);
        assert_eq!(out.len(), batch.encoded_len());
        let (seq, decoded) = WriteBatch::decode(&out, path(), 0).unwrap();
        assert_eq!(seq, 42);
        assert_eq!(decoded, batch);
        let ops: Vec<_> = decoded.iter().collect();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[1].kind, EntryKind::Delete);
        assert_eq!(ops[1].key, b"k2");
        assert_eq!(ops[0].value, b"v1");
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.encoded_len(), BATCH_HEADER_BYTES);
    }

    #[test]
    fn bad_batches_are_corruption_with_the_record_offset() {
        let mut batch = WriteBatch::new();
        batch.put(b"key", b"value");
        let mut good = Vec::new();
        batch.encode_into(7, &mut good);

        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..5].to_vec(), "no header"),
            (good[..good.len() - 1].to_vec(), "bad value length"),
            ([good.clone(), vec![0]].concat(), "after the last entry"),
        ];
        let mut zero_count = good.clone();
        zero_count[8..12].copy_from_slice(&0u32.to_le_bytes());
        cases.push((zero_count, "no entries"));
        let mut huge_count = good.clone();
        huge_count[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        cases.push((huge_count, "does not fit"));
        let mut bad_kind = good.clone();
        bad_kind[12] = 9;
        cases.push((bad_kind, "unknown kind"));
        let mut overflow = good.clone();
        overflow[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        cases.push((overflow, "overflow"));
        let mut huge_key = good[..12].to_vec();
        huge_key.push(EntryKind::Put as u8);
        huge_key.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        huge_key.extend_from_slice(&[0; 4]);
        cases.push((huge_key, "bad key length"));
        let mut delete_with_value = good[..12].to_vec();
        delete_with_value.extend_from_slice(&[EntryKind::Delete as u8, 0, 1, b'x']);
        cases.push((delete_with_value, "delete with a value"));

        for (bytes, expected) in cases {
            match WriteBatch::decode(&bytes, path(), 1234) {
                Err(StorageError::Corruption {
                    file,
                    offset,
                    reason,
                }) => {
                    assert_eq!(file, path());
                    assert_eq!(offset, 1234);
                    assert!(reason.contains(expected), "{reason} vs {expected}");
                }
                other => panic!("expected corruption ({expected}), got {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(
            ops in prop::collection::vec(
                (any::<bool>(), prop::collection::vec(any::<u8>(), 0..40),
                 prop::collection::vec(any::<u8>(), 0..300)),
                1..20),
            seq in 0..MAX_SEQUENCE_NUMBER - 100,
        ) {
            let mut batch = WriteBatch::new();
            for (is_put, key, value) in &ops {
                if *is_put { batch.put(key, value) } else { batch.delete(key) }
            }
            let mut out = Vec::new();
            batch.encode_into(seq, &mut out);
            let (decoded_seq, decoded) = WriteBatch::decode(&out, path(), 0).unwrap();
            prop_assert_eq!(decoded_seq, seq);
            prop_assert_eq!(decoded.len(), ops.len());
            for (op, (is_put, key, value)) in decoded.iter().zip(&ops) {
                prop_assert_eq!(op.key, key.as_slice());
                if *is_put {
                    prop_assert_eq!(op.kind, EntryKind::Put);
                    prop_assert_eq!(op.value, value.as_slice());
                } else {
                    prop_assert_eq!(op.kind, EntryKind::Delete);
                }
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            if let Ok((_, batch)) = WriteBatch::decode(&bytes, path(), 0) {
                let mut again = Vec::new();
                let first = u64::from_le_bytes(bytes[..8].try_into().unwrap());
                batch.encode_into(first, &mut again);
                prop_assert_eq!(again, bytes);
            }
        }
    }
}
