//! Projection and key condition expressions, and placeholder tracking
//! across a request's expressions.

use super::*;
use crate::value::ScalarType;

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
    let schema = KeySchema::simple(("pk", ScalarType::S), sort.then_some(("sk", ScalarType::N)));
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
            partition_values: vec![key.clone()],
            sort_prefix: Vec::new(),
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

/// A composite global index key: HASH h1 (S), h2 (S); RANGE r1 (N), r2 (S).
fn composite_condition(text: &str) -> Result<KeyCondition, String> {
    let schema = KeySchema {
        partition_keys: vec![("h1", ScalarType::S), ("h2", ScalarType::S)],
        sort_keys: vec![("r1", ScalarType::N), ("r2", ScalarType::S)],
    };
    with_placeholders(|p| parse_key_condition(text, p, &schema)).map_err(|e| e.message().to_owned())
}

#[test]
fn composite_key_conditions_go_left_to_right() {
    // DynamoDB multi-attribute GSI keys (Nov 2025); ALT test_gsi_composite_keys.py:
    // `=` on every HASH attribute, RANGE conditions left to right without
    // gaps, only the last one a range.
    let (key, ab) = (AttributeValue::from("key"), AttributeValue::from("ab"));
    let condition = |prefix: Vec<AttributeValue>, sort| {
        Ok(KeyCondition {
            partition_values: vec![key.clone(), ab.clone()],
            sort_prefix: prefix,
            sort_condition: sort,
        })
    };
    assert_eq!(
        composite_condition("h2 = :ab AND h1 = :key"),
        condition(vec![], None)
    );
    assert_eq!(
        composite_condition("h1 = :key AND h2 = :ab AND r1 >= :n3"),
        condition(
            vec![],
            Some(SortKeyCondition::Compare(
                Comparator::GreaterOrEqual,
                AttributeValue::from(3)
            ))
        )
    );
    assert_eq!(
        composite_condition("begins_with(r2, :he) AND r1 = :n3 AND h1 = :key AND h2 = :ab"),
        condition(
            vec![AttributeValue::from(3)],
            Some(SortKeyCondition::BeginsWith(AttributeValue::from("he")))
        )
    );
    let refused = [
        ("h1 = :key", "Query condition missed key schema element: h2"),
        (
            "h1 = :key AND h2 > :ab",
            "Query key condition not supported",
        ),
        (
            "h1 = :key AND h2 = :ab AND r2 = :x",
            "Query condition missed key schema element: r1",
        ),
        (
            "h1 = :key AND h2 = :ab AND r1 > :n3 AND r2 = :x",
            "Query key condition not supported",
        ),
        (
            "h1 = :key AND h2 = :ab AND extra = :x",
            "Query key condition not supported",
        ),
        (
            "h1 = :key AND h2 = :ab AND r1 = :x",
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ),
    ];
    for (text, message) in refused {
        assert_eq!(composite_condition(text), Err(message.to_owned()), "{text}");
    }
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
