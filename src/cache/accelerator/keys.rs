//! Canonical cache keys, and the table key schema the write path needs.
//!
//! A key is a byte string: a kind byte, then the request's parameters in a
//! fixed order, each length-prefixed (items and values in the value
//! layer's decodable item encoding), so two requests share a key only if
//! every parameter is equal. Requests that differ only in spelling (the
//! same expression written twice ways) get two entries, never a wrong one.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::Database;
use crate::kv::{KeyDefinition, KeyType, Result};
use crate::value::{AttributeValue, Item, encode_item, encode_key_value};

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
    Item = b'I',
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

    pub(super) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

/// The item-cache key of the item with key map `key` in `table`.
pub(super) fn item_key(table: &str, key: &Item) -> Vec<u8> {
    KeyWriter::new(KeyKind::Item).text(table).item(key).finish()
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
        writer.bytes.push(KeyKind::Item as u8);
        writer.text(table).item(key);
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
    fn equal_numbers_share_a_key() {
        let one: AttributeValue = "1".parse().map(AttributeValue::N).unwrap();
        let one_point_zero: AttributeValue = "1.00".parse().map(AttributeValue::N).unwrap();
        assert_eq!(
            item_key("T", &item! { "k" => one }),
            item_key("T", &item! { "k" => one_point_zero })
        );
    }
}
