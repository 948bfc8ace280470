//! `put_object`: ingest the body (chunks to packs, synced), then under the
//! key's lock check the conditions and commit the new version, the chunk
//! references and the replaced null version's release in one batch.

use super::Objects;
use super::error::{Error, Result};
use super::events::{EventType, PendingEvent};
use super::ingest::{ByteStream, IngestPlan, Ingested};
use super::limits::PUT_OBJECT_BYTES_MAX;
use super::lock::{LockRequest, resolve_new_lock};
use super::names::{normalize_metadata, validate_key, validate_tags};
use super::record::{BucketRecord, ObjectAttributes, ObjectRecord, VersionKind};
use super::store::StoreInner;
use super::types::{StorageClass, Versioning};
use super::versions::{KeyChange, StoredVersion};

/// The conditions of a write (`If-Match` / `If-None-Match: *`).
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteConditions {
    pub(crate) if_match: Option<String>,
    pub(crate) if_none_match: Option<String>,
}

impl WriteConditions {
    pub(crate) fn is_some(&self) -> bool {
        self.if_match.is_some() || self.if_none_match.is_some()
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.if_none_match.as_deref() {
            None | Some("*") => Ok(()),
            Some(other) => Err(Error::InvalidRequest(format!(
                "if_none_match on a write accepts only \"*\", not {other:?}"
            ))),
        }
    }

    /// Checks the conditions against the key's current version. A delete
    /// marker counts as no current version.
    pub(crate) fn check(&self, key: &str, current: Option<&StoredVersion>) -> Result<()> {
        let current_object = current.and_then(|version| version.record.object());
        if self.if_none_match.is_some() && current_object.is_some() {
            return Err(Error::precondition("if_none_match: the key already exists"));
        }
        if let Some(expected) = &self.if_match {
            let Some(object) = current_object else {
                return Err(Error::no_such_key(key));
            };
            if !e_tag_matches(expected, &object.e_tag) {
                return Err(Error::precondition(format!(
                    "if_match: the current ETag is {:?}",
                    object.e_tag
                )));
            }
        }
        Ok(())
    }
}

/// Whether an ETag condition (quoted or not, or `*`) names `e_tag`.
pub(crate) fn e_tag_matches(condition: &str, e_tag: &str) -> bool {
    condition
        .split(',')
        .map(|one| one.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|one| one == "*" || one == e_tag)
}

/// `put_object` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutObject<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    body: ByteStream,
    attributes: ObjectAttributes,
    metadata: Vec<(String, String)>,
    conditions: WriteConditions,
    lock: LockRequest,
}

/// `put_object` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutObjectOutput {
    /// The new version's ETag.
    pub e_tag: String,
    /// The new version's id (`"null"` in a suspended bucket; `None` in an
    /// unversioned one).
    pub version_id: Option<String>,
    /// The body's size in bytes.
    pub size: u64,
}

impl PutObject<'_> {
    /// The body (bytes, a `Vec`, a string, or [`ByteStream::from_reader`]).
    pub fn body(mut self, body: impl Into<ByteStream>) -> Self {
        self.body = body.into();
        self
    }

    /// The `Content-Type`.
    pub fn content_type(mut self, value: impl Into<String>) -> Self {
        self.attributes.content_type = Some(value.into());
        self
    }

    /// The `Content-Encoding`.
    pub fn content_encoding(mut self, value: impl Into<String>) -> Self {
        self.attributes.content_encoding = Some(value.into());
        self
    }

    /// The `Content-Disposition`.
    pub fn content_disposition(mut self, value: impl Into<String>) -> Self {
        self.attributes.content_disposition = Some(value.into());
        self
    }

    /// The `Cache-Control`.
    pub fn cache_control(mut self, value: impl Into<String>) -> Self {
        self.attributes.cache_control = Some(value.into());
        self
    }

    /// Adds a user metadata entry (`x-amz-meta-<name>`; names are
    /// case-insensitive; at most 2 KB in total).
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((name.into(), value.into()));
        self
    }

    /// Adds a tag (at most 10; lifecycle rules can filter on them).
    pub fn tagging(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.tags.push((key.into(), value.into()));
        self
    }

    /// The storage class (default STANDARD).
    pub fn storage_class(mut self, class: StorageClass) -> Self {
        self.attributes.storage_class = class;
        self
    }

    /// Succeed only if the key's current version has this ETag
    /// (compare-and-swap); `NoSuchKey` if there is none.
    pub fn if_match(mut self, e_tag: impl Into<String>) -> Self {
        self.conditions.if_match = Some(e_tag.into());
        self
    }

    /// `"*"`: succeed only if the key has no current object (create-only;
    /// a delete marker counts as none).
    pub fn if_none_match(mut self, value: impl Into<String>) -> Self {
        self.conditions.if_none_match = Some(value.into());
        self
    }

    super::lock::lock_setters!();

    /// Stores the object.
    pub fn send(self) -> Result<PutObjectOutput> {
        validate_key(&self.key)?;
        validate_tags(&self.attributes.tags)?;
        self.conditions.validate()?;
        let tier = self.attributes.storage_class.tier()?;
        let mut attributes = self.attributes;
        attributes.metadata = normalize_metadata(self.metadata)?;
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let now = store.now_nanos();
        (attributes.retention, attributes.legal_hold) = resolve_new_lock(&bucket, &self.lock, now)?;
        let current = store.current_version(bucket.id, &self.key)?;
        // Fail fast before a large body is ingested; checked again at commit.
        self.conditions.check(&self.key, current.as_ref())?;
        // Changed chunks are stored as differences from the current body
        // (a racing writer can only make that less effective, not wrong).
        let base = match current.as_ref().map(|version| &version.record.kind) {
            Some(VersionKind::Object(object)) => object.body.chunk_list(),
            _ => None,
        };
        let ingested = store.ingest(
            self.body,
            IngestPlan {
                tier,
                allow_inline: true,
                want_md5: bucket.md5_etags,
                max_bytes: PUT_OBJECT_BYTES_MAX,
                base,
            },
        )?;
        store.sync_ingested(&ingested)?;
        let e_tag = ingested.e_tag(bucket.md5_etags);
        let size = ingested.size();
        let object = ObjectRecord {
            size,
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
            object,
            &self.conditions,
            &ingested,
            EventType::ObjectCreatedPut,
        )?;
        Ok(PutObjectOutput {
            e_tag,
            version_id,
            size,
        })
    }
}

impl StoreInner {
    /// Commits `object` as the key's new current version: checks the
    /// conditions under the key's lock, replaces the null version unless
    /// versioning is enabled, and records the ingest's new chunks.
    /// Returns the version id S3 would report.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn commit_object(
        &self,
        bucket: &BucketRecord,
        bucket_name: &str,
        key: &str,
        object: ObjectRecord,
        conditions: &WriteConditions,
        ingested: &Ingested,
        event_type: EventType,
    ) -> Result<Option<String>> {
        let _key_lock = self.lock_key(bucket.id, key);
        let mut change = KeyChange::load(self, bucket, bucket_name, key)?;
        if conditions.is_some() {
            conditions.check(key, change.current()?.as_ref())?;
        }
        if let Some(list) = object.body.chunk_list() {
            self.add_locations(&mut change.batch, list.tier, &ingested.new_locations);
        }
        let version_id = self.install_version(&mut change, bucket, key, object, event_type)?;
        change.commit()?;
        Ok(version_id)
    }

    /// Adds `object` as the new current version to `change`: a new id when
    /// versioning is enabled, otherwise the null version (replacing the
    /// old one). Returns the version id S3 would report.
    pub(crate) fn install_version(
        &self,
        change: &mut KeyChange<'_>,
        bucket: &BucketRecord,
        key: &str,
        object: ObjectRecord,
        event_type: EventType,
    ) -> Result<Option<String>> {
        let (size, e_tag) = (object.size, object.e_tag.clone());
        let id = match bucket.versioning {
            Versioning::Enabled => Some(self.new_id8()),
            Versioning::Unversioned | Versioning::Suspended => {
                if let Some(null) = change.null_version()? {
                    change.remove(&null);
                }
                None
            }
        };
        let version = change.add(id, VersionKind::Object(Box::new(object)));
        let version_id = version.version_id();
        change.event(PendingEvent {
            event_type,
            key: key.to_owned(),
            version_id: Some(version_id.clone()),
            size: Some(size),
            e_tag: Some(e_tag),
        });
        Ok(match bucket.versioning {
            Versioning::Unversioned => None,
            _ => Some(version_id),
        })
    }
}

impl<'a> Objects<'a> {
    /// Stores an object (a new version in a versioned bucket).
    pub fn put_object(&self, bucket: impl Into<String>, key: impl Into<String>) -> PutObject<'a> {
        PutObject {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            body: ByteStream::empty(),
            attributes: ObjectAttributes::default(),
            metadata: Vec::new(),
            conditions: WriteConditions::default(),
            lock: LockRequest::default(),
        }
    }
}
