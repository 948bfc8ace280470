//! The simulator's deterministic random numbers.

/// A small deterministic PRNG (SplitMix64) for crash images and tests.
///
/// Not cryptographic; chosen because it is tiny, has no dependencies and
/// gives every seed (including 0) a well-mixed stream.
#[derive(Debug, Clone)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    /// A generator whose whole stream is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (`0` when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // The modulo bias is below 2^-40 for the bounds tests use.
        self.next_u64() % bound
    }

    /// A value in `0..bound` as a `usize` (`0` when `bound` is 0).
    pub fn below_usize(&mut self, bound: usize) -> usize {
        let bound64 = u64::try_from(bound).unwrap_or(u64::MAX);
        usize::try_from(self.below(bound64)).unwrap_or(0)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}
