//! The names a snapshot may carry (plain files and `objects/<n>.pack`,
//! nothing else with a separator) and the install protocol on a simulated
//! disk: `finish_install`, cut by a failed sync and a power loss at every
//! durability point, always ends with exactly the snapshot's files and
//! packs, the replaced packs gone and unrelated subdirectories untouched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::storage::sim::SimFileSystem;

#[test]
fn a_pack_name_is_exactly_objects_digits_dot_pack() {
    for name in [
        "objects/000001.pack",
        "objects/1.pack",
        "objects/12345678901234567890.pack",
    ] {
        assert!(pack_name(name), "{name}");
        assert!(safe_name(name), "{name}");
    }
    for name in [
        "objects/../x",
        "objects/../000001.pack",
        "a/b",
        "objects/x",
        "objects/.pack",
        "objects/000001.pack/",
        "objects//000001.pack",
        "objects/000001.pack.tmp",
        "objects/00a001.pack",
        "objects/123456789012345678901.pack",
        "../objects/000001.pack",
        "/objects/000001.pack",
        "objects\\000001.pack",
        "other/000001.pack",
        "objects",
        "",
    ] {
        assert!(!pack_name(name), "{name:?}");
        assert!(!safe_name(name), "{name:?}");
    }
}

#[test]
fn plain_names_stay_safe_and_the_epoch_record_is_never_sent() {
    for name in ["000001.sst", "MANIFEST", "000004.log", "CURRENT"] {
        assert!(safe_name(name), "{name}");
        assert!(!pack_name(name), "{name}");
    }
    for name in [
        "..",
        "a..b",
        "x\\y",
        "REPLICATION",
        "REPLICATION.installing",
    ] {
        assert!(!safe_name(name), "{name:?}");
    }
}

const DIR: &str = "/db";
const STAGING: &str = "/db.incoming-5";

/// What the snapshot brings: engine files, its epoch record, packs 2
/// (the follower has a pack 2 of its own) and 4.
fn staged() -> BTreeMap<&'static str, &'static [u8]> {
    BTreeMap::from([
        ("MANIFEST", b"new manifest".as_slice()),
        ("000009.sst", b"new segment"),
        ("REPLICATION", b"new epochs"),
        ("objects/000002.pack", b"new pack two"),
        ("objects/000004.pack", b"new pack four"),
    ])
}

/// A follower's directory with files and packs of its own, a table
/// backup in a subdirectory, a file in its packs directory that is not a
/// pack, and a complete staging directory with the install marker
/// written: the state `install` leaves just before `finish_install`.
fn follower_about_to_finish(with_packs_dir: bool) -> SimFileSystem {
    let fs = SimFileSystem::new();
    let dir = Path::new(DIR);
    let staging = Path::new(STAGING);
    for made in [dir.join("backups"), staging.join("objects")] {
        fs.create_dir_all(&made).unwrap();
    }
    if with_packs_dir {
        fs.create_dir_all(&dir.join("objects")).unwrap();
    }
    for synced in ["/", DIR, STAGING] {
        fs.sync_dir(Path::new(synced)).unwrap();
    }
    let mut own = vec![
        ("MANIFEST", b"old manifest".as_slice()),
        ("000001.sst", b"old segment"),
        ("REPLICATION", b"old epochs"),
        ("backups/table-1", b"a backup"),
    ];
    if with_packs_dir {
        own.extend([
            ("objects/000001.pack", b"old pack one".as_slice()),
            ("objects/000002.pack", b"old pack two"),
            ("objects/000007.pack", b"old pack seven"),
            ("objects/notes.txt", b"not a pack"),
        ]);
    }
    for (name, contents) in own {
        fs.write_durable(&dir.join(name), contents).unwrap();
    }
    for (name, contents) in staged() {
        fs.write_durable(&staging.join(name), contents).unwrap();
    }
    write_marker(&fs, dir, staging).unwrap();
    fs
}

/// Every file under `dir` and one level of subdirectories, with contents.
fn tree(fs: &SimFileSystem, dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for name in fs.list_dir(dir).unwrap() {
        let path = dir.join(&name);
        match fs.list_dir(&path) {
            Ok(inner) => {
                for file in inner {
                    let read = fs.read(&path.join(&file)).unwrap();
                    files.insert(format!("{name}/{file}"), read);
                }
            }
            Err(_) => {
                files.insert(name, fs.read(&path).unwrap());
            }
        }
    }
    files
}

/// The follower's directory once the install is finished.
fn installed(with_packs_dir: bool) -> BTreeMap<String, Vec<u8>> {
    let mut expected: BTreeMap<String, Vec<u8>> = staged()
        .into_iter()
        .map(|(name, contents)| (name.to_string(), contents.to_vec()))
        .collect();
    expected.insert("backups/table-1".into(), b"a backup".to_vec());
    if with_packs_dir {
        expected.insert("objects/notes.txt".into(), b"not a pack".to_vec());
    }
    expected
}

#[test]
fn finishing_replaces_files_and_packs_and_a_second_call_changes_nothing() {
    for with_packs_dir in [true, false] {
        let fs = follower_about_to_finish(with_packs_dir);
        let dir = Path::new(DIR);
        assert!(fs.exists(&dir.join(INSTALL_MARKER)));
        finish_install(&fs, dir).unwrap();
        assert_eq!(tree(&fs, dir), installed(with_packs_dir));
        assert_eq!(tree(&fs, Path::new(STAGING)), BTreeMap::new());
        finish_install(&fs, dir).unwrap();
        assert_eq!(tree(&fs, dir), installed(with_packs_dir));
        // Durable: a power loss now keeps exactly this.
        fs.crash(3);
        assert_eq!(tree(&fs, dir), installed(with_packs_dir));
    }
}

#[test]
fn an_install_cut_by_a_power_loss_at_any_sync_is_finished_by_the_next_open() {
    for with_packs_dir in [true, false] {
        for failing_sync in 1..=8 {
            for seed in 0..8 {
                let fs = follower_about_to_finish(with_packs_dir);
                let dir = Path::new(DIR);
                fs.fail_nth_dir_sync(failing_sync);
                let cut = finish_install(&fs, dir);
                fs.crash(seed);
                let case = format!(
                    "packs dir {with_packs_dir}, sync {failing_sync} failed ({cut:?}), seed {seed}"
                );
                finish_install(&fs, dir).unwrap();
                assert_eq!(tree(&fs, dir), installed(with_packs_dir), "{case}");
                assert!(!fs.exists(&dir.join(INSTALL_MARKER)), "{case}");
            }
        }
    }
}

#[test]
fn a_marker_naming_a_path_outside_the_directory_is_corruption() {
    let fs = SimFileSystem::new();
    let dir = PathBuf::from(DIR);
    fs.create_dir_all(&dir).unwrap();
    fs.write_durable(&dir.join("MANIFEST"), b"kept").unwrap();
    let marker = format!("{STAGING}\nMANIFEST\nobjects/../../etc/passwd");
    fs.write_durable(&dir.join(INSTALL_MARKER), marker.as_bytes())
        .unwrap();
    assert!(matches!(
        finish_install(&fs, &dir),
        Err(StorageError::Corruption { .. })
    ));
    assert_eq!(fs.read(&dir.join("MANIFEST")).unwrap(), b"kept");
}
