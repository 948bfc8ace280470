//! A DynamoDB-compatible HTTP endpoint (feature `server`): the JSON 1.0
//! protocol DynamoDB's SDKs speak (`X-Amz-Target: DynamoDB_20120810.<Op>`),
//! served from a [`Database`](crate::Database) so that any AWS SDK, in any
//! language, can use nimbus.
//!
//! It is a thin mapping of the kv API onto the wire — one implementation,
//! two faces: every operation parses its input (shape and limits first, as
//! DynamoDB validates before it looks up the table), calls the kv request
//! of the same name and serializes its output; errors keep DynamoDB's
//! status, `__type` and message.
//!
//! - `http` — the HTTP/1.1 subset the SDKs use (std::net, no async runtime).
//! - `listener` — [`Server`]: accept loop, a thread per connection,
//!   bounded connections, graceful shutdown, request logging.
//! - `ops` — one handler per operation and the routing table.
//! - `wire`, `legacy` — shared request shapes and the legacy parameters.
//! - `sigv4` — signature verification when access keys are configured.
//! - `error` — [`WireError`]: DynamoDB's error answers.

mod error;
mod fuzz;
mod http;
mod legacy;
mod listener;
mod ops;
mod sigv4;
mod wire;

pub mod s3;

pub use error::WireError;
pub use fuzz::fuzz_request;
pub use listener::{BODY_BYTES_MAX_DEFAULT, Server, ServerOptions};
pub use ops::{DYNAMODB_SERVICE, STREAMS_SERVICE};
pub use sigv4::SKEW_SECONDS_MAX;

/// Signs a request the way an AWS SDK does (SigV4), for clients written
/// against the server in tests and benchmarks.
pub mod signing {
    pub use super::http::Request;
    pub use super::sigv4::sign;
}
