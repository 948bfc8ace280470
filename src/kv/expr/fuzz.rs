//! The fuzzing entry point for expressions.
//!
//! The fuzz target (`fuzz/fuzz_targets/kv_expression.rs`) feeds arbitrary
//! bytes here: they are parsed as every kind of expression against fixed
//! placeholders, and whatever parses is evaluated or applied to a fixed
//! item. Nothing may panic; an update that fails must leave the item as it
//! was, and one that parses must print back to text that parses the same.

use std::collections::BTreeMap;

use super::{
    ItemState, KeySchema, Placeholders, parse_condition, parse_filter, parse_key_condition,
    parse_projection, parse_update,
};
use crate::value::{AttributeValue, Item, Number, ScalarType};

/// Parses `data` as each expression kind and exercises what parses.
/// Panics only on a bug: a failed update that changed the item, or an
/// expression whose printed form does not parse back to the same tree.
#[doc(hidden)]
pub fn fuzz_expression(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let names = names();
    let values = values();
    let item = item();
    let Ok(mut placeholders) = Placeholders::new(&names, &values) else {
        panic!("the fixed placeholders are valid");
    };

    if let Ok(condition) = parse_condition(text, &mut placeholders) {
        let _ = condition.evaluate(&item);
        let _ = condition.evaluate(&Item::new());
        let again = parse_condition(&condition.to_string(), &mut placeholders);
        assert_eq!(
            again.as_ref(),
            Ok(&condition),
            "condition round trip of {text:?}"
        );
    }
    if let Ok(filter) = parse_filter(text, &mut placeholders) {
        let _ = filter.check_no_key_attributes(["pk", "sk"]);
    }
    if let Ok(update) = parse_update(text, &mut placeholders) {
        let again = parse_update(&update.to_string(), &mut placeholders);
        assert_eq!(again.as_ref(), Ok(&update), "update round trip of {text:?}");
        let _ = update.check_key_attributes(["pk", "sk"]);
        for (start, state) in [
            (item.clone(), ItemState::Existing),
            (Item::new(), ItemState::New),
        ] {
            let mut target = start.clone();
            if update.apply(&mut target, state).is_err() {
                assert_eq!(target, start, "a failed update changed the item: {text:?}");
            }
        }
    }
    if let Ok(projection) = parse_projection(text, &mut placeholders) {
        let _ = projection.apply(&item);
    }
    let schema = KeySchema::simple(("pk", ScalarType::S), Some(("sk", ScalarType::N)));
    if let Ok(key_condition) = parse_key_condition(text, &mut placeholders, &schema)
        && let Some(sort) = key_condition.sort_condition
    {
        let _ = sort.matches(&AttributeValue::from(3));
    }
    let _ = placeholders.check_unused();
}

fn names() -> BTreeMap<String, String> {
    [
        ("#a", "a"),
        ("#k", "pk"),
        ("#s", "status"),
        ("#d", "x.y"),
        ("#l", "list"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn values() -> BTreeMap<String, AttributeValue> {
    let big = Number::try_from("9.9999999999999999999999999999999999999E+125").unwrap_or_default();
    [
        (":s", AttributeValue::from("ab")),
        (":n", AttributeValue::from(3)),
        (":big", AttributeValue::N(big)),
        (":b", AttributeValue::B(vec![0, 255])),
        (":t", AttributeValue::from("N")),
        (":l", AttributeValue::L(vec![AttributeValue::from(1)])),
        (":m", AttributeValue::M(BTreeMap::new())),
        (":ss", AttributeValue::string_set(["ab", "cd"])),
        (":ns", AttributeValue::number_set([1, 2])),
        (":bool", AttributeValue::Bool(true)),
        (":null", AttributeValue::Null),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn item() -> Item {
    let mut nested = BTreeMap::new();
    nested.insert("b".to_owned(), AttributeValue::from(1));
    nested.insert(
        "list".to_owned(),
        AttributeValue::L(vec![AttributeValue::from("x")]),
    );
    crate::item! {
        "pk" => "key",
        "sk" => 3,
        "a" => AttributeValue::M(nested),
        "list" => AttributeValue::L(vec![AttributeValue::from(1), AttributeValue::from("two")]),
        "ss" => AttributeValue::string_set(["ab"]),
        "n" => 7,
        "status" => "open",
    }
}
