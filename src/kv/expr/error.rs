//! The expression layer's error type, the kinds of expression (which name
//! DynamoDB puts in its messages), and the constructors of the messages that
//! several files share.

use std::fmt;

use crate::value::ValueError;

/// What can be wrong with an expression, its placeholders, or applying it.
///
/// Every variant carries DynamoDB's exact message text, so a caller can hand
/// it to a user who compares it with what DynamoDB says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpressionError {
    /// DynamoDB's `ValidationException`, with DynamoDB's message.
    #[error("{0}")]
    Validation(String),
}

impl ExpressionError {
    /// A validation error with exactly `message`.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    /// A validation error about an expression of `kind`, prefixed the way
    /// DynamoDB prefixes them ("Invalid ConditionExpression: ...").
    pub(crate) fn invalid(kind: ExpressionKind, detail: impl fmt::Display) -> Self {
        Self::Validation(format!("Invalid {kind}: {detail}"))
    }

    /// The message, without the variant name.
    pub fn message(&self) -> &str {
        match self {
            Self::Validation(message) => message,
        }
    }
}

impl From<ValueError> for ExpressionError {
    /// Number overflow in arithmetic and invalid values keep the value
    /// layer's DynamoDB message.
    fn from(error: ValueError) -> Self {
        Self::Validation(error.message().to_owned())
    }
}

/// Which request parameter an expression came from; DynamoDB names it in
/// every message about the expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpressionKind {
    /// `ConditionExpression` of a write or a `ConditionCheck`.
    Condition,
    /// `FilterExpression` of a Query or Scan.
    Filter,
    /// `KeyConditionExpression` of a Query.
    KeyCondition,
    /// `UpdateExpression` of an UpdateItem.
    Update,
    /// `ProjectionExpression` of a read.
    Projection,
}

impl ExpressionKind {
    /// The request parameter's name, as DynamoDB writes it in messages.
    pub fn parameter_name(self) -> &'static str {
        match self {
            Self::Condition => "ConditionExpression",
            Self::Filter => "FilterExpression",
            Self::KeyCondition => "KeyConditionExpression",
            Self::Update => "UpdateExpression",
            Self::Projection => "ProjectionExpression",
        }
    }
}

impl fmt::Display for ExpressionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.parameter_name())
    }
}

/// DynamoDB's runtime error for an update whose operand has the wrong type
/// for what the action does with it (`ADD` of a number to a string, ...).
pub(crate) fn incorrect_data_type() -> ExpressionError {
    ExpressionError::validation("An operand in the update expression has an incorrect data type")
}

/// DynamoDB's runtime error for an update path whose parent is missing or of
/// the wrong type (`SET a.b` where `a` is not a map).
pub(crate) fn invalid_document_path() -> ExpressionError {
    ExpressionError::validation(
        "The document path provided in the update expression is invalid for update",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_the_parameter() {
        let error =
            ExpressionError::invalid(ExpressionKind::Filter, "The expression can not be empty;");
        assert_eq!(
            error.message(),
            "Invalid FilterExpression: The expression can not be empty;"
        );
    }

    #[test]
    fn value_errors_keep_their_message() {
        let error = ExpressionError::from(ValueError::Validation("Number overflow".into()));
        assert_eq!(error, ExpressionError::Validation("Number overflow".into()));
    }
}
