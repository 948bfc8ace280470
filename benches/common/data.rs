//! Deterministic bench data shared by the benches: a seeded number stream
//! and incompressible text to fill items to a size.

// Each bench includes this file as its own module and uses part of it.
#![allow(dead_code)]

/// splitmix64's finaliser: a bijective mix of `n`, so a cheap, seeded,
/// deterministic stream of random numbers.
pub fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `len` letters from `a`–`p` drawn from the stream seeded by `seed`: text
/// that does not compress, so an item's size is its stored size.
pub fn incompressible_text(len: usize, seed: u64) -> String {
    let mut state = mix(seed);
    (0..len)
        .map(|i| {
            if i % 12 == 0 {
                state = mix(state);
            }
            char::from(b'a' + ((state >> ((i % 12) * 5)) & 15) as u8)
        })
        .collect()
}
