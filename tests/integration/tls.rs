//! TLS (issue 11 item 3; protocol.md §13), end to end with certificates
//! made at test time: the Rust client and the CLI over TLS, plain TCP and
//! silent peers on a TLS port, a client trusting another CA, client
//! certificates, start-up errors; and 3-node clusters whose members dial
//! each other with mutual TLS (elect, replicate, fail over), refusing a
//! "member" without a certificate from the cluster's CA.

use crate::common;

use std::time::{Duration, Instant};

use burrow_client::{Client, ClientConfig, ClientError, TlsOptions};
use burrow_server::{Config, ServerError, ServerHandle, TlsClientAuth};
use common::certs::{Ca, Leaf};
use common::{info_u64, RawConn, TempDir};

/// A server presenting `leaf`, with `tweak` applied.
async fn server(leaf: &Leaf, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    common::start_with(|c| {
        c.tls_cert_file = Some(leaf.cert.clone());
        c.tls_key_file = Some(leaf.key.clone());
        tweak(c);
    })
    .await
}

fn tls_client(ca: &Ca, client: Option<&Leaf>) -> ClientConfig {
    let tls = TlsOptions::from_files(&ca.pem, client.map(|l| (l.cert.as_path(), l.key.as_path()))).unwrap();
    ClientConfig { tls: Some(tls), ..ClientConfig::default() }
}

async fn clients_info(addr: std::net::SocketAddr, ca: &Ca) -> String {
    Client::connect_with(addr, tls_client(ca, None)).await.unwrap().info("clients").await.unwrap()
}

#[tokio::test]
async fn the_rust_client_sets_and_gets_over_tls() {
    let dir = TempDir::new("tls-client");
    let ca = Ca::new(dir.path(), "ca");
    let s = server(&ca.local("server"), |_| {}).await;
    let mut c = Client::connect_with(s.addr, tls_client(&ca, None)).await.unwrap();
    c.set("k", "over tls").await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"over tls"[..]));
    // A value larger than one TLS record (16 KiB) crosses intact.
    let big = vec![b'x'; 1 << 20];
    c.set("big", big.clone()).await.unwrap();
    assert_eq!(c.get("big").await.unwrap().as_deref(), Some(&big[..]));
    let info = c.info("clients").await.unwrap();
    assert_eq!(common::info_field(&info, "tls_enabled"), "1");
    assert!(info_u64(&info, "tls_handshakes") >= 1, "{info}");
    assert_eq!(info_u64(&info, "tls_handshake_failures"), 0, "{info}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plain_tcp_client_on_a_tls_port_is_closed_and_others_are_served() {
    let dir = TempDir::new("tls-plain");
    let ca = Ca::new(dir.path(), "ca");
    let s = server(&ca.local("server"), |_| {}).await;
    let mut served = Client::connect_with(s.addr, tls_client(&ca, None)).await.unwrap();
    served.set("k", "v").await.unwrap();

    // A Burrow PING in the clear: not a TLS ClientHello.
    let mut plain = RawConn::connect(s.addr).await;
    plain
        .send(&common::request_bytes(&burrow_proto::Request::Ping { payload: bytes::Bytes::new() }, 1))
        .await;
    plain.drain_until_closed().await;
    // The Rust client without TLS gets no reply either.
    let no_tls = ClientConfig { request_timeout: Duration::from_secs(5), ..ClientConfig::default() };
    let mut c = Client::connect_with(s.addr, no_tls).await.unwrap();
    assert!(c.get("k").await.is_err(), "a plain client must not be served on a TLS port");

    assert_eq!(served.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    let info = served.info("clients").await.unwrap();
    assert!(info_u64(&info, "tls_handshake_failures") >= 2, "{info}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_trusting_another_ca_fails_its_handshake_and_nothing_is_served() {
    let dir = TempDir::new("tls-wrong-ca");
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other");
    let s = server(&ca.local("server"), |_| {}).await;
    let err = Client::connect_with(s.addr, tls_client(&other, None)).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");
    assert!(format!("{:?}", err).contains("UnknownIssuer"), "{err:?}");
    // A certificate that does not name the address connected to fails too.
    let named = TlsOptions::from_files(&ca.pem, None).unwrap().server_name("elsewhere.example").unwrap();
    let config = ClientConfig { tls: Some(named), ..ClientConfig::default() };
    let err = Client::connect_with(s.addr, config).await.unwrap_err();
    assert!(matches!(err, ClientError::Tls(_)), "{err:?}");

    let mut c = Client::connect_with(s.addr, tls_client(&ca, None)).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 0);
    let info = clients_info(s.addr, &ca).await;
    assert!(info_u64(&info, "tls_handshake_failures") >= 2, "{info}");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_handshake_timeout() {
    let dir = TempDir::new("tls-timeout");
    let ca = Ca::new(dir.path(), "ca");
    let timeout = Duration::from_millis(300);
    let s = server(&ca.local("server"), |c| c.tls_handshake_timeout = timeout).await;
    let started = Instant::now();
    let mut silent = RawConn::connect(s.addr).await;
    // Others are served while it sits there.
    let mut c = Client::connect_with(s.addr, tls_client(&ca, None)).await.unwrap();
    c.set("k", "v").await.unwrap();
    silent.drain_until_closed().await;
    assert!(started.elapsed() >= timeout, "closed after {:?}", started.elapsed());
    common::wait_for("the timed-out handshake to be counted", || async {
        info_u64(&clients_info(s.addr, &ca).await, "tls_handshake_failures") == 1
    })
    .await;
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_certificates_are_verified_when_required() {
    let dir = TempDir::new("tls-mtls");
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other");
    let s = server(&ca.local("server"), |c| {
        c.tls_ca_file = Some(ca.pem.clone());
        c.tls_client_auth = TlsClientAuth::Required;
    })
    .await;
    let mut with_cert =
        Client::connect_with(s.addr, tls_client(&ca, Some(&ca.local("client")))).await.unwrap();
    with_cert.set("k", "v").await.unwrap();
    // Without a certificate, or with one another CA signed: refused. (In
    // TLS 1.3 the client finishes first and hears the refusal on its first
    // read.)
    for leaf in [None, Some(other.local("stranger"))] {
        let refused = async {
            let mut c = Client::connect_with(s.addr, tls_client(&ca, leaf.as_ref())).await?;
            c.get("k").await
        };
        assert!(refused.await.is_err(), "served without a certificate from the CA");
    }
    assert_eq!(with_cert.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_tls_files_are_refused_at_start_naming_the_file() {
    let dir = TempDir::new("tls-files");
    let ca = Ca::new(dir.path(), "ca");
    let (a, b) = (ca.local("a"), ca.local("b"));
    let missing = dir.join("missing.crt");
    let required = TlsClientAuth::Required;
    let auto = TlsClientAuth::Auto;
    // (cert, key, client auth, what the error must say)
    let cases = [
        (Some(&a.cert), None, auto, "go together"),
        (Some(&missing), Some(&a.key), auto, "missing.crt"),
        (Some(&a.cert), Some(&b.key), auto, "is not the certificate's"),
        (Some(&a.key), Some(&a.cert), auto, "a.key"),
        (Some(&a.cert), Some(&a.key), required, "needs --tls-ca-file"),
    ];
    for (i, (cert, key, client_auth, expect)) in cases.into_iter().enumerate() {
        let config = Config {
            port: 0,
            persistence: false,
            tls_cert_file: cert.cloned(),
            tls_key_file: key.cloned(),
            tls_client_auth: client_auth,
            ..Config::default()
        };
        let err = ServerHandle::start(config).await.map(drop).unwrap_err();
        let text = burrow_proto::ErrorChain(&err).to_string();
        assert!(matches!(err, ServerError::Tls(_)), "#{i}: {err:?}");
        assert!(text.contains(expect), "#{i}: {text:?} should say {expect:?}");
    }
}

/// Runs a tool binary off the async threads (the server shares them).
async fn run(bin: &'static str, args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args(&args)
            .env_remove("BURROW_AUTH_FILE")
            .output()
            .expect("the tool runs")
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn cli_and_bench_speak_tls_with_cacert_cert_key_and_sni() {
    let dir = TempDir::new("tls-tools");
    let ca = Ca::new(dir.path(), "ca");
    let other = Ca::new(dir.path(), "other");
    let s = server(&ca.leaf("server", &["127.0.0.1", "burrow.test"]), |c| {
        c.tls_ca_file = Some(ca.pem.clone());
        c.tls_client_auth = TlsClientAuth::Required;
    })
    .await;
    let client = ca.local("client");
    let path = |p: &std::path::Path| p.display().to_string();
    let port = s.addr.port().to_string();
    let tls = |ca_pem: &std::path::Path, rest: &[&str]| -> Vec<String> {
        let mut a: Vec<String> =
            ["--port", &port, "--tls", "--cacert", &path(ca_pem)].iter().map(|s| s.to_string()).collect();
        a.extend(["--cert".into(), path(&client.cert), "--key".into(), path(&client.key)]);
        a.extend(rest.iter().map(|s| s.to_string()));
        a
    };
    let cli = env!("CARGO_BIN_EXE_burrow-cli");
    let out = run(cli, tls(&ca.pem, &["SET", "k", "v"])).await;
    assert!(out.status.success(), "{out:?}");
    let out = run(cli, tls(&ca.pem, &["--sni", "burrow.test", "GET", "k"])).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"v\"", "{out:?}");
    // Another CA, a name the certificate lacks, no TLS at all: refused.
    for args in [
        tls(&other.pem, &["GET", "k"]),
        tls(&ca.pem, &["--sni", "other.test", "GET", "k"]),
        vec!["--port".into(), port.clone(), "GET".into(), "k".into()],
    ] {
        let out = run(cli, args.clone()).await;
        assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("\"v\""), "{args:?} was served: {out:?}");
    }
    let out = run(cli, tls(&other.pem, &["GET", "k"])).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("TLS handshake failed"), "{out:?}");

    let bench = env!("CARGO_BIN_EXE_burrow-bench");
    let load = ["-t", "set,get", "-n", "2000", "-c", "4", "-P", "4", "--json", "-q", "--fail-on-error"];
    let out = run(bench, tls(&ca.pem, &load)).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(bench, tls(&other.pem, &load)).await;
    assert!(!out.status.success(), "the bench trusting another CA must fail: {out:?}");
    s.shutdown().await.unwrap();
}
