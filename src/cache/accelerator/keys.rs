//! Canonical cache keys, and the table key schema the write path needs.
//!
//! A key is a byte string: a kind byte, then the request's parameters in a
//! fixed order, each length-prefixed (items and values in the value
//! layer's decodable item encoding), so two requests share a key only if
//! every parameter is equal. Requests that differ only in spelling (the
//! same expression written twice ways) get two entries, never a wrong one.
//!
//! Item-cache keys, written on every `get_item` hit, have a shorter form of
//! their own (see [`KeyWriter::item_key`]): varint lengths, and numbers as
//! their canonical parts rather than their order-preserving digits, whose
//! `u128` divisions were most of the cost of writing a key.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::Database;
use crate::kv::{KeyDefinition, KeyType, Result};
use crate::value::{AttributeValue, Item, Number, encode_item, encode_key_value};

/// The longest item-cache key kept inline in its cache entry.
const INLINE_ITEM_KEY_BYTES: usize = 62;

/// An item-cache key. Keys of up to [`INLINE_ITEM_KEY_BYTES`] (most: a
/// short table name and a key of a few scalars) sit inside the cache entry
/// itself, so a hit compares them without loading another cache line; the
/// rest live behind an `Arc`. It hashes, compares and borrows as its bytes,
/// so the cache is looked up with a borrowed `&[u8]`.
#[derive(Clone)]
pub(super) enum ItemKey {
    Inline {
        length: u8,
        bytes: [u8; INLINE_ITEM_KEY_BYTES],
    },
    Shared(Arc<[u8]>),
}

impl ItemKey {
    pub(super) fn as_bytes(&self) -> &[u8] {
        match self {
            ItemKey::Inline { length, bytes } => &bytes[..usize::from(*length)],
            ItemKey::Shared(bytes) => bytes,
        }
    }
}

impl From<&[u8]> for ItemKey {
    fn from(key: &[u8]) -> Self {
        match u8::try_from(key.len()) {
            Ok(length) if key.len() <= INLINE_ITEM_KEY_BYTES => {
                let mut bytes = [0; INLINE_ITEM_KEY_BYTES];
                bytes[..key.len()].copy_from_slice(key);
                ItemKey::Inline { length, bytes }
            }
            _ => ItemKey::Shared(Arc::from(key)),
        }
    }
}

impl Borrow<[u8]> for ItemKey {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for ItemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ItemKey {}

impl Hash for ItemKey {
    /// As its bytes, which `Borrow<[u8]>` requires.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl fmt::Debug for ItemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes().fmt(f)
    }
}

/// The kinds of key, so keys of different requests never collide.
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(super) enum KeyKind {
    /// An item key whose key values are all S, N or B (every valid one).
    Item = b'I',
    /// An item key with a value of another type (the table refuses it; the
    /// key only has to differ from every other).
    OtherItem = b'i',
    Query = b'Q',
    Scan = b'S',
    Projection = b'P',
    PartitionTag = b'p',
    TableTag = b't',
}

/// Writes a canonical key.
#[derive(Debug)]
pub(super) struct KeyWriter {
    bytes: Vec<u8>,
}

impl KeyWriter {
    pub(super) fn new(kind: KeyKind) -> Self {
        let mut bytes = Vec::with_capacity(64);
        bytes.push(kind as u8);
        Self { bytes }
    }

    fn length(&mut self, length: usize) {
        self.bytes.extend_from_slice(&(length as u64).to_le_bytes());
    }

    pub(super) fn text(&mut self, text: &str) -> &mut Self {
        self.length(text.len());
        self.bytes.extend_from_slice(text.as_bytes());
        self
    }

    /// A presence byte, then the text if present.
    pub(super) fn optional_text(&mut self, text: Option<&str>) -> &mut Self {
        self.bytes.push(u8::from(text.is_some()));
        if let Some(text) = text {
            self.text(text);
        }
        self
    }

    pub(super) fn number(&mut self, number: u64) -> &mut Self {
        self.bytes.extend_from_slice(&number.to_le_bytes());
        self
    }

    /// A presence byte, then the number if present.
    pub(super) fn optional_number(&mut self, number: Option<u64>) -> &mut Self {
        self.bytes.push(u8::from(number.is_some()));
        if let Some(number) = number {
            self.number(number);
        }
        self
    }

    pub(super) fn item(&mut self, item: &Item) -> &mut Self {
        let at = self.bytes.len();
        self.length(0);
        encode_item(item, &mut self.bytes);
        let length = (self.bytes.len() - at - 8) as u64;
        self.bytes[at..at + 8].copy_from_slice(&length.to_le_bytes());
        self
    }

    /// A presence byte, then the item if present.
    pub(super) fn optional_item(&mut self, item: Option<&Item>) -> &mut Self {
        self.bytes.push(u8::from(item.is_some()));
        if let Some(item) = item {
            self.item(item);
        }
        self
    }

    /// `ExpressionAttributeNames`: presence, count, then each pair.
    pub(super) fn names(&mut self, names: Option<&BTreeMap<String, String>>) -> &mut Self {
        self.bytes.push(u8::from(names.is_some()));
        if let Some(names) = names {
            self.number(names.len() as u64);
            for (placeholder, name) in names {
                self.text(placeholder).text(name);
            }
        }
        self
    }

    /// `ExpressionAttributeValues`: presence, then the map as an item.
    pub(super) fn values(
        &mut self,
        values: Option<&BTreeMap<String, AttributeValue>>,
    ) -> &mut Self {
        self.bytes.push(u8::from(values.is_some()));
        if let Some(values) = values {
            let as_item: Item = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            self.item(&as_item);
        }
        self
    }

    fn varint(&mut self, mut number: usize) {
        while number >= 0x80 {
            self.bytes.push((number as u8) | 0x80);
            number >>= 7;
        }
        self.bytes.push(number as u8);
    }

    fn short_bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len());
        self.bytes.extend_from_slice(bytes);
    }

    /// A number by its canonical parts (a `Number` has no trailing zeros, so
    /// equal numbers have equal parts): zero as one byte, else the sign,
    /// the exponent and the significand's low-order bytes, counted.
    fn canonical_number(&mut self, number: &Number) {
        if number.is_zero() {
            self.bytes.push(0);
            return;
        }
        self.bytes.push(if number.is_negative() { 1 } else { 2 });
        self.bytes
            .extend_from_slice(&number.exponent().to_le_bytes());
        let significand = number.significand();
        let used = 16 - significand.leading_zeros() as usize / 8;
        self.bytes.push(used as u8);
        self.bytes
            .extend_from_slice(&significand.to_le_bytes()[..used]);
    }

    /// The whole key of the item with key map `key` in `table` (the writer
    /// must be empty): `I`, the table, the attribute count, then each name
    /// and its tagged value, every length a varint. A key map with a value
    /// other than S, N or B (which no table accepts) is written in the
    /// general form under [`KeyKind::OtherItem`] instead.
    pub(super) fn item_key(&mut self, table: &str, key: &Item) -> &mut Self {
        debug_assert!(self.bytes.is_empty(), "an item key is a whole key");
        self.bytes.push(KeyKind::Item as u8);
        self.short_bytes(table.as_bytes());
        self.varint(key.len());
        for (name, value) in key.iter() {
            self.short_bytes(name.as_bytes());
            match value {
                AttributeValue::S(text) => {
                    self.bytes.push(b's');
                    self.short_bytes(text.as_bytes());
                }
                AttributeValue::B(bytes) => {
                    self.bytes.push(b'b');
                    self.short_bytes(bytes);
                }
                AttributeValue::N(number) => {
                    self.bytes.push(b'n');
                    self.canonical_number(number);
                }
                _ => {
                    self.bytes.clear();
                    self.bytes.push(KeyKind::OtherItem as u8);
                    return self.text(table).item(key);
                }
            }
        }
        self
    }

    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// The item-cache key of the item with key map `key` in `table`.
pub(super) fn item_key(table: &str, key: &Item) -> Vec<u8> {
    let mut writer = KeyWriter {
        bytes: Vec::with_capacity(64),
    };
    writer.item_key(table, key).finish()
}

/// Runs `with` on [`item_key`] written in a reused per-thread buffer, so
/// a lookup (the hit path) allocates nothing. `with` must not build item
/// keys itself (the buffer is borrowed while it runs).
pub(super) fn with_item_key<R>(table: &str, key: &Item, with: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static BUFFER: RefCell<KeyWriter> = const { RefCell::new(KeyWriter { bytes: Vec::new() }) };
    }
    BUFFER.with_borrow_mut(|writer| {
        writer.bytes.clear();
        writer.item_key(table, key);
        with(&writer.bytes)
    })
}

/// The tag of the cached Query pages of one partition key value.
pub(super) fn partition_tag(table: &str, partition_value: &AttributeValue) -> Option<Vec<u8>> {
    let mut encoded = Vec::new();
    encode_key_value(partition_value, &mut encoded).ok()?;
    let mut writer = KeyWriter::new(KeyKind::PartitionTag);
    writer.text(table);
    writer.length(encoded.len());
    writer.bytes.extend_from_slice(&encoded);
    Some(writer.finish())
}

/// The tag of every cached Scan page of `table`.
pub(super) fn table_tag(table: &str) -> Vec<u8> {
    KeyWriter::new(KeyKind::TableTag).text(table).finish()
}

/// The key definition of `table`, read through `DescribeTable` each time
/// (so a table dropped and created again with another key is never
/// mistaken for the old one).
pub(super) fn key_definition(db: &Database, table: &str) -> Result<KeyDefinition> {
    let description = db.describe_table(table).send()?.table;
    let type_of = |name: &str| {
        description
            .attribute_definitions
            .iter()
            .find(|definition| definition.attribute_name == name)
            .map(|definition| definition.attribute_type)
    };
    let mut partition_key = None;
    let mut sort_key = None;
    for element in &description.key_schema {
        let name = element.attribute_name.clone();
        let Some(scalar) = type_of(&name) else {
            continue;
        };
        match element.key_type {
            KeyType::Hash => partition_key = Some((name, scalar)),
            KeyType::Range => sort_key = Some((name, scalar)),
        }
    }
    let partition_key = partition_key.ok_or_else(|| {
        crate::kv::Error::ResourceNotFound(format!("table {table} has no partition key"))
    })?;
    Ok(KeyDefinition::simple(partition_key, sort_key))
}

/// The key map of `item` under `key`, or `None` if a key attribute is
/// missing (the table will refuse the item).
pub(super) fn key_map_of(key: &KeyDefinition, item: &Item) -> Option<Item> {
    key.names()
        .map(|name| item.get(name).map(|value| (name.to_owned(), value.clone())))
        .collect()
}

/// The partition tag of the item with key map `key`.
pub(super) fn partition_tag_of(
    table: &str,
    definition: &KeyDefinition,
    key: &Item,
) -> Option<Vec<u8>> {
    partition_tag(table, key.get(&definition.partition_key.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;

    #[test]
    fn keys_of_different_parameters_never_collide() {
        let text = |parts: &[Option<&str>]| {
            let mut writer = KeyWriter::new(KeyKind::Query);
            for part in parts {
                writer.optional_text(*part);
            }
            writer.finish()
        };
        assert_ne!(
            text(&[Some("ab"), Some("c")]),
            text(&[Some("a"), Some("bc")])
        );
        assert_ne!(text(&[None, Some("")]), text(&[Some(""), None]));
        let names = BTreeMap::from([("#a".to_owned(), "b".to_owned())]);
        let values = BTreeMap::from([("#a".to_owned(), AttributeValue::from("b"))]);
        let with_names = KeyWriter::new(KeyKind::Query)
            .names(Some(&names))
            .values(None)
            .finish();
        let with_values = KeyWriter::new(KeyKind::Query)
            .names(None)
            .values(Some(&values))
            .finish();
        assert_ne!(with_names, with_values);
        assert_ne!(
            item_key("T", &item! { "k" => 1 }),
            item_key("T", &item! { "k" => "1" })
        );
        assert_ne!(
            item_key("T1", &item! { "k" => 1 }),
            item_key("T", &item! { "1k" => 1 })
        );
        assert_eq!(
            with_item_key("T", &item! { "k" => 1 }, <[u8]>::to_vec),
            item_key("T", &item! { "k" => 1 })
        );
        assert_ne!(
            KeyWriter::new(KeyKind::Scan).finish(),
            KeyWriter::new(KeyKind::Query).finish()
        );
    }

    #[test]
    fn item_keys_inline_or_shared_hash_and_compare_as_their_bytes() {
        use std::hash::{BuildHasher, RandomState};
        let state = RandomState::new();
        for length in [
            0,
            1,
            INLINE_ITEM_KEY_BYTES - 1,
            INLINE_ITEM_KEY_BYTES,
            INLINE_ITEM_KEY_BYTES + 1,
            300,
        ] {
            let bytes: Vec<u8> = (0..length).map(|i| i as u8).collect();
            let key = ItemKey::from(&bytes[..]);
            assert_eq!(
                matches!(key, ItemKey::Inline { .. }),
                length <= INLINE_ITEM_KEY_BYTES
            );
            assert_eq!(key.as_bytes(), &bytes[..]);
            assert_eq!(state.hash_one(&key), state.hash_one(&bytes[..]));
            assert_eq!(key, ItemKey::from(&bytes[..]));
            let mut other = bytes.clone();
            other.push(0);
            assert_ne!(key, ItemKey::from(&other[..]));
        }
        // The benchmark's key (a 5-byte table, a string and a number) fits.
        let key = item_key("Bench", &item! { "pk" => "user#0042", "sk" => 42 });
        assert!(key.len() <= INLINE_ITEM_KEY_BYTES, "{} bytes", key.len());
    }

    #[test]
    fn item_keys_differ_whenever_table_names_types_or_values_do() {
        let number =
            |text: &str| -> AttributeValue { text.parse().map(AttributeValue::N).unwrap() };
        let keys = [
            item_key("T", &item! { "k" => "1" }),
            item_key("T", &item! { "k" => number("1") }),
            item_key("T", &item! { "k" => AttributeValue::B(b"1".to_vec()) }),
            item_key("T", &item! { "k" => number("-1") }),
            item_key("T", &item! { "k" => number("10") }),
            item_key("T", &item! { "k" => number("0.1") }),
            item_key("T", &item! { "k" => number("0") }),
            item_key("T", &item! { "k" => number("256") }),
            item_key(
                "T",
                &item! { "k" => number("9.9999999999999999999999999999999999999E+125") },
            ),
            item_key("T", &item! { "k" => number("-1E-130") }),
            item_key("T", &item! { "k" => "" }),
            item_key("T", &item! { "ab" => "c" }),
            item_key("T", &item! { "a" => "bc" }),
            item_key("T", &item! { "a" => "b", "c" => "d" }),
            item_key("T", &item! { "a" => "b", "c" => "e" }),
            item_key("Ta", &item! { "a" => "b" }),
            item_key("T", &item! { "aa" => "b" }),
            item_key("T", &item! {}),
            // Types no key may have: written in the general form.
            item_key("T", &item! { "k" => true }),
            item_key("T", &item! { "k" => AttributeValue::L(vec!["1".into()]) }),
            item_key("T", &item! { "a" => "b", "k" => AttributeValue::Null }),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        for key in [
            item! { "k" => number("-12.5"), "s" => "x" },
            item! { "k" => AttributeValue::Null },
        ] {
            assert_eq!(
                with_item_key("T", &key, <[u8]>::to_vec),
                item_key("T", &key)
            );
        }
        // Writing an item key after a fallback left nothing behind.
        assert_eq!(
            with_item_key("T", &item! { "k" => 1 }, <[u8]>::to_vec),
            item_key("T", &item! { "k" => 1 })
        );
    }

    #[test]
    fn equal_numbers_share_a_key() {
        let one: AttributeValue = "1".parse().map(AttributeValue::N).unwrap();
        let one_point_zero: AttributeValue = "1.00".parse().map(AttributeValue::N).unwrap();
        assert_eq!(
            item_key("T", &item! { "k" => one }),
            item_key("T", &item! { "k" => one_point_zero })
        );
    }
}
