//! WAL segments: files of op-log records, appended by one writer thread.
//!
//! ```text
//! segment file  wal-<first index, 20 digits>.log
//! +-----------+-----------+-----------+----------------------+------------+
//! | "BWAL"    | version=1 | reserved  | first index (u64 BE) | records... |
//! +-----------+-----------+-----------+----------------------+------------+
//! ```
//! Records are framed as in `oplog::record` (length, CRC32, term, index, op).
//! The writer drains what the op log queued, writes it with one `write`,
//! and fsyncs by policy: `always` before anyone waiting is told the write is
//! durable (one fsync covers every writer queued meanwhile — group commit),
//! `everysec` once a second, `no` never (the OS decides).

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use byteorder::{BigEndian, ByteOrder};
use bytes::BytesMut;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::FsyncPolicy;
use crate::oplog::{seal_records, BadRecord, OpLog, Record, RecordRef, Records};

pub const WAL_MAGIC: &[u8; 4] = b"BWAL";
pub const WAL_VERSION: u16 = 1;
pub const WAL_HEADER_LEN: usize = 16;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("{op} {path}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path}: bad WAL header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    #[error("{path}: corrupt record at byte offset {offset}: {reason}; refusing to start (the data after it would be lost)")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("{path}: torn last record at byte offset {offset}: {reason}; refusing to start because torn-tail truncation is disabled")]
    TornRefused { path: PathBuf, offset: u64, reason: String },
    #[error("{path}: record index {got} where {expected} was expected (missing or reordered records)")]
    Gap { path: PathBuf, expected: u64, got: u64 },
    #[error("{path}: {reason}; refusing to start (delete the file to make this node resync in full from its leader)")]
    NodeFile { path: PathBuf, reason: String },
}

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WalError + 'a {
    move |source| WalError::Io { op, path: path.to_owned(), source }
}

pub fn segment_name(first_index: u64) -> String {
    format!("wal-{first_index:020}.log")
}

/// WAL segments in `dir`, ordered by first index.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    super::numbered_files(dir, "wal-", ".log").map_err(io_err("read directory", dir))
}

fn header(first_index: u64) -> [u8; WAL_HEADER_LEN] {
    let mut h = [0u8; WAL_HEADER_LEN];
    h[..4].copy_from_slice(WAL_MAGIC);
    BigEndian::write_u16(&mut h[4..6], WAL_VERSION);
    BigEndian::write_u64(&mut h[8..16], first_index);
    h
}

/// How a segment's bytes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentScan {
    /// Every byte belonged to a valid record.
    Complete { records: u64 },
    /// The last record is short or fails its CRC and nothing valid follows:
    /// a write torn by a crash. `offset` is where the valid data ends.
    Torn { records: u64, offset: u64, reason: String },
}

/// Reads the records of one segment, calling `f` for each in order.
/// A bad record followed by more valid records is corruption (`Err`); a bad
/// record with nothing valid after it is a torn tail (`Ok(Torn)`).
pub fn scan_segment(
    path: &Path,
    data: &[u8],
    expect_first: u64,
    mut f: impl FnMut(Record<&[u8]>) -> Result<(), WalError>,
) -> Result<SegmentScan, WalError> {
    if data.len() < WAL_HEADER_LEN {
        return Ok(SegmentScan::Torn {
            records: 0,
            offset: 0,
            reason: format!("file is {} bytes, shorter than its {WAL_HEADER_LEN}-byte header", data.len()),
        });
    }
    let bad = |reason: String| WalError::BadHeader { path: path.to_owned(), reason };
    if &data[..4] != WAL_MAGIC {
        return Err(bad(format!("magic {:02x?} is not {WAL_MAGIC:?}", &data[..4])));
    }
    let version = BigEndian::read_u16(&data[4..6]);
    if version != WAL_VERSION {
        return Err(bad(format!("version {version} is not supported (this build reads {WAL_VERSION})")));
    }
    let first = BigEndian::read_u64(&data[8..16]);
    if first != expect_first {
        return Err(bad(format!("header says first index {first}, file name says {expect_first}")));
    }
    let body = &data[WAL_HEADER_LEN..];
    let mut records = Records::new(body);
    let mut next = first;
    loop {
        let start = records.offset();
        let bad = match records.next() {
            None => return Ok(SegmentScan::Complete { records: next - first }),
            Some(Err(bad)) => bad,
            Some(Ok(rec)) => match rec.decode() {
                Err(error) => BadRecord { offset: start, error },
                Ok(rec) if rec.index != next => {
                    return Err(WalError::Gap { path: path.to_owned(), expected: next, got: rec.index });
                }
                Ok(rec) => {
                    next += 1;
                    f(rec)?;
                    continue;
                }
            },
        };
        let offset = (WAL_HEADER_LEN + bad.offset) as u64;
        let reason = burrow_proto::ErrorChain(&bad.error).to_string();
        if valid_record_after(body, bad.offset, next) {
            return Err(WalError::Corrupt { path: path.to_owned(), offset, reason });
        }
        return Ok(SegmentScan::Torn { records: next - first, offset, reason });
    }
}

/// Whether any offset of `records` after `bad` starts a usable record
/// (framing, CRC and op) numbered `next` or later — the sign that the bad
/// bytes are damage in the middle, not a tear.
fn valid_record_after(records: &[u8], bad: usize, next: u64) -> bool {
    (bad + 1..records.len())
        .any(|p| RecordRef::parse(&records[p..]).is_ok_and(|rec| rec.index >= next && rec.decode().is_ok()))
}

/// What the writer has achieved so far; connections wait on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Durability {
    /// Highest index handed to the OS (written).
    pub written: u64,
    /// Highest index known to be on stable storage (fsynced).
    pub synced: u64,
    /// The last write or fsync failed and has not yet been retried successfully.
    pub failed: bool,
}

/// WAL figures for INFO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WalStats {
    pub bytes: u64,
    pub segments: usize,
    pub fsyncs: u64,
    pub last_error: Option<String>,
}

struct Segment {
    first: u64,
    path: PathBuf,
    /// Size when closed; the active segment's size is `Shared::active_len`.
    len: u64,
}

struct Shared {
    log: Arc<OpLog>,
    dir: PathBuf,
    policy: FsyncPolicy,
    segment_bytes: u64,
    durable: watch::Sender<Durability>,
    stop: AtomicBool,
    segments: Mutex<Vec<Segment>>,
    active_len: AtomicU64,
    fsyncs: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// An fsync through this index was asked for (snapshots, any policy).
    sync_requested: AtomicU64,
    /// A new segment was asked for (after a snapshot, so the old one can go).
    rotate_requested: AtomicBool,
    /// Segments started so far; lets `rotate` wait for its request.
    rotations: AtomicU64,
    /// The segment being appended to. Records are taken from the log only
    /// while holding this lock, so they reach the file in index order
    /// whoever writes them (the writer thread, or a connection writing
    /// inline at flush time).
    active: Mutex<Active>,
}

/// The WAL writer: a dedicated thread doing blocking file IO.
pub struct WalWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for WalWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalWriter")
            .field("dir", &self.shared.dir)
            .field("policy", &self.shared.policy)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", dir))
}

fn create_segment(dir: &Path, first: u64) -> Result<(File, PathBuf), WalError> {
    let path = dir.join(segment_name(first));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io_err("create WAL segment", &path))?;
    file.write_all(&header(first)).map_err(io_err("write WAL header", &path))?;
    file.sync_all().map_err(io_err("fsync WAL segment", &path))?;
    fsync_dir(dir)?;
    Ok((file, path))
}

impl WalWriter {
    /// Starts the writer. `existing`: the segments recovery found (first
    /// index, path, valid length), the last of which is appended to; with
    /// none, a new segment starts at `last_index + 1`.
    pub fn start(
        log: Arc<OpLog>,
        dir: &Path,
        policy: FsyncPolicy,
        segment_bytes: u64,
        existing: Vec<(u64, PathBuf, u64)>,
        last_index: u64,
    ) -> Result<WalWriter, WalError> {
        let mut segments: Vec<Segment> =
            existing.into_iter().map(|(first, path, len)| Segment { first, path, len }).collect();
        let file = match segments.last() {
            Some(seg) => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .open(&seg.path)
                    .map_err(io_err("open WAL segment", &seg.path))?;
                f.set_len(seg.len).map_err(io_err("truncate WAL segment", &seg.path))?;
                f.seek(SeekFrom::Start(seg.len)).map_err(io_err("seek WAL segment", &seg.path))?;
                if seg.len < WAL_HEADER_LEN as u64 {
                    // Torn header: rewrite it.
                    f.set_len(0).map_err(io_err("truncate WAL segment", &seg.path))?;
                    f.seek(SeekFrom::Start(0)).map_err(io_err("seek WAL segment", &seg.path))?;
                    f.write_all(&header(seg.first)).map_err(io_err("write WAL header", &seg.path))?;
                    f.sync_all().map_err(io_err("fsync WAL segment", &seg.path))?;
                }
                f
            }
            None => {
                let (f, path) = create_segment(dir, last_index + 1)?;
                segments.push(Segment { first: last_index + 1, path, len: WAL_HEADER_LEN as u64 });
                f
            }
        };
        let active = segments.pop().expect("an active segment");
        let active_len = active.len.max(WAL_HEADER_LEN as u64);
        let active_first = active.first;
        let active_path = active.path.clone();
        segments.push(Segment { len: 0, ..active });
        log.enable_wal();
        let shared = Arc::new(Shared {
            log,
            dir: dir.to_owned(),
            policy,
            segment_bytes,
            durable: watch::channel(Durability { written: last_index, synced: last_index, failed: false }).0,
            stop: AtomicBool::new(false),
            segments: Mutex::new(segments),
            active_len: AtomicU64::new(active_len),
            fsyncs: AtomicU64::new(0),
            last_error: Mutex::new(None),
            sync_requested: AtomicU64::new(0),
            rotate_requested: AtomicBool::new(false),
            rotations: AtomicU64::new(0),
            active: Mutex::new(Active {
                file,
                path: active_path,
                first: active_first,
                len: active_len,
                retry: BytesMut::new(),
                retry_last: last_index,
                last_sync: Instant::now(),
                unsynced: false,
                syncer: None,
            }),
        });
        // Under `always` the writer thread does every write (it fsyncs right
        // after); otherwise connections write inline and the thread only
        // needs waking for stragglers, fsyncs and rotation.
        shared.log.set_eager_wal_wake(policy == FsyncPolicy::Always);
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("burrow-wal".into())
            .spawn(move || run(s))
            .map_err(io_err("spawn WAL writer thread", dir))?;
        Ok(WalWriter { shared, thread: Mutex::new(Some(thread)) })
    }

    /// Writes every queued record now, on the calling thread, unless the
    /// writer thread holds the segment (then it is woken to do it). Returns
    /// whether this call wrote. Connections call it before waiting for
    /// `written`, which saves two cross-thread wake-ups per batch.
    pub fn write_now(&self) -> bool {
        match self.shared.active.try_lock() {
            Ok(mut a) => a.drain(&self.shared),
            Err(_) => {
                self.shared.log.wake_wal();
                false
            }
        }
    }

    /// A receiver to wait on for durability (written / synced / failed).
    pub fn subscribe(&self) -> watch::Receiver<Durability> {
        self.shared.durable.subscribe()
    }

    pub fn durability(&self) -> Durability {
        *self.shared.durable.borrow()
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.shared.policy
    }

    /// Deletes segments whose every record has an index ≤ `index` (covered
    /// by a snapshot). The active segment is never deleted.
    pub fn delete_covered(&self, index: u64) -> usize {
        let mut segs = lock(&self.shared.segments);
        let mut deleted = 0;
        while segs.len() > 1 && segs[1].first <= index + 1 {
            let seg = segs.remove(0);
            match std::fs::remove_file(&seg.path) {
                Ok(()) => deleted += 1,
                Err(e) => {
                    warn!(path = %seg.path.display(), error = %e, "cannot delete covered WAL segment");
                    segs.insert(0, seg);
                    break;
                }
            }
        }
        if deleted > 0 {
            let _ = fsync_dir(&self.shared.dir);
        }
        deleted
    }

    pub fn stats(&self) -> WalStats {
        let segs = lock(&self.shared.segments);
        let closed: u64 = segs.iter().map(|s| s.len).sum();
        WalStats {
            bytes: closed + self.shared.active_len.load(Ordering::Relaxed),
            segments: segs.len(),
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            last_error: lock(&self.shared.last_error).clone(),
        }
    }

    /// Asks the writer to fsync through `index` whatever the policy; wait
    /// on [`WalWriter::subscribe`] for `synced` to reach it.
    pub fn sync_through(&self, index: u64) {
        self.shared.sync_requested.fetch_max(index, Ordering::SeqCst);
        self.shared.log.wake_wal();
    }

    /// Starts a new segment (if the current one holds any record) and waits
    /// up to `timeout` for the writer to do it. Called after a snapshot, so
    /// the segment it covers can be deleted instead of lingering until full.
    pub fn rotate(&self, timeout: Duration) -> bool {
        let before = self.shared.rotations.load(Ordering::SeqCst);
        self.shared.rotate_requested.store(true, Ordering::SeqCst);
        self.shared.log.wake_wal();
        let deadline = Instant::now() + timeout;
        while self.shared.rotations.load(Ordering::SeqCst) == before {
            if Instant::now() >= deadline || lock(&self.thread).is_none() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Replaces the whole WAL: a follower that loaded its leader's snapshot.
    /// Under the segment lock, every segment (records of the replaced
    /// dataset, possibly of another history) is deleted, `install` runs
    /// (it publishes the snapshot that now holds the data), and a new
    /// segment starts at `next_index`. A crash in between leaves either no
    /// WAL and no new snapshot (the node comes back empty and resyncs) or
    /// the new snapshot alone: never the old records on top of new data.
    pub fn restart_at(
        &self,
        next_index: u64,
        install: impl FnOnce() -> Result<(), WalError>,
    ) -> Result<(), WalError> {
        let mut a = lock(&self.shared.active);
        let mut segs = lock(&self.shared.segments);
        a.retry.clear();
        let _ = self.shared.log.take_wal_now();
        for seg in segs.drain(..) {
            match std::fs::remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete WAL segment", &seg.path)(e)),
            }
        }
        fsync_dir(&self.shared.dir)?;
        install()?;
        let (file, path) = create_segment(&self.shared.dir, next_index)?;
        segs.push(Segment { first: next_index, path: path.clone(), len: 0 });
        a.file = file;
        a.path = path;
        a.first = next_index;
        a.len = WAL_HEADER_LEN as u64;
        a.retry_last = next_index - 1;
        a.unsynced = false;
        self.shared.active_len.store(WAL_HEADER_LEN as u64, Ordering::Relaxed);
        let at = next_index - 1;
        self.shared.durable.send_modify(|d| {
            d.written = at;
            d.synced = at;
        });
        Ok(())
    }

    /// Writes and fsyncs everything queued, then stops the thread.
    pub fn shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.log.wake_wal();
        if let Some(t) = lock(&self.thread).take() {
            let _ = t.join();
        }
    }
}

impl Drop for WalWriter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The active segment and what has not reached it yet.
struct Active {
    file: File,
    path: PathBuf,
    first: u64,
    len: u64,
    /// Bytes taken from the log but not yet written (kept across failures).
    retry: BytesMut,
    retry_last: u64,
    last_sync: Instant,
    unsynced: bool,
    /// Background fsyncs under `everysec` (started on first use).
    syncer: Option<std::sync::mpsc::Sender<(File, u64, PathBuf)>>,
}

/// The everysec syncer: fsyncs a handle to the active segment and publishes
/// the index it covered. Requests queue up; each one covers all before it.
struct Syncer;

impl Syncer {
    fn start(s: Arc<Shared>) -> std::sync::mpsc::Sender<(File, u64, PathBuf)> {
        let (tx, rx) = std::sync::mpsc::channel::<(File, u64, PathBuf)>();
        let spawned = std::thread::Builder::new().name("burrow-wal-sync".into()).spawn(move || {
            while let Ok((file, upto, path)) = rx.recv() {
                match file.sync_data() {
                    Ok(()) => {
                        s.fsyncs.fetch_add(1, Ordering::Relaxed);
                        s.durable.send_modify(|d| d.synced = d.synced.max(upto));
                    }
                    Err(e) => {
                        // The writer owes an fsync through `upto` before it may
                        // report the WAL healthy again.
                        s.sync_requested.fetch_max(upto, Ordering::SeqCst);
                        let msg = format!("fsync {}: {e}", path.display());
                        error!(error = %msg, "WAL failure: writes are refused until the disk accepts them again");
                        *lock(&s.last_error) = Some(msg);
                        s.durable.send_modify(|d| d.failed = true);
                    }
                }
            }
        });
        if let Err(e) = spawned {
            error!(error = %e, "cannot start the WAL syncer thread; fsyncs will run inline");
        }
        tx
    }
}

const EVERYSEC: Duration = Duration::from_secs(1);
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often an otherwise idle writer looks for records nobody wrote inline
/// (expiry deletions logged by reads and the sweep).
const IDLE_WAKE: Duration = Duration::from_millis(100);

/// The writer thread: writes what connections did not, fsyncs by policy,
/// rotates segments, and retries after failures.
fn run(s: Arc<Shared>) {
    loop {
        let stopping = s.stop.load(Ordering::SeqCst);
        let failed = s.durable.borrow().failed;
        let (unsynced, since_sync) = {
            let a = lock(&s.active);
            (a.unsynced, a.last_sync.elapsed())
        };
        let wait = if stopping {
            Duration::ZERO
        } else if failed {
            RETRY_AFTER
        } else if unsynced && s.policy == FsyncPolicy::EverySec {
            EVERYSEC.saturating_sub(since_sync)
        } else {
            IDLE_WAKE
        };
        let requested = s.sync_requested.load(Ordering::SeqCst);
        let urgent = requested > s.durable.borrow().synced || s.rotate_requested.load(Ordering::SeqCst);
        if !urgent && !wait.is_zero() {
            s.log.wait_wal(wait);
        }
        let mut a = lock(&s.active);
        let mut ok = a.drain(&s);
        let requested = s.sync_requested.load(Ordering::SeqCst);
        let due = requested > s.durable.borrow().synced
            || match s.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EverySec => a.last_sync.elapsed() >= EVERYSEC,
                FsyncPolicy::No => false,
            };
        let periodic = s.policy == FsyncPolicy::EverySec && requested <= s.durable.borrow().synced;
        if ok && a.unsynced && due && periodic && !stopping {
            // The once-a-second fsync runs on its own thread, as Redis's
            // does: inline, it stalled every write waiting behind it.
            ok = a.sync_in_background(&s);
        } else if ok && (a.unsynced || requested > s.durable.borrow().synced) && (due || stopping) {
            ok = a.sync(&s);
        }
        let asked = s.rotate_requested.swap(false, Ordering::SeqCst);
        if ok && (a.len >= s.segment_bytes || (asked && a.len > WAL_HEADER_LEN as u64)) {
            ok = a.rotate(&s);
        }
        if asked {
            // Answered even when there was nothing to rotate.
            s.rotations.fetch_add(1, Ordering::SeqCst);
        }
        let fsync_owed = s.sync_requested.load(Ordering::SeqCst) > s.durable.borrow().synced;
        if ok && failed && !fsync_owed {
            info!(path = %a.path.display(), "WAL writes succeed again; accepting writes");
            *lock(&s.last_error) = None;
            s.durable.send_modify(|d| d.failed = false);
        }
        if stopping && (a.retry.is_empty() || !ok) {
            if !ok {
                error!("shutting down with WAL records that could not be written");
            }
            return;
        }
        drop(a);
        if !ok {
            // Back off before retrying the disk.
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Active {
    /// Takes every record queued in the log and writes it (with what a
    /// failed write left behind). Must be called with the `active` lock held.
    fn drain(&mut self, s: &Shared) -> bool {
        let (mut bytes, last, unsealed) = s.log.take_wal_now();
        if !bytes.is_empty() {
            if unsealed {
                seal_records(&mut bytes);
            }
            self.retry.extend_from_slice(&bytes);
            self.retry_last = last;
        }
        self.retry.is_empty() || self.write_pending(s)
    }

    fn fail(&mut self, s: &Shared, what: &str, e: std::io::Error) {
        let msg = format!("{what} {}: {e}", self.path.display());
        error!(error = %msg, "WAL failure: writes are refused until the disk accepts them again");
        *lock(&s.last_error) = Some(msg);
        s.durable.send_modify(|d| d.failed = true);
    }

    fn write_pending(&mut self, s: &Shared) -> bool {
        match self.file.write_all(&self.retry) {
            Ok(()) => {
                self.len += self.retry.len() as u64;
                s.active_len.store(self.len, Ordering::Relaxed);
                self.retry.clear();
                self.unsynced = true;
                let last = self.retry_last;
                s.durable.send_modify(|d| d.written = last);
                true
            }
            Err(e) => {
                // Cut any partial write so the file ends on a record boundary.
                let _ = self.file.set_len(self.len);
                let _ = self.file.seek(SeekFrom::Start(self.len));
                self.fail(s, "write", e);
                false
            }
        }
    }

    /// Hands an fsync of everything written so far to the syncer thread.
    fn sync_in_background(&mut self, s: &Arc<Shared>) -> bool {
        let file = match self.file.try_clone() {
            Ok(f) => f,
            Err(e) => {
                self.fail(s, "duplicate handle of", e);
                return false;
            }
        };
        let upto = s.durable.borrow().written;
        let syncer = self.syncer.get_or_insert_with(|| Syncer::start(s.clone()));
        if syncer.send((file, upto, self.path.clone())).is_err() {
            // The syncer is gone (it cannot be, short of a panic): do it here.
            self.syncer = None;
            return self.sync(s);
        }
        self.last_sync = Instant::now();
        self.unsynced = false;
        true
    }

    fn sync(&mut self, s: &Shared) -> bool {
        match self.file.sync_data() {
            Ok(()) => {
                s.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.last_sync = Instant::now();
                self.unsynced = false;
                let written = s.durable.borrow().written;
                s.durable.send_modify(|d| d.synced = written);
                true
            }
            Err(e) => {
                self.fail(s, "fsync", e);
                false
            }
        }
    }

    fn rotate(&mut self, s: &Shared) -> bool {
        if self.unsynced && !self.sync(s) {
            return false;
        }
        let next = s.durable.borrow().written + 1;
        match create_segment(&s.dir, next) {
            Ok((file, path)) => {
                let mut segs = lock(&s.segments);
                if let Some(last) = segs.last_mut() {
                    last.len = self.len;
                }
                segs.push(Segment { first: next, path: path.clone(), len: 0 });
                drop(segs);
                self.file = file;
                self.path = path;
                self.first = next;
                self.len = WAL_HEADER_LEN as u64;
                s.active_len.store(self.len, Ordering::Relaxed);
                true
            }
            Err(WalError::Io { source, .. }) => {
                self.fail(s, "create next segment after", source);
                false
            }
            Err(e) => {
                self.fail(s, "create next segment after", std::io::Error::other(e.to_string()));
                false
            }
        }
    }
}
