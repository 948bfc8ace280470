//! The kv layer's error type: one variant per DynamoDB error a caller
//! handles, carrying DynamoDB's message.

use crate::kv::expr::ExpressionError;
use crate::storage::StorageError;
use crate::value::{Item, ValueError};

/// What a table operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// DynamoDB's `ValidationException`, with DynamoDB's message. Nothing
    /// was written.
    #[error("ValidationException: {0}")]
    Validation(String),
    /// The table (or index) does not exist.
    #[error("ResourceNotFoundException: {0}")]
    ResourceNotFound(String),
    /// The table already exists (CreateTable), or is being changed.
    #[error("ResourceInUseException: {0}")]
    ResourceInUse(String),
    /// A condition expression evaluated to false; `item` is the stored
    /// item when `return_values_on_condition_check_failure(AllOld)` asked
    /// for it.
    #[error("ConditionalCheckFailedException: The conditional request failed")]
    ConditionalCheckFailed {
        /// The item as stored, if requested and present.
        item: Option<Item>,
    },
    /// A transaction was cancelled; one reason per action, in order.
    #[error("TransactionCanceledException: {}", canceled_message(.reasons))]
    TransactionCanceled {
        /// Why each action failed (`code == "None"` for those that did not).
        reasons: Vec<CancellationReason>,
    },
    /// A client request token was reused with different parameters.
    #[error("IdempotentParameterMismatchException: {0}")]
    IdempotentParameterMismatch(String),
    /// The transaction with this client request token is still running.
    #[error("TransactionInProgressException: {0}")]
    TransactionInProgress(String),
    /// The request exceeded the table's provisioned throughput.
    #[error("ProvisionedThroughputExceededException: {0}")]
    ProvisionedThroughputExceeded(String),
    /// A write would grow an item collection (a partition key's items and
    /// their local index entries) past its size limit (10 GB by default).
    #[error("ItemCollectionSizeLimitExceededException: {0}")]
    ItemCollectionSizeLimitExceeded(String),
    /// The table to back up does not exist (CreateBackup).
    #[error("TableNotFoundException: {0}")]
    TableNotFound(String),
    /// The table to restore into already exists (RestoreTableFromBackup).
    #[error("TableAlreadyExistsException: {0}")]
    TableAlreadyExists(String),
    /// No backup has this ARN.
    #[error("BackupNotFoundException: {0}")]
    BackupNotFound(String),
    /// No export has this ARN (DescribeExport).
    #[error("ExportNotFoundException: {0}")]
    ExportNotFound(String),
    /// No import has this ARN (DescribeImport).
    #[error("ImportNotFoundException: {0}")]
    ImportNotFound(String),
    /// An export's client token was reused, within its 8-hour window, with
    /// other parameters.
    #[error("ExportConflictException: {0}")]
    ExportConflict(String),
    /// An import's client token was reused, within its 8-hour window, with
    /// other parameters.
    #[error("ImportConflictException: {0}")]
    ImportConflict(String),
    /// The source table of a point-in-time restore has no PITR.
    #[error("PointInTimeRecoveryUnavailableException: {0}")]
    PointInTimeRecoveryUnavailable(String),
    /// A point-in-time restore's time lies outside the recovery window.
    #[error("InvalidRestoreTimeException: {0}")]
    InvalidRestoreTime(String),
    /// Continuous backups cannot be enabled (an in-memory database).
    #[error("ContinuousBackupsUnavailableException: {0}")]
    ContinuousBackupsUnavailable(String),
    /// A limit of the account-level kind (concurrent table operations).
    #[error("LimitExceededException: {0}")]
    LimitExceeded(String),
    /// A shard iterator is older than its 15-minute lifetime.
    #[error("ExpiredIteratorException: {0}")]
    ExpiredIterator(String),
    /// A stream position refers to records already trimmed (older than
    /// the retention period).
    #[error("TrimmedDataAccessException: {0}")]
    TrimmedDataAccess(String),
    /// The storage engine failed (I/O, corruption, closed database).
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// Why one action of a cancelled transaction failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationReason {
    /// `"None"`, `"ConditionalCheckFailed"`, `"TransactionConflict"`,
    /// `"ValidationError"`, ...
    pub code: String,
    /// DynamoDB's message for the code (absent for `"None"`).
    pub message: Option<String>,
    /// The stored item, when the action asked for `ALL_OLD` on failure.
    pub item: Option<Item>,
}

impl CancellationReason {
    /// The reason of an action that did not fail.
    pub(crate) fn none() -> Self {
        Self {
            code: "None".into(),
            message: None,
            item: None,
        }
    }

    pub(crate) fn new(code: &str, message: &str, item: Option<Item>) -> Self {
        Self {
            code: code.into(),
            message: Some(message.into()),
            item,
        }
    }
}

fn canceled_message(reasons: &[CancellationReason]) -> String {
    let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
    format!(
        "Transaction cancelled, please refer cancellation reasons for specific reasons [{}]",
        codes.join(", ")
    )
}

impl Error {
    /// A validation error with `message`.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::Validation(message.into())
    }

    /// DynamoDB's "Requested resource not found" for a missing table.
    pub(crate) fn table_not_found(_table: &str) -> Self {
        Self::ResourceNotFound("Requested resource not found".into())
    }

    /// The message without the exception name.
    pub fn message(&self) -> String {
        match self {
            Self::Validation(m)
            | Self::ResourceNotFound(m)
            | Self::ResourceInUse(m)
            | Self::IdempotentParameterMismatch(m)
            | Self::TransactionInProgress(m)
            | Self::ProvisionedThroughputExceeded(m)
            | Self::ItemCollectionSizeLimitExceeded(m)
            | Self::TableNotFound(m)
            | Self::TableAlreadyExists(m)
            | Self::BackupNotFound(m)
            | Self::ExportNotFound(m)
            | Self::ImportNotFound(m)
            | Self::ExportConflict(m)
            | Self::ImportConflict(m)
            | Self::PointInTimeRecoveryUnavailable(m)
            | Self::InvalidRestoreTime(m)
            | Self::ContinuousBackupsUnavailable(m)
            | Self::LimitExceeded(m)
            | Self::ExpiredIterator(m)
            | Self::TrimmedDataAccess(m) => m.clone(),
            Self::ConditionalCheckFailed { .. } => "The conditional request failed".into(),
            Self::TransactionCanceled { reasons } => canceled_message(reasons),
            Self::Storage(e) => e.to_string(),
        }
    }
}

impl From<ExpressionError> for Error {
    fn from(error: ExpressionError) -> Self {
        Self::Validation(error.message().to_owned())
    }
}

impl From<ValueError> for Error {
    fn from(error: ValueError) -> Self {
        match error {
            ValueError::Decode(reason) => Self::Storage(StorageError::corruption(
                "item row",
                0,
                format!("stored item does not decode: {reason}"),
            )),
            other => Self::Validation(other.message().to_owned()),
        }
    }
}

/// The kv layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
