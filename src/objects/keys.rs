//! The catalogue's key layout under the objects keyspace (specified byte
//! by byte in `docs/format-objects.md`).
//!
//! Every key is `keyspace id (u32 BE = 1) | tag (1 byte) | fields`. Object
//! keys are stored escaped (`0x00` → `0x00 0xFF`, then the terminator
//! `0x00 0x01`), so a key's rows are contiguous, keys sort in UTF-8 byte
//! order, and a key sorts before every key it is a proper prefix of.
//! Version rows end with the bitwise complement of the per-key sequence
//! number, big-endian, so within a key the newest version comes first.

use crate::partition::{OBJECTS_KEYSPACE, keyspace_prefix};

use super::error::{Error, Result};
use super::types::Tier;

/// Store-wide settings: the chunker seed and options.
pub(crate) const TAG_CONFIG: u8 = b'S';
/// `B | bucket name` → bucket record.
pub(crate) const TAG_BUCKET: u8 = b'B';
/// `K | bucket id | key` → key head (next sequence, null version).
pub(crate) const TAG_HEAD: u8 = b'K';
/// `V | bucket id | key | !seq` → version record.
pub(crate) const TAG_VERSION: u8 = b'V';
/// `U | bucket id | key | upload id` → multipart upload record.
pub(crate) const TAG_UPLOAD: u8 = b'U';
/// `P | upload id | part number` → part record.
pub(crate) const TAG_PART: u8 = b'P';
/// `C | tier | chunk hash` → where the chunk lives in the packs.
pub(crate) const TAG_CHUNK: u8 = b'C';
/// `R | tier | chunk hash | body id` → how often that body uses the chunk.
pub(crate) const TAG_REF: u8 = b'R';
/// `D | not before | tier | chunk hash` → a chunk that may have lost its
/// last reference, to be checked by `gc()` after the grace period.
pub(crate) const TAG_GC: u8 = b'D';
/// `L | bucket id` → lifecycle configuration.
pub(crate) const TAG_LIFECYCLE: u8 = b'L';
/// `A | bucket id | attribute name` → an opaque bucket attribute (owner,
/// ACL, tags, notification configuration of the S3 endpoint).
pub(crate) const TAG_BUCKET_ATTRIBUTE: u8 = b'A';
/// `N | subscription name` → event subscription.
pub(crate) const TAG_SUBSCRIPTION: u8 = b'N';
/// `O | subscription id | event sequence` → a pending event.
pub(crate) const TAG_OUTBOX: u8 = b'O';

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// A 32-byte BLAKE3 chunk hash.
pub(crate) type ChunkHash = [u8; 32];

/// `keyspace | tag`.
pub(crate) fn tag_prefix(tag: u8) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&keyspace_prefix(OBJECTS_KEYSPACE));
    key.push(tag);
    key
}

const HEADER_BYTES: usize = 5;

fn with_bucket(tag: u8, bucket_id: u64) -> Vec<u8> {
    let mut key = tag_prefix(tag);
    key.extend_from_slice(&bucket_id.to_be_bytes());
    key
}

/// Appends the escaped, terminated form of `raw`.
pub(crate) fn push_escaped(out: &mut Vec<u8>, raw: &[u8]) {
    push_escaped_unterminated(out, raw);
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Appends the escaped form of `raw` without terminator: a prefix of the
/// escaped form of every key that starts with `raw`.
pub(crate) fn push_escaped_unterminated(out: &mut Vec<u8>, raw: &[u8]) {
    out.reserve(raw.len() + 2);
    for &byte in raw {
        out.push(byte);
        if byte == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
}

/// Decodes an escaped, terminated string from the front of `input`,
/// returning it and the bytes it occupied.
pub(crate) fn take_escaped(input: &[u8]) -> Result<(Vec<u8>, usize)> {
    let mut raw = Vec::with_capacity(input.len());
    let mut index = 0;
    while index < input.len() {
        let byte = input[index];
        if byte != ESCAPE {
            raw.push(byte);
            index += 1;
            continue;
        }
        match input.get(index + 1) {
            Some(&ESCAPED_ZERO) => {
                raw.push(0);
                index += 2;
            }
            Some(&TERMINATOR) => return Ok((raw, index + 2)),
            _ => break,
        }
    }
    Err(Error::corrupt_row("an escaped key has no terminator"))
}

fn take_string(input: &[u8]) -> Result<(String, usize)> {
    let (raw, used) = take_escaped(input)?;
    let key = String::from_utf8(raw).map_err(|_| Error::corrupt_row("a key is not UTF-8"))?;
    Ok((key, used))
}

/// The smallest byte string greater than every string starting with
/// `prefix` (`None` if there is none).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

pub(crate) fn config() -> Vec<u8> {
    tag_prefix(TAG_CONFIG)
}

pub(crate) fn bucket(name: &str) -> Vec<u8> {
    let mut key = tag_prefix(TAG_BUCKET);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The bucket name of a bucket row key.
pub(crate) fn parse_bucket(key: &[u8]) -> Result<String> {
    let name = key
        .get(HEADER_BYTES..)
        .ok_or_else(|| Error::corrupt_row("a bucket key is truncated"))?;
    String::from_utf8(name.to_vec()).map_err(|_| Error::corrupt_row("a bucket name is not UTF-8"))
}

pub(crate) fn head(bucket_id: u64, object_key: &str) -> Vec<u8> {
    let mut key = with_bucket(TAG_HEAD, bucket_id);
    push_escaped(&mut key, object_key.as_bytes());
    key
}

/// `V | bucket id`: every version row of a bucket.
pub(crate) fn versions_of_bucket(bucket_id: u64) -> Vec<u8> {
    with_bucket(TAG_VERSION, bucket_id)
}

/// `V | bucket id | escaped key`: every version row of one key.
pub(crate) fn versions_of_key(bucket_id: u64, object_key: &str) -> Vec<u8> {
    let mut key = versions_of_bucket(bucket_id);
    push_escaped(&mut key, object_key.as_bytes());
    key
}

/// `V | bucket id | escaped prefix` (unterminated): the rows of every key
/// starting with `prefix`.
pub(crate) fn versions_with_prefix(bucket_id: u64, prefix: &str) -> Vec<u8> {
    let mut key = versions_of_bucket(bucket_id);
    push_escaped_unterminated(&mut key, prefix.as_bytes());
    key
}

pub(crate) fn version(bucket_id: u64, object_key: &str, seq: u64) -> Vec<u8> {
    let mut key = versions_of_key(bucket_id, object_key);
    key.extend_from_slice(&(!seq).to_be_bytes());
    key
}

/// The object key and sequence number of a version row key.
pub(crate) fn parse_version(key: &[u8]) -> Result<(String, u64)> {
    let rest = key
        .get(HEADER_BYTES + 8..)
        .ok_or_else(|| Error::corrupt_row("a version key is truncated"))?;
    let (object_key, used) = take_string(rest)?;
    let seq: [u8; 8] = rest
        .get(used..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or_else(|| Error::corrupt_row("a version key has no sequence number"))?;
    Ok((object_key, !u64::from_be_bytes(seq)))
}

pub(crate) fn uploads_of_bucket(bucket_id: u64) -> Vec<u8> {
    with_bucket(TAG_UPLOAD, bucket_id)
}

pub(crate) fn uploads_of_key(bucket_id: u64, object_key: &str) -> Vec<u8> {
    let mut key = uploads_of_bucket(bucket_id);
    push_escaped(&mut key, object_key.as_bytes());
    key
}

pub(crate) fn upload(bucket_id: u64, object_key: &str, upload_id: &[u8; 16]) -> Vec<u8> {
    let mut key = uploads_of_key(bucket_id, object_key);
    key.extend_from_slice(upload_id);
    key
}

/// The object key and upload id of an upload row key.
pub(crate) fn parse_upload(key: &[u8]) -> Result<(String, [u8; 16])> {
    let rest = key
        .get(HEADER_BYTES + 8..)
        .ok_or_else(|| Error::corrupt_row("an upload key is truncated"))?;
    let (object_key, used) = take_string(rest)?;
    let id: [u8; 16] = rest
        .get(used..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or_else(|| Error::corrupt_row("an upload key has no upload id"))?;
    Ok((object_key, id))
}

pub(crate) fn parts_of_upload(upload_id: &[u8; 16]) -> Vec<u8> {
    let mut key = tag_prefix(TAG_PART);
    key.extend_from_slice(upload_id);
    key
}

pub(crate) fn part(upload_id: &[u8; 16], part_number: u32) -> Vec<u8> {
    let mut key = parts_of_upload(upload_id);
    key.extend_from_slice(&part_number.to_be_bytes());
    key
}

/// The part number of a part row key.
pub(crate) fn parse_part(key: &[u8]) -> Result<u32> {
    key.get(HEADER_BYTES + 16..)
        .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| Error::corrupt_row("a part key is malformed"))
}

pub(crate) fn chunk(tier: Tier, hash: &ChunkHash) -> Vec<u8> {
    let mut key = tag_prefix(TAG_CHUNK);
    key.push(tier as u8);
    key.extend_from_slice(hash);
    key
}

/// The tier and hash of a chunk row key.
pub(crate) fn parse_chunk(key: &[u8]) -> Result<(Tier, ChunkHash)> {
    let tier = key
        .get(HEADER_BYTES)
        .copied()
        .and_then(Tier::from_byte)
        .ok_or_else(|| Error::corrupt_row("a chunk key has no valid tier"))?;
    let hash = key
        .get(HEADER_BYTES + 1..)
        .and_then(|tail| ChunkHash::try_from(tail).ok())
        .ok_or_else(|| Error::corrupt_row("a chunk key has no hash"))?;
    Ok((tier, hash))
}

pub(crate) fn refs_of_chunk(tier: Tier, hash: &ChunkHash) -> Vec<u8> {
    let mut key = tag_prefix(TAG_REF);
    key.push(tier as u8);
    key.extend_from_slice(hash);
    key
}

pub(crate) fn chunk_ref(tier: Tier, hash: &ChunkHash, body_id: &[u8; 16]) -> Vec<u8> {
    let mut key = refs_of_chunk(tier, hash);
    key.extend_from_slice(body_id);
    key
}

/// The tier, chunk hash and body id of a reference row key.
pub(crate) fn parse_ref(key: &[u8]) -> Result<(Tier, ChunkHash, [u8; 16])> {
    let chunk_key = key
        .get(..HEADER_BYTES + 33)
        .ok_or_else(|| Error::corrupt_row("a reference key is truncated"))?;
    let (tier, hash) = parse_chunk(chunk_key)?;
    let body: [u8; 16] = key
        .get(HEADER_BYTES + 33..)
        .and_then(|tail| tail.try_into().ok())
        .ok_or_else(|| Error::corrupt_row("a reference key has no body id"))?;
    Ok((tier, hash, body))
}

pub(crate) fn gc_candidate(not_before_nanos: u64, tier: Tier, hash: &ChunkHash) -> Vec<u8> {
    let mut key = tag_prefix(TAG_GC);
    key.extend_from_slice(&not_before_nanos.to_be_bytes());
    key.push(tier as u8);
    key.extend_from_slice(hash);
    key
}

/// The time, tier and hash of a GC candidate key.
pub(crate) fn parse_gc_candidate(key: &[u8]) -> Result<(u64, Tier, ChunkHash)> {
    let time = key
        .get(HEADER_BYTES..HEADER_BYTES + 8)
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::corrupt_row("a GC candidate key is truncated"))?;
    let tier = key
        .get(HEADER_BYTES + 8)
        .copied()
        .and_then(Tier::from_byte)
        .ok_or_else(|| Error::corrupt_row("a GC candidate key has no valid tier"))?;
    let hash = key
        .get(HEADER_BYTES + 9..)
        .and_then(|tail| ChunkHash::try_from(tail).ok())
        .ok_or_else(|| Error::corrupt_row("a GC candidate key has no hash"))?;
    Ok((time, tier, hash))
}

pub(crate) fn lifecycle(bucket_id: u64) -> Vec<u8> {
    with_bucket(TAG_LIFECYCLE, bucket_id)
}

/// Every attribute row of a bucket.
pub(crate) fn bucket_attributes(bucket_id: u64) -> Vec<u8> {
    with_bucket(TAG_BUCKET_ATTRIBUTE, bucket_id)
}

pub(crate) fn bucket_attribute(bucket_id: u64, name: &str) -> Vec<u8> {
    let mut key = bucket_attributes(bucket_id);
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) fn subscriptions() -> Vec<u8> {
    tag_prefix(TAG_SUBSCRIPTION)
}

pub(crate) fn subscription(name: &str) -> Vec<u8> {
    let mut key = subscriptions();
    key.extend_from_slice(name.as_bytes());
    key
}

pub(crate) fn outbox_of(subscription_id: u64) -> Vec<u8> {
    let mut key = tag_prefix(TAG_OUTBOX);
    key.extend_from_slice(&subscription_id.to_be_bytes());
    key
}

pub(crate) fn outbox(subscription_id: u64, event_seq: u64) -> Vec<u8> {
    let mut key = outbox_of(subscription_id);
    key.extend_from_slice(&event_seq.to_be_bytes());
    key
}

/// The event sequence number of an outbox key.
pub(crate) fn parse_outbox(key: &[u8]) -> Result<u64> {
    key.get(HEADER_BYTES + 8..)
        .and_then(|tail| <[u8; 8]>::try_from(tail).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| Error::corrupt_row("an outbox key is malformed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_key_then_newest_first() {
        let rows = [
            version(1, "a", 2),
            version(1, "a", 1),
            version(1, "a\0", 5),
            version(1, "a/b", 9),
            version(1, "a/b", 3),
            version(1, "ab", 1),
            version(1, "b", 7),
            version(2, "a", 1),
        ];
        let mut sorted = rows.clone();
        sorted.sort();
        assert_eq!(sorted, rows);
        assert_eq!(parse_version(&rows[2]).unwrap(), ("a\0".to_owned(), 5));
        assert!(rows[3].starts_with(&versions_with_prefix(1, "a/")));
        assert!(!rows[0].starts_with(&versions_with_prefix(1, "a/")));
    }

    #[test]
    fn escaping_round_trips_and_rejects_damage() {
        let mut out = Vec::new();
        push_escaped(&mut out, b"x\0y");
        out.push(9);
        assert_eq!(
            take_escaped(&out).unwrap(),
            (b"x\0y".to_vec(), out.len() - 1)
        );
        assert!(take_escaped(b"abc").is_err());
        assert!(take_escaped(&[b'a', 0, 7]).is_err());
    }

    #[test]
    fn other_rows_parse_back() {
        let id = [7u8; 16];
        assert_eq!(
            parse_upload(&upload(3, "k", &id)).unwrap(),
            ("k".to_owned(), id)
        );
        assert_eq!(parse_part(&part(&id, 42)).unwrap(), 42);
        let hash = [9u8; 32];
        assert_eq!(
            parse_chunk(&chunk(Tier::Cold, &hash)).unwrap(),
            (Tier::Cold, hash)
        );
        assert_eq!(
            parse_ref(&chunk_ref(Tier::Hot, &hash, &id)).unwrap(),
            (Tier::Hot, hash, id)
        );
        assert_eq!(
            parse_gc_candidate(&gc_candidate(5, Tier::Hot, &hash)).unwrap(),
            (5, Tier::Hot, hash)
        );
        assert_eq!(parse_outbox(&outbox(1, 77)).unwrap(), 77);
        assert_eq!(parse_bucket(&bucket("abc")).unwrap(), "abc");
        assert_eq!(prefix_successor(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff]), None);
    }
}
