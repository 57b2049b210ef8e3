//! The WAL's IO thread: takes what the op log queued, steps the policy
//! core, and carries out its actions on the files; also the requests of
//! the [`super::WalWriter`] handle (rotate, delete covered segments,
//! restart) and the results of the everysec syncer thread it owns.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use burrow_proto::ErrorChain;
use tracing::{debug, error, info, warn};

use super::policy::{Action, Event, Report, WalPolicy};
use super::{lock, Install, Shared, WriterFailure};
use crate::oplog::seal_records;
use crate::persist::fs::{FileSystem, WritableFile};
use crate::persist::wal::{header, io_err, segment_name, WalError, SPARE_SEGMENT, WAL_HEADER_LEN};

/// A request to the thread, or a result for it.
pub(super) enum Inbound {
    SyncThrough(u64),
    Rotate(mpsc::Sender<()>),
    DeleteCovered(u64, mpsc::Sender<usize>),
    Restart {
        next_index: u64,
        install: Install,
        reply: mpsc::Sender<Result<(), WalError>>,
    },
    /// The syncer's answer: `Ok((upto, generation, renames covered))` or
    /// the error.
    BackgroundSync(Result<(u64, u64, u64), WalError>),
    /// The next segment, prepared ahead (see [`prepare_spare`]), or why not.
    Spare(Result<Arc<dyn WritableFile>, WalError>),
    Shutdown,
}

/// Where a restart's outcome goes.
pub(super) type RestartReply = mpsc::Sender<Result<(), WalError>>;

/// A segment file. `len` is its size once closed; the active (last)
/// segment's size is `Shared::active_len`.
pub(super) struct Segment {
    pub first: u64,
    pub path: PathBuf,
    pub len: u64,
}

pub(super) struct IoThread {
    shared: Arc<Shared>,
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    /// Segments are preallocated to this many bytes.
    segment_bytes: u64,
    core: WalPolicy,
    /// Oldest first; the last is the active one while `active` is `Some`.
    segments: Vec<Segment>,
    active: Option<Arc<dyn WritableFile>>,
    rotate_waiters: Vec<mpsc::Sender<()>>,
    /// A restart's answer, sent once its new state is published.
    restart_reply: Option<(RestartReply, Result<(), WalError>)>,
    syncer: Option<Syncer>,
    /// The next segment, created, preallocated and fsynced ahead under
    /// [`SPARE_SEGMENT`]; a rotation renames it instead of creating a file.
    spare: Option<Arc<dyn WritableFile>>,
    /// A thread is preparing the spare.
    spare_pending: bool,
    /// The last preparing thread, joined at exit so no file appears after.
    prep: Option<std::thread::JoinHandle<()>>,
    /// Segments started by renaming the spare, and how many of those
    /// renames a completed directory fsync covers. While one is not, every
    /// fsync of the segment fsyncs the directory too, before any of its
    /// records is reported synced (a fsync in flight that started before
    /// the rename does not count).
    renames: u64,
    dir_synced: u64,
}

/// Creates the spare segment: preallocated, fsynced, its directory entry
/// fsynced — the slow part of starting a segment, done off the IO thread.
fn prepare_spare(fs: &dyn FileSystem, dir: &Path, prealloc: u64) -> Result<Arc<dyn WritableFile>, WalError> {
    let path = dir.join(SPARE_SEGMENT);
    let file = fs.create(&path).map_err(io_err("create WAL segment", &path))?;
    file.allocate(prealloc).map_err(io_err("preallocate WAL segment", &path))?;
    file.sync_data().map_err(io_err("fsync WAL segment", &path))?;
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    Ok(file)
}

/// Creates segment `first` in `dir`: header written, preallocated to
/// `prealloc` bytes, fsynced (size included), directory fsynced. The error
/// says whether an fsync failed.
pub(super) fn create_segment(
    fs: &dyn FileSystem,
    dir: &Path,
    first: u64,
    prealloc: u64,
) -> Result<(Arc<dyn WritableFile>, PathBuf), (WalError, bool)> {
    let path = dir.join(segment_name(first));
    let file = fs.create(&path).map_err(|e| (io_err("create WAL segment", &path)(e), false))?;
    file.write_all_at(&header(first), 0).map_err(|e| (io_err("write WAL header", &path)(e), false))?;
    preallocate(file.as_ref(), &path, prealloc);
    file.sync_data().map_err(|e| (io_err("fsync WAL segment", &path)(e), true))?;
    fs.sync_dir(dir).map_err(|e| (io_err("fsync directory", dir)(e), true))?;
    Ok((file, path))
}

/// Opens the segment recovery ended in, cut to its valid length (a torn
/// header is written again; a preallocated tail of zeros goes too) and
/// preallocated again to `prealloc` bytes.
pub(super) fn reopen_segment(
    fs: &dyn FileSystem,
    seg: &Segment,
    prealloc: u64,
) -> Result<Arc<dyn WritableFile>, WalError> {
    let path = &seg.path;
    let file = fs.open_for_write(path).map_err(io_err("open WAL segment", path))?;
    if seg.len < WAL_HEADER_LEN as u64 {
        file.set_len(0).map_err(io_err("truncate WAL segment", path))?;
        file.write_all_at(&header(seg.first), 0).map_err(io_err("write WAL header", path))?;
    } else {
        file.set_len(seg.len).map_err(io_err("truncate WAL segment", path))?;
    }
    preallocate(file.as_ref(), path, prealloc);
    file.sync_data().map_err(io_err("fsync WAL segment", path))?;
    Ok(file)
}

/// fsyncs a segment, and its directory too when `dir` is given.
fn sync_segment(
    shared: &Shared,
    file: &dyn WritableFile,
    fs: &dyn FileSystem,
    dir: Option<&Path>,
) -> std::io::Result<()> {
    shared.timed_sync(file)?;
    match dir {
        Some(dir) => fs.sync_dir(dir),
        None => Ok(()),
    }
}

/// Reserves a segment's space up front (see [`WritableFile::allocate`]).
/// Only a speed-up: if it fails (a nearly full disk), appends extend the
/// file as they would without it, so it is logged and not refused.
fn preallocate(file: &dyn WritableFile, path: &Path, len: u64) {
    if let Err(e) = file.allocate(len) {
        warn!(path = %path.display(), error = %e, "cannot preallocate WAL segment; appending without");
    }
}

impl IoThread {
    pub(super) fn new(
        shared: Arc<Shared>,
        fs: Arc<dyn FileSystem>,
        dir: PathBuf,
        segment_bytes: u64,
        core: WalPolicy,
        segments: Vec<Segment>,
        active: Arc<dyn WritableFile>,
    ) -> IoThread {
        IoThread {
            shared,
            fs,
            dir,
            segment_bytes,
            core,
            segments,
            active: Some(active),
            rotate_waiters: Vec::new(),
            restart_reply: None,
            syncer: None,
            spare: None,
            spare_pending: false,
            prep: None,
            renames: 0,
            dir_synced: 0,
        }
    }

    /// Once the active segment is half full, starts preparing the next one
    /// on a thread of its own, unless one is ready or on its way.
    fn prepare_next(&mut self) {
        let half_full = self.shared.active_len.load(Ordering::Relaxed) >= self.segment_bytes / 2;
        if !half_full || self.spare.is_some() || self.spare_pending || self.core.is_fatal() {
            return;
        }
        let (fs, dir, len, shared) =
            (self.fs.clone(), self.dir.clone(), self.segment_bytes, self.shared.clone());
        let spawned = std::thread::Builder::new().name("burrow-wal-prep".into()).spawn(move || {
            let _ = shared.send(Inbound::Spare(prepare_spare(fs.as_ref(), &dir, len)));
        });
        match spawned {
            Ok(thread) => {
                self.spare_pending = true;
                self.prep = Some(thread);
            }
            Err(e) => debug!(error = %e, "cannot start a thread to prepare the next WAL segment"),
        }
    }

    /// Runs until shutdown; returns how it ended (see [`Action::Exit`]).
    pub(super) fn run(mut self) -> Result<(), WriterFailure> {
        loop {
            let inbox = lock(&self.shared.inbox).as_mut().map(std::mem::take).unwrap_or_default();
            for msg in inbox {
                self.handle(msg);
            }
            let (mut bytes, last, unsealed) = self.shared.log.take_wal_now();
            if !bytes.is_empty() {
                if unsealed {
                    seal_records(&mut bytes);
                }
                self.core.step(Event::Queued { bytes, last }, Instant::now());
            }
            while let Some(action) = self.core.poll(Instant::now()) {
                if let Action::Exit(result) = action {
                    return self.exit(result);
                }
                if let Some(event) = self.execute(action) {
                    self.core.step(event, Instant::now());
                }
            }
            if let Some((reply, result)) = self.restart_reply.take() {
                let _ = reply.send(result);
            }
            self.prepare_next();
            let wait = self.core.next_deadline().map(|d| d.saturating_duration_since(Instant::now()));
            // No yield after a wake-up: connections wake it once their
            // runtime's turn has appended (`oplog::defer_wal_wakes`).
            self.shared.log.wait_wal(wait);
        }
    }

    fn exit(mut self, result: Result<(), WriterFailure>) -> Result<(), WriterFailure> {
        // Requests that arrive from now on are refused; those queued are
        // dropped, which answers their callers.
        drop(lock(&self.shared.inbox).take());
        if let Some(syncer) = self.syncer.take() {
            drop(syncer.tx);
            let _ = syncer.thread.join();
        }
        if let Some(prep) = self.prep.take() {
            let _ = prep.join();
        }
        result
    }

    fn handle(&mut self, msg: Inbound) {
        let now = Instant::now();
        match msg {
            Inbound::SyncThrough(index) => self.core.step(Event::SyncRequested { through: index }, now),
            Inbound::Rotate(reply) => {
                self.rotate_waiters.push(reply);
                self.core.step(Event::RotateRequested, now);
            }
            Inbound::DeleteCovered(index, reply) => {
                let _ = reply.send(self.delete_covered(index));
            }
            Inbound::Restart { next_index, install, reply } => {
                let result = self.restart(next_index, install);
                self.restart_reply = Some((reply, result));
            }
            Inbound::BackgroundSync(Ok((upto, generation, dir_synced))) => {
                self.dir_synced = self.dir_synced.max(dir_synced);
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.core.step(Event::BackgroundSyncDone { upto, generation }, now);
            }
            Inbound::BackgroundSync(Err(e)) => {
                self.core.step(Event::SyncFailed { error: ErrorChain(&e).to_string() }, now)
            }
            Inbound::Spare(result) => {
                self.spare_pending = false;
                match result {
                    Ok(file) => self.spare = Some(file),
                    Err(e) => {
                        warn!(error = %ErrorChain(&e), "cannot prepare the next WAL segment; it will be created when needed")
                    }
                }
            }
            Inbound::Shutdown => self.core.step(Event::Shutdown, now),
        }
    }

    fn active_path(&self) -> &Path {
        self.segments.last().map_or(&self.dir, |s| &s.path)
    }

    /// Carries out one action; returns its outcome for the core, if it has one.
    ///
    /// # Panics
    /// If the core asks for file IO while there is no active segment (it
    /// never does: it tracks the segment's existence itself).
    fn execute(&mut self, action: Action) -> Option<Event> {
        // The policy keeps a failure as the text INFO and replies show.
        let failed = |op, path: &Path, e| ErrorChain(&io_err(op, path)(e)).to_string();
        match action {
            Action::Write { offset, bytes } => {
                let file = self.active.as_ref().expect("the core writes only to an active segment");
                Some(match file.write_all_at(&bytes, offset) {
                    Ok(()) => {
                        self.shared.active_len.store(offset + bytes.len() as u64, Ordering::Relaxed);
                        self.shared.written_bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        Event::WriteDone
                    }
                    Err(e) => Event::WriteFailed { error: failed("write", self.active_path(), e) },
                })
            }
            Action::Truncate { len } => {
                let file = self.active.as_ref().expect("the core truncates only an active segment");
                Some(match file.set_len(len) {
                    Ok(()) => {
                        // The cut took the preallocated tail with it.
                        preallocate(file.as_ref(), self.active_path(), self.segment_bytes);
                        Event::TruncateDone
                    }
                    Err(e) => Event::TruncateFailed { error: failed("truncate", self.active_path(), e) },
                })
            }
            Action::Sync { upto, generation } => {
                let file = self.active.as_ref().expect("the core fsyncs only an active segment");
                let owed = self.renames > self.dir_synced;
                let dir = owed.then_some(self.dir.as_path());
                Some(match sync_segment(&self.shared, file.as_ref(), self.fs.as_ref(), dir) {
                    Ok(()) => {
                        self.dir_synced = self.renames;
                        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                        Event::SyncDone { upto, generation }
                    }
                    Err(e) => Event::SyncFailed { error: failed("fsync", self.active_path(), e) },
                })
            }
            Action::SyncInBackground { upto, generation } => {
                let file = self.active.clone().expect("the core fsyncs only an active segment");
                let dir = (self.renames > self.dir_synced).then(|| (self.dir.clone(), self.renames));
                let job = SyncJob {
                    file,
                    fs: self.fs.clone(),
                    dir,
                    path: self.active_path().to_owned(),
                    upto,
                    generation,
                };
                self.sync_in_background(job)
            }
            Action::CreateSegment { first } => Some(self.start_segment(first)),
            Action::Publish(d) => {
                self.shared.durable.send_if_modified(|cur| std::mem::replace(cur, d) != d);
                None
            }
            Action::Report(report) => {
                self.report(report);
                None
            }
            Action::AnswerRotate => {
                for w in self.rotate_waiters.drain(..) {
                    let _ = w.send(());
                }
                None
            }
            Action::Exit(_) => None,
        }
    }

    fn report(&self, report: Report) {
        let shown = match report {
            Report::Failing(e) => {
                error!(error = %e, "WAL write failed: writes are refused until the disk accepts them again \
                                    (retried every second)");
                Some(e)
            }
            Report::StillFailing(e) => {
                debug!(error = %e, "WAL write failed again");
                Some(e)
            }
            Report::Recovered => {
                info!(path = %self.active_path().display(), "WAL writes succeed again; accepting writes");
                None
            }
            Report::Fatal(e) => {
                error!(
                    error = %e,
                    "WAL fsync failed: the WAL can no longer be made durable. Writes are refused until the \
                     server is restarted; restart it (recovery trusts only what the files hold)"
                );
                Some(e)
            }
            Report::Detached(e) => {
                error!(error = %e, "replacing the WAL failed: no WAL until the next full resync");
                Some(e)
            }
        };
        *lock(&self.shared.last_error) = shown;
    }

    /// Closes the active segment (the core fsynced it) and starts `first`.
    fn start_segment(&mut self, first: u64) -> Event {
        if self.active.take().is_some() {
            let len = self.shared.active_len.load(Ordering::Relaxed);
            if let Some(last) = self.segments.last_mut() {
                last.len = len;
            }
            self.shared.closed_bytes.fetch_add(len, Ordering::Relaxed);
            self.shared.active_len.store(0, Ordering::Relaxed);
        }
        let started = match self.spare.take() {
            Some(spare) => self.rename_spare(spare, first),
            None => create_segment(self.fs.as_ref(), &self.dir, first, self.segment_bytes),
        };
        match started {
            Ok((file, path)) => {
                self.segments.push(Segment { first, path, len: 0 });
                self.active = Some(file);
                self.shared.active_len.store(WAL_HEADER_LEN as u64, Ordering::Relaxed);
                self.shared.segments.store(self.segments.len(), Ordering::Relaxed);
                Event::SegmentCreated
            }
            Err((e, fsync)) => Event::CreateFailed { error: ErrorChain(&e).to_string(), fsync },
        }
    }

    /// Starts segment `first` from the spare: its header written and the
    /// file renamed, nothing fsynced — both are made durable by the
    /// segment's first fsync (see `renames`) before any of its records is
    /// reported synced, so a rotation costs a `pwrite` and a `rename`. A
    /// crash before that leaves the spare's name (deleted at start) or a
    /// segment whose header is zeros (read as empty): neither holds a
    /// record anyone was told is durable.
    fn rename_spare(
        &mut self,
        spare: Arc<dyn WritableFile>,
        first: u64,
    ) -> Result<(Arc<dyn WritableFile>, PathBuf), (WalError, bool)> {
        let path = self.dir.join(segment_name(first));
        spare.write_all_at(&header(first), 0).map_err(|e| (io_err("write WAL header", &path)(e), false))?;
        let from = self.dir.join(SPARE_SEGMENT);
        self.fs.rename(&from, &path).map_err(|e| (io_err("rename WAL segment", &path)(e), false))?;
        self.renames += 1;
        Ok((spare, path))
    }

    fn sync_in_background(&mut self, job: SyncJob) -> Option<Event> {
        if self.syncer.is_none() {
            match Syncer::start(self.shared.clone()) {
                Ok(s) => self.syncer = Some(s),
                Err(e) => warn!(error = %e, "cannot start the WAL syncer thread; fsyncing inline"),
            }
        }
        let job = match &self.syncer {
            Some(s) => match s.tx.send(job) {
                Ok(()) => return None,
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        // No syncer (it cannot be started, or died): do it here.
        Some(match job.run(&self.shared) {
            Ok((upto, generation, renames)) => {
                self.dir_synced = self.dir_synced.max(renames);
                self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
                Event::BackgroundSyncDone { upto, generation }
            }
            Err(e) => Event::SyncFailed { error: ErrorChain(&e).to_string() },
        })
    }

    fn delete_covered(&mut self, index: u64) -> usize {
        let mut deleted = 0;
        while self.segments.len() > 1 && self.segments[1].first <= index + 1 {
            match self.fs.remove(&self.segments[0].path) {
                Ok(()) => {
                    let seg = self.segments.remove(0);
                    self.shared.closed_bytes.fetch_sub(seg.len, Ordering::Relaxed);
                    deleted += 1;
                }
                Err(e) => {
                    warn!(path = %self.segments[0].path.display(), error = %e, "cannot delete covered WAL segment");
                    break;
                }
            }
        }
        self.shared.segments.store(self.segments.len(), Ordering::Relaxed);
        if deleted > 0 {
            // Not a durability claim: a segment that comes back after a
            // crash is covered by the snapshot and deleted at start.
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                warn!(dir = %self.dir.display(), error = %e, "cannot fsync the directory after deleting WAL segments");
            }
        }
        deleted
    }

    /// See [`super::WalWriter::restart_at`].
    fn restart(&mut self, next_index: u64, install: Install) -> Result<(), WalError> {
        if self.core.is_fatal() {
            let error = self.core.error().unwrap_or_default().to_owned();
            return Err(WalError::Failed(WriterFailure::Failing { error }));
        }
        // Records queued for the replaced dataset are dropped.
        let _ = self.shared.log.take_wal_now();
        self.active = None;
        match self.replace_segments(next_index, install) {
            Ok(()) => {
                self.shared.closed_bytes.store(0, Ordering::Relaxed);
                self.shared.active_len.store(WAL_HEADER_LEN as u64, Ordering::Relaxed);
                self.shared.segments.store(1, Ordering::Relaxed);
                self.core.step(Event::Restarted { next_index }, Instant::now());
                Ok(())
            }
            Err((e, fsync)) => {
                self.shared.segments.store(self.segments.len(), Ordering::Relaxed);
                self.core
                    .step(Event::RestartFailed { error: ErrorChain(&e).to_string(), fsync }, Instant::now());
                Err(e)
            }
        }
    }

    fn replace_segments(&mut self, next_index: u64, install: Install) -> Result<(), (WalError, bool)> {
        let fs = self.fs.clone();
        let mut failure = None;
        self.segments.retain(|seg| match fs.remove(&seg.path) {
            Ok(()) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => {
                failure.get_or_insert(io_err("delete WAL segment", &seg.path)(e));
                true
            }
        });
        if let Some(e) = failure {
            return Err((e, false));
        }
        fs.sync_dir(&self.dir).map_err(|e| (io_err("fsync directory", &self.dir)(e), true))?;
        install(fs.as_ref()).map_err(|e| (e, false))?;
        let (file, path) = create_segment(fs.as_ref(), &self.dir, next_index, self.segment_bytes)?;
        self.segments.push(Segment { first: next_index, path, len: 0 });
        self.active = Some(file);
        Ok(())
    }
}

/// An fsync for the syncer thread.
struct SyncJob {
    file: Arc<dyn WritableFile>,
    fs: Arc<dyn FileSystem>,
    /// Fsync this directory too (the segment's rename, number `.1`, is
    /// not durable yet).
    dir: Option<(PathBuf, u64)>,
    path: PathBuf,
    upto: u64,
    generation: u64,
}

impl SyncJob {
    fn run(self, shared: &Shared) -> Result<(u64, u64, u64), WalError> {
        shared.timed_sync(self.file.as_ref()).map_err(io_err("fsync", &self.path))?;
        let mut renames = 0;
        if let Some((dir, n)) = &self.dir {
            self.fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
            renames = *n;
        }
        Ok((self.upto, self.generation, renames))
    }
}

/// The syncer: fsyncs the active segment while the IO thread goes on
/// writing — `everysec`'s periodic fsync (as Redis's background fsync:
/// inline, it stalled every write queued behind it) and `always`'s
/// pipelined group commit — and hands the result back through the inbox.
struct Syncer {
    tx: mpsc::Sender<SyncJob>,
    thread: std::thread::JoinHandle<()>,
}

impl Syncer {
    fn start(shared: Arc<Shared>) -> std::io::Result<Syncer> {
        let (tx, rx) = mpsc::channel::<SyncJob>();
        let thread = std::thread::Builder::new().name("burrow-wal-sync".into()).spawn(move || {
            while let Ok(job) = rx.recv() {
                if shared.send(Inbound::BackgroundSync(job.run(&shared))).is_err() {
                    return;
                }
            }
        })?;
        Ok(Syncer { tx, thread })
    }
}
