//! The physical floor: what one 4 KiB write plus `fdatasync` costs on the
//! disk the engines write to, measured in the same run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use crate::Result;
use crate::stats::Latencies;

/// Bytes of each write.
pub const BLOCK: usize = 4096;

/// Latencies of `count` appends of 4 KiB to a growing file, each followed
/// by `fdatasync` (which must also commit the new file size).
pub fn append(dir: &Path, count: usize) -> Result<(Latencies, f64)> {
    let mut file = File::create(dir.join("raw-append"))?;
    let block = [0xA5u8; BLOCK];
    let mut lat = Latencies::new();
    let start = Instant::now();
    for _ in 0..count {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        lat.record(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((lat, count as f64 / secs))
}

/// A file of `bytes`, written and synced, so overwrites change no metadata.
pub fn prewritten(dir: &Path, name: &str, bytes: usize) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(name))?;
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    while written < bytes {
        let n = chunk.len().min(bytes - written);
        file.write_all_at(&chunk[..n], written as u64)?;
        written += n;
    }
    file.sync_all()?;
    Ok(file)
}

/// Overwrites 4 KiB blocks in place, cycling through `region` of `file`
/// (`blocks` blocks from block `first`), each followed by `fdatasync`.
pub fn overwrite(
    file: &File,
    first: usize,
    blocks: usize,
    count: usize,
) -> Result<(Latencies, f64)> {
    let block = [0x5Au8; BLOCK];
    let mut lat = Latencies::new();
    let start = Instant::now();
    for i in 0..count {
        let offset = ((first + i % blocks) * BLOCK) as u64;
        let t = Instant::now();
        file.write_all_at(&block, offset)?;
        file.sync_data()?;
        lat.record(t.elapsed());
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((lat, count as f64 / secs))
}

/// Two threads each overwriting their own region of one prewritten file;
/// returns the combined writes per second.
pub fn overwrite_two_threads(file: &File, blocks: usize, count: usize) -> Result<f64> {
    let start = Instant::now();
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..2)
            .map(|t| scope.spawn(move || overwrite(file, t * blocks, blocks, count).map(|_| ())))
            .collect();
        for handle in handles {
            match handle.join() {
                Ok(result) => result?,
                Err(_) => return Err("raw writer thread panicked".into()),
            }
        }
        Ok(())
    })?;
    Ok((2 * count) as f64 / start.elapsed().as_secs_f64())
}
