//! Crash tests with real processes: `burrow-server` runs as a child, several
//! clients write concurrently, the server is SIGKILLed mid-load, restarted
//! on the same data directory, and every acknowledged write must be there
//! with its acknowledged value.
//!
//! Each client owns its keys and has at most one request in flight, so after
//! `k` acknowledged ops its keys must hold exactly the state after op `k`
//! or (the op in flight when the server died may or may not have landed)
//! after op `k + 1`. Counters and deques make a lost or doubled op visible.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use burrow_client::Client;

use common::{ChildServer, TempDir};

/// What one client's keys hold.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    string: Option<String>,
    counter: Option<i64>,
    list: Vec<String>,
}

/// Op `j` of a client: SET, INCR, RPUSH, then LPOP or INCRBY 10.
async fn run_op(c: &mut Client, t: usize, j: u64) -> Result<(), burrow_client::ClientError> {
    match j % 4 {
        0 => c.set(format!("s{t}"), format!("v{j}")).await,
        1 => c.incr(format!("c{t}")).await.map(drop),
        2 => c.rpush(format!("l{t}"), [j.to_string()]).await.map(drop),
        _ if j % 8 == 3 => c.lpop(format!("l{t}")).await.map(drop),
        _ => c.incr_by(format!("c{t}"), 10).await.map(drop),
    }
}

/// The state after a client's first `k` ops.
fn model(k: u64) -> State {
    let mut s = State { string: None, counter: None, list: Vec::new() };
    for j in 0..k {
        match j % 4 {
            0 => s.string = Some(format!("v{j}")),
            1 => s.counter = Some(s.counter.unwrap_or(0) + 1),
            2 => s.list.push(j.to_string()),
            _ if j % 8 == 3 => {
                if !s.list.is_empty() {
                    s.list.remove(0);
                }
            }
            _ => s.counter = Some(s.counter.unwrap_or(0) + 10),
        }
    }
    s
}

async fn read_state(c: &mut Client, t: usize) -> State {
    let string = c.get(format!("s{t}")).await.unwrap().map(|v| String::from_utf8(v.to_vec()).unwrap());
    let counter = c
        .get(format!("c{t}"))
        .await
        .unwrap()
        .map(|v| std::str::from_utf8(&v).unwrap().parse::<i64>().unwrap());
    let list = c
        .lrange(format!("l{t}"), 0, -1)
        .await
        .unwrap()
        .into_iter()
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    State { string, counter, list }
}

/// Starts `clients` writers; each counts its acknowledged ops and stops at
/// its first error (the server died: perhaps before a slow writer even
/// connected) or after `limit` ops.
fn spawn_writers(
    addr: std::net::SocketAddr,
    clients: usize,
    limit: u64,
) -> (Vec<Arc<AtomicU64>>, Vec<tokio::task::JoinHandle<()>>) {
    let acked: Vec<_> = (0..clients).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let tasks = (0..clients)
        .map(|t| {
            let acked = acked[t].clone();
            tokio::spawn(async move {
                let Ok(mut c) = Client::connect(addr).await else { return };
                for j in 0..limit {
                    if run_op(&mut c, t, j).await.is_err() {
                        return;
                    }
                    acked.store(j + 1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    (acked, tasks)
}

fn total(acked: &[Arc<AtomicU64>]) -> u64 {
    acked.iter().map(|a| a.load(Ordering::SeqCst)).sum()
}

/// Checks every client's keys against what it had acknowledged.
async fn verify(addr: std::net::SocketAddr, acked: &[u64], exact: bool, what: &str) {
    let mut c = Client::connect(addr).await.unwrap();
    for (t, &k) in acked.iter().enumerate() {
        let got = read_state(&mut c, t).await;
        let ok = got == model(k) || (!exact && got == model(k + 1));
        assert!(ok, "{what}: client {t} had {k} ops acknowledged; found {got:?}, expected {:?}", model(k));
    }
}

/// One crash: load from `clients` writers, SIGKILL once `kill_at` ops are
/// acknowledged in total, restart, verify.
async fn crash_round(args: &[&str], clients: usize, kill_at: u64) {
    let dir = TempDir::new("crash");
    let server = ChildServer::start(dir.path(), args).await;
    let (acked, tasks) = spawn_writers(server.addr, clients, u64::MAX);
    common::wait_for("acknowledged writes", || {
        let n = total(&acked);
        async move { n >= kill_at }
    })
    .await;
    let log = server.kill_9();
    for t in tasks {
        t.await.unwrap();
    }
    let counts: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    let what = format!("{args:?}, kill after {kill_at} acks ({counts:?})");

    let server = ChildServer::start(dir.path(), args).await;
    verify(server.addr, &counts, false, &what).await;
    // The restarted server keeps going from where the log ended.
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("after-restart", "1").await.unwrap();
    drop(c);
    let (status, log2) = server.terminate().await;
    assert!(status.success(), "{what}: clean exit after restart:\n{log}\n{log2}");
    let server = ChildServer::start(dir.path(), args).await;
    verify(server.addr, &counts, false, &format!("{what}, second restart")).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.get("after-restart").await.unwrap().as_deref(), Some(&b"1"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_always_keeps_every_acknowledged_write_across_kill_9() {
    crash_round(&["--fsync", "always"], 6, 150).await;
    crash_round(&["--fsync", "always", "--wal-segment-bytes", "4096"], 6, 900).await;
    crash_round(&["--fsync", "always", "--wal-segment-bytes", "8192", "--snapshot-every", "400"], 8, 2500)
        .await;
}

/// `everysec` and `no` hand every record to the OS before the reply goes
/// out, so a process crash (not a power loss) loses nothing acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everysec_and_no_lose_nothing_acknowledged_on_a_process_crash() {
    crash_round(&["--fsync", "everysec"], 6, 2000).await;
    crash_round(&["--fsync", "no", "--wal-segment-bytes", "4096"], 6, 2000).await;
}

/// Snapshots (SAVE and BGSAVE) taken while 4 clients write, then SIGKILL:
/// every acknowledged op is there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_taken_during_writes_then_kill_9_lose_and_double_nothing() {
    let dir = TempDir::new("crash-snap");
    let args = ["--fsync", "always", "--wal-segment-bytes", "4096"];
    let server = ChildServer::start(dir.path(), &args).await;
    let per_client = 600;
    let (acked, tasks) = spawn_writers(server.addr, 4, per_client);
    let done = Arc::new(AtomicBool::new(false));
    let snapshots = {
        let (addr, done) = (server.addr, done.clone());
        tokio::spawn(async move {
            let mut c = Client::connect(addr).await.unwrap();
            let mut taken = 0;
            while !done.load(Ordering::SeqCst) || taken < 4 {
                if taken % 2 == 0 {
                    let report = c.snapshot(false).await.unwrap();
                    assert!(report.starts_with("snapshot written"), "{report}");
                } else {
                    match c.snapshot(true).await {
                        Ok(_) => {}
                        Err(e) if e.status() == Some(burrow_proto::Status::InProgress) => {}
                        Err(e) => panic!("BGSAVE: {e}"),
                    }
                }
                taken += 1;
            }
            taken
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let taken = snapshots.await.unwrap();
    assert!(taken >= 4);
    // Wait for a background snapshot still running, so the kill does not
    // land mid-write by accident (that case is covered by crash_round).
    let mut c = Client::connect(server.addr).await.unwrap();
    let info = c.info("persistence").await.unwrap();
    assert!(info.contains("snapshots_written:"), "{info}");
    c.snapshot(false).await.unwrap();
    // A little more after the last snapshot, so the WAL has something to replay.
    for i in 0..25 {
        run_op(&mut c, 99, i).await.unwrap();
    }
    drop(c);
    let counts: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
    assert_eq!(counts, vec![per_client; 4]);
    server.kill_9();

    let server = ChildServer::start(dir.path(), &args).await;
    verify(server.addr, &counts, true, "snapshots during writes").await;
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(read_state(&mut c, 99).await, model(25));
    let info = c.info("persistence").await.unwrap();
    assert_eq!(common::info_u64(&info, "recovery_records_replayed"), 25, "{info}");
}

/// Killed while a large snapshot is being written: the temp file is left
/// behind, the previous snapshot and the WAL are intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_snapshot_leaves_the_previous_state_intact() {
    let dir = TempDir::new("crash-mid-snap");
    let args = ["--fsync", "always"];
    let server = ChildServer::start(dir.path(), &args).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let reqs: Vec<_> = (0..20_000)
        .map(|i| burrow_proto::Request::Set {
            key: format!("k{i}").into(),
            value: vec![b'v'; 100].into(),
            ttl_ms: None,
            condition: Default::default(),
            keep_ttl: false,
        })
        .collect();
    for chunk in reqs.chunks(2000) {
        c.pipeline(chunk).await.unwrap();
    }
    c.incr_by("counter", 7).await.unwrap();
    c.snapshot(true).await.unwrap();
    // Kill as soon as the snapshot's temp file appears (or it already finished).
    let path = dir.path().to_owned();
    common::wait_for("a snapshot file", || {
        let path = path.clone();
        async move {
            std::fs::read_dir(&path).unwrap().flatten().any(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with("snapshot-") && (n.ends_with(".tmp") || n.ends_with(".snap"))
            })
        }
    })
    .await;
    server.kill_9();
    let server = ChildServer::start(dir.path(), &args).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 20_001);
    assert_eq!(c.get("counter").await.unwrap().as_deref(), Some(&b"7"[..]));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files removed at start: {leftovers:?}");
}
