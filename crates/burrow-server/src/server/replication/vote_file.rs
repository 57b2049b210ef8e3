//! Where a member keeps its term and vote (the `VOTE` file, protocol.md
//! §11.4): in its data directory, written through the server's
//! [`FileSystem`] (so tests inject disk faults), whether persistence is on
//! or off. With persistence off the data set is memory only, but a vote
//! kept in memory only would be forgotten by a restart, and the restarted
//! node could vote again in the same term: two leaders in one term, whose
//! records at the same (term, index) differ, which log matching assumes
//! never happens. So a member with persistence off still creates its data
//! directory, locks it and keeps this 28-byte file there (written only at
//! a term change or a vote).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::persist::{
    lock_data_dir, read_hard_state, write_hard_state_with, FileSystem, HardStateError, PersistError,
};
use crate::replication::HardState;
use crate::server::{Config, Persistence};

/// This member's vote file.
#[derive(Debug)]
pub(super) struct VoteFile {
    dir: PathBuf,
    fs: Arc<dyn FileSystem>,
    /// Persistence off: the data directory's lock, held for the process's
    /// life (with persistence on, [`Persistence`] holds it).
    _lock: Option<File>,
}

impl VoteFile {
    /// Opens the vote file of `config`'s data directory and reads it
    /// (a damaged file stops the start). With persistence off, `lock` is
    /// the directory's lock if the server took it already. Blocking.
    pub(super) fn open(
        config: &Config,
        persist: Option<&Arc<Persistence>>,
        fs: Arc<dyn FileSystem>,
        lock: Option<File>,
    ) -> Result<(VoteFile, HardState), PersistError> {
        let (dir, fs, lock) = match persist {
            Some(p) => (p.cfg.dir.clone(), p.fs().clone(), None),
            None => {
                let lock = match lock {
                    Some(l) => l,
                    None => lock_data_dir(&config.data_dir)?,
                };
                (config.data_dir.clone(), fs, Some(lock))
            }
        };
        let hard = read_hard_state(&dir)?.unwrap_or_default();
        Ok((VoteFile { dir, fs, _lock: lock }, hard))
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the file durably, on a blocking thread. On error the node
    /// must not act on `hard` (see `write_hard_state_with`).
    pub(super) async fn write(&self, hard: HardState) -> Result<(), HardStateError> {
        let (fs, dir) = (self.fs.clone(), self.dir.clone());
        match tokio::task::spawn_blocking(move || write_hard_state_with(fs.as_ref(), &dir, hard)).await {
            Ok(r) => r,
            Err(e) => Err(HardStateError::Io {
                op: "write vote file (task failed)",
                path: self.dir.join(crate::persist::HARD_STATE_FILE),
                source: std::io::Error::other(e),
            }),
        }
    }
}
