//! Pack files on both ends of replication: a primary reads a chunk's entry
//! exactly as stored, and a replica writes it at the same pack number and
//! offset, so the `C` rows its replicated log applies name the same bytes
//! on both nodes (`docs/format-replication.md`, "Object bodies").
//!
//! A replica's packs are sparse copies of the primary's: only entries some
//! replicated batch named are written, each at its own offset, and the
//! 16-byte header (a function of the tier) is written with every placement,
//! so an entry placed into a file a diverged lineage left behind relabels
//! it. Nothing a replica places is referenced until the batch naming it
//! applies, and that batch applies only after the placed bytes were synced
//! and checked against their hash.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use bytes::Bytes;

use super::{ENTRY_HEADER_BYTES, EntryHeader, PACK_HEADER_BYTES, PackSet, pack_header, read_range};
use crate::objects::error::{Error, Result};
use crate::objects::keys::ChunkHash;
use crate::objects::record::ChunkLocation;
use crate::objects::types::Tier;
use crate::storage::fs::WriteFile;

/// Pack files a replica keeps open for placements between two syncs.
const PLACED_FILES_MAX: usize = 4;

/// A pack file a replica writes entries into.
#[derive(Debug)]
pub(crate) struct Placed {
    file: Box<dyn WriteFile>,
    /// Written since its last sync.
    dirty: bool,
    /// Created since the directory's last sync.
    created: bool,
}

/// The open files of [`PackSet::place`], by pack id.
pub(crate) type PlacedFiles = BTreeMap<u64, Placed>;

impl PackSet {
    /// The entry (52-byte header and stored bytes) at `location`, after
    /// checking that its header names `hash` with the location's lengths:
    /// what a primary ships so a replica can place the same bytes.
    pub(crate) fn read_entry(&self, location: &ChunkLocation, hash: &ChunkHash) -> Result<Bytes> {
        let end = location.offset + ENTRY_HEADER_BYTES as u64 + u64::from(location.stored_len);
        let reader = self.reader(location.pack, end)?;
        let path = self.path(location.pack);
        if reader.len() < end {
            return Err(Error::Corruption {
                file: path.display().to_string(),
                offset: location.offset,
                reason: "the pack is shorter than the chunk's entry".into(),
            });
        }
        let entry = read_range(&reader, location.offset, end)
            .map_err(|error| Error::io("read", &path, error))?;
        check_entry(location, hash, &entry).map_err(|reason| Error::Corruption {
            file: path.display().to_string(),
            offset: location.offset,
            reason: reason.into(),
        })?;
        Ok(entry)
    }

    /// Writes `entry` (as [`PackSet::read_entry`] returned it on the
    /// primary) at `location` of a pack of `tier`, creating the file if
    /// needed. Not synced: [`PackSet::sync_placed`] does that before any
    /// batch naming it is applied.
    pub(crate) fn place(
        &self,
        tier: Tier,
        location: &ChunkLocation,
        hash: &ChunkHash,
        entry: &[u8],
    ) -> Result<()> {
        self.check_poisoned()?;
        let path = self.path(location.pack);
        if location.offset < PACK_HEADER_BYTES {
            return Err(Error::Corruption {
                file: path.display().to_string(),
                offset: location.offset,
                reason: "a shipped entry overlaps the pack header".into(),
            });
        }
        check_entry(location, hash, entry).map_err(|reason| Error::Corruption {
            file: path.display().to_string(),
            offset: location.offset,
            reason: format!("a shipped entry is damaged: {reason}"),
        })?;
        let mut placed = self.placed.lock();
        let target = match placed.entry(location.pack) {
            Entry::Occupied(open) => open.into_mut(),
            Entry::Vacant(slot) => {
                let (file, created) = if self.fs.exists(&path) {
                    (self.fs.open_append(&path), false)
                } else {
                    (self.fs.create(&path), true)
                };
                let file = file.map_err(|error| Error::io("open", &path, error))?;
                slot.insert(Placed {
                    file,
                    dirty: false,
                    created,
                })
            }
        };
        target.dirty = true;
        let written = target
            .file
            .write_at(0, &pack_header(tier))
            .and_then(|()| target.file.write_at(location.offset, entry));
        if let Err(error) = written {
            // The file may hold part of the entry: it is checked by hash
            // before use, and placed again if it is not whole.
            placed.remove(&location.pack);
            return Err(Error::io("write", &path, error));
        }
        // A file read through `ReadFile` is immutable while open, and this
        // one changed (possibly below its old length): the next read opens
        // it again. Readers holding bytes of the old handle keep them.
        self.readers.write().remove(&location.pack);
        // This store never appends to a pack its primary wrote (it would
        // after a promotion, if it took the number for a new pack).
        let mut next = self.next_id.lock();
        *next = (*next).max(location.pack + 1);
        Ok(())
    }

    /// Makes every placed entry durable (and the names of packs created
    /// for them), then closes all but the newest few files.
    pub(crate) fn sync_placed(&self) -> Result<()> {
        self.check_poisoned()?;
        let mut placed = self.placed.lock();
        let mut created = false;
        for (&id, target) in placed.iter_mut() {
            if target.dirty && self.sync {
                target
                    .file
                    .sync_data()
                    .map_err(|error| self.poison(Error::io("fsync", &self.path(id), error)))?;
            }
            target.dirty = false;
            created |= std::mem::take(&mut target.created);
        }
        if created && self.sync {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|error| self.poison(Error::io("fsync directory", &self.dir, error)))?;
        }
        while placed.len() > PLACED_FILES_MAX {
            placed.pop_first();
        }
        Ok(())
    }

    /// The packs with entries placed since the last
    /// [`PackSet::sync_placed`]: entries of batches not applied yet.
    pub(crate) fn pending_placements(&self) -> std::collections::BTreeSet<u64> {
        self.placed
            .lock()
            .iter()
            .filter(|(_, placed)| placed.dirty)
            .map(|(&id, _)| id)
            .collect()
    }

    /// Forgets the open file of pack `id` before it is removed.
    pub(crate) fn forget_placed(&self, id: u64) {
        self.placed.lock().remove(&id);
    }
}

/// Why `entry` is not the entry `location` names for `hash`, if it is not.
/// The content's hash is checked by every read, not here.
fn check_entry(
    location: &ChunkLocation,
    hash: &ChunkHash,
    entry: &[u8],
) -> std::result::Result<(), &'static str> {
    let header = entry
        .get(..ENTRY_HEADER_BYTES)
        .and_then(|h| <&[u8; ENTRY_HEADER_BYTES]>::try_from(h).ok())
        .and_then(EntryHeader::decode)
        .ok_or("the entry header is damaged")?;
    if header.hash != *hash
        || header.raw_len != location.raw_len
        || header.stored_len != location.stored_len
        || header.codec != location.codec
        || entry.len() != ENTRY_HEADER_BYTES + location.stored_len as usize
    {
        return Err("the entry is not the chunk the catalogue names");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::storage::sim::SimFileSystem;

    fn packs(fs: &SimFileSystem, dir: &str) -> PackSet {
        PackSet::open(Arc::new(fs.clone()), Path::new(dir), true).unwrap()
    }

    #[test]
    fn an_entry_placed_out_of_order_reads_back_at_the_primarys_location() {
        let fs = SimFileSystem::new();
        let primary = packs(&fs, "/a/objects");
        let replica = packs(&fs, "/b/objects");
        let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 5_000 + usize::from(i)]).collect();
        let mut shipped = Vec::new();
        for raw in &chunks {
            let hash = *blake3::hash(raw).as_bytes();
            let (location, appended) = primary.append(Tier::Cold, &hash, raw).unwrap();
            primary.sync_through(appended).unwrap();
            let entry = primary.read_entry(&location, &hash).unwrap();
            shipped.push((location, hash, entry));
        }
        // The last first, leaving a hole; then the others.
        for (location, hash, entry) in shipped.iter().rev() {
            replica.place(Tier::Cold, location, hash, entry).unwrap();
            assert_eq!(replica.pending_placements().len(), 1);
        }
        replica.sync_placed().unwrap();
        assert!(replica.pending_placements().is_empty());
        for ((location, hash, _), raw) in shipped.iter().zip(&chunks) {
            assert_eq!(replica.read(location, hash).unwrap(), raw.as_slice());
        }
        // The replica never takes the shipped pack's number for its own.
        let raw = b"a new chunk after promotion".repeat(100);
        let hash = *blake3::hash(&raw).as_bytes();
        let (own, _) = replica.append(Tier::Hot, &hash, &raw).unwrap();
        assert!(own.pack > shipped[0].0.pack);
    }

    #[test]
    fn a_damaged_or_mislabelled_entry_is_refused_and_nothing_is_written() {
        let fs = SimFileSystem::new();
        let primary = packs(&fs, "/a/objects");
        let replica = packs(&fs, "/b/objects");
        let raw = vec![9u8; 3_000];
        let hash = *blake3::hash(&raw).as_bytes();
        let (location, _) = primary.append(Tier::Hot, &hash, &raw).unwrap();
        let entry = primary.read_entry(&location, &hash).unwrap().to_vec();
        let mut damaged = entry.clone();
        damaged[10] ^= 1;
        let other = [1u8; 32];
        let short = &entry[..entry.len() - 1];
        for (bad_hash, bytes) in [(&hash, &damaged[..]), (&other, &entry[..]), (&hash, short)] {
            let refused = replica.place(Tier::Hot, &location, bad_hash, bytes);
            assert!(
                matches!(refused, Err(Error::Corruption { .. })),
                "{refused:?}"
            );
        }
        assert!(replica.pack_ids().unwrap().is_empty());
        let header = ChunkLocation {
            offset: 0,
            ..location
        };
        assert!(replica.place(Tier::Hot, &header, &hash, &entry).is_err());
    }
}
