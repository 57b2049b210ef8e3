//! One client connection: read what is buffered, execute every complete
//! frame in order, write all replies with one write, repeat.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use super::stats::BatchCounts;
use super::{dispatch, now_ms, Role, Shared, SnapshotRefusal};
use crate::replication::wire;
use burrow_proto::{encode_response, BodyType, Codec, CodecError, ErrorChain, Peek, Status};

/// Write replies out once this much is buffered, even mid-batch, so a huge
/// pipeline cannot grow the write buffer without bound.
const FLUSH_AT: usize = 256 * 1024;
/// A read buffer that grew past this (a large value) is released afterwards.
const KEEP_BUFFER: usize = 1024 * 1024;
/// How long, and how much, a closing connection still reads and discards.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;
/// Once shutdown has begun, how long one write of replies may block. Without
/// it a peer that stops reading would hold shutdown open forever.
const SHUTDOWN_WRITE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves one connection. It arrives as a std socket (non-blocking) and is
/// registered with the reactor of the runtime this future runs on, so its
/// readiness wake-ups stay on that runtime's thread.
pub(super) async fn serve(
    stream: std::net::TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    shared.stats.connected_clients.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("conn", %peer);
    async {
        debug!("connected");
        let result = match TcpStream::from_std(stream) {
            Ok(stream) => serve_inner(stream, peer, &shared, &cancel).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => debug!("closed"),
            Err(e) => debug!(error = %e, "closed on i/o error"),
        }
    }
    .instrument(span)
    .await;
    shared.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
}

async fn serve_inner(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    cancel: &CancellationToken,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let codec = Codec::server(shared.config.limits());
    let mut rbuf = BytesMut::with_capacity(16 * 1024);
    let mut wbuf = BytesMut::with_capacity(16 * 1024);
    let mut counts = BatchCounts::default();
    // With persistence on, write replies wait for the WAL; these are their
    // places in `wbuf`, so a failed write or fsync can turn them into IO_ERROR.
    let mut durable = Durable::new(shared);
    // Whether this connection ever wrote (WAIT waits for its last write).
    let mut wrote_any = false;
    loop {
        // Execute every complete frame already buffered, in order.
        let now = now_ms();
        let mut broken = false;
        let mut deferred = None;
        let mut wrote = false;
        let mut handshake = None;
        // Frames are executed straight from the read buffer (borrowed, no
        // copies); `used` bytes are consumed once the batch is done.
        let mut used = 0;
        let mut need = 0;
        loop {
            match codec.peek(&rbuf[used..]) {
                Ok(Peek::Frame(frame, len))
                    if frame.opcode == wire::OP_HANDSHAKE && shared.repl.role() == Role::Leader =>
                {
                    used += len;
                    match wire::decode(&frame) {
                        Ok(hello) => {
                            handshake = Some(hello);
                            break;
                        }
                        Err(e) => {
                            let msg = ErrorChain(&e).to_string();
                            debug!(error = %msg, "malformed replication handshake");
                            let (op, id) = (frame.opcode, frame.id);
                            encode_response(
                                &mut wbuf,
                                op,
                                id,
                                Status::BadRequest,
                                BodyType::Text,
                                &[],
                                msg.as_bytes(),
                            );
                        }
                    }
                }
                Ok(Peek::Frame(frame, len)) => {
                    used += len;
                    let start = wbuf.len();
                    let done = dispatch::execute(shared, &frame, now, &mut wbuf);
                    counts.add(frame.opcode, done.error);
                    if done.write && !done.error {
                        durable.note(start, wbuf.len(), frame.opcode, frame.id);
                    }
                    if done.write && !done.error {
                        wrote = true;
                    }
                    if let Some(background) = done.snapshot {
                        deferred = Some((Deferred::Snapshot { background }, frame.opcode, frame.id));
                        break;
                    }
                    if let Some((replicas, timeout_ms)) = done.wait {
                        deferred = Some((Deferred::Wait { replicas, timeout_ms }, frame.opcode, frame.id));
                        break;
                    }
                    if wbuf.len() >= FLUSH_AT {
                        durable.flush(&mut stream, &mut wbuf, shared, cancel).await?;
                    }
                }
                Ok(Peek::Need(n)) => {
                    need = n;
                    break;
                }
                Err(e) => {
                    reply_codec_error(shared, &e, &mut wbuf);
                    broken = true;
                    break;
                }
            }
        }
        rbuf.advance(used);
        if need > rbuf.len() {
            // The header passed the limits: room for the rest of this frame.
            rbuf.reserve(need - rbuf.len());
        }
        if !counts.is_empty() {
            shared.stats.record(&counts);
            counts.clear();
        }
        if wrote {
            wrote_any = true;
            shared.repl.appended();
        }
        durable.flush(&mut stream, &mut wbuf, shared, cancel).await?;
        if let Some(hello) = handshake {
            // From here on this connection is a follower's replication link.
            shared.repl.serve_link(stream, peer, rbuf, hello, cancel).await;
            return Ok(());
        }
        if let Some((what, opcode, id)) = deferred {
            match what {
                Deferred::Snapshot { background } => {
                    snapshot(shared, background, opcode, id, &mut wbuf).await
                }
                Deferred::Wait { replicas, timeout_ms } => {
                    // The log's position now covers every write this
                    // connection made (and maybe others' since: WAIT may
                    // wait a little longer, never less).
                    let index = if wrote_any { shared.store.log().last_index() } else { 0 };
                    let n = wait(shared, index, replicas, timeout_ms, cancel).await;
                    encode_response(&mut wbuf, opcode, id, Status::Ok, BodyType::Int, &[], &n.to_be_bytes());
                }
            }
            write_out(&mut stream, &wbuf, cancel, shared.config.idle_timeout).await?;
            wbuf.clear();
            // More frames may already be buffered: run them before reading.
            continue;
        }
        if broken {
            // After a bad header the stream cannot be resynchronised: close,
            // but drain briefly first so unread input does not turn the close
            // into a reset that destroys the error reply before it is read.
            linger_close(&mut stream).await;
            return Ok(());
        }
        if rbuf.capacity() > KEEP_BUFFER && rbuf.is_empty() {
            rbuf = BytesMut::with_capacity(16 * 1024);
        }
        if wbuf.capacity() > KEEP_BUFFER {
            wbuf = BytesMut::with_capacity(16 * 1024);
        }
        let read = async {
            match shared.config.idle_timeout {
                None => stream.read_buf(&mut rbuf).await,
                Some(t) => match tokio::time::timeout(t, stream.read_buf(&mut rbuf)).await {
                    Ok(r) => r,
                    Err(_) => {
                        debug!(timeout_s = t.as_secs(), "idle timeout; closing");
                        Ok(0)
                    }
                },
            }
        };
        let n = tokio::select! {
            // Shutdown is only observed between batches: requests already read are answered.
            _ = cancel.cancelled() => return Ok(()),
            n = read => n?,
        };
        if n == 0 {
            if !rbuf.is_empty() {
                debug!(pending = rbuf.len(), "peer closed in the middle of a frame");
            }
            return Ok(());
        }
    }
}

/// Requests the connection carries out itself, asynchronously, before it
/// replies to them and reads on.
enum Deferred {
    Snapshot { background: bool },
    Wait { replicas: u32, timeout_ms: u64 },
}

/// WAIT: blocks until `replicas` followers acknowledged `index` durably, or
/// `timeout_ms` passes (0: no limit; shutdown also ends it), and returns
/// how many did (Redis semantics: the count at the end, which may be fewer).
async fn wait(
    shared: &Shared,
    index: u64,
    replicas: u32,
    timeout_ms: u64,
    cancel: &CancellationToken,
) -> i64 {
    let reached = shared.repl.wait_acked(index, replicas as usize);
    let limit = async {
        match timeout_ms {
            0 => std::future::pending().await,
            ms => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
    };
    tokio::select! {
        _ = reached => {}
        _ = limit => {}
        _ = cancel.cancelled() => {}
    }
    shared.repl.acked_count(index) as i64
}

/// Replies to SNAPSHOT: write one now, or start one in the background.
async fn snapshot(shared: &Shared, background: bool, opcode: u8, id: u32, wbuf: &mut BytesMut) {
    let Some(persist) = shared.persist.clone() else { return };
    let store = shared.store.clone();
    let text = |wbuf: &mut BytesMut, t: &str| {
        encode_response(wbuf, opcode, id, Status::Ok, BodyType::Text, &[], t.as_bytes())
    };
    let error = |wbuf: &mut BytesMut, s: Status, t: &str| {
        encode_response(wbuf, opcode, id, s, BodyType::Text, &[], t.as_bytes())
    };
    if background {
        if persist.in_progress() {
            error(wbuf, Status::InProgress, "a snapshot is already being written");
            return;
        }
        tokio::spawn(async move {
            let _ = persist.snapshot(store, true).await;
        });
        text(wbuf, "background snapshot started");
        return;
    }
    match persist.snapshot(store, false).await {
        Ok(info) => text(
            wbuf,
            &format!(
                "snapshot written: {} ({} keys, {} bytes, covers index {}, {} ms)",
                info.path.display(),
                info.entries,
                info.bytes,
                info.index,
                info.duration.as_millis()
            ),
        ),
        Err(SnapshotRefusal::InProgress) => {
            error(wbuf, Status::InProgress, "a snapshot is already being written")
        }
        Err(SnapshotRefusal::Failed(e)) => error(wbuf, Status::IoError, &format!("snapshot failed: {e}")),
    }
}

/// Holds back write replies until the WAL has them: fsynced under
/// `--fsync always`; handed to the OS (written) under `everysec` and `no`,
/// so that a process crash never loses an acknowledged write (as Redis
/// writes its AOF buffer before replying).
struct Durable {
    rx: Option<tokio::sync::watch::Receiver<crate::persist::Durability>>,
    /// Wait for `synced` (always) rather than `written`.
    fsynced: bool,
    /// (start, end, opcode, id) of each write reply in the write buffer.
    writes: Vec<(usize, usize, u8, u32)>,
    /// Quorum mode (leader): the commit index, and how long a write may
    /// wait for a majority before NO_QUORUM.
    quorum: Option<(tokio::sync::watch::Receiver<u64>, Duration)>,
}

impl Durable {
    fn new(shared: &Shared) -> Durable {
        let rx = shared.persist.as_ref().map(|p| p.durability());
        let fsynced =
            shared.persist.as_ref().is_some_and(|p| p.cfg.fsync == crate::persist::FsyncPolicy::Always);
        Durable { rx, fsynced, writes: Vec::new(), quorum: shared.repl.quorum() }
    }

    fn note(&mut self, start: usize, end: usize, opcode: u8, id: u32) {
        if self.rx.is_some() || self.quorum.is_some() {
            self.writes.push((start, end, opcode, id));
        }
    }

    /// Writes `wbuf` out, first waiting (if it holds write replies) until
    /// the WAL is fsynced (or, not under `always`, written) through every
    /// record logged so far; if the WAL failed instead, those replies
    /// become IO_ERROR.
    async fn flush(
        &mut self,
        stream: &mut TcpStream,
        wbuf: &mut BytesMut,
        shared: &Shared,
        cancel: &CancellationToken,
    ) -> std::io::Result<()> {
        let target = if self.writes.is_empty() { 0 } else { shared.store.log().last_index() };
        if let (Some(rx), false) = (self.rx.as_mut(), self.writes.is_empty()) {
            let fsynced = self.fsynced;
            let reached = move |d: &crate::persist::Durability| {
                if fsynced {
                    d.synced >= target
                } else {
                    d.written >= target
                }
            };
            let ok = match rx.wait_for(|d| reached(d) || d.failed).await {
                Ok(d) => reached(&d),
                Err(_) => false,
            };
            if !ok {
                let msg = dispatch::wal_failure_message(shared);
                warn!(writes = self.writes.len(), "WAL not durable: answering writes with IO_ERROR");
                Self::replace(&self.writes, wbuf, Status::IoError, &msg);
                self.writes.clear();
            }
        }
        if let (Some((commit, limit)), false) = (self.quorum.as_mut(), self.writes.is_empty()) {
            // The streamer may not have seen these records yet.
            shared.repl.appended();
            let limit = *limit;
            let reached = tokio::time::timeout(limit, commit.wait_for(|c| *c >= target)).await;
            let reached = matches!(reached, Ok(Ok(_)));
            if !reached {
                let msg = format!(
                    "write applied on the leader but not held by a majority within {} ms (quorum mode); \
                     it may or may not survive a failover",
                    limit.as_millis()
                );
                warn!(
                    writes = self.writes.len(),
                    index = target,
                    "no quorum: answering writes with NO_QUORUM"
                );
                Self::replace(&self.writes, wbuf, Status::NoQuorum, &msg);
            }
        }
        self.writes.clear();
        if !wbuf.is_empty() {
            write_out(stream, wbuf, cancel, shared.config.idle_timeout).await?;
            wbuf.clear();
        }
        Ok(())
    }
}

impl Durable {
    /// Rewrites every noted write reply in `wbuf` as an error.
    fn replace(writes: &[(usize, usize, u8, u32)], wbuf: &mut BytesMut, status: Status, msg: &str) {
        let old = wbuf.split();
        let mut at = 0;
        for &(start, end, opcode, id) in writes {
            wbuf.extend_from_slice(&old[at..start]);
            encode_response(wbuf, opcode, id, status, BodyType::Text, &[], msg.as_bytes());
            at = end;
        }
        wbuf.extend_from_slice(&old[at..]);
    }
}

/// Writes replies. Gives up when the peer has read nothing for the idle
/// timeout (if one is set: a client that never reads must not hold a
/// connection slot and its buffers forever), or `SHUTDOWN_WRITE_GRACE`
/// after shutdown begins.
async fn write_out(
    stream: &mut TcpStream,
    buf: &[u8],
    cancel: &CancellationToken,
    stall: Option<Duration>,
) -> std::io::Result<()> {
    let give_up = async {
        cancel.cancelled().await;
        tokio::time::sleep(SHUTDOWN_WRITE_GRACE).await;
    };
    tokio::pin!(give_up);
    let mut pos = 0;
    while pos < buf.len() {
        let write = async {
            match stall {
                None => stream.write(&buf[pos..]).await,
                Some(t) => tokio::time::timeout(t, stream.write(&buf[pos..])).await.unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("the peer has read no reply for {}s (idle timeout)", t.as_secs()),
                    ))
                }),
            }
        };
        let n = tokio::select! {
            // Write first: a write that completes at once never touches the token.
            biased;
            r = write => r?,
            _ = &mut give_up => return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "shutting down and the peer is not reading its replies",
            )),
        };
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        pos += n;
    }
    Ok(())
}

fn reply_codec_error(shared: &Shared, e: &CodecError, wbuf: &mut BytesMut) {
    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
    warn!(error = %ErrorChain(e), "protocol error; closing connection");
    if let Some(status) = e.status() {
        let (id, opcode) = e.request();
        encode_response(wbuf, opcode, id, status, BodyType::Text, &[], e.to_string().as_bytes());
    }
}

async fn linger_close(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async {
        let mut total = 0usize;
        while total < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Answers a connection over the limit with BUSY, then closes it.
pub(super) async fn refuse(mut stream: TcpStream) {
    let mut buf = BytesMut::new();
    let msg = b"max connections reached; try again later";
    encode_response(&mut buf, 0, 0, Status::Busy, BodyType::Text, &[], msg);
    let _ = stream.write_all(&buf).await;
    linger_close(&mut stream).await;
}
