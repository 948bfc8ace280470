//! Bounds-checked encoding primitives of the segment format: LEB128 varints,
//! little-endian fixed-width integers, and the block checksum.
//!
//! Decoding never indexes past its buffer: every read that would is a
//! [`DecodeError`] carrying the offset within the buffer, which the reader
//! turns into `StorageError::Corruption` with the file's offset.
#![cfg_attr(not(test), allow(dead_code))]

use std::path::Path;

use crate::storage::error::StorageError;

/// Bytes of the checksum that follows every block, filter and index.
pub(crate) const CHECKSUM_BYTES: usize = 8;

/// The checksum of a block payload: xxh3-64, stored little-endian.
///
/// xxh3 rather than CRC-32: it is already the bloom filter's hash, runs at
/// memory bandwidth without relying on CPU CRC instructions, and its 64 bits
/// make an undetected random corruption a 2^-64 event. CRC's guarantee for
/// short bursts matters for links, not for whole flipped sectors or pages.
pub(crate) fn checksum(payload: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(payload)
}

/// A failed decode: what was wrong and where, relative to the decoded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DecodeError {
    /// Offset within the buffer being decoded.
    pub(crate) offset: usize,
    /// What check failed.
    pub(crate) reason: String,
}

impl DecodeError {
    /// A decode error at `offset`.
    pub(crate) fn new(offset: usize, reason: impl Into<String>) -> Self {
        Self {
            offset,
            reason: reason.into(),
        }
    }

    /// The corruption error for `file`, whose decoded buffer started at `base`.
    pub(crate) fn in_file(self, file: &Path, base: u64) -> StorageError {
        StorageError::corruption(file, base.saturating_add(self.offset as u64), self.reason)
    }
}

/// Appends `value` as an LEB128 varint.
pub(crate) fn put_varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// The encoded length of `value` as a varint.
pub(crate) fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// A cursor over a byte slice whose every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// A cursor at `pos` of `buf`.
    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    /// The offset of the next read.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Whether every byte was read.
    pub(crate) fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next `len` bytes.
    #[inline]
    pub(crate) fn bytes(&mut self, len: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len);
        match end.and_then(|end| self.buf.get(self.pos..end)) {
            Some(bytes) => {
                self.pos += len;
                Ok(bytes)
            }
            None => Err(DecodeError::new(
                self.pos,
                format!(
                    "{what}: {len} bytes needed, {} left",
                    self.buf.len().saturating_sub(self.pos)
                ),
            )),
        }
    }

    /// A little-endian `u32`.
    pub(crate) fn u32_le(&mut self, what: &str) -> Result<u32, DecodeError> {
        let mut raw = [0u8; 4];
        raw.copy_from_slice(self.bytes(4, what)?);
        Ok(u32::from_le_bytes(raw))
    }

    /// A little-endian `u64`.
    pub(crate) fn u64_le(&mut self, what: &str) -> Result<u64, DecodeError> {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(self.bytes(8, what)?);
        Ok(u64::from_le_bytes(raw))
    }

    /// An LEB128 varint of at most 64 bits.
    #[inline]
    pub(crate) fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        // Lengths and shared-prefix sizes are mostly below 128: one byte.
        if let Some(&byte) = self.buf.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        self.varint_multi_byte(what)
    }

    fn varint_multi_byte(&mut self, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(DecodeError::new(start, format!("{what}: truncated varint")));
            };
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && bits > 1 {
                return Err(DecodeError::new(
                    start,
                    format!("{what}: varint overflows u64"),
                ));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::new(start, format!("{what}: varint too long")))
    }

    /// A varint that must fit in `usize` and be at most `max`.
    #[inline]
    pub(crate) fn varint_len(&mut self, max: usize, what: &str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let value = self.varint(what)?;
        match usize::try_from(value) {
            Ok(len) if len <= max => Ok(len),
            _ => Err(DecodeError::new(
                start,
                format!("{what}: {value} exceeds the limit of {max}"),
            )),
        }
    }
}

/// Reads a little-endian `u32` at `pos` of `buf`.
pub(crate) fn u32_at(buf: &[u8], pos: usize, what: &str) -> Result<u32, DecodeError> {
    Cursor::at(buf, pos).u32_le(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length() {
        let mut values = vec![0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX];
        values.extend((0..64).map(|shift| 1u64 << shift));
        for value in values {
            let mut buf = Vec::new();
            put_varint(&mut buf, value);
            assert_eq!(buf.len(), varint_len(value));
            let mut cursor = Cursor::new(&buf);
            assert_eq!(cursor.varint("v"), Ok(value));
            assert!(cursor.is_at_end());
            // Every strict prefix is truncated.
            for cut in 0..buf.len() {
                assert!(Cursor::new(&buf[..cut]).varint("v").is_err());
            }
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_rejected() {
        assert!(Cursor::new(&[0xff; 11]).varint("v").is_err());
        let mut overflow = vec![0xff; 9];
        overflow.push(0x02);
        assert!(Cursor::new(&overflow).varint("v").is_err());
        assert!(Cursor::new(&[0x85, 0x01]).varint_len(10, "v").is_err());
    }

    #[test]
    fn fixed_reads_past_the_end_fail_without_moving() {
        let mut cursor = Cursor::new(&[1, 2, 3]);
        assert!(cursor.u32_le("x").is_err());
        assert_eq!(cursor.pos(), 0);
        assert_eq!(cursor.bytes(usize::MAX, "x").map(<[u8]>::len).ok(), None);
        assert_eq!(cursor.bytes(3, "x"), Ok(&[1u8, 2, 3][..]));
    }
}
