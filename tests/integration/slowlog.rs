//! SLOWLOG (protocol.md §8.13) end to end: an in-process server with
//! `--slowlog-threshold 0` logs every command with its key and client
//! address, newest first, bounded by `--slowlog-max-len`; `off` logs
//! nothing; keys are kept binary and cut to 64 bytes; malformed requests
//! are BAD_REQUEST on an open connection; the CLI renders entries as
//! redis-cli does. (Auth: `config_command`.)

use crate::common;

use burrow_client::{Client, SlowLogEntry};
use burrow_proto::{Opcode, Reply, Request, SlowLogCommand, Status, MAGIC_REQUEST, VERSION};
use bytes::Bytes;
use common::{assert_status, header, RawConn};

fn get(key: &[u8]) -> Request {
    Request::Get { key: Bytes::copy_from_slice(key) }
}

fn slowlog(c: SlowLogCommand) -> Request {
    Request::SlowLog(c)
}

async fn entries(raw: &mut RawConn, id: u32) -> Vec<SlowLogEntry> {
    raw.send_requests(&[(id, slowlog(SlowLogCommand::Get { count: Some(u32::MAX) }))]).await;
    match raw.reply().await {
        (got, Reply::SlowLog(e)) if got == id => e,
        other => panic!("not SLOWLOG entries: {other:?}"),
    }
}

#[tokio::test]
async fn every_command_is_logged_at_threshold_zero_newest_first_and_bounded() {
    let server = common::start_with(|c| {
        c.slowlog_threshold = Some(0);
        c.slowlog_max_len = 3;
    })
    .await;
    let mut raw = RawConn::connect(server.addr).await;
    let me = raw.stream.local_addr().unwrap().to_string();
    let long = vec![0xffu8; 100];
    raw.send_requests(&[(1, get(b"a\x00b")), (2, get(&long)), (3, Request::DbSize), (4, get(b"last"))]).await;
    raw.frames(4).await;
    let got = entries(&mut raw, 5).await;
    assert_eq!(got.len(), 3, "bounded by --slowlog-max-len: {got:?}");
    assert_eq!((got[0].opcode, &got[0].key[..]), (Opcode::Get as u8, &b"last"[..]));
    assert_eq!((got[1].opcode, got[1].key.len()), (Opcode::DbSize as u8, 0));
    assert_eq!((got[2].key_len, &got[2].key[..]), (100, &long[..64]), "cut to 64 bytes, length kept");
    assert!(got[0].id > got[1].id && got[1].id > got[2].id);
    assert!(got.iter().all(|e| e.client == me), "{got:?} from {me}");
    assert!(got[0].unix_us >= got[2].unix_us && got[0].unix_us > 1_600_000_000_000_000);
    // SLOWLOG itself is never logged; LEN and RESET.
    raw.send_requests(&[(6, slowlog(SlowLogCommand::Len)), (7, slowlog(SlowLogCommand::Reset))]).await;
    assert_eq!(raw.reply().await, (6, Reply::Int(3)));
    assert_eq!(raw.reply().await, (7, Reply::Ok));
    assert!(entries(&mut raw, 8).await.is_empty());
    // The Rust client; ids keep counting after RESET.
    let mut client = Client::connect(server.addr).await.unwrap();
    client.get("k").await.unwrap();
    let e = client.slowlog_get(None).await.unwrap();
    assert_eq!((e.len(), &e[0].key[..]), (1, &b"k"[..]));
    assert!(e[0].id > got[0].id);
    assert_eq!(client.slowlog_len().await.unwrap(), 1);
    client.slowlog_reset().await.unwrap();
    assert_eq!(client.slowlog_len().await.unwrap(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn off_logs_nothing_and_malformed_requests_are_refused_on_an_open_connection() {
    let server = common::start_with(|c| c.slowlog_threshold = None).await;
    let mut raw = RawConn::connect(server.addr).await;
    raw.send_requests(&[(1, get(b"k")), (2, Request::DbSize)]).await;
    raw.frames(2).await;
    assert!(entries(&mut raw, 3).await.is_empty());
    let op = Opcode::SlowLog as u8;
    let bad: [(&[u8], &[u8], u8, &str); 5] = [
        (&[], &[], 0, "extras must hold a subcommand"),
        (&[0x09], &[], 0, "unknown subcommand 0x09"),
        (&[0x01, 0, 0], &[], 0, "GET: extras must be 1 or 5 bytes"),
        (&[0x02], b"k", 0, "takes no key"),
        (&[0x03], &[], 1, "unknown flags"),
    ];
    for (i, (extras, key, flags, want)) in bad.iter().enumerate() {
        let id = 10 + i as u32;
        let mut bytes =
            header(MAGIC_REQUEST, VERSION, op, *flags, id, extras.len() as u8, key.len() as u16, 0);
        bytes.extend_from_slice(extras);
        bytes.extend_from_slice(key);
        raw.send(&bytes).await;
        let msg = assert_status(&raw.frame().await, Status::BadRequest, id);
        assert!(msg.contains(want), "#{i}: {msg}");
    }
    // Still open; nothing was reset or logged.
    raw.send_requests(&[(20, slowlog(SlowLogCommand::Len))]).await;
    assert_eq!(raw.reply().await, (20, Reply::Int(0)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cli_renders_entries_binary_safe() {
    let server = common::start_with(|c| c.slowlog_threshold = Some(0)).await;
    let port = server.addr.port().to_string();
    let mut client = Client::connect(server.addr).await.unwrap();
    client.get(Bytes::from_static(b"k\x00\xff")).await.unwrap();
    let cli = |args: &[&str]| cli_at(&port, args);
    let out = cli(&["SLOWLOG", "GET", "1"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    assert!(lines[0].starts_with("1) 1) (integer) "), "{text}");
    assert_eq!(lines[3], "   4) 1) \"GET\"", "{text}");
    assert_eq!(lines[4], "      2) \"k\\x00\\xff\"", "{text}");
    assert!(lines[5].starts_with("   5) \"127.0.0.1:"), "{text}");
    let out = cli(&["slowlog", "len"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "(integer) 1", "{out:?}");
    let out = cli(&["SLOWLOG", "RESET"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    let out = cli(&["SLOWLOG", "GET"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "(empty array)", "{out:?}");
    let out = cli(&["SLOWLOG", "FETCH"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("SLOWLOG GET [count]|LEN|RESET"), "{out:?}");
    server.shutdown().await.unwrap();
}

/// Runs `burrow-cli --port PORT --no-raw args...` off this thread: an
/// in-process server runs on the test's runtime.
pub(crate) fn cli_at(port: &str, args: &[&str]) -> tokio::task::JoinHandle<std::process::Output> {
    let all: Vec<std::ffi::OsString> =
        ["--port", port, "--no-raw"].iter().chain(args).map(|a| a.into()).collect();
    tokio::task::spawn_blocking(move || crate::cli::cli_args(all, None))
}
