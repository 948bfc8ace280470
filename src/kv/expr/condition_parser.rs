//! The grammar of condition, filter and key-condition expressions, and the
//! checks DynamoDB makes on them before reading any item.
//!
//! ```text
//! or        := and (OR and)*
//! and       := not (AND not)*
//! not       := NOT primary | primary
//! primary   := comparison | function | '(' or ')'
//! comparison:= operand comparator operand
//!            | operand BETWEEN operand AND operand
//!            | operand IN '(' operand (',' operand)* ')'
//! operand   := '(' '(' term ')' ')'   (rejected: redundant parentheses)
//!            | '(' term ')' | term
//! term      := name '(' operand (',' operand)* ')' | :value | path
//! ```

use super::ast::{Comparator, Condition, Function, Operand, Path, Value};
use super::error::{ExpressionError, ExpressionKind};
use super::lexer::TokenKind;
use super::parser::{
    CONDITION_FUNCTIONS, Parse, Parser, Rank, UPDATE_FUNCTIONS, function_not_allowed,
    incorrect_operand_count, incorrect_operand_type, misused_function, requires_document_path,
    type_name, unknown_function,
};
use super::placeholders::Placeholders;
use crate::value::{AttributeType, AttributeValue};

/// The most candidates `IN` takes.
pub const MAX_IN_OPERANDS: usize = 100;

/// Words that are operators of this grammar, never attribute names.
const KEYWORDS: &[&str] = &["AND", "OR", "NOT", "BETWEEN", "IN"];

/// Parses a condition-grammar expression of `kind` (condition, filter or
/// key condition), resolving placeholders through `placeholders`.
pub(crate) fn parse_condition_grammar(
    source: &str,
    kind: ExpressionKind,
    placeholders: &mut Placeholders<'_>,
) -> Result<Condition, ExpressionError> {
    let mut parser = Parser::new(source, kind, placeholders, KEYWORDS)?;
    let result = parse_or(&mut parser).map(|(condition, _)| condition);
    parser.finish(result)
}

/// A parsed function call before it is known to be a condition or an
/// operand.
struct Call {
    name: String,
    args: Vec<Operand>,
}

/// `and (OR and)*`; the flag says whether the whole thing is a single
/// parenthesised group (for the redundant-parentheses rule).
fn parse_or(parser: &mut Parser<'_, '_, '_>) -> Parse<(Condition, bool)> {
    let (mut condition, mut grouped) = parse_and(parser)?;
    while parser.eat_keyword("OR") {
        parser.count_operator();
        let (right, _) = parse_and(parser)?;
        condition = Condition::Or(Box::new(condition), Box::new(right));
        grouped = false;
    }
    Ok((condition, grouped))
}

fn parse_and(parser: &mut Parser<'_, '_, '_>) -> Parse<(Condition, bool)> {
    let (mut condition, mut grouped) = parse_not(parser)?;
    while parser.eat_keyword("AND") {
        parser.count_operator();
        let (right, _) = parse_not(parser)?;
        condition = Condition::And(Box::new(condition), Box::new(right));
        grouped = false;
    }
    Ok((condition, grouped))
}

fn parse_not(parser: &mut Parser<'_, '_, '_>) -> Parse<(Condition, bool)> {
    if parser.eat_keyword("NOT") {
        parser.count_operator();
        let (inner, _) = parse_primary(parser)?;
        return Ok((Condition::Not(Box::new(inner)), false));
    }
    parse_primary(parser)
}

/// A comparison, a function, or a parenthesised condition — tried in that
/// order, since `(a) = :v` and `(a = :v)` both start with `(`.
fn parse_primary(parser: &mut Parser<'_, '_, '_>) -> Parse<(Condition, bool)> {
    let start = parser.checkpoint();
    // A boolean function is the common case: parse it once, and fall back
    // to the comparison reading only if an operator follows it (a misuse
    // DynamoDB reports as such, e.g. `contains(a, :v) = :w`).
    if let Some(name) = parser.eat_call_head()
        && name != "size"
    {
        let call = parse_call_rest(parser, name)?;
        if !at_comparison_operator(parser) {
            return Ok((function_condition(parser, call), false));
        }
    }
    parser.restore(start.clone());
    if let Ok(comparison) = parse_comparison(parser) {
        return Ok((comparison, false));
    }
    parser.restore(start.clone());
    if let Some(name) = parser.eat_call_head() {
        let call = parse_call_rest(parser, name)?;
        return Ok((function_condition(parser, call), false));
    }
    parser.restore(start);
    parser.expect(TokenKind::OpenParen)?;
    let (inner, grouped) = parser.nested(parse_or)?;
    parser.expect(TokenKind::CloseParen)?;
    if grouped {
        parser.defer(
            Rank::Parentheses,
            "The expression has redundant parentheses;",
        );
    }
    Ok((inner, true))
}

/// Whether a comparator, `BETWEEN` or `IN` comes next.
fn at_comparison_operator(parser: &Parser<'_, '_, '_>) -> bool {
    use TokenKind::*;
    let kind = parser.peek_at(0).map(|token| token.kind);
    matches!(
        kind,
        Some(Equal | NotEqual | Less | LessOrEqual | Greater | GreaterOrEqual)
    ) || parser.at_keyword("BETWEEN")
        || parser.at_keyword("IN")
}

fn parse_comparison(parser: &mut Parser<'_, '_, '_>) -> Parse<Condition> {
    let operand = parse_operand(parser)?;
    if parser.eat_keyword("BETWEEN") {
        parser.count_operator();
        let lower = parse_operand(parser)?;
        parser.expect_keyword("AND")?;
        let upper = parse_operand(parser)?;
        check_between(parser, &operand, &lower, &upper);
        return Ok(Condition::Between {
            operand,
            lower,
            upper,
        });
    }
    if parser.eat_keyword("IN") {
        parser.count_operator();
        parser.expect(TokenKind::OpenParen)?;
        let mut candidates = vec![parse_operand(parser)?];
        while parser.eat(TokenKind::Comma) {
            candidates.push(parse_operand(parser)?);
        }
        parser.expect(TokenKind::CloseParen)?;
        check_in(parser, &operand, &candidates);
        return Ok(Condition::In {
            operand,
            candidates,
        });
    }
    let comparator = parse_comparator(parser)?;
    parser.count_operator();
    let right = parse_operand(parser)?;
    check_comparison(parser, comparator, &operand, &right);
    Ok(Condition::Compare {
        comparator,
        left: operand,
        right,
    })
}

fn parse_comparator(parser: &mut Parser<'_, '_, '_>) -> Parse<Comparator> {
    let comparator = match parser.peek_at(0).map(|token| token.kind) {
        Some(TokenKind::Equal) => Comparator::Equal,
        Some(TokenKind::NotEqual) => Comparator::NotEqual,
        Some(TokenKind::Less) => Comparator::Less,
        Some(TokenKind::LessOrEqual) => Comparator::LessOrEqual,
        Some(TokenKind::Greater) => Comparator::Greater,
        Some(TokenKind::GreaterOrEqual) => Comparator::GreaterOrEqual,
        _ => return parser.fail(),
    };
    parser.eat(parser.peek_at(0).map_or(TokenKind::Invalid, |t| t.kind));
    Ok(comparator)
}

/// An operand, in at most one pair of parentheses.
fn parse_operand(parser: &mut Parser<'_, '_, '_>) -> Parse<Operand> {
    parser.nested(parse_operand_unnested)
}

fn parse_operand_unnested(parser: &mut Parser<'_, '_, '_>) -> Parse<Operand> {
    if parser.at(TokenKind::OpenParen) {
        let start = parser.checkpoint();
        parser.expect(TokenKind::OpenParen)?;
        if parser.eat(TokenKind::OpenParen) {
            let term = parse_term(parser)?;
            parser.expect(TokenKind::CloseParen)?;
            parser.expect(TokenKind::CloseParen)?;
            parser.defer(
                Rank::Parentheses,
                "The expression has redundant parentheses;",
            );
            return Ok(term);
        }
        match parse_term(parser) {
            Ok(term) if parser.eat(TokenKind::CloseParen) => return Ok(term),
            _ => {
                parser.restore(start);
                return parser.fail();
            }
        }
    }
    parse_term(parser)
}

/// A function call used as an operand, a `:value`, or a path.
fn parse_term(parser: &mut Parser<'_, '_, '_>) -> Parse<Operand> {
    if let Some(name) = parser.eat_call_head() {
        let call = parse_call_rest(parser, name)?;
        return Ok(operand_call(parser, call));
    }
    if parser.at(TokenKind::ValuePlaceholder) {
        return parser.parse_value().map(Operand::Value);
    }
    parser.parse_path().map(Operand::Path)
}

/// The arguments and closing parenthesis of a call whose name and `(` are
/// consumed; checks the name is a condition function.
fn parse_call_rest(parser: &mut Parser<'_, '_, '_>, name: &str) -> Parse<Call> {
    parser.count_operator();
    let mut args = vec![parse_operand(parser)?];
    while parser.eat(TokenKind::Comma) {
        args.push(parse_operand(parser)?);
    }
    parser.expect(TokenKind::CloseParen)?;
    check_function_name(parser, name);
    Ok(Call {
        name: name.to_owned(),
        args,
    })
}

/// Defers DynamoDB's error for a name that is no condition function: an
/// update function is known but refused, any other name is unknown.
fn check_function_name(parser: &mut Parser<'_, '_, '_>, name: &str) {
    if CONDITION_FUNCTIONS.contains(&name) {
        return;
    }
    let expression = match parser.kind {
        ExpressionKind::Condition => Some("a condition expression"),
        ExpressionKind::Filter => Some("a filter expression"),
        // No source shows DynamoDB's wording for a key condition, so it
        // keeps the unknown-name error.
        _ => None,
    };
    match expression {
        Some(expression) if UPDATE_FUNCTIONS.contains(&name) => {
            parser.defer(
                Rank::MisusedFunction,
                function_not_allowed(expression, name),
            );
        }
        _ => parser.defer(Rank::UnknownFunction, unknown_function(name)),
    }
}

/// A call in operand position: only `size` gives a value.
fn operand_call(parser: &mut Parser<'_, '_, '_>, call: Call) -> Operand {
    if call.name != "size" {
        if CONDITION_FUNCTIONS.contains(&call.name.as_str()) {
            parser.defer(Rank::MisusedFunction, misused_function(&call.name));
        }
        return placeholder_operand(call);
    }
    if call.args.len() != 1 {
        parser.defer(
            Rank::Operand,
            incorrect_operand_count("size", call.args.len()),
        );
        return placeholder_operand(call);
    }
    let mut args = call.args;
    let arg = args.remove(0);
    if let Some(kind) = static_type(&arg)
        && matches!(
            kind,
            AttributeType::N | AttributeType::Bool | AttributeType::Null
        )
    {
        parser.defer(Rank::Operand, incorrect_operand_type("size", kind.name()));
    }
    Operand::Size(Box::new(arg))
}

/// Some operand standing in for a call that is already a deferred error,
/// so parsing can go on to find any syntax error.
fn placeholder_operand(call: Call) -> Operand {
    call.args.into_iter().next().map_or(
        Operand::Size(Box::new(Operand::Path(dummy_path()))),
        |arg| Operand::Size(Box::new(arg)),
    )
}

fn dummy_path() -> Path {
    Path::new(vec![super::ast::PathElement::Name(super::ast::Name {
        name: String::new(),
        placeholder: None,
    })])
}

/// A call in condition position: one of the boolean functions.
fn function_condition(parser: &mut Parser<'_, '_, '_>, call: Call) -> Condition {
    let expected = match call.name.as_str() {
        "attribute_exists" | "attribute_not_exists" => 1,
        "attribute_type" | "begins_with" | "contains" => 2,
        "size" => {
            parser.defer(Rank::MisusedFunction, misused_function("size"));
            return always_false();
        }
        // Already deferred as an unknown or refused function.
        _ => return always_false(),
    };
    if call.args.len() != expected {
        parser.defer(
            Rank::Operand,
            incorrect_operand_count(&call.name, call.args.len()),
        );
        return always_false();
    }
    let mut args = call.args.into_iter();
    let (Some(first), second) = (args.next(), args.next()) else {
        return always_false();
    };
    if let Some(second) = &second {
        check_distinct(parser, &call.name, &first, second);
    }
    match (call.name.as_str(), first, second) {
        ("attribute_exists", Operand::Path(path), None) => {
            Condition::Function(Function::AttributeExists(path))
        }
        ("attribute_not_exists", Operand::Path(path), None) => {
            Condition::Function(Function::AttributeNotExists(path))
        }
        ("attribute_type", Operand::Path(path), Some(type_operand)) => {
            match attribute_type_value(parser, type_operand) {
                Some(value) => Condition::Function(Function::AttributeType(path, value)),
                None => always_false(),
            }
        }
        ("begins_with", first, Some(second)) => {
            for operand in [&first, &second] {
                if let Some(kind) = static_type(operand)
                    && !matches!(kind, AttributeType::S | AttributeType::B)
                {
                    parser.defer(
                        Rank::Operand,
                        incorrect_operand_type("begins_with", kind.name()),
                    );
                }
            }
            Condition::Function(Function::BeginsWith(first, second))
        }
        ("contains", first, Some(second)) => Condition::Function(Function::Contains(first, second)),
        (name, _, _) => {
            parser.defer(Rank::Operand, requires_document_path(name));
            always_false()
        }
    }
}

/// Checks `attribute_type`'s second operand: a `:value` string naming one
/// of DynamoDB's types.
fn attribute_type_value(parser: &mut Parser<'_, '_, '_>, operand: Operand) -> Option<Value> {
    let Operand::Value(value) = operand else {
        let shown = static_type(&operand).map_or("{NS,SS,L,BS,N,M,B,BOOL,NULL,S}", |t| t.name());
        parser.defer(
            Rank::Operand,
            incorrect_operand_type("attribute_type", shown),
        );
        return None;
    };
    let AttributeValue::S(name) = &value.value else {
        parser.defer(
            Rank::Operand,
            incorrect_operand_type("attribute_type", type_name(&value.value)),
        );
        return None;
    };
    if AttributeType::from_name(name).is_none() {
        parser.defer(
            Rank::Operand,
            format!(
                "Invalid attribute type name found; type: {name}, valid types: \
                 {{B,NULL,SS,BOOL,L,BS,N,NS,S,M}}"
            ),
        );
        return None;
    }
    Some(value)
}

/// A stand-in for a function that is already a deferred error.
fn always_false() -> Condition {
    Condition::Function(Function::AttributeExists(dummy_path()))
}

/// The type an operand is known to have before any item is read.
fn static_type(operand: &Operand) -> Option<AttributeType> {
    match operand {
        Operand::Value(value) => Some(value.value.attribute_type()),
        Operand::Size(_) => Some(AttributeType::N),
        Operand::Path(_) => None,
    }
}

/// `a = a` and `contains(a, a)` compare a path with itself: rejected.
fn check_distinct(
    parser: &mut Parser<'_, '_, '_>,
    operator: &str,
    first: &Operand,
    other: &Operand,
) {
    if let (Operand::Path(a), Operand::Path(b)) = (first, other)
        && a == b
    {
        parser.defer(
            Rank::Operand,
            format!(
                "The first operand must be distinct from the remaining operands for this \
                 operator or function; operator: {operator}, first operand: {}",
                a.to_message_string()
            ),
        );
    }
}

fn check_comparison(
    parser: &mut Parser<'_, '_, '_>,
    comparator: Comparator,
    left: &Operand,
    right: &Operand,
) {
    check_distinct(parser, comparator.symbol(), left, right);
    if comparator != Comparator::Equal && comparator != Comparator::NotEqual {
        check_orderable(parser, comparator.symbol(), [left, right]);
    }
}

/// Ordering operators only compare numbers, strings and binaries; a value
/// of another type can never match, so DynamoDB rejects it outright.
fn check_orderable<'o>(
    parser: &mut Parser<'_, '_, '_>,
    operator: &str,
    operands: impl IntoIterator<Item = &'o Operand>,
) {
    for operand in operands {
        if let Some(kind) = static_type(operand)
            && !matches!(kind, AttributeType::N | AttributeType::S | AttributeType::B)
        {
            parser.defer(Rank::Operand, incorrect_operand_type(operator, kind.name()));
        }
    }
}

fn check_between(
    parser: &mut Parser<'_, '_, '_>,
    operand: &Operand,
    lower: &Operand,
    upper: &Operand,
) {
    check_orderable(parser, "BETWEEN", [operand, lower, upper]);
    let (Operand::Value(lower), Operand::Value(upper)) = (lower, upper) else {
        return;
    };
    let bounds = format!(
        "lower bound operand: AttributeValue: {{{}}}, upper bound operand: AttributeValue: {{{}}}",
        short_value(&lower.value),
        short_value(&upper.value)
    );
    if lower.value.attribute_type() != upper.value.attribute_type() {
        parser.defer(
            Rank::Operand,
            format!(
                "The BETWEEN operator requires same data type for lower and upper bounds; {bounds}"
            ),
        );
    } else if super::condition::compare_scalars(&lower.value, &upper.value)
        .is_some_and(|order| order.is_gt())
    {
        parser.defer(
            Rank::Operand,
            format!(
                "The BETWEEN operator requires upper bound to be greater than or equal to \
                 lower bound; {bounds}"
            ),
        );
    }
}

fn check_in(parser: &mut Parser<'_, '_, '_>, operand: &Operand, candidates: &[Operand]) {
    if candidates.len() > MAX_IN_OPERANDS {
        parser.defer(
            Rank::Operand,
            format!(
                "The IN operator is provided with too many operands; number of operands: {}",
                candidates.len()
            ),
        );
    }
    for candidate in candidates {
        check_distinct(parser, "IN", operand, candidate);
    }
}

/// A scalar as DynamoDB shows it in BETWEEN messages: `N:1`, `S:a`.
fn short_value(value: &AttributeValue) -> String {
    match value {
        AttributeValue::S(s) => format!("S:{s}"),
        AttributeValue::N(n) => format!("N:{n}"),
        AttributeValue::B(b) => {
            use base64::Engine;
            format!("B:{}", base64::engine::general_purpose::STANDARD.encode(b))
        }
        other => format!("{}:{other}", type_name(other)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parse(source: &str) -> Result<Condition, ExpressionError> {
        let names = BTreeMap::new();
        let values = BTreeMap::from([(":v".to_string(), AttributeValue::from(1))]);
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        parse_condition_grammar(source, ExpressionKind::Condition, &mut placeholders)
    }

    #[test]
    fn and_binds_tighter_than_or_and_both_associate_left() {
        let parsed = parse("a = :v OR b = :v AND c = :v OR d = :v").unwrap();
        assert_eq!(parsed.to_string(), "a = :v OR b = :v AND c = :v OR d = :v");
        let Condition::Or(left, _) = &parsed else {
            panic!("OR at the root: {parsed:?}");
        };
        assert!(matches!(**left, Condition::Or(_, ref and) if matches!(**and, Condition::And(..))));
    }

    #[test]
    fn not_applies_to_the_next_primary_only() {
        let parsed = parse("NOT a = :v AND b = :v").unwrap();
        assert!(matches!(parsed, Condition::And(ref not, _) if matches!(**not, Condition::Not(_))));
    }

    #[test]
    fn one_pair_of_parentheses_is_fine_two_are_redundant() {
        parse("(a = :v) AND ((b = :v) OR c = :v)").unwrap();
        parse("(size(a)) = :v").unwrap();
        assert_eq!(
            parse("a = :v AND ((b = :v))").unwrap_err().message(),
            "Invalid ConditionExpression: The expression has redundant parentheses;"
        );
    }

    #[test]
    fn a_function_followed_by_an_operator_is_a_misuse() {
        assert_eq!(
            parse("contains(a, :v) = :v").unwrap_err().message(),
            "Invalid ConditionExpression: The function is not allowed to be used this way in an \
             expression; function: contains"
        );
    }

    #[test]
    fn function_names_are_case_sensitive() {
        assert_eq!(
            parse("Attribute_Exists(a)").unwrap_err().message(),
            "Invalid ConditionExpression: Invalid function name; function: Attribute_Exists"
        );
    }
}
