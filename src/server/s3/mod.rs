//! An S3-compatible HTTP endpoint (feature `server`): the S3 REST protocol
//! over [`db.objects()`](crate::Database::objects), so that every S3 client
//! (AWS CLI, boto3, rclone, the SDKs) can use nimbus's object store.
//!
//! The wire protocol — XML bodies, SigV4 (header and presigned URL),
//! `aws-chunked` bodies with trailers, routing of ~100 operations — comes
//! from the `s3s` crate, generated from the AWS model; this module is the
//! thin mapping of its `S3` trait onto the object store, plus what S3 has
//! and the embedded store does not: users, bucket owners and canned ACLs.
//!
//! - `serve` — [`S3Server`]: a small tokio runtime, hyper HTTP/1.1,
//!   graceful shutdown.
//! - `access` — access keys ([`S3User`]), signature secrets, and the
//!   per-request decision (bucket owner, public-read, anonymous).
//! - `service` — the `S3` trait, every operation delegating to
//!   `buckets`, `objects`, `multipart` and `config`.
//! - `body` — request bodies streamed into the blocking store with their
//!   checksums (Content-MD5, `x-amz-checksum-*` headers or trailers)
//!   verified before the store commits; response bodies streamed out.
//! - `error` — every object-store error as S3's code, status and headers.
//! - `transport` — one request from hyper to s3s (a body the client broke
//!   is a 400, not s3s's 500).
//! - `scope` — SigV4 credential scopes and dates checked before s3s, which
//!   panics on some malformed ones in debug builds.
//! - `convert` — DTO conversions (times, storage classes, lifecycle).
//! - `fuzz` — the `s3_request` fuzz target's body: raw bytes through the
//!   whole stack in process.
//!
//! The store is blocking, so every operation runs on tokio's blocking pool
//! (`spawn_blocking`); the reactor threads only move bytes.

mod access;
mod body;
mod buckets;
mod config;
mod convert;
mod error;
mod fuzz;
mod listing;
mod multipart;
mod objects;
mod scope;
mod serve;
mod service;
mod transport;

pub use access::S3User;
#[doc(hidden)]
pub use fuzz::fuzz_s3_request;
pub use serve::{S3Server, S3ServerOptions};
