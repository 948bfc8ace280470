//! Appending records to a log file.
//!
//! The writer fragments each record into the block structure of
//! [`super::format`] and buffers the fragments, so the commit leader can
//! write a whole group of records with one `append` (one write(2)) and then
//! sync once. It never rewrites bytes it has written; it may overwrite the
//! zeros of a preallocated file, which it cuts off when the log is sealed.

use std::io;
use std::path::{Path, PathBuf};

use super::format::{self, BLOCK_BYTES, FragmentType, HEADER_BYTES};
use crate::storage::fs::WriteFile;
use crate::storage::types::FileNumber;

/// Zero bytes used to pad the end of a block too small for a header.
const TRAILER_ZEROS: [u8; HEADER_BYTES] = [0; HEADER_BYTES];

/// Appends framed records to one log file.
#[derive(Debug)]
pub(crate) struct LogWriter {
    file: Box<dyn WriteFile>,
    path: PathBuf,
    number: FileNumber,
    /// Where the next fragment starts within its block.
    block_offset: usize,
    /// Fragments buffered but not yet appended.
    pending: Vec<u8>,
}

impl LogWriter {
    /// A writer appending to `file` (log `number` at `path`), continuing
    /// the block structure at the file's current length.
    pub(crate) fn new(file: Box<dyn WriteFile>, path: PathBuf, number: FileNumber) -> Self {
        // The remainder is below BLOCK_BYTES, so it fits in usize.
        let block_offset = (file.len() % BLOCK_BYTES as u64) as usize;
        Self {
            file,
            path,
            number,
            block_offset,
            pending: Vec::new(),
        }
    }

    /// The log's file number.
    pub(crate) fn number(&self) -> FileNumber {
        self.number
    }

    /// The log's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes appended to the file so far (buffered bytes excluded).
    pub(crate) fn len(&self) -> u64 {
        self.file.len()
    }

    /// Frames `record` into the buffer; [`Self::write_buffered`] appends it.
    pub(crate) fn buffer_record(&mut self, record: &[u8]) {
        self.buffer_record_parts(&[record]);
    }

    /// Frames the record made of `parts` (concatenated) into the buffer,
    /// copying each byte once: a batch's header and its entries need not
    /// be joined in a scratch buffer first.
    pub(crate) fn buffer_record_parts(&mut self, parts: &[&[u8]]) {
        let tag = format::log_tag(self.number);
        let mut rest = Parts::new(parts);
        let mut first = true;
        loop {
            let left_in_block = BLOCK_BYTES - self.block_offset;
            if left_in_block < HEADER_BYTES {
                // Too small for a header: pad with zeros (which readers skip)
                // and start the next block.
                self.pending
                    .extend_from_slice(TRAILER_ZEROS.get(..left_in_block).unwrap_or_default());
                self.block_offset = 0;
            }
            let room = BLOCK_BYTES - self.block_offset - HEADER_BYTES;
            let piece = rest.remaining.min(room);
            let last = piece == rest.remaining;
            let kind = match (first, last) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, false) => FragmentType::Middle,
                (false, true) => FragmentType::Last,
            };
            let at = self.pending.len();
            self.pending.reserve(HEADER_BYTES + piece);
            self.pending.extend_from_slice(&[0; HEADER_BYTES]);
            rest.copy_into(piece, &mut self.pending);
            format::seal_fragment(&mut self.pending[at..], kind, tag);
            self.block_offset += HEADER_BYTES + piece;
            assert!(
                self.block_offset <= BLOCK_BYTES,
                "fragment overran its block: offset {}",
                self.block_offset
            );
            first = false;
            if last {
                return;
            }
        }
    }

    /// Appends every buffered fragment with one write.
    pub(crate) fn write_buffered(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.file.append(&self.pending);
        self.pending.clear();
        result
    }

    /// Frames and appends one record.
    pub(crate) fn add_record(&mut self, record: &[u8]) -> io::Result<()> {
        self.buffer_record(record);
        self.write_buffered()
    }

    /// Makes everything appended so far durable.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Cuts the file to what was appended, dropping any preallocated zeros
    /// after the last record (the next [`Self::sync`] makes the cut
    /// durable). A log that is not the newest must end exactly at its last
    /// record: recovery reports anything after it as corruption.
    pub(crate) fn cut_to_written(&mut self) -> io::Result<()> {
        let len = self.file.len();
        self.file.truncate(len)
    }
}

/// A cursor over a record given as consecutive slices.
struct Parts<'a> {
    parts: &'a [&'a [u8]],
    /// Bytes of `parts[0]` already consumed.
    offset: usize,
    remaining: usize,
}

impl<'a> Parts<'a> {
    fn new(parts: &'a [&'a [u8]]) -> Self {
        Self {
            parts,
            offset: 0,
            remaining: parts.iter().map(|p| p.len()).sum(),
        }
    }

    /// Appends the next `len` bytes (at most what remains) to `out`.
    fn copy_into(&mut self, mut len: usize, out: &mut Vec<u8>) {
        len = len.min(self.remaining);
        self.remaining -= len;
        while len > 0 {
            let Some((part, later)) = self.parts.split_first() else {
                return;
            };
            let available = part.get(self.offset..).unwrap_or_default();
            let take = available.len().min(len);
            out.extend_from_slice(available.get(..take).unwrap_or_default());
            len -= take;
            self.offset += take;
            if self.offset == part.len() {
                self.parts = later;
                self.offset = 0;
            }
        }
    }
}
