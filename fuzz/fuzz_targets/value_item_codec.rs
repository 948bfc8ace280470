//! The stored item encoding read from untrusted bytes (a damaged row):
//! never panics or over-allocates, and whatever decodes re-encodes to the
//! same bytes (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::value::fuzz_item_codec(data);
});
