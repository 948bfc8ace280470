//! Errors on the wire: the HTTP status, the `__type` (with the namespace
//! DynamoDB gives each error) and the JSON body, and the mapping from the
//! kv layer's [`kv::Error`] onto them. A client mistake is always a 400;
//! only a failure of the engine itself is a 500 (SDKs retry 5xx, which
//! would hide a client's mistake).

use serde_json::{Map, Value, json};

use crate::kv;
use crate::value::ValueError;

/// The namespace of DynamoDB's own errors.
const DYNAMODB: &str = "com.amazonaws.dynamodb.v20120810#";
/// The namespace of errors raised by the request-validation layer.
const VALIDATE: &str = "com.amazon.coral.validate#";
/// The namespace of errors raised by the service framework (routing,
/// deserialization, authentication).
const SERVICE: &str = "com.amazon.coral.service#";

/// An error answer: status, `__type`, message and extra members.
#[derive(Debug, Clone, PartialEq)]
pub struct WireError {
    /// The HTTP status.
    pub status: u16,
    /// The full `__type` (`namespace#Name`).
    pub type_name: String,
    /// The `message` member.
    pub message: String,
    /// Extra members (`Item`, `CancellationReasons`).
    pub extra: Map<String, Value>,
}

impl WireError {
    fn new(status: u16, namespace: &str, name: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            type_name: format!("{namespace}{name}"),
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// `ValidationException` with DynamoDB's message.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(400, VALIDATE, "ValidationException", message)
    }

    /// `SerializationException`: the body is not the JSON the operation
    /// takes.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(400, SERVICE, "SerializationException", message)
    }

    /// `UnknownOperationException`: no such operation (or not served).
    pub fn unknown_operation() -> Self {
        Self::new(400, SERVICE, "UnknownOperationException", "")
    }

    /// `MissingAuthenticationTokenException`.
    pub fn missing_authentication_token() -> Self {
        Self::new(
            400,
            SERVICE,
            "MissingAuthenticationTokenException",
            "Request is missing Authentication Token",
        )
    }

    /// `UnrecognizedClientException`: the access key is not configured.
    pub fn unrecognized_client() -> Self {
        Self::new(
            400,
            SERVICE,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    /// `InvalidSignatureException` with `message`.
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(400, SERVICE, "InvalidSignatureException", message)
    }

    /// `IncompleteSignatureException` with `message`.
    pub fn incomplete_signature(message: impl Into<String>) -> Self {
        Self::new(400, SERVICE, "IncompleteSignatureException", message)
    }

    /// `ResourceNotFoundException` with `message`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(400, DYNAMODB, "ResourceNotFoundException", message)
    }

    /// The body is over the server's limit (HTTP 413, as DynamoDB's front
    /// end answers an oversized request).
    pub fn request_too_large(limit_bytes: usize) -> Self {
        Self::new(
            413,
            DYNAMODB,
            "RequestEntityTooLarge",
            format!("Request entity too large: the limit is {limit_bytes} bytes"),
        )
    }

    /// The engine failed: HTTP 500 `InternalServerError`.
    pub fn internal() -> Self {
        Self::new(
            500,
            DYNAMODB,
            "InternalServerError",
            "Internal server error",
        )
    }

    /// The server is at its connection limit (HTTP 503, retried by SDKs).
    pub fn unavailable() -> Self {
        Self::new(
            503,
            DYNAMODB,
            "ServiceUnavailable",
            "The server is at its connection limit; retry",
        )
    }

    /// The short name (`ValidationException`).
    pub fn name(&self) -> &str {
        self.type_name
            .rsplit_once('#')
            .map_or(self.type_name.as_str(), |(_, name)| name)
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        let mut object = Map::new();
        object.insert("__type".into(), Value::String(self.type_name.clone()));
        // DynamoDB leaves the message out rather than sending an empty one.
        if !self.message.is_empty() {
            object.insert("message".into(), Value::String(self.message.clone()));
        }
        object.extend(self.extra.clone());
        serde_json::to_vec(&Value::Object(object)).unwrap_or_default()
    }
}

impl From<ValueError> for WireError {
    fn from(error: ValueError) -> Self {
        match error {
            ValueError::Serialization(message) => Self::serialization(message),
            other => Self::validation(other.message().to_owned()),
        }
    }
}

impl From<kv::Error> for WireError {
    fn from(error: kv::Error) -> Self {
        let message = error.message();
        match error {
            kv::Error::Validation(_) => Self::validation(message),
            kv::Error::ResourceNotFound(_) => Self::resource_not_found(message),
            kv::Error::ResourceInUse(_) => {
                Self::new(400, DYNAMODB, "ResourceInUseException", message)
            }
            kv::Error::ConditionalCheckFailed { item } => {
                let mut wire = Self::new(400, DYNAMODB, "ConditionalCheckFailedException", message);
                if let Some(item) = item {
                    wire.extra.insert("Item".into(), json!(item));
                }
                wire
            }
            kv::Error::TransactionCanceled { reasons } => {
                let mut wire = Self::new(400, DYNAMODB, "TransactionCanceledException", message);
                let reasons: Vec<Value> = reasons
                    .iter()
                    .map(|reason| {
                        let mut object = Map::new();
                        object.insert("Code".into(), json!(reason.code));
                        if let Some(message) = &reason.message {
                            object.insert("Message".into(), json!(message));
                        }
                        if let Some(item) = &reason.item {
                            object.insert("Item".into(), json!(item));
                        }
                        Value::Object(object)
                    })
                    .collect();
                wire.extra
                    .insert("CancellationReasons".into(), Value::Array(reasons));
                wire
            }
            kv::Error::IdempotentParameterMismatch(_) => Self::new(
                400,
                DYNAMODB,
                "IdempotentParameterMismatchException",
                message,
            ),
            kv::Error::TransactionInProgress(_) => {
                Self::new(400, DYNAMODB, "TransactionInProgressException", message)
            }
            kv::Error::ProvisionedThroughputExceeded(_) => Self::new(
                400,
                DYNAMODB,
                "ProvisionedThroughputExceededException",
                message,
            ),
            kv::Error::ItemCollectionSizeLimitExceeded(_) => Self::new(
                400,
                DYNAMODB,
                "ItemCollectionSizeLimitExceededException",
                message,
            ),
            kv::Error::TableNotFound(_) => {
                Self::new(400, DYNAMODB, "TableNotFoundException", message)
            }
            kv::Error::TableAlreadyExists(_) => {
                Self::new(400, DYNAMODB, "TableAlreadyExistsException", message)
            }
            kv::Error::BackupNotFound(_) => {
                Self::new(400, DYNAMODB, "BackupNotFoundException", message)
            }
            kv::Error::ExportNotFound(_) => {
                Self::new(400, DYNAMODB, "ExportNotFoundException", message)
            }
            kv::Error::ImportNotFound(_) => {
                Self::new(400, DYNAMODB, "ImportNotFoundException", message)
            }
            kv::Error::ExportConflict(_) => {
                Self::new(400, DYNAMODB, "ExportConflictException", message)
            }
            kv::Error::ImportConflict(_) => {
                Self::new(400, DYNAMODB, "ImportConflictException", message)
            }
            kv::Error::PointInTimeRecoveryUnavailable(_) => Self::new(
                400,
                DYNAMODB,
                "PointInTimeRecoveryUnavailableException",
                message,
            ),
            kv::Error::InvalidRestoreTime(_) => {
                Self::new(400, DYNAMODB, "InvalidRestoreTimeException", message)
            }
            kv::Error::ContinuousBackupsUnavailable(_) => Self::new(
                400,
                DYNAMODB,
                "ContinuousBackupsUnavailableException",
                message,
            ),
            kv::Error::LimitExceeded(_) => {
                Self::new(400, DYNAMODB, "LimitExceededException", message)
            }
            kv::Error::ExpiredIterator(_) => {
                Self::new(400, DYNAMODB, "ExpiredIteratorException", message)
            }
            kv::Error::TrimmedDataAccess(_) => {
                Self::new(400, DYNAMODB, "TrimmedDataAccessException", message)
            }
            // The engine's own failure (I/O, corruption, closed database),
            // and any variant added later until it is mapped here.
            _ => Self::internal(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_uses_the_validate_namespace() {
        let wire = WireError::from(kv::Error::Validation("bad".into()));
        assert_eq!(wire.status, 400);
        let body: Value = serde_json::from_slice(&wire.body()).unwrap();
        assert_eq!(
            body,
            json!({"__type": "com.amazon.coral.validate#ValidationException", "message": "bad"})
        );
    }

    #[test]
    fn failed_condition_carries_the_item() {
        let item = crate::item! { "k" => "v" };
        let wire = WireError::from(kv::Error::ConditionalCheckFailed { item: Some(item) });
        let body: Value = serde_json::from_slice(&wire.body()).unwrap();
        assert_eq!(
            body["__type"],
            "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
        );
        assert_eq!(body["Item"], json!({"k": {"S": "v"}}));
        assert_eq!(wire.name(), "ConditionalCheckFailedException");
    }

    #[test]
    fn unknown_operation_has_no_message() {
        let body: Value = serde_json::from_slice(&WireError::unknown_operation().body()).unwrap();
        assert_eq!(
            body,
            json!({"__type": "com.amazon.coral.service#UnknownOperationException"})
        );
    }
}
