//! The object-catalogue fuzz entry point is public, and every truncation,
//! byte flip and splice of valid rows is rejected or round-trips: no
//! panic (deterministic mutations, so CI runs it without a fuzzer).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use nimbus::objects::fuzz::{decode_catalogue_rows, sample_catalogue_rows};
use nimbus::storage::sim::SimRng;

#[test]
fn mutated_catalogue_rows_never_panic() {
    let samples = sample_catalogue_rows();
    let mut rng = SimRng::new(8);
    for sample in &samples {
        decode_catalogue_rows(sample);
        for len in 0..sample.len() {
            decode_catalogue_rows(&sample[..len]);
        }
        for _ in 0..2000 {
            let mut mutated = sample.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.below_usize(mutated.len());
                mutated[at] = rng.next_u64() as u8;
            }
            if rng.coin() {
                let other = &samples[rng.below_usize(samples.len())];
                let cut = rng.below_usize(mutated.len());
                mutated.truncate(cut);
                mutated.extend_from_slice(&other[rng.below_usize(other.len())..]);
            }
            decode_catalogue_rows(&mutated);
        }
    }
    decode_catalogue_rows(&[]);
    decode_catalogue_rows(&[
        1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
}
