//! The retained log on disk: the frames a source keeps for followers that
//! fall behind, mirrored to a few segment files beside the database
//! (`<dir>.retained-<n>`) so a restarted source still serves catch-up from
//! its log instead of sending every follower a snapshot.
//!
//! Bounded: a segment holds at most `retained_frames` frames; when one is
//! full the next begins and all but the newest two are deleted, so the
//! files hold between one and two windows of frames. Appends are not
//! fsynced on the commit path (the engine's log is what is durable): the
//! segments are fsynced on a clean close and on every `tick`, so what
//! survives a power loss is at worst shorter than the engine's log.
//!
//! Never trusted blindly at open: records are checksummed (a torn tail
//! ends a segment), only a contiguous run of intact frames that ends
//! exactly at the engine's last sequence number is kept (frames past it
//! were never durable in the engine and are cut from the files; a run that
//! stops short would leave a gap no follower could cross, so then nothing
//! is kept), and new frames go to a fresh segment. A snapshot install
//! wipes the files before it replaces the database, so frames of an old
//! history are never served.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use xxhash_rust::xxh3::xxh3_64;

use super::frame::{AckLevel, Frame};
use super::snapshot::{parent_dir, sibling};
use crate::storage::fs::{FileSystem, WriteFile};

/// The segments' name prefix: `<dir>.retained-<n>`.
const SEGMENT_PREFIX: &str = "retained-";
/// Segments kept: the one appended to and the full one before it.
const SEGMENTS_KEPT: usize = 2;
/// A record's header: body length u32, xxh3 of the body u64.
const HEADER_BYTES: usize = 12;
/// The fixed part of a record's body: epoch, sequence, last sequence,
/// checksum (u64 each) and the ack level (u8).
const FIXED_BYTES: usize = 33;

/// The on-disk mirror of a node's retained frames.
pub(crate) struct RetainedLog {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    frames_per_segment: usize,
    /// `(number, frames in it)`, oldest first.
    segments: VecDeque<(u64, usize)>,
    /// The newest segment, open for appending (`None`: the next append
    /// opens it again or starts a new one).
    writer: Option<Box<dyn WriteFile>>,
    /// Whether the newest segment ends on a whole record (false after a
    /// failed write: the next append starts a new segment).
    newest_clean: bool,
    /// Appended since the last sync.
    dirty: bool,
    /// A segment was created since the last sync: its name needs the
    /// directory's fsync.
    created: bool,
}

impl std::fmt::Debug for RetainedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetainedLog")
            .field("dir", &self.dir)
            .field("segments", &self.segments)
            .finish_non_exhaustive()
    }
}

impl RetainedLog {
    /// Reads the retained log of the database in `dir` whose engine ends at
    /// `last_sequence`, cutting what lies past it; returns the log (the next
    /// append starts a new segment) and the newest `limit` frames of the
    /// run that ends at `last_sequence` (empty if there is none).
    pub(crate) fn open(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        last_sequence: u64,
        limit: usize,
    ) -> (Self, Vec<Frame>) {
        let mut segments = VecDeque::new();
        let mut frames: Vec<Frame> = Vec::new();
        for number in segment_numbers(fs.as_ref(), dir) {
            let path = segment_path(dir, number);
            let (read, valid_len) = read_segment(fs.as_ref(), &path, last_sequence);
            let cut_here = fs
                .open_read_unmapped(&path)
                .is_ok_and(|f| f.len() > valid_len);
            if cut_here {
                // Frames past the engine's end (or a torn tail): cut, so a
                // later open cannot read them back as another history's.
                let cut = fs.open_append(&path).and_then(|mut file| {
                    file.truncate(valid_len)?;
                    file.sync_data()
                });
                if cut.is_err() {
                    let _ = fs.remove_file(&path);
                    frames.clear();
                    continue;
                }
            }
            segments.push_back((number, read.len()));
            frames.extend(read);
        }
        let kept = contiguous_tail(frames, last_sequence, limit);
        let log = Self {
            fs,
            dir: dir.to_path_buf(),
            frames_per_segment: limit.max(1),
            segments,
            writer: None,
            newest_clean: true,
            dirty: false,
            created: false,
        };
        (log, kept)
    }

    /// Appends `frames` (best effort: after a failed write the segment is
    /// abandoned and the next append starts another; at the next open the
    /// gap makes the older frames unusable, which costs followers a
    /// snapshot, never a wrong frame).
    pub(crate) fn append(&mut self, frames: &[Frame]) {
        for frame in frames {
            if self.newest_full() || !self.newest_clean {
                self.roll();
            } else if self.writer.is_none() {
                self.reopen_newest();
            }
            let Some(writer) = self.writer.as_mut() else {
                return;
            };
            if writer.append(&encode(frame)).is_err() {
                self.writer = None;
                self.newest_clean = false;
                return;
            }
            self.dirty = true;
            if let Some(newest) = self.segments.back_mut() {
                newest.1 += 1;
            }
        }
    }

    /// Makes the appended frames durable (on close and every tick).
    pub(crate) fn sync(&mut self) {
        if self.created && self.fs.sync_dir(parent_dir(&self.dir)).is_ok() {
            self.created = false;
        }
        if self.dirty
            && let Some(writer) = self.writer.as_mut()
        {
            if writer.sync_data().is_err() {
                self.writer = None;
                self.newest_clean = false;
            }
            self.dirty = false;
        }
    }

    /// Removes every segment (before a snapshot replaces the database).
    pub(crate) fn wipe(&mut self) {
        self.writer = None;
        for (number, _) in self.segments.drain(..) {
            let _ = self.fs.remove_file(&segment_path(&self.dir, number));
        }
        for number in segment_numbers(self.fs.as_ref(), &self.dir) {
            let _ = self.fs.remove_file(&segment_path(&self.dir, number));
        }
        let _ = self.fs.sync_dir(parent_dir(&self.dir));
    }

    fn newest_full(&self) -> bool {
        self.segments
            .back()
            .is_none_or(|&(_, count)| count >= self.frames_per_segment)
    }

    /// Appends to the newest segment again (after open: it was cut to
    /// whole records there).
    fn reopen_newest(&mut self) {
        let Some(&(number, _)) = self.segments.back() else {
            return self.roll();
        };
        match self.fs.open_append(&segment_path(&self.dir, number)) {
            Ok(writer) => self.writer = Some(writer),
            Err(_) => self.roll(),
        }
    }

    /// Starts the next segment and drops the ones beyond the bound.
    fn roll(&mut self) {
        self.sync();
        let number = self.segments.back().map_or(1, |&(n, _)| n + 1);
        match self.fs.create(&segment_path(&self.dir, number)) {
            Ok(writer) => {
                self.writer = Some(writer);
                self.newest_clean = true;
                self.created = true;
                self.segments.push_back((number, 0));
            }
            Err(_) => self.writer = None,
        }
        while self.segments.len() > SEGMENTS_KEPT {
            if let Some((old, _)) = self.segments.pop_front() {
                let _ = self.fs.remove_file(&segment_path(&self.dir, old));
            }
        }
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    sibling(dir, &format!("{SEGMENT_PREFIX}{number}"))
}

/// The numbers of the segments beside `dir`, ascending.
fn segment_numbers(fs: &dyn FileSystem, dir: &Path) -> Vec<u64> {
    let Some(own) = dir.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let prefix = format!("{own}.{SEGMENT_PREFIX}");
    let mut numbers: Vec<u64> = fs
        .list_dir(parent_dir(dir))
        .unwrap_or_default()
        .iter()
        .filter_map(|name| name.strip_prefix(&prefix)?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

/// The intact frames of a segment up to `last_sequence`, and the length
/// of the bytes that hold them.
fn read_segment(fs: &dyn FileSystem, path: &Path, last_sequence: u64) -> (Vec<Frame>, u64) {
    let Ok(file) = fs.open_read_unmapped(path) else {
        return (Vec::new(), 0);
    };
    let Ok(len) = usize::try_from(file.len()) else {
        return (Vec::new(), 0);
    };
    let mut bytes = vec![0; len];
    if file.read_exact_at(&mut bytes, 0).is_err() {
        return (Vec::new(), 0);
    }
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some((frame, used)) = decode(&bytes[at..]) {
        if frame.last_sequence > last_sequence {
            break;
        }
        frames.push(frame);
        at += used;
    }
    (frames, at as u64)
}

/// The newest `limit` frames of the run, without gaps, that ends exactly
/// at `last_sequence`.
fn contiguous_tail(frames: Vec<Frame>, last_sequence: u64, limit: usize) -> Vec<Frame> {
    let mut kept: VecDeque<Frame> = VecDeque::new();
    for frame in frames.into_iter().rev() {
        let expected_end = kept.front().map_or(last_sequence, |next| next.sequence - 1);
        if frame.last_sequence != expected_end || kept.len() == limit {
            break;
        }
        kept.push_front(frame);
    }
    kept.into()
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut body = Vec::with_capacity(FIXED_BYTES + frame.payload.len());
    for value in [
        frame.epoch,
        frame.sequence,
        frame.last_sequence,
        frame.checksum,
    ] {
        body.extend_from_slice(&value.to_be_bytes());
    }
    body.push(match frame.ack {
        None => 0,
        Some(AckLevel::Received) => 1,
        Some(AckLevel::Written) => 2,
        Some(AckLevel::Durable) => 3,
        Some(AckLevel::Applied) => 4,
    });
    body.extend_from_slice(&frame.payload);
    let mut record = Vec::with_capacity(HEADER_BYTES + body.len());
    record.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
    record.extend_from_slice(&xxh3_64(&body).to_be_bytes());
    record.extend_from_slice(&body);
    record
}

/// One record from the front of `bytes`: the frame and the bytes used.
fn decode(bytes: &[u8]) -> Option<(Frame, usize)> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let (checksum, rest) = rest.split_first_chunk::<8>()?;
    let len = u32::from_be_bytes(*len) as usize;
    let body = rest.get(..len)?;
    if len < FIXED_BYTES || xxh3_64(body).to_be_bytes() != *checksum {
        return None;
    }
    let u64_at = |at: usize| {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(&body[at..at + 8]);
        u64::from_be_bytes(buf)
    };
    let ack = match body[32] {
        0 => None,
        1 => Some(AckLevel::Received),
        2 => Some(AckLevel::Written),
        3 => Some(AckLevel::Durable),
        4 => Some(AckLevel::Applied),
        _ => return None,
    };
    let frame = Frame {
        epoch: u64_at(0),
        sequence: u64_at(8),
        last_sequence: u64_at(16),
        checksum: u64_at(24),
        payload: body[FIXED_BYTES..].to_vec(),
        ack,
    };
    let sane = frame.is_intact() && frame.sequence >= 1 && frame.last_sequence >= frame.sequence;
    sane.then_some((frame, HEADER_BYTES + len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::WriteBatch;
    use crate::storage::sim::SimFileSystem;

    fn frame(sequence: u64) -> Frame {
        let mut batch = WriteBatch::new();
        batch.put(format!("k{sequence}").as_bytes(), b"v");
        Frame::new(1, sequence, &batch, None)
    }

    fn sequences(frames: &[Frame]) -> Vec<u64> {
        frames.iter().map(|f| f.sequence).collect()
    }

    #[test]
    fn frames_reload_bounded_and_ending_at_the_engine() {
        let fs = Arc::new(SimFileSystem::new());
        let dir = Path::new("/db");
        let (mut log, frames) = RetainedLog::open(fs.clone(), dir, 0, 4);
        assert!(frames.is_empty());
        let all: Vec<Frame> = (1..=11).map(frame).collect();
        log.append(&all);
        log.sync();
        // At most two segments of four: frames 5..=11 are on disk.
        assert_eq!(segment_numbers(fs.as_ref(), dir).len(), 2);
        let (_, frames) = RetainedLog::open(fs.clone(), dir, 11, 4);
        assert_eq!(sequences(&frames), vec![8, 9, 10, 11]);
        // The engine ends at 9 (10 and 11 were not durable there): cut.
        let (mut log, frames) = RetainedLog::open(fs.clone(), dir, 9, 10);
        assert_eq!(sequences(&frames), vec![5, 6, 7, 8, 9]);
        let mut other = WriteBatch::new();
        other.put(b"another history", b"x");
        log.append(&[Frame::new(1, 10, &other, None)]);
        log.sync();
        let (_, frames) = RetainedLog::open(fs.clone(), dir, 10, 10);
        assert_eq!(sequences(&frames), vec![5, 6, 7, 8, 9, 10]);
        assert_eq!(frames[5].payload, Frame::new(1, 10, &other, None).payload);
    }

    #[test]
    fn a_gap_or_a_short_log_keeps_nothing_it_cannot_serve() {
        let fs = Arc::new(SimFileSystem::new());
        let dir = Path::new("/db");
        let (mut log, _) = RetainedLog::open(fs.clone(), dir, 0, 100);
        log.append(&(1..=5).map(frame).collect::<Vec<_>>());
        log.sync();
        // The engine is ahead of the log: the missing tail is a gap.
        let (_, frames) = RetainedLog::open(fs.clone(), dir, 7, 100);
        assert!(frames.is_empty());
        // A damaged record in the middle: only what follows it is a run.
        let path = segment_path(dir, 1);
        let one = encode(&frame(1)).len() as u64;
        fs.corrupt(&path, one + 20, &[0xff]).unwrap();
        let (_, frames) = RetainedLog::open(fs.clone(), dir, 5, 100);
        assert!(frames.is_empty(), "{:?}", sequences(&frames));
    }

    #[test]
    fn a_torn_tail_is_cut_and_a_wipe_removes_everything() {
        let fs = Arc::new(SimFileSystem::new());
        let dir = Path::new("/db");
        let (mut log, _) = RetainedLog::open(fs.clone(), dir, 0, 100);
        log.append(&(1..=3).map(frame).collect::<Vec<_>>());
        log.sync();
        let path = segment_path(dir, 1);
        let mut tail = fs.open_append(&path).unwrap();
        tail.append(&encode(&frame(4))[..10]).unwrap();
        tail.sync_data().unwrap();
        drop(tail);
        let (mut log, frames) = RetainedLog::open(fs.clone(), dir, 3, 100);
        assert_eq!(sequences(&frames), vec![1, 2, 3]);
        assert_eq!(
            fs.read(&path).unwrap().len() as u64,
            3 * encode(&frame(1)).len() as u64
        );
        log.wipe();
        assert!(segment_numbers(fs.as_ref(), dir).is_empty());
    }
}
