//! The file operations persistence performs, behind a small trait (the
//! shape of tikv/raft-engine's `env::FileSystem`), so tests can make any of
//! them fail deterministically (see [`super::FaultyFileSystem`]).
//!
//! Only writes go through it — create, positioned write, fsync, truncate,
//! rename, remove, directory fsync: what the WAL, snapshots and the node
//! file need to replace or append to files safely. Reads (recovery, loading
//! a snapshot) use `std::fs` directly: a failed read stops the start with
//! the file's name, there is no state to get wrong.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A file opened for writing.
pub(crate) trait WritableFile: Send + Sync {
    /// Writes all of `buf` at byte `offset`. On error some prefix of `buf`
    /// may have reached the file (a short write).
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// fsync (data, and the metadata needed to read it back, such as the size).
    fn sync_data(&self) -> io::Result<()>;
    /// Truncates (or extends) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file at least `len` bytes long with its blocks reserved
    /// and reading as zeros (`fallocate`; zeros written where the file
    /// system cannot reserve); never shrinks it. A WAL segment is
    /// preallocated so appends do not change its size: `fdatasync` then
    /// need not write the size, and `ENOSPC` shows up at segment start.
    fn allocate(&self, len: u64) -> io::Result<()>;
}

/// Creating, replacing and deleting files.
pub(crate) trait FileSystem: Send + Sync + Debug {
    /// Creates `path` for writing, truncating it if it exists.
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>>;
    /// Opens the existing file `path` for writing, keeping its contents.
    fn open_for_write(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// fsyncs a directory: makes the creates, renames and removes in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StdFileSystem;

struct StdFile(File);

impl WritableFile for StdFile {
    #[cfg(unix)]
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.0, buf, offset)
    }

    #[cfg(not(unix))]
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = &self.0;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(buf)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let size = self.0.metadata()?.len();
        if size >= len {
            return Ok(());
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            let (Ok(offset), Ok(add)) = (libc::off_t::try_from(size), libc::off_t::try_from(len - size))
            else {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            };
            // Mode 0: reserve and extend the size. SAFETY: a plain syscall
            // on a descriptor this `File` owns and keeps open.
            if unsafe { libc::fallocate(self.0.as_raw_fd(), 0, offset, add) } == 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOSYS)) {
                return Err(e);
            }
        }
        zero_fill(self, size, len)
    }
}

/// Writes zeros over `from..to`: preallocation where `fallocate` is
/// unsupported, so the blocks exist and the size is final all the same.
fn zero_fill(file: &dyn WritableFile, from: u64, to: u64) -> io::Result<()> {
    const CHUNK: u64 = 1 << 20;
    let zeros = vec![0u8; CHUNK.min(to - from) as usize];
    let mut at = from;
    while at < to {
        let n = CHUNK.min(to - at);
        file.write_all_at(&zeros[..n as usize], at)?;
        at += n;
    }
    Ok(())
}

impl FileSystem for StdFileSystem {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>> {
        let f = OpenOptions::new().create(true).truncate(true).write(true).open(path)?;
        Ok(Arc::new(StdFile(f)))
    }

    fn open_for_write(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>> {
        Ok(Arc::new(StdFile(OpenOptions::new().write(true).open(path)?)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// `io::Write` over a [`WritableFile`], from its start: for writers that
/// produce a file front to back (snapshots, the node file).
pub(crate) struct FileWriter {
    file: Arc<dyn WritableFile>,
    pos: u64,
}

impl FileWriter {
    pub(crate) fn new(file: Arc<dyn WritableFile>) -> FileWriter {
        FileWriter { file, pos: 0 }
    }

    /// The file, to fsync it once everything is written.
    pub(crate) fn file(&self) -> &Arc<dyn WritableFile> {
        &self.file
    }
}

impl io::Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.pos)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
