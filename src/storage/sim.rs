//! A simulated, fault-injecting disk for crash tests.
//!
//! [`SimFileSystem`] implements the [`FileSystem`] contract in memory and
//! keeps, like the SQLite crash VFS and redb's crash-consistency backend, two
//! images of everything:
//! - per file (inode), the *durable* bytes as of the last successful
//!   `sync_data` and the *volatile* bytes every read sees;
//! - per namespace, the *durable* directory entries and the list of pending
//!   (unsynced) creations, renames, removals and hard links. An operation
//!   becomes durable when `sync_dir` is called on a directory it touches.
//!
//! [`SimFileSystem::crash`] simulates power loss: each file keeps its durable
//! bytes plus, chosen by a seeded RNG, nothing, a random prefix, or a torn
//! prefix (last chunk zeros or garbage) of its unsynced changes — appends,
//! overwrites of preallocated zeros, size changes; each pending
//! directory operation is independently kept or lost, which also models
//! reordering. Every handle opened before the crash fails afterwards, so a
//! test cannot accidentally keep using pre-crash state.
//!
//! Faults: fail the Nth next append, `sync_data` or `sync_dir`, or fail every
//! sync from now on. A failed `sync_data` leaves the data volatile (as Linux
//! does after marking the pages clean), a failed append writes nothing.
//!
//! This module must never be used by the engine outside tests; it is public
//! (hidden) so integration tests and fuzz targets can drive it.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;

use super::fs::{FileSystem, ReadFile, WriteFile};

mod file;
mod namespace;
mod rng;

use file::{Inode, SimReadFile, SimWriteFile, injected, tick};
use namespace::{Namespace, Node, not_found};
pub use rng::SimRng;

/// Counters of the operations the simulated disk has served, so tests can
/// check for example that group commit shared one fsync among many writers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Successful appends.
    pub appends: u64,
    /// Bytes appended successfully.
    pub appended_bytes: u64,
    /// Successful `sync_data` calls.
    pub data_syncs: u64,
    /// Successful `sync_dir` calls.
    pub dir_syncs: u64,
    /// Simulated power losses.
    pub crashes: u64,
}

/// An in-memory, fault-injecting file system for crash tests. Cloning it
/// gives another handle to the same disk, so a test keeps the disk across
/// an engine's close and reopen.
#[derive(Debug, Clone, Default)]
pub struct SimFileSystem {
    state: Arc<Mutex<SimState>>,
    /// The crash generation a [`SimFileSystem::session`] handle belongs to:
    /// once the disk crashes, every operation through it fails, as the
    /// processes of a machine that lost power never run again.
    session: Option<u64>,
}

#[derive(Debug, Default)]
struct Faults {
    write_countdown: Option<u64>,
    data_sync_countdown: Option<u64>,
    dir_sync_countdown: Option<u64>,
    fail_all_syncs: bool,
}

#[derive(Debug, Default)]
struct SimState {
    inodes: HashMap<u64, Inode>,
    last_inode: u64,
    names: Namespace,
    /// Incremented by every crash; handles remember the value they were
    /// opened under and fail once it changes.
    generation: u64,
    faults: Faults,
    stats: SimStats,
    /// How long each `sync_data` takes (zero: instant).
    sync_latency: std::time::Duration,
}

impl SimState {
    fn inode_mut(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other(format!("inode {ino} vanished")))
    }

    fn file(&self, path: &Path) -> io::Result<u64> {
        match self.names.get(path)? {
            Some(Node::File(ino)) => Ok(ino),
            Some(Node::Dir(_)) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: is a directory", path.display()),
            )),
            None => Err(not_found(path)),
        }
    }

    fn crash(&mut self, rng: &mut SimRng) {
        let live = self.names.crash(rng);
        self.inodes.retain(|ino, _| live.contains(ino));
        // Visit inodes in a fixed order so a seed reproduces the same image.
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                inode.crash(rng);
            }
        }
        self.generation += 1;
        self.faults = Faults::default();
        self.stats.crashes += 1;
    }
}

impl SimFileSystem {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// Simulates power loss, choosing what survives with an RNG seeded by
    /// `seed` (the same history and seed always give the same image).
    /// Clears every injected fault, so the "rebooted" disk works again.
    pub fn crash(&self, seed: u64) {
        self.state.lock().crash(&mut SimRng::new(seed));
    }

    /// A handle to this disk for one "boot": it works until the next
    /// [`Self::crash`], then every operation through it fails. Give it to an
    /// engine whose background thread may still be running when the test
    /// crashes the disk, so the dead engine cannot write to the rebooted one.
    pub fn session(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
            session: Some(self.state.lock().generation),
        }
    }

    /// Locks the state, failing if this is a session handle from before a
    /// crash.
    fn lock(&self) -> io::Result<parking_lot::MutexGuard<'_, SimState>> {
        let state = self.state.lock();
        match self.session {
            Some(generation) if generation != state.generation => Err(io::Error::other(
                "the simulated disk crashed since this handle was made",
            )),
            _ => Ok(state),
        }
    }

    /// Makes every `sync_data` take `latency`, like a real disk's flush, so
    /// tests can check that concurrent writers share syncs.
    pub fn set_sync_latency(&self, latency: std::time::Duration) {
        self.state.lock().sync_latency = latency;
    }

    /// Makes the `n`-th next append fail (`n = 1`: the very next one).
    pub fn fail_nth_write(&self, n: u64) {
        self.state.lock().faults.write_countdown = Some(n.max(1));
    }

    /// Makes the `n`-th next `sync_data` fail (`n = 1`: the very next one).
    pub fn fail_nth_data_sync(&self, n: u64) {
        self.state.lock().faults.data_sync_countdown = Some(n.max(1));
    }

    /// Makes the `n`-th next `sync_dir` fail (`n = 1`: the very next one).
    pub fn fail_nth_dir_sync(&self, n: u64) {
        self.state.lock().faults.dir_sync_countdown = Some(n.max(1));
    }

    /// Makes every `sync_data` and `sync_dir` fail until the next crash or
    /// [`Self::clear_faults`].
    pub fn fail_all_syncs(&self) {
        self.state.lock().faults.fail_all_syncs = true;
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        self.state.lock().faults = Faults::default();
    }

    /// The operation counters so far.
    pub fn stats(&self) -> SimStats {
        self.state.lock().stats
    }

    /// The current (volatile) contents of the file at `path`.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut state = self.state.lock();
        let ino = state.file(path)?;
        Ok(state.inode_mut(ino)?.volatile.clone())
    }

    /// How many bytes of the file at `path` would survive a crash for sure.
    pub fn durable_len(&self, path: &Path) -> io::Result<u64> {
        let mut state = self.state.lock();
        let ino = state.file(path)?;
        Ok(state.inode_mut(ino)?.durable.len() as u64)
    }

    /// Overwrites bytes of the file at `path` in both images, as bit rot
    /// or a misdirected write would. Bytes past the end are not added.
    pub fn corrupt(&self, path: &Path, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock();
        let ino = state.file(path)?;
        let inode = state.inode_mut(ino)?;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for image in [&mut inode.durable, &mut inode.volatile] {
            let end = start.saturating_add(bytes.len()).min(image.len());
            if let (Some(target), Some(source)) = (
                image.get_mut(start..end),
                bytes.get(..end.saturating_sub(start)),
            ) {
                target.copy_from_slice(source);
            }
        }
        Ok(())
    }

    /// Creates (or replaces) the file at `path` with `contents`, durably:
    /// the data is synced and so is the directory entry.
    pub fn write_durable(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        let mut file = self.create(path)?;
        file.append(contents)?;
        file.sync_data()?;
        self.sync_dir(path.parent().unwrap_or(Path::new("/")))
    }

    /// A handle on `ino` whose appends start at `position`, or at the
    /// file's end.
    fn write_handle(
        &self,
        state: &mut SimState,
        ino: u64,
        position: Option<u64>,
    ) -> io::Result<Box<dyn WriteFile>> {
        let position = match position {
            Some(position) => position,
            None => state.inode_mut(ino)?.volatile.len() as u64,
        };
        Ok(Box::new(SimWriteFile {
            state: Arc::clone(&self.state),
            ino,
            generation: state.generation,
            position,
        }))
    }
}

impl FileSystem for SimFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        let mut prefix = std::path::PathBuf::new();
        for component in path.components() {
            prefix.push(component);
            match state.names.get(&prefix)? {
                Some(Node::Dir(_)) => {}
                Some(Node::File(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{}: a file is in the way", prefix.display()),
                    ));
                }
                None => {
                    let at = state.names.parent_and_name(&prefix)?;
                    state.names.insert_dir(at);
                }
            }
        }
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut state = self.lock()?;
        let at = state.names.parent_and_name(path)?;
        let ino = match state.names.entry(&at) {
            // Like O_TRUNC: the same inode, emptied (a data change, not a
            // namespace change).
            Some(Node::File(ino)) => {
                let inode = state.inode_mut(ino)?;
                let old = inode.volatile.len();
                inode.volatile.clear();
                inode.changed(0, old);
                ino
            }
            Some(Node::Dir(_)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: is a directory", path.display()),
                ));
            }
            None => {
                state.last_inode += 1;
                let ino = state.last_inode;
                state.inodes.insert(ino, Inode::default());
                state.names.insert(at, Node::File(ino));
                ino
            }
        };
        self.write_handle(&mut state, ino, None)
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut state = self.lock()?;
        let ino = state.file(path)?;
        self.write_handle(&mut state, ino, None)
    }

    fn open_overwrite(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut state = self.lock()?;
        let ino = state.file(path)?;
        // The cursor at 0: appends overwrite the file's bytes in place.
        self.write_handle(&mut state, ino, Some(0))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let mut state = self.lock()?;
        let ino = state.file(path)?;
        let bytes = state.inode_mut(ino)?.volatile.clone();
        Ok(Arc::new(SimReadFile {
            state: Arc::clone(&self.state),
            bytes,
            generation: state.generation,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        let source_key = state.names.parent_and_name(from)?;
        let source = state
            .names
            .entry(&source_key)
            .ok_or_else(|| not_found(from))?;
        let target_key = state.names.parent_and_name(to)?;
        if let Node::Dir(dir) = source {
            // The target's parent chain must not pass through the source.
            let mut ancestor = Some(to);
            while let Some(path) = ancestor {
                if state.names.get(path)? == Some(Node::Dir(dir)) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "cannot move a directory into itself",
                    ));
                }
                ancestor = path.parent();
            }
        }
        match (source, state.names.entry(&target_key)) {
            (_, None) | (Node::File(_), Some(Node::File(_))) => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{}: cannot be replaced by a rename", to.display()),
                ));
            }
        }
        state.names.rename(source_key, target_key);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        state.file(path)?;
        let at = state.names.parent_and_name(path)?;
        state.names.remove(at);
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        let ino = state.file(from)?;
        let at = state.names.parent_and_name(to)?;
        if state.names.entry(&at).is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: already exists", to.display()),
            ));
        }
        state.names.insert(at, Node::File(ino));
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let state = self.lock()?;
        let dir = state.names.dir(path)?;
        Ok(state.names.list(dir))
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock()
            .is_ok_and(|state| matches!(state.names.get(path), Ok(Some(_))))
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock()?;
        let dir = state.names.dir(path)?;
        if state.faults.fail_all_syncs || tick(&mut state.faults.dir_sync_countdown) {
            return Err(injected("sync_dir"));
        }
        state.names.sync(dir);
        state.stats.dir_syncs += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
