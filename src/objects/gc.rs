//! Garbage collection and verification of chunks.
//!
//! - [`Objects::gc`] frees chunks whose last reference went away at least a
//!   grace period ago (the candidates that removals queue in the same batch
//!   as the removal), then rewrites pack files that are mostly dead: their
//!   live chunks are appended to a fresh pack and synced, the catalogue
//!   points at the copies in one batch, and only then is the old pack
//!   removed. It holds the store's gate for writing, so no write that found
//!   a chunk by a dedup check, or appended one it has not committed yet, is
//!   in flight.
//! - [`Objects::verify`] is the mark-and-sweep check: it recomputes every
//!   chunk reference from the versions and parts (the roots), compares them
//!   with the reference rows, and checks that every referenced chunk is
//!   stored with an intact entry of the right hash.

use std::collections::{HashMap, HashSet};

use super::Objects;
use super::error::{Error, Result};
use super::keys::{self, ChunkHash};
use super::limits::PACK_LIVE_RATIO_REWRITE_MAX;
use super::pack::{ENTRY_HEADER_BYTES, EntryHeader, PACK_HEADER_BYTES};
use super::record::{ChunkList, ChunkLocation, PartRecord, VersionRecord, decode_ref_count};
use super::store::StoreInner;
use super::types::Tier;
use crate::storage::{Direction, WriteBatch};

/// What [`Objects::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Chunks whose catalogue row was removed (no reference left).
    pub chunks_freed: u64,
    /// Candidates not yet due (still in their grace period).
    pub candidates_pending: u64,
    /// Unreferenced chunks found without a candidate and queued now.
    pub leaks_queued: u64,
    /// Packs whose live chunks were copied out.
    pub packs_rewritten: u64,
    /// Pack files removed.
    pub packs_removed: u64,
    /// Bytes of pack files removed, minus the bytes copied out of them.
    pub bytes_reclaimed: u64,
}

/// What [`Objects::verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Version rows read.
    pub versions: u64,
    /// Parts of unfinished uploads read.
    pub parts: u64,
    /// Distinct stored chunks (catalogue rows).
    pub chunks: u64,
    /// Reference rows read.
    pub references: u64,
    /// Chunks referenced by a version or part but not stored (data loss).
    pub missing_chunks: Vec<String>,
    /// References a version or part needs whose row is absent or has the
    /// wrong count (GC could free a chunk in use).
    pub missing_references: u64,
    /// Reference rows no version or part accounts for (a leak).
    pub stale_references: u64,
    /// Stored chunks without references or a pending GC candidate (a leak).
    pub leaked_chunks: u64,
    /// Chunk rows whose pack entry is absent, damaged or of another hash.
    pub damaged_entries: Vec<String>,
    /// Pack files.
    pub packs: u64,
    /// Bytes of all pack files.
    pub pack_bytes: u64,
    /// Bytes of pack entries that a chunk row points at.
    pub live_bytes: u64,
}

impl VerifyReport {
    /// Whether nothing is missing, damaged or leaked.
    pub fn is_consistent(&self) -> bool {
        self.missing_chunks.is_empty()
            && self.missing_references == 0
            && self.stale_references == 0
            && self.leaked_chunks == 0
            && self.damaged_entries.is_empty()
    }
}

type RefKey = (Tier, ChunkHash, [u8; 16]);

/// The live chunks of one pack.
type PackChunks = Vec<((Tier, ChunkHash), ChunkLocation)>;

impl StoreInner {
    /// Every chunk reference the roots (versions and parts) need.
    fn mark(&self, report: &mut VerifyReport) -> Result<HashMap<RefKey, u32>> {
        let mut expected: HashMap<RefKey, u32> = HashMap::new();
        let mut add = |list: &ChunkList| {
            for (hash, count) in list.reference_counts() {
                expected.insert((list.tier, hash, list.body_id), count);
            }
        };
        for row in self.engine.prefix(
            &keys::tag_prefix(keys::TAG_VERSION),
            Direction::Forward,
            None,
        )? {
            let (_, value) = row?;
            report.versions += 1;
            let record = VersionRecord::decode(&value)?;
            if let Some(list) = record.object().and_then(|object| object.body.chunk_list()) {
                add(list);
            }
        }
        for row in
            self.engine
                .prefix(&keys::tag_prefix(keys::TAG_PART), Direction::Forward, None)?
        {
            let (_, value) = row?;
            report.parts += 1;
            add(&PartRecord::decode(&value)?.chunks);
        }
        Ok(expected)
    }

    /// The chunks with a queued GC candidate.
    fn candidates(&self) -> Result<HashSet<(Tier, ChunkHash)>> {
        let mut set = HashSet::new();
        for row in self
            .engine
            .prefix(&keys::tag_prefix(keys::TAG_GC), Direction::Forward, None)?
        {
            let (key, _) = row?;
            let (_, tier, hash) = keys::parse_gc_candidate(&key)?;
            set.insert((tier, hash));
        }
        Ok(set)
    }

    /// Every chunk row: (tier, hash) → location.
    pub(super) fn chunk_rows(&self) -> Result<HashMap<(Tier, ChunkHash), ChunkLocation>> {
        let mut rows = HashMap::new();
        for row in
            self.engine
                .prefix(&keys::tag_prefix(keys::TAG_CHUNK), Direction::Forward, None)?
        {
            let (key, value) = row?;
            rows.insert(keys::parse_chunk(&key)?, ChunkLocation::decode(&value)?);
        }
        Ok(rows)
    }

    /// Every reference row: (tier, hash, body) → count.
    fn ref_rows(&self) -> Result<HashMap<RefKey, u32>> {
        let mut rows = HashMap::new();
        for row in self
            .engine
            .prefix(&keys::tag_prefix(keys::TAG_REF), Direction::Forward, None)?
        {
            let (key, value) = row?;
            rows.insert(keys::parse_ref(&key)?, decode_ref_count(&value)?);
        }
        Ok(rows)
    }

    pub(crate) fn verify(&self) -> Result<VerifyReport> {
        // Shared: writes wait, so the roots and the rows are one state.
        let _gate = self.gate.write();
        let mut report = VerifyReport::default();
        let expected = self.mark(&mut report)?;
        let refs = self.ref_rows()?;
        let chunks = self.chunk_rows()?;
        let candidates = self.candidates()?;
        report.references = refs.len() as u64;
        report.chunks = chunks.len() as u64;
        let mut missing: HashSet<(Tier, ChunkHash)> = HashSet::new();
        for (key, count) in &expected {
            if refs.get(key) != Some(count) {
                report.missing_references += 1;
            }
            if !chunks.contains_key(&(key.0, key.1)) {
                missing.insert((key.0, key.1));
            }
        }
        report.missing_chunks = missing
            .iter()
            .map(|(_, hash)| super::ingest::hex(hash))
            .collect();
        report.missing_chunks.sort();
        report.stale_references = refs
            .keys()
            .filter(|key| !expected.contains_key(key))
            .count() as u64;
        let referenced: HashSet<(Tier, ChunkHash)> =
            refs.keys().map(|(tier, hash, _)| (*tier, *hash)).collect();
        report.leaked_chunks = chunks
            .keys()
            .filter(|chunk| !referenced.contains(chunk) && !candidates.contains(chunk))
            .count() as u64;
        let mut scans: HashMap<u64, std::result::Result<HashMap<u64, EntryHeader>, String>> =
            HashMap::new();
        for ((_, hash), location) in &chunks {
            report.live_bytes += ENTRY_HEADER_BYTES as u64 + u64::from(location.stored_len);
            let scan = scans.entry(location.pack).or_insert_with(|| {
                self.packs
                    .scan(location.pack)
                    .map(|(_, entries)| entries.into_iter().collect())
                    .map_err(|error| error.to_string())
            });
            if let Err(reason) = check_entry(scan, location, hash) {
                report.damaged_entries.push(format!(
                    "{} in pack {} at {}: {reason}",
                    super::ingest::hex(hash),
                    location.pack,
                    location.offset
                ));
            }
        }
        report.damaged_entries.sort();
        for id in self.packs.pack_ids()? {
            report.packs += 1;
            report.pack_bytes += self.packs.len(id)?;
        }
        Ok(report)
    }

    pub(crate) fn gc(&self) -> Result<GcReport> {
        let _gate = self.gate.write();
        let mut report = GcReport::default();
        self.sweep_candidates(&mut report)?;
        self.queue_leaks(&mut report)?;
        self.rewrite_packs(&mut report)?;
        Ok(report)
    }

    /// Frees the chunks of due candidates that still have no reference.
    fn sweep_candidates(&self, report: &mut GcReport) -> Result<()> {
        let now = self.now_nanos();
        let mut batch = WriteBatch::new();
        for row in self
            .engine
            .prefix(&keys::tag_prefix(keys::TAG_GC), Direction::Forward, None)?
        {
            let (key, _) = row?;
            let (due, tier, hash) = keys::parse_gc_candidate(&key)?;
            if due > now {
                report.candidates_pending += 1;
                continue;
            }
            batch.delete(&key);
            let referenced = self
                .engine
                .prefix(&keys::refs_of_chunk(tier, &hash), Direction::Forward, None)?
                .next()
                .is_some();
            let chunk_key = keys::chunk(tier, &hash);
            if !referenced && self.engine.get(&chunk_key)?.is_some() {
                batch.delete(&chunk_key);
                report.chunks_freed += 1;
            }
        }
        if !batch.is_empty() {
            self.engine.write(batch)?;
        }
        Ok(())
    }

    /// Queues a candidate for every stored chunk with no reference and no
    /// candidate (a safety net: a correct store has none).
    fn queue_leaks(&self, report: &mut GcReport) -> Result<()> {
        let refs = self.ref_rows()?;
        let referenced: HashSet<(Tier, ChunkHash)> =
            refs.keys().map(|(tier, hash, _)| (*tier, *hash)).collect();
        let candidates = self.candidates()?;
        let grace = u64::try_from(self.options().gc_grace.as_nanos()).unwrap_or(u64::MAX);
        let due = self.now_nanos().saturating_add(grace);
        let mut batch = WriteBatch::new();
        for (tier, hash) in self.chunk_rows()?.into_keys() {
            if !referenced.contains(&(tier, hash)) && !candidates.contains(&(tier, hash)) {
                batch.put(&keys::gc_candidate(due, tier, &hash), &[]);
                report.leaks_queued += 1;
            }
        }
        if !batch.is_empty() {
            self.engine.write(batch)?;
        }
        Ok(())
    }

    /// Copies the live chunks out of mostly dead packs and removes them.
    fn rewrite_packs(&self, report: &mut GcReport) -> Result<()> {
        self.packs.seal_all()?;
        let chunks = self.chunk_rows()?;
        let mut live: HashMap<u64, PackChunks> = HashMap::new();
        for (chunk, location) in chunks {
            live.entry(location.pack)
                .or_default()
                .push((chunk, location));
        }
        for id in self.packs.pack_ids()? {
            let size = self.packs.len(id)?;
            let entries = live.remove(&id).unwrap_or_default();
            let live_bytes: u64 = entries
                .iter()
                .map(|(_, location)| ENTRY_HEADER_BYTES as u64 + u64::from(location.stored_len))
                .sum();
            let capacity = size.saturating_sub(PACK_HEADER_BYTES).max(1);
            if live_bytes as f64 / capacity as f64 > PACK_LIVE_RATIO_REWRITE_MAX {
                continue;
            }
            let mut batch = WriteBatch::new();
            let mut appended = Vec::new();
            for ((tier, hash), location) in &entries {
                let raw = self.packs.read(location, hash)?;
                let (moved, mark) = self.packs.append(*tier, hash, &raw)?;
                appended.push(mark);
                batch.put(&keys::chunk(*tier, hash), &moved.encode());
            }
            for mark in appended {
                self.packs.sync_through(mark)?;
            }
            if !batch.is_empty() {
                self.engine.write(batch)?;
                report.packs_rewritten += 1;
            }
            // The rows must point at the copies durably before the old
            // pack goes, or a crash could leave rows naming a removed file.
            self.engine.sync()?;
            self.packs.remove(id)?;
            report.packs_removed += 1;
            report.bytes_reclaimed += size.saturating_sub(live_bytes);
        }
        Ok(())
    }
}

/// Checks that a chunk row points at an intact entry of its hash in the
/// scanned pack (the header only; reads check the data).
fn check_entry(
    scan: &std::result::Result<HashMap<u64, EntryHeader>, String>,
    location: &ChunkLocation,
    hash: &ChunkHash,
) -> std::result::Result<(), String> {
    let entries = scan.as_ref().map_err(Clone::clone)?;
    match entries.get(&location.offset) {
        Some(entry)
            if entry.hash == *hash
                && entry.raw_len == location.raw_len
                && entry.stored_len == location.stored_len
                && entry.codec == location.codec =>
        {
            Ok(())
        }
        Some(_) => Err("the entry holds another chunk".into()),
        None => Err("no intact entry at that offset".into()),
    }
}

impl Objects<'_> {
    /// Frees unreferenced chunks whose grace period has passed and rewrites
    /// mostly dead pack files. Blocks object writes while it runs.
    pub fn gc(&self) -> Result<GcReport> {
        self.store.gc()
    }

    /// Checks every chunk reference against the versions and parts that
    /// need them, and every stored chunk's pack entry (mark and sweep).
    pub fn verify(&self) -> Result<VerifyReport> {
        self.store.verify()
    }
}

/// Reports damage found by `verify` as an error, for callers that want one.
impl VerifyReport {
    /// `Ok` if consistent, otherwise a `Corruption` error summarising it.
    pub fn into_result(self) -> Result<Self> {
        if self.is_consistent() {
            return Ok(self);
        }
        Err(Error::Corruption {
            file: "object catalogue".into(),
            offset: 0,
            reason: format!(
                "{} missing chunks, {} missing references, {} stale references, {} leaked chunks, {} damaged entries",
                self.missing_chunks.len(),
                self.missing_references,
                self.stale_references,
                self.leaked_chunks,
                self.damaged_entries.len()
            ),
        })
    }
}
