//! Reading the records of one log file and classifying how it ends.
//!
//! A log ends in one of three ways:
//! - cleanly: at end of file, in zero-filled (preallocated) space, or at a
//!   fragment of an older log (a reused file);
//! - torn: a partial or damaged fragment that no valid fragment of this log
//!   follows — what a crash during unsynced appends leaves;
//! - corrupt: damage *followed by* a valid fragment of this log. A crash
//!   cannot produce that in an append-only file, so it is reported as
//!   [`StorageError::Corruption`] and never skipped.
//!
//! Whether a torn end is acceptable (only in the newest log) is decided by
//! the caller, [`super::recovery`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{BLOCK_BYTES, FragmentHeader, FragmentType, HEADER_BYTES, log_tag};
use crate::storage::batch::{BATCH_BYTES_MAX, BATCH_HEADER_BYTES};
use crate::storage::error::{Result, StorageError};
use crate::storage::fs::ReadFile;
use crate::storage::types::FileNumber;

/// The largest logical record a reader assembles: the largest batch.
const RECORD_BYTES_MAX: usize = BATCH_HEADER_BYTES + BATCH_BYTES_MAX;

/// What [`LogFileReader::next_record`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// A complete record, now in the caller's buffer, starting at `offset`.
    Record {
        /// The offset of the record's first fragment header.
        offset: u64,
    },
    /// No more records.
    End(LogEnd),
}

/// How a log file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEnd {
    /// The offset just past the last complete record: the length to cut a
    /// torn log to.
    pub(crate) valid_len: u64,
    /// The damage that ended the log, if it ended torn rather than cleanly.
    pub(crate) torn: Option<TornTail>,
}

/// A damaged or incomplete tail with no valid data after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TornTail {
    /// Where the damage was found.
    pub(crate) offset: u64,
    /// What was wrong.
    pub(crate) reason: String,
}

/// Reads the records of one log file in order.
#[derive(Debug)]
pub(crate) struct LogFileReader {
    file: Arc<dyn ReadFile>,
    path: PathBuf,
    tag: u32,
    len: u64,
    /// The block holding `pos`, and its index.
    block: Vec<u8>,
    block_index: Option<u64>,
    /// The offset of the next fragment header.
    pos: u64,
    /// The end of the last complete record.
    valid_len: u64,
    done: bool,
}

/// Why a fragment cannot be used, and where the next one would start.
#[derive(Debug)]
struct BadFragment {
    kind: EndKind,
    reason: &'static str,
    next: Option<u64>,
}

fn bad(kind: EndKind, reason: &'static str, next: Option<u64>) -> BadFragment {
    BadFragment { kind, reason, next }
}

/// A valid fragment (header and payload range in the block) or why not.
type FragmentCheck = std::result::Result<(FragmentHeader, std::ops::Range<usize>), BadFragment>;

/// Whether the log is at a position that would be a clean end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndKind {
    /// Clean if no record is in progress (zero fill, an older log's data).
    CleanUnlessMidRecord,
    /// Damage: torn unless valid data follows.
    Damage,
}

impl LogFileReader {
    /// A reader of `file`, the log numbered `number` at `path`.
    pub(crate) fn new(file: Arc<dyn ReadFile>, path: PathBuf, number: FileNumber) -> Self {
        let len = file.len();
        Self {
            file,
            path,
            tag: log_tag(number),
            len,
            block: Vec::with_capacity(BLOCK_BYTES),
            block_index: None,
            pos: 0,
            valid_len: 0,
            done: false,
        }
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file's length.
    pub(crate) fn file_len(&self) -> u64 {
        self.len
    }

    /// Reads the next record into `record` (replacing its contents).
    pub(crate) fn next_record(&mut self, record: &mut Vec<u8>) -> Result<ReadOutcome> {
        record.clear();
        if self.done {
            return Ok(self.end(None));
        }
        let mut record_start: Option<u64> = None;
        loop {
            let at = self.pos;
            let left_in_block = BLOCK_BYTES as u64 - at % BLOCK_BYTES as u64;
            if left_in_block < HEADER_BYTES as u64 {
                // The zero trailer of a block; nothing can start in it.
                self.pos = at + left_in_block;
                continue;
            }
            if at >= self.len {
                return self.stop(
                    record_start,
                    at,
                    EndKind::CleanUnlessMidRecord,
                    "end of file",
                    None,
                );
            }
            if at + HEADER_BYTES as u64 > self.len {
                let kind = if self.all_zero_from(at)? {
                    EndKind::CleanUnlessMidRecord
                } else {
                    EndKind::Damage
                };
                return self.stop(record_start, at, kind, "partial fragment header", None);
            }
            let (header, payload) = match self.fragment_at(at)? {
                Ok(found) => found,
                Err(end) => return self.stop(record_start, at, end.kind, end.reason, end.next),
            };
            let payload_end = at + (HEADER_BYTES + header.len) as u64;
            // Valid fragment of this log; check it continues the record.
            let kind = FragmentType::from_tag(header.tag);
            match (kind, record_start) {
                (Some(FragmentType::Full | FragmentType::First), Some(start)) => {
                    return Err(self
                        .corruption(at, format!("record at {start} is cut off by a new record")));
                }
                (Some(FragmentType::Middle | FragmentType::Last), None) => {
                    return Err(self.corruption(at, "fragment continues no record".into()));
                }
                _ => {}
            }
            let payload = self.block.get(payload).unwrap_or_default();
            if record.len() + payload.len() > RECORD_BYTES_MAX {
                return Err(self.corruption(
                    record_start.unwrap_or(at),
                    format!("record exceeds {RECORD_BYTES_MAX} bytes"),
                ));
            }
            record.extend_from_slice(payload);
            self.pos = payload_end;
            match kind {
                Some(FragmentType::Full) | Some(FragmentType::Last) => {
                    self.valid_len = payload_end;
                    return Ok(ReadOutcome::Record {
                        offset: record_start.unwrap_or(at),
                    });
                }
                _ => {
                    record_start.get_or_insert(at);
                }
            }
        }
    }

    /// Parses and validates the fragment at `at` (whose header lies within
    /// the file), returning its header and the payload's range in
    /// `self.block`. On failure returns how the log ends there, why, and
    /// where the next header would be if the length field looked plausible.
    fn fragment_at(&mut self, at: u64) -> Result<FragmentCheck> {
        self.load_block(at / BLOCK_BYTES as u64)?;
        let in_block = (at % BLOCK_BYTES as u64) as usize;
        let header = match self
            .block
            .get(in_block..)
            .and_then(|rest| rest.first_chunk::<HEADER_BYTES>())
        {
            Some(bytes) => FragmentHeader::parse(bytes),
            None => return Ok(Err(bad(EndKind::Damage, "partial fragment header", None))),
        };
        if header.is_zero() {
            let kind = if self.all_zero_from(at)? {
                EndKind::CleanUnlessMidRecord
            } else {
                EndKind::Damage
            };
            return Ok(Err(bad(kind, "zero-filled space", None)));
        }
        let payload = in_block + HEADER_BYTES..in_block + HEADER_BYTES + header.len;
        let Some(bytes) = self.block.get(payload.clone()) else {
            return Ok(Err(bad(
                EndKind::Damage,
                "fragment length runs past its block or the file",
                None,
            )));
        };
        let next = Some(at + (HEADER_BYTES + header.len) as u64);
        if !header.checksum_matches(bytes) {
            return Ok(Err(bad(
                EndKind::Damage,
                "fragment checksum mismatch",
                next,
            )));
        }
        if FragmentType::from_tag(header.tag).is_none() {
            return Ok(Err(bad(EndKind::Damage, "unknown fragment type", next)));
        }
        if header.log_tag != self.tag {
            return Ok(Err(bad(
                EndKind::CleanUnlessMidRecord,
                "fragment of an older log",
                next,
            )));
        }
        Ok(Ok((header, payload)))
    }

    /// Ends the log at `at`: corruption if valid data of this log follows,
    /// otherwise a clean or torn end.
    fn stop(
        &mut self,
        record_start: Option<u64>,
        at: u64,
        kind: EndKind,
        reason: &str,
        next_in_block: Option<u64>,
    ) -> Result<ReadOutcome> {
        if let Some(valid) = self.valid_fragment_after(at, next_in_block)? {
            return Err(self.corruption(
                at,
                format!("{reason}, but a valid fragment follows at {valid}"),
            ));
        }
        self.done = true;
        let torn = match (kind, record_start) {
            (EndKind::CleanUnlessMidRecord, None) => None,
            (_, Some(start)) => Some(TornTail {
                offset: at,
                reason: format!("{reason} inside the record starting at {start}"),
            }),
            (EndKind::Damage, None) => Some(TornTail {
                offset: at,
                reason: reason.to_owned(),
            }),
        };
        Ok(self.end(torn))
    }

    fn end(&self, torn: Option<TornTail>) -> ReadOutcome {
        ReadOutcome::End(LogEnd {
            valid_len: self.valid_len,
            torn,
        })
    }

    fn corruption(&self, offset: u64, reason: String) -> StorageError {
        StorageError::corruption(&self.path, offset, reason)
    }

    /// The offset of a valid fragment of this log after `at`, if any: along
    /// the chain of fragments in `at`'s block from `next_in_block`, or in
    /// any later block (every block starts with a header).
    fn valid_fragment_after(&mut self, at: u64, next_in_block: Option<u64>) -> Result<Option<u64>> {
        let block_index = at / BLOCK_BYTES as u64;
        if let Some(next) = next_in_block.filter(|next| next / BLOCK_BYTES as u64 == block_index)
            && let Some(found) = self.valid_in_block(block_index, next)?
        {
            return Ok(Some(found));
        }
        let blocks = self.len.div_ceil(BLOCK_BYTES as u64);
        for later in block_index + 1..blocks {
            if let Some(found) = self.valid_in_block(later, later * BLOCK_BYTES as u64)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// Walks the fragment chain of block `index` from offset `from`.
    fn valid_in_block(&mut self, index: u64, from: u64) -> Result<Option<u64>> {
        self.load_block(index)?;
        let block = &self.block;
        let base = index * BLOCK_BYTES as u64;
        let mut in_block = (from - base) as usize;
        while let Some(bytes) = block
            .get(in_block..)
            .and_then(|b| b.first_chunk::<HEADER_BYTES>())
        {
            let header = FragmentHeader::parse(bytes);
            let start = in_block + HEADER_BYTES;
            let Some(payload) = block.get(start..start + header.len) else {
                break;
            };
            if header.log_tag == self.tag
                && FragmentType::from_tag(header.tag).is_some()
                && header.checksum_matches(payload)
            {
                return Ok(Some(base + in_block as u64));
            }
            in_block = start + header.len;
        }
        Ok(None)
    }

    /// Whether every byte from `at` to the end of the file is zero.
    fn all_zero_from(&mut self, at: u64) -> Result<bool> {
        let mut index = at / BLOCK_BYTES as u64;
        let mut skip = (at % BLOCK_BYTES as u64) as usize;
        while index * (BLOCK_BYTES as u64) < self.len {
            self.load_block(index)?;
            if self
                .block
                .get(skip..)
                .unwrap_or_default()
                .iter()
                .any(|b| *b != 0)
            {
                return Ok(false);
            }
            index += 1;
            skip = 0;
        }
        Ok(true)
    }

    /// The bytes of block `index` (shorter than a block at the end of file).
    fn load_block(&mut self, index: u64) -> Result<()> {
        if self.block_index != Some(index) {
            let start = index * BLOCK_BYTES as u64;
            // At most BLOCK_BYTES, so it fits in usize.
            let len = self.len.saturating_sub(start).min(BLOCK_BYTES as u64) as usize;
            self.block.resize(len, 0);
            self.block_index = None;
            self.file
                .read_exact_at(&mut self.block, start)
                .map_err(|e| StorageError::io("read", &self.path, e))?;
            self.block_index = Some(index);
        }
        Ok(())
    }
}
