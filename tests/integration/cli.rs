//! The `burrow-cli` binary against an in-process server: one-shot commands,
//! exit codes, pipelined standard input, help, WAIT, and redirects from
//! (fake) followers to the leader.

use crate::common;

use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burrow_cli::COMMANDS;
use burrow_proto::{Reply, Request, SetCondition};
use burrow_server::ServerHandle;
use common::not_leader::NotLeader;

/// A server on its own runtime, so tests can block on child processes.
pub(crate) struct Server {
    pub(crate) port: u16,
    handle: Option<ServerHandle>,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    pub(crate) fn start() -> Server {
        Server::start_with(|_| {})
    }

    pub(crate) fn start_with(tweak: impl FnOnce(&mut burrow_server::Config)) -> Server {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let handle = runtime.block_on(common::start_with(tweak));
        Server { port: handle.addr.port(), handle: Some(handle), runtime }
    }

    /// Runs `burrow-cli --port <port> args...` with no input.
    fn cli<A: Into<OsString>>(&self, args: impl IntoIterator<Item = A>) -> Output {
        cli_at(self.port, args, None)
    }

    /// Runs `burrow-cli --port <port>` with `input` on standard input.
    fn pipe(&self, input: String) -> Output {
        cli_at(self.port, Vec::<OsString>::new(), Some(input))
    }

    /// A client of this server, on its runtime.
    pub(crate) fn runtime_client(&self) -> burrow_client::Client {
        self.block_on(burrow_client::Client::connect(("127.0.0.1", self.port))).expect("connect")
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// A fake follower on this server's runtime, naming `leader`.
    fn follower(&self, leader: &str) -> NotLeader {
        self.runtime.block_on(NotLeader::start(leader))
    }

    /// Two fake followers on this server's runtime naming each other.
    fn follower_loop(&self) -> (NotLeader, NotLeader) {
        self.runtime.block_on(async {
            let (la, lb) = (NotLeader::bind().await, NotLeader::bind().await);
            let (a, b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
            (NotLeader::serve(la, &b.to_string()), NotLeader::serve(lb, &a.to_string()))
        })
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown()).expect("server shuts down");
        }
    }
}

/// Runs `burrow-cli --port PORT --no-raw args...`: the output these tests
/// expect is redis-cli's formatted one (the raw default on a pipe is
/// tested in `cli_habits`).
fn cli_at<A: Into<OsString>>(port: u16, args: impl IntoIterator<Item = A>, input: Option<String>) -> Output {
    let port: [OsString; 3] = ["--port".into(), port.to_string().into(), "--no-raw".into()];
    cli_args(port.into_iter().chain(args.into_iter().map(Into::into)), input)
}

/// Runs `burrow-cli args...`, with `input` on standard input if given.
pub(crate) fn cli_args(args: impl IntoIterator<Item = OsString>, input: Option<String>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_burrow-cli"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("burrow-cli starts");
    let stdin = child.stdin.take().expect("piped stdin");
    // Written from another thread: the child's output could fill its pipe
    // while we are still writing its input.
    let writer = std::thread::spawn(move || {
        let mut stdin = stdin;
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).expect("write stdin");
        }
    });
    let out = child.wait_with_output().expect("burrow-cli runs");
    writer.join().expect("stdin writer");
    out
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// Asserts the exit status and the exact standard output.
fn expect(o: Output, success: bool, want: &str) {
    assert_eq!(stdout(&o), want, "stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.success(), success, "status {:?} for output {want:?}", o.status);
}

#[test]
fn one_shot_commands_print_like_redis_cli() {
    let s = Server::start();
    expect(s.cli(["SET", "k", "v"]), true, "OK\n");
    expect(s.cli(["get", "k"]), true, "\"v\"\n");
    expect(s.cli(["GET", "missing"]), true, "(nil)\n");
    expect(s.cli(["INCR", "n"]), true, "(integer) 1\n");
    expect(s.cli(["INCRBY", "n", "-5"]), true, "(integer) -4\n");
    expect(s.cli(["RPUSH", "q", "a", "b c", "d"]), true, "(integer) 3\n");
    expect(s.cli(["LRANGE", "q", "0", "-1"]), true, "1) \"a\"\n2) \"b c\"\n3) \"d\"\n");
    expect(s.cli(["LRANGE", "nothing", "0", "-1"]), true, "(empty array)\n");
    expect(s.cli(["TYPE", "q"]), true, "list\n");
    expect(s.cli(["PING"]), true, "PONG\n");
    expect(s.cli(["DEL", "k", "n", "missing"]), true, "(integer) 2\n");
    expect(s.cli(["SET", "t", "v", "EX", "100", "NX"]), true, "OK\n");
    expect(s.cli(["SET", "t", "w", "NX"]), true, "(nil)\n");
    // Seconds left, rounded as Redis does: 100 unless more than half a
    // second passed since the SET, which a busy machine may well take.
    let ttl = s.cli(["TTL", "t"]);
    let out = stdout(&ttl);
    let left: u64 = out
        .strip_prefix("(integer) ")
        .and_then(|n| n.strip_suffix('\n')?.parse().ok())
        .unwrap_or_else(|| panic!("TTL printed {out:?}"));
    assert!(ttl.status.success() && (90..=100).contains(&left), "TTL printed {out:?}");
    // Arguments from the shell are taken as bytes, without quote processing.
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let value = OsString::from_vec(vec![0x01, b'"', 0xff]);
        expect(s.cli([OsString::from("SET"), "bin".into(), value]), true, "OK\n");
        expect(s.cli(["GET", "bin"]), true, "\"\\x01\\\"\\xff\"\n");
    }
}

#[test]
fn one_shot_failures_exit_non_zero() {
    let s = Server::start();
    expect(s.cli(["SET", "k", "v"]), true, "OK\n");
    expect(
        s.cli(["LPUSH", "k", "x"]),
        false,
        "(error) WRONGTYPE operation against a key holding the wrong kind of value\n",
    );
    expect(s.cli(["INCR", "k"]), false, "(error) NOT_INTEGER value is not an integer or out of range\n");
    // Refused locally: nothing is sent, so "k" keeps its value.
    expect(s.cli(["SET", "k"]), false, "(error) ERR wrong number of arguments for 'SET'; usage: SET key value [EX seconds|PX milliseconds] [NX|XX] [KEEPTTL]\n");
    expect(
        s.cli(["SET", "k", "w", "EX", "soon"]),
        false,
        "(error) ERR value 'soon' is not an integer or out of range\n",
    );
    expect(
        s.cli(["NOPE"]),
        false,
        "(error) ERR unknown command 'NOPE', type 'help' for the list of commands\n",
    );
    expect(s.cli(["GET", "k"]), true, "\"v\"\n");
}

#[test]
fn connection_failure_is_reported_on_stderr() {
    let (_held, addr) = common::refusing_addr();
    let port = addr.port();
    let o = cli_at(port, ["GET", "k"], None);
    assert!(!o.status.success());
    assert_eq!(stdout(&o), "");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end(),
        format!("Could not connect to Burrow at 127.0.0.1:{port}: Connection refused")
    );
}

#[test]
fn stdin_runs_one_command_per_line_in_order() {
    let s = Server::start();
    // Crosses the 1000-request batch size, with a failure, a refused line,
    // comments and blank lines in the middle.
    let mut input = String::from("SET str abc\n");
    let mut want = vec!["OK".to_string()];
    for i in 0..1200 {
        match i {
            301 => {
                input.push_str("INCR str\n");
                want.push("(error) NOT_INTEGER value is not an integer or out of range".to_string());
            }
            500 => {
                input.push_str("\n# a comment\n   \nGET\n");
                want.push("(error) ERR wrong number of arguments for 'GET'; usage: GET key".to_string());
            }
            700 => {
                input.push_str("RPUSH list \"a b\" '\\x00'\r\nLRANGE list 0 -1\n");
                want.push("(integer) 2".to_string());
                want.push(r#""a b" "\\x00""#.to_string());
            }
            i if i % 3 == 0 => {
                input.push_str(&format!("SET k{i} \"v {i}\"\n"));
                want.push("OK".to_string());
            }
            i if i % 3 == 1 => {
                input.push_str(&format!("GET k{}\n", i - 1));
                want.push(format!("\"v {}\"", i - 1));
            }
            i => {
                input.push_str(&format!("DEL k{} nope\n", i - 2));
                want.push("(integer) 1".to_string());
            }
        }
    }
    let o = s.pipe(input);
    let out = stdout(&o);
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(got.len(), want.len(), "one line per command");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "output line {i}");
    }
    assert_eq!(o.status.code(), Some(1), "a failed command makes the exit status non-zero");
}

#[test]
fn stdin_stops_at_quit_and_succeeds_when_all_commands_do() {
    let s = Server::start();
    let o = s.pipe("SET a 1\nINCR a\nDBSIZE\nSCAN 0 MATCH a COUNT 1000\nquit\nGET a\n".to_string());
    expect(o, true, "OK\n(integer) 2\n(integer) 1\n\"0\" \"a\"\n");
}

#[test]
fn help_lists_and_explains_commands_without_a_server() {
    let (_held, addr) = common::refusing_addr();
    let port = addr.port();
    let o = cli_at(port, ["help"], None);
    assert!(o.status.success(), "{o:?}");
    let all = stdout(&o);
    for c in COMMANDS {
        assert!(
            all.contains(&format!("  {}", c.name)) && all.contains(c.summary),
            "{} missing:\n{all}",
            c.name
        );
    }
    let o = cli_at(port, ["HELP", "lrange"], None);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("LRANGE key start stop"), "{}", stdout(&o));
    expect(
        cli_at(port, ["help", "nope"], None),
        false,
        "(error) ERR no help for 'nope', type 'help' for the list of commands\n",
    );
}

#[test]
fn wait_counts_no_followers_on_a_standalone_server() {
    let s = Server::start();
    expect(s.cli(["WAIT", "0", "0"]), true, "(integer) 0\n");
    let started = Instant::now();
    expect(s.cli(["wait", "1", "100"]), true, "(integer) 0\n");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(100), "WAIT 1 100 answered after {took:?}");
    assert!(took < common::DEADLINE, "WAIT 1 100 answered after {took:?}");
    // In a pipe it waits for the writes made before it on the same connection.
    let o = s.pipe("SET k v\nWAIT 0 0\nWAIT 1 50\nGET k\n".to_string());
    expect(o, true, "OK\n(integer) 0\n(integer) 0\n\"v\"\n");
    expect(
        s.cli(["WAIT", "1"]),
        false,
        "(error) ERR wrong number of arguments for 'WAIT'; usage: WAIT numreplicas timeout\n",
    );
    expect(s.cli(["WAIT", "1", "-5"]), false, "(error) ERR value '-5' is not an integer or out of range\n");
}

#[test]
fn a_command_sent_to_a_follower_is_redirected_to_the_leader() {
    let s = Server::start();
    let follower = s.follower(&s.addr());
    let o = cli_at(follower.addr.port(), ["SET", "k", "v"], None);
    expect_redirected(&o, &[&s.addr()]);
    expect(o, true, "OK\n");
    expect(s.cli(["GET", "k"]), true, "\"v\"\n");
    assert_eq!(follower.requests(), 1);
}

#[test]
fn a_piped_batch_is_redirected_once_and_stays_in_order() {
    let s = Server::start();
    let follower = s.follower(&s.addr());
    let o = cli_at(
        follower.addr.port(),
        Vec::<OsString>::new(),
        Some("SET a 1\nINCR a\nGET a\nLPUSH a x\nDBSIZE\n".into()),
    );
    expect_redirected(&o, &[&s.addr()]);
    expect(
        o,
        false,
        "OK\n(integer) 2\n\"2\"\n(error) WRONGTYPE operation against a key holding the wrong kind of value\n(integer) 1\n",
    );
    assert_eq!(follower.requests(), 5, "one pipeline to the follower, re-sent whole to the leader");
}

#[test]
fn a_redirect_loop_ends_with_the_not_leader_error() {
    let s = Server::start();
    let (a, b) = s.follower_loop();
    let (a_addr, b_addr) = (a.addr.to_string(), b.addr.to_string());
    let o = cli_at(a.addr.port(), ["SET", "k", "v"], None);
    expect_redirected(&o, &[&b_addr, &a_addr, &b_addr]);
    expect(o, false, &format!("(error) NOT_LEADER {a_addr}\n"));
    assert_eq!(a.requests() + b.requests(), 4);
    expect(s.cli(["DBSIZE"]), true, "(integer) 0\n");
}

#[test]
fn a_follower_without_a_leader_prints_a_bare_not_leader() {
    let s = Server::start();
    let follower = s.follower("");
    let o = cli_at(follower.addr.port(), ["INCR", "n"], None);
    assert_eq!(stderr(&o), "");
    expect(o, false, "(error) NOT_LEADER\n");
}

/// The REPL's prompt is `Session::addr`, which is also where it reconnects:
/// after a redirect it names the leader.
#[test]
fn the_session_follows_the_leader() {
    let s = Server::start();
    let follower = s.follower(&s.addr());
    let mut session = burrow_cli::Session::new("127.0.0.1", follower.addr.port()).unwrap();
    assert_eq!(session.addr(), follower.addr.to_string());
    let set = [Request::Set {
        key: "k".into(),
        value: "v".into(),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    }];
    assert_eq!(session.exchange(&set).unwrap(), [Reply::Ok]);
    assert_eq!(session.addr(), s.addr());
    drop(follower);
    // The follower is gone; the session carries on with the leader.
    assert_eq!(session.exchange(&set).unwrap(), [Reply::Ok]);
    assert_eq!(session.addr(), s.addr());
}

/// Asserts stderr is exactly one redirect line per hop.
fn expect_redirected(o: &Output, hops: &[&str]) {
    let want: String = hops.iter().map(|h| format!("-> redirected to leader at {h}\n")).collect();
    assert_eq!(stderr(o), want, "stdout: {}", stdout(o));
}

/// `--hosts`: a node that knows no leader is passed over for the next one,
/// in one line; a follower's redirect is followed as with one address.
#[test]
fn with_hosts_the_cli_finds_the_leader() {
    let s = Server::start();
    let no_leader = s.runtime.block_on(NotLeader::no_leader());
    let hosts = format!("{},{}", no_leader.addr, s.addr());
    let o = cli_args(["--hosts".into(), hosts.into(), "SET".into(), "k".into(), "v".into()], None);
    assert_eq!(stderr(&o), format!("-> reconnected to {}\n", s.addr()));
    expect(o, true, "OK\n");

    let follower = s.follower(&s.addr());
    let o = cli_args(["--hosts".into(), follower.addr.to_string().into()], Some("INCR n\nGET n\n".into()));
    expect_redirected(&o, &[&s.addr()]);
    expect(o, true, "(integer) 1\n\"1\"\n");
}

/// A session on two nodes whose first one goes away (a leader change, as
/// the client sees it): the next command goes to the other one.
#[test]
fn a_cluster_session_moves_when_its_node_goes_away() {
    let (a, b) = (Server::start(), Server::start());
    let (pa, pb) = b.runtime.block_on(async {
        let a: std::net::SocketAddr = a.addr().parse().unwrap();
        let b: std::net::SocketAddr = b.addr().parse().unwrap();
        (common::proxy::Proxy::start(a).await, common::proxy::Proxy::start(b).await)
    });
    let mut session = burrow_cli::Session::cluster(&[pa.addr.to_string(), pb.addr.to_string()]).unwrap();
    let incr = [Request::Incr { key: "n".into() }];
    assert_eq!(session.exchange(&incr).unwrap(), [Reply::Int(1)]);
    assert_eq!(session.addr(), pa.addr.to_string());
    pa.refuse(true);
    // Once A has lost its client, the proxy has closed both sides: the
    // session sees its connection closed before it writes.
    let a_addr: std::net::SocketAddr = a.addr().parse().unwrap();
    a.runtime.block_on(common::wait_for("the proxy to close its link to A", || async move {
        let info = burrow_client::Client::connect(a_addr).await.unwrap().info("clients").await.unwrap();
        common::info_u64(&info, "connected_clients") == 1
    }));
    assert_eq!(session.exchange(&incr).unwrap(), [Reply::Int(1)], "B's own counter");
    assert_eq!(session.addr(), pb.addr.to_string());
}

/// CLUSTER against a real 3-node cluster (node 1 leads): a table with one
/// row per member as the node asked sees it, and one line when piped.
#[test]
fn cluster_prints_each_member_as_the_node_asked_sees_it() {
    use common::cluster::{Cluster, Options};
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let c = runtime.block_on(async {
        let c = Cluster::start("cli-cluster", Options::default()).await;
        c.elected(1).await;
        for n in &c.nodes[1..] {
            n.wait_synced().await;
        }
        c
    });
    let addr = |id: usize| c.nodes[id - 1].addr.to_string();
    // Columns: id, addr, role, term, link, match, lag, last contact.
    let rows = |o: &Output| -> Vec<Vec<String>> {
        let out = stdout(o);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 6, "a line about the node, a header, 3 rows, a legend:\n{out}");
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["id", "addr", "role", "term", "link", "match", "lag", "last", "contact"],
            "{out}"
        );
        assert_eq!(lines[5], "(* this node)");
        lines[2..5].iter().map(|l| l.split_whitespace().map(str::to_string).collect()).collect()
    };

    let o = cli_at(c.nodes[0].addr.port(), ["CLUSTER"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("node 1 · leader · term "), "{}", stdout(&o));
    let r = rows(&o);
    assert_eq!(r[0][..3], ["1*".to_string(), addr(1), "leader".into()]);
    for (row, id) in r[1..].iter().zip([2, 3]) {
        assert_eq!(row[..3], [id.to_string(), addr(id), "follower".into()], "{}", stdout(&o));
        assert!(row[7].parse::<u64>().is_ok() && row[8] == "ms", "a last contact: {row:?}");
    }

    let o = cli_at(c.nodes[1].addr.port(), ["cluster"], None);
    assert!(stdout(&o).starts_with("node 2 · follower · term "), "{}", stdout(&o));
    let r = rows(&o);
    assert_eq!(r[0][..5], ["1".to_string(), addr(1), "leader".into(), r[0][3].clone(), "up".into()]);
    assert_eq!(r[1][..3], ["2*".to_string(), addr(2), "follower".into()]);
    assert_eq!(
        r[2][1..],
        [addr(3), "unknown".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()]
    );

    let o = cli_at(c.nodes[2].addr.port(), Vec::<OsString>::new(), Some("CLUSTER\n".into()));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.starts_with("node=3 role=follower term="), "{out}");
    assert!(out.contains(&format!("member=1 addr={} role=leader", addr(1))), "{out}");
    runtime.block_on(async move { drop(c) });
}
