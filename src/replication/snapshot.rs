//! Snapshots for followers too far behind the retained log (or diverged):
//! the source takes a checkpoint (hard-linked segments, manifest, log
//! tail) and serves it in chunks the follower pulls one at a time by
//! `(file, offset)`, so a transfer resumes where it stopped after lost
//! messages, a partition, or a restart of the follower (its progress is
//! durable: see `transfer`; a restarted *source* no longer serves the
//! snapshot, and the follower starts over with a new one). The follower
//! stages the files beside its directory, each chunk fsynced before the
//! transfer record counts it, then closes its database, replaces its
//! files, records the source's epoch history, reopens read-only and
//! subscribes from the snapshot's last sequence number.
//!
//! A snapshot is a whole-database checkpoint: the engine's files by name,
//! and the object store's pack files as `objects/<number>.pack`, linked
//! while the store's gate is held so no GC moves a chunk between the
//! catalogue copy and the links. The follower installs each pack under
//! the same number, byte for byte, so every chunk location in the
//! snapshot's catalogue names the same bytes on the follower, and it
//! drops its own packs the snapshot does not have.

use std::path::{Path, PathBuf};

use super::epoch::{EPOCH_FILE_NAME, EpochRecord};
use super::frame::{Message, NodeId};
use super::node::{NodeInner, NodeState, ReplicationEvent, Role};
use super::transfer;
use crate::Database;
use crate::storage::StorageError;
use crate::storage::fs::FileSystem;

/// How many snapshots a source keeps served at once (older ones are
/// dropped; a follower still fetching one is told it is gone).
const SERVED_SNAPSHOTS_MAX: usize = 2;

/// A snapshot a source serves.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub(crate) dir: PathBuf,
    pub(crate) files: Vec<String>,
    /// The source's last sequence number when it was taken: the snapshot
    /// holds at least this much, so a follower at or past it has it.
    pub(crate) last_sequence: u64,
    /// The source's epoch history when it was taken: the snapshot is only
    /// offered (again) while the source still has that history, since a
    /// follower installs it labelled with the history the offer carries.
    pub(crate) epochs: EpochRecord,
}

/// A snapshot a follower receives (its durable record: `transfer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// The source serving it: ids are only unique per source.
    pub(crate) source: NodeId,
    pub(crate) id: u64,
    pub(crate) epoch: u64,
    pub(crate) starts: Vec<(u64, u64)>,
    /// The lineage of the snapshot's history, which the node adopts.
    pub(crate) lineage: u64,
    pub(crate) files: u32,
    pub(crate) staging: PathBuf,
    /// The next piece wanted.
    pub(crate) file: u32,
    pub(crate) offset: u64,
    /// The files complete so far (`file` of them).
    pub(crate) names: Vec<String>,
    /// The file `offset` bytes of are staged (`None` at offset 0).
    pub(crate) partial: Option<String>,
}

/// The subdirectory of a database, a checkpoint and a staging directory
/// that holds the object store's pack files (the object store's
/// `OBJECTS_DIR`).
const PACKS_DIR: &str = "objects";
/// The pack files' name suffix.
const PACK_SUFFIX: &str = ".pack";
/// The most digits a pack number has in a name (`u64::MAX` has 20).
const PACK_DIGITS_MAX: usize = 20;

/// Whether a file name sent by a source may be staged: a plain name (no
/// path separator or parent reference) other than the epoch record
/// (which the follower writes itself) and the packs directory, or a pack
/// file (`pack_name`).
pub(crate) fn safe_name(name: &str) -> bool {
    pack_name(name) || (plain_name(name) && !name.starts_with(EPOCH_FILE_NAME) && name != PACKS_DIR)
}

/// Whether `name` is exactly `objects/<digits>.pack`: the one form of
/// name with a separator a snapshot may carry.
pub(crate) fn pack_name(name: &str) -> bool {
    name.strip_prefix(PACKS_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_suffix(PACK_SUFFIX))
        .is_some_and(|digits| {
            (1..=PACK_DIGITS_MAX).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
        })
}

/// A name of a file directly in a directory: no separator, no parent
/// reference.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.contains('\\') && !name.contains("..")
}

/// The files of a checkpoint (or of a complete staging directory) in
/// `dir` as a snapshot lists them: each file directly in `dir` by name,
/// then each pack as `objects/<name>`. Other subdirectories are not part
/// of a checkpoint and are skipped.
fn snapshot_files(fs: &dyn FileSystem, dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut packs = Vec::new();
    for name in fs.list_dir(dir)? {
        let path = dir.join(&name);
        if fs.list_dir(&path).is_err() {
            files.push(name);
        } else if name == PACKS_DIR {
            packs = fs
                .list_dir(&path)?
                .into_iter()
                .map(|pack| format!("{PACKS_DIR}/{pack}"))
                .filter(|pack| pack_name(pack))
                .collect();
        }
    }
    files.append(&mut packs);
    Ok(files)
}

impl NodeInner {
    /// Takes a checkpoint for `follower`; returns its id and file count.
    pub(crate) fn start_snapshot(&self, follower: NodeId) -> Option<(u64, usize)> {
        let db = self.db.read().clone()?;
        let (id, last_sequence, epochs) = {
            let mut state = self.state.lock();
            // Ids stay unique across restarts of the source (its counter
            // restarts, the transport's clock does not go back), so a
            // follower never resumes one snapshot with another's pieces.
            let id = state.next_snapshot_id.max(self.transport.now_micros());
            state.next_snapshot_id = id + 1;
            (id, state.last_sequence, state.epochs.clone())
        };
        let dir = sibling(&self.path, &format!("snapshot-{}-{id}", self.options.id));
        if self.fs.exists(&dir) {
            remove_files(self.fs.as_ref(), &dir);
            // A leftover of an earlier run with the same id: start over.
            let _ = self.fs.sync_dir(&dir);
        }
        let taken = if self.fs.exists(&dir) {
            Err(StorageError::InvalidArgument("stale snapshot dir".into()))
        } else {
            checkpoint(&db, &dir)
        };
        let dir = match taken {
            Ok(true) => dir,
            // The object store is busy (a GC sweep, a bucket change): the
            // follower asks again at the next heartbeat.
            Ok(false) => return None,
            Err(_) => {
                // Reuse of an id's directory after a restart, or a failed
                // copy: take a fresh name instead.
                remove_files(self.fs.as_ref(), &dir);
                let fresh = sibling(
                    &self.path,
                    &format!(
                        "snapshot-{}-{id}-{}",
                        self.options.id,
                        self.transport.now_micros()
                    ),
                );
                match checkpoint(&db, &fresh) {
                    Ok(true) => fresh,
                    Ok(false) => return None,
                    Err(_) => {
                        remove_files(self.fs.as_ref(), &fresh);
                        return None;
                    }
                }
            }
        };
        let Ok(files) = snapshot_files(self.fs.as_ref(), &dir) else {
            remove_files(self.fs.as_ref(), &dir);
            return None;
        };
        let mut state = self.state.lock();
        if state.epochs != epochs {
            // The history changed while the checkpoint was taken (this node
            // installed a snapshot itself): the copy may be of the old one.
            remove_files(self.fs.as_ref(), &dir);
            return None;
        }
        state.stats.snapshots_served += 1;
        state.event(ReplicationEvent::SnapshotStarted { follower, id });
        let count = files.len();
        state.served.insert(
            id,
            Served {
                dir,
                files,
                last_sequence,
                epochs,
            },
        );
        while state.served.len() > SERVED_SNAPSHOTS_MAX {
            if let Some((_, old)) = state.served.pop_first() {
                remove_files(self.fs.as_ref(), &old.dir);
            }
        }
        if let Some(f) = state.followers.get_mut(&follower) {
            f.streaming = false;
            f.snapshot = Some(id);
        }
        Some((id, count))
    }

    pub(crate) fn on_snapshot_request(&self, from: NodeId, id: u64, file: u32, offset: u64) {
        let served = self.state.lock().served.get(&id).cloned();
        let message = served
            .and_then(|s| self.read_chunk(&s, id, file, offset))
            .unwrap_or(Message::SnapshotGone { id });
        self.transport.send(self.options.id, from, message);
    }

    fn read_chunk(&self, served: &Served, id: u64, file: u32, offset: u64) -> Option<Message> {
        let name = served.files.get(usize::try_from(file).ok()?)?;
        let path = served.dir.join(name);
        let handle = self.fs.open_read_unmapped(&path).ok()?;
        let file_len = handle.len();
        let want = file_len
            .saturating_sub(offset)
            .min(self.options.snapshot_chunk_bytes as u64);
        let mut data = vec![0; usize::try_from(want).ok()?];
        handle.read_exact_at(&mut data, offset).ok()?;
        Some(Message::SnapshotChunk {
            id,
            file,
            name: name.clone(),
            offset,
            file_len,
            data,
        })
    }

    pub(crate) fn on_need_snapshot(
        &self,
        from: NodeId,
        id: u64,
        epoch: u64,
        files: u32,
        starts: Vec<(u64, u64)>,
        lineage: u64,
    ) {
        {
            let mut state = self.state.lock();
            if state.role != (Role::Replica { source: from }) || epoch < state.epochs.epoch {
                return;
            }
            if state
                .incoming
                .as_ref()
                .is_some_and(|i| i.id == id && i.source == from && i.files == files)
            {
                // Already fetching it (maybe since before a restart):
                // resume below.
            } else {
                self.discard_incoming(&mut state);
                if files == 0 {
                    // Nothing to fetch can be a database: a broken offer.
                    return;
                }
                let staging = transfer::staging_dir(&self.path, id);
                if self.fs.exists(&staging) {
                    remove_files(self.fs.as_ref(), &staging);
                }
                // The staging directory's own name (and its packs
                // directory's) must be durable before an install marker can
                // point at it.
                let parent = parent_dir(&staging);
                if self.fs.create_dir_all(&staging.join(PACKS_DIR)).is_err()
                    || self.fs.sync_dir(&staging).is_err()
                    || self.fs.sync_dir(parent).is_err()
                {
                    return;
                }
                let incoming = Incoming {
                    source: from,
                    id,
                    epoch,
                    starts,
                    lineage,
                    files,
                    staging,
                    file: 0,
                    offset: 0,
                    names: Vec::new(),
                    partial: None,
                };
                // Without the record a restart starts over: no harm.
                let _ = transfer::store(self.fs.as_ref(), &self.path, &incoming);
                state.incoming = Some(incoming);
            }
        }
        self.resume_snapshot(from);
    }

    /// Requests the next piece of the snapshot being received, if any.
    pub(crate) fn resume_snapshot(&self, source: NodeId) -> bool {
        let request = {
            let state = self.state.lock();
            state.incoming.as_ref().map(|i| Message::SnapshotRequest {
                id: i.id,
                file: i.file,
                offset: i.offset,
            })
        };
        match request {
            Some(request) => {
                self.transport.send(self.options.id, source, request);
                true
            }
            None => false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_snapshot_chunk(
        &self,
        from: NodeId,
        id: u64,
        file: u32,
        name: &str,
        offset: u64,
        file_len: u64,
        data: &[u8],
    ) {
        let complete = {
            let mut state = self.state.lock();
            if state.role != (Role::Replica { source: from }) {
                return;
            }
            let Some(incoming) = state.incoming.as_mut() else {
                return;
            };
            if incoming.source != from
                || incoming.id != id
                || incoming.file != file
                || incoming.offset != offset
            {
                return;
            }
            let continues = offset == 0 || incoming.partial.as_deref() == Some(name);
            if !safe_name(name) || !continues {
                self.discard_incoming(&mut state);
                return;
            }
            if self.stage_chunk(incoming, name, offset, data).is_err() {
                // Re-requested from the same place on the next tick.
                return;
            }
            incoming.offset += data.len() as u64;
            incoming.partial = Some(name.to_string());
            if incoming.offset >= file_len {
                incoming.names.push(name.to_string());
                incoming.file += 1;
                incoming.offset = 0;
                incoming.partial = None;
            }
            if incoming.file >= incoming.files {
                state.incoming.take()
            } else {
                // The chunk is durable, so the record may now claim it; if
                // it cannot be stored the older one claims less: safe.
                let _ = transfer::store(self.fs.as_ref(), &self.path, incoming);
                None
            }
        };
        match complete {
            Some(incoming) => {
                if let Err(e) = self.install(&incoming) {
                    self.state.lock().event(ReplicationEvent::ApplyFailed {
                        error: format!("snapshot install: {e}"),
                    });
                }
                self.subscribe(from);
            }
            None => {
                self.resume_snapshot(from);
            }
        }
    }

    /// Writes one chunk to its staged file and makes it durable (the data,
    /// and a new file's name) before the transfer record may count it.
    /// After a restart the file may hold bytes past the recorded offset (a
    /// chunk staged but not recorded): they are cut first. A pack is
    /// staged under `objects/` of the staging directory.
    fn stage_chunk(
        &self,
        incoming: &Incoming,
        name: &str,
        offset: u64,
        data: &[u8],
    ) -> std::io::Result<()> {
        let path = incoming.staging.join(name);
        let parent = path.parent().unwrap_or(&incoming.staging);
        let mut out = if offset == 0 {
            if parent != incoming.staging {
                // Made with the staging directory; again here for a
                // transfer staged before packs travelled.
                self.fs.create_dir_all(parent)?;
                self.fs.sync_dir(&incoming.staging)?;
            }
            self.fs.create(&path)?
        } else {
            self.fs.open_append(&path)?
        };
        if out.len() < offset {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "staged file shorter than the transfer's offset",
            ));
        }
        if out.len() > offset {
            out.truncate(offset)?;
        }
        out.append(data)?;
        out.sync_data()?;
        if offset == 0 {
            self.fs.sync_dir(parent)?;
        }
        Ok(())
    }

    /// Abandons the transfer in progress, if any: its record and staged
    /// files go (best effort; what is left is discarded at the next open).
    pub(crate) fn discard_incoming(&self, state: &mut NodeState) {
        if let Some(old) = state.incoming.take() {
            transfer::remove(self.fs.as_ref(), &self.path);
            remove_files(self.fs.as_ref(), &old.staging);
        }
    }

    pub(crate) fn on_snapshot_gone(&self, from: NodeId, id: u64) {
        let gone = {
            let mut state = self.state.lock();
            if state
                .incoming
                .as_ref()
                .is_some_and(|i| i.id == id && i.source == from)
            {
                self.discard_incoming(&mut state);
                true
            } else {
                false
            }
        };
        if gone {
            self.subscribe(from);
        }
    }

    /// Replaces this node's database with the staged snapshot.
    fn install(&self, incoming: &Incoming) -> Result<(), StorageError> {
        let _apply = self.apply.lock();
        let fs = self.fs.as_ref();
        let packs = incoming.staging.join(PACKS_DIR);
        if fs.exists(&packs) {
            fs.sync_dir(&packs)
                .map_err(|e| StorageError::io("fsync_dir", &packs, e))?;
        }
        fs.sync_dir(&incoming.staging)
            .map_err(|e| StorageError::io("fsync_dir", &incoming.staging, e))?;
        if let Some(db) = self.db.write().take() {
            let _ = db.close();
        }
        // The staged epoch record travels with the files; the marker makes
        // the swap redoable after a crash (see `finish_install`).
        let epochs = EpochRecord {
            epoch: incoming.epoch,
            starts: incoming.starts.clone(),
            lineage: incoming.lineage,
        };
        epochs.store(fs, &incoming.staging)?;
        // The transfer is over once the marker exists: its record goes
        // first, so a restart never resumes an installed snapshot; so do
        // the retained frames of the history being replaced.
        transfer::remove(fs, &self.path);
        if let Some(log) = self.retained_log.lock().as_mut() {
            log.wipe();
        }
        write_marker(fs, &self.path, &incoming.staging)?;
        finish_install(fs, &self.path)?;
        self.open_database(true).map_err(|e| match e {
            super::error::ReplicationError::Storage(e) => e,
            other => StorageError::InvalidArgument(other.to_string()),
        })?;
        let mut state = self.state.lock();
        let last = state.last_sequence;
        // Frames this node kept to forward belong to its old history.
        state.retained.clear();
        state.stats.snapshots_installed += 1;
        state.event(ReplicationEvent::SnapshotInstalled { sequence: last });
        drop(state);
        self.refresh_catalogue();
        Ok(())
    }
}

/// Takes a whole-database checkpoint of `db` into the new directory
/// `dir` — the engine's files, and the object store's packs under
/// `objects/` — as `Database::checkpoint` does, but without waiting for
/// the object store's gate (`Ok(false)`: busy, nothing written; see
/// `ObjectStore::try_checkpoint`).
fn checkpoint(db: &Database, dir: &Path) -> Result<bool, StorageError> {
    db.inner
        .objects
        .try_checkpoint(dir, || db.engine().checkpoint(dir))
}

/// The marker of a snapshot install in progress: names the staging
/// directory, whose files are complete and durable.
const INSTALL_MARKER: &str = "REPLICATION.installing";

fn write_marker(fs: &dyn FileSystem, dir: &Path, staging: &Path) -> Result<(), StorageError> {
    let path = dir.join(INSTALL_MARKER);
    let temporary = dir.join(format!("{INSTALL_MARKER}.tmp"));
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| StorageError::io(op, p, e)
    };
    // The staging path, then every staged name (packs as `objects/..`):
    // after a crash midway the names tell what belongs to the new
    // database even once moved.
    let mut text = staging.to_string_lossy().into_owned();
    for name in snapshot_files(fs, staging).map_err(io("list", staging))? {
        text.push('\n');
        text.push_str(&name);
    }
    let mut file = fs.create(&temporary).map_err(io("create", &temporary))?;
    file.append(text.as_bytes())
        .map_err(io("append", &temporary))?;
    file.sync_data().map_err(io("fsync", &temporary))?;
    drop(file);
    fs.rename(&temporary, &path).map_err(io("rename", &path))?;
    fs.sync_dir(dir).map_err(io("fsync_dir", dir))
}

/// Completes (or redoes, after a crash) a snapshot install whose marker
/// is in `dir`: the files the snapshot replaces are removed (every other
/// file of `dir`, and every pack of `dir/objects/` the snapshot does not
/// have), every staged file (the epoch record and the packs included) is
/// moved in, both directories are synced, then the marker goes. Every
/// step is idempotent, so a crash anywhere leaves either the old files
/// plus the marker, or a mix the next open finishes the same way.
pub(crate) fn finish_install(fs: &dyn FileSystem, dir: &Path) -> Result<(), StorageError> {
    let marker = dir.join(INSTALL_MARKER);
    if !fs.exists(&marker) {
        return Ok(());
    }
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| StorageError::io(op, p, e)
    };
    let (staging, names) = read_marker(fs, &marker)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    remove_replaced(fs, dir, &names)?;
    for name in &names {
        let from = staging.join(name);
        if fs.exists(&from) {
            let to = dir.join(name);
            fs.rename(&from, &to).map_err(io("rename", &to))?;
        }
    }
    for synced in [staging.join(PACKS_DIR), staging, dir.join(PACKS_DIR)] {
        if fs.exists(&synced) {
            fs.sync_dir(&synced).map_err(io("fsync_dir", &synced))?;
        }
    }
    fs.sync_dir(dir).map_err(io("fsync_dir", dir))?;
    fs.remove_file(&marker).map_err(io("remove", &marker))?;
    fs.sync_dir(dir).map_err(io("fsync_dir", dir))
}

/// The staging directory and the staged names an install marker lists.
/// A name that could point outside its directory is corruption (the
/// marker is only ever written by `write_marker`).
fn read_marker(fs: &dyn FileSystem, marker: &Path) -> Result<(PathBuf, Vec<String>), StorageError> {
    let handle = fs
        .open_read_unmapped(marker)
        .map_err(|e| StorageError::io("open", marker, e))?;
    let mut bytes = vec![0; usize::try_from(handle.len()).unwrap_or(0)];
    handle
        .read_exact_at(&mut bytes, 0)
        .map_err(|e| StorageError::io("read", marker, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = text.split('\n');
    let staging = PathBuf::from(lines.next().unwrap_or_default());
    let mut names = Vec::new();
    for name in lines.filter(|n| !n.is_empty()) {
        if !plain_name(name) && !pack_name(name) {
            return Err(StorageError::corruption(
                marker,
                0,
                format!("the install marker names {name:?}, not a staged file"),
            ));
        }
        names.push(name.to_owned());
    }
    Ok((staging, names))
}

/// Removes what a snapshot install replaces in `dir`: every file directly
/// in it but the marker and the snapshot's own (subdirectories, such as
/// table backups, are not the engine's and stay), and every pack of
/// `dir/objects/` the snapshot does not have — the catalogue coming in
/// does not name them. The packs directory is made (durably) if missing,
/// for the packs moving in.
fn remove_replaced(fs: &dyn FileSystem, dir: &Path, names: &[&str]) -> Result<(), StorageError> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |e| StorageError::io(op, p, e)
    };
    for name in fs.list_dir(dir).map_err(io("list", dir))? {
        let path = dir.join(&name);
        if name != INSTALL_MARKER && !names.contains(&name.as_str()) && fs.list_dir(&path).is_err()
        {
            fs.remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    let packs = dir.join(PACKS_DIR);
    if !fs.exists(&packs) {
        fs.create_dir_all(&packs)
            .map_err(io("create_dir", &packs))?;
        fs.sync_dir(dir).map_err(io("fsync_dir", dir))?;
    }
    for pack in fs.list_dir(&packs).map_err(io("list", &packs))? {
        let name = format!("{PACKS_DIR}/{pack}");
        if pack_name(&name) && !names.contains(&name.as_str()) {
            let path = packs.join(&pack);
            fs.remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare relative name), where the
/// files beside a database live.
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if parent.as_os_str().is_empty() => Path::new("."),
        Some(parent) => parent,
        None => Path::new("/"),
    }
}

/// `<dir>.<suffix>`: beside the database directory, never inside it.
pub(crate) fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes every file in `dir` and in its packs directory, if any (best
/// effort: a leftover is harmless and overwritten or ignored later; the
/// directories themselves stay).
pub(crate) fn remove_files(fs: &dyn FileSystem, dir: &Path) {
    if let Ok(names) = fs.list_dir(dir) {
        for name in names {
            let path = dir.join(&name);
            if name == PACKS_DIR && fs.list_dir(&path).is_ok() {
                remove_files(fs, &path);
            } else {
                let _ = fs.remove_file(&path);
            }
        }
        let _ = fs.sync_dir(dir);
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
