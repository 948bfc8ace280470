//! The block: a run of entries in internal order with LevelDB-style prefix
//! compression and restart points. Data blocks and the block index share
//! this encoding (see `docs/format-segment.md`).
//!
//! An entry stores only the suffix of its user key that differs from the
//! previous entry's; every `restart_interval` entries the full key is stored
//! and its offset recorded, so a lookup binary-searches the restart points
//! and decodes at most one interval. The block owns no I/O and no checksum:
//! the reader verifies the payload before parsing it.
#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::Ordering;

use bytes::Bytes;

use super::codec::{Cursor, DecodeError, put_varint, u32_at};
use super::{KEY_BYTES_MAX, VALUE_BYTES_MAX};
use crate::storage::types::{
    Entry, EntryKind, MAX_SEQUENCE_NUMBER, SequenceNumber, compare_internal,
};

/// Bytes of one restart offset and of the restart count.
const RESTART_BYTES: usize = 4;

/// Packs a sequence number and kind the way LevelDB packs its internal-key
/// trailer: the kind in the low byte, so `MAX_SEQUENCE_NUMBER` is `u64::MAX >> 8`.
fn pack_trailer(seq: SequenceNumber, kind: EntryKind) -> u64 {
    assert!(
        seq <= MAX_SEQUENCE_NUMBER,
        "sequence number {seq} exceeds MAX_SEQUENCE_NUMBER"
    );
    (seq << 8) | u64::from(kind as u8)
}

/// Builds one block's payload.
#[derive(Debug)]
pub(crate) struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// An empty builder storing a full key every `restart_interval` entries.
    pub(crate) fn new(restart_interval: usize) -> Self {
        assert!(restart_interval >= 1, "restart interval must be at least 1");
        Self {
            buf: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry. The caller adds entries in strictly increasing
    /// internal order and within `KEY_BYTES_MAX` / `VALUE_BYTES_MAX`.
    pub(crate) fn add(&mut self, key: &[u8], seq: SequenceNumber, kind: EntryKind, value: &[u8]) {
        assert!(
            key.len() <= KEY_BYTES_MAX && value.len() <= VALUE_BYTES_MAX,
            "entry of {} key bytes and {} value bytes exceeds the segment limits",
            key.len(),
            value.len()
        );
        let shared = if self.since_restart == self.restart_interval || self.entries == 0 {
            let offset = u32::try_from(self.buf.len());
            assert!(
                offset.is_ok(),
                "block of {} bytes overflows u32 offsets",
                self.buf.len()
            );
            self.restarts.push(offset.unwrap_or(u32::MAX));
            self.since_restart = 0;
            0
        } else {
            common_prefix_len(&self.last_key, key)
        };
        let unshared = &key[shared..];
        put_varint(&mut self.buf, shared as u64);
        put_varint(&mut self.buf, unshared.len() as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(unshared);
        put_varint(&mut self.buf, pack_trailer(seq, kind));
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(unshared);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// The payload's size if finished now.
    pub(crate) fn estimated_size(&self) -> usize {
        self.buf.len() + (self.restarts.len() + 1) * RESTART_BYTES
    }

    /// Whether no entry was added since the last finish.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Completes the payload, hands it out and resets the builder.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        assert!(self.entries > 0, "a block holds at least one entry");
        let mut payload = std::mem::take(&mut self.buf);
        for restart in &self.restarts {
            payload.extend_from_slice(&restart.to_le_bytes());
        }
        let count = u32::try_from(self.restarts.len()).unwrap_or(u32::MAX);
        payload.extend_from_slice(&count.to_le_bytes());
        self.restarts.clear();
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
        payload
    }
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// One decoded entry; its key is in the decoder's key buffer.
#[derive(Debug, Clone, Copy)]
struct RawEntry {
    shared: usize,
    seq: SequenceNumber,
    kind: EntryKind,
    value: (usize, usize),
}

/// An entry decoded in place, before its key and value are copied out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryRef(RawEntry);

/// The result of a point lookup in one block.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BlockLookup {
    /// The first entry at or after the target has the target's user key.
    Found(SequenceNumber, EntryKind, Bytes),
    /// The first entry at or after the target has another user key.
    Absent,
    /// Every entry sorts before the target.
    PastEnd,
}

/// A parsed block payload (checksum already verified).
#[derive(Debug, Clone)]
pub(crate) struct Block {
    data: Bytes,
    /// Where the restart array starts: the end of the entries.
    entries_end: usize,
    restart_count: usize,
}

impl Block {
    /// Parses the restart trailer of `data`.
    pub(crate) fn parse(data: Bytes) -> Result<Self, DecodeError> {
        // The first entry is decoded next, but its line is far from the
        // restart trailer: loading it now, independently of the trailer's
        // load, lets a cold block's two cache misses overlap.
        std::hint::black_box(data.first().copied());
        let len = data.len();
        let count_pos = len.checked_sub(RESTART_BYTES).ok_or_else(|| {
            DecodeError::new(0, format!("block of {len} bytes has no restart count"))
        })?;
        let count = u32_at(&data, count_pos, "restart count")? as usize;
        let entries_end = count
            .checked_mul(RESTART_BYTES)
            .and_then(|restarts| count_pos.checked_sub(restarts))
            .ok_or_else(|| {
                DecodeError::new(
                    count_pos,
                    format!("{count} restarts do not fit a {len}-byte block"),
                )
            })?;
        if count == 0 || entries_end == 0 {
            return Err(DecodeError::new(count_pos, "block holds no entry"));
        }
        Ok(Self {
            data,
            entries_end,
            restart_count: count,
        })
    }

    fn restart(&self, index: usize) -> Result<usize, DecodeError> {
        let pos = self.entries_end + index * RESTART_BYTES;
        let offset = u32_at(&self.data, pos, "restart offset")? as usize;
        if offset >= self.entries_end {
            return Err(DecodeError::new(
                pos,
                format!("restart offset {offset} is past the entries"),
            ));
        }
        Ok(offset)
    }

    /// Decodes the entry at `pos`, rebuilding its key in `key` from the
    /// previous one. Returns the entry and the offset of the next.
    fn decode_at(&self, pos: usize, key: &mut Vec<u8>) -> Result<(RawEntry, usize), DecodeError> {
        let entries = self.data.get(..self.entries_end).unwrap_or_default();
        let mut cursor = Cursor::at(entries, pos);
        let shared = cursor.varint_len(KEY_BYTES_MAX, "shared key length")?;
        let unshared = cursor.varint_len(KEY_BYTES_MAX, "unshared key length")?;
        let value_len = cursor.varint_len(VALUE_BYTES_MAX, "value length")?;
        if shared > key.len() || shared + unshared > KEY_BYTES_MAX {
            return Err(DecodeError::new(
                pos,
                format!(
                    "key shares {shared} bytes with a previous key of {} and adds {unshared}",
                    key.len()
                ),
            ));
        }
        let suffix = cursor.bytes(unshared, "key suffix")?;
        let trailer_pos = cursor.pos();
        let trailer = cursor.varint("sequence number and kind")?;
        let kind = EntryKind::from_tag(trailer as u8).ok_or_else(|| {
            DecodeError::new(trailer_pos, format!("unknown entry kind {}", trailer as u8))
        })?;
        let value_start = cursor.pos();
        cursor.bytes(value_len, "value")?;
        key.truncate(shared);
        key.extend_from_slice(suffix);
        let entry = RawEntry {
            shared,
            seq: trailer >> 8,
            kind,
            value: (value_start, value_len),
        };
        Ok((entry, cursor.pos()))
    }

    fn value(&self, raw: &RawEntry) -> Bytes {
        let (start, len) = raw.value;
        self.data.slice(start..start + len)
    }

    /// The offset of the last restart point whose entry satisfies `before`
    /// (which must hold for a prefix of the entries), or of the first one.
    fn last_restart_before(
        &self,
        scratch: &mut Vec<u8>,
        before: impl Fn(&[u8], SequenceNumber) -> bool,
    ) -> Result<usize, DecodeError> {
        let (mut low, mut high) = (0usize, self.restart_count - 1);
        while low < high {
            let mid = low + (high - low).div_ceil(2);
            let pos = self.restart(mid)?;
            scratch.clear();
            let (raw, _) = self.decode_at(pos, scratch)?;
            if raw.shared != 0 {
                return Err(DecodeError::new(
                    pos,
                    "entry at a restart point shares a prefix",
                ));
            }
            if before(scratch, raw.seq) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        self.restart(low)
    }

    /// The first entry at or after `(key, seq)` in internal order, looked up
    /// by binary search over the restart points.
    pub(crate) fn get(&self, key: &[u8], seq: SequenceNumber) -> Result<BlockLookup, DecodeError> {
        let mut scratch = Vec::with_capacity(key.len() + 16);
        let mut pos = self.last_restart_before(&mut scratch, |k, s| {
            compare_internal(k, s, key, seq) == Ordering::Less
        })?;
        scratch.clear();
        while pos < self.entries_end {
            let (raw, next) = self.decode_at(pos, &mut scratch)?;
            if compare_internal(&scratch, raw.seq, key, seq) != Ordering::Less {
                if scratch.as_slice() == key {
                    return Ok(BlockLookup::Found(raw.seq, raw.kind, self.value(&raw)));
                }
                return Ok(BlockLookup::Absent);
            }
            pos = next;
        }
        Ok(BlockLookup::PastEnd)
    }

    /// Where a forward walk from user key `key` on starts: a restart point at
    /// or before the first entry whose user key is at least `key`.
    pub(crate) fn seek_position(&self, key: &[u8]) -> Result<usize, DecodeError> {
        self.last_restart_before(&mut Vec::new(), |k, _| k < key)
    }

    /// The entry at `pos` (with the previous entry's key in `key`, or an
    /// empty `key` at a restart point) and the offset after it, or `None` at
    /// the end of the entries. Leaves the entry's user key in `key`.
    pub(crate) fn next_entry(
        &self,
        pos: usize,
        key: &mut Vec<u8>,
    ) -> Result<Option<(EntryRef, usize)>, DecodeError> {
        if pos >= self.entries_end {
            return Ok(None);
        }
        let (raw, next) = self.decode_at(pos, key)?;
        Ok(Some((EntryRef(raw), next)))
    }

    /// The owned entry for `entry`, whose key is `key`.
    pub(crate) fn to_entry(&self, entry: &EntryRef, key: &[u8]) -> Entry {
        Entry {
            key: Bytes::copy_from_slice(key),
            seq: entry.0.seq,
            kind: entry.0.kind,
            value: self.value(&entry.0),
        }
    }

    /// Every entry, in order, checking that each restart point falls on an
    /// entry that stores its full key.
    pub(crate) fn entries(&self) -> Result<Vec<Entry>, DecodeError> {
        let mut entries = Vec::new();
        let mut key = Vec::new();
        let mut pos = 0;
        let mut next_restart = 0;
        while pos < self.entries_end {
            let (raw, next) = self.decode_at(pos, &mut key)?;
            let restart = if next_restart < self.restart_count {
                Some(self.restart(next_restart)?)
            } else {
                None
            };
            if restart == Some(pos) {
                if raw.shared != 0 {
                    return Err(DecodeError::new(
                        pos,
                        "entry at a restart point shares a prefix",
                    ));
                }
                next_restart += 1;
            } else if restart.is_some_and(|restart| restart < pos) {
                return Err(DecodeError::new(
                    pos,
                    "restart point is not on an entry boundary",
                ));
            }
            entries.push(Entry {
                key: Bytes::copy_from_slice(&key),
                seq: raw.seq,
                kind: raw.kind,
                value: self.value(&raw),
            });
            pos = next;
        }
        if next_restart != self.restart_count {
            return Err(DecodeError::new(
                self.entries_end,
                "restart point is not on an entry boundary",
            ));
        }
        Ok(entries)
    }

    /// The payload's byte range of the entries, for tests.
    #[cfg(test)]
    pub(crate) fn entries_range(&self) -> std::ops::Range<usize> {
        0..self.entries_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &[u8], seq: u64, kind: EntryKind, value: &[u8]) -> Entry {
        Entry {
            key: Bytes::copy_from_slice(key),
            seq,
            kind,
            value: Bytes::copy_from_slice(value),
        }
    }

    fn build(entries: &[Entry], restart_interval: usize) -> Block {
        let mut builder = BlockBuilder::new(restart_interval);
        for e in entries {
            builder.add(&e.key, e.seq, e.kind, &e.value);
        }
        Block::parse(Bytes::from(builder.finish())).unwrap()
    }

    fn sample() -> Vec<Entry> {
        let mut entries = Vec::new();
        for i in 0..40u64 {
            let key = format!("user/{:03}/name", i / 2);
            let kind = if i % 5 == 4 {
                EntryKind::Delete
            } else {
                EntryKind::Put
            };
            // Versions of one key: newest (higher seq) first.
            entries.push(entry(
                key.as_bytes(),
                1000 - i,
                kind,
                format!("v{i}").as_bytes(),
            ));
        }
        entries
    }

    #[test]
    fn round_trips_with_every_restart_interval() {
        let entries = sample();
        for interval in [1, 2, 3, 16, 100] {
            let block = build(&entries, interval);
            assert_eq!(block.restart_count, entries.len().div_ceil(interval));
            assert_eq!(block.entries().unwrap(), entries);
        }
    }

    #[test]
    fn shared_prefixes_are_stored_once() {
        let entries = sample();
        let block = build(&entries, 16);
        let full_keys: usize = entries.iter().map(|e| e.key.len()).sum();
        // Keys share "user/0NN/" and more; the block holds far fewer key bytes.
        assert!(
            block.entries_range().len() < full_keys,
            "no prefix compression"
        );
        let restart = block.restart(1).unwrap();
        let mut key = Vec::new();
        let (raw, _) = block.decode_at(restart, &mut key).unwrap();
        assert_eq!(raw.shared, 0, "a restart point stores its full key");
        assert_eq!(key, entries[16].key.as_ref());
        let (raw, _) = block.decode_at(0, &mut Vec::new()).unwrap();
        assert_eq!(raw.shared, 0);
        let mut key = entries[0].key.to_vec();
        let second = block.decode_at(0, &mut key.clone()).unwrap().1;
        let (raw, _) = block.decode_at(second, &mut key).unwrap();
        assert_eq!(
            raw.shared,
            entries[0].key.len(),
            "same key: whole key shared"
        );
    }

    #[test]
    fn empty_and_huge_values_round_trip() {
        let huge = vec![0xab; 3 * 4096 + 17];
        let entries = vec![
            entry(b"a", 3, EntryKind::Put, b""),
            entry(b"b", 2, EntryKind::Put, &huge),
            entry(b"c", 1, EntryKind::Delete, b""),
            entry(b"", 0, EntryKind::Put, b"x"),
        ];
        let entries: Vec<_> = {
            let mut sorted = entries;
            sorted.sort_by(|x, y| compare_internal(&x.key, x.seq, &y.key, y.seq));
            sorted
        };
        let block = build(&entries, 2);
        assert_eq!(block.entries().unwrap(), entries);
        assert_eq!(
            block.get(b"b", u64::MAX).unwrap(),
            BlockLookup::Found(2, EntryKind::Put, Bytes::from(huge))
        );
        assert_eq!(
            block.get(b"a", 5).unwrap(),
            BlockLookup::Found(3, EntryKind::Put, Bytes::new())
        );
    }

    #[test]
    fn get_finds_the_first_entry_at_or_after_the_target() {
        let entries = sample();
        for interval in [1, 4, 16] {
            let block = build(&entries, interval);
            for e in &entries {
                assert_eq!(
                    block.get(&e.key, e.seq).unwrap(),
                    BlockLookup::Found(e.seq, e.kind, e.value.clone())
                );
            }
            // Between the two versions of a key: the older one.
            let (newer, older) = (&entries[2], &entries[3]);
            assert_eq!(
                block.get(&newer.key, newer.seq - 1).unwrap(),
                BlockLookup::Found(older.seq, older.kind, older.value.clone())
            );
            // Older than every version of a key: absent (the next key follows).
            assert_eq!(
                block.get(&older.key, older.seq - 1).unwrap(),
                BlockLookup::Absent
            );
            assert_eq!(block.get(b"user/000", 5).unwrap(), BlockLookup::Absent);
            assert_eq!(block.get(b"", 0).unwrap(), BlockLookup::Absent);
            assert_eq!(block.get(b"zzz", 0).unwrap(), BlockLookup::PastEnd);
        }
    }

    #[test]
    fn malformed_trailers_are_errors() {
        assert!(Block::parse(Bytes::from_static(&[1, 0])).is_err());
        assert!(Block::parse(Bytes::from_static(&[0, 0, 0, 0])).is_err());
        assert!(Block::parse(Bytes::from_static(&[0xff, 0xff, 0xff, 0xff])).is_err());
        // One restart pointing past the entries.
        let block = Block::parse(Bytes::from_static(&[0, 0, 9, 0, 0, 0, 1, 0, 0, 0])).unwrap();
        assert!(block.entries().is_err());
        assert!(block.get(b"a", 0).is_err());
    }
}
