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
//!   [`WriteFile::sync_data`] returns `Ok`; so is the size a
//!   [`WriteFile::preallocate`] or [`WriteFile::truncate`] set;
//! - a file may be longer than what was appended to it (its *logical*
//!   length, [`WriteFile::len`]): [`WriteFile::preallocate`] extends it
//!   with zeros that appends then overwrite in place, because an overwrite
//!   needs no file-size update on `sync_data` and syncs faster;
//! - a created, renamed or removed name is durable only after
//!   [`FileSystem::sync_dir`] of its directory returns `Ok`;
//! - `rename` atomically replaces the target name.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, Write};
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
    /// Opens an existing file for writing from its start, keeping its bytes
    /// and its size: appends overwrite them in place, as they overwrite a
    /// preallocated file's zeros, and [`WriteFile::len`] starts at 0. The
    /// engine reuses an obsolete log this way (its pages are still cached and
    /// its blocks allocated, so an append neither zero-fills a new page nor
    /// allocates a block). A file system that cannot returns
    /// [`io::ErrorKind::Unsupported`], the default, and the engine then
    /// creates each log anew.
    fn open_overwrite(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let _ = path;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this file system cannot overwrite a file in place",
        ))
    }
    /// Opens an existing file for positional reads.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>>;
    /// Opens an existing file for positional reads that never memory-maps
    /// it: for files that may still be appended to or truncated while open
    /// (logs), where a mapping could fault instead of returning an error.
    fn open_read_unmapped(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        self.open_read(path)
    }
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
///
/// The handle writes at its *logical* length ([`WriteFile::len`]), which
/// starts at the file's size when opened. The file itself may be longer,
/// after [`WriteFile::preallocate`]: appends then overwrite its zero fill
/// in place.
pub trait WriteFile: Send + fmt::Debug {
    /// Writes all of `buf` at the logical length (extending the file if
    /// it reaches past its end) and advances the logical length.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes every byte written so far, and the file's size, durable
    /// (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Cuts (or zero-extends) the file to `len` bytes and sets the logical
    /// length there; later appends continue from it.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Extends the file with zeros to `len` bytes if it is shorter, without
    /// changing the logical length, so that later appends within it are
    /// overwrites that need no file-size update on `sync_data`. Readers of
    /// the file see the zeros; [`WriteFile::truncate`] to the logical length
    /// removes what was not used.
    fn preallocate(&mut self, len: u64) -> io::Result<()>;
    /// Asks the operating system to start writing what was appended since
    /// the last call to the device, without waiting for it: a hint that
    /// lets a large file's final `sync_data` find most of its pages
    /// already written (RocksDB's `bytes_per_sync`). Durability still
    /// needs [`WriteFile::sync_data`]. The default does nothing.
    fn start_writeback(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Writes all of `buf` at `offset` (overwriting, or extending the
    /// file with zeros up to `offset` first), without moving the logical
    /// length: how a replica places an entry its primary appended at a
    /// known position of a pack file.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// The logical length: where the next append writes.
    fn len(&self) -> u64;
    /// Whether nothing has been appended.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// [`WriteFile::write_at`] for files held in a `Vec` (the file systems of
/// tests and fuzz targets).
pub(crate) fn write_into_vec(data: &mut Vec<u8>, offset: u64, buf: &[u8]) -> io::Result<()> {
    let start = usize::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let end = start + buf.len();
    if data.len() < end {
        data.resize(end, 0);
    }
    data[start..end].copy_from_slice(buf);
    Ok(())
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

impl OsFileSystem {
    fn open_read_with(&self, path: &Path, mmap: bool) -> io::Result<Arc<dyn ReadFile>> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let map = if mmap && len > 0 {
            // SAFETY: see the type's doc — only immutable files that the
            // engine never truncates or rewrites while open are mapped;
            // logs, which change, are opened with `open_read_unmapped`.
            Some(unsafe { memmap2::Mmap::map(&file)? })
        } else {
            None
        };
        Ok(Arc::new(OsReadFile { file, len, map }))
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
        Ok(Box::new(OsWriteFile {
            file,
            len: 0,
            size: 0,
            written_back: 0,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        // Not O_APPEND: a handle writes at its logical length, which is
        // below the end of the file once it was preallocated.
        let mut file = OpenOptions::new().write(true).open(path)?;
        let len = file.metadata()?.len();
        file.seek(io::SeekFrom::Start(len))?;
        Ok(Box::new(OsWriteFile {
            file,
            len,
            size: len,
            written_back: len,
        }))
    }

    fn open_overwrite(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        // Neither O_TRUNC nor O_APPEND: the cursor starts at 0 and the bytes
        // past it stay until appends overwrite them.
        let file = OpenOptions::new().write(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Box::new(OsWriteFile {
            file,
            len: 0,
            size,
            written_back: 0,
        }))
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        self.open_read_with(path, self.mmap)
    }

    fn open_read_unmapped(&self, path: &Path) -> io::Result<Arc<dyn ReadFile>> {
        self.open_read_with(path, false)
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

/// A file written at its cursor, which is always at the logical length.
#[derive(Debug)]
struct OsWriteFile {
    file: File,
    /// The logical length (the cursor).
    len: u64,
    /// The file's size: above `len` after a preallocation.
    size: u64,
    /// Where the next [`WriteFile::start_writeback`] starts.
    written_back: u64,
}

impl WriteFile for OsWriteFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)?;
        self.len += buf.len() as u64;
        self.size = self.size.max(self.len);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            self.file.write_all_at(buf, offset)?;
        }
        #[cfg(not(unix))]
        {
            self.file.seek(io::SeekFrom::Start(offset))?;
            self.file.write_all(buf)?;
            self.file.seek(io::SeekFrom::Start(self.len))?;
        }
        self.size = self.size.max(offset + buf.len() as u64);
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.seek(io::SeekFrom::Start(len))?;
        self.len = len;
        self.size = len;
        Ok(())
    }

    fn preallocate(&mut self, len: u64) -> io::Result<()> {
        if len <= self.size {
            return Ok(());
        }
        // `set_len` makes a sparse extension: measured on ext4 it syncs as
        // fast as overwriting zeros written beforehand (docs/format-wal.md),
        // without writing them. The cursor stays at the logical length.
        self.file.set_len(len)?;
        self.size = len;
        Ok(())
    }

    #[cfg(target_os = "linux")]
    fn start_writeback(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if self.len <= self.written_back {
            return Ok(());
        }
        let (Ok(from), Ok(len)) = (
            libc::off64_t::try_from(self.written_back),
            libc::off64_t::try_from(self.len - self.written_back),
        ) else {
            return Ok(());
        };
        // SAFETY: a plain system call on a file descriptor this value owns
        // (open for its whole lifetime); it reads no memory of ours.
        let done = unsafe {
            libc::sync_file_range(
                self.file.as_raw_fd(),
                from,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        self.written_back = self.len;
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
    fn write_at_fills_a_hole_without_moving_the_append_position() {
        let dir = tempfile::tempdir().unwrap();
        let fs = OsFileSystem::default();
        let path = dir.path().join("sparse");
        let mut file = fs.create(&path).unwrap();
        file.append(b"head").unwrap();
        file.write_at(10, b"tail").unwrap();
        file.write_at(6, b"mid").unwrap();
        assert_eq!(file.len(), 4);
        file.append(b"!!").unwrap();
        file.sync_data().unwrap();
        let read = fs.open_read(&path).unwrap();
        let mut all = vec![0; 14];
        read.read_exact_at(&mut all, 0).unwrap();
        assert_eq!(&all, b"head!!mid\0tail");
    }

    #[test]
    fn preallocated_space_is_zero_filled_and_overwritten_by_appends() {
        let fs = OsFileSystem::new(false);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut file = fs.create(&path).unwrap();
        file.append(b"abc").unwrap();
        file.preallocate(100).unwrap();
        file.preallocate(50).unwrap(); // never shrinks
        assert_eq!(file.len(), 3);
        file.append(b"de").unwrap();
        file.sync_data().unwrap();
        assert_eq!(file.len(), 5);
        let read = fs.open_read_unmapped(&path).unwrap();
        assert_eq!(read.len(), 100);
        let mut all = vec![1u8; 100];
        read.read_exact_at(&mut all, 0).unwrap();
        assert_eq!(&all[..5], b"abcde");
        assert!(all[5..].iter().all(|&b| b == 0));
        // Cutting to the logical length drops the unused zeros.
        file.truncate(file.len()).unwrap();
        file.append(b"f").unwrap();
        drop(file);
        assert_eq!(fs.open_read(&path).unwrap().len(), 6);
        // A reopened handle continues at the end of the file.
        let mut again = fs.open_append(&path).unwrap();
        again.preallocate(64).unwrap();
        again.append(b"g").unwrap();
        let read = fs.open_read_unmapped(&path).unwrap();
        let mut head = [0u8; 8];
        read.read_exact_at(&mut head, 0).unwrap();
        assert_eq!(&head, b"abcdefg\0");
        assert_eq!(read.len(), 64);
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
