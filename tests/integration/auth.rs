//! Client authentication (protocol.md §8.12) and protected mode, end to
//! end: in-process servers with a secret, raw connections that never
//! authenticate or replay a recorded AUTH, the Rust client (wrong secret,
//! none, reconnects through a proxy that cuts links), the CLI and the
//! bench with `--auth-file`, and `burrow-server` refusing a public bind.

use crate::common;

use std::process::Command;
use std::sync::Arc;

use burrow_client::{Client, ClientConfig, ClientError, FailoverConfig, Secret};
use burrow_proto::{decode_hello, Nonce, Proof, Prover, Purpose, Reply, Request, SetCondition, Status};
use burrow_server::{ServerError, ServerHandle};
use bytes::Bytes;
use common::proxy::Proxy;
use common::{assert_status, info_u64, RawConn, TempDir};

const SECRET: &str = "c2VjcmV0LWZvci10aGUtYXV0aC10ZXN0cw==\n";

/// A secret file (mode 600) in `dir`.
fn secret_file(dir: &TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.join("secret");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn secret(text: &str) -> Arc<Secret> {
    Arc::new(Secret::from_bytes(text.as_bytes(), "test").unwrap())
}

/// A server requiring `SECRET`.
pub(crate) async fn server(dir: &TempDir) -> ServerHandle {
    let path = secret_file(dir, SECRET);
    common::start_with(|c| c.auth_secret_file = Some(path)).await
}

pub(crate) fn authed() -> ClientConfig {
    ClientConfig { auth: Some(secret(SECRET)), ..ClientConfig::default() }
}

fn set(key: &str, value: &str) -> Request {
    Request::Set {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    }
}

async fn info(addr: std::net::SocketAddr) -> String {
    Client::connect_with(addr, authed()).await.unwrap().info("clients").await.unwrap()
}

#[tokio::test]
async fn unauthenticated_commands_get_noauth_and_change_nothing() {
    let dir = TempDir::new("auth-noauth");
    let server = server(&dir).await;
    let mut c = Client::connect_with(server.addr, authed()).await.unwrap();
    c.set("k", "v").await.unwrap();
    c.rpush("l", ["a", "b"]).await.unwrap();
    let digest = c.digest().await.unwrap();

    let key = || Bytes::from_static(b"k");
    let refused = [
        set("k", "other"),
        Request::Del { key: key() },
        Request::FlushAll,
        Request::Incr { key: Bytes::from_static(b"n") },
        Request::Pop { key: Bytes::from_static(b"l"), end: burrow_proto::End::Left, count: None },
        Request::Get { key: key() },
        Request::Digest,
        Request::Info { section: Bytes::new() },
        Request::Snapshot { background: true },
        Request::Wait { replicas: 0, timeout_ms: 1 },
    ];
    let mut raw = RawConn::connect(server.addr).await;
    let reqs: Vec<(u32, Request)> =
        refused.iter().cloned().enumerate().map(|(i, r)| (i as u32 + 1, r)).collect();
    raw.send_requests(&reqs).await;
    for (id, req) in &reqs {
        let msg = assert_status(&raw.frame().await, Status::NoAuth, *id);
        assert!(msg.contains("HELLO, then AUTH"), "{req:?}: {msg}");
    }
    // PING is answered; the connection stays open.
    raw.send_requests(&[(99, Request::Ping { payload: Bytes::new() })]).await;
    let (id, reply) = raw.reply().await;
    assert_eq!((id, reply), (99, Reply::Text("PONG".into())));

    assert_eq!(c.digest().await.unwrap(), digest, "refused commands changed the data");
    let text = info(server.addr).await;
    assert_eq!(info_u64(&text, "auth_enabled"), 1);
    assert_eq!(info_u64(&text, "auth_refused_commands"), refused.len() as u64);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_wrong_secret_or_none_fails_with_a_typed_error_and_the_right_one_works() {
    let dir = TempDir::new("auth-wrong");
    let server = server(&dir).await;
    let wrong =
        ClientConfig { auth: Some(secret("a different secret of some length")), ..Default::default() };
    match Client::connect_with(server.addr, wrong.clone()).await {
        Err(ClientError::AuthFailed { reason }) => assert!(reason.contains("NOAUTH"), "{reason}"),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    // A cluster client does not retry a wrong secret until its deadline.
    match Client::connect_cluster_with(&[server.addr.to_string()], wrong).await {
        Err(ClientError::AuthFailed { .. }) => {}
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    let mut anonymous = Client::connect(server.addr).await.unwrap();
    assert!(matches!(anonymous.get("k").await, Err(ClientError::AuthRequired)));
    let mut c = Client::connect_with(server.addr, authed()).await.unwrap();
    c.set("k", "v").await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let text = info(server.addr).await;
    assert_eq!(info_u64(&text, "auth_failures"), 2);
    assert!(info_u64(&text, "auth_successes") >= 2);
    server.shutdown().await.unwrap();

    // A server without a secret cannot prove it holds ours: refused too.
    let open = common::start().await;
    match Client::connect_with(open.addr, authed()).await {
        Err(ClientError::AuthFailed { reason }) => assert!(reason.contains("requires no authentication")),
        other => panic!("expected AuthFailed, got {other:?}"),
    }
    open.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_recorded_auth_cannot_be_replayed() {
    let dir = TempDir::new("auth-replay");
    let server = server(&dir).await;
    let s = secret(SECRET);
    let mut raw = RawConn::connect(server.addr).await;
    raw.send_requests(&[(1, Request::Hello)]).await;
    let hello = match raw.reply().await {
        (1, Reply::Bytes(b)) => decode_hello(&b).unwrap(),
        other => panic!("HELLO: {other:?}"),
    };
    assert!(hello.auth_required);
    let client_nonce = Nonce::random();
    let proof = Proof::new(&s, Purpose::Client, Prover::Initiator, &hello.nonce, &client_nonce);
    let auth = Request::Auth { user: Bytes::new(), client_nonce, proof };
    raw.send_requests(&[(2, auth.clone())]).await;
    match raw.reply().await {
        (2, Reply::Bytes(theirs)) => {
            assert!(Proof::verify(
                &s,
                Purpose::Client,
                Prover::Responder,
                &hello.nonce,
                &client_nonce,
                &theirs
            ))
        }
        other => panic!("AUTH: {other:?}"),
    }
    // The same bytes again, on this connection (challenge spent) and on
    // another one that asked for its own challenge.
    raw.send_requests(&[(3, auth.clone())]).await;
    assert_status(&raw.frame().await, Status::NoAuth, 3);
    let mut other = RawConn::connect(server.addr).await;
    other.send_requests(&[(1, Request::Hello), (2, auth), (3, set("k", "stolen"))]).await;
    assert!(matches!(other.reply().await, (1, Reply::Bytes(_))));
    assert_status(&other.frame().await, Status::NoAuth, 2);
    assert_status(&other.frame().await, Status::NoAuth, 3);
    let mut c = Client::connect_with(server.addr, authed()).await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), None);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_client_authenticates_again_on_every_reconnect() {
    let dir = TempDir::new("auth-reconnect");
    let server = server(&dir).await;
    let proxy = Proxy::start(server.addr).await;
    let config = ClientConfig {
        failover: FailoverConfig { deadline: common::DEADLINE, ..FailoverConfig::default() },
        ..authed()
    };
    let mut c = Client::connect_cluster_with(&[proxy.addr.to_string()], config).await.unwrap();
    for i in 0..3 {
        c.set(format!("k{i}"), "v").await.unwrap();
        proxy.cut();
        // Idempotent: retried on a new, authenticated connection.
        assert_eq!(c.get(format!("k{i}")).await.unwrap().as_deref(), Some(&b"v"[..]), "after cut {i}");
    }
    let text = info(server.addr).await;
    assert!(info_u64(&text, "auth_successes") >= 4, "{text}");
    assert_eq!(info_u64(&text, "auth_failures"), 0);
    server.shutdown().await.unwrap();
}

/// Runs a tool binary off the async threads (the server shares them).
async fn run(
    bin: &'static str,
    args: Vec<String>,
    env: Option<(&'static str, String)>,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(bin);
        cmd.args(&args).env_remove("BURROW_AUTH_FILE");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.output().expect("the tool runs")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn cli_and_bench_authenticate_with_an_auth_file() {
    let dir = TempDir::new("auth-tools");
    let server = server(&dir).await;
    let file = dir.join("secret").display().to_string();
    let port = server.addr.port().to_string();
    let cli = env!("CARGO_BIN_EXE_burrow-cli");
    let base = |rest: &[&str]| -> Vec<String> {
        ["--port", &port].iter().chain(rest).map(|s| s.to_string()).collect()
    };

    let out = run(cli, base(&["--auth-file", &file, "SET", "k", "v"]), None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(cli, base(&["GET", "k"]), Some(("BURROW_AUTH_FILE", file.clone()))).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v");
    let out = run(cli, base(&["GET", "k"]), None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("NOAUTH"), "{out:?}");
    let missing = dir.join("missing").display().to_string();
    let out = run(cli, base(&["--auth-file", &missing, "GET", "k"]), None).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read secret file"), "{out:?}");

    let bench = env!("CARGO_BIN_EXE_burrow-bench");
    let args = |auth: bool| {
        let mut a = base(&["-t", "set,get", "-n", "2000", "-c", "4", "--json", "-q", "--fail-on-error"]);
        if auth {
            a.extend(["--auth-file".to_string(), file.clone()]);
        }
        a
    };
    let out = run(bench, args(true), None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(bench, args(false), None).await;
    assert!(!out.status.success(), "the bench without the secret must fail: {out:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn protected_mode_refuses_a_public_bind_without_auth_unless_opted_out() {
    let config = burrow_server::Config {
        bind: "0.0.0.0".parse().unwrap(),
        port: 0,
        persistence: false,
        ..burrow_server::Config::default()
    };
    match ServerHandle::start(config).await {
        Err(ServerError::Auth(e)) => assert!(e.to_string().contains("--auth-secret-file"), "{e}"),
        other => panic!("expected a protected-mode refusal, got {other:?}"),
    }

    let dir = TempDir::new("auth-protected");
    let (status, log) =
        common::run_server_to_exit(&dir.join("data"), &["--bind", "0.0.0.0", "--persistence", "off"]).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("protected mode") && log.contains("--protected-mode no"), "{log}");

    // A secret file that cannot be used refuses the start too, naming it.
    for (content, want) in [(None, "cannot read secret file"), (Some("short\n"), "holds 5 bytes")] {
        let path = dir.join("bad-secret");
        let _ = std::fs::remove_file(&path);
        if let Some(text) = content {
            std::fs::write(&path, text).unwrap();
        }
        let path = path.display().to_string();
        let args = ["--persistence", "off", "--auth-secret-file", &path];
        let (status, log) = common::run_server_to_exit(&dir.join("data"), &args).await;
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(log.contains("--auth-secret-file") && log.contains(want), "{log}");
    }

    let open = ["--bind", "0.0.0.0", "--persistence", "off", "--protected-mode", "no"];
    let child = common::ChildServer::start(&dir.join("data"), &open).await;
    assert!(child.stderr().contains("protected mode is off"), "{}", child.stderr());
    let mut c = Client::connect(("127.0.0.1", child.addr.port())).await.unwrap();
    c.set("k", "v").await.unwrap();
    drop(child);

    // With a secret the public bind is allowed; a world-readable file is warned about.
    let path = secret_file(&dir, SECRET);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let path = path.display().to_string();
    let args = ["--bind", "0.0.0.0", "--persistence", "off", "--auth-secret-file", &path];
    let child = common::ChildServer::start(&dir.join("data"), &args).await;
    #[cfg(unix)]
    assert!(child.stderr().contains("readable by other users"), "{}", child.stderr());
    assert!(!child.stderr().contains(SECRET.trim()), "the secret must never be logged");
    let mut c = Client::connect_with(("127.0.0.1", child.addr.port()), authed()).await.unwrap();
    c.set("k", "v").await.unwrap();

    // Refusals are logged (rate-limited): a command before AUTH, a wrong AUTH.
    let mut raw = RawConn::connect(child.addr).await;
    raw.send_requests(&[(1, Request::Get { key: Bytes::from_static(b"k") }), (2, Request::Hello)]).await;
    assert_status(&raw.frame().await, Status::NoAuth, 1);
    let nonce = match raw.reply().await {
        (2, Reply::Bytes(b)) => decode_hello(&b).unwrap().nonce,
        other => panic!("HELLO: {other:?}"),
    };
    let wrong = secret("not the secret but long enough");
    let proof = Proof::new(&wrong, Purpose::Client, Prover::Initiator, &nonce, &Nonce([1; 16]));
    raw.send_requests(&[(3, Request::Auth { user: Bytes::new(), client_nonce: Nonce([1; 16]), proof })])
        .await;
    assert_status(&raw.frame().await, Status::NoAuth, 3);
    common::wait_for("the refusals in the log", || {
        let log = child.stderr();
        async move { log.contains("command refused") && log.contains("AUTH failed") }
    })
    .await;
}
