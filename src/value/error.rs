//! The value model's error type.

/// What can be wrong with an attribute value, an item or a conversion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// DynamoDB's `ValidationException`, with DynamoDB's message.
    #[error("{0}")]
    Validation(String),
    /// DynamoDB's `SerializationException`: the DynamoDB JSON of a value is
    /// malformed (a number sent as a JSON number, invalid base64, ...).
    #[error("{0}")]
    Serialization(String),
    /// Encoded bytes (a stored key, say) are not a valid encoding.
    #[error("malformed encoded value: {0}")]
    Decode(String),
    /// A Rust value could not be converted to or from an item (serde).
    #[error("conversion error: {0}")]
    Conversion(String),
}

impl ValueError {
    /// A validation error with DynamoDB's message text.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    /// A validation error prefixed the way DynamoDB prefixes parameter
    /// errors: "One or more parameter values were invalid: ...".
    pub(crate) fn invalid_parameter(detail: impl std::fmt::Display) -> Self {
        Self::Validation(format!(
            "One or more parameter values were invalid: {detail}"
        ))
    }

    /// The message, without the variant name.
    pub fn message(&self) -> &str {
        match self {
            Self::Validation(message)
            | Self::Serialization(message)
            | Self::Decode(message)
            | Self::Conversion(message) => message,
        }
    }
}
