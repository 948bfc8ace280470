//! The versions of one key: reading them, and [`KeyChange`], which
//! gathers every row a change to one key touches — version rows, the key
//! head, chunk references, GC candidates, outbox events — into the one
//! batch that commits it.
//!
//! Version ids: `"null"` for the null version, otherwise 32 hex digits,
//! the key's sequence number (16) then 8 random bytes (16). The sequence
//! locates the row directly; the random half makes an id of a deleted
//! version never match a later version that reuses the sequence.

use std::time::Duration;

use super::error::{Error, Result};
use super::events::PendingEvent;
use super::keys::{self, ChunkHash};
use super::record::{
    Body, BucketRecord, ChunkList, ChunkLocation, KeyHead, VersionKind, VersionRecord,
    encode_ref_count,
};
use super::store::StoreInner;
use super::types::Tier;
use crate::storage::{Direction, WriteBatch};

/// The version id S3 gives versions written while versioning was off.
pub const NULL_VERSION_ID: &str = "null";

/// A version row read from the catalogue.
#[derive(Debug, Clone)]
pub(crate) struct StoredVersion {
    pub(crate) seq: u64,
    pub(crate) record: VersionRecord,
}

impl StoredVersion {
    pub(crate) fn version_id(&self) -> String {
        version_id_string(self.seq, self.record.id)
    }
}

pub(crate) fn version_id_string(seq: u64, id: Option<[u8; 8]>) -> String {
    match id {
        None => NULL_VERSION_ID.to_owned(),
        Some(random) => {
            let mut out = String::with_capacity(32);
            for byte in seq.to_be_bytes().iter().chain(&random) {
                out.push_str(&format!("{byte:02x}"));
            }
            out
        }
    }
}

/// A parsed version id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VersionIdArg {
    Null,
    Id { seq: u64, random: [u8; 8] },
}

pub(crate) fn parse_version_id(text: &str) -> Result<VersionIdArg> {
    if text == NULL_VERSION_ID {
        return Ok(VersionIdArg::Null);
    }
    let invalid = || Error::InvalidArgument(format!("invalid version id specified: {text:?}"));
    if text.len() != 32
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(invalid());
    }
    let mut bytes = [0u8; 16];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).map_err(|_| invalid())?;
    }
    let (seq, random) = bytes.split_at(8);
    let seq = u64::from_be_bytes(seq.try_into().map_err(|_| invalid())?);
    let random: [u8; 8] = random.try_into().map_err(|_| invalid())?;
    Ok(VersionIdArg::Id { seq, random })
}

impl StoreInner {
    /// The key's head row, or an empty head if the key has no versions.
    pub(crate) fn key_head(&self, bucket_id: u64, key: &str) -> Result<Option<KeyHead>> {
        match self.engine.get(&keys::head(bucket_id, key))? {
            Some(bytes) => KeyHead::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The newest version of the key (an object or a delete marker).
    pub(crate) fn current_version(
        &self,
        bucket_id: u64,
        key: &str,
    ) -> Result<Option<StoredVersion>> {
        let prefix = keys::versions_of_key(bucket_id, key);
        match self
            .engine
            .prefix(&prefix, Direction::Forward, None)?
            .next()
        {
            Some(row) => {
                let (row_key, value) = row?;
                let (_, seq) = keys::parse_version(&row_key)?;
                Ok(Some(StoredVersion {
                    seq,
                    record: VersionRecord::decode(&value)?,
                }))
            }
            None => Ok(None),
        }
    }

    /// The version at sequence `seq`, if it exists.
    pub(crate) fn version_at(
        &self,
        bucket_id: u64,
        key: &str,
        seq: u64,
    ) -> Result<Option<StoredVersion>> {
        match self.engine.get(&keys::version(bucket_id, key, seq))? {
            Some(bytes) => Ok(Some(StoredVersion {
                seq,
                record: VersionRecord::decode(&bytes)?,
            })),
            None => Ok(None),
        }
    }

    /// The version named `version_id`, if it exists.
    pub(crate) fn find_version(
        &self,
        bucket_id: u64,
        key: &str,
        version_id: VersionIdArg,
    ) -> Result<Option<StoredVersion>> {
        match version_id {
            VersionIdArg::Null => {
                let Some(seq) = self
                    .key_head(bucket_id, key)?
                    .and_then(|head| head.null_seq)
                else {
                    return Ok(None);
                };
                self.version_at(bucket_id, key, seq)
            }
            VersionIdArg::Id { seq, random } => Ok(self
                .version_at(bucket_id, key, seq)?
                .filter(|version| version.record.id == Some(random))),
        }
    }

    /// Every version of the key, newest first.
    pub(crate) fn versions_of(&self, bucket_id: u64, key: &str) -> Result<Vec<StoredVersion>> {
        let prefix = keys::versions_of_key(bucket_id, key);
        let mut versions = Vec::new();
        for row in self.engine.prefix(&prefix, Direction::Forward, None)? {
            let (row_key, value) = row?;
            let (_, seq) = keys::parse_version(&row_key)?;
            versions.push(StoredVersion {
                seq,
                record: VersionRecord::decode(&value)?,
            });
        }
        Ok(versions)
    }

    /// Adds the reference rows of a new body to `batch`.
    pub(crate) fn add_refs(&self, batch: &mut WriteBatch, list: &ChunkList) {
        for (hash, count) in list.reference_counts() {
            batch.put(
                &keys::chunk_ref(list.tier, &hash, &list.body_id),
                &encode_ref_count(count),
            );
        }
    }

    /// Adds the removal of a body's reference rows to `batch`, with a GC
    /// candidate per chunk, due after the grace period.
    pub(crate) fn release_refs(&self, batch: &mut WriteBatch, list: &ChunkList, now_nanos: u64) {
        let grace = self.options().gc_grace;
        let due = now_nanos.saturating_add(u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX));
        for (hash, _) in list.reference_counts() {
            batch.delete(&keys::chunk_ref(list.tier, &hash, &list.body_id));
            batch.put(&keys::gc_candidate(due, list.tier, &hash), &[]);
        }
    }

    /// Adds the locations of newly written chunks to `batch`.
    pub(crate) fn add_locations(
        &self,
        batch: &mut WriteBatch,
        tier: Tier,
        locations: &[(ChunkHash, ChunkLocation)],
    ) {
        for (hash, location) in locations {
            batch.put(&keys::chunk(tier, hash), &location.encode());
        }
    }
}

/// The rows one change to one key writes, built under the key's lock.
pub(crate) struct KeyChange<'s> {
    store: &'s StoreInner,
    bucket_id: u64,
    bucket_name: &'s str,
    key: &'s str,
    pub(crate) head: KeyHead,
    pub(crate) batch: WriteBatch,
    pub(crate) now_nanos: u64,
    events: Vec<PendingEvent>,
}

impl<'s> KeyChange<'s> {
    /// Starts a change (the caller holds the key's lock).
    pub(crate) fn load(
        store: &'s StoreInner,
        bucket: &BucketRecord,
        bucket_name: &'s str,
        key: &'s str,
    ) -> Result<Self> {
        let head = store.key_head(bucket.id, key)?.unwrap_or(KeyHead {
            next_seq: 1,
            null_seq: None,
            count: 0,
        });
        Ok(Self {
            store,
            bucket_id: bucket.id,
            bucket_name,
            key,
            head,
            batch: WriteBatch::new(),
            now_nanos: store.now_nanos(),
            events: Vec::new(),
        })
    }

    pub(crate) fn current(&self) -> Result<Option<StoredVersion>> {
        self.store.current_version(self.bucket_id, self.key)
    }

    pub(crate) fn null_version(&self) -> Result<Option<StoredVersion>> {
        match self.head.null_seq {
            Some(seq) => self.store.version_at(self.bucket_id, self.key, seq),
            None => Ok(None),
        }
    }

    pub(crate) fn find(&self, version_id: VersionIdArg) -> Result<Option<StoredVersion>> {
        self.store
            .find_version(self.bucket_id, self.key, version_id)
    }

    /// Removes `version` for good, releasing its body's chunks.
    pub(crate) fn remove(&mut self, version: &StoredVersion) {
        self.batch
            .delete(&keys::version(self.bucket_id, self.key, version.seq));
        if let Some(list) = version
            .record
            .object()
            .and_then(|object| object.body.chunk_list())
        {
            self.store
                .release_refs(&mut self.batch, list, self.now_nanos);
        }
        if self.head.null_seq == Some(version.seq) {
            self.head.null_seq = None;
        }
        self.head.count = self.head.count.saturating_sub(1);
    }

    /// Rewrites `version` in place (retention, legal hold, restore,
    /// storage-class changes).
    pub(crate) fn rewrite(&mut self, version: &StoredVersion) {
        self.batch.put(
            &keys::version(self.bucket_id, self.key, version.seq),
            &version.record.encode(),
        );
    }

    /// Adds a new newest version (`id` `None`: the null version, which the
    /// caller has removed first if there was one).
    pub(crate) fn add(&mut self, id: Option<[u8; 8]>, kind: VersionKind) -> StoredVersion {
        let seq = self.head.next_seq;
        self.head.next_seq += 1;
        self.head.count += 1;
        if id.is_none() {
            self.head.null_seq = Some(seq);
        }
        if let VersionKind::Object(object) = &kind
            && let Body::Chunked(list) = &object.body
        {
            self.store.add_refs(&mut self.batch, list);
        }
        let version = StoredVersion {
            seq,
            record: VersionRecord {
                id,
                last_modified_nanos: self.now_nanos,
                kind,
            },
        };
        self.batch.put(
            &keys::version(self.bucket_id, self.key, seq),
            &version.record.encode(),
        );
        version
    }

    pub(crate) fn event(&mut self, event: PendingEvent) {
        self.events.push(event);
    }

    /// Writes the batch (head row, events and all).
    pub(crate) fn commit(mut self) -> Result<()> {
        let head_key = keys::head(self.bucket_id, self.key);
        if self.head.count == 0 {
            self.batch.delete(&head_key);
        } else {
            self.batch.put(&head_key, &self.head.encode());
        }
        for event in &self.events {
            self.store.events.record(
                &mut self.batch,
                self.bucket_id,
                self.bucket_name,
                self.now_nanos,
                event,
            );
        }
        self.store.engine.write(self.batch)?;
        Ok(())
    }
}

/// Midnight UTC at or after `nanos` (S3 rounds lifecycle and retention
/// dates to the next midnight).
pub(crate) fn next_midnight_nanos(nanos: u64) -> u64 {
    const DAY: u64 = 86_400 * 1_000_000_000;
    nanos.div_ceil(DAY).saturating_mul(DAY)
}

/// `days` as nanoseconds.
pub(crate) fn days_nanos(days: u64) -> u64 {
    u64::try_from(Duration::from_secs(days.saturating_mul(86_400)).as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_round_trip() {
        let id = version_id_string(0x0102, Some([0xab; 8]));
        assert_eq!(id.len(), 32);
        assert_eq!(
            parse_version_id(&id).unwrap(),
            VersionIdArg::Id {
                seq: 0x0102,
                random: [0xab; 8]
            }
        );
        assert_eq!(parse_version_id("null").unwrap(), VersionIdArg::Null);
        for bad in ["", "NULL", "xyz", &"g".repeat(32), &"A".repeat(32)] {
            assert!(parse_version_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn midnight_rounds_up() {
        let day = 86_400 * 1_000_000_000u64;
        assert_eq!(next_midnight_nanos(day * 3), day * 3);
        assert_eq!(next_midnight_nanos(day * 3 + 1), day * 4);
    }
}
