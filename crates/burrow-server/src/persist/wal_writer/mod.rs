//! The WAL writer: a pure policy core ([`policy`]) deciding what to write,
//! fsync and rotate, and one IO thread ([`io_thread`]) carrying that out
//! through a [`FileSystem`]. Every WAL file operation happens on that
//! thread (or on the everysec syncer thread it owns): tokio workers only
//! queue records in the op log and wait on the durability watch.
//!
//! The thread drains everything the op log queued, writes it with one
//! `write`, and fsyncs by policy: `always` before anyone waiting is told
//! the write is durable (one fsync covers every writer queued meanwhile —
//! group commit — and runs on the syncer thread while the next batch is
//! written: a pipeline, see [`policy`]), `everysec` once a second on the
//! syncer thread (writes go on meanwhile), `no` never (the OS decides). It sleeps when there is
//! nothing to do; the op log wakes it when the first record lands in an
//! empty queue, so a batch of writes costs one wake-up, not one per record.
//!
//! Failures (details in [`policy`]): a failed write heals by itself (the
//! writes refused meanwhile get IO_ERROR); a failed fsync is fatal: writes
//! are refused until the server is restarted, and shutdown reports it.
//!
//! Cost, in server instructions for `bench/callgrind.sh` (SET ×300k, 50
//! clients, `--threads 1`), against connections writing their records
//! inline as before: pipeline 16 `everysec` 635M → 674M, `no` 636M → 674M,
//! `always` 717M → 690M; pipeline 1 `everysec` 1688M → 1954M, `always`
//! 2401M → 2091M. At pipeline 1 each reply now waits for this thread's
//! wake-up instead of a `write` on the worker — whose kernel time callgrind
//! does not count, so wall-clock is the real test. Yielding once after a
//! wake-up matters: without it the thread took one batch in four writes.

mod failure;
mod io_thread;
mod policy;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::fs::FileSystem;
use super::wal::{io_err, WalError};
use super::{FsyncPolicy, PersistConfig};
use crate::oplog::OpLog;
pub use failure::WriterFailure;
use io_thread::{Inbound, IoThread, Segment};

/// What the writer has achieved so far; connections wait on it.
/// Invariants: `synced ≤ written`; `fatal` implies `failed`; `written` and
/// `synced` never decrease, except when a follower's full resync replaces
/// the whole WAL ([`WalWriter::restart_at`]) and both restart below its
/// first index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Durability {
    /// Highest index handed to the OS (written).
    pub written: u64,
    /// Highest index known to be on stable storage (fsynced). Never moves
    /// again once `fatal` is set.
    pub synced: u64,
    /// Writes are refused: the WAL cannot be written now (it may heal, see
    /// `fatal`).
    pub failed: bool,
    /// An fsync failed: the WAL can no longer be made durable in this
    /// process. Only a restart clears it.
    pub fatal: bool,
}

/// WAL figures for INFO.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct WalStats {
    pub bytes: u64,
    pub segments: usize,
    pub fsyncs: u64,
    /// Bytes written to segments since start (metrics; `bytes` is what is on disk now).
    pub written_bytes: u64,
    /// Fsyncs of a segment that failed.
    pub fsync_failures: u64,
    /// How long segment fsyncs took.
    pub fsync_latency: crate::latency::Snapshot,
    /// Why the WAL is not healthy, as INFO's `wal_last_error` shows it: the
    /// policy's message (see [`WriterFailure`]), so text.
    pub last_error: Option<String>,
}

/// State the IO thread shares with the handle.
struct Shared {
    log: Arc<OpLog>,
    durable: watch::Sender<Durability>,
    /// Requests for the thread; `None` once it has exited.
    inbox: Mutex<Option<Vec<Inbound>>>,
    /// Bytes in closed segments.
    closed_bytes: AtomicU64,
    /// Bytes in the active segment.
    active_len: AtomicU64,
    segments: AtomicUsize,
    fsyncs: AtomicU64,
    written_bytes: AtomicU64,
    fsync_failures: AtomicU64,
    fsync_latency: crate::latency::Histogram,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    /// Fsyncs `file`, timing it for the metrics.
    fn timed_sync(&self, file: &dyn crate::persist::WritableFile) -> std::io::Result<()> {
        let started = std::time::Instant::now();
        let r = file.sync_data();
        match &r {
            Ok(()) => self.fsync_latency.observe(crate::latency::nanos(started.elapsed())),
            Err(_) => {
                self.fsync_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }
}

impl Shared {
    /// Hands the thread a request and wakes it. Gives the request back if
    /// the thread has exited.
    fn send(&self, msg: Inbound) -> Result<(), Inbound> {
        match lock(&self.inbox).as_mut() {
            Some(inbox) => inbox.push(msg),
            None => return Err(msg),
        }
        self.log.wake_wal();
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The handle to the WAL writer thread.
pub(crate) struct WalWriter {
    shared: Arc<Shared>,
    policy: FsyncPolicy,
    dir: PathBuf,
    thread: Mutex<Option<JoinHandle<Result<(), WriterFailure>>>>,
    /// How the thread ended, once it has.
    exit: Mutex<Option<Result<(), WriterFailure>>>,
}

impl std::fmt::Debug for WalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalWriter").field("dir", &self.dir).field("policy", &self.policy).finish()
    }
}

/// A follower's install step, run by [`WalWriter::restart_at`] on the WAL
/// thread between deleting the old segments and starting the new one.
pub(super) type Install = Box<dyn FnOnce(&dyn FileSystem) -> Result<(), WalError> + Send>;

impl WalWriter {
    /// Starts the writer on `cfg.dir`. `existing`: the segments recovery
    /// found (first index, path, valid length), the last of which is
    /// appended to (cut to its valid length first); with none, a new
    /// segment starts at `last_index + 1`.
    pub(crate) fn start(
        fs: Arc<dyn FileSystem>,
        log: Arc<OpLog>,
        cfg: &PersistConfig,
        existing: Vec<(u64, PathBuf, u64)>,
        last_index: u64,
    ) -> Result<WalWriter, WalError> {
        let dir = cfg.dir.clone();
        let mut segments: Vec<Segment> =
            existing.into_iter().map(|(first, path, len)| Segment { first, path, len }).collect();
        let active = match segments.last() {
            Some(seg) => io_thread::reopen_segment(fs.as_ref(), seg, cfg.segment_bytes)?,
            None => {
                let (file, path) =
                    io_thread::create_segment(fs.as_ref(), &dir, last_index + 1, cfg.segment_bytes)
                        .map_err(|(e, _)| e)?;
                segments.push(Segment { first: last_index + 1, path, len: 0 });
                file
            }
        };
        let active_len = segments.last().map_or(0, |s| s.len).max(super::WAL_HEADER_LEN as u64);
        let closed: u64 = segments[..segments.len() - 1].iter().map(|s| s.len).sum();
        log.enable_wal();
        let shared = Arc::new(Shared {
            log,
            durable: watch::channel(Durability {
                written: last_index,
                synced: last_index,
                ..Default::default()
            })
            .0,
            inbox: Mutex::new(Some(Vec::new())),
            closed_bytes: AtomicU64::new(closed),
            active_len: AtomicU64::new(active_len),
            segments: AtomicUsize::new(segments.len()),
            fsyncs: AtomicU64::new(0),
            written_bytes: AtomicU64::new(0),
            fsync_failures: AtomicU64::new(0),
            fsync_latency: crate::latency::Histogram::default(),
            last_error: Mutex::new(None),
        });
        let core =
            policy::WalPolicy::new(cfg.fsync, cfg.segment_bytes, last_index, active_len, Instant::now());
        let io = IoThread::new(shared.clone(), fs, dir.clone(), cfg.segment_bytes, core, segments, active);
        let thread = std::thread::Builder::new()
            .name("burrow-wal".into())
            .spawn(move || io.run())
            .map_err(io_err("spawn WAL writer thread", &dir))?;
        Ok(WalWriter {
            shared,
            policy: cfg.fsync,
            dir,
            thread: Mutex::new(Some(thread)),
            exit: Mutex::new(None),
        })
    }

    /// A receiver to wait on for durability (written / synced / failed).
    pub(crate) fn subscribe(&self) -> watch::Receiver<Durability> {
        self.shared.durable.subscribe()
    }

    pub(crate) fn durability(&self) -> Durability {
        *self.shared.durable.borrow()
    }

    pub(crate) fn stats(&self) -> WalStats {
        WalStats {
            bytes: self.shared.closed_bytes.load(Ordering::Relaxed)
                + self.shared.active_len.load(Ordering::Relaxed),
            segments: self.shared.segments.load(Ordering::Relaxed),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            written_bytes: self.shared.written_bytes.load(Ordering::Relaxed),
            fsync_failures: self.shared.fsync_failures.load(Ordering::Relaxed),
            fsync_latency: self.shared.fsync_latency.snapshot(),
            last_error: lock(&self.shared.last_error).clone(),
        }
    }

    /// The IO_ERROR message for a write refused because the WAL is failing.
    pub(crate) fn refusal(&self) -> String {
        let reason = self.stats().last_error.unwrap_or_default();
        if self.durability().fatal {
            format!(
                "write refused: the WAL could not be made durable ({reason}); restart the server \
                 (it recovers what its files hold); reads still work"
            )
        } else {
            format!("write refused: the WAL cannot be written ({reason}); reads still work")
        }
    }

    /// Asks the writer to fsync through `index` whatever the policy; wait
    /// on [`WalWriter::subscribe`] for `synced` to reach it (or `failed`).
    pub(crate) fn sync_through(&self, index: u64) {
        let _ = self.shared.send(Inbound::SyncThrough(index));
    }

    /// Starts a new segment (if the current one holds any record) and waits
    /// up to `timeout` for the writer to do it. Called after a snapshot, so
    /// the segment it covers can be deleted instead of lingering until
    /// full. Blocks: call it from a blocking thread.
    pub(crate) fn rotate(&self, timeout: Duration) -> bool {
        let (tx, rx) = mpsc::channel();
        self.shared.send(Inbound::Rotate(tx)).is_ok() && rx.recv_timeout(timeout).is_ok()
    }

    /// Deletes segments whose every record has an index ≤ `index` (covered
    /// by a snapshot); returns how many. The active segment is never
    /// deleted. Blocks: call it from a blocking thread.
    pub(crate) fn delete_covered(&self, index: u64) -> usize {
        let (tx, rx) = mpsc::channel();
        if self.shared.send(Inbound::DeleteCovered(index, tx)).is_err() {
            return 0;
        }
        rx.recv().unwrap_or(0)
    }

    /// Replaces the whole WAL: a follower that loaded its leader's snapshot.
    /// On the WAL thread, every segment (records of the replaced dataset,
    /// possibly of another history) is deleted, `install` runs (it
    /// publishes the snapshot that now holds the data), and a new segment
    /// starts at `next_index`. A crash in between leaves either no WAL and
    /// no new snapshot (the node comes back empty and resyncs) or the new
    /// snapshot alone: never the old records on top of new data. Blocks:
    /// call it from a blocking thread.
    pub(crate) fn restart_at(&self, next_index: u64, install: Install) -> Result<(), WalError> {
        let (tx, rx) = mpsc::channel();
        let stopped = WalError::Failed(WriterFailure::Stopped);
        if self.shared.send(Inbound::Restart { next_index, install, reply: tx }).is_err() {
            return Err(stopped);
        }
        rx.recv().map_err(|_| stopped)?
    }

    /// Writes and fsyncs everything queued, then stops the thread. `Err`
    /// if the WAL was failing: some records acknowledged or not may not be
    /// in it (the message says which, or why). Blocks until the thread
    /// is done: call it from a blocking thread.
    pub(crate) fn shutdown(&self) -> Result<(), WalError> {
        let _ = self.shared.send(Inbound::Shutdown);
        let mut exit = lock(&self.exit);
        if let Some(thread) = lock(&self.thread).take() {
            *exit = Some(thread.join().unwrap_or(Err(WriterFailure::Panicked)));
        }
        match exit.clone() {
            Some(Err(failure)) => Err(WalError::Failed(failure)),
            _ => Ok(()),
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests;
