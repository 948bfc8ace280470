//! The segment footer: where the index and filter are, what the segment
//! holds, and a fixed-size tail (length, version, checksum, magic) at the very
//! end of the file so a reader finds the footer from the file length alone.
#![cfg_attr(not(test), allow(dead_code))]

use bytes::Bytes;

use super::KEY_BYTES_MAX;
use super::codec::{Cursor, DecodeError, checksum};
use crate::storage::types::SequenceNumber;

/// The last eight bytes of every segment file.
pub(crate) const MAGIC: u64 = u64::from_le_bytes(*b"NIMBUSSG");

/// The format this code writes and reads.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Bytes of the fixed tail: body length u32, version u32, checksum u64, magic u64.
pub(crate) const TAIL_BYTES: usize = 24;

/// Bytes of the fixed fields of the body (seven u64 and two u32 key lengths).
const BODY_FIXED_BYTES: usize = 7 * 8 + 2 * 4;

/// The largest body a valid footer has: the fixed fields and two maximal keys.
pub(crate) const BODY_BYTES_MAX: usize = BODY_FIXED_BYTES + 2 * KEY_BYTES_MAX;

/// The position and payload length of a checksummed region (block, filter,
/// index); its 8-byte checksum follows the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    /// File offset of the payload.
    pub(crate) offset: u64,
    /// Payload length in bytes, not counting the checksum.
    pub(crate) len: u64,
}

/// What the footer records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Footer {
    /// The bloom filter.
    pub(crate) filter: BlockHandle,
    /// The block index.
    pub(crate) index: BlockHandle,
    /// How many entries (versions) the segment holds.
    pub(crate) entry_count: u64,
    /// The smallest sequence number of any entry.
    pub(crate) min_seq: SequenceNumber,
    /// The largest sequence number of any entry.
    pub(crate) max_seq: SequenceNumber,
    /// The first entry's user key.
    pub(crate) smallest_key: Bytes,
    /// The last entry's user key.
    pub(crate) largest_key: Bytes,
}

impl Footer {
    /// The footer's bytes: body then tail.
    pub(crate) fn encode(&self) -> Vec<u8> {
        assert!(
            self.smallest_key.len() <= KEY_BYTES_MAX && self.largest_key.len() <= KEY_BYTES_MAX,
            "footer keys exceed KEY_BYTES_MAX"
        );
        let mut out = Vec::with_capacity(
            BODY_FIXED_BYTES + self.smallest_key.len() + self.largest_key.len() + TAIL_BYTES,
        );
        for field in [
            self.filter.offset,
            self.filter.len,
            self.index.offset,
            self.index.len,
            self.entry_count,
            self.min_seq,
            self.max_seq,
        ] {
            out.extend_from_slice(&field.to_le_bytes());
        }
        for key in [&self.smallest_key, &self.largest_key] {
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
        }
        let body_len = out.len() as u32;
        out.extend_from_slice(&body_len.to_le_bytes());
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out
    }

    /// Checks the tail (the file's last `TAIL_BYTES`) and returns the body
    /// length, so the reader knows how much more to read.
    pub(crate) fn body_len(tail: &[u8]) -> Result<usize, DecodeError> {
        let mut cursor = Cursor::new(tail);
        let body_len = cursor.u32_le("footer body length")? as usize;
        let version = cursor.u32_le("format version")?;
        cursor.u64_le("footer checksum")?;
        let magic = cursor.u64_le("magic")?;
        if magic != MAGIC {
            return Err(DecodeError::new(
                16,
                format!("bad magic {magic:#018x}: not a segment file"),
            ));
        }
        if version != FORMAT_VERSION {
            return Err(DecodeError::new(
                4,
                format!("unsupported segment format version {version}"),
            ));
        }
        if !(BODY_FIXED_BYTES..=BODY_BYTES_MAX).contains(&body_len) {
            return Err(DecodeError::new(
                0,
                format!("footer body length {body_len} out of range"),
            ));
        }
        Ok(body_len)
    }

    /// Decodes `footer` (body then tail), verifying its checksum.
    pub(crate) fn decode(footer: &[u8]) -> Result<Self, DecodeError> {
        let tail_start = footer
            .len()
            .checked_sub(TAIL_BYTES)
            .ok_or_else(|| DecodeError::new(0, "footer shorter than its tail"))?;
        let tail = footer.get(tail_start..).unwrap_or_default();
        let body_len = Self::body_len(tail)?;
        if body_len != tail_start {
            return Err(DecodeError::new(
                tail_start,
                "footer body length disagrees with the tail",
            ));
        }
        let checked = footer.get(..tail_start + 8).unwrap_or_default();
        let stored = Cursor::at(footer, tail_start + 8).u64_le("footer checksum")?;
        if checksum(checked) != stored {
            return Err(DecodeError::new(tail_start + 8, "footer checksum mismatch"));
        }
        let mut cursor = Cursor::new(footer.get(..tail_start).unwrap_or_default());
        let mut field = |what| cursor.u64_le(what);
        let filter = BlockHandle {
            offset: field("filter offset")?,
            len: field("filter length")?,
        };
        let index = BlockHandle {
            offset: field("index offset")?,
            len: field("index length")?,
        };
        let entry_count = field("entry count")?;
        let min_seq = field("min sequence number")?;
        let max_seq = field("max sequence number")?;
        let mut key = |what| -> Result<Bytes, DecodeError> {
            let len = cursor.u32_le(what)? as usize;
            Ok(Bytes::copy_from_slice(cursor.bytes(len, what)?))
        };
        let smallest_key = key("smallest key")?;
        let largest_key = key("largest key")?;
        if !cursor.is_at_end() {
            return Err(DecodeError::new(
                cursor.pos(),
                "trailing bytes in the footer body",
            ));
        }
        if min_seq > max_seq || entry_count == 0 || smallest_key > largest_key {
            return Err(DecodeError::new(0, "footer summary is inconsistent"));
        }
        Ok(Self {
            filter,
            index,
            entry_count,
            min_seq,
            max_seq,
            smallest_key,
            largest_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Footer {
        Footer {
            filter: BlockHandle {
                offset: 4096,
                len: 130,
            },
            index: BlockHandle {
                offset: 4234,
                len: 77,
            },
            entry_count: 42,
            min_seq: 7,
            max_seq: 1 << 40,
            smallest_key: Bytes::from_static(b"apple"),
            largest_key: Bytes::from_static(b"zebra"),
        }
    }

    #[test]
    fn round_trips() {
        let footer = sample();
        let bytes = footer.encode();
        let tail = &bytes[bytes.len() - TAIL_BYTES..];
        assert_eq!(Footer::body_len(tail).unwrap(), bytes.len() - TAIL_BYTES);
        assert_eq!(Footer::decode(&bytes).unwrap(), footer);
        assert_eq!(&bytes[bytes.len() - 8..], b"NIMBUSSG");
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let bytes = sample().encode();
        for pos in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[pos] ^= 1 << bit;
                assert!(
                    Footer::decode(&damaged).is_err(),
                    "flip at {pos}:{bit} undetected"
                );
            }
        }
    }

    #[test]
    fn truncated_footers_are_errors() {
        let bytes = sample().encode();
        for cut in 1..bytes.len() {
            assert!(Footer::decode(&bytes[cut..]).is_err());
            assert!(Footer::decode(&bytes[..cut]).is_err());
        }
    }
}
