//! Condition and filter expressions: evaluation semantics, validation
//! messages, limits.

use super::updates::update;
use super::*;

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
        // aws-dax-go parser/expression.go funcAllowedInFilter: update
        // functions are known, and refused.
        (
            "if_not_exists(n, :n) = :n",
            Err(
                "Invalid ConditionExpression: The function is not allowed in a condition expression; function: if_not_exists",
            ),
        ),
        (
            "size(list_append(l, :n)) = :n",
            Err(
                "Invalid ConditionExpression: The function is not allowed in a condition expression; function: list_append",
            ),
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
