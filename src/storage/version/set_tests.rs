//! Tests of the version set: recovery, durable edits, counters, obsolete
//! files, failure latching, and crashes during edits.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::testing::{TestRng, meta};
use super::*;
use crate::storage::StorageError;
use crate::storage::fs::{FileSystem, OsFileSystem};
use crate::storage::manifest::test_fs::MemFs;
use crate::storage::manifest::{self, MANIFEST_TEMP_FILE_NAME, ManifestState};

const DIR: &str = "/db";

fn mem_set() -> (MemFs, VersionSet) {
    let fs = MemFs::new();
    fs.create_dir_all(Path::new(DIR)).unwrap();
    let set = VersionSet::open(Arc::new(fs.clone()), Path::new(DIR)).unwrap();
    (fs, set)
}

/// An edit that flushes one new L0 file with sequences up to `max_seq`.
fn flush_edit(set: &VersionSet, max_seq: u64) -> VersionEdit {
    let mut file = meta(0, set.new_file_number(), "a", "z");
    file.min_seq = max_seq;
    file.max_seq = max_seq;
    let mut edit = VersionEdit::new();
    edit.add_file(file);
    edit
}

#[test]
fn a_new_directory_gets_an_empty_durable_manifest() {
    let (fs, set) = mem_set();
    assert_eq!(set.current().file_count(), 0);
    assert_eq!(set.next_file_number(), 1);
    let state = manifest::read(&fs, Path::new(DIR)).unwrap().unwrap();
    assert_eq!(state, set.manifest_state());
}

#[test]
fn edits_are_durable_and_recovered_on_open() {
    let (fs, set) = mem_set();
    set.log_and_apply(&flush_edit(&set, 7)).unwrap();
    let log = set.new_file_number();
    let mut edit = flush_edit(&set, 9);
    edit.set_log_number(log)
        .set_last_sequence(12)
        .set_compaction_pointer(1, Bytes::from_static(b"q"));
    set.log_and_apply(&edit).unwrap();
    let before = set.manifest_state();
    assert_eq!(before.last_sequence, 12);
    assert_eq!(before.log_number, log);
    drop(set);

    let reopened = VersionSet::open(Arc::new(fs), Path::new(DIR)).unwrap();
    assert_eq!(reopened.manifest_state(), before);
    assert_eq!(reopened.current().level_files(0)[0].meta().max_seq, 9);
    assert!(reopened.new_file_number() >= before.next_file_number);
}

#[test]
fn the_last_sequence_always_covers_every_file() {
    let (_fs, set) = mem_set();
    set.log_and_apply(&flush_edit(&set, 40)).unwrap();
    assert_eq!(set.last_sequence(), 40);
    let mut edit = VersionEdit::new();
    edit.set_last_sequence(30);
    set.log_and_apply(&edit).unwrap();
    assert_eq!(set.last_sequence(), 40, "never lowered");
}

#[test]
#[should_panic(expected = "lowers the log number")]
fn lowering_the_log_number_panics() {
    let (_fs, set) = mem_set();
    let mut edit = VersionEdit::new();
    edit.set_next_file_number(10).set_log_number(5);
    set.log_and_apply(&edit).unwrap();
    let mut edit = VersionEdit::new();
    edit.set_log_number(4);
    let _ = set.log_and_apply(&edit);
}

#[test]
#[should_panic(expected = "never allocated")]
fn adding_an_unallocated_file_number_panics() {
    let (_fs, set) = mem_set();
    let mut edit = VersionEdit::new();
    edit.add_file(meta(0, 50, "a", "b"));
    let _ = set.log_and_apply(&edit);
}

#[test]
fn removed_files_become_obsolete_once_no_reader_holds_them() {
    let (_fs, set) = mem_set();
    set.log_and_apply(&flush_edit(&set, 1)).unwrap();
    set.log_and_apply(&flush_edit(&set, 2)).unwrap();
    let reader = set.current();
    let mut inputs: Vec<_> = reader.level_files(0).iter().map(|f| f.number()).collect();
    inputs.sort_unstable();
    let mut compaction = VersionEdit::new();
    for &number in &inputs {
        compaction.remove_file(0, number);
    }
    let mut output = meta(1, set.new_file_number(), "a", "z");
    output.min_seq = 1;
    output.max_seq = 2;
    compaction.add_file(output);
    set.log_and_apply(&compaction).unwrap();
    assert!(
        set.take_obsolete_files().is_empty(),
        "a reader holds the old version"
    );
    drop(reader);
    let mut obsolete = set.take_obsolete_files();
    obsolete.sort_unstable();
    assert_eq!(obsolete, inputs);
}

#[test]
fn a_failed_manifest_write_stops_every_later_edit_and_every_deletion() {
    let (fs, set) = mem_set();
    set.log_and_apply(&flush_edit(&set, 1)).unwrap();
    let number = set.current().level_files(0)[0].number();
    fs.power_loss_after(2); // create and append succeed, the fsync fails
    let mut edit = VersionEdit::new();
    edit.remove_file(0, number);
    let error = set.log_and_apply(&edit).unwrap_err();
    assert!(
        matches!(error, StorageError::Io { op: "fsync", .. }),
        "{error}"
    );
    assert!(
        set.current().contains_file(number),
        "the edit was not installed"
    );
    let again = set.log_and_apply(&VersionEdit::new()).unwrap_err();
    assert!(matches!(again, StorageError::PreviousIo { .. }), "{again}");
    drop(set);
    // Even with every version gone, nothing may be deleted: the durable
    // manifest is unknown.
}

#[test]
fn a_poisoned_set_reports_no_obsolete_files() {
    let (fs, set) = mem_set();
    set.log_and_apply(&flush_edit(&set, 1)).unwrap();
    let number = set.current().level_files(0)[0].number();
    let mut edit = VersionEdit::new();
    edit.remove_file(0, number);
    fs.power_loss_after(4); // fails at the directory sync
    assert!(set.log_and_apply(&edit).is_err());
    assert!(set.take_obsolete_files().is_empty());
}

#[test]
fn opening_removes_a_leftover_temporary_manifest() {
    let (fs, set) = mem_set();
    drop(set);
    let temp = Path::new(DIR).join(MANIFEST_TEMP_FILE_NAME);
    fs.put(&temp, b"torn".to_vec());
    VersionSet::open(Arc::new(fs.clone()), Path::new(DIR)).unwrap();
    assert!(!fs.exists(&temp));
}

#[test]
fn a_corrupt_manifest_fails_open_with_corruption() {
    let (fs, set) = mem_set();
    drop(set);
    fs.put(
        &Path::new(DIR).join("MANIFEST"),
        b"NIMBMANI garbage".to_vec(),
    );
    let error = VersionSet::open(Arc::new(fs), Path::new(DIR)).unwrap_err();
    assert!(matches!(error, StorageError::Corruption { .. }), "{error}");
}

#[test]
fn the_version_set_works_on_the_os_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn FileSystem> = Arc::new(OsFileSystem::default());
    let set = VersionSet::open(Arc::clone(&fs), dir.path()).unwrap();
    set.log_and_apply(&flush_edit(&set, 3)).unwrap();
    let state = set.manifest_state();
    drop(set);
    let reopened = VersionSet::open(fs, dir.path()).unwrap();
    assert_eq!(reopened.manifest_state(), state);
}

/// Random edits with a power loss at a random step: after the reboot the
/// recovered state is the last acknowledged one or the one in flight.
#[test]
fn a_crash_during_any_edit_recovers_the_last_acknowledged_or_the_next_state() {
    for seed in 0..200 {
        let mut rng = TestRng::new(seed);
        let (fs, set) = mem_set();
        let edits_before_crash = rng.below(6);
        let mut acknowledged: ManifestState = set.manifest_state();
        let mut in_flight = None;
        for step in 0..=edits_before_crash {
            let mut edit = flush_edit(&set, 10 * (step + 1));
            if let Some(victim) = set.current().level_files(0).get(1) {
                edit.remove_file(0, victim.number());
            }
            if step == edits_before_crash {
                fs.power_loss_after(rng.below(6));
            }
            match set.log_and_apply(&edit) {
                Ok(_) => acknowledged = set.manifest_state(),
                Err(_) => {
                    let mut next = acknowledged.clone();
                    let version = set.current().apply(&edit, &ObsoleteFiles::new());
                    next.files = version.files().map(|f| f.meta().clone()).collect();
                    next.last_sequence = 10 * (step + 1);
                    next.next_file_number = set.next_file_number();
                    in_flight = Some(next);
                }
            }
        }
        let rebooted = fs.crash(&mut rng);
        let recovered = VersionSet::open(Arc::new(rebooted), Path::new(DIR))
            .unwrap_or_else(|error| panic!("seed {seed}: {error}"))
            .manifest_state();
        let matches_acknowledged = recovered == acknowledged;
        let matches_in_flight = in_flight.as_ref() == Some(&recovered);
        assert!(
            matches_acknowledged || matches_in_flight,
            "seed {seed}: recovered {recovered:?}\nacknowledged {acknowledged:?}\nin flight {in_flight:?}"
        );
    }
}
