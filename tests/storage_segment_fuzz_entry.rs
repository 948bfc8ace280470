//! The segment fuzz entry point is reachable from outside the crate, as the
//! cargo-fuzz target calls it, and rejects garbage without panicking.

#[test]
fn fuzz_entry_is_public_and_survives_garbage() {
    nimbus::storage::segment::fuzz_segment_open(&[]);
    nimbus::storage::segment::fuzz_segment_open(b"NIMBUSSG");
    let mut tail_only = vec![0u8; 64];
    tail_only.extend_from_slice(&64u32.to_le_bytes());
    tail_only.extend_from_slice(&1u32.to_le_bytes());
    tail_only.extend_from_slice(&[0u8; 8]);
    tail_only.extend_from_slice(b"NIMBUSSG");
    nimbus::storage::segment::fuzz_segment_open(&tail_only);
}
