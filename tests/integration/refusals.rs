//! A refused command changes nothing (protocol.md §4.2/§4.3, issue 11),
//! over TCP: not the data set (DIGEST), not the op log (INFO
//! `last_log_index`), not what a restart recovers. And a second background
//! SNAPSHOT in the same write is IN_PROGRESS (§8.8).

use crate::common;

use burrow_client::Client;
use burrow_proto::{End, Request, SetCondition, Status};

use common::{info_u64, RawConn, SeededRng, TempDir};

/// A small `--max-reply-bytes`, so an oversized pop needs kilobytes.
const MAX_REPLY: usize = 1024;

/// DIGEST and the op log's last index: what a refused command must leave.
async fn state(c: &mut Client) -> (u64, u64) {
    let digest = c.digest().await.unwrap();
    let index = info_u64(&c.info("keyspace").await.unwrap(), "last_log_index");
    (digest, index)
}

/// Issue 11's frame, as sent: LPOP `huge` count 33, its reply over the
/// limit. Answered BAD_REQUEST, and nothing popped, logged, or recovered
/// differently after a restart.
#[tokio::test]
async fn an_oversized_pop_changes_nothing_not_even_after_a_restart() {
    let dir = TempDir::new("refused-pop");
    let d = dir.path().to_owned();
    let config = move |c: &mut burrow_server::Config| {
        c.persistence = true;
        c.data_dir = d.clone();
        c.max_reply_bytes = MAX_REPLY;
    };
    let server = common::start_with(config.clone()).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let items: Vec<Vec<u8>> = (0..33).map(|_| vec![b'x'; 100]).collect();
    assert_eq!(c.rpush("huge", items).await.unwrap(), 33);
    let before = state(&mut c).await;
    let mut raw = RawConn::connect(server.addr).await;
    #[rustfmt::skip]
    let frame = [
        0xb7, 0x01, 0x22, 0x00, 0x00, 0x00, 0x00, 0x25, 0x04, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x21,
        0x68, 0x75, 0x67, 0x65,
    ];
    raw.send(&frame).await;
    let reply = raw.frame().await;
    let text = common::assert_status(&reply, Status::BadRequest, 0x25);
    assert!(text.contains("over the 1024-byte reply limit"), "{text}");
    assert_eq!(state(&mut c).await, before, "the refused LPOP changed the data set or the log");
    assert_eq!(c.llen("huge").await.unwrap(), 33);
    drop((c, raw));
    server.shutdown().await.unwrap();

    let server = common::start_with(config).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.llen("huge").await.unwrap(), 33, "recovery brings back what was never popped");
    assert_eq!(state(&mut c).await.0, before.0);
    drop(c);
    server.shutdown().await.unwrap();
}

/// A random request, many of them bound to be refused: wrong types,
/// non-integers, overflowing INCRBYs, pops and LRANGEs over the reply limit.
fn random_request(rng: &mut SeededRng) -> Request {
    let key = |rng: &mut SeededRng| ["s", "n", "l"][rng.range(0, 3)].into();
    let value = |rng: &mut SeededRng| match rng.range(0, 4) {
        0 => "9223372036854775807".into(),
        1 => "x".into(),
        2 => "12".into(),
        _ => vec![b'v'; rng.range(1, 300)].into(),
    };
    let end = |rng: &mut SeededRng| if rng.range(0, 2) == 0 { End::Left } else { End::Right };
    match rng.range(0, 9) {
        0 => Request::Set {
            key: key(rng),
            value: value(rng),
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        },
        1 => Request::Incr { key: key(rng) },
        2 => {
            let delta = [i64::MAX, i64::MIN, 5][rng.range(0, 3)];
            Request::IncrBy { key: key(rng), delta }
        }
        3 | 4 => {
            let values = (0..rng.range(1, 6)).map(|_| value(rng)).collect();
            Request::Push { key: key(rng), end: end(rng), values }
        }
        5 | 6 => Request::Pop { key: key(rng), end: end(rng), count: Some(rng.range(1, 30) as u32) },
        7 => Request::LRange { key: key(rng), start: 0, stop: -1 },
        _ => Request::Del { key: key(rng) },
    }
}

/// For every reply with an error status, DIGEST and the op log's last
/// index are as they were before the request (300 random requests).
#[tokio::test]
async fn over_tcp_a_refused_command_changes_nothing() {
    random_refusals_change_nothing(0).await;
}

/// The same under a 1 KiB `--maxmemory` (noeviction): OOM among the
/// refusals, and it changes nothing either.
#[tokio::test]
async fn over_tcp_an_oom_refusal_changes_nothing() {
    let statuses = random_refusals_change_nothing(1024).await;
    assert!(statuses.contains(&(Status::Oom as u8)), "no OOM in {statuses:?}");
}

/// Runs 300 random requests against a server with `maxmemory`; the error
/// statuses seen.
async fn random_refusals_change_nothing(maxmemory: usize) -> Vec<u8> {
    let server = common::start_with(|c| {
        c.max_reply_bytes = MAX_REPLY;
        c.maxmemory = maxmemory;
    })
    .await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let mut raw = RawConn::connect(server.addr).await;
    let mut rng = SeededRng::new(11);
    let mut refused = Vec::new();
    for i in 0..300u32 {
        let req = random_request(&mut rng);
        let before = state(&mut c).await;
        raw.send_requests(&[(i, req.clone())]).await;
        let reply = raw.frame().await;
        assert_eq!(reply.id, i);
        if reply.flags != Status::Ok as u8 {
            refused.push(reply.flags);
            assert_eq!(state(&mut c).await, before, "step {i}: status {:#04x} for {req:?}", reply.flags);
        }
    }
    assert!(
        refused.len() > 30,
        "only {} of 300 requests were refused: the sequence tests too little",
        refused.len()
    );
    drop((c, raw));
    server.shutdown().await.unwrap();
    refused
}

/// Two background SNAPSHOTs in one write: the first starts one, the second
/// is IN_PROGRESS — the check is atomic, not per batch (issue 11).
#[tokio::test]
async fn a_second_background_snapshot_in_the_same_write_is_in_progress() {
    let dir = TempDir::new("refused-snapshot");
    let d = dir.path().to_owned();
    let server = common::start_with(move |c| {
        c.persistence = true;
        c.data_dir = d;
    })
    .await;
    let mut c = Client::connect(server.addr).await.unwrap();
    common::set_keys(&mut c, 100, &bytes::Bytes::from_static(b"value")).await;
    let mut raw = RawConn::connect(server.addr).await;
    let snapshot = Request::Snapshot { background: true };
    raw.send_requests(&[(1, snapshot.clone()), (2, snapshot)]).await;
    let replies = raw.frames(2).await;
    let first = burrow_proto::Reply::from_frame(&replies[0]).expect("a valid reply");
    assert_eq!((replies[0].id, first), (1, burrow_proto::Reply::Text("background snapshot started".into())));
    let second = common::assert_status(&replies[1], Status::InProgress, 2);
    assert_eq!(second, "a snapshot is already being written");
    // Exactly one was written.
    let addr = server.addr;
    common::wait_for("the background snapshot to finish", || async move {
        let info = Client::connect(addr).await.unwrap().info("persistence").await.unwrap();
        info_u64(&info, "snapshot_in_progress") == 0 && info_u64(&info, "snapshots_written") >= 1
    })
    .await;
    let info = c.info("persistence").await.unwrap();
    assert_eq!(info_u64(&info, "snapshots_written"), 1, "{info}");
    drop((c, raw));
    server.shutdown().await.unwrap();
}
