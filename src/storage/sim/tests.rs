//! Tests of the simulated disk's crash and fault model.

use std::collections::HashSet;
use std::path::Path;

use super::file::TORN_CHUNK_BYTES_MAX;
use super::*;

const CRASH_SEEDS: u64 = 300;

fn disk_with_dir() -> SimFileSystem {
    let fs = SimFileSystem::new();
    fs.create_dir_all(Path::new("/db")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

/// Builds the same history on a fresh disk, crashes it with `seed` and
/// returns the resulting disk.
fn crashed(seed: u64, history: impl Fn(&SimFileSystem)) -> SimFileSystem {
    let fs = disk_with_dir();
    history(&fs);
    fs.crash(seed);
    fs
}

#[test]
fn rng_is_deterministic_and_bounded() {
    let mut a = SimRng::new(7);
    let mut b = SimRng::new(7);
    for _ in 0..100 {
        assert_eq!(a.next_u64(), b.next_u64());
        assert!(a.below(10) < 10);
        b.below(10);
    }
    assert_eq!(SimRng::new(1).below(0), 0);
    assert_ne!(SimRng::new(1).next_u64(), SimRng::new(2).next_u64());
}

#[test]
fn synced_bytes_survive_every_crash_and_unsynced_bytes_are_a_possibly_torn_prefix() {
    let path = Path::new("/db/f");
    let synced = b"durable-part".to_vec();
    let unsynced: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let mut lost_all = false;
    let mut kept_all = false;
    let mut kept_some = false;
    let mut torn = false;
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            let mut f = fs.create(path).unwrap();
            f.append(&synced).unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(Path::new("/db")).unwrap();
            f.append(&unsynced).unwrap();
        });
        let image = fs.read(path).unwrap();
        assert!(
            image.starts_with(&synced),
            "seed {seed}: durable prefix lost"
        );
        let tail = &image[synced.len()..];
        assert!(tail.len() <= unsynced.len(), "seed {seed}: bytes invented");
        match tail.len() {
            0 => lost_all = true,
            n if n == unsynced.len() && tail == unsynced.as_slice() => kept_all = true,
            _ => kept_some = true,
        }
        if tail != &unsynced[..tail.len()] {
            torn = true;
            // Only the last chunk may be damaged.
            let damaged_from = tail
                .iter()
                .zip(&unsynced)
                .position(|(a, b)| a != b)
                .unwrap();
            assert!(
                tail.len() - damaged_from <= TORN_CHUNK_BYTES_MAX,
                "seed {seed}"
            );
        }
        assert_eq!(fs.durable_len(path).unwrap(), image.len() as u64);
    }
    assert!(lost_all && kept_all && kept_some && torn);
}

#[test]
fn crash_images_are_reproducible_from_the_seed() {
    let history = |fs: &SimFileSystem| {
        let mut f = fs.create(Path::new("/db/a")).unwrap();
        f.append(&[5u8; 5000]).unwrap();
        fs.create(Path::new("/db/b")).unwrap();
    };
    for seed in 0..20 {
        let one = crashed(seed, history);
        let two = crashed(seed, history);
        assert_eq!(
            one.list_dir(Path::new("/db")).unwrap(),
            two.list_dir(Path::new("/db")).unwrap()
        );
        assert_eq!(
            one.read(Path::new("/db/a")).ok(),
            two.read(Path::new("/db/a")).ok()
        );
    }
}

#[test]
fn unsynced_creation_may_be_lost_but_synced_creation_survives() {
    let mut outcomes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            let mut f = fs.create(Path::new("/db/synced")).unwrap();
            f.append(b"x").unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(Path::new("/db")).unwrap();
            let mut g = fs.create(Path::new("/db/loose")).unwrap();
            g.append(b"y").unwrap();
            g.sync_data().unwrap();
        });
        assert_eq!(fs.read(Path::new("/db/synced")).unwrap(), b"x");
        let loose = fs.exists(Path::new("/db/loose"));
        if loose {
            assert_eq!(fs.read(Path::new("/db/loose")).unwrap(), b"y");
        }
        outcomes.insert(loose);
    }
    assert_eq!(outcomes.len(), 2, "both outcomes must occur");
}

#[test]
fn rename_before_dir_sync_leaves_exactly_one_name_and_after_it_the_new_one() {
    let mut outcomes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            fs.write_durable(Path::new("/db/tmp"), b"new").unwrap();
            fs.write_durable(Path::new("/db/CURRENT"), b"old").unwrap();
            fs.rename(Path::new("/db/tmp"), Path::new("/db/CURRENT"))
                .unwrap();
        });
        let names = fs.list_dir(Path::new("/db")).unwrap();
        let current = fs.read(Path::new("/db/CURRENT")).unwrap();
        match current.as_slice() {
            b"old" => assert_eq!(names, vec!["CURRENT", "tmp"]),
            b"new" => assert_eq!(names, vec!["CURRENT"]),
            other => panic!("seed {seed}: unexpected contents {other:?}"),
        }
        outcomes.insert(current);
    }
    assert_eq!(outcomes.len(), 2);

    let fs = disk_with_dir();
    fs.write_durable(Path::new("/db/tmp"), b"new").unwrap();
    fs.rename(Path::new("/db/tmp"), Path::new("/db/CURRENT"))
        .unwrap();
    fs.sync_dir(Path::new("/db")).unwrap();
    fs.crash(1);
    assert_eq!(fs.read(Path::new("/db/CURRENT")).unwrap(), b"new");
    assert!(!fs.exists(Path::new("/db/tmp")));
}

#[test]
fn remove_and_hard_link_are_durable_only_after_dir_sync() {
    let mut link_outcomes = HashSet::new();
    let mut remove_outcomes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            fs.write_durable(Path::new("/db/a"), b"A").unwrap();
            fs.write_durable(Path::new("/db/gone"), b"G").unwrap();
            fs.hard_link(Path::new("/db/a"), Path::new("/db/b"))
                .unwrap();
            fs.remove_file(Path::new("/db/gone")).unwrap();
        });
        let linked = fs.exists(Path::new("/db/b"));
        if linked {
            assert_eq!(fs.read(Path::new("/db/b")).unwrap(), b"A");
        }
        link_outcomes.insert(linked);
        remove_outcomes.insert(fs.exists(Path::new("/db/gone")));
    }
    assert_eq!(link_outcomes.len(), 2);
    assert_eq!(remove_outcomes.len(), 2);

    let fs = disk_with_dir();
    fs.write_durable(Path::new("/db/a"), b"A").unwrap();
    fs.hard_link(Path::new("/db/a"), Path::new("/db/b"))
        .unwrap();
    fs.remove_file(Path::new("/db/a")).unwrap();
    fs.sync_dir(Path::new("/db")).unwrap();
    fs.crash(3);
    assert_eq!(fs.list_dir(Path::new("/db")).unwrap(), vec!["b"]);
    assert_eq!(fs.read(Path::new("/db/b")).unwrap(), b"A");
}

#[test]
fn hard_links_share_data() {
    let fs = disk_with_dir();
    let mut f = fs.create(Path::new("/db/a")).unwrap();
    fs.hard_link(Path::new("/db/a"), Path::new("/db/b"))
        .unwrap();
    f.append(b"shared").unwrap();
    assert_eq!(fs.read(Path::new("/db/b")).unwrap(), b"shared");
    assert!(
        fs.hard_link(Path::new("/db/a"), Path::new("/db/b"))
            .is_err()
    );
}

#[test]
fn a_file_in_a_directory_whose_entry_is_not_durable_can_vanish() {
    let mut outcomes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            fs.create_dir_all(Path::new("/db/sub")).unwrap();
            // The file and its entry in /db/sub are durable, but /db/sub
            // itself is not an entry of /db yet.
            fs.write_durable(Path::new("/db/sub/f"), b"f").unwrap();
        });
        let exists = fs.exists(Path::new("/db/sub/f"));
        assert_eq!(exists, fs.exists(Path::new("/db/sub")), "seed {seed}");
        outcomes.insert(exists);
    }
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn renaming_a_directory_moves_its_contents() {
    let fs = disk_with_dir();
    fs.create_dir_all(Path::new("/db/tmp/inner")).unwrap();
    fs.write_durable(Path::new("/db/tmp/inner/f"), b"f")
        .unwrap();
    fs.rename(Path::new("/db/tmp"), Path::new("/db/done"))
        .unwrap();
    assert_eq!(fs.read(Path::new("/db/done/inner/f")).unwrap(), b"f");
    assert!(!fs.exists(Path::new("/db/tmp")));
    fs.sync_dir(Path::new("/db/tmp/inner")).unwrap_err();
    // The entry "inner" was recorded in the directory now named "done":
    // syncing it under its new name makes the entry durable.
    fs.sync_dir(Path::new("/db/done")).unwrap();
    fs.sync_dir(Path::new("/db")).unwrap();
    for seed in 0..20 {
        fs.crash(seed);
        assert_eq!(fs.read(Path::new("/db/done/inner/f")).unwrap(), b"f");
    }
}

#[test]
fn truncation_since_the_last_sync_may_be_undone_by_a_crash() {
    let mut outcomes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            fs.write_durable(Path::new("/db/f"), b"0123456789").unwrap();
            let mut f = fs.open_append(Path::new("/db/f")).unwrap();
            f.truncate(4).unwrap();
        });
        let image = fs.read(Path::new("/db/f")).unwrap();
        assert!(image == b"0123456789" || image == b"0123", "{image:?}");
        outcomes.insert(image);
    }
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn unsynced_overwrites_of_preallocated_space_keep_the_durable_size() {
    let path = Path::new("/db/log");
    let head = b"synced".to_vec();
    let written: Vec<u8> = (0..9_000u32).map(|i| (i % 251) as u8 + 1).collect();
    let size = 20_000;
    let (mut lost_all, mut kept_all, mut kept_some, mut torn) = (false, false, false, false);
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            let mut f = fs.create(path).unwrap();
            f.append(&head).unwrap();
            f.preallocate(size as u64).unwrap();
            f.sync_data().unwrap();
            fs.sync_dir(Path::new("/db")).unwrap();
            assert_eq!(f.len(), head.len() as u64);
            f.append(&written).unwrap();
        });
        let image = fs.read(path).unwrap();
        assert_eq!(image.len(), size, "seed {seed}: the synced size changed");
        assert!(image.starts_with(&head), "seed {seed}");
        let region = &image[head.len()..head.len() + written.len()];
        assert!(
            image[head.len() + written.len()..].iter().all(|&b| b == 0),
            "seed {seed}: bytes appeared past the write"
        );
        // A prefix of the write, then the old zeros; only the last chunk of
        // the prefix may be damaged.
        let kept = region.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        let damaged_from = region
            .iter()
            .zip(&written)
            .position(|(a, b)| a != b)
            .unwrap_or(written.len());
        match kept {
            0 => lost_all = true,
            n if n == written.len() && region == written.as_slice() => kept_all = true,
            _ => kept_some = true,
        }
        if damaged_from < kept {
            torn = true;
            assert!(kept - damaged_from <= TORN_CHUNK_BYTES_MAX, "seed {seed}");
        }
    }
    assert!(lost_all && kept_all && kept_some && torn);
}

#[test]
fn a_sync_makes_exactly_the_volatile_image_durable_after_any_changes() {
    let path = Path::new("/db/f");
    let mut rng = SimRng::new(11);
    for round in 0..200u64 {
        let fs = disk_with_dir();
        let mut f = fs.create(path).unwrap();
        fs.sync_dir(Path::new("/db")).unwrap();
        for _ in 0..1 + rng.below(12) {
            match rng.below(4) {
                0 => f.truncate(rng.below(3000)).unwrap(),
                1 => f.preallocate(rng.below(6000)).unwrap(),
                2 => f.sync_data().unwrap(),
                _ => {
                    let mut data = vec![0u8; rng.below_usize(700)];
                    rng.fill(&mut data);
                    f.append(&data).unwrap();
                }
            }
        }
        f.sync_data().unwrap();
        let expected = fs.read(path).unwrap();
        assert_eq!(fs.durable_len(path).unwrap(), expected.len() as u64);
        fs.crash(round);
        assert_eq!(fs.read(path).unwrap(), expected, "round {round}");
    }
}

#[test]
fn an_unsynced_preallocation_may_be_lost() {
    let mut sizes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            fs.write_durable(Path::new("/db/f"), b"abc").unwrap();
            let mut f = fs.open_append(Path::new("/db/f")).unwrap();
            f.preallocate(64).unwrap();
        });
        // The zeros may come back torn, like any unsynced change: the model
        // errs on the harsh side.
        let image = fs.read(Path::new("/db/f")).unwrap();
        assert!(image.starts_with(b"abc"), "{image:?}");
        sizes.insert(image.len());
    }
    assert!(sizes.contains(&3) && sizes.contains(&64), "{sizes:?}");
}

#[test]
fn handles_opened_before_a_crash_fail_afterwards() {
    let fs = disk_with_dir();
    fs.write_durable(Path::new("/db/f"), b"abc").unwrap();
    let mut writer = fs.open_append(Path::new("/db/f")).unwrap();
    let reader = fs.open_read(Path::new("/db/f")).unwrap();
    assert_eq!(reader.as_slice(), Some(&b"abc"[..]));
    fs.crash(0);
    assert!(writer.append(b"x").is_err());
    assert!(writer.sync_data().is_err());
    assert!(writer.truncate(0).is_err());
    let mut buf = [0u8; 1];
    assert!(reader.read_exact_at(&mut buf, 0).is_err());
    assert_eq!(reader.as_slice(), None);
    // New handles work.
    let mut writer = fs.open_append(Path::new("/db/f")).unwrap();
    writer.append(b"d").unwrap();
    assert_eq!(fs.read(Path::new("/db/f")).unwrap(), b"abcd");
}

#[test]
fn a_session_handle_stops_working_at_the_next_crash() {
    let fs = disk_with_dir();
    let session = fs.session();
    session.write_durable(Path::new("/db/a"), b"a").unwrap();
    fs.crash(0);
    assert!(session.create(Path::new("/db/b")).is_err());
    assert!(session.remove_file(Path::new("/db/a")).is_err());
    assert!(
        session
            .rename(Path::new("/db/a"), Path::new("/db/c"))
            .is_err()
    );
    assert!(session.sync_dir(Path::new("/db")).is_err());
    assert!(!session.exists(Path::new("/db/a")));
    // The disk itself, and a new session, still work.
    assert!(fs.exists(Path::new("/db/a")));
    assert_eq!(fs.session().list_dir(Path::new("/db")).unwrap(), vec!["a"]);
}

#[test]
fn nth_write_fails_once_and_writes_nothing() {
    let fs = disk_with_dir();
    let mut f = fs.create(Path::new("/db/f")).unwrap();
    fs.fail_nth_write(2);
    f.append(b"a").unwrap();
    assert!(f.append(b"b").is_err());
    f.append(b"c").unwrap();
    assert_eq!(fs.read(Path::new("/db/f")).unwrap(), b"ac");
    assert_eq!(f.len(), 2);
}

#[test]
fn a_failed_data_sync_leaves_the_data_volatile() {
    let fs = disk_with_dir();
    let mut f = fs.create(Path::new("/db/f")).unwrap();
    fs.sync_dir(Path::new("/db")).unwrap();
    f.append(b"abc").unwrap();
    fs.fail_nth_data_sync(1);
    assert!(f.sync_data().is_err());
    assert_eq!(fs.durable_len(Path::new("/db/f")).unwrap(), 0);
    f.sync_data().unwrap();
    assert_eq!(fs.durable_len(Path::new("/db/f")).unwrap(), 3);
}

#[test]
fn a_failed_dir_sync_leaves_the_entries_volatile() {
    let mut outcomes = HashSet::new();
    for seed in 0..CRASH_SEEDS {
        let fs = crashed(seed, |fs| {
            fs.create(Path::new("/db/f")).unwrap();
            fs.fail_nth_dir_sync(1);
            assert!(fs.sync_dir(Path::new("/db")).is_err());
        });
        outcomes.insert(fs.exists(Path::new("/db/f")));
    }
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn fail_all_syncs_lasts_until_a_crash_or_clear() {
    let fs = disk_with_dir();
    let mut f = fs.create(Path::new("/db/f")).unwrap();
    fs.fail_all_syncs();
    for _ in 0..3 {
        assert!(f.sync_data().is_err());
        assert!(fs.sync_dir(Path::new("/db")).is_err());
    }
    fs.clear_faults();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/db")).unwrap();
    fs.fail_all_syncs();
    fs.crash(4);
    fs.sync_dir(Path::new("/db")).unwrap();
    assert_eq!(fs.stats().crashes, 1);
}

#[test]
fn namespace_operations_behave_like_posix() {
    let fs = SimFileSystem::new();
    assert!(fs.create(Path::new("/missing/f")).is_err());
    fs.create_dir_all(Path::new("/db/x/y")).unwrap();
    fs.create_dir_all(Path::new("/db/x")).unwrap();
    assert!(fs.exists(Path::new("/db/x/y")));
    fs.create(Path::new("/db/b")).unwrap();
    fs.create(Path::new("/db/a")).unwrap();
    assert_eq!(fs.list_dir(Path::new("/db")).unwrap(), vec!["a", "b", "x"]);
    assert!(fs.list_dir(Path::new("/nope")).is_err());
    assert!(fs.open_append(Path::new("/db/c")).is_err());
    assert!(fs.open_read(Path::new("/db/x")).is_err());
    assert!(fs.remove_file(Path::new("/db/x")).is_err());
    assert!(fs.create_dir_all(Path::new("/db/a/z")).is_err());
    assert!(fs.rename(Path::new("/db/a"), Path::new("/db/x")).is_err());
    assert!(
        fs.rename(Path::new("/db/x"), Path::new("/db/x/y/z"))
            .is_err()
    );

    let mut f = fs.create(Path::new("/db/./a")).unwrap();
    f.append(b"hello").unwrap();
    assert_eq!(fs.read(Path::new("/db//a")).unwrap(), b"hello");
    // Creating an existing file truncates it (same inode).
    let g = fs.create(Path::new("/db/a")).unwrap();
    assert_eq!(g.len(), 0);
    // Each handle keeps its own position, like a file descriptor's offset.
    assert_eq!(f.len(), 5);

    let reader = fs.open_read(Path::new("/db/b")).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        reader.read_exact_at(&mut buf, 0).unwrap_err().kind(),
        io::ErrorKind::UnexpectedEof
    );
}

#[test]
fn corrupt_changes_both_images_within_the_file() {
    let fs = disk_with_dir();
    fs.write_durable(Path::new("/db/f"), b"abcdef").unwrap();
    fs.corrupt(Path::new("/db/f"), 4, b"XYZ").unwrap();
    assert_eq!(fs.read(Path::new("/db/f")).unwrap(), b"abcdXY");
    fs.crash(0);
    assert_eq!(fs.read(Path::new("/db/f")).unwrap(), b"abcdXY");
}

#[test]
fn stats_count_successful_operations() {
    let fs = disk_with_dir();
    let mut f = fs.create(Path::new("/db/f")).unwrap();
    f.append(b"abc").unwrap();
    f.append(b"de").unwrap();
    f.sync_data().unwrap();
    fs.fail_nth_data_sync(1);
    let _ = f.sync_data();
    let stats = fs.stats();
    assert_eq!(stats.appends, 2);
    assert_eq!(stats.appended_bytes, 5);
    assert_eq!(stats.data_syncs, 1);
    assert_eq!(stats.dir_syncs, 1);
}
