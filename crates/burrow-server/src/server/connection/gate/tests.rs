//! The handshake state of one connection, driven over an in-memory duplex
//! (HELLO's challenge is random, so the replies are read and checked
//! rather than scripted byte for byte).

use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::DuplexStream;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::super::{Connection, Ended};
use super::{MAX_FAILURES, NOAUTH_MESSAGE};
use crate::server::auth::ClientAuth;
use crate::server::{Config, Server, Shared};
use burrow_proto::{
    decode_hello, BodyType, Codec, Frame, HelloInfo, Limits, Nonce, Proof, Prover, Purpose, Request, Secret,
    SetCondition, Status,
};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn secret() -> Secret {
    Secret::from_bytes(SECRET, "test").expect("long enough")
}

fn server(secret: Option<Secret>) -> Shared {
    let config = Config { persistence: false, shards: 4, ..Config::default() };
    let mut shared = Server::open(config).expect("in memory").into_shared(0).expect("no persistence");
    shared.auth = ClientAuth::new(secret);
    shared
}

type Client = Framed<DuplexStream, Codec>;

/// Runs a connection on `shared` and hands back the client's end; the
/// connection's outcome arrives on the join handle.
fn connect(shared: std::sync::Arc<Shared>) -> (Client, tokio::task::JoinHandle<bool>) {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let task = tokio::spawn(async move {
        let cancel = CancellationToken::new();
        let ended = Connection::new(server, &shared, &cancel).run().await;
        matches!(ended, Ok(Ended::Closed))
    });
    (Framed::new(client, Codec::client(Limits::default())), task)
}

async fn call(c: &mut Client, f: Frame) -> Frame {
    c.send(f).await.expect("sent");
    c.next().await.expect("a reply").expect("well framed")
}

fn set(id: u32) -> Frame {
    Request::Set {
        key: Bytes::from_static(b"k"),
        value: Bytes::from_static(b"v"),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    }
    .to_frame(id)
}

async fn hello(c: &mut Client) -> HelloInfo {
    let r = call(c, Request::Hello.to_frame(1)).await;
    assert_eq!((r.flags, r.aux), (Status::Ok as u8, BodyType::Bytes as u8));
    decode_hello(&r.value).expect("a HELLO reply")
}

fn auth(secret: &Secret, server_nonce: &Nonce, client_nonce: Nonce) -> Frame {
    let proof = Proof::new(secret, Purpose::Client, Prover::Initiator, server_nonce, &client_nonce);
    Request::Auth { user: Bytes::new(), client_nonce, proof }.to_frame(2)
}

#[tokio::test(start_paused = true)]
async fn before_auth_only_ping_hello_and_auth_run_and_nothing_changes() {
    let shared = std::sync::Arc::new(server(Some(secret())));
    let (mut c, _task) = connect(shared.clone());
    for f in
        [set(1), Request::FlushAll.to_frame(2), Request::Get { key: Bytes::from_static(b"k") }.to_frame(3)]
    {
        let r = call(&mut c, f).await;
        assert_eq!(r.flags, Status::NoAuth as u8);
        assert_eq!(r.value, NOAUTH_MESSAGE.as_bytes());
    }
    let r = call(&mut c, Request::Ping { payload: Bytes::new() }.to_frame(4)).await;
    assert_eq!((r.flags, &r.value[..]), (Status::Ok as u8, &b"PONG"[..]));
    // Member opcodes are not this gate's: a standalone server does not know them.
    let r = call(&mut c, Frame::request(0x51, 5)).await;
    assert_eq!(r.flags, Status::UnknownOpcode as u8);
    let info = hello(&mut c).await;
    assert!(info.auth_required);
    assert_eq!((info.version, info.node_id), (burrow_proto::VERSION, 0));
    assert_eq!(shared.store.len(), 0);
    assert_eq!(shared.store.log().last_index(), 0);
    assert_eq!(shared.auth.refused.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn the_right_proof_opens_the_connection_and_the_server_proves_itself() {
    let shared = std::sync::Arc::new(server(Some(secret())));
    let (mut c, _task) = connect(shared.clone());
    let info = hello(&mut c).await;
    let mine = Nonce([9; 16]);
    let r = call(&mut c, auth(&secret(), &info.nonce, mine)).await;
    assert_eq!((r.flags, r.aux), (Status::Ok as u8, BodyType::Bytes as u8));
    assert!(Proof::verify(&secret(), Purpose::Client, Prover::Responder, &info.nonce, &mine, &r.value));
    assert_eq!(call(&mut c, set(3)).await.flags, Status::Ok as u8);
    assert_eq!(shared.auth.successes.load(Ordering::Relaxed), 1);
    // Each HELLO brings a fresh challenge.
    assert_ne!(hello(&mut c).await.nonce, info.nonce);
}

#[tokio::test(start_paused = true)]
async fn wrong_and_replayed_proofs_fail_slowly_and_too_many_close() {
    let shared = std::sync::Arc::new(server(Some(secret())));
    let (mut c, task) = connect(shared.clone());
    let wrong = Secret::from_bytes(b"not the secret, but as long as it", "test").expect("long enough");
    let info = hello(&mut c).await;
    let started = tokio::time::Instant::now();
    let r = call(&mut c, auth(&wrong, &info.nonce, Nonce([1; 16]))).await;
    assert_eq!(r.flags, Status::NoAuth as u8);
    assert!(started.elapsed() >= super::FAILURE_DELAY, "a refusal waits");
    // The right proof for a challenge already spent: a replay.
    let r = call(&mut c, auth(&secret(), &info.nonce, Nonce([1; 16]))).await;
    assert_eq!(r.flags, Status::NoAuth as u8);
    assert!(String::from_utf8_lossy(&r.value).contains("send HELLO first"));
    assert_eq!(call(&mut c, set(3)).await.flags, Status::NoAuth as u8);
    // A malformed AUTH is a bad request, not a guess.
    let mut short = auth(&secret(), &info.nonce, Nonce([1; 16]));
    short.value = short.value.slice(..31);
    assert_eq!(call(&mut c, short).await.flags, Status::BadRequest as u8);
    for _ in 3..MAX_FAILURES {
        let info = hello(&mut c).await;
        assert_eq!(call(&mut c, auth(&wrong, &info.nonce, Nonce([1; 16]))).await.flags, Status::NoAuth as u8);
    }
    let info = hello(&mut c).await;
    let last = call(&mut c, auth(&wrong, &info.nonce, Nonce([1; 16]))).await;
    assert!(String::from_utf8_lossy(&last.value).contains("closing the connection"));
    assert!(task.await.expect("joined"), "closed after {MAX_FAILURES} failures");
    assert_eq!(shared.auth.failures.load(Ordering::Relaxed), MAX_FAILURES as u64);
    assert_eq!(shared.store.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn without_a_secret_nothing_is_gated_and_auth_says_so() {
    let shared = std::sync::Arc::new(server(None));
    let (mut c, _task) = connect(shared.clone());
    assert_eq!(call(&mut c, set(1)).await.flags, Status::Ok as u8);
    let info = hello(&mut c).await;
    assert!(!info.auth_required);
    let r = call(&mut c, auth(&secret(), &info.nonce, Nonce([1; 16]))).await;
    assert_eq!(r.flags, Status::BadRequest as u8);
    assert!(String::from_utf8_lossy(&r.value).contains("no client secret configured"));
}

/// protocol.md's `hello`, `auth` and `noauth` examples are what the gate
/// answers (HELLO's nonce aside: it is random, and patched in).
#[test]
fn the_documented_exchange_is_what_the_gate_answers() {
    use super::{Gate, Gated};
    use crate::server::doc_examples::{documented_request, documented_response};
    use burrow_proto::Peek;

    let shared = server(Some(Secret::from_bytes(b"0123456789abcdef", "protocol.md").expect("16 bytes")));
    let answer = |gate: &mut Gate, name: &str| {
        let bytes = documented_request(name);
        let Ok(Peek::Frame(frame, _)) = Codec::server(Limits::default()).peek(&bytes) else {
            panic!("{name}: not one whole request")
        };
        let mut out = bytes::BytesMut::new();
        assert!(matches!(gate.handle(&shared, &frame, &mut out), Gated::Replied { .. }), "{name}");
        out.to_vec()
    };
    let mut gate = Gate::new(&shared.auth);
    assert_eq!(answer(&mut gate, "noauth"), documented_response("noauth"));
    let got = answer(&mut gate, "hello");
    let mut want = documented_response("hello");
    // Header, version and auth fields, then the nonce field's tag and length.
    let at = burrow_proto::HEADER_LEN + 4 + 4 + 3;
    want[at..at + 16].copy_from_slice(&gate.challenge.expect("a challenge").0);
    assert_eq!(got, want);
    gate.challenge = Some(Nonce([0xAA; 16]));
    assert_eq!(answer(&mut gate, "auth"), documented_response("auth"));
    assert!(gate.open);
}
