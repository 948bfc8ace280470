//! The data every engine gets: keys, values, and the read sequences.
//!
//! Everything is derived from an index with `splitmix64`, so every engine
//! sees exactly the same bytes in the same order and nothing random is
//! generated inside a timed loop except what is described here.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};

/// Bytes of every key.
pub const KEY_BYTES: usize = 16;
/// Bytes of every value.
pub const VALUE_BYTES: usize = 100;

/// A key.
pub type Key = [u8; KEY_BYTES];
/// A value.
pub type Value = [u8; VALUE_BYTES];

/// Sebastiano Vigna's splitmix64 finalizer: a bijection on `u64` that
/// scatters consecutive inputs.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th key of the random-order sequence: 8 scattered bytes, then
/// `i` big-endian (so keys are unique and arrive in random order).
pub fn key(i: u64) -> Key {
    let mut k = [0u8; KEY_BYTES];
    k[..8].copy_from_slice(&splitmix64(i).to_be_bytes());
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// The value written with the `i`-th key: 100 pseudo-random
/// (incompressible) bytes.
pub fn value(i: u64) -> Value {
    let mut v = [0u8; VALUE_BYTES];
    let mut state = i ^ 0x5EED_5EED_5EED_5EED;
    for chunk in v.chunks_mut(8) {
        state = splitmix64(state);
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    v
}

/// The keys `key(0..n)` in sorted order (the bulk-load and read dataset).
pub fn sorted_keys(n: u64) -> Vec<Key> {
    let mut keys: Vec<Key> = (0..n).map(key).collect();
    keys.sort_unstable();
    keys
}

/// `count` indexes into a dataset of `n` keys, uniformly distributed.
pub fn uniform_indexes(n: u64, count: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count).map(|_| rng.random_range(0..n) as u32).collect()
}

/// `count` indexes into a dataset of `n` keys, Zipf(`s`)-distributed over
/// ranks; rank `r` maps to index `splitmix64(r) mod n`, so the hot keys are
/// scattered over the key space rather than clustered at its start.
pub fn zipf_indexes(n: u64, s: f64, count: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let zipf = match Zipf::new(n as f64, s) {
        Ok(zipf) => zipf,
        Err(e) => panic!("Zipf({n}, {s}): {e}"),
    };
    (0..count)
        .map(|_| {
            let rank = zipf.sample(&mut rng) as u64;
            (splitmix64(rank) % n) as u32
        })
        .collect()
}
