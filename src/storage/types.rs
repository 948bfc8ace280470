//! The vocabulary shared by the WAL, memtables, segments and the manifest.

use std::cmp::Ordering;

use bytes::Bytes;

/// The position of a batch in the total order of writes. Every batch gets
/// the next number; every entry of a batch carries the batch's number plus
/// its index within the batch, so entries never share a number.
pub type SequenceNumber = u64;

/// The largest sequence number; a read at this number sees everything.
pub const MAX_SEQUENCE_NUMBER: SequenceNumber = u64::MAX >> 8;

/// The number naming a file of the database directory (WAL segment, sorted
/// segment, manifest). Numbers are allocated from one counter and never reused.
pub type FileNumber = u64;

/// What an entry does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EntryKind {
    /// The key was deleted (a tombstone).
    Delete = 0,
    /// The key was set to a value.
    Put = 1,
}

impl EntryKind {
    /// The kind for its on-disk tag, or `None` for an unknown tag.
    pub fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            0 => Some(Self::Delete),
            1 => Some(Self::Put),
            _ => None,
        }
    }
}

/// One version of one key: the unit stored in memtables and segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The user's key.
    pub key: Bytes,
    /// The sequence number that wrote this version.
    pub seq: SequenceNumber,
    /// Put or delete.
    pub kind: EntryKind,
    /// The value (empty for a delete).
    pub value: Bytes,
}

/// The engine's internal order: user key ascending, then newest version first.
/// Memtables, segments and merge iterators all sort by it.
pub fn compare_internal(
    a_key: &[u8],
    a_seq: SequenceNumber,
    b_key: &[u8],
    b_seq: SequenceNumber,
) -> Ordering {
    a_key.cmp(b_key).then_with(|| b_seq.cmp(&a_seq))
}

/// The first eight bytes of `key`, zero-padded, as a big-endian number.
///
/// Two keys whose prefixes differ are ordered as their prefixes are: the
/// first difference is a real byte, or padding (0) against a byte > 0 of a
/// longer key that the shorter one is a prefix of — and the shorter key
/// sorts first either way. So ordered structures compare prefixes first
/// and touch the key bytes only on a tie.
pub(crate) fn key_prefix(key: &[u8]) -> u64 {
    let mut raw = [0u8; 8];
    let len = key.len().min(8);
    raw[..len].copy_from_slice(&key[..len]);
    u64::from_be_bytes(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_order_is_key_ascending_then_newest_first() {
        assert_eq!(compare_internal(b"a", 1, b"b", 9), Ordering::Less);
        assert_eq!(compare_internal(b"a", 9, b"a", 1), Ordering::Less);
        assert_eq!(compare_internal(b"a", 1, b"a", 9), Ordering::Greater);
        assert_eq!(compare_internal(b"a", 5, b"a", 5), Ordering::Equal);
    }

    #[test]
    fn entry_kind_tags_round_trip() {
        for kind in [EntryKind::Delete, EntryKind::Put] {
            assert_eq!(EntryKind::from_tag(kind as u8), Some(kind));
        }
        assert_eq!(EntryKind::from_tag(7), None);
    }
}
