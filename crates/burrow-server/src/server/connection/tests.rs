//! The connection loop driven by scripted IO, no sockets: tokio-test's
//! `io::Builder` mock plays the peer (reads it hands over, `wait` for
//! Pending between reads, and the exact bytes it expects written, in
//! order), against an in-process server with persistence off.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_test::io::Builder;
use tokio_util::codec::Encoder;
use tokio_util::sync::CancellationToken;

use super::{Connection, Ended};
use crate::replication::{wire, Message};
use crate::server::cluster::{ClusterConfig, NodeInfo, ReplicationMode};
use crate::server::{Config, Server, Shared};
use burrow_proto::{
    encode_response, BodyType, Codec, CodecError, Frame, Limits, Request, SetCondition, Status, HEADER_LEN,
};

fn server(tweak: impl FnOnce(&mut Config)) -> Shared {
    let mut config = Config { persistence: false, shards: 4, ..Config::default() };
    tweak(&mut config);
    Server::open(config).expect("in memory").into_shared(0).expect("no persistence to open")
}

fn standalone() -> Shared {
    server(|_| {})
}

/// Node 1 leading node 2 (never dialled: a leader only accepts links).
fn leader() -> Shared {
    leader_in(ReplicationMode::Async)
}

fn leader_in(mode: ReplicationMode) -> Shared {
    let node = |id: u64| NodeInfo {
        id,
        addr: format!("127.0.0.1:{}", 7000 + id).parse().expect("addr"),
        data_dir: format!("unused-{id}").into(),
    };
    let mut cluster = ClusterConfig::new(vec![node(1), node(2)], 1, 1).expect("a valid cluster");
    cluster.mode = mode;
    cluster.heartbeat = Duration::from_millis(50);
    cluster.link_timeout = Duration::from_millis(500);
    cluster.quorum_timeout = Duration::from_millis(300);
    // A member locks its data directory (its vote file lives there, even
    // with persistence off): one per test. Nothing is written to it here
    // (no election runs), so it is removed at once; the lock stays held.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("burrow-connection-test-{}-{n}", std::process::id()));
    let shared = server(|c| {
        c.cluster = Some(cluster);
        c.data_dir = dir.clone();
    });
    let _ = std::fs::remove_dir_all(&dir);
    shared.repl.lead_without_tasks(1);
    shared
}

/// Runs a connection over `io` until it ends. A script the connection does
/// not follow leaves it waiting for input: that fails after a minute
/// (longer than any paused-clock test runs) instead of hanging.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(io: S, shared: &Shared) -> Ended<S> {
    let cancel = CancellationToken::new();
    let run = Connection::new(io, shared, &cancel).run();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the connection ended as scripted")
        .expect("no i/o error")
}

fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        Codec::server(Limits::default()).encode(f, &mut out).expect("encodable");
    }
    out.to_vec()
}

fn set(id: u32, key: &str, value: &str) -> Frame {
    Request::Set {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        ttl_ms: Some(60_000),
        condition: SetCondition::Always,
        keep_ttl: false,
    }
    .to_frame(id)
}

fn get(id: u32, key: &str) -> Frame {
    Request::Get { key: Bytes::copy_from_slice(key.as_bytes()) }.to_frame(id)
}

fn ping(id: u32) -> Frame {
    Request::Ping { payload: Bytes::new() }.to_frame(id)
}

fn reply(to: &Frame, status: Status, body: BodyType, value: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_response(&mut out, to.opcode, to.id, status, body, &[], value);
    out.to_vec()
}

fn ok(to: &Frame) -> Vec<u8> {
    reply(to, Status::Ok, BodyType::Ok, &[])
}

fn pong(to: &Frame) -> Vec<u8> {
    reply(to, Status::Ok, BodyType::Text, b"PONG")
}

fn value(to: &Frame, v: &str) -> Vec<u8> {
    reply(to, Status::Ok, BodyType::Bytes, v.as_bytes())
}

/// The peer's IO, counting the writes the connection makes (the mock
/// checks their bytes, not how many writes carried them).
struct CountWrites<S> {
    io: S,
    writes: Arc<AtomicUsize>,
}

impl<S: AsyncRead + Unpin> AsyncRead for CountWrites<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountWrites<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(_)) = r {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_pipelined_batch_in_one_read_is_answered_in_order_with_one_write() {
    let shared = standalone();
    let frames = [set(1, "a", "1"), get(2, "a"), ping(3), get(4, "missing"), set(5, "a", "2"), get(6, "a")];
    let replies = [
        ok(&frames[0]),
        value(&frames[1], "1"),
        pong(&frames[2]),
        reply(&frames[3], Status::Ok, BodyType::Nil, &[]),
        ok(&frames[4]),
        value(&frames[5], "2"),
    ]
    .concat();
    let mock = Builder::new().read(&encode(&frames)).write(&replies).build();
    let writes = Arc::new(AtomicUsize::new(0));
    let ended = serve(CountWrites { io: mock, writes: writes.clone() }, &shared).await;
    assert!(matches!(ended, Ended::Closed));
    assert_eq!(writes.load(Ordering::Relaxed), 1, "one write for the whole batch");
    assert_eq!(shared.stats.commands().total_calls(), 6);
}

#[tokio::test]
async fn reads_split_inside_a_header_with_pending_between_are_answered_once_complete() {
    let shared = standalone();
    let (s, g) = (set(1, "k", "v"), get(2, "k"));
    let raw = encode(&[s.clone(), g.clone()]);
    let first = s.encoded_len();
    let mock = Builder::new()
        .read(&raw[..5])
        .wait(Duration::from_millis(10))
        .read(&raw[5..HEADER_LEN])
        .wait(Duration::from_millis(10))
        .read(&raw[HEADER_LEN..first + 3])
        .write(&ok(&s))
        .wait(Duration::from_millis(10))
        .read(&raw[first + 3..])
        .write(&value(&g, "v"))
        .build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
}

#[tokio::test]
async fn a_frame_split_at_every_byte_offset_is_answered_once() {
    let shared = standalone();
    let s = set(9, "key", "value");
    let raw = encode(std::slice::from_ref(&s));
    for cut in 1..raw.len() {
        let mock = Builder::new().read(&raw[..cut]).read(&raw[cut..]).write(&ok(&s)).build();
        assert!(matches!(serve(mock, &shared).await, Ended::Closed), "cut at {cut}");
    }
}

#[tokio::test]
async fn several_frames_arriving_in_uneven_reads_are_each_answered_when_complete() {
    let shared = standalone();
    let frames = [ping(1), ping(2), ping(3)];
    let raw = encode(&frames);
    let one = frames[0].encoded_len();
    // Two and a half frames, then the rest: two replies, then one.
    let mock = Builder::new()
        .read(&raw[..2 * one + one / 2])
        .write(&[pong(&frames[0]), pong(&frames[1])].concat())
        .read(&raw[2 * one + one / 2..])
        .write(&pong(&frames[2]))
        .build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
}

#[tokio::test]
async fn a_bad_magic_is_answered_bad_frame_after_the_replies_before_it_then_closes() {
    let shared = standalone();
    let p = ping(1);
    let mut raw = encode(std::slice::from_ref(&p));
    raw.extend_from_slice(b"GET k\r\n");
    let msg = CodecError::BadMagic { got: b'G', expected: 0xB7 }.to_string();
    let mut expect = BytesMut::from(&pong(&p)[..]);
    encode_response(&mut expect, 0, 0, Status::BadFrame, BodyType::Text, &[], msg.as_bytes());
    // Anything sent after the bad bytes is read and dropped before closing.
    let mock = Builder::new().read(&raw).write(&expect).read(b"more garbage").build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
    assert_eq!(shared.stats.protocol_errors.load(Ordering::Relaxed), 1);
}

/// The TOO_LARGE reply to a GET whose header declares `value_len` bytes of value.
fn too_large_get(id: u32, value_len: u32, max: usize) -> (Vec<u8>, Vec<u8>) {
    let mut header = encode(&[get(id, "k")])[..HEADER_LEN].to_vec();
    header[12..16].copy_from_slice(&value_len.to_be_bytes());
    let opcode = header[2];
    let msg = CodecError::ValueTooLarge { len: value_len as usize, max, id, opcode }.to_string();
    let mut expect = BytesMut::new();
    encode_response(&mut expect, opcode, id, Status::TooLarge, BodyType::Text, &[], msg.as_bytes());
    (header, expect.to_vec())
}

/// Issue 12: a 17 MB value in pipe mode lost the connection and the PING
/// after it. The reply comes from the header alone (before any payload is
/// read); the payload is then read in pieces and dropped, and the
/// connection goes on with the next request.
#[tokio::test]
async fn an_over_limit_request_is_too_large_from_the_header_alone_then_skipped() {
    let shared = server(|c| c.max_value_bytes = 1024);
    let (header, expect) = too_large_get(77, 3000, 1024);
    let p = ping(78);
    let mut rest = vec![b'k'];
    rest.extend(std::iter::repeat_n(b'x', 3000));
    rest.extend(encode(std::slice::from_ref(&p)));
    let mock = Builder::new()
        .read(&header)
        .write(&expect)
        .read(&rest[..100])
        .wait(Duration::from_millis(1))
        .read(&rest[100..2000])
        .read(&rest[2000..])
        .write(&pong(&p))
        .build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
    assert_eq!(shared.stats.protocol_errors.load(Ordering::Relaxed), 1);
}

/// Past twice the frame limit a declared length is not worth reading: the
/// connection closes after TOO_LARGE, as after a bad header.
#[tokio::test]
async fn an_absurd_declared_length_is_too_large_then_closes() {
    let shared = standalone();
    let max = Limits::DEFAULT_MAX_VALUE;
    let (header, expect) = too_large_get(79, u32::MAX, max);
    let mock = Builder::new().read(&header).write(&expect).read(b"more").build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
}

#[tokio::test]
async fn a_peer_closing_mid_frame_ends_the_connection_without_a_reply() {
    let shared = standalone();
    let raw = encode(&[set(1, "k", "v")]);
    // No write expected: the mock panics on any.
    let mock = Builder::new().read(&raw[..raw.len() - 1]).build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
    assert_eq!(shared.stats.commands().total_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_secs(30);
    let shared = server(|c| c.idle_timeout = Some(idle));
    let p = ping(1);
    // The handle keeps the script open: after the exchange, reads pend.
    let (mock, _handle) = Builder::new()
        .read(&encode(std::slice::from_ref(&p)))
        .write(&pong(&p))
        .wait(Duration::from_secs(10))
        .read(&encode(std::slice::from_ref(&p)))
        .write(&pong(&p))
        .build_with_handle();
    let started = tokio::time::Instant::now();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
    // 10 s of pause that did not close it, then a full idle timeout.
    assert_eq!(started.elapsed(), Duration::from_secs(10) + idle);
}

#[tokio::test(start_paused = true)]
async fn wait_is_deferred_and_the_requests_after_it_are_answered_after_its_reply() {
    let shared = standalone();
    let s = set(1, "k", "v");
    let w = Request::Wait { replicas: 1, timeout_ms: 100 }.to_frame(2);
    let g = get(3, "k");
    // A standalone server has no follower: WAIT 1 runs out its 100 ms and counts 0.
    let mock = Builder::new()
        .read(&encode(&[s.clone(), w.clone(), g.clone()]))
        .write(&ok(&s))
        .write(&reply(&w, Status::Ok, BodyType::Int, &0i64.to_be_bytes()))
        .write(&value(&g, "v"))
        .build();
    let started = tokio::time::Instant::now();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
    assert_eq!(started.elapsed(), Duration::from_millis(100));
}

fn handshake(node_id: u64) -> (Message, Frame) {
    let msg = Message::Handshake { node_id, session: 7, history_id: 0, last_applied: 0, last_term: 0 };
    let frame = wire::encode(&msg, 1);
    (msg, frame)
}

#[tokio::test]
async fn a_handshake_to_a_leader_hands_the_io_and_the_unread_bytes_to_replication() {
    let shared = leader();
    let p = ping(1);
    let (hello, h) = handshake(2);
    let ack = wire::encode(&Message::Ack { node_id: 2, session: 7, applied: 0, durable: 0, round: 0 }, 2);
    let after = encode(std::slice::from_ref(&ack));
    // A ping answered as usual, the handshake, then a frame and a half
    // the follower sent right behind it: those bytes are not the client's.
    let mut raw = encode(&[p.clone(), h]);
    raw.extend_from_slice(&after);
    raw.extend_from_slice(&after[..5]);
    let mock = Builder::new().read(&raw).write(&pong(&p)).build();
    let Ended::Upgrade(got, link) = serve(mock, &shared).await else { panic!("not upgraded") };
    let super::Handshake::Follower(got) = got else { panic!("not a follower's handshake: {got:?}") };
    assert_eq!(got, hello);
    assert_eq!(&link.read_buf[..], &[&after[..], &after[..5]].concat()[..]);
    assert!(link.write_buf.is_empty(), "replies before the handshake are written");
    // The mock is dropped with its script complete: nothing else was read or written.
    drop(link.io);
}

#[tokio::test]
async fn a_malformed_handshake_is_bad_request_and_the_connection_goes_on() {
    let shared = leader();
    let (_, mut h) = handshake(2);
    h.flags = 1;
    let p = ping(2);
    let msg = wire::decode_frame(&h).expect_err("flags must be 0").to_string();
    let expect = [reply(&h, Status::BadRequest, BodyType::Text, msg.as_bytes()), pong(&p)].concat();
    let mock = Builder::new().read(&encode(&[h, p])).write(&expect).build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
}

#[tokio::test]
async fn a_handshake_to_a_standalone_server_is_an_unknown_opcode() {
    let shared = standalone();
    let (_, h) = handshake(2);
    let mut expect = BytesMut::new();
    let msg = format!("unknown opcode 0x{:02x}", h.opcode);
    encode_response(&mut expect, h.opcode, h.id, Status::UnknownOpcode, BodyType::Text, &[], msg.as_bytes());
    let mock = Builder::new().read(&encode(&[h])).write(&expect).build();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
}

/// Quorum mode with the only follower away: nothing commits, and no
/// majority confirms the leadership. A read of the uncommitted write is
/// held with everything pipelined behind it, then answered NO_QUORUM
/// (never the value, never a hang); a read of a key that no uncommitted
/// write touched is held as long and refused too (linearizable reads: a
/// leader cut off from the majority may have been replaced), with the
/// message saying why; PING is answered.
#[tokio::test(start_paused = true)]
async fn reads_on_a_leader_without_a_majority_are_no_quorum_after_the_quorum_timeout() {
    let shared = leader_in(ReplicationMode::Quorum);
    let limit = Duration::from_millis(300);
    // In another shard: never sharing a watermark slot with "k".
    let shard = |k: &str| crate::store::shard_for(k.as_bytes(), shared.store.shard_count());
    let elsewhere = (0..).map(|i| format!("other{i}")).find(|k| shard(k) != shard("k")).expect("a key");
    let (s, g, p, other) = (set(1, "k", "v"), get(2, "k"), ping(3), get(4, &elsewhere));
    let later = get(5, &elsewhere);
    let write_msg = "write applied on the leader but not held by a majority within 300 ms (quorum mode); \
                     it may or may not survive a failover";
    let read_msg = "read refused: the value is not yet committed (its last change was not held by a \
                    majority within 300 ms, quorum mode); retry later";
    let unconfirmed = "read refused: no majority confirmed within 300 ms that this node still leads (quorum \
                       mode reads are linearizable; it may have been deposed); retry later or at another node";
    let refused = |f: &Frame, msg: &str| reply(f, Status::NoQuorum, BodyType::Text, msg.as_bytes());
    let mock = Builder::new()
        .read(&encode(std::slice::from_ref(&s)))
        .write(&refused(&s, write_msg))
        .read(&encode(&[g.clone(), p.clone(), other.clone()]))
        .write(&[refused(&g, read_msg), pong(&p), refused(&other, unconfirmed)].concat())
        .read(&encode(std::slice::from_ref(&later)))
        .write(&refused(&later, unconfirmed))
        .build();
    let started = tokio::time::Instant::now();
    assert!(matches!(serve(mock, &shared).await, Ended::Closed));
    assert_eq!(started.elapsed(), 3 * limit, "the write and each batch of reads waited once");
    assert_eq!(shared.stats.reads_waited(), 1, "only the read of the uncommitted write waited for it");
}

/// A quorum write held for a majority when this node stops leading is
/// answered at once, not after the quorum timeout: NO_QUORUM saying that
/// the leadership ended (the leadership's end wakes the held reply through
/// the commit watch it waits on).
#[tokio::test(start_paused = true)]
async fn a_held_quorum_write_is_answered_when_the_leadership_ends() {
    let shared = leader_in(ReplicationMode::Quorum);
    let s = set(1, "k", "v");
    let msg = "write applied while this node led, but it stopped leading before a majority held it \
               (quorum mode); it may or may not survive";
    let mock = Builder::new()
        .read(&encode(std::slice::from_ref(&s)))
        .write(&reply(&s, Status::NoQuorum, BodyType::Text, msg.as_bytes()))
        .build();
    let started = tokio::time::Instant::now();
    let step_down = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        shared.repl.step_down_without_tasks();
    };
    let (ended, ()) = tokio::join!(serve(mock, &shared), step_down);
    assert!(matches!(ended, Ended::Closed));
    assert_eq!(started.elapsed(), Duration::from_millis(10), "released by the step-down, not the timeout");
}

/// Fairness (issue 11 item 8): sixteen 256 KiB SETs all waiting to be read
/// are not executed in one turn. Another task on the same thread, polled
/// whenever the connection yields, sees some of them applied and not the
/// rest: the connection yielded between them (`TURN_BUDGET`, 1 MiB).
#[tokio::test]
async fn a_connection_with_many_large_requests_buffered_yields_between_them() {
    use tokio::io::AsyncWriteExt;
    const SETS: usize = 16;
    let shared = standalone();
    let big = "v".repeat(256 * 1024);
    let frames: Vec<Frame> = (0..SETS).map(|i| set(i as u32 + 1, &format!("k{i}"), &big)).collect();
    let (client, io) = tokio::io::duplex(8 << 20);
    let (_replies, mut requests) = tokio::io::split(client);
    requests.write_all(&encode(&frames)).await.expect("all requests buffered");
    requests.shutdown().await.expect("end of requests");
    let done = std::cell::Cell::new(false);
    let conn = async {
        let ended = serve(io, &shared).await;
        done.set(true);
        ended
    };
    let observe = async {
        let mut seen = Vec::new();
        while !done.get() {
            seen.push(shared.store.len());
            tokio::task::yield_now().await;
        }
        seen
    };
    let (ended, seen) = tokio::join!(conn, observe);
    assert!(matches!(ended, Ended::Closed));
    assert_eq!(shared.store.len(), SETS, "every SET ran");
    assert!(
        seen.iter().any(|&n| n > 0 && n < SETS),
        "the other task ran between the SETs, not only before or after them: saw {seen:?}"
    );
}

#[tokio::test]
async fn a_handshake_on_the_unix_socket_closes_it_and_opens_no_link() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let shared = Arc::new(leader());
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    let mut peer = tokio::net::UnixStream::from_std(theirs).unwrap();
    let p = ping(1);
    let (_, h) = handshake(2);
    peer.write_all(&encode(&[p.clone(), h])).await.unwrap();
    let permit = Arc::new(tokio::sync::Semaphore::new(1)).try_acquire_owned().unwrap();
    super::serve_unix(ours, "unix:/test.sock".into(), shared.clone(), CancellationToken::new(), permit).await;
    let mut got = Vec::new();
    peer.read_to_end(&mut got).await.unwrap();
    assert_eq!(&got[..], &pong(&p)[..], "the PING answered, the HANDSHAKE closed without a reply");
    let info = crate::server::info::render(&shared, "replication").unwrap();
    assert!(info.contains("connected_followers:0"), "{info}");
}
