//! The key encoding sorts exactly as DynamoDB orders key values, decodes
//! back, and delimits itself inside `(partition key, sort key)` pairs.

// A test fails by panicking; unwrapping an unexpected error is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;

use nimbus::value::{decode_key_value, encode_key_value};
use nimbus::{AttributeValue, Number, ScalarType};
use proptest::prelude::*;

fn encode(value: &AttributeValue) -> Vec<u8> {
    let mut out = Vec::new();
    encode_key_value(value, &mut out).unwrap();
    out
}

fn key_type(value: &AttributeValue) -> ScalarType {
    match value {
        AttributeValue::S(_) => ScalarType::S,
        AttributeValue::N(_) => ScalarType::N,
        AttributeValue::B(_) => ScalarType::B,
        other => panic!("not a key value: {other:?}"),
    }
}

/// DynamoDB's order for key values of one type.
fn dynamodb_order(a: &AttributeValue, b: &AttributeValue) -> Ordering {
    match (a, b) {
        (AttributeValue::S(x), AttributeValue::S(y)) => x.as_bytes().cmp(y.as_bytes()),
        (AttributeValue::B(x), AttributeValue::B(y)) => x.cmp(y),
        (AttributeValue::N(x), AttributeValue::N(y)) => x.cmp(y),
        _ => panic!("values of different types"),
    }
}

fn n(text: &str) -> AttributeValue {
    AttributeValue::N(text.parse().unwrap())
}

#[test]
fn numbers_encode_in_numeric_order_across_the_whole_range() {
    let ascending = [
        format!("-9.{}e125", "9".repeat(37)),
        "-1e125".into(),
        "-100".into(),
        "-99.5".into(),
        "-10".into(),
        "-1.55".into(),
        "-1.5".into(),
        "-1.05".into(),
        "-1".into(),
        "-1e-130".into(),
        "0".into(),
        "1e-130".into(),
        "1.5e-130".into(),
        "0.5".into(),
        "1".into(),
        "1.05".into(),
        "1.5".into(),
        "1.55".into(),
        "10".into(),
        "15".into(),
        "150".into(),
        format!("9.{}e125", "9".repeat(37)),
    ];
    for pair in ascending.windows(2) {
        let (a, b) = (n(&pair[0]), n(&pair[1]));
        assert!(encode(&a) < encode(&b), "{} < {}", pair[0], pair[1]);
    }
}

#[test]
fn equal_numbers_encode_identically() {
    assert_eq!(encode(&n("1e3")), encode(&n("1000.00")));
    assert_eq!(encode(&n("-0")), encode(&n("0")));
}

#[test]
fn strings_sort_by_utf8_bytes_with_embedded_zeros() {
    let ascending = [
        "",
        "\0",
        "\0\0",
        "\0a",
        "a",
        "a\0",
        "a\0b",
        "ab",
        "b",
        "é",
        "\u{10000}",
    ];
    for pair in ascending.windows(2) {
        let (a, b) = (AttributeValue::from(pair[0]), AttributeValue::from(pair[1]));
        assert!(encode(&a) < encode(&b), "{:?} < {:?}", pair[0], pair[1]);
    }
}

#[test]
fn binaries_sort_as_unsigned_bytes() {
    let ascending: [&[u8]; 6] = [&[], &[0], &[0, 0xFF], &[1], &[0x7F], &[0x80]];
    for pair in ascending.windows(2) {
        let (a, b) = (
            AttributeValue::B(pair[0].to_vec()),
            AttributeValue::B(pair[1].to_vec()),
        );
        assert!(encode(&a) < encode(&b), "{:?} < {:?}", pair[0], pair[1]);
    }
}

#[test]
fn non_key_types_are_rejected() {
    let mut out = Vec::new();
    assert!(encode_key_value(&AttributeValue::Bool(true), &mut out).is_err());
    assert!(encode_key_value(&AttributeValue::L(vec![]), &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn malformed_encodings_are_errors() {
    let cases: [(ScalarType, &[u8]); 9] = [
        (ScalarType::S, b"abc"),
        (ScalarType::S, b"a\0"),
        (ScalarType::S, b"a\0\x07"),
        (ScalarType::S, b"\xFF\0\x01"),
        (ScalarType::N, b""),
        (ScalarType::N, b"\x09"),
        (ScalarType::N, b"\x03\x82"),
        (ScalarType::N, b"\x03\x82\x00"),
        (ScalarType::N, b"\x03\x82\x02\x01\x00"),
    ];
    for (key_type, bytes) in cases {
        assert!(
            decode_key_value(key_type, bytes).is_err(),
            "{key_type:?} {bytes:?}"
        );
    }
}

fn any_key_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any_number().prop_map(AttributeValue::N),
        ".{0,12}".prop_map(AttributeValue::S),
        prop::collection::vec(
            prop_oneof![Just(0u8), Just(1), Just(0xFF), any::<u8>()],
            0..12
        )
        .prop_map(AttributeValue::B),
        "[\\x00a\\u{e9}]{0,6}".prop_map(AttributeValue::S),
    ]
}

fn any_number() -> impl Strategy<Value = Number> {
    (any::<bool>(), 1u32..=38, any::<u128>(), -130i32..=125).prop_filter_map(
        "in range",
        |(negative, digits, raw, leading)| {
            let significand = raw % 10u128.pow(digits);
            format!(
                "{}{}e{}",
                if negative { "-" } else { "" },
                significand,
                leading - digits as i32 + 1
            )
            .parse()
            .ok()
        },
    )
}

/// Two values of the same key type.
fn same_type_pair() -> impl Strategy<Value = (AttributeValue, AttributeValue)> {
    prop_oneof![
        (any_number(), any_number())
            .prop_map(|(a, b)| (AttributeValue::N(a), AttributeValue::N(b))),
        // Nearby numbers share digits, the hard case for the pair encoding.
        (any_number(), 0u32..4).prop_map(|(a, k)| {
            let b: Number = format!("{}{}", a, "5".repeat(k as usize))
                .parse()
                .unwrap_or(a);
            (AttributeValue::N(a), AttributeValue::N(b))
        }),
        ("[\\x00ab\\u{e9}]{0,6}", "[\\x00ab\\u{e9}]{0,6}")
            .prop_map(|(a, b)| (AttributeValue::S(a), AttributeValue::S(b))),
        (
            prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF)], 0..6),
            prop::collection::vec(prop_oneof![Just(0u8), Just(1), Just(0xFF)], 0..6)
        )
            .prop_map(|(a, b)| (AttributeValue::B(a), AttributeValue::B(b))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn encoding_round_trips(value in any_key_value()) {
        let bytes = encode(&value);
        let (decoded, used) = decode_key_value(key_type(&value), &bytes).unwrap();
        prop_assert_eq!(decoded, value);
        prop_assert_eq!(used, bytes.len());
    }

    #[test]
    fn encoding_order_is_value_order((a, b) in same_type_pair()) {
        prop_assert_eq!(encode(&a).cmp(&encode(&b)), dynamodb_order(&a, &b));
    }

    #[test]
    fn concatenated_keys_sort_by_first_then_second(
        (p1, p2) in same_type_pair(),
        (s1, s2) in same_type_pair(),
    ) {
        let mut k1 = encode(&p1);
        k1.extend(encode(&s1));
        let mut k2 = encode(&p2);
        k2.extend(encode(&s2));
        let expected = dynamodb_order(&p1, &p2).then_with(|| dynamodb_order(&s1, &s2));
        prop_assert_eq!(k1.cmp(&k2), expected);

        let (first, used) = decode_key_value(key_type(&p1), &k1).unwrap();
        let (second, rest) = decode_key_value(key_type(&s1), &k1[used..]).unwrap();
        prop_assert_eq!((first, second), (p1, s1));
        prop_assert_eq!(used + rest, k1.len());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..40),
        which in 0usize..3,
    ) {
        let key_type = [ScalarType::S, ScalarType::N, ScalarType::B][which];
        if let Ok((value, used)) = decode_key_value(key_type, &bytes) {
            // Whatever decodes must be the canonical encoding of its value.
            let canonical = encode(&value);
            prop_assert_eq!(canonical.as_slice(), &bytes[..used]);
        }
    }
}
