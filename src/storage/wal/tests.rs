//! The rules of the log format and of recovery, one test per rule.

use std::path::{Path, PathBuf};

use super::format::{self, BLOCK_BYTES, FragmentType, HEADER_BYTES};
use super::reader::TornTail;
use super::recovery::{self, ReplayOutcome};
use super::writer::LogWriter;
use super::*;
use crate::storage::batch::{BATCH_HEADER_BYTES, WriteBatch};
use crate::storage::error::StorageError;
use crate::storage::fs::FileSystem;
use crate::storage::sim::{SimFileSystem, SimRng};
use crate::storage::types::SequenceNumber;

mod fuzz_inputs;

fn dir() -> &'static Path {
    Path::new("/db")
}

fn disk() -> SimFileSystem {
    let fs = SimFileSystem::new();
    fs.create_dir_all(dir()).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

/// A one-put batch whose encoded record is exactly `record_len` bytes.
fn batch_of_record_len(marker: u8, record_len: usize) -> WriteBatch {
    // header + kind + key len varint + 1-byte key + value len varint + value
    let fixed = BATCH_HEADER_BYTES + 1 + 1 + 1;
    let mut value_len = record_len - fixed - 1;
    // A value length of 128 or more needs a longer varint.
    while fixed + varint_len(value_len) + value_len > record_len {
        value_len -= 1;
    }
    let mut batch = WriteBatch::new();
    batch.put(&[marker], &vec![marker; value_len]);
    assert_eq!(batch.encoded_len(), record_len, "cannot hit {record_len}");
    batch
}

fn varint_len(mut v: usize) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes a log of consecutive batches starting at sequence `first_seq`;
/// returns each record's end offset.
fn write_log(
    fs: &SimFileSystem,
    number: FileNumber,
    first_seq: SequenceNumber,
    batches: &[WriteBatch],
) -> Vec<u64> {
    let path = log_file_path(dir(), number);
    let file = fs.create(&path).unwrap();
    let mut writer = LogWriter::new(file, path, number);
    let mut seq = first_seq;
    let mut ends = Vec::new();
    for batch in batches {
        let mut record = Vec::new();
        batch.encode_into(seq, &mut record);
        writer.add_record(&record).unwrap();
        seq += batch.len() as u64;
        ends.push(writer.len());
    }
    writer.sync().unwrap();
    fs.sync_dir(dir()).unwrap();
    ends
}

fn small_batches(n: usize) -> Vec<WriteBatch> {
    (0..n)
        .map(|i| batch_of_record_len(i as u8, 40 + i))
        .collect()
}

fn replay_all(
    fs: &SimFileSystem,
    numbers: &[FileNumber],
) -> crate::storage::Result<(Vec<(SequenceNumber, WriteBatch)>, ReplayOutcome)> {
    let mut seen = Vec::new();
    let outcome = recovery::replay(fs, dir(), numbers, |seq, batch| {
        seen.push((seq, batch));
        Ok(())
    })?;
    Ok((seen, outcome))
}

fn expect_corruption(
    result: crate::storage::Result<impl std::fmt::Debug>,
) -> (PathBuf, u64, String) {
    match result {
        Err(StorageError::Corruption {
            file,
            offset,
            reason,
        }) => (file, offset, reason),
        other => panic!("expected corruption, got {other:?}"),
    }
}

fn torn(outcome: &ReplayOutcome) -> Option<&TornTail> {
    outcome.newest.as_ref().and_then(|tail| tail.torn.as_ref())
}

fn append_raw(fs: &SimFileSystem, number: FileNumber, bytes: &[u8]) {
    let mut file = fs.open_append(&log_file_path(dir(), number)).unwrap();
    file.append(bytes).unwrap();
    file.sync_data().unwrap();
}

#[test]
fn file_names_round_trip_and_list_in_order() {
    assert_eq!(log_file_name(12), "000012.log");
    assert_eq!(log_file_name(1_234_567), "1234567.log");
    assert_eq!(parse_log_file_name("000012.log"), Some(12));
    for bad in ["12.sst", ".log", "a12.log", "000012.log.tmp", "+1.log"] {
        assert_eq!(parse_log_file_name(bad), None, "{bad}");
    }
    let fs = disk();
    for name in ["000010.log", "000002.log", "MANIFEST", "000003.sst"] {
        fs.create(&dir().join(name)).unwrap();
    }
    assert_eq!(list_logs(&fs, dir()).unwrap(), vec![2, 10]);
}

#[test]
fn records_round_trip_in_order() {
    let fs = disk();
    let batches = small_batches(50);
    let ends = write_log(&fs, 1, 100, &batches);
    let (seen, outcome) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 50);
    for (i, (seq, batch)) in seen.iter().enumerate() {
        assert_eq!(*seq, 100 + i as u64);
        assert_eq!(batch, &batches[i]);
    }
    assert_eq!(outcome.last_sequence, Some(149));
    let tail = outcome.newest.unwrap();
    assert_eq!(tail.valid_len, *ends.last().unwrap());
    assert_eq!(tail.file_len, tail.valid_len);
    assert!(tail.torn.is_none());
}

#[test]
fn a_large_record_is_fragmented_across_blocks() {
    let fs = disk();
    let big = batch_of_record_len(1, 3 * BLOCK_BYTES);
    write_log(&fs, 1, 1, &[big.clone(), batch_of_record_len(2, 50)]);
    let bytes = fs.read(&log_file_path(dir(), 1)).unwrap();
    let kind_at = |offset: usize| bytes[offset + 6];
    assert_eq!(kind_at(0), FragmentType::First as u8);
    assert_eq!(kind_at(BLOCK_BYTES), FragmentType::Middle as u8);
    assert_eq!(kind_at(2 * BLOCK_BYTES), FragmentType::Middle as u8);
    assert_eq!(kind_at(3 * BLOCK_BYTES), FragmentType::Last as u8);
    let (seen, _) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, big);
    assert_eq!(seen[1].0, 2);
}

#[test]
fn a_record_exactly_filling_a_block_needs_no_padding() {
    let fs = disk();
    let exact = batch_of_record_len(1, BLOCK_BYTES - HEADER_BYTES);
    let ends = write_log(&fs, 1, 1, &[exact, batch_of_record_len(2, 30)]);
    assert_eq!(ends[0], BLOCK_BYTES as u64);
    let bytes = fs.read(&log_file_path(dir(), 1)).unwrap();
    assert_eq!(bytes[6], FragmentType::Full as u8);
    assert_eq!(bytes[BLOCK_BYTES + 6], FragmentType::Full as u8);
    assert_eq!(replay_all(&fs, &[1]).unwrap().0.len(), 2);
}

#[test]
fn a_block_tail_smaller_than_a_header_is_zero_padding() {
    let fs = disk();
    let leave = 5;
    let first = batch_of_record_len(1, BLOCK_BYTES - HEADER_BYTES - leave);
    let ends = write_log(&fs, 1, 1, &[first, batch_of_record_len(2, 30)]);
    assert_eq!(ends[1], (BLOCK_BYTES + HEADER_BYTES + 30) as u64);
    let bytes = fs.read(&log_file_path(dir(), 1)).unwrap();
    assert_eq!(&bytes[BLOCK_BYTES - leave..BLOCK_BYTES], &[0; 5]);
    assert_eq!(bytes[BLOCK_BYTES + 6], FragmentType::Full as u8);
    assert_eq!(replay_all(&fs, &[1]).unwrap().0.len(), 2);
}

#[test]
fn a_block_tail_of_exactly_a_header_gets_an_empty_first_fragment() {
    let fs = disk();
    let first = batch_of_record_len(1, BLOCK_BYTES - 2 * HEADER_BYTES);
    let second = batch_of_record_len(2, 30);
    write_log(&fs, 1, 1, &[first, second.clone()]);
    let bytes = fs.read(&log_file_path(dir(), 1)).unwrap();
    let at = BLOCK_BYTES - HEADER_BYTES;
    assert_eq!(bytes[at + 6], FragmentType::First as u8);
    assert_eq!(&bytes[at + 4..at + 6], &[0, 0]);
    assert_eq!(bytes[BLOCK_BYTES + 6], FragmentType::Last as u8);
    let (seen, _) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen[1].1, second);
}

#[test]
fn a_writer_continues_the_block_structure_of_an_existing_file() {
    let fs = disk();
    let first = batch_of_record_len(1, BLOCK_BYTES - 100);
    write_log(&fs, 1, 1, &[first]);
    let path = log_file_path(dir(), 1);
    let mut writer = LogWriter::new(fs.open_append(&path).unwrap(), path.clone(), 1);
    assert_eq!((writer.number(), writer.path()), (1, path.as_path()));
    let mut record = Vec::new();
    batch_of_record_len(2, 500).encode_into(2, &mut record);
    writer.add_record(&record).unwrap();
    let (seen, _) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 2);
}

#[test]
fn a_torn_tail_of_the_newest_log_is_reported_and_cut() {
    for cut_into_last in [1, 5, HEADER_BYTES, HEADER_BYTES + 3, 39] {
        let fs = disk();
        let ends = write_log(&fs, 1, 1, &small_batches(3));
        let path = log_file_path(dir(), 1);
        let full = fs.read(&path).unwrap();
        let keep = ends[1] as usize + cut_into_last;
        fs.write_durable(&path, &full[..keep]).unwrap();

        let (seen, outcome) = replay_all(&fs, &[1]).unwrap();
        assert_eq!(seen.len(), 2, "cut {cut_into_last}");
        let tail = outcome.newest.clone().unwrap();
        assert_eq!(tail.valid_len, ends[1]);
        assert_eq!(tail.file_len, keep as u64);
        assert_eq!(tail.torn.as_ref().unwrap().offset, ends[1]);

        assert!(recovery::cut_tail(&fs, &outcome).unwrap());
        assert_eq!(fs.durable_len(&path).unwrap(), ends[1]);
        let (seen, again) = replay_all(&fs, &[1]).unwrap();
        assert_eq!(seen.len(), 2);
        assert!(torn(&again).is_none());
        assert!(!recovery::cut_tail(&fs, &again).unwrap());
    }
}

#[test]
fn a_torn_multi_block_record_at_the_tail_is_cut_at_its_start() {
    let fs = disk();
    let batches = vec![
        batch_of_record_len(1, 100),
        batch_of_record_len(2, 2 * BLOCK_BYTES),
    ];
    let ends = write_log(&fs, 1, 1, &batches);
    let path = log_file_path(dir(), 1);
    let full = fs.read(&path).unwrap();
    // Garbage over the start of the second block: the record's MIDDLE fragment.
    fs.write_durable(&path, &full[..BLOCK_BYTES + 100]).unwrap();
    fs.corrupt(&path, BLOCK_BYTES as u64, &[0xAB; 20]).unwrap();
    let (seen, outcome) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 1);
    let tail = outcome.newest.unwrap();
    assert_eq!(tail.valid_len, ends[0]);
    let torn = tail.torn.unwrap();
    assert_eq!(torn.offset, BLOCK_BYTES as u64);
    assert!(
        torn.reason
            .contains(&format!("record starting at {}", ends[0])),
        "{}",
        torn.reason
    );
}

#[test]
fn damage_in_the_last_record_with_nothing_after_is_a_torn_tail() {
    let fs = disk();
    let ends = write_log(&fs, 1, 1, &small_batches(4));
    fs.corrupt(&log_file_path(dir(), 1), ends[2] + 20, b"X")
        .unwrap();
    let (seen, outcome) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(torn(&outcome).unwrap().offset, ends[2]);
}

#[test]
fn damage_followed_by_valid_records_is_corruption_at_the_damaged_record() {
    let fs = disk();
    let ends = write_log(&fs, 1, 1, &small_batches(5));
    let path = log_file_path(dir(), 1);
    fs.corrupt(&path, ends[1] + HEADER_BYTES as u64 + 3, b"X")
        .unwrap();
    let (file, offset, reason) = expect_corruption(replay_all(&fs, &[1]));
    assert_eq!(file, path);
    assert_eq!(offset, ends[1]);
    assert!(reason.contains("checksum"), "{reason}");
}

#[test]
fn a_damaged_length_with_valid_blocks_after_is_corruption() {
    let fs = disk();
    let batches: Vec<WriteBatch> = (0..40).map(|i| batch_of_record_len(i, 2000)).collect();
    let ends = write_log(&fs, 1, 1, &batches);
    let path = log_file_path(dir(), 1);
    // Make the third record's length run past the block.
    fs.corrupt(&path, ends[1] + 4, &[0xff, 0x7f]).unwrap();
    let (_, offset, reason) = expect_corruption(replay_all(&fs, &[1]));
    assert_eq!(offset, ends[1]);
    assert!(reason.contains("length"), "{reason}");
}

#[test]
fn damage_in_an_older_log_is_corruption_even_at_its_tail() {
    let fs = disk();
    let ends = write_log(&fs, 1, 1, &small_batches(3));
    write_log(&fs, 2, 4, &small_batches(2));
    let path = log_file_path(dir(), 1);
    let full = fs.read(&path).unwrap();
    fs.write_durable(&path, &full[..ends[2] as usize - 4])
        .unwrap();
    let (file, offset, reason) = expect_corruption(replay_all(&fs, &[1, 2]));
    assert_eq!(file, path);
    assert_eq!(offset, ends[1]);
    assert!(reason.contains("not the newest"), "{reason}");
    // As the newest log alone, the same damage is a torn tail.
    assert!(torn(&replay_all(&fs, &[1]).unwrap().1).is_some());
}

#[test]
fn sequence_numbers_continue_across_logs_or_the_logs_are_corrupt() {
    let fs = disk();
    write_log(&fs, 1, 1, &small_batches(3));
    write_log(&fs, 2, 4, &small_batches(2));
    let (seen, outcome) = replay_all(&fs, &[1, 2]).unwrap();
    let seqs: Vec<_> = seen.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    assert_eq!(outcome.newest.unwrap().number, 2);

    write_log(&fs, 3, 10, &small_batches(1));
    let (file, offset, reason) = expect_corruption(replay_all(&fs, &[1, 2, 3]));
    assert_eq!(file, log_file_path(dir(), 3));
    assert_eq!(offset, 0);
    assert!(reason.contains("expected 6"), "{reason}");
}

#[test]
fn a_record_whose_batch_does_not_decode_is_corruption() {
    let fs = disk();
    let ends = write_log(&fs, 1, 1, &small_batches(1));
    let path = log_file_path(dir(), 1);
    let mut writer = LogWriter::new(fs.open_append(&path).unwrap(), path.clone(), 1);
    writer.add_record(b"not a batch").unwrap();
    let (_, offset, reason) = expect_corruption(replay_all(&fs, &[1]));
    assert_eq!(offset, ends[0]);
    assert!(reason.contains("header"), "{reason}");
}

#[test]
fn fragments_out_of_order_are_corruption() {
    let tag = format::log_tag(1);
    let mut middle_first = Vec::new();
    format::encode_fragment(&mut middle_first, FragmentType::Middle, tag, b"abc");
    let mut full_inside_record = Vec::new();
    format::encode_fragment(&mut full_inside_record, FragmentType::First, tag, b"abc");
    format::encode_fragment(&mut full_inside_record, FragmentType::Full, tag, b"abc");
    for (bytes, at, expected) in [
        (middle_first, 0, "continues no record"),
        (
            full_inside_record,
            HEADER_BYTES as u64 + 3,
            "cut off by a new record",
        ),
    ] {
        let fs = disk();
        fs.write_durable(&log_file_path(dir(), 1), &bytes).unwrap();
        let (_, offset, reason) = expect_corruption(replay_all(&fs, &[1]));
        assert_eq!(offset, at);
        assert!(reason.contains(expected), "{reason}");
    }
}

#[test]
fn a_zero_filled_tail_is_a_clean_end_of_the_newest_log_only() {
    let fs = disk();
    let ends = write_log(&fs, 1, 1, &small_batches(3));
    append_raw(&fs, 1, &vec![0; 3 * BLOCK_BYTES + 17]);
    let (seen, only_first) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 3);
    let tail = only_first.newest.unwrap();
    assert_eq!(tail.valid_len, ends[2]);
    assert!(tail.torn.is_none());
    // Preallocated zeros are cut when the next log is created, so in a log
    // that is not the newest they are lost records, not a clean end.
    write_log(&fs, 2, 4, &small_batches(1));
    append_raw(&fs, 2, &[0; 7]);
    let (file, offset, reason) = expect_corruption(replay_all(&fs, &[1, 2]));
    assert!(file.ends_with("000001.log"), "{file:?}");
    assert_eq!(offset, ends[2]);
    assert!(reason.contains("not the newest"), "{reason}");
    // Cut to its last record, the older log is clean again.
    let path = log_file_path(dir(), 1);
    let mut handle = fs.open_append(&path).unwrap();
    handle.truncate(ends[2]).unwrap();
    handle.sync_data().unwrap();
    let (seen, outcome) = replay_all(&fs, &[1, 2]).unwrap();
    assert_eq!(seen.len(), 4);
    assert!(torn(&outcome).is_none());
}

#[test]
fn zeros_inside_a_record_are_a_torn_tail() {
    let fs = disk();
    let ends = write_log(
        &fs,
        1,
        1,
        &[
            batch_of_record_len(1, 60),
            batch_of_record_len(2, 2 * BLOCK_BYTES),
        ],
    );
    let path = log_file_path(dir(), 1);
    let full = fs.read(&path).unwrap();
    let mut image = full[..BLOCK_BYTES].to_vec();
    image.extend_from_slice(&vec![0; BLOCK_BYTES]);
    fs.write_durable(&path, &image).unwrap();
    let (seen, outcome) = replay_all(&fs, &[1]).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(outcome.newest.unwrap().valid_len, ends[0]);
}

#[test]
fn zeros_followed_by_valid_records_are_corruption() {
    let fs = disk();
    let batches: Vec<WriteBatch> = (0..40).map(|i| batch_of_record_len(i, 2000)).collect();
    let ends = write_log(&fs, 1, 1, &batches);
    fs.corrupt(&log_file_path(dir(), 1), ends[3], &vec![0; 3000])
        .unwrap();
    let (_, offset, _) = expect_corruption(replay_all(&fs, &[1]));
    assert_eq!(offset, ends[3]);
}

#[test]
fn records_of_an_older_log_in_a_reused_file_are_a_clean_end() {
    let fs = disk();
    let same_sizes: Vec<WriteBatch> = (0..30).map(|i| batch_of_record_len(i, 3000)).collect();
    write_log(&fs, 3, 1, &same_sizes);
    let stale = fs.read(&log_file_path(dir(), 3)).unwrap();
    let ends = write_log(&fs, 9, 500, &same_sizes[..10]);
    let fresh = fs.read(&log_file_path(dir(), 9)).unwrap();
    // The reused file: the new log over the start of the old one.
    let mut image = fresh.clone();
    image.extend_from_slice(&stale[fresh.len()..]);
    fs.write_durable(&log_file_path(dir(), 9), &image).unwrap();

    let (seen, outcome) = replay_all(&fs, &[9]).unwrap();
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0].0, 500);
    let tail = outcome.newest.unwrap();
    assert!(tail.torn.is_none(), "{:?}", tail.torn);
    assert_eq!(tail.valid_len, ends[9]);
    // As an older log it would have been cut to its last record.
    write_log(&fs, 10, 510, &same_sizes[..1]);
    let (_, offset, _) = expect_corruption(replay_all(&fs, &[9, 10]));
    assert_eq!(offset, ends[9]);
}

#[test]
fn a_stale_record_followed_by_records_of_this_log_is_corruption() {
    let fs = disk();
    write_log(&fs, 3, 1, &small_batches(1));
    let stale = fs.read(&log_file_path(dir(), 3)).unwrap();
    let ends = write_log(&fs, 9, 1, &small_batches(1));
    let mut image = fs.read(&log_file_path(dir(), 9)).unwrap();
    image.extend_from_slice(&stale);
    fs.write_durable(&log_file_path(dir(), 9), &image).unwrap();
    let path = log_file_path(dir(), 9);
    let mut writer = LogWriter::new(fs.open_append(&path).unwrap(), path, 9);
    let mut record = Vec::new();
    small_batches(1)[0].encode_into(2, &mut record);
    writer.add_record(&record).unwrap();
    let (_, offset, reason) = expect_corruption(replay_all(&fs, &[9]));
    assert_eq!(offset, ends[0]);
    assert!(reason.contains("older log"), "{reason}");
}

#[test]
fn replay_rejects_unordered_lists_and_reports_missing_files() {
    let fs = disk();
    write_log(&fs, 1, 1, &small_batches(1));
    assert!(matches!(
        replay_all(&fs, &[2, 1]),
        Err(StorageError::InvalidArgument(_))
    ));
    assert!(matches!(
        replay_all(&fs, &[1, 5]),
        Err(StorageError::Io { .. })
    ));
    let empty = replay_all(&fs, &[]).unwrap().1;
    assert_eq!(empty.batches, 0);
    assert!(empty.newest.is_none());
}

#[test]
fn an_empty_log_replays_nothing_cleanly() {
    let fs = disk();
    write_log(&fs, 4, 1, &[]);
    let (seen, outcome) = replay_all(&fs, &[4]).unwrap();
    assert!(seen.is_empty());
    let tail = outcome.newest.unwrap();
    assert_eq!((tail.valid_len, tail.file_len), (0, 0));
    assert!(tail.torn.is_none());
}

#[test]
fn verify_counts_every_record_and_reports_the_torn_tail() {
    let fs = disk();
    let ends = write_log(&fs, 1, 1, &small_batches(3));
    write_log(&fs, 2, 4, &small_batches(4));
    append_raw(&fs, 2, b"garbage");
    let report = recovery::verify(&fs, dir(), &[1, 2]).unwrap();
    assert_eq!(report.batches, 7);
    assert_eq!(report.entries, 7);
    assert_eq!(report.last_sequence, Some(7));
    assert!(report.record_bytes > 0);
    assert!(torn(&report).is_some());
    fs.corrupt(&log_file_path(dir(), 1), ends[0] + 15, b"?")
        .unwrap();
    expect_corruption(recovery::verify(&fs, dir(), &[1, 2]));
}

#[test]
fn random_damage_never_panics_and_never_yields_a_wrong_batch() {
    let batches: Vec<WriteBatch> = (0..30u8)
        .map(|i| batch_of_record_len(i, 20 + (i as usize * 977) % 9000))
        .collect();
    let fs = disk();
    write_log(&fs, 1, 1, &batches);
    let pristine = fs.read(&log_file_path(dir(), 1)).unwrap();
    let mut rng = SimRng::new(99);
    for _ in 0..200 {
        let mut image = pristine.clone();
        let at = rng.below_usize(image.len());
        let n = 1 + rng.below_usize(20);
        for byte in image.iter_mut().skip(at).take(n) {
            *byte = rng.next_u64() as u8;
        }
        if rng.coin() {
            image.truncate(rng.below_usize(image.len() + 1));
        }
        fs.write_durable(&log_file_path(dir(), 1), &image).unwrap();
        if let Ok((seen, _)) = replay_all(&fs, &[1]) {
            for (i, (seq, batch)) in seen.iter().enumerate() {
                assert_eq!(*seq, 1 + i as u64);
                assert_eq!(batch, &batches[i]);
            }
        }
    }
}
