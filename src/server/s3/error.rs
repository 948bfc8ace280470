//! Every object-store error as S3 answers it: error code, HTTP status and
//! the headers clients read (`x-amz-delete-marker`, `x-amz-version-id`,
//! `Last-Modified`, `Content-Range`, `ETag`).

use std::time::SystemTime;

use hyper::HeaderMap;
use hyper::StatusCode;
use hyper::header::HeaderValue;
use s3s::{S3Error, S3ErrorCode};

use crate::objects::Error;

fn header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// An HTTP date (`Last-Modified`) of a store time.
pub(super) fn http_date(time: SystemTime) -> String {
    let mut out = Vec::new();
    let _ = s3s::dto::Timestamp::from(time).format(s3s::dto::TimestampFormat::HttpDate, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn with(code: S3ErrorCode, status: StatusCode, message: String) -> S3Error {
    let mut error = S3Error::with_message(code, message);
    error.set_status_code(status);
    error
}

/// The S3 error for an object-store error.
pub(super) fn to_s3(error: Error) -> S3Error {
    let message = error.to_string();
    let mut headers = HeaderMap::new();
    let (code, status) = match &error {
        Error::NoSuchBucket { .. } => (S3ErrorCode::NoSuchBucket, StatusCode::NOT_FOUND),
        Error::BucketAlreadyOwnedByYou { .. } => {
            (S3ErrorCode::BucketAlreadyOwnedByYou, StatusCode::CONFLICT)
        }
        Error::BucketNotEmpty { .. } => (S3ErrorCode::BucketNotEmpty, StatusCode::CONFLICT),
        Error::InvalidBucketName { .. } => {
            (S3ErrorCode::InvalidBucketName, StatusCode::BAD_REQUEST)
        }
        Error::NoSuchKey {
            delete_marker,
            version_id,
            ..
        } => {
            if *delete_marker {
                header(&mut headers, "x-amz-delete-marker", "true");
            }
            if let Some(version_id) = version_id {
                header(&mut headers, "x-amz-version-id", version_id);
            }
            (S3ErrorCode::NoSuchKey, StatusCode::NOT_FOUND)
        }
        Error::NoSuchVersion { .. } => (S3ErrorCode::NoSuchVersion, StatusCode::NOT_FOUND),
        Error::MethodNotAllowed {
            version_id,
            last_modified,
        } => {
            header(&mut headers, "x-amz-delete-marker", "true");
            header(&mut headers, "x-amz-version-id", version_id);
            header(&mut headers, "last-modified", &http_date(*last_modified));
            (
                S3ErrorCode::MethodNotAllowed,
                StatusCode::METHOD_NOT_ALLOWED,
            )
        }
        Error::NoSuchUpload { .. } => (S3ErrorCode::NoSuchUpload, StatusCode::NOT_FOUND),
        Error::PreconditionFailed { .. } => (
            S3ErrorCode::PreconditionFailed,
            StatusCode::PRECONDITION_FAILED,
        ),
        Error::NotModified {
            e_tag,
            last_modified,
        } => {
            header(&mut headers, "etag", &format!("\"{e_tag}\""));
            header(&mut headers, "last-modified", &http_date(*last_modified));
            (S3ErrorCode::NotModified, StatusCode::NOT_MODIFIED)
        }
        Error::InvalidRange { size, .. } => {
            header(&mut headers, "content-range", &format!("bytes */{size}"));
            (S3ErrorCode::InvalidRange, StatusCode::RANGE_NOT_SATISFIABLE)
        }
        Error::InvalidPart { .. } => (S3ErrorCode::InvalidPart, StatusCode::BAD_REQUEST),
        Error::InvalidPartOrder => (S3ErrorCode::InvalidPartOrder, StatusCode::BAD_REQUEST),
        Error::EntityTooSmall { .. } => (S3ErrorCode::EntityTooSmall, StatusCode::BAD_REQUEST),
        Error::EntityTooLarge { .. } => (S3ErrorCode::EntityTooLarge, StatusCode::BAD_REQUEST),
        Error::MetadataTooLarge { .. } => (S3ErrorCode::MetadataTooLarge, StatusCode::BAD_REQUEST),
        Error::InvalidStorageClass(_) => {
            (S3ErrorCode::InvalidStorageClass, StatusCode::BAD_REQUEST)
        }
        Error::InvalidObjectState { .. } => {
            (S3ErrorCode::InvalidObjectState, StatusCode::FORBIDDEN)
        }
        Error::AccessDenied { .. } => (S3ErrorCode::AccessDenied, StatusCode::FORBIDDEN),
        Error::InvalidBucketState { .. } => (S3ErrorCode::InvalidBucketState, StatusCode::CONFLICT),
        Error::NoSuchConfiguration { what } => {
            let code = if what.contains("lifecycle") {
                S3ErrorCode::NoSuchLifecycleConfiguration
            } else if what.contains("lock") {
                S3ErrorCode::ObjectLockConfigurationNotFoundError
            } else {
                S3ErrorCode::Custom("NoSuchConfiguration".into())
            };
            (code, StatusCode::NOT_FOUND)
        }
        Error::InvalidArgument(_) => (S3ErrorCode::InvalidArgument, StatusCode::BAD_REQUEST),
        Error::InvalidRequest(_) => (S3ErrorCode::InvalidRequest, StatusCode::BAD_REQUEST),
        Error::Body(_) => (S3ErrorCode::IncompleteBody, StatusCode::BAD_REQUEST),
        // Damage or an I/O failure is the server's fault, never the client's.
        Error::Corruption { .. } | Error::Storage(_) => (
            S3ErrorCode::InternalError,
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    };
    let mut s3 = with(code, status, message);
    if !headers.is_empty() {
        s3.set_headers(headers);
    }
    s3
}

/// `InvalidArgument` with S3's status.
pub(super) fn invalid_argument(message: impl Into<String>) -> S3Error {
    with(
        S3ErrorCode::InvalidArgument,
        StatusCode::BAD_REQUEST,
        message.into(),
    )
}

/// A task of the blocking pool failed (panicked or was cancelled).
pub(super) fn join_error(error: tokio::task::JoinError) -> S3Error {
    with(
        S3ErrorCode::InternalError,
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the operation did not finish: {error}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_marker_reads_carry_their_headers() {
        let error = to_s3(Error::NoSuchKey {
            key: "k".into(),
            delete_marker: true,
            version_id: Some("v1".into()),
        });
        assert_eq!(error.status_code(), Some(StatusCode::NOT_FOUND));
        let headers = error.headers().unwrap();
        assert_eq!(headers["x-amz-delete-marker"], "true");
        assert_eq!(headers["x-amz-version-id"], "v1");
        let error = to_s3(Error::MethodNotAllowed {
            version_id: "v2".into(),
            last_modified: SystemTime::UNIX_EPOCH,
        });
        assert_eq!(error.status_code(), Some(StatusCode::METHOD_NOT_ALLOWED));
        assert_eq!(
            error.headers().unwrap()["last-modified"],
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }

    #[test]
    fn statuses_follow_s3() {
        let cases = [
            (
                Error::BucketNotEmpty { bucket: "b".into() },
                StatusCode::CONFLICT,
            ),
            (
                Error::InvalidRange {
                    range: "bytes=9-".into(),
                    size: 3,
                },
                StatusCode::RANGE_NOT_SATISFIABLE,
            ),
            (
                Error::PreconditionFailed {
                    condition: "If-Match".into(),
                },
                StatusCode::PRECONDITION_FAILED,
            ),
            (Error::InvalidPartOrder, StatusCode::BAD_REQUEST),
            (
                Error::AccessDenied { reason: "x".into() },
                StatusCode::FORBIDDEN,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(to_s3(error).status_code(), Some(status));
        }
    }
}
