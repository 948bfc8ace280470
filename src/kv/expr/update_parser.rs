//! The grammar of update expressions and the checks DynamoDB makes on them
//! before reading the item.
//!
//! ```text
//! update   := clause+                         (each keyword at most once)
//! clause   := SET set (',' set)* | REMOVE path (',' path)*
//!           | ADD path :value (',' ...)* | DELETE path :value (',' ...)*
//! set      := path '=' '(' value ')' | path '=' value
//! value    := operand ('+' | '-') operand | operand
//! operand  := '(' term ')' | term
//! term     := name '(' operand (',' operand)* ')' | :value | path
//! ```
//!
//! After parsing, no two actions may write overlapping paths (one a prefix
//! of the other) or conflicting ones (a map key and a list index at the
//! same place).

use super::ast::{
    Path, PathElement, SetAction, SetValue, UpdateExpression, UpdateOperand, ValueAction,
};
use super::error::{ExpressionError, ExpressionKind};
use super::lexer::TokenKind;
use super::parser::{
    CONDITION_FUNCTIONS, Parse, Parser, Rank, UPDATE_FUNCTIONS, function_not_allowed,
    incorrect_operand_count, incorrect_operand_type, misused_function, requires_document_path,
    type_name, unknown_function,
};
use super::placeholders::Placeholders;
use crate::value::{AttributeType, AttributeValue};

/// The clause keywords; never attribute names in this grammar.
const KEYWORDS: &[&str] = &["SET", "REMOVE", "ADD", "DELETE"];

/// Parses an update expression, resolving placeholders through
/// `placeholders`.
pub(crate) fn parse_update(
    source: &str,
    placeholders: &mut Placeholders<'_>,
) -> Result<UpdateExpression, ExpressionError> {
    let kind = ExpressionKind::Update;
    let mut parser = Parser::new(source, kind, placeholders, KEYWORDS)?;
    let result = parse_clauses(&mut parser);
    let update = parser.finish(result)?;
    check_paths(&update)?;
    Ok(update)
}

fn parse_clauses(parser: &mut Parser<'_, '_, '_>) -> Parse<UpdateExpression> {
    let mut update = UpdateExpression::default();
    let mut seen = [false; 4];
    loop {
        let Some(clause) = KEYWORDS.iter().position(|k| parser.at_keyword(k)) else {
            // At least one clause; then only the end may follow.
            if seen.iter().any(|s| *s) && parser.at_end() {
                return Ok(update);
            }
            return parser.fail();
        };
        parser.eat_keyword(KEYWORDS[clause]);
        if seen[clause] {
            parser.defer(
                Rank::Section,
                format!(
                    "The \"{}\" section can only be used once in an update expression;",
                    KEYWORDS[clause]
                ),
            );
        }
        seen[clause] = true;
        loop {
            match clause {
                0 => update.set.push(parse_set_action(parser)?),
                1 => update.remove.push(parser.parse_path()?),
                2 => update.add.push(parse_value_action(parser, "ADD")?),
                _ => update.delete.push(parse_value_action(parser, "DELETE")?),
            }
            if !parser.eat(TokenKind::Comma) {
                break;
            }
        }
    }
}

fn parse_set_action(parser: &mut Parser<'_, '_, '_>) -> Parse<SetAction> {
    let path = parser.parse_path()?;
    parser.expect(TokenKind::Equal)?;
    let start = parser.checkpoint();
    // `= (a)` may wrap the whole value or just its first operand
    // (`= (a) + b`); the whole-value reading stands only if the action ends
    // right after it.
    if parser.eat(TokenKind::OpenParen)
        && let Ok(value) = parse_set_value(parser)
        && parser.eat(TokenKind::CloseParen)
        && (parser.at_end()
            || parser.at(TokenKind::Comma)
            || KEYWORDS.iter().any(|k| parser.at_keyword(k)))
    {
        return Ok(SetAction { path, value });
    }
    parser.restore(start);
    let value = parse_set_value(parser)?;
    Ok(SetAction { path, value })
}

fn parse_set_value(parser: &mut Parser<'_, '_, '_>) -> Parse<SetValue> {
    let first = parse_operand(parser)?;
    let plus = parser.eat(TokenKind::Plus);
    if !plus && !parser.eat(TokenKind::Minus) {
        return Ok(SetValue::Operand(first));
    }
    parser.count_operator();
    let second = parse_operand(parser)?;
    let symbol = if plus { "+" } else { "-" };
    for operand in [&first, &second] {
        if let UpdateOperand::Value(value) = operand
            && value.value.attribute_type() != AttributeType::N
        {
            parser.defer(
                Rank::Operand,
                incorrect_operand_type(symbol, type_name(&value.value)),
            );
        }
    }
    Ok(if plus {
        SetValue::Plus(first, second)
    } else {
        SetValue::Minus(first, second)
    })
}

fn parse_operand(parser: &mut Parser<'_, '_, '_>) -> Parse<UpdateOperand> {
    parser.nested(parse_operand_unnested)
}

fn parse_operand_unnested(parser: &mut Parser<'_, '_, '_>) -> Parse<UpdateOperand> {
    if parser.eat(TokenKind::OpenParen) {
        let term = parse_term(parser)?;
        parser.expect(TokenKind::CloseParen)?;
        return Ok(term);
    }
    parse_term(parser)
}

fn parse_term(parser: &mut Parser<'_, '_, '_>) -> Parse<UpdateOperand> {
    if let Some(name) = parser.eat_call_head() {
        parser.count_operator();
        let mut args = vec![parse_operand(parser)?];
        while parser.eat(TokenKind::Comma) {
            args.push(parse_operand(parser)?);
        }
        parser.expect(TokenKind::CloseParen)?;
        return Ok(function(parser, name, args));
    }
    if parser.at(TokenKind::ValuePlaceholder) {
        return parser.parse_value().map(UpdateOperand::Value);
    }
    parser.parse_path().map(UpdateOperand::Path)
}

/// Builds `if_not_exists` or `list_append` from a call, deferring the
/// errors DynamoDB reports for it.
fn function(
    parser: &mut Parser<'_, '_, '_>,
    name: &str,
    args: Vec<UpdateOperand>,
) -> UpdateOperand {
    if CONDITION_FUNCTIONS.contains(&name) {
        parser.defer(
            Rank::MisusedFunction,
            function_not_allowed("an update expression", name),
        );
        return stand_in(args);
    }
    if !UPDATE_FUNCTIONS.contains(&name) {
        parser.defer(Rank::UnknownFunction, unknown_function(name));
        return stand_in(args);
    }
    if args.len() != 2 {
        parser.defer(Rank::Operand, incorrect_operand_count(name, args.len()));
        return stand_in(args);
    }
    let mut args = args.into_iter();
    let (Some(first), Some(second)) = (args.next(), args.next()) else {
        return UpdateOperand::Path(stand_in_path());
    };
    if name == "if_not_exists" {
        let UpdateOperand::Path(path) = first else {
            parser.defer(Rank::Operand, requires_document_path(name));
            return second;
        };
        return UpdateOperand::IfNotExists(path, Box::new(second));
    }
    for operand in [&first, &second] {
        match operand {
            UpdateOperand::Value(value) if value.value.attribute_type() != AttributeType::L => {
                parser.defer(
                    Rank::Operand,
                    incorrect_operand_type(name, type_name(&value.value)),
                );
            }
            // DynamoDB accepts `list_append(if_not_exists(a, :empty), :v)`
            // (the usual append-or-create idiom) but not a nested
            // `list_append` (ALT test_update_expression_function_nesting,
            // which passes against DynamoDB).
            UpdateOperand::ListAppend(..) => {
                parser.defer(Rank::MisusedFunction, misused_function("list_append"));
            }
            _ => {}
        }
    }
    UpdateOperand::ListAppend(Box::new(first), Box::new(second))
}

/// Some operand standing in for a call that is already a deferred error.
fn stand_in(args: Vec<UpdateOperand>) -> UpdateOperand {
    args.into_iter()
        .next()
        .unwrap_or_else(|| UpdateOperand::Path(stand_in_path()))
}

fn stand_in_path() -> Path {
    Path::new(vec![PathElement::Name(super::ast::Name {
        name: String::new(),
        placeholder: None,
    })])
}

/// `path :value` for ADD (a number or a set) or DELETE (a set).
fn parse_value_action(parser: &mut Parser<'_, '_, '_>, clause: &str) -> Parse<ValueAction> {
    let path = parser.parse_path()?;
    let value = parser.parse_value()?;
    let operand_type = match &value.value {
        AttributeValue::Ss(_) | AttributeValue::Ns(_) | AttributeValue::Bs(_) => None,
        AttributeValue::N(_) if clause == "ADD" => None,
        AttributeValue::S(_) => Some("STRING"),
        AttributeValue::N(_) => Some("NUMBER"),
        AttributeValue::B(_) => Some("BINARY"),
        AttributeValue::Null => Some("NULL"),
        AttributeValue::Bool(_) => Some("BOOLEAN"),
        AttributeValue::L(_) => Some("LIST"),
        AttributeValue::M(_) => Some("MAP"),
    };
    if let Some(operand_type) = operand_type {
        parser.defer(
            Rank::Operand,
            format!(
                "Incorrect operand type for operator or function; operator: {clause}, \
                 operand type: {operand_type}"
            ),
        );
    }
    Ok(ValueAction { path, value })
}

/// Rejects two actions whose paths overlap or conflict.
fn check_paths(update: &UpdateExpression) -> Result<(), ExpressionError> {
    let paths: Vec<&Path> = update.target_paths().collect();
    for (position, second) in paths.iter().enumerate() {
        for first in &paths[..position] {
            check_pair(ExpressionKind::Update, first, second)?;
        }
    }
    Ok(())
}

/// DynamoDB's rule for two paths of one expression: if they differ in the
/// kind of step (key vs index) at a place where they agree before, they
/// conflict; if one is a prefix of the other, they overlap.
pub(crate) fn check_pair(
    kind: ExpressionKind,
    first: &Path,
    second: &Path,
) -> Result<(), ExpressionError> {
    for (a, b) in first.elements().iter().zip(second.elements()) {
        match (a, b) {
            (PathElement::Name(x), PathElement::Name(y)) if x.name == y.name => {}
            (PathElement::Index(x), PathElement::Index(y)) if x == y => {}
            (PathElement::Name(_), PathElement::Name(_))
            | (PathElement::Index(_), PathElement::Index(_)) => return Ok(()),
            _ => {
                return Err(ExpressionError::invalid(
                    kind,
                    format!(
                        "Two document paths conflict with each other; must remove or rewrite \
                         one of these paths; path one: {}, path two: {}",
                        first.to_message_string(),
                        second.to_message_string()
                    ),
                ));
            }
        }
    }
    Err(ExpressionError::invalid(
        kind,
        format!(
            "Two document paths overlap with each other; must remove or rewrite one of these \
             paths; path one: {}, path two: {}",
            first.to_message_string(),
            second.to_message_string()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn parse(source: &str) -> Result<UpdateExpression, ExpressionError> {
        let names = BTreeMap::new();
        let values = BTreeMap::from([(":v".to_string(), AttributeValue::from(1))]);
        let mut placeholders = Placeholders::new(&names, &values).unwrap();
        parse_update(source, &mut placeholders)
    }

    #[test]
    fn clauses_come_in_any_order_and_keywords_in_any_case() {
        let parsed = parse("remove c, d add e :v set a = :v, b = a + :v").unwrap();
        assert_eq!(
            parsed.to_string(),
            "SET a = :v, b = a + :v REMOVE c, d ADD e :v"
        );
        assert_eq!(parsed.set_actions().len(), 2);
        assert_eq!(parsed.remove_actions().len(), 2);
        assert_eq!(parsed.add_actions().len(), 1);
        assert!(parsed.delete_actions().is_empty());
    }

    #[test]
    fn parentheses_may_wrap_the_value_or_an_operand() {
        for text in [
            "SET a = (b + :v)",
            "SET a = (b) + :v",
            "SET a = (:v), c = (b)",
        ] {
            parse(text).unwrap();
        }
    }

    #[test]
    fn sibling_paths_neither_overlap_nor_conflict() {
        parse("SET a.b = :v, a.c = :v, l[0] = :v, l[1].x = :v REMOVE a.d").unwrap();
        assert!(
            parse("SET a[0] = :v REMOVE a[0].x")
                .unwrap_err()
                .message()
                .contains("overlap")
        );
    }

    #[test]
    fn too_many_operators_are_rejected() {
        let sum = |count: usize| {
            (0..count)
                .map(|i| format!("a{i}=:v+:v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        parse(&format!("SET {}", sum(300))).unwrap();
        assert_eq!(
            parse(&format!("SET {}", sum(301))).unwrap_err().message(),
            "Invalid UpdateExpression: The expression contains too many operators; \
             operator count: 301"
        );
    }
}
