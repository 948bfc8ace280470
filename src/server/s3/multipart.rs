//! Multipart upload: create, upload part (streamed, checksums verified),
//! upload part copy (a byte range of another object), complete (ETag
//! `md5(part md5s)-N` on the endpoint's MD5 buckets), abort, list parts,
//! list uploads.

use hyper::StatusCode;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, s3_error};

use super::body::{BlockingBody, Declared};
use super::convert::{
    condition, count, e_tag, storage_class, system_time, tagging_header, timestamp,
};
use super::error::{invalid_argument, to_s3};
use super::objects::{check_source_readable, copy_source, lock_mode};
use super::service::NimbusS3;
use crate::objects::{ByteStream, CompletedPart as StorePart, Error as ObjectsError};

/// The most parts or uploads one listing page returns (S3's limit).
const LIST_PARTS_MAX: usize = 1000;

fn page_size(value: Option<i32>) -> S3Result<usize> {
    match value {
        None => Ok(LIST_PARTS_MAX),
        Some(n) => usize::try_from(n)
            .map(|n| n.min(LIST_PARTS_MAX))
            .map_err(|_| invalid_argument("a page size must not be negative")),
    }
}

fn part_number(value: i32) -> S3Result<u32> {
    u32::try_from(value).map_err(|_| {
        invalid_argument("Part number must be an integer between 1 and 10000, inclusive")
    })
}

impl NimbusS3 {
    pub(super) async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
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
        let out = self
            .blocking(move |db| {
                let objects = db.objects();
                let mut create =
                    objects.create_multipart_upload(input.bucket.as_str(), input.key.as_str());
                if let Some(value) = input.content_type {
                    create = create.content_type(value);
                }
                for (name, value) in input.metadata.unwrap_or_default() {
                    create = create.metadata(name, value);
                }
                for (name, value) in input
                    .tagging
                    .as_deref()
                    .map(tagging_header)
                    .unwrap_or_default()
                {
                    create = create.tagging(name, value);
                }
                if let Some(class) = class {
                    create = create.storage_class(class);
                }
                if let Some(mode) = lock {
                    create = create.object_lock_mode(mode);
                }
                if let Some(until) = input.object_lock_retain_until_date {
                    create = create.object_lock_retain_until_date(system_time(until));
                }
                if let Some(hold) = &input.object_lock_legal_hold_status {
                    create = create
                        .object_lock_legal_hold(hold.as_str() == ObjectLockLegalHoldStatus::ON);
                }
                create.send().map_err(to_s3)
            })
            .await?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(out.bucket),
            key: Some(out.key),
            upload_id: Some(out.upload_id),
            ..Default::default()
        }))
    }

    pub(super) async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
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
        let number = part_number(input.part_number)?;
        let (tag, computed) = self
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
                let sent = db
                    .objects()
                    .upload_part(input.bucket.as_str(), input.key.as_str())
                    .upload_id(input.upload_id)
                    .part_number(number)
                    .body(body)
                    .send();
                match sent {
                    Ok(out) => Ok((out.e_tag, computed.and_then(|c| c.lock().take()))),
                    Err(ObjectsError::Body(message)) => Err(failure
                        .and_then(|slot| slot.lock().take())
                        .unwrap_or_else(|| to_s3(ObjectsError::Body(message)))),
                    Err(error) => Err(to_s3(error)),
                }
            })
            .await?;
        let computed = computed.unwrap_or_default();
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(e_tag(tag)),
            checksum_crc32: computed.checksum_crc32,
            checksum_crc32c: computed.checksum_crc32c,
            checksum_sha1: computed.checksum_sha1,
            checksum_sha256: computed.checksum_sha256,
            checksum_crc64nvme: computed.checksum_crc64nvme,
            ..Default::default()
        }))
    }

    pub(super) async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let caller = self.caller(&req).map(|(owner, _)| owner);
        let input = req.input;
        let (source_bucket, source_key, source_version) = copy_source(input.copy_source)?;
        let number = part_number(input.part_number)?;
        let (tag, source_version_id) = self
            .blocking(move |db| {
                check_source_readable(db, &source_bucket, caller.as_deref())?;
                let objects = db.objects();
                let mut get = objects.get_object(&*source_bucket, &*source_key);
                if let Some(version_id) = &source_version {
                    get = get.version_id(&**version_id);
                }
                if let Some(range) = input.copy_source_range {
                    get = get.range(range);
                }
                // The copy-source conditions are the source GET's.
                if let Some(tag) = &input.copy_source_if_match {
                    get = get.if_match(condition(tag));
                }
                if let Some(tag) = &input.copy_source_if_none_match {
                    get = get.if_none_match(condition(tag));
                }
                if let Some(time) = input.copy_source_if_modified_since {
                    get = get.if_modified_since(system_time(time));
                }
                if let Some(time) = input.copy_source_if_unmodified_since {
                    get = get.if_unmodified_since(system_time(time));
                }
                let source = get.send().map_err(|error| match error {
                    // A failed copy-source condition is 412 whatever its kind.
                    ObjectsError::NotModified { .. } => {
                        s3_error!(PreconditionFailed, "copy source condition failed")
                    }
                    other => to_s3(other),
                })?;
                let version_id = source.version_id.clone();
                let out = objects
                    .upload_part(input.bucket.as_str(), input.key.as_str())
                    .upload_id(input.upload_id)
                    .part_number(number)
                    .body(ByteStream::from_reader(source.body))
                    .send()
                    .map_err(to_s3)?;
                Ok((out.e_tag, version_id))
            })
            .await?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(e_tag(tag)),
                last_modified: Some(timestamp(std::time::SystemTime::now())),
                ..Default::default()
            }),
            copy_source_version_id: source_version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let input = req.input;
        let mut parts = Vec::new();
        for part in input
            .multipart_upload
            .and_then(|m| m.parts)
            .unwrap_or_default()
        {
            let number = part
                .part_number
                .ok_or_else(|| invalid_argument("a part has no PartNumber"))?;
            let tag = part
                .e_tag
                .ok_or_else(|| invalid_argument("a part has no ETag"))?;
            parts.push(StorePart::new(part_number(number)?, tag.value().to_owned()));
        }
        if parts.is_empty() {
            return Err(s3_error!(
                MalformedXML,
                "You must specify at least one part"
            ));
        }
        let (bucket, key) = (input.bucket.clone(), input.key.clone());
        let if_match = input.if_match.as_ref().map(condition);
        let if_none_match = input.if_none_match.as_ref().map(condition);
        let out = self
            .blocking(move |db| {
                let mut complete = db
                    .objects()
                    .complete_multipart_upload(bucket.as_str(), key.as_str())
                    .upload_id(input.upload_id)
                    .parts(parts);
                if let Some(value) = if_match {
                    complete = complete.if_match(value);
                }
                if let Some(value) = if_none_match {
                    complete = complete.if_none_match(value);
                }
                complete.send().map_err(to_s3)
            })
            .await?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            bucket: Some(input.bucket),
            key: Some(input.key),
            e_tag: Some(e_tag(out.e_tag)),
            version_id: out.version_id,
            ..Default::default()
        }))
    }

    pub(super) async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let input = req.input;
        self.blocking(move |db| {
            db.objects()
                .abort_multipart_upload(input.bucket.as_str(), input.key.as_str())
                .upload_id(input.upload_id)
                .send()
                .map_err(to_s3)
        })
        .await?;
        let mut response = S3Response::new(AbortMultipartUploadOutput::default());
        response.status = Some(StatusCode::NO_CONTENT);
        Ok(response)
    }

    pub(super) async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let input = req.input;
        let limit = page_size(input.max_parts)?;
        let marker = input
            .part_number_marker
            .map(|m| count(m, "part-number-marker"))
            .transpose()?;
        let query = (
            input.bucket.clone(),
            input.key.clone(),
            input.upload_id.clone(),
        );
        let out = self
            .blocking(move |db| {
                let (bucket, key, upload_id) = query;
                let mut list = db
                    .objects()
                    .list_parts(bucket.as_str(), key.as_str())
                    .upload_id(upload_id)
                    .max_parts(limit);
                if let Some(marker) = marker {
                    list = list.part_number_marker(marker);
                }
                list.send().map_err(to_s3)
            })
            .await?;
        let parts = out
            .parts
            .into_iter()
            .map(|part| Part {
                part_number: i32::try_from(part.part_number).ok(),
                e_tag: Some(e_tag(part.e_tag)),
                size: i64::try_from(part.size).ok(),
                last_modified: Some(timestamp(part.last_modified)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListPartsOutput {
            bucket: Some(input.bucket),
            key: Some(input.key),
            upload_id: Some(input.upload_id),
            max_parts: i32::try_from(limit).ok(),
            part_number_marker: input.part_number_marker,
            is_truncated: Some(out.is_truncated),
            next_part_number_marker: out
                .next_part_number_marker
                .and_then(|m| i32::try_from(m).ok()),
            storage_class: Some(StorageClass::from(out.storage_class.as_str().to_owned())),
            parts: Some(parts),
            ..Default::default()
        }))
    }

    pub(super) async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let input = req.input;
        let limit = page_size(input.max_uploads)?;
        let query = (
            input.bucket.clone(),
            input.prefix.clone(),
            input.key_marker.clone(),
            input.upload_id_marker.clone(),
        );
        let out = self
            .blocking(move |db| {
                let (bucket, prefix, key_marker, upload_marker) = query;
                let mut list = db
                    .objects()
                    .list_multipart_uploads(bucket.as_str())
                    .max_uploads(limit);
                if let Some(prefix) = prefix {
                    list = list.prefix(prefix);
                }
                if let Some(marker) = key_marker.filter(|m| !m.is_empty()) {
                    list = list.key_marker(marker);
                }
                if let Some(marker) = upload_marker.filter(|m| !m.is_empty()) {
                    list = list.upload_id_marker(marker);
                }
                list.send().map_err(to_s3)
            })
            .await?;
        let uploads = out
            .uploads
            .into_iter()
            .map(|upload| MultipartUpload {
                key: Some(upload.key),
                upload_id: Some(upload.upload_id),
                initiated: Some(timestamp(upload.initiated)),
                storage_class: Some(StorageClass::from(upload.storage_class.as_str().to_owned())),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListMultipartUploadsOutput {
            bucket: Some(input.bucket),
            prefix: input.prefix,
            key_marker: input.key_marker,
            upload_id_marker: input.upload_id_marker,
            max_uploads: i32::try_from(limit).ok(),
            is_truncated: Some(out.is_truncated),
            next_key_marker: out.next_key_marker,
            next_upload_id_marker: out.next_upload_id_marker,
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
