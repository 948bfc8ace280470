//! The durable record of a snapshot transfer a replica is receiving — its
//! identity (source, snapshot id, epoch, epoch history, lineage, file
//! count) and
//! how far it got (files complete, offset in the next) — so a replica
//! restarted mid-transfer resumes it instead of fetching every chunk
//! again.
//!
//! Names are the snapshot's: plain file names, and the object store's
//! packs as `objects/<number>.pack`, staged under `objects/` of the
//! staging directory; a record naming anything else is refused.
//!
//! The record is one small file beside the database directory
//! (`<dir>.snapshot-transfer`), replaced crash-safely (write a temporary,
//! fsync, rename, fsync the parent) through the [`FileSystem`] trait, and
//! checksummed. It only ever claims bytes that are already durable: a
//! chunk is fsynced in its staged file (and a new file's name in the
//! staging directory) before the record moves past it. After a crash the
//! staged file may hold more than the record says (a chunk written but not
//! yet recorded); the resumed transfer truncates it back to the recorded
//! offset before appending. A record that does not decode, names another
//! source, an older epoch, or staged files that are missing or shorter
//! than it claims is discarded with its staging directory, and the
//! replica subscribes afresh.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use super::frame::NodeId;
use super::node::{NodeInner, Role};
use super::snapshot::{Incoming, parent_dir, remove_files, sibling};
use crate::storage::StorageError;
use crate::storage::fs::FileSystem;

/// The record's name suffix: `<dir>.snapshot-transfer`.
const RECORD_SUFFIX: &str = "snapshot-transfer";
/// The staging directories' name prefix: `<dir>.incoming-<id>`.
const STAGING_PREFIX: &str = "incoming-";
/// The record's first bytes (format version 1).
/// Version 2 added the lineage; a version-1 record is refused (the
/// transfer starts over).
const MAGIC: &[u8; 8] = b"NBXFER02";
/// The most names or epoch starts a record may list: far above any
/// checkpoint's file count, low enough that a damaged count allocates
/// little.
const LIST_ENTRIES_MAX: usize = 1 << 16;

/// Where snapshot `id`'s files are staged for the database in `dir`.
pub(crate) fn staging_dir(dir: &Path, id: u64) -> PathBuf {
    sibling(dir, &format!("{STAGING_PREFIX}{id}"))
}

fn record_path(dir: &Path) -> PathBuf {
    sibling(dir, RECORD_SUFFIX)
}

/// Replaces the record of the transfer into `dir` durably.
pub(crate) fn store(
    fs: &dyn FileSystem,
    dir: &Path,
    incoming: &Incoming,
) -> Result<(), StorageError> {
    let path = record_path(dir);
    let mut temporary = path.clone().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| StorageError::io(op, p, e)
    };
    let mut file = fs.create(&temporary).map_err(io("create", &temporary))?;
    file.append(&encode(incoming))
        .map_err(io("append", &temporary))?;
    file.sync_data().map_err(io("fsync", &temporary))?;
    drop(file);
    fs.rename(&temporary, &path).map_err(io("rename", &path))?;
    let parent = parent_dir(dir);
    fs.sync_dir(parent).map_err(io("fsync_dir", parent))
}

/// Removes the record of the transfer into `dir`, durably when it can
/// (best effort: a leftover record is checked, and discarded, at the next
/// open).
pub(crate) fn remove(fs: &dyn FileSystem, dir: &Path) {
    let path = record_path(dir);
    if fs.exists(&path) && fs.remove_file(&path).is_ok() {
        let _ = fs.sync_dir(parent_dir(dir));
    }
}

/// Reads the record of a transfer into `dir`, if there is a usable one.
fn load(fs: &dyn FileSystem, dir: &Path) -> Option<Incoming> {
    let path = record_path(dir);
    if !fs.exists(&path) {
        return None;
    }
    let file = fs.open_read_unmapped(&path).ok()?;
    let mut bytes = vec![0; usize::try_from(file.len()).ok()?];
    file.read_exact_at(&mut bytes, 0).ok()?;
    let incoming = decode(&bytes, dir)?;
    staged_files_agree(fs, &incoming).then_some(incoming)
}

/// Whether every file the record counts as received is staged: each
/// complete one present, the partial one at least `offset` long.
fn staged_files_agree(fs: &dyn FileSystem, incoming: &Incoming) -> bool {
    let present = |name: &str| fs.exists(&incoming.staging.join(name));
    if !incoming.names.iter().all(|name| present(name)) {
        return false;
    }
    match &incoming.partial {
        None => incoming.offset == 0,
        Some(name) => fs
            .open_read_unmapped(&incoming.staging.join(name))
            .is_ok_and(|f| f.len() >= incoming.offset),
    }
}

impl NodeInner {
    /// At open: takes up the transfer recorded beside the database if it
    /// is from `source` and not from an older epoch; otherwise (or for a
    /// node that is not a replica) discards it. Staging directories no
    /// transfer refers to (left by a crash between a new transfer and the
    /// old one's cleanup) are emptied.
    pub(crate) fn restore_incoming(&self) {
        let fs = self.fs.as_ref();
        let loaded = load(fs, &self.path);
        let mut state = self.state.lock();
        let usable = match (state.role, loaded) {
            (Role::Replica { source }, Some(incoming))
                if incoming.source == source && incoming.epoch >= state.epochs.epoch =>
            {
                Some(incoming)
            }
            _ => None,
        };
        let keep = usable.as_ref().map(|i| i.staging.clone());
        if usable.is_none() {
            remove(fs, &self.path);
        } else {
            state.stats.snapshots_resumed += 1;
        }
        state.incoming = usable;
        drop(state);
        self.remove_stale_staging(keep.as_deref());
    }

    /// Empties every staging directory of this database except `keep`.
    fn remove_stale_staging(&self, keep: Option<&Path>) {
        let fs = self.fs.as_ref();
        let Some(own) = self.path.file_name().and_then(|n| n.to_str()) else {
            return;
        };
        let prefix = format!("{own}.{STAGING_PREFIX}");
        let parent = parent_dir(&self.path);
        let Ok(names) = fs.list_dir(parent) else {
            return;
        };
        for name in names.iter().filter(|n| n.starts_with(&prefix)) {
            let dir = parent.join(name);
            if Some(dir.as_path()) != keep {
                remove_files(fs, &dir);
            }
        }
    }
}

fn encode(incoming: &Incoming) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for value in [
        incoming.source,
        incoming.id,
        incoming.epoch,
        incoming.lineage,
    ] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.extend_from_slice(&incoming.files.to_be_bytes());
    out.extend_from_slice(&incoming.file.to_be_bytes());
    out.extend_from_slice(&incoming.offset.to_be_bytes());
    put_count(&mut out, incoming.starts.len());
    for (epoch, first) in &incoming.starts {
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&first.to_be_bytes());
    }
    put_count(&mut out, incoming.names.len());
    for name in &incoming.names {
        put_string(&mut out, name);
    }
    match &incoming.partial {
        None => out.push(0),
        Some(name) => {
            out.push(1);
            put_string(&mut out, name);
        }
    }
    let checksum = xxh3_64(&out);
    out.extend_from_slice(&checksum.to_be_bytes());
    out
}

fn put_count(out: &mut Vec<u8>, count: usize) {
    out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_be_bytes());
}

fn put_string(out: &mut Vec<u8>, text: &str) {
    put_count(out, text.len());
    out.extend_from_slice(text.as_bytes());
}

/// Decodes a record for the database in `dir`; `None` if it is damaged
/// or inconsistent.
fn decode(bytes: &[u8], dir: &Path) -> Option<Incoming> {
    let (body, checksum) = bytes.split_at_checked(bytes.len().checked_sub(8)?)?;
    if xxh3_64(body).to_be_bytes() != checksum {
        return None;
    }
    let mut r = Reader(body.strip_prefix(MAGIC.as_slice())?);
    let source: NodeId = r.u64()?;
    let id = r.u64()?;
    let epoch = r.u64()?;
    let lineage = r.u64()?;
    let files = r.u32()?;
    let file = r.u32()?;
    let offset = r.u64()?;
    let mut starts = Vec::new();
    for _ in 0..r.count()? {
        starts.push((r.u64()?, r.u64()?));
    }
    let mut names = Vec::new();
    for _ in 0..r.count()? {
        names.push(r.string()?);
    }
    let partial = match r.u8()? {
        0 => None,
        1 => Some(r.string()?),
        _ => return None,
    };
    let consistent = r.0.is_empty()
        && names.len() == file as usize
        && file < files
        && (partial.is_some() || offset == 0)
        && names
            .iter()
            .chain(&partial)
            .all(|n| super::snapshot::safe_name(n));
    consistent.then(|| Incoming {
        source,
        id,
        epoch,
        starts,
        lineage,
        files,
        staging: staging_dir(dir, id),
        file,
        offset,
        names,
        partial,
    })
}

/// A cursor over a record's bytes; every read is checked.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.0.split_first_chunk::<N>()?;
        self.0 = tail;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take()?))
    }

    fn count(&mut self) -> Option<usize> {
        let count = self.u32()? as usize;
        (count <= LIST_ENTRIES_MAX && count <= self.0.len()).then_some(count)
    }

    fn string(&mut self) -> Option<String> {
        let len = self.count()?;
        let (head, tail) = self.0.split_at_checked(len)?;
        self.0 = tail;
        String::from_utf8(head.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimFileSystem;

    fn incoming(dir: &Path) -> Incoming {
        Incoming {
            source: 4,
            id: 1_234,
            epoch: 2,
            starts: vec![(1, 1), (2, 77)],
            lineage: 0xfeed_beef,
            files: 5,
            staging: staging_dir(dir, 1_234),
            file: 2,
            offset: 4_096,
            names: vec!["000001.sst".into(), "MANIFEST".into()],
            partial: Some("000002.log".into()),
        }
    }

    #[test]
    fn files_beside_a_relative_database_live_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("db")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/db")), Path::new("/"));
        assert_eq!(parent_dir(Path::new("data/db")), Path::new("data"));
        assert_eq!(
            record_path(Path::new("db")),
            Path::new("db.snapshot-transfer")
        );
    }

    #[test]
    fn a_record_round_trips_and_any_damage_is_refused() {
        let dir = Path::new("/db");
        let record = encode(&incoming(dir));
        assert_eq!(decode(&record, dir), Some(incoming(dir)));
        for cut in 0..record.len() {
            assert_eq!(decode(&record[..cut], dir), None, "cut at {cut}");
        }
        for at in 0..record.len() {
            let mut damaged = record.clone();
            damaged[at] ^= 0x10;
            assert_eq!(decode(&damaged, dir), None, "flip at {at}");
        }
    }

    #[test]
    fn a_record_of_pack_files_round_trips_and_an_escaping_name_is_refused() {
        let dir = Path::new("/db");
        let mut packs = incoming(dir);
        packs.names.push("objects/000003.pack".into());
        packs.file = 3;
        packs.partial = Some("objects/000012.pack".into());
        assert_eq!(decode(&encode(&packs), dir), Some(packs.clone()));
        for bad in ["objects/../x", "objects/x", "a/b", "objects"] {
            let mut escaping = packs.clone();
            escaping.partial = Some(bad.into());
            assert_eq!(decode(&encode(&escaping), dir), None, "{bad}");
        }
    }

    #[test]
    fn an_inconsistent_record_is_refused_even_with_a_good_checksum() {
        let dir = Path::new("/db");
        let mut bad = incoming(dir);
        bad.file = 3; // three files done but two names
        assert_eq!(decode(&encode(&bad), dir), None);
        let mut bad = incoming(dir);
        bad.partial = Some("../escape".into());
        assert_eq!(decode(&encode(&bad), dir), None);
        let mut bad = incoming(dir);
        bad.partial = None; // an offset into no file
        assert_eq!(decode(&encode(&bad), dir), None);
    }

    #[test]
    fn a_stored_record_survives_a_crash_and_is_checked_against_the_staged_files() {
        let fs = SimFileSystem::new();
        let dir = Path::new("/db");
        let record = incoming(dir);
        fs.create_dir_all(&record.staging).unwrap();
        for name in ["000001.sst", "MANIFEST"] {
            fs.write_durable(&record.staging.join(name), b"x").unwrap();
        }
        fs.write_durable(&record.staging.join("000002.log"), &[7; 4_000])
            .unwrap();
        fs.sync_dir(Path::new("/")).unwrap();
        store(&fs, dir, &record).unwrap();
        fs.crash(3);
        // The partial file is shorter than the record claims: refused.
        assert_eq!(load(&fs, dir), None);
        fs.write_durable(&record.staging.join("000002.log"), &[7; 5_000])
            .unwrap();
        assert_eq!(load(&fs, dir), Some(incoming(dir)));
        fs.remove_file(&record.staging.join("MANIFEST")).unwrap();
        assert_eq!(load(&fs, dir), None);
        remove(&fs, dir);
        assert!(!fs.exists(&record_path(dir)));
    }
}
