//! DynamoDB's value and item rules: sets, nesting, names, key attributes and
//! item size, with DynamoDB's error messages.

// A test fails by panicking; unwrapping an unexpected error is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use nimbus::value::{
    KeyRole, MAX_ITEM_BYTES, attribute_value_size, item_size, number_size, validate_item,
    validate_key_value, validate_value,
};
use nimbus::{AttributeValue, Item, Number, ScalarType, item};

fn n(text: &str) -> Number {
    text.parse().unwrap()
}

fn nested_maps(wraps: usize) -> AttributeValue {
    let mut value = AttributeValue::from("leaf");
    for _ in 0..wraps {
        value = AttributeValue::M(BTreeMap::from([("a".to_owned(), value)]));
    }
    value
}

#[test]
fn item_size_matches_the_documented_example() {
    // DynamoDB's docs: {"shirt-color":"R","shirt-size":"M"} is 23 bytes.
    let shirt = item! { "shirt-color" => "R", "shirt-size" => "M" };
    assert_eq!(item_size(&shirt), 23);
}

#[test]
fn number_sizes_follow_dynamodbs_formula() {
    let cases = [
        ("0", 1),
        ("1", 2),
        ("10", 2),
        ("12", 2),
        ("1.2", 3),
        ("123", 3),
        ("1234", 3),
        ("1.234", 4),
        ("-1", 3),
        ("-1.2", 4),
        ("0.5", 2),
        ("0.05", 2),
        ("1e125", 2),
    ];
    for (text, size) in cases {
        assert_eq!(number_size(&n(text)), size, "{text}");
    }
    // 38 digits take 20 bytes (21 when negative).
    assert_eq!(number_size(&n(&"9".repeat(38))), 20);
    assert_eq!(number_size(&n(&format!("-{}", "9".repeat(38)))), 21);
}

#[test]
fn container_sizes_count_overheads_and_names() {
    assert_eq!(attribute_value_size(&AttributeValue::L(vec![])), 3);
    assert_eq!(attribute_value_size(&AttributeValue::M(BTreeMap::new())), 3);
    // L: 3 + (1 + 1 for "a") + (1 + 1 for BOOL)
    let list = AttributeValue::L(vec!["a".into(), true.into()]);
    assert_eq!(attribute_value_size(&list), 7);
    // M: 3 + (1 + 4 for "name" + 2 for "xy")
    let map = AttributeValue::M(BTreeMap::from([("name".to_owned(), "xy".into())]));
    assert_eq!(attribute_value_size(&map), 10);
    // Sets: the sum of the elements.
    assert_eq!(
        attribute_value_size(&AttributeValue::string_set(["ab", "c"])),
        3
    );
    assert_eq!(
        attribute_value_size(&AttributeValue::number_set([1, 12])),
        4
    );
    assert_eq!(
        attribute_value_size(&AttributeValue::binary_set([vec![1, 2], vec![3]])),
        3
    );
    assert_eq!(attribute_value_size(&AttributeValue::Null), 1);
    // Binary counts raw bytes, strings UTF-8 bytes.
    assert_eq!(attribute_value_size(&AttributeValue::B(vec![0; 10])), 10);
    assert_eq!(attribute_value_size(&AttributeValue::from("é")), 2);
}

#[test]
fn an_item_of_exactly_400_kb_is_allowed_and_one_byte_more_is_not() {
    let exact = item! { "k" => "x".repeat(MAX_ITEM_BYTES - 1) };
    assert_eq!(item_size(&exact), 409_600);
    validate_item(&exact).unwrap();
    let over = item! { "k" => "x".repeat(MAX_ITEM_BYTES) };
    assert_eq!(
        validate_item(&over).unwrap_err().message(),
        "Item size has exceeded the maximum allowed size"
    );
}

#[test]
fn nesting_of_31_map_wraps_is_allowed_and_32_is_not() {
    validate_value(&nested_maps(31), 1).unwrap();
    assert_eq!(
        validate_value(&nested_maps(32), 1).unwrap_err().message(),
        "Nesting Levels have exceeded supported limits: \
         Attributes in the item have nested levels beyond supported limit"
    );
    let item = item! { "deep" => nested_maps(32) };
    assert!(validate_item(&item).is_err());
}

#[test]
fn empty_sets_are_rejected_even_when_nested() {
    let cases = [
        (
            AttributeValue::Ss(Default::default()),
            "An string set  may not be empty",
        ),
        (
            AttributeValue::Ns(Default::default()),
            "An number set  may not be empty",
        ),
        (
            AttributeValue::Bs(Default::default()),
            "Binary sets should not be empty",
        ),
    ];
    for (set, detail) in cases {
        let expected = format!("One or more parameter values were invalid: {detail}");
        assert_eq!(validate_value(&set, 1).unwrap_err().message(), expected);
        let nested = AttributeValue::L(vec![AttributeValue::M(BTreeMap::from([(
            "s".to_owned(),
            set,
        )]))]);
        assert_eq!(validate_value(&nested, 1).unwrap_err().message(), expected);
    }
}

#[test]
fn empty_strings_and_binaries_are_allowed_outside_keys() {
    let item = item! {
        "s" => "",
        "b" => Vec::<u8>::new(),
        "ss" => AttributeValue::string_set([""]),
        "l" => AttributeValue::L(vec!["".into()]),
    };
    validate_item(&item).unwrap();
}

#[test]
fn attribute_names_must_be_non_empty_and_at_most_64_kb() {
    let empty = Item::new().with("", 1);
    assert_eq!(
        validate_item(&empty).unwrap_err().message(),
        "Empty attribute name"
    );
    let nested = item! { "m" => AttributeValue::M(BTreeMap::from([(String::new(), 1.into())])) };
    assert!(validate_item(&nested).is_err());
    validate_item(&Item::new().with("n".repeat(65_535), 1)).unwrap();
    assert!(validate_item(&Item::new().with("n".repeat(65_536), 1)).is_err());
}

#[test]
fn sets_collapse_numerically_equal_numbers() {
    let set = AttributeValue::number_set([n("1"), n("1.0"), n("1e0")]);
    assert_eq!(set, AttributeValue::number_set([1]));
}

#[test]
fn key_values_must_match_the_schema_type() {
    let error = validate_key_value("Id", KeyRole::Partition, ScalarType::S, &1.into()).unwrap_err();
    assert_eq!(
        error.message(),
        "One or more parameter values were invalid: Type mismatch for key Id expected: S actual: N"
    );
    let error = validate_key_value(
        "Id",
        KeyRole::Sort,
        ScalarType::N,
        &AttributeValue::string_set(["a"]),
    )
    .unwrap_err();
    assert!(error.message().ends_with("expected: N actual: SS"));
}

#[test]
fn empty_key_values_are_rejected() {
    let error =
        validate_key_value("Id", KeyRole::Partition, ScalarType::S, &"".into()).unwrap_err();
    assert_eq!(
        error.message(),
        "One or more parameter values are not valid. The AttributeValue for a key attribute \
         cannot contain an empty string value. Key: Id"
    );
    let error = validate_key_value(
        "Blob",
        KeyRole::Sort,
        ScalarType::B,
        &AttributeValue::B(vec![]),
    )
    .unwrap_err();
    assert_eq!(
        error.message(),
        "One or more parameter values are not valid. The AttributeValue for a key attribute \
         cannot contain an empty binary value. Key: Blob"
    );
}

#[test]
fn key_size_limits_are_2048_and_1024_bytes() {
    let key = |len: usize| AttributeValue::from("k".repeat(len));
    validate_key_value("pk", KeyRole::Partition, ScalarType::S, &key(2048)).unwrap();
    assert_eq!(
        validate_key_value("pk", KeyRole::Partition, ScalarType::S, &key(2049))
            .unwrap_err()
            .message(),
        "One or more parameter values were invalid: \
         Size of hashkey has exceeded the maximum size limit of2048 bytes"
    );
    validate_key_value("sk", KeyRole::Sort, ScalarType::S, &key(1024)).unwrap();
    assert_eq!(
        validate_key_value("sk", KeyRole::Sort, ScalarType::S, &key(1025))
            .unwrap_err()
            .message(),
        "One or more parameter values were invalid: \
         Aggregated size of all range keys has exceeded the size limit of 1024 bytes"
    );
    // Binary keys count raw bytes; a multi-byte character counts its bytes.
    let binary = AttributeValue::B(vec![7; 1024]);
    validate_key_value("sk", KeyRole::Sort, ScalarType::B, &binary).unwrap();
    let wide = AttributeValue::from("é".repeat(513));
    assert!(validate_key_value("sk", KeyRole::Sort, ScalarType::S, &wide).is_err());
}

#[test]
fn item_macro_and_conversions_build_the_expected_values() {
    let song = item! {
        "Artist" => "Acme",
        "Year" => 2020,
        "Live" => false,
        "Cover" => Option::<String>::None,
        "Tags" => AttributeValue::string_set(["rock", "pop", "rock"]),
    };
    assert_eq!(song["Artist"].as_s(), Some("Acme"));
    assert_eq!(song["Year"].as_n(), Some(&n("2020")));
    assert_eq!(song["Live"].as_bool(), Some(false));
    assert!(song["Cover"].is_null());
    assert_eq!(song["Tags"], AttributeValue::string_set(["pop", "rock"]));
    assert_eq!(song.len(), 5);
}
