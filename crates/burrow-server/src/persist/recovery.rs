//! Recovery at start: the newest snapshot, then the WAL records after it.
//!
//! Records are replayed in index order through `Store::replay`
//! (`Replay::Recovery`): the same `apply` as live writes. A record a shard's
//! snapshot image already contains (its index is at or below that image's
//! covered index) is skipped, so nothing is applied twice. A torn last record is truncated (or refused, by configuration); a
//! bad record anywhere else stops the start with the file and byte offset.
//! Shard images that reach past the WAL's last record are reported
//! ([`Incomplete`]); the server decides what to do with such a data set.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::incomplete::Incomplete;
use super::snapshot::{list_snapshots, read_snapshot, SnapshotMeta};
use super::wal::{io_err, list_segments, scan_segment, SegmentScan, WalError};
use super::{PersistConfig, PersistError};
use crate::store::{Replay, Replayed, ShardCovers, Store};

/// What recovery found and did; INFO reports it.
#[derive(Debug, Clone, Default)]
pub(crate) struct RecoveryReport {
    pub snapshot: Option<(PathBuf, SnapshotMeta)>,
    pub snapshot_entries: u64,
    pub records_replayed: u64,
    /// Records already contained in the snapshot.
    pub records_skipped: u64,
    /// A torn tail that was cut: file, byte offset, why.
    pub truncated: Option<(PathBuf, u64, String)>,
    pub last_index: u64,
    pub term: u64,
    pub duration: Duration,
    /// WAL segments to keep appending to: (first index, path, valid length).
    pub segments: Vec<(u64, PathBuf, u64)>,
    /// Some shard images reach past the WAL's last record (see
    /// [`Incomplete`]); `None` when the data set is a log prefix's image.
    pub incomplete: Option<Incomplete>,
}

const PROGRESS_EVERY: u64 = 1_000_000;

/// Loads `cfg.dir` into `store` (which must be empty). Creates the directory if missing.
/// `now_ms` only counts, for the log, snapshot entries whose TTL has passed;
/// recovery itself never expires anything.
pub(crate) fn recover(
    cfg: &PersistConfig,
    store: &Store,
    now_ms: u64,
) -> Result<RecoveryReport, PersistError> {
    let started = Instant::now();
    let dir = &cfg.dir;
    std::fs::create_dir_all(dir).map_err(|source| PersistError::Dir { dir: dir.clone(), source })?;
    remove_temp_files(dir)?;
    let mut report = RecoveryReport::default();

    let snapshots = list_snapshots(dir).map_err(|source| PersistError::Dir { dir: dir.clone(), source })?;
    if let Some((_, path)) = snapshots.last() {
        info!(path = %path.display(), "loading snapshot");
        let mut loaded = 0u64;
        // Every entry is loaded, even one whose TTL has passed since the
        // snapshot: WAL records after it may have changed that TTL (EXPIRE,
        // PERSIST) or updated the value under it (INCRBY, PUSH keep the
        // TTL), and they must apply to the entry the leader had, not to a
        // missing key. Expired keys are then dropped as usual, lazily or by
        // the sweep, with a logged DEL.
        let mut expired = 0u64;
        let meta = read_snapshot(path, 0, |e| {
            expired += u64::from(e.is_expired(now_ms));
            store.load(e);
            loaded += 1;
            if loaded.is_multiple_of(PROGRESS_EVERY) {
                info!(entries = loaded, "loading snapshot…");
            }
        })?;
        info!(
            entries = loaded,
            expired_since = expired,
            covers = meta.min_cover(),
            ms = started.elapsed().as_millis() as u64,
            "snapshot loaded"
        );
        report.snapshot_entries = loaded;
        report.term = meta.term;
        report.snapshot = Some((path.clone(), meta));
    }
    let covers = report.snapshot.as_ref().map(|(_, m)| ShardCovers::new(m.covers.clone()));
    let base = covers.as_ref().map_or(0, |c| c.min());

    let mut segments = list_segments(dir)?;
    // Segments wholly covered by the snapshot (left by a crash between the
    // snapshot's rename and their deletion) are deleted now.
    while segments.len() > 1 && segments[1].0 <= base + 1 {
        let (_, path) = segments.remove(0);
        info!(path = %path.display(), "deleting WAL segment covered by the snapshot");
        std::fs::remove_file(&path).map_err(io_err("delete WAL segment", &path))?;
    }
    if let Some((first, path)) = segments.first() {
        if *first > base + 1 {
            return Err(WalError::Gap { path: path.clone(), expected: base + 1, got: *first }.into());
        }
    }

    let mut last = base;
    let count = segments.len();
    for (n, (first, path)) in segments.into_iter().enumerate() {
        if n > 0 && first != last + 1 {
            return Err(WalError::Gap { path, expected: last + 1, got: first }.into());
        }
        let data = std::fs::read(&path).map_err(io_err("read WAL segment", &path))?;
        let len = data.len() as u64;
        let scan = scan_segment(&path, &data, first, |rec| {
            last = rec.index;
            report.term = report.term.max(rec.term);
            match store.replay(Replay::Recovery, covers.as_ref(), &rec) {
                Replayed::Applied | Replayed::Refused(_) => report.records_replayed += 1,
                Replayed::Covered => report.records_skipped += 1,
            }
            let done = report.records_replayed + report.records_skipped;
            if done.is_multiple_of(PROGRESS_EVERY) {
                info!(records = done, "replaying WAL…");
            }
            Ok(())
        })?;
        if n == 0 && last < base && first <= base + 1 {
            // Every record here is older than the snapshot: fine.
        }
        let valid = match scan {
            SegmentScan::Complete { .. } => len,
            // Preallocated and not (yet) written: a clean end (see `wal`).
            SegmentScan::Preallocated { offset, .. } => offset,
            SegmentScan::Torn { offset, reason, .. } => {
                if n + 1 < count {
                    return Err(WalError::Corrupt { path, offset, reason }.into());
                }
                if !cfg.truncate_torn_tail {
                    return Err(WalError::TornRefused { path, offset, reason }.into());
                }
                warn!(path = %path.display(), offset, reason = %reason, "truncating torn WAL tail");
                report.truncated = Some((path.clone(), offset, reason));
                offset
            }
        };
        if first > last {
            // An empty segment (no records yet): the next record is `first`.
            last = first - 1;
        }
        report.segments.push((first, path, valid));
    }
    let max_cover = covers.as_ref().map_or(0, |c| c.max());
    // The log this directory holds ends at its last record, or at the
    // snapshot's lowest cover if the WAL holds none after it.
    let log_end = last.max(base);
    if max_cover > log_end {
        report.incomplete = Some(Incomplete { log_end, max_cover });
    }
    report.last_index = last.max(max_cover);
    report.term = report.term.max(1);
    store.log().set_last_index(report.term, report.last_index);
    report.duration = started.elapsed();
    info!(
        last_index = report.last_index,
        replayed = report.records_replayed,
        skipped = report.records_skipped,
        keys = store.len(),
        ms = report.duration.as_millis() as u64,
        "recovery complete"
    );
    Ok(report)
}

fn remove_temp_files(dir: &std::path::Path) -> Result<(), PersistError> {
    let entries =
        std::fs::read_dir(dir).map_err(|source| PersistError::Dir { dir: dir.to_owned(), source })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".tmp")) {
            info!(path = %entry.path().display(), "removing unfinished snapshot");
            let _ = std::fs::remove_file(entry.path());
        } else if name == super::wal::SPARE_SEGMENT {
            // A segment prepared ahead and never started: no record in it.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
