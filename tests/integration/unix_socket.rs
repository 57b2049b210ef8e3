//! The Unix domain socket listener (`--unix-socket`, issue 13): the same
//! protocol through the Rust client and the CLI, AUTH and the connection
//! limit applying as on TCP, the socket's permissions, a stale socket
//! replaced, a file that is not a socket refusing the start, and the file
//! removed at shutdown (in-process and by the `burrow-server` binary on
//! SIGTERM).

use crate::common;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::process::Command;
use std::sync::Arc;

use burrow_client::{Client, ClientConfig, ClientError, Secret};
use burrow_proto::Status;
use bytes::Bytes;
use common::{info_field, ChildServer, TempDir};

const SECRET: &str = "dW5peC1zb2NrZXQtdGVzdC1zZWNyZXQ=\n";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).expect("socket file").permissions().mode() & 0o777
}

fn is_socket(path: &std::path::Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Runs `burrow-cli` off the runtime's thread (the server runs on it).
async fn cli(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_burrow-cli"))
            .args(&args)
            .env_remove("BURROW_AUTH_FILE")
            .output()
            .expect("run burrow-cli")
    })
    .await
    .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn the_rust_client_and_the_cli_round_trip_over_the_socket_which_shutdown_removes() {
    let dir = TempDir::new("uds-round-trip");
    let path = dir.join("burrow.sock");
    let server = common::start_with(|c| c.unix_socket = Some(path.clone())).await;
    assert!(is_socket(&path));
    assert_eq!(mode(&path), 0o700, "the default --unix-socket-perm");

    let mut c = Client::connect_unix(&path).await.unwrap();
    assert_eq!(c.unix_socket(), Some(path.as_path()));
    c.set("k", "over uds").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(Bytes::from("over uds")));
    let info = c.info("server").await.unwrap();
    assert_eq!(info_field(&info, "unix_socket"), path.display().to_string(), "{info}");
    // The same data over TCP: one server, two listeners.
    let mut tcp = Client::connect(server.addr).await.unwrap();
    assert_eq!(tcp.get("k").await.unwrap(), Some(Bytes::from("over uds")));
    // An address as users write it.
    let unix_addr = format!("unix:{}", path.display());
    let mut by_name = Client::connect_to(&unix_addr).await.unwrap();
    assert_eq!(by_name.incr_by("n", 2).await.unwrap(), 2);

    let p = path.to_str().unwrap();
    let out = cli(&["-s", p, "SET", "cli", "via -s"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = cli(&["-h", &unix_addr, "GET", "cli"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "via -s\n");
    let out = cli(&["-s", p, "--tls", "--cacert", "ca.pem", "PING"]).await;
    assert_eq!(out.status.code(), Some(2), "TLS on a Unix socket is a usage error: {}", text(&out));

    // burrow-bench -s, as redis-benchmark -s.
    let args: Vec<String> =
        ["-s", p, "-t", "set,get", "-n", "2000", "-c", "4", "-q"].iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_burrow-bench")).args(&args).output().expect("run burrow-bench")
    })
    .await
    .unwrap();
    let report = text(&out);
    assert!(out.status.success() && report.contains("SET: ") && report.contains("GET: "), "{report}");
    assert!(!report.contains("errors"), "{report}");

    drop((c, tcp, by_name));
    server.shutdown().await.unwrap();
    assert!(!path.exists(), "shutdown removes the socket file");
}

#[tokio::test]
async fn auth_applies_and_the_permissions_are_set_before_accepting() {
    let dir = TempDir::new("uds-auth");
    let path = dir.join("s.sock");
    let secret_path = dir.join("secret");
    std::fs::write(&secret_path, SECRET).unwrap();
    std::fs::set_permissions(&secret_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (sock, secret_file) = (path.clone(), secret_path.clone());
    let server = common::start_with(move |c| {
        c.unix_socket = Some(sock);
        c.unix_socket_perm = "660".parse().unwrap();
        c.auth_secret_file = Some(secret_file);
    })
    .await;
    assert_eq!(mode(&path), 0o660);

    let mut anonymous = Client::connect_unix(&path).await.unwrap();
    let err = anonymous.get("k").await.unwrap_err();
    assert!(matches!(err, ClientError::AuthRequired), "{err:?}");
    let authed = ClientConfig {
        auth: Some(Arc::new(Secret::from_bytes(SECRET.as_bytes(), "test").unwrap())),
        ..ClientConfig::default()
    };
    let mut c = Client::connect_unix_with(&path, authed.clone()).await.unwrap();
    c.set("k", "v").await.unwrap();
    let ca = common::certs::Ca::new(dir.path(), "ca");
    let tls =
        ClientConfig { tls: Some(burrow_client::TlsOptions::from_files(&ca.pem, None).unwrap()), ..authed };
    let err = Client::connect_unix_with(&path, tls).await.unwrap_err();
    assert!(matches!(err, ClientError::TlsOnUnixSocket), "{err:?}");

    let p = path.to_str().unwrap();
    let s = secret_path.to_str().unwrap();
    let out = cli(&["-s", p, "GET", "k"]).await;
    assert!(!out.status.success() && text(&out).contains("NOAUTH"), "{}", text(&out));
    let out = cli(&["-s", p, "--auth-file", s, "GET", "k"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "v\n");
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_connection_limit_covers_tcp_and_the_socket() {
    let dir = TempDir::new("uds-limit");
    let path = dir.join("s.sock");
    let sock = path.clone();
    let server = common::start_with(move |c| {
        c.unix_socket = Some(sock);
        c.max_connections = 2;
    })
    .await;
    let mut tcp = Client::connect(server.addr).await.unwrap();
    tcp.ping("").await.unwrap();
    let mut unix = Client::connect_unix(&path).await.unwrap();
    unix.ping("").await.unwrap();
    // The third, on either listener: BUSY.
    let mut extra = Client::connect_unix(&path).await.unwrap();
    let err = extra.ping("").await.unwrap_err();
    assert!(matches!(err, ClientError::Server { status: Status::Busy, .. }), "{err:?}");
    let mut extra = Client::connect(server.addr).await.unwrap();
    let err = extra.ping("").await.unwrap_err();
    assert!(matches!(err, ClientError::Server { status: Status::Busy, .. }), "{err:?}");
    let info = unix.info("clients").await.unwrap();
    assert_eq!(info_field(&info, "rejected_connections"), "2", "{info}");
    assert_eq!(info_field(&info, "connected_clients"), "2", "{info}");
    drop((tcp, unix));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_binary_replaces_a_stale_socket_refuses_other_files_and_removes_its_own() {
    let dir = TempDir::new("uds-binary");
    let path = dir.join("s.sock");
    let p = path.to_str().unwrap().to_string();
    // What a killed server leaves: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(is_socket(&path));
    let data = dir.join("data");
    let server = ChildServer::start(&data, &["--persistence", "off", "--unix-socket", &p]).await;
    let mut c = Client::connect_unix(&path).await.unwrap();
    c.set("k", "v").await.unwrap();
    assert_eq!(mode(&path), 0o700);
    // A second server on the same path: refused, the first keeps its socket.
    let (status, log) =
        common::run_server_to_exit(&dir.join("data2"), &["--persistence", "off", "--unix-socket", &p]).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("another process is listening on it"), "{log}");
    assert_eq!(c.get("k").await.unwrap(), Some(Bytes::from("v")));
    drop(c);
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{log}");
    assert!(!path.exists(), "SIGTERM removes the socket file: {log}");

    // A file that is not a socket is never removed: the start is refused.
    std::fs::write(&path, b"not a socket").unwrap();
    let (status, log) =
        common::run_server_to_exit(&data, &["--persistence", "off", "--unix-socket", &p]).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("exists and is not a socket"), "{log}");
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}
