//! `delete_object` and `delete_objects`, exactly as S3 versioning defines
//! them:
//! - with a version id: that version is removed for good, in any state
//!   (removing the current delete marker "undeletes" the object), unless
//!   object lock protects it;
//! - without one: unversioned buckets remove the null version; enabled
//!   buckets add a delete marker; suspended buckets remove the null
//!   version and add a delete marker whose id is `null`.
//!
//! Deleting what does not exist succeeds (S3 answers 204).

use super::Objects;
use super::error::{Error, Result};
use super::events::{EventType, PendingEvent};
use super::limits::DELETE_OBJECTS_MAX;
use super::lock::check_removal;
use super::names::validate_key;
use super::put::e_tag_matches;
use super::record::{BucketRecord, VersionKind};
use super::store::StoreInner;
use super::types::Versioning;
use super::versions::{KeyChange, parse_version_id};

/// `delete_object` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteObject<'a> {
    store: &'a StoreInner,
    bucket: String,
    key: String,
    options: DeleteOptions,
}

#[derive(Debug, Clone, Default)]
struct DeleteOptions {
    version_id: Option<String>,
    bypass_governance: bool,
    if_match: Option<String>,
}

/// `delete_object` response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct DeleteObjectOutput {
    /// Whether a delete marker was created or removed.
    pub delete_marker: bool,
    /// The version created (a marker) or removed.
    pub version_id: Option<String>,
}

impl DeleteObject<'_> {
    /// Removes this version for good instead of adding a delete marker.
    pub fn version_id(mut self, version_id: impl Into<String>) -> Self {
        self.options.version_id = Some(version_id.into());
        self
    }

    /// Allows removing a version under governance retention.
    pub fn bypass_governance_retention(mut self, bypass: bool) -> Self {
        self.options.bypass_governance = bypass;
        self
    }

    /// Succeed only if the current object (or the named version) has this
    /// ETag (S3 conditional delete).
    pub fn if_match(mut self, e_tag: impl Into<String>) -> Self {
        self.options.if_match = Some(e_tag.into());
        self
    }

    /// Deletes.
    pub fn send(self) -> Result<DeleteObjectOutput> {
        validate_key(&self.key)?;
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        store.delete_one(&bucket, &self.bucket, &self.key, &self.options)
    }
}

impl StoreInner {
    fn delete_one(
        &self,
        bucket: &BucketRecord,
        bucket_name: &str,
        key: &str,
        options: &DeleteOptions,
    ) -> Result<DeleteObjectOutput> {
        let version_arg = options
            .version_id
            .as_deref()
            .map(parse_version_id)
            .transpose()?;
        let _key_lock = self.lock_key(bucket.id, key);
        let mut change = KeyChange::load(self, bucket, bucket_name, key)?;
        let (removed_type, marker_type) = (
            EventType::ObjectRemovedDelete,
            EventType::ObjectRemovedDeleteMarkerCreated,
        );
        if let Some(version_arg) = version_arg {
            let Some(version) = change.find(version_arg)? else {
                return Ok(DeleteObjectOutput {
                    delete_marker: false,
                    version_id: options.version_id.clone(),
                });
            };
            if let Some(object) = version.record.object() {
                if let Some(expected) = &options.if_match
                    && !e_tag_matches(expected, &object.e_tag)
                {
                    return Err(Error::precondition("if_match: the version's ETag differs"));
                }
                check_removal(object, change.now_nanos, options.bypass_governance)?;
            }
            change.remove(&version);
            let version_id = version.version_id();
            change.event(PendingEvent {
                event_type: removed_type,
                key: key.to_owned(),
                version_id: Some(version_id.clone()),
                size: None,
                e_tag: None,
            });
            change.commit()?;
            return Ok(DeleteObjectOutput {
                delete_marker: version.record.is_delete_marker(),
                version_id: Some(version_id),
            });
        }
        if let Some(expected) = &options.if_match {
            let current = change.current()?;
            let current_tag = current
                .as_ref()
                .and_then(|v| v.record.object())
                .map(|o| o.e_tag.clone());
            match current_tag {
                None => return Err(Error::no_such_key(key)),
                Some(tag) if !e_tag_matches(expected, &tag) => {
                    return Err(Error::precondition("if_match: the current ETag differs"));
                }
                Some(_) => {}
            }
        }
        match bucket.versioning {
            Versioning::Unversioned => {
                let Some(null) = change.null_version()? else {
                    return Ok(DeleteObjectOutput::default());
                };
                change.remove(&null);
                change.event(PendingEvent {
                    event_type: removed_type,
                    key: key.to_owned(),
                    version_id: None,
                    size: None,
                    e_tag: None,
                });
                change.commit()?;
                Ok(DeleteObjectOutput::default())
            }
            Versioning::Enabled | Versioning::Suspended => {
                let id = if bucket.versioning == Versioning::Enabled {
                    Some(self.new_id8())
                } else {
                    if let Some(null) = change.null_version()? {
                        if let Some(object) = null.record.object() {
                            check_removal(object, change.now_nanos, options.bypass_governance)?;
                        }
                        change.remove(&null);
                    }
                    None
                };
                let marker = change.add(id, VersionKind::DeleteMarker);
                let version_id = marker.version_id();
                change.event(PendingEvent {
                    event_type: marker_type,
                    key: key.to_owned(),
                    version_id: Some(version_id.clone()),
                    size: None,
                    e_tag: None,
                });
                change.commit()?;
                Ok(DeleteObjectOutput {
                    delete_marker: true,
                    version_id: Some(version_id),
                })
            }
        }
    }
}

/// One key of a `delete_objects` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectIdentifier {
    /// The key.
    pub key: String,
    /// The version to remove for good (none: the usual delete).
    pub version_id: Option<String>,
}

impl ObjectIdentifier {
    /// A key without version id.
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version_id: None,
        }
    }

    /// A key and version id.
    pub fn with_version(key: impl Into<String>, version_id: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            version_id: Some(version_id.into()),
        }
    }
}

/// `delete_objects` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteObjects<'a> {
    store: &'a StoreInner,
    bucket: String,
    objects: Vec<ObjectIdentifier>,
    quiet: bool,
    bypass_governance: bool,
}

/// A key `delete_objects` deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeletedObject {
    /// The key.
    pub key: String,
    /// The version id the request named.
    pub version_id: Option<String>,
    /// Whether a delete marker was created or removed.
    pub delete_marker: bool,
    /// The id of the delete marker created or removed.
    pub delete_marker_version_id: Option<String>,
}

/// A key `delete_objects` could not delete.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeleteError {
    /// The key.
    pub key: String,
    /// The version id the request named.
    pub version_id: Option<String>,
    /// Why.
    pub error: Error,
}

/// `delete_objects` response.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DeleteObjectsOutput {
    /// The keys deleted (empty in quiet mode).
    pub deleted: Vec<DeletedObject>,
    /// The keys that failed.
    pub errors: Vec<DeleteError>,
}

impl DeleteObjects<'_> {
    /// Adds a key to delete.
    pub fn object(mut self, object: ObjectIdentifier) -> Self {
        self.objects.push(object);
        self
    }

    /// Adds keys to delete.
    pub fn objects(mut self, objects: impl IntoIterator<Item = ObjectIdentifier>) -> Self {
        self.objects.extend(objects);
        self
    }

    /// Reports only the failures.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Allows removing versions under governance retention.
    pub fn bypass_governance_retention(mut self, bypass: bool) -> Self {
        self.bypass_governance = bypass;
        self
    }

    /// Deletes each key as `delete_object` would; each key's deletion is
    /// atomic, the request as a whole is not (as in S3).
    pub fn send(self) -> Result<DeleteObjectsOutput> {
        if self.objects.is_empty() || self.objects.len() > DELETE_OBJECTS_MAX {
            return Err(Error::InvalidArgument(format!(
                "delete_objects takes 1 to {DELETE_OBJECTS_MAX} keys, not {}",
                self.objects.len()
            )));
        }
        let store = self.store;
        let _gate = store.gate.read();
        let bucket = store.bucket(&self.bucket)?;
        let mut output = DeleteObjectsOutput::default();
        for object in self.objects {
            let options = DeleteOptions {
                version_id: object.version_id.clone(),
                bypass_governance: self.bypass_governance,
                if_match: None,
            };
            let result = validate_key(&object.key)
                .and_then(|()| store.delete_one(&bucket, &self.bucket, &object.key, &options));
            match result {
                Ok(deleted) => {
                    if !self.quiet {
                        let marker_id = deleted
                            .delete_marker
                            .then(|| deleted.version_id.clone())
                            .flatten();
                        output.deleted.push(DeletedObject {
                            key: object.key,
                            version_id: object.version_id,
                            delete_marker: deleted.delete_marker,
                            delete_marker_version_id: marker_id,
                        });
                    }
                }
                Err(Error::Storage(error)) => return Err(Error::Storage(error)),
                Err(error) => output.errors.push(DeleteError {
                    key: object.key,
                    version_id: object.version_id,
                    error,
                }),
            }
        }
        Ok(output)
    }
}

impl<'a> Objects<'a> {
    /// Deletes an object (a delete marker in a versioned bucket) or, with
    /// `version_id`, one version for good.
    pub fn delete_object(
        &self,
        bucket: impl Into<String>,
        key: impl Into<String>,
    ) -> DeleteObject<'a> {
        DeleteObject {
            store: self.store,
            bucket: bucket.into(),
            key: key.into(),
            options: DeleteOptions::default(),
        }
    }

    /// Deletes up to 1000 keys.
    pub fn delete_objects(&self, bucket: impl Into<String>) -> DeleteObjects<'a> {
        DeleteObjects {
            store: self.store,
            bucket: bucket.into(),
            objects: Vec::new(),
            quiet: false,
            bypass_governance: false,
        }
    }
}
