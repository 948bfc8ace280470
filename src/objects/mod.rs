//! An S3-style object store, embedded: buckets, versions exactly as S3
//! defines them (null versions, delete markers), conditional writes,
//! listing, multipart upload, copy, object lock, lifecycle with storage
//! classes, and event notifications through a durable outbox.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = nimbus::Database::memory()?;
//! let s3 = db.objects();
//! s3.create_bucket("photos").send()?;
//! let put = s3
//!     .put_object("photos", "cat.jpg")
//!     .body(b"meow".to_vec())
//!     .content_type("image/jpeg")
//!     .if_none_match("*")
//!     .send()?;
//! let got = s3.get_object("photos", "cat.jpg").send()?;
//! assert_eq!(got.e_tag, put.e_tag);
//! assert_eq!(got.body.collect()?, &b"meow"[..]);
//! # Ok(()) }
//! ```
//!
//! How it is stored (`docs/format-objects.md` has every byte):
//! - metadata — buckets, versions, uploads, chunk locations and reference
//!   rows, the event outbox — lives in the storage engine under the objects
//!   keyspace, and every change commits as one atomic batch;
//! - bodies up to a few KB are stored inline in their version row; larger
//!   ones are cut by content-defined chunking (FastCDC with a seeded Gear
//!   table), each chunk addressed by its BLAKE3 hash and stored once in an
//!   append-only pack file under `<db>/objects/`, synced before the batch
//!   that references it commits;
//! - references are rows `chunk → body` written and removed in the same
//!   batch as the version; chunks that lose their last reference are freed
//!   by [`Objects::gc`] after a grace period, and [`Objects::verify`]
//!   checks every reference against the catalogue (mark and sweep).
//!
//! This module must never write a pack byte that a committed row does not
//! yet reference without syncing it first, and never free a chunk whose
//! references it counted outside the store's gate.

mod background;
mod bucket;
mod bucket_attributes;
mod chunker;
mod codec;
mod copy;
mod delete;
mod delta;
mod error;
mod events;
mod gc;
mod get;
mod ingest;
mod ingest_stream;
mod keys;
mod lifecycle;
mod lifecycle_run;
pub mod limits;
mod list;
mod lock;
mod multipart;
mod multipart_list;
mod names;
mod pack;
mod put;
mod record;
pub(crate) mod replica;
mod restore;
mod store;
mod subscribe;
mod tagging;
mod types;
mod versions;

#[doc(hidden)]
pub mod fuzz;

use std::sync::Arc;

pub use background::ObjectSchedule;
pub(crate) use background::ObjectTasks;
pub use bucket::{
    Bucket, CreateBucket, CreateBucketOutput, DeleteBucket, GetBucketVersioning,
    GetBucketVersioningOutput, GetObjectLockConfiguration, GetObjectLockConfigurationOutput,
    HeadBucket, HeadBucketOutput, ListBuckets, ListBucketsOutput, PutBucketVersioning,
    PutObjectLockConfiguration,
};
pub use copy::{CopyObject, CopyObjectOutput};
pub use delete::{
    DeleteError, DeleteObject, DeleteObjectOutput, DeleteObjects, DeleteObjectsOutput,
    DeletedObject, ObjectIdentifier,
};
pub use error::{Error, Result};
pub use events::{Event, EventType};
pub use gc::{GcReport, VerifyReport};
pub use get::{GetObject, GetObjectOutput, HeadObject, HeadObjectOutput, ObjectBody};
pub use ingest::ByteStream;
pub use lifecycle::{
    AbortIncompleteMultipartUpload, GetBucketLifecycleConfiguration, LifecycleExpiration,
    LifecycleFilter, LifecycleReport, LifecycleRule, NoncurrentVersionExpiration,
    NoncurrentVersionTransition, PutBucketLifecycleConfiguration, Transition, TransitionTiming,
};
pub use list::{
    ListObjectVersions, ListObjectVersionsOutput, ListObjectsV2, ListObjectsV2Output, Object,
    VersionEntry,
};
pub use lock::{GetObjectLegalHold, GetObjectRetention, PutObjectLegalHold, PutObjectRetention};
pub use multipart::{
    AbortMultipartUpload, CompleteMultipartUpload, CompleteMultipartUploadOutput, CompletedPart,
    CreateMultipartUpload, CreateMultipartUploadOutput, UploadPart, UploadPartOutput,
};
pub use multipart_list::{
    ListMultipartUploads, ListMultipartUploadsOutput, ListParts, ListPartsOutput, MultipartUpload,
    Part,
};
pub use put::{PutObject, PutObjectOutput};
pub use restore::RestoreObject;
pub use store::{ObjectStore, ObjectStoreOptions};
pub(crate) use store::{StoreInner, into_storage_error};
pub use subscribe::CreateSubscription;
pub use types::{
    BucketVersioningStatus, DefaultRetention, MetadataDirective, ObjectLockMode,
    ObjectLockRetention, RetentionPeriod, StorageClass,
};
pub use versions::NULL_VERSION_ID;

use crate::Database;

/// The object operations of one database (`db.objects()`): a cheap handle;
/// every operation returns a request builder whose `send()` runs it.
#[derive(Debug, Clone, Copy)]
pub struct Objects<'a> {
    store: &'a Arc<StoreInner>,
}

impl Database {
    /// The S3-style object store of this database.
    pub fn objects(&self) -> Objects<'_> {
        Objects {
            store: &self.inner.objects.inner,
        }
    }
}

impl Objects<'_> {
    /// The store-wide options (inline threshold, chunk sizes, minimum part
    /// size, GC grace period).
    pub fn options(&self) -> ObjectStoreOptions {
        self.store.options()
    }

    /// Replaces the store-wide options (persisted). New chunk sizes apply
    /// to bodies written from now on; bodies chunked with the old sizes
    /// stay readable but deduplicate less against new ones.
    pub fn set_options(&self, options: ObjectStoreOptions) -> Result<()> {
        let _gate = self.store.gate.write();
        self.store.set_options(options)
    }
}
