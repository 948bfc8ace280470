//! The fuzz entry point for log replay, with the properties it checks.

use std::path::Path;

use super::{log_file_path, recovery};
use crate::storage::error::StorageError;
use crate::storage::fs::FileSystem;
use crate::storage::sim::SimFileSystem;
use crate::storage::types::FileNumber;

/// The file number the fuzzed bytes are stored under; inputs that should
/// contain valid fragments must use it as their log number.
pub const FUZZ_LOG_NUMBER: FileNumber = 7;

/// Writes `data` as log file [`FUZZ_LOG_NUMBER`] on a simulated disk and
/// replays it. Panics only if the reader breaks one of its promises:
/// - replay never panics and fails only with `Corruption`;
/// - the same bytes replayed as an *older* log (followed by an empty newest
///   log) succeed exactly when the newest-log replay found no torn tail
///   and nothing (zeros, stale records) after the last record;
/// - after cutting the torn tail, replay succeeds with the same batches and
///   no torn tail.
#[doc(hidden)]
pub fn fuzz_wal_replay(data: &[u8]) {
    let fs = SimFileSystem::new();
    let dir = Path::new("/fuzz");
    let setup = fs
        .create_dir_all(dir)
        .and_then(|()| fs.write_durable(&log_file_path(dir, FUZZ_LOG_NUMBER), data))
        .and_then(|()| fs.write_durable(&log_file_path(dir, FUZZ_LOG_NUMBER + 1), &[]));
    assert!(setup.is_ok(), "simulated disk failed: {setup:?}");

    let mut entries = 0u64;
    let as_newest = recovery::replay(&fs, dir, &[FUZZ_LOG_NUMBER], |_, batch| {
        entries += batch.iter().count() as u64;
        Ok(())
    });
    let as_older = recovery::replay(&fs, dir, &[FUZZ_LOG_NUMBER, FUZZ_LOG_NUMBER + 1], |_, _| {
        Ok(())
    });
    let outcome = match as_newest {
        Ok(outcome) => outcome,
        Err(StorageError::Corruption { .. }) => {
            assert!(
                matches!(as_older, Err(StorageError::Corruption { .. })),
                "corrupt as newest but {as_older:?} as older"
            );
            return;
        }
        Err(other) => panic!("replay failed with a non-corruption error: {other}"),
    };
    assert_eq!(outcome.entries, entries);
    let tail = outcome.newest.as_ref();
    let ends_at_last_record =
        tail.is_some_and(|tail| tail.torn.is_none() && tail.valid_len == tail.file_len);
    match (&as_older, ends_at_last_record) {
        (Ok(older), true) => assert_eq!(older.batches, outcome.batches),
        (Err(StorageError::Corruption { .. }), false) => {}
        (older, _) => panic!("older-log replay {older:?} disagrees with the newest's end {tail:?}"),
    }

    let cut = recovery::cut_tail(&fs, &outcome);
    assert!(cut.is_ok(), "cutting the tail failed: {cut:?}");
    let again = recovery::replay(&fs, dir, &[FUZZ_LOG_NUMBER], |_, _| Ok(()));
    match again {
        Ok(again) => {
            assert_eq!(again.batches, outcome.batches);
            assert_eq!(again.last_sequence, outcome.last_sequence);
            assert!(
                again
                    .newest
                    .as_ref()
                    .is_some_and(|tail| tail.torn.is_none()),
                "torn tail survived the cut: {again:?}"
            );
        }
        Err(e) => panic!("replay after cutting the tail failed: {e}"),
    }
}
