//! Cluster clients (`Client::connect_cluster`) across leader changes:
//! finding the leader from any seed, waiting out NO_LEADER and a dead
//! leader within the deadline, and the idempotency rule when a connection
//! dies after a request was sent (protocol.md §5.2). In-process servers,
//! fakes and the proxy for the precise cases; a child-process cluster for
//! a real kill -9 and restart.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use burrow_client::{Client, ClientConfig, ClientError, FailoverConfig};
use burrow_proto::{Opcode, Reply, Request, Status};
use bytes::Bytes;
use common::cluster::{Cluster, Options};
use common::not_leader::NotLeader;
use common::proxy::Proxy;
use common::{cmd_stats, wait_for, DEADLINE};

/// A cluster client config with a short failover deadline, for the tests
/// that wait it out.
fn short(deadline: Duration) -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(1),
        failover: FailoverConfig { deadline, ..FailoverConfig::default() },
        ..ClientConfig::default()
    }
}

/// The most a call may outlive its deadline on a loaded machine: no timer
/// of the client runs past it, so this is scheduling slack only.
const SLACK: Duration = Duration::from_secs(5);

async fn value(addr: SocketAddr, key: &str) -> Option<Bytes> {
    Client::connect(addr).await.expect("connect").get(key.to_string()).await.expect("GET")
}

async fn calls(addr: SocketAddr, cmd: &str) -> u64 {
    let info = Client::connect(addr).await.expect("connect").info("stats").await.expect("INFO stats");
    cmd_stats(&info, cmd).map_or(0, |(calls, _)| calls)
}

#[tokio::test]
async fn an_incr_cut_after_sending_is_outcome_unknown_and_runs_once() {
    let server = common::start().await;
    let proxy = Proxy::start(server.addr).await;
    let mut c = Client::connect_cluster(&[proxy.addr.to_string()]).await.unwrap();
    assert_eq!(c.incr("n").await.unwrap(), 1);

    // The server's replies are held from now on: the INCR arrives and runs,
    // its reply never comes back, then the link is cut.
    proxy.limit(Some(0));
    let call = tokio::spawn(async move {
        let r = c.incr("n").await;
        (c, r)
    });
    let addr = server.addr;
    wait_for("the INCR to run", || async move { value(addr, "n").await.as_deref() == Some(&b"2"[..]) }).await;
    proxy.cut();
    let (mut c, result) = call.await.unwrap();
    match result {
        Err(ClientError::OutcomeUnknown { opcode: Opcode::Incr, unknown, replies, source, .. }) => {
            assert_eq!((unknown, replies), (vec![0], vec![None]));
            assert!(matches!(*source, ClientError::Closed | ClientError::Io(_)), "{source:?}");
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert_eq!(value(server.addr, "n").await.as_deref(), Some(&b"2"[..]), "not applied twice");

    // The client carries on over a new connection.
    proxy.limit(None);
    assert_eq!(c.incr("n").await.unwrap(), 3);
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_read_cut_after_sending_is_retried_and_a_pipeline_only_if_all_is_idempotent() {
    let server = common::start().await;
    let proxy = Proxy::start(server.addr).await;
    let mut c = Client::connect_cluster(&[proxy.addr.to_string()]).await.unwrap();
    c.set("k", "v").await.unwrap();

    // [GET, SET, DEL]: all idempotent, re-sent after the cut.
    let key = || Bytes::from_static(b"k");
    let reqs = vec![
        Request::Get { key: key() },
        Request::Set {
            key: Bytes::from_static(b"j"),
            value: key(),
            ttl_ms: None,
            condition: Default::default(),
            keep_ttl: false,
        },
        Request::Exists { key: Bytes::from_static(b"j") },
    ];
    let gets = calls(server.addr, "get").await;
    proxy.limit(Some(0));
    let call = tokio::spawn(async move {
        let r = c.pipeline(&reqs).await;
        (c, r)
    });
    let addr = server.addr;
    wait_for("the GET to arrive", || async move { calls(addr, "get").await > gets }).await;
    // Cut it, and refuse (accept and close) new connections until the
    // replies flow again, so the retries meet a closed link first.
    proxy.refuse(true);
    proxy.limit(None);
    proxy.refuse(false);
    let (mut c, result) = call.await.unwrap();
    assert_eq!(result.unwrap(), vec![Reply::Bytes(Bytes::from_static(b"v")), Reply::Ok, Reply::Int(1)]);

    // [GET, INCR]: the INCR's outcome is unknown, so neither is re-sent.
    proxy.limit(Some(0));
    let reqs = vec![Request::Get { key: key() }, Request::Incr { key: Bytes::from_static(b"n") }];
    let call = tokio::spawn(async move { c.pipeline(&reqs).await });
    wait_for("the INCR to run", || async move { value(addr, "n").await.is_some() }).await;
    proxy.cut();
    match call.await.unwrap() {
        Err(ClientError::OutcomeUnknown { opcode: Opcode::Incr, unknown, .. }) => {
            assert_eq!(unknown, vec![0, 1])
        }
        other => panic!("expected OutcomeUnknown, got {other:?}"),
    }
    assert_eq!(value(server.addr, "n").await.as_deref(), Some(&b"1"[..]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_leader_is_waited_out_until_the_deadline_then_reported() {
    let fake = NotLeader::no_leader().await;
    let deadline = Duration::from_secs(2);
    let mut c = Client::connect_cluster_with(&[fake.addr.to_string()], short(deadline)).await.unwrap();
    let started = Instant::now();
    let err = c.incr("n").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.status(), Some(Status::NoLeader), "{err:?}");
    assert!(took < deadline + SLACK, "the call took {took:?}, past its {deadline:?} deadline");
    // It asked again, pausing between (at least 5 ms each).
    let asked = fake.requests();
    assert!(asked >= 2, "asked {asked} times");
    assert!((asked as u128) <= deadline.as_millis() / 5 + 1, "asked {asked} times: no pauses?");
}

#[tokio::test]
async fn a_node_without_a_leader_is_passed_over_for_the_next_seed() {
    let server = common::start().await;
    let fake = NotLeader::no_leader().await;
    let mut c = Client::connect_cluster(&[fake.addr.to_string(), server.addr.to_string()]).await.unwrap();
    assert_eq!(c.addr(), fake.addr);
    assert_eq!(c.incr("n").await.unwrap(), 1);
    // CLUSTER at connect (it names no leader), then the INCR.
    assert_eq!((c.addr(), fake.requests()), (server.addr, 2));
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn no_reachable_seed_is_unavailable_within_the_deadline() {
    let (_held_a, a) = common::refusing_addr();
    let (_held_b, b) = common::refusing_addr();
    let deadline = Duration::from_millis(400);
    let started = Instant::now();
    let err =
        Client::connect_cluster_with(&[a.to_string(), b.to_string()], short(deadline)).await.unwrap_err();
    assert!(started.elapsed() < deadline + SLACK, "took {:?}", started.elapsed());
    match err {
        ClientError::Unavailable { attempts, last, .. } => {
            assert!(attempts >= 2, "{attempts} attempts");
            assert!(matches!(*last, ClientError::Connect(_)), "{last:?}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let none: [&str; 0] = [];
    assert!(matches!(Client::connect_cluster(&none).await, Err(ClientError::NoSeeds)));
}

#[tokio::test]
async fn a_client_seeded_with_a_follower_writes_through_the_leader() {
    let cluster = Cluster::start("failover-seed", Options::default()).await;
    let follower = cluster.nodes[2].addr;
    let mut c = Client::connect_cluster(&[follower.to_string()]).await.unwrap();
    c.set("k", "v").await.unwrap();
    assert_eq!(c.addr(), cluster.leader().addr);
    // Found at connect (CLUSTER) if node 3 already followed node 1, else
    // by the SET's redirect.
    let hops = c.last_redirects();
    assert!(hops.is_empty() || hops == [cluster.leader().addr], "{hops:?}");
    assert_eq!(c.incr("n").await.unwrap(), 1);
    cluster.converged().await;
    assert_eq!(value(follower, "n").await.as_deref(), Some(&b"1"[..]));
}

/// Leader killed: every call ends by its deadline with a documented error
/// (never a hang, never a write applied twice); once it is back, the
/// same client carries on.
#[tokio::test]
async fn a_killed_leader_fails_calls_by_their_deadline_and_its_return_is_found() {
    let mut cluster = Cluster::start("failover-kill", Options::default()).await;
    let seeds: Vec<String> = cluster.nodes.iter().map(|n| n.addr.to_string()).collect();
    let deadline = Duration::from_secs(2);
    let mut c = Client::connect_cluster_with(&seeds, short(deadline)).await.unwrap();
    assert_eq!(c.incr("n").await.unwrap(), 1);
    assert_eq!(c.addr(), cluster.leader().addr);
    cluster.converged().await;

    cluster.node(1).kill_9();
    for attempt in 0..3 {
        let started = Instant::now();
        let err = c.incr("n").await.unwrap_err();
        let took = started.elapsed();
        assert!(took < deadline + SLACK, "attempt {attempt}: took {took:?}");
        // The followers name the dead leader, whose connection is refused,
        // until the deadline. The first call notices the connection the
        // kill closed before writing to it, so no INCR is ever written to
        // it: an unknown outcome can only be a follower too slow to refuse
        // within the deadline (a loaded machine).
        match &err {
            // A follower too slow to answer the reconnect's CLUSTER within
            // the deadline (a loaded machine) ends it with that Timeout.
            ClientError::Unavailable { last, .. } => assert!(
                matches!(
                    **last,
                    ClientError::Redirect { .. } | ClientError::Connect(_) | ClientError::Timeout { .. }
                ),
                "{last:?}"
            ),
            ClientError::OutcomeUnknown { source, .. } if matches!(**source, ClientError::Timeout { .. }) => {
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    // Reads are still served, by a follower.
    assert_eq!(c.get("n").await.unwrap().as_deref(), Some(&b"1"[..]));

    cluster.node(1).start().await;
    let until = Instant::now() + DEADLINE;
    // An INCR that timed out on a slow leader may have run: at most those.
    let mut unknown = 0;
    let n = loop {
        match c.incr("n").await {
            Ok(n) => break n,
            Err(ClientError::OutcomeUnknown { .. }) if Instant::now() < until => unknown += 1,
            Err(e) if Instant::now() < until => tracing::debug!("not yet: {e}"),
            Err(e) => panic!("the client never reached the restarted leader: {e:?}"),
        }
    };
    assert!((2..=2 + unknown).contains(&n), "n = {n}: no INCR made while the leader was dead ran");
    assert_eq!(c.addr(), cluster.leader().addr);
    cluster.converged().await;
}

/// A stale `NOT_LEADER` names an address that accepts connections and
/// drops each one once a request arrives (a proxy in front of a dead
/// node): the client goes back there once, then asks the other seeds —
/// it is not held there until its deadline while the real leader serves.
#[tokio::test]
async fn an_address_that_drops_every_request_is_left_for_the_next_seed() {
    let server = common::start().await;
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = drops.clone();
    let dropper = tokio::spawn(async move {
        while let Ok((mut conn, _)) = dead.accept().await {
            let mut buf = [0u8; 64];
            // Read the request, then close without a reply.
            let _ = tokio::io::AsyncReadExt::read(&mut conn, &mut buf).await;
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let stale = NotLeader::start(&dead_addr.to_string()).await;
    let mut c = Client::connect_cluster(&[stale.addr.to_string(), server.addr.to_string()]).await.unwrap();
    assert_eq!(c.addr(), stale.addr);
    c.set("k", "v").await.unwrap();
    assert_eq!(c.addr(), server.addr);
    let dropped = drops.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=2).contains(&dropped), "the dropping address was tried {dropped} times");
    assert_eq!(value(server.addr, "k").await.as_deref(), Some(&b"v"[..]));
    dropper.abort();
    drop(c);
    server.shutdown().await.unwrap();
}
