//! A whole client connection: random frame sequences against an in-process
//! server (one per fuzz process, started once on 127.0.0.1 port 0 with
//! persistence off), checking protocol.md §4.3 and §6.2 from the outside:
//!
//! - **A refused command changes nothing**: around every request answered
//!   with an error status, DIGEST and INFO `oplog` `last_index` are equal
//!   before and after (the held-reply statuses, NO_QUORUM and IO_ERROR after
//!   a WAL failure, cannot occur here: no cluster, no WAL);
//! - the server closes the connection, if at all, only after TOO_LARGE or
//!   BAD_FRAME (an over-limit frame is normally skipped and the connection
//!   goes on; only one over twice the frame limit closes, §6.2);
//! - every request gets its reply, in order, with its id; the server stays up.
//!
//! The input is read structurally, so most of it reaches command logic: a
//! sequence of frames, each built from an opcode (from protocol.md's table,
//! or any byte), flags, extras of the right or a wrong length, a key (from
//! a small set, so commands meet each other's keys, or raw bytes) and a
//! value (raw, an ARRAY body, or a number as text). A marker byte ends the
//! frames: what follows goes raw to a second connection (codec errors,
//! frames split anywhere), and the server must still answer a PING after.
//!
//! Each input starts with FLUSHALL, so an input replays alone. TTLs are
//! kept above an hour (a key expiring between the DIGESTs would look like
//! a change), and WAIT waits at most 1 ms (`WAIT n 0` never replies on a
//! standalone server, §8.10); the raw tail has its WAIT opcode bytes
//! replaced for the same reason.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use clap::Parser;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use burrow_proto::{Codec, Frame, Limits};
use burrow_server::{ServerArgs, ServerHandle};

const PING: u8 = 0x01;
const SET: u8 = 0x03;
const EXPIRE: u8 = 0x06;
const FLUSHALL: u8 = 0x32;
const INFO: u8 = 0x33;
const DIGEST: u8 = 0x34;
const WAIT: u8 = 0x35;
/// Statuses after which the server closes the connection (§5, §6.2).
const TOO_LARGE: u8 = 0x06;
const BAD_FRAME: u8 = 0x07;
/// Held replies: the write ran, its outcome is unknown (§4.3).
const IO_ERROR: u8 = 0x0B;
const NO_QUORUM: u8 = 0x0E;

/// Every opcode of protocol.md §4.1 with its valid extras lengths.
const OPCODES: &[(u8, &[u8])] = &[
    (0x01, &[0]),
    (0x02, &[0]),
    (0x03, &[0, 8]),
    (0x04, &[0]),
    (0x05, &[0]),
    (0x06, &[8]),
    (0x07, &[0]),
    (0x08, &[0]),
    (0x09, &[0]),
    (0x10, &[0]),
    (0x11, &[0]),
    (0x12, &[8]),
    (0x20, &[0]),
    (0x21, &[0]),
    (0x22, &[0, 4]),
    (0x23, &[0, 4]),
    (0x24, &[0]),
    (0x25, &[16]),
    (0x30, &[0]),
    (0x31, &[12]),
    (0x32, &[0]),
    (0x33, &[0]),
    (0x34, &[0]),
    (0x35, &[12]),
    (0x36, &[0]),
    (0x40, &[0]),
    // Appended (indexes above stay as seeds use them): HELLO, AUTH (§8.12).
    (0x37, &[0]),
    (0x38, &[16]),
];
const KEYS: &[&[u8]] = &[b"a", b"b", b"l", b"n", b"oplog", b"all", b"a*"];
const NUMBERS: &[&[u8]] =
    &[b"0", b"1", b"-1", b"9223372036854775807", b"-9223372036854775808", b"x", b" 1", b"01"];
/// Server limits, small so inputs reach them: a key of 65 bytes or a
/// value of 4097 is TOO_LARGE; a reply over 1 KiB is refused (§4.2).
const MAX_KEY: usize = 64;
const MAX_VALUE: usize = 4096;
/// A TTL below this is raised by it (see the module doc).
const HOUR_MS: u64 = 3_600_000;
/// Bounds one input: a reply that does not come within this is a hang.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

struct Harness {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let args = ServerArgs::try_parse_from([
            "burrow-server",
            "--port",
            "0",
            "--persistence",
            "off",
            "--shards",
            "4",
            "--max-key-bytes",
            &MAX_KEY.to_string(),
            "--max-value-bytes",
            &MAX_VALUE.to_string(),
            "--max-reply-bytes",
            "1KiB",
        ])
        .expect("server flags");
        let config = args.resolve().expect("server config");
        let handle = rt.block_on(ServerHandle::start(config)).expect("server starts");
        let addr = handle.addr;
        // Serves for the life of the fuzz process.
        std::mem::forget(handle);
        Harness { rt, addr }
    })
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let (frames, raw) = parse(data);
    h.rt.block_on(async {
        tokio::time::timeout(REPLY_DEADLINE, run(h.addr, &frames, raw))
            .await
            .expect("the server answers within 10 s")
    });
});

/// Reads the input as frames until the raw marker (`0xFF` in an opcode
/// position); returns them and the raw tail.
fn parse(data: &[u8]) -> (Vec<Frame>, &[u8]) {
    let mut r = Reader(data);
    let mut frames = Vec::new();
    while let Some(sel) = r.byte() {
        if sel == 0xFF {
            return (frames, r.0);
        }
        let (opcode, valid_extras) = if sel < 0xF0 {
            OPCODES[sel as usize % OPCODES.len()]
        } else {
            (r.byte().unwrap_or(0), &[0u8][..])
        };
        let f = r.byte().unwrap_or(0);
        let flags = match f >> 6 {
            0 | 1 => 0,
            2 => f & 0x07,
            _ => f,
        };
        let e = r.byte().unwrap_or(0);
        let extras_len = match e & 3 {
            3 => e >> 2,
            n => valid_extras[n as usize % valid_extras.len()],
        };
        let mut extras = r.take_padded(extras_len as usize);
        sanitize(opcode, &mut extras);
        let k = r.byte().unwrap_or(0);
        let key = match k {
            0 => Vec::new(),
            1..=0x7F => KEYS[k as usize % KEYS.len()].to_vec(),
            // Up to 127 bytes: past MAX_KEY is TOO_LARGE.
            _ => r.take_padded((k & 0x7F) as usize),
        };
        let v = r.byte().unwrap_or(0);
        let value = match v {
            0 => Vec::new(),
            0x01..=0x3F => r.take_padded(v as usize),
            0x40..=0x7F => NUMBERS[v as usize % NUMBERS.len()].to_vec(),
            0x80..=0xFD => array(&mut r, (v & 0x0F) as usize),
            0xFE => vec![b'v'; MAX_VALUE + 1],
            0xFF => vec![b'v'; MAX_VALUE],
        };
        frames.push(Frame {
            kind: burrow_proto::FrameKind::Request,
            opcode,
            flags,
            id: 0,
            aux: 0,
            extras: extras.into(),
            key: key.into(),
            value: value.into(),
        });
    }
    (frames, &[])
}

/// An ARRAY body (§3.2) of `n` items, each of a length from the input (up
/// to 255 bytes, so a few pushes pass the 1 KiB reply limit); with an odd
/// first length byte, a count one off (malformed).
fn array(r: &mut Reader, n: usize) -> Vec<u8> {
    let mut items = Vec::new();
    let mut lie = false;
    for i in 0..n {
        let len = r.byte().unwrap_or(0);
        lie |= i == 0 && len == 0xFF;
        items.push(vec![b'i'; len as usize]);
    }
    let mut out = BytesMut::new();
    out.put_u32(n as u32 + lie as u32);
    for item in items {
        out.put_u32(item.len() as u32);
        out.put_slice(&item);
    }
    out.to_vec()
}

/// Keeps an input's own effects deterministic: a TTL (SET's u64, EXPIRE's
/// positive i64) below an hour is raised by an hour; WAIT waits 1 ms.
fn sanitize(opcode: u8, extras: &mut [u8]) {
    match (opcode, extras.len()) {
        (SET, 8) => {
            let ttl = u64::from_be_bytes(extras[..8].try_into().expect("8 bytes"));
            if ttl != 0 && ttl < HOUR_MS {
                extras.copy_from_slice(&(ttl + HOUR_MS).to_be_bytes());
            }
        }
        (EXPIRE, 8) => {
            let ttl = i64::from_be_bytes(extras[..8].try_into().expect("8 bytes"));
            if ttl > 0 && (ttl as u64) < HOUR_MS {
                extras.copy_from_slice(&(ttl + HOUR_MS as i64).to_be_bytes());
            }
        }
        (WAIT, 12) => extras[4..].copy_from_slice(&1u64.to_be_bytes()),
        _ => {}
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// `n` bytes of input, zero-padded once it runs out.
    fn take_padded(&mut self, n: usize) -> Vec<u8> {
        let k = n.min(self.0.len());
        let mut out = self.0[..k].to_vec();
        out.resize(n, 0);
        self.0 = &self.0[k..];
        out
    }
}

fn request(opcode: u8, key: &[u8]) -> Frame {
    let mut f = Frame::request(opcode, 0);
    f.key = bytes::Bytes::copy_from_slice(key);
    f
}

/// Where the server's data stands: its DIGEST and op-log index.
#[derive(Debug, PartialEq, Eq, Clone)]
struct State {
    digest: Vec<u8>,
    last_index: u64,
}

/// The replies to a DIGEST and an INFO `oplog`, as a [`State`].
fn state(digest: &Frame, info: &Frame) -> State {
    assert_eq!((digest.opcode, digest.flags), (DIGEST, 0), "DIGEST answers OK: {digest:?}");
    assert_eq!((info.opcode, info.flags), (INFO, 0), "INFO oplog answers OK: {info:?}");
    let text = std::str::from_utf8(&info.value).expect("INFO is UTF-8");
    let last_index = text
        .lines()
        .find_map(|l| l.strip_prefix("last_index:"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO oplog has last_index: {text:?}"));
    State { digest: digest.value.to_vec(), last_index }
}

async fn run(addr: SocketAddr, frames: &[Frame], raw: &[u8]) {
    // The pipeline: FLUSHALL, then DIGEST, INFO oplog, FRAME for each frame,
    // then DIGEST, INFO oplog: each frame's reply sits between two states.
    let mut sent = vec![request(FLUSHALL, b"")];
    for f in frames {
        sent.push(request(DIGEST, b""));
        sent.push(request(INFO, b"oplog"));
        sent.push(f.clone());
    }
    sent.push(request(DIGEST, b""));
    sent.push(request(INFO, b"oplog"));
    for (i, f) in sent.iter_mut().enumerate() {
        f.id = i as u32 + 1;
    }
    let got = exchange(addr, &sent).await;
    assert!(!got.is_empty(), "FLUSHALL answered");
    assert_eq!(got[0].flags, 0, "FLUSHALL answers OK: {:?}", got[0]);
    for (i, reply) in got.iter().enumerate() {
        assert_eq!(
            (reply.id, reply.opcode),
            (sent[i].id, sent[i].opcode),
            "reply {i} pairs with its request"
        );
    }
    if got.len() < sent.len() {
        // The connection closed early: only right after a closing status.
        let last = got.last().expect("non-empty");
        assert!(
            matches!(last.flags, TOO_LARGE | BAD_FRAME),
            "the server closed the connection after {last:?}, not a closing status (request {:?})",
            sent[got.len() - 1]
        );
    }
    // Each frame at position 3 + 3k: its states at 1 + 3k (before) and
    // 4 + 3k (after), or from a new connection if it closed this one.
    let mut k = 0;
    while 3 + 3 * k < got.len() {
        let reply = &got[3 + 3 * k];
        if reply.flags != 0 && !matches!(reply.flags, IO_ERROR | NO_QUORUM) {
            let before = state(&got[1 + 3 * k], &got[2 + 3 * k]);
            let after = if got.len() >= 6 + 3 * k {
                state(&got[4 + 3 * k], &got[5 + 3 * k])
            } else {
                fresh_state(addr).await
            };
            assert_eq!(
                before,
                after,
                "a refused command changed the data set or the op log: {:?} answered {:?}",
                sent[3 + 3 * k],
                reply
            );
        }
        k += 1;
    }
    if !raw.is_empty() {
        raw_tail(addr, raw).await;
    }
    // The server is still up and serving.
    let ping = exchange(addr, &[request(PING, b"")]).await;
    assert_eq!(ping.len(), 1, "PING answered");
    assert_eq!(ping[0].flags, 0);
}

/// DIGEST and INFO oplog on a connection of their own.
async fn fresh_state(addr: SocketAddr) -> State {
    let mut q = [request(DIGEST, b""), request(INFO, b"oplog")];
    q[0].id = 1;
    q[1].id = 2;
    let got = exchange(addr, &q).await;
    assert_eq!(got.len(), 2, "DIGEST and INFO answered on a new connection");
    state(&got[0], &got[1])
}

/// Sends `frames` in one pipeline on a new connection, reading while it
/// writes (§6.1 backpressure), and returns the replies until all came or
/// the server closed.
async fn exchange(addr: SocketAddr, frames: &[Frame]) -> Vec<Frame> {
    let mut out = BytesMut::new();
    for f in frames {
        encode_request(f, &mut out);
    }
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut rd, mut wr) = stream.into_split();
    let write = async move {
        // A write error means the server closed early; the reads say why.
        let _ = wr.write_all(&out).await;
        wr
    };
    let read = async move {
        let mut codec = Codec::client(Limits { max_key: 0, max_value: 1 << 20, max_frame: 2 << 20 });
        let mut buf = BytesMut::with_capacity(16 * 1024);
        let mut replies = Vec::with_capacity(frames.len());
        while replies.len() < frames.len() {
            match codec.decode(&mut buf).expect("the server's replies are well framed") {
                Some(f) => replies.push(f),
                None => match rd.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                },
            }
        }
        replies
    };
    let (_wr, replies) = tokio::join!(write, read);
    replies
}

/// Request header and sections, as a client writes them (§2.1); lengths
/// always match the sections, so only the header's own fields can be wrong.
fn encode_request(f: &Frame, out: &mut BytesMut) {
    out.put_u8(0xB7);
    out.put_u8(0x01);
    out.put_u8(f.opcode);
    out.put_u8(f.flags);
    out.put_u32(f.id);
    out.put_u8(f.extras.len() as u8);
    out.put_u8(0);
    out.put_u16(f.key.len() as u16);
    out.put_u32(f.value.len() as u32);
    out.put_slice(&f.extras);
    out.put_slice(&f.key);
    out.put_slice(&f.value);
}

/// Raw bytes on a connection of their own, then the client's half-close;
/// replies are read and dropped until the server closes (it answers what
/// parses, then closes after a bad frame or at the end of input).
async fn raw_tail(addr: SocketAddr, raw: &[u8]) {
    let bytes: Vec<u8> = raw.iter().map(|&b| if b == WAIT { WAIT - 1 } else { b }).collect();
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let write = async move {
        let _ = wr.write_all(&bytes).await;
        let _ = wr.shutdown().await;
        wr
    };
    let read = async move {
        let mut sink = vec![0u8; 64 * 1024];
        while let Ok(n) = rd.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::join!(write, read);
}
