//! The physical framing of a log file: blocks, fragments and their headers.
//!
//! A log file is a sequence of [`BLOCK_BYTES`] blocks (only the last may be
//! partial). A logical record (one encoded write batch) is stored as one
//! FULL fragment, or as FIRST, MIDDLE…, LAST fragments when it does not fit
//! in the rest of the block. No fragment crosses a block boundary, so every
//! block starts with a fragment header and a reader can resynchronise at
//! the next block after damage. Fragment header, little-endian:
//!
//! ```text
//! masked crc32 u32 | payload length u16 | type u8 | log number u32 | payload
//! ```
//!
//! The CRC covers the type byte, the log number and the payload; the log
//! number (low 32 bits of the file number) makes a record left in a reused
//! or preallocated file from an earlier log fail validation.

use crate::storage::types::FileNumber;

/// Size of one block; a fragment never crosses a block boundary.
pub(crate) const BLOCK_BYTES: usize = 32 * 1024;

/// Size of a fragment header.
pub(crate) const HEADER_BYTES: usize = 11;

/// The most payload one fragment carries (a fragment alone in a block).
pub(crate) const FRAGMENT_PAYLOAD_BYTES_MAX: usize = BLOCK_BYTES - HEADER_BYTES;

/// Added to the rotated CRC, as LevelDB does, so the stored value is not the
/// plain CRC of bytes that may themselves embed CRCs.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// The kinds of fragment. Type 0 is reserved: a zero header marks
/// preallocated (zero-filled) space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum FragmentType {
    /// A whole record.
    Full = 1,
    /// The first piece of a record.
    First = 2,
    /// An inner piece of a record.
    Middle = 3,
    /// The last piece of a record.
    Last = 4,
}

impl FragmentType {
    /// The type for its on-disk tag, or `None` if unknown.
    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Self::Full),
            2 => Some(Self::First),
            3 => Some(Self::Middle),
            4 => Some(Self::Last),
            _ => None,
        }
    }
}

/// A decoded fragment header (not yet validated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FragmentHeader {
    /// The stored (masked) CRC.
    pub(crate) masked_crc: u32,
    /// Payload length in bytes.
    pub(crate) len: usize,
    /// The raw type tag.
    pub(crate) tag: u8,
    /// The stored log number tag.
    pub(crate) log_tag: u32,
}

impl FragmentHeader {
    /// Decodes a header from its bytes.
    pub(crate) fn parse(bytes: &[u8; HEADER_BYTES]) -> Self {
        let [c0, c1, c2, c3, l0, l1, tag, n0, n1, n2, n3] = *bytes;
        Self {
            masked_crc: u32::from_le_bytes([c0, c1, c2, c3]),
            len: usize::from(u16::from_le_bytes([l0, l1])),
            tag,
            log_tag: u32::from_le_bytes([n0, n1, n2, n3]),
        }
    }

    /// Whether every header byte is zero (preallocated space).
    pub(crate) fn is_zero(&self) -> bool {
        self.masked_crc == 0 && self.len == 0 && self.tag == 0 && self.log_tag == 0
    }

    /// Whether the stored CRC matches `payload`.
    pub(crate) fn checksum_matches(&self, payload: &[u8]) -> bool {
        self.masked_crc == fragment_crc(self.tag, self.log_tag, payload)
    }
}

/// The log number as stored in fragment headers: its low 32 bits. File
/// numbers of logs that could share a file never differ by 2^32.
pub(crate) fn log_tag(number: FileNumber) -> u32 {
    // Truncation is the documented format.
    number as u32
}

/// The masked CRC of a fragment.
pub(crate) fn fragment_crc(tag: u8, log_tag: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[tag]);
    hasher.update(&log_tag.to_le_bytes());
    hasher.update(payload);
    mask(hasher.finalize())
}

fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

/// Fills in the header of `fragment`: its first [`HEADER_BYTES`] are the
/// header's place, the rest its payload (already written in place).
pub(crate) fn seal_fragment(fragment: &mut [u8], kind: FragmentType, log_tag: u32) {
    let (header, payload) = fragment.split_at_mut(HEADER_BYTES);
    assert!(
        payload.len() <= FRAGMENT_PAYLOAD_BYTES_MAX,
        "fragment payload of {} bytes exceeds a block",
        payload.len()
    );
    let tag = kind as u8;
    header[..4].copy_from_slice(&fragment_crc(tag, log_tag, payload).to_le_bytes());
    header[4..6].copy_from_slice(&(payload.len() as u16).to_le_bytes());
    header[6] = tag;
    header[7..].copy_from_slice(&log_tag.to_le_bytes());
}

/// Appends one fragment (header and payload) to `out`.
pub(crate) fn encode_fragment(out: &mut Vec<u8>, kind: FragmentType, log_tag: u32, payload: &[u8]) {
    assert!(
        payload.len() <= FRAGMENT_PAYLOAD_BYTES_MAX,
        "fragment payload of {} bytes exceeds a block",
        payload.len()
    );
    let tag = kind as u8;
    out.extend_from_slice(&fragment_crc(tag, log_tag, payload).to_le_bytes());
    // Lossless: asserted above to be below BLOCK_BYTES (< 2^16).
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(tag);
    out.extend_from_slice(&log_tag.to_le_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_checksum_covers_type_number_and_payload() {
        let mut out = Vec::new();
        encode_fragment(&mut out, FragmentType::First, 12, b"payload");
        assert_eq!(out.len(), HEADER_BYTES + 7);
        let header = FragmentHeader::parse(out[..HEADER_BYTES].try_into().unwrap());
        assert_eq!(header.len, 7);
        assert_eq!(header.tag, FragmentType::First as u8);
        assert_eq!(header.log_tag, 12);
        assert!(header.checksum_matches(b"payload"));
        assert!(!header.checksum_matches(b"paylOad"));
        let other_type = FragmentHeader { tag: 1, ..header };
        assert!(!other_type.checksum_matches(b"payload"));
        let other_log = FragmentHeader {
            log_tag: 13,
            ..header
        };
        assert!(!other_log.checksum_matches(b"payload"));
        assert!(!header.is_zero());
        assert!(FragmentHeader::parse(&[0; HEADER_BYTES]).is_zero());
    }

    #[test]
    fn crc_is_masked_like_leveldb() {
        let crc = crc32fast::hash(b"x");
        assert_eq!(mask(crc), crc.rotate_right(15).wrapping_add(0xa282_ead8));
        assert_ne!(mask(crc), crc);
    }

    #[test]
    fn log_tag_keeps_the_low_32_bits() {
        assert_eq!(log_tag(7), 7);
        assert_eq!(log_tag((1 << 32) + 7), 7);
    }
}
