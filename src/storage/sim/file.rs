//! The simulator's file contents and file handles.

use std::io;
use std::sync::Arc;

use parking_lot::Mutex;

use super::SimState;
use super::rng::SimRng;
use crate::storage::fs::{ReadFile, WriteFile};

/// The longest run of bytes a torn write damages at the end of a kept
/// prefix: one 4 KiB page, the unit a disk writes atomically at best.
pub(super) const TORN_CHUNK_BYTES_MAX: usize = 4096;

/// One file's bytes: what survives a crash for sure, and what reads see.
#[derive(Debug, Default)]
pub(super) struct Inode {
    pub(super) durable: Vec<u8>,
    pub(super) volatile: Vec<u8>,
    /// The span of `volatile` changed since the last sync (every change
    /// goes through [`Inode::changed`]), so a sync of a large preallocated
    /// file copies what was written, not the whole image.
    dirty: Option<std::ops::Range<usize>>,
}

impl Inode {
    /// Records that bytes `start..end` of the volatile image changed (for a
    /// size change: between the old and the new size).
    pub(super) fn changed(&mut self, start: usize, end: usize) {
        let (start, end) = (start.min(end), start.max(end));
        self.dirty = Some(match self.dirty.take() {
            Some(dirty) => dirty.start.min(start)..dirty.end.max(end),
            None => start..end,
        });
    }

    /// Makes the volatile image durable.
    pub(super) fn sync(&mut self) {
        let Some(dirty) = self.dirty.take() else {
            return;
        };
        let len = self.volatile.len();
        let kept = self.durable.len().min(len);
        self.durable.truncate(kept);
        let (start, end) = (dirty.start.min(kept), dirty.end.min(kept));
        if let (Some(target), Some(source)) = (
            self.durable.get_mut(start..end),
            self.volatile.get(start..end),
        ) {
            target.copy_from_slice(source);
        }
        self.durable
            .extend_from_slice(self.volatile.get(kept..).unwrap_or_default());
    }

    /// Replaces both images with what the file holds after power loss: the
    /// durable bytes plus nothing, a prefix, or a torn prefix of the rest.
    pub(super) fn crash(&mut self, rng: &mut SimRng) {
        let image = self.crash_image(rng);
        self.durable.clone_from(&image);
        self.volatile = image;
        self.dirty = None;
    }

    /// The unsynced changes are the bytes from the first to the last one
    /// where the two images differ (to the end, if the size changed):
    /// appends, overwrites of preallocated space, truncations. Power loss
    /// keeps a prefix of them (files are written front to back), possibly
    /// with its last chunk torn; past that prefix the disk still holds the
    /// durable bytes, so an unsynced overwrite never shortens the file.
    fn crash_image(&self, rng: &mut SimRng) -> Vec<u8> {
        let (durable, volatile) = (&self.durable, &self.volatile);
        let common = durable
            .iter()
            .zip(volatile)
            .take_while(|(a, b)| a == b)
            .count();
        if common == durable.len() && common == volatile.len() {
            return durable.clone();
        }
        if common < durable.len() && rng.coin() {
            // Nothing since the last sync reached the disk: neither a
            // truncation nor an overwrite.
            return durable.clone();
        }
        let end = if volatile.len() == durable.len() {
            let same_tail = durable
                .iter()
                .rev()
                .zip(volatile.iter().rev())
                .take_while(|(a, b)| a == b)
                .count();
            volatile.len() - same_tail
        } else {
            volatile.len()
        };
        let unsynced = end.saturating_sub(common);
        let kept = match rng.below(4) {
            0 => 0,
            1 => unsynced,
            _ => rng.below_usize(unsynced + 1),
        };
        let mut image = if kept == unsynced {
            // Every change landed, the new size included.
            volatile.clone()
        } else {
            let mut image = volatile.get(..common + kept).unwrap_or_default().to_vec();
            image.extend_from_slice(durable.get(image.len()..).unwrap_or_default());
            image
        };
        if kept > 0 && rng.below(3) == 0 {
            let torn = 1 + rng.below_usize(kept.min(TORN_CHUNK_BYTES_MAX));
            let kept_end = common + kept;
            let tail = image
                .get_mut(kept_end.saturating_sub(torn)..kept_end)
                .unwrap_or_default();
            if rng.coin() {
                tail.fill(0);
            } else {
                rng.fill(tail);
            }
        }
        image
    }
}

fn too_large() -> io::Error {
    io::Error::other("file length too large for the simulated disk")
}

fn stale_handle() -> io::Error {
    io::Error::other("handle opened before a simulated crash")
}

pub(super) fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

/// Whether the countdown reaches zero now (the operation must fail).
pub(super) fn tick(countdown: &mut Option<u64>) -> bool {
    match countdown {
        Some(n) if *n <= 1 => {
            *countdown = None;
            true
        }
        Some(n) => {
            *n -= 1;
            false
        }
        None => false,
    }
}

/// A handle for appending to one inode at its own logical length.
#[derive(Debug)]
pub(super) struct SimWriteFile {
    pub(super) state: Arc<Mutex<SimState>>,
    pub(super) ino: u64,
    pub(super) generation: u64,
    /// Where the next append writes: the file's size when opened, then
    /// moved by appends and truncations (not by preallocation).
    pub(super) position: u64,
}

impl SimWriteFile {
    fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> io::Result<R>) -> io::Result<R> {
        let mut state = self.state.lock();
        if state.generation != self.generation {
            return Err(stale_handle());
        }
        f(&mut state)
    }

    /// Writes `buf` at `offset` of the volatile image (a write fault may
    /// fire); returns where it ended.
    fn write_bytes(&self, offset: u64, buf: &[u8]) -> io::Result<usize> {
        let start = usize::try_from(offset).map_err(|_| too_large())?;
        let end = start.checked_add(buf.len()).ok_or_else(too_large)?;
        self.with_state(|state| {
            if tick(&mut state.faults.write_countdown) {
                return Err(injected("write"));
            }
            let inode = state.inode_mut(self.ino)?;
            if inode.volatile.len() < end {
                inode.volatile.resize(end, 0);
            }
            if let Some(target) = inode.volatile.get_mut(start..end) {
                target.copy_from_slice(buf);
            }
            inode.changed(start, end);
            state.stats.appends += 1;
            state.stats.appended_bytes += buf.len() as u64;
            Ok(())
        })?;
        Ok(end)
    }
}

impl WriteFile for SimWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let end = self.write_bytes(self.position, buf)?;
        self.position = end as u64;
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.write_bytes(offset, buf).map(|_| ())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let latency = self.state.lock().sync_latency;
        if !latency.is_zero() {
            // A disk's flush takes time; the lock is not held meanwhile.
            std::thread::sleep(latency);
        }
        self.with_state(|state| {
            if state.faults.fail_all_syncs || tick(&mut state.faults.data_sync_countdown) {
                return Err(injected("sync_data"));
            }
            state.inode_mut(self.ino)?.sync();
            state.stats.data_syncs += 1;
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let size = usize::try_from(len).map_err(|_| too_large())?;
        self.with_state(|state| {
            let inode = state.inode_mut(self.ino)?;
            let old = inode.volatile.len();
            inode.volatile.resize(size, 0);
            inode.changed(old, size);
            Ok(())
        })?;
        self.position = len;
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        let size = usize::try_from(len).map_err(|_| too_large())?;
        self.with_state(|state| {
            // Zeros up to `len`, like a sparse extension; the new size is
            // volatile until the next `sync_data`, as on a real disk.
            let inode = state.inode_mut(self.ino)?;
            let old = inode.volatile.len();
            if old < size {
                inode.volatile.resize(size, 0);
                inode.changed(old, size);
            }
            Ok(())
        })
    }

    fn len(&self) -> u64 {
        self.position
    }
}

/// A read handle: a snapshot of the file at open time (the engine only
/// reads files nobody writes while they are open).
#[derive(Debug)]
pub(super) struct SimReadFile {
    pub(super) state: Arc<Mutex<SimState>>,
    pub(super) bytes: Vec<u8>,
    pub(super) generation: u64,
}

impl SimReadFile {
    fn is_stale(&self) -> bool {
        self.state.lock().generation != self.generation
    }
}

impl ReadFile for SimReadFile {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.is_stale() {
            return Err(stale_handle());
        }
        let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end");
        let start = usize::try_from(offset).map_err(|_| eof())?;
        let end = start.checked_add(buf.len()).ok_or_else(eof)?;
        buf.copy_from_slice(self.bytes.get(start..end).ok_or_else(eof)?);
        Ok(())
    }

    fn as_slice(&self) -> Option<&[u8]> {
        if self.is_stale() {
            None
        } else {
            Some(&self.bytes)
        }
    }
}
