//! `copy_object`: a new version whose manifest references the source's
//! chunks (metadata only, no body copy) unless the storage class moves
//! the chunks to another tier, which copies them chunk by chunk.

use std::time::SystemTime;

use md5::{Digest, Md5};

use super::Objects;
use super::error::{Error, Result};
use super::events::EventType;
use super::get::ObjectBody;
use super::ingest::hex;
use super::lock::{LockRequest, resolve_new_lock};
use super::names::{normalize_metadata, validate_key, validate_tags};
use super::put::{WriteConditions, e_tag_matches};
use super::record::{Body, ObjectAttributes, ObjectRecord};
use super::store::{StoreInner, system_time};
use super::types::{MetadataDirective, StorageClass};
use super::versions::{StoredVersion, parse_version_id};

/// Whether an ETag is a plain MD5 (32 hex digits, no part count).
fn is_plain_md5(e_tag: &str) -> bool {
    e_tag.len() == 32 && e_tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `e_tag` is a BLAKE3 content hash (a bucket without MD5 ETags).
fn is_content_hash(e_tag: &str) -> bool {
    e_tag.len() == 64 && e_tag.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `copy_object` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CopyObject<'a> {
    store: &'a std::sync::Arc<StoreInner>,
    bucket: String,
    key: String,
    source: Option<(String, String)>,
    source_version_id: Option<String>,
    directive: MetadataDirective,
    attributes: ObjectAttributes,
    metadata: Vec<(String, String)>,
    storage_class: Option<StorageClass>,
    conditions: WriteConditions,
    source_if_match: Option<String>,
    source_if_none_match: Option<String>,
    source_if_modified_since: Option<SystemTime>,
    source_if_unmodified_since: Option<SystemTime>,
    lock: LockRequest,
}

/// `copy_object` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyObjectOutput {
    /// The new version's ETag.
    pub e_tag: String,
    /// The new version's id.
    pub version_id: Option<String>,
    /// The source version copied.
    pub copy_source_version_id: Option<String>,
}

impl CopyObject<'_> {
    /// The source bucket and key (required).
    pub fn copy_source(mut self, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        self.source = Some((bucket.into(), key.into()));
        self
    }

    /// Copies this version of the source instead of the current one.
    pub fn copy_source_version_id(mut self, version_id: impl Into<String>) -> Self {
        self.source_version_id = Some(version_id.into());
        self
    }

    /// Whether metadata comes from the source (default) or this request.
    pub fn metadata_directive(mut self, directive: MetadataDirective) -> Self {
        self.directive = directive;
        self
    }

    /// The `Content-Type` (with [`MetadataDirective::Replace`]).
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        self.attributes.content_type = Some(value.into());
        self
    }

    /// Adds a user metadata entry (with [`MetadataDirective::Replace`]).
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }

    /// The copy's storage class (default STANDARD, as in S3).
    pub fn storage_class(mut self, class: StorageClass) -> Self {
        self.storage_class = Some(class);
        self
    }

    /// Copy only if the destination's current object has this ETag.
    pub fn if_match(mut self, e_tag: impl Into<String>) -> Self {
        self.conditions.if_match = Some(e_tag.into());
        self
    }

    /// `"*"`: copy only if the destination key has no current object.
    pub fn if_none_match(mut self, value: impl Into<String>) -> Self {
        self.conditions.if_none_match = Some(value.into());
        self
    }

    /// Copy only if the source has this ETag.
    pub fn copy_source_if_match(mut self, e_tag: impl Into<String>) -> Self {
        self.source_if_match = Some(e_tag.into());
        self
    }

    /// Copy only if the source does not have this ETag.
    pub fn copy_source_if_none_match(mut self, e_tag: impl Into<String>) -> Self {
        self.source_if_none_match = Some(e_tag.into());
        self
    }

    /// Copy only if the source changed after `time`.
    pub fn copy_source_if_modified_since(mut self, time: SystemTime) -> Self {
        self.source_if_modified_since = Some(time);
        self
    }

    /// Copy only if the source did not change after `time`.
    pub fn copy_source_if_unmodified_since(mut self, time: SystemTime) -> Self {
        self.source_if_unmodified_since = Some(time);
        self
    }

    super::lock::lock_setters!();

    fn check_source(&self, source: &ObjectRecord, last_modified: SystemTime) -> Result<()> {
        let seconds = |time: SystemTime| {
            time.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs())
        };
        let failed = |what: &str| Err(Error::precondition(format!("copy source {what}")));
        if let Some(tag) = &self.source_if_match
            && !e_tag_matches(tag, &source.e_tag)
        {
            return failed("if_match");
        }
        if let Some(tag) = &self.source_if_none_match
            && e_tag_matches(tag, &source.e_tag)
        {
            return failed("if_none_match");
        }
        if let Some(since) = self.source_if_modified_since
            && seconds(last_modified) <= seconds(since)
        {
            return failed("if_modified_since");
        }
        if let Some(since) = self.source_if_unmodified_since
            && seconds(last_modified) > seconds(since)
        {
            return failed("if_unmodified_since");
        }
        Ok(())
    }

    /// Copies.
    pub fn send(self) -> Result<CopyObjectOutput> {
        validate_key(&self.key)?;
        self.conditions.validate()?;
        let (source_bucket, source_key) = self
            .source
            .clone()
            .ok_or_else(|| Error::InvalidArgument("copy_object needs a copy source".into()))?;
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let source_bucket_record = store.bucket(&source_bucket)?;
        let source = resolve_source(
            store,
            source_bucket_record.id,
            &source_key,
            self.source_version_id.as_deref(),
        )?;
        let Some(object) = source.record.object() else {
            return Err(Error::no_such_key(&source_key));
        };
        self.check_source(object, system_time(source.record.last_modified_nanos))?;
        if object.attributes.storage_class.is_archive()
            && object
                .restored_until
                .is_none_or(|until| until <= store.now_nanos())
        {
            return Err(Error::InvalidObjectState {
                storage_class: object.attributes.storage_class.to_string(),
            });
        }
        let class = self.storage_class.unwrap_or_default();
        let unchanged = self.directive == MetadataDirective::Copy
            && self
                .storage_class
                .is_none_or(|class| class == object.attributes.storage_class);
        if bucket.id == source_bucket_record.id && self.key == source_key && unchanged {
            return Err(Error::InvalidRequest(
                "copying an object onto itself needs a metadata or storage class change".into(),
            ));
        }
        let mut attributes = match self.directive {
            MetadataDirective::Copy => ObjectAttributes {
                tags: object.attributes.tags.clone(),
                ..object.attributes.clone()
            },
            MetadataDirective::Replace => {
                validate_tags(&self.attributes.tags)?;
                let mut attributes = self.attributes.clone();
                attributes.metadata = normalize_metadata(self.metadata.clone())?;
                attributes
            }
        };
        attributes.storage_class = class;
        let now = store.now_nanos();
        (attributes.retention, attributes.legal_hold) = resolve_new_lock(&bucket, &self.lock, now)?;
        let tier = class.tier()?;
        let ingested = match &object.body {
            Body::Chunked(list) if list.tier != tier => store.retier(list, tier)?,
            body => store.share(body),
        };
        store.sync_ingested(&ingested)?;
        let e_tag = if !bucket.md5_etags {
            if is_content_hash(&object.e_tag) {
                // The source's content hash: it hashes the chunks as they
                // were cut, which a body stored as pieces no longer lists.
                object.e_tag.clone()
            } else {
                hex(&ingested.content_hash)
            }
        } else if is_plain_md5(&object.e_tag) {
            object.e_tag.clone()
        } else {
            md5_of(store, &object.body)?
        };
        let copy = ObjectRecord {
            size: object.size,
            e_tag: e_tag.clone(),
            attributes,
            restored_until: None,
            part_sizes: Vec::new(),
            body: ingested.body.clone(),
        };
        let version_id = store.commit_object(
            &bucket,
            &self.bucket,
            &self.key,
            copy,
            &self.conditions,
            &ingested,
            EventType::ObjectCreatedCopy,
        )?;
        let source_versioned = source_bucket_record.versioning
            != super::types::Versioning::Unversioned
            || source.record.id.is_some();
        Ok(CopyObjectOutput {
            e_tag,
            version_id,
            copy_source_version_id: source_versioned.then(|| source.version_id()),
        })
    }
}

fn resolve_source(
    store: &StoreInner,
    bucket_id: u64,
    key: &str,
    version_id: Option<&str>,
) -> Result<StoredVersion> {
    let version = match version_id {
        Some(id) => store
            .find_version(bucket_id, key, parse_version_id(id)?)?
            .ok_or_else(|| Error::NoSuchVersion {
                key: key.to_owned(),
                version_id: id.to_owned(),
            })?,
        None => store
            .current_version(bucket_id, key)?
            .ok_or_else(|| Error::no_such_key(key))?,
    };
    if version.record.is_delete_marker() {
        return match version_id {
            Some(_) => Err(Error::MethodNotAllowed {
                version_id: version.version_id(),
                last_modified: system_time(version.record.last_modified_nanos),
            }),
            None => Err(Error::NoSuchKey {
                key: key.to_owned(),
                delete_marker: true,
                version_id: Some(version.version_id()),
            }),
        };
    }
    Ok(version)
}

/// The MD5 of a stored body (read and hash-checked chunk by chunk).
fn md5_of(store: &std::sync::Arc<StoreInner>, body: &Body) -> Result<String> {
    let mut md5 = Md5::new();
    let mut reader = ObjectBody::new(std::sync::Arc::clone(store), body, (0, body.len()));
    while let Some(piece) = reader.next_bytes() {
        md5.update(&piece?);
    }
    Ok(hex(&md5.finalize()))
}

impl<'a> Objects<'a> {
    /// Copies an object (set the source with `copy_source`).
    pub fn copy_object(&self, bucket: impl Into<String>, key: impl Into<String>) -> CopyObject<'a> {
        CopyObject {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            source: None,
            source_version_id: None,
            directive: MetadataDirective::Copy,
            attributes: ObjectAttributes::default(),
            metadata: Vec::new(),
            storage_class: None,
            conditions: WriteConditions::default(),
            source_if_match: None,
            source_if_none_match: None,
            source_if_modified_since: None,
            source_if_unmodified_since: None,
            lock: LockRequest::default(),
        }
    }
}
