//! A data set recovery found incomplete: snapshot shard images that reach
//! past the last record the WAL holds.
//!
//! A full resync's snapshot is fuzzy: each shard image covers the log up
//! to its own index, and the follower completes it with the records up to
//! the highest one. Killed before they all arrived, it restarts with shards
//! at different indexes and a WAL that ends below some of them: the store
//! is the image of no log prefix. Claiming the highest cover would let a
//! leader resume it past records some shards never got; claiming the WAL's
//! end would apply again records other shards already hold. So a cluster
//! member discards such a data set and takes a full resync
//! ([`discard_incomplete`]); a standalone server, whose files are the only
//! copy, keeps every shard image and writes them as one even snapshot
//! ([`even_out`]).

use std::path::Path;

use tracing::{info, warn};

use super::node_meta::{read_node_meta, write_node_meta_with, NodeMeta};
use super::snapshot::{list_snapshots, write_snapshot_with};
use super::wal::io_err;
use super::{FileSystem, PersistError, RecoveryReport};
use crate::store::Store;

/// How far the log reaches and how far the shard images do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incomplete {
    /// The log's last index: the WAL's last record, or the snapshot's
    /// lowest cover if the WAL holds none after it.
    pub log_end: u64,
    /// The highest shard image's cover (above `log_end`).
    pub max_cover: u64,
}

/// Empties a cluster member's incomplete data set, in memory (index 0) and
/// on disk: first the node file stops naming a history, then the WAL
/// segments and the snapshots are deleted — in that order, so a crash in
/// between leaves files that recovery finds incomplete again. The member
/// then claims an empty log in elections and takes a full resync.
pub(crate) fn discard_incomplete(
    fs: &dyn FileSystem,
    dir: &Path,
    store: &Store,
    report: &mut RecoveryReport,
) -> Result<(), PersistError> {
    let Some(gap) = report.incomplete else { return Ok(()) };
    warn!(
        log_end = gap.log_end,
        shard_images_up_to = gap.max_cover,
        "incomplete data set: the snapshot's shard images reach past the WAL's last record \
         (a full resync cut short by a crash); discarding it for a full resync from the leader"
    );
    store.clear_unlogged();
    store.log().reset_to(0, 0);
    let term = read_node_meta(dir)?.map_or(0, |m| m.term);
    write_node_meta_with(fs, dir, NodeMeta { history_id: 0, term, clean: false })?;
    for (_, path, _) in report.segments.drain(..) {
        fs.remove(&path).map_err(io_err("delete WAL segment", &path))?;
    }
    let snapshots = list_snapshots(dir).map_err(io_err("list snapshots", dir))?;
    for (_, path) in snapshots {
        fs.remove(&path).map_err(io_err("delete snapshot", &path))?;
    }
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    report.snapshot = None;
    report.last_index = 0;
    Ok(())
}

/// Keeps a standalone server's incomplete data set whole: every shard
/// image and every record the WAL held, written as one snapshot covering
/// the highest cover (the log continues after it); then the WAL segments
/// it covers are deleted, so the WAL starts afresh past it with no gap.
/// Cases: a snapshot without its WAL (restored alone), or a WAL torn short
/// of it (records between are then in some shards only — logged).
pub(crate) fn even_out(
    fs: &dyn FileSystem,
    dir: &Path,
    store: &Store,
    report: &mut RecoveryReport,
    now_ms: u64,
) -> Result<(), PersistError> {
    let Some(gap) = report.incomplete else { return Ok(()) };
    if !report.segments.is_empty() {
        warn!(
            log_end = gap.log_end,
            shard_images_up_to = gap.max_cover,
            "the WAL ends before the snapshot's highest shard image: the records between are in \
             some shards only; keeping every shard image as they are"
        );
    }
    let term = store.log().stats().term;
    let info = write_snapshot_with(fs, store, dir, term, now_ms, |_| Ok(()))?;
    info!(path = %info.path.display(), index = info.index, "re-snapshotted an uneven snapshot");
    for (_, path, _) in report.segments.drain(..) {
        fs.remove(&path).map_err(io_err("delete WAL segment", &path))?;
    }
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))?;
    if let Some((path, meta)) = report.snapshot.as_mut() {
        *path = info.path;
        meta.covers.iter_mut().for_each(|c| *c = info.index);
    }
    Ok(())
}
