//! A tiny in-memory [`FileSystem`] for crash tests of the manifest protocol.
//!
//! It tracks what a power loss may keep, as POSIX allows:
//! - file contents: bytes are durable only up to the last `sync_data`; on a
//!   crash an unsynced tail survives only as a random prefix (a torn write);
//! - names: creations, renames and removals are durable only after
//!   `sync_dir`; on a crash a random prefix of the pending ones survives, in
//!   order (as a journaling file system commits metadata), independent of
//!   whether the files' data was synced.
//!
//! `power_loss_after(n)` makes every mutating call after the first `n` fail
//! without effect, as if the machine stopped there; `crash` then yields the
//! disk a reboot would find. (The full fault-injecting disk is the engine's
//! simulator; this double covers only what the manifest needs.)

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::storage::fs::{FileSystem, ReadFile, WriteFile};
use crate::storage::version::testing::TestRng;

/// The in-memory file system; clones share one disk.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemFs {
    disk: Arc<Mutex<Disk>>,
}

#[derive(Debug, Default)]
struct Disk {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    pending: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    mutations: u64,
    power_loss_after: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, usize),
    Rename(PathBuf, PathBuf),
    Remove(PathBuf),
}

impl DirOp {
    fn parent(&self) -> Option<&Path> {
        match self {
            Self::Link(path, _) | Self::Rename(_, path) | Self::Remove(path) => path.parent(),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            Self::Link(path, inode) => {
                names.insert(path.clone(), *inode);
            }
            Self::Rename(from, to) => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
            Self::Remove(path) => {
                names.remove(path);
            }
        }
    }
}

impl Disk {
    /// Counts a mutating call; fails it if the power is already gone.
    fn mutate(&mut self) -> io::Result<()> {
        if self
            .power_loss_after
            .is_some_and(|limit| self.mutations >= limit)
        {
            return Err(io::Error::other("simulated power loss"));
        }
        self.mutations += 1;
        Ok(())
    }

    fn inode_of(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}", path.display())))
    }
}

impl MemFs {
    /// An empty disk with no directories.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// How many mutating calls have succeeded.
    pub(crate) fn mutations(&self) -> u64 {
        self.disk.lock().mutations
    }

    /// Lets only `count` more mutating calls succeed.
    pub(crate) fn power_loss_after(&self, count: u64) {
        let mut disk = self.disk.lock();
        disk.power_loss_after = Some(disk.mutations + count);
    }

    /// The disk a reboot finds after a power loss now, with the randomness
    /// of what unsynced state survived drawn from `rng`.
    pub(crate) fn crash(&self, rng: &mut TestRng) -> Self {
        let disk = self.disk.lock();
        let mut names = disk.durable_names.clone();
        let kept_ops = rng.index(disk.pending.len() + 1);
        for op in &disk.pending[..kept_ops] {
            op.apply(&mut names);
        }
        let inodes = disk
            .inodes
            .iter()
            .map(|inode| {
                let survived = if inode.data.starts_with(&inode.durable) {
                    let extra = rng.index(inode.data.len() - inode.durable.len() + 1);
                    inode.data[..inode.durable.len() + extra].to_vec()
                } else if rng.one_in(2) {
                    inode.durable.clone()
                } else {
                    inode.data[..rng.index(inode.data.len() + 1)].to_vec()
                };
                Inode {
                    data: survived.clone(),
                    durable: survived,
                }
            })
            .collect();
        Self {
            disk: Arc::new(Mutex::new(Disk {
                inodes,
                names: names.clone(),
                durable_names: names,
                pending: Vec::new(),
                dirs: disk.dirs.clone(),
                mutations: 0,
                power_loss_after: None,
            })),
        }
    }

    /// Overwrites the contents of `path` (for corruption tests).
    pub(crate) fn put(&self, path: &Path, data: Vec<u8>) {
        let mut disk = self.disk.lock();
        let inode = disk.inodes.len();
        disk.inodes.push(Inode {
            data: data.clone(),
            durable: data,
        });
        disk.names.insert(path.to_path_buf(), inode);
        disk.durable_names.insert(path.to_path_buf(), inode);
    }
}

impl FileSystem for MemFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        disk.dirs.extend(path.ancestors().map(Path::to_path_buf));
        Ok(())
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        let inode = match disk.names.get(path) {
            // O_TRUNC keeps the inode; the truncation itself is unsynced.
            Some(&inode) => {
                disk.inodes[inode].data.clear();
                inode
            }
            None => {
                disk.inodes.push(Inode::default());
                let inode = disk.inodes.len() - 1;
                disk.names.insert(path.to_path_buf(), inode);
                disk.pending.push(DirOp::Link(path.to_path_buf(), inode));
                inode
            }
        };
        Ok(Box::new(MemWriteFile {
            disk: Arc::clone(&self.disk),
            inode,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let disk = self.disk.lock();
        let inode = disk.inode_of(path)?;
        Ok(Box::new(MemWriteFile {
            disk: Arc::clone(&self.disk),
            inode,
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let disk = self.disk.lock();
        let inode = disk.inode_of(path)?;
        Ok(Arc::new(MemReadFile {
            data: disk.inodes[inode].data.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let inode = disk.inode_of(from)?;
        disk.mutate()?;
        disk.names.remove(from);
        disk.names.insert(to.to_path_buf(), inode);
        disk.pending
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.inode_of(path)?;
        disk.mutate()?;
        disk.names.remove(path);
        disk.pending.push(DirOp::Remove(path.to_path_buf()));
        Ok(())
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let inode = disk.inode_of(from)?;
        disk.mutate()?;
        disk.names.insert(to.to_path_buf(), inode);
        disk.pending.push(DirOp::Link(to.to_path_buf(), inode));
        Ok(())
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let disk = self.disk.lock();
        Ok(disk
            .names
            .keys()
            .filter(|name| name.parent() == Some(path))
            .filter_map(|name| Some(name.file_name()?.to_str()?.to_owned()))
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        let disk = self.disk.lock();
        disk.names.contains_key(path) || disk.dirs.contains(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        let pending = std::mem::take(&mut disk.pending);
        for op in pending {
            if op.parent() == Some(path) {
                op.apply(&mut disk.durable_names);
            } else {
                disk.pending.push(op);
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
struct MemWriteFile {
    disk: Arc<Mutex<Disk>>,
    inode: usize,
}

impl WriteFile for MemWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        disk.inodes[self.inode].data.extend_from_slice(buf);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        crate::storage::fs::write_into_vec(&mut disk.inodes[self.inode].data, offset, buf)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        let inode = &mut disk.inodes[self.inode];
        inode.durable = inode.data.clone();
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.mutate()?;
        disk.inodes[self.inode]
            .data
            .truncate(usize::try_from(len).unwrap());
        Ok(())
    }

    fn preallocate(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }

    fn len(&self) -> u64 {
        self.disk.lock().inodes[self.inode].data.len() as u64
    }
}

#[derive(Debug)]
struct MemReadFile {
    data: Vec<u8>,
}

impl ReadFile for MemReadFile {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap();
        let bytes = self
            .data
            .get(start..start + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn as_slice(&self) -> Option<&[u8]> {
        // Exercise the copying read path of `manifest::read`.
        None
    }
}
