//! DynamoDB JSON in both directions, rejecting what DynamoDB rejects.

// A test fails by panicking; unwrapping an unexpected error is how it says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use nimbus::{AttributeValue, Item, Number, ValueError, item};
use proptest::prelude::*;

fn parse(json: &str) -> AttributeValue {
    AttributeValue::from_json(json).unwrap_or_else(|e| panic!("{json} should parse: {e}"))
}

fn validation(json: &str) -> String {
    match AttributeValue::from_json(json) {
        Err(ValueError::Validation(message)) => message,
        other => panic!("{json} should be a validation error, got {other:?}"),
    }
}

fn serialization(json: &str) -> String {
    match AttributeValue::from_json(json) {
        Err(ValueError::Serialization(message)) => message,
        other => panic!("{json} should be a serialization error, got {other:?}"),
    }
}

#[test]
fn every_type_parses_and_prints_back() {
    let cases = [
        (r#"{"S":"hello"}"#, AttributeValue::from("hello")),
        (r#"{"N":"1000"}"#, AttributeValue::from(1000)),
        (r#"{"B":"AAEC/w=="}"#, AttributeValue::B(vec![0, 1, 2, 255])),
        (r#"{"BOOL":true}"#, AttributeValue::Bool(true)),
        (r#"{"NULL":true}"#, AttributeValue::Null),
        (
            r#"{"L":[{"S":"a"},{"N":"1"}]}"#,
            AttributeValue::L(vec!["a".into(), 1.into()]),
        ),
        (
            r#"{"M":{"k":{"BOOL":false}}}"#,
            AttributeValue::M(BTreeMap::from([("k".to_owned(), false.into())])),
        ),
        (
            r#"{"SS":["a","b"]}"#,
            AttributeValue::string_set(["a", "b"]),
        ),
        (
            r#"{"NS":["1","2.5"]}"#,
            AttributeValue::number_set([Number::from(1), "2.5".parse().unwrap()]),
        ),
        (
            r#"{"BS":["AQ==","Ag=="]}"#,
            AttributeValue::binary_set([vec![1], vec![2]]),
        ),
    ];
    for (json, expected) in cases {
        let value = parse(json);
        assert_eq!(value, expected, "{json}");
        assert_eq!(value.to_json(), json, "{json} prints back");
    }
}

#[test]
fn numbers_come_back_canonical() {
    assert_eq!(parse(r#"{"N":"1e3"}"#).to_json(), r#"{"N":"1000"}"#);
    assert_eq!(
        parse(r#"{"NS":["1.0","-0","1e-3"]}"#).to_json(),
        r#"{"NS":["0","0.001","1"]}"#
    );
}

#[test]
fn a_value_needs_exactly_one_type() {
    let empty =
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";
    assert_eq!(validation("{}"), empty);
    assert_eq!(validation(r#"{"a":"b"}"#), empty);
    assert_eq!(
        validation(r#"{"S":"a","N":"1"}"#),
        "Supplied AttributeValue has more than one datatypes set, \
         must contain exactly one of the supported datatypes"
    );
    // Unknown members beside a type are ignored, as the AWS SDKs ignore them.
    assert_eq!(parse(r#"{"S":"a","x":1}"#), AttributeValue::from("a"));
}

#[test]
fn duplicate_set_elements_use_dynamodbs_per_type_messages() {
    assert_eq!(
        validation(r#"{"SS":["a","a"]}"#),
        "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
    );
    assert_eq!(
        validation(r#"{"NS":["1","1.0"]}"#),
        "Input collection contains duplicates"
    );
    assert_eq!(
        validation(r#"{"BS":["Yg==","Yg=="]}"#),
        "One or more parameter values were invalid: \
         Input collection [Yg==, Yg==]of type BS contains duplicates."
    );
}

#[test]
fn empty_sets_are_rejected() {
    assert_eq!(
        validation(r#"{"SS":[]}"#),
        "One or more parameter values were invalid: An string set  may not be empty"
    );
    assert_eq!(
        validation(r#"{"NS":[]}"#),
        "One or more parameter values were invalid: An number set  may not be empty"
    );
    assert_eq!(
        validation(r#"{"M":{"x":{"BS":[]}}}"#),
        "One or more parameter values were invalid: Binary sets should not be empty"
    );
}

#[test]
fn numbers_must_be_valid_strings() {
    assert_eq!(
        validation(r#"{"N":"abc"}"#),
        "The parameter cannot be converted to a numeric value: abc"
    );
    assert_eq!(
        validation(r#"{"N":""}"#),
        "The parameter cannot be converted to a numeric value"
    );
    assert_eq!(
        validation(r#"{"N":"1e126"}"#),
        "Number overflow. Attempting to store a number with magnitude larger than supported range"
    );
    assert_eq!(
        validation(r#"{"NS":["1","x"]}"#),
        "The parameter cannot be converted to a numeric value: x"
    );
    assert_eq!(
        serialization(r#"{"N":123}"#),
        "NUMBER_VALUE cannot be converted to String"
    );
    assert_eq!(
        serialization(r#"{"N":1.5}"#),
        "DECIMAL_VALUE cannot be converted to String"
    );
}

#[test]
fn null_must_be_true_and_bool_must_be_boolean() {
    assert_eq!(
        validation(r#"{"NULL":false}"#),
        "One or more parameter values were invalid: \
         Null attribute value types must have the value of true"
    );
    serialization(r#"{"BOOL":"true"}"#);
    serialization(r#"{"NULL":"x"}"#);
}

#[test]
fn binary_must_be_base64() {
    assert_eq!(
        serialization(r#"{"B":"abc"}"#),
        "Base64 encoded length is expected a multiple of 4 bytes but found: 3"
    );
    serialization(r#"{"B":"ab!="}"#);
    serialization(r#"{"B":5}"#);
}

#[test]
fn malformed_json_is_a_serialization_error() {
    for json in [
        "",
        "{",
        "[]",
        "\"S\"",
        r#"{"L":{}}"#,
        r#"{"M":[]}"#,
        r#"{"SS":"a"}"#,
        r#"{"S":"a"} x"#,
    ] {
        serialization(json);
    }
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    let depth = 33;
    let json = format!(
        "{}{}{}",
        r#"{"L":["#.repeat(depth),
        r#"{"S":"x"}"#,
        "]}".repeat(depth)
    );
    assert!(validation(&json).starts_with("Nesting Levels have exceeded supported limits"));
    let absurd = 100_000;
    let json = format!(
        "{}{}{}",
        r#"{"L":["#.repeat(absurd),
        r#"{"S":"x"}"#,
        "]}".repeat(absurd)
    );
    assert!(validation(&json).starts_with("Nesting Levels have exceeded supported limits"));
}

#[test]
fn items_parse_with_item_rules() {
    let item = Item::from_json(r#"{"Artist":{"S":"Acme"},"Year":{"N":"2020"}}"#).unwrap();
    assert_eq!(item, item! { "Artist" => "Acme", "Year" => 2020 });
    assert_eq!(
        item.to_json(),
        r#"{"Artist":{"S":"Acme"},"Year":{"N":"2020"}}"#
    );
    assert!(matches!(
        Item::from_json(r#"{"":{"S":"x"}}"#),
        Err(ValueError::Validation(m)) if m == "Empty attribute name"
    ));
    let big = format!(r#"{{"k":{{"S":"{}"}}}}"#, "x".repeat(409_600));
    assert!(matches!(
        Item::from_json(&big),
        Err(ValueError::Validation(_))
    ));
}

fn any_value() -> impl Strategy<Value = AttributeValue> {
    let leaf = prop_oneof![
        ".{0,8}".prop_map(AttributeValue::S),
        any::<i64>().prop_map(AttributeValue::from),
        (any::<i64>(), 0u32..20)
            .prop_map(|(m, e)| { AttributeValue::N(format!("{m}e-{e}").parse().unwrap()) }),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(AttributeValue::B),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null),
        prop::collection::btree_set(".{0,4}", 1..4).prop_map(AttributeValue::Ss),
        prop::collection::btree_set(any::<i32>(), 1..4).prop_map(AttributeValue::number_set),
        prop::collection::btree_set(prop::collection::vec(any::<u8>(), 0..4), 1..4)
            .prop_map(AttributeValue::Bs),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            prop::collection::btree_map(".{1,4}", inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

proptest! {
    #[test]
    fn json_round_trips(value in any_value()) {
        let json = value.to_json();
        prop_assert_eq!(AttributeValue::from_json(&json).unwrap(), value);
    }

    #[test]
    fn parsing_arbitrary_text_never_panics(text in "[{}\\[\\]\":,SNBLMUO0-9a-z= ]{0,64}") {
        let _ = AttributeValue::from_json(&text);
        let _ = Item::from_json(&text);
    }
}
