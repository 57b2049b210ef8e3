//! The Rust client against followers that answer `NOT_LEADER` (fakes from
//! `common::not_leader`, in front of a real in-process server as the
//! leader), and WAIT against a standalone server.

use crate::common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::not_leader::{NotLeader, Refuse, FOLLOWER_READ};

use burrow_client::{Client, ClientConfig, ClientError};
use burrow_proto::{Reply, Request, Status};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn config(max_redirects: u32) -> ClientConfig {
    ClientConfig { max_redirects, ..ClientConfig::default() }
}

#[tokio::test]
async fn a_write_sent_to_a_follower_lands_on_the_leader() {
    let leader = common::start().await;
    let follower = NotLeader::start(&leader.addr.to_string()).await;
    let mut c = Client::connect(follower.addr).await.unwrap();
    assert_eq!(c.addr(), follower.addr);

    c.set("k", "v").await.unwrap();
    assert_eq!(c.addr(), leader.addr, "the client moved to the leader");
    assert_eq!(c.last_redirects(), &[leader.addr]);
    assert_eq!(follower.requests(), 1);

    // It stays there: later requests never touch the follower again.
    assert_eq!(c.incr("n").await.unwrap(), 1);
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.last_redirects(), &[] as &[SocketAddr], "no redirect on the leader");
    assert_eq!(follower.requests(), 1);

    let mut direct = Client::connect(leader.addr).await.unwrap();
    assert_eq!(direct.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(direct.get("n").await.unwrap().as_deref(), Some(&b"1"[..]));
    drop((c, direct));
    leader.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_pipeline_is_re_sent_to_the_leader_in_order() {
    let leader = common::start().await;
    let follower = NotLeader::start(&leader.addr.to_string()).await;
    let mut c = Client::connect(follower.addr).await.unwrap();
    let reqs = vec![
        Request::Set {
            key: b("a"),
            value: b("1"),
            ttl_ms: None,
            condition: Default::default(),
            keep_ttl: false,
        },
        Request::Incr { key: b("a") },
        Request::Get { key: b("a") },
        Request::Push { key: b("q"), end: burrow_proto::End::Right, values: vec![b("x"), b("y")] },
        Request::LRange { key: b("q"), start: 0, stop: -1 },
        Request::Incr { key: b("q") },
    ];
    let replies = c.pipeline(&reqs).await.unwrap();
    assert_eq!(
        replies,
        vec![
            Reply::Ok,
            Reply::Int(2),
            Reply::Bytes(b("2")),
            Reply::Int(2),
            Reply::Array(vec![b("x"), b("y")]),
            Reply::Error {
                status: Status::WrongType,
                message: "WRONGTYPE operation against a key holding the wrong kind of value".into()
            },
        ]
    );
    assert_eq!(follower.requests(), reqs.len());
    assert_eq!(c.last_redirects(), &[leader.addr]);
    drop(c);
    leader.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_refused_requests_of_a_pipeline_are_re_sent() {
    let leader = common::start().await;
    let listener = NotLeader::bind().await;
    let follower = NotLeader::serve_with(listener, &leader.addr.to_string(), Refuse::Writes);
    let mut c = Client::connect(follower.addr).await.unwrap();
    let reqs = vec![
        Request::Get { key: b("k") },
        Request::Incr { key: b("n") },
        Request::Get { key: b("n") },
        Request::Incr { key: b("n") },
        Request::Wait { replicas: 0, timeout_ms: 0 },
    ];
    let replies = c.pipeline(&reqs).await.unwrap();
    // Reads keep the follower's answers; each write ran exactly once, on the leader.
    let read = Reply::Text(FOLLOWER_READ.into());
    assert_eq!(replies, vec![read.clone(), Reply::Int(1), read, Reply::Int(2), Reply::Int(0)]);
    assert_eq!(c.addr(), leader.addr);
    assert_eq!(c.get("n").await.unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(follower.requests(), reqs.len());
    drop(c);
    leader.shutdown().await.unwrap();
}

/// Two fakes naming each other as leader: each call gives up after the
/// configured number of hops with the last `NOT_LEADER`.
#[tokio::test]
async fn a_redirect_loop_stops_after_the_bound() {
    for max in [0u32, 1, 3, 5] {
        let (la, lb) = (NotLeader::bind().await, NotLeader::bind().await);
        let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
        let a = NotLeader::serve(la, &b_addr.to_string());
        let b = NotLeader::serve(lb, &a_addr.to_string());
        let mut c = Client::connect_with(a.addr, config(max)).await.unwrap();

        let err = c.set("k", "v").await.unwrap_err();
        assert_eq!(err.status(), Some(Status::NotLeader), "max {max}: {err:?}");
        let hops: Vec<SocketAddr> = (0..max).map(|i| if i % 2 == 0 { b_addr } else { a_addr }).collect();
        assert_eq!(c.last_redirects(), &hops[..], "max {max}");
        assert_eq!(a.requests() + b.requests(), max as usize + 1, "max {max}: one request per hop");
        // The error names the leader the last refusal pointed at.
        let at = *hops.last().unwrap_or(&a_addr);
        let next = if at == a_addr { b_addr } else { a_addr };
        assert_eq!(err.leader(), Some(next), "max {max}");
        assert_eq!(c.addr(), at, "max {max}");
    }
}

#[tokio::test]
async fn the_default_bound_is_three_redirects() {
    let (la, lb) = (NotLeader::bind().await, NotLeader::bind().await);
    let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let a = NotLeader::serve(la, &b_addr.to_string());
    let b = NotLeader::serve(lb, &a_addr.to_string());
    let mut c = Client::connect(a.addr).await.unwrap();
    let err = c.incr("n").await.unwrap_err();
    assert!(matches!(err, ClientError::Server { status: Status::NotLeader, .. }), "{err:?}");
    assert_eq!(c.last_redirects(), &[b_addr, a_addr, b_addr]);
    assert_eq!(a.requests() + b.requests(), 4);
    // The next call starts a fresh count.
    let err = c.incr("n").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NotLeader));
    assert_eq!(c.last_redirects().len(), 3);
    assert_eq!(a.requests() + b.requests(), 8);
}

#[tokio::test]
async fn no_redirect_without_a_usable_address() {
    for message in ["", "no leader", "localhost:7441"] {
        let follower = NotLeader::start(message).await;
        let mut c = Client::connect(follower.addr).await.unwrap();
        let err = c.set("k", "v").await.unwrap_err();
        match &err {
            ClientError::Server { status: Status::NotLeader, message: m } => assert_eq!(m, message),
            other => panic!("{message:?}: {other:?}"),
        }
        assert_eq!(err.leader(), None);
        assert!(c.last_redirects().is_empty());
        assert_eq!((c.addr(), follower.requests()), (follower.addr, 1));
    }
}

#[tokio::test]
async fn an_unreachable_leader_is_an_error_and_the_client_stays_put() {
    // Nothing listens on `gone` once its listener is dropped.
    let gone = NotLeader::bind().await.local_addr().unwrap();
    let follower = NotLeader::start(&gone.to_string()).await;
    let mut c = Client::connect(follower.addr).await.unwrap();
    for attempt in 1..=2 {
        let err = c.set("k", "v").await.unwrap_err();
        match &err {
            ClientError::Redirect { leader, source } => {
                assert_eq!(*leader, gone);
                assert!(matches!(**source, ClientError::Connect(_)), "{source:?}");
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
        assert_eq!(err.leader(), Some(gone));
        assert_eq!(c.addr(), follower.addr, "still connected to the follower");
        assert_eq!(follower.requests(), attempt, "the follower connection is still usable");
    }
}

#[tokio::test]
async fn wait_is_followed_to_the_leader() {
    let leader = common::start().await;
    let follower = NotLeader::start(&leader.addr.to_string()).await;
    let mut c = Client::connect(follower.addr).await.unwrap();
    assert_eq!(c.wait(0, 0).await.unwrap(), 0);
    assert_eq!(c.addr(), leader.addr);
    drop(c);
    leader.shutdown().await.unwrap();
}

#[tokio::test]
async fn wait_on_a_standalone_server_counts_no_followers() {
    let server = common::start().await;
    let mut c = Client::connect(server.addr).await.unwrap();

    let started = Instant::now();
    assert_eq!(c.wait(0, 0).await.unwrap(), 0);
    assert!(started.elapsed() < common::DEADLINE, "WAIT 0 0 took {:?}", started.elapsed());

    // Without a write on this connection, then with one to wait for.
    for write in [false, true] {
        if write {
            c.set("k", "v").await.unwrap();
        }
        let started = Instant::now();
        assert_eq!(c.wait(1, 100).await.unwrap(), 0, "write {write}");
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(100), "write {write}: WAIT 1 100 answered after {took:?}");
        assert!(took < common::DEADLINE, "write {write}: WAIT 1 100 answered after {took:?}");
    }
    // The connection is usable afterwards.
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    drop(c);
    server.shutdown().await.unwrap();
}
