//! Feeds arbitrary bytes to everything a replica decodes from the network
//! (see `nimbus::replication::fuzz::fuzz_replication_wire` for the
//! properties checked): log-shipping messages, the TCP framing, and
//! multi-active messages.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::replication::fuzz::fuzz_replication_wire(data);
});
