//! Pack files: append-only files of chunk entries under `<db>/objects/`,
//! one active pack per tier (hot packs hold raw chunks, cold packs
//! LZ4-compressed ones).
//!
//! Format (`docs/format-objects.md`): a 16-byte header (`NMBSPACK`, format
//! u32 LE, tier u8, 3 zero bytes), then entries of a 52-byte header (magic
//! `CHNK` u32 LE, BLAKE3 hash [32], raw length u32 LE, stored length u32
//! LE, codec u8, 3 zero bytes, CRC32 of the preceding 48 bytes u32 LE)
//! followed by the stored bytes.
//!
//! Crash safety: a chunk is referenced by the catalogue only after the
//! pack bytes holding it were synced (under `Sync` and `Buffered`
//! durability), and a pack is never appended to after the process that
//! created it closed it, so a torn tail is never referenced and needs no
//! repair. A failed `sync_data` poisons the pack set: the OS may have
//! dropped the dirty pages, and retrying could reference lost bytes.
//!
//! Reads may go through a memory map: that is sound because a pack is
//! never truncated or rewritten in place — the active pack only grows
//! (a read past the mapped length reopens it), and `gc()` removes a pack
//! by unlinking it, which leaves existing mappings valid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::error::{Error, Result};
use super::keys::ChunkHash;
use super::limits::{CHUNK_BYTES_LIMIT_MAX, PACK_BYTES_MAX};
use super::record::{ChunkLocation, Codec};
use super::types::Tier;
use crate::storage::fs::{FileSystem, ReadFile, WriteFile};

mod replica;

const PACK_MAGIC: &[u8; 8] = b"NMBSPACK";
const PACK_FORMAT: u32 = 1;
pub(crate) const PACK_HEADER_BYTES: u64 = 16;
const ENTRY_MAGIC: u32 = u32::from_le_bytes(*b"CHNK");
pub(crate) const ENTRY_HEADER_BYTES: usize = 52;

/// Unsynced bytes after which the active pack's writeback is started, so a
/// large body's sync before commit waits only for its last few MiB.
const WRITEBACK_BYTES: u64 = 8 << 20;
const PACK_EXTENSION: &str = "pack";

/// The name of pack `id` (`000012.pack`).
pub(crate) fn pack_file_name(id: u64) -> String {
    format!("{id:06}.{PACK_EXTENSION}")
}

fn parse_pack_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(PACK_EXTENSION)?.strip_suffix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// One entry's header as found in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryHeader {
    pub(crate) hash: ChunkHash,
    pub(crate) raw_len: u32,
    pub(crate) stored_len: u32,
    pub(crate) codec: Codec,
}

impl EntryHeader {
    fn encode(&self) -> [u8; ENTRY_HEADER_BYTES] {
        let mut out = [0u8; ENTRY_HEADER_BYTES];
        out[..4].copy_from_slice(&ENTRY_MAGIC.to_le_bytes());
        out[4..36].copy_from_slice(&self.hash);
        out[36..40].copy_from_slice(&self.raw_len.to_le_bytes());
        out[40..44].copy_from_slice(&self.stored_len.to_le_bytes());
        out[44] = self.codec as u8;
        let crc = crc32fast::hash(&out[..48]);
        out[48..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes a header, or `None` if it is not a valid one (a torn tail).
    pub(crate) fn decode(bytes: &[u8; ENTRY_HEADER_BYTES]) -> Option<Self> {
        let word = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        if word(0) != ENTRY_MAGIC || word(48) != crc32fast::hash(&bytes[..48]) {
            return None;
        }
        let codec = match bytes[44] {
            0 => Codec::Raw,
            1 => Codec::Lz4,
            _ => return None,
        };
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[4..36]);
        let (raw_len, stored_len) = (word(36), word(40));
        if raw_len as usize > CHUNK_BYTES_LIMIT_MAX
            || stored_len as usize > 2 * CHUNK_BYTES_LIMIT_MAX
        {
            return None;
        }
        Some(Self {
            hash,
            raw_len,
            stored_len,
            codec,
        })
    }
}

#[derive(Debug)]
struct ActivePack {
    id: u64,
    file: Box<dyn WriteFile>,
    synced_len: u64,
    /// How far the OS was asked to start writing the pack back.
    written_back: u64,
}

/// Where an append landed, to sync through it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Appended {
    pub(crate) tier: Tier,
    pub(crate) pack: u64,
    pub(crate) end: u64,
}

/// The pack files of one store.
#[derive(Debug)]
pub(crate) struct PackSet {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// Whether pack bytes are synced before they are referenced (false for
    /// `InMemory` databases).
    sync: bool,
    next_id: Mutex<u64>,
    active: [Mutex<Option<ActivePack>>; 2],
    readers: RwLock<HashMap<u64, Arc<dyn ReadFile>>>,
    /// The first failed sync: every later append or sync fails with it.
    poisoned: Mutex<Option<Error>>,
    /// Files a replica writes its primary's entries into (`replica`).
    placed: Mutex<replica::PlacedFiles>,
}

impl PackSet {
    /// Opens the pack directory `dir`, creating it if needed.
    pub(crate) fn open(fs: Arc<dyn FileSystem>, dir: &Path, sync: bool) -> Result<Self> {
        fs.create_dir_all(dir)
            .map_err(|error| Error::io("create_dir_all", dir, error))?;
        if sync {
            // The directory's own name must be durable before any pack in
            // it is referenced, or a power loss could drop it whole.
            if let Some(parent) = dir.parent() {
                fs.sync_dir(parent)
                    .map_err(|error| Error::io("fsync directory", parent, error))?;
            }
        }
        let mut next_id = 1;
        for name in fs
            .list_dir(dir)
            .map_err(|error| Error::io("list_dir", dir, error))?
        {
            if let Some(id) = parse_pack_file_name(&name) {
                next_id = next_id.max(id + 1);
            }
        }
        Ok(Self {
            fs,
            dir: dir.to_path_buf(),
            sync,
            next_id: Mutex::new(next_id),
            active: [Mutex::new(None), Mutex::new(None)],
            readers: RwLock::new(HashMap::new()),
            poisoned: Mutex::new(None),
            placed: Mutex::new(replica::PlacedFiles::new()),
        })
    }

    pub(crate) fn path(&self, id: u64) -> PathBuf {
        self.dir.join(pack_file_name(id))
    }

    /// The ids of every pack file on disk.
    pub(crate) fn pack_ids(&self) -> Result<Vec<u64>> {
        let names = self
            .fs
            .list_dir(&self.dir)
            .map_err(|error| Error::io("list_dir", &self.dir, error))?;
        Ok(names
            .iter()
            .filter_map(|name| parse_pack_file_name(name))
            .collect())
    }

    fn check_poisoned(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    fn poison(&self, error: Error) -> Error {
        let mut poisoned = self.poisoned.lock();
        poisoned.get_or_insert_with(|| error.clone());
        error
    }

    /// Appends one chunk to the active pack of `tier`, compressing it for
    /// the cold tier when that saves space.
    pub(crate) fn append(
        &self,
        tier: Tier,
        hash: &ChunkHash,
        raw: &[u8],
    ) -> Result<(ChunkLocation, Appended)> {
        self.check_poisoned()?;
        let compressed = match tier {
            Tier::Cold => {
                Some(lz4_flex::block::compress(raw)).filter(|stored| stored.len() < raw.len())
            }
            Tier::Hot => None,
        };
        let (codec, stored): (Codec, &[u8]) = match &compressed {
            Some(stored) => (Codec::Lz4, stored),
            None => (Codec::Raw, raw),
        };
        let header = EntryHeader {
            hash: *hash,
            raw_len: raw.len() as u32,
            stored_len: stored.len() as u32,
            codec,
        };
        let mut slot = self.active[tier as usize].lock();
        if slot
            .as_ref()
            .is_some_and(|pack| pack.file.len() >= PACK_BYTES_MAX)
        {
            self.seal(&mut slot)?;
        }
        if slot.is_none() {
            *slot = Some(self.create(tier)?);
        }
        let Some(pack) = slot.as_mut() else {
            return Err(Error::corrupt_row("no active pack after creating one"));
        };
        let offset = pack.file.len();
        let path = self.dir.join(pack_file_name(pack.id));
        let appended = pack
            .file
            .append(&header.encode())
            .and_then(|()| pack.file.append(stored));
        if let Err(error) = appended {
            // A partial entry may be on disk: later appends must not
            // follow it, so this pack is abandoned.
            *slot = None;
            return Err(Error::io("append", &path, error));
        }
        if self.sync && pack.file.len() - pack.written_back.max(pack.synced_len) >= WRITEBACK_BYTES
        {
            // A hint only: an error here shows again in the sync that
            // makes these bytes durable, which is where it counts.
            let _ = pack.file.start_writeback();
            pack.written_back = pack.file.len();
        }
        let location = ChunkLocation {
            pack: pack.id,
            offset,
            stored_len: header.stored_len,
            raw_len: header.raw_len,
            codec,
        };
        let appended = Appended {
            tier,
            pack: pack.id,
            end: pack.file.len(),
        };
        Ok((location, appended))
    }

    fn create(&self, tier: Tier) -> Result<ActivePack> {
        let id = {
            let mut next = self.next_id.lock();
            let id = *next;
            *next += 1;
            id
        };
        let path = self.path(id);
        let mut file = self
            .fs
            .create(&path)
            .map_err(|error| Error::io("create", &path, error))?;
        file.append(&pack_header(tier))
            .map_err(|error| Error::io("append", &path, error))?;
        if self.sync {
            // The name must be durable before any chunk in it is referenced.
            file.sync_data()
                .map_err(|error| self.poison(Error::io("fsync", &path, error)))?;
            self.fs
                .sync_dir(&self.dir)
                .map_err(|error| self.poison(Error::io("fsync directory", &self.dir, error)))?;
        }
        Ok(ActivePack {
            id,
            file,
            synced_len: PACK_HEADER_BYTES,
            written_back: PACK_HEADER_BYTES,
        })
    }

    /// Syncs and closes the active pack in `slot`.
    fn seal(&self, slot: &mut Option<ActivePack>) -> Result<()> {
        if let Some(mut pack) = slot.take() {
            self.sync_pack(&mut pack)?;
        }
        Ok(())
    }

    fn sync_pack(&self, pack: &mut ActivePack) -> Result<()> {
        if self.sync && pack.synced_len < pack.file.len() {
            let path = self.path(pack.id);
            pack.file
                .sync_data()
                .map_err(|error| self.poison(Error::io("fsync", &path, error)))?;
        }
        pack.synced_len = pack.file.len();
        Ok(())
    }

    /// Makes every byte up to `appended.end` of its pack durable. Writers
    /// waiting here share one `sync_data`: the first to get the lock syncs
    /// everything appended so far, and the others find their bytes synced.
    pub(crate) fn sync_through(&self, appended: Appended) -> Result<()> {
        self.check_poisoned()?;
        let mut slot = self.active[appended.tier as usize].lock();
        match slot.as_mut() {
            Some(pack) if pack.id == appended.pack => {
                if pack.synced_len < appended.end {
                    self.sync_pack(pack)?;
                }
                Ok(())
            }
            // Sealed since: sealing synced it (or poisoned the set, checked above).
            _ => self.check_poisoned(),
        }
    }

    /// Syncs and closes the active packs, so the next append starts a new
    /// pack (used before a pack rewrite, which must not rewrite a pack
    /// still being appended to).
    pub(crate) fn seal_all(&self) -> Result<()> {
        for slot in &self.active {
            self.seal(&mut slot.lock())?;
        }
        Ok(())
    }

    /// Hard-links every pack into the directory `target` (created) and
    /// syncs it. The active packs are sealed first, so the live store never
    /// appends to a linked file again: the links hold exactly the bytes
    /// written before this call, and stay valid when the live store later
    /// rewrites and removes a pack (that only drops its own link).
    pub(crate) fn link_into(&self, target: &Path) -> Result<()> {
        self.seal_all()?;
        self.fs
            .create_dir_all(target)
            .map_err(|error| Error::io("create_dir_all", target, error))?;
        for id in self.pack_ids()? {
            let to = target.join(pack_file_name(id));
            self.fs
                .hard_link(&self.path(id), &to)
                .map_err(|error| Error::io("hard_link", &to, error))?;
        }
        if self.sync {
            self.fs
                .sync_dir(target)
                .map_err(|error| Error::io("fsync directory", target, error))?;
        }
        Ok(())
    }

    fn reader(&self, id: u64, needed_len: u64) -> Result<Arc<dyn ReadFile>> {
        if let Some(reader) = self.readers.read().get(&id)
            && reader.len() >= needed_len
        {
            return Ok(Arc::clone(reader));
        }
        // Not open yet, or the active pack grew since it was opened.
        self.current_reader(id)
    }

    /// A reader of pack `id` as it is now: a cached reader may predate the
    /// latest appends (a pack read while it was active), and scans and
    /// sizes must see every entry.
    fn current_reader(&self, id: u64) -> Result<Arc<dyn ReadFile>> {
        let path = self.path(id);
        let reader = self
            .fs
            .open_read(&path)
            .map_err(|error| Error::io("open", &path, error))?;
        self.readers.write().insert(id, Arc::clone(&reader));
        Ok(reader)
    }

    /// Reads the chunk at `location`, checks that it is `hash` and returns
    /// its raw bytes. Damage of any kind is `Corruption`.
    pub(crate) fn read(&self, location: &ChunkLocation, hash: &ChunkHash) -> Result<Bytes> {
        let path = self.path(location.pack);
        let corrupt = |reason: &str| Error::Corruption {
            file: path.display().to_string(),
            offset: location.offset,
            reason: reason.to_owned(),
        };
        let data_start = location.offset + ENTRY_HEADER_BYTES as u64;
        let end = data_start + u64::from(location.stored_len);
        let reader = self.reader(location.pack, end)?;
        if reader.len() < end {
            return Err(corrupt("the pack is shorter than the chunk's entry"));
        }
        let mut header = [0u8; ENTRY_HEADER_BYTES];
        reader
            .read_exact_at(&mut header, location.offset)
            .map_err(|error| Error::io("read", &path, error))?;
        let entry =
            EntryHeader::decode(&header).ok_or_else(|| corrupt("the entry header is damaged"))?;
        if entry.hash != *hash
            || entry.raw_len != location.raw_len
            || entry.stored_len != location.stored_len
            || entry.codec != location.codec
        {
            return Err(corrupt("the entry is not the chunk the catalogue names"));
        }
        let stored = read_range(&reader, data_start, end)
            .map_err(|error| Error::io("read", &path, error))?;
        let raw = match entry.codec {
            Codec::Raw => stored,
            Codec::Lz4 => {
                let raw = lz4_flex::block::decompress(&stored, entry.raw_len as usize)
                    .map_err(|_| corrupt("the compressed chunk does not decompress"))?;
                Bytes::from(raw)
            }
        };
        if raw.len() != entry.raw_len as usize || blake3::hash(&raw).as_bytes() != hash {
            return Err(corrupt(
                "the chunk's BLAKE3 hash does not match its content",
            ));
        }
        Ok(raw)
    }

    /// The bytes of the uncompressed chunk at `location` without checking
    /// their hash (`None` for a compressed chunk or a header that does not
    /// name `hash`): for comparing a new body with a stored one, where a
    /// damaged byte can only make a comparison fail. Anything returned to a
    /// reader goes through [`PackSet::read`].
    pub(crate) fn read_unverified(
        &self,
        location: &ChunkLocation,
        hash: &ChunkHash,
    ) -> Result<Option<Bytes>> {
        if location.codec != Codec::Raw {
            return Ok(None);
        }
        let path = self.path(location.pack);
        let data_start = location.offset + ENTRY_HEADER_BYTES as u64;
        let end = data_start + u64::from(location.stored_len);
        let reader = self.reader(location.pack, end)?;
        if reader.len() < end {
            return Ok(None);
        }
        let mut header = [0u8; ENTRY_HEADER_BYTES];
        reader
            .read_exact_at(&mut header, location.offset)
            .map_err(|error| Error::io("read", &path, error))?;
        match EntryHeader::decode(&header) {
            Some(entry) if entry.hash == *hash && entry.codec == Codec::Raw => {
                read_range(&reader, data_start, end)
                    .map(Some)
                    .map_err(|error| Error::io("read", &path, error))
            }
            _ => Ok(None),
        }
    }

    /// Every intact entry of pack `id` (offset, header), stopping at the
    /// first damaged one (a torn tail).
    pub(crate) fn scan(&self, id: u64) -> Result<(Tier, Vec<(u64, EntryHeader)>)> {
        let path = self.path(id);
        let reader = self.current_reader(id)?;
        let mut header = [0u8; PACK_HEADER_BYTES as usize];
        let tier = match reader.read_exact_at(&mut header, 0) {
            Ok(()) if &header[..8] == PACK_MAGIC => Tier::from_byte(header[12]),
            _ => None,
        };
        let Some(tier) = tier else {
            return Err(Error::Corruption {
                file: path.display().to_string(),
                offset: 0,
                reason: "not a pack file".into(),
            });
        };
        let mut entries = Vec::new();
        let mut offset = PACK_HEADER_BYTES;
        let mut buf = [0u8; ENTRY_HEADER_BYTES];
        while offset + ENTRY_HEADER_BYTES as u64 <= reader.len() {
            if reader.read_exact_at(&mut buf, offset).is_err() {
                break;
            }
            let Some(entry) = EntryHeader::decode(&buf) else {
                break;
            };
            let next = offset + ENTRY_HEADER_BYTES as u64 + u64::from(entry.stored_len);
            if next > reader.len() {
                break;
            }
            entries.push((offset, entry));
            offset = next;
        }
        Ok((tier, entries))
    }

    /// The size of pack `id` in bytes.
    pub(crate) fn len(&self, id: u64) -> Result<u64> {
        Ok(self.current_reader(id)?.len())
    }

    /// Removes pack `id` (nothing may reference it any more).
    pub(crate) fn remove(&self, id: u64) -> Result<()> {
        self.readers.write().remove(&id);
        self.forget_placed(id);
        let path = self.path(id);
        self.fs
            .remove_file(&path)
            .map_err(|error| Error::io("remove", &path, error))?;
        if self.sync {
            self.fs
                .sync_dir(&self.dir)
                .map_err(|error| Error::io("fsync directory", &self.dir, error))?;
        }
        Ok(())
    }
}

/// The 16-byte header of a pack of `tier`.
fn pack_header(tier: Tier) -> [u8; PACK_HEADER_BYTES as usize] {
    let mut header = [0u8; PACK_HEADER_BYTES as usize];
    header[..8].copy_from_slice(PACK_MAGIC);
    header[8..12].copy_from_slice(&PACK_FORMAT.to_le_bytes());
    header[12] = tier as u8;
    header
}

/// The bytes `start..end` of `reader`, without a copy when it is mapped.
fn read_range(reader: &Arc<dyn ReadFile>, start: u64, end: u64) -> std::io::Result<Bytes> {
    if reader.as_slice().is_some() {
        return Ok(Bytes::from_owner(MappedRange {
            file: Arc::clone(reader),
            start: start as usize,
            end: end as usize,
        }));
    }
    let mut buf = vec![0u8; (end - start) as usize];
    reader.read_exact_at(&mut buf, start)?;
    Ok(Bytes::from(buf))
}

/// A range of a memory-mapped pack that keeps the mapping alive.
struct MappedRange {
    file: Arc<dyn ReadFile>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MappedRange {
    fn as_ref(&self) -> &[u8] {
        // The range was checked against the file's length when it was made.
        self.file
            .as_slice()
            .and_then(|slice| slice.get(self.start..self.end))
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimFileSystem;

    fn packs(fs: &SimFileSystem) -> PackSet {
        PackSet::open(Arc::new(fs.clone()), Path::new("/db/objects"), true).unwrap()
    }

    #[test]
    fn chunks_round_trip_in_both_tiers() {
        let fs = SimFileSystem::new();
        let packs = packs(&fs);
        let raw = vec![7u8; 10_000];
        let hash = *blake3::hash(&raw).as_bytes();
        for tier in Tier::ALL {
            let (location, appended) = packs.append(tier, &hash, &raw).unwrap();
            packs.sync_through(appended).unwrap();
            assert_eq!(packs.read(&location, &hash).unwrap(), raw);
            if tier == Tier::Cold {
                assert_eq!(location.codec, Codec::Lz4);
                assert!(location.stored_len < 1000);
            }
        }
        let (tier, entries) = packs.scan(1).unwrap();
        assert_eq!((tier, entries.len()), (Tier::Hot, 1));
        assert_eq!(packs.pack_ids().unwrap(), vec![1, 2]);
    }

    #[test]
    fn damage_is_detected_by_hash() {
        let fs = SimFileSystem::new();
        let packs = packs(&fs);
        let raw = b"some chunk bytes".to_vec();
        let hash = *blake3::hash(&raw).as_bytes();
        let (location, _) = packs.append(Tier::Hot, &hash, &raw).unwrap();
        let data_at = location.offset + ENTRY_HEADER_BYTES as u64;
        fs.corrupt(&packs.path(location.pack), data_at + 3, b"X")
            .unwrap();
        let fresh = self::packs(&fs);
        assert!(matches!(
            fresh.read(&location, &hash),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            fresh.read(&location, &[0; 32]),
            Err(Error::Corruption { .. })
        ));
    }

    #[test]
    fn a_failed_sync_poisons_the_set() {
        let fs = SimFileSystem::new();
        let packs = packs(&fs);
        let raw = b"x".repeat(100);
        let hash = *blake3::hash(&raw).as_bytes();
        packs.append(Tier::Hot, &hash, &raw).unwrap();
        fs.fail_nth_data_sync(1);
        let (_, appended) = packs.append(Tier::Hot, &hash, &raw).unwrap();
        assert!(packs.sync_through(appended).is_err());
        assert!(packs.append(Tier::Hot, &hash, &raw).is_err());
    }
}
