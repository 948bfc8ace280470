//! What the engine knows about a segment without opening it: the summary
//! the writer returns and the manifest records (the manifest mirrors these
//! fields in its own encoding).
#![cfg_attr(not(test), allow(dead_code))]

use bytes::Bytes;

use crate::storage::range::KeyRange;
use crate::storage::types::{FileNumber, SequenceNumber};

/// The summary of one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    /// The file's number, which names it in the database directory.
    pub(crate) file_number: FileNumber,
    /// The file's length in bytes.
    pub(crate) file_size_bytes: u64,
    /// The smallest user key of any entry.
    pub(crate) smallest_key: Bytes,
    /// The largest user key of any entry.
    pub(crate) largest_key: Bytes,
    /// The smallest sequence number of any entry.
    pub(crate) min_seq: SequenceNumber,
    /// The largest sequence number of any entry.
    pub(crate) max_seq: SequenceNumber,
    /// How many entries (versions, tombstones included) the file holds.
    pub(crate) entry_count: u64,
}

impl SegmentMeta {
    /// Whether some key of `range` may be in the segment, judged from its key
    /// span alone; used to skip segments when iterating.
    pub(crate) fn overlaps(&self, range: &KeyRange) -> bool {
        !range.is_empty()
            && range.is_before_end(&self.smallest_key)
            && range.is_after_start(&self.largest_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_uses_the_key_span() {
        let meta = SegmentMeta {
            file_number: 1,
            file_size_bytes: 100,
            smallest_key: Bytes::from_static(b"c"),
            largest_key: Bytes::from_static(b"f"),
            min_seq: 1,
            max_seq: 2,
            entry_count: 2,
        };
        let range = |a: &[u8], b: &[u8]| KeyRange::from_bounds(a..b);
        assert!(meta.overlaps(&range(b"a", b"d")));
        assert!(meta.overlaps(&range(b"f", b"z")));
        assert!(!meta.overlaps(&range(b"a", b"c")));
        assert!(!meta.overlaps(&range(b"g", b"z")));
        assert!(meta.overlaps(&KeyRange::all()));
    }
}
