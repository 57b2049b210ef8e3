//! `protocol.md` is the wire contract; this test keeps it honest.
//!
//! Every hex example in it is decoded with the real codec, parsed into the
//! typed `Request`/`Reply`, re-encoded byte for byte, and then (the session
//! examples) replayed against a live server (one request at a time, then
//! pipelined), which must answer exactly the documented bytes; a cluster
//! example's response is checked against the server's own encoding by the
//! server's unit tests; a peer-link example (§12.6) is replayed against a
//! live cluster member. Every opcode, status and body type the
//! code knows must appear in the document's tables, so adding one without
//! documenting it fails here.

use crate::common;

use common::DEADLINE;
use std::collections::HashSet;

use burrow_proto::{BodyType, Codec, Limits, Opcode, Reply, Request, Status, HEADER_LEN};
use burrow_server::formats::{decode_record, encode_record, Records};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

#[derive(Debug)]
struct Example {
    name: String,
    /// The server closes the connection after this response.
    closes: bool,
    request: Vec<u8>,
    response: Vec<u8>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

/// Parses the inside of a hex block: `#` comments, whitespace-separated byte pairs.
fn parse_hex(lines: &[&str], what: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        let data = line.split('#').next().unwrap_or("");
        for tok in data.split_whitespace() {
            assert!(tok.len() == 2, "{what}: token {tok:?} is not a two-digit hex byte");
            let b = u8::from_str_radix(tok, 16).unwrap_or_else(|_| panic!("{what}: bad hex byte {tok:?}"));
            out.push(b);
        }
    }
    assert!(!out.is_empty(), "{what}: empty hex block");
    out
}

/// Returns the lines of the fenced block with info string `info` that starts
/// at `lines[*i]` (blank lines before it skipped), advancing `*i` past it.
fn fenced<'a>(lines: &[&'a str], i: &mut usize, info: &str, what: &str) -> Vec<&'a str> {
    while *i < lines.len() && lines[*i].trim().is_empty() {
        *i += 1;
    }
    let open = format!("```{info}");
    assert!(
        *i < lines.len() && lines[*i].trim() == open,
        "{what}: expected a {open:?} block, found {:?}",
        lines.get(*i)
    );
    *i += 1;
    let start = *i;
    while *i < lines.len() && lines[*i].trim() != "```" {
        *i += 1;
    }
    assert!(*i < lines.len(), "{what}: unterminated {open:?} block");
    let body = lines[start..*i].to_vec();
    *i += 1;
    body
}

/// The session examples (`<!-- example: NAME -->`), replayed in order
/// against one fresh server.
fn examples(doc: &str) -> Vec<Example> {
    let out = marked_examples(doc, "<!-- example:");
    // Every hex block must belong to a marker, so none is silently skipped.
    let blocks = doc.lines().filter(|l| l.trim() == "```hex request").count();
    let others = cluster_examples(doc).len() + peer_examples(doc).len();
    assert_eq!(blocks, out.len() + others, "a ```hex request block has no <!-- example: --> marker");
    out
}

/// A peer-link example (`<!-- peer-example: NAME [closes] -->`, §12.6):
/// bytes sent to a cluster member, and its reply, or `None` when it closes
/// the connection without one.
#[derive(Debug)]
struct PeerExample {
    name: String,
    request: Vec<u8>,
    response: Option<Vec<u8>>,
}

fn peer_examples(doc: &str) -> Vec<PeerExample> {
    marked(doc, "<!-- peer-example:", |lines, i, name, closes| {
        let request = parse_hex(&fenced(lines, i, "hex request", &name), &name);
        let response = (!closes).then(|| parse_hex(&fenced(lines, i, "hex response", &name), &name));
        PeerExample { name, request, response }
    })
}

/// Examples a node answers in a cluster state (`<!-- cluster-example:
/// NAME -->`): decoded and re-encoded like the session's, and checked
/// against the server's own bytes by its unit tests, not replayed.
fn cluster_examples(doc: &str) -> Vec<Example> {
    marked_examples(doc, "<!-- cluster-example:")
}

/// Session and cluster examples: everything the codec tests go through.
fn all_examples(doc: &str) -> Vec<Example> {
    let mut all = examples(doc);
    all.extend(cluster_examples(doc));
    all
}

fn marked_examples(doc: &str, marker: &str) -> Vec<Example> {
    marked(doc, marker, |lines, i, name, closes| {
        let request = parse_hex(&fenced(lines, i, "hex request", &name), &name);
        let response = parse_hex(&fenced(lines, i, "hex response", &name), &name);
        Example { name, closes, request, response }
    })
}

/// Every `MARKER NAME [closes] -->` line, with what `read` makes of the
/// blocks after it (`read` advances the line index past them).
fn marked<T>(
    doc: &str,
    marker: &str,
    mut read: impl FnMut(&[&str], &mut usize, String, bool) -> T,
) -> Vec<T> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        let Some(rest) = line.strip_prefix(marker).and_then(|r| r.strip_suffix("-->")) else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let name = words.next().expect("example marker without a name").to_string();
        let closes = match words.next() {
            None => false,
            Some("closes") => true,
            Some(other) => panic!("example {name}: unknown marker attribute {other:?}"),
        };
        out.push(read(&lines, &mut i, name, closes));
    }
    out
}

fn record_examples(doc: &str) -> Vec<(String, Vec<u8>)> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if let Some(name) = line.strip_prefix("<!-- record-example:").and_then(|r| r.strip_suffix("-->")) {
            let name = name.trim().to_string();
            let bytes = parse_hex(&fenced(&lines, &mut i, "hex record", &name), &name);
            out.push((name, bytes));
        }
    }
    let blocks = lines.iter().filter(|l| l.trim() == "```hex record").count();
    assert_eq!(blocks, out.len(), "a ```hex record block has no <!-- record-example: --> marker");
    out
}

/// Frames the server sends unprompted (`<!-- unsolicited-example: NAME -->`
/// then a `hex response` block).
fn unsolicited_examples(doc: &str) -> Vec<(String, Vec<u8>)> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if let Some(name) = line.strip_prefix("<!-- unsolicited-example:").and_then(|r| r.strip_suffix("-->"))
        {
            let name = name.trim().to_string();
            let bytes = parse_hex(&fenced(&lines, &mut i, "hex response", &name), &name);
            out.push((name, bytes));
        }
    }
    out
}

fn status_of(response: &[u8]) -> Status {
    Status::from_u8(response[3]).unwrap_or_else(|| panic!("unknown status byte {:#04x}", response[3]))
}

#[test]
fn the_document_has_enough_uniquely_named_examples() {
    let doc = doc();
    let all = examples(&doc);
    assert!(all.len() >= 10, "protocol.md must hold at least 10 examples, found {}", all.len());
    let cluster = cluster_examples(&doc);
    assert!(
        cluster.iter().any(|ex| status_of(&ex.response) == Status::NoLeader),
        "no NO_LEADER cluster example"
    );
    let mut names = HashSet::new();
    for ex in all.iter().chain(&cluster) {
        assert!(names.insert(ex.name.as_str()), "duplicate example name {}", ex.name);
    }
    assert!(!record_examples(&doc).is_empty(), "no op log record examples");
    // The session must start from a known state for the live replay to be deterministic.
    assert_eq!(all[0].request[2], Opcode::FlushAll as u8, "the first example must be FLUSHALL");
}

#[test]
fn example_requests_decode_parse_and_reencode_exactly() {
    for ex in all_examples(&doc()) {
        let name = &ex.name;
        let status = status_of(&ex.response);
        let mut codec = Codec::server(Limits::default());
        let mut buf = BytesMut::from(&ex.request[..]);
        if ex.closes {
            // A closing example is a frame the codec refuses from its header.
            let err = codec.decode(&mut buf).expect_err(name);
            assert_eq!(err.status(), Some(status), "{name}: codec error {err} answered with another status");
            let id = u32::from_be_bytes(ex.response[4..8].try_into().unwrap());
            assert_eq!(err.request(), (id, ex.response[2]), "{name}: response must echo (id, opcode)");
            continue;
        }
        let frame = codec.decode(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}")).expect(name);
        assert!(buf.is_empty(), "{name}: {} bytes left after the request frame", buf.len());
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "{name}: more than one frame");
        assert_eq!(ex.response[2], frame.opcode, "{name}: response must echo the opcode");
        assert_eq!(ex.response[4..8], ex.request[4..8], "{name}: response must echo the id");
        match Request::from_frame(&frame) {
            Ok(req) => {
                let mut again = BytesMut::new();
                codec.encode(req.to_frame(frame.id), &mut again).unwrap();
                assert_eq!(hex(&again), hex(&ex.request), "{name}: request does not re-encode identically");
            }
            Err(e) => {
                assert_eq!(e.status, status, "{name}: parse error {:?} but documented {status}", e.message);
            }
        }
    }
}

#[test]
fn example_responses_decode_parse_and_reencode_exactly() {
    for ex in all_examples(&doc()) {
        let name = &ex.name;
        let mut codec = Codec::client(Limits::default());
        let mut buf = BytesMut::from(&ex.response[..]);
        let frame = codec.decode(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}")).expect(name);
        assert!(buf.is_empty(), "{name}: {} bytes left after the response frame", buf.len());
        let reply = Reply::from_frame(&frame).unwrap_or_else(|e| panic!("{name}: {e}"));
        if frame.flags != Status::Ok as u8 {
            assert!(matches!(reply, Reply::Error { .. }), "{name}: error status but {reply:?}");
        }
        let mut again = BytesMut::new();
        codec.encode(reply.to_frame(frame.opcode, frame.id), &mut again).unwrap();
        assert_eq!(hex(&again), hex(&ex.response), "{name}: response does not re-encode identically");
    }
}

#[test]
fn record_examples_decode_and_reencode_exactly() {
    let examples = record_examples(&doc());
    for (name, bytes) in &examples {
        let bytes = Bytes::from(bytes.clone());
        let (rec, used) = decode_record(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(used, bytes.len(), "{name}: trailing bytes after the record");
        let mut again = BytesMut::new();
        encode_record(rec.term, rec.index, &rec.op, &mut again);
        assert_eq!(hex(&again), hex(&bytes), "{name}: record does not re-encode identically");
    }
    // Back to back, as a WAL segment or a RECORDS value holds them, the
    // record reader finds each example whole and in order.
    let all: Vec<u8> = examples.iter().flat_map(|(_, b)| b.iter().copied()).collect();
    let found: Vec<&[u8]> =
        Records::new(&all).map(|r| r.unwrap_or_else(|e| panic!("{e}: {:?}", e.error)).raw).collect();
    let documented: Vec<&[u8]> = examples.iter().map(|(_, b)| &b[..]).collect();
    assert_eq!(found, documented);
}

/// True if some table row of the document holds both `a` and `b`.
fn row_with(doc: &str, a: &str, b: &str) -> bool {
    doc.lines().any(|l| l.trim_start().starts_with('|') && l.contains(a) && l.contains(b))
}

#[test]
fn every_opcode_status_body_type_and_flag_is_documented() {
    let doc = doc();
    for op in Opcode::ALL {
        let (hexv, name) = (format!("`0x{:02X}`", op as u8), format!("| {} ", op.name()));
        assert!(row_with(&doc, &hexv, &name), "opcode {} ({hexv}) has no row in protocol.md", op.name());
    }
    for st in Status::ALL {
        let (hexv, name) = (format!("`0x{:02X}`", st as u8), format!("| {} ", st.name()));
        assert!(row_with(&doc, &hexv, &name), "status {} ({hexv}) has no row in protocol.md", st.name());
    }
    for b in 0..=u8::MAX {
        if let Some(t) = BodyType::from_u8(b) {
            let name = format!("| {} ", format!("{t:?}").to_uppercase());
            assert!(
                row_with(&doc, &format!("`0x{b:02X}`"), &name),
                "body type {t:?} has no row in protocol.md"
            );
        }
    }
    use burrow_proto::flags;
    for (bit, name) in [(flags::NX, "NX"), (flags::XX, "XX"), (flags::KEEPTTL, "KEEPTTL")] {
        assert!(
            row_with(&doc, &format!("`0x{bit:02X}`"), &format!("| {name} ")),
            "SET flag {name} undocumented"
        );
    }
}

/// Reads one whole response frame, however the server splits it.
async fn read_frame(conn: &mut TcpStream, name: &str) -> Vec<u8> {
    let read = async {
        let mut frame = vec![0u8; HEADER_LEN];
        conn.read_exact(&mut frame).await?;
        let extras = frame[8] as usize;
        let key = u16::from_be_bytes([frame[10], frame[11]]) as usize;
        let value = u32::from_be_bytes(frame[12..16].try_into().unwrap()) as usize;
        frame.resize(HEADER_LEN + extras + key + value, 0);
        conn.read_exact(&mut frame[HEADER_LEN..]).await?;
        std::io::Result::Ok(frame)
    };
    match tokio::time::timeout(DEADLINE, read).await {
        Ok(Ok(frame)) => frame,
        Ok(Err(e)) => panic!("{name}: reading the response failed: {e}"),
        Err(_) => panic!("{name}: no response within {DEADLINE:?}"),
    }
}

async fn assert_closed(conn: &mut TcpStream, name: &str) {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(DEADLINE, conn.read(&mut byte)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(_)) => panic!("{name}: server sent more after a closing response"),
        Ok(Err(e)) => panic!("{name}: expected a clean close, got {e}"),
        Err(_) => panic!("{name}: server did not close the connection"),
    }
}

fn check(ex: &Example, got: &[u8]) {
    assert_eq!(
        hex(got),
        hex(&ex.response),
        "{}: the server's response differs from protocol.md\n got: {}\nwant: {}",
        ex.name,
        got.escape_ascii(),
        ex.response.escape_ascii()
    );
}

#[tokio::test]
async fn examples_replay_byte_for_byte_against_a_live_server() {
    let all = examples(&doc());
    let server = common::start().await;
    let connect = || async { TcpStream::connect(server.addr).await.expect("connect") };

    // One request at a time.
    let mut conn = connect().await;
    for ex in &all {
        conn.write_all(&ex.request).await.unwrap();
        let got = read_frame(&mut conn, &ex.name).await;
        check(ex, &got);
        if ex.closes {
            assert_closed(&mut conn, &ex.name).await;
            conn = connect().await;
        }
    }

    // Pipelined: every run of non-closing examples in a single write.
    let mut conn = connect().await;
    let mut rest = &all[..];
    while !rest.is_empty() {
        let n = rest.iter().position(|e| e.closes).map_or(rest.len(), |p| p.max(1));
        let (batch, tail) = rest.split_at(n);
        let bytes: Vec<u8> = batch.iter().flat_map(|e| e.request.iter().copied()).collect();
        conn.write_all(&bytes).await.unwrap();
        for ex in batch {
            let got = read_frame(&mut conn, &ex.name).await;
            check(ex, &got);
        }
        if batch[batch.len() - 1].closes {
            assert_closed(&mut conn, &batch[0].name).await;
            conn = connect().await;
        }
        rest = tail;
    }
    drop(conn);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_busy_reply_is_byte_for_byte_as_documented() {
    let busy = unsolicited_examples(&doc());
    let [(name, want)] = &busy[..] else {
        panic!("expected exactly one unsolicited example (busy), got {busy:?}")
    };
    assert_eq!(name, "busy");
    let server = common::start_with(|c| c.max_connections = 1).await;
    // A PING answered proves the first connection holds the only permit.
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut ping = BytesMut::new();
    Codec::client(Limits::default())
        .encode(Request::Ping { payload: Bytes::new() }.to_frame(1), &mut ping)
        .unwrap();
    first.write_all(&ping).await.unwrap();
    read_frame(&mut first, "first connection's PING").await;
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    let got = read_frame(&mut second, name).await;
    assert_eq!(hex(&got), hex(want), "BUSY differs from protocol.md: got {}", got.escape_ascii());
    assert_closed(&mut second, name).await;
    drop((first, second));
    server.shutdown().await.unwrap();
}

/// §12.6's refusals, each on a fresh connection to node 1 of a cluster
/// with cluster.toml's membership (so the examples' cluster id is its
/// own): the documented reply, or a close with nothing said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_link_examples_replay_byte_for_byte_against_a_cluster_member() {
    use burrow_server::{ClusterConfig, NodeInfo};
    let all = peer_examples(&doc());
    assert!(all.len() >= 4, "protocol.md §12.6 has {} peer examples", all.len());
    // Nobody at the other members' addresses: node 1 dials them in vain.
    let held: Vec<_> = (0..3).map(|_| common::refusing_addr()).collect();
    let nodes = (1..=3u64)
        .zip(&held)
        .map(|(id, (_, addr))| NodeInfo { id, addr: *addr, data_dir: format!("data/node{id}").into() })
        .collect();
    let mut cluster = ClusterConfig::new(nodes, None, 1).expect("cluster.toml's membership");
    cluster.election_timeout = std::time::Duration::from_secs(60)..std::time::Duration::from_secs(120);
    let dir = common::TempDir::new("peer-examples");
    let data_dir = dir.path().to_owned();
    let server = common::start_with(move |c| {
        c.cluster = Some(cluster);
        c.data_dir = data_dir;
    })
    .await;
    // The examples' PEER_HELLOs carry this member's cluster id, so those
    // that name a member (node 2) open a link and are refused after it.
    let info = burrow_client::Client::connect(server.addr).await.unwrap().info("replication").await.unwrap();
    assert_eq!(common::info_field(&info, "cluster_id"), "9c42cf9064be2e28", "cluster.toml's cluster id");
    assert!(doc().contains("cluster id is `0x9c42cf9064be2e28`"), "protocol.md §12.6 names it");
    for ex in &all {
        let mut conn = TcpStream::connect(server.addr).await.expect("connect");
        conn.write_all(&ex.request).await.unwrap();
        match &ex.response {
            Some(want) => {
                let got = read_frame(&mut conn, &ex.name).await;
                assert_eq!(hex(&got), hex(want), "{}: the member's reply differs from protocol.md", ex.name);
            }
            None => assert_closed(&mut conn, &ex.name).await,
        }
    }
    server.shutdown().await.unwrap();
}

/// The leader's CLUSTER example holds what its prose says, field by field
/// (its bytes are the codec's own encoding: the response test re-encodes it).
#[test]
fn the_cluster_leader_example_decodes_to_its_description() {
    use burrow_proto::{LinkStatus, MemberRole};
    let ex =
        cluster_examples(&doc()).into_iter().find(|e| e.name == "cluster-leader").expect("cluster-leader");
    let mut buf = BytesMut::from(&ex.response[..]);
    let frame = Codec::client(Limits::default()).decode(&mut buf).unwrap().unwrap();
    let Reply::Cluster(view) = Reply::from_frame(&frame).unwrap() else { panic!("not a CLUSTER reply") };
    assert_eq!(
        (view.node_id, view.role, view.term, view.leader_id, view.commit_index),
        (1, MemberRole::Leader, 3, 1, 42)
    );
    let rows: Vec<_> = view
        .members
        .iter()
        .map(|m| (m.id, m.addr.as_str(), m.role, m.link, m.match_index, m.lag, m.last_contact_ms))
        .collect();
    assert_eq!(
        rows,
        [
            (1, "127.0.0.1:7441", MemberRole::Leader, None, Some(42), Some(0), None),
            (2, "127.0.0.1:7442", MemberRole::Follower, Some(LinkStatus::Up), Some(42), Some(0), Some(12)),
            (
                3,
                "127.0.0.1:7443",
                MemberRole::Follower,
                Some(LinkStatus::Down),
                Some(40),
                Some(2),
                Some(1500)
            ),
        ]
    );
    assert_eq!(view.leader().map(|m| m.addr.as_str()), Some("127.0.0.1:7441"));
}
