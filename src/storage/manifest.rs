//! The manifest: the one file that says what the database consists of.
//!
//! It records the format version, the next file number, the last durable
//! sequence number, the oldest WAL file still needed for recovery, the
//! compaction pointer of each level, and every live segment file with its
//! level and metadata. It is small (one record per file), so every change
//! rewrites it whole instead of appending edits: recovery reads one
//! checksummed snapshot and never replays a log of edits.
//!
//! # Update protocol and why a crash cannot mix old and new
//!
//! [`write`] performs, in order:
//! 1. create `MANIFEST.tmp` (truncating any leftover) and append the full
//!    encoding;
//! 2. `sync_data` it, so its bytes are durable before any name points at it;
//! 3. `rename` it over `MANIFEST` (atomic replacement of the name);
//! 4. `sync_dir` the directory, so the rename itself is durable.
//!
//! A crash before step 3 leaves the name `MANIFEST` on the old, intact file;
//! the temporary file, complete or torn, is never read and is removed on the
//! next open. A crash after step 3 but before step 4 leaves the name on
//! either the old file or the new one — a rename is atomic, so never on a
//! mix — and the new file's contents were made durable in step 2, so either
//! is complete. After step 4 the new manifest is the durable one. The
//! checksum covers everything after the magic, so a medium that corrupts
//! the file anyway is reported as corruption, never read as a valid state.
//!
//! If any step fails the caller cannot know which manifest a crash would
//! leave, so it must stop writing (the version set latches the failure).
//! The directory itself must have been made durable in its parent when the
//! database was created; that is the engine's job.

// Nothing uses this module until the engine is assembled; the re-exports
// below are its interface.
#![cfg_attr(not(test), allow(dead_code, unused_imports))]

mod codec;
#[cfg(test)]
mod crash_tests;
#[cfg(test)]
pub(crate) mod test_fs;
#[cfg(test)]
mod tests;

use std::io;
use std::path::Path;

use bytes::Bytes;

pub(crate) use codec::{
    MANIFEST_BODY_BYTES_MAX, MANIFEST_FORMAT_VERSION, MANIFEST_HEADER_BYTES,
    MANIFEST_KEY_BYTES_MAX, MANIFEST_MAGIC, decode, encode,
};

use crate::storage::error::{Result, StorageError};
use crate::storage::fs::FileSystem;
use crate::storage::types::{FileNumber, SequenceNumber};
use crate::storage::version::{FileMeta, ObsoleteFiles, Version};

/// The manifest's name in the database directory.
pub(crate) const MANIFEST_FILE_NAME: &str = "MANIFEST";

/// The name the next manifest is written under before it is renamed.
pub(crate) const MANIFEST_TEMP_FILE_NAME: &str = "MANIFEST.tmp";

/// Everything a manifest records (the format version lives in the header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ManifestState {
    /// Every file number in the directory is below this.
    pub next_file_number: FileNumber,
    /// The largest sequence number whose data may be in a segment file;
    /// recovery continues numbering after it (or after the WAL's last).
    pub last_sequence: SequenceNumber,
    /// WAL files numbered below this hold nothing that is not in segment
    /// files and may be deleted.
    pub log_number: FileNumber,
    /// `(level, key)`: where the next compaction out of a level starts.
    pub compaction_pointers: Vec<(u32, Bytes)>,
    /// The live segment files.
    pub files: Vec<FileMeta>,
}

/// Reads the manifest of `dir`, or `None` if the directory has none.
///
/// Damage of any kind is [`StorageError::Corruption`]; a missing manifest is
/// not an error here because only the caller knows whether the directory is
/// meant to be new.
pub(crate) fn read(fs: &dyn FileSystem, dir: &Path) -> Result<Option<ManifestState>> {
    let path = dir.join(MANIFEST_FILE_NAME);
    let file = match fs.open_read(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StorageError::io("open", path, error)),
    };
    let size_max = MANIFEST_HEADER_BYTES + MANIFEST_BODY_BYTES_MAX;
    let len = usize::try_from(file.len())
        .ok()
        .filter(|&len| len <= size_max)
        .ok_or_else(|| {
            StorageError::corruption(
                &path,
                0,
                format!("manifest of {} bytes exceeds {size_max}", file.len()),
            )
        })?;
    let state = if let Some(bytes) = file.as_slice() {
        decode(bytes, &path)?
    } else {
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|error| StorageError::io("read", &path, error))?;
        decode(&bytes, &path)?
    };
    Ok(Some(state))
}

/// Makes `state` the durable manifest of `dir`; see the module doc for the
/// protocol. On error the durable manifest is the old or the new one and
/// the caller must not write again.
pub(crate) fn write(fs: &dyn FileSystem, dir: &Path, state: &ManifestState) -> Result<()> {
    let bytes = encode(state);
    let temp = dir.join(MANIFEST_TEMP_FILE_NAME);
    let mut file = fs
        .create(&temp)
        .map_err(|error| StorageError::io("create", &temp, error))?;
    file.append(&bytes)
        .map_err(|error| StorageError::io("append", &temp, error))?;
    file.sync_data()
        .map_err(|error| StorageError::io("fsync", &temp, error))?;
    drop(file);
    let path = dir.join(MANIFEST_FILE_NAME);
    fs.rename(&temp, &path)
        .map_err(|error| StorageError::io("rename", &path, error))?;
    fs.sync_dir(dir)
        .map_err(|error| StorageError::io("fsync directory", dir, error))
}

/// Removes a temporary manifest a crash left behind. It is never the
/// durable manifest (only a rename makes it one), so it holds nothing needed.
pub(crate) fn remove_leftover_temp(fs: &dyn FileSystem, dir: &Path) -> Result<()> {
    let temp = dir.join(MANIFEST_TEMP_FILE_NAME);
    match fs.remove_file(&temp) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(StorageError::io("remove", temp, error)),
    }
}

/// Fuzzing entry point: decodes arbitrary bytes as a manifest and checks
/// that decoding never panics, that whatever decodes re-encodes to the same
/// bytes, and that a decoded state always builds a version.
#[doc(hidden)]
pub fn fuzz_manifest_decode(data: &[u8]) {
    let path = Path::new("fuzz/MANIFEST");
    if let Ok(state) = decode(data, path) {
        assert_eq!(
            encode(&state),
            data,
            "a decoded manifest re-encodes to its bytes"
        );
        check_builds_version(&state);
    }
    // Most inputs fail the checksum; feed the body parser directly too.
    let body_offset = u64::try_from(MANIFEST_HEADER_BYTES).unwrap_or(u64::MAX);
    if let Ok(state) = codec::decode_body(data, body_offset, path) {
        let encoded = encode(&state);
        assert_eq!(
            encoded.get(MANIFEST_HEADER_BYTES..),
            Some(data),
            "a decoded body re-encodes to its bytes"
        );
        check_builds_version(&state);
    }
}

fn check_builds_version(state: &ManifestState) {
    let obsolete = ObsoleteFiles::new();
    let built = Version::from_files(&state.files, &state.compaction_pointers, &obsolete);
    assert!(
        built.is_ok(),
        "a decoded manifest must build a version: {built:?}"
    );
}
