//! Opens arbitrary bytes as a segment file and reads them every way the
//! engine does (map, `pread`, cached `pread`; point reads, both iteration
//! directions, `verify`). No input may panic, and a file that passes
//! `verify` must read consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::storage::segment::fuzz_segment_open(data);
});
