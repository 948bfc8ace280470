//! The DynamoDB endpoint on untrusted bytes: HTTP parsing and every
//! operation's input handling never panic, and answer JSON with a 2xx or
//! 4xx status, never a 5xx, for anything a client can send.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::server::fuzz_request(data);
});
