//! Runs the self-check of `examples/python` (`python3 -m burrow_client`), a client written from
//! `protocol.md` alone, against an in-process server: if the document and
//! the server disagree, its self-check fails. Also through fake followers,
//! to check it follows NOT_LEADER redirects (and stops following a loop),
//! and as a cluster client (`--hosts`, `Client.cluster`): passing over a
//! node without a leader, and the idempotency rule (protocol.md §5.2).

use crate::common;

use common::not_leader::NotLeader;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

/// The package's directory, put on `PYTHONPATH`.
const PACKAGE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/python");
/// `python3 -m burrow_client` runs the self-check.
const SCRIPT: [&str; 2] = ["-m", "burrow_client"];

fn spawn_script(port: u16) -> Child {
    python(&[&SCRIPT[..], &["--host", "127.0.0.1", "--port", &port.to_string()]].concat())
}

/// `python3 args...`, with the package importable.
fn python(args: &[&str]) -> Child {
    Command::new("python3")
        .args(args)
        .env("PYTHONPATH", PACKAGE_DIR)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                panic!(
                    "python3 is not on PATH; this test runs {PACKAGE_DIR} and needs a Python 3 interpreter"
                )
            }
            _ => panic!("cannot start python3: {e}"),
        })
}

struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Waits for the script without blocking the runtime (the server runs on
/// it); a script that overruns the deadline is killed and fails the test.
async fn finish(mut child: Child) -> Finished {
    let status = common::wait_exit(&mut child).await;
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    Finished { code: status.code(), stdout, stderr }
}

#[tokio::test]
async fn python_client_self_check_passes_against_the_server() {
    let server = common::start().await;
    let out = finish(spawn_script(server.addr.port())).await;
    assert_eq!(out.code, Some(0), "self-check failed\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    for line in [
        "ok - PING with payload",
        "ok - SET NX with TTL",
        "ok - LRANGE 0 -1",
        "ok - SCAN finds every key under the prefix",
        "ok - unknown opcode 0x7F",
        "ok - connection usable after UNKNOWN_OPCODE",
        "ok - pipeline of 100 INCR",
        "ok - pipeline error in place",
        "ok - WAIT 0 0",
        "ok - WAIT 1 100 gives 0 after the timeout",
        "ok - cleanup",
    ] {
        assert!(out.stdout.lines().any(|l| l == line), "missing {line:?} in:\n{}", out.stdout);
    }
    assert_eq!(out.stdout.lines().last(), Some("all checks passed"), "{}", out.stdout);
    assert!(out.stderr.is_empty(), "unexpected stderr: {}", out.stderr);
    // The script cleans up after itself.
    let mut c = burrow_client::Client::connect(server.addr).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

/// A fake server that answers the first PING with "PANG": the self-check
/// must notice and exit non-zero, so a passing run above means something.
#[tokio::test]
async fn python_client_self_check_fails_on_a_wrong_reply() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let fake = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut header = [0u8; 16];
        conn.read_exact(&mut header).unwrap();
        assert_eq!(&header[..4], &[0xB7, 0x01, 0x01, 0x00], "expected a PING first");
        let mut reply = vec![0xB8, 0x01, 0x01, 0x00];
        reply.extend_from_slice(&header[4..8]);
        reply.extend_from_slice(&[0, 5, 0, 0, 0, 0, 0, 4]);
        reply.extend_from_slice(b"PANG");
        conn.write_all(&reply).unwrap();
    });
    let out = finish(spawn_script(port)).await;
    fake.join().unwrap();
    assert_eq!(out.code, Some(1), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("MISMATCH: PING: got 'PANG', want 'PONG'"), "{}", out.stderr);
}

/// Started on a follower, the script is redirected by its first request and
/// runs the whole self-check on the leader.
#[tokio::test]
async fn python_client_follows_a_redirect_to_the_leader() {
    let server = common::start().await;
    let follower = NotLeader::start(&server.addr.to_string()).await;
    let out = finish(spawn_script(follower.addr.port())).await;
    assert_eq!(out.code, Some(0), "self-check failed\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let line = format!("# redirected to leader at {}", server.addr);
    assert!(out.stdout.lines().any(|l| l == line), "missing {line:?} in:\n{}", out.stdout);
    assert_eq!(out.stdout.lines().last(), Some("all checks passed"), "{}", out.stdout);
    assert_eq!(follower.requests(), 1, "only the first request reached the follower");
    server.shutdown().await.unwrap();
}

/// Two followers naming each other: the script gives up after 3 redirects.
#[tokio::test]
async fn python_client_stops_following_a_redirect_loop() {
    let (la, lb) = (NotLeader::bind().await, NotLeader::bind().await);
    let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let a = NotLeader::serve(la, &b_addr.to_string());
    let b = NotLeader::serve(lb, &a_addr.to_string());
    let out = finish(spawn_script(a_addr.port())).await;
    assert_eq!(out.code, Some(1), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let want = format!("MISMATCH: unexpected BurrowError: NOT_LEADER: {a_addr}");
    assert!(out.stderr.contains(&want), "want {want:?} in:\n{}", out.stderr);
    assert_eq!(a.requests() + b.requests(), 4, "the first request and 3 redirects");
}

/// `--hosts`: the first node knows no leader; the script moves to the next
/// and runs the whole self-check there.
#[tokio::test]
async fn python_cluster_client_passes_over_a_node_without_a_leader() {
    let server = common::start().await;
    let no_leader = NotLeader::no_leader().await;
    let hosts = format!("{},{}", no_leader.addr, server.addr);
    let out = finish(python(&[&SCRIPT[..], &["--hosts", &hosts]].concat())).await;
    assert_eq!(out.code, Some(0), "self-check failed\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    let line = format!("# moved to {}", server.addr);
    assert!(out.stdout.lines().any(|l| l == line), "missing {line:?} in:\n{}", out.stdout);
    assert_eq!(out.stdout.lines().last(), Some("all checks passed"), "{}", out.stdout);
    assert_eq!(no_leader.requests(), 1);
    server.shutdown().await.unwrap();
}

/// An INCR whose reply is lost with its connection raises
/// OutcomeUnknownError and is not re-sent; the next call (a GET) goes over
/// a new connection.
#[tokio::test]
async fn python_cluster_client_reports_an_incr_of_unknown_outcome() {
    let server = common::start().await;
    let proxy = common::proxy::Proxy::start(server.addr).await;
    proxy.limit(Some(0));
    let code = format!(
        "from burrow_client import Client, OutcomeUnknownError\n\
         c = Client.cluster([('127.0.0.1', {port})], deadline=60)\n\
         try:\n    print('applied', c.incr('n'))\n\
         except OutcomeUnknownError as e:\n    print('outcome unknown', e.unknown)\n\
         print('n =', c.get('n'))\n",
        port = proxy.addr.port()
    );
    let child = python(&["-c", &code]);
    let addr = server.addr;
    let value =
        move || async move { burrow_client::Client::connect(addr).await.unwrap().get("n").await.unwrap() };
    common::wait_for("the INCR to run", || async { value().await.is_some() }).await;
    proxy.cut();
    proxy.limit(None);
    let out = finish(child).await;
    assert_eq!(out.code, Some(0), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "outcome unknown [0]\nn = b'1'\n", "stderr: {}", out.stderr);
    assert_eq!(value().await.as_deref(), Some(&b"1"[..]), "run once");
    server.shutdown().await.unwrap();
}

/// The Python client decodes protocol.md's `cluster-leader` example as the
/// Rust client does: each member, with `None` where the node does not know.
#[tokio::test]
async fn python_client_decodes_the_documented_cluster_view() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    let from = doc.find("<!-- cluster-example: cluster-leader -->").expect("the example");
    let block = doc[from..].split("```hex response").nth(1).unwrap();
    let block = &block[..block.find("```").unwrap()];
    let hex: String = block.lines().map(|l| l.split('#').next().unwrap_or("")).collect::<Vec<_>>().join(" ");
    let code = format!(
        "from burrow_client import Reply, HEADER\n\
         b = bytes.fromhex({hex:?})\n\
         h = HEADER.unpack(b[:16])\n\
         v = Reply(h[2], h[3], h[4], h[6], b'', b[16:]).result()\n\
         print(v['node_id'], v['role'], v['term'], v['leader_id'], v['commit_index'])\n\
         for m in v['members']:\n    print(m['id'], m['addr'], m['role'], m['link'], m['match_index'], m['lag'], m['last_contact_ms'])\n"
    );
    let out = finish(python(&["-c", &code])).await;
    assert_eq!(out.code, Some(0), "stderr:\n{}", out.stderr);
    assert_eq!(
        out.stdout,
        "1 leader 3 1 42\n\
         1 127.0.0.1:7441 leader None 42 0 None\n\
         2 127.0.0.1:7442 follower up 42 0 12\n\
         3 127.0.0.1:7443 follower down 40 2 1500\n"
    );
}

/// Against a server with a client secret: the script authenticates with
/// `--auth-file` (`Client.auth`, and `secret=` for a cluster client) and
/// passes; without it, its first command gets NOAUTH and it fails.
#[tokio::test]
async fn python_client_authenticates_with_an_auth_file() {
    let dir = common::TempDir::new("python-auth");
    let secret = dir.join("secret");
    std::fs::write(&secret, "a-python-client-secret-of-32-byte\n").unwrap();
    let path = secret.clone();
    let server = common::start_with(|c| c.auth_secret_file = Some(path)).await;
    let file = secret.display().to_string();
    let port = server.addr.port().to_string();
    let hosts = server.addr.to_string();
    for args in [
        [&SCRIPT[..], &["--host", "127.0.0.1", "--port", &port, "--auth-file", &file]].concat(),
        [&SCRIPT[..], &["--hosts", &hosts, "--auth-file", &file]].concat(),
    ] {
        let out = finish(python(&args)).await;
        assert_eq!(out.code, Some(0), "{args:?}\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
        assert_eq!(out.stdout.lines().last(), Some("all checks passed"), "{}", out.stdout);
    }
    let out = finish(spawn_script(server.addr.port())).await;
    assert_eq!(out.code, Some(1), "stdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("NOAUTH"), "{}", out.stderr);
    server.shutdown().await.unwrap();
}
