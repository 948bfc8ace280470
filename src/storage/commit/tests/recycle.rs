//! Log recycling: an obsolete log kept by the pipeline becomes a later log,
//! renamed and overwritten from its start, and its earlier life's records
//! never come back.

use super::*;
use crate::storage::fs::{ReadFile, WriteFile};

fn recycling(preallocate: u64) -> CommitOptions {
    CommitOptions {
        log_preallocate_bytes: preallocate,
        log_recycle_files: 1,
        ..options(Durability::Sync)
    }
}

fn files(pipeline: &CommitPipeline) -> &LogFiles {
    match &pipeline.shared.backing {
        Backing::Files(files) => files,
        Backing::Memory { .. } => panic!("a file-backed pipeline"),
    }
}

/// A pipeline (no preallocation) whose log 1 holds 20 batches (800
/// entries), now obsolete and kept; log 2 is current.
fn with_kept_log(fs: &SimFileSystem) -> CommitPipeline {
    let (apply, _) = recording_apply();
    let pipeline =
        CommitPipeline::open(Arc::new(fs.clone()), dir(), 1, 0, recycling(0), apply).unwrap();
    for i in 0..20u8 {
        pipeline.commit(batch(&[i], 40), None).unwrap();
    }
    pipeline.switch_log(2).unwrap();
    assert!(pipeline.recycle_log(1));
    pipeline
}

#[test]
fn a_kept_log_becomes_the_next_log_and_replays_only_its_new_records() {
    let fs = disk();
    let pipeline = with_kept_log(&fs);
    let old_image = fs.read(&log_file_path(dir(), 1)).unwrap();
    assert_eq!(
        list_logs(&fs, dir()).unwrap(),
        vec![1, 2],
        "kept under its name"
    );
    pipeline.commit(batch(b"two", 1), None).unwrap();

    pipeline.switch_log(3).unwrap();
    assert_eq!(
        list_logs(&fs, dir()).unwrap(),
        vec![2, 3],
        "log 1 is log 3 now"
    );
    assert!(files(&pipeline).recycled().is_empty());
    pipeline.commit(batch(b"three", 1), None).unwrap();
    pipeline.commit(batch(b"three", 2), None).unwrap();
    let (number, written) = pipeline.log_written().unwrap();
    assert_eq!(number, 3);
    // Overwritten from the start; past the new records, the old ones remain.
    let image = fs.read(&log_file_path(dir(), 3)).unwrap();
    assert_eq!(image.len(), old_image.len());
    assert_eq!(image[written as usize..], old_image[written as usize..]);
    drop(pipeline);

    for seed in 0..50 {
        fs.crash(seed);
        let seqs: Vec<SequenceNumber> = replay_dir_from(&fs, 2).iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![801, 802, 803], "seed {seed}");
    }
}

#[test]
fn a_reused_log_is_cut_to_its_records_when_the_next_one_replaces_it() {
    let fs = disk();
    let pipeline = with_kept_log(&fs);
    pipeline.switch_log(3).unwrap();
    pipeline.commit(batch(b"three", 1), None).unwrap();
    let (_, written) = pipeline.log_written().unwrap();
    pipeline.switch_log(4).unwrap();
    let path = log_file_path(dir(), 3);
    assert_eq!(fs.read(&path).unwrap().len() as u64, written);
    assert_eq!(fs.durable_len(&path).unwrap(), written);
    pipeline.commit(batch(b"four", 1), None).unwrap();
    drop(pipeline);
    // Log 3 is now an older log: it must end at its record, or recovery
    // would call the earlier life's records damage.
    let seqs: Vec<SequenceNumber> = replay_dir_from(&fs, 2).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![801, 802]);
}

#[test]
fn at_most_the_configured_logs_are_kept_and_a_reused_one_is_never_kept_again() {
    let fs = disk();
    let (apply, _) = recording_apply();
    let pipeline =
        CommitPipeline::open(Arc::new(fs.clone()), dir(), 1, 0, recycling(4096), apply).unwrap();
    pipeline.switch_log(2).unwrap();
    pipeline.switch_log(3).unwrap();
    assert!(pipeline.recycle_log(1));
    assert!(pipeline.recycle_log(1), "asking again about a kept log");
    assert!(!pipeline.recycle_log(2), "one log is kept at most");
    fs.remove_file(&log_file_path(dir(), 2)).unwrap();
    assert_eq!(files(&pipeline).recycled(), vec![1]);

    pipeline.switch_log(4).unwrap();
    assert_eq!(list_logs(&fs, dir()).unwrap(), vec![3, 4]);
    // A deletion pass that listed log 1 before the switch renamed it.
    assert!(pipeline.recycle_log(1), "must not be deleted or kept again");
    assert!(files(&pipeline).recycled().is_empty());
    // The next obsolete log is kept.
    assert!(pipeline.recycle_log(3));
    assert_eq!(files(&pipeline).recycled(), vec![3]);
    // A preallocation longer than the kept log extends it.
    pipeline.switch_log(5).unwrap();
    assert_eq!(fs.read(&log_file_path(dir(), 5)).unwrap().len(), 4096);
}

#[test]
fn without_recycling_or_in_memory_nothing_is_kept() {
    let fs = disk();
    let (pipeline, _) = open(&fs, Durability::Sync);
    pipeline.switch_log(2).unwrap();
    assert!(!pipeline.recycle_log(1));
    let (apply, _) = recording_apply();
    let memory = CommitPipeline::open(
        Arc::new(fs.clone()),
        dir(),
        10,
        0,
        CommitOptions {
            log_recycle_files: 1,
            ..options(Durability::InMemory)
        },
        apply,
    )
    .unwrap();
    memory.switch_log(11).unwrap();
    assert!(!memory.recycle_log(10));
}

/// A file system that cannot overwrite in place (the trait's default).
#[derive(Debug)]
struct AppendOnly(SimFileSystem);

impl FileSystem for AppendOnly {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.0.create_dir_all(path)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
        self.0.create(path)
    }
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
        self.0.open_append(path)
    }
    fn open_read(&self, path: &Path) -> std::io::Result<Arc<dyn ReadFile>> {
        self.0.open_read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.0.remove_file(path)
    }
    fn hard_link(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.0.hard_link(from, to)
    }
    fn list_dir(&self, path: &Path) -> std::io::Result<Vec<String>> {
        self.0.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.exists(path)
    }
    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.0.sync_dir(path)
    }
}

#[test]
fn a_file_system_that_cannot_overwrite_gets_a_new_log_and_loses_the_kept_one() {
    let fs = disk();
    let (apply, _) = recording_apply();
    let pipeline = CommitPipeline::open(
        Arc::new(AppendOnly(fs.clone())),
        dir(),
        1,
        0,
        recycling(4096),
        apply,
    )
    .unwrap();
    pipeline.commit(batch(b"one", 1), None).unwrap();
    pipeline.switch_log(2).unwrap();
    assert!(pipeline.recycle_log(1));
    pipeline.switch_log(3).unwrap();
    assert_eq!(list_logs(&fs, dir()).unwrap(), vec![2, 3]);
    assert_eq!(fs.read(&log_file_path(dir(), 3)).unwrap(), vec![0; 4096]);
    pipeline.commit(batch(b"three", 1), None).unwrap();
    drop(pipeline);
    let seqs: Vec<SequenceNumber> = replay_dir_from(&fs, 2).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![2]);
}
