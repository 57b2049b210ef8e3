//! `--metrics-addr`: scraped over real HTTP, the text checked by an
//! independent parser (the Python `prometheus_client` package's; the test
//! says why it skips when that is missing) and its values against INFO and
//! DBSIZE; bad HTTP refused without hurting the data port; every metric
//! the example Grafana dashboard uses present in a scrape.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use burrow_client::Client;
use common::cluster::{Cluster, Options};
use common::{info_field, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `request` and reads the whole answer (the endpoint closes after one).
async fn http(addr: SocketAddr, request: &[u8]) -> (String, String, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect to the metrics port");
    s.write_all(request).await.expect("send request");
    let mut raw = Vec::new();
    tokio::time::timeout(DEADLINE, s.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read answer");
    let text = String::from_utf8(raw).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head: {text:?}"));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, head.to_string(), body.to_string())
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, head, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");
    body
}

/// The node's metrics address, as INFO reports it.
async fn metrics_addr(c: &mut Client) -> SocketAddr {
    let info = c.info("stats").await.expect("INFO stats");
    info_field(&info, "metrics_addr").parse().expect("INFO metrics_addr is an address")
}

/// Samples as the Python parser read them: `name{k="v",…}` (labels
/// sorted) → value. `None` (after printing why) when the parser is missing.
fn parse_with_python(text: &str) -> Option<BTreeMap<String, f64>> {
    const SCRIPT: &str = r#"
import sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError as e:
    print("MISSING", e)
    sys.exit(0)
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        print("S %s{%s} %r" % (s.name, labels, float(s.value)))
"#;
    let mut child = match std::process::Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("SKIPPED exposition check: python3 cannot run ({e})");
            return None;
        }
    };
    {
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("feed the parser");
    }
    let out = child.wait_with_output().expect("run the parser");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the exposition does not parse:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(why) = stdout.strip_prefix("MISSING") {
        println!(
            "SKIPPED exposition check: the Python prometheus_client package is missing ({})",
            why.trim()
        );
        return None;
    }
    let mut samples = BTreeMap::new();
    for line in stdout.lines() {
        let (sample, value) = line.strip_prefix("S ").and_then(|l| l.rsplit_once(' ')).expect("parser line");
        samples.insert(sample.to_string(), value.parse::<f64>().expect("parser value"));
    }
    assert!(!samples.is_empty(), "no samples in:\n{text}");
    Some(samples)
}

fn value(samples: &BTreeMap<String, f64>, sample: &str) -> f64 {
    *samples.get(sample).unwrap_or_else(|| {
        let names: Vec<&String> = samples.keys().collect();
        panic!("no sample {sample} among {names:#?}")
    })
}

#[tokio::test]
async fn a_scrape_parses_and_counts_what_ran() {
    let server = common::start_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let mut c = Client::connect(server.addr).await.expect("connect");
    let addr = metrics_addr(&mut c).await;
    let began = Instant::now();
    for i in 0..7 {
        c.set(format!("k{i}"), "v").await.unwrap();
    }
    assert!(c.expire("k0", Duration::from_secs(600)).await.unwrap());
    for _ in 0..5 {
        c.get("k1").await.unwrap();
    }
    c.get("missing").await.unwrap();
    assert!(c.incr("k2").await.is_err(), "not an integer");
    let dbsize = c.dbsize().await.unwrap();
    let elapsed = began.elapsed().as_secs_f64();

    let text = scrape(addr).await;
    let Some(s) = parse_with_python(&text) else { return };
    assert_eq!(value(&s, r#"burrow_commands_total{command="set",status="ok"}"#), 7.0);
    assert_eq!(value(&s, r#"burrow_commands_total{command="get",status="ok"}"#), 6.0);
    assert_eq!(value(&s, r#"burrow_commands_total{command="incr",status="not_integer"}"#), 1.0);
    assert_eq!(value(&s, r#"burrow_command_duration_seconds_count{command="get"}"#), 6.0);
    assert_eq!(value(&s, r#"burrow_command_duration_seconds_bucket{command="get",le="+Inf"}"#), 6.0);
    let get_seconds = value(&s, r#"burrow_command_duration_seconds_sum{command="get"}"#);
    assert!(
        get_seconds > 0.0 && get_seconds < elapsed,
        "6 GETs took {get_seconds} s of {elapsed} s (clock ticks converted)"
    );
    assert_eq!(value(&s, "burrow_keys{}"), dbsize as f64, "keys gauge = DBSIZE");
    assert_eq!(value(&s, "burrow_expiring_keys{}"), 1.0);
    assert_eq!(value(&s, "burrow_connections{}"), 1.0);
    assert!(value(&s, "burrow_connections_accepted_total{}") >= 1.0);
    assert_eq!(value(&s, r#"burrow_replication_role{role="standalone"}"#), 1.0);
    assert_eq!(value(&s, r#"burrow_replication_role{role="leader"}"#), 0.0);
    assert!(value(&s, "burrow_memory_used_bytes{}") > 0.0);
    assert!(value(&s, "burrow_memory_rss_bytes{}") > 0.0);

    // INFO shows the same histograms: calls, usec_per_call, percentiles.
    let info = c.info("stats").await.unwrap();
    let get = info_field(&info, "cmd_get");
    for field in ["calls=6,", "errors=0,", "usec=", "usec_per_call=", "p50_usec=", "p99_usec=", "p999_usec="]
    {
        assert!(get.contains(field), "cmd_get:{get} lacks {field}");
    }
    let clock = info_field(&info, "command_clock");
    assert!(["tsc", "monotonic"].contains(&clock.as_str()), "command_clock:{clock}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_http_is_refused_and_the_data_port_does_not_notice() {
    let server = common::start_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let mut c = Client::connect(server.addr).await.expect("connect");
    let addr = metrics_addr(&mut c).await;

    // Slow clients first: they hold scraper slots while the rest runs.
    let mut slow = Vec::new();
    for _ in 0..12 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /metr").await.expect("partial request");
        slow.push(s);
    }
    let started = Instant::now();
    for i in 0..50 {
        c.set(format!("k{i}"), "v").await.expect("the data port serves during the slowloris");
    }
    assert!(started.elapsed() < DEADLINE, "data port slowed down");

    let cases: [(&[u8], &str); 5] = [
        (b"\x00\x01garbage\xff\r\n\r\n", "400 Bad Request"),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "405 Method Not Allowed"),
        (b"GET /other HTTP/1.1\r\n\r\n", "404 Not Found"),
        (b"GET /metrics HTTP/9\r\n\r\n", "400 Bad Request"),
        (&[b'A'; 20 * 1024], "431 Request Header Fields Too Large"),
    ];
    for (request, want) in cases {
        answered(addr, request, want).await;
    }
    // The slow ones are told 408 and closed.
    for mut s in slow {
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut raw))
            .await
            .expect("closed within the deadline");
        let text = String::from_utf8_lossy(&raw);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
    assert_eq!(c.ping("").await.unwrap().len(), 4, "PONG");
    let text = scrape(addr).await;
    assert!(text.contains(r#"burrow_commands_total{command="set",status="ok"} 50"#), "{text}");
    server.shutdown().await.unwrap();
}

/// Sends `request` until the answer's status line is `HTTP/1.1 {want}`:
/// while slow clients hold every scraper slot, connections are closed
/// unanswered.
async fn answered(addr: SocketAddr, request: &[u8], want: &str) {
    let deadline = Instant::now() + DEADLINE;
    let want = format!("HTTP/1.1 {want}");
    loop {
        let mut s = TcpStream::connect(addr).await.expect("connect to the metrics port");
        // An over-size request may be answered (and closed) before all of it is sent.
        let _ = s.write_all(request).await;
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw);
        let line = text.lines().next().unwrap_or_default();
        if line == want {
            return;
        }
        assert!(line.is_empty(), "wanted {want}, got {text:?}");
        assert!(Instant::now() < deadline, "no answer {want} within {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Metric names (`burrow_…`) the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana-dashboard.json");
    let text = std::fs::read_to_string(path).expect("read the dashboard");
    let mut names = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("burrow_") {
        let tail = &rest[i..];
        let end = tail.find(|ch: char| !(ch.is_ascii_lowercase() || ch == '_')).unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    assert!(names.len() >= 10, "the dashboard uses too few metrics: {names:?}");
    names
}

#[tokio::test]
async fn a_leader_shows_follower_lag_and_every_dashboard_metric_exists() {
    let opts =
        Options { nodes: 2, args: vec!["--metrics-addr".into(), "127.0.0.1:0".into()], ..Options::default() };
    let mut cluster = Cluster::start("metrics", opts).await;
    let mut c = cluster.leader().client().await;
    for i in 0..20 {
        c.set(format!("k{i}"), "v").await.unwrap();
    }
    c.get("k1").await.unwrap();
    // The commit index follows the follower's acks: wait for them rather
    // than race them on a loaded machine.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let info = c.info("replication").await.unwrap();
        if info_field(&info, "commit_index").parse::<u64>().is_ok_and(|n| n >= 20) {
            break;
        }
        assert!(Instant::now() < deadline, "commit index below 20 after {DEADLINE:?}: {info}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let addr = metrics_addr(&mut c).await;
    let text = scrape(addr).await;
    let Some(s) = parse_with_python(&text) else {
        cluster.node(1).stop().await;
        return;
    };
    assert_eq!(value(&s, r#"burrow_replication_role{role="leader"}"#), 1.0);
    let lag = value(&s, r#"burrow_follower_lag_records{follower="2"}"#);
    assert!(lag >= 0.0);
    assert!(value(&s, r#"burrow_follower_lag_seconds{follower="2"}"#) >= 0.0);
    assert!(value(&s, "burrow_term{}") >= 1.0);
    assert!(value(&s, "burrow_commit_index{}") >= 20.0);
    assert!(value(&s, "burrow_elections_won_total{}") >= 1.0);
    assert!(value(&s, "burrow_wal_written_bytes_total{}") > 0.0);
    assert!(
        value(&s, r#"burrow_resyncs_total{kind="full"}"#)
            + value(&s, r#"burrow_resyncs_total{kind="partial"}"#)
            >= 0.0
    );

    let present: BTreeSet<&str> = s.keys().map(|k| k.split('{').next().unwrap()).collect();
    let missing: Vec<String> =
        dashboard_metrics().into_iter().filter(|m| !present.contains(m.as_str())).collect();
    assert!(missing.is_empty(), "the dashboard uses metrics a leader's scrape lacks: {missing:?}\n{text}");
    // A follower's scrape parses too and names its role.
    let mut f = cluster.node(2).client().await;
    let text = scrape(metrics_addr(&mut f).await).await;
    if let Some(s) = parse_with_python(&text) {
        assert_eq!(value(&s, r#"burrow_replication_role{role="follower"}"#), 1.0);
    }
    cluster.node(2).stop().await;
    cluster.node(1).stop().await;
}
