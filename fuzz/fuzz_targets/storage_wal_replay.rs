//! Replays arbitrary bytes as a write-ahead log file (see
//! `nimbus::storage::wal::fuzz_wal_replay` for the properties checked).
//! Valid fragments in an input must carry log number
//! `nimbus::storage::wal::FUZZ_LOG_NUMBER` (7).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nimbus::storage::wal::fuzz_wal_replay(data);
});
