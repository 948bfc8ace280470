//! Tests of the manifest encoding: round trips, detection of every kind of
//! damage, and the fuzz entry point on random and mutated inputs.

use std::path::Path;

use bytes::Bytes;
use proptest::prelude::*;

use super::codec::encode_unchecked;
use super::test_fs::MemFs;
use super::*;
use crate::storage::fs::FileSystem;
use crate::storage::version::testing::{TestRng, meta, proptest_config, random_file_set};

fn random_state(seed: u64) -> ManifestState {
    let mut rng = TestRng::new(seed);
    let (files, next_file_number, last_sequence) = random_file_set(&mut rng, 6);
    let mut compaction_pointers = Vec::new();
    for level in 1..7 {
        if rng.one_in(2) {
            compaction_pointers.push((level, rng.key()));
        }
    }
    ManifestState {
        next_file_number,
        last_sequence,
        log_number: rng.below(next_file_number + 1),
        compaction_pointers,
        files,
    }
}

fn sample_state() -> ManifestState {
    ManifestState {
        next_file_number: 10,
        last_sequence: 500,
        log_number: 7,
        compaction_pointers: vec![(1, Bytes::from_static(b"m"))],
        files: vec![
            meta(0, 3, "a", "q"),
            meta(1, 4, "b", "f"),
            meta(1, 5, "g", "k"),
        ],
    }
}

fn is_corruption(result: &crate::storage::Result<ManifestState>, len: usize) -> bool {
    match result {
        Err(StorageError::Corruption { file, offset, .. }) => {
            file == Path::new("MANIFEST") && *offset <= len as u64
        }
        _ => false,
    }
}

/// Re-frames `body` with a correct header and checksum, so tests reach the
/// body checks with arbitrary bodies.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    data.extend_from_slice(&MANIFEST_MAGIC);
    data.extend_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
    data.extend_from_slice(&u32::try_from(body.len()).unwrap().to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&data[8..]);
    hasher.update(body);
    data.extend_from_slice(&hasher.finalize().to_le_bytes());
    data.extend_from_slice(body);
    data
}

#[test]
fn the_header_layout_is_as_documented() {
    let data = encode(&sample_state());
    assert_eq!(&data[..8], b"NIMBMANI");
    assert_eq!(data[8..12], 1u32.to_le_bytes());
    let body_len = u32::from_le_bytes(data[12..16].try_into().unwrap()) as usize;
    assert_eq!(data.len(), MANIFEST_HEADER_BYTES + body_len);
    assert_eq!(frame(&data[MANIFEST_HEADER_BYTES..]), data);
    // next_file_number is the first body field.
    assert_eq!(data[20..28], 10u64.to_le_bytes());
}

#[test]
fn every_single_byte_corruption_is_detected() {
    for seed in 0..8 {
        let data = encode(&random_state(seed));
        for position in 0..data.len() {
            for mask in [0x01u8, 0x80, 0xff, 0x5a] {
                let mut damaged = data.clone();
                damaged[position] ^= mask;
                let result = decode(&damaged, Path::new("MANIFEST"));
                assert!(
                    is_corruption(&result, damaged.len()),
                    "seed {seed} byte {position} mask {mask:#x}: {result:?}"
                );
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_is_detected() {
    let data = encode(&random_state(42));
    for len in 0..data.len() {
        let result = decode(&data[..len], Path::new("MANIFEST"));
        assert!(is_corruption(&result, len), "length {len}: {result:?}");
    }
    let mut longer = data.clone();
    longer.push(0);
    assert!(is_corruption(
        &decode(&longer, Path::new("MANIFEST")),
        longer.len()
    ));
}

#[test]
fn absurd_lengths_are_rejected_before_allocating() {
    let mut huge_body = encode(&sample_state());
    huge_body[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let result = decode(&huge_body, Path::new("MANIFEST"));
    assert!(
        matches!(result, Err(StorageError::Corruption { offset: 12, .. })),
        "{result:?}"
    );

    // A body claiming 2^32-1 files in a few bytes.
    let mut body = Vec::new();
    body.extend_from_slice(&[0u8; 24]);
    body.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&u32::MAX.to_le_bytes());
    let result = decode(&frame(&body), Path::new("MANIFEST"));
    assert!(
        is_corruption(&result, body.len() + MANIFEST_HEADER_BYTES),
        "{result:?}"
    );

    // A key length beyond the limit.
    let mut body = Vec::new();
    body.extend_from_slice(&[0u8; 24]);
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&u32::MAX.to_le_bytes());
    let result = decode(&frame(&body), Path::new("MANIFEST"));
    assert!(
        matches!(result, Err(StorageError::Corruption { offset: 52, .. })),
        "{result:?}"
    );
}

#[test]
fn keys_up_to_the_limit_are_accepted_and_longer_ones_rejected() {
    let mut state = sample_state();
    state.files[2].largest = Bytes::from(vec![b'k'; MANIFEST_KEY_BYTES_MAX]);
    let data = encode(&state);
    assert_eq!(decode(&data, Path::new("MANIFEST")).unwrap(), state);
    state.files[2].largest = Bytes::from(vec![b'k'; MANIFEST_KEY_BYTES_MAX + 1]);
    let data = encode_unchecked(&state);
    assert!(is_corruption(
        &decode(&data, Path::new("MANIFEST")),
        data.len()
    ));
}

#[test]
fn well_framed_manifests_that_break_invariants_are_corruption() {
    type Damage = Box<dyn Fn(&mut ManifestState)>;
    let broken: Vec<(&str, Damage)> = vec![
        (
            "overlap in L1",
            Box::new(|s| s.files[2].smallest = Bytes::from_static(b"c")),
        ),
        ("duplicate number", Box::new(|s| s.files[1].number = 3)),
        ("number at next", Box::new(|s| s.files[0].number = 10)),
        ("seq past last", Box::new(|s| s.files[0].max_seq = 501)),
        ("missing level", Box::new(|s| s.files[0].level = 7)),
        (
            "inverted keys",
            Box::new(|s| s.files[0].largest = Bytes::new()),
        ),
        ("log past next", Box::new(|s| s.log_number = 11)),
        (
            "pointer level",
            Box::new(|s| s.compaction_pointers.push((9, Bytes::new()))),
        ),
        (
            "two pointers",
            Box::new(|s| s.compaction_pointers.push((1, Bytes::new()))),
        ),
    ];
    for (what, damage) in broken {
        let mut state = sample_state();
        damage(&mut state);
        let data = encode_unchecked(&state);
        let result = decode(&data, Path::new("MANIFEST"));
        assert!(is_corruption(&result, data.len()), "{what}: {result:?}");
    }
}

#[test]
fn read_reports_missing_and_damaged_manifests() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    fs.create_dir_all(dir).unwrap();
    assert_eq!(read(&fs, dir).unwrap(), None);
    write(&fs, dir, &sample_state()).unwrap();
    assert_eq!(read(&fs, dir).unwrap(), Some(sample_state()));
    let mut data = encode(&sample_state());
    data[30] ^= 1;
    fs.put(&dir.join(MANIFEST_FILE_NAME), data);
    match read(&fs, dir) {
        Err(StorageError::Corruption { file, .. }) => assert_eq!(file, dir.join("MANIFEST")),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn write_and_read_through_the_os_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let fs = crate::storage::fs::OsFileSystem::new(true);
    write(&fs, dir.path(), &sample_state()).unwrap();
    let mut state = sample_state();
    state.files.pop();
    write(&fs, dir.path(), &state).unwrap();
    assert_eq!(read(&fs, dir.path()).unwrap(), Some(state));
    assert_eq!(fs.list_dir(dir.path()).unwrap(), vec!["MANIFEST"]);
}

#[test]
#[should_panic(expected = "refusing to write an invalid manifest")]
fn encoding_an_invalid_state_panics() {
    let mut state = sample_state();
    state.files[0].number = 99;
    let _ = encode(&state);
}

proptest! {
    #![proptest_config(proptest_config(512))]

    #[test]
    fn random_states_round_trip(seed in any::<u64>()) {
        let state = random_state(seed);
        let data = encode(&state);
        prop_assert_eq!(decode(&data, Path::new("MANIFEST")).unwrap(), state);
        fuzz_manifest_decode(&data);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_manifest_decode(&data);
        let framed = frame(&data);
        fuzz_manifest_decode(&framed);
    }
}

proptest! {
    #![proptest_config(proptest_config(4096))]

    /// Mutations of valid manifests, re-framed with a correct checksum so
    /// they reach the body parser and the invariant checks.
    #[test]
    fn mutated_manifests_never_panic(seed in any::<u64>()) {
        let mut rng = TestRng::new(seed);
        let data = encode(&random_state(rng.next_u64()));
        let mut body = data[MANIFEST_HEADER_BYTES..].to_vec();
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 if !body.is_empty() => {
                    let at = rng.index(body.len());
                    body[at] = u8::try_from(rng.below(256)).unwrap();
                }
                1 if !body.is_empty() => {
                    let at = rng.index(body.len());
                    body.truncate(at);
                }
                2 => {
                    let at = rng.index(body.len() + 1);
                    body.insert(at, u8::try_from(rng.below(256)).unwrap());
                }
                _ if !body.is_empty() => {
                    // Small integer edits hit counts, lengths and levels.
                    let at = rng.index(body.len());
                    body[at] = body[at].wrapping_add(1);
                }
                _ => {}
            }
        }
        fuzz_manifest_decode(&frame(&body));
        fuzz_manifest_decode(&body);
    }
}
