//! DynamoDB's expression behaviours as tables: each row is an expression,
//! the fixed item and placeholders below, and what DynamoDB answers. The
//! comment on each group says where the expected message comes from.
//!
//! Sources: "DG" is the DynamoDB Developer Guide; "ALT" is ScyllaDB
//! Alternator's test suite (run against AWS); "dynalite" is
//! architect/dynalite's parsers and tests (written against AWS); "moto" is
//! getmoto/moto's exceptions.py. See shared/reference/dynamodb.md.

mod conditions;
mod reads;
mod updates;

use std::collections::BTreeMap;

use super::*;
use crate::item;
use crate::value::{AttributeValue, Item};

pub(super) fn names() -> BTreeMap<String, String> {
    [("#st", "status"), ("#dot", "x.y"), ("#a", "a")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub(super) fn values() -> BTreeMap<String, AttributeValue> {
    let big = "9.9999999999999999999999999999999999999E+125";
    [
        (":s", AttributeValue::from("hello")),
        (":he", AttributeValue::from("he")),
        (":ab", AttributeValue::from("ab")),
        (":x", AttributeValue::from("x")),
        (":two", AttributeValue::from("two")),
        (":open", AttributeValue::from("open")),
        (":key", AttributeValue::from("key")),
        (":one", AttributeValue::from(1)),
        (":n2", AttributeValue::from(2)),
        (":n3", AttributeValue::from(3)),
        (":n5", AttributeValue::from(5)),
        (":n", AttributeValue::from(7)),
        (":n10", AttributeValue::from(10)),
        (":big", AttributeValue::N(big.parse().unwrap())),
        (":b", AttributeValue::B(vec![1, 2])),
        (":t_n", AttributeValue::from("N")),
        (":t_ss", AttributeValue::from("SS")),
        (":bad", AttributeValue::from("XX")),
        (":l", AttributeValue::L(vec![AttributeValue::from(1)])),
        (":ss", AttributeValue::string_set(["ab", "cd"])),
        (":ns", AttributeValue::number_set([1])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub(super) fn sample_item() -> Item {
    let a: BTreeMap<String, AttributeValue> = [
        ("b".to_owned(), AttributeValue::from(1)),
        (
            "lst".to_owned(),
            AttributeValue::L(vec![AttributeValue::from("x")]),
        ),
    ]
    .into();
    item! {
        "pk" => "key",
        "sk" => 3,
        "a" => AttributeValue::M(a),
        "lst" => AttributeValue::L(vec![AttributeValue::from(1), AttributeValue::from("two")]),
        "ss" => AttributeValue::string_set(["ab"]),
        "n" => 7,
        "s" => "hello",
        "bin" => AttributeValue::B(vec![1, 2, 3]),
        "status" => "open",
        "x.y" => "dotted",
    }
}

pub(super) fn with_placeholders<T>(run: impl FnOnce(&mut Placeholders<'_>) -> T) -> T {
    let names = names();
    let values = values();
    let mut placeholders = Placeholders::new(&names, &values).unwrap();
    run(&mut placeholders)
}

pub(super) fn condition(text: &str) -> Result<bool, String> {
    with_placeholders(|p| parse_condition(text, p))
        .map(|c| c.evaluate(&sample_item()))
        .map_err(|e| e.message().to_owned())
}

pub(super) fn check_conditions(cases: &[(&str, Result<bool, &str>)]) {
    for (text, expected) in cases {
        let expected = expected.map_err(str::to_owned);
        assert_eq!(condition(text), expected, "{text}");
    }
}

#[test]
fn fuzz_entry_survives_samples() {
    for text in [
        "SET a.b = :n, lst[9] = :s REMOVE lst[0]",
        "n BETWEEN :n AND :big OR NOT contains(lst, :s)",
        "pk = :s AND sk BETWEEN :n AND :n",
        "a.b, lst[0]",
        "((((",
        "SET #l[1] = list_append(#l, :l)",
        "ADD n :big, ss :ss DELETE a :ns",
    ] {
        fuzz_expression(text.as_bytes());
    }
}
