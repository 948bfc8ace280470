//! Property tests: a parsed expression prints back to text that parses to
//! the same tree; random updates never panic and never change an item when
//! they fail; random token soup never panics any parser.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use super::*;
use crate::value::{AttributeValue, Item};

fn names() -> BTreeMap<String, String> {
    [("#n1", "status"), ("#n2", "x.y")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn values() -> BTreeMap<String, AttributeValue> {
    [
        (":s", AttributeValue::from("ab")),
        (":n1", AttributeValue::from(1)),
        (":n2", AttributeValue::from(5)),
        (":b", AttributeValue::B(vec![1])),
        (":t", AttributeValue::from("N")),
        (":l", AttributeValue::L(vec![AttributeValue::from(1)])),
        (":ss", AttributeValue::string_set(["ab"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn value(placeholder: &str) -> Value {
    Value {
        placeholder: placeholder.to_owned(),
        value: values()[placeholder].clone(),
    }
}

fn name(text: &str) -> Name {
    match names().get(text) {
        Some(resolved) => Name {
            name: resolved.clone(),
            placeholder: Some(text.to_owned()),
        },
        None => Name {
            name: text.to_owned(),
            placeholder: None,
        },
    }
}

/// Steps after the top-level name: map keys and list indexes.
fn suffix() -> impl Strategy<Value = Vec<PathElement>> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec!["d", "e", "#n2"]).prop_map(|n| PathElement::Name(name(n))),
            (0usize..4).prop_map(PathElement::Index),
        ],
        0..3,
    )
}

fn path() -> impl Strategy<Value = Path> {
    (
        prop::sample::select(vec!["a", "b", "c", "#n1", "#n2"]),
        suffix(),
    )
        .prop_map(|(first, rest)| {
            let mut elements = vec![PathElement::Name(name(first))];
            elements.extend(rest);
            Path::new(elements)
        })
}

fn scalar_value() -> impl Strategy<Value = Operand> {
    prop::sample::select(vec![":s", ":n1", ":b"]).prop_map(|p| Operand::Value(value(p)))
}

fn comparator() -> impl Strategy<Value = Comparator> {
    prop::sample::select(vec![
        Comparator::Equal,
        Comparator::NotEqual,
        Comparator::Less,
        Comparator::LessOrEqual,
        Comparator::Greater,
        Comparator::GreaterOrEqual,
    ])
}

/// Conditions that parse without error (no self-comparisons, valid types).
fn leaf_condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        (comparator(), path(), scalar_value()).prop_map(|(comparator, path, right)| {
            Condition::Compare {
                comparator,
                left: Operand::Path(path),
                right,
            }
        }),
        (comparator(), path()).prop_map(|(comparator, path)| Condition::Compare {
            comparator,
            left: Operand::Size(Box::new(Operand::Path(path))),
            right: Operand::Value(value(":n1")),
        }),
        path().prop_map(|path| Condition::Between {
            operand: Operand::Path(path),
            lower: Operand::Value(value(":n1")),
            upper: Operand::Value(value(":n2")),
        }),
        (path(), prop::collection::vec(scalar_value(), 1..4)).prop_map(|(path, candidates)| {
            Condition::In {
                operand: Operand::Path(path),
                candidates,
            }
        }),
        path().prop_map(|p| Condition::Function(Function::AttributeExists(p))),
        path().prop_map(|p| Condition::Function(Function::AttributeNotExists(p))),
        path().prop_map(|p| Condition::Function(Function::AttributeType(p, value(":t")))),
        path().prop_map(|p| Condition::Function(Function::BeginsWith(
            Operand::Path(p),
            Operand::Value(value(":s"))
        ))),
        path().prop_map(|p| Condition::Function(Function::Contains(
            Operand::Path(p),
            Operand::Value(value(":s"))
        ))),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    leaf_condition().prop_recursive(4, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|c| Condition::Not(Box::new(c))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| Condition::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| Condition::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn read_operand() -> impl Strategy<Value = UpdateOperand> {
    prop_oneof![
        path().prop_map(UpdateOperand::Path),
        prop::sample::select(vec![":s", ":n1", ":l"]).prop_map(|p| UpdateOperand::Value(value(p))),
    ]
}

fn set_value() -> impl Strategy<Value = SetValue> {
    let number = || {
        prop_oneof![
            path().prop_map(UpdateOperand::Path),
            Just(UpdateOperand::Value(value(":n1"))),
            path().prop_map(|p| UpdateOperand::IfNotExists(
                p,
                Box::new(UpdateOperand::Value(value(":n1")))
            )),
        ]
    };
    let list = || {
        prop_oneof![
            path().prop_map(UpdateOperand::Path),
            Just(UpdateOperand::Value(value(":l"))),
        ]
    };
    prop_oneof![
        read_operand().prop_map(SetValue::Operand),
        (path(), read_operand()).prop_map(|(p, fallback)| SetValue::Operand(
            UpdateOperand::IfNotExists(p, Box::new(fallback))
        )),
        (list(), list()).prop_map(|(a, b)| SetValue::Operand(UpdateOperand::ListAppend(
            Box::new(a),
            Box::new(b)
        ))),
        (number(), number()).prop_map(|(a, b)| SetValue::Plus(a, b)),
        (number(), number()).prop_map(|(a, b)| SetValue::Minus(a, b)),
    ]
}

/// One action, to be given a top-level name of its own.
#[derive(Debug, Clone)]
enum Action {
    Set(SetValue),
    Remove,
    Add(&'static str),
    Delete,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => set_value().prop_map(Action::Set),
        1 => Just(Action::Remove),
        1 => prop::sample::select(vec![":n1", ":ss"]).prop_map(Action::Add),
        1 => Just(Action::Delete),
    ]
}

/// Update expressions whose actions target distinct top-level attributes
/// `t0`, `t1`, ... (so their paths never overlap).
fn update() -> impl Strategy<Value = UpdateExpression> {
    prop::collection::vec((action(), suffix()), 1..6).prop_map(|actions| {
        let mut update = UpdateExpression::default();
        for (position, (action, rest)) in actions.into_iter().enumerate() {
            let mut elements = vec![PathElement::Name(name(&format!("t{position}")))];
            elements.extend(rest);
            let path = Path::new(elements);
            match action {
                Action::Set(value) => update.set.push(SetAction { path, value }),
                Action::Remove => update.remove.push(path),
                Action::Add(placeholder) => update.add.push(ValueAction {
                    path,
                    value: value(placeholder),
                }),
                Action::Delete => update.delete.push(ValueAction {
                    path,
                    value: value(":ss"),
                }),
            }
        }
        update
    })
}

fn start_item() -> Item {
    crate::item! {
        "t0" => 1,
        "t1" => AttributeValue::L(vec![AttributeValue::from(1), AttributeValue::from("x")]),
        "t2" => AttributeValue::string_set(["ab", "cd"]),
        "a" => 3,
        "status" => AttributeValue::L(vec![]),
    }
}

/// Text made of expression tokens and a few stray characters.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "a",
        "b",
        "#n1",
        "#zz",
        ":s",
        ":n1",
        ":l",
        ":ss",
        ":nope",
        "status",
        "SET",
        "REMOVE",
        "ADD",
        "DELETE",
        "AND",
        "OR",
        "NOT",
        "BETWEEN",
        "IN",
        "size",
        "contains",
        "begins_with",
        "attribute_exists",
        "attribute_type",
        "if_not_exists",
        "list_append",
        "(",
        ")",
        "[",
        "]",
        "0",
        "7",
        ",",
        ".",
        "=",
        "<>",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "!",
        "é",
        "_",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..24).prop_map(|parts| parts.join(" "))
}

/// A fixed seed and no regression files, so every run tests the same cases.
fn config() -> Config {
    Config {
        cases: 512,
        rng_seed: RngSeed::Fixed(0x6b76_6578_7072),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn conditions_print_back_to_the_same_tree(condition in condition()) {
        let names = names();
        let values = values();
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        let text = condition.to_string();
        let parsed = parse_condition(&text, &mut placeholders);
        prop_assert_eq!(parsed, Ok(condition), "{}", text);
    }

    #[test]
    fn updates_print_back_to_the_same_tree(update in update()) {
        let names = names();
        let values = values();
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        let text = update.to_string();
        let parsed = parse_update(&text, &mut placeholders);
        prop_assert_eq!(parsed, Ok(update), "{}", text);
    }

    #[test]
    fn random_update_sequences_never_panic_or_half_apply(
        updates in prop::collection::vec(update(), 1..8),
    ) {
        let mut item = start_item();
        for update in &updates {
            let before = item.clone();
            match update.apply(&mut item, ItemState::Existing) {
                Ok(changed) => {
                    for name in item.keys().chain(before.keys()) {
                        if item.get(name) != before.get(name) {
                            prop_assert!(changed.contains(name), "{} changed unreported", name);
                        }
                    }
                }
                Err(_) => prop_assert_eq!(&item, &before, "failed update changed the item"),
            }
        }
    }

    #[test]
    fn token_soup_never_panics(text in token_soup()) {
        fuzz_expression(text.as_bytes());
    }
}
