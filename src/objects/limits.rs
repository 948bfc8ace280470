//! Every limit of the object store in one place, each citing the S3 limit
//! it mirrors or the reason for its value.

/// Bucket names are 3 to 63 characters (S3 bucket naming rules).
pub const BUCKET_NAME_BYTES_MIN: usize = 3;

/// Bucket names are 3 to 63 characters (S3 bucket naming rules).
pub const BUCKET_NAME_BYTES_MAX: usize = 63;

/// An object key is at most 1024 bytes of UTF-8 (S3 "Object key naming").
pub const KEY_BYTES_MAX: usize = 1024;

/// User metadata: at most 2 KB, counting the UTF-8 bytes of every key and
/// value (S3 "Working with object metadata").
pub const USER_METADATA_BYTES_MAX: usize = 2048;

/// At most 10 tags per object (S3 object tagging).
pub const TAGS_PER_OBJECT_MAX: usize = 10;

/// A tag key is at most 128 Unicode characters (S3 object tagging).
pub const TAG_KEY_CHARS_MAX: usize = 128;

/// A tag value is at most 256 Unicode characters (S3 object tagging).
pub const TAG_VALUE_CHARS_MAX: usize = 256;

/// A single PUT carries at most 5 GiB (S3 "PutObject").
pub const PUT_OBJECT_BYTES_MAX: u64 = 5 << 30;

/// A multipart part is at most 5 GiB (S3 multipart limits).
pub const PART_BYTES_MAX: u64 = 5 << 30;

/// Part numbers run from 1 to 10,000 (S3 multipart limits).
pub const PART_NUMBER_MAX: u32 = 10_000;

/// Every part but the last is at least 5 MiB (S3 multipart limits);
/// configurable per store for tests ([`ObjectStoreOptions::min_part_bytes`]).
///
/// [`ObjectStoreOptions::min_part_bytes`]: super::ObjectStoreOptions::min_part_bytes
pub const MIN_PART_BYTES_DEFAULT: u64 = 5 << 20;

/// The most chunks one object version may reference. Its manifest and
/// reference rows commit in one engine batch (at most 64 MiB), and at about
/// 100 bytes per chunk this keeps the batch under half of that; with the
/// default 1 MiB average chunk it allows objects of about 300 GiB.
pub const CHUNKS_PER_OBJECT_MAX: usize = 300_000;

/// Keys, versions, uploads or parts per listing page: the default and
/// maximum `max_keys` (S3 ListObjectsV2 and friends).
pub const LIST_PAGE_MAX: usize = 1000;

/// At most 1000 keys per `delete_objects` call (S3 DeleteObjects).
pub const DELETE_OBJECTS_MAX: usize = 1000;

/// At most 1000 rules per lifecycle configuration (S3 lifecycle limits).
pub const LIFECYCLE_RULES_MAX: usize = 1000;

/// A lifecycle rule id is at most 255 characters (S3 LifecycleRule).
pub const LIFECYCLE_RULE_ID_CHARS_MAX: usize = 255;

/// Objects below 128 KB are not transitioned unless a rule's size filter
/// says so (S3's `TransitionDefaultMinimumObjectSize`, 2024).
pub const TRANSITION_OBJECT_BYTES_MIN: u64 = 128 * 1024;

/// Days before an object may move to STANDARD_IA or ONEZONE_IA (S3
/// Transition: "must be greater than or equal to 30").
pub const INFREQUENT_ACCESS_TRANSITION_DAYS_MIN: u32 = 30;

/// Objects up to this size are stored inline in their catalogue row, with
/// no pack file write (Garage inlines below 3072 B; 4 KiB keeps the common
/// 4 KiB object on the fast path).
pub const INLINE_BYTES_MAX_DEFAULT: usize = 4096;

/// The largest inline threshold a store accepts: inline bodies travel
/// through the write-ahead log, which is meant for metadata.
pub const INLINE_BYTES_LIMIT: usize = 64 * 1024;

/// Content-defined chunking: the default minimum chunk size (restic and
/// borg use 512 KiB; FastCDC's normalised chunking makes 256 KiB enough).
pub const CHUNK_BYTES_MIN_DEFAULT: usize = 256 * 1024;

/// Content-defined chunking: the default average chunk size (restic 1 MiB).
pub const CHUNK_BYTES_AVG_DEFAULT: usize = 1 << 20;

/// Content-defined chunking: the default maximum chunk size.
pub const CHUNK_BYTES_MAX_DEFAULT: usize = 4 << 20;

/// The smallest chunk size a store accepts (FastCDC's lower bound of 64 B
/// would make manifests larger than bodies; 1 KiB keeps them small).
pub const CHUNK_BYTES_LIMIT_MIN: usize = 1024;

/// The largest chunk a store accepts: a chunk is read whole and verified
/// before any of it is returned, so this bounds a reader's buffer.
pub const CHUNK_BYTES_LIMIT_MAX: usize = 16 << 20;

/// A pack file is sealed and a new one started past this size.
pub const PACK_BYTES_MAX: u64 = 256 << 20;

/// How long an unreferenced chunk stays before `gc()` may free it (Garage
/// waits 10 minutes after a count reaches zero, after a data-loss race).
pub const GC_GRACE_SECONDS_DEFAULT: u64 = 600;

/// A pack is rewritten by `gc()` when at most this share of it is live.
pub const PACK_LIVE_RATIO_REWRITE_MAX: f64 = 0.5;

/// Retention may be set at most 100 years ahead (S3 object lock).
pub const RETENTION_YEARS_MAX: u32 = 100;

/// A subscription name is at most 255 bytes (like an SQS queue name, 80,
/// rounded up for local names).
pub const SUBSCRIPTION_NAME_BYTES_MAX: usize = 255;

/// Events returned by one `receive_events` call at most.
pub const EVENTS_PER_RECEIVE_MAX: usize = 1000;

/// A bucket attribute holds at most 64 KiB (an S3 notification or tagging
/// document is far smaller; the limit keeps a row small).
pub const BUCKET_ATTRIBUTE_BYTES_MAX: usize = 64 << 10;
