//! The WAL writer's decisions, as a plain state machine: no files, threads
//! or clocks inside. The IO thread feeds it [`Event`]s (records queued, the
//! outcome of each action, requests, shutdown) with the current time, and
//! carries out the [`Action`]s it returns from [`WalPolicy::poll`] in order
//! — write, fsync, truncate, start a segment, publish progress — stepping
//! each outcome back before polling again. Everything the writer promises
//! (what `written` and `synced` mean, when a failure heals and when it is
//! fatal) is decided here and tested without a disk.
//!
//! Group commit under `always` is a two-stage pipeline: while one fsync
//! runs on the syncer thread ([`Action::SyncInBackground`]), this core
//! keeps handing out writes of the records queued meanwhile. A sync covers
//! exactly the records written before it started (`upto`, taken when it
//! is handed out), so `synced` advances to that index when it returns —
//! never further — and the next sync, covering everything written since,
//! starts at once. Under load the disk is never idle while writers wait,
//! and a write waits for at most the sync in flight plus its own (before,
//! the next batch was written only after the current sync returned).
//!
//! Failures:
//! - A failed write (EIO, ENOSPC, a short write) or a failed attempt to
//!   start the next segment changes no promise: nothing in it was reported
//!   written. The segment is cut back to its last record boundary, the
//!   bytes are kept, and the write is retried every [`RETRY_AFTER`]
//!   (ENOSPC, the usual cause, heals when space is freed); meanwhile
//!   `failed` is set, so writes are refused. Any durability problem the
//!   failure hides shows up at the next fsync, which is checked as below.
//! - A failed fsync is fatal: after one, Linux may have dropped the dirty
//!   pages and marked them clean, so a retried fsync can succeed without
//!   the data being on disk (PostgreSQL's 2018 "fsyncgate"). `synced` never
//!   advances again, nothing more is written, and the server refuses
//!   writes until it is restarted; recovery then trusts only what the
//!   files hold. The same goes for a failed cut-back after a failed write
//!   (the segment may end in a partial record, and appending after it
//!   would turn a torn tail into corruption in the middle) and a failed
//!   fsync while starting a segment.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::{Durability, WriterFailure};
use crate::persist::wal::WAL_HEADER_LEN;
use crate::persist::FsyncPolicy;

/// How often `everysec` fsyncs.
pub(super) const EVERYSEC: Duration = Duration::from_secs(1);
/// How long after a failed write (or segment start) it is tried again.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(1);

const HEADER: u64 = WAL_HEADER_LEN as u64;

/// What happened: input to [`WalPolicy::step`]. A failure's `error` is
/// the operation and its OS error as INFO and the log show them
/// (`fsync <path>: Input/output error`), built once by the IO thread.
#[derive(Debug)]
pub(super) enum Event {
    /// Records taken from the op log, sealed, ending with record `last`.
    Queued {
        bytes: BytesMut,
        last: u64,
    },
    /// The last [`Action::Write`] succeeded.
    WriteDone,
    /// The last [`Action::Write`] failed; part of it may be in the file.
    WriteFailed {
        error: String,
    },
    /// The last [`Action::Truncate`] succeeded.
    TruncateDone,
    TruncateFailed {
        error: String,
    },
    /// An inline [`Action::Sync`] succeeded.
    SyncDone {
        upto: u64,
        generation: u64,
    },
    /// A [`Action::SyncInBackground`] succeeded.
    BackgroundSyncDone {
        upto: u64,
        generation: u64,
    },
    /// An fsync of the WAL (inline or in the background) failed.
    SyncFailed {
        error: String,
    },
    /// The last [`Action::CreateSegment`] succeeded.
    SegmentCreated,
    /// The last [`Action::CreateSegment`] failed; `fsync`: in an fsync (of
    /// the new file or of the directory), which is fatal.
    CreateFailed {
        error: String,
        fsync: bool,
    },
    /// Someone (a snapshot) needs an fsync through `through`, whatever the policy.
    SyncRequested {
        through: u64,
    },
    /// Someone (after a snapshot) wants a new segment if the current one
    /// holds any record; answered by [`Action::AnswerRotate`].
    RotateRequested,
    /// The IO thread replaced the whole WAL by an empty segment starting at
    /// `next_index` (a follower that loaded its leader's snapshot).
    Restarted {
        next_index: u64,
    },
    /// Replacing the WAL failed part way: there is no active segment until
    /// the next successful restart. `fsync`: the failure was an fsync.
    RestartFailed {
        error: String,
        fsync: bool,
    },
    /// Write and fsync everything queued, then exit.
    Shutdown,
}

/// What to do: output of [`WalPolicy::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Write `bytes` at `offset` of the active segment (one `write`).
    Write { offset: u64, bytes: Bytes },
    /// Cut the active segment back to `len` bytes (after a failed write).
    Truncate { len: u64 },
    /// fsync the active segment now, on this thread.
    Sync { upto: u64, generation: u64 },
    /// Hand an fsync of the active segment to the syncer thread (`always`,
    /// `everysec`: writes go on meanwhile); it reports back with
    /// `generation`. At most one is in flight.
    SyncInBackground { upto: u64, generation: u64 },
    /// Start segment `first` (create, header, fsync, directory fsync); the
    /// previous one, fsynced, is closed.
    CreateSegment { first: u64 },
    /// Tell those waiting what is now written and synced.
    Publish(Durability),
    /// Log a change of health and show its error in INFO.
    Report(Report),
    /// Answer everyone waiting on [`Event::RotateRequested`].
    AnswerRotate,
    /// Stop: `Ok` once everything queued is written and fsynced, `Err`
    /// (why) if the WAL is failing.
    Exit(Result<(), WriterFailure>),
}

/// A change in the WAL's health, for the log and INFO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Report {
    /// Writes started failing; they are retried.
    Failing(String),
    /// A retry failed again.
    StillFailing(String),
    /// A retry succeeded: writes are accepted again.
    Recovered,
    /// The WAL can no longer be made durable: restart required.
    Fatal(String),
    /// Replacing the WAL failed: no segment until the next restart.
    Detached(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Ok,
    /// A write or segment start failed; tried again at `retry_at`.
    Failing {
        retry_at: Instant,
    },
    /// No active segment until the next [`Event::Restarted`].
    Detached,
    /// Nothing is written or fsynced again.
    Fatal,
}

/// The writer's state and decisions.
#[derive(Debug)]
pub(super) struct WalPolicy {
    policy: FsyncPolicy,
    segment_bytes: u64,
    /// Highest index taken from the op log. Invariant: `written ≤ queued`.
    queued: u64,
    /// Highest index in a segment file (handed to the OS).
    /// Invariant: `synced ≤ written ≤ queued`.
    written: u64,
    /// Highest index known to be on stable storage. Never advances once
    /// `health` is `Fatal`.
    synced: u64,
    /// Records queued and not yet handed to a write: they end with record
    /// `queued`, and follow `written` (or the write in progress) directly.
    pending: BytesMut,
    /// The write handed out and not yet answered, with its last index; its
    /// bytes go back in front of `pending` if it fails.
    writing: Option<(Bytes, u64)>,
    /// Length of the active segment, always a record boundary; `None` while
    /// there is none (being started, or starting it failed, or detached).
    segment_len: Option<u64>,
    /// A failed write must be cut off before anything else.
    truncate_owed: bool,
    /// Highest index someone asked to have fsynced.
    sync_requested: u64,
    /// A background fsync is in flight.
    background: bool,
    /// When the last `everysec` fsync started.
    last_sync: Instant,
    rotate_requested: bool,
    health: Health,
    /// Why `health` is not `Ok`: the failed operation and its OS error as
    /// INFO, the log and IO_ERROR replies show them. A message for humans,
    /// built once where the IO failed (the events carry it so), so a string.
    error: Option<String>,
    shutting_down: bool,
    /// Shutting down, and the last attempt to heal failed: exit.
    gave_up: bool,
    /// Bumped by each restart, so a background fsync of a replaced segment
    /// cannot claim indexes of the new one.
    generation: u64,
    /// Progress not yet published.
    dirty: bool,
    reports: VecDeque<Report>,
}

impl WalPolicy {
    /// A writer appending to a segment `segment_len` bytes long whose last
    /// record (or, on a fresh segment, the one before its first) is
    /// `last_index`, all of it on disk already (recovery read it back).
    pub(super) fn new(
        policy: FsyncPolicy,
        segment_bytes: u64,
        last_index: u64,
        segment_len: u64,
        now: Instant,
    ) -> WalPolicy {
        WalPolicy {
            policy,
            segment_bytes,
            queued: last_index,
            written: last_index,
            synced: last_index,
            pending: BytesMut::new(),
            writing: None,
            segment_len: Some(segment_len.max(HEADER)),
            truncate_owed: false,
            sync_requested: 0,
            background: false,
            last_sync: now,
            rotate_requested: false,
            health: Health::Ok,
            error: None,
            shutting_down: false,
            gave_up: false,
            generation: 0,
            dirty: false,
            reports: VecDeque::new(),
        }
    }

    /// What waiters see now.
    pub(super) fn durability(&self) -> Durability {
        Durability {
            written: self.written,
            synced: self.synced,
            failed: self.health != Health::Ok,
            fatal: self.health == Health::Fatal,
        }
    }

    /// Why the WAL refuses writes (`None` while it is healthy).
    pub(super) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Whether the WAL can no longer be made durable in this process.
    pub(super) fn is_fatal(&self) -> bool {
        self.health == Health::Fatal
    }

    /// When to be polled again if nothing happens before.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        match self.health {
            Health::Failing { retry_at } if !self.gave_up => Some(retry_at),
            Health::Ok if self.periodic_sync_owed() => Some(self.last_sync + EVERYSEC),
            _ => None,
        }
    }

    fn periodic_sync_owed(&self) -> bool {
        self.policy == FsyncPolicy::EverySec && !self.background && self.written > self.synced
    }

    /// Feeds one event in.
    ///
    /// # Panics
    /// If an outcome arrives for an action that was not handed out
    /// (`WriteDone` or `WriteFailed` with no write in progress).
    pub(super) fn step(&mut self, event: Event, now: Instant) {
        match event {
            Event::Queued { bytes, last } => {
                self.queued = last;
                if matches!(self.health, Health::Fatal | Health::Detached) {
                    // Never to be written: the writes they belong to were refused.
                } else if self.pending.is_empty() {
                    self.pending = bytes;
                } else {
                    self.pending.unsplit(bytes);
                }
            }
            Event::WriteDone => {
                let (bytes, last) = self.writing.take().expect("WriteDone without a write in progress");
                if let Some(len) = &mut self.segment_len {
                    *len += bytes.len() as u64;
                }
                self.written = last;
                self.dirty = true;
                self.healed();
            }
            Event::WriteFailed { error } => {
                let (bytes, _) = self.writing.take().expect("WriteFailed without a write in progress");
                let mut retry = BytesMut::with_capacity(bytes.len() + self.pending.len());
                retry.extend_from_slice(&bytes);
                retry.extend_from_slice(&self.pending);
                self.pending = retry;
                self.truncate_owed = true;
                self.fail(error, now);
            }
            Event::TruncateDone => {}
            Event::TruncateFailed { error } => self.fatal(format!(
                "{error} (cutting off a failed write; the segment may end in a partial record)"
            )),
            Event::SyncDone { upto, generation } => self.synced_through(upto, generation),
            Event::BackgroundSyncDone { upto, generation } => {
                if generation == self.generation {
                    self.background = false;
                }
                self.synced_through(upto, generation);
            }
            Event::SyncFailed { error } => {
                self.background = false;
                self.fatal(error);
            }
            Event::SegmentCreated => {
                self.segment_len = Some(HEADER);
                self.healed();
            }
            Event::CreateFailed { error, fsync: true } => self.fatal(error),
            Event::CreateFailed { error, fsync: false } => self.fail(error, now),
            Event::SyncRequested { through } => self.sync_requested = self.sync_requested.max(through),
            Event::RotateRequested => self.rotate_requested = true,
            Event::Restarted { next_index } => {
                if self.health == Health::Fatal {
                    return;
                }
                let at = next_index - 1;
                (self.queued, self.written, self.synced, self.sync_requested) = (at, at, at, 0);
                self.pending.clear();
                self.writing = None;
                self.segment_len = Some(HEADER);
                self.truncate_owed = false;
                self.background = false;
                self.generation += 1;
                self.dirty = true;
                self.healed();
            }
            Event::RestartFailed { error, fsync } => {
                self.pending.clear();
                self.writing = None;
                self.segment_len = None;
                self.truncate_owed = false;
                self.generation += 1;
                if fsync {
                    self.fatal(error);
                } else if self.health != Health::Fatal {
                    self.health = Health::Detached;
                    self.reports.push_back(Report::Detached(error.clone()));
                    self.error = Some(error);
                    self.dirty = true;
                }
            }
            Event::Shutdown => self.shutting_down = true,
        }
        self.debug_check();
    }

    /// Asserts the invariants stated on the fields (debug builds; O(1)).
    fn debug_check(&self) {
        debug_assert!(
            self.synced <= self.written && self.written <= self.queued,
            "synced {} ≤ written {} ≤ queued {}",
            self.synced,
            self.written,
            self.queued
        );
        debug_assert!(self
            .writing
            .as_ref()
            .is_none_or(|(_, last)| *last > self.written && *last <= self.queued));
        debug_assert!(self.health == Health::Ok || self.error.is_some(), "a failure without its reason");
    }

    fn synced_through(&mut self, upto: u64, generation: u64) {
        if generation == self.generation && self.health != Health::Fatal && upto > self.synced {
            debug_assert!(upto <= self.written, "synced {upto} beyond written {}", self.written);
            self.synced = upto.min(self.written);
            self.dirty = true;
        }
    }

    /// A write or segment start succeeded: a failure episode is over.
    fn healed(&mut self) {
        if matches!(self.health, Health::Failing { .. } | Health::Detached) {
            self.health = Health::Ok;
            self.error = None;
            self.gave_up = false;
            self.dirty = true;
            self.reports.push_back(Report::Recovered);
        }
    }

    fn fail(&mut self, error: String, now: Instant) {
        match self.health {
            Health::Fatal | Health::Detached => return,
            Health::Ok => self.reports.push_back(Report::Failing(error.clone())),
            Health::Failing { .. } => self.reports.push_back(Report::StillFailing(error.clone())),
        }
        self.health = Health::Failing { retry_at: now + RETRY_AFTER };
        self.error = Some(error);
        self.gave_up = self.shutting_down;
        self.dirty = true;
    }

    fn fatal(&mut self, error: String) {
        if self.health == Health::Fatal {
            return;
        }
        self.health = Health::Fatal;
        self.pending.clear();
        self.reports.push_back(Report::Fatal(error.clone()));
        self.error = Some(error);
        self.dirty = true;
    }

    /// The next thing to do, if any. Call until `None`, carrying out each
    /// action and stepping its outcome in before the next call.
    pub(super) fn poll(&mut self, now: Instant) -> Option<Action> {
        if let Some(r) = self.reports.pop_front() {
            return Some(Action::Report(r));
        }
        if self.truncate_owed {
            if let Some(len) = self.segment_len {
                self.truncate_owed = false;
                return Some(Action::Truncate { len });
            }
        }
        let waiting = match self.health {
            Health::Ok => false,
            Health::Failing { retry_at } => self.gave_up || (now < retry_at && !self.shutting_down),
            Health::Detached | Health::Fatal => true,
        };
        if waiting {
            return self.poll_broken();
        }
        let Some(len) = self.segment_len else {
            return Some(Action::CreateSegment { first: self.written + 1 });
        };
        if !self.pending.is_empty() {
            let bytes = self.pending.split().freeze();
            self.writing = Some((bytes.clone(), self.queued));
            return Some(Action::Write { offset: len, bytes });
        }
        if self.written > self.synced {
            if self.policy == FsyncPolicy::Always && !self.shutting_down {
                // Pipelined: one fsync in flight on the syncer thread while
                // this thread writes the next batch; it covers every record
                // written before it started (`upto`), and the next one starts
                // as soon as it returns, so the disk never idles while
                // writers wait. Requested syncs ride on it.
                if !self.background {
                    return Some(self.sync_in_background());
                }
            } else if self.sync_requested > self.synced || self.shutting_down {
                return Some(self.sync());
            }
        }
        if std::mem::take(&mut self.dirty) {
            return Some(Action::Publish(self.durability()));
        }
        let rotate = len >= self.segment_bytes || (self.rotate_requested && len > HEADER);
        if rotate && !self.shutting_down {
            // The closing segment must be fsynced first: later fsyncs only
            // cover the new one.
            if self.written > self.synced {
                return Some(self.sync());
            }
            self.segment_len = None;
            return Some(Action::CreateSegment { first: self.written + 1 });
        }
        if std::mem::take(&mut self.rotate_requested) {
            return Some(Action::AnswerRotate);
        }
        if self.shutting_down {
            return Some(Action::Exit(Ok(())));
        }
        if self.periodic_sync_owed() && now >= self.last_sync + EVERYSEC {
            self.last_sync = now;
            return Some(self.sync_in_background());
        }
        None
    }

    /// Hands an fsync of everything written so far to the syncer thread.
    fn sync_in_background(&mut self) -> Action {
        self.background = true;
        Action::SyncInBackground { upto: self.written, generation: self.generation }
    }

    fn sync(&self) -> Action {
        Action::Sync { upto: self.written, generation: self.generation }
    }

    /// While failing (between retries), detached or fatal: publish,
    /// answer rotation requests, exit on shutdown; no IO.
    fn poll_broken(&mut self) -> Option<Action> {
        if std::mem::take(&mut self.dirty) {
            return Some(Action::Publish(self.durability()));
        }
        if std::mem::take(&mut self.rotate_requested) {
            return Some(Action::AnswerRotate);
        }
        if !self.shutting_down {
            return None;
        }
        let error = self.error.clone().unwrap_or_default();
        Some(Action::Exit(Err(if self.queued > self.written && self.health != Health::Fatal {
            WriterFailure::Unwritten { first: self.written + 1, last: self.queued, error }
        } else {
            WriterFailure::Failing { error }
        })))
    }
}

#[cfg(test)]
mod tests;
