//! A full resync's snapshot as the follower receives it: parsed into the
//! store as it arrives, on a blocking thread (the loader) fed through a
//! bounded channel, so loading overlaps the transfer; with persistence on,
//! the loader also writes it to a file that becomes this node's snapshot
//! ([`install`]).
//!
//! The channel holds at most [`IN_FLIGHT`] chunks. When parsing or writing
//! is slower than the network, the driver waits for room
//! ([`Incoming::push`], an async send: no tokio worker blocks) and reads
//! nothing from the link meanwhile, so TCP backpressure reaches the leader,
//! whose own queue per link is bounded too. Chunks from a Burrow leader are
//! at most 1 MiB, so the snapshot held in memory stays under a few MiB
//! however large it is: the queued chunks, the one the loader is on, its
//! read buffer and the one the driver waits to hand over.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::persist::{
    list_snapshots, read_snapshot_from, snapshot_name, write_node_meta_with, FileSystem, FileWriter,
    NodeMeta, SnapshotError, SnapshotMeta, WalError, WritableFile,
};
use crate::replication::HistoryId;
use crate::server::Persistence;
use crate::store::Store;

/// Where a received snapshot is written before it is loaded (removed by
/// recovery if a crash leaves it behind: it matches `snapshot-*.tmp`).
const SYNC_FILE: &str = "snapshot-sync.tmp";

/// Chunks queued for the loader at most.
const IN_FLIGHT: usize = 4;

/// The loader's read buffer.
const READ_BUFFER: usize = 1 << 20;

/// Why a full resync's snapshot could not be received, loaded or installed.
#[derive(Debug, Error)]
pub(super) enum ResyncError {
    /// The node file or the WAL could not be changed over.
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("create {path}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("write {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("fsync {path}")]
    Fsync { path: PathBuf, source: std::io::Error },
    /// The stream is not a valid snapshot.
    #[error(transparent)]
    Load(#[from] SnapshotError),
    #[error("a snapshot chunk without its first")]
    NoFirstChunk,
    #[error("snapshot complete but nothing was received")]
    NothingReceived,
    #[error("the snapshot covers index {covers} but was announced as covering {announced}")]
    Announced { covers: u64, announced: u64 },
    /// A blocking step of the resync panicked.
    #[error("the {0} task failed")]
    Task(&'static str, #[source] tokio::task::JoinError),
}

/// What the loader loaded, and the file it wrote it to.
pub(super) type Loaded = (SnapshotMeta, Option<Arc<dyn WritableFile>>);

/// A transfer in progress.
pub(super) struct Incoming {
    /// The file being written (persistence on).
    path: Option<PathBuf>,
    /// Chunks for the loader; dropped to signal the end (or an abort).
    tx: mpsc::Sender<Bytes>,
    loader: JoinHandle<Result<Loaded, ResyncError>>,
}

/// With persistence on, the first step of a transfer: the node file stops
/// naming a history (a crash from here until the new snapshot is installed
/// must not resume the old one) and the file it is written to is created.
pub(super) async fn create_file(
    p: Arc<Persistence>,
) -> Result<(PathBuf, Arc<dyn WritableFile>), ResyncError> {
    tokio::task::spawn_blocking(move || {
        let (dir, fs) = (&p.cfg.dir, p.fs());
        write_node_meta_with(fs.as_ref(), dir, NodeMeta { history_id: 0, term: 0, clean: false })?;
        let path = dir.join(SYNC_FILE);
        match fs.create(&path) {
            Ok(file) => Ok((path, file)),
            Err(source) => Err(ResyncError::Create { path, source }),
        }
    })
    .await
    .unwrap_or_else(|e| Err(ResyncError::Task("snapshot file", e)))
}

impl Incoming {
    /// Empties `store` and starts a loader parsing the chunks to come into
    /// it (and writing them to `file`, if any).
    pub(super) fn start(store: Arc<Store>, file: Option<(PathBuf, Arc<dyn WritableFile>)>) -> Incoming {
        let (tx, rx) = mpsc::channel(IN_FLIGHT);
        let path = file.as_ref().map(|(path, _)| path.clone());
        let sink = file.map(|(path, f)| (path, FileWriter::new(f)));
        let loader = tokio::task::spawn_blocking(move || {
            store.clear_unlogged();
            let mut chunks = ChunkReader { rx, cur: Bytes::new(), sink, failed: None };
            let reader = std::io::BufReader::with_capacity(READ_BUFFER, &mut chunks);
            let read =
                read_snapshot_from(reader, u64::MAX, Path::new("<leader snapshot>"), 0, |e| store.load(e));
            // A failed write to the file reaches the parser as a read
            // error: report it as itself.
            if let Some(e) = chunks.failed.take() {
                return Err(e);
            }
            Ok((read?, chunks.finish()?))
        });
        Incoming { path, tx, loader }
    }

    /// Hands the loader the next chunk. Completes at once while fewer than
    /// [`IN_FLIGHT`] are queued, else once the loader takes one: that wait
    /// is the backpressure. A loader that stopped early (a corrupt stream)
    /// drops the chunk; [`Incoming::finish`] says why it stopped.
    pub(super) fn push(&self, chunk: Bytes) -> impl std::future::Future<Output = ()> + Send + 'static {
        let tx = self.tx.clone();
        async move {
            let _ = tx.send(chunk).await;
        }
    }

    /// No more chunks: the file written (persistence on), and the loader's
    /// outcome once it has read the end.
    pub(super) fn finish(self) -> (Option<PathBuf>, JoinHandle<Result<Loaded, ResyncError>>) {
        drop(self.tx);
        (self.path, self.loader)
    }

    /// Stops a transfer cut short: waits for the loader (so it cannot race
    /// the next one) and deletes its file.
    pub(super) async fn abandon(self, fs: Option<Arc<dyn FileSystem>>) {
        let (path, loader) = self.finish();
        let _ = loader.await;
        if let (Some(path), Some(fs)) = (path, fs) {
            let _ = tokio::task::spawn_blocking(move || fs.remove(&path)).await;
        }
    }
}

/// `Read` over the chunks of a snapshot in transfer: blocks for the next
/// chunk, ends when the sender is dropped. Each chunk is first appended
/// to `sink`, if any, as received.
struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
    sink: Option<(PathBuf, FileWriter)>,
    /// Why writing to `sink` failed (the reader sees only an IO error).
    failed: Option<ResyncError>,
}

impl ChunkReader {
    fn pull(&mut self) -> Result<Option<Bytes>, ResyncError> {
        let Some(chunk) = self.rx.blocking_recv() else { return Ok(None) };
        if let Some((path, w)) = &mut self.sink {
            std::io::Write::write_all(w, &chunk)
                .map_err(|source| ResyncError::Write { path: path.clone(), source })?;
        }
        Ok(Some(chunk))
    }

    /// Writes the chunks still to come (after the snapshot's end) to the file.
    fn finish(mut self) -> Result<Option<Arc<dyn WritableFile>>, ResyncError> {
        while self.pull()?.is_some() {}
        Ok(self.sink.map(|(_, w)| w.file().clone()))
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.pull() {
                Ok(Some(chunk)) => self.cur = chunk,
                Ok(None) => return Ok(0),
                Err(e) => {
                    self.failed = Some(e);
                    return Err(std::io::Error::other("the snapshot file could not be written"));
                }
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        bytes::Buf::advance(&mut self.cur, n);
        Ok(n)
    }
}

/// Installs a snapshot the loader put into `store`: the log restarts at
/// `index` and, with persistence, the old WAL and snapshots are deleted,
/// the received file (`file`) is published as this node's snapshot, the WAL
/// restarts at `index + 1` and the node file names the new history.
/// Blocks: call it from a blocking thread.
pub(super) fn install(
    store: &Store,
    persist: Option<&Persistence>,
    file: Option<(PathBuf, Arc<dyn WritableFile>)>,
    meta: SnapshotMeta,
    index: u64,
    history_id: HistoryId,
    term: u64,
) -> Result<SnapshotMeta, ResyncError> {
    if meta.min_cover() < index {
        return Err(ResyncError::Announced { covers: meta.min_cover(), announced: index });
    }
    store.log().reset_to(term, index);
    if let (Some(p), Some((tmp, f))) = (persist, file) {
        if let Err(source) = f.sync_data() {
            return Err(ResyncError::Fsync { path: tmp, source });
        }
        drop(f);
        let dir = p.cfg.dir.clone();
        let target = dir.join(snapshot_name(meta.min_cover()));
        let publish = move |fs: &dyn FileSystem| {
            for (_, old) in list_snapshots(&dir).map_err(|e| WalError::Io {
                op: "list snapshots",
                path: dir.clone(),
                source: e,
            })? {
                let _ = fs.remove(&old);
            }
            fs.rename(&tmp, &target).map_err(|e| WalError::Io {
                op: "publish snapshot",
                path: target.clone(),
                source: e,
            })
        };
        p.wal.restart_at(index + 1, Box::new(publish))?;
        write_node_meta_with(p.fs().as_ref(), &p.cfg.dir, NodeMeta { history_id, term, clean: false })?;
    }
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::OpLog;
    use crate::persist::encode_snapshot;
    use burrow_proto::ErrorChain;
    use std::sync::{Condvar, Mutex};
    use std::time::{Duration, Instant};

    const KEYS: usize = 2000;
    const CHUNK: usize = 4096;

    /// A snapshot of `KEYS` counters, cut in `CHUNK`-byte pieces.
    fn snapshot_chunks() -> Vec<Bytes> {
        let store = Store::new(16, Arc::new(OpLog::counting(1 << 20)));
        for i in 0..KEYS {
            store.incr_by(format!("counter:{i}").as_bytes(), 1, 0).unwrap();
        }
        let mut bytes = Vec::new();
        encode_snapshot(&store, 1, 0, &mut bytes).unwrap();
        bytes.chunks(CHUNK).map(Bytes::copy_from_slice).collect()
    }

    /// A file whose writes wait until the test opens its gate (a disk
    /// slower than the network), or fail.
    #[derive(Default)]
    struct SlowFile {
        state: Mutex<Gate>,
        changed: Condvar,
    }

    #[derive(Default)]
    struct Gate {
        open: bool,
        fail: bool,
        writes_started: usize,
        written: Vec<u8>,
    }

    impl SlowFile {
        fn open(&self) {
            self.state.lock().unwrap().open = true;
            self.changed.notify_all();
        }

        /// Blocks until a write has started (polled with a deadline).
        fn wait_for_a_write(&self) {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut g = self.state.lock().unwrap();
            while g.writes_started == 0 {
                let left = deadline.checked_duration_since(Instant::now()).expect("the loader never wrote");
                g = self.changed.wait_timeout(g, left).unwrap().0;
            }
        }
    }

    impl WritableFile for SlowFile {
        fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
            let mut g = self.state.lock().unwrap();
            g.writes_started += 1;
            self.changed.notify_all();
            while !g.open {
                g = self.changed.wait(g).unwrap();
            }
            if g.fail {
                return Err(std::io::Error::from_raw_os_error(5));
            }
            assert_eq!(offset as usize, g.written.len(), "written front to back");
            g.written.extend_from_slice(buf);
            Ok(())
        }
        fn sync_data(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn set_len(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
        fn allocate(&self, _: u64) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn empty_store() -> Arc<Store> {
        Arc::new(Store::new(16, Arc::new(OpLog::counting(1 << 20))))
    }

    #[tokio::test]
    async fn a_loader_slower_than_the_link_holds_a_bounded_number_of_chunks_and_completes() {
        let chunks = snapshot_chunks();
        assert!(chunks.len() > IN_FLIGHT + 4, "{} chunks test nothing", chunks.len());
        let file = Arc::new(SlowFile::default());
        let store = empty_store();
        let inc = Incoming::start(store.clone(), Some(("sync.tmp".into(), file.clone())));
        let mut next = chunks.iter().cloned();

        // The loader takes the first chunk and is stuck writing it: the
        // channel fills, and then it takes no more.
        inc.push(next.next().unwrap()).await;
        file.wait_for_a_write();
        for _ in 0..IN_FLIGHT {
            inc.push(next.next().unwrap()).await;
        }
        assert!(
            matches!(inc.tx.try_send(Bytes::new()), Err(mpsc::error::TrySendError::Full(_))),
            "a loader that is behind holds {IN_FLIGHT} chunks, no more"
        );

        // The disk catches up: everything goes through, and loads.
        file.open();
        for chunk in next {
            inc.push(chunk).await;
        }
        let (path, loader) = inc.finish();
        let (meta, written) = loader.await.unwrap().unwrap();
        assert_eq!(path, Some(PathBuf::from("sync.tmp")));
        assert!(written.is_some());
        assert_eq!((meta.entries, store.len()), (KEYS as u64, KEYS));
        assert_eq!(file.state.lock().unwrap().written, chunks.concat(), "the file holds the stream");
    }

    #[tokio::test]
    async fn a_failed_write_to_the_file_is_reported_as_such_not_as_a_corrupt_snapshot() {
        let file = Arc::new(SlowFile::default());
        {
            let mut g = file.state.lock().unwrap();
            (g.open, g.fail) = (true, true);
        }
        let inc = Incoming::start(empty_store(), Some(("sync.tmp".into(), file.clone())));
        for chunk in snapshot_chunks() {
            inc.push(chunk).await;
        }
        let err = inc.finish().1.await.unwrap().map(|_| ()).unwrap_err();
        assert!(matches!(err, ResyncError::Write { .. }), "{err:?}");
        assert!(ErrorChain(&err).to_string().starts_with("write sync.tmp: Input/output error"), "{err}");
    }

    #[test]
    fn no_resync_error_prints_its_source_twice() {
        let io = || std::io::Error::from_raw_os_error(28);
        let path = || PathBuf::from("snapshot-sync.tmp");
        let errors = [
            ResyncError::Wal(WalError::Io { op: "create node file", path: path(), source: io() }),
            ResyncError::Create { path: path(), source: io() },
            ResyncError::Write { path: path(), source: io() },
            ResyncError::Fsync { path: path(), source: io() },
            ResyncError::Load(SnapshotError::Io { op: "read", path: path(), source: io() }),
            ResyncError::Announced { covers: 3, announced: 4 },
        ];
        for (i, e) in errors.iter().enumerate() {
            assert_eq!(ErrorChain(e).repeated_cause(), None, "#{i}: {e:?}");
        }
    }
}
