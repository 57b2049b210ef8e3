//! The server's side of persistence: the WAL writer, snapshot scheduling
//! (triggers, the SNAPSHOT command, shutdown) and the figures INFO shows.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info};

use super::now_ms;
use crate::persist::{
    discard_incomplete, even_out, lock_data_dir, recover, write_snapshot_with, Durability, FileSystem,
    PersistConfig, PersistError, RecoveryReport, SnapshotError, SnapshotInfo, WalError, WalWriter,
    WriterFailure,
};
use crate::store::Store;
use burrow_proto::ErrorChain;

/// Outcome of the last snapshot, for INFO.
#[derive(Debug, Clone, Default)]
pub(crate) struct SnapshotStats {
    pub count: u64,
    pub last_time_ms: u64,
    pub last_duration: Duration,
    pub last_bytes: u64,
    pub last_entries: u64,
    pub last_index: u64,
    /// The last failure's whole chain as INFO shows it (text built once).
    pub last_error: Option<String>,
}

/// Persistence state shared by the server's tasks.
pub(crate) struct Persistence {
    pub cfg: PersistConfig,
    pub wal: WalWriter,
    pub recovery: RecoveryReport,
    /// Every file this server writes goes through it (tests inject faults).
    fs: Arc<dyn FileSystem>,
    /// Held while a snapshot is being written: one at a time. In an `Arc`
    /// so a background snapshot's claim can outlive the request that made it.
    running: Arc<tokio::sync::Mutex<()>>,
    in_progress: AtomicBool,
    stats: Mutex<SnapshotStats>,
    /// Holds the data directory's exclusive lock for the process's lifetime.
    _lock: File,
}

impl std::fmt::Debug for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Persistence").field("cfg", &self.cfg).finish()
    }
}

/// The right to write the next snapshot, taken at once (see
/// [`Persistence::claim_snapshot`]).
pub(crate) struct SnapshotClaim {
    _held: tokio::sync::OwnedMutexGuard<()>,
}

/// Why a snapshot was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotRefusal {
    #[error("a snapshot is already being written")]
    InProgress,
    #[error(transparent)]
    Failed(#[from] SnapshotError),
    #[error("the snapshot task failed")]
    Task(#[source] tokio::task::JoinError),
}

impl Persistence {
    /// Locks the data directory, recovers it into `store`, and starts the
    /// WAL, writing files through `fs`. A `member` of a cluster discards a
    /// data set whose shard images reach past its log (see
    /// `persist::incomplete`); a standalone server keeps it.
    pub(crate) fn open_with(
        cfg: PersistConfig,
        store: &Store,
        fs: Arc<dyn FileSystem>,
        member: bool,
    ) -> Result<Persistence, PersistError> {
        let lock = lock_data_dir(&cfg.dir)?;
        let mut recovery = recover(&cfg, store, now_ms())?;
        if member {
            discard_incomplete(fs.as_ref(), &cfg.dir, store, &mut recovery)?;
        } else {
            // E.g. a snapshot restored without its WAL: a WAL starting at
            // its highest cover would not reach back to its lowest, and the
            // next start would see a gap.
            even_out(fs.as_ref(), &cfg.dir, store, &mut recovery, now_ms())?;
        }
        let wal = WalWriter::start(
            fs.clone(),
            store.log().clone(),
            &cfg,
            recovery.segments.clone(),
            recovery.last_index,
        )?;
        let stats = SnapshotStats {
            last_index: recovery.snapshot.as_ref().map_or(0, |(_, m)| m.min_cover()),
            ..SnapshotStats::default()
        };
        Ok(Persistence {
            cfg,
            wal,
            recovery,
            fs,
            running: Arc::new(tokio::sync::Mutex::new(())),
            in_progress: AtomicBool::new(false),
            stats: Mutex::new(stats),
            _lock: lock,
        })
    }

    pub(crate) fn durability(&self) -> watch::Receiver<Durability> {
        self.wal.subscribe()
    }

    pub(crate) fn failed(&self) -> bool {
        self.wal.durability().failed
    }

    /// What every persistence file is written through.
    pub(crate) fn fs(&self) -> &Arc<dyn FileSystem> {
        &self.fs
    }

    /// Stops the WAL writer once everything is written and fsynced; `Err`
    /// if the WAL was failing (the server must then exit non-zero). Runs
    /// on a blocking thread.
    pub(crate) async fn close_wal(self: &Arc<Self>) -> Result<(), WalError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.wal.shutdown())
            .await
            .unwrap_or(Err(WalError::Failed(WriterFailure::Panicked)))
    }

    pub(crate) fn snapshot_stats(&self) -> SnapshotStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Holds off snapshots (waiting for a running one to finish): a
    /// follower replacing its whole dataset and WAL must not race one.
    pub(crate) async fn exclude_snapshots(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.running.lock().await
    }

    pub(crate) fn in_progress(&self) -> bool {
        self.in_progress.load(Ordering::Relaxed)
    }

    /// Claims the right to write a snapshot now, or `InProgress` if one is
    /// being written or claimed. Synchronous: a background SNAPSHOT claims
    /// before it replies, so a second one in the same batch, which runs
    /// before the first's task does, is refused (protocol.md §8.8).
    pub(crate) fn claim_snapshot(&self) -> Result<SnapshotClaim, SnapshotRefusal> {
        self.running
            .clone()
            .try_lock_owned()
            .map(|_held| SnapshotClaim { _held })
            .map_err(|_| SnapshotRefusal::InProgress)
    }

    /// Writes a snapshot (waiting for a running one first unless `exclusive`,
    /// which refuses with `InProgress` instead), then deletes the WAL
    /// segments it covers.
    pub(crate) async fn snapshot(
        self: &Arc<Self>,
        store: Arc<Store>,
        exclusive: bool,
    ) -> Result<SnapshotInfo, SnapshotRefusal> {
        let claim = if exclusive {
            self.claim_snapshot()?
        } else {
            SnapshotClaim { _held: self.running.clone().lock_owned().await }
        };
        self.snapshot_claimed(store, claim).await
    }

    /// Writes a snapshot under `claim` (released when it is done), then
    /// deletes the WAL segments it covers.
    pub(crate) async fn snapshot_claimed(
        self: &Arc<Self>,
        store: Arc<Store>,
        claim: SnapshotClaim,
    ) -> Result<SnapshotInfo, SnapshotRefusal> {
        let _claim = claim;
        self.in_progress.store(true, Ordering::Relaxed);
        let me = self.clone();
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::spawn_blocking(move || {
            me.write(&store, &handle).map(|info| {
                let deleted = me.wal.delete_covered(info.index);
                (info, deleted)
            })
        })
        .await
        .unwrap_or_else(|e| Err(SnapshotRefusal::Task(e)));
        self.in_progress.store(false, Ordering::Relaxed);
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok((info, deleted)) => {
                info!(
                    path = %info.path.display(),
                    index = info.index,
                    entries = info.entries,
                    bytes = info.bytes,
                    ms = info.duration.as_millis() as u64,
                    wal_segments_deleted = deleted,
                    "snapshot written"
                );
                stats.count += 1;
                stats.last_time_ms = now_ms();
                stats.last_duration = info.duration;
                stats.last_bytes = info.bytes;
                stats.last_entries = info.entries;
                stats.last_index = info.index;
                stats.last_error = None;
                Ok(info)
            }
            Err(e) => {
                // INFO's `snapshot_last_error`: the whole chain, as logged.
                let why = ErrorChain(&e).to_string();
                error!(error = %why, "snapshot failed; the previous snapshot and the WAL remain valid");
                stats.last_error = Some(why);
                Err(e)
            }
        }
    }

    /// Runs on a blocking thread.
    fn write(&self, store: &Store, handle: &tokio::runtime::Handle) -> Result<SnapshotInfo, SnapshotRefusal> {
        let term = store.log().stats().term;
        // The snapshot may only replace the previous one once the WAL holds
        // every record it contains, so recovery always sees a prefix.
        let wait_wal = |upto: u64| -> Result<(), WalError> {
            self.wal.sync_through(upto);
            let mut rx = self.wal.subscribe();
            let failed = handle
                .block_on(rx.wait_for(|d| d.synced >= upto || d.failed))
                .map(|d| d.failed)
                .map_err(|_| WriterFailure::Stopped)?;
            match failed {
                true => {
                    Err(WriterFailure::Failing { error: self.wal.stats().last_error.unwrap_or_default() }
                        .into())
                }
                false => Ok(()),
            }
        };
        let info = write_snapshot_with(self.fs.as_ref(), store, &self.cfg.dir, term, now_ms(), wait_wal)?;
        // Close the current segment so that, once wholly covered, it can be deleted.
        self.wal.rotate(Duration::from_secs(5));
        Ok(info)
    }

    /// Whether the configured thresholds call for a snapshot now.
    pub(crate) fn due(&self, last_index: u64) -> bool {
        if self.in_progress() {
            return false;
        }
        let since = last_index.saturating_sub(self.snapshot_stats().last_index);
        let records_due = self.cfg.snapshot_every_records > 0 && since >= self.cfg.snapshot_every_records;
        let bytes_due =
            self.cfg.snapshot_wal_bytes > 0 && self.wal.stats().bytes >= self.cfg.snapshot_wal_bytes;
        (records_due || bytes_due) && since > 0
    }
}

/// Checks the snapshot triggers once a second until `cancel`.
pub(super) async fn schedule_snapshots(
    persist: Arc<Persistence>,
    store: Arc<Store>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(crate::persist::TRIGGER_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if persist.due(store.log().last_index()) {
            let started = Instant::now();
            let _ = persist.snapshot(store.clone(), true).await;
            tracing::debug!(ms = started.elapsed().as_millis() as u64, "triggered snapshot finished");
        }
    }
}
