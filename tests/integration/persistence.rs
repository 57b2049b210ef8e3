//! Durability through a real server: torn tails and corruption met at
//! start, snapshots plus the WAL, TTLs across restarts, a crash between a
//! snapshot and the WAL cleanup, WAL write failures.
//!
//! Cases use an in-process server with `--fsync always` (a write's reply
//! means its record is in the file) and copy its data directory while it is
//! idle: that copy is exactly what a crash at that moment would leave
//! behind, and a restart on it shows what recovery makes of it. The real
//! binary is used where its log line and exit status are the point. Files
//! are built or read only through `burrow_server::formats`; recovery's own
//! file-format cases (every byte offset, every bit) are unit tests in
//! `crates/burrow-server/src/persist/recovery/tests.rs`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use burrow_client::{Client, Ttl};
use burrow_proto::Status;
use burrow_server::formats::{
    encode_record, list_segments, relabel_first_cover, segment_header, segment_name, snapshot_name, Op,
};
use burrow_server::{Config, FsyncPolicy, ServerHandle};

use common::{copy_dir, info_field, info_u64, run_server_to_exit, ChildServer, TempDir};

// ---------------------------------------------------------------- helpers

/// A value as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Val {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
}

/// Key → (value, has a TTL).
type Dump = BTreeMap<Vec<u8>, (Val, bool)>;

/// Everything a client can see.
async fn dump_client(c: &mut Client) -> Dump {
    let mut keys = BTreeSet::new();
    let mut cursor = 0;
    loop {
        let (next, batch) = c.scan(cursor, 1000, "*").await.unwrap();
        keys.extend(batch.into_iter().map(|k| k.to_vec()));
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut out = BTreeMap::new();
    for k in keys {
        let v = match c.type_of(k.clone()).await.unwrap().as_str() {
            "list" => {
                Val::List(c.lrange(k.clone(), 0, -1).await.unwrap().iter().map(|v| v.to_vec()).collect())
            }
            "none" => continue,
            _ => Val::Str(c.get(k.clone()).await.unwrap().expect("scanned key").to_vec()),
        };
        let ttl = matches!(c.ttl(k.clone()).await.unwrap(), Ttl::Expires(_));
        out.insert(k, (v, ttl));
    }
    out
}

/// SETs of `k0`, `k1`, … (value `v0`, …): record `i + 1` sets `ki`.
fn set_ops(n: usize) -> Vec<Op> {
    (0..n)
        .map(|i| Op::Set {
            key: Bytes::from(format!("k{i}")),
            value: Bytes::from(format!("v{i}")),
            expire_at: 0,
        })
        .collect()
}

/// A WAL segment holding `ops` as records `first..`; also returns where
/// each record starts (plus the end of the file).
fn segment(first: u64, ops: &[Op]) -> (Vec<u8>, Vec<usize>) {
    let mut buf = BytesMut::from(&segment_header(first)[..]);
    let mut starts = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        starts.push(buf.len());
        encode_record(1, first + i as u64, op, &mut buf);
    }
    starts.push(buf.len());
    (buf.to_vec(), starts)
}

fn seg_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(segment_name(first))
}

async fn persistent_server(dir: &Path, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let dir = dir.to_owned();
    common::start_with(move |c| {
        c.persistence = true;
        c.data_dir = dir;
        c.fsync = FsyncPolicy::Always;
        tweak(c);
    })
    .await
}

// ------------------------------------------------------- WAL: torn tails

#[tokio::test]
async fn the_server_truncates_a_torn_tail_and_appends_after_it() {
    let ops = set_ops(12);
    let (bytes, starts) = segment(1, &ops);
    let last_start = starts[ops.len() - 1];
    let dir = TempDir::new("torn-server");
    let path = seg_path(dir.path(), 1);
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();

    let server = persistent_server(dir.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_field(&info, "recovery_truncated_tail"), format!("{}@{last_start}", path.display()));
    assert_eq!(c.dbsize().await.unwrap(), 11, "every record before the torn one");
    assert!(!c.exists("k11").await.unwrap(), "the torn record must not be applied");
    // Cut on start, then preallocated again: the torn bytes are zeros now.
    let data = std::fs::read(&path).unwrap();
    assert!(data[last_start..].iter().all(|&b| b == 0), "cut on start");
    c.set("after", "restart").await.unwrap();
    let live = dump_client(&mut c).await;
    // What a crash now leaves (fsync always, nothing in flight): only the
    // WAL can bring the keys back (a graceful shutdown would snapshot).
    let crashed = TempDir::new("torn-server-crash");
    common::copy_dir(dir.path(), crashed.path());
    drop(c);
    server.shutdown().await.unwrap();

    // The new record follows the cut cleanly: a start that refuses torn
    // tails accepts the files, and holds what clients saw.
    let restarted = persistent_server(crashed.path(), |c| c.wal_truncate_torn = false).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    assert_eq!(dump_client(&mut c).await, live);
    drop(c);
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_binary_logs_the_truncated_file_and_offset_and_starts() {
    let ops = set_ops(9);
    let (bytes, starts) = segment(1, &ops);
    let last_start = starts[ops.len() - 1];
    let dir = TempDir::new("torn-bin");
    let path = seg_path(dir.path(), 1);
    std::fs::write(&path, &bytes[..last_start + 5]).unwrap();

    let (status, log) = run_server_to_exit(dir.path(), &["--wal-truncate-torn", "false"]).await;
    assert!(!status.success(), "refused: {log}");
    assert!(log.contains(&format!("torn last record at byte offset {last_start}")), "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start as u64 + 5, "untouched when refusing");

    let server = ChildServer::start(dir.path(), &[]).await;
    let log = server.stderr();
    let line =
        log.lines().find(|l| l.contains("truncating torn WAL tail")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains(&format!("offset={last_start}")), "{line}");
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 8);
    assert!(!c.exists("k8").await.unwrap());
    let (status, _) = server.terminate().await;
    assert!(status.success());
}

// ------------------------------------------------------ WAL: corruption

#[tokio::test]
async fn the_binary_refuses_a_corrupt_wal_and_names_the_offset() {
    let ops = set_ops(8);
    let (mut bytes, starts) = segment(1, &ops);
    let at = starts[3] + 20;
    bytes[at] ^= 0x10;
    let dir = TempDir::new("corrupt-bin");
    let path = seg_path(dir.path(), 1);
    std::fs::write(&path, &bytes).unwrap();
    for truncate in ["true", "false"] {
        let (status, log) = run_server_to_exit(dir.path(), &["--wal-truncate-torn", truncate]).await;
        assert!(!status.success(), "{log}");
        assert!(log.contains(&format!("corrupt record at byte offset {}", starts[3])), "{log}");
        assert!(log.contains(&path.display().to_string()), "{log}");
    }
}

#[tokio::test]
async fn empty_and_headerless_segments_are_rewritten_on_start() {
    for (name, content) in [("zero", &b""[..]), ("partial", &b"BWAL\x00\x01\x00"[..])] {
        let dir = TempDir::new(name);
        std::fs::write(seg_path(dir.path(), 1), content).unwrap();

        let server = persistent_server(dir.path(), |_| {}).await;
        let mut c = Client::connect(server.addr).await.unwrap();
        c.set("k", name).await.unwrap();
        c.incr("n").await.unwrap();
        // What a crash now leaves: only the WAL can bring the keys back.
        let crashed = TempDir::new("headerless-crash");
        common::copy_dir(dir.path(), crashed.path());
        drop(c);
        server.shutdown().await.unwrap();
        let restarted = persistent_server(crashed.path(), |c| c.wal_truncate_torn = false).await;
        let mut c = Client::connect(restarted.addr).await.unwrap();
        assert_eq!(info_u64(&c.info("keyspace").await.unwrap(), "last_log_index"), 2, "{name}");
        assert_eq!(c.get("k").await.unwrap().as_deref(), Some(name.as_bytes()), "{name}");
        assert_eq!(c.get("n").await.unwrap().as_deref(), Some(&b"1"[..]), "{name}");
        drop(c);
        restarted.shutdown().await.unwrap();
    }
}

/// A data directory holding nothing but a snapshot of 22 keys, which a
/// server wrote at its shutdown; returns the snapshot's path.
async fn snapshot_only(dir: &Path) -> PathBuf {
    let server = persistent_server(dir, |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    for i in 0..20 {
        c.set(format!("k{i}"), format!("v{i}")).await.unwrap();
    }
    c.expire("k0", Duration::from_secs(3600)).await.unwrap();
    c.incr_by("counter", 42).await.unwrap();
    c.rpush("list", ["a", "b"]).await.unwrap();
    drop(c);
    server.shutdown().await.unwrap();
    for (_, segment) in list_segments(dir).unwrap() {
        std::fs::remove_file(segment).unwrap();
    }
    let snapshots: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "snap"))
        .collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    snapshots[0].clone()
}

#[tokio::test]
async fn the_binary_refuses_a_truncated_snapshot() {
    let dir = TempDir::new("snap-bin");
    let path = snapshot_only(dir.path()).await;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (status, log) = run_server_to_exit(dir.path(), &[]).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains(&path.display().to_string()) && log.contains("corrupt snapshot"), "{log}");
    std::fs::write(&path, b"").unwrap();
    let (status, log) = run_server_to_exit(dir.path(), &[]).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
}

// ------------------------------------------------ server-level recovery

#[tokio::test]
async fn snapshot_plus_wal_restores_exactly_what_clients_saw() {
    let dir = TempDir::new("snap-wal");
    let server = persistent_server(dir.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    for i in 0..50 {
        c.set(format!("k{i}"), format!("v{i}")).await.unwrap();
        c.incr_by(format!("n{}", i % 5), i).await.unwrap();
        c.rpush(format!("q{}", i % 3), [format!("a{i}")]).await.unwrap();
    }
    c.expire("k1", Duration::from_secs(3600)).await.unwrap();
    let report = c.snapshot(false).await.unwrap();
    assert!(report.starts_with("snapshot written"), "{report}");
    // After the snapshot: updates to keys it holds, a FLUSHALL, new data.
    for i in 0..20 {
        c.incr_by(format!("n{}", i % 5), 100).await.unwrap();
        c.lpush(format!("q{}", i % 3), [format!("b{i}")]).await.unwrap();
        c.set(format!("k{i}"), format!("w{i}")).await.unwrap();
    }
    c.lpop_count("q0", 2).await.unwrap();
    c.del("k3").await.unwrap();
    let before_flush = dump_client(&mut c).await;
    assert!(before_flush.len() > 50);
    c.flushall().await.unwrap();
    for i in 0..30 {
        c.incr(format!("n{}", i % 4)).await.unwrap();
        c.rpush("q0", [format!("c{i}")]).await.unwrap();
        c.set(format!("x{i}"), "y").await.unwrap();
    }
    c.expire("x2", Duration::from_secs(3600)).await.unwrap();
    c.snapshot(false).await.unwrap();
    for i in 0..10 {
        c.incr(format!("n{}", i % 4)).await.unwrap();
        c.rpush(format!("q{}", i % 2), [format!("d{i}")]).await.unwrap();
    }
    let live = dump_client(&mut c).await;
    assert_eq!(live.get(&b"n0"[..]).map(|v| &v.0), Some(&Val::Str(b"11".to_vec())));
    let image = TempDir::new("snap-wal-image");
    copy_dir(dir.path(), image.path());
    drop(c);
    server.shutdown().await.unwrap();

    let restarted = persistent_server(image.path(), |_| {}).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    assert_eq!(dump_client(&mut c).await, live);
    let info = c.info("persistence").await.unwrap();
    assert!(info_field(&info, "recovery_snapshot_keys").parse::<u64>().unwrap() > 0, "{info}");
    assert_eq!(info_field(&info, "recovery_records_replayed"), "20", "{info}");
    drop(c);
    restarted.shutdown().await.unwrap();
}

/// A crash after a snapshot's rename but before the WAL segments it covers
/// were deleted: both are there at the next start. Counters prove nothing
/// is applied twice; the covered segments are deleted by recovery.
#[tokio::test]
async fn a_crash_between_snapshot_rename_and_wal_deletion_double_applies_nothing() {
    let dir = TempDir::new("rename-crash");
    let server = persistent_server(dir.path(), |c| c.wal_segment_bytes = 4096).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    for i in 0..600 {
        c.incr(format!("n{}", i % 7)).await.unwrap();
        c.rpush(format!("q{}", i % 3), [format!("{i:06}")]).await.unwrap();
    }
    let old = TempDir::new("rename-crash-old");
    copy_dir(dir.path(), old.path());
    let old_segments = list_segments(old.path()).unwrap();
    assert!(old_segments.len() > 3, "several segments: {old_segments:?}");
    c.snapshot(false).await.unwrap();
    let after = list_segments(dir.path()).unwrap();
    assert!(after.len() < old_segments.len(), "SAVE deleted covered segments: {after:?}");
    for i in 0..50 {
        c.incr(format!("n{}", i % 7)).await.unwrap();
    }
    let live = dump_client(&mut c).await;
    assert_eq!(live.get(&b"n0"[..]).map(|v| &v.0), Some(&Val::Str(b"94".to_vec())));
    let live_segments = list_segments(dir.path()).unwrap();

    // The crash image: today's files plus the covered segments SAVE deleted.
    let image = TempDir::new("rename-crash-image");
    copy_dir(dir.path(), image.path());
    for (_, path) in &old_segments {
        let target = image.join(path.file_name().unwrap().to_str().unwrap());
        if !target.exists() {
            std::fs::copy(path, target).unwrap();
        }
    }
    drop(c);
    server.shutdown().await.unwrap();

    let restarted = persistent_server(image.path(), |c| c.wal_segment_bytes = 4096).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    assert_eq!(dump_client(&mut c).await, live);
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_field(&info, "recovery_records_replayed"), "50", "{info}");
    let names = |s: Vec<(u64, PathBuf)>| s.into_iter().map(|(i, _)| i).collect::<Vec<_>>();
    assert_eq!(
        names(list_segments(image.path()).unwrap()),
        names(live_segments),
        "the covered segments are deleted at start"
    );
    drop(c);
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn ttls_survive_a_restart_and_keys_that_expired_meanwhile_are_gone() {
    let dir = TempDir::new("ttl");
    let server = persistent_server(dir.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let opts = |ms| burrow_client::SetOptions { ttl: Some(Duration::from_millis(ms)), ..Default::default() };
    c.set_with("long", "l", opts(600_000)).await.unwrap();
    c.set_with("short", "s", opts(300)).await.unwrap();
    c.set_with("in-snapshot-long", "l", opts(600_000)).await.unwrap();
    c.set_with("in-snapshot-short", "s", opts(300)).await.unwrap();
    // Long enough to be surely persisted before it expires, however busy
    // the machine (a PERSIST on an entry whose old TTL passed is pinned by
    // `wal_records_after_a_snapshot_apply_to_entries_whose_old_ttl_passed`).
    c.set_with("persisted-later", "p", opts(600_000)).await.unwrap();
    c.snapshot(false).await.unwrap();
    assert!(c.persist("persisted-later").await.unwrap());
    c.set("plain", "p").await.unwrap();
    let Ttl::Expires(before) = c.ttl("long").await.unwrap() else { panic!("long has a TTL") };
    let image = TempDir::new("ttl-image");
    copy_dir(dir.path(), image.path());
    // Let the short TTLs pass (the live server is the clock's witness).
    common::wait_for("short keys to expire", || {
        let addr = server.addr;
        async move {
            let mut c = Client::connect(addr).await.unwrap();
            !c.exists("short").await.unwrap() && !c.exists("in-snapshot-short").await.unwrap()
        }
    })
    .await;
    drop(c);
    server.shutdown().await.unwrap();

    let restarted = persistent_server(image.path(), |_| {}).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    for key in ["long", "in-snapshot-long"] {
        match c.ttl(key).await.unwrap() {
            Ttl::Expires(left) => {
                assert!(left <= before && left > Duration::from_secs(500), "{key}: {left:?}")
            }
            other => panic!("{key}: {other:?}"),
        }
    }
    for key in ["short", "in-snapshot-short"] {
        assert_eq!(c.get(key).await.unwrap(), None, "{key} expired while the server was down");
        assert_eq!(c.ttl(key).await.unwrap(), Ttl::Missing, "{key}");
    }
    assert_eq!(c.ttl("persisted-later").await.unwrap(), Ttl::Persistent);
    assert_eq!(c.get("plain").await.unwrap().as_deref(), Some(&b"p"[..]));
    drop(c);
    restarted.shutdown().await.unwrap();
}

// ----------------------------------------------------------- disk errors

/// The next WAL segment is a symlink to /dev/full: rotating into it fails
/// with ENOSPC. Writes are then refused with IO_ERROR while reads go on, and
/// once the disk accepts writes again (the link is removed) the writer
/// resumes on its own.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_failing_wal_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let dir = TempDir::new("devfull");
    let server = persistent_server(dir.path(), |c| c.wal_segment_bytes = 4096).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("before", "ok").await.unwrap();
    // Index 1 is written; a 4 KiB value pushes segment 1 past its limit and
    // the writer rotates into wal-3, which we make unwritable.
    let next = seg_path(dir.path(), 3);
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    c.set("big", vec![b'x'; 4096]).await.unwrap();
    let addr = server.addr;
    common::wait_for("the WAL to report failure", || async move {
        let mut c = Client::connect(addr).await.unwrap();
        info_field(&c.info("persistence").await.unwrap(), "wal_status") == "failing"
    })
    .await;
    let err = c.set("refused", "x").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::IoError), "{err}");
    assert!(err.to_string().contains("reads still work"), "{err}");
    assert_eq!(c.incr("n").await.unwrap_err().status(), Some(Status::IoError));
    assert_eq!(c.get("before").await.unwrap().as_deref(), Some(&b"ok"[..]));
    assert_eq!(c.get("refused").await.unwrap(), None, "a refused write is not applied");
    let info = c.info("persistence").await.unwrap();
    assert!(info_field(&info, "wal_last_error").contains("No space left"), "{info}");

    std::fs::remove_file(&next).unwrap();
    common::wait_for("writes to be accepted again", || async move {
        let mut c = Client::connect(addr).await.unwrap();
        c.set("after", "ok").await.is_ok()
    })
    .await;
    let image = TempDir::new("devfull-image");
    copy_dir(dir.path(), image.path());
    drop(c);
    server.shutdown().await.unwrap();
    // The files end on a record boundary (a start refusing torn tails
    // accepts them) and hold every accepted write, no refused one.
    let restarted = persistent_server(image.path(), |c| c.wal_truncate_torn = false).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    for key in ["before", "big", "after"] {
        assert!(c.exists(key).await.unwrap(), "{key}");
    }
    for key in ["refused", "n"] {
        assert!(!c.exists(key).await.unwrap(), "{key}");
    }
    drop(c);
    restarted.shutdown().await.unwrap();
}

#[tokio::test]
async fn persistence_off_writes_nothing_and_refuses_snapshot() {
    let dir = TempDir::new("off");
    let data = dir.join("data");
    let d = data.clone();
    let server = common::start_with(move |c| {
        c.persistence = false;
        c.data_dir = d;
    })
    .await;
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("k", "v").await.unwrap();
    assert_eq!(c.snapshot(false).await.unwrap_err().status(), Some(Status::BadRequest));
    assert_eq!(info_field(&c.info("persistence").await.unwrap(), "enabled"), "0");
    drop(c);
    server.shutdown().await.unwrap();
    assert!(!data.exists(), "nothing written with persistence off");
}

#[tokio::test]
async fn a_second_server_on_the_same_data_dir_is_refused() {
    let dir = TempDir::new("lock");
    let server = persistent_server(dir.path(), |_| {}).await;
    let (status, log) = run_server_to_exit(dir.path(), &[]).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains("in use by another burrow-server"), "{log}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_snapshot_with_uneven_shards_and_no_wal_survives_two_restarts() {
    let dir = TempDir::new("uneven");
    let path = snapshot_only(dir.path()).await;
    let mut bytes = std::fs::read(&path).unwrap();
    relabel_first_cover(&mut bytes, 1);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(dir.path().join(snapshot_name(1)), &bytes).unwrap();

    let server = persistent_server(dir.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 22);
    c.set("after", "restore").await.unwrap();
    // What a crash now would leave (fsync always, nothing in flight); a
    // graceful shutdown would write an even snapshot and hide the problem.
    let crashed = TempDir::new("uneven-crash");
    common::copy_dir(dir.path(), crashed.path());
    drop(c);
    server.shutdown().await.unwrap();

    // Without re-snapshotting at the first start, this start saw a WAL that
    // began past the snapshot's lowest covered index and refused.
    let server = persistent_server(crashed.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 23);
    assert_eq!(c.get("after").await.unwrap().as_deref(), Some(&b"restore"[..]));
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_snapshot_lets_the_wal_it_covers_be_deleted() {
    let dir = TempDir::new("wal-rotate");
    let server = persistent_server(dir.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    for i in 0..100 {
        c.set(format!("k{i}"), "v").await.unwrap();
    }
    assert_eq!(list_segments(dir.path()).unwrap().len(), 1);
    c.snapshot(false).await.unwrap();
    // The segment holding the 100 records is closed by the snapshot and,
    // being wholly covered by it, deleted; a fresh one takes new writes.
    let segs = list_segments(dir.path()).unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].0, 101);
    c.set("after", "snapshot").await.unwrap();
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_field(&info, "wal_segments"), "1");
    let crashed = TempDir::new("wal-rotate-crash");
    common::copy_dir(dir.path(), crashed.path());
    drop(c);
    server.shutdown().await.unwrap();
    let restarted = persistent_server(crashed.path(), |c| c.wal_truncate_torn = false).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_u64(&info, "recovery_snapshot_keys"), 100, "{info}");
    assert_eq!(info_u64(&info, "recovery_records_replayed"), 1, "{info}");
    assert_eq!(c.dbsize().await.unwrap(), 101);
    drop(c);
    restarted.shutdown().await.unwrap();
}
