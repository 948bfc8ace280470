//! A node's epoch and epoch history, persisted in `REPLICATION` in the
//! database directory.
//!
//! The history lists where each epoch's first frame begins, like a
//! PostgreSQL timeline history or Kafka's leader-epoch cache: a source
//! compares a subscriber's `(epoch, last sequence)` with it to find
//! writes the subscriber has that the current lineage does not (an old
//! primary's unacknowledged tail). The file is replaced atomically (write
//! a temporary, fsync, rename, fsync the directory) before a promotion
//! takes effect, so a crash never leaves a node believing an epoch it did
//! not durably adopt.
//!
//! The record also names the node's *lineage*: a random identifier a
//! primary draws the first time it serves writes, which every node that
//! copies its history (by streaming from it or installing its snapshot)
//! adopts. Sequence numbers and checksums compare histories within one
//! lineage; a subscriber of another lineage (a directory that held some
//! other database) shares no history with the source whatever its
//! sequence numbers, so it is sent a snapshot. Lineage 0 is "none yet":
//! a node that never followed anyone or served writes (an empty directory
//! can stream from the start; one with writes of its own cannot).
//!
//! Format (text, one record per line): `epoch <n>`, then `lineage <hex>`
//! once one is known (records written before lineages have none), then
//! one `start <epoch> <first sequence>` per epoch, oldest first.

use std::path::{Path, PathBuf};

use crate::storage::StorageError;
use crate::storage::fs::FileSystem;

/// The file name of the epoch record.
pub(crate) const EPOCH_FILE_NAME: &str = "REPLICATION";

/// The epoch a node is in and where each known epoch began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EpochRecord {
    /// The node's current epoch.
    pub(crate) epoch: u64,
    /// `(epoch, first sequence number)`, by increasing epoch.
    pub(crate) starts: Vec<(u64, u64)>,
    /// The history this node's data descends from (see the module
    /// documentation); 0 until it has one.
    pub(crate) lineage: u64,
}

impl Default for EpochRecord {
    fn default() -> Self {
        Self {
            epoch: 1,
            starts: vec![(1, 1)],
            lineage: 0,
        }
    }
}

/// A fresh lineage identifier: random and never 0.
pub(crate) fn new_lineage() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    RandomState::new()
        .hash_one((nanos, std::process::id()))
        .max(1)
}

/// Whether a subscriber of `lineage` whose last sequence number is
/// `last_sequence` shares the history of a source of `own` lineage: the
/// same lineage, or an empty node that has none yet.
pub(crate) fn same_lineage(own: u64, lineage: u64, last_sequence: u64) -> bool {
    lineage == own || (lineage == 0 && last_sequence == 0)
}

impl EpochRecord {
    /// Draws a lineage if the record has none; true if it drew one (the
    /// caller stores the record).
    pub(crate) fn ensure_lineage(&mut self) -> bool {
        if self.lineage != 0 {
            return false;
        }
        self.lineage = new_lineage();
        true
    }

    /// The last sequence number of `epoch`'s lineage on this node: the one
    /// before the next epoch's start (or `None` if `epoch` is still open).
    pub(crate) fn end_of(&self, epoch: u64) -> Option<u64> {
        self.starts
            .iter()
            .find(|(e, _)| *e > epoch)
            .map(|(_, start)| start.saturating_sub(1))
    }

    /// Records that `epoch` begins at `first_sequence` (and is current).
    pub(crate) fn begin(&mut self, epoch: u64, first_sequence: u64) {
        self.starts.retain(|(e, _)| *e < epoch);
        self.starts.push((epoch, first_sequence));
        self.epoch = epoch;
    }

    /// Reads the record in `dir` (the default one if there is none).
    pub(crate) fn load(fs: &dyn FileSystem, dir: &Path) -> Result<Self, StorageError> {
        let path = dir.join(EPOCH_FILE_NAME);
        if !fs.exists(&path) {
            return Ok(Self::default());
        }
        let file = fs
            .open_read_unmapped(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let mut bytes = vec![0; usize::try_from(file.len()).unwrap_or(0)];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| StorageError::io("read", &path, e))?;
        Self::parse(&bytes).ok_or_else(|| StorageError::corruption(&path, 0, "bad epoch record"))
    }

    fn parse(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        let epoch = lines.next()?.strip_prefix("epoch ")?.parse().ok()?;
        let mut starts = Vec::new();
        let mut lineage = 0;
        for line in lines {
            if let Some(hex) = line.strip_prefix("lineage ") {
                if lineage != 0 || !starts.is_empty() {
                    return None;
                }
                lineage = u64::from_str_radix(hex, 16).ok().filter(|&l| l != 0)?;
                continue;
            }
            let mut parts = line.strip_prefix("start ")?.split(' ');
            let e: u64 = parts.next()?.parse().ok()?;
            let first: u64 = parts.next()?.parse().ok()?;
            if starts.last().is_some_and(|(last, _)| *last >= e) {
                return None;
            }
            starts.push((e, first));
        }
        Some(Self {
            epoch,
            starts,
            lineage,
        })
    }

    /// Replaces the record in `dir` durably.
    pub(crate) fn store(&self, fs: &dyn FileSystem, dir: &Path) -> Result<(), StorageError> {
        let mut text = format!("epoch {}\n", self.epoch);
        if self.lineage != 0 {
            text.push_str(&format!("lineage {:016x}\n", self.lineage));
        }
        for (epoch, first) in &self.starts {
            text.push_str(&format!("start {epoch} {first}\n"));
        }
        let path = dir.join(EPOCH_FILE_NAME);
        let temporary: PathBuf = dir.join(format!("{EPOCH_FILE_NAME}.tmp"));
        let io = |op: &'static str, p: &Path| {
            let p = p.to_path_buf();
            move |e| StorageError::io(op, p, e)
        };
        let mut file = fs.create(&temporary).map_err(io("create", &temporary))?;
        file.append(text.as_bytes())
            .map_err(io("append", &temporary))?;
        file.sync_data().map_err(io("fsync", &temporary))?;
        drop(file);
        fs.rename(&temporary, &path).map_err(io("rename", &path))?;
        fs.sync_dir(dir).map_err(io("fsync_dir", dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimFileSystem;

    #[test]
    fn the_record_survives_a_crash_once_stored() {
        let fs = SimFileSystem::new();
        let dir = Path::new("/n");
        fs.create_dir_all(dir).unwrap();
        let mut record = EpochRecord::load(&fs, dir).unwrap();
        assert_eq!(record, EpochRecord::default());
        record.begin(2, 40);
        record.begin(5, 90);
        assert!(record.ensure_lineage());
        assert!(!record.ensure_lineage(), "drawn once");
        record.store(&fs, dir).unwrap();
        fs.crash(7);
        let loaded = EpochRecord::load(&fs, dir).unwrap();
        assert_eq!(loaded, record);
        assert_eq!(loaded.end_of(1), Some(39));
        assert_eq!(loaded.end_of(2), Some(89));
        assert_eq!(loaded.end_of(5), None);
    }

    #[test]
    fn a_damaged_record_is_corruption() {
        assert!(EpochRecord::parse(b"epoch x\n").is_none());
        assert!(EpochRecord::parse(b"epoch 2\nstart 2 1\nstart 1 5\n").is_none());
        assert!(EpochRecord::parse(b"epoch 1\nlineage 0\nstart 1 1\n").is_none());
        assert!(EpochRecord::parse(b"epoch 1\nstart 1 1\nlineage 5\n").is_none());
        assert!(EpochRecord::parse(b"epoch 1\nlineage 5\nlineage 6\nstart 1 1\n").is_none());
    }

    #[test]
    fn a_record_from_before_lineages_has_none() {
        let old = EpochRecord::parse(b"epoch 3\nstart 1 1\nstart 3 20\n").unwrap();
        assert_eq!(old.lineage, 0);
        assert_eq!(old.starts, vec![(1, 1), (3, 20)]);
    }

    #[test]
    fn only_the_same_lineage_or_an_empty_node_shares_a_history() {
        assert!(same_lineage(7, 7, 100));
        assert!(
            same_lineage(7, 0, 0),
            "an empty node streams from the start"
        );
        assert!(!same_lineage(7, 0, 1), "writes of its own");
        assert!(!same_lineage(7, 8, 0));
        assert_ne!(new_lineage(), 0);
    }
}
