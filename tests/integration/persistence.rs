//! Durability: recovery from the WAL and snapshots, torn tails, corruption,
//! empty and missing files, TTLs across restarts, and WAL write failures.
//!
//! Most file-format cases call `burrow_server::persist::recover` on hand-built
//! files with a fresh `Store` — fast and exact. Server-level cases use an
//! in-process server with `--fsync always` (a write's reply means its record
//! is in the file) and copy its data directory while it is idle: that copy
//! is exactly what a crash at that moment would leave behind. The real
//! binary is used where its log line and exit status are the point.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};

use burrow_client::{Client, Ttl};
use burrow_proto::{End, Status};
use burrow_server::oplog::{encode_record, Op, OpLog, Record};
use burrow_server::persist::{
    recover, segment_name, snapshot_name, write_snapshot, FsyncPolicy, PersistConfig, PersistError,
    RecoveryReport, WAL_HEADER_LEN,
};
use burrow_server::server::ServerHandle;
use burrow_server::store::{Replay, SetArgs, Store, ValueRef};

use common::{copy_dir, info_field, run_server_to_exit, ChildServer, TempDir};

// ---------------------------------------------------------------- helpers

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A value as both the store and the wire can express it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Val {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
}

/// Key → (value, expire_at).
type Dump = BTreeMap<Vec<u8>, (Val, u64)>;

/// Key → (value, expire_at), for entries live at `now` (expired ones are
/// invisible to clients, so they are left out).
fn dump_store(store: &Store, now: u64) -> Dump {
    let mut out = BTreeMap::new();
    for s in 0..store.shard_count() {
        store.export_shard(s, |e| {
            if e.is_expired(now) {
                return;
            }
            let v = match e.value() {
                ValueRef::Str(s) => Val::Str(s.to_vec()),
                ValueRef::Int(i) => Val::Str(i.to_string().into_bytes()),
                ValueRef::List(l) => Val::List(l.iter().map(|v| v.to_vec()).collect()),
            };
            out.insert(e.key().to_vec(), (v, e.expire_at()));
        });
    }
    out
}

/// Everything a client can see: key → (value, has a TTL).
async fn dump_client(c: &mut Client) -> BTreeMap<Vec<u8>, (Val, bool)> {
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

fn fresh_store() -> Store {
    Store::new(16, Arc::new(OpLog::new(1 << 26)))
}

fn cfg(dir: &Path, truncate_torn_tail: bool) -> PersistConfig {
    PersistConfig { truncate_torn_tail, ..PersistConfig::new(dir.to_owned()) }
}

fn recover_dir(dir: &Path, truncate: bool) -> Result<(Store, RecoveryReport), PersistError> {
    let store = fresh_store();
    let report = recover(&cfg(dir, truncate), &store, now_ms())?;
    Ok((store, report))
}

/// A WAL segment holding `ops` as records `first..`; also returns where
/// each record starts (plus the end of the file).
fn segment(first: u64, ops: &[Op]) -> (Vec<u8>, Vec<usize>) {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(b"BWAL");
    buf.extend_from_slice(&1u16.to_be_bytes());
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&first.to_be_bytes());
    assert_eq!(buf.len(), WAL_HEADER_LEN);
    let mut starts = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        starts.push(buf.len());
        encode_record(1, first + i as u64, op, &mut buf);
    }
    starts.push(buf.len());
    (buf.to_vec(), starts)
}

/// A mix of every op kind; the last one is a multi-value push.
fn sample_ops(n: usize) -> Vec<Op> {
    let far = now_ms() + 3_600_000;
    let mut ops: Vec<Op> = (0..n)
        .map(|i| match i % 7 {
            0 => Op::Set { key: b(&format!("s{}", i % 5)), value: b(&format!("value-{i}")), expire_at: 0 },
            1 => Op::IncrBy { key: b(&format!("c{}", i % 3)), delta: i as i64 },
            2 => Op::Push {
                key: b(&format!("l{}", i % 2)),
                end: End::Right,
                values: vec![b(&format!("x{i}"))],
            },
            3 => Op::Expire { key: b(&format!("s{}", (i + 2) % 5)), at: far },
            4 => Op::Push { key: b("l0"), end: End::Left, values: vec![b("h")] },
            5 => Op::Pop { key: b("l0"), end: End::Left, count: 1 },
            _ if i == 13 => Op::FlushAll,
            _ => Op::Del { key: b(&format!("s{}", i % 5)) },
        })
        .collect();
    ops.push(Op::Push { key: b("tail"), end: End::Right, values: vec![b("alpha"), b("beta"), b("gamma")] });
    ops
}

/// The store after replaying `ops` from index 1.
fn expected(ops: &[Op]) -> Dump {
    let store = fresh_store();
    for (i, op) in ops.iter().enumerate() {
        store.replay(Replay::Recovery, None, &Record { term: 1, index: i as u64 + 1, op: op.clone() });
    }
    dump_store(&store, now_ms())
}

fn seg_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(segment_name(first))
}

async fn persistent_server(
    dir: &Path,
    tweak: impl FnOnce(&mut burrow_server::server::Config),
) -> ServerHandle {
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

#[test]
fn a_torn_last_record_is_truncated_at_every_byte_offset() {
    let ops = sample_ops(30);
    let (bytes, starts) = segment(1, &ops);
    let last_start = starts[ops.len() - 1];
    let want = expected(&ops[..ops.len() - 1]);
    assert!(!want.is_empty());
    let dir = TempDir::new("torn");
    let path = seg_path(dir.path(), 1);
    for cut in last_start + 1..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let (store, report) = recover_dir(dir.path(), true).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let (file, offset, _) =
            report.truncated.clone().unwrap_or_else(|| panic!("cut {cut}: not truncated"));
        assert_eq!((file.as_path(), offset), (path.as_path(), last_start as u64), "cut {cut}");
        assert_eq!(report.last_index, ops.len() as u64 - 1, "cut {cut}");
        assert_eq!(report.segments, vec![(1, path.clone(), last_start as u64)], "cut {cut}");
        assert_eq!(dump_store(&store, now_ms()), want, "cut {cut}");
    }
    // Cut exactly at the record boundary: nothing torn, nothing lost.
    std::fs::write(&path, &bytes[..last_start]).unwrap();
    let (store, report) = recover_dir(dir.path(), true).unwrap();
    assert!(report.truncated.is_none());
    assert_eq!(dump_store(&store, now_ms()), want);
    // And the whole file holds every record.
    std::fs::write(&path, &bytes).unwrap();
    let (store, report) = recover_dir(dir.path(), true).unwrap();
    assert_eq!(report.last_index, ops.len() as u64);
    assert_eq!(dump_store(&store, now_ms()), expected(&ops));
}

#[test]
fn a_torn_tail_is_refused_when_truncation_is_disabled() {
    let ops = sample_ops(10);
    let (bytes, starts) = segment(1, &ops);
    let last_start = starts[ops.len() - 1];
    let dir = TempDir::new("torn-refuse");
    let path = seg_path(dir.path(), 1);
    for cut in [last_start + 1, last_start + 8, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = recover_dir(dir.path(), false).expect_err("refused").to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(&format!("byte offset {last_start}")), "{err}");
        assert!(err.contains("torn"), "{err}");
        // Refusing must not touch the file.
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[..cut]);
    }
}

#[tokio::test]
async fn the_server_truncates_a_torn_tail_and_appends_after_it() {
    let ops = sample_ops(12);
    let (bytes, starts) = segment(1, &ops);
    let last_start = starts[ops.len() - 1];
    let dir = TempDir::new("torn-server");
    let path = seg_path(dir.path(), 1);
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();

    let server = persistent_server(dir.path(), |_| {}).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_field(&info, "recovery_truncated_tail"), format!("{}@{last_start}", path.display()));
    assert!(!c.exists("tail").await.unwrap(), "the torn record must not be applied");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), last_start as u64, "cut on start");
    c.set("after", "restart").await.unwrap();
    // What a crash now leaves (fsync always, nothing in flight): only the
    // WAL can bring the keys back (a graceful shutdown would snapshot).
    let crashed = TempDir::new("torn-server-crash");
    common::copy_dir(dir.path(), crashed.path());
    drop(c);
    server.shutdown().await.unwrap();

    let (store, report) = recover_dir(crashed.path(), false).unwrap();
    assert!(report.truncated.is_none(), "the new record follows the cut cleanly");
    let mut want = expected(&ops[..ops.len() - 1]);
    want.insert(b"after".to_vec(), (Val::Str(b"restart".to_vec()), 0));
    assert_eq!(dump_store(&store, now_ms()), want);
}

#[tokio::test]
async fn the_binary_logs_the_truncated_file_and_offset_and_starts() {
    let ops = sample_ops(9);
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
    assert_eq!(c.dbsize().await.unwrap(), expected(&ops[..ops.len() - 1]).len() as i64);
    assert!(!c.exists("tail").await.unwrap());
    let (status, _) = server.terminate().await;
    assert!(status.success());
}

// ------------------------------------------------------ WAL: corruption

#[test]
fn a_flipped_bit_in_a_middle_record_refuses_with_file_and_offset() {
    let ops = sample_ops(20);
    let (bytes, starts) = segment(1, &ops);
    let mid = 10;
    let (from, to) = (starts[mid], starts[mid + 1]);
    let dir = TempDir::new("corrupt-mid");
    let path = seg_path(dir.path(), 1);
    for bit in 0..(to - from) * 8 {
        let mut bad = bytes.clone();
        bad[from + bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&path, &bad).unwrap();
        let err = match recover_dir(dir.path(), true) {
            Ok(_) => panic!("bit {bit}: corruption accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(&path.display().to_string()), "bit {bit}: {err}");
        assert!(err.contains(&format!("corrupt record at byte offset {from}")), "bit {bit}: {err}");
        assert_eq!(std::fs::read(&path).unwrap(), bad, "refusing must not touch the file");
    }
}

#[test]
fn a_flipped_bit_in_the_last_record_is_a_torn_tail() {
    let ops = sample_ops(20);
    let (bytes, starts) = segment(1, &ops);
    let last = ops.len() - 1;
    let (from, to) = (starts[last], starts[last + 1]);
    let want = expected(&ops[..last]);
    let dir = TempDir::new("corrupt-last");
    let path = seg_path(dir.path(), 1);
    for bit in 0..(to - from) * 8 {
        let mut bad = bytes.clone();
        bad[from + bit / 8] ^= 1 << (bit % 8);
        std::fs::write(&path, &bad).unwrap();
        let (store, report) = recover_dir(dir.path(), true).unwrap_or_else(|e| panic!("bit {bit}: {e}"));
        assert_eq!(report.truncated.as_ref().map(|t| t.1), Some(from as u64), "bit {bit}");
        assert_eq!(dump_store(&store, now_ms()), want, "bit {bit}");
    }
}

#[tokio::test]
async fn the_binary_refuses_a_corrupt_wal_and_names_the_offset() {
    let ops = sample_ops(8);
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

#[test]
fn segments_must_follow_each_other() {
    let ops = sample_ops(12);
    let dir = TempDir::new("segments");
    let (a, _) = segment(1, &ops[..6]);
    let (c, _) = segment(7, &ops[6..]);
    std::fs::write(seg_path(dir.path(), 1), &a).unwrap();
    std::fs::write(seg_path(dir.path(), 7), &c).unwrap();
    let (store, report) = recover_dir(dir.path(), true).unwrap();
    assert_eq!(report.last_index, ops.len() as u64);
    assert_eq!(dump_store(&store, now_ms()), expected(&ops));

    // A torn tail anywhere but in the last segment is corruption.
    std::fs::write(seg_path(dir.path(), 1), &a[..a.len() - 2]).unwrap();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    assert!(err.contains(&segment_name(1)) && err.contains("corrupt record"), "{err}");

    // A missing segment in the middle is a gap.
    std::fs::write(seg_path(dir.path(), 1), &a).unwrap();
    std::fs::rename(seg_path(dir.path(), 7), seg_path(dir.path(), 8)).unwrap();
    let mut shifted = c.clone();
    shifted[8..16].copy_from_slice(&8u64.to_be_bytes());
    std::fs::write(seg_path(dir.path(), 8), &shifted).unwrap();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    assert!(err.contains("index 8 where 7 was expected"), "{err}");

    // A header whose first index disagrees with the file name.
    std::fs::remove_file(seg_path(dir.path(), 8)).unwrap();
    std::fs::write(seg_path(dir.path(), 7), &shifted).unwrap();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    assert!(err.contains("bad WAL header") && err.contains(&segment_name(7)), "{err}");

    // Not a WAL at all.
    std::fs::write(seg_path(dir.path(), 7), b"HELLO, WORLD! this is not a WAL").unwrap();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    assert!(err.contains("magic"), "{err}");
}

// -------------------------------------------------- empty/missing files

#[test]
fn a_missing_or_empty_data_dir_starts_empty() {
    let root = TempDir::new("missing");
    let dir = root.join("not/yet/there");
    let (store, report) = recover_dir(&dir, true).unwrap();
    assert!(dir.is_dir(), "created");
    assert!(store.is_empty());
    assert_eq!((report.last_index, report.snapshot.is_none()), (0, true));
    let (store, report) = recover_dir(&dir, true).unwrap();
    assert!(store.is_empty() && report.segments.is_empty());
}

#[tokio::test]
async fn empty_and_headerless_segments_are_rewritten_on_start() {
    for (name, content) in [("zero", &b""[..]), ("partial", &b"BWAL\x00\x01\x00"[..])] {
        let dir = TempDir::new(name);
        let path = seg_path(dir.path(), 1);
        std::fs::write(&path, content).unwrap();
        let (store, report) = recover_dir(dir.path(), true).unwrap();
        assert!(store.is_empty(), "{name}");
        assert_eq!(report.last_index, 0, "{name}");
        assert_eq!(report.segments, vec![(1, path.clone(), 0)], "{name}");

        let server = persistent_server(dir.path(), |_| {}).await;
        let mut c = Client::connect(server.addr).await.unwrap();
        c.set("k", name).await.unwrap();
        c.incr("n").await.unwrap();
        // What a crash now leaves: only the WAL can bring the keys back.
        let crashed = TempDir::new("headerless-crash");
        common::copy_dir(dir.path(), crashed.path());
        drop(c);
        server.shutdown().await.unwrap();
        let (store, report) = recover_dir(crashed.path(), false).unwrap();
        assert_eq!(report.last_index, 2, "{name}");
        let got = dump_store(&store, now_ms());
        assert_eq!(got.get(&b"k"[..]), Some(&(Val::Str(name.as_bytes().to_vec()), 0)), "{name}");
        assert_eq!(got.get(&b"n"[..]), Some(&(Val::Str(b"1".to_vec()), 0)), "{name}");
    }
}

/// A small store written as a snapshot in `dir`; returns the file's bytes.
fn small_snapshot(dir: &Path) -> (PathBuf, Vec<u8>, Dump) {
    let store = fresh_store();
    let now = now_ms();
    for i in 0..20 {
        let (key, value) = (format!("k{i}"), format!("v{i}"));
        let args = SetArgs {
            key: key.as_bytes(),
            value: value.as_bytes(),
            expire_at: (i % 4 == 0).then_some(now + 3_600_000),
            condition: Default::default(),
            keep_ttl: false,
        };
        store.set(args, now);
    }
    store.incr_by(&b("counter"), 42, now).unwrap();
    store.push(&b("list"), End::Right, vec![&b"a"[..], b"b"], now).unwrap();
    let info = write_snapshot(&store, dir, 1, now, |_| Ok(())).unwrap();
    assert_eq!(info.entries, 22);
    let bytes = std::fs::read(&info.path).unwrap();
    (info.path, bytes, dump_store(&store, now))
}

#[test]
fn a_snapshot_alone_is_loaded_and_a_truncated_one_is_refused() {
    let dir = TempDir::new("snap-trunc");
    let (path, bytes, want) = small_snapshot(dir.path());
    let (store, report) = recover_dir(dir.path(), true).unwrap();
    assert_eq!(dump_store(&store, now_ms()), want);
    assert_eq!(report.snapshot_entries, 22);
    assert_eq!(report.last_index, 22);
    for cut in 0..bytes.len() {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = match recover_dir(dir.path(), true) {
            Ok(_) => panic!("snapshot cut at {cut} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&path.display().to_string()) && err.contains("corrupt snapshot"),
            "cut {cut}: {err}"
        );
    }
    // Any flipped bit is caught by a CRC (header or block).
    for at in [0usize, 5, 20, 40, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x04;
        std::fs::write(&path, &bad).unwrap();
        let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
        assert!(err.contains(&path.display().to_string()), "byte {at}: {err}");
    }
    // Trailing garbage after the end block.
    let mut long = bytes.clone();
    long.extend_from_slice(b"junk");
    std::fs::write(&path, &long).unwrap();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    assert!(err.contains("after the end block"), "{err}");
}

/// Peak resident memory of this process, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A corrupt block length is refused from the file size, not discovered
/// after allocating (and zeroing) that many bytes — up to 2 GiB.
#[cfg(target_os = "linux")]
#[test]
fn a_lying_block_length_is_refused_without_allocating_it() {
    let dir = TempDir::new("snap-len");
    let (path, bytes, _) = small_snapshot(dir.path());
    let mut bad = bytes[..36].to_vec();
    bad.extend_from_slice(&(1u32 << 31).to_be_bytes());
    bad.extend_from_slice(&[0; 4]);
    bad.extend_from_slice(b"short");
    std::fs::write(&path, &bad).unwrap();
    let before = peak_rss_kib();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    let grew = peak_rss_kib().saturating_sub(before);
    assert!(err.contains(&path.display().to_string()) && err.contains("byte offset 36"), "{err}");
    assert!(grew < 512 * 1024, "reading a 49-byte snapshot raised peak memory by {grew} KiB");
}

#[tokio::test]
async fn the_binary_refuses_a_truncated_snapshot() {
    let dir = TempDir::new("snap-bin");
    let (path, bytes, _) = small_snapshot(dir.path());
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let (status, log) = run_server_to_exit(dir.path(), &[]).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains(&path.display().to_string()) && log.contains("corrupt snapshot"), "{log}");
    std::fs::write(&path, b"").unwrap();
    let (status, log) = run_server_to_exit(dir.path(), &[]).await;
    assert!(!status.success(), "{log}");
    assert!(log.contains(&path.display().to_string()), "{log}");
}

#[test]
fn an_unfinished_snapshot_is_removed_and_ignored() {
    let dir = TempDir::new("snap-tmp");
    let (_, bytes, want) = small_snapshot(dir.path());
    let tmp = dir.join("snapshot-4242.tmp");
    std::fs::write(&tmp, &bytes[..bytes.len() - 10]).unwrap();
    let (store, _) = recover_dir(dir.path(), true).unwrap();
    assert!(!tmp.exists(), "leftover temp file removed");
    assert_eq!(dump_store(&store, now_ms()), want);
}

// --------------------------------------------- snapshots + WAL (library)

/// The op log's records as one WAL segment starting at index 1.
fn wal_from_log(log: &OpLog, dir: &Path) {
    let (records, first) = log.take_repl().expect("the log queues records");
    assert_eq!(first, 1, "the queue holds every record");
    let mut data = segment(1, &[]).0;
    data.extend_from_slice(&records);
    std::fs::write(seg_path(dir, 1), data).unwrap();
}

/// A snapshot taken while 4 threads write (INCR, RPUSH, SET, and FLUSHALL
/// now and then), plus the whole WAL — including the records the snapshot
/// already holds, as after a crash between its rename and the WAL cleanup —
/// recovers to exactly the live data: nothing lost, nothing applied twice.
#[test]
fn a_snapshot_taken_during_writes_plus_the_full_wal_recovers_exactly() {
    for round in 0..5 {
        let log = Arc::new(OpLog::new(1 << 28));
        let store = Arc::new(Store::new(16, log.clone()));
        let dir = TempDir::new("snap-concurrent");
        let now = now_ms();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|t| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) || i < 2000 {
                        let k = i % 50;
                        store.incr_by(&b(&format!("c{t}:{k}")), 1, now).unwrap();
                        store
                            .push(&b(&format!("l{t}:{k}")), End::Right, vec![i.to_string().as_bytes()], now)
                            .unwrap();
                        let (key, value) = (format!("s{t}:{k}"), i.to_string());
                        let args = SetArgs {
                            key: key.as_bytes(),
                            value: value.as_bytes(),
                            expire_at: None,
                            condition: Default::default(),
                            keep_ttl: false,
                        };
                        store.set(args, now);
                        if t == 0 && i == 700 + round * 150 {
                            store.flush_all();
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        let info = write_snapshot(&store, dir.path(), 1, now, |_| Ok(())).unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        wal_from_log(&log, dir.path());
        let (recovered, report) = recover_dir(dir.path(), true).unwrap();
        assert_eq!(report.snapshot.as_ref().map(|(p, _)| p), Some(&info.path));
        assert_eq!(report.last_index, log.last_index());
        assert_eq!(report.records_replayed + report.records_skipped, log.last_index());
        assert_eq!(dump_store(&recovered, now), dump_store(&store, now), "round {round}");
        // Replay of the recovered backlog continues the same numbering.
        assert_eq!(recovered.log().last_index(), log.last_index());
    }
}

/// Keys a snapshot holds with a TTL, whose TTL a later WAL record changed
/// or whose value a later record updated: recovery must apply the WAL to
/// the snapshot's entry even if that entry's *old* expiry has passed.
#[test]
fn wal_records_after_a_snapshot_apply_to_entries_whose_old_ttl_passed() {
    let log = Arc::new(OpLog::new(1 << 20));
    let store = Store::new(16, log.clone());
    let dir = TempDir::new("snap-ttl");
    let t0 = now_ms() - 60_000;
    fn set(k: &'static str, v: &'static str, expire_at: u64) -> SetArgs<'static> {
        SetArgs {
            key: k.as_bytes(),
            value: v.as_bytes(),
            expire_at: Some(expire_at),
            condition: Default::default(),
            keep_ttl: false,
        }
    }
    store.set(set("persisted", "kept", t0 + 300), t0);
    store.set(set("extended", "kept", t0 + 300), t0);
    store.set(set("counter", "5", t0 + 300), t0);
    store.push(&b("list"), End::Right, vec![&b"a"[..]], t0).unwrap();
    store.expire(&b("list"), 300, t0);
    write_snapshot(&store, dir.path(), 1, t0, |_| Ok(())).unwrap();
    // After the snapshot, while the keys are still live:
    store.persist(&b("persisted"), t0 + 10);
    store.expire(&b("extended"), 3_600_000, t0 + 10);
    store.incr_by(&b("counter"), 1, t0 + 10).unwrap(); // keeps the 300 ms TTL
    store.push(&b("list"), End::Right, vec![&b"b"[..]], t0 + 10).unwrap(); // keeps its TTL
    wal_from_log(&log, dir.path());

    // Recovery a minute later: the old 300 ms TTLs have all passed.
    let (recovered, _) = recover_dir(dir.path(), true).unwrap();
    let got = dump_store(&recovered, now_ms());
    assert_eq!(
        got.get(&b"persisted"[..]),
        Some(&(Val::Str(b"kept".to_vec()), 0)),
        "PERSIST after the snapshot lost"
    );
    assert_eq!(
        got.get(&b"extended"[..]).map(|v| &v.0),
        Some(&Val::Str(b"kept".to_vec())),
        "EXPIRE after the snapshot lost"
    );
    assert!(!got.contains_key(&b"counter"[..]), "INCR resurrected an expired counter: {got:?}");
    assert!(!got.contains_key(&b"list"[..]), "RPUSH resurrected an expired list: {got:?}");
    assert_eq!(got, dump_store(&store, now_ms()));
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
    let old_segments = burrow_server::persist::list_segments(old.path()).unwrap();
    assert!(old_segments.len() > 3, "several segments: {old_segments:?}");
    c.snapshot(false).await.unwrap();
    let after = burrow_server::persist::list_segments(dir.path()).unwrap();
    assert!(after.len() < old_segments.len(), "SAVE deleted covered segments: {after:?}");
    for i in 0..50 {
        c.incr(format!("n{}", i % 7)).await.unwrap();
    }
    let live = dump_client(&mut c).await;
    assert_eq!(live.get(&b"n0"[..]).map(|v| &v.0), Some(&Val::Str(b"94".to_vec())));
    let live_segments = burrow_server::persist::list_segments(dir.path()).unwrap();

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
        names(burrow_server::persist::list_segments(image.path()).unwrap()),
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
    let (store, report) = recover_dir(image.path(), false).unwrap();
    assert!(report.truncated.is_none());
    let got = dump_store(&store, now_ms());
    assert!(
        got.contains_key(&b"before"[..]) && got.contains_key(&b"big"[..]) && got.contains_key(&b"after"[..])
    );
    assert!(!got.contains_key(&b"refused"[..]) && !got.contains_key(&b"n"[..]));
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

#[test]
fn snapshot_names_sort_by_index() {
    assert_eq!(snapshot_name(42), "snapshot-00000000000000000042.snap");
    assert_eq!(segment_name(7), "wal-00000000000000000007.log");
}

/// Rewrites the covered index of the first shard image in a snapshot file
/// (fixing its block CRC), as a snapshot taken during writes would have it.
fn lower_first_cover(bytes: &mut [u8], covers: u64) {
    let block = 36; // header + header CRC
    let len = u32::from_be_bytes(bytes[block..block + 4].try_into().unwrap()) as usize;
    let body = block + 8;
    bytes[body + 5..body + 13].copy_from_slice(&covers.to_be_bytes());
    let crc = crc32fast::hash(&bytes[body..body + len]);
    bytes[block + 4..block + 8].copy_from_slice(&crc.to_be_bytes());
}

#[tokio::test]
async fn a_snapshot_with_uneven_shards_and_no_wal_survives_two_restarts() {
    let dir = TempDir::new("uneven");
    let (path, mut bytes, _) = small_snapshot(dir.path());
    lower_first_cover(&mut bytes, 1);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(dir.path().join(burrow_server::persist::snapshot_name(1)), &bytes).unwrap();

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
    assert_eq!(burrow_server::persist::list_segments(dir.path()).unwrap().len(), 1);
    c.snapshot(false).await.unwrap();
    // The segment holding the 100 records is closed by the snapshot and,
    // being wholly covered by it, deleted; a fresh one takes new writes.
    let segs = burrow_server::persist::list_segments(dir.path()).unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    assert_eq!(segs[0].0, 101);
    c.set("after", "snapshot").await.unwrap();
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_field(&info, "wal_segments"), "1");
    let crashed = TempDir::new("wal-rotate-crash");
    common::copy_dir(dir.path(), crashed.path());
    drop(c);
    server.shutdown().await.unwrap();
    let (store, report) = recover_dir(crashed.path(), false).unwrap();
    assert_eq!(report.snapshot_entries, 100);
    assert_eq!(report.records_replayed, 1);
    assert_eq!(store.len(), 101);
}
