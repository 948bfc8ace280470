//! Number parsing of untrusted text: never panics; accepted numbers print
//! canonically, parse back equal, encode to keys that decode back, and add
//! and subtract without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nimbus::value::{decode_key_value, encode_key_value};
use nimbus::{AttributeValue, Number, ScalarType};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (left, right) = text.split_once('|').unwrap_or((text, "1"));
    let Ok(number) = left.parse::<Number>() else {
        return;
    };
    let canonical = number.to_string();
    assert_eq!(canonical.parse::<Number>(), Ok(number));
    assert_eq!(number.to_scientific().parse::<Number>(), Ok(number));

    let value = AttributeValue::N(number);
    let mut encoded = Vec::new();
    encode_key_value(&value, &mut encoded).unwrap();
    assert_eq!(decode_key_value(ScalarType::N, &encoded), Ok((value, encoded.len())));

    if let Ok(other) = right.parse::<Number>() {
        if let Ok(sum) = number.checked_add(&other) {
            assert_eq!(sum.checked_sub(&other), Ok(number));
        }
        let _ = number.checked_sub(&other);
        let mut other_encoded = Vec::new();
        encode_key_value(&AttributeValue::N(other), &mut other_encoded).unwrap();
        assert_eq!(encoded.cmp(&other_encoded), number.cmp(&other));
    }
});
