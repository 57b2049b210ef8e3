//! The binaries' edges, as a user meets them: a failure prints its cause
//! exactly once (no "No such file or directory (os error 2): No such file
//! or directory (os error 2)"), SIGHUP does not stop the server, and log
//! files hold no colour codes (or JSON lines with `--log-format json`).

use crate::common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Output};

use burrow_client::Client;
use common::{server_command, wait_exit, wait_for, wait_listening, ChildServer, TempDir};

/// Runs `burrow-server args` expecting it to exit by itself; its status and stderr.
async fn server_exit(dir: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let log = dir.join("stderr.log");
    let stderr = std::fs::File::create(&log).expect("create stderr log");
    let mut child = server_command(stderr).args(args).current_dir(dir).spawn().expect("spawn burrow-server");
    let status = wait_exit(&mut child).await;
    (status, std::fs::read_to_string(&log).unwrap_or_default())
}

/// Runs `burrow-bench args` (off the async threads); its output.
async fn bench(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_burrow-bench")).args(&args).output().expect("burrow-bench runs")
    })
    .await
    .expect("join")
}

/// Asserts `text` is one line holding `context` and `cause` once each.
fn assert_cause_once(text: &str, context: &str, cause: &str) {
    assert_eq!(text.lines().count(), 1, "one line:\n{text}");
    assert!(text.contains(context), "names the context {context:?}:\n{text}");
    assert_eq!(text.matches(cause).count(), 1, "the cause {cause:?} exactly once:\n{text}");
    assert_eq!(text.matches("(os error").count(), 1, "one OS error:\n{text}");
}

#[tokio::test]
async fn a_data_dir_that_cannot_be_created_is_reported_with_its_cause_once() {
    let tmp = TempDir::new("edge-datadir");
    let file = tmp.join("a-file");
    std::fs::write(&file, b"not a directory").expect("write file");
    let data_dir = file.join("data");
    let (status, log) =
        server_exit(tmp.path(), &["--port", "0", "--data-dir", data_dir.to_str().expect("utf-8")]).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert_cause_once(
        &log,
        &format!("burrow-server: server failed: data directory {}: ", data_dir.display()),
        "Not a directory",
    );
}

#[tokio::test]
async fn a_missing_config_file_is_reported_with_its_cause_once() {
    let tmp = TempDir::new("edge-config");
    let missing = tmp.join("missing.toml");
    let (status, log) = server_exit(tmp.path(), &["--config", missing.to_str().expect("utf-8")]).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert_cause_once(
        &log,
        &format!("burrow-server: invalid configuration: cannot read config file {}: ", missing.display()),
        "No such file or directory",
    );
}

#[tokio::test]
async fn a_taken_port_is_reported_with_its_cause_once() {
    let tmp = TempDir::new("edge-port");
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let (status, log) = server_exit(tmp.path(), &["--port", &port, "--persistence", "off"]).await;
    assert_eq!(status.code(), Some(1), "{log}");
    assert_cause_once(&log, &format!("cannot listen on 127.0.0.1:{port}: "), "in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bench_reports_an_unreachable_server_with_its_cause_once() {
    // Bind then drop: nothing listens on the port afterwards.
    let closed: SocketAddr = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
    let args = ["--host", "127.0.0.1", "-p", &closed.port().to_string(), "-t", "ping", "-n", "10"];
    let out = bench(args.iter().map(|s| s.to_string()).collect()).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_cause_once(
        &stderr,
        &format!("burrow-bench: benchmark against {closed} failed: cannot connect to {closed}: "),
        "Connection refused",
    );
}

#[tokio::test]
async fn sighup_is_logged_and_the_server_keeps_serving_then_stops_cleanly() {
    let dir = TempDir::new("edge-sighup");
    let server = ChildServer::start(dir.path(), &[]).await;
    let mut c = Client::connect(server.addr).await.expect("connect");
    c.set("k", "before").await.expect("SET");
    // Sent until logged: one that arrives before the server listens for it
    // (it registers as it starts serving) is ignored without a log line.
    wait_for("the SIGHUP log line", || {
        let hup = Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().expect("run kill");
        assert!(hup.success(), "kill -HUP failed: the server died?\n{}", server.stderr());
        let logged = server.stderr().contains("SIGHUP received; ignored");
        async move { logged }
    })
    .await;
    // Still serving, on the same connection and on a new one.
    c.set("k", "after").await.expect("SET after SIGHUP");
    let mut fresh = Client::connect(server.addr).await.expect("connect after SIGHUP");
    assert_eq!(fresh.get("k").await.expect("GET").as_deref(), Some(&b"after"[..]));
    let (status, log) = server.terminate().await;
    assert!(status.success(), "SIGTERM still exits 0: {status}\n{log}");
    assert!(log.contains("writing the shutdown snapshot"), "{log}");
}

/// Starts the binary with stderr to a file and without `NO_COLOR` (the
/// other tests' helper sets it), waits until it listens, and returns its log.
async fn log_of_a_server(args: &[&str]) -> String {
    let tmp = TempDir::new("edge-log");
    let log = tmp.join("stderr.log");
    let stderr = std::fs::File::create(&log).expect("create stderr log");
    let mut child = server_command(stderr)
        .env_remove("NO_COLOR")
        .args(["--port", "0", "--persistence", "off"])
        .args(args)
        .spawn()
        .expect("spawn burrow-server");
    wait_listening(&mut child, &log, 0).await;
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap_or_default()
}

#[tokio::test]
async fn a_log_file_has_no_colour_codes_and_json_is_one_object_per_line() {
    let text = log_of_a_server(&[]).await;
    assert!(text.contains("burrow listening"), "{text}");
    assert!(!text.contains('\x1b'), "no ANSI escapes when stderr is not a terminal:\n{text:?}");

    let json = log_of_a_server(&["--log-format", "json"]).await;
    let lines: Vec<&str> = json.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(line.starts_with('{') && line.ends_with('}'), "a JSON object per line: {line}");
        assert!(line.contains("\"level\":\"INFO\""), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("\"message\":\"burrow listening\"")), "{json}");
    assert!(!json.contains('\x1b'), "{json:?}");
}
