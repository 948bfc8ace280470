//! Fuzz target: decoding arbitrary bytes as a manifest never panics, and
//! whatever decodes re-encodes to the same bytes and builds a version.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::storage::manifest::fuzz_manifest_decode(data);
});
