//! The object store's one error type, with variants named after the S3
//! errors users know (`NoSuchBucket`, `PreconditionFailed`, ...).
//!
//! A failed request changes nothing: every operation validates and checks
//! its preconditions before it builds the one batch that commits it.

use std::time::SystemTime;

use crate::storage::StorageError;

/// What can go wrong in an object-store operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bucket does not exist.
    #[error("NoSuchBucket: the bucket {bucket:?} does not exist")]
    NoSuchBucket {
        /// The bucket named by the request.
        bucket: String,
    },
    /// `create_bucket` of a name that is already taken.
    #[error("BucketAlreadyOwnedByYou: the bucket {bucket:?} already exists")]
    BucketAlreadyOwnedByYou {
        /// The bucket named by the request.
        bucket: String,
    },
    /// `delete_bucket` of a bucket that still holds object versions.
    #[error("BucketNotEmpty: the bucket {bucket:?} still holds objects or versions")]
    BucketNotEmpty {
        /// The bucket named by the request.
        bucket: String,
    },
    /// The bucket name breaks S3's naming rules.
    #[error("InvalidBucketName: {reason}")]
    InvalidBucketName {
        /// Which rule the name breaks.
        reason: String,
    },
    /// The key has no current version (or does not exist). When the
    /// current version is a delete marker, `delete_marker` is true and
    /// `version_id` names it (S3's `x-amz-delete-marker: true`).
    #[error("NoSuchKey: the key {key:?} does not exist")]
    NoSuchKey {
        /// The key named by the request.
        key: String,
        /// Whether the key's current version is a delete marker.
        delete_marker: bool,
        /// The delete marker's version id, if it is one.
        version_id: Option<String>,
    },
    /// The version named by the request does not exist.
    #[error("NoSuchVersion: the key {key:?} has no version {version_id:?}")]
    NoSuchVersion {
        /// The key named by the request.
        key: String,
        /// The version id named by the request.
        version_id: String,
    },
    /// The request named a delete marker's version for an operation other
    /// than DELETE (S3 answers 405 with `Last-Modified`).
    #[error("MethodNotAllowed: version {version_id:?} is a delete marker")]
    MethodNotAllowed {
        /// The delete marker's version id.
        version_id: String,
        /// When the delete marker was created.
        last_modified: SystemTime,
    },
    /// The multipart upload does not exist (never created, aborted or
    /// completed).
    #[error("NoSuchUpload: the upload {upload_id:?} does not exist")]
    NoSuchUpload {
        /// The upload id named by the request.
        upload_id: String,
    },
    /// A precondition (`if_match`, `if_none_match`, `if_unmodified_since`)
    /// does not hold (HTTP 412).
    #[error("PreconditionFailed: {condition}")]
    PreconditionFailed {
        /// The condition that failed.
        condition: String,
    },
    /// A read's `if_none_match` or `if_modified_since` says the caller's
    /// copy is current (HTTP 304).
    #[error("NotModified: the object has not changed")]
    NotModified {
        /// The current ETag.
        e_tag: String,
        /// The current version's modification time.
        last_modified: SystemTime,
    },
    /// The requested range starts beyond the object's end (HTTP 416).
    #[error("InvalidRange: the range {range} is not satisfiable for {size} bytes")]
    InvalidRange {
        /// The range as requested.
        range: String,
        /// The object's size in bytes.
        size: u64,
    },
    /// A part of a completion list was never uploaded or its ETag differs.
    #[error("InvalidPart: {reason}")]
    InvalidPart {
        /// Which part and why.
        reason: String,
    },
    /// The completion list is not in ascending part-number order.
    #[error("InvalidPartOrder: the parts must be listed in ascending order")]
    InvalidPartOrder,
    /// A part other than the last is smaller than the minimum part size.
    #[error("EntityTooSmall: part {part_number} has {size} bytes, below the minimum {minimum}")]
    EntityTooSmall {
        /// The offending part.
        part_number: u32,
        /// Its size in bytes.
        size: u64,
        /// The minimum part size in bytes.
        minimum: u64,
    },
    /// The body or object is larger than the store accepts.
    #[error("EntityTooLarge: {reason}")]
    EntityTooLarge {
        /// The limit that was exceeded.
        reason: String,
    },
    /// User metadata is larger than 2 KB.
    #[error("MetadataTooLarge: user metadata has {size} bytes, above {limit}")]
    MetadataTooLarge {
        /// The metadata's size (keys and values, UTF-8 bytes).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The storage class is unknown or not supported by this store.
    #[error("InvalidStorageClass: {0}")]
    InvalidStorageClass(String),
    /// The object is in an archive storage class and must be restored with
    /// `restore_object` before it can be read.
    #[error("InvalidObjectState: the object is archived in {storage_class} and not restored")]
    InvalidObjectState {
        /// The object's storage class.
        storage_class: String,
    },
    /// Object lock forbids the operation (a retained or held version).
    #[error("AccessDenied: {reason}")]
    AccessDenied {
        /// Why the lock forbids it.
        reason: String,
    },
    /// The bucket's configuration does not allow the operation (for example
    /// suspending versioning on a bucket with object lock).
    #[error("InvalidBucketState: {reason}")]
    InvalidBucketState {
        /// Why.
        reason: String,
    },
    /// The bucket has no configuration of the kind asked for.
    #[error("NoSuchConfiguration: {what}")]
    NoSuchConfiguration {
        /// Which configuration (lifecycle, object lock, ...).
        what: String,
    },
    /// A malformed argument (key too long, bad version id, bad rule, ...).
    #[error("InvalidArgument: {0}")]
    InvalidArgument(String),
    /// The request is well-formed but not allowed (copying an object onto
    /// itself without changing anything, for example).
    #[error("InvalidRequest: {0}")]
    InvalidRequest(String),
    /// A stored chunk or record fails its check: the bytes on disk are not
    /// what was written. Never returned as data.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        /// The damaged pack file or catalogue row.
        file: String,
        /// The byte offset of the damaged entry (0 for catalogue rows).
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// Reading the request body failed.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// The storage engine failed (I/O, closed, ...).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Error {
    pub(crate) fn no_such_bucket(bucket: &str) -> Self {
        Self::NoSuchBucket {
            bucket: bucket.to_owned(),
        }
    }

    pub(crate) fn no_such_key(key: &str) -> Self {
        Self::NoSuchKey {
            key: key.to_owned(),
            delete_marker: false,
            version_id: None,
        }
    }

    pub(crate) fn precondition(condition: impl Into<String>) -> Self {
        Self::PreconditionFailed {
            condition: condition.into(),
        }
    }

    pub(crate) fn corrupt_row(reason: impl Into<String>) -> Self {
        Self::Corruption {
            file: "object catalogue".to_owned(),
            offset: 0,
            reason: reason.into(),
        }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Storage(StorageError::io(op, path, source))
    }
}

/// The object store's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
