//! Range iteration over one segment, forwards or backwards.
//!
//! The iterator finds its first block by binary search over the index's
//! last keys, then decodes one block at a time (keys are materialised,
//! values are zero-copy slices of the block) and stops at the far bound. It
//! owns a clone of the reader, so it outlives any borrow; after an error it
//! yields nothing more.
#![cfg_attr(not(test), allow(dead_code))]

use std::collections::VecDeque;
use std::ops::Bound;

use super::reader::SegmentReader;
use crate::storage::error::Result;
use crate::storage::range::{Direction, KeyRange};
use crate::storage::types::Entry;

/// An owning iterator over the entries of a segment whose user keys lie in a
/// range, in internal order or its reverse.
#[derive(Debug)]
pub(crate) struct SegmentIter {
    segment: SegmentReader,
    range: KeyRange,
    direction: Direction,
    /// The index position of the next block to decode, if any.
    next_block: Option<usize>,
    buffer: VecDeque<Entry>,
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
                        Bound::Included(start) => index.partition_point(|e| e.last_key < *start),
                        Bound::Excluded(start) => index.partition_point(|e| e.last_key <= *start),
                    };
                    (position < index.len()).then_some(position)
                }
                Direction::Reverse => {
                    let position = match &range.end {
                        Bound::Unbounded => index.len(),
                        Bound::Included(end) => index.partition_point(|e| e.last_key <= *end),
                        Bound::Excluded(end) => index.partition_point(|e| e.last_key < *end),
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
            buffer: VecDeque::new(),
        }
    }

    /// Decodes the next block into the buffer, keeping only entries in range.
    fn load_next_block(&mut self) -> Result<()> {
        let Some(position) = self.next_block else {
            return Ok(());
        };
        let entries = {
            let block = self.segment.read_block(position)?;
            let offset = self
                .segment
                .index()
                .get(position)
                .map_or(0, |e| e.handle.offset);
            block
                .entries()
                .map_err(|e| e.in_file(self.segment.path(), offset))?
        };
        let mut reached_far_bound = false;
        match self.direction {
            Direction::Forward => {
                for entry in entries {
                    if !self.range.is_before_end(&entry.key) {
                        reached_far_bound = true;
                        break;
                    }
                    if self.range.is_after_start(&entry.key) {
                        self.buffer.push_back(entry);
                    }
                }
                let next = position + 1;
                self.next_block =
                    (!reached_far_bound && next < self.segment.index().len()).then_some(next);
            }
            Direction::Reverse => {
                for entry in entries.into_iter().rev() {
                    if !self.range.is_after_start(&entry.key) {
                        reached_far_bound = true;
                        break;
                    }
                    if self.range.is_before_end(&entry.key) {
                        self.buffer.push_back(entry);
                    }
                }
                self.next_block = if reached_far_bound {
                    None
                } else {
                    position.checked_sub(1)
                };
            }
        }
        Ok(())
    }
}

impl Iterator for SegmentIter {
    type Item = Result<Entry>;

    fn next(&mut self) -> Option<Result<Entry>> {
        while self.buffer.is_empty() && self.next_block.is_some() {
            if let Err(e) = self.load_next_block() {
                self.next_block = None;
                return Some(Err(e));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}
