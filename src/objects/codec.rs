//! The byte codec of catalogue rows: LEB128 varints, length-prefixed byte
//! strings and fixed arrays. The reader checks every length against the
//! bytes actually present, so a damaged row is `Corruption`, never a panic
//! or a huge allocation.

use super::error::{Error, Result};

/// The longest LEB128 encoding of a u64.
const VARINT_BYTES_MAX: usize = 10;

/// Appends encoded fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.buf.push(value);
        self
    }

    pub(crate) fn bool(&mut self, value: bool) -> &mut Self {
        self.u8(u8::from(value))
    }

    pub(crate) fn varint(&mut self, mut value: u64) -> &mut Self {
        while value >= 0x80 {
            self.buf.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
        self
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.varint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn str(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    pub(crate) fn opt_str(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.u8(1).str(value),
            None => self.u8(0),
        }
    }

    pub(crate) fn opt_varint(&mut self, value: Option<u64>) -> &mut Self {
        match value {
            Some(value) => self.u8(1).varint(value),
            None => self.u8(0),
        }
    }

    pub(crate) fn pairs(&mut self, pairs: &[(String, String)]) -> &mut Self {
        self.varint(pairs.len() as u64);
        for (key, value) in pairs {
            self.str(key).str(value);
        }
        self
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from an encoded row, failing cleanly on damage.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `buf`, naming the row kind `what` in errors.
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn corrupt(&self, reason: &str) -> Error {
        Error::corrupt_row(format!("{}: {reason}", self.what))
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let (&first, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| self.corrupt("truncated"))?;
        self.buf = rest;
        Ok(first)
    }

    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("a flag is neither 0 nor 1")),
        }
    }

    pub(crate) fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for index in 0..VARINT_BYTES_MAX {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if index == VARINT_BYTES_MAX - 1 && bits > 1 {
                return Err(self.corrupt("a varint overflows 64 bits"));
            }
            value |= bits << (7 * index);
            if byte & 0x80 == 0 {
                // One encoding per value, so a decoded row re-encodes to
                // the same bytes.
                if byte == 0 && index > 0 {
                    return Err(self.corrupt("a varint has a redundant zero byte"));
                }
                return Ok(value);
            }
        }
        Err(self.corrupt("a varint is longer than 10 bytes"))
    }

    /// A varint that must fit `usize` and be at most `max`.
    pub(crate) fn len(&mut self, max: usize) -> Result<usize> {
        let value = self.varint()?;
        usize::try_from(value)
            .ok()
            .filter(|len| *len <= max)
            .ok_or_else(|| self.corrupt("a length is out of range"))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or_else(|| self.corrupt("truncated"))?;
        self.buf = rest;
        Ok(*head)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.len(usize::MAX)?;
        if len > self.buf.len() {
            return Err(self.corrupt("a length runs past the end"));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| self.corrupt("a string is not UTF-8"))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }

    pub(crate) fn opt_string(&mut self) -> Result<Option<String>> {
        match self.bool()? {
            true => self.string().map(Some),
            false => Ok(None),
        }
    }

    pub(crate) fn opt_varint(&mut self) -> Result<Option<u64>> {
        match self.bool()? {
            true => self.varint().map(Some),
            false => Ok(None),
        }
    }

    pub(crate) fn pairs(&mut self) -> Result<Vec<(String, String)>> {
        let count = self.len(usize::MAX)?;
        // Each pair takes at least two bytes, which bounds the allocation.
        if count > self.buf.len() / 2 {
            return Err(self.corrupt("a count runs past the end"));
        }
        let mut pairs = Vec::with_capacity(count);
        for _ in 0..count {
            pairs.push((self.string()?, self.string()?));
        }
        Ok(pairs)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(self) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt("trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip() {
        let mut writer = Writer::default();
        writer
            .u8(7)
            .bool(true)
            .varint(u64::MAX)
            .varint(300)
            .str("hé")
            .opt_str(None)
            .opt_varint(Some(9))
            .pairs(&[("a".into(), "b".into())]);
        let buf = writer.finish();
        let mut reader = Reader::new(&buf, "test");
        assert_eq!(reader.u8().unwrap(), 7);
        assert!(reader.bool().unwrap());
        assert_eq!(reader.varint().unwrap(), u64::MAX);
        assert_eq!(reader.varint().unwrap(), 300);
        assert_eq!(reader.str().unwrap(), "hé");
        assert_eq!(reader.opt_string().unwrap(), None);
        assert_eq!(reader.opt_varint().unwrap(), Some(9));
        assert_eq!(
            reader.pairs().unwrap(),
            vec![("a".to_owned(), "b".to_owned())]
        );
        reader.finish().unwrap();
    }

    #[test]
    fn damage_is_an_error() {
        assert!(Reader::new(&[0x80; 11], "t").varint().is_err());
        assert!(Reader::new(&[0x89, 0x00], "t").varint().is_err());
        assert!(
            Reader::new(
                &[0xff; 9].iter().chain(&[0x02]).copied().collect::<Vec<_>>(),
                "t"
            )
            .varint()
            .is_err()
        );
        assert!(Reader::new(&[5, b'a'], "t").bytes().is_err());
        assert!(Reader::new(&[1, 0xff], "t").str().is_err());
        assert!(Reader::new(&[2], "t").bool().is_err());
        assert!(Reader::new(&[200, 1], "t").pairs().is_err());
        assert!(Reader::new(&[1], "t").finish().is_err());
    }
}
