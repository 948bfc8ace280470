//! Crash tests of the manifest update protocol on the in-memory disk: a
//! power loss between any two steps, with any subset of unsynced state
//! surviving, leaves a readable old or new manifest — and an acknowledged
//! update is never lost.

use std::path::Path;

use bytes::Bytes;

use super::test_fs::MemFs;
use super::*;
use crate::storage::fs::FileSystem;
use crate::storage::version::testing::{TestRng, meta};

const DIR: &str = "/db";

/// Seeds per crash point: each draws a different set of surviving writes.
const SEEDS_PER_CRASH_POINT: u64 = 32;

fn state(files: usize) -> ManifestState {
    ManifestState {
        next_file_number: 100,
        last_sequence: 1000,
        log_number: u64::try_from(files).unwrap(),
        compaction_pointers: vec![(2, Bytes::from(format!("k{files}")))],
        files: (0..files)
            .map(|i| meta(0, 10 + u64::try_from(i).unwrap(), "a", "z"))
            .collect(),
    }
}

/// A disk holding `old` as its durable manifest (or nothing), optionally
/// with a torn temporary file left by an earlier crash.
fn disk_with(old: Option<&ManifestState>, leftover_temp: bool) -> MemFs {
    let fs = MemFs::new();
    let dir = Path::new(DIR);
    fs.create_dir_all(dir).unwrap();
    if let Some(old) = old {
        write(&fs, dir, old).unwrap();
    }
    if leftover_temp {
        let mut temp = fs.create(&dir.join(MANIFEST_TEMP_FILE_NAME)).unwrap();
        temp.append(&encode(&state(9))[..17]).unwrap();
        temp.sync_data().unwrap();
        fs.sync_dir(dir).unwrap();
    }
    fs
}

/// How many mutating calls one update makes.
fn update_steps(new: &ManifestState) -> u64 {
    let fs = disk_with(None, false);
    let before = fs.mutations();
    write(&fs, Path::new(DIR), new).unwrap();
    fs.mutations() - before
}

fn check_every_crash_point(old: Option<&ManifestState>, leftover_temp: bool) {
    let new = state(3);
    let dir = Path::new(DIR);
    let steps = update_steps(&new);
    assert_eq!(steps, 5, "create, append, sync_data, rename, sync_dir");
    let mut outcomes = [0usize; 2];
    for allowed in 0..=steps {
        for seed in 0..SEEDS_PER_CRASH_POINT {
            let fs = disk_with(old, leftover_temp);
            fs.power_loss_after(allowed);
            let acknowledged = write(&fs, dir, &new).is_ok();
            assert_eq!(acknowledged, allowed == steps);
            let rebooted = fs.crash(&mut TestRng::new(seed * 1000 + allowed));
            remove_leftover_temp(&rebooted, dir).unwrap();
            let found = read(&rebooted, dir).unwrap_or_else(|error| {
                panic!("crash after {allowed} steps (seed {seed}) left damage: {error}")
            });
            if acknowledged {
                assert_eq!(
                    found.as_ref(),
                    Some(&new),
                    "an acknowledged update was lost"
                );
            }
            if found.as_ref() == Some(&new) {
                outcomes[1] += 1;
            } else {
                assert_eq!(found.as_ref(), old, "crash after {allowed} steps");
                outcomes[0] += 1;
            }
            assert!(!rebooted.exists(&dir.join(MANIFEST_TEMP_FILE_NAME)));
        }
    }
    // Both outcomes occur, so the test exercises the window between rename
    // and directory sync rather than always landing on one side.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn a_crash_at_any_step_of_an_update_leaves_the_old_or_the_new_manifest() {
    check_every_crash_point(Some(&state(5)), false);
}

#[test]
fn a_crash_at_any_step_of_the_first_write_leaves_none_or_the_new_manifest() {
    check_every_crash_point(None, false);
}

#[test]
fn a_torn_temporary_file_from_an_earlier_crash_is_ignored_and_removed() {
    check_every_crash_point(Some(&state(5)), true);
}

/// The crash model is strict enough to catch a protocol that skips the
/// data sync: renaming unsynced bytes over the manifest must be seen to
/// lose it. Without this, the tests above could pass vacuously.
#[test]
fn the_crash_model_catches_a_rename_of_unsynced_data() {
    let dir = Path::new(DIR);
    let mut damaged = 0;
    for seed in 0..SEEDS_PER_CRASH_POINT {
        let fs = disk_with(Some(&state(5)), false);
        let temp = dir.join(MANIFEST_TEMP_FILE_NAME);
        let mut file = fs.create(&temp).unwrap();
        file.append(&encode(&state(3))).unwrap();
        drop(file);
        fs.rename(&temp, &dir.join(MANIFEST_FILE_NAME)).unwrap();
        fs.sync_dir(dir).unwrap();
        let rebooted = fs.crash(&mut TestRng::new(seed));
        if read(&rebooted, dir).is_err() {
            damaged += 1;
        }
    }
    assert!(damaged > 0);
}
