//! The bloom filter over a segment's user keys, so a point read of a key the
//! segment lacks usually costs no block read.
//!
//! One xxh3-64 hash per key; its two 32-bit halves drive Kirsch–Mitzenmacher
//! double hashing (`h1 + i·h2`) for the `k` probes. With `b` bits per key the
//! optimal `k` is `b·ln 2`, which gives a false-positive rate near
//! `0.6185^b` (about 0.8 % at 10 bits per key).
#![cfg_attr(not(test), allow(dead_code))]

use bytes::Bytes;

use super::codec::DecodeError;

/// The most probes a filter may ask for; more would only come from a
/// corrupt file (k = 30 is optimal for 43 bits per key).
pub(crate) const PROBES_MAX: u8 = 30;

/// The smallest bit array, so tiny segments do not get degenerate filters.
const BITS_MIN: usize = 64;

/// The hash of a user key that the filter stores.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// The probe count for `bits_per_key`: `round(bits_per_key · ln 2)`, at least 1.
fn probes_for(bits_per_key: u32) -> u8 {
    let probes = (f64::from(bits_per_key) * std::f64::consts::LN_2).round() as u32;
    probes.clamp(1, u32::from(PROBES_MAX)) as u8
}

/// Bit positions probed for `hash` in a filter of `bits` bits.
fn probe_positions(hash: u64, probes: u8, bits: u64) -> impl Iterator<Item = u64> {
    let h1 = hash & 0xffff_ffff;
    // An odd step never cycles early when `bits` is a power of two.
    let h2 = (hash >> 32) | 1;
    (0..u64::from(probes)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// Builds the filter payload: the bit array followed by the probe count.
pub(crate) fn build(key_hashes: &[u64], bits_per_key: u32) -> Vec<u8> {
    let bits_wanted = key_hashes
        .len()
        .saturating_mul(bits_per_key as usize)
        .max(BITS_MIN);
    let bytes = bits_wanted.div_ceil(8);
    let bits = (bytes * 8) as u64;
    let probes = probes_for(bits_per_key);
    let mut payload = vec![0u8; bytes + 1];
    for &hash in key_hashes {
        for bit in probe_positions(hash, probes, bits) {
            // `bit < bits = 8 * bytes`, so the byte index is in range.
            if let Some(byte) = payload.get_mut((bit / 8) as usize) {
                *byte |= 1 << (bit % 8);
            }
        }
    }
    if let Some(last) = payload.last_mut() {
        *last = probes;
    }
    payload
}

/// A filter read from a segment (checksum already verified).
#[derive(Debug, Clone)]
pub(crate) struct BloomFilter {
    bits: Bytes,
    probes: u8,
}

impl BloomFilter {
    /// Parses a filter payload.
    pub(crate) fn parse(payload: Bytes) -> Result<Self, DecodeError> {
        let Some((&probes, _)) = payload.split_last() else {
            return Err(DecodeError::new(0, "empty bloom filter"));
        };
        if probes == 0 || probes > PROBES_MAX {
            return Err(DecodeError::new(
                payload.len() - 1,
                format!("bloom filter with {probes} probes"),
            ));
        }
        if payload.len() == 1 {
            return Err(DecodeError::new(0, "bloom filter without bits"));
        }
        let bits = payload.slice(..payload.len() - 1);
        Ok(Self { bits, probes })
    }

    /// Whether a key with this hash may be in the segment (false: surely not).
    pub(crate) fn may_contain_hash(&self, hash: u64) -> bool {
        let bits = self.bits.len() as u64 * 8;
        probe_positions(hash, self.probes, bits).all(|bit| {
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }

    /// Whether `key` may be in the segment.
    pub(crate) fn may_contain(&self, key: &[u8]) -> bool {
        self.may_contain_hash(key_hash(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter_of(keys: impl Iterator<Item = Vec<u8>>, bits_per_key: u32) -> BloomFilter {
        let hashes: Vec<u64> = keys.map(|key| key_hash(&key)).collect();
        BloomFilter::parse(Bytes::from(build(&hashes, bits_per_key))).unwrap()
    }

    #[test]
    fn ten_bits_per_key_gives_seven_probes() {
        assert_eq!(probes_for(10), 7);
        assert_eq!(probes_for(1), 1);
        assert_eq!(probes_for(0), 1);
        assert_eq!(probes_for(1000), PROBES_MAX);
    }

    #[test]
    fn has_no_false_negatives() {
        let keys = || (0..5_000u32).map(|i| format!("key-{i}").into_bytes());
        let filter = filter_of(keys(), 10);
        assert!(keys().all(|key| filter.may_contain(&key)));
        let single = filter_of(std::iter::once(b"only".to_vec()), 10);
        assert!(single.may_contain(b"only"));
    }

    #[test]
    fn false_positive_rate_is_near_the_theoretical_rate() {
        const KEYS: u32 = 20_000;
        const PROBES: u32 = 200_000;
        let filter = filter_of((0..KEYS).map(|i| format!("present-{i}").into_bytes()), 10);
        let false_positives = (0..PROBES)
            .filter(|i| filter.may_contain(format!("absent-{i}").as_bytes()))
            .count();
        let rate = false_positives as f64 / f64::from(PROBES);
        // Theory: (1 - e^(-7/10))^7 = 0.82 %.
        assert!(rate < 0.0125, "false-positive rate {rate}");
        assert!(rate > 0.004, "suspiciously low false-positive rate {rate}");
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(BloomFilter::parse(Bytes::new()).is_err());
        assert!(BloomFilter::parse(Bytes::from_static(&[7])).is_err());
        assert!(BloomFilter::parse(Bytes::from_static(&[0xff, 0])).is_err());
        assert!(BloomFilter::parse(Bytes::from_static(&[0xff, 31])).is_err());
        let all_ones = BloomFilter::parse(Bytes::from_static(&[0xff, 3])).unwrap();
        assert!(all_ones.may_contain(b"anything"));
    }
}
