//! DynamoDB JSON parsing of untrusted bytes: never panics, and whatever
//! parses prints back to JSON that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nimbus::{AttributeValue, Item};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(value) = AttributeValue::from_json(text) {
        let again = AttributeValue::from_json(&value.to_json());
        assert_eq!(again.as_ref(), Ok(&value), "round trip of {text}");
    }
    if let Ok(item) = Item::from_json(text) {
        assert_eq!(Item::from_json(&item.to_json()).as_ref(), Ok(&item));
    }
});
