//! The write-ahead log: every committed batch is one record of the current
//! log file before it reaches a memtable.
//!
//! - `format`: blocks, fragments, headers and checksums (LevelDB's log
//!   format with RocksDB's log number in every header).
//! - `writer`: framing records and appending them.
//! - `reader`: reading one file's records and classifying its end.
//! - `recovery`: replaying a list of logs, cutting a torn tail, verifying.
//!
//! Log files are named by their [`FileNumber`]: `000012.log`. This module
//! never decides *when* a log is written or synced; that is the commit
//! pipeline's job (`storage::commit`). It must never skip a damaged record:
//! damage is either a torn tail of the newest log (cut) or corruption.
//! The byte-level format is specified in `docs/format-wal.md`.

#![cfg_attr(not(test), allow(dead_code))]

use std::path::{Path, PathBuf};

use crate::storage::types::FileNumber;

pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod recovery;
pub(crate) mod writer;

mod fuzz;

pub use fuzz::{FUZZ_LOG_NUMBER, fuzz_wal_replay};

/// The extension of log files.
const LOG_EXTENSION: &str = "log";

/// The file name of log `number` (`000012.log`).
pub(crate) fn log_file_name(number: FileNumber) -> String {
    format!("{number:06}.{LOG_EXTENSION}")
}

/// The path of log `number` in `dir`.
pub(crate) fn log_file_path(dir: &Path, number: FileNumber) -> PathBuf {
    dir.join(log_file_name(number))
}

/// The number of a log file name, or `None` if `name` is not one.
pub(crate) fn parse_log_file_name(name: &str) -> Option<FileNumber> {
    let digits = name.strip_suffix(LOG_EXTENSION)?.strip_suffix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The numbers of the log files in `dir`, ascending.
pub(crate) fn list_logs(
    fs: &dyn crate::storage::fs::FileSystem,
    dir: &Path,
) -> crate::storage::Result<Vec<FileNumber>> {
    let names = fs
        .list_dir(dir)
        .map_err(|e| crate::storage::StorageError::io("list", dir, e))?;
    let mut numbers: Vec<FileNumber> = names
        .iter()
        .filter_map(|name| parse_log_file_name(name))
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

#[cfg(test)]
mod tests;
