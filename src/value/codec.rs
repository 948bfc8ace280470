//! The compact binary encoding an item is stored in (the value of its row).
//!
//! ```text
//! item  := version(0x01) count:varint (name value)*
//! name  := len:varint utf8-bytes
//! value := tag payload
//!   0 S    len:varint utf8        1 N  number (key encoding, self-delimiting)
//!   2 B    len:varint bytes       3 BOOL false   4 BOOL true   5 NULL
//!   6 L    count:varint value*    7 M  count:varint (name value)*
//!   8 SS   count:varint (len bytes)*   9 NS count:varint number*
//!   10 BS  count:varint (len bytes)*
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low first). Names of a map are
//! written in the map's order, so encoding is deterministic. Decoding
//! trusts nothing: every length is checked against the bytes left, nesting
//! is bounded, strings must be UTF-8 and set elements strictly increasing —
//! a damaged row is a [`ValueError::Decode`], never a panic or a huge
//! allocation (fuzz target `value_item_codec`).

use std::collections::{BTreeMap, BTreeSet};

use super::key::{decode_number, encode_number};
use super::size::number_size;
use super::{AttributeValue, Item, MAX_NESTING_DEPTH, ValueError};

/// The first byte of every encoded item.
const FORMAT_VERSION: u8 = 1;

/// How deep decoding follows lists and maps: DynamoDB's 32 levels plus
/// slack, so a stored item always decodes but a crafted one cannot recurse
/// without bound.
const MAX_DECODE_DEPTH: usize = MAX_NESTING_DEPTH + 8;

const TAG_S: u8 = 0;
const TAG_N: u8 = 1;
const TAG_B: u8 = 2;
const TAG_FALSE: u8 = 3;
const TAG_TRUE: u8 = 4;
const TAG_NULL: u8 = 5;
const TAG_L: u8 = 6;
const TAG_M: u8 = 7;
const TAG_SS: u8 = 8;
const TAG_NS: u8 = 9;
const TAG_BS: u8 = 10;

/// Appends the encoding of `item` to `out`.
pub fn encode_item(item: &Item, out: &mut Vec<u8>) {
    let attributes = item.iter().map(|(name, value)| (name.as_str(), value));
    encode_attributes(item.len(), attributes, out);
}

/// Appends the encoding of the item whose `len` attributes are
/// `attributes` (distinct names, in ascending order, as an [`Item`] holds
/// them) without building the item: what [`encode_item`] writes for it.
pub(crate) fn encode_attributes<'a>(
    len: usize,
    attributes: impl Iterator<Item = (&'a str, &'a AttributeValue)>,
    out: &mut Vec<u8>,
) {
    out.push(FORMAT_VERSION);
    put_varint(out, len as u64);
    for (name, value) in attributes {
        put_bytes(out, name.as_bytes());
        encode_value(value, out);
    }
}

/// Decodes an item written by [`encode_item`].
pub fn decode_item(input: &[u8]) -> Result<Item, ValueError> {
    prefetch(input);
    let mut reader = Reader { input, position: 0 };
    if reader.byte()? != FORMAT_VERSION {
        return Err(ValueError::Decode("unknown item format version".into()));
    }
    let map = reader.map(1)?;
    if reader.position != input.len() {
        return Err(ValueError::Decode("trailing bytes after an item".into()));
    }
    Ok(Item::from(map))
}

/// The DynamoDB size ([`item_size`](super::item_size)) of the item
/// encoded in `input`, read without building the item: a write charges
/// the item it replaces by its size and needs nothing else of it unless
/// a condition, an update, an index or returned values ask.
///
/// The encoding's structure is checked as [`decode_item`] checks it
/// (version, tags, lengths, counts, varints, numbers, nesting, trailing
/// bytes), but neither the UTF-8 of strings nor the order of names and
/// set elements, which do not change a size: every input [`decode_item`]
/// accepts gets the size of its item (the `value_item_codec` fuzz target
/// checks this), and an input it refuses may still be sized.
pub(crate) fn encoded_item_size(input: &[u8]) -> Result<usize, ValueError> {
    let mut reader = Reader { input, position: 0 };
    if reader.byte()? != FORMAT_VERSION {
        return Err(ValueError::Decode("unknown item format version".into()));
    }
    let (size, _) = reader.entries_size(1)?;
    if reader.position != input.len() {
        return Err(ValueError::Decode("trailing bytes after an item".into()));
    }
    Ok(size)
}

/// Asks the CPU to load every cache line of `bytes` at once: a value read
/// from a segment is usually in no cache, and decoding it line by line
/// would wait for each miss in turn.
#[inline]
#[cfg(target_arch = "x86_64")]
fn prefetch(bytes: &[u8]) {
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch is a hint that never faults and reads nothing
        // into the program; the pointer is into a live slice.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
}

/// Elsewhere decoding reads the lines in turn.
#[inline]
#[cfg(not(target_arch = "x86_64"))]
fn prefetch(_bytes: &[u8]) {}

fn encode_value(value: &AttributeValue, out: &mut Vec<u8>) {
    match value {
        AttributeValue::S(s) => {
            out.push(TAG_S);
            put_bytes(out, s.as_bytes());
        }
        AttributeValue::N(n) => {
            out.push(TAG_N);
            encode_number(n, out);
        }
        AttributeValue::B(b) => {
            out.push(TAG_B);
            put_bytes(out, b);
        }
        AttributeValue::Bool(false) => out.push(TAG_FALSE),
        AttributeValue::Bool(true) => out.push(TAG_TRUE),
        AttributeValue::Null => out.push(TAG_NULL),
        AttributeValue::L(list) => {
            out.push(TAG_L);
            put_varint(out, list.len() as u64);
            for element in list {
                encode_value(element, out);
            }
        }
        AttributeValue::M(map) => {
            out.push(TAG_M);
            put_varint(out, map.len() as u64);
            for (name, element) in map {
                put_bytes(out, name.as_bytes());
                encode_value(element, out);
            }
        }
        AttributeValue::Ss(set) => {
            out.push(TAG_SS);
            put_varint(out, set.len() as u64);
            for element in set {
                put_bytes(out, element.as_bytes());
            }
        }
        AttributeValue::Ns(set) => {
            out.push(TAG_NS);
            put_varint(out, set.len() as u64);
            for element in set {
                encode_number(element, out);
            }
        }
        AttributeValue::Bs(set) => {
            out.push(TAG_BS);
            put_varint(out, set.len() as u64);
            for element in set {
                put_bytes(out, element);
            }
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn malformed(what: &str) -> ValueError {
    ValueError::Decode(format!("malformed item encoding: {what}"))
}

/// A cursor over untrusted encoded bytes.
struct Reader<'a> {
    input: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.input.len() - self.position
    }

    fn byte(&mut self) -> Result<u8, ValueError> {
        let byte = *self
            .input
            .get(self.position)
            .ok_or_else(|| malformed("truncated"))?;
        self.position += 1;
        Ok(byte)
    }

    fn varint(&mut self) -> Result<u64, ValueError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            // One spelling per number: no redundant zero groups, and no
            // bits beyond the 64th.
            if (shift > 0 && byte == 0) || (shift == 63 && byte > 1) {
                return Err(malformed("non-canonical varint"));
            }
            n |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(malformed("varint longer than 64 bits"))
    }

    /// A count of elements, each at least one byte long: never more than
    /// the bytes left, so a crafted count cannot make us allocate.
    fn count(&mut self) -> Result<usize, ValueError> {
        let count = self.varint()?;
        usize::try_from(count)
            .ok()
            .filter(|&count| count <= self.remaining())
            .ok_or_else(|| malformed("element count exceeds the bytes left"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], ValueError> {
        let len = self.varint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.remaining())
            .ok_or_else(|| malformed("length exceeds the bytes left"))?;
        let bytes = &self.input[self.position..self.position + len];
        self.position += len;
        Ok(bytes)
    }

    fn string(&mut self) -> Result<String, ValueError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed("string is not UTF-8"))
    }

    fn number(&mut self) -> Result<crate::value::Number, ValueError> {
        let (number, used) = decode_number(&self.input[self.position..])?;
        self.position += used;
        Ok(number)
    }

    fn map(&mut self, depth: usize) -> Result<BTreeMap<String, AttributeValue>, ValueError> {
        let count = self.count()?;
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let name = self.string()?;
            // The map's last name is the previous one: no copy of it is kept.
            if map.last_key_value().is_some_and(|(p, _)| *p >= name) {
                return Err(malformed("map names out of order"));
            }
            let value = self.value(depth + 1)?;
            map.insert(name, value);
        }
        Ok(map)
    }

    /// The size of a map's entries: each name's length and its value's
    /// size (an item's size; a nested map adds its own overheads).
    fn entries_size(&mut self, depth: usize) -> Result<(usize, usize), ValueError> {
        let count = self.count()?;
        let mut size = 0;
        for _ in 0..count {
            size += self.bytes()?.len() + self.value_size(depth + 1)?;
        }
        Ok((size, count))
    }

    /// The size of the next value, as [`attribute_value_size`] of its
    /// decoding.
    ///
    /// [`attribute_value_size`]: super::attribute_value_size
    fn value_size(&mut self, depth: usize) -> Result<usize, ValueError> {
        if depth > MAX_DECODE_DEPTH {
            return Err(malformed("nested too deeply"));
        }
        let set_count = |reader: &mut Self| match reader.count()? {
            0 => Err(malformed("empty set")),
            count => Ok(count),
        };
        Ok(match self.byte()? {
            TAG_S | TAG_B => self.bytes()?.len(),
            TAG_N => number_size(&self.number()?),
            TAG_FALSE | TAG_TRUE | TAG_NULL => 1,
            TAG_L => {
                let count = self.count()?;
                let mut size = 3;
                for _ in 0..count {
                    size += 1 + self.value_size(depth + 1)?;
                }
                size
            }
            TAG_M => {
                let (size, count) = self.entries_size(depth)?;
                3 + count + size
            }
            TAG_SS | TAG_BS => {
                let mut size = 0;
                for _ in 0..set_count(self)? {
                    size += self.bytes()?.len();
                }
                size
            }
            TAG_NS => {
                let mut size = 0;
                for _ in 0..set_count(self)? {
                    size += number_size(&self.number()?);
                }
                size
            }
            other => return Err(malformed(&format!("unknown tag {other}"))),
        })
    }

    fn set<T: Ord>(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<T, ValueError>,
    ) -> Result<BTreeSet<T>, ValueError> {
        let count = self.count()?;
        if count == 0 {
            return Err(malformed("empty set"));
        }
        let mut set = BTreeSet::new();
        for _ in 0..count {
            let value = element(self)?;
            if set.last().is_some_and(|last| *last >= value) {
                return Err(malformed("set elements out of order"));
            }
            set.insert(value);
        }
        Ok(set)
    }

    fn value(&mut self, depth: usize) -> Result<AttributeValue, ValueError> {
        if depth > MAX_DECODE_DEPTH {
            return Err(malformed("nested too deeply"));
        }
        Ok(match self.byte()? {
            TAG_S => AttributeValue::S(self.string()?),
            TAG_N => AttributeValue::N(self.number()?),
            TAG_B => AttributeValue::B(self.bytes()?.to_vec()),
            TAG_FALSE => AttributeValue::Bool(false),
            TAG_TRUE => AttributeValue::Bool(true),
            TAG_NULL => AttributeValue::Null,
            TAG_L => {
                let count = self.count()?;
                let mut list = Vec::with_capacity(count);
                for _ in 0..count {
                    list.push(self.value(depth + 1)?);
                }
                AttributeValue::L(list)
            }
            TAG_M => AttributeValue::M(self.map(depth)?),
            TAG_SS => AttributeValue::Ss(self.set(Self::string)?),
            TAG_NS => AttributeValue::Ns(self.set(Self::number)?),
            TAG_BS => AttributeValue::Bs(self.set(|r| r.bytes().map(<[u8]>::to_vec))?),
            other => return Err(malformed(&format!("unknown tag {other}"))),
        })
    }
}

/// Decodes arbitrary bytes as an item and, when they decode, checks that
/// re-encoding gives the same bytes (the encoding is canonical). The body
/// of the `value_item_codec` fuzz target.
#[doc(hidden)]
pub fn fuzz_item_codec(data: &[u8]) {
    if let Ok(item) = decode_item(data) {
        let mut again = Vec::new();
        encode_item(&item, &mut again);
        assert_eq!(again, data, "a decoded item must re-encode to its input");
        assert_eq!(
            encoded_item_size(data).ok(),
            Some(super::item_size(&item)),
            "the size read from an encoding must be its item's"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;
    use proptest::prelude::*;

    #[test]
    fn every_type_round_trips() {
        let value = item! {
            "s" => "text", "n" => crate::Number::from(125), "b" => vec![0u8, 1, 255], "t" => true, "f" => false,
            "z" => AttributeValue::Null,
            "l" => AttributeValue::L(vec![1.into(), "x".into()]),
            "m" => AttributeValue::M(BTreeMap::from([("k".to_string(), (-3).into())])),
            "ss" => AttributeValue::Ss(["a".to_string(), "b".to_string()].into()),
            "ns" => AttributeValue::Ns([crate::Number::from(1), crate::Number::from(-2)].into()),
            "bs" => AttributeValue::Bs([vec![1u8], vec![]].into()),
        };
        let mut bytes = Vec::new();
        encode_item(&value, &mut bytes);
        assert_eq!(decode_item(&bytes).unwrap(), value);
        assert_eq!(
            encoded_item_size(&bytes).unwrap(),
            crate::value::item_size(&value)
        );
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let mut bytes = Vec::new();
        encode_item(&item! { "a" => "hello", "b" => 7 }, &mut bytes);
        for cut in 0..bytes.len() {
            assert!(decode_item(&bytes[..cut]).is_err(), "cut at {cut}");
            assert!(encoded_item_size(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(encoded_item_size(&[2, 0]).is_err());
        assert!(encoded_item_size(&[1, 1, 1, b'a', 99]).is_err());
        // An empty set has no encoding.
        assert!(encoded_item_size(&[1, 1, 1, b'a', TAG_SS, 0]).is_err());
        // A count far larger than the input must not allocate.
        assert!(decode_item(&[1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        // Overlong varints have one spelling only.
        assert!(decode_item(&[1, 0x81, 0x00, 0x81, 0, 0, 0, 0]).is_err());
        // Unknown version and tag.
        assert!(decode_item(&[2, 0]).is_err());
        assert!(decode_item(&[1, 1, 1, b'a', 99]).is_err());
        // Deep nesting is bounded.
        let mut deep = vec![1, 1, 1, b'a'];
        deep.extend(std::iter::repeat_n([TAG_L, 1], 100).flatten());
        deep.push(TAG_NULL);
        assert!(decode_item(&deep).is_err());
        assert!(encoded_item_size(&deep).is_err());
    }

    fn any_value() -> impl Strategy<Value = AttributeValue> {
        let leaf = prop_oneof![
            ".{0,8}".prop_map(AttributeValue::S),
            any::<i64>().prop_map(AttributeValue::from),
            (any::<i64>(), 0u32..40)
                .prop_map(|(m, e)| AttributeValue::N(format!("{m}e-{e}").parse().unwrap())),
            prop::collection::vec(any::<u8>(), 0..8).prop_map(AttributeValue::B),
            any::<bool>().prop_map(AttributeValue::Bool),
            Just(AttributeValue::Null),
            prop::collection::btree_set(".{0,4}", 1..4).prop_map(AttributeValue::Ss),
            prop::collection::btree_set(any::<i64>(), 1..4).prop_map(AttributeValue::number_set),
            prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..4), 1..4)
                .prop_map(AttributeValue::Bs),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
                prop::collection::btree_map(".{1,4}", inner, 0..4).prop_map(AttributeValue::M),
            ]
        })
    }

    proptest! {
        /// Every item's size read from its encoding is its size, and the
        /// encoding decodes back to it.
        #[test]
        fn sizes_read_from_encodings_are_the_items_sizes(
            entries in prop::collection::btree_map(".{1,6}", any_value(), 0..6)
        ) {
            let item = Item::from(entries);
            let mut bytes = Vec::new();
            encode_item(&item, &mut bytes);
            prop_assert_eq!(encoded_item_size(&bytes).unwrap(), crate::value::item_size(&item));
            prop_assert_eq!(decode_item(&bytes).unwrap(), item);
        }

        #[test]
        fn random_bytes_never_panic_and_decoded_items_are_canonical(
            data in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            fuzz_item_codec(&data);
        }

        #[test]
        fn strings_and_numbers_round_trip(
            pairs in proptest::collection::btree_map("[a-z]{1,8}", (any::<i64>(), ".{0,12}"), 0..8)
        ) {
            let mut item = Item::new();
            for (name, (n, s)) in pairs {
                item.insert(format!("n{name}"), n.into());
                item.insert(format!("s{name}"), s.into());
            }
            let mut bytes = Vec::new();
            encode_item(&item, &mut bytes);
            prop_assert_eq!(decode_item(&bytes).unwrap(), item);
        }
    }
}
