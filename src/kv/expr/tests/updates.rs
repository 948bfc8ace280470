//! Update expressions: action semantics, runtime errors, validation
//! messages, key attributes.

use super::*;

/// The item after `text` is applied to the sample item (or a new item).
pub(super) fn update(text: &str, state: ItemState) -> Result<Item, String> {
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
    // The append-or-create idiom: list_append may nest if_not_exists.
    assert_eq!(
        attribute(
            "SET fresh = list_append(if_not_exists(fresh, :l), :l)",
            "fresh"
        ),
        lst(vec![AttributeValue::from(1), AttributeValue::from(1)])
    );
    assert_eq!(
        attribute("SET n = if_not_exists(fresh, if_not_exists(n, :one))", "n"),
        n(7)
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
            "Invalid UpdateExpression: The function is not allowed in an update expression; function: size",
        ),
        // ALT test_update_expression_function_nesting: list_append nests no
        // list_append (it does nest if_not_exists; see the apply tests).
        (
            "SET n = list_append(list_append(:l, :l), :l)",
            "Invalid UpdateExpression: The function is not allowed to be used this way in an expression; function: list_append",
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
