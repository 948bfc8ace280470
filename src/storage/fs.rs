//! The file-system boundary of the engine.
//!
//! Every byte the engine reads or writes goes through [`FileSystem`], so
//! tests can swap the operating system for a simulated disk that loses, tears
//! or reorders unsynced writes and fails `fsync` on command. The engine never
//! calls `std::fs` directly.
//!
//! The contract mirrors POSIX as the crash-safety arguments in
//! `docs/format.md` rely on it:
//! - data appended to a [`WriteFile`] is durable only after
//!   [`WriteFile::sync_data`] returns `Ok`;
//! - a created, renamed or removed name is durable only after
//!   [`FileSystem::sync_dir`] of its directory returns `Ok`;
//! - `rename` atomically replaces the target name.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;

/// Operations on named files and directories.
pub trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// Creates `path` and every missing parent directory.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates `path` for appending, truncating any existing file.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>>;
    /// Opens an existing file for positional reads.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>>;
    /// Atomically renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes `to` a second name of the file `from` (used by checkpoints).
    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// The names (not paths) of the entries of directory `path`, sorted.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>>;
    /// Whether a file or directory exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Makes the creations, renames and removals in directory `path` durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// A file open for appending.
pub trait WriteFile: Send + fmt::Debug {
    /// Appends all of `buf` at the end of the file.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte appended so far durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes; later appends continue from there.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Reserves space up to `len` bytes without changing the logical length,
    /// so later appends within it need no metadata update on `sync_data`.
    /// A file system that cannot preallocate returns `Ok` and does nothing.
    fn preallocate(&mut self, len: u64) -> io::Result<()>;
    /// The logical length: every byte appended (and not truncated) so far.
    fn len(&self) -> u64;
    /// Whether nothing has been appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file open for positional reads. Files read through this trait are
/// immutable while open: the engine never appends to or truncates them.
pub trait ReadFile: Send + Sync + fmt::Debug {
    /// The file's length in bytes.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fills `buf` from `offset`; reading past the end is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The whole file as one slice when it is memory-mapped (or held in
    /// memory), so readers can avoid a copy; `None` means "use `read_exact_at`".
    fn as_slice(&self) -> Option<&[u8]>;
}

/// The operating system's file system.
///
/// Reads of files opened with `mmap = true` go through a read-only mapping.
/// That is sound only because the engine maps nothing but immutable,
/// fully-synced segment files that it never truncates or rewrites while they
/// are open; with `mmap = false` every read is a `pread`.
#[derive(Debug, Clone, Copy)]
pub struct OsFileSystem {
    mmap: bool,
}

impl OsFileSystem {
    /// The OS file system, memory-mapping files opened for reading when `mmap` is true.
    pub fn new(mmap: bool) -> Self {
        Self { mmap }
    }
}

impl Default for OsFileSystem {
    fn default() -> Self {
        Self::new(true)
    }
}

impl FileSystem for OsFileSystem {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(OsWriteFile { file, len: 0 }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let file = OpenOptions::new().append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Box::new(OsWriteFile { file, len }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let map = if self.mmap && len > 0 {
            // SAFETY: see the type's doc — only immutable files that the
            // engine never truncates or rewrites while open are mapped.
            Some(unsafe { memmap2::Mmap::map(&file)? })
        } else {
            None
        };
        Ok(Arc::new(OsReadFile { file, len, map }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::hard_link(from, to)
    }

    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        // Opening a directory read-only and fsyncing it is how POSIX makes
        // entry changes durable.
        #[cfg(unix)]
        return File::open(path)?.sync_all();
        // Other platforms cannot open a directory as a file and make renames
        // durable by other means.
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(())
        }
    }
}

#[derive(Debug)]
struct OsWriteFile {
    file: File,
    len: u64,
}

impl WriteFile for OsWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        // Files opened with `create` write at the cursor, not in append mode.
        use std::io::Seek;
        self.file.seek(io::SeekFrom::Start(len))?;
        self.len = len;
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        // A portable `fallocate(KEEP_SIZE)` needs libc; until the WAL shows a
        // measured gain from it, preallocation is a no-op here.
        let _ = len;
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

#[derive(Debug)]
struct OsReadFile {
    file: File,
    len: u64,
    map: Option<memmap2::Mmap>,
}

impl ReadFile for OsReadFile {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if let Some(map) = &self.map {
            let start = usize::try_from(offset).map_err(|_| eof())?;
            let end = start.checked_add(buf.len()).ok_or_else(eof)?;
            let bytes = map.get(start..end).ok_or_else(eof)?;
            buf.copy_from_slice(bytes);
            return Ok(());
        }
        read_exact_at(&self.file, buf, offset)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        self.map.as_deref()
    }
}

fn eof() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the file",
    )
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(eof()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(fs: OsFileSystem) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        let mut file = fs.create(&path).unwrap();
        file.append(b"hello ").unwrap();
        file.append(b"world").unwrap();
        file.sync_data().unwrap();
        assert_eq!(file.len(), 11);
        file.truncate(5).unwrap();
        file.append(b"!").unwrap();
        drop(file);
        fs.sync_dir(dir.path()).unwrap();

        let read = fs.open_read(&path).unwrap();
        assert_eq!(read.len(), 6);
        let mut buf = [0u8; 3];
        read.read_exact_at(&mut buf, 3).unwrap();
        assert_eq!(&buf, b"lo!");
        assert!(read.read_exact_at(&mut buf, 4).is_err());
        assert_eq!(read.as_slice().is_some(), fs.mmap);

        let mut append = fs.open_append(&path).unwrap();
        assert_eq!(append.len(), 6);
        append.append(b"?").unwrap();
        drop(append);
        fs.hard_link(&path, &dir.path().join("b")).unwrap();
        fs.rename(&dir.path().join("b"), &dir.path().join("c"))
            .unwrap();
        assert_eq!(fs.list_dir(dir.path()).unwrap(), vec!["a", "c"]);
        assert_eq!(fs.open_read(&dir.path().join("c")).unwrap().len(), 7);
        fs.remove_file(&path).unwrap();
        assert!(!fs.exists(&path));
    }

    #[test]
    fn os_file_system_round_trips_with_mmap() {
        round_trip(OsFileSystem::new(true));
    }

    #[test]
    fn os_file_system_round_trips_with_pread() {
        round_trip(OsFileSystem::new(false));
    }
}
