//! Range iteration over one segment, forwards or backwards.
//!
//! The iterator finds its first block by binary search over the index's
//! last keys and its first entry by binary search over the block's restart
//! points, then walks entries (keys are copied out, values are zero-copy
//! slices of the block) and stops at the far bound. Walking backwards
//! decodes a block at a time, since entries only decode forwards. It
//! owns a clone of the reader, so it outlives any borrow; after an error it
//! yields nothing more.
#![cfg_attr(not(test), allow(dead_code))]

use std::cmp::Ordering;
use std::ops::Bound;

use super::block::Block;
use super::reader::{IndexEntry, SegmentReader};
use crate::storage::error::Result;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::{Entry, key_prefix};

/// A forward walk through one decoded block: only entries that are yielded
/// get their key copied out.
#[derive(Debug)]
struct ForwardCursor {
    block: Block,
    block_offset: u64,
    pos: usize,
    key: Vec<u8>,
}

/// An owning iterator over the entries of a segment whose user keys lie in a
/// range, in internal order or its reverse.
#[derive(Debug)]
pub(crate) struct SegmentIter {
    segment: SegmentReader,
    range: KeyRange,
    direction: Direction,
    /// The index position of the next block to decode, if any.
    next_block: Option<usize>,
    /// Forward: the block being walked.
    cursor: Option<ForwardCursor>,
    /// Reverse: the rest of the current block's entries in range, reversed.
    buffer: Vec<Entry>,
}

/// A probe for `partition_point`: whether an index entry's last key sorts
/// before `bound` (comparing eight-byte prefixes first).
fn before(bound: &[u8]) -> impl Fn(&IndexEntry) -> bool + '_ {
    let prefix = key_prefix(bound);
    move |e| e.cmp_key(bound, prefix) == Ordering::Less
}

/// Whether an index entry's last key sorts at or before `bound`.
fn at_or_before(bound: &[u8]) -> impl Fn(&IndexEntry) -> bool + '_ {
    let prefix = key_prefix(bound);
    move |e| e.cmp_key(bound, prefix) != Ordering::Greater
}

impl SegmentIter {
    pub(super) fn new(segment: SegmentReader, range: KeyRange, direction: Direction) -> Self {
        let index = segment.index();
        let first_block = if range.is_empty() || index.is_empty() {
            None
        } else {
            // A user key's versions may span blocks, so "the first block whose
            // last key reaches the bound" holds the first entry in range.
            match direction {
                Direction::Forward => {
                    let position = match &range.start {
                        Bound::Unbounded => 0,
                        Bound::Included(start) => index.partition_point(before(start)),
                        Bound::Excluded(start) => index.partition_point(at_or_before(start)),
                    };
                    (position < index.len()).then_some(position)
                }
                Direction::Reverse => {
                    let position = match &range.end {
                        Bound::Unbounded => index.len(),
                        Bound::Included(end) => index.partition_point(at_or_before(end)),
                        Bound::Excluded(end) => index.partition_point(before(end)),
                    };
                    // The block after the last one wholly in range may start
                    // inside the range.
                    Some(position.min(index.len() - 1))
                }
            }
        };
        Self {
            segment,
            range,
            direction,
            next_block: first_block,
            cursor: None,
            buffer: Vec::new(),
        }
    }

    fn block_offset(&self, position: usize) -> u64 {
        self.segment
            .index()
            .get(position)
            .map_or(0, |e| e.handle.offset)
    }

    /// Opens the next block for a forward walk, starting near the range's
    /// start if the range begins inside it.
    fn open_forward_block(&mut self, position: usize) -> Result<()> {
        let block = self.segment.read_block(position)?;
        let block_offset = self.block_offset(position);
        let pos = match &self.range.start {
            Bound::Included(start) | Bound::Excluded(start) => block
                .seek_position(start)
                .map_err(|e| e.in_file(self.segment.path(), block_offset))?,
            Bound::Unbounded => 0,
        };
        let next = position + 1;
        self.next_block = (next < self.segment.index().len()).then_some(next);
        self.cursor = Some(ForwardCursor {
            block,
            block_offset,
            pos,
            key: Vec::new(),
        });
        Ok(())
    }

    fn next_forward(&mut self) -> Result<Option<Entry>> {
        loop {
            let Some(cursor) = &mut self.cursor else {
                match self.next_block {
                    Some(position) => {
                        self.open_forward_block(position)?;
                        continue;
                    }
                    None => return Ok(None),
                }
            };
            let decoded = cursor
                .block
                .next_entry(cursor.pos, &mut cursor.key)
                .map_err(|e| e.in_file(self.segment.path(), cursor.block_offset))?;
            let Some((entry, next)) = decoded else {
                self.cursor = None;
                continue;
            };
            cursor.pos = next;
            if !self.range.is_before_end(&cursor.key) {
                self.cursor = None;
                self.next_block = None;
                return Ok(None);
            }
            if self.range.is_after_start(&cursor.key) {
                return Ok(Some(cursor.block.to_entry(&entry, &cursor.key)));
            }
        }
    }

    /// Decodes the next block backwards into the buffer, keeping only
    /// entries in range.
    fn load_reverse_block(&mut self, position: usize) -> Result<()> {
        let block = self.segment.read_block(position)?;
        let entries = block
            .entries()
            .map_err(|e| e.in_file(self.segment.path(), self.block_offset(position)))?;
        self.next_block = position.checked_sub(1);
        for entry in entries {
            if !self.range.is_after_start(&entry.key) {
                // Every earlier block lies below the range too.
                self.next_block = None;
                continue;
            }
            if self.range.is_before_end(&entry.key) {
                self.buffer.push(entry);
            }
        }
        Ok(())
    }

    fn next_reverse(&mut self) -> Result<Option<Entry>> {
        while self.buffer.is_empty() {
            let Some(position) = self.next_block else {
                return Ok(None);
            };
            self.load_reverse_block(position)?;
        }
        Ok(self.buffer.pop())
    }
}

impl Iterator for SegmentIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        let next = match self.direction {
            Direction::Forward => self.next_forward(),
            Direction::Reverse => self.next_reverse(),
        };
        match next {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                // A damaged block ends the walk: nothing after it is trusted.
                self.cursor = None;
                self.next_block = None;
                self.buffer.clear();
                Some(Err(e))
            }
        }
    }
}
