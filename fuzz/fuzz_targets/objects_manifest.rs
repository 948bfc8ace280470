//! Fuzz target: decoding arbitrary bytes as any object-catalogue row (the
//! object manifest first) never panics, and whatever decodes re-encodes to
//! the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::objects::fuzz::decode_catalogue_rows(data);
});
