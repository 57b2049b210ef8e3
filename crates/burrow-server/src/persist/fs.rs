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
