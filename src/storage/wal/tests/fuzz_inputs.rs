//! Feeds random and mutated-valid logs to the fuzz entry point, whose
//! assertions are the properties under test.

use proptest::prelude::*;

use super::*;
use crate::storage::wal::{FUZZ_LOG_NUMBER, fuzz_wal_replay};

/// Cases per run: a few thousand in CI, many more with NIMBUS_LONG_TESTS=1.
fn cases() -> u32 {
    if std::env::var_os("NIMBUS_LONG_TESTS").is_some() {
        50_000
    } else {
        3_000
    }
}

/// A valid log of batches with the given value sizes.
fn valid_log(sizes: &[usize]) -> Vec<u8> {
    let fs = disk();
    let batches: Vec<WriteBatch> = sizes
        .iter()
        .enumerate()
        .map(|(i, size)| {
            let mut batch = WriteBatch::new();
            batch.put(&[i as u8], &vec![i as u8; *size]);
            if size % 3 == 0 {
                batch.delete(b"gone");
            }
            batch
        })
        .collect();
    write_log(&fs, FUZZ_LOG_NUMBER, 1, &batches);
    fs.read(&log_file_path(dir(), FUZZ_LOG_NUMBER)).unwrap()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Zero { at: usize, len: usize },
    Garbage { at: usize, bytes: Vec<u8> },
    Duplicate { from: usize, len: usize, to: usize },
    AppendZeros { len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<usize>();
    prop_oneof![
        (at, 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        at.prop_map(|at| Mutation::Truncate { at }),
        (at, 1..5000usize).prop_map(|(at, len)| Mutation::Zero { at, len }),
        (at, prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Mutation::Garbage { at, bytes }),
        (at, 1..40_000usize, at).prop_map(|(from, len, to)| Mutation::Duplicate { from, len, to }),
        (1..70_000usize).prop_map(|len| Mutation::AppendZeros { len }),
    ]
}

fn apply(image: &mut Vec<u8>, mutation: &Mutation) {
    let len = image.len().max(1);
    match mutation {
        Mutation::Flip { at, mask } => {
            if let Some(byte) = image.get_mut(at % len) {
                *byte ^= mask;
            }
        }
        Mutation::Truncate { at } => image.truncate(at % len),
        Mutation::Zero { at, len: n } => {
            for byte in image.iter_mut().skip(at % len).take(*n) {
                *byte = 0;
            }
        }
        Mutation::Garbage { at, bytes } => {
            for (byte, new) in image.iter_mut().skip(at % len).zip(bytes) {
                *byte = *new;
            }
        }
        Mutation::Duplicate { from, len: n, to } => {
            let from = from % len;
            let chunk: Vec<u8> = image.iter().skip(from).take(*n).copied().collect();
            let to = (to % len).min(image.len());
            image.splice(to..to, chunk);
        }
        Mutation::AppendZeros { len: n } => image.extend(std::iter::repeat_n(0, *n)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn fuzz_entry_accepts_mutated_valid_logs(
        sizes in prop::collection::vec(prop_oneof![0..200usize, 200..40_000usize], 0..8),
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let mut image = valid_log(&sizes);
        for m in &mutations {
            apply(&mut image, m);
        }
        fuzz_wal_replay(&image);
    }

    #[test]
    fn fuzz_entry_accepts_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        fuzz_wal_replay(&bytes);
    }
}
