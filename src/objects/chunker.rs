//! Content-defined chunking: FastCDC (Xia et al., USENIX ATC 2016) with a
//! Gear rolling hash, cut-point skipping below the minimum size and
//! normalised chunking (a harder mask before the average size, an easier
//! one after it), so that an insertion in a body moves only the chunk
//! boundaries near it and versions that share most bytes share most chunks.
//!
//! The Gear table is derived from a per-store secret seed: observed chunk
//! sizes of known files would otherwise leak the chunker's parameters and
//! then content (IACR eprint 2025/532). Chunk boundaries are never exposed
//! through the API.

/// The normalisation level: the small-chunk mask has this many more bits
/// than `log2(avg)`, the large-chunk mask this many fewer (FastCDC's
/// recommended level 2).
const NORMALIZATION_BITS: u32 = 2;

/// A FastCDC chunker with a seeded Gear table.
#[derive(Clone)]
pub(crate) struct Chunker {
    gear: Box<[u64; 256]>,
    /// Each Gear value shifted left by one (the two-byte roll).
    gear_shifted: Box<[u64; 256]>,
    min: usize,
    avg: usize,
    max: usize,
    mask_small: u64,
    mask_large: u64,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("min", &self.min)
            .field("avg", &self.avg)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// Where [`Chunker::cut_incremental`] stopped: the rolling hash and how
/// many bytes of the chunk it has scanned. A new chunk starts afresh.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct CutSearch {
    hash: u64,
    scanned: usize,
}

/// A mask of `bits` bits just below the top one: in a Gear hash, bit `k`
/// depends on the last `k + 1` bytes, so high bits see a 63-byte window.
/// The top bit stays out so that `mask << 1` loses nothing (the two-byte
/// roll checks the shifted mask).
fn high_bits_mask(bits: u32) -> u64 {
    match bits.min(63) {
        0 => 0,
        bits => (u64::MAX << (64 - bits)) >> 1,
    }
}

impl Chunker {
    /// A chunker with sizes `min <= avg <= max` (checked by the caller's
    /// option validation) and the Gear table derived from `seed`.
    pub(crate) fn new(seed: &[u8; 32], min: usize, avg: usize, max: usize) -> Self {
        let mut gear = Box::new([0u64; 256]);
        let mut stream = blake3::Hasher::new_keyed(seed);
        stream.update(b"nimbus objects gear table v1");
        let mut bytes = [0u8; 256 * 8];
        stream.finalize_xof().fill(&mut bytes);
        for (entry, chunk) in gear.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *entry = u64::from_le_bytes(word);
        }
        let avg_bits = avg.max(2).ilog2();
        let mut gear_shifted = Box::new([0u64; 256]);
        for (shifted, value) in gear_shifted.iter_mut().zip(gear.iter()) {
            *shifted = value << 1;
        }
        Self {
            gear,
            gear_shifted,
            min,
            avg,
            max,
            mask_small: high_bits_mask(avg_bits + NORMALIZATION_BITS),
            mask_large: high_bits_mask(avg_bits.saturating_sub(NORMALIZATION_BITS)),
        }
    }

    /// The largest chunk this chunker cuts.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// The length of the first chunk of `data`. The caller passes at least
    /// `max()` bytes unless `data` is the end of the body.
    pub(crate) fn cut(&self, data: &[u8]) -> usize {
        if data.len() <= self.min {
            return data.len();
        }
        let end = data.len().min(self.max);
        let center = self.avg.min(end);
        let mut hash = 0u64;
        if let Some(cut) = self.scan(data, self.min, center, self.mask_small, &mut hash) {
            return cut;
        }
        self.scan(data, center, end, self.mask_large, &mut hash)
            .unwrap_or(end)
    }

    /// Continues the search for the end of the chunk that starts at
    /// `data[0]`, for a body that arrives in pieces: `data` holds what has
    /// arrived of the chunk so far, grown (never changed) since the last
    /// call with the same `search`. Returns the chunk's length once it is
    /// known — the same cut as [`Chunker::cut`] over the whole body — or
    /// `None` if more bytes are needed; at the end of the body the chunk
    /// is all of `data`. Each byte is scanned once, however it is split.
    pub(crate) fn cut_incremental(&self, data: &[u8], search: &mut CutSearch) -> Option<usize> {
        let end = data.len().min(self.max);
        let center = self.avg.min(end);
        let mut from = search.scanned.max(self.min);
        if from < center {
            if let Some(cut) = self.scan(data, from, center, self.mask_small, &mut search.hash) {
                return Some(cut);
            }
            from = center;
        }
        if from < end && from >= self.avg {
            if let Some(cut) = self.scan(data, from, end, self.mask_large, &mut search.hash) {
                return Some(cut);
            }
            from = end;
        }
        search.scanned = search.scanned.max(from);
        (end == self.max).then_some(self.max)
    }

    /// The first cut point in `data[start..end]` under `mask`, rolling two
    /// bytes per step (FastCDC 2020): with the hash shifted by two and the
    /// first byte's Gear value pre-shifted by one, checking `mask << 1`
    /// after the first byte is the same test as checking `mask` one byte
    /// earlier, so the cut points are exactly those of the one-byte loop.
    fn scan(
        &self,
        data: &[u8],
        start: usize,
        end: usize,
        mask: u64,
        state: &mut u64,
    ) -> Option<usize> {
        let (gear, gear_shifted) = (&*self.gear, &*self.gear_shifted);
        let mask_shifted = mask << 1;
        let mut hash = *state;
        let window = &data[start..end];
        let pairs = window.chunks_exact(2);
        let rest = pairs.remainder();
        for (pair_index, pair) in pairs.enumerate() {
            hash = (hash << 2).wrapping_add(gear_shifted[usize::from(pair[0])]);
            if hash & mask_shifted == 0 {
                return Some(start + 2 * pair_index + 1);
            }
            hash = hash.wrapping_add(gear[usize::from(pair[1])]);
            if hash & mask == 0 {
                return Some(start + 2 * pair_index + 2);
            }
        }
        if let [last] = rest {
            hash = (hash << 1).wrapping_add(gear[usize::from(*last)]);
            if hash & mask == 0 {
                return Some(end);
            }
        }
        *state = hash;
        None
    }

    /// Every chunk boundary of a whole body, as lengths.
    #[cfg(test)]
    pub(crate) fn lengths(&self, mut data: &[u8]) -> Vec<usize> {
        let mut lengths = Vec::new();
        while !data.is_empty() {
            let len = self.cut(data);
            lengths.push(len);
            data = &data[len..];
        }
        lengths
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sim::SimRng;

    fn random(len: usize, seed: u64) -> Vec<u8> {
        let mut data = vec![0u8; len];
        SimRng::new(seed).fill(&mut data);
        data
    }

    #[test]
    fn chunks_respect_the_bounds_and_cover_the_body() {
        let chunker = Chunker::new(&[1; 32], 1024, 4096, 16384);
        let data = random(1 << 20, 1);
        let lengths = chunker.lengths(&data);
        assert_eq!(lengths.iter().sum::<usize>(), data.len());
        for len in &lengths[..lengths.len() - 1] {
            assert!((1024..=16384).contains(len), "{len}");
        }
        let mean = data.len() / lengths.len();
        assert!((2048..=8192).contains(&mean), "mean chunk {mean}");
    }

    #[test]
    fn an_insertion_moves_only_nearby_boundaries() {
        let chunker = Chunker::new(&[2; 32], 1024, 4096, 16384);
        let data = random(512 * 1024, 2);
        let mut edited = data.clone();
        edited.splice(200_000..200_000, b"inserted bytes".iter().copied());
        let set = |body: &[u8]| {
            let mut offset = 0;
            let mut chunks = std::collections::HashSet::new();
            for len in chunker.lengths(body) {
                chunks.insert(blake3::hash(&body[offset..offset + len]));
                offset += len;
            }
            chunks
        };
        let (before, after) = (set(&data), set(&edited));
        let shared = before.intersection(&after).count();
        assert!(shared + 3 >= before.len(), "{shared} of {}", before.len());
    }

    /// The textbook one-byte FastCDC loop, to check the two-byte roll.
    fn reference_cut(chunker: &Chunker, data: &[u8]) -> usize {
        if data.len() <= chunker.min {
            return data.len();
        }
        let end = data.len().min(chunker.max);
        let center = chunker.avg.min(end);
        let mut hash = 0u64;
        for (index, &byte) in data.iter().enumerate().take(end).skip(chunker.min) {
            hash = (hash << 1).wrapping_add(chunker.gear[usize::from(byte)]);
            let mask = if index < center {
                chunker.mask_small
            } else {
                chunker.mask_large
            };
            if hash & mask == 0 {
                return index + 1;
            }
        }
        end
    }

    #[test]
    fn two_byte_roll_matches_the_one_byte_loop() {
        for (seed, (min, avg, max)) in [(1024, 4096, 16384), (1025, 4097, 9999), (2048, 2048, 2050)]
            .into_iter()
            .enumerate()
        {
            let chunker = Chunker::new(&[seed as u8; 32], min, avg, max);
            let data = random(300_000, seed as u64);
            let mut rest = &data[..];
            while !rest.is_empty() {
                let cut = chunker.cut(rest);
                assert_eq!(cut, reference_cut(&chunker, rest));
                rest = &rest[cut..];
            }
        }
    }

    #[test]
    fn incremental_cuts_match_whole_body_cuts() {
        let mut rng = SimRng::new(7);
        for (seed, (min, avg, max)) in [(1024, 4096, 16384), (1025, 4097, 9999), (2048, 2048, 2050)]
            .into_iter()
            .enumerate()
        {
            let chunker = Chunker::new(&[seed as u8 + 3; 32], min, avg, max);
            let data = random(200_000, seed as u64 + 10);
            let expected = chunker.lengths(&data);
            // Feed the body in pieces of random sizes, some larger than a chunk.
            let mut lengths = Vec::new();
            let (mut start, mut arrived) = (0, 0);
            let mut search = CutSearch::default();
            while start < data.len() {
                if arrived < data.len() {
                    let piece = 1 + rng.below_usize(20_000);
                    arrived = (arrived + piece).min(data.len());
                }
                while let Some(len) = chunker.cut_incremental(&data[start..arrived], &mut search) {
                    lengths.push(len);
                    start += len;
                    search = CutSearch::default();
                }
                if arrived == data.len() && start < arrived {
                    // The body ended: what is left is the last chunk.
                    lengths.push(arrived - start);
                    start = arrived;
                }
            }
            assert_eq!(lengths, expected, "sizes {min}/{avg}/{max}");
        }
    }

    #[test]
    fn the_seed_changes_the_boundaries() {
        let data = random(256 * 1024, 3);
        let a = Chunker::new(&[1; 32], 1024, 4096, 16384).lengths(&data);
        let b = Chunker::new(&[9; 32], 1024, 4096, 16384).lengths(&data);
        assert_ne!(a, b);
    }
}
