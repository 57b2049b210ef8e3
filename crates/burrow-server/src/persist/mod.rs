//! Durability: the write-ahead log, snapshots and crash recovery.
//!
//! The WAL is the op log on disk: the writer thread takes the records the
//! log has encoded (the same bytes the backlog holds and replication will
//! send) and appends them to segment files, fsyncing as the policy says
//! (`wal_writer`: a pure policy core and the IO thread that carries it
//! out). Every file is written through the [`FileSystem`] trait, so tests
//! can inject disk faults.
//! Snapshots are taken one shard at a time while writes continue; each
//! shard's image records the log index it corresponds to, and recovery
//! replays only the WAL records a shard's image does not already contain.
//! See protocol.md, "Persistence formats".

// Public through `crate::fault_injection` with the feature; a unit-test
// build without it uses part of it inside the crate only.
mod dir_lock;
#[cfg(any(test, feature = "fault-injection"))]
#[cfg_attr(not(feature = "fault-injection"), allow(unreachable_pub, dead_code))]
mod faulty_fs;
mod fs;
mod hard_state;
mod incomplete;
mod node_meta;
mod recovery;
mod snapshot;
mod wal;
mod wal_writer;

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

pub(crate) use dir_lock::lock_data_dir;
#[cfg(any(test, feature = "fault-injection"))]
#[cfg_attr(not(feature = "fault-injection"), allow(unreachable_pub))]
pub use faulty_fs::{Fault, FaultyFileSystem, FsOp, Injected};
pub(crate) use fs::{FileSystem, FileWriter, StdFileSystem, WritableFile};
pub(crate) use hard_state::write_hard_state_with;
pub use hard_state::{
    decode_hard_state, encode_hard_state, read_hard_state, HardStateError, HARD_STATE_FILE,
};
pub(crate) use incomplete::{discard_incomplete, even_out};
pub(crate) use node_meta::write_node_meta_with;
pub use node_meta::{decode_node_meta, encode_node_meta, read_node_meta, NodeMeta, NODE_FILE};
pub(crate) use recovery::{recover, RecoveryReport};
#[cfg(test)]
pub(crate) use snapshot::write_snapshot;
pub(crate) use snapshot::{
    encode_snapshot, list_snapshots, read_snapshot_from, write_snapshot_with, SnapshotInfo,
};
pub use snapshot::{read_snapshot, relabel_first_cover, snapshot_name, SnapshotError, SnapshotMeta};
pub use wal::{
    header as segment_header, list_segments, scan_segment, segment_name, SegmentScan, WalError,
    WAL_HEADER_LEN, WAL_MAGIC,
};
pub use wal_writer::WriterFailure;
pub(crate) use wal_writer::{Durability, WalWriter};

/// When the WAL is fsynced (Redis's `appendfsync`). `--fsync` and the
/// config file take the names below (`FromStr` is in `server::config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FsyncPolicy {
    /// A write is acknowledged only once its record is fsynced; concurrent
    /// writers share one fsync (group commit).
    Always,
    /// Written at once, fsynced once a second: a power loss can lose about
    /// the last second of acknowledged writes; a process crash loses none.
    #[default]
    #[value(name = "everysec")]
    EverySec,
    /// Written at once, fsynced when the OS decides.
    No,
}

impl FsyncPolicy {
    pub fn name(self) -> &'static str {
        match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::EverySec => "everysec",
            FsyncPolicy::No => "no",
        }
    }
}

/// Persistence settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PersistConfig {
    pub dir: PathBuf,
    pub fsync: FsyncPolicy,
    /// Start a new WAL segment past this many bytes.
    pub segment_bytes: u64,
    /// Take a snapshot after this many records since the last one (0 = never).
    pub snapshot_every_records: u64,
    /// Take a snapshot once the WAL holds this many bytes (0 = never).
    pub snapshot_wal_bytes: u64,
    /// Truncate a torn last WAL record at start (true) or refuse to start.
    pub truncate_torn_tail: bool,
}

impl PersistConfig {
    /// The default settings on `dir`, for tests (the server builds its own
    /// from `Config::persist_config`).
    #[cfg(test)]
    pub(crate) fn new(dir: PathBuf) -> PersistConfig {
        PersistConfig {
            dir,
            fsync: FsyncPolicy::default(),
            segment_bytes: 64 * 1024 * 1024,
            snapshot_every_records: 10_000_000,
            snapshot_wal_bytes: 512 * 1024 * 1024,
            truncate_torn_tail: true,
        }
    }
}

/// Files in `dir` named `<prefix><number><suffix>`, ordered by that number
/// (WAL segments by first index, snapshots by covered index).
pub(crate) fn numbered_files(
    dir: &std::path::Path,
    prefix: &str,
    suffix: &str,
) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = name.strip_prefix(prefix).and_then(|n| n.strip_suffix(suffix));
        if let Some(n) = number.and_then(|n| n.parse::<u64>().ok()) {
            out.push((n, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// How often the snapshot triggers are checked.
pub(crate) const TRIGGER_CHECK: Duration = Duration::from_secs(1);

/// Anything that stops the server from starting on its data directory.
#[derive(Debug, Error)]
pub enum PersistError {
    #[error("data directory {dir}")]
    Dir { dir: PathBuf, source: std::io::Error },
    #[error("data directory {0} is in use by another burrow-server (lock held on its LOCK file)")]
    Locked(PathBuf),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The vote file (term and vote) is unreadable or damaged.
    #[error(transparent)]
    HardState(#[from] HardStateError),
}
