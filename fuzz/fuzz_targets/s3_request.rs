//! The S3 endpoint on untrusted bytes: arbitrary HTTP requests (method,
//! path, headers, body; pipelined or truncated) through hyper, s3s and the
//! S3 operations in process never panic and never answer 500.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::server::s3::fuzz_s3_request(data);
});
