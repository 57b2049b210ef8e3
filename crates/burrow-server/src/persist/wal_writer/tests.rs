//! The writer thread on real files, with faults injected by
//! [`FaultyFileSystem`]: each case ends in the documented state — what
//! waiters see, what INFO's error says, how shutdown ends, and what
//! recovery finds in the files left behind.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;

use super::*;
use crate::persist::{recover, Fault, FaultyFileSystem, FsOp, Injected, RecoveryReport, StdFileSystem};
use crate::store::Store;
use burrow_proto::ErrorChain;

/// A temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("burrow-wal-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const DEADLINE: Duration = Duration::from_secs(30);

struct Setup {
    dir: Dir,
    store: Store,
    wal: WalWriter,
    fs: FaultyFileSystem,
}

fn start(name: &str, policy: FsyncPolicy, segment_bytes: u64) -> Setup {
    let dir = Dir::new(name);
    let cfg = PersistConfig { fsync: policy, segment_bytes, ..PersistConfig::new(dir.0.clone()) };
    let store = Store::new(4, Arc::new(OpLog::counting(1 << 20)));
    let fs = FaultyFileSystem::new();
    let wal = WalWriter::start(Arc::new(fs.clone()), store.log().clone(), &cfg, Vec::new(), 0).unwrap();
    Setup { dir, store, wal, fs }
}

impl Setup {
    /// `n` writes (INCRBY c 1), each its own record.
    fn incr(&self, n: u64) {
        for _ in 0..n {
            self.store.incr_by(b"c", 1, 0).unwrap();
        }
    }

    /// Polls the durability watch until `pred` holds.
    fn wait_for(&self, what: &str, pred: impl Fn(&Durability) -> bool) -> Durability {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let d = self.wal.durability();
            if pred(&d) {
                return d;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {d:?}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Polls until a call is blocked by an [`Injected::Stall`].
    fn wait_stalled(&self) {
        let deadline = Instant::now() + DEADLINE;
        while self.fs.stalled() == 0 {
            assert!(Instant::now() < deadline, "the stalled call never started");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn error(&self) -> String {
        self.wal.stats().last_error.unwrap_or_default()
    }
}

/// What a restart finds: last index, the counter's value, the report.
fn recovered(dir: &Dir) -> (u64, i64, RecoveryReport) {
    // Refusing torn tails: a file must end on a record boundary.
    let cfg = PersistConfig { truncate_torn_tail: false, ..PersistConfig::new(dir.0.clone()) };
    let store = Store::new(4, Arc::new(OpLog::counting(1 << 20)));
    let report = recover(&cfg, &store, 0).unwrap();
    let counter = store.incr_by(b"c", 0, 0).unwrap();
    (report.last_index, counter, report)
}

#[test]
fn every_policy_writes_everything_and_shutdown_fsyncs_it() {
    for (i, policy) in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No].into_iter().enumerate() {
        let s = start("policies", policy, 300);
        for _ in 0..10 {
            s.incr(7);
            let last = s.store.log().last_index();
            match policy {
                FsyncPolicy::Always => s.wait_for("synced", |d| d.synced >= last),
                _ => s.wait_for("written", |d| d.written >= last),
            };
        }
        s.wal.sync_through(70);
        s.wait_for("the requested fsync", |d| d.synced >= 70);
        assert!(s.wal.stats().segments > 1, "case #{i}: 300-byte segments rotate");
        s.wal.shutdown().unwrap();
        assert_eq!(s.wal.durability(), Durability { written: 70, synced: 70, ..Default::default() });
        let (last, counter, _) = recovered(&s.dir);
        assert_eq!((last, counter), (70, 70), "case #{i} ({policy:?})");
    }
}

#[test]
fn segments_are_preallocated_and_appending_continues_after_a_restart() {
    let s = start("prealloc", FsyncPolicy::Always, 64 << 10);
    s.incr(5);
    s.wait_for("synced", |d| d.synced == 5);
    let seg = s.dir.0.join(crate::persist::segment_name(1));
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 64 << 10, "the size is final from the start");
    s.wal.shutdown().unwrap();
    // A clean end, not a torn tail (`recovered` refuses those).
    let (last, counter, report) = recovered(&s.dir);
    assert_eq!((last, counter), (5, 5));
    // Appending goes on after the records, not after the zeros.
    let cfg = PersistConfig {
        fsync: FsyncPolicy::Always,
        segment_bytes: 64 << 10,
        ..PersistConfig::new(s.dir.0.clone())
    };
    let store = Store::new(4, Arc::new(OpLog::counting(1 << 20)));
    let report2 = recover(&cfg, &store, 0).unwrap();
    assert_eq!(report2.segments, report.segments);
    let wal = WalWriter::start(
        Arc::new(StdFileSystem),
        store.log().clone(),
        &cfg,
        report2.segments,
        report2.last_index,
    )
    .unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 64 << 10, "preallocated again");
    for _ in 0..3 {
        store.incr_by(b"c", 1, 0).unwrap();
    }
    wal.shutdown().unwrap();
    let (last, counter, _) = recovered(&s.dir);
    assert_eq!((last, counter), (8, 8));
}

#[test]
fn the_next_segment_is_prepared_ahead_and_a_rotation_renames_it() {
    let s = start("spare", FsyncPolicy::Always, 4096);
    let spare = s.dir.0.join(crate::persist::wal::SPARE_SEGMENT);
    let deadline = Instant::now() + DEADLINE;
    while s.wal.stats().bytes < 2048 {
        s.incr(1);
        let last = s.store.log().last_index();
        s.wait_for("synced", |d| d.synced >= last);
    }
    // Half full: the spare is created, preallocated and fsynced off the IO thread.
    while std::fs::metadata(&spare).map(|m| m.len()).unwrap_or(0) < 4096 {
        assert!(Instant::now() < deadline, "no spare segment");
        std::thread::sleep(Duration::from_millis(1));
    }
    while s.wal.stats().segments < 2 {
        s.incr(10);
        let last = s.store.log().last_index();
        s.wait_for("synced", |d| d.synced >= last);
    }
    let last = s.store.log().last_index();
    s.wait_for("synced", |d| d.synced >= last);
    let segs = crate::persist::list_segments(&s.dir.0).unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(std::fs::metadata(&segs[1].1).unwrap().len(), 4096, "the renamed spare, preallocated");
    s.wal.shutdown().unwrap();
    // A spare left behind is not a segment; recovery deletes it.
    std::fs::write(&spare, vec![0u8; 4096]).unwrap();
    let (got, counter, _) = recovered(&s.dir);
    assert_eq!((got, counter), (last, last as i64));
    assert!(!spare.exists(), "deleted at start");
}

/// A copy of `dir`'s files: what a kill -9 now would leave (a process
/// crash keeps everything handed to the OS).
fn crash_copy(dir: &Dir, name: &str) -> Dir {
    let copy = Dir::new(name);
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.0.join(path.file_name().unwrap())).unwrap();
    }
    copy
}

#[test]
fn a_crash_at_every_stage_of_a_pipelined_batch_loses_nothing_acknowledged() {
    let s = start("stages", FsyncPolicy::Always, 1 << 20);
    s.incr(3);
    s.wait_for("batch 1 synced", |d| d.synced == 3);
    // Batch 2's fsync is in flight (stalled); batch 3 is written meanwhile.
    s.fs.inject(Fault::new(FsOp::Sync, Injected::Stall).times(1));
    s.incr(2);
    s.wait_stalled();
    s.incr(4);
    let d = s.wait_for("batch 3 written while batch 2 syncs", |d| d.written == 9);
    assert_eq!(d.synced, 3, "only what a completed fsync covered is acknowledged");
    // Crash now: batch 1 acknowledged, 2 in flight, 3 written.
    let crashed = crash_copy(&s.dir, "stages-crash");
    let (last, counter, report) = recovered(&crashed);
    assert!(last >= d.synced && counter >= d.synced as i64, "acknowledged records lost: {last}");
    assert!(report.truncated.is_none(), "the preallocated tail is a clean end");
    s.fs.release();
    // The sync returns covering 4..=5; the next one, for 6..=9, starts at once.
    let d = s.wait_for("batches 2 and 3 synced", |d| d.synced == 9);
    assert!(!d.failed);
    s.wal.shutdown().unwrap();
    let (last, counter, _) = recovered(&s.dir);
    assert_eq!((last, counter), (9, 9));
}

#[test]
fn a_failed_fsync_mid_pipeline_is_fatal_and_claims_nothing_after_it() {
    let s = start("stages-eio", FsyncPolicy::Always, 1 << 20);
    s.incr(2);
    s.wait_for("synced", |d| d.synced == 2);
    s.fs.inject(Fault::new(FsOp::Sync, Injected::Stall).times(1));
    s.fs.inject(Fault::new(FsOp::Sync, Injected::Eio));
    s.incr(1);
    s.wait_stalled();
    s.incr(2);
    s.wait_for("written meanwhile", |d| d.written == 5);
    // The stalled sync succeeds (it covered record 3); the next one fails.
    s.fs.release();
    let d = s.wait_for("the failure", |d| d.fatal);
    assert_eq!(d.synced, 3, "the failed sync claims nothing");
    assert!(s.wal.shutdown().is_err());
}

#[test]
fn eio_on_write_refuses_then_heals_and_the_records_are_written_on_retry() {
    let s = start("eio-write", FsyncPolicy::EverySec, 1 << 20);
    s.incr(1);
    s.wait_for("written", |d| d.written == 1);
    s.fs.inject(Fault::new(FsOp::Write, Injected::Eio).times(1));
    s.incr(4);
    let d = s.wait_for("the failure", |d| d.failed);
    assert!(!d.fatal && d.written == 1, "{d:?}");
    assert!(s.error().contains("Input/output error"), "{}", s.error());
    let refusal = s.wal.refusal();
    assert!(refusal.contains("cannot be written") && refusal.contains("reads still work"), "{refusal}");
    let d = s.wait_for("the retry to succeed", |d| !d.failed);
    assert_eq!(d.written, 5);
    assert_eq!(s.wal.stats().last_error, None);
    s.wal.shutdown().unwrap();
    let (last, counter, report) = recovered(&s.dir);
    assert_eq!((last, counter), (5, 5));
    assert!(report.truncated.is_none());
}

#[test]
fn enospc_until_space_is_freed_and_shutdown_reports_the_lost_records() {
    let s = start("enospc", FsyncPolicy::No, 1 << 20);
    s.fs.inject(Fault::new(FsOp::Write, Injected::NoSpace));
    s.incr(3);
    s.wait_for("the failure", |d| d.failed);
    assert!(s.error().contains("No space left on device"), "{}", s.error());
    // Retried (once a second) and still failing.
    let deadline = Instant::now() + DEADLINE;
    while s.fs.fired().len() < 2 {
        assert!(Instant::now() < deadline, "no retry");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(s.wal.durability().failed);
    let err = ErrorChain(&s.wal.shutdown().unwrap_err()).to_string();
    assert!(err.contains("records 1..=3 could not be written") && err.contains("No space left"), "{err}");
    assert_eq!(ErrorChain(&s.wal.shutdown().unwrap_err()).to_string(), err, "asked again, same answer");
    let (last, counter, _) = recovered(&s.dir);
    assert_eq!((last, counter), (0, 0), "the files hold none of them");
}

#[test]
fn a_short_write_is_cut_back_to_a_record_boundary_before_anyone_hears_of_it() {
    let s = start("short", FsyncPolicy::Always, 1 << 20);
    s.incr(2);
    s.wait_for("synced", |d| d.synced == 2);
    let seg = s.dir.0.join(crate::persist::segment_name(1));
    let len = s.wal.stats().bytes as usize;
    s.fs.inject(Fault::new(FsOp::Write, Injected::Short(7)).times(1));
    s.incr(3);
    s.wait_for("the failure", |d| d.failed);
    // What a crash now would leave: no partial record, the preallocated
    // zeros after the last whole one.
    let data = std::fs::read(&seg).unwrap();
    assert_eq!(data.len(), 1 << 20, "preallocated again after the cut");
    assert!(data[len..].iter().all(|&b| b == 0), "the 7 bytes were cut off");
    let (last, _, _) = recovered(&s.dir);
    assert_eq!(last, 2);
    let d = s.wait_for("the retry and its fsync", |d| !d.failed && d.synced == 5);
    assert_eq!((d.written, d.synced), (5, 5));
    s.wal.shutdown().unwrap();
    let (last, counter, _) = recovered(&s.dir);
    assert_eq!((last, counter), (5, 5));
}

#[test]
fn a_failed_cut_back_is_fatal() {
    let s = start("truncate", FsyncPolicy::No, 1 << 20);
    s.fs.inject(Fault::new(FsOp::Write, Injected::Short(7)).times(1));
    s.fs.inject(Fault::new(FsOp::SetLen, Injected::Eio).times(1));
    s.incr(1);
    let d = s.wait_for("the failure", |d| d.fatal);
    assert!(d.failed && d.written == 0);
    assert!(s.error().contains("partial record"), "{}", s.error());
    assert!(s.wal.shutdown().is_err());
}

#[test]
fn eio_on_fsync_is_fatal_even_if_the_disk_comes_back() {
    // (policy, how the failing fsync comes about)
    for (i, policy) in [FsyncPolicy::Always, FsyncPolicy::EverySec].into_iter().enumerate() {
        let s = start("eio-fsync", policy, 1 << 20);
        s.fs.inject(Fault::new(FsOp::Sync, Injected::Eio).times(1));
        s.incr(2);
        let d = s.wait_for("the failure", |d| d.fatal);
        // The fsync may have come after the first record or both.
        let w = d.written;
        assert!((1..=2).contains(&w) && (d.synced, d.failed) == (0, true), "case #{i}: {d:?}");
        let refusal = s.wal.refusal();
        assert!(
            refusal.contains("could not be made durable") && refusal.contains("restart"),
            "case #{i}: {refusal}"
        );
        assert!(s.error().contains("fsync") && s.error().contains("Input/output error"), "case #{i}");
        // The disk works again; nothing changes.
        s.fs.clear();
        let fsyncs = s.wal.stats().fsyncs;
        s.incr(1);
        s.wal.sync_through(3);
        assert!(!s.wal.rotate(DEADLINE) || s.wal.stats().segments == 1, "case #{i}: no rotation");
        let err = ErrorChain(&s.wal.shutdown().unwrap_err()).to_string();
        assert!(err.contains("fsync") && err.contains("Input/output error"), "case #{i}: {err}");
        assert_eq!(
            s.wal.durability(),
            Durability { written: w, synced: 0, failed: true, fatal: true },
            "case #{i}"
        );
        assert_eq!(s.wal.stats().fsyncs, fsyncs, "case #{i}: no fsync after the failure");
        // A restart trusts the files: the records written are there.
        let (last, counter, _) = recovered(&s.dir);
        assert_eq!((last, counter), (w, w as i64), "case #{i}");
    }
}

#[test]
fn a_segment_that_cannot_be_started_is_retried_until_it_can() {
    let s = start("rotate-enospc", FsyncPolicy::Always, 100);
    s.fs.inject(Fault::new(FsOp::Create, Injected::NoSpace).on_paths_containing("wal-").times(2));
    s.incr(4);
    s.wait_for("the failure", |d| d.failed);
    assert!(s.error().contains("create WAL segment"), "{}", s.error());
    s.incr(1);
    let d = s.wait_for("the retries", |d| !d.failed && d.synced == 5);
    assert!(!d.fatal);
    s.wal.shutdown().unwrap();
    assert_eq!(recovered(&s.dir).0, 5);
}

#[test]
fn a_failed_directory_fsync_when_starting_a_segment_is_fatal() {
    let s = start("rotate-fsync", FsyncPolicy::No, 100);
    s.fs.inject(Fault::new(FsOp::SyncDir, Injected::Eio).times(1));
    s.incr(4);
    s.wait_for("the failure", |d| d.fatal);
    assert!(s.error().contains("fsync directory"), "{}", s.error());
    assert!(s.wal.shutdown().is_err());
}

#[test]
fn covered_segments_are_deleted_and_counted() {
    let s = start("delete", FsyncPolicy::Always, 100);
    for _ in 0..6 {
        s.incr(2);
        let last = s.store.log().last_index();
        s.wait_for("synced", |d| d.synced >= last);
    }
    // Answered once the writer is done rotating.
    assert!(s.wal.rotate(DEADLINE));
    let before = s.wal.stats();
    assert!(before.segments >= 3, "{before:?}");
    let on_disk = || crate::persist::list_segments(&s.dir.0).unwrap();
    assert_eq!(on_disk().len(), before.segments);
    let deleted = s.wal.delete_covered(12);
    assert_eq!(deleted, before.segments - 1, "all but the active one");
    let after = s.wal.stats();
    assert_eq!((after.segments, on_disk().len()), (1, 1));
    assert!(after.bytes < before.bytes);
    s.wal.shutdown().unwrap();
    assert_eq!(s.wal.delete_covered(12), 0, "after shutdown: nothing, no hang");
}

#[test]
fn a_failed_restart_detaches_the_wal_until_one_succeeds() {
    let s = start("restart", FsyncPolicy::Always, 1 << 20);
    s.incr(3);
    s.wait_for("synced", |d| d.synced == 3);
    s.store.log().reset_to(1, 10);
    let failing: Install = Box::new(|_| {
        Err(WalError::Io { op: "rename", path: "snapshot".into(), source: std::io::Error::other("injected") })
    });
    let err = ErrorChain(&s.wal.restart_at(11, failing).unwrap_err()).to_string();
    assert!(err.contains("injected"), "{err}");
    let d = s.wait_for("detached", |d| d.failed);
    assert!(!d.fatal);
    assert!(crate::persist::list_segments(&s.dir.0).unwrap().is_empty(), "the old WAL is gone");
    s.wal.restart_at(11, Box::new(|_| Ok(()))).unwrap();
    assert_eq!(s.wal.durability(), Durability { written: 10, synced: 10, ..Default::default() });
    s.incr(1);
    s.wait_for("the new record", |d| d.synced == 11);
    assert_eq!(s.wal.stats().segments, 1);
    s.wal.shutdown().unwrap();
    let segs = crate::persist::list_segments(&s.dir.0).unwrap();
    assert_eq!(segs.iter().map(|(first, _)| *first).collect::<Vec<_>>(), vec![11]);
}
