//! The hidden rows of multi-active replication and their byte layout, all
//! in keyspace 9 (`MULTI_ACTIVE_KEYSPACE`), so no table read, query, scan,
//! stream or export ever sees them:
//!
//! ```text
//! 09 01                               config: replica u64, skew ms u64, peer count u32, peers u64*
//! 09 02 <table name>                  a replicated table (empty value)
//! 09 03 <item row key>                the item's version: wall u64, logical u32, replica u64, tombstone u8
//! 09 04 <seq u64>                     outbox entry: a local change to ship (see `encode_entry`)
//! 09 05                               clock: last timestamp (u64, u32), next outbox seq u64
//! 09 06 <origin u64>                  cursor: origin's outbox applied through u64, stable wall u64, logical u32
//!                                     [incarnation u64, before: wall u64, logical u32] (absent in rows written
//!                                     before incarnations: the origin's incarnation is then adopted, not compared)
//! 09 07 <wall u64 logical u32 replica u64> <item row key>   tombstone index (empty value)
//! 09 08 <origin u64>                  copy in progress: id u64, skip u8, started u8 [through u64, stable 12], table u16+name, after
//! 09 09                               birth: wall u64, logical u32 (the first configuration's time;
//!                                     its wall millis are the replica's incarnation id)
//! 09 0A                               rebirth owed: a copy showed writes of an earlier life (empty value)
//! ```
//!
//! Integers are big-endian, so outbox entries sort by sequence number and
//! tombstones by version. Decoding never panics: a short or malformed row
//! is a `Corruption` error naming the row.

use super::clock::{ReplicaId, Timestamp, Version};
use super::error::{Error, Result};
use crate::partition::{MULTI_ACTIVE_KEYSPACE, keyspace_prefix};
use crate::value::{Item, decode_item, encode_item};

const CONFIG_TAG: u8 = 1;
const TABLE_TAG: u8 = 2;
const VERSION_TAG: u8 = 3;
const OUTBOX_TAG: u8 = 4;
const CLOCK_TAG: u8 = 5;
const CURSOR_TAG: u8 = 6;
const TOMBSTONE_TAG: u8 = 7;
const COPY_TAG: u8 = 8;
const BIRTH_TAG: u8 = 9;
const REBIRTH_TAG: u8 = 10;

fn key(tag: u8, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(5 + rest.len());
    key.extend_from_slice(&keyspace_prefix(MULTI_ACTIVE_KEYSPACE));
    key.push(tag);
    key.extend_from_slice(rest);
    key
}

/// The configuration row.
pub(crate) fn config_key() -> Vec<u8> {
    key(CONFIG_TAG, &[])
}
/// The row marking `table` as replicated.
pub(crate) fn table_key(table: &str) -> Vec<u8> {
    key(TABLE_TAG, table.as_bytes())
}
/// The prefix of every replicated-table row.
pub(crate) fn tables_prefix() -> Vec<u8> {
    key(TABLE_TAG, &[])
}
/// The version row of the item at `row_key`.
pub(crate) fn version_key(row_key: &[u8]) -> Vec<u8> {
    key(VERSION_TAG, row_key)
}
/// The outbox entry `seq`.
pub(crate) fn outbox_key(seq: u64) -> Vec<u8> {
    key(OUTBOX_TAG, &seq.to_be_bytes())
}
/// The prefix of every outbox entry.
pub(crate) fn outbox_prefix() -> Vec<u8> {
    key(OUTBOX_TAG, &[])
}
/// The clock row.
pub(crate) fn clock_key() -> Vec<u8> {
    key(CLOCK_TAG, &[])
}
/// The cursor row of changes from `origin`.
pub(crate) fn cursor_key(origin: ReplicaId) -> Vec<u8> {
    key(CURSOR_TAG, &origin.0.to_be_bytes())
}
/// The birth row: when this database was first configured. Its own
/// writes are all at or after it; an own version before it is from an
/// earlier life under the same id (before it lost its state).
pub(crate) fn birth_key() -> Vec<u8> {
    key(BIRTH_TAG, &[])
}

/// The row saying this replica, restored under its old id, found writes
/// of its earlier life in a peer's table and owes its peers a copy of its
/// own tables (see `incarnation.rs`).
pub(crate) fn rebirth_key() -> Vec<u8> {
    key(REBIRTH_TAG, &[])
}

pub(crate) fn encode_birth(birth: Timestamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    put_timestamp(&mut out, birth);
    out
}

pub(crate) fn decode_birth(bytes: &[u8]) -> Result<Timestamp> {
    let mut reader = Reader::new(bytes, "replica birth");
    let birth = reader.timestamp()?;
    reader.end()?;
    Ok(birth)
}

/// The row of the table copy from `origin` in progress here.
pub(crate) fn copy_key(origin: ReplicaId) -> Vec<u8> {
    key(COPY_TAG, &origin.0.to_be_bytes())
}
/// The prefix of every copy progress row.
pub(crate) fn copies_prefix() -> Vec<u8> {
    key(COPY_TAG, &[])
}
/// The origin of a copy progress row.
pub(crate) fn parse_copy_key(key: &[u8]) -> Result<ReplicaId> {
    let mut reader = Reader::new(key, "copy progress key");
    reader.take(5)?;
    let origin = ReplicaId(reader.u64()?);
    reader.end()?;
    Ok(origin)
}
/// The prefix of every tombstone index row.
pub(crate) fn tombstones_prefix() -> Vec<u8> {
    key(TOMBSTONE_TAG, &[])
}
/// The tombstone index row of `row_key` deleted at `version`.
pub(crate) fn tombstone_key(version: Version, row_key: &[u8]) -> Vec<u8> {
    let mut rest = Vec::with_capacity(20 + row_key.len());
    put_version(&mut rest, version);
    rest.extend_from_slice(row_key);
    key(TOMBSTONE_TAG, &rest)
}

/// Parses a tombstone index key into the version and the item row key.
pub(crate) fn parse_tombstone_key(key: &[u8]) -> Result<(Version, Vec<u8>)> {
    let mut reader = Reader::new(key, "tombstone index key");
    reader.take(5)?;
    let version = reader.version()?;
    Ok((version, reader.rest().to_vec()))
}

/// Parses an outbox key into its sequence number.
pub(crate) fn parse_outbox_key(key: &[u8]) -> Result<u64> {
    let mut reader = Reader::new(key, "outbox key");
    reader.take(5)?;
    reader.u64()
}

fn put_timestamp(out: &mut Vec<u8>, timestamp: Timestamp) {
    out.extend_from_slice(&timestamp.wall_millis.to_be_bytes());
    out.extend_from_slice(&timestamp.logical.to_be_bytes());
}

fn put_version(out: &mut Vec<u8>, version: Version) {
    put_timestamp(out, version.timestamp);
    out.extend_from_slice(&version.replica.0.to_be_bytes());
}

/// A stored item version: the winner so far, and whether it deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredVersion {
    pub(crate) version: Version,
    pub(crate) tombstone: bool,
}

pub(crate) fn encode_stored(stored: StoredVersion) -> Vec<u8> {
    let mut out = Vec::with_capacity(21);
    put_version(&mut out, stored.version);
    out.push(u8::from(stored.tombstone));
    out
}

pub(crate) fn decode_stored(bytes: &[u8]) -> Result<StoredVersion> {
    let mut reader = Reader::new(bytes, "item version");
    let version = reader.version()?;
    let tombstone = reader.flag()?;
    reader.end()?;
    Ok(StoredVersion { version, tombstone })
}

/// The persisted configuration of a replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredConfig {
    pub(crate) replica: ReplicaId,
    pub(crate) max_clock_skew_millis: u64,
    pub(crate) peers: Vec<ReplicaId>,
}

pub(crate) fn encode_config(config: &StoredConfig) -> Vec<u8> {
    let mut out = Vec::with_capacity(20 + 8 * config.peers.len());
    out.extend_from_slice(&config.replica.0.to_be_bytes());
    out.extend_from_slice(&config.max_clock_skew_millis.to_be_bytes());
    out.extend_from_slice(&(config.peers.len() as u32).to_be_bytes());
    for peer in &config.peers {
        out.extend_from_slice(&peer.0.to_be_bytes());
    }
    out
}

pub(crate) fn decode_config(bytes: &[u8]) -> Result<StoredConfig> {
    let mut reader = Reader::new(bytes, "replica configuration");
    let replica = ReplicaId(reader.u64()?);
    let max_clock_skew_millis = reader.u64()?;
    let count = reader.u32()?;
    let mut peers = Vec::new();
    for _ in 0..count {
        peers.push(ReplicaId(reader.u64()?));
    }
    reader.end()?;
    Ok(StoredConfig {
        replica,
        max_clock_skew_millis,
        peers,
    })
}

/// The clock row: the last timestamp issued and the next outbox seq.
pub(crate) fn encode_clock(last: Timestamp, next_seq: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    put_timestamp(&mut out, last);
    out.extend_from_slice(&next_seq.to_be_bytes());
    out
}

pub(crate) fn decode_clock(bytes: &[u8]) -> Result<(Timestamp, u64)> {
    let mut reader = Reader::new(bytes, "replication clock");
    let last = reader.timestamp()?;
    let next_seq = reader.u64()?;
    reader.end()?;
    Ok((last, next_seq))
}

/// How far this replica has applied an origin's outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cursor {
    /// Every entry of the origin's outbox up to here is applied.
    pub(crate) applied_through: u64,
    /// Every write of the origin with a timestamp up to here is applied.
    pub(crate) stable: Timestamp,
    /// The origin's incarnation (life) the position counts in; `None` in a
    /// new cursor or one written before incarnations existed (the next
    /// incarnation heard is adopted).
    pub(crate) incarnation: Option<u64>,
    /// The stable timestamp reached with the origin's earlier lives: every
    /// write of an earlier life up to here is applied (zero if no earlier
    /// life was followed).
    pub(crate) before: Timestamp,
}

pub(crate) fn encode_cursor(cursor: Cursor) -> Vec<u8> {
    let mut out = Vec::with_capacity(40);
    out.extend_from_slice(&cursor.applied_through.to_be_bytes());
    put_timestamp(&mut out, cursor.stable);
    if let Some(incarnation) = cursor.incarnation {
        out.extend_from_slice(&incarnation.to_be_bytes());
        put_timestamp(&mut out, cursor.before);
    }
    out
}

pub(crate) fn decode_cursor(bytes: &[u8]) -> Result<Cursor> {
    let mut reader = Reader::new(bytes, "replication cursor");
    let applied_through = reader.u64()?;
    let stable = reader.timestamp()?;
    // A row from before incarnations ends here.
    let (incarnation, before) = if reader.rest_len() == 0 {
        (None, Timestamp::default())
    } else {
        (Some(reader.u64()?), reader.timestamp()?)
    };
    reader.end()?;
    Ok(Cursor {
        applied_through,
        stable,
        incarnation,
        before,
    })
}

/// How far a table copy from one origin has got (see `copy.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CopyProgress {
    /// Tells this copy's pages from an earlier copy's.
    pub(crate) copy_id: u64,
    /// Whether copied items this replica already applied are skipped (a
    /// copy into a replica that may have collected tombstones; not one
    /// into a new or restored replica, see `copy.rs`).
    pub(crate) skip_applied: bool,
    /// The origin's outbox position and stable timestamp the copy covers,
    /// fixed by its first page (`None` until then).
    pub(crate) through: Option<(u64, Timestamp)>,
    /// The table being copied (tables go in name order).
    pub(crate) table: String,
    /// The last row (item row key without its keyspace id) applied; empty
    /// at the start of the table.
    pub(crate) after: Vec<u8>,
}

pub(crate) fn encode_copy(progress: &CopyProgress) -> Vec<u8> {
    let mut out = Vec::with_capacity(40 + progress.table.len() + progress.after.len());
    out.extend_from_slice(&progress.copy_id.to_be_bytes());
    out.push(u8::from(progress.skip_applied));
    match progress.through {
        Some((seq, stable)) => {
            out.push(1);
            out.extend_from_slice(&seq.to_be_bytes());
            put_timestamp(&mut out, stable);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(progress.table.len() as u16).to_be_bytes());
    out.extend_from_slice(progress.table.as_bytes());
    out.extend_from_slice(&progress.after);
    out
}

pub(crate) fn decode_copy(bytes: &[u8]) -> Result<CopyProgress> {
    let mut reader = Reader::new(bytes, "copy progress");
    let copy_id = reader.u64()?;
    let skip_applied = reader.flag()?;
    let through = if reader.flag()? {
        Some((reader.u64()?, reader.timestamp()?))
    } else {
        None
    };
    let name_len = usize::from(reader.u16()?);
    let table = String::from_utf8(reader.take(name_len)?.to_vec())
        .map_err(|_| Error::corruption("copy progress", "table name is not UTF-8"))?;
    let after = reader.rest().to_vec();
    Ok(CopyProgress {
        copy_id,
        skip_applied,
        through,
        table,
        after,
    })
}

/// One local change of a replicated item, as the outbox keeps it and peers
/// receive it. The key is the item's key attributes (not its row key:
/// each replica's table has its own keyspace id).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The origin's outbox sequence number.
    pub seq: u64,
    /// The table name.
    pub table: String,
    /// The item's key attributes.
    pub key: Item,
    /// The write's version.
    pub version: Version,
    /// The item after the write; `None` for a delete.
    pub item: Option<Item>,
}

/// Encodes an outbox entry; `item` is the new item already encoded.
pub(crate) fn encode_entry(
    table: &str,
    key: &Item,
    version: Version,
    item: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + item.map_or(0, <[u8]>::len));
    out.extend_from_slice(&(table.len() as u16).to_be_bytes());
    out.extend_from_slice(table.as_bytes());
    let mut key_bytes = Vec::new();
    encode_item(key, &mut key_bytes);
    out.extend_from_slice(&(key_bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&key_bytes);
    put_version(&mut out, version);
    match item {
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(bytes);
        }
        None => out.push(0),
    }
    out
}

/// Decodes the outbox entry `seq`.
pub(crate) fn decode_entry(seq: u64, bytes: &[u8]) -> Result<Change> {
    let mut reader = Reader::new(bytes, "outbox entry");
    let name_len = usize::from(reader.u16()?);
    let table = String::from_utf8(reader.take(name_len)?.to_vec())
        .map_err(|_| Error::corruption("outbox entry", "table name is not UTF-8"))?;
    let key_len = reader.u32()? as usize;
    let key = decode_item(reader.take(key_len)?)
        .map_err(|e| Error::corruption("outbox entry", e.to_string()))?;
    let version = reader.version()?;
    let item = if reader.flag()? {
        Some(
            decode_item(reader.rest())
                .map_err(|e| Error::corruption("outbox entry", e.to_string()))?,
        )
    } else {
        reader.end()?;
        None
    };
    Ok(Change {
        seq,
        table,
        key,
        version,
        item,
    })
}

/// A bounds-checked reader of a row's (or a wire frame's) bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::corruption(self.what, "row is too short"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn flag(&mut self) -> Result<bool> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(Error::corruption(self.what, "flag is neither 0 nor 1")),
        }
    }

    pub(crate) fn timestamp(&mut self) -> Result<Timestamp> {
        Ok(Timestamp {
            wall_millis: self.u64()?,
            logical: self.u32()?,
        })
    }

    fn version(&mut self) -> Result<Version> {
        Ok(Version {
            timestamp: self.timestamp()?,
            replica: ReplicaId(self.u64()?),
        })
    }

    /// Bytes not read yet.
    pub(crate) fn rest_len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    pub(crate) fn end(&self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(Error::corruption(self.what, "trailing bytes"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item;

    fn version(wall_millis: u64, replica: u64) -> Version {
        Version {
            timestamp: Timestamp {
                wall_millis,
                logical: 3,
            },
            replica: ReplicaId(replica),
        }
    }

    #[test]
    fn outbox_entries_round_trip_puts_and_deletes() {
        let key = item! { "pk" => "a" };
        let new = item! { "pk" => "a", "n" => 5 };
        let mut encoded = Vec::new();
        encode_item(&new, &mut encoded);
        let bytes = encode_entry("T", &key, version(9, 2), Some(&encoded));
        let change = decode_entry(4, &bytes).unwrap();
        assert_eq!(change.item, Some(new));
        assert_eq!((change.seq, change.table.as_str()), (4, "T"));
        let bytes = encode_entry("T", &key, version(9, 2), None);
        assert_eq!(decode_entry(4, &bytes).unwrap().item, None);
    }

    #[test]
    fn truncated_rows_are_corruption_not_panics() {
        let bytes = encode_entry("T", &item! { "pk" => "a" }, version(1, 1), None);
        for cut in 0..bytes.len() {
            assert!(decode_entry(1, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        let stored = encode_stored(StoredVersion {
            version: version(1, 1),
            tombstone: true,
        });
        assert!(decode_stored(&stored[..stored.len() - 1]).is_err());
        assert!(decode_cursor(&[1, 2, 3]).is_err());
        assert!(decode_config(&[0; 19]).is_err());
    }

    #[test]
    fn tombstone_keys_sort_by_version_and_parse_back() {
        let older = tombstone_key(version(5, 9), b"row-b");
        let newer = tombstone_key(version(6, 1), b"row-a");
        assert!(older < newer);
        assert_eq!(
            parse_tombstone_key(&newer).unwrap(),
            (version(6, 1), b"row-a".to_vec())
        );
    }

    #[test]
    fn config_clock_and_cursor_round_trip() {
        let config = StoredConfig {
            replica: ReplicaId(3),
            max_clock_skew_millis: 1_000,
            peers: vec![ReplicaId(1), ReplicaId(2)],
        };
        assert_eq!(decode_config(&encode_config(&config)).unwrap(), config);
        let last = Timestamp {
            wall_millis: 77,
            logical: 2,
        };
        assert_eq!(decode_clock(&encode_clock(last, 12)).unwrap(), (last, 12));
        let cursor = Cursor {
            applied_through: 40,
            stable: last,
            ..Cursor::default()
        };
        // Without an incarnation the row keeps its pre-incarnation layout.
        assert_eq!(encode_cursor(cursor).len(), 20);
        assert_eq!(decode_cursor(&encode_cursor(cursor)).unwrap(), cursor);
        let reborn = Cursor {
            incarnation: Some(1_800_000_000_000),
            before: Timestamp {
                wall_millis: 70,
                logical: 1,
            },
            ..cursor
        };
        let bytes = encode_cursor(reborn);
        assert_eq!(decode_cursor(&bytes).unwrap(), reborn);
        for cut in 0..bytes.len() {
            if cut != 20 {
                assert!(decode_cursor(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        let mut long = bytes;
        long.push(0);
        assert!(decode_cursor(&long).is_err());
    }

    #[test]
    fn copy_progress_round_trips_and_truncations_are_errors() {
        let started = CopyProgress {
            copy_id: 7,
            skip_applied: true,
            through: Some((
                40,
                Timestamp {
                    wall_millis: 9,
                    logical: 1,
                },
            )),
            table: "Users".into(),
            after: vec![1, 2, 3],
        };
        let fresh = CopyProgress {
            through: None,
            after: Vec::new(),
            ..started.clone()
        };
        for progress in [started, fresh] {
            let bytes = encode_copy(&progress);
            assert_eq!(decode_copy(&bytes).unwrap(), progress);
            // Cuts inside the fixed fields and the name are errors (a cut
            // in `after` is a shorter key, which only the name length
            // before it could tell).
            let fixed = bytes.len() - progress.after.len();
            for cut in 0..fixed {
                assert!(decode_copy(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert_eq!(
            parse_copy_key(&copy_key(ReplicaId(5))).unwrap(),
            ReplicaId(5)
        );
        assert!(parse_copy_key(&copy_key(ReplicaId(5))[..9]).is_err());
    }
}
