//! The server driven with hand-built bytes: pins the wire behaviour for bad
//! input (which errors keep the connection, which close it, what id is
//! echoed), pipelining, split frames, and garbage that must not disturb
//! anyone else.

use crate::common;

use std::sync::Arc;

use burrow_client::Client;
use burrow_proto::{flags, Opcode, Reply, Request, Status, MAGIC_REQUEST, VERSION};
use bytes::Bytes;
use common::{assert_status, header, info_u64, request_bytes, RawConn};

/// A server with small limits, so over-limit headers are cheap to declare.
async fn small_server() -> burrow_server::ServerHandle {
    logs::init();
    common::start_with(|c| {
        c.max_key_bytes = 16;
        c.max_value_bytes = 1024;
    })
    .await
}

fn ping(id: u32) -> Vec<u8> {
    request_bytes(&Request::Ping { payload: Bytes::new() }, id)
}

async fn assert_pong(conn: &mut RawConn, id: u32) {
    let (got, reply) = conn.reply().await;
    assert_eq!((got, reply), (id, Reply::Text("PONG".into())));
}

#[tokio::test]
async fn unknown_opcode_is_an_error_reply_and_the_connection_stays_usable() {
    let server = start().await;
    let mut conn = RawConn::connect(server.addr).await;
    // An unknown opcode with a payload: the payload is skipped by its declared
    // lengths, so the PING in the same write is still parsed correctly.
    let mut bytes = header(MAGIC_REQUEST, VERSION, 0x7F, 0, 5, 2, 3, 4);
    bytes.extend_from_slice(b"eekkkvvvv");
    bytes.extend_from_slice(&ping(6));
    conn.send(&bytes).await;
    let f = conn.frame().await;
    assert_eq!(f.opcode, 0x7F, "the unknown opcode is echoed");
    let msg = assert_status(&f, Status::UnknownOpcode, 5);
    assert_eq!(msg, "unknown opcode 0x7f");
    assert_pong(&mut conn, 6).await;

    // Again on its own, and the connection still serves real commands.
    conn.send(&header(MAGIC_REQUEST, VERSION, 0xEE, 0, 7, 0, 0, 0)).await;
    assert_status(&conn.frame().await, Status::UnknownOpcode, 7);
    conn.send(&request_bytes(
        &Request::Set {
            key: "k".into(),
            value: "v".into(),
            ttl_ms: None,
            condition: Default::default(),
            keep_ttl: false,
        },
        8,
    ))
    .await;
    assert_eq!(conn.reply().await, (8, Reply::Ok));
    let info = Client::connect(server.addr).await.unwrap().info("stats").await.unwrap();
    assert_eq!(info_u64(&info, "unknown_opcode_calls"), 2, "{info}");
    assert_eq!(info_u64(&info, "protocol_errors"), 0, "{info}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_request_keeps_the_connection_open() {
    let server = start().await;
    let mut conn = RawConn::connect(server.addr).await;
    // SET with NX and XX together.
    let mut set = header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, flags::NX | flags::XX, 11, 0, 1, 1);
    set.extend_from_slice(b"kv");
    // GET with a value it does not take.
    let mut get = header(MAGIC_REQUEST, VERSION, Opcode::Get as u8, 0, 12, 0, 1, 1);
    get.extend_from_slice(b"kv");
    conn.send(&[set, get, ping(13)].concat()).await;
    let msg = assert_status(&conn.frame().await, Status::BadRequest, 11);
    assert_eq!(msg, "SET: NX and XX are exclusive");
    let msg = assert_status(&conn.frame().await, Status::BadRequest, 12);
    assert_eq!(msg, "GET: takes no value, got 1 bytes");
    assert_pong(&mut conn, 13).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_magic_gets_bad_frame_then_the_connection_closes() {
    let server = start().await;
    let mut conn = RawConn::connect(server.addr).await;
    // A valid request first: it is answered before the garbage is judged.
    let mut bytes = ping(1);
    bytes.extend_from_slice(b"GET foo\r\n");
    conn.send(&bytes).await;
    assert_pong(&mut conn, 1).await;
    let f = conn.frame().await;
    let msg = assert_status(&f, Status::BadFrame, 0);
    assert!(msg.contains("bad magic byte 0x47"), "{msg}");
    conn.expect_eof().await;

    // A single bad byte is enough; no header needs to arrive.
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(&[0x00]).await;
    assert_status(&conn.frame().await, Status::BadFrame, 0);
    conn.expect_eof().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_version_gets_bad_frame_echoing_the_id_then_closes() {
    let server = start().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(&header(MAGIC_REQUEST, 2, Opcode::Get as u8, 0, 0xDEAD_BEEF, 0, 0, 0)).await;
    let f = conn.frame().await;
    assert_eq!(f.opcode, Opcode::Get as u8);
    let msg = assert_status(&f, Status::BadFrame, 0xDEAD_BEEF);
    assert!(msg.contains("unsupported protocol version 2"), "{msg}");
    conn.expect_eof().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_over_limit_key_is_refused_from_the_header_alone() {
    let server = small_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    // Header only: the 17 key bytes are never sent, so a reply proves the
    // server judged the declared length without waiting for the payload.
    conn.send(&header(MAGIC_REQUEST, VERSION, Opcode::Get as u8, 0, 77, 0, 17, 0)).await;
    let msg = assert_status(&conn.frame().await, Status::TooLarge, 77);
    assert_eq!(msg, "key length 17 over the limit of 16 bytes");
    // The key bytes that follow are skipped and the connection goes on.
    conn.send(&[b'k'; 17]).await;
    conn.send(&ping(79)).await;
    assert_eq!(conn.reply().await, (79, Reply::Text("PONG".into())));

    // A key exactly at the limit is fine.
    let mut conn = RawConn::connect(server.addr).await;
    let key = Bytes::from(vec![b'k'; 16]);
    conn.send(&request_bytes(&Request::Incr { key }, 78)).await;
    assert_eq!(conn.reply().await, (78, Reply::Int(1)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_over_limit_value_is_refused_from_the_header_alone() {
    let server = small_server().await;
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(&header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 0, 90, 0, 1, 1025)).await;
    let msg = assert_status(&conn.frame().await, Status::TooLarge, 90);
    assert_eq!(msg, "value length 1025 over the limit of 1024 bytes");
    // Issue 12: the payload is read and dropped, the next request answered.
    let mut rest = vec![b'k'];
    rest.extend(std::iter::repeat_n(b'v', 1025));
    rest.extend(ping(92));
    conn.send(&rest).await;
    assert_eq!(conn.reply().await, (92, Reply::Text("PONG".into())));
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), None, "the refused SET changed nothing");

    // Impossible lengths (4 GiB value, over twice the frame limit) get the
    // same answer, not an allocation, and close the connection.
    let mut conn = RawConn::connect(server.addr).await;
    conn.send(&header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 0, 91, 255, 16, u32::MAX)).await;
    assert_status(&conn.frame().await, Status::TooLarge, 91);
    conn.expect_eof().await;

    // A value exactly at the limit is stored.
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("k", vec![7u8; 1024]).await.unwrap();
    assert_eq!(c.get("k").await.unwrap().map(|v| v.len()), Some(1024));
    let info = c.info("stats").await.unwrap();
    assert_eq!(info_u64(&info, "protocol_errors"), 2, "{info}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_thousand_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = start().await;
    let mut conn = RawConn::connect(server.addr).await;
    const N: u32 = 1000;
    // Ids are not sequential, so a reply matched by position but carrying
    // the wrong id would be caught.
    let id = |i: u32| i.wrapping_mul(2_654_435_761) ^ 0x5555;
    let mut bytes = Vec::new();
    for i in 0..N {
        let req = match i % 4 {
            0 => Request::Set {
                key: format!("k{i}").into(),
                value: format!("v{i}").into(),
                ttl_ms: None,
                condition: Default::default(),
                keep_ttl: false,
            },
            1 => Request::Get { key: format!("k{}", i - 1).into() },
            2 => Request::Incr { key: "counter".into() },
            _ => Request::Ping { payload: format!("p{i}").into() },
        };
        bytes.extend_from_slice(&request_bytes(&req, id(i)));
    }
    conn.send(&bytes).await;
    for i in 0..N {
        let (got, reply) = conn.reply().await;
        assert_eq!(got, id(i), "reply {i} carries its request's id");
        let want = match i % 4 {
            0 => Reply::Ok,
            1 => Reply::Bytes(format!("v{}", i - 1).into()),
            2 => Reply::Int((i / 4 + 1) as i64),
            _ => Reply::Bytes(format!("p{i}").into()),
        };
        assert_eq!(reply, want, "reply {i}");
    }
    // Nothing extra: the next reply is the next request's.
    conn.send(&ping(1)).await;
    assert_pong(&mut conn, 1).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_frame_split_byte_by_byte_across_writes_still_works() {
    let server = start().await;
    let mut conn = RawConn::connect(server.addr).await;
    let set = request_bytes(
        &Request::Set {
            key: "split".into(),
            value: "across many writes".into(),
            ttl_ms: Some(60_000),
            condition: Default::default(),
            keep_ttl: false,
        },
        21,
    );
    for byte in &set {
        conn.send(std::slice::from_ref(byte)).await;
        // Let the server read what has arrived so it really sees partial frames.
        tokio::task::yield_now().await;
    }
    assert_eq!(conn.reply().await, (21, Reply::Ok));
    // Two frames whose boundary falls mid-header.
    let both = [request_bytes(&Request::Get { key: "split".into() }, 22), ping(23)].concat();
    let cut = both.len() - 20;
    conn.send(&both[..cut]).await;
    tokio::task::yield_now().await;
    conn.send(&both[cut..]).await;
    assert_eq!(conn.reply().await, (22, Reply::Bytes("across many writes".into())));
    assert_pong(&mut conn, 23).await;
    server.shutdown().await.unwrap();
}

/// One round of garbage: how it starts decides how deep into the decoder it gets.
fn garbage(rng: &mut common::SeededRng, round: usize) -> Vec<u8> {
    let len = rng.range(1, 4096);
    let mut bytes = rng.bytes(len);
    match round % 4 {
        // Pure noise with a guaranteed bad first byte.
        0 => {
            if bytes[0] == MAGIC_REQUEST {
                bytes[0] = 0;
            }
        }
        // A plausible header followed by noise: exercises lengths and payloads.
        1 => {
            bytes.splice(0..0, [MAGIC_REQUEST, VERSION]);
        }
        // Valid requests, then noise.
        2 => {
            let mut prefix = ping(1);
            prefix.extend_from_slice(&request_bytes(&Request::Incr { key: "g".into() }, 2));
            bytes.splice(0..0, prefix);
        }
        // Noise that starts like a frame of an unknown opcode with a huge key.
        _ => {
            bytes.splice(0..0, header(MAGIC_REQUEST, VERSION, 0xAB, 0xFF, 3, 255, u16::MAX, 0));
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_one_connection_does_not_disturb_another() {
    let server = start().await;
    let addr = server.addr;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));

    // A well-behaved client keeps working the whole time.
    let worker = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut c = Client::connect(addr).await.unwrap();
            let mut i = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || i < 50 {
                let key = format!("good:{}", i % 10);
                c.set(key.clone(), i.to_string()).await.unwrap();
                assert_eq!(c.get(key).await.unwrap(), Some(Bytes::from(i.to_string())));
                i += 1;
            }
            i
        })
    };

    let mut rng = common::SeededRng::new(0xB0_77_0E);
    const ROUNDS: usize = 24;
    for round in 0..ROUNDS {
        let mut conn = RawConn::connect(addr).await;
        let bytes = garbage(&mut rng, round);
        // Random chunking, so garbage also arrives split.
        let mut at = 0;
        while at < bytes.len() {
            let n = rng.range(1, 512).min(bytes.len() - at);
            // The server may close mid-stream; a failed write is fine here.
            use tokio::io::AsyncWriteExt;
            if conn.stream.write_all(&bytes[at..at + n]).await.is_err() {
                break;
            }
            at += n;
        }
        // Closing our side makes a server still waiting for a declared
        // payload give up too; either way it must close within the deadline.
        use tokio::io::AsyncWriteExt;
        let _ = conn.stream.shutdown().await;
        conn.drain_until_closed().await;
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let good_ops = worker.await.expect("the well-behaved client never failed");
    assert!(good_ops >= 50);

    // A newcomer is served normally, and the broken framings were counted.
    let mut c = Client::connect(addr).await.unwrap();
    assert_eq!(c.ping("").await.unwrap(), "PONG");
    c.set("after", "ok").await.unwrap();
    assert_eq!(c.get("after").await.unwrap(), Some(Bytes::from("ok")));
    let info = c.info("").await.unwrap();
    assert!(info_u64(&info, "protocol_errors") >= (ROUNDS / 2) as u64, "{info}");
    // Connection tasks finish just after the client sees EOF: poll.
    let c = Arc::new(tokio::sync::Mutex::new(c));
    common::wait_for("every garbage connection's task to end", || {
        let c = c.clone();
        async move { info_u64(&c.lock().await.info("clients").await.unwrap(), "connected_clients") == 1 }
    })
    .await;
    server.shutdown().await.unwrap();
}

/// Log capture for [`every_rejection_is_logged`].
///
/// One global subscriber is installed before any server in this test binary
/// starts (every test starts its server through [`start`] or
/// [`small_server`]). A scoped `set_default` subscriber would race with
/// callsites first hit by tests on other threads — tracing caches a
/// callsite's interest globally — and miss events now and then. The writer
/// keeps only what is written on a thread that asked for capture; the
/// default test runtime is single-threaded, so a test's server tasks log on
/// the test's own thread.
mod logs {
    use std::cell::RefCell;
    use std::sync::OnceLock;

    thread_local! {
        static CAPTURE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }

    struct ThreadWriter;

    impl std::io::Write for ThreadWriter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|c| {
                if let Some(v) = c.borrow_mut().as_mut() {
                    v.extend_from_slice(buf);
                }
            });
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    pub fn init() {
        static INIT: OnceLock<()> = OnceLock::new();
        INIT.get_or_init(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::DEBUG)
                .with_ansi(false)
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("first and only subscriber");
        });
    }

    /// Starts capturing what this thread logs.
    pub fn capture() {
        CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    }

    /// Everything this thread logged since [`capture`].
    pub fn text() -> String {
        CAPTURE.with(|c| String::from_utf8_lossy(c.borrow().as_deref().unwrap_or_default()).into_owned())
    }
}

async fn start() -> burrow_server::ServerHandle {
    logs::init();
    common::start().await
}

/// Runs on the default current-thread runtime, so the server's connection
/// tasks log on this thread.
#[tokio::test]
async fn every_rejection_is_logged() {
    logs::init();
    logs::capture();
    let server = small_server().await;
    let cases: Vec<(Vec<u8>, Status, &str)> = vec![
        (header(MAGIC_REQUEST, VERSION, 0x7F, 0, 1, 0, 0, 0), Status::UnknownOpcode, "unknown opcode 0x7f"),
        (
            header(MAGIC_REQUEST, VERSION, Opcode::DbSize as u8, 0x04, 2, 0, 0, 0),
            Status::BadRequest,
            "DBSIZE: unknown flags 0x04",
        ),
        (vec![0x42], Status::BadFrame, "bad magic byte 0x42"),
        (
            header(MAGIC_REQUEST, 9, Opcode::Ping as u8, 0, 3, 0, 0, 0),
            Status::BadFrame,
            "unsupported protocol version 9",
        ),
        (
            header(MAGIC_REQUEST, VERSION, Opcode::Get as u8, 0, 4, 0, 100, 0),
            Status::TooLarge,
            "key length 100",
        ),
        (
            header(MAGIC_REQUEST, VERSION, Opcode::Set as u8, 0, 5, 0, 1, 5000),
            Status::TooLarge,
            "value length 5000",
        ),
    ];
    for (i, (bytes, status, message)) in cases.iter().enumerate() {
        let mut conn = RawConn::connect(server.addr).await;
        conn.send(bytes).await;
        let f = conn.frame().await;
        let got = Reply::from_frame(&f).unwrap();
        assert!(matches!(&got, Reply::Error { status: s, .. } if s == status), "case {i}: {got:?}");
        let text = logs::text();
        assert!(text.contains(message), "case {i}: log mentions {message:?}:\n{text}");
    }
    let text = logs::text();
    assert_eq!(text.matches("protocol error; closing connection").count(), 3, "{text}");
    assert_eq!(text.matches("request over a limit refused; its payload is skipped").count(), 1, "{text}");
    server.shutdown().await.unwrap();
}
