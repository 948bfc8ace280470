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
}

impl Inode {
    /// Replaces both images with what the file holds after power loss: the
    /// durable bytes plus nothing, a prefix, or a torn prefix of the rest.
    pub(super) fn crash(&mut self, rng: &mut SimRng) {
        let image = self.crash_image(rng);
        self.durable.clone_from(&image);
        self.volatile = image;
    }

    fn crash_image(&self, rng: &mut SimRng) -> Vec<u8> {
        let common = self
            .durable
            .iter()
            .zip(&self.volatile)
            .take_while(|(a, b)| a == b)
            .count();
        if common < self.durable.len() && rng.coin() {
            // A truncation since the last sync that never reached the disk.
            return self.durable.clone();
        }
        let mut image = self.volatile.get(..common).unwrap_or_default().to_vec();
        let unsynced = self.volatile.get(common..).unwrap_or_default();
        let kept = match rng.below(4) {
            0 => 0,
            1 => unsynced.len(),
            _ => rng.below_usize(unsynced.len() + 1),
        };
        image.extend_from_slice(unsynced.get(..kept).unwrap_or_default());
        if kept > 0 && rng.below(3) == 0 {
            let torn = 1 + rng.below_usize(kept.min(TORN_CHUNK_BYTES_MAX));
            let start = image.len().saturating_sub(torn);
            let tail = image.get_mut(start..).unwrap_or_default();
            if rng.coin() {
                tail.fill(0);
            } else {
                rng.fill(tail);
            }
        }
        image
    }
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

/// A handle for appending to one inode.
#[derive(Debug)]
pub(super) struct SimWriteFile {
    pub(super) state: Arc<Mutex<SimState>>,
    pub(super) ino: u64,
    pub(super) generation: u64,
}

impl SimWriteFile {
    fn with_state<R>(&self, f: impl FnOnce(&mut SimState) -> io::Result<R>) -> io::Result<R> {
        let mut state = self.state.lock();
        if state.generation != self.generation {
            return Err(stale_handle());
        }
        f(&mut state)
    }
}

impl WriteFile for SimWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.with_state(|state| {
            if tick(&mut state.faults.write_countdown) {
                return Err(injected("write"));
            }
            state.inode_mut(self.ino)?.volatile.extend_from_slice(buf);
            state.stats.appends += 1;
            state.stats.appended_bytes += buf.len() as u64;
            Ok(())
        })
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
            let inode = state.inode_mut(self.ino)?;
            inode.durable.clone_from(&inode.volatile);
            state.stats.data_syncs += 1;
            Ok(())
        })
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.with_state(|state| {
            let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
            state.inode_mut(self.ino)?.volatile.resize(len, 0);
            Ok(())
        })
    }

    fn preallocate(&mut self, _len: u64) -> io::Result<()> {
        // Reserving space changes nothing a reader or a crash can observe.
        self.with_state(|_| Ok(()))
    }

    fn len(&self) -> u64 {
        self.with_state(|state| Ok(state.inode_mut(self.ino)?.volatile.len() as u64))
            .unwrap_or(0)
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
