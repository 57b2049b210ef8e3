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
use common::certs::{Ca, ClusterTls, Leaf};
use common::cluster::{Cluster, Options};
use common::{info_field, info_u64, RawConn, TempDir};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
    assert_eq!(info_field(&info, "tls_enabled"), "1");
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
    // Raw on a pipe, as redis-cli.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v", "{out:?}");
    // Another CA, a name the certificate lacks, no TLS at all: refused.
    for args in [
        tls(&other.pem, &["GET", "k"]),
        tls(&ca.pem, &["--sni", "other.test", "GET", "k"]),
        vec!["--port".into(), port.clone(), "GET".into(), "k".into()],
    ] {
        let out = run(cli, args.clone()).await;
        assert!(!out.status.success(), "{args:?} succeeded: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).trim() != "v", "{args:?} was served: {out:?}");
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

fn cluster_opts(tls: &ClusterTls) -> Options {
    Options {
        replication: "quorum",
        quorum_timeout_ms: 300,
        election_timeout_ms: "400..800",
        tls: Some(tls.clone()),
        ..Options::default()
    }
}

fn seeds(c: &Cluster, ids: &[u64]) -> Vec<String> {
    ids.iter().map(|&id| c.nodes[(id - 1) as usize].addr.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_mutual_tls_elects_replicates_and_fails_over() {
    let certs = TempDir::new("tls-cluster-certs");
    let tls = ClusterTls::new(certs.path());
    // With a cluster secret too: member authentication runs inside TLS.
    let opts = Options { secret: Some(crate::member_auth::SECRET), ..cluster_opts(&tls) };
    let mut c = Cluster::start("tls-cluster", opts).await;
    let (first, term) = c.one_leader().await;
    assert_eq!(first, 1);
    let config = ClientConfig { tls: Some(tls.client()), ..ClientConfig::default() };
    let mut client = Client::connect_cluster_with(&seeds(&c, &[1, 2, 3]), config.clone()).await.unwrap();
    for i in 0..100 {
        client.set(format!("k{i}"), "before").await.unwrap();
    }
    assert_eq!(client.wait(2, 5000).await.unwrap(), 2);
    c.converged().await;
    // Both followers and both peer links came over TLS with a certificate.
    let info = c.leader().client().await.info("clients").await.unwrap();
    assert!(info_u64(&info, "tls_handshakes") >= 4, "{info}");
    assert_eq!(info_field(&c.leader().info().await, "member_auth"), "secret");

    c.node(1).kill_9();
    let mut survivors = Client::connect_cluster_with(&seeds(&c, &[2, 3]), config).await.unwrap();
    survivors.set("after", "kill").await.unwrap();
    let (second, new_term) = c.one_leader().await;
    assert_ne!(second, 1);
    assert!(new_term > term, "a new term: {new_term} after {term}");

    c.node(1).start().await;
    c.nodes[0]
        .wait_info("node 1 to follow the new leader over TLS", |i| {
            info_field(i, "role") == "follower"
                && info_u64(i, "leader_id") == second
                && info_field(i, "link_status") == "up"
        })
        .await;
    survivors.set("rejoined", "yes").await.unwrap();
    c.converged().await;
    let mut old = c.nodes[0].client().await;
    assert_eq!(old.get("after").await.unwrap().as_deref(), Some(&b"kill"[..]));
    assert_eq!(old.get("k99").await.unwrap().as_deref(), Some(&b"before"[..]));
}

/// Writes `bytes` on `stream` and reads until the server closes it.
async fn refused<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: &[u8]) -> Vec<u8> {
    // The server may close while this is written: that is the refusal.
    let _ = stream.write_all(bytes).await;
    let mut got = Vec::new();
    match tokio::time::timeout(common::DEADLINE, stream.read_to_end(&mut got)).await {
        Ok(_) => got,
        Err(_) => panic!("the server kept the connection open; it sent {got:02x?}"),
    }
}

async fn tcp(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    tokio::net::TcpStream::connect(addr).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_without_a_certificate_from_the_cluster_ca_is_refused() {
    let certs = TempDir::new("tls-stranger-certs");
    let tls = ClusterTls::new(certs.path());
    let other = Ca::new(certs.path(), "other");
    // The default (long) election timeout: with both followers stopped the
    // leader must keep leading (check-quorum would depose it) while it is
    // tested.
    let opts = Options { election_timeout_ms: Options::default().election_timeout_ms, ..cluster_opts(&tls) };
    let mut c = Cluster::start("tls-stranger", opts).await;
    c.node(2).stop().await;
    c.node(3).stop().await;
    let mut client = c.leader().client().await;
    let addr = c.leader().addr;
    let forged = crate::member_auth::handshake_and_ack(2);

    // TLS without a client certificate (the port takes it: clients need
    // none), claiming member 2: closed, nothing sent, logged once.
    let no_cert = TlsOptions::from_files(&tls.ca, None).unwrap();
    for _ in 0..3 {
        let got = refused(no_cert.handshake(tcp(addr).await).await.unwrap(), &forged).await;
        assert!(got.is_empty(), "a HANDSHAKE without a certificate was answered: {got:02x?}");
    }
    // A PEER_HELLO (the elections' link) as member 3 likewise.
    let info = c.leader().info().await;
    let cluster_id = u64::from_str_radix(&info_field(&info, "cluster_id"), 16).expect("hex cluster id");
    let got = refused(
        no_cert.handshake(tcp(addr).await).await.unwrap(),
        &common::fake_member::hello(cluster_id, 3),
    )
    .await;
    assert!(got.is_empty(), "a PEER_HELLO without a certificate was answered: {got:02x?}");
    // A certificate from another CA fails the handshake; plain TCP is no
    // TLS ClientHello. Neither gets a Burrow byte.
    let stranger = other.local("stranger");
    let wrong_ca = TlsOptions::from_files(&tls.ca, Some((&stranger.cert, &stranger.key))).unwrap();
    if let Ok(s) = wrong_ca.handshake(tcp(addr).await).await {
        let got = refused(s, &forged).await;
        assert!(got.is_empty(), "a HANDSHAKE with another CA's certificate was answered: {got:02x?}");
    }
    let got = refused(tcp(addr).await, &forged).await;
    assert!(got.first() != Some(&0xB7), "plain TCP got a Burrow frame: {got:02x?}");

    let info = c.leader().info().await;
    assert_eq!(info_u64(&info, "connected_followers"), 0, "{info}");
    let err = client.set("k", "v").await.unwrap_err();
    assert_eq!(err.status(), Some(burrow_proto::Status::NoQuorum), "{err}");
    assert_eq!(client.wait(1, 100).await.unwrap(), 0, "no forged ACK counts");
    let log = c.leader().stderr();
    // Once per claimed id: member 2's HANDSHAKEs, member 3's PEER_HELLO.
    assert_eq!(log.matches("without a verified TLS client certificate").count(), 2, "{log}");
    let clients = client.info("clients").await.unwrap();
    assert!(info_u64(&clients, "tls_handshake_failures") >= 2, "{clients}");

    // The real members, with their certificates, still get in.
    c.node(2).start().await;
    c.node(2).wait_synced().await;
    client.set("k", "v").await.unwrap();
}

#[tokio::test]
async fn the_python_example_connects_with_an_ssl_context() {
    let dir = TempDir::new("tls-python");
    let ca = Ca::new(dir.path(), "ca");
    let s = server(&ca.local("server"), |_| {}).await;
    let script = format!(
        "import ssl, sys\n\
         sys.path.insert(0, {dir:?})\n\
         import burrow_client as b\n\
         c = b.Client('127.0.0.1', {port}, ssl_context=ssl.create_default_context(cafile={ca:?}))\n\
         c.set(b'small', b'v')\n\
         big = b'x' * 300000\n\
         c.set(b'big', big)\n\
         assert c.get(b'big') == big and c.get(b'small') == b'v'\n\
         print('ok')\n",
        dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python"),
        port = s.addr.port(),
        ca = ca.pem.display().to_string(),
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").args(["-c", &script]).output().expect("python3 runs")
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_large_reply_to_a_slow_reader_arrives_whole() {
    // TLS buffers the end of a record it could not write at once: the
    // server must flush it, or a reader that fell behind waits for ever.
    let dir = TempDir::new("tls-slow-reader");
    let ca = Ca::new(dir.path(), "ca");
    let s = server(&ca.local("server"), |_| {}).await;
    let mut c = Client::connect_with(s.addr, tls_client(&ca, None)).await.unwrap();
    let big = vec![b'x'; 8 << 20];
    c.set("big", big.clone()).await.unwrap();
    let tls = TlsOptions::from_files(&ca.pem, None).unwrap();
    for round in 0..5 {
        let mut stream = tls.handshake(tcp(s.addr).await).await.unwrap();
        let get = burrow_proto::Request::Get { key: bytes::Bytes::from_static(b"big") };
        stream.write_all(&common::request_bytes(&get, 1)).await.unwrap();
        stream.flush().await.unwrap();
        // Let the server fill the socket buffers and block.
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Then read slowly, so that the server's last write finds the
        // socket full.
        let mut reply = vec![0u8; 16 + big.len()];
        let mut got = 0;
        while got < reply.len() {
            let end = reply.len().min(got + 32 * 1024);
            let n = tokio::time::timeout(common::DEADLINE, stream.read(&mut reply[got..end]))
                .await
                .unwrap_or_else(|_| panic!("round {round}: stuck at byte {got} of {}", reply.len()))
                .unwrap();
            assert_ne!(n, 0, "round {round}: closed at byte {got}");
            got += n;
            tokio::time::sleep(Duration::from_micros(300)).await;
        }
        assert!(reply[16..].iter().all(|&b| b == b'x'), "round {round}");
    }
    s.shutdown().await.unwrap();
}
