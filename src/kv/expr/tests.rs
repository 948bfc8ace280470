//! DynamoDB's expression behaviours as tables: each row is an expression,
//! the fixed item and placeholders below, and what DynamoDB answers. The
//! comment on each group says where the expected message comes from.
//!
//! Sources: "DG" is the DynamoDB Developer Guide; "ALT" is ScyllaDB
//! Alternator's test suite (run against AWS); "dynalite" is
//! architect/dynalite's parsers and tests (written against AWS); "moto" is
//! getmoto/moto's exceptions.py. See shared/reference/dynamodb.md.

use std::collections::BTreeMap;

use super::*;
use crate::item;
use crate::value::{AttributeValue, Item, ScalarType};

fn names() -> BTreeMap<String, String> {
    [("#st", "status"), ("#dot", "x.y"), ("#a", "a")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn values() -> BTreeMap<String, AttributeValue> {
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

fn sample_item() -> Item {
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

fn with_placeholders<T>(run: impl FnOnce(&mut Placeholders<'_>) -> T) -> T {
    let names = names();
    let values = values();
    let mut placeholders = Placeholders::new(&names, &values).unwrap();
    run(&mut placeholders)
}

fn condition(text: &str) -> Result<bool, String> {
    with_placeholders(|p| parse_condition(text, p))
        .map(|c| c.evaluate(&sample_item()))
        .map_err(|e| e.message().to_owned())
}

fn check_conditions(cases: &[(&str, Result<bool, &str>)]) {
    for (text, expected) in cases {
        let expected = expected.map_err(str::to_owned);
        assert_eq!(condition(text), expected, "{text}");
    }
}

#[test]
fn comparisons_follow_dynamodb_semantics() {
    // ALT test_condition_expression.py L120-400: absent attributes equal
    // nothing, `<>` with them is true, mismatched types are unequal and
    // unordered; DG Expressions.OperatorsAndFunctions for precedence.
    check_conditions(&[
        ("n = :n", Ok(true)),
        ("n <> :n", Ok(false)),
        ("absent = :n", Ok(false)),
        ("absent <> :n", Ok(true)),
        ("absent < :n", Ok(false)),
        ("absent >= :n", Ok(false)),
        ("s = :n", Ok(false)),
        ("s < :n", Ok(false)),
        ("s <> :n", Ok(true)),
        ("n < :n10", Ok(true)),
        ("n >= :n", Ok(true)),
        ("s > :he", Ok(true)),
        ("bin > :b", Ok(true)),
        (":n3 < n", Ok(true)),
        ("n BETWEEN :n3 AND :n10", Ok(true)),
        ("n BETWEEN :n AND :n", Ok(true)),
        ("s BETWEEN :n3 AND :n10", Ok(false)),
        ("absent BETWEEN :n3 AND :n10", Ok(false)),
        ("n IN (:n3, :n)", Ok(true)),
        ("n IN (:n3, :s)", Ok(false)),
        ("NOT n = :n", Ok(false)),
        ("n = :n AND s = :s", Ok(true)),
        ("n = :n3 OR s = :s", Ok(true)),
        ("n = :n3 OR s = :he AND n = :n", Ok(false)),
        ("(n = :n3 OR s = :s) AND n = :n", Ok(true)),
        ("NOT (n = :n3 OR s = :he)", Ok(true)),
        ("n bEtWeEn :n3 aNd :n10", Ok(true)),
        ("(n) = :n", Ok(true)),
        ("(n = :n)", Ok(true)),
        ("a.lst[0] = :x", Ok(true)),
        ("a.b = :one", Ok(true)),
        ("#st = :open", Ok(true)),
        ("#dot = :open", Ok(false)),
        (
            "lst = lst",
            Err(
                "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [lst]",
            ),
        ),
    ]);
}

#[test]
fn functions_follow_dynamodb_semantics() {
    // DG Expressions.OperatorsAndFunctions; ALT test_condition_expression.py
    // L1141-1330 (contains on binaries and lists, size of each type).
    check_conditions(&[
        ("attribute_exists(a.b)", Ok(true)),
        ("attribute_exists(a.c)", Ok(false)),
        ("attribute_exists(lst[1])", Ok(true)),
        ("attribute_exists(lst[2])", Ok(false)),
        ("attribute_not_exists(zz)", Ok(true)),
        ("attribute_not_exists(pk)", Ok(false)),
        ("attribute_type(n, :t_n)", Ok(true)),
        ("attribute_type(ss, :t_ss)", Ok(true)),
        ("attribute_type(s, :t_n)", Ok(false)),
        ("attribute_type(absent, :t_n)", Ok(false)),
        ("begins_with(s, :he)", Ok(true)),
        ("begins_with(bin, :b)", Ok(true)),
        ("begins_with(n, :he)", Ok(false)),
        ("contains(s, :he)", Ok(true)),
        ("contains(ss, :ab)", Ok(true)),
        ("contains(ss, :he)", Ok(false)),
        ("contains(lst, :two)", Ok(true)),
        ("contains(lst, :one)", Ok(true)),
        ("contains(a.lst, :x)", Ok(true)),
        ("contains(bin, :b)", Ok(true)),
        ("contains(n, :n)", Ok(false)),
        ("size(s) = :n5", Ok(true)),
        ("size(lst) = :n2", Ok(true)),
        ("size(a) = :n2", Ok(true)),
        ("size(bin) = :n3", Ok(true)),
        ("size(ss) = :one", Ok(true)),
        ("size(n) = :n", Ok(false)),
        ("size(absent) < :n", Ok(false)),
        ("size(s) = :s", Ok(false)),
        ("size(:s) = :n5", Ok(true)),
    ]);
}

#[test]
fn condition_validation_messages() {
    let operators_301 = vec!["n = :n"; 151].join(" AND ");
    let in_101 = format!("n IN ({})", vec![":n"; 101].join(", "));
    let in_100 = format!("n IN ({})", vec![":n"; 100].join(", "));
    let long = format!("n = :n{}", " ".repeat(4091));
    let cases: Vec<(&str, Result<bool, &str>)> = vec![
        // dynalite conditionParser.pegjs checkReserved; DG ReservedWords.
        (
            "status = :open",
            Err(
                "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: status",
            ),
        ),
        (
            "a.Size = :n",
            Err(
                "Invalid ConditionExpression: Attribute name is a reserved keyword; reserved keyword: Size",
            ),
        ),
        // dynalite resolveAttrVal / resolveAttrName; ALT test_update_expression.py L649.
        (
            "n = :nope",
            Err(
                "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope",
            ),
        ),
        (
            "#nope = :n",
            Err(
                "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #nope",
            ),
        ),
        // ALT test_condition_expression.py test_redundant_parentheses.
        (
            "((n = :n))",
            Err("Invalid ConditionExpression: The expression has redundant parentheses;"),
        ),
        (
            "NOT ((n = :n))",
            Err("Invalid ConditionExpression: The expression has redundant parentheses;"),
        ),
        (
            "((n)) = :n",
            Err("Invalid ConditionExpression: The expression has redundant parentheses;"),
        ),
        // dynalite checkFunction / checkMisusedFunction.
        (
            "foo(n)",
            Err("Invalid ConditionExpression: Invalid function name; function: foo"),
        ),
        (
            "if_not_exists(n, :n) = :n",
            Err("Invalid ConditionExpression: Invalid function name; function: if_not_exists"),
        ),
        (
            "size(s)",
            Err(
                "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: size",
            ),
        ),
        (
            "attribute_exists(n) = :n",
            Err(
                "Invalid ConditionExpression: The function is not allowed to be used this way in an expression; function: attribute_exists",
            ),
        ),
        (
            "attribute_exists(:s)",
            Err(
                "Invalid ConditionExpression: Operator or function requires a document path; operator or function: attribute_exists",
            ),
        ),
        (
            "begins_with(s)",
            Err(
                "Invalid ConditionExpression: Incorrect number of operands for operator or function; operator or function: begins_with, number of operands: 1",
            ),
        ),
        (
            "begins_with(s, :n)",
            Err(
                "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
            ),
        ),
        (
            "size(:n) = :n",
            Err(
                "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: size, operand type: N",
            ),
        ),
        (
            "attribute_type(s, :bad)",
            Err(
                "Invalid ConditionExpression: Invalid attribute type name found; type: XX, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}",
            ),
        ),
        (
            "attribute_type(s, :n)",
            Err(
                "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N",
            ),
        ),
        // ALT test_condition_expression.py L1184 (contains(a, a)); dynalite checkDistinct.
        (
            "contains(s, s)",
            Err(
                "Invalid ConditionExpression: The first operand must be distinct from the remaining operands for this operator or function; operator: contains, first operand: [s]",
            ),
        ),
        // dynalite test/query.js (BETWEEN bounds).
        (
            "n BETWEEN :n10 AND :n3",
            Err(
                "Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:10}, upper bound operand: AttributeValue: {N:3}",
            ),
        ),
        (
            "n BETWEEN :n AND :s",
            Err(
                "Invalid ConditionExpression: The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:7}, upper bound operand: AttributeValue: {S:hello}",
            ),
        ),
        (
            "n < :l",
            Err(
                "Invalid ConditionExpression: Incorrect operand type for operator or function; operator or function: <, operand type: L",
            ),
        ),
        // Syntax errors: "token" and "near" as DynamoDB prints them (ALT
        // test_update_expression.py L150; a DynamoDB Local/AWS transcript
        // quoted in the fact sheet: token "<EOF>", near "foo").
        (
            "foo",
            Err("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"foo\""),
        ),
        (
            "n == :n",
            Err("Invalid ConditionExpression: Syntax error; token: \"=\", near: \"== :n\""),
        ),
        (
            "n = :n AND",
            Err("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\""),
        ),
        (
            "n ! :n",
            Err("Invalid ConditionExpression: Syntax error; token: \"!\", near: \"n ! :n\""),
        ),
        (
            "NOT NOT n = :n",
            Err("Invalid ConditionExpression: Syntax error; token: \"NOT\", near: \"NOT NOT n\""),
        ),
        // DG ServiceQuotas (limits); ALT test_limits.py for the messages.
        (
            &in_101,
            Err(
                "Invalid ConditionExpression: The IN operator is provided with too many operands; number of operands: 101",
            ),
        ),
        (&in_100, Ok(true)),
        (
            &operators_301,
            Err(
                "Invalid ConditionExpression: The expression contains too many operators; operator count: 301",
            ),
        ),
        (
            &long,
            Err(
                "Invalid ConditionExpression: Expression size has exceeded the maximum allowed size; expression size: 4097",
            ),
        ),
        (
            "",
            Err("Invalid ConditionExpression: The expression can not be empty;"),
        ),
    ];
    check_conditions(&cases);
    let operators_299 = vec!["n = :n"; 150].join(" AND ");
    assert_eq!(condition(&operators_299), Ok(true));
}

#[test]
fn syntax_errors_win_over_semantic_errors() {
    // dynalite: the grammar fails before any deferred check is reported.
    assert_eq!(
        condition("status = :nope AND"),
        Err("Invalid ConditionExpression: Syntax error; token: \"<EOF>\", near: \"AND\"".into())
    );
    // dynalite checkErrors order: parentheses before reserved words.
    assert_eq!(
        condition("((status = :n))"),
        Err("Invalid ConditionExpression: The expression has redundant parentheses;".into())
    );
}

/// The item after `text` is applied to the sample item (or a new item).
fn update(text: &str, state: ItemState) -> Result<Item, String> {
    let parsed =
        with_placeholders(|p| parse_update(text, p)).map_err(|e| e.message().to_owned())?;
    let mut item = match state {
        ItemState::Existing => sample_item(),
        ItemState::New => item! { "pk" => "new" },
    };
    let before = item.clone();
    match parsed.apply(&mut item, state) {
        Ok(_) => Ok(item),
        Err(error) => {
            assert_eq!(item, before, "a failed update changed the item: {text}");
            Err(error.message().to_owned())
        }
    }
}

fn attribute(text: &str, name: &str) -> Option<AttributeValue> {
    update(text, ItemState::Existing)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .get(name)
        .cloned()
}

#[test]
fn update_actions_follow_dynamodb_semantics() {
    // DG Expressions.UpdateExpressions: arithmetic, if_not_exists,
    // list_append, lst indexes past the end append, REMOVE shifts.
    let n = |v: i64| Some(AttributeValue::from(v));
    let s = |v: &str| AttributeValue::from(v);
    let lst = |v: Vec<AttributeValue>| Some(AttributeValue::L(v));
    assert_eq!(attribute("SET n = n + :one", "n"), n(8));
    assert_eq!(attribute("SET n = :one - n", "n"), n(-6));
    assert_eq!(attribute("set n = (n + :one)", "n"), n(8));
    assert_eq!(attribute("SET n = (n) + (:one)", "n"), n(8));
    assert_eq!(
        attribute("SET fresh = if_not_exists(fresh, :n)", "fresh"),
        n(7)
    );
    assert_eq!(attribute("SET n = if_not_exists(n, :one)", "n"), n(7));
    assert_eq!(
        attribute("SET lst = list_append(lst, :l)", "lst"),
        lst(vec![
            AttributeValue::from(1),
            s("two"),
            AttributeValue::from(1)
        ])
    );
    assert_eq!(
        attribute("SET lst[5] = :x", "lst"),
        lst(vec![AttributeValue::from(1), s("two"), s("x")])
    );
    assert_eq!(
        attribute("SET lst[9] = :x, lst[7] = :two", "lst"),
        lst(vec![AttributeValue::from(1), s("two"), s("two"), s("x")])
    );
    assert_eq!(
        attribute("SET lst[0] = :x", "lst"),
        lst(vec![s("x"), s("two")])
    );
    assert_eq!(attribute("REMOVE lst[0]", "lst"), lst(vec![s("two")]));
    assert_eq!(attribute("REMOVE lst[0], lst[1]", "lst"), lst(vec![]));
    assert_eq!(
        attribute("REMOVE lst[5]", "lst"),
        lst(vec![AttributeValue::from(1), s("two")])
    );
    assert_eq!(attribute("REMOVE n", "n"), None);
    assert_eq!(
        attribute("SET a.c = :x", "a").and_then(|a| a.as_m().and_then(|m| m.get("c").cloned())),
        Some(s("x"))
    );
    assert_eq!(attribute("SET #dot = :x", "x.y"), Some(s("x")));
    assert_eq!(
        attribute("REMOVE a.zz", "a"),
        sample_item().get("a").cloned()
    );
    // ADD and DELETE on numbers and sets (DG; API UpdateItem).
    assert_eq!(attribute("ADD n :one", "n"), n(8));
    assert_eq!(attribute("ADD fresh :one", "fresh"), n(1));
    assert_eq!(
        attribute("ADD ss :ss", "ss"),
        Some(AttributeValue::string_set(["ab", "cd"]))
    );
    assert_eq!(
        attribute("ADD fresh :ss", "fresh"),
        Some(AttributeValue::string_set(["ab", "cd"]))
    );
    assert_eq!(attribute("DELETE ss :ss", "ss"), None);
    assert_eq!(attribute("DELETE fresh :ss", "fresh"), None);
    // ALT test_update_expression.py test_update_expression_multi_with_copy:
    // operands are read before any action applies.
    let copied = update("REMOVE s SET t = s", ItemState::Existing).unwrap();
    assert_eq!(
        (copied.get("s"), copied.get("t")),
        (None, Some(&s("hello")))
    );
}

#[test]
fn update_changed_attributes_are_the_targeted_top_level_names() {
    let parsed = with_placeholders(|p| {
        parse_update("SET a.c = :x, n = :one REMOVE lst[0] ADD fresh :one", p)
    })
    .unwrap();
    let mut item = sample_item();
    let changed = parsed.apply(&mut item, ItemState::Existing).unwrap();
    let names: Vec<&str> = changed.iter().map(String::as_str).collect();
    assert_eq!(names, ["a", "fresh", "lst", "n"]);
}

#[test]
fn update_runtime_errors_change_nothing() {
    let existing = ItemState::Existing;
    let cases = [
        // moto exceptions.py IncorrectDataType; ALT test_update_expression.py.
        (
            "SET s = s + :one",
            "An operand in the update expression has an incorrect data type",
        ),
        (
            "SET n = list_append(n, :l)",
            "An operand in the update expression has an incorrect data type",
        ),
        (
            "ADD s :one",
            "An operand in the update expression has an incorrect data type",
        ),
        (
            "ADD ss :ns",
            "An operand in the update expression has an incorrect data type",
        ),
        (
            "DELETE n :ss",
            "An operand in the update expression has an incorrect data type",
        ),
        // moto AttributeDoesNotExist; ALT test_update_expression_set_copy.
        (
            "SET x = absent",
            "The provided expression refers to an attribute that does not exist in the item",
        ),
        (
            "SET x = :n, y = x",
            "The provided expression refers to an attribute that does not exist in the item",
        ),
        // moto InvalidUpdateExpressionInvalidDocumentPath; ALT L1075-1120.
        (
            "SET zz.c = :x",
            "The document path provided in the update expression is invalid for update",
        ),
        (
            "SET s.c = :x",
            "The document path provided in the update expression is invalid for update",
        ),
        (
            "SET n = :one REMOVE zz.c",
            "The document path provided in the update expression is invalid for update",
        ),
        (
            "REMOVE zz[0]",
            "The document path provided in the update expression is invalid for update",
        ),
        // ALT test_number.py test_update_expression_plus_overflow/_imprecise.
        (
            "SET n = :big + :big",
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(update(text, existing), Err(message.to_owned()), "{text}");
    }
    // ALT test_update_expression.py L1090: a missing item accepts these.
    update("REMOVE zz.c", ItemState::New).unwrap();
    update("REMOVE zz[0], n.x", ItemState::New).unwrap();
    assert_eq!(
        update("SET zz.c = :x", ItemState::New),
        Err("The document path provided in the update expression is invalid for update".into())
    );
}

#[test]
fn update_validation_messages() {
    let cases = [
        // ALT test_update_expression.py test_update_expression_multi_overlap(_nested).
        (
            "SET a = :n, a.b = :n",
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]",
        ),
        (
            "SET n = :n REMOVE n",
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [n], path two: [n]",
        ),
        (
            "SET #a = :n, a[1] = :n",
            "Invalid UpdateExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, [1]]",
        ),
        // ALT test_update_expression_multi_conflict_nested; dynalite checkPaths.
        (
            "SET a.b = :n, a[1] = :n",
            "Invalid UpdateExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [1]]",
        ),
        // dynalite updateParser.pegjs checkSection; moto TooManyAddClauses.
        (
            "SET n = :n SET s = :s",
            "Invalid UpdateExpression: The \"SET\" section can only be used once in an update expression;",
        ),
        (
            "add n :one ADD fresh :one",
            "Invalid UpdateExpression: The \"ADD\" section can only be used once in an update expression;",
        ),
        // dynalite checkFunction / checkOperator.
        (
            "SET a = :s + :n",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: +, operand type: S",
        ),
        (
            "SET a = list_append(:s, lst)",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator or function: list_append, operand type: S",
        ),
        (
            "ADD n :s",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: ADD, operand type: STRING",
        ),
        (
            "DELETE ss :n",
            "Invalid UpdateExpression: Incorrect operand type for operator or function; operator: DELETE, operand type: NUMBER",
        ),
        (
            "SET n = if_not_exists(:n, :n)",
            "Invalid UpdateExpression: Operator or function requires a document path; operator or function: if_not_exists",
        ),
        (
            "SET n = list_append(:l)",
            "Invalid UpdateExpression: Incorrect number of operands for operator or function; operator or function: list_append, number of operands: 1",
        ),
        (
            "SET n = size(s)",
            "Invalid UpdateExpression: Invalid function name; function: size",
        ),
        // ALT test_update_expression.py L640-690: list_append nests no function.
        (
            "SET n = list_append(if_not_exists(lst, :l), :l)",
            "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: if_not_exists",
        ),
        (
            "SET status = :n",
            "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
        ),
        (
            "SET n = :nope",
            "Invalid UpdateExpression: An expression attribute value used in expression is not defined; attribute value: :nope",
        ),
        // ALT test_update_expression_name_token: `_123` is not a name.
        (
            "SET _n = :n",
            "Invalid UpdateExpression: Syntax error; token: \"_\", near: \"SET _n\"",
        ),
        (
            "SET n = :n + :n + :n",
            "Invalid UpdateExpression: Syntax error; token: \"+\", near: \":n + :n\"",
        ),
        (
            "HELLO n = :n",
            "Invalid UpdateExpression: Syntax error; token: \"HELLO\", near: \"HELLO n\"",
        ),
        (
            "SET :n = :n",
            "Invalid UpdateExpression: Syntax error; token: \":n\", near: \"SET :n =\"",
        ),
        (
            "",
            "Invalid UpdateExpression: The expression can not be empty;",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(
            update(text, ItemState::Existing),
            Err(message.to_owned()),
            "{text}"
        );
    }
}

#[test]
fn key_attributes_cannot_be_updated() {
    // moto exceptions.py UpdateHashRangeKeyException; ALT
    // test_update_expression_cannot_modify_key.
    for text in [
        "SET pk = :s",
        "REMOVE sk",
        "ADD sk :one",
        "SET a = :n, pk = :s",
    ] {
        let parsed = with_placeholders(|p| parse_update(text, p)).unwrap();
        let error = parsed.check_key_attributes(["pk", "sk"]).unwrap_err();
        let name = if text.contains("pk") { "pk" } else { "sk" };
        assert_eq!(
            error.message(),
            format!(
                "One or more parameter values were invalid: Cannot update attribute {name}. \
                 This attribute is part of the key"
            ),
            "{text}"
        );
    }
    let parsed = with_placeholders(|p| parse_update("SET n = :n", p)).unwrap();
    parsed.check_key_attributes(["pk", "sk"]).unwrap();
}

fn projection(text: &str) -> Result<Item, String> {
    with_placeholders(|p| parse_projection(text, p))
        .map(|projection| projection.apply(&sample_item()))
        .map_err(|e| e.message().to_owned())
}

#[test]
fn projections_keep_document_structure() {
    // DG Expressions.ProjectionExpressions; ALT test_projection_expression.py.
    let one_b: BTreeMap<String, AttributeValue> =
        [("b".to_owned(), AttributeValue::from(1))].into();
    assert_eq!(
        projection("a.b, lst[1]"),
        Ok(
            item! { "a" => AttributeValue::M(one_b), "lst" => AttributeValue::L(vec![AttributeValue::from("two")]) }
        )
    );
    assert_eq!(
        projection("lst[1], lst[0], absent, n"),
        Ok(
            item! { "lst" => AttributeValue::L(vec![AttributeValue::from(1), AttributeValue::from("two")]), "n" => 7 }
        )
    );
    assert_eq!(projection("#dot"), Ok(item! { "x.y" => "dotted" }));
    assert_eq!(projection("a.lst[3], zz.y"), Ok(Item::new()));
    // ALT test_projection_expression.py L53-66.
    assert_eq!(
        projection("a, a.b"),
        Err("Invalid ProjectionExpression: Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [a], path two: [a, b]".into())
    );
    assert_eq!(
        projection("a.b, a[0]"),
        Err("Invalid ProjectionExpression: Two document paths conflict with each other; must remove or rewrite one of these paths; path one: [a, b], path two: [a, [0]]".into())
    );
    // DG Expressions.Attributes: indexes are non-negative integers.
    assert_eq!(
        projection("a[-1]"),
        Err("Invalid ProjectionExpression: Syntax error; token: \"-\", near: \"[-1\"".into())
    );
    assert_eq!(
        projection("Name"),
        Err("Invalid ProjectionExpression: Attribute name is a reserved keyword; reserved keyword: Name".into())
    );
}

fn key_condition(text: &str, sort: bool) -> Result<KeyCondition, String> {
    let schema = KeySchema {
        partition_key: ("pk", ScalarType::S),
        sort_key: sort.then_some(("sk", ScalarType::N)),
    };
    with_placeholders(|p| parse_key_condition(text, p, &schema)).map_err(|e| e.message().to_owned())
}

#[test]
fn key_conditions_accept_what_a_query_can_serve() {
    // API QueryInput.KeyConditionExpression; ALT test_key_condition_expression.py.
    let key = AttributeValue::from("key");
    let three = AttributeValue::from(3);
    let ten = AttributeValue::from(10);
    let expect = |sort| {
        Ok(KeyCondition {
            partition_value: key.clone(),
            sort_condition: sort,
        })
    };
    assert_eq!(key_condition("pk = :key", true), expect(None));
    assert_eq!(key_condition(":key = pk", false), expect(None));
    assert_eq!(
        key_condition("pk = :key AND sk > :n3", true),
        expect(Some(SortKeyCondition::Compare(
            Comparator::Greater,
            three.clone()
        )))
    );
    assert_eq!(
        key_condition(":n3 < sk AND pk = :key", true),
        expect(Some(SortKeyCondition::Compare(
            Comparator::Greater,
            three.clone()
        )))
    );
    assert_eq!(
        key_condition("(pk = :key) AND (sk BETWEEN :n3 AND :n10)", true),
        expect(Some(SortKeyCondition::Between(three.clone(), ten.clone())))
    );
    assert_eq!(
        key_condition("pk = :key aNd sk = :n3", true),
        expect(Some(SortKeyCondition::Compare(
            Comparator::Equal,
            three.clone()
        )))
    );
    let between = SortKeyCondition::Between(three.clone(), ten);
    assert!(
        between.matches(&AttributeValue::from(10)) && !between.matches(&AttributeValue::from(11))
    );
    let prefix = SortKeyCondition::BeginsWith(AttributeValue::from("ab"));
    assert!(
        prefix.matches(&AttributeValue::from("abc")) && !prefix.matches(&AttributeValue::from("b"))
    );
}

#[test]
fn key_condition_validation_messages() {
    // dynalite test/query.js (KeyConditionExpression validations, written
    // against AWS); ALT test_key_condition_expression.py.
    let cases = [
        (
            "sk = :n3",
            true,
            "Query condition missed key schema element: pk",
        ),
        ("pk < :key", true, "Query key condition not supported"),
        (
            "pk = :key AND extra = :n3",
            true,
            "Query condition missed key schema element: sk",
        ),
        (
            "pk = :key AND sk = :n3",
            false,
            "Query key condition not supported",
        ),
        (
            "pk = :key AND begins_with(sk, :n3)",
            true,
            "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
        ),
        (
            "pk = :key AND begins_with(sk, :ab)",
            true,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :n3",
            true,
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
        (
            "pk = :key OR sk = :n3",
            true,
            "Invalid operator used in KeyConditionExpression: OR",
        ),
        (
            "NOT pk = :key",
            true,
            "Invalid operator used in KeyConditionExpression: NOT",
        ),
        (
            "pk = :key AND sk <> :n3",
            true,
            "Invalid operator used in KeyConditionExpression: <>",
        ),
        (
            "pk = :key AND sk IN (:n3)",
            true,
            "Invalid operator used in KeyConditionExpression: IN",
        ),
        (
            "pk = :key AND attribute_exists(sk)",
            true,
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        (
            "pk = :key AND pk = :key",
            true,
            "KeyConditionExpressions must only contain one condition per key",
        ),
        (
            "pk = :key AND sk > :n3 AND sk < :n10",
            true,
            "Conditions can be of length 1 or 2 only",
        ),
        (
            "pk.x = :key",
            true,
            "KeyConditionExpressions cannot have conditions on nested attributes",
        ),
        (
            "pk = :key AND sk > size(pk)",
            true,
            "KeyConditionExpressions cannot contain nested operations",
        ),
        (
            "pk = sk",
            true,
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        (
            ":key = :key",
            true,
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ),
        (
            "pk = :key AND :n3 BETWEEN sk AND :n10",
            true,
            "Invalid condition in KeyConditionExpression: BETWEEN operator must have the key attribute as its first operand",
        ),
        (
            "((pk = :key))",
            true,
            "Invalid KeyConditionExpression: The expression has redundant parentheses;",
        ),
        (
            "pk = :key AND sk BETWEEN :n10 AND :n3",
            true,
            "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:10}, upper bound operand: AttributeValue: {N:3}",
        ),
        (
            "",
            true,
            "Invalid KeyConditionExpression: The expression can not be empty;",
        ),
    ];
    for (text, sort, message) in cases {
        assert_eq!(key_condition(text, sort), Err(message.to_owned()), "{text}");
    }
}

#[test]
fn unused_placeholders_are_found_across_a_requests_expressions() {
    // ALT test_condition_expression.py L1663-1760; test_update_expression.py
    // test_update_expression_spurious_name/_value.
    let names: BTreeMap<String, String> = [("#a", "a"), ("#b", "b")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let values: BTreeMap<String, AttributeValue> = [(":v", 1), (":w", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), AttributeValue::from(v)))
        .collect();
    let mut placeholders = Placeholders::new(&names, &values).unwrap();
    parse_condition("attribute_exists(#a)", &mut placeholders).unwrap();
    parse_update("SET #a = :v", &mut placeholders).unwrap();
    assert_eq!(
        placeholders.check_unused().unwrap_err().message(),
        "Value provided in ExpressionAttributeNames unused in expressions: keys: {#b}"
    );
    parse_projection("#b", &mut placeholders).unwrap();
    assert_eq!(
        placeholders.check_unused().unwrap_err().message(),
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}"
    );
    parse_filter("#b = :w", &mut placeholders).unwrap();
    placeholders.check_unused().unwrap();
}

#[test]
fn filters_may_not_read_key_attributes() {
    // dynalite validations/query.js; API QueryInput.FilterExpression.
    let filter =
        with_placeholders(|p| parse_filter("n = :n AND size(a.lst) > :one OR pk = :key", p))
            .unwrap();
    assert_eq!(
        filter
            .check_no_key_attributes(["pk", "sk"])
            .unwrap_err()
            .message(),
        "Filter Expression can only contain non-primary key attributes: Primary key attribute: pk"
    );
    let filter = with_placeholders(|p| parse_filter("n = :n", p)).unwrap();
    filter.check_no_key_attributes(["pk", "sk"]).unwrap();
    let error = with_placeholders(|p| parse_filter("", p)).unwrap_err();
    assert_eq!(
        error.message(),
        "Invalid FilterExpression: The expression can not be empty;"
    );
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

#[test]
fn nesting_is_bounded_so_deep_input_cannot_exhaust_the_stack() {
    let groups = |depth: usize| {
        format!(
            "{}n = :n{}",
            "(n = :n AND ".repeat(depth),
            ")".repeat(depth)
        )
    };
    // The operands inside the innermost group sit one level deeper still.
    assert_eq!(condition(&groups(MAX_NESTING_LEVELS - 1)), Ok(true));
    assert!(
        condition(&groups(MAX_NESTING_LEVELS))
            .unwrap_err()
            .contains("Syntax error")
    );
    let too_deep = format!("{}n = :n{}", "(".repeat(2040), ")".repeat(2040));
    assert!(too_deep.len() <= MAX_EXPRESSION_BYTES);
    assert!(condition(&too_deep).unwrap_err().contains("Syntax error"));
    let sizes = format!("{}:n{} = :n", "size(".repeat(600), ")".repeat(600));
    let error = condition(&sizes).unwrap_err();
    assert!(error.contains("Syntax error"), "{error}");
    let update_text = format!("SET n = {}:n{}", "(".repeat(2000), ")".repeat(2000));
    assert!(
        update(&update_text, ItemState::Existing)
            .unwrap_err()
            .contains("Syntax error")
    );
}
