//! What replication needs of the object store. Object bodies live in pack
//! files, not in the log, so a replicated batch that adds `C` rows (chunk
//! locations) is shipped together with the entries those rows name:
//!
//! - the primary finds the chunks a batch names ([`chunks_named`]) and
//!   reads each entry as stored ([`ObjectStore::shipped_entry`]);
//! - the replica writes each entry at the same pack and offset
//!   ([`ObjectStore::place_shipped`]), and applies the batch only once
//!   every chunk it names is there, intact and synced
//!   ([`ObjectStore::missing_chunks`], [`ObjectStore::sync_shipped`]);
//! - afterwards, as the batch's [`effects`] say, it re-reads the catalogue
//!   state it keeps in memory ([`ObjectStore::reload`]) and removes packs
//!   no `C` row names any more ([`ObjectStore::sweep_unnamed_packs`],
//!   after the primary's GC moved or freed their chunks).

use std::collections::BTreeSet;

use bytes::Bytes;

use super::error::{Error, Result};
use super::keys::{self, ChunkHash};
use super::record::ChunkLocation;
use super::store::ObjectStore;
use super::types::Tier;
use crate::partition::{OBJECTS_KEYSPACE, keyspace_prefix};
use crate::storage::{EntryKind, WriteBatch};

/// A chunk a batch's `C` row names: tier, hash and where the row puts it.
pub(crate) type NamedChunk = (Tier, ChunkHash, ChunkLocation);

/// The chunks whose locations `batch` writes (empty for a batch without
/// object rows: the common case costs a prefix comparison per entry).
pub(crate) fn chunks_named(batch: &WriteBatch) -> Result<Vec<NamedChunk>> {
    let prefix = keys::tag_prefix(keys::TAG_CHUNK);
    let mut named = Vec::new();
    for op in batch.iter() {
        if op.kind != EntryKind::Put || !op.key.starts_with(&prefix) {
            continue;
        }
        let (tier, hash) = keys::parse_chunk(op.key)?;
        named.push((tier, hash, ChunkLocation::decode(&op.value.to_vec())?));
    }
    Ok(named)
}

/// What a replica's object store must do once a replicated batch applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// The batch changed rows the store keeps in memory (configuration,
    /// buckets, subscriptions): [`ObjectStore::reload`].
    pub(crate) reload: bool,
    /// The batch moved or freed chunks, so packs may have lost their last
    /// one: [`ObjectStore::sweep_unnamed_packs`]. That is a deleted `C`
    /// row (a freed chunk), or `C` rows written without any reference row
    /// (a GC pack rewrite: every batch storing a body writes its
    /// references with it).
    pub(crate) sweep: bool,
}

/// The [`Effects`] of `batch`, in one pass over its entries.
pub(crate) fn effects(batch: &WriteBatch) -> Effects {
    let objects = keyspace_prefix(OBJECTS_KEYSPACE);
    let (mut locations, mut references, mut freed) = (false, false, false);
    let mut effects = Effects::default();
    for op in batch.iter() {
        if !op.key.starts_with(&objects) {
            continue;
        }
        match op.key.get(objects.len()) {
            Some(&(keys::TAG_CONFIG | keys::TAG_BUCKET | keys::TAG_SUBSCRIPTION)) => {
                effects.reload = true;
            }
            Some(&keys::TAG_CHUNK) => {
                locations = true;
                freed |= op.kind == EntryKind::Delete;
            }
            Some(&keys::TAG_REF) => references = true,
            _ => {}
        }
    }
    effects.sweep = freed || (locations && !references);
    effects
}

impl ObjectStore {
    /// The entry holding `chunk` as this store has it: at the location the
    /// batch named, or where a pack rewrite moved it since; `None` once it
    /// was freed (a later batch then deletes the row naming it).
    pub(crate) fn shipped_entry(&self, chunk: &NamedChunk) -> Result<Option<Bytes>> {
        let (tier, hash, location) = chunk;
        let packs = &self.inner.packs;
        if let Ok(entry) = packs.read_entry(location, hash) {
            return Ok(Some(entry));
        }
        match self.inner.engine.get(&keys::chunk(*tier, hash))? {
            Some(bytes) => {
                let current = ChunkLocation::decode(&bytes)?;
                packs.read_entry(&current, hash).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Writes an entry a primary shipped for `tier` and `hash` at `pack`
    /// and `offset` (not synced yet). The entry's header gives the rest
    /// of the location; a damaged entry is refused.
    pub(crate) fn place_shipped(
        &self,
        tier: u8,
        hash: &ChunkHash,
        pack: u64,
        offset: u64,
        entry: &[u8],
    ) -> Result<()> {
        let tier = Tier::from_byte(tier)
            .ok_or_else(|| Error::corrupt_row("a shipped chunk has no valid tier"))?;
        let header = entry
            .get(..super::pack::ENTRY_HEADER_BYTES)
            .and_then(|h| h.try_into().ok())
            .and_then(super::pack::EntryHeader::decode)
            .ok_or_else(|| Error::corrupt_row("a shipped chunk's header is damaged"))?;
        let location = ChunkLocation {
            pack,
            offset,
            stored_len: header.stored_len,
            raw_len: header.raw_len,
            codec: header.codec,
        };
        self.inner.packs.place(tier, &location, hash, entry)
    }

    /// The chunks `named` that this store does not hold intact at the
    /// named location (each read and checked against its hash), leaving
    /// out those in `gone` (`(tier, hash, pack, offset)` that the source
    /// no longer has: freed by a later batch).
    pub(crate) fn missing_chunks(
        &self,
        named: &[NamedChunk],
        gone: &BTreeSet<(u8, ChunkHash, u64, u64)>,
    ) -> Vec<NamedChunk> {
        named
            .iter()
            .filter(|(tier, hash, location)| {
                !gone.contains(&(*tier as u8, *hash, location.pack, location.offset))
                    && self.inner.packs.read(location, hash).is_err()
            })
            .cloned()
            .collect()
    }

    /// Makes every placed entry durable before a batch naming it applies.
    pub(crate) fn sync_shipped(&self) -> Result<()> {
        self.inner.packs.sync_placed()
    }

    /// Removes every pack no `C` row names (on a replica, after its
    /// primary's GC moved the chunks out or freed the last one), except
    /// packs with entries placed for batches not applied yet. Returns how
    /// many went.
    pub(crate) fn sweep_unnamed_packs(&self) -> Result<usize> {
        let packs = &self.inner.packs;
        let mut keep: BTreeSet<u64> = packs.pending_placements();
        keep.extend(
            self.inner
                .chunk_rows()?
                .values()
                .map(|location| location.pack),
        );
        let mut removed = 0;
        for id in packs.pack_ids()? {
            if !keep.contains(&id) {
                packs.remove(id)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
