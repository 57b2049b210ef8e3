//! Disk faults under a real server: its persistence files are written
//! through a `FaultyFileSystem` (burrow-server's `fault-injection`
//! feature), which fails chosen writes, fsyncs or
//! renames with EIO, ENOSPC or a short write. Each case ends in the state
//! README's "Disk errors" documents: the replies clients get, what INFO
//! says, how shutdown ends, and what a restart on the same files recovers.

use crate::common;

use burrow_client::Client;
use burrow_proto::{ErrorChain, Status};
use burrow_server::fault_injection::{Fault, FaultyFileSystem, FsOp, Injected};
use burrow_server::{Config, FsyncPolicy};

use common::{info_field, FaultyServer, TempDir};

/// Restarts on the same files with the real file system: what recovery finds.
async fn restarted(dir: &TempDir) -> (burrow_server::ServerHandle, Client) {
    restarted_with(dir, |_| {}).await
}

async fn restarted_with(
    dir: &TempDir,
    tweak: impl FnOnce(&mut Config),
) -> (burrow_server::ServerHandle, Client) {
    let d = dir.path().to_owned();
    let server = common::start_with(move |c| {
        c.persistence = true;
        c.data_dir = d;
        tweak(c);
    })
    .await;
    let c = Client::connect(server.addr).await.unwrap();
    (server, c)
}

async fn persistence_info(c: &mut Client) -> String {
    c.info("persistence").await.unwrap()
}

/// Fails every write to a WAL segment with `injected` until cleared.
fn fail_wal_writes(fs: &FaultyFileSystem, injected: Injected) {
    fs.inject(Fault::new(FsOp::Write, injected).on_paths_containing("wal-"));
}

#[tokio::test]
async fn eio_on_a_wal_write_refuses_writes_until_the_disk_accepts_them_again() {
    let dir = TempDir::new("fault-eio-write");
    let fs = FaultyFileSystem::new();
    let server = FaultyServer::start(&dir, FsyncPolicy::EverySec, &fs).await;
    let mut c = server.client().await;
    c.set("before", "1").await.unwrap();

    fail_wal_writes(&fs, Injected::Eio);
    let err = c.set("failed", "2").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    assert!(err.to_string().contains("Input/output error"), "{err}");
    let err = c.set("refused", "3").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    assert!(
        err.to_string().contains("the WAL cannot be written") && err.to_string().contains("reads still work")
    );
    let info = persistence_info(&mut c).await;
    assert_eq!(info_field(&info, "wal_status"), "failing", "{info}");
    assert!(info_field(&info, "wal_last_error").contains("Input/output error"), "{info}");
    // Applied in memory, but not shown while the WAL has not written it: a
    // crash now would lose it. Reads of other keys still work.
    let err = c.get("failed").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    assert!(err.to_string().contains("read refused: the value is not durable yet"), "{err}");
    assert_eq!(c.get("before").await.unwrap().as_deref(), Some(&b"1"[..]), "reads still work");
    assert_eq!(c.get("refused").await.unwrap(), None, "a refused write is not applied");

    fs.clear();
    let addr = server.addr;
    common::wait_for("writes to be accepted again", || async move {
        Client::connect(addr).await.unwrap().set("after", "4").await.is_ok()
    })
    .await;
    assert_eq!(c.get("failed").await.unwrap().as_deref(), Some(&b"2"[..]), "written by the retry: shown");
    let info = persistence_info(&mut c).await;
    assert_eq!(
        (info_field(&info, "wal_status"), info_field(&info, "wal_last_error")),
        ("ok".into(), String::new())
    );
    drop(c);
    server.shutdown().await.expect("a healed WAL shuts down cleanly");

    let (server, mut c) = restarted(&dir).await;
    for (key, value) in
        [("before", Some("1")), ("failed", Some("2")), ("refused", None), ("after", Some("4"))]
    {
        assert_eq!(c.get(key).await.unwrap().as_deref(), value.map(str::as_bytes), "{key}");
    }
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wal_that_stays_full_makes_shutdown_fail_and_a_restart_keeps_what_was_written() {
    let dir = TempDir::new("fault-enospc");
    let fs = FaultyFileSystem::new();
    let server = FaultyServer::start(&dir, FsyncPolicy::EverySec, &fs).await;
    let mut c = server.client().await;
    c.set("before", "1").await.unwrap();
    fail_wal_writes(&fs, Injected::NoSpace);
    let err = c.set("lost", "2").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    drop(c);

    let err = server.shutdown().await.expect_err("a failing WAL must fail the shutdown");
    let err = ErrorChain(&err).to_string();
    assert!(err.contains("WAL failure") && err.contains("could not be written"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");

    let (server, mut c) = restarted(&dir).await;
    assert_eq!(c.get("before").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(c.get("lost").await.unwrap(), None, "never reached the files");
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_short_write_leaves_no_partial_record_in_the_files() {
    let dir = TempDir::new("fault-short");
    let fs = FaultyFileSystem::new();
    let server = FaultyServer::start(&dir, FsyncPolicy::Always, &fs).await;
    let mut c = server.client().await;
    c.set("before", "1").await.unwrap();
    // Each attempt stores 10 bytes of the record, then the disk is full.
    fail_wal_writes(&fs, Injected::Short(10));
    let err = c.set("cut", "2").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    drop(c);
    assert!(server.shutdown().await.is_err());

    // Restart refusing torn tails: it starts only if the files end on a
    // record boundary.
    let (server, mut c) = restarted_with(&dir, |c| c.wal_truncate_torn = false).await;
    assert_eq!(c.get("before").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(c.get("cut").await.unwrap(), None);
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn eio_on_fsync_refuses_writes_until_a_restart_which_recovers_what_the_files_hold() {
    let dir = TempDir::new("fault-eio-fsync");
    let fs = FaultyFileSystem::new();
    let server = FaultyServer::start(&dir, FsyncPolicy::Always, &fs).await;
    let mut c = server.client().await;
    c.set("before", "1").await.unwrap();
    let synced = info_field(&persistence_info(&mut c).await, "wal_synced_index");

    // One failed fsync; the disk "works" again right after.
    fs.inject(Fault::new(FsOp::Sync, Injected::Eio).on_paths_containing("wal-").times(1));
    let err = c.set("unsynced", "2").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    let err = c.set("refused", "3").await.unwrap_err().to_string();
    assert!(err.contains("could not be made durable") && err.contains("restart the server"), "{err}");
    assert!(err.contains("Input/output error"), "{err}");
    let info = persistence_info(&mut c).await;
    assert_eq!(info_field(&info, "wal_status"), "restart_required", "{info}");
    assert_eq!(info_field(&info, "wal_synced_index"), synced, "nothing more is claimed synced");
    assert!(info_field(&info, "wal_last_error").contains("fsync"), "{info}");
    // A snapshot needs an fsynced WAL: refused too, and it changes nothing.
    let err = c.snapshot(false).await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    let err = c.set("still-refused", "4").await.unwrap_err().to_string();
    assert!(err.contains("restart the server"), "{err}");
    assert_eq!(c.get("before").await.unwrap().as_deref(), Some(&b"1"[..]), "reads still work");
    drop(c);
    let err = ErrorChain(&server.shutdown().await.expect_err("exits non-zero")).to_string();
    assert!(err.contains("WAL failure") && err.contains("fsync"), "{err}");

    // The record whose fsync failed is in the file (this disk kept it); a
    // real disk may not have: an IO_ERROR write may or may not survive.
    let (server, mut c) = restarted(&dir).await;
    let got = [
        c.get("before").await.unwrap(),
        c.get("unsynced").await.unwrap(),
        c.get("refused").await.unwrap(),
        c.get("still-refused").await.unwrap(),
    ];
    assert_eq!(got.map(|v| v.is_some()), [true, true, false, false]);
    c.set("after-restart", "5").await.unwrap();
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_snapshot_whose_rename_fails_changes_nothing() {
    let dir = TempDir::new("fault-rename");
    let fs = FaultyFileSystem::new();
    let server = FaultyServer::start(&dir, FsyncPolicy::EverySec, &fs).await;
    let mut c = server.client().await;
    c.set("a", "1").await.unwrap();
    fs.inject(Fault::new(FsOp::Rename, Injected::Eio).on_paths_containing("snapshot-").times(1));
    let err = c.snapshot(false).await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    assert!(err.to_string().contains("rename") && err.to_string().contains("Input/output error"), "{err}");
    let info = persistence_info(&mut c).await;
    assert!(info_field(&info, "last_snapshot_status").starts_with("err:"), "{info}");
    assert_eq!(info_field(&info, "wal_status"), "ok", "{info}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("snapshot-")), "no snapshot, no temp file: {names:?}");
    c.set("b", "2").await.unwrap();
    c.snapshot(false).await.expect("the next one works");
    c.set("c", "3").await.unwrap();
    drop(c);
    server.shutdown().await.unwrap();

    let (server, mut c) = restarted(&dir).await;
    for key in ["a", "b", "c"] {
        assert!(c.get(key).await.unwrap().is_some(), "{key}");
    }
    drop(c);
    server.shutdown().await.unwrap();
}

/// The binary: a WAL still failing at shutdown (here the next segment is a
/// symlink to /dev/full, so starting it fails with ENOSPC) makes it exit
/// non-zero, saying why, instead of 0.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_binary_exits_non_zero_when_its_wal_is_failing_at_shutdown() {
    let dir = TempDir::new("fault-exit");
    let server =
        common::ChildServer::start(dir.path(), &["--fsync", "always", "--wal-segment-bytes", "4096"]).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("before", "ok").await.unwrap();
    let next = dir.join(&burrow_server::formats::segment_name(3));
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    c.set("big", vec![b'x'; 4096]).await.unwrap();
    let addr = server.addr;
    common::wait_for("the WAL to report failure", || async move {
        let info = Client::connect(addr).await.unwrap().info("persistence").await.unwrap();
        info_field(&info, "wal_status") == "failing"
    })
    .await;
    drop(c);
    let (status, log) = server.terminate().await;
    assert!(!status.success(), "exit status {status}; stderr:\n{log}");
    assert!(log.contains("WAL failure") && log.contains("No space left on device"), "{log}");
    std::fs::remove_file(&next).unwrap();
    let (server, mut c) = restarted(&dir).await;
    assert_eq!(c.get("big").await.unwrap().map(|v| v.len()), Some(4096));
    drop(c);
    server.shutdown().await.unwrap();
}

/// Issue 11: records logged while the WAL fails — here the active expiry's
/// DEL of a key whose TTL runs out after the failure — are still unwritten
/// at SIGTERM: the binary says which ("records N..=M could not be
/// written") and exits non-zero, never 0.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_binary_exits_non_zero_when_records_could_not_be_written_at_shutdown() {
    let dir = TempDir::new("fault-unwritten");
    let server =
        common::ChildServer::start(dir.path(), &["--fsync", "everysec", "--wal-segment-bytes", "4096"]).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    // Expires once the WAL is failing (milliseconds from now): its DEL is
    // logged but cannot be written.
    c.set("doomed", "v").await.unwrap();
    assert!(c.expire("doomed", std::time::Duration::from_secs(5)).await.unwrap());
    // Records 1..=3 fill the first segment; the next one, from 4, cannot start.
    let next = dir.join(&burrow_server::formats::segment_name(4));
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    c.set("big", vec![b'x'; 4096]).await.unwrap();
    let addr = server.addr;
    common::wait_for("the WAL to fail", || async move {
        let info = Client::connect(addr).await.unwrap().info("persistence").await.unwrap();
        info_field(&info, "wal_status") == "failing"
    })
    .await;
    let expired = || async move {
        let info = Client::connect(addr).await.unwrap().info("keyspace").await.unwrap();
        common::info_u64(&info, "expired_keys")
    };
    assert_eq!(expired().await, 0, "the key expired before the WAL failed: its DEL was written");
    common::wait_for("the key to expire", || async move { expired().await == 1 }).await;
    drop(c);
    let (status, log) = server.terminate().await;
    assert!(!status.success(), "exit status {status}; stderr:\n{log}");
    assert!(log.contains("could not be written") && log.contains("No space left on device"), "{log}");
    std::fs::remove_file(&next).unwrap();
}
