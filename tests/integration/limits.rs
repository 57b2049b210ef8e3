//! Resource limits (issue 11): the global budget for incomplete large
//! requests, the limits on replies a client leaves unread, and file
//! descriptors.

use crate::common;

use std::time::Duration;

use burrow_client::Client;
use burrow_proto::{Request, SetCondition, Status};
use burrow_server::formats::shard_for;
use bytes::Bytes;
use common::{info_u64, request_bytes, wait_for, RawConn};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

/// A SET of `len` bytes to `key`, as wire bytes.
fn big_set(id: u32, key: &str, len: usize) -> Vec<u8> {
    let req = Request::Set {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::from(vec![b'v'; len]),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    };
    request_bytes(&req, id)
}

/// 300 PINGs 1 ms apart from a client of its own: their latencies, sorted.
async fn ping_latencies(addr: std::net::SocketAddr) -> Vec<Duration> {
    latencies(addr, None).await
}

/// 300 PINGs, or GETs of `get` if given, 1 ms apart from a client of its
/// own: their latencies, sorted.
async fn latencies(addr: std::net::SocketAddr, get: Option<&str>) -> Vec<Duration> {
    let mut pinger = Client::connect(addr).await.expect("connect");
    let mut lat = Vec::new();
    for _ in 0..300 {
        let t = std::time::Instant::now();
        match get {
            None => pinger.ping("").await.map(drop).expect("PING"),
            Some(key) => pinger.get(key.to_owned()).await.map(drop).expect("GET"),
        }
        lat.push(t.elapsed());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    lat.sort();
    lat
}

async fn info(c: &Mutex<Client>) -> String {
    c.lock().await.info("clients").await.expect("INFO")
}

/// Four clients each send the first half of a 4 MiB SET; a 6 MiB budget
/// holds one such request: the first reads on, the others stop reading
/// (INFO counts their waits) and buffer nothing; once every client sends
/// the rest, each SET completes in turn, and a small client is served
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_budget_holds_large_requests_back_and_each_one_finishes() {
    const VALUE: usize = 4 << 20;
    let server = common::start_with(|c| c.max_input_buffer = 6 << 20).await;
    let admin = Mutex::new(Client::connect(server.addr).await.expect("connect"));
    let frames: Vec<Vec<u8>> = (0..4).map(|i| big_set(i + 1, &format!("big:{i}"), VALUE)).collect();
    let frame_len = frames[0].len() as u64;
    let mut conns = Vec::new();
    let mut senders = Vec::new();
    for f in &frames {
        let conn = RawConn::connect(server.addr).await;
        let (rd, mut wr) = conn.stream.into_split();
        let half = f[..f.len() / 2].to_vec();
        // A held-back connection's write blocks once the socket buffers
        // fill: each half goes from its own task.
        senders.push(tokio::spawn(async move {
            wr.write_all(&half).await.expect("write the first half");
            wr
        }));
        conns.push(rd);
    }
    wait_for("three requests waiting for the input budget", || async {
        let i = info(&admin).await;
        info_u64(&i, "input_buffer_waits") == 3 && info_u64(&i, "input_buffer_bytes") == frame_len
    })
    .await;
    assert_eq!(
        admin.lock().await.ping("").await.expect("a small request is served meanwhile"),
        Bytes::from("PONG")
    );
    for (s, f) in senders.into_iter().zip(&frames) {
        let mut wr = s.await.expect("sender");
        let rest = f[f.len() / 2..].to_vec();
        tokio::spawn(async move {
            wr.write_all(&rest).await.expect("write the rest");
            wr
        });
    }
    for (i, mut rd) in conns.into_iter().enumerate() {
        use tokio::io::AsyncReadExt;
        // An OK reply is a bare 16-byte header; byte 3 is the status.
        let mut head = [0u8; 16];
        tokio::time::timeout(common::DEADLINE, rd.read_exact(&mut head))
            .await
            .expect("reply within the deadline")
            .expect("read");
        assert_eq!(head[3], Status::Ok as u8, "SET {i} answered OK: {head:02x?}");
    }
    // Each reservation is returned once its request has run, which may be
    // just after the reply went out (the connection's turn ends first).
    wait_for("every reservation returned", || async {
        info_u64(&info(&admin).await, "input_buffer_bytes") == 0
    })
    .await;
    for k in 0..4 {
        let v = admin.lock().await.get(format!("big:{k}")).await.expect("GET").expect("the SET ran");
        assert_eq!(v.len(), VALUE);
    }
    server.shutdown().await.expect("clean shutdown");
}

/// A client pipelines GETs of a 4 MiB value and reads none of the replies:
/// once more than `limit` stays unread (the hard limit: as soon as the
/// socket stops taking bytes; the soft one: for a second), the server
/// closes it, counts it in INFO, and serves another client throughout.
async fn a_reader_that_does_not_read_is_cut(tweak: impl FnOnce(&mut burrow_server::Config)) {
    const VALUE: usize = 4 << 20;
    let server = common::start_with(tweak).await;
    let other = Mutex::new(Client::connect(server.addr).await.expect("connect"));
    other.lock().await.set("big", vec![b'v'; VALUE]).await.expect("SET");
    let mut slow = RawConn::connect(server.addr).await;
    let gets: Vec<u8> = (1..=16)
        .flat_map(|id| request_bytes(&Request::Get { key: Bytes::from_static(b"big") }, id))
        .collect();
    slow.send(&gets).await;
    wait_for("the slow reader to be disconnected", || async {
        assert_eq!(other.lock().await.ping("").await.expect("another client is served"), Bytes::from("PONG"));
        info_u64(&info(&other).await, "clients_killed_output_limit") == 1
    })
    .await;
    // What the server had written reaches the reader, then the close.
    slow.drain_until_closed().await;
    // (Not a GET of `big`: a 4 MiB reply is past a 2 MiB hard limit for any reader.)
    other.lock().await.set("small", "s").await.expect("SET after the cut");
    assert_eq!(other.lock().await.get("small").await.expect("GET"), Some(Bytes::from("s")));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_past_the_hard_output_limit_is_disconnected_while_others_are_served() {
    a_reader_that_does_not_read_is_cut(|c| {
        c.client_output_hard_limit = 2 << 20;
        c.client_output_soft_limit = 0;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_above_the_soft_output_limit_for_its_time_is_disconnected() {
    a_reader_that_does_not_read_is_cut(|c| {
        c.client_output_soft_limit = 1 << 20;
        c.client_output_soft_seconds = Duration::from_secs(1);
    })
    .await;
}

/// With 64 descriptors and the default 10 000 connections, the server
/// lowers its connection limit to what fits (one log line saying so);
/// clients past it get BUSY, and it keeps serving the others and new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_files_limit_lowers_max_connections_and_extra_clients_get_busy() {
    let dir = common::TempDir::new("low-fd");
    let server = common::ChildServer::start_with_nofile(
        dir.path(),
        64,
        &["--persistence", "off", "--shards", "16", "--threads", "1"],
    )
    .await;
    let mut served = Vec::new();
    let mut busy = 0;
    for id in 1..=80u32 {
        let mut c = RawConn::connect(server.addr).await;
        c.send_requests(&[(id, Request::Ping { payload: Bytes::new() })]).await;
        let f = c.frame().await;
        if f.id == 0 {
            common::assert_status(&f, Status::Busy, 0);
            busy += 1;
            c.expect_eof().await;
        } else {
            assert_eq!(f.id, id, "PONG to PING {id}");
            served.push(c);
        }
    }
    // Every slot is taken: one is freed for INFO (a try that comes too
    // early gets BUSY too).
    drop(served.pop());
    let admin = Mutex::new(None);
    wait_for("a slot freed for INFO", || async {
        let Ok(mut c) = Client::connect(server.addr).await else { return false };
        if c.ping("").await.is_err() {
            return false;
        }
        *admin.lock().await = Some(c);
        true
    })
    .await;
    let mut admin = admin.into_inner().expect("a client");
    let info = admin.info("clients").await.expect("INFO");
    let max = info_u64(&info, "max_connections") as usize;
    assert!(max < 64, "lowered below the descriptor limit:\n{info}");
    assert_eq!(served.len() + 1, max, "one slot freed for INFO");
    assert_eq!(busy, 80 - max, "every client past the limit got BUSY");
    assert!(info_u64(&info, "rejected_connections") >= busy as u64, "{info}");
    // The others are still served.
    for (i, c) in served.iter_mut().enumerate() {
        c.send_requests(&[(1000 + i as u32, Request::Ping { payload: Bytes::new() })]).await;
        assert_eq!(c.frame().await.id, 1000 + i as u32);
    }
    let log = server.stderr();
    let lowered = log.lines().filter(|l| l.contains("open-files limit is too low")).count();
    assert_eq!(lowered, 1, "one line says the limit was lowered:\n{log}");
    assert!(log.contains(&format!("lowered_to={max}")), "{log}");
    assert!(!log.contains("accept failed"), "no descriptor ran out:\n{log}");
}

/// Fairness (issue 11 item 8): SCAN with a huge COUNT returns at most
/// 1 000 keys a call (the structural bound: one call walks at most 10 000
/// buckets under a shard lock), and a client PINGing meanwhile, on the
/// same runtime, is answered. The structural bound is the test; the
/// latency bound is loose (250 ms at p99; 100 000-key calls over 300 000
/// keys made it 1.4 s in a debug build, the cap 9.5 ms) so that a loaded
/// machine does not fail it (56 ms was seen once beside a release build).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_scan_count_is_capped_and_a_concurrent_ping_is_served_promptly() {
    let server = common::start_with(|c| c.threads = 1).await;
    let mut loader = Client::connect(server.addr).await.expect("connect");
    common::set_keys(&mut loader, 50_000, &Bytes::from_static(b"v")).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scanner = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut calls, mut most) = (0u64, 0usize);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut cursor = 0;
                loop {
                    let (next, keys) = loader.scan(cursor, 100_000, "*").await.expect("SCAN");
                    most = most.max(keys.len());
                    calls += 1;
                    cursor = next;
                    if cursor == 0 {
                        break;
                    }
                }
            }
            (calls, most)
        })
    };
    let lat = ping_latencies(server.addr).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (calls, most) = scanner.await.expect("scanner");
    assert!(calls >= 50, "the scans ran alongside: {calls} calls");
    assert!(most <= 1000, "a call returned {most} keys");
    let p99 = lat[lat.len() * 99 / 100];
    assert!(p99 < Duration::from_millis(250), "PING p99 {p99:?} beside huge SCANs (max {:?})", lat.last());
    server.shutdown().await.expect("clean shutdown");
}

/// Fairness (issue 11 item 8): a client looping `LRANGE 0 -1` over a
/// 200 000-item list (a 4 MB reply) on the same runtime as a client
/// PINGing: the reply is built in one pass and written in 1 MiB chunks
/// with a yield between them, so the PINGs are answered meanwhile. The
/// bound is loose (250 ms at p99, as for SCAN above) so that a loaded
/// machine does not fail it; release figures are in README (Limits and
/// fairness).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrent_ping_is_served_promptly_beside_huge_lranges() {
    lranges_beside(|c| c.threads = 1, None).await;
}

/// Fairness (issue 11 item 8): the same LRANGEs, and a client GETting
/// another key of the list's shard. The copy is made in steps of at most
/// 16K items per hold of the shard lock (`dispatch/lrange.rs`), so the GET
/// waits for a step, not for the whole list; same loose bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_on_the_same_shard_is_served_promptly_beside_huge_lranges() {
    const SHARDS: usize = 16;
    let neighbour = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| shard_for(k.as_bytes(), SHARDS) == shard_for(b"big", SHARDS))
        .expect("a key");
    lranges_beside(|c| c.shards = SHARDS, Some(&neighbour)).await;
}

/// Loops `LRANGE big 0 -1` over 200 000 items on one client while another
/// samples PINGs (or GETs of `get`, a small string), and asserts their p99
/// is under 250 ms.
async fn lranges_beside(tweak: impl FnOnce(&mut burrow_server::Config), get: Option<&str>) {
    const ITEMS: usize = 200_000;
    let server = common::start_with(tweak).await;
    let mut loader = Client::connect(server.addr).await.expect("connect");
    if let Some(key) = get {
        loader.set(key.to_owned(), "v").await.expect("SET");
    }
    let item = Bytes::from_static(b"0123456789abcdef");
    for _ in 0..ITEMS / 10_000 {
        loader.rpush("big", std::iter::repeat_n(item.clone(), 10_000)).await.expect("RPUSH");
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut calls = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let items = loader.lrange("big", 0, -1).await.expect("LRANGE");
                assert_eq!(items.len(), ITEMS, "the whole list, every time");
                calls += 1;
            }
            calls
        })
    };
    let lat = latencies(server.addr, get).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = reader.await.expect("reader");
    assert!(calls >= 3, "the LRANGEs ran alongside: {calls} calls");
    let (p50, p99) = (lat[lat.len() / 2], lat[lat.len() * 99 / 100]);
    eprintln!("{get:?} beside LRANGE: p50 {p50:?} p99 {p99:?} max {:?} ({calls} LRANGEs)", lat.last());
    assert!(p99 < Duration::from_millis(250), "p99 {p99:?} beside huge LRANGEs (max {:?})", lat.last());
    server.shutdown().await.expect("clean shutdown");
}
