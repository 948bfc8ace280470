//! Snapshots for followers too far behind the retained log (or diverged):
//! the source takes a checkpoint (hard-linked segments, manifest, log
//! tail) and serves it in chunks the follower pulls one at a time by
//! `(file, offset)`, so a transfer resumes where it stopped after lost
//! messages or a partition. The follower stages the files beside its
//! directory, then closes its database, replaces its files, records the
//! source's epoch history, reopens read-only and subscribes from the
//! snapshot's last sequence number.

use std::path::{Path, PathBuf};

use super::epoch::{EPOCH_FILE_NAME, EpochRecord};
use super::frame::{Message, NodeId};
use super::node::{NodeInner, ReplicationEvent, Role};
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
}

/// A snapshot a follower receives.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    /// The source serving it: ids are only unique per source.
    source: NodeId,
    id: u64,
    epoch: u64,
    starts: Vec<(u64, u64)>,
    files: u32,
    staging: PathBuf,
    /// The next piece wanted.
    file: u32,
    offset: u64,
    names: Vec<String>,
}

impl NodeInner {
    /// Takes a checkpoint for `follower`; returns its id and file count.
    pub(crate) fn start_snapshot(&self, follower: NodeId) -> Option<(u64, usize)> {
        let db = self.db.read().clone()?;
        let (id, last_sequence) = {
            let mut state = self.state.lock();
            // Ids stay unique across restarts of the source (its counter
            // restarts, the transport's clock does not go back), so a
            // follower never resumes one snapshot with another's pieces.
            let id = state.next_snapshot_id.max(self.transport.now_micros());
            state.next_snapshot_id = id + 1;
            (id, state.last_sequence)
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
            db.engine().checkpoint(&dir)
        };
        let dir = match taken {
            Ok(()) => dir,
            Err(_) => {
                // Reuse of an id's directory after a restart: take a fresh
                // name instead.
                let fresh = sibling(
                    &self.path,
                    &format!(
                        "snapshot-{}-{id}-{}",
                        self.options.id,
                        self.transport.now_micros()
                    ),
                );
                db.engine().checkpoint(&fresh).ok()?;
                fresh
            }
        };
        let files = self.fs.list_dir(&dir).ok()?;
        let mut state = self.state.lock();
        state.stats.snapshots_served += 1;
        state.event(ReplicationEvent::SnapshotStarted { follower, id });
        let count = files.len();
        state.served.insert(
            id,
            Served {
                dir,
                files,
                last_sequence,
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
                // Already fetching it: resume below.
            } else {
                let staging = sibling(&self.path, &format!("incoming-{id}"));
                if self.fs.exists(&staging) {
                    remove_files(self.fs.as_ref(), &staging);
                }
                // The staging directory's own name must be durable before
                // an install marker can point at it.
                let parent = staging.parent().unwrap_or(Path::new("/"));
                if self.fs.create_dir_all(&staging).is_err() || self.fs.sync_dir(parent).is_err() {
                    return;
                }
                state.incoming = Some(Incoming {
                    source: from,
                    id,
                    epoch,
                    starts,
                    files,
                    staging,
                    file: 0,
                    offset: 0,
                    names: Vec::new(),
                });
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
            if name.contains('/') || name.contains("..") || name.starts_with(EPOCH_FILE_NAME) {
                state.incoming = None;
                return;
            }
            let path = incoming.staging.join(name);
            let written = (|| -> std::io::Result<()> {
                let mut out = if offset == 0 {
                    self.fs.create(&path)?
                } else {
                    self.fs.open_append(&path)?
                };
                out.append(data)?;
                if offset + data.len() as u64 >= file_len {
                    out.sync_data()?;
                }
                Ok(())
            })();
            if written.is_err() {
                // Re-requested from the same place on the next tick.
                return;
            }
            incoming.offset += data.len() as u64;
            if incoming.offset >= file_len {
                incoming.names.push(name.to_string());
                incoming.file += 1;
                incoming.offset = 0;
            }
            if incoming.file >= incoming.files {
                state.incoming.take()
            } else {
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

    pub(crate) fn on_snapshot_gone(&self, from: NodeId, id: u64) {
        let gone = {
            let mut state = self.state.lock();
            if state
                .incoming
                .as_ref()
                .is_some_and(|i| i.id == id && i.source == from)
            {
                state.incoming = None;
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
        };
        epochs.store(fs, &incoming.staging)?;
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
    // The staging path, then every staged name: after a crash midway the
    // names tell what belongs to the new database even once moved.
    let mut text = staging.to_string_lossy().into_owned();
    for name in fs.list_dir(staging).map_err(io("list", staging))? {
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
/// is in `dir`: every other file of `dir` is removed, every staged file
/// (the epoch record included) is moved in, then the marker goes. Every
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
    let handle = fs
        .open_read_unmapped(&marker)
        .map_err(io("open", &marker))?;
    let mut bytes = vec![0; usize::try_from(handle.len()).unwrap_or(0)];
    handle
        .read_exact_at(&mut bytes, 0)
        .map_err(io("read", &marker))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = text.split('\n');
    let staging = PathBuf::from(lines.next().unwrap_or_default());
    let names: Vec<&str> = lines.filter(|n| !n.is_empty()).collect();
    for name in fs.list_dir(dir).map_err(io("list", dir))? {
        let path = dir.join(&name);
        // Subdirectories (the object store's packs) are not the engine's
        // and stay.
        if name != INSTALL_MARKER && !names.contains(&name.as_str()) && fs.list_dir(&path).is_err()
        {
            fs.remove_file(&path)
                .map_err(io("remove", &dir.join(&name)))?;
        }
    }
    for name in &names {
        let from = staging.join(name);
        if fs.exists(&from) {
            let to = dir.join(name);
            fs.rename(&from, &to).map_err(io("rename", &to))?;
        }
    }
    if fs.exists(&staging) {
        fs.sync_dir(&staging).map_err(io("fsync_dir", &staging))?;
    }
    fs.sync_dir(dir).map_err(io("fsync_dir", dir))?;
    fs.remove_file(&marker).map_err(io("remove", &marker))?;
    fs.sync_dir(dir).map_err(io("fsync_dir", dir))
}

/// `<dir>.<suffix>`: beside the database directory, never inside it.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_os_string();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes every file in `dir` (best effort: a leftover is harmless and
/// overwritten or ignored later).
fn remove_files(fs: &dyn FileSystem, dir: &Path) {
    if let Ok(names) = fs.list_dir(dir) {
        for name in names {
            let _ = fs.remove_file(&dir.join(name));
        }
        let _ = fs.sync_dir(dir);
    }
}
