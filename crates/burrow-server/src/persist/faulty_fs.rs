//! A [`FileSystem`] that fails on cue, for tests: the Nth write, fsync,
//! truncate, rename… (optionally only on paths containing some text) gets
//! EIO, ENOSPC or a short write, deterministically, or is slow, or stalls
//! until the test releases it. Everything else goes
//! to the real file system, so the files a test leaves behind are what a
//! crash at that point would leave, and recovery can be run on them.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::fs::{FileSystem, StdFileSystem, WritableFile};

/// The operations a fault can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsOp {
    /// `create` and `open_for_write`.
    Create,
    Write,
    Sync,
    SetLen,
    /// `allocate` (preallocation).
    Allocate,
    Rename,
    Remove,
    SyncDir,
}

/// What a fault does to the call it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Fails with EIO, changing nothing.
    Eio,
    /// Fails with ENOSPC, changing nothing.
    NoSpace,
    /// A write stores only its first `n` bytes, then fails with ENOSPC (as a
    /// write that filled the disk). On other operations, like `NoSpace`.
    Short(usize),
    /// The call takes this long, then succeeds: a slow or overloaded disk.
    Slow(Duration),
    /// The call blocks until [`FaultyFileSystem::release`] (or `clear`),
    /// then succeeds: a disk that is slow for exactly as long as a test
    /// needs, with no clock involved.
    Stall,
}

const EIO: i32 = 5;
const ENOSPC: i32 = 28;

/// One planned failure: the calls of `op` on matching paths, after
/// skipping `skip` of them, fail `times` times (`None`: until cleared).
#[derive(Debug, Clone)]
pub struct Fault {
    op: FsOp,
    injected: Injected,
    path_contains: Option<String>,
    skip: u64,
    times: Option<u64>,
}

impl Fault {
    /// Every call of `op` fails with `injected` (narrow it down with the
    /// other methods).
    pub fn new(op: FsOp, injected: Injected) -> Fault {
        Fault { op, injected, path_contains: None, skip: 0, times: None }
    }

    /// Only calls on a path whose text contains `part`.
    pub fn on_paths_containing(mut self, part: &str) -> Fault {
        self.path_contains = Some(part.to_owned());
        self
    }

    /// Lets the first `n` matching calls through.
    pub fn after(mut self, n: u64) -> Fault {
        self.skip = n;
        self
    }

    /// Fails `n` matching calls, then lets the rest through.
    pub fn times(mut self, n: u64) -> Fault {
        self.times = Some(n);
        self
    }
}

#[derive(Debug, Default)]
struct Plan {
    faults: Vec<Fault>,
    /// Faults that fired: (op, path).
    fired: Vec<(FsOp, PathBuf)>,
    /// Calls blocked by [`Injected::Stall`] right now.
    stalled: usize,
    /// Bumped by each release: a stalled call returns once it moves.
    releases: u64,
}

impl Plan {
    fn check(&mut self, op: FsOp, path: &Path) -> Option<Injected> {
        let text = path.to_string_lossy();
        for f in &mut self.faults {
            if f.op != op || f.path_contains.as_ref().is_some_and(|p| !text.contains(p.as_str())) {
                continue;
            }
            if f.skip > 0 {
                f.skip -= 1;
                continue;
            }
            match &mut f.times {
                Some(0) => continue,
                Some(n) => *n -= 1,
                None => {}
            }
            self.fired.push((op, path.to_owned()));
            return Some(f.injected);
        }
        None
    }
}

/// The real file system, with the failures planned by [`FaultyFileSystem::inject`].
#[derive(Debug, Clone, Default)]
pub struct FaultyFileSystem {
    plan: Arc<Mutex<Plan>>,
    /// Signalled on release.
    released: Arc<Condvar>,
}

impl FaultyFileSystem {
    pub fn new() -> FaultyFileSystem {
        FaultyFileSystem::default()
    }

    /// Adds a fault; the first one matching a call decides its fate.
    pub fn inject(&self, fault: Fault) {
        self.plan().faults.push(fault);
    }

    /// Removes every planned fault: the disk works again (stalled calls
    /// go on).
    pub fn clear(&self) {
        self.plan().faults.clear();
        self.release();
    }

    /// Lets every call stalled now go on (a later stall blocks again).
    pub fn release(&self) {
        self.plan().releases += 1;
        self.released.notify_all();
    }

    /// How many calls are blocked by [`Injected::Stall`] now.
    pub fn stalled(&self) -> usize {
        self.plan().stalled
    }

    /// Blocks the calling thread until the next [`FaultyFileSystem::release`].
    fn stall(&self) {
        let mut plan = self.plan();
        let at = plan.releases;
        plan.stalled += 1;
        while plan.releases == at {
            plan = self.released.wait(plan).unwrap_or_else(|e| e.into_inner());
        }
        plan.stalled -= 1;
    }

    /// The failures injected so far: (operation, path).
    pub fn fired(&self) -> Vec<(FsOp, PathBuf)> {
        self.plan().fired.clone()
    }

    fn plan(&self) -> std::sync::MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(&self, op: FsOp, path: &Path) -> io::Result<()> {
        let injected = self.plan().check(op, path);
        match injected {
            None => Ok(()),
            Some(Injected::Slow(d)) => {
                std::thread::sleep(d);
                Ok(())
            }
            Some(Injected::Stall) => {
                self.stall();
                Ok(())
            }
            Some(Injected::Eio) => Err(io::Error::from_raw_os_error(EIO)),
            Some(Injected::NoSpace | Injected::Short(_)) => Err(io::Error::from_raw_os_error(ENOSPC)),
        }
    }

    fn wrap(&self, path: &Path, inner: Arc<dyn WritableFile>) -> Arc<dyn WritableFile> {
        Arc::new(FaultyFile { fs: self.clone(), path: path.to_owned(), inner })
    }
}

struct FaultyFile {
    fs: FaultyFileSystem,
    path: PathBuf,
    inner: Arc<dyn WritableFile>,
}

impl WritableFile for FaultyFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let injected = self.fs.plan().check(FsOp::Write, &self.path);
        match injected {
            None => self.inner.write_all_at(buf, offset),
            Some(Injected::Short(n)) => {
                self.inner.write_all_at(&buf[..n.min(buf.len())], offset)?;
                Err(io::Error::from_raw_os_error(ENOSPC))
            }
            Some(Injected::Slow(d)) => {
                std::thread::sleep(d);
                self.inner.write_all_at(buf, offset)
            }
            Some(Injected::Stall) => {
                self.fs.stall();
                self.inner.write_all_at(buf, offset)
            }
            Some(Injected::Eio) => Err(io::Error::from_raw_os_error(EIO)),
            Some(Injected::NoSpace) => Err(io::Error::from_raw_os_error(ENOSPC)),
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fs.check(FsOp::Sync, &self.path)?;
        self.inner.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.fs.check(FsOp::SetLen, &self.path)?;
        self.inner.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        self.fs.check(FsOp::Allocate, &self.path)?;
        self.inner.allocate(len)
    }
}

impl FileSystem for FaultyFileSystem {
    fn create(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>> {
        self.check(FsOp::Create, path)?;
        Ok(self.wrap(path, StdFileSystem.create(path)?))
    }

    fn open_for_write(&self, path: &Path) -> io::Result<Arc<dyn WritableFile>> {
        self.check(FsOp::Create, path)?;
        Ok(self.wrap(path, StdFileSystem.open_for_write(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(FsOp::Rename, to)?;
        StdFileSystem.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.check(FsOp::Remove, path)?;
        StdFileSystem.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(FsOp::SyncDir, dir)?;
        StdFileSystem.sync_dir(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("burrow-faulty-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn faults_hit_the_planned_calls_only() {
        let dir = temp_dir("plan");
        let fs = FaultyFileSystem::new();
        fs.inject(Fault::new(FsOp::Write, Injected::Eio).on_paths_containing("b.").after(1).times(1));
        let a = fs.create(&dir.join("a.log")).unwrap();
        let b = fs.create(&dir.join("b.log")).unwrap();
        a.write_all_at(b"x", 0).unwrap();
        b.write_all_at(b"1", 0).unwrap();
        let err = b.write_all_at(b"2", 1).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(EIO));
        b.write_all_at(b"3", 1).unwrap();
        assert_eq!(std::fs::read(dir.join("b.log")).unwrap(), b"13");
        assert_eq!(fs.fired(), vec![(FsOp::Write, dir.join("b.log"))]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stalled_call_returns_once_released() {
        let dir = temp_dir("stall");
        let fs = FaultyFileSystem::new();
        fs.inject(Fault::new(FsOp::Sync, Injected::Stall).times(1));
        let f = fs.create(&dir.join("f")).unwrap();
        let syncing = std::thread::spawn(move || f.sync_data());
        while fs.stalled() == 0 {
            std::thread::yield_now();
        }
        assert!(!syncing.is_finished(), "blocked until released");
        fs.release();
        syncing.join().unwrap().unwrap();
        assert_eq!(fs.stalled(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_short_write_leaves_a_prefix_and_reports_enospc() {
        let dir = temp_dir("short");
        let fs = FaultyFileSystem::new();
        fs.inject(Fault::new(FsOp::Write, Injected::Short(3)));
        let f = fs.create(&dir.join("f")).unwrap();
        let err = f.write_all_at(b"abcdef", 0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"abc");
        fs.clear();
        f.write_all_at(b"abcdef", 0).unwrap();
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"abcdef");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
