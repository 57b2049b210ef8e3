//! End-to-end tests of the `burrow-bench` binary: against a real in-process
//! server (counts must match what the server executed), against a fake RESP
//! server, and against broken servers (errors must be counted, never hidden).

use crate::common;

use std::net::SocketAddr;
use std::process::{Command, Output};

use burrow_client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Runs the binary off the async threads (the server under test shares them).
async fn bench(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_burrow-bench")).args(&args).output().expect("burrow-bench runs")
    })
    .await
    .unwrap()
}

fn args(addr: SocketAddr, rest: &str) -> Vec<String> {
    let mut a = vec!["--host".to_string(), addr.ip().to_string(), "-p".to_string(), addr.port().to_string()];
    a.extend(rest.split_whitespace().map(str::to_string));
    a
}

/// One test's object from `--json` output: `field("requests")` etc.
struct Obj(String);

impl Obj {
    fn raw(&self, key: &str) -> &str {
        let pat = format!("\"{key}\":");
        let at = self.0.find(&pat).unwrap_or_else(|| panic!("no {key} in {}", self.0)) + pat.len();
        let rest = &self.0[at..];
        if let Some(s) = rest.strip_prefix('"') {
            // The closing quote is the first one not escaped.
            let end = s.char_indices().find(|&(i, c)| c == '"' && !s[..i].ends_with('\\')).unwrap().0;
            &s[..end]
        } else {
            &rest[..rest.find([',', '}']).unwrap_or(rest.len())]
        }
    }

    fn num(&self, key: &str) -> f64 {
        self.raw(key).parse().unwrap_or_else(|_| panic!("{key} is not a number in {}", self.0))
    }
}

/// Splits `--json` output into its objects (values here hold no braces).
fn parse_json(out: &Output) -> Vec<Obj> {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "burrow-bench failed: {stderr}");
    let body =
        text.trim().strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or_else(|| panic!("{text}"));
    body.split("},{").map(|o| Obj(o.trim_matches(['{', '}']).to_string())).collect()
}

fn assert_clean(objs: &[Obj], tests: &[&str], n: u64) {
    assert_eq!(objs.len(), tests.len());
    for (o, t) in objs.iter().zip(tests) {
        assert_eq!(o.raw("test"), *t);
        assert_eq!(o.num("requests"), n as f64, "{t}");
        assert_eq!(o.num("errors"), 0.0, "{t}: {}", o.0);
        assert_eq!(o.raw("first_error"), "null", "{t}");
        assert!(o.num("ops_per_sec") > 0.0, "{t}");
        assert!(o.num("min_ms") <= o.num("p50_ms"), "{t}");
        assert!(o.num("p50_ms") <= o.num("p99_ms") && o.num("p99_ms") <= o.num("p999_ms"), "{t}");
        assert!(o.num("p999_ms") <= o.num("max_ms") && o.num("max_ms") > 0.0, "{t}");
    }
}

/// How many times the server executed `cmd` (INFO lists only commands
/// called at least once).
async fn calls(c: &mut Client, cmd: &str) -> u64 {
    let info = c.info("stats").await.unwrap();
    common::cmd_stats(&info, cmd).map_or(0, |(calls, _)| calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_test_reports_exactly_n_requests_the_server_executed() {
    let server = common::start().await;
    let tests = ["ping", "set", "get", "incr", "lpush", "lpop"];
    let out =
        bench(args(server.addr, "-n 2000 -c 4 -P 3 -d 10 -r 500 -t ping,set,get,incr,lpush,lpop --json"))
            .await;
    let objs = parse_json(&out);
    assert_clean(&objs, &tests, 2000);
    for o in &objs {
        assert_eq!((o.num("clients"), o.num("pipeline"), o.num("data_size")), (4.0, 3.0, 10.0));
        assert_eq!(o.raw("protocol"), "burrow");
    }
    let mut c = Client::connect(server.addr).await.unwrap();
    for t in tests {
        assert_eq!(calls(&mut c, t).await, 2000, "{t}");
    }
    // Pushed 2000, popped 2000; values are -d bytes.
    assert_eq!(c.llen("mylist").await.unwrap(), 0);
    assert_eq!(c.get("key:000000000000").await.unwrap().map(|v| v.len()).unwrap_or(10), 10);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_writes_each_key_once_and_mixed_follows_the_ratio() {
    let server = common::start().await;
    let out =
        bench(args(server.addr, "-t set --sequential -n 1000 -r 1000 -c 3 -P 7 --threads 2 --json")).await;
    assert_clean(&parse_json(&out), &["set"], 1000);
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 1000);
    assert!(c.exists("key:000000000999").await.unwrap());

    let out = bench(args(server.addr, "-t mixed --ratio 1:3 -n 4000 -c 2 --json")).await;
    assert_clean(&parse_json(&out), &["mixed"], 4000);
    let (sets, gets) = (calls(&mut c, "set").await - 1000, calls(&mut c, "get").await);
    assert_eq!(sets + gets, 4000);
    assert!((700..1300).contains(&sets), "{sets} sets of 4000 at 1:3");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_mode_and_csv_and_human_output() {
    let server = common::start().await;
    let out = bench(args(server.addr, "-t get --duration 0.2 -c 2 --csv")).await;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("test,protocol,clients,pipeline"), "{text}");
    let cols: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(&cols[..2], &["get", "burrow"]);
    assert!(cols[6].parse::<u64>().unwrap() > 0, "requests in {text}");
    assert_eq!(cols[7], "0", "errors in {text}");
    let secs: f64 = cols[8].parse().unwrap();
    assert!((0.2..5.0).contains(&secs), "{secs}");

    let out = bench(args(server.addr, "-t ping -n 100 -c 1")).await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("====== PING (burrow) ======") && text.contains("errors: 0"), "{text}");
    // Not a terminal: no progress line on stderr.
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    server.shutdown().await.unwrap();
}

/// Reads one RESP command array (`*N` of `$len` bulks) off the front of `buf`.
fn resp_command(buf: &[u8]) -> Option<(usize, Vec<Vec<u8>>)> {
    fn line(buf: &[u8], at: usize) -> Option<(usize, usize)> {
        let end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        Some((std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?, end + 2))
    }
    let (n, mut pos) = line(buf, 0)?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, start) = line(buf, pos)?;
        if buf.len() < start + len + 2 {
            return None;
        }
        args.push(buf[start..start + len].to_vec());
        pos = start + len + 2;
    }
    Some((pos, args))
}

/// A fake Redis that knows PING, SET and GET (always a miss).
async fn fake_redis() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let mut out = Vec::new();
                    while let Some((len, cmd)) = resp_command(&buf) {
                        out.extend_from_slice(match cmd[0].as_slice() {
                            b"PING" => b"+PONG\r\n",
                            b"SET" if cmd.len() == 3 && cmd[1].len() == 16 => b"+OK\r\n",
                            b"GET" => b"$-1\r\n",
                            _ => b"-ERR unknown\r\n",
                        });
                        buf.drain(..len);
                    }
                    if !out.is_empty() && s.write_all(&out).await.is_err() {
                        return;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp_protocol_speaks_redis() {
    let addr = fake_redis().await;
    let out = bench(args(addr, "--protocol resp -t ping,set,get -n 1500 -c 3 -P 4 --json")).await;
    let objs = parse_json(&out);
    assert_clean(&objs, &["ping", "set", "get"], 1500);
    assert_eq!(objs[0].raw("protocol"), "resp");
    // INCR is an error on this fake: every request must be counted as one.
    let out = bench(args(addr, "--protocol resp -t incr -n 50 -c 2 --json")).await;
    let o = &parse_json(&out)[0];
    assert_eq!((o.num("requests"), o.num("errors"), o.num("ops_per_sec")), (50.0, 50.0, 0.0));
    assert!(o.raw("first_error").contains("ERR unknown"), "{}", o.0);
}

/// A Burrow look-alike that frames every reply correctly but with `status`.
async fn wrong_burrow(status: u8) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let mut out = Vec::new();
                    while buf.len() >= 16 {
                        let len = 16
                            + buf[8] as usize
                            + u16::from_be_bytes([buf[10], buf[11]]) as usize
                            + u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
                        if buf.len() < len {
                            break;
                        }
                        let msg = b"WRONGTYPE not today";
                        out.extend_from_slice(&[0xB8, 1, buf[2], status]);
                        out.extend_from_slice(&buf[4..8]);
                        out.extend_from_slice(&[0, 5, 0, 0]);
                        out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                        out.extend_from_slice(msg);
                        buf.drain(..len);
                    }
                    if !out.is_empty() && s.write_all(&out).await.is_err() {
                        return;
                    }
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_replies_are_counted_not_hidden() {
    let addr = wrong_burrow(burrow_proto::Status::WrongType as u8).await;
    let out = bench(args(addr, "-t set,get -n 300 -c 3 -P 4 --json")).await;
    let objs = parse_json(&out);
    for o in &objs {
        assert_eq!(
            (o.num("requests"), o.num("errors"), o.num("ops_per_sec")),
            (300.0, 300.0, 0.0),
            "{}",
            o.0
        );
        assert!(o.raw("first_error").contains("WRONGTYPE"), "{}", o.0);
    }
    // --fail-on-error turns errors into a failing exit status; without it, 0.
    let out = bench(args(addr, "-t set -n 10 -c 1 --fail-on-error")).await;
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("errors: 10") && text.contains("first error:"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("10 request(s)"));
    // -q says so on its one line.
    let out = bench(args(addr, "-t set -n 10 -c 1 -q")).await;
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("SET: 0.00 requests per second") && text.ends_with(", 10 errors\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_replies_break_the_connection_and_count_every_lost_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(1..) = s.read(&mut chunk).await {
                    if s.write_all(b"+OK this is not burrow\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let out = bench(args(addr, "-t set -n 200 -c 2 -P 5 --json")).await;
    let o = &parse_json(&out)[0];
    assert_eq!((o.num("requests"), o.num("errors")), (200.0, 200.0), "{}", o.0);
    assert!(o.raw("first_error").contains("not a Burrow response"), "{}", o.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_server_is_a_failure() {
    let (_held, closed) = common::refusing_addr();
    let out = bench(args(closed, "-t ping -n 10 -c 2")).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot connect"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_fails_the_run_instead_of_hanging_it() {
    // Accepts and reads, never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                while let Ok(1..) = s.read(&mut chunk).await {}
            });
        }
    });
    let started = std::time::Instant::now();
    let out = bench(args(addr, "-t get -n 10 -c 2 --timeout 0.2")).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("made no progress"), "{stderr}");
    assert!(started.elapsed() < common::DEADLINE, "{:?}", started.elapsed());
}

/// `--hosts`: the load goes to the node that leads (a node without a
/// leader is passed over), and when that node goes away mid-run it moves
/// to the next: the run completes, its losses counted as errors of unknown
/// outcome. (Both servers are standalone, so each answers as a leader.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_hosts_a_run_survives_losing_its_node() {
    let (a, b) = (common::start().await, common::start().await);
    let (pa, pb) = (common::proxy::Proxy::start(a.addr).await, common::proxy::Proxy::start(b.addr).await);
    let no_leader = common::not_leader::NotLeader::no_leader().await;
    // A's replies trickle, so the run is surely still going when A goes.
    pa.throttle(Some(4096));
    let hosts = format!("{},{},{}", no_leader.addr, pa.addr, pb.addr);
    let run = tokio::spawn(bench(
        ["--hosts", &hosts, "-t", "incr", "-n", "3000", "-c", "2", "-P", "4", "--json", "-q"]
            .map(str::to_string)
            .to_vec(),
    ));
    let a_addr = a.addr;
    common::wait_for("load on A", || async move {
        calls(&mut Client::connect(a_addr).await.unwrap(), "incr").await >= 40
    })
    .await;
    pa.refuse(true);
    let out = run.await.unwrap();
    let o = &parse_json(&out)[0];
    assert_eq!(o.num("requests"), 3000.0, "{}", o.0);
    assert_eq!(o.num("errors"), o.num("unknown"), "every error is a request lost with A: {}", o.0);
    let on_a = calls(&mut Client::connect(a.addr).await.unwrap(), "incr").await;
    let on_b = calls(&mut Client::connect(b.addr).await.unwrap(), "incr").await;
    assert!(on_b > 0, "the load moved to B: {}", o.0);
    // Each request ran at most once: lost ones may or may not have.
    let answered = 3000 - o.num("errors") as u64;
    assert!(on_a + on_b >= answered && on_a + on_b <= 3000, "A {on_a} + B {on_b}, answered {answered}");
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

/// Issue 12: redis-benchmark habits. `-q` prints exactly one line per test,
/// `--precision` sets the latency decimals, `-h` is the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_one_line_per_test() {
    let server = common::start().await;
    let port = server.addr.port().to_string();
    let a: Vec<String> =
        ["-h", "127.0.0.1", "-p", &port, "-q", "-n", "1000", "-t", "set,get"].map(String::from).into();
    let out = bench(a).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, name) in lines.iter().zip(["SET", "GET"]) {
        let rest = line.strip_prefix(&format!("{name}: ")).unwrap_or_else(|| panic!("{text}"));
        let (rate, p50) = rest.split_once(" requests per second, p50=").unwrap_or_else(|| panic!("{text}"));
        assert!(rate.parse::<f64>().unwrap() > 0.0, "{text}");
        let ms = p50.strip_suffix(" msec").unwrap_or_else(|| panic!("{text}"));
        assert_eq!(ms.split_once('.').unwrap().1.len(), 3, "three decimals by default: {text}");
    }
    let out = bench(args(server.addr, "-q -n 100 -t ping --precision 5")).await;
    let text = String::from_utf8(out.stdout).unwrap();
    let ms = text.trim_end().rsplit_once('=').unwrap().1.strip_suffix(" msec").unwrap();
    assert_eq!(ms.split_once('.').unwrap().1.len(), 5, "{text}");
    let mut c = Client::connect(server.addr).await.unwrap();
    assert_eq!(calls(&mut c, "set").await, 1000);
    server.shutdown().await.unwrap();
}

/// `-k 0` opens a connection for every request, as redis-benchmark does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_zero_reconnects_for_every_request() {
    let server = common::start().await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let connections = |info: &str| common::info_u64(info, "total_connections_received");
    let before = connections(&c.info("stats").await.unwrap());
    let out = bench(args(server.addr, "-k 0 -n 200 -c 2 -t ping --json")).await;
    assert_clean(&parse_json(&out), &["ping"], 200);
    let opened = connections(&c.info("stats").await.unwrap()) - before;
    assert!(opened >= 200, "{opened} connections for 200 requests at -k 0");
    let before = connections(&c.info("stats").await.unwrap());
    let out = bench(args(server.addr, "-k 1 -n 200 -c 2 -t ping --json")).await;
    assert_clean(&parse_json(&out), &["ping"], 200);
    assert_eq!(connections(&c.info("stats").await.unwrap()) - before, 2, "-k 1 keeps its 2 connections");
    server.shutdown().await.unwrap();
}

/// `-l` runs the tests again until interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_runs_the_tests_again_until_killed() {
    use std::io::BufRead;
    let server = common::start().await;
    let a = args(server.addr, "-l -q -n 100 -c 1 -t ping,get");
    let lines = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_burrow-bench"))
            .args(&a)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("burrow-bench runs");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        // Five lines: two whole rounds and the start of a third.
        let lines: Vec<String> = out.lines().take(5).map(Result::unwrap).collect();
        child.kill().unwrap();
        child.wait().unwrap();
        lines
    })
    .await
    .unwrap();
    let names: Vec<&str> = lines.iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(names, ["PING", "GET", "PING", "GET", "PING"], "{lines:?}");
    server.shutdown().await.unwrap();
}
