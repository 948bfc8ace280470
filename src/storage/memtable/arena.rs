//! The memtable's arena: chunks that batches' encoded entries are copied
//! into, and the pool that hands a flushed memtable's chunks to the next
//! one.
//!
//! Why a pool: a fresh chunk's pages are mapped by the kernel on first
//! touch, a page fault per 4 KiB that costs more than copying the bytes
//! into it (several µs a page in a virtual machine), and a freed 64 KiB
//! chunk goes back to the allocator, which returns it to the kernel when
//! it sits at the top of the heap. Reusing the chunks of memtables already
//! flushed keeps writes on pages that are mapped.
//!
//! A chunk is a [`BytesMut`] whose filled part is split off per copy: the
//! copies are `Bytes` sharing the chunk's one allocation, and the chunk's
//! empty tail keeps a handle on it. When the tail is the only handle left
//! (the memtable and every value read from it are gone),
//! [`BytesMut::try_reclaim`] takes the whole allocation back without
//! copying or allocating.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;

/// The size of one arena chunk. Small enough that a value read out of the
/// memtable and held by a caller pins little memory, large enough that a
/// chunk's one shared-header allocation is spread over hundreds of batches.
pub(super) const ARENA_CHUNK_BYTES: usize = 64 << 10;

/// Data at least this large gets a buffer of its own instead of a chunk:
/// it would leave too much of a chunk unused.
pub(super) const ARENA_DEDICATED_BYTES_MIN: usize = ARENA_CHUNK_BYTES / 4;

/// Chunks that memtables have filled, oldest first, for reuse once nothing
/// refers to them. Shared by an engine's memtables.
///
/// Bounded: it holds at most `chunks_max` chunks, live or free, so the
/// memory it keeps beyond the live memtables' own is at most that many
/// chunks, and a chunk a long-lived reader pins is dropped from the pool
/// (freed when the reader lets go) once newer ones push it out.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    /// Filled chunks in the order they were filled: memtables are flushed
    /// oldest first, so the front is the first to become reusable.
    filled: Mutex<VecDeque<BytesMut>>,
    chunks_max: usize,
}

impl ChunkPool {
    /// A pool keeping at most `bytes_max` bytes of chunks (at least one
    /// chunk; 0 keeps none).
    pub(crate) fn new(bytes_max: usize) -> Arc<Self> {
        Arc::new(Self {
            filled: Mutex::new(VecDeque::new()),
            chunks_max: bytes_max.div_ceil(ARENA_CHUNK_BYTES),
        })
    }

    /// An empty chunk with [`ARENA_CHUNK_BYTES`] of room: the oldest filled
    /// one if nothing refers to it any more, else a new allocation.
    fn take(&self) -> BytesMut {
        let mut filled = self.filled.lock();
        if let Some(oldest) = filled.front_mut()
            // The chunk's handle is empty (every copy was split off), so
            // reclaiming succeeds exactly when it is the last handle, and
            // then moves nothing.
            && oldest.try_reclaim(ARENA_CHUNK_BYTES)
            && let Some(mut chunk) = filled.pop_front()
        {
            chunk.clear();
            return chunk;
        }
        drop(filled);
        BytesMut::with_capacity(ARENA_CHUNK_BYTES)
    }

    /// Keeps a filled chunk for reuse, dropping the oldest kept one when the
    /// pool is full.
    fn put_back(&self, chunk: BytesMut) {
        if self.chunks_max == 0 {
            return;
        }
        let mut filled = self.filled.lock();
        if filled.len() == self.chunks_max {
            filled.pop_front();
        }
        filled.push_back(chunk);
    }

    /// How many chunks the pool holds (live or free).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.filled.lock().len()
    }
}

/// One memtable's arena: the chunk being filled and the pool it came from.
#[derive(Debug)]
pub(super) struct Arena {
    /// The chunk being filled, none before the first copy. Only the commit
    /// leader copies, so the lock is never contended.
    current: Mutex<Option<BytesMut>>,
    pool: Arc<ChunkPool>,
}

impl Arena {
    pub(super) fn new(pool: Arc<ChunkPool>) -> Self {
        Self {
            current: Mutex::new(None),
            pool,
        }
    }

    /// A copy of the concatenation of `parts`, in the current chunk (or a
    /// buffer of its own when large).
    pub(super) fn copy(&self, parts: &[&[u8]]) -> Bytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len >= ARENA_DEDICATED_BYTES_MIN {
            return Bytes::from(parts.concat());
        }
        let mut current = self.current.lock();
        let chunk = match &mut *current {
            Some(chunk) if chunk.capacity() >= len => chunk,
            slot => {
                if let Some(filled) = slot.take() {
                    self.pool.put_back(filled);
                }
                slot.insert(self.pool.take())
            }
        };
        for part in parts {
            chunk.extend_from_slice(part);
        }
        // Splits off the copy; the chunk keeps the rest of its room, in the
        // same allocation, for the next call.
        chunk.split().freeze()
    }
}

impl Drop for Arena {
    /// The chunk being filled goes to the pool too: copies from it may
    /// still be alive, and it is reclaimed once they are gone.
    fn drop(&mut self) {
        if let Some(chunk) = self.current.get_mut().take() {
            self.pool.put_back(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under [`ARENA_DEDICATED_BYTES_MIN`], and six fit in a chunk.
    const PART_BYTES: usize = 10_000;
    const PARTS_PER_CHUNK: usize = ARENA_CHUNK_BYTES / PART_BYTES;

    #[test]
    fn a_chunk_is_reused_only_after_every_copy_from_it_is_gone() {
        let pool = ChunkPool::new(4 * ARENA_CHUNK_BYTES);
        let arena = Arena::new(Arc::clone(&pool));
        let part = vec![1; PART_BYTES];
        let first: Vec<Bytes> = (0..PARTS_PER_CHUNK).map(|_| arena.copy(&[&part])).collect();
        let first_chunk = first[0].as_ptr();
        // The next copy needs a second chunk.
        let _second = arena.copy(&[&part]);
        assert_eq!(pool.len(), 1, "the filled chunk waits in the pool");
        drop(arena);
        assert_eq!(pool.len(), 2);

        // Copies of the first chunk are alive: a new arena cannot take it.
        let arena = Arena::new(Arc::clone(&pool));
        let copy = arena.copy(&[&[4; 10]]);
        assert_ne!(copy.as_ptr(), first_chunk);
        assert!(first.iter().all(|copy| copy[..] == part[..]));
        drop(arena);

        // Once they are gone, the next arena writes into the same memory.
        drop(first);
        let arena = Arena::new(Arc::clone(&pool));
        let reused = arena.copy(&[b"abc", b"def"]);
        assert_eq!(reused.as_ptr(), first_chunk);
        assert_eq!(&reused[..], b"abcdef");
    }

    #[test]
    fn the_pool_keeps_at_most_its_bound_and_a_pinned_chunk_is_pushed_out() {
        let pool = ChunkPool::new(3 * ARENA_CHUNK_BYTES);
        let arena = Arena::new(Arc::clone(&pool));
        let part = vec![7; PART_BYTES];
        // A reader pins the first chunk for the whole test.
        let pinned = arena.copy(&[&part]);
        for _ in 0..20 * PARTS_PER_CHUNK {
            let copy = arena.copy(&[&part]);
            assert_eq!(&copy[..], &part[..]);
            assert!(pool.len() <= 3);
        }
        drop(arena);
        assert_eq!(pool.len(), 3);
        assert_eq!(&pinned[..], &part[..]);

        let none = ChunkPool::new(0);
        let arena = Arena::new(Arc::clone(&none));
        for _ in 0..3 * PARTS_PER_CHUNK {
            arena.copy(&[&part]);
        }
        drop(arena);
        assert_eq!(none.len(), 0);
    }
}
