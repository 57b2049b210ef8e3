//! CLIENT LIST / ID / KILL (protocol.md §8.15) and MONITOR (§8.16) end to
//! end against an in-process server: the listing's fields, KILL by id and
//! by address closing the target at once, unknown targets refused with
//! nothing closed, NOAUTH before AUTH, a monitor seeing another client's
//! binary key (and never AUTH), a monitor that does not read cut off while
//! the writer goes on, and the CLI's rendering.

use std::io::BufRead;

use crate::common;

use burrow_client::{Client, ClientError, ClientInfo};
use burrow_proto::{Opcode, Reply, Request, SetCondition, Status};
use bytes::Bytes;
use common::{assert_status, info_field, RawConn, TempDir, DEADLINE};

fn set(key: &[u8], value: &[u8]) -> Request {
    Request::Set {
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(value),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    }
}

/// The listing's entry for the connection at `addr`.
async fn entry(client: &mut Client, addr: &str) -> Option<ClientInfo> {
    client.client_list().await.unwrap().into_iter().find(|c| c.addr == addr)
}

/// Polls CLIENT LIST until `ok` holds (figures are stored once per batch,
/// and a closing connection leaves when its task ends); the last listing.
async fn listed_until(
    client: &mut Client,
    what: &str,
    ok: impl Fn(&[ClientInfo]) -> bool,
) -> Vec<ClientInfo> {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let list = client.client_list().await.unwrap();
        if ok(&list) {
            return list;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}: {list:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The monitor's next event, within the deadline.
async fn next_event(m: &mut burrow_client::Monitor) -> burrow_proto::MonitorEvent {
    tokio::time::timeout(DEADLINE, m.next()).await.expect("an event in time").unwrap().expect("still open")
}

#[tokio::test]
async fn client_list_shows_each_connection_with_sane_fields() {
    let server = common::start().await;
    let mut me = Client::connect(server.addr).await.unwrap();
    let mut other = RawConn::connect(server.addr).await;
    let other_addr = other.stream.local_addr().unwrap().to_string();
    other.send_requests(&[(1, Request::Get { key: Bytes::from_static(b"k") })]).await;
    other.reply().await;
    // Its figures are stored once per batch, the written count after the write.
    let list = listed_until(&mut me, "the other connection's GET", |l| {
        l.iter().any(|c| c.addr == other_addr && c.cmd == "GET" && c.out_bytes == 0)
    })
    .await;
    assert_eq!(list.len(), 2, "{list:?}");
    let o = list.iter().find(|c| c.addr == other_addr).unwrap();
    assert!(o.age_s < 60 && o.idle_s < 60, "{o:?}");
    assert_eq!((o.in_bytes, o.authenticated, o.tls, o.flags.as_str()), (0, true, false, "N"));
    let my_id = me.client_id().await.unwrap();
    let mine = list.iter().find(|c| c.id == my_id).expect("this connection is listed");
    assert_eq!(mine.cmd, "CLIENT", "its last command is the listing itself");
    assert!(list.windows(2).all(|w| w[0].id < w[1].id), "by id: {list:?}");
    // A closed connection leaves the listing.
    drop(other);
    listed_until(&mut me, "the closed connection to leave", |l| l.iter().all(|c| c.addr != other_addr)).await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn kill_by_id_and_by_addr_closes_at_once_and_unknown_targets_change_nothing() {
    let server = common::start().await;
    let mut admin = Client::connect(server.addr).await.unwrap();
    let mut a = RawConn::connect(server.addr).await;
    let mut b = RawConn::connect(server.addr).await;
    let b_addr = b.stream.local_addr().unwrap().to_string();
    a.send_requests(&[(1, Request::ClientId)]).await;
    let (_, Reply::Int(a_id)) = a.reply().await else { panic!("CLIENT ID is an INT") };
    listed_until(&mut admin, "all three listed", |l| l.len() == 3).await;
    // Unknown targets: refused, nothing closed.
    for (req, want) in [
        (Request::ClientKillId { id: 1 << 40 }, "no such client (id 1099511627776)"),
        (
            Request::ClientKillAddr { addr: Bytes::from_static(b"10.9.9.9:1") },
            "no such client (addr 10.9.9.9:1)",
        ),
    ] {
        match admin.request(&req).await.unwrap() {
            Reply::Error { status: Status::BadRequest, message } => {
                assert!(message.contains(want), "{message}")
            }
            other => panic!("{req:?}: {other:?}"),
        }
    }
    assert_eq!(admin.client_list().await.unwrap().len(), 3, "nothing closed");
    // Both targets sit in a read with no idle timeout: only the kill's
    // wake-up can close them.
    assert_eq!(admin.client_kill_id(a_id as u64).await.unwrap(), 1);
    a.expect_eof().await;
    assert_eq!(admin.client_kill_addr(&b_addr).await.unwrap(), 1);
    b.expect_eof().await;
    listed_until(&mut admin, "the killed to leave", |l| l.len() == 1).await;
    // A kill of the one already gone says so.
    match admin.client_kill_id(a_id as u64).await {
        Err(ClientError::Server { status: Status::BadRequest, .. }) => {}
        other => panic!("{other:?}"),
    }
    // A connection may kill itself: the reply comes first, then the close.
    let mut own = RawConn::connect(server.addr).await;
    own.send_requests(&[(1, Request::ClientId)]).await;
    let (_, Reply::Int(own_id)) = own.reply().await else { panic!("CLIENT ID is an INT") };
    own.send_requests(&[(2, Request::ClientKillId { id: own_id as u64 })]).await;
    assert_eq!(own.reply().await, (2, Reply::Int(1)));
    own.expect_eof().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_and_monitor_need_auth_and_monitor_never_shows_auth() {
    let dir = TempDir::new("introspect-auth");
    let server = crate::auth::server(&dir).await;
    let mut raw = RawConn::connect(server.addr).await;
    let raw_addr = raw.stream.local_addr().unwrap().to_string();
    raw.send_requests(&[
        (1, Request::ClientList),
        (2, Request::ClientKillId { id: 1 }),
        (3, Request::Monitor),
    ])
    .await;
    for id in 1..=3 {
        assert_status(&raw.frame().await, Status::NoAuth, id);
    }
    // Refused MONITOR: the connection is not monitoring, and still answers.
    raw.send_requests(&[(4, Request::Ping { payload: Bytes::new() })]).await;
    assert_eq!(raw.reply().await, (4, Reply::Text("PONG".into())));
    let mut admin = Client::connect_with(server.addr, crate::auth::authed()).await.unwrap();
    let listed = entry(&mut admin, &raw_addr).await.expect("listed");
    assert!(!listed.authenticated && listed.flags == "N", "{listed:?}");
    let admin_id = admin.client_id().await.unwrap();
    assert!(admin.client_list().await.unwrap().iter().any(|c| c.id == admin_id && c.authenticated));
    let mut monitor =
        Client::connect_with(server.addr, crate::auth::authed()).await.unwrap().monitor().await.unwrap();
    // A new client's HELLO and AUTH are not shown; its SET is.
    let mut writer = Client::connect_with(server.addr, crate::auth::authed()).await.unwrap();
    writer.set("k", "v").await.unwrap();
    let e = next_event(&mut monitor).await;
    assert_eq!((e.opcode, &e.key[..]), (Opcode::Set as u8, &b"k"[..]), "{e:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn monitor_sees_another_clients_set_with_a_binary_key() {
    let server = common::start().await;
    let mut monitor = Client::connect(server.addr).await.unwrap().monitor().await.unwrap();
    let mut writer = RawConn::connect(server.addr).await;
    let writer_addr = writer.stream.local_addr().unwrap().to_string();
    let key = b"k\x00\xff\n";
    let long = vec![b'v'; 1000];
    writer
        .send_requests(&[(1, set(key, &long)), (2, Request::Get { key: Bytes::copy_from_slice(key) })])
        .await;
    writer.frames(2).await;
    let e = next_event(&mut monitor).await;
    assert_eq!((e.opcode, &e.key[..], e.key_len), (Opcode::Set as u8, &key[..], 4));
    assert_eq!((e.value_len, e.value.len()), (1000, burrow_proto::MONITOR_ARG_BYTES), "cut, length kept");
    assert_eq!(e.client, writer_addr);
    let now_us =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    assert!(e.unix_us <= now_us && e.unix_us + DEADLINE.as_micros() as u64 > now_us, "{e:?}");
    let e = next_event(&mut monitor).await;
    assert_eq!((e.opcode, &e.key[..], e.value_len), (Opcode::Get as u8, &key[..], 0));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_monitor_that_does_not_read_is_cut_off_and_the_writer_goes_on() {
    let server = common::start_with(|c| c.client_output_soft_limit = 256 << 10).await;
    // A small receive buffer: the kernel holds little for the stalled reader.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stalled = socket.connect(server.addr).await.unwrap();
    let mut stalled = RawConn::from_stream(stalled);
    stalled.send_requests(&[(1, Request::Monitor)]).await;
    let mut admin = Client::connect(server.addr).await.unwrap();
    listed_until(&mut admin, "the monitor to start", |l| l.iter().any(|c| c.flags == "O")).await;
    let mut writer = Client::connect(server.addr).await.unwrap();
    let value = Bytes::from(vec![b'x'; 256]);
    let batch: Vec<Request> = (0..500).map(|i| set(format!("key:{i}").as_bytes(), &value)).collect();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let replies = writer.pipeline(&batch).await.unwrap();
        assert!(replies.iter().all(|r| *r == Reply::Ok), "the writer is served");
        if info_field(&writer.info("clients").await.unwrap(), "clients_killed_output_limit") == "1" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stalled monitor was never cut off");
    }
    listed_until(&mut admin, "the monitor to leave", |l| l.iter().all(|c| c.flags == "N")).await;
    stalled.drain_until_closed().await;
    assert_eq!(writer.set("after", "1").await.unwrap(), ());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cli_lists_kills_and_monitors_binary_safe() {
    let server = common::start().await;
    let port = server.addr.port().to_string();
    let cli = |args: &[&str]| crate::slowlog::cli_at(&port, args);
    let out = cli(&["CLIENT", "LIST"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.lines().count() == 1, "{out:?}");
    assert!(
        text.starts_with("id=") && text.contains(" cmd=CLIENT ") && text.trim_end().ends_with("flags=N"),
        "{text}"
    );
    let out = cli(&["client", "kill", "99999"]).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "(error) BAD_REQUEST CLIENT KILL: no such client (id 99999)",
        "{out:?}"
    );
    assert!(!out.status.success());
    let out = cli(&["CLIENT", "KILL"]).await.unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("CLIENT LIST|ID|KILL id|addr"), "{out:?}");
    // MONITOR streams until the server ends it: read its lines as they come.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_burrow-cli"))
        .args(["--port", &port, "MONITOR"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("burrow-cli starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut line = async || tokio::time::timeout(DEADLINE, rx.recv()).await.expect("a line").expect("open");
    assert_eq!(line().await, "OK");
    let mut writer = Client::connect(server.addr).await.unwrap();
    let mut raw = RawConn::connect(server.addr).await;
    let raw_addr = raw.stream.local_addr().unwrap().to_string();
    raw.send_requests(&[(1, set(b"k\x00\xff", b"a \"b\""))]).await;
    raw.reply().await;
    let shown = line().await;
    let (time, rest) = shown.split_once(' ').unwrap();
    let (secs, micros) = time.split_once('.').unwrap();
    assert!(secs.parse::<u64>().unwrap() > 1_600_000_000 && micros.len() == 6, "{shown}");
    assert_eq!(rest, format!(r#"[{raw_addr}] "SET" "k\x00\xff" "a \"b\"""#));
    // CLIENT KILL ends the stream; the CLI exits cleanly.
    let monitor =
        writer.client_list().await.unwrap().into_iter().find(|c| c.flags == "O").expect("the CLI monitors");
    assert_eq!(writer.client_kill_id(monitor.id).await.unwrap(), 1);
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    reader.join().unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_client_and_monitor_requests_are_refused_on_an_open_connection() {
    let server = common::start().await;
    let mut raw = RawConn::connect(server.addr).await;
    let (client, monitor) = (Opcode::Client as u8, Opcode::Monitor as u8);
    let bad: [(u8, &[u8], &[u8], &str); 6] = [
        (client, &[], &[], "extras must hold a subcommand"),
        (client, &[0x09], &[], "unknown subcommand 0x09"),
        (client, &[0x01], b"k", "take no key"),
        (client, &[0x03, 0, 1], &[], "must be 9 bytes"),
        (client, &[0x04], &[], "the key must hold the address"),
        (monitor, &[], b"k", "MONITOR takes no key"),
    ];
    for (i, (op, extras, key, want)) in bad.iter().enumerate() {
        let id = 10 + i as u32;
        let mut bytes = common::header(
            burrow_proto::MAGIC_REQUEST,
            burrow_proto::VERSION,
            *op,
            0,
            id,
            extras.len() as u8,
            key.len() as u16,
            0,
        );
        bytes.extend_from_slice(extras);
        bytes.extend_from_slice(key);
        raw.send(&bytes).await;
        let msg = assert_status(&raw.frame().await, Status::BadRequest, id);
        assert!(msg.contains(want), "#{i}: {msg}");
    }
    // Still an ordinary connection: not monitoring, nothing closed.
    raw.send_requests(&[(20, Request::ClientList)]).await;
    match raw.reply().await {
        (20, Reply::Text(t)) => assert!(t.lines().count() == 1 && t.contains("flags=N"), "{t}"),
        other => panic!("{other:?}"),
    }
    server.shutdown().await.unwrap();
}
