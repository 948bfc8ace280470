//! Bucket operations: create, delete (only when empty), list, head,
//! versioning state, object lock configuration.

use std::time::SystemTime;

use super::Objects;
use super::bucket_attributes::check_attribute;
use super::error::{Error, Result};
use super::keys;
use super::limits::RETENTION_YEARS_MAX;
use super::names::validate_bucket_name;
use super::record::{BucketRecord, PartRecord, UploadRecord};
use super::store::{StoreInner, system_time};
use super::types::{BucketVersioningStatus, DefaultRetention, RetentionPeriod, Versioning};
use crate::storage::{Direction, WriteBatch};

/// `create_bucket` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct CreateBucket<'a> {
    store: &'a StoreInner,
    bucket: String,
    object_lock: bool,
    md5_etags: bool,
    /// Attributes written in the bucket's creating batch.
    attributes: Vec<(String, Vec<u8>)>,
}

/// `create_bucket` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CreateBucketOutput {
    /// The bucket's location (`"/name"`).
    pub location: String,
}

impl CreateBucket<'_> {
    /// Enables object lock (and so versioning) on the new bucket.
    pub fn object_lock_enabled_for_bucket(mut self, enabled: bool) -> Self {
        self.object_lock = enabled;
        self
    }

    /// Makes the bucket's ETags S3-style MD5s of the body (and
    /// `md5(part md5s)-N` for multipart objects) instead of BLAKE3 content
    /// hashes, for S3-compatible clients that check them. MD5 costs about
    /// 2 ns per byte on one core.
    pub fn md5_e_tags(mut self, enabled: bool) -> Self {
        self.md5_etags = enabled;
        self
    }

    /// Sets the bucket attribute `name` (see
    /// [`Objects::put_bucket_attribute`]) in the same atomic batch that
    /// creates the bucket, so that a crash can never leave the bucket
    /// without it (a front end's owner or ACL). Setting a name twice keeps
    /// the last value.
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        let name = name.into();
        self.attributes.retain(|(known, _)| *known != name);
        self.attributes.push((name, value.into()));
        self
    }

    /// Creates the bucket.
    pub fn send(self) -> Result<CreateBucketOutput> {
        validate_bucket_name(&self.bucket)?;
        for (name, value) in &self.attributes {
            check_attribute(name, value)?;
        }
        let store = self.store;
        let _gate = store.gate.write();
        if store.find_bucket(&self.bucket)?.is_some() {
            return Err(Error::BucketAlreadyOwnedByYou {
                bucket: self.bucket,
            });
        }
        let mut batch = WriteBatch::new();
        let (id, allocated) = store.allocate_bucket_id(&mut batch);
        let record = BucketRecord {
            id,
            created_nanos: store.now_nanos(),
            versioning: if self.object_lock {
                Versioning::Enabled
            } else {
                Versioning::Unversioned
            },
            object_lock: self.object_lock,
            default_retention: None,
            md5_etags: self.md5_etags,
        };
        batch.put(&keys::bucket(&self.bucket), &record.encode());
        for (name, value) in &self.attributes {
            batch.put(&keys::bucket_attribute(id, name), value);
        }
        store.engine.write(batch)?;
        allocated();
        store.bucket_changed(&self.bucket, Some(record));
        Ok(CreateBucketOutput {
            location: format!("/{}", self.bucket),
        })
    }
}

/// `delete_bucket` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct DeleteBucket<'a> {
    store: &'a StoreInner,
    bucket: String,
}

impl DeleteBucket<'_> {
    /// Deletes the bucket, which must hold no versions or delete markers.
    /// Its unfinished multipart uploads, lifecycle configuration and event
    /// subscriptions go with it.
    pub fn send(self) -> Result<()> {
        let store = self.store;
        let _gate = store.gate.write();
        let bucket = store.bucket(&self.bucket)?;
        let versions = keys::versions_of_bucket(bucket.id);
        if store
            .engine
            .prefix(&versions, Direction::Forward, None)?
            .next()
            .is_some()
        {
            return Err(Error::BucketNotEmpty {
                bucket: self.bucket,
            });
        }
        let mut batch = WriteBatch::new();
        let now = store.now_nanos();
        for row in store.engine.prefix(
            &keys::uploads_of_bucket(bucket.id),
            Direction::Forward,
            None,
        )? {
            let (key, value) = row?;
            UploadRecord::decode(&value)?;
            let (_, upload_id) = keys::parse_upload(&key)?;
            store.drop_parts(&mut batch, &upload_id, now)?;
            batch.delete(&key);
        }
        batch.delete(&keys::lifecycle(bucket.id));
        for row in store.engine.prefix(
            &keys::bucket_attributes(bucket.id),
            Direction::Forward,
            None,
        )? {
            batch.delete(&row?.0);
        }
        let removed = store.drop_subscriptions_of(&mut batch, bucket.id)?;
        batch.delete(&keys::bucket(&self.bucket));
        store.engine.write(batch)?;
        store.bucket_changed(&self.bucket, None);
        for name in removed {
            store.events.removed(bucket.id, &name);
        }
        Ok(())
    }
}

impl StoreInner {
    /// Adds the removal of every part of an upload (and their chunk
    /// references) to `batch`.
    pub(crate) fn drop_parts(
        &self,
        batch: &mut WriteBatch,
        upload_id: &[u8; 16],
        now: u64,
    ) -> Result<()> {
        for row in
            self.engine
                .prefix(&keys::parts_of_upload(upload_id), Direction::Forward, None)?
        {
            let (key, value) = row?;
            let part = PartRecord::decode(&value)?;
            self.release_refs(batch, &part.chunks, now);
            batch.delete(&key);
        }
        Ok(())
    }
}

/// `head_bucket` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct HeadBucket<'a> {
    store: &'a StoreInner,
    bucket: String,
}

/// `head_bucket` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadBucketOutput {
    /// When the bucket was created.
    pub creation_date: SystemTime,
}

impl HeadBucket<'_> {
    /// Checks that the bucket exists.
    pub fn send(self) -> Result<HeadBucketOutput> {
        let bucket = self.store.bucket(&self.bucket)?;
        Ok(HeadBucketOutput {
            creation_date: system_time(bucket.created_nanos),
        })
    }
}

/// `list_buckets` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct ListBuckets<'a> {
    store: &'a StoreInner,
}

/// One bucket of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Bucket {
    /// The bucket's name.
    pub name: String,
    /// When it was created.
    pub creation_date: SystemTime,
}

/// `list_buckets` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListBucketsOutput {
    /// Every bucket, by name.
    pub buckets: Vec<Bucket>,
}

impl ListBuckets<'_> {
    /// Lists every bucket in name order.
    pub fn send(self) -> Result<ListBucketsOutput> {
        let buckets = self
            .store
            .all_buckets()
            .into_iter()
            .map(|(name, record)| Bucket {
                name,
                creation_date: system_time(record.created_nanos),
            })
            .collect();
        Ok(ListBucketsOutput { buckets })
    }
}

/// `put_bucket_versioning` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutBucketVersioning<'a> {
    store: &'a StoreInner,
    bucket: String,
    status: Option<BucketVersioningStatus>,
}

impl PutBucketVersioning<'_> {
    /// The new state (required).
    pub fn status(mut self, status: BucketVersioningStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the state. A bucket with object lock cannot be suspended; once
    /// versioned, a bucket can never return to unversioned (S3).
    pub fn send(self) -> Result<()> {
        let status = self
            .status
            .ok_or_else(|| Error::InvalidArgument("the versioning status is required".into()))?;
        let store = self.store;
        let _gate = store.gate.write();
        let mut bucket = store.bucket(&self.bucket)?;
        if bucket.object_lock && status == BucketVersioningStatus::Suspended {
            return Err(Error::InvalidBucketState {
                reason: "versioning cannot be suspended on a bucket with object lock".into(),
            });
        }
        bucket.versioning = match status {
            BucketVersioningStatus::Enabled => Versioning::Enabled,
            BucketVersioningStatus::Suspended => Versioning::Suspended,
        };
        store
            .engine
            .put(&keys::bucket(&self.bucket), &bucket.encode())?;
        store.bucket_changed(&self.bucket, Some(bucket));
        Ok(())
    }
}

/// `get_bucket_versioning` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetBucketVersioning<'a> {
    store: &'a StoreInner,
    bucket: String,
}

/// `get_bucket_versioning` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetBucketVersioningOutput {
    /// `None` for a bucket whose versioning was never configured.
    pub status: Option<BucketVersioningStatus>,
}

impl GetBucketVersioning<'_> {
    /// Reads the state.
    pub fn send(self) -> Result<GetBucketVersioningOutput> {
        let bucket = self.store.bucket(&self.bucket)?;
        Ok(GetBucketVersioningOutput {
            status: bucket.versioning.status(),
        })
    }
}

/// `put_object_lock_configuration` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct PutObjectLockConfiguration<'a> {
    store: &'a StoreInner,
    bucket: String,
    default_retention: Option<DefaultRetention>,
}

impl PutObjectLockConfiguration<'_> {
    /// The retention new versions get when they name none.
    pub fn default_retention(mut self, retention: DefaultRetention) -> Self {
        self.default_retention = Some(retention);
        self
    }

    /// Enables object lock on the bucket (which must have versioning
    /// enabled) and sets its default retention (or removes it).
    pub fn send(self) -> Result<()> {
        if let Some(retention) = self.default_retention {
            let valid = match retention.period {
                RetentionPeriod::Days(days) => days > 0 && days <= RETENTION_YEARS_MAX * 365,
                RetentionPeriod::Years(years) => years > 0 && years <= RETENTION_YEARS_MAX,
            };
            if !valid {
                return Err(Error::InvalidArgument(format!(
                    "a default retention is 1 day to {RETENTION_YEARS_MAX} years"
                )));
            }
        }
        let store = self.store;
        let _gate = store.gate.write();
        let mut bucket = store.bucket(&self.bucket)?;
        if bucket.versioning != Versioning::Enabled {
            return Err(Error::InvalidBucketState {
                reason: "object lock requires versioning to be enabled".into(),
            });
        }
        bucket.object_lock = true;
        bucket.default_retention = self.default_retention;
        store
            .engine
            .put(&keys::bucket(&self.bucket), &bucket.encode())?;
        store.bucket_changed(&self.bucket, Some(bucket));
        Ok(())
    }
}

/// `get_object_lock_configuration` request.
#[derive(Debug)]
#[must_use = "a request does nothing until `send` is called"]
pub struct GetObjectLockConfiguration<'a> {
    store: &'a StoreInner,
    bucket: String,
}

/// `get_object_lock_configuration` response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GetObjectLockConfigurationOutput {
    /// The bucket's default retention, if any.
    pub default_retention: Option<DefaultRetention>,
}

impl GetObjectLockConfiguration<'_> {
    /// Reads the configuration; `NoSuchConfiguration` without object lock.
    pub fn send(self) -> Result<GetObjectLockConfigurationOutput> {
        let bucket = self.store.bucket(&self.bucket)?;
        if !bucket.object_lock {
            return Err(Error::NoSuchConfiguration {
                what: "object lock configuration".into(),
            });
        }
        Ok(GetObjectLockConfigurationOutput {
            default_retention: bucket.default_retention,
        })
    }
}

impl<'a> Objects<'a> {
    /// Creates a bucket (S3 naming rules; unversioned unless object lock is
    /// enabled).
    pub fn create_bucket(&self, bucket: impl Into<String>) -> CreateBucket<'a> {
        CreateBucket {
            store: self.store,
            bucket: bucket.into(),
            object_lock: false,
            md5_etags: false,
            attributes: Vec::new(),
        }
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, bucket: impl Into<String>) -> DeleteBucket<'a> {
        DeleteBucket {
            store: self.store,
            bucket: bucket.into(),
        }
    }

    /// Checks that a bucket exists.
    pub fn head_bucket(&self, bucket: impl Into<String>) -> HeadBucket<'a> {
        HeadBucket {
            store: self.store,
            bucket: bucket.into(),
        }
    }

    /// Lists the buckets.
    pub fn list_buckets(&self) -> ListBuckets<'a> {
        ListBuckets { store: self.store }
    }

    /// Sets a bucket's versioning state.
    pub fn put_bucket_versioning(&self, bucket: impl Into<String>) -> PutBucketVersioning<'a> {
        PutBucketVersioning {
            store: self.store,
            bucket: bucket.into(),
            status: None,
        }
    }

    /// Reads a bucket's versioning state.
    pub fn get_bucket_versioning(&self, bucket: impl Into<String>) -> GetBucketVersioning<'a> {
        GetBucketVersioning {
            store: self.store,
            bucket: bucket.into(),
        }
    }

    /// Enables object lock on a versioned bucket and sets its default
    /// retention.
    pub fn put_object_lock_configuration(
        &self,
        bucket: impl Into<String>,
    ) -> PutObjectLockConfiguration<'a> {
        PutObjectLockConfiguration {
            store: self.store,
            bucket: bucket.into(),
            default_retention: None,
        }
    }

    /// Reads a bucket's object lock configuration.
    pub fn get_object_lock_configuration(
        &self,
        bucket: impl Into<String>,
    ) -> GetObjectLockConfiguration<'a> {
        GetObjectLockConfiguration {
            store: self.store,
            bucket: bucket.into(),
        }
    }
}
