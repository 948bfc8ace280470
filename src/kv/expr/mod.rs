//! DynamoDB expressions: condition, filter, update, projection and key
//! condition expressions, parsed once into a tree and evaluated or applied
//! without re-parsing.
//!
//! The layer is storage-independent: it reads and writes [`Item`]s and
//! knows nothing of tables. A request parses each of its expressions with
//! one [`Placeholders`] (its `ExpressionAttributeNames`/`Values`), then
//! calls [`Placeholders::check_unused`]; every error is
//! [`ExpressionError::Validation`] with DynamoDB's message.
//!
//! ```
//! use std::collections::BTreeMap;
//! use nimbus::kv::expr::{self, ItemState, Placeholders};
//! use nimbus::{item, AttributeValue};
//!
//! let names = BTreeMap::from([("#c".to_string(), "count".to_string())]);
//! let values = BTreeMap::from([(":one".to_string(), AttributeValue::from(1))]);
//! let mut placeholders = Placeholders::new(&names, &values)?;
//! let condition = expr::parse_condition("attribute_exists(#c)", &mut placeholders)?;
//! let update = expr::parse_update("SET #c = #c + :one", &mut placeholders)?;
//! placeholders.check_unused()?;
//!
//! let mut song = item! { "Artist" => "Acme", "count" => 41 };
//! assert!(condition.evaluate(&song));
//! update.apply(&mut song, ItemState::Existing)?;
//! assert_eq!(song["count"], AttributeValue::from(42));
//! # Ok::<(), nimbus::kv::expr::ExpressionError>(())
//! ```
//!
//! What this layer must never do: touch storage, or change an item when it
//! returns an error.

mod ast;
mod condition;
mod condition_parser;
mod error;
mod fuzz;
mod key_condition;
mod lexer;
mod parser;
mod path;
mod placeholders;
mod projection;
mod reserved;
mod update;
mod update_parser;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use ast::{
    Comparator, Condition, Function, Name, Operand, Path, PathElement, SetAction, SetValue,
    UpdateExpression, UpdateOperand, Value, ValueAction,
};
pub use condition_parser::MAX_IN_OPERANDS;
pub use error::{ExpressionError, ExpressionKind};
pub use fuzz::fuzz_expression;
pub use key_condition::{KeyCondition, KeySchema, SortKeyCondition};
pub use parser::{MAX_EXPRESSION_BYTES, MAX_NESTING_LEVELS, MAX_OPERATORS};
pub use placeholders::{MAX_PLACEHOLDER_BYTES, MAX_SUBSTITUTION_BYTES, Placeholders};
pub use projection::Projection;
pub use update::ItemState;

#[cfg(doc)]
use crate::value::Item;

/// Parses a `ConditionExpression`.
pub fn parse_condition(
    text: &str,
    placeholders: &mut Placeholders<'_>,
) -> Result<Condition, ExpressionError> {
    condition_parser::parse_condition_grammar(text, ExpressionKind::Condition, placeholders)
}

/// Parses a `FilterExpression` (the condition grammar; errors name the
/// filter). On a Query, also call [`Condition::check_no_key_attributes`].
pub fn parse_filter(
    text: &str,
    placeholders: &mut Placeholders<'_>,
) -> Result<Condition, ExpressionError> {
    condition_parser::parse_condition_grammar(text, ExpressionKind::Filter, placeholders)
}

/// Parses an `UpdateExpression`. Before applying it, call
/// [`UpdateExpression::check_key_attributes`] with the table's key names.
pub fn parse_update(
    text: &str,
    placeholders: &mut Placeholders<'_>,
) -> Result<UpdateExpression, ExpressionError> {
    update_parser::parse_update(text, placeholders)
}

/// Parses a `ProjectionExpression`.
pub fn parse_projection(
    text: &str,
    placeholders: &mut Placeholders<'_>,
) -> Result<Projection, ExpressionError> {
    projection::parse_projection(text, placeholders)
}

/// Parses a `KeyConditionExpression` and checks it against the key schema
/// of the table or index queried.
pub fn parse_key_condition(
    text: &str,
    placeholders: &mut Placeholders<'_>,
    schema: &KeySchema<'_>,
) -> Result<KeyCondition, ExpressionError> {
    key_condition::parse_key_condition(text, placeholders, schema)
}
