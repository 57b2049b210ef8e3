//! Issue 12, "CLI habits": `burrow-cli` used as people use redis-cli.
//! `-h`/`-p`, raw output on a pipe, `-r`/`-i`, flag errors, `--stat`,
//! `--latency(-history)`, "did you mean", INFO section completion, and an
//! over-limit value in pipe mode that no longer costs the commands after it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;

use super::cli::{cli_args, stdout, Server};
use crate::common::DEADLINE;
use burrow_proto::{Reply, Request, Status};

/// `burrow-cli -p PORT args...` with standard output a pipe (not a terminal).
fn cli(s: &Server, args: &[&str], input: Option<String>) -> Output {
    let port = s.port.to_string();
    let all = ["-p", port.as_str()].into_iter().chain(args.iter().copied()).map(Into::into);
    cli_args(all, input)
}

fn expect(o: &Output, success: bool, want: &str) {
    assert_eq!(stdout(o), want, "stderr: {}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.success(), success, "status {:?}", o.status);
}

#[test]
fn dash_h_is_the_host_and_help_is_only_long() {
    let s = Server::start();
    let port = s.port.to_string();
    let o = cli_args(["-h", "127.0.0.1", "-p", port.as_str(), "PING"].map(Into::into), None);
    expect(&o, true, "PONG\n");
    let o = cli_args(["--help"].map(Into::into), None);
    assert!(o.status.success());
    let help = stdout(&o);
    assert!(help.contains("-h, --host <HOST>") && help.contains("--help"), "{help}");
}

#[test]
fn output_is_raw_on_a_pipe_unless_no_raw() {
    let s = Server::start();
    expect(&cli(&s, &["SET", "k", "a \"b\""], None), true, "OK\n");
    expect(&cli(&s, &["GET", "k"], None), true, "a \"b\"\n");
    expect(&cli(&s, &["--raw", "GET", "k"], None), true, "a \"b\"\n");
    expect(&cli(&s, &["--no-raw", "GET", "k"], None), true, "\"a \\\"b\\\"\"\n");
    expect(&cli(&s, &["INCR", "n"], None), true, "1\n");
    expect(&cli(&s, &["GET", "missing"], None), true, "\n");
    expect(&cli(&s, &["RPUSH", "q", "x", "y z"], None), true, "2\n");
    expect(&cli(&s, &["LRANGE", "q", "0", "-1"], None), true, "x\ny z\n");
    expect(&cli(&s, &["INCR", "k"], None), false, "NOT_INTEGER value is not an integer or out of range\n");
    // Arguments after the command name are its own, even with a leading '-'.
    expect(&cli(&s, &["SET", "neg", "-1"], None), true, "OK\n");
    expect(&cli(&s, &["INCRBY", "neg", "-5"], None), true, "-6\n");
}

#[test]
fn get_into_a_file_stores_the_raw_bytes() {
    let s = Server::start();
    let value: Vec<u8> = (0..=255u8).collect();
    let mut c = s.runtime_client();
    s.block_on(c.set("bin", value.clone())).unwrap();
    let path = std::env::temp_dir().join(format!("burrow-cli-raw-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_burrow-cli"))
        .args(["-p", &s.port.to_string(), "GET", "bin"])
        .stdout(file)
        .status()
        .unwrap();
    assert!(status.success());
    let mut want = value;
    want.push(b'\n');
    assert_eq!(std::fs::read(&path).unwrap(), want, "the value's bytes, then a newline (as redis-cli)");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn repeat_runs_the_command_count_times() {
    let s = Server::start();
    expect(&cli(&s, &["-r", "3", "-i", "0.01", "INCR", "c"], None), true, "1\n2\n3\n");
    expect(&cli(&s, &["--no-raw", "-r", "2", "INCR", "c"], None), true, "(integer) 4\n(integer) 5\n");
}

#[test]
fn unknown_flags_are_usage_errors_not_commands() {
    // (flags, with usage): unknown flags show the usage, bad values say why.
    for (args, usage) in
        [(&["--bogus", "GET", "k"][..], true), (&["-x"], true), (&["-r", "0", "PING"], false)]
    {
        let o = cli_args(args.iter().map(Into::into), None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert_eq!(stdout(&o), "", "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert_eq!(err.contains("Usage: burrow-cli"), usage, "{args:?}: {err}");
    }
}

#[test]
fn a_mistyped_command_gets_a_suggestion() {
    let s = Server::start();
    expect(
        &cli(&s, &["GTE", "k"], None),
        false,
        "(error) ERR unknown command 'GTE', did you mean 'GET'? (type 'help' for the list of commands)\n",
    );
}

/// The CLI's INFO completion lists exactly the sections the server has.
#[test]
fn info_completion_knows_every_server_section() {
    let s = Server::start();
    let mut c = s.runtime_client();
    let replies = s.block_on(c.pipeline(&[Request::Info { section: Bytes::from_static(b"bogus") }])).unwrap();
    let Some(Reply::Error { status: Status::BadRequest, message }) = replies.first() else {
        panic!("{replies:?}")
    };
    let known = message.split("(known: ").nth(1).and_then(|r| r.strip_suffix(')')).expect(message);
    assert_eq!(known.split(", ").collect::<Vec<_>>(), burrow_cli::INFO_SECTIONS);
}

/// Issue 12: a 17 MB value in pipe mode lost the connection and the PING
/// after it. The CLI refuses it unsent (it knows the server's limit); a
/// smaller over-limit value is refused by the server, which skips it.
#[test]
fn an_over_limit_value_in_pipe_mode_is_refused_and_the_next_lines_run() {
    let s = Server::start();
    let big = "x".repeat(17_000_000);
    let o = cli(&s, &[], Some(format!("SET big {big}\nPING\nSET small v\n")));
    expect(
        &o,
        false,
        "(error) TOO_LARGE value length 17000000 over the limit of 16777216 bytes (not sent)\nPONG\nOK\n",
    );
    // The server's own refusal keeps the connection too.
    let s = Server::start_with(|c| c.max_value_bytes = 1000);
    let o = cli(&s, &[], Some(format!("SET k {}\nPING\n", "y".repeat(2000))));
    expect(&o, false, "(error) TOO_LARGE value length 2000 over the limit of 1000 bytes\nPONG\n");
}

/// The same over a plain client connection: TOO_LARGE, then PONG.
#[test]
fn a_17_mb_set_then_ping_on_one_connection_gets_too_large_then_pong() {
    let s = Server::start();
    let mut c = s.runtime_client();
    let set = Request::Set {
        key: Bytes::from_static(b"big"),
        value: Bytes::from(vec![b'x'; 17_000_000]),
        ttl_ms: None,
        condition: burrow_proto::SetCondition::Always,
        keep_ttl: false,
    };
    let replies = s.block_on(c.pipeline(&[set, Request::Ping { payload: Bytes::new() }])).unwrap();
    assert!(matches!(&replies[0], Reply::Error { status: Status::TooLarge, .. }), "{replies:?}");
    assert_eq!(replies[1], Reply::Text("PONG".into()));
    assert_eq!(s.block_on(c.get("big")).unwrap(), None);
}

/// A long-running `burrow-cli` whose output lines arrive on a channel.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn start(s: &Server, args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_burrow-cli"))
            .args(["-p", &s.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next `n` lines, waiting at most the suite's DEADLINE.
    fn lines(&self, n: usize) -> Vec<String> {
        let end = Instant::now() + DEADLINE;
        (0..n)
            .map(|i| {
                let left = end.saturating_duration_since(Instant::now());
                self.lines.recv_timeout(left).unwrap_or_else(|e| panic!("line {i}: {e}"))
            })
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stat_prints_a_header_and_a_line_per_interval() {
    let s = Server::start();
    expect(&cli(&s, &["SET", "k", "v"], None), true, "OK\n");
    let run = Running::start(&s, &["--stat", "-i", "0.02"]);
    // Header, 20 lines, header again (as redis-cli), one more line.
    let lines = run.lines(25);
    for at in [0, 22] {
        assert!(lines[at].starts_with("------- data"), "{at}: {lines:?}");
        assert!(lines[at + 1].starts_with("keys ") && lines[at + 1].ends_with("ops/s"), "{lines:?}");
    }
    let first: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(first[0], "1", "one key: {lines:?}");
    assert!(lines[3].contains("(+"), "the second line shows requests since the first: {lines:?}");
    assert!(lines[2..22].iter().chain(&lines[24..]).all(|l| !l.starts_with("---")), "{lines:?}");
}

#[test]
fn latency_prints_samples_and_history_prints_ranges() {
    let s = Server::start();
    let run = Running::start(&s, &["--latency"]);
    let line = &run.lines(1)[0];
    assert!(line.starts_with("min: ") && line.ends_with(" samples)"), "{line}");
    drop(run);
    let run = Running::start(&s, &["--latency-history", "-i", "0.2"]);
    for line in run.lines(2) {
        assert!(line.starts_with("min: ") && line.ends_with(" seconds range"), "{line}");
    }
}

/// The REPL in a pseudo-terminal (util-linux `script`): "did you mean",
/// `clear`, and Tab completion of INFO sections and of the command after
/// `help`. Each line is typed once the prompt is back: the line editor
/// drops input typed ahead of it.
#[test]
fn the_repl_suggests_clears_and_completes() {
    use std::io::{Read, Write};
    let s = Server::start();
    let home = crate::common::TempDir::new("cli-repl-home");
    let cmd = format!("{} -p {}", env!("CARGO_BIN_EXE_burrow-cli"), s.port);
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("HOME", home.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("util-linux script runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let prompt = format!("127.0.0.1:{}> ", s.port);
    let mut seen: Vec<u8> = Vec::new();
    let mut from = 0;
    // Waits for `want` in the output after what was matched before.
    let mut wait = |want: &str| {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(at) = seen[from..].windows(want.len()).position(|w| w == want.as_bytes()) {
                from += at + want.len();
                return;
            }
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => seen.extend(chunk),
                Err(e) => panic!("{e} waiting for {want:?} in {:?}", String::from_utf8_lossy(&seen)),
            }
        }
    };
    for (typed, shown) in [
        ("GTE k\r", "did you mean 'GET'?"),
        ("clear\r", "\x1b[H\x1b[J"),
        ("info repl\t\r", "role:"),
        ("help lra\t\r", "LRANGE key start stop"),
    ] {
        wait(&prompt);
        stdin.write_all(typed.as_bytes()).unwrap();
        stdin.flush().unwrap();
        wait(shown);
    }
    wait(&prompt);
    stdin.write_all(b"quit\r").unwrap();
    stdin.flush().unwrap();
    assert!(child.wait().unwrap().success());
}
