//! Opens a segment file and reads it every way the engine does (map,
//! `pread`, cached `pread`; point reads, both iteration directions, range
//! scans, `verify`). The first byte chooses the mode: even, the rest is the
//! file as is; odd, the rest describes entries the real writer turns into a
//! segment, and edits to it whose checksums are then recomputed, so the
//! decoders behind the checksums see hostile content. No input may panic or
//! fail with anything but `Corruption`, and a file that passes `verify` must
//! read consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::storage::segment::fuzz_segment(data);
});
