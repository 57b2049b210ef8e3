//! Recovery on hand-built data directories: WAL segments cut at every
//! byte, flipped bits, gaps, empty and headerless files, snapshots alone,
//! truncated or damaged, and snapshots taken during writes plus the whole
//! WAL. Each case recovers into a fresh `Store` and compares it entry for
//! entry — fast and exact. (The server-level cases, through a real server
//! or the binary, are in the root package's `tests/integration/persistence.rs`.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use burrow_proto::End;

use super::*;
use crate::oplog::{encode_record, Op, OpLog, Record};
use crate::persist::incomplete::Incomplete;
use crate::persist::wal::header;
use crate::persist::{
    discard_incomplete, even_out, read_node_meta, relabel_first_cover, segment_name, snapshot_name,
    write_node_meta_with, write_snapshot, NodeMeta,
};
use crate::server::now_ms;
use crate::store::{SetArgs, ValueRef};

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("burrow-recovery-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
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
    let mut buf = BytesMut::from(&header(first)[..]);
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
        if bytes[last_start..cut].iter().all(|&b| b == 0) {
            // Only the zero high bytes of its length: no different from a
            // preallocated tail, a clean end (next test).
            continue;
        }
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
    for cut in [last_start + 4, last_start + 8, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let err = recover_dir(dir.path(), false).expect_err("refused").to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains(&format!("byte offset {last_start}")), "{err}");
        assert!(err.contains("torn"), "{err}");
        // Refusing must not touch the file.
        assert_eq!(std::fs::read(&path).unwrap(), &bytes[..cut]);
    }
}

// ------------------------------------------- WAL: preallocated segments

/// `bytes` followed by zeros up to `len` bytes: a preallocated segment.
fn padded(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out.resize(len.max(bytes.len()), 0);
    out
}

#[test]
fn a_preallocated_zero_tail_is_a_clean_end_even_when_truncation_is_disabled() {
    let ops = sample_ops(20);
    let (bytes, starts) = segment(1, &ops);
    let dir = TempDir::new("prealloc-tail");
    let path = seg_path(dir.path(), 1);
    // After every record boundary: the records so far, then zeros.
    for (n, &end) in starts.iter().enumerate() {
        std::fs::write(&path, padded(&bytes[..end], 64 * 1024)).unwrap();
        let (store, report) = recover_dir(dir.path(), false).unwrap_or_else(|e| panic!("{n} records: {e}"));
        assert!(report.truncated.is_none(), "{n} records: zeros are not a tear");
        assert_eq!(report.last_index, n as u64, "{n} records");
        assert_eq!(report.segments, vec![(1, path.clone(), end as u64)], "{n} records: valid length");
        assert_eq!(dump_store(&store, now_ms()), expected(&ops[..n]), "{n} records");
    }
}

#[test]
fn a_torn_record_followed_by_zeros_is_a_torn_tail() {
    let ops = sample_ops(12);
    let (bytes, starts) = segment(1, &ops);
    let last_start = starts[ops.len() - 1];
    let want = expected(&ops[..ops.len() - 1]);
    let dir = TempDir::new("prealloc-torn");
    let path = seg_path(dir.path(), 1);
    for cut in last_start + 1..bytes.len() {
        if bytes[last_start..cut].iter().all(|&b| b == 0) {
            continue; // only zeros of the record reached the disk: indistinguishable from none
        }
        std::fs::write(&path, padded(&bytes[..cut], 16 * 1024)).unwrap();
        let (store, report) = recover_dir(dir.path(), true).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        assert_eq!(report.truncated.as_ref().map(|t| t.1), Some(last_start as u64), "cut {cut}");
        assert_eq!(report.segments, vec![(1, path.clone(), last_start as u64)], "cut {cut}");
        assert_eq!(dump_store(&store, now_ms()), want, "cut {cut}");
        let err = recover_dir(dir.path(), false).expect_err("refused").to_string();
        assert!(
            err.contains("torn") && err.contains(&format!("byte offset {last_start}")),
            "cut {cut}: {err}"
        );
    }
    // Zeros in the middle of the records, a valid record after them: corruption.
    let mut holed = padded(&bytes, 16 * 1024);
    holed[starts[3]..starts[4]].fill(0);
    std::fs::write(&path, &holed).unwrap();
    let err = recover_dir(dir.path(), true).expect_err("refused").to_string();
    assert!(err.contains(&format!("corrupt record at byte offset {}", starts[3])), "{err}");
}

#[test]
fn a_crash_between_preallocation_and_the_first_write_recovers_empty() {
    // The segment's size reached the disk, its header did not: all zeros.
    let ops = sample_ops(6);
    let dir = TempDir::new("prealloc-unwritten");
    let (store, report) = {
        std::fs::write(seg_path(dir.path(), 1), vec![0u8; 8192]).unwrap();
        recover_dir(dir.path(), false).unwrap()
    };
    assert_eq!((store.len(), report.last_index), (0, 0));
    assert_eq!(report.segments, vec![(1, seg_path(dir.path(), 1), 0)], "kept, to be rewritten");
    // The same as the next segment after a full one.
    let (a, _) = segment(1, &ops[..6]);
    std::fs::write(seg_path(dir.path(), 1), &a).unwrap();
    std::fs::write(seg_path(dir.path(), 7), vec![0u8; 8192]).unwrap();
    let (store, report) = recover_dir(dir.path(), false).unwrap();
    assert_eq!(report.last_index, 6);
    assert_eq!(report.segments.last(), Some(&(7, seg_path(dir.path(), 7), 0)));
    assert_eq!(dump_store(&store, now_ms()), expected(&ops[..6]));
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
    assert_eq!(store.len(), 0);
    assert_eq!((report.last_index, report.snapshot.is_none()), (0, true));
    let (store, report) = recover_dir(&dir, true).unwrap();
    assert!(store.len() == 0 && report.segments.is_empty());
}

#[test]
fn empty_and_headerless_segments_recover_empty_and_are_kept_for_appending() {
    for (name, content) in [("zero", &b""[..]), ("partial", &b"BWAL\x00\x01\x00"[..])] {
        let dir = TempDir::new(name);
        let path = seg_path(dir.path(), 1);
        std::fs::write(&path, content).unwrap();
        let (store, report) = recover_dir(dir.path(), true).unwrap();
        assert_eq!(store.len(), 0, "{name}");
        assert_eq!(report.last_index, 0, "{name}");
        assert_eq!(report.segments, vec![(1, path.clone(), 0)], "{name}");
    }
}

#[test]
fn snapshot_names_sort_by_index() {
    assert_eq!(snapshot_name(42), "snapshot-00000000000000000042.snap");
    assert_eq!(segment_name(7), "wal-00000000000000000007.log");
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

// ------------------------------- shard images past the WAL (incomplete)

/// INCRs of 32 counters (indexes 1..=32), snapshotted evenly at 32, then
/// shard 0's image relabelled as covering 4: the snapshot a follower gets
/// when the leader exported shard 0 at index 4 and the others at 32.
/// Returns the ops, for WAL segments.
fn fuzzy_snapshot(dir: &Path) -> Vec<Op> {
    let store = fresh_store();
    let ops: Vec<Op> = (0..32).map(|i| Op::IncrBy { key: b(&format!("c{i}")), delta: 1 }).collect();
    for op in &ops {
        let Op::IncrBy { key, delta } = op else { unreachable!() };
        store.incr_by(key, *delta, now_ms()).unwrap();
    }
    let info = write_snapshot(&store, dir, 1, now_ms(), |_| Ok(())).unwrap();
    assert_eq!(info.index, 32);
    let mut bytes = std::fs::read(&info.path).unwrap();
    relabel_first_cover(&mut bytes, 4);
    std::fs::remove_file(&info.path).unwrap();
    std::fs::write(dir.join(snapshot_name(4)), bytes).unwrap();
    ops
}

/// Records `from..=to` of `ops` (index i is `ops[i - 1]`) as one segment.
fn write_records(dir: &Path, ops: &[Op], from: u64, to: u64) {
    let (data, _) = segment(from, &ops[(from - 1) as usize..to as usize]);
    std::fs::write(seg_path(dir, from), data).unwrap();
}

#[test]
fn shard_images_past_the_wals_last_record_are_reported_incomplete() {
    // (WAL records held after the snapshot, expected report.)
    let cases: [(Option<u64>, Option<Incomplete>); 4] = [
        // A follower killed right after installing: its WAL is empty.
        (Some(4), Some(Incomplete { log_end: 4, max_cover: 32 })),
        // Killed while the records up to the highest cover were arriving.
        (Some(20), Some(Incomplete { log_end: 20, max_cover: 32 })),
        // Every record the images hold arrived: a log prefix's image.
        (Some(32), None),
        // A snapshot alone (crash before its WAL segment was created).
        (None, Some(Incomplete { log_end: 4, max_cover: 32 })),
    ];
    for (wal_to, want) in cases {
        let dir = TempDir::new("incomplete");
        let ops = fuzzy_snapshot(dir.path());
        if let Some(to) = wal_to {
            write_records(dir.path(), &ops, 5, to);
        }
        let (_, report) = recover_dir(dir.path(), true).unwrap();
        assert_eq!(report.incomplete, want, "WAL to {wal_to:?}");
        // Standalone semantics unchanged: the log continues after the highest cover.
        assert_eq!(report.last_index, 32, "WAL to {wal_to:?}");
    }
    // An even snapshot whose WAL holds only older records is whole.
    let dir = TempDir::new("even");
    let store = fresh_store();
    store.incr_by(&b("c"), 1, now_ms()).unwrap();
    store.incr_by(&b("c"), 1, now_ms()).unwrap();
    write_snapshot(&store, dir.path(), 1, now_ms(), |_| Ok(())).unwrap();
    let (data, _) = segment(1, &[Op::IncrBy { key: b("c"), delta: 1 }]);
    std::fs::write(seg_path(dir.path(), 1), data).unwrap();
    let (recovered, report) = recover_dir(dir.path(), true).unwrap();
    assert_eq!(report.incomplete, None);
    assert_eq!(dump_store(&recovered, now_ms()), dump_store(&store, now_ms()));
}

#[test]
fn a_members_incomplete_data_set_is_emptied_in_memory_and_on_disk() {
    let dir = TempDir::new("discard");
    let ops = fuzzy_snapshot(dir.path());
    write_records(dir.path(), &ops, 5, 20);
    let history = NodeMeta { history_id: 0xabc, term: 7, clean: false };
    write_node_meta_with(&crate::persist::StdFileSystem, dir.path(), history).unwrap();
    let (store, mut report) = recover_dir(dir.path(), true).unwrap();
    assert!(store.len() > 0);
    discard_incomplete(&crate::persist::StdFileSystem, dir.path(), &store, &mut report).unwrap();
    assert_eq!(store.len(), 0);
    assert_eq!(store.log().last_index(), 0);
    assert_eq!((report.last_index, report.segments.len(), report.snapshot.is_some()), (0, 0, false));
    let meta = read_node_meta(dir.path()).unwrap().unwrap();
    assert_eq!((meta.history_id, meta.term), (0, 7), "no history, same term");
    // A restart before the full resync finds an empty directory.
    let (again, report) = recover_dir(dir.path(), true).unwrap();
    assert_eq!((again.len(), report.last_index, report.incomplete), (0, 0, None));
}

#[test]
fn a_standalone_incomplete_data_set_is_kept_as_one_even_snapshot() {
    let dir = TempDir::new("even-out");
    let ops = fuzzy_snapshot(dir.path());
    write_records(dir.path(), &ops, 5, 20);
    let (store, mut report) = recover_dir(dir.path(), true).unwrap();
    let before = dump_store(&store, now_ms());
    even_out(&crate::persist::StdFileSystem, dir.path(), &store, &mut report, now_ms()).unwrap();
    assert!(report.segments.is_empty(), "the covered segments are deleted");
    assert_eq!(report.snapshot.as_ref().map(|(_, m)| m.min_cover()), Some(32));
    // Restarting finds the same data, whole, continuing at 32.
    let (again, report) = recover_dir(dir.path(), true).unwrap();
    assert_eq!(report.incomplete, None);
    assert_eq!(report.last_index, 32);
    assert_eq!(dump_store(&again, now_ms()), before);
}
