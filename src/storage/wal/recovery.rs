//! Replaying logs after a restart, cutting the newest log's torn tail, and
//! verifying every record.
//!
//! Rules (the crash-safety argument is in `docs/format-wal.md`):
//! - logs are replayed oldest first and every batch is handed to the
//!   caller in order; sequence numbers must continue densely from batch to
//!   batch and log to log, or the logs are corrupt;
//! - only the newest log may end torn: its tail held appends that were
//!   never acknowledged as durable. An older log was synced completely
//!   before the next one was created, so damage there is corruption;
//! - damage followed by a valid record is corruption in any log;
//! - the newest log may continue past its last record with zeros (its
//!   preallocated space) or another log's stale records, which end it
//!   cleanly; an older log was cut to its last record before the next one
//!   was created, so anything after it there is corruption.

use std::path::{Path, PathBuf};

use super::log_file_path;
use super::reader::{LogEnd, LogFileReader, ReadOutcome, TornTail};
use crate::storage::batch::WriteBatch;
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::types::{FileNumber, SequenceNumber};

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplayOutcome {
    /// The sequence number of the last entry replayed, if any.
    pub(crate) last_sequence: Option<SequenceNumber>,
    /// Batches replayed.
    pub(crate) batches: u64,
    /// Entries replayed (puts and deletes).
    pub(crate) entries: u64,
    /// Record bytes replayed.
    pub(crate) record_bytes: u64,
    /// How the newest log ends (`None` if no log was given).
    pub(crate) newest: Option<LogTail>,
}

/// How the newest log ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogTail {
    /// Its file number.
    pub(crate) number: FileNumber,
    /// Its path.
    pub(crate) path: PathBuf,
    /// Its length on disk.
    pub(crate) file_len: u64,
    /// The end of its last complete record; [`cut_tail`] truncates to it.
    pub(crate) valid_len: u64,
    /// The damage at its end, if it ended torn.
    pub(crate) torn: Option<TornTail>,
}

/// Replays logs `numbers` (strictly ascending) of directory `dir`, handing
/// each batch and its first sequence number to `apply` in order.
pub(crate) fn replay(
    fs: &dyn FileSystem,
    dir: &Path,
    numbers: &[FileNumber],
    mut apply: impl FnMut(SequenceNumber, WriteBatch) -> Result<()>,
) -> Result<ReplayOutcome> {
    if numbers.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(StorageError::InvalidArgument(format!(
            "logs must be replayed in ascending order, got {numbers:?}"
        )));
    }
    let mut outcome = ReplayOutcome {
        last_sequence: None,
        batches: 0,
        entries: 0,
        record_bytes: 0,
        newest: None,
    };
    let mut record = Vec::new();
    for (index, &number) in numbers.iter().enumerate() {
        let path = log_file_path(dir, number);
        let file = fs
            .open_read_unmapped(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        let mut reader = LogFileReader::new(file, path, number);
        let end = replay_file(&mut reader, &mut record, &mut outcome, &mut apply)?;
        let is_newest = index + 1 == numbers.len();
        if let Some(torn) = end.torn.as_ref().filter(|_| !is_newest) {
            return Err(StorageError::corruption(
                reader.path(),
                torn.offset,
                format!(
                    "damaged tail in a log that is not the newest: {}",
                    torn.reason
                ),
            ));
        }
        if !is_newest && end.valid_len < reader.file_len() {
            // A log is cut to its last record before a newer one is
            // created, so zero fill or stale bytes here mean lost writes.
            return Err(StorageError::corruption(
                reader.path(),
                end.valid_len,
                format!(
                    "{} bytes after the last record of a log that is not the newest",
                    reader.file_len() - end.valid_len
                ),
            ));
        }
        if is_newest {
            outcome.newest = Some(LogTail {
                number,
                path: reader.path().to_path_buf(),
                file_len: reader.file_len(),
                valid_len: end.valid_len,
                torn: end.torn,
            });
        }
    }
    Ok(outcome)
}

fn replay_file(
    reader: &mut LogFileReader,
    record: &mut Vec<u8>,
    outcome: &mut ReplayOutcome,
    apply: &mut impl FnMut(SequenceNumber, WriteBatch) -> Result<()>,
) -> Result<LogEnd> {
    loop {
        let offset = match reader.next_record(record)? {
            ReadOutcome::Record { offset } => offset,
            ReadOutcome::End(end) => return Ok(end),
        };
        let (first_seq, batch) = WriteBatch::decode(record, reader.path(), offset)?;
        let expected = outcome.last_sequence.map(|last| last + 1);
        if expected.is_some_and(|expected| expected != first_seq) {
            return Err(StorageError::corruption(
                reader.path(),
                offset,
                format!(
                    "batch starts at sequence number {first_seq}, expected {}",
                    expected.unwrap_or_default()
                ),
            ));
        }
        // `decode` checked that the batch is non-empty and does not overflow.
        outcome.last_sequence = Some(first_seq + u64::from(batch.count()) - 1);
        outcome.batches += 1;
        outcome.entries += u64::from(batch.count());
        outcome.record_bytes += record.len() as u64;
        apply(first_seq, batch)?;
    }
}

/// Reads and checks every record of logs `numbers` without applying them.
/// A torn tail of the newest log is reported in the outcome, not as an error.
pub(crate) fn verify(
    fs: &dyn FileSystem,
    dir: &Path,
    numbers: &[FileNumber],
) -> Result<ReplayOutcome> {
    replay(fs, dir, numbers, |_, _| Ok(()))
}

/// Cuts the newest log to its last complete record (if anything follows
/// it) and syncs the cut, so that a torn tail never ends up in a log that
/// is no longer the newest. Must run before a new log is created. Returns
/// whether the file was cut.
pub(crate) fn cut_tail(fs: &dyn FileSystem, outcome: &ReplayOutcome) -> Result<bool> {
    let Some(tail) = outcome.newest.as_ref() else {
        return Ok(false);
    };
    if tail.valid_len >= tail.file_len {
        return Ok(false);
    }
    let io = |op| move |e| StorageError::io(op, &tail.path, e);
    let mut file = fs.open_append(&tail.path).map_err(io("open"))?;
    file.truncate(tail.valid_len).map_err(io("truncate"))?;
    file.sync_data().map_err(io("fsync"))?;
    Ok(true)
}
