//! Object operations: PUT (streamed, checksums verified before commit),
//! GET/HEAD (ranges, parts, conditionals, streamed), DELETE and
//! DeleteObjects (governance bypass), CopyObject, object tagging.
//! Listings are in `listing`.

use std::collections::HashMap;
use std::time::SystemTime;

use hyper::StatusCode;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use super::access::{allowed, bucket_acl};
use super::body::{BlockingBody, Declared, response_body};
use super::convert::{
    condition, e_tag, storage_class, system_time, tag_pairs, tag_set, tagging_header, timestamp,
};
use super::error::{invalid_argument, to_s3};
use super::service::NimbusS3;
use crate::objects::{
    ByteStream, Error as ObjectsError, HeadObjectOutput as StoreHead,
    MetadataDirective as Directive, ObjectIdentifier as StoreIdentifier,
    ObjectLockMode as StoreLockMode,
};

/// A retention mode from the wire.
pub(super) fn lock_mode(mode: &str) -> S3Result<StoreLockMode> {
    match mode {
        "GOVERNANCE" => Ok(StoreLockMode::Governance),
        "COMPLIANCE" => Ok(StoreLockMode::Compliance),
        other => Err(invalid_argument(format!(
            "unknown object lock mode {other:?}"
        ))),
    }
}

/// A retention mode for the wire.
pub(super) fn wire_lock_mode(mode: StoreLockMode) -> &'static str {
    match mode {
        StoreLockMode::Governance => "GOVERNANCE",
        _ => "COMPLIANCE",
    }
}

/// The `Range` header text of a parsed range.
fn range_text(range: &Range) -> String {
    match range {
        Range::Int {
            first,
            last: Some(last),
        } => format!("bytes={first}-{last}"),
        Range::Int { first, last: None } => format!("bytes={first}-"),
        Range::Suffix { length } => format!("bytes=-{length}"),
    }
}

fn part_number(value: Option<i32>) -> S3Result<Option<u32>> {
    value
        .map(|n| u32::try_from(n).map_err(|_| invalid_argument("a part number is 1 to 10000")))
        .transpose()
}

/// A copy source's bucket, key and version id.
pub(super) type Source = (Box<str>, Box<str>, Option<Box<str>>);

/// The bucket, key and version of a copy source (CopyObject,
/// UploadPartCopy); access-point sources are not served.
pub(super) fn copy_source(source: CopySource) -> S3Result<Source> {
    match source {
        CopySource::Bucket {
            bucket,
            key,
            version_id,
        } => Ok((bucket, key, version_id)),
        _ => Err(s3_error!(
            NotImplemented,
            "access point copy sources are not supported"
        )),
    }
}

/// Whether a caller may read from `bucket` (the source of a copy).
pub(super) fn check_source_readable(
    db: &crate::Database,
    bucket: &str,
    caller: Option<&str>,
) -> S3Result<()> {
    match bucket_acl(db, bucket).map_err(to_s3)? {
        None => Err(s3_error!(
            NoSuchBucket,
            "The specified bucket does not exist"
        )),
        Some(acl) if allowed(&acl, caller, "GetObject") => Ok(()),
        Some(_) => Err(s3_error!(AccessDenied, "Access Denied")),
    }
}

/// The fields of a GET and a HEAD answer.
struct Headers {
    e_tag: Option<ETag>,
    last_modified: Option<Timestamp>,
    version_id: Option<String>,
    content_length: Option<i64>,
    content_range: Option<String>,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    cache_control: Option<String>,
    metadata: Option<HashMap<String, String>>,
    storage_class: Option<StorageClass>,
    parts_count: Option<i32>,
    object_lock_mode: Option<ObjectLockMode>,
    object_lock_retain_until_date: Option<Timestamp>,
    object_lock_legal_hold_status: Option<ObjectLockLegalHoldStatus>,
    restore: Option<String>,
}

macro_rules! headers_of {
    ($out:expr) => {{
        let out = $out;
        Headers {
            e_tag: Some(e_tag(out.e_tag)),
            last_modified: Some(timestamp(out.last_modified)),
            version_id: out.version_id,
            content_length: i64::try_from(out.content_length).ok(),
            content_range: out.content_range,
            content_type: out.content_type,
            content_encoding: out.content_encoding,
            content_disposition: out.content_disposition,
            cache_control: out.cache_control,
            metadata: (!out.metadata.is_empty()).then(|| out.metadata.into_iter().collect()),
            storage_class: (out.storage_class != crate::objects::StorageClass::Standard)
                .then(|| StorageClass::from(out.storage_class.as_str().to_owned())),
            parts_count: out.parts_count.and_then(|n| i32::try_from(n).ok()),
            object_lock_mode: out
                .object_lock_mode
                .map(|mode| ObjectLockMode::from(wire_lock_mode(mode).to_owned())),
            object_lock_retain_until_date: out.object_lock_retain_until_date.map(timestamp),
            object_lock_legal_hold_status: out
                .object_lock_legal_hold
                .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
            restore: out.restore_expiry_date.map(|expiry| {
                format!(
                    "ongoing-request=\"false\", expiry-date=\"{}\"",
                    super::error::http_date(expiry)
                )
            }),
        }
    }};
}

macro_rules! read_request {
    ($builder:expr, $input:expr) => {{
        let mut builder = $builder;
        if let Some(version_id) = &$input.version_id {
            builder = builder.version_id(version_id.as_str());
        }
        if let Some(range) = &$input.range {
            builder = builder.range(range_text(range));
        }
        if let Some(part) = part_number($input.part_number)? {
            builder = builder.part_number(part);
        }
        if let Some(tag) = &$input.if_match {
            builder = builder.if_match(condition(tag));
        }
        if let Some(tag) = &$input.if_none_match {
            builder = builder.if_none_match(condition(tag));
        }
        if let Some(time) = $input.if_modified_since.clone() {
            builder = builder.if_modified_since(system_time(time));
        }
        if let Some(time) = $input.if_unmodified_since.clone() {
            builder = builder.if_unmodified_since(system_time(time));
        }
        builder
    }};
}

fn read_status(content_range: &Option<String>) -> Option<StatusCode> {
    content_range.as_ref().map(|_| StatusCode::PARTIAL_CONTENT)
}

impl NimbusS3 {
    pub(super) async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let started = SystemTime::now();
        let declared = Declared {
            content_md5: req.input.content_md5.clone(),
            checksums: Checksum {
                checksum_crc32: req.input.checksum_crc32.clone(),
                checksum_crc32c: req.input.checksum_crc32c.clone(),
                checksum_sha1: req.input.checksum_sha1.clone(),
                checksum_sha256: req.input.checksum_sha256.clone(),
                checksum_crc64nvme: req.input.checksum_crc64nvme.clone(),
                ..Default::default()
            },
            algorithm: req.input.checksum_algorithm.clone(),
            trailers: req.trailing_headers.clone(),
        }
        .with_trailer_names(&req.headers);
        let input = req.input;
        let class = input
            .storage_class
            .as_ref()
            .map(|c| storage_class(c.as_str()))
            .transpose()?;
        let lock = input
            .object_lock_mode
            .as_ref()
            .map(|m| lock_mode(m.as_str()))
            .transpose()?;
        let if_none_match = input.if_none_match.as_ref().map(condition);
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let (answer, computed) = self
            .blocking(move |db| {
                let runtime = tokio::runtime::Handle::current();
                let (body, failure, computed) = match input.body {
                    Some(stream) => {
                        let body = BlockingBody::new(stream, &runtime, declared);
                        let (failure, computed) = (body.failure(), body.computed());
                        (ByteStream::from_pieces(body), Some(failure), Some(computed))
                    }
                    None => (ByteStream::empty(), None, None),
                };
                let mut put = db
                    .objects()
                    .put_object(bucket.as_str(), key.as_str())
                    .body(body);
                if let Some(value) = input.content_type {
                    put = put.content_type(value);
                }
                if let Some(value) = input.content_encoding {
                    put = put.content_encoding(value);
                }
                if let Some(value) = input.content_disposition {
                    put = put.content_disposition(value);
                }
                if let Some(value) = input.cache_control {
                    put = put.cache_control(value);
                }
                for (name, value) in input.metadata.unwrap_or_default() {
                    put = put.metadata(name, value);
                }
                for (name, value) in input
                    .tagging
                    .as_deref()
                    .map(tagging_header)
                    .unwrap_or_default()
                {
                    put = put.tagging(name, value);
                }
                if let Some(class) = class {
                    put = put.storage_class(class);
                }
                if let Some(tag) = &input.if_match {
                    put = put.if_match(condition(tag));
                }
                if let Some(value) = &if_none_match {
                    put = put.if_none_match(value.as_str());
                }
                if let Some(mode) = lock {
                    put = put.object_lock_mode(mode);
                }
                if let Some(until) = input.object_lock_retain_until_date {
                    put = put.object_lock_retain_until_date(system_time(until));
                }
                if let Some(hold) = &input.object_lock_legal_hold_status {
                    put =
                        put.object_lock_legal_hold(hold.as_str() == ObjectLockLegalHoldStatus::ON);
                }
                match put.send() {
                    Ok(answer) => Ok((answer, computed.and_then(|c| c.lock().take()))),
                    Err(ObjectsError::Body(message)) => Err(failure
                        .and_then(|slot| slot.lock().take())
                        .unwrap_or_else(|| to_s3(ObjectsError::Body(message)))),
                    Err(error @ ObjectsError::PreconditionFailed { .. })
                        if if_none_match.as_deref() == Some("*") =>
                    {
                        Err(racing_create(db, &bucket, &key, started)
                            .unwrap_or_else(|| to_s3(error)))
                    }
                    Err(error) => Err(to_s3(error)),
                }
            })
            .await?;
        let computed = computed.unwrap_or_default();
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(e_tag(answer.e_tag)),
            version_id: answer.version_id,
            size: i64::try_from(answer.size).ok(),
            checksum_crc32: computed.checksum_crc32,
            checksum_crc32c: computed.checksum_crc32c,
            checksum_sha1: computed.checksum_sha1,
            checksum_sha256: computed.checksum_sha256,
            checksum_crc64nvme: computed.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    pub(super) async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let input = req.input;
        // Presigned GETs may override response headers (`response-*`).
        let overrides = (
            input.response_content_type.clone(),
            input.response_content_disposition.clone(),
            input.response_content_encoding.clone(),
            input.response_cache_control.clone(),
        );
        let (headers, body) = self
            .blocking(move |db| {
                let builder = db
                    .objects()
                    .get_object(input.bucket.as_str(), input.key.as_str());
                let out = read_request!(builder, input).send().map_err(to_s3)?;
                let runtime = tokio::runtime::Handle::current();
                let body = response_body(out.body, &runtime)
                    .map_err(|e| s3_error!(InternalError, "cannot read the object: {e}"))?;
                let head = StoreHead {
                    content_length: out.content_length,
                    content_range: out.content_range,
                    e_tag: out.e_tag,
                    version_id: out.version_id,
                    last_modified: out.last_modified,
                    content_type: out.content_type,
                    content_encoding: out.content_encoding,
                    content_disposition: out.content_disposition,
                    cache_control: out.cache_control,
                    metadata: out.metadata,
                    storage_class: out.storage_class,
                    parts_count: out.parts_count,
                    tag_count: out.tag_count,
                    object_lock_mode: out.object_lock_mode,
                    object_lock_retain_until_date: out.object_lock_retain_until_date,
                    object_lock_legal_hold: out.object_lock_legal_hold,
                    restore_expiry_date: out.restore_expiry_date,
                };
                let tag_count = head.tag_count;
                Ok(((headers_of!(head), tag_count), body))
            })
            .await?;
        let (headers, tag_count) = headers;
        let status = read_status(&headers.content_range);
        let mut response = S3Response::new(GetObjectOutput {
            body: Some(body),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: headers.e_tag,
            last_modified: headers.last_modified,
            version_id: headers.version_id,
            content_length: headers.content_length,
            content_range: headers.content_range,
            content_type: overrides.0.or(headers.content_type),
            content_disposition: overrides.1.or(headers.content_disposition),
            content_encoding: overrides.2.or(headers.content_encoding),
            cache_control: overrides.3.or(headers.cache_control),
            metadata: headers.metadata,
            storage_class: headers.storage_class,
            parts_count: headers.parts_count,
            tag_count: (tag_count > 0).then(|| i32::try_from(tag_count).unwrap_or(i32::MAX)),
            object_lock_mode: headers.object_lock_mode,
            object_lock_retain_until_date: headers.object_lock_retain_until_date,
            object_lock_legal_hold_status: headers.object_lock_legal_hold_status,
            restore: headers.restore,
            ..Default::default()
        });
        response.status = status;
        Ok(response)
    }

    pub(super) async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let input = req.input;
        let headers = self
            .blocking(move |db| {
                let builder = db
                    .objects()
                    .head_object(input.bucket.as_str(), input.key.as_str());
                let out = read_request!(builder, input).send().map_err(to_s3)?;
                Ok(headers_of!(out))
            })
            .await?;
        let status = read_status(&headers.content_range);
        let mut response = S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".to_owned()),
            e_tag: headers.e_tag,
            last_modified: headers.last_modified,
            version_id: headers.version_id,
            content_length: headers.content_length,
            content_range: headers.content_range,
            content_type: headers.content_type,
            content_encoding: headers.content_encoding,
            content_disposition: headers.content_disposition,
            cache_control: headers.cache_control,
            metadata: headers.metadata,
            storage_class: headers.storage_class,
            parts_count: headers.parts_count,
            object_lock_mode: headers.object_lock_mode,
            object_lock_retain_until_date: headers.object_lock_retain_until_date,
            object_lock_legal_hold_status: headers.object_lock_legal_hold_status,
            restore: headers.restore,
            ..Default::default()
        });
        response.status = status;
        Ok(response)
    }

    pub(super) async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        let out = self
            .blocking(move |db| {
                let mut delete = db
                    .objects()
                    .delete_object(input.bucket.as_str(), input.key.as_str());
                if let Some(version_id) = input.version_id {
                    delete = delete.version_id(version_id);
                }
                if input.bypass_governance_retention == Some(true) {
                    delete = delete.bypass_governance_retention(true);
                }
                if let Some(tag) = &input.if_match {
                    delete = delete.if_match(condition(tag));
                }
                delete.send().map_err(to_s3)
            })
            .await?;
        let mut response = S3Response::new(DeleteObjectOutput {
            delete_marker: out.delete_marker.then_some(true),
            version_id: out.version_id,
            request_charged: None,
        });
        response.status = Some(StatusCode::NO_CONTENT);
        Ok(response)
    }

    pub(super) async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let input = req.input;
        // S3 deletes at most 1000 keys per request.
        if input.delete.objects.len() > 1000 {
            return Err(s3_error!(
                MalformedXML,
                "at most 1000 keys per DeleteObjects"
            ));
        }
        let quiet = input.delete.quiet.unwrap_or(false);
        let out = self
            .blocking(move |db| {
                let objects =
                    input
                        .delete
                        .objects
                        .into_iter()
                        .map(|object| match object.version_id {
                            Some(version_id) => {
                                StoreIdentifier::with_version(object.key, version_id)
                            }
                            None => StoreIdentifier::new(object.key),
                        });
                db.objects()
                    .delete_objects(input.bucket.as_str())
                    .objects(objects)
                    .quiet(quiet)
                    .bypass_governance_retention(input.bypass_governance_retention == Some(true))
                    .send()
                    .map_err(to_s3)
            })
            .await?;
        let deleted: Vec<DeletedObject> = out
            .deleted
            .into_iter()
            .map(|d| DeletedObject {
                key: Some(d.key),
                version_id: d.version_id,
                delete_marker: d.delete_marker.then_some(true),
                delete_marker_version_id: d.delete_marker_version_id,
            })
            .collect();
        let errors: Vec<Error> = out
            .errors
            .into_iter()
            .map(|e| {
                let s3 = to_s3(e.error);
                Error {
                    code: Some(s3.code().as_str().to_owned()),
                    message: s3.message().map(str::to_owned),
                    key: Some(e.key),
                    version_id: e.version_id,
                }
            })
            .collect();
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    pub(super) async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let caller = self.caller(&req).map(|(owner, _)| owner);
        let input = req.input;
        let (source_bucket, source_key, source_version) = copy_source(input.copy_source)?;
        let class = input
            .storage_class
            .as_ref()
            .map(|c| storage_class(c.as_str()))
            .transpose()?;
        let lock = input
            .object_lock_mode
            .as_ref()
            .map(|m| lock_mode(m.as_str()))
            .transpose()?;
        let directive = match input
            .metadata_directive
            .as_ref()
            .map(MetadataDirective::as_str)
        {
            None | Some(MetadataDirective::COPY) => Directive::Copy,
            Some(MetadataDirective::REPLACE) => Directive::Replace,
            Some(other) => {
                return Err(invalid_argument(format!(
                    "unknown metadata directive {other:?}"
                )));
            }
        };
        let (out, last_modified) = self
            .blocking(move |db| {
                check_source_readable(db, &source_bucket, caller.as_deref())?;
                let objects = db.objects();
                let mut copy = objects
                    .copy_object(input.bucket.as_str(), input.key.as_str())
                    .copy_source(&*source_bucket, &*source_key)
                    .metadata_directive(directive);
                if let Some(version_id) = source_version {
                    copy = copy.copy_source_version_id(&*version_id);
                }
                if let Some(value) = input.content_type {
                    copy = copy.content_type(value);
                }
                for (name, value) in input.metadata.unwrap_or_default() {
                    copy = copy.metadata(name, value);
                }
                if let Some(class) = class {
                    copy = copy.storage_class(class);
                }
                if let Some(tag) = &input.copy_source_if_match {
                    copy = copy.copy_source_if_match(condition(tag));
                }
                if let Some(tag) = &input.copy_source_if_none_match {
                    copy = copy.copy_source_if_none_match(condition(tag));
                }
                if let Some(time) = input.copy_source_if_modified_since {
                    copy = copy.copy_source_if_modified_since(system_time(time));
                }
                if let Some(time) = input.copy_source_if_unmodified_since {
                    copy = copy.copy_source_if_unmodified_since(system_time(time));
                }
                if let Some(mode) = lock {
                    copy = copy.object_lock_mode(mode);
                }
                if let Some(until) = input.object_lock_retain_until_date {
                    copy = copy.object_lock_retain_until_date(system_time(until));
                }
                if let Some(hold) = &input.object_lock_legal_hold_status {
                    copy =
                        copy.object_lock_legal_hold(hold.as_str() == ObjectLockLegalHoldStatus::ON);
                }
                let out = copy.send().map_err(to_s3)?;
                let mut head = objects.head_object(input.bucket.as_str(), input.key.as_str());
                if let Some(version_id) = &out.version_id {
                    head = head.version_id(version_id.as_str());
                }
                // The copy committed; a racing overwrite may hide its time.
                let last_modified = head
                    .send()
                    .map(|h| h.last_modified)
                    .unwrap_or_else(|_| SystemTime::now());
                Ok((out, last_modified))
            })
            .await?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(e_tag(out.e_tag)),
                last_modified: Some(timestamp(last_modified)),
                ..Default::default()
            }),
            version_id: out.version_id,
            copy_source_version_id: out.copy_source_version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let input = req.input;
        let (tags, version_id) = self
            .blocking(move |db| {
                db.objects()
                    .get_object_tagging(&input.bucket, &input.key, input.version_id.as_deref())
                    .map_err(to_s3)
            })
            .await?;
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tag_set(tags),
            version_id: Some(version_id),
        }))
    }

    pub(super) async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let input = req.input;
        let tags = tag_pairs(input.tagging.tag_set)?;
        let version_id = self
            .blocking(move |db| {
                db.objects()
                    .put_object_tagging(
                        &input.bucket,
                        &input.key,
                        input.version_id.as_deref(),
                        tags,
                    )
                    .map_err(to_s3)
            })
            .await?;
        Ok(S3Response::new(PutObjectTaggingOutput { version_id }))
    }

    pub(super) async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let input = req.input;
        let version_id = self
            .blocking(move |db| {
                db.objects()
                    .delete_object_tagging(&input.bucket, &input.key, input.version_id.as_deref())
                    .map_err(to_s3)
            })
            .await?;
        let mut response = S3Response::new(DeleteObjectTaggingOutput { version_id });
        response.status = Some(StatusCode::NO_CONTENT);
        Ok(response)
    }
}

/// `409 ConditionalRequestConflict` when a create-only PUT lost to a
/// creator that committed while this request was in flight (the object
/// did not exist when it arrived); `None` when the object was older —
/// then it is a plain 412.
fn racing_create(
    db: &crate::Database,
    bucket: &str,
    key: &str,
    started: SystemTime,
) -> Option<S3Error> {
    let current = db.objects().head_object(bucket, key).send().ok()?;
    (current.last_modified >= started).then(|| {
        let mut error = S3Error::with_message(
            S3ErrorCode::ConditionalRequestConflict,
            "A conflicting operation occurred. If using PutObject you can retry the request.",
        );
        error.set_status_code(StatusCode::CONFLICT);
        error
    })
}
