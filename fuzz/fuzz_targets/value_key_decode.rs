//! Key decoding of untrusted bytes (a damaged file, say): never panics, and
//! whatever decodes is the canonical encoding of its value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nimbus::ScalarType;
use nimbus::value::{decode_key_value, encode_key_value};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let key_type = [ScalarType::S, ScalarType::N, ScalarType::B][usize::from(selector % 3)];
    if let Ok((value, used)) = decode_key_value(key_type, bytes) {
        let mut encoded = Vec::new();
        encode_key_value(&value, &mut encoded).unwrap();
        assert_eq!(encoded.as_slice(), &bytes[..used]);
    }
});
