//! Write batches: the unit of atomicity of the engine.
//!
//! A [`WriteBatch`] is an ordered list of puts and deletes that commit
//! together: one batch is one WAL record, gets consecutive sequence numbers
//! (entry `i` gets `first_seq + i`) and becomes visible all at once.
//!
//! Encoding (all integers little-endian; see `docs/format-wal.md`):
//!
//! ```text
//! first_seq u64 | count u32 | count × entry
//! entry: kind u8 (0 delete, 1 put) | varint key_len | key | varint value_len | value
//!      | 2 (put of a copy) | varint key_len | key | varint prefix_len | prefix
//!        | varint copy_len | varint back | varint suffix_len | suffix
//! ```
//!
//! A copy entry's value is `prefix`, then the `copy_len` bytes that start
//! `back` bytes before the entry itself (within the same batch), then
//! `suffix`: a batch that writes the same bytes under several keys (an item,
//! its ALL-projection index entries, the new image inside its stream
//! record) carries them once in the log, and pure copies (no prefix or
//! suffix) once in the memtable's arena too. It reads as an ordinary put.
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

/// The kind byte of a put whose value is a copy of earlier bytes of the
/// batch (a batch-only tag: it is applied as [`EntryKind::Put`]).
const TAG_PUT_COPY: u8 = 2;

/// Where a value lies in a batch's encoded entries ([`WriteBatch::put_located`]),
/// for putting it again under another key with [`WriteBatch::put_copy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ValueRef {
    offset: usize,
    len: usize,
}

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
    pub(crate) value: Value<'a>,
}

/// A value as a batch holds it: one slice, or (a copy entry with a prefix
/// or suffix) three to concatenate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Value<'a> {
    prefix: &'a [u8],
    middle: &'a [u8],
    suffix: &'a [u8],
}

impl<'a> Value<'a> {
    fn whole(bytes: &'a [u8]) -> Self {
        Self {
            prefix: &[],
            middle: bytes,
            suffix: &[],
        }
    }

    /// The value as one slice of the batch, unless it is spliced.
    pub(crate) fn as_slice(&self) -> Option<&'a [u8]> {
        (self.prefix.is_empty() && self.suffix.is_empty()).then_some(self.middle)
    }

    /// The value's parts, in order.
    pub(crate) fn parts(&self) -> [&'a [u8]; 3] {
        [self.prefix, self.middle, self.suffix]
    }

    /// The value's length.
    pub(crate) fn len(&self) -> usize {
        self.prefix.len() + self.middle.len() + self.suffix.len()
    }

    /// The value, joined.
    pub(crate) fn to_vec(self) -> Vec<u8> {
        self.parts().concat()
    }
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `bytes` of encoded entries, so a
    /// batch whose size the caller can estimate is allocated once.
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            entries: Vec::with_capacity(bytes),
            count: 0,
        }
    }

    /// The bytes one put of a `key_len`-byte key and a `value_len`-byte
    /// value adds to the batch (for sizing [`WriteBatch::with_capacity`]).
    pub fn entry_bytes(key_len: usize, value_len: usize) -> usize {
        1 + varint_len(key_len as u64) + key_len + varint_len(value_len as u64) + value_len
    }

    /// Makes room for at least `bytes` more of encoded entries.
    pub fn reserve(&mut self, bytes: usize) {
        self.entries.reserve(bytes);
    }

    /// Appends "set `key` to `value`".
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.push(EntryKind::Put, key, value);
    }

    /// Appends "set `key` to `value`" and returns where the value lies, so
    /// later puts of the same bytes can be copies ([`WriteBatch::put_copy`]).
    pub(crate) fn put_located(&mut self, key: &[u8], value: &[u8]) -> ValueRef {
        self.push(EntryKind::Put, key, value);
        ValueRef {
            offset: self.entries.len() - value.len(),
            len: value.len(),
        }
    }

    /// Appends "set `key` to the value at `value`" (from
    /// [`WriteBatch::put_located`] on this batch, since its last
    /// [`WriteBatch::clear`]) without repeating its bytes.
    pub(crate) fn put_copy(&mut self, key: &[u8], value: ValueRef) {
        self.put_splice(key, &[], value, &[]);
    }

    /// Appends "set `key` to `prefix`, then the bytes at `copied` (as for
    /// [`WriteBatch::put_copy`]), then the concatenation of `suffix`".
    pub(crate) fn put_splice(
        &mut self,
        key: &[u8],
        prefix: &[u8],
        copied: ValueRef,
        suffix: &[&[u8]],
    ) {
        let start = self.entries.len();
        assert!(
            copied.offset + copied.len <= start,
            "copied value {copied:?} lies outside the batch's {start} bytes"
        );
        let back = (start - copied.offset) as u64;
        let suffix_len: usize = suffix.iter().map(|p| p.len()).sum();
        self.entries.reserve(
            1 + varint_len(key.len() as u64)
                + key.len()
                + prefix.len()
                + suffix_len
                + 4 * VARINT_BYTES_MAX,
        );
        self.entries.push(TAG_PUT_COPY);
        put_varint(&mut self.entries, key.len() as u64);
        self.entries.extend_from_slice(key);
        put_varint(&mut self.entries, prefix.len() as u64);
        self.entries.extend_from_slice(prefix);
        put_varint(&mut self.entries, copied.len as u64);
        put_varint(&mut self.entries, back);
        put_varint(&mut self.entries, suffix_len as u64);
        for part in suffix {
            self.entries.extend_from_slice(part);
        }
        self.count = self.count.saturating_add(1);
    }

    /// The bytes `at` locates, if they lie in the batch.
    pub(crate) fn bytes_at(&self, at: ValueRef) -> Option<&[u8]> {
        self.entries.get(at.offset..at.offset.checked_add(at.len)?)
    }

    /// Appends "set `key` to `value`": the first time (`at` is `None`) as
    /// a put whose place `at` records, later as a copy of it. `at` must
    /// only ever locate these same bytes (checked: a copy of other bytes
    /// would store a wrong value).
    pub(crate) fn put_shared(&mut self, key: &[u8], value: &[u8], at: &mut Option<ValueRef>) {
        match *at {
            Some(located) => {
                assert!(
                    self.bytes_at(located) == Some(value),
                    "a shared value at {located:?} is not the value put"
                );
                self.put_copy(key, located);
            }
            None => *at = Some(self.put_located(key, value)),
        }
    }

    /// Appends "set `key` to the concatenation of `parts`", copying each
    /// part once (no joined value is built first).
    pub fn put_parts(&mut self, key: &[u8], parts: &[&[u8]]) {
        self.put_parts_located(key, parts, 0);
    }

    /// [`WriteBatch::put_parts`], returning where `parts[located]` lies,
    /// so later puts of those bytes alone can be copies
    /// ([`WriteBatch::put_copy`]) that the memtable stores as slices of
    /// this value.
    pub(crate) fn put_parts_located(
        &mut self,
        key: &[u8],
        parts: &[&[u8]],
        located: usize,
    ) -> ValueRef {
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        self.entries
            .reserve(Self::entry_bytes(key.len(), value_len));
        self.entries.push(EntryKind::Put as u8);
        put_varint(&mut self.entries, key.len() as u64);
        self.entries.extend_from_slice(key);
        put_varint(&mut self.entries, value_len as u64);
        let mut at = ValueRef {
            offset: self.entries.len(),
            len: 0,
        };
        for (i, part) in parts.iter().enumerate() {
            if i == located {
                at = ValueRef {
                    offset: self.entries.len(),
                    len: part.len(),
                };
            }
            self.entries.extend_from_slice(part);
        }
        self.count = self.count.saturating_add(1);
        at
    }

    /// Appends "delete `key`".
    pub fn delete(&mut self, key: &[u8]) {
        self.push(EntryKind::Delete, key, &[]);
    }

    fn push(&mut self, kind: EntryKind, key: &[u8], value: &[u8]) {
        // One reservation per entry: a one-entry batch is then a single
        // allocation of its exact size, instead of three growing ones.
        self.entries
            .reserve(Self::entry_bytes(key.len(), value.len()));
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
        BatchIter::over(&self.entries)
    }

    /// The encoded entries, for copying them out whole (decode a copy with
    /// [`BatchIter::over`]).
    pub(crate) fn entries(&self) -> &[u8] {
        &self.entries
    }

    /// Appends the encoding of this batch, numbered from `first_seq`, to `out`.
    pub(crate) fn encode_into(&self, first_seq: SequenceNumber, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.extend_from_slice(&self.encode_header(first_seq));
        out.extend_from_slice(&self.entries);
    }

    /// The header of this batch numbered from `first_seq`: the encoding is
    /// this followed by [`WriteBatch::entries`].
    pub(crate) fn encode_header(&self, first_seq: SequenceNumber) -> [u8; BATCH_HEADER_BYTES] {
        let mut header = [0; BATCH_HEADER_BYTES];
        header[..8].copy_from_slice(&first_seq.to_le_bytes());
        header[8..].copy_from_slice(&self.count.to_le_bytes());
        header
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
        let mut at = 0;
        for index in 0..count {
            at = parse_entry(entries, at)
                .map_err(|why| corrupt(format!("entry {index}: {why}")))?
                .1;
        }
        if at != entries.len() {
            return Err(corrupt(format!(
                "{} bytes after the last entry",
                entries.len() - at
            )));
        }
        let batch = WriteBatch {
            entries: entries.to_vec(),
            count,
        };
        Ok((first_seq, batch))
    }
}

/// Parses the entry at offset `at` of `entries` (a batch's encoded
/// entries): the operation and the offset of the next entry. A copy's
/// value must lie wholly before the entry.
fn parse_entry(
    entries: &[u8],
    at: usize,
) -> std::result::Result<(BatchOp<'_>, usize), &'static str> {
    let bytes = entries.get(at..).ok_or("truncated")?;
    let (&tag, rest) = bytes.split_first().ok_or("truncated")?;
    let (key, rest) = take_slice(rest).ok_or("bad key length")?;
    let (kind, value, rest) = if tag == TAG_PUT_COPY {
        let (prefix, rest) = take_slice(rest).ok_or("bad prefix length")?;
        let (len, used) = get_varint(rest).ok_or("bad value length")?;
        let rest = rest.get(used..).ok_or("bad value length")?;
        let (back, used) = get_varint(rest).ok_or("bad copy offset")?;
        let rest = rest.get(used..).ok_or("bad copy offset")?;
        let (suffix, rest) = take_slice(rest).ok_or("bad suffix length")?;
        let start = usize::try_from(back)
            .ok()
            .and_then(|back| at.checked_sub(back))
            .ok_or("copy starts before the batch")?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .filter(|end| *end <= at)
            .ok_or("copy overlaps its own entry")?;
        let middle = entries.get(start..end).ok_or("bad copy")?;
        let value = Value {
            prefix,
            middle,
            suffix,
        };
        (EntryKind::Put, value, rest)
    } else {
        let kind = EntryKind::from_tag(tag).ok_or("unknown kind")?;
        let (value, rest) = take_slice(rest).ok_or("bad value length")?;
        if kind == EntryKind::Delete && !value.is_empty() {
            return Err("delete with a value");
        }
        (kind, Value::whole(value), rest)
    };
    Ok((BatchOp { kind, key, value }, entries.len() - rest.len()))
}

/// Splits a varint-length-prefixed slice off the front of `bytes`.
fn take_slice(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, used) = get_varint(bytes)?;
    let rest = bytes.get(used..)?;
    let len = usize::try_from(len).ok()?;
    rest.split_at_checked(len)
}

/// Iterator over a batch's operations (copies read as puts of the bytes
/// they copy).
#[derive(Debug, Clone)]
pub(crate) struct BatchIter<'a> {
    entries: &'a [u8],
    /// The offset of the next entry.
    at: usize,
}

impl<'a> BatchIter<'a> {
    /// Decodes a copy of a batch's [`WriteBatch::entries`], so the
    /// operations' slices point into that copy.
    pub(crate) fn over(entries: &'a [u8]) -> Self {
        Self { entries, at: 0 }
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchOp<'a>;

    fn next(&mut self) -> Option<BatchOp<'a>> {
        // The entries were built by `push` or validated by `decode`, so a
        // parse failure here is impossible; stopping is the safe answer.
        let (op, next) = parse_entry(self.entries, self.at).ok()?;
        self.at = next;
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
        assert_eq!(ops[0].value.as_slice(), Some(&b"v1"[..]));
        batch.clear();
        assert!(batch.is_empty());
        assert_eq!(batch.encoded_len(), BATCH_HEADER_BYTES);
    }

    #[test]
    fn parts_and_sizing_encode_like_a_plain_put() {
        let mut plain = WriteBatch::new();
        plain.put(b"key", b"headbodytail");
        plain.delete(b"gone");
        let bytes = WriteBatch::entry_bytes(3, 12) + WriteBatch::entry_bytes(4, 0);
        let mut parts = WriteBatch::with_capacity(bytes);
        parts.put_parts(b"key", &[b"head", b"", b"body", b"tail"]);
        parts.delete(b"gone");
        assert_eq!(parts, plain);
        assert_eq!(parts.entries().len(), bytes);
        let mut long = WriteBatch::new();
        long.put_parts(&[7; 200], &[&[1; 100], &[2; 100]]);
        assert_eq!(long.entries().len(), WriteBatch::entry_bytes(200, 200));
        assert_eq!(long.iter().next().map(|op| op.value.len()), Some(200));
    }

    #[test]
    fn a_located_part_can_be_copied_alone_and_reads_as_a_slice() {
        let mut batch = WriteBatch::new();
        batch.put(b"before", b"x");
        let at = batch.put_parts_located(b"record", &[b"head", b"the item", b"tail"], 1);
        assert_eq!(batch.bytes_at(at), Some(&b"the item"[..]));
        let mut shared = Some(at);
        batch.put_shared(b"row", b"the item", &mut shared);
        let ops: Vec<_> = batch.iter().collect();
        assert_eq!(ops[1].value.to_vec(), b"headthe itemtail");
        // The copy is a pure copy: one slice of the record's bytes, which
        // the memtable keeps without joining.
        assert_eq!(ops[2].value.as_slice(), Some(&b"the item"[..]));
        assert_eq!(occurrences(&batch, b"the item"), 1);
    }

    /// How many times `bytes` occur in the batch's encoded entries.
    fn occurrences(batch: &WriteBatch, bytes: &[u8]) -> usize {
        batch
            .entries()
            .windows(bytes.len())
            .filter(|w| *w == bytes)
            .count()
    }

    #[test]
    fn copies_read_as_puts_of_the_bytes_they_copy() {
        let mut batch = WriteBatch::new();
        batch.delete(b"gone");
        let mut shared = None;
        batch.put_shared(b"index", b"the item", &mut shared);
        batch.put(b"other", b"unrelated");
        batch.put_shared(b"row", b"the item", &mut shared);
        batch.put_shared(b"index2", b"the item", &mut shared);
        // The value's bytes are in the batch once.
        assert_eq!(occurrences(&batch, b"the item"), 1);
        let mut out = Vec::new();
        batch.encode_into(9, &mut out);
        let (_, decoded) = WriteBatch::decode(&out, path(), 0).unwrap();
        for ops in [batch.iter().collect::<Vec<_>>(), decoded.iter().collect()] {
            let read: Vec<_> = ops
                .iter()
                .map(|op| (op.kind, op.key, op.value.as_slice().unwrap_or_default()))
                .collect();
            assert_eq!(
                read,
                [
                    (EntryKind::Delete, &b"gone"[..], &b""[..]),
                    (EntryKind::Put, b"index", b"the item"),
                    (EntryKind::Put, b"other", b"unrelated"),
                    (EntryKind::Put, b"row", b"the item"),
                    (EntryKind::Put, b"index2", b"the item"),
                ]
            );
        }
    }

    #[test]
    fn splices_read_as_prefix_copy_and_suffix() {
        let mut batch = WriteBatch::new();
        let item = batch.put_located(b"row", b"item bytes");
        batch.put_splice(b"record", b"head|", item, &[b"|", b"tail"]);
        batch.put_splice(b"bare", b"", item, &[]);
        assert_eq!(
            batch
                .entries()
                .windows(10)
                .filter(|w| w == b"item bytes")
                .count(),
            1
        );
        let mut out = Vec::new();
        batch.encode_into(3, &mut out);
        let (_, decoded) = WriteBatch::decode(&out, path(), 0).unwrap();
        for ops in [batch.iter().collect::<Vec<_>>(), decoded.iter().collect()] {
            assert_eq!(ops[1].value.to_vec(), b"head|item bytes|tail");
            assert_eq!(ops[1].value.len(), 20);
            assert_eq!(ops[1].value.as_slice(), None);
            assert_eq!(ops[2].value.as_slice(), Some(&b"item bytes"[..]));
            assert_eq!(ops[1].kind, EntryKind::Put);
        }
    }

    #[test]
    #[should_panic(expected = "is not the value put")]
    fn a_shared_value_must_be_the_same_bytes() {
        let mut batch = WriteBatch::new();
        let mut shared = None;
        batch.put_shared(b"a", b"one", &mut shared);
        batch.put_shared(b"b", b"two", &mut shared);
    }

    #[test]
    fn copies_outside_the_bytes_before_them_are_corruption() {
        let entry = |back: u8, len: u8| {
            let mut record = 1u64.to_le_bytes().to_vec();
            record.extend_from_slice(&2u32.to_le_bytes());
            record.extend_from_slice(&[EntryKind::Put as u8, 1, b'k', 3, b'a', b'b', b'c']);
            record.extend_from_slice(&[TAG_PUT_COPY, 1, b'j', 0, len, back, 0]);
            record
        };
        let (_, good) = WriteBatch::decode(&entry(3, 3), path(), 0).unwrap();
        assert_eq!(
            good.iter().nth(1).and_then(|op| op.value.as_slice()),
            Some(&b"abc"[..])
        );
        for (bytes, expected) in [
            (entry(8, 3), "before the batch"),
            (entry(3, 4), "overlaps its own entry"),
            (entry(1, 2), "overlaps its own entry"),
        ] {
            match WriteBatch::decode(&bytes, path(), 0) {
                Err(StorageError::Corruption { reason, .. }) => {
                    assert!(reason.contains(expected), "{reason} vs {expected}");
                }
                other => panic!("expected corruption ({expected}), got {other:?}"),
            }
        }
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
            // Puts under even-length keys share one value (the first such
            // put's), so copies mix with plain entries.
            let mut shared = None;
            let mut shared_value: Option<Vec<u8>> = None;
            let mut expected = Vec::new();
            for (is_put, key, value) in &ops {
                if *is_put && key.len() % 2 == 0 {
                    let value = shared_value.get_or_insert_with(|| value.clone()).clone();
                    batch.put_shared(key, &value, &mut shared);
                    expected.push((EntryKind::Put, key.clone(), value));
                } else if *is_put {
                    batch.put(key, value);
                    expected.push((EntryKind::Put, key.clone(), value.clone()));
                } else {
                    batch.delete(key);
                    expected.push((EntryKind::Delete, key.clone(), Vec::new()));
                }
            }
            let mut out = Vec::new();
            batch.encode_into(seq, &mut out);
            let (decoded_seq, decoded) = WriteBatch::decode(&out, path(), 0).unwrap();
            prop_assert_eq!(decoded_seq, seq);
            prop_assert_eq!(decoded.len(), ops.len());
            let read: Vec<_> = decoded
                .iter()
                .map(|op| (op.kind, op.key.to_vec(), op.value.to_vec()))
                .collect();
            prop_assert_eq!(read, expected);
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
