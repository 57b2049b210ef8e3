//! Connection handling: many clients at once, the connection limit, the
//! idle timeout and graceful shutdown.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use burrow_client::{Client, ClientError};
use burrow_proto::{Reply, Request, Status};
use bytes::Bytes;
use common::{assert_status, cmd_stats, info_u64, request_bytes, wait_for, RawConn, ReadEnd, DEADLINE};
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_all_succeed() {
    let server = common::start().await;
    let addr = server.addr;
    const CLIENTS: usize = 200;
    // Every client connects before any starts working, so all 200 are open at once.
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await.expect("connect");
            c.ping("").await.expect("accepted");
            barrier.wait().await;
            for round in 0..3 {
                let key = format!("client:{n}:{round}");
                let value = format!("{n}-{round}");
                c.set(key.clone(), value.clone()).await.unwrap();
                assert_eq!(c.get(key).await.unwrap(), Some(Bytes::from(value)));
                c.incr("shared").await.unwrap();
            }
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.expect("client task succeeded"));
    }
    let mut c = Client::connect(addr).await.unwrap();
    assert_eq!(c.get("shared").await.unwrap(), Some(Bytes::from((CLIENTS * 3).to_string())));
    assert_eq!(c.dbsize().await.unwrap(), (CLIENTS * 3 + 1) as i64);
    let info = c.info("clients").await.unwrap();
    assert_eq!(info_u64(&info, "connected_clients"), CLIENTS as u64 + 1, "{info}");
    assert_eq!(info_u64(&info, "rejected_connections"), 0, "{info}");
    drop(clients);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_connection_over_the_limit_gets_busy_and_the_others_keep_working() {
    let server = common::start_with(|c| c.max_connections = 5).await;
    let mut clients = Vec::new();
    for i in 0..5 {
        let mut c = Client::connect(server.addr).await.unwrap();
        // A reply proves the server accepted this connection under the limit.
        c.set(format!("k{i}"), "v").await.unwrap();
        clients.push(c);
    }

    // The sixth: BUSY with id 0 (it never sent a request), then EOF.
    let mut extra = RawConn::connect(server.addr).await;
    let f = extra.frame().await;
    let msg = assert_status(&f, Status::Busy, 0);
    assert!(msg.contains("max connections"), "{msg}");
    extra.expect_eof().await;

    // The real client reports it as a server error, not a hang.
    let mut c = Client::connect(server.addr).await.unwrap();
    let err = c.ping("").await.unwrap_err();
    assert!(matches!(err, ClientError::Server { status: Status::Busy, .. }), "{err:?}");

    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(c.get(format!("k{i}")).await.unwrap(), Some(Bytes::from("v")), "client {i} unaffected");
    }
    let info = clients[0].info("clients").await.unwrap();
    assert_eq!(info_u64(&info, "rejected_connections"), 2, "{info}");
    assert_eq!(info_u64(&info, "connected_clients"), 5, "{info}");

    // Closing one frees its slot once the server notices.
    drop(clients.pop());
    let addr = server.addr;
    let newcomer = Arc::new(Mutex::new(None));
    wait_for("a freed slot to accept a new connection", || {
        let newcomer = newcomer.clone();
        async move {
            let mut c = Client::connect(addr).await.unwrap();
            match c.ping("").await {
                Ok(_) => {
                    *newcomer.lock().await = Some(c);
                    true
                }
                Err(ClientError::Server { status: Status::Busy, .. }) => false,
                Err(e) => panic!("unexpected error while the slot frees: {e}"),
            }
        }
    })
    .await;
    let mut c = newcomer.lock().await.take().unwrap();
    c.set("newcomer", "in").await.unwrap();
    assert_eq!(clients[0].get("newcomer").await.unwrap(), Some(Bytes::from("in")));
    drop(c);
    drop(clients);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_connection_is_closed_while_an_active_one_stays() {
    let server = common::start_with(|c| c.idle_timeout = Some(Duration::from_secs(1))).await;
    let opened = Instant::now();
    let mut idle = RawConn::connect(server.addr).await;
    let mut active = Client::connect(server.addr).await.unwrap();

    // Keep the active one busy well inside the timeout until the idle one closes.
    let deadline = opened + DEADLINE;
    loop {
        assert!(Instant::now() < deadline, "idle connection never closed");
        assert_eq!(active.ping("").await.unwrap(), "PONG");
        let read = tokio::time::timeout(Duration::from_millis(100), idle.next()).await;
        match read {
            Err(_) => continue,
            Ok(ReadEnd::Eof) => break,
            Ok(ReadEnd::Frame(f)) => panic!("idle connection got an unsolicited frame: {f:?}"),
        }
    }
    assert!(opened.elapsed() >= Duration::from_secs(1), "closed before the timeout: {:?}", opened.elapsed());
    // The active connection survived the timeout several times over.
    active.set("still", "here").await.unwrap();
    assert_eq!(active.get("still").await.unwrap(), Some(Bytes::from("here")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_answers_requests_in_flight_then_closes() {
    let server = common::start().await;
    let addr = server.addr;
    let observer = Arc::new(Mutex::new(Client::connect(addr).await.unwrap()));
    let mut conn = RawConn::connect(addr).await;

    const N: u32 = 1000;
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend_from_slice(&request_bytes(&Request::Incr { key: "n".into() }, i + 1));
    }
    conn.send(&batch).await;
    // Wait until the server has executed the whole batch, without reading any
    // reply: the replies are then in flight when shutdown begins.
    wait_for("the pipelined batch to be executed", || {
        let observer = observer.clone();
        async move {
            let info = observer.lock().await.info("stats").await.unwrap();
            cmd_stats(&info, "incr").is_some_and(|(calls, _)| calls == u64::from(N))
        }
    })
    .await;

    let shutdown = tokio::spawn(server.shutdown());
    for i in 0..N {
        let (id, reply) = conn.reply().await;
        assert_eq!((id, reply), (i + 1, Reply::Int(i as i64 + 1)), "reply {i} of the in-flight batch");
    }
    conn.expect_eof().await;
    // The idle observer connection is closed too.
    let err = observer.lock().await.ping("").await.unwrap_err();
    assert!(matches!(err, ClientError::Closed | ClientError::Io(_)), "{err:?}");

    tokio::time::timeout(DEADLINE, shutdown)
        .await
        .expect("shutdown completes")
        .expect("shutdown task")
        .expect("shutdown returns Ok");
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert!(refused.is_err(), "no longer accepting after shutdown");
}

#[tokio::test]
async fn shutdown_with_no_connections_returns_promptly() {
    let server = common::start().await;
    let addr = server.addr;
    tokio::time::timeout(DEADLINE, server.shutdown()).await.expect("prompt").expect("Ok");
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// Regression: shutdown waited forever for a connection blocked writing
/// replies to a peer that stopped reading.
#[tokio::test]
async fn shutdown_does_not_wait_forever_for_a_peer_that_never_reads() {
    let server = common::start().await;
    let addr = server.addr;
    let mut c = Client::connect(addr).await.unwrap();
    c.set("big", vec![b'x'; 1 << 20]).await.unwrap();
    drop(c);

    // 64 GETs of a 1 MiB value: far more than the socket buffers hold.
    let mut conn = RawConn::connect(addr).await;
    let mut batch = Vec::new();
    for id in 1..=64u32 {
        batch.extend_from_slice(&request_bytes(&Request::Get { key: "big".into() }, id));
    }
    conn.send(&batch).await;
    // One reply read proves the server is inside the batch; then stop reading.
    assert_eq!(conn.frame().await.value.len(), 1 << 20);

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), server.shutdown())
        .await
        .expect("shutdown finishes although a peer never reads")
        .expect("shutdown returns Ok");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// The binary's thread-per-core mode: connections handed round-robin to
/// single-threaded worker runtimes are served there and shut down cleanly.
#[tokio::test]
async fn connections_on_worker_runtimes_are_served_and_shut_down() {
    use burrow_server::{Config, Server};
    let stop = tokio_util::sync::CancellationToken::new();
    let mut handles = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..2 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        handles.push(rt.handle().clone());
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || rt.block_on(stop.cancelled())));
    }
    let config = Config { port: 0, shards: 16, persistence: false, ..Config::default() };
    let server = Server::open(config).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let token = shutdown.clone();
    let serving =
        tokio::spawn(async move { server.serve_on(listener, token.cancelled_owned(), handles).await });

    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(tokio::spawn(async move {
            let mut c = burrow_client::Client::connect(addr).await.unwrap();
            for j in 0..50 {
                c.set(format!("k{i}:{j}"), format!("{j}")).await.unwrap();
            }
            assert_eq!(c.incr_by("shared", 50).await.unwrap() % 50, 0);
            c
        }));
    }
    let mut clients = Vec::new();
    for t in tasks {
        clients.push(t.await.unwrap());
    }
    assert_eq!(clients[0].dbsize().await.unwrap(), 20 * 50 + 1);
    assert_eq!(clients[3].get("shared").await.unwrap().as_deref(), Some(&b"1000"[..]));

    shutdown.cancel();
    serving.await.unwrap().unwrap();
    // Every connection, on whichever runtime, was closed by the shutdown.
    for mut c in clients {
        assert!(c.ping("").await.is_err());
    }
    stop.cancel();
    for t in threads {
        t.join().unwrap();
    }
}

/// A client that sends requests but never reads the replies must not hold a
/// connection slot (and its reply buffer) forever: with an idle timeout, a
/// write that makes no progress for that long closes the connection.
#[tokio::test]
async fn a_peer_that_never_reads_is_closed_after_the_idle_timeout() {
    let server = common::start_with(|c| c.idle_timeout = Some(Duration::from_secs(1))).await;
    let addr = server.addr;
    let mut observer = Client::connect(addr).await.unwrap();
    observer.set("big", vec![b'x'; 1 << 20]).await.unwrap();

    let mut conn = RawConn::connect(addr).await;
    let mut batch = Vec::new();
    for id in 1..=64u32 {
        batch.extend_from_slice(&request_bytes(&Request::Get { key: "big".into() }, id));
    }
    conn.send(&batch).await;
    // One reply read proves the server accepted the connection and is in
    // the batch; then stop reading.
    assert_eq!(conn.frame().await.value.len(), 1 << 20);
    let clients = |info: String| common::info_u64(&info, "connected_clients");
    assert_eq!(clients(observer.info("clients").await.unwrap()), 2);
    // The stuck writer is dropped within a deadline; the observer keeps working.
    let deadline = Instant::now() + DEADLINE;
    loop {
        if clients(observer.info("clients").await.unwrap()) == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "a peer that never reads kept its connection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(observer.ping("").await.unwrap(), "PONG");
    drop(conn);
    drop(observer);
    server.shutdown().await.unwrap();
}
