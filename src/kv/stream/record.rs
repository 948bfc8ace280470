//! One stream record: its public shape ([`Record`], [`StreamRecord`]), its
//! engine key (`stream keyspace | shard number | sequence number`) and its
//! byte encoding (docs/format-kv.md, "Stream records").
//!
//! The encoding is versioned and every decode checks lengths, so a damaged
//! row is a `Corruption` error, never a panic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::kv::schema::{KeyDefinition, StreamViewType};
use crate::kv::write::Old;
use crate::partition::{KeyspaceId, keyspace_prefix};
use crate::storage::StorageError;
use crate::value::{
    AttributeValue, Item, attribute_value_size, decode_item, encode_attributes, encode_item,
};

/// The encoding version of a record row.
const RECORD_FORMAT: u8 = 1;
/// Marks an absent image in a record row.
const ABSENT: u32 = u32::MAX;
/// Flag bit: the change was made by the service (a TTL delete).
const FLAG_SERVICE: u8 = 1;

/// What a change did to its item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationType {
    /// A new item was written.
    Insert,
    /// An existing item was changed (or overwritten).
    Modify,
    /// An item was deleted.
    Remove,
}

impl OperationType {
    /// DynamoDB's name (`INSERT`, `MODIFY`, `REMOVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Insert => "INSERT",
            Self::Modify => "MODIFY",
            Self::Remove => "REMOVE",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Insert => 1,
            Self::Modify => 2,
            Self::Remove => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Insert),
            2 => Some(Self::Modify),
            3 => Some(Self::Remove),
            _ => None,
        }
    }
}

/// Who made a change, when it was not a user's request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// `"dynamodb.amazonaws.com"` for TTL deletes.
    pub principal_id: String,
    /// `"Service"` for TTL deletes.
    pub r#type: String,
}

impl Identity {
    /// The identity DynamoDB puts on TTL deletes.
    pub fn dynamodb_service() -> Self {
        Self {
            principal_id: "dynamodb.amazonaws.com".into(),
            r#type: "Service".into(),
        }
    }
}

/// The change itself, as DynamoDB Streams' `StreamRecord`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    /// When the change was made, rounded down to the second.
    pub approximate_creation_date_time: SystemTime,
    /// The item's key attributes.
    pub keys: Item,
    /// The item after the change (view types `NEW_IMAGE`,
    /// `NEW_AND_OLD_IMAGES`; absent for a delete).
    pub new_image: Option<Item>,
    /// The item before the change (view types `OLD_IMAGE`,
    /// `NEW_AND_OLD_IMAGES`; absent for an insert).
    pub old_image: Option<Item>,
    /// The record's position in its shard (a numeric string; compare
    /// records by it).
    pub sequence_number: String,
    /// The size of keys and images, in bytes.
    pub size_bytes: u64,
    /// What the stream records carry.
    pub stream_view_type: StreamViewType,
}

/// One record of a stream, as `get_records` returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// A unique id of the record.
    pub event_id: String,
    /// INSERT, MODIFY or REMOVE.
    pub event_name: OperationType,
    /// `"aws:dynamodb"`.
    pub event_source: String,
    /// `"1.1"`.
    pub event_version: String,
    /// The change.
    pub dynamodb: StreamRecord,
    /// Set on changes the service made itself (TTL deletes).
    pub user_identity: Option<Identity>,
}

/// A record as stored, before it is shaped for a reader.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRecord {
    pub(crate) sequence: u64,
    pub(crate) event: OperationType,
    pub(crate) service: bool,
    pub(crate) created_millis: u64,
    pub(crate) size_bytes: u64,
    pub(crate) keys: Item,
    pub(crate) new_image: Option<Item>,
    pub(crate) old_image: Option<Item>,
}

/// One item change as `Staging` has it: each side's item and DynamoDB
/// size, the new item's row encoding (the same bytes a new image needs, so
/// they are copied, not encoded again) and the old item as its writer has
/// it: its stored encoding, when the writer read it, is likewise reused
/// for an old image, and a removal's old item is decoded (its keys are the
/// record's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Change<'a> {
    pub(crate) old: Option<(Old<'a>, usize)>,
    pub(crate) new: Option<(&'a Item, usize, &'a [u8])>,
}

/// Encodes the record of `change` (whose sides differ, at least one
/// present) with the images `view` asks for, as the row value of a record
/// (the sequence number lives in the key).
#[cfg(test)]
pub(crate) fn encode_change(
    key: &KeyDefinition,
    view: StreamViewType,
    change: Change<'_>,
    created_millis: u64,
    service: bool,
) -> Vec<u8> {
    let mut batch = crate::storage::WriteBatch::new();
    put_change(&mut batch, b"", key, view, change, created_millis, service);
    let value = batch.iter().next().map(|op| op.value.to_vec());
    value.unwrap_or_default()
}

/// Adds to `batch` the record of `change` (whose sides differ, at least
/// one present) under `record_key`, with the images `view` asks for. The
/// images are copied from the encodings `change` carries straight into the
/// batch (no record is assembled first); only an old image without its
/// stored encoding, and the keys, are encoded here. Returns where the new
/// image lies in `batch`, if the record holds one, so the row and index
/// entries staged after it can be copies of those bytes: the log carries
/// the new item once, and the memtable keeps the row as a slice of the
/// record.
pub(crate) fn put_change(
    batch: &mut crate::storage::WriteBatch,
    record_key: &[u8],
    key: &KeyDefinition,
    view: StreamViewType,
    change: Change<'_>,
    created_millis: u64,
    service: bool,
) -> Option<crate::storage::ValueRef> {
    let event = match (change.old, change.new) {
        (None, _) => OperationType::Insert,
        (Some(_), Some(_)) => OperationType::Modify,
        (Some(_), None) => OperationType::Remove,
    };
    // The key attributes, borrowed from the item and in name order (as an
    // `Item` would hold them), so the keys image is written without
    // building (and allocating) an item of them.
    let mut keys: [Option<(&str, &AttributeValue)>; 2] = [None, None];
    if let Some(item) = change
        .new
        .map(|(item, _, _)| item)
        .or(change.old.and_then(|(old, _)| old.decoded()))
    {
        for (slot, name) in keys.iter_mut().zip(key.names()) {
            *slot = item.get_key_value(name).map(|(n, v)| (n.as_str(), v));
        }
    }
    if let [Some((a, _)), Some((b, _))] = keys
        && b < a
    {
        keys.swap(0, 1);
    }
    let keys = keys.iter().flatten().copied();
    let (keep_new, keep_old) = match view {
        StreamViewType::KeysOnly => (false, false),
        StreamViewType::NewImage => (true, false),
        StreamViewType::OldImage => (false, true),
        StreamViewType::NewAndOldImages => (true, true),
    };
    let new = change.new.filter(|_| keep_new);
    let old = change.old.filter(|_| keep_old);
    let size_bytes = (keys
        .clone()
        .map(|(name, value)| name.len() + attribute_value_size(value))
        .sum::<usize>()
        + new.map_or(0, |(_, size, _)| size)
        + old.map_or(0, |(_, size)| size)) as u64;
    // Header, keys image, and the new image's length.
    let mut head = Vec::with_capacity(64);
    head.push(RECORD_FORMAT);
    head.push(event.code());
    head.push(if service { FLAG_SERVICE } else { 0 });
    head.extend_from_slice(&created_millis.to_be_bytes());
    head.extend_from_slice(&size_bytes.to_be_bytes());
    put_keys_image(&mut head, keys);
    let new_bytes = new.map_or(&[][..], |(_, _, bytes)| bytes);
    head.extend_from_slice(&image_len(new.map(|_| new_bytes)).to_be_bytes());
    // The old image: its stored bytes, or encoded now.
    let mut encoded_old = Vec::new();
    let old_bytes = match old.map(|(old, size)| (old.encoded(), old.decoded(), size)) {
        Some((Some(bytes), _, _)) => bytes,
        Some((None, Some(item), size)) => {
            encoded_old.reserve(2 * size + 16);
            encode_item(item, &mut encoded_old);
            &encoded_old[..]
        }
        // An old item is either stored bytes or a decoded item.
        Some((None, None, _)) | None => &[][..],
    };
    let old_len = image_len(old.map(|_| old_bytes)).to_be_bytes();
    let parts = [&head[..], new_bytes, &old_len, old_bytes];
    let at = batch.put_parts_located(record_key, &parts, 1);
    new.map(|_| at)
}

/// The length field of an image: its byte length, or [`ABSENT`].
fn image_len(image: Option<&[u8]>) -> u32 {
    // An image is at most an item (400 KB), so its length fits.
    image.map_or(ABSENT, |bytes| bytes.len() as u32)
}

/// Appends the keys image: its length, then the encoding of an item of
/// the `keys` attributes (in name order).
fn put_keys_image<'a>(
    out: &mut Vec<u8>,
    keys: impl Iterator<Item = (&'a str, &'a AttributeValue)> + Clone,
) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    encode_attributes(keys.clone().count(), keys, out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

impl StoredRecord {
    /// Decodes the row of the record with `sequence`.
    pub(crate) fn decode(sequence: u64, value: &[u8]) -> Result<Self, StorageError> {
        let bad = |what: &str| StorageError::corruption("stream record", 0, what.to_owned());
        if value.first() != Some(&RECORD_FORMAT) {
            return Err(bad("unknown record format"));
        }
        let event = value
            .get(1)
            .copied()
            .and_then(OperationType::from_code)
            .ok_or_else(|| bad("event name"))?;
        let service = value.get(2).ok_or_else(|| bad("flags"))? & FLAG_SERVICE != 0;
        let created_millis = created_millis(value).ok_or_else(|| bad("creation time"))?;
        let size_bytes = read_u64(value, 11).ok_or_else(|| bad("size"))?;
        let mut at = 19;
        let mut images = [None, None, None];
        for image in &mut images {
            let len = value
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| bad("image length"))?;
            at += 4;
            if len == ABSENT {
                continue;
            }
            let bytes = value
                .get(at..at + len as usize)
                .ok_or_else(|| bad("image bytes"))?;
            *image = Some(decode_item(bytes).map_err(|e| bad(&format!("image: {e}")))?);
            at += len as usize;
        }
        let [keys, new_image, old_image] = images;
        Ok(Self {
            sequence,
            event,
            service,
            created_millis,
            size_bytes,
            keys: keys.ok_or_else(|| bad("keys"))?,
            new_image,
            old_image,
        })
    }

    /// The record as a reader sees it.
    pub(crate) fn into_record(self, view: StreamViewType, shard_id: &str) -> Record {
        let seconds = Duration::from_secs(self.created_millis / 1000);
        let sequence_number = format_sequence(self.sequence);
        Record {
            event_id: format!("{shard_id}-{sequence_number}"),
            event_name: self.event,
            event_source: "aws:dynamodb".into(),
            event_version: "1.1".into(),
            dynamodb: StreamRecord {
                approximate_creation_date_time: UNIX_EPOCH + seconds,
                keys: self.keys,
                new_image: self.new_image,
                old_image: self.old_image,
                sequence_number,
                size_bytes: self.size_bytes,
                stream_view_type: view,
            },
            user_identity: self.service.then(Identity::dynamodb_service),
        }
    }
}

fn read_u64(value: &[u8], at: usize) -> Option<u64> {
    value
        .get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// The creation time of an encoded record, read without decoding it (the
/// trimmer reads only this).
pub(crate) fn created_millis(value: &[u8]) -> Option<u64> {
    read_u64(value, 3)
}

/// The prefix of every record of shard `shard` of the stream in `keyspace`.
pub(crate) fn shard_prefix(keyspace: KeyspaceId, shard: u32) -> [u8; 8] {
    let mut key = [0; 8];
    key[..4].copy_from_slice(&keyspace_prefix(keyspace));
    key[4..].copy_from_slice(&shard.to_be_bytes());
    key
}

/// The engine key of record `sequence` of `shard`.
pub(crate) fn record_key(keyspace: KeyspaceId, shard: u32, sequence: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&shard_prefix(keyspace, shard));
    key[8..].copy_from_slice(&sequence.to_be_bytes());
    key
}

/// The sequence number in a record key.
pub(crate) fn sequence_of_key(key: &[u8]) -> Option<u64> {
    read_u64(key, 8)
}

/// A sequence number as DynamoDB Streams shows it: a numeric string of 21
/// digits (its shortest length), so string and numeric order agree.
pub(crate) fn format_sequence(sequence: u64) -> String {
    format!("{sequence:021}")
}

/// Parses a sequence number given by a caller.
pub(crate) fn parse_sequence(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 40 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;
    use crate::value::{ScalarType, item_size};

    fn key() -> KeyDefinition {
        KeyDefinition::simple(("pk".into(), ScalarType::S), None)
    }

    fn encode(view: StreamViewType, old: Option<&Item>, new: Option<&Item>) -> Vec<u8> {
        let new_bytes = new.map(|item| {
            let mut bytes = Vec::new();
            encode_item(item, &mut bytes);
            bytes
        });
        let change = Change {
            old: old.map(|item| (Old::Item(item), item_size(item))),
            new: new
                .zip(new_bytes.as_deref())
                .map(|(item, bytes)| (item, item_size(item), bytes)),
        };
        encode_change(&key(), view, change, 1234, true)
    }

    #[test]
    fn records_round_trip_with_and_without_images() {
        let old = item! { "pk" => "a", "v" => 1 };
        let new = item! { "pk" => "a", "v" => 2 };
        for view in [
            StreamViewType::KeysOnly,
            StreamViewType::NewImage,
            StreamViewType::OldImage,
            StreamViewType::NewAndOldImages,
        ] {
            let decoded = StoredRecord::decode(7, &encode(view, Some(&old), Some(&new))).unwrap();
            let (keep_new, keep_old) = match view {
                StreamViewType::KeysOnly => (false, false),
                StreamViewType::NewImage => (true, false),
                StreamViewType::OldImage => (false, true),
                StreamViewType::NewAndOldImages => (true, true),
            };
            assert_eq!(decoded.new_image, keep_new.then(|| new.clone()));
            assert_eq!(decoded.old_image, keep_old.then(|| old.clone()));
            assert_eq!(decoded.keys, item! { "pk" => "a" });
            assert_eq!(decoded.event, OperationType::Modify);
            assert_eq!((decoded.sequence, decoded.created_millis), (7, 1234));
            assert!(decoded.service);
        }
    }

    #[test]
    fn the_keys_image_holds_both_key_attributes_in_either_name_order() {
        for (pk, sk) in [("pk", "sk"), ("user", "at")] {
            let key =
                KeyDefinition::simple((pk.into(), ScalarType::S), Some((sk.into(), ScalarType::N)));
            let item = Item::new().with(pk, "a").with(sk, 7).with("v", "payload");
            let mut bytes = Vec::new();
            encode_item(&item, &mut bytes);
            let change = Change {
                old: None,
                new: Some((&item, item_size(&item), &bytes)),
            };
            let encoded = encode_change(&key, StreamViewType::KeysOnly, change, 1, false);
            let decoded = StoredRecord::decode(1, &encoded).unwrap();
            assert_eq!(decoded.keys, Item::new().with(pk, "a").with(sk, 7));
            // The record's size counts the keys as DynamoDB does.
            let keys_size =
                pk.len() + 1 + sk.len() + attribute_value_size(&AttributeValue::from(7));
            assert_eq!(decoded.size_bytes, keys_size as u64);
        }
    }

    #[test]
    fn damaged_rows_are_errors_not_panics() {
        let bytes = encode(StreamViewType::NewImage, None, Some(&item! { "pk" => "a" }));
        for cut in 0..bytes.len() {
            assert!(StoredRecord::decode(1, &bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut wrong = bytes.clone();
        wrong[1] = 9;
        assert!(StoredRecord::decode(1, &wrong).is_err());
    }

    #[test]
    fn sequence_numbers_sort_as_strings_and_parse_back() {
        assert_eq!(format_sequence(42).len(), 21);
        assert!(format_sequence(9) < format_sequence(10));
        assert_eq!(parse_sequence(&format_sequence(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_sequence("12a"), None);
        assert_eq!(parse_sequence(""), None);
    }
}
