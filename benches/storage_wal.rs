//! Sync-write latency on the machine's disk: does preallocating the log help?
//!
//! Each iteration writes one 128-byte record (about one small commit) and
//! `fdatasync`s it, three ways:
//! - `append_growing`: append to a growing file, as the WAL does today
//!   (every sync also commits the new file size);
//! - `overwrite_prezeroed`: write inside a file that was zero-filled and
//!   synced beforehand (what a preallocated or recycled log would do; the
//!   file size never changes);
//! - `append_growing_4k`: the raw fsync latency of a 4 KiB append.
//!
//! Results and the decision are in `docs/format-wal.md` ("Preallocation").
#![allow(missing_docs)] // criterion_group! generates undocumented functions.
#![allow(clippy::unwrap_used)] // A benchmark that cannot set up should stop.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use nimbus::storage::fs::{FileSystem, OsFileSystem};

const RECORD_BYTES: usize = 128;
const PREZEROED_BYTES: u64 = 16 << 20;

fn sync_latency(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut group = c.benchmark_group("wal_sync_write");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));

    let fs = OsFileSystem::new(false);
    for (name, bytes) in [
        ("append_growing", RECORD_BYTES),
        ("append_growing_4k", 4096),
    ] {
        let mut file = fs.create(&dir.path().join(name)).unwrap();
        let record = vec![7u8; bytes];
        group.bench_function(name, |b| {
            b.iter(|| {
                file.append(&record).unwrap();
                file.sync_data().unwrap();
            })
        });
    }

    prezeroed(&mut group, dir.path());
    group.finish();
}

/// Positional writes are the Unix `FileExt`; elsewhere this variant is skipped.
#[cfg(unix)]
fn prezeroed(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    dir: &std::path::Path,
) {
    use std::os::unix::fs::FileExt;
    let path = dir.join("prezeroed");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let zeros = vec![0u8; 1 << 20];
    for chunk in 0..PREZEROED_BYTES / zeros.len() as u64 {
        file.write_all_at(&zeros, chunk * zeros.len() as u64)
            .unwrap();
    }
    file.sync_all().unwrap();
    let record = [7u8; RECORD_BYTES];
    let mut offset = 0u64;
    group.bench_function("overwrite_prezeroed", |b| {
        b.iter(|| {
            file.write_all_at(&record, offset).unwrap();
            file.sync_data().unwrap();
            offset = (offset + RECORD_BYTES as u64) % PREZEROED_BYTES;
        })
    });
}

#[cfg(not(unix))]
fn prezeroed(
    _group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    _dir: &std::path::Path,
) {
}

criterion_group!(benches, sync_latency);
criterion_main!(benches);
