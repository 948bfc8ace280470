//! Listing multipart uploads and their parts (`list_parts`,
//! `list_multipart_uploads`), paged by part number and by key and upload
//! id markers.

use std::time::SystemTime;

use super::Objects;
use super::error::{Error, Result};
use super::ingest::hex;
use super::keys;
use super::limits::LIST_PAGE_MAX;
use super::multipart::parse_upload_id;
use super::record::UploadRecord;
use super::store::{StoreInner, system_time};
use super::types::StorageClass;
use crate::storage::Direction;

/// One part of a `list_parts` page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Part {
    /// The part number.
    pub part_number: u32,
    /// Its ETag.
    pub e_tag: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was uploaded.
    pub last_modified: SystemTime,
}

/// `list_parts` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListParts<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    max_parts: Option<usize>,
    part_number_marker: Option<u32>,
}

/// `list_parts` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListPartsOutput {
    /// The parts of this page, by number.
    pub parts: Vec<Part>,
    /// Whether more follow.
    pub is_truncated: bool,
    /// Pass to `part_number_marker` for the next page.
    pub next_part_number_marker: Option<u32>,
    /// The upload's storage class.
    pub storage_class: StorageClass,
}

impl ListParts<'_> {
    /// The upload (required).
    pub fn upload_id(mut self, upload_id: impl Into<String>) -> Self {
        self.upload_id = Some(upload_id.into());
        self
    }

    /// At most this many parts (at most 1000, the default).
    pub fn max_parts(mut self, max: usize) -> Self {
        self.max_parts = Some(max);
        self
    }

    /// Only parts numbered above `marker`.
    pub fn part_number_marker(mut self, marker: u32) -> Self {
        self.part_number_marker = Some(marker);
        self
    }

    /// Lists one page.
    pub fn send(self) -> Result<ListPartsOutput> {
        let upload_id = self
            .upload_id
            .ok_or_else(|| Error::InvalidArgument("list_parts needs an upload id".into()))?;
        let store = self.store;
        let bucket = store.bucket(&self.bucket)?;
        let (id, upload) = store.upload(&bucket, &self.key, &upload_id)?;
        let limit = self.max_parts.unwrap_or(LIST_PAGE_MAX).min(LIST_PAGE_MAX);
        let marker = self.part_number_marker.unwrap_or(0);
        let mut page = ListPartsOutput {
            parts: Vec::new(),
            is_truncated: false,
            next_part_number_marker: None,
            storage_class: upload.attributes.storage_class,
        };
        for (number, part) in store.parts(&id)? {
            if number <= marker {
                continue;
            }
            if page.parts.len() == limit {
                page.is_truncated = true;
                page.next_part_number_marker = page.parts.last().map(|p| p.part_number);
                break;
            }
            page.parts.push(Part {
                part_number: number,
                e_tag: part.e_tag.clone(),
                size: part.size(),
                last_modified: system_time(part.last_modified_nanos),
            });
        }
        Ok(page)
    }
}

/// One upload of a `list_multipart_uploads` page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MultipartUpload {
    /// The key.
    pub key: String,
    /// The upload id.
    pub upload_id: String,
    /// When it was created.
    pub initiated: SystemTime,
    /// Its storage class.
    pub storage_class: StorageClass,
}

/// `list_multipart_uploads` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListMultipartUploads<'a> {
    store: &'a StoreInner,
    bucket: String,
    prefix: String,
    max_uploads: Option<usize>,
    key_marker: Option<String>,
    upload_id_marker: Option<String>,
}

/// `list_multipart_uploads` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListMultipartUploadsOutput {
    /// Uploads by key, then initiation time.
    pub uploads: Vec<MultipartUpload>,
    /// Whether more follow.
    pub is_truncated: bool,
    /// Pass to `key_marker` for the next page.
    pub next_key_marker: Option<String>,
    /// Pass to `upload_id_marker` for the next page.
    pub next_upload_id_marker: Option<String>,
}

impl ListMultipartUploads<'_> {
    /// Only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// At most this many uploads (at most 1000, the default).
    pub fn max_uploads(mut self, max: usize) -> Self {
        self.max_uploads = Some(max);
        self
    }

    /// Starts after this key (or after this key's `upload_id_marker`).
    pub fn key_marker(mut self, key: impl Into<String>) -> Self {
        self.key_marker = Some(key.into());
        self
    }

    /// Starts after this upload of `key_marker`.
    pub fn upload_id_marker(mut self, upload_id: impl Into<String>) -> Self {
        self.upload_id_marker = Some(upload_id.into());
        self
    }

    /// Lists one page.
    pub fn send(self) -> Result<ListMultipartUploadsOutput> {
        let store = self.store;
        let bucket = store.bucket(&self.bucket)?;
        let mut prefix_key = keys::uploads_of_bucket(bucket.id);
        keys::push_escaped_unterminated(&mut prefix_key, self.prefix.as_bytes());
        let end = keys::prefix_successor(&prefix_key);
        let mut start = prefix_key;
        if let Some(marker) = &self.key_marker {
            let resume = match &self.upload_id_marker {
                Some(upload) => {
                    let id = parse_upload_id(upload)?;
                    keys::prefix_successor(&keys::upload(bucket.id, marker, &id))
                }
                None => keys::prefix_successor(&keys::uploads_of_key(bucket.id, marker)),
            };
            match resume {
                Some(resume) => start = start.max(resume),
                None => {
                    return Ok(ListMultipartUploadsOutput {
                        uploads: Vec::new(),
                        is_truncated: false,
                        next_key_marker: None,
                        next_upload_id_marker: None,
                    });
                }
            }
        }
        use std::ops::Bound;
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        let limit = self.max_uploads.unwrap_or(LIST_PAGE_MAX).min(LIST_PAGE_MAX);
        let mut page = ListMultipartUploadsOutput {
            uploads: Vec::new(),
            is_truncated: false,
            next_key_marker: None,
            next_upload_id_marker: None,
        };
        for row in store
            .engine
            .range((Bound::Included(start), upper), Direction::Forward, None)?
        {
            let (key, value) = row?;
            if page.uploads.len() == limit {
                page.is_truncated = true;
                let last = page.uploads.last();
                page.next_key_marker = last.map(|u| u.key.clone());
                page.next_upload_id_marker = last.map(|u| u.upload_id.clone());
                break;
            }
            let (object_key, id) = keys::parse_upload(&key)?;
            let record = UploadRecord::decode(&value)?;
            page.uploads.push(MultipartUpload {
                key: object_key,
                upload_id: hex(&id),
                initiated: system_time(record.initiated_nanos),
                storage_class: record.attributes.storage_class,
            });
        }
        Ok(page)
    }
}

impl<'a> Objects<'a> {
    /// Lists the parts of an upload.
    pub fn list_parts(&self, bucket: impl Into<String>, key: impl Into<String>) -> ListParts<'a> {
        ListParts {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            upload_id: None,
            max_parts: None,
            part_number_marker: None,
        }
    }

    /// Lists the unfinished uploads of a bucket.
    pub fn list_multipart_uploads(&self, bucket: impl Into<String>) -> ListMultipartUploads<'a> {
        ListMultipartUploads {
            store: self.store,
            bucket: bucket.into(),
            prefix: String::new(),
            max_uploads: None,
            key_marker: None,
            upload_id_marker: None,
        }
    }
}
