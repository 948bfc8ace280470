//! An S3-style object store: buckets, versions, multipart upload, object
//! lock and lifecycle, with bodies stored once by content hash. Built in a
//! later issue.
