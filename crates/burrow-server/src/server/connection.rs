//! One client connection: read what is buffered, execute every complete
//! frame in order, write all replies with one write, repeat.
//!
//! The connection is generic over its IO (`AsyncRead + AsyncWrite`): TCP
//! specifics (registering the socket, `TCP_NODELAY`) stay at the accept
//! site, so scripted IO in tests, and later TLS or another engine, drive
//! the same loop. Each turn is one [`Step`], an explicit outcome: replied
//! (read more), deferred (WAIT or SNAPSHOT, carried out here before going
//! on), upgrade (a follower's handshake: the IO and the unread bytes go to
//! the replication driver as `FramedParts`), or close (the framing broke).
//!
//! **Why requests are not read through `Framed`.** The client and both ends
//! of every replication link are `Framed<_, Codec>` streams of owned
//! frames. Requests instead are executed straight from the read buffer,
//! borrowed (`Codec::peek`, the same header parser as `Decoder::decode`),
//! and the whole batch is dropped with one `advance`. Decoding each request
//! into an owned `Frame` instead (`Decoder::decode`, as `Framed` does: the
//! payload split off the buffer into reference-counted `Bytes`, three
//! slices, all dropped after the reply) was measured with
//! `bench/callgrind.sh` (server instructions for the whole run: 300k
//! requests, 50 clients, pipeline 16, 32-byte values, one thread):
//!
//! | workload | borrowed (`peek`) | owned (`decode`) | per request |
//! |----------|------------------:|-----------------:|------------:|
//! | SET P16  | 463.7 M           | 549.5 M (+18.5 %) | +286        |
//! | GET P16  | 234.6 M           | 317.6 M (+35.4 %) | +277        |

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::codec::FramedParts;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use super::clients::ClientRecord;
use super::input_budget::{Reservation, LARGE_FRAME};
use super::replication::Handshake;
use super::stats::Counter;
use super::{dispatch, now_ms, Shared, SnapshotRefusal};
use crate::ticks;
use burrow_proto::{
    encode_response, BodyType, Codec, CodecError, ErrorChain, Frame, FrameRef, Opcode, Peek, Status,
    HEADER_LEN,
};
use durable::Durable;
use gate::{Gate, Gated};
use output::write_out;

/// Write replies out once this much is buffered, even mid-batch, so a huge
/// pipeline cannot grow the write buffer without bound.
const FLUSH_AT: usize = 256 * 1024;
/// Request and reply bytes a connection handles before it yields to the
/// other tasks on its runtime thread (other clients, and on a cluster
/// member the replication and election tasks). Without it one connection
/// executed every buffered request (64 MiB of SETs) in one turn and a
/// follower's election timer fired (issue 11 item 8). Small requests never
/// reach it within a batch: pipeline 1 and 16 run as before, yielding once
/// per MiB of traffic at most.
const TURN_BUDGET: usize = 1024 * 1024;
/// Initial size of the read and write buffers.
const BUFFER: usize = 16 * 1024;
/// A read buffer that grew past this (a large value) is released afterwards.
const KEEP_BUFFER: usize = 1024 * 1024;
/// A request refused as over a key/value/frame limit has its payload read
/// and dropped, so the connection goes on (protocol.md §7), unless it
/// declares more than this many times the frame limit: then reading it
/// would be a waste and the connection closes as after a bad header.
const DISCARD_FACTOR: u64 = 2;
/// How long, and how much, a closing connection still reads and discards.
const LINGER: std::time::Duration = std::time::Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;

/// Serves one accepted TCP connection. It arrives as a std socket
/// (non-blocking) and is registered with the reactor of the runtime this
/// future runs on, so its readiness wake-ups stay on that runtime's thread.
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
        match (register(stream), &shared.tls) {
            (Err(e), _) => debug!(error = %e, "closed on i/o error"),
            (Ok(io), None) => serve_io(io, peer, &shared, &cancel, false).await,
            // The handshake runs here, in the connection's own task, under
            // its deadline: never in the accept loop.
            (Ok(io), Some(tls)) => {
                let accepted = tokio::select! {
                    _ = cancel.cancelled() => None,
                    a = tls.accept(io, peer) => a,
                };
                if let Some(a) = accepted {
                    serve_io(a.stream, peer, &shared, &cancel, a.client_certificate).await
                }
            }
        }
    }
    .instrument(span)
    .await;
    shared.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
}

/// Serves one accepted Unix socket connection: the same loop, limits and
/// AUTH as TCP; never TLS, and never a replication or peer link (members
/// dial each other's TCP address: a handshake here closes the connection
/// without a reply, as from an unknown member, logged at most once per
/// `LOG_EVERY`). `peer` is `unix:PATH`, what logs (and client listings) show.
pub(super) async fn serve_unix(
    stream: std::os::unix::net::UnixStream,
    peer: Arc<str>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    shared.stats.connected_clients.fetch_add(1, Ordering::Relaxed);
    let span = info_span!("conn", peer = %peer);
    async {
        debug!("connected");
        let io = match tokio::net::UnixStream::from_std(stream) {
            Ok(io) => io,
            Err(e) => return debug!(error = %e, "closed on i/o error"),
        };
        // Listed by CLIENT as `unix:PATH`; SLOWLOG shows no IP address for it.
        let registered = shared.clients.register(peer.to_string(), false, !shared.auth.required(), &cancel);
        let record = registered.record.clone();
        let ended = Connection::new(io, &shared, &record.kill).with_client(record.clone()).run().await;
        drop(registered);
        match ended {
            Ok(Ended::Closed) => debug!("closed"),
            Ok(Ended::Upgrade(..)) => {
                if let Some(skipped) = shared.unix_link_log.allow(std::time::Instant::now()) {
                    warn!(
                        skipped,
                        "replication handshake on the unix socket refused (members link over TCP)"
                    );
                }
            }
            Err(e) => debug!(error = %e, "closed on i/o error"),
        }
    }
    .instrument(span)
    .await;
    shared.stats.connected_clients.fetch_sub(1, Ordering::Relaxed);
}

/// Serves requests on `io` (TCP or TLS) until the connection ends, then a
/// replication link if it turned into one. `client_certificate`: the TLS
/// peer presented a verified client certificate.
async fn serve_io<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    peer: SocketAddr,
    shared: &Shared,
    cancel: &CancellationToken,
    client_certificate: bool,
) {
    // Listed by CLIENT while it serves requests; a replication link is not a client.
    let registered =
        shared.clients.register(peer.to_string(), shared.tls.is_some(), !shared.auth.required(), cancel);
    let record = registered.record.clone();
    let ended =
        Connection::new(io, shared, &record.kill).with_peer(peer).with_client(record.clone()).run().await;
    drop(registered);
    match ended {
        Ok(Ended::Closed) => debug!("closed"),
        // From here on this connection is a follower's replication link.
        Ok(Ended::Upgrade(hello, link)) => {
            shared.repl.serve_link(link, peer, hello, client_certificate, cancel).await
        }
        Err(e) => debug!(error = %e, "closed on i/o error"),
    }
}

/// The TCP specifics of a new connection: this runtime's reactor, and
/// replies sent as soon as they are written (no Nagle delay).
fn register(stream: std::net::TcpStream) -> io::Result<TcpStream> {
    let stream = TcpStream::from_std(stream)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// How a connection ended.
#[derive(Debug)]
pub(super) enum Ended<S> {
    /// The peer closed or went idle, the framing broke, or shutdown began.
    Closed,
    /// A follower's handshake: the connection becomes its replication
    /// link, handing over the IO and the bytes read after the handshake
    /// (`read_buf`).
    Upgrade(Handshake, FramedParts<S, Codec>),
}

/// What one pass over the buffered requests led to.
#[derive(Debug)]
enum Step {
    /// Every complete request is answered: read more.
    Replied,
    /// A request the connection carries out itself before replying to it
    /// and running the requests after it.
    Deferred(Deferred),
    /// A replication handshake (leader only); earlier replies are written.
    /// Boxed: the hot variants stay small.
    Upgrade(Box<Handshake>),
    /// The framing broke and the error is answered: close.
    Close,
}

/// Where executing the buffered requests stopped.
enum Stop {
    /// `FLUSH_AT` bytes of replies are waiting, or the turn's budget is
    /// spent: write them (and yield, past `TURN_BUDGET`), then go on.
    Full,
    Done(Step),
}

/// This connection's writes, as WAIT and the leader's streamer see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writes {
    None,
    /// Some executed since the streamer was last told.
    Unannounced,
    Announced,
}

/// One connection's state between steps.
pub(super) struct Connection<'a, S> {
    io: S,
    shared: &'a Shared,
    cancel: &'a CancellationToken,
    codec: Codec,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// Per-command counts and latencies (`commands`).
    counts: Counter,
    /// With persistence or quorum on, write replies, and read replies that
    /// show recent writes, wait for the WAL (and a majority); it knows
    /// their places in `wbuf`, so a failed write or fsync, or no majority,
    /// can turn them into errors.
    durable: Durable,
    writes: Writes,
    /// Authentication: what runs before AUTH succeeds.
    gate: Gate,
    /// The length of the incomplete frame the read buffer holds the start
    /// of, when it is larger than `LARGE_FRAME` (else 0): its bytes are
    /// read only under a reservation of the global input budget.
    large_frame: usize,
    /// That reservation, returned once the frame is executed.
    input: Option<Reservation<'a>>,
    /// Request and reply bytes handled since this connection last yielded
    /// (`TURN_BUDGET`).
    turn: usize,
    /// Payload bytes of a refused over-limit request still to be read and
    /// dropped. They never stay in the read buffer, so they need no
    /// reservation of the input budget.
    discard: u64,
    /// The client's address, for SLOWLOG.
    peer: SocketAddr,
    /// This connection as CLIENT LIST shows it (its `kill` is `cancel`).
    client: Arc<ClientRecord>,
    /// The last command's opcode, for CLIENT LIST.
    last_opcode: u8,
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Connection<'a, S> {
    pub(super) fn new(io: S, shared: &'a Shared, cancel: &'a CancellationToken) -> Self {
        Connection {
            io,
            shared,
            cancel,
            codec: Codec::server(shared.config.limits()),
            rbuf: BytesMut::with_capacity(BUFFER),
            wbuf: BytesMut::with_capacity(BUFFER),
            counts: shared.stats.counter(),
            durable: Durable::new(shared),
            writes: Writes::None,
            gate: Gate::new(&shared.auth),
            large_frame: 0,
            input: None,
            turn: 0,
            discard: 0,
            peer: SocketAddr::from(([0, 0, 0, 0], 0)),
            client: ClientRecord::detached(cancel.clone()),
            last_opcode: 0xff,
        }
    }

    /// This connection's record in the registry (CLIENT).
    pub(super) fn with_client(mut self, client: Arc<ClientRecord>) -> Self {
        self.client = client;
        self
    }

    /// The client's address, as SLOWLOG reports it.
    pub(super) fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = peer;
        self
    }

    /// Serves requests until the connection ends; an I/O error ends it too.
    /// The loop's stages are awaited here, not in nested `async fn`s: at
    /// one request per wake-up (pipeline depth 1) each nesting level
    /// measurably costs instructions (~2.5 %, `bench/callgrind.sh` SET P1).
    pub(super) async fn run(mut self) -> io::Result<Ended<S>> {
        // One wait for shutdown for the connection's life, not one per
        // read: registered with the token once, instead of registered and
        // removed again (two locks) at every read (`bench/callgrind.sh`,
        // SET P1).
        let cancel = self.cancel;
        let shutdown = cancel.cancelled();
        tokio::pin!(shutdown);
        loop {
            // One step: every complete request buffered, executed in order,
            // the replies written with one write (unless they pass FLUSH_AT).
            let mut now = now_ms();
            self.durable.refresh(self.shared);
            let step = loop {
                match crate::oplog::defer_wal_wakes(|| self.execute_buffered(now)) {
                    Stop::Full => {
                        self.durable.flush(&mut self.io, &mut self.wbuf, self.shared, self.cancel).await?;
                        if self.turn >= TURN_BUDGET {
                            // The turn's work is done and written: let the
                            // other tasks run before executing more.
                            self.turn = 0;
                            tokio::task::yield_now().await;
                            now = now_ms();
                        }
                    }
                    Stop::Done(step) => break step,
                }
            };
            self.end_batch();
            self.client.note_batch(now, self.last_opcode, self.rbuf.len(), self.wbuf.len());
            self.return_input();
            self.durable.flush(&mut self.io, &mut self.wbuf, self.shared, self.cancel).await?;
            self.client.note_written();
            match step {
                Step::Replied => {}
                Step::Deferred(what) => {
                    if self.carry_out(what).await? == Next::Close {
                        linger_close(&mut self.io).await;
                        return Ok(Ended::Closed);
                    }
                    // More frames may already be buffered: run them before reading.
                    continue;
                }
                Step::Upgrade(hello) => return Ok(Ended::Upgrade(*hello, self.into_link())),
                Step::Close => {
                    // After a bad header the stream cannot be resynchronised:
                    // close, but drain briefly first so unread input does not
                    // turn the close into a reset that destroys the error
                    // reply before it is read.
                    linger_close(&mut self.io).await;
                    return Ok(Ended::Closed);
                }
            }
            self.shrink();
            if self.discard != 0 {
                // Room to read the refused payload in pieces, never whole.
                self.rbuf.reserve(BUFFER);
            }
            if self.large_frame != 0 && self.input.is_none() {
                // Nothing more of a large frame is read until the global
                // budget has room for all of it (issue 11).
                let budget = &self.shared.input;
                let reserved = tokio::select! {
                    _ = self.cancel.cancelled() => return Ok(Ended::Closed),
                    r = budget.reserve(self.large_frame) => r,
                };
                self.input = Some(reserved);
                self.rbuf.reserve(self.large_frame.saturating_sub(self.rbuf.len()));
            }
            // Read what the peer sent, up to the idle timeout. Shutdown is
            // only observed here, between batches: requests already read
            // are answered.
            let (io, rbuf) = (&mut self.io, &mut self.rbuf);
            let read = async {
                match self.shared.config.idle_timeout {
                    None => io.read_buf(rbuf).await,
                    Some(t) => match tokio::time::timeout(t, io.read_buf(rbuf)).await {
                        Ok(r) => r,
                        Err(_) => {
                            debug!(timeout_s = t.as_secs(), "idle timeout; closing");
                            Ok(0)
                        }
                    },
                }
            };
            let n = tokio::select! {
                // In order: no random draw per read.
                biased;
                _ = &mut shutdown => return Ok(Ended::Closed),
                n = read => n?,
            };
            if n == 0 {
                if !self.rbuf.is_empty() {
                    debug!(pending = self.rbuf.len(), "peer closed in the middle of a frame");
                }
                return Ok(Ended::Closed);
            }
        }
    }

    /// After a batch: the leader's streamer woken if the batch wrote.
    fn end_batch(&mut self) {
        if self.writes == Writes::Unannounced {
            self.writes = Writes::Announced;
            self.shared.repl.appended();
        }
    }

    /// Executes complete frames straight from the read buffer (borrowed, no
    /// copies) until one stops the batch, then drops the bytes they used.
    fn execute_buffered(&mut self, now: u64) -> Stop {
        let shared = self.shared;
        if self.discard != 0 {
            if let Some(stop) = self.go_on_skipping() {
                return stop;
            }
        }
        let mut used = 0;
        // The one timing point for the latency histograms and SLOWLOG: each
        // command's time runs from the end of the one before it (its
        // decoding included), one counter read per command (`ticks`); the
        // threshold is read once per batch, in ticks.
        let clock = ticks::clock();
        let slow = shared.slowlog.threshold_ticks();
        shared.stats.on_this_thread(&mut self.counts);
        // Read once per batch: nobody monitoring costs one load.
        let monitoring = shared.monitors.watching();
        let mut mark = clock.now();
        // Past this many request bytes the batch stops (`TURN_BUDGET`).
        let budget = TURN_BUDGET.saturating_sub(self.turn);
        // The frame after the current one is parsed before the current one
        // runs, so its key's probe can be prefetched meanwhile
        // (`Store::prefetch`: P16 GETs and SETs miss the cache on every
        // lookup otherwise). The codec has no state a frame changes, so
        // that parse is the one the loop uses; anything but a complete
        // frame is parsed again in its turn.
        let stop = 'batch: loop {
            let mut next: Option<(FrameRef<'_>, usize)> = None;
            // Runs frames until one stops the batch (`break 'batch`) or the
            // codec refuses one (answered below, outside `next`'s borrow).
            let refused = loop {
                let peeked = match next.take() {
                    Some((frame, len)) => Ok(Peek::Frame(frame, len)),
                    None => self.codec.peek(&self.rbuf[used..]),
                };
                let (frame, len) = match peeked {
                    Ok(Peek::Frame(frame, len)) => {
                        if len > LARGE_FRAME {
                            // Its reservation (if any) is returned after this step.
                            self.large_frame = 0;
                        }
                        (frame, len)
                    }
                    Ok(Peek::Need(n)) => {
                        self.rbuf.advance(used);
                        self.turn += used + self.wbuf.len();
                        if self.turn >= TURN_BUDGET {
                            // Reads that find bytes waiting do not yield: a
                            // client streaming large requests would keep the
                            // thread. `run` writes, yields and calls again,
                            // which ends here with the turn reset.
                            return Stop::Full;
                        }
                        if n > LARGE_FRAME {
                            // Room is made once the budget grants it (`run`).
                            if self.large_frame != n {
                                self.input = None;
                            }
                            self.large_frame = n;
                        } else if n > self.rbuf.len() {
                            // The header passed the limits: room for the rest of this frame.
                            self.rbuf.reserve(n - self.rbuf.len());
                        }
                        return Stop::Done(Step::Replied);
                    }
                    Err(e) => break e,
                };
                used += len;
                if let Ok(Peek::Frame(f, l)) = self.codec.peek(&self.rbuf[used..]) {
                    if !f.key.is_empty() {
                        shared.store.prefetch(f.key);
                    }
                    next = Some((f, l));
                }
                match shared.repl.accepts_link(&frame) {
                    None => {}
                    Some(Ok(hello)) => break 'batch Stop::Done(Step::Upgrade(Box::new(hello))),
                    Some(Err(e)) => {
                        let msg = ErrorChain(&e).to_string();
                        debug!(error = %msg, "malformed replication handshake");
                        let (op, id) = (frame.opcode, frame.id);
                        encode_response(
                            &mut self.wbuf,
                            op,
                            id,
                            Status::BadRequest,
                            BodyType::Text,
                            &[],
                            msg.as_bytes(),
                        );
                        continue;
                    }
                }
                if self.gate.intercepts(frame.opcode) {
                    let start_gate = self.wbuf.len();
                    let gated = self.gate.handle(shared, &frame, &mut self.wbuf);
                    self.client.set_authenticated(self.gate.is_open());
                    match gated {
                        Gated::Pass => {}
                        Gated::Replied { error } => {
                            let status = status_at(&self.wbuf, start_gate);
                            self.counts.add(clock, frame.opcode, status, error, clock.lap(&mut mark));
                            continue;
                        }
                        Gated::Failed { message, close } => {
                            self.counts.add(
                                clock,
                                frame.opcode,
                                Status::NoAuth as u8,
                                true,
                                clock.lap(&mut mark),
                            );
                            let (opcode, id) = (frame.opcode, frame.id);
                            break 'batch Stop::Done(Step::Deferred(Deferred::AuthFailed {
                                opcode,
                                id,
                                message,
                                close,
                            }));
                        }
                    }
                    // CLIENT and MONITOR need the connection; they sit in the
                    // gate's opcode range, so the hot path tests nothing more.
                    if frame.opcode == Opcode::Client as u8 {
                        if monitoring {
                            shared.monitors.publish(&frame, &self.client.addr);
                        }
                        let start = self.wbuf.len();
                        let error = introspect::client(shared, &self.client, &frame, now, &mut self.wbuf);
                        let status = status_at(&self.wbuf, start);
                        self.counts.add(clock, frame.opcode, status, error, clock.lap(&mut mark));
                        self.last_opcode = frame.opcode;
                        continue;
                    }
                    if frame.opcode == Opcode::Monitor as u8 {
                        let parsed = introspect::monitor_request(&frame);
                        let status = parsed.as_ref().map_or_else(|e| e.status as u8, |()| Status::Ok as u8);
                        self.counts.add(clock, frame.opcode, status, parsed.is_err(), clock.lap(&mut mark));
                        self.last_opcode = frame.opcode;
                        match parsed {
                            Ok(()) => {
                                break 'batch Stop::Done(Step::Deferred(Deferred::Monitor { id: frame.id }))
                            }
                            Err(e) => {
                                let (op, id) = (frame.opcode, frame.id);
                                let msg = e.message.as_bytes();
                                encode_response(&mut self.wbuf, op, id, e.status, BodyType::Text, &[], msg);
                                continue;
                            }
                        }
                    }
                }
                if monitoring {
                    shared.monitors.publish(&frame, &self.client.addr);
                }
                let start = self.wbuf.len();
                let done = dispatch::execute(shared, &frame, now, &mut self.wbuf);
                let took = clock.lap(&mut mark);
                if took >= slow {
                    shared.slowlog.record_ticks(frame.opcode, frame.key, took, self.peer);
                }
                self.counts.add(clock, frame.opcode, status_at(&self.wbuf, start), done.error, took);
                self.last_opcode = frame.opcode;
                if done.write && !done.error {
                    self.durable.note_write(start, self.wbuf.len(), frame.opcode, frame.id);
                    self.writes = Writes::Unannounced;
                } else if done.seen != 0 || done.read {
                    self.durable.note_read(start, self.wbuf.len(), frame.opcode, frame.id, done.seen);
                }
                let (opcode, id) = (frame.opcode, frame.id);
                if let Some(background) = done.snapshot {
                    break 'batch Stop::Done(Step::Deferred(Deferred::Snapshot { background, opcode, id }));
                }
                if let Some((replicas, timeout_ms)) = done.wait {
                    break 'batch Stop::Done(Step::Deferred(Deferred::Wait {
                        replicas,
                        timeout_ms,
                        opcode,
                        id,
                    }));
                }
                if self.wbuf.len() >= FLUSH_AT || used >= budget {
                    break 'batch Stop::Full;
                }
            };
            if !self.refuse_and_skip(&refused, used) {
                break Stop::Done(Step::Close);
            }
            // The bytes before it and its header are gone from the buffer.
            used = 0;
            if self.discard != 0 {
                break Stop::Done(Step::Replied);
            }
        };
        self.rbuf.advance(used);
        self.turn += used + self.wbuf.len();
        stop
    }

    /// Answers a frame the codec refused at `used`. An over-limit length
    /// (up to `DISCARD_FACTOR` times the frame limit) gets TOO_LARGE and its
    /// payload is skipped: the buffer drops everything up to the payload,
    /// and the payload as far as it is buffered (`discard` holds the rest);
    /// `false` for anything else, answered so that the connection closes.
    /// Out of line: the hot loop stays as small as before (a version that
    /// inlined this cost +3.5 % instructions on `bench/callgrind.sh` SET P16).
    #[cold]
    #[inline(never)]
    fn refuse_and_skip(&mut self, e: &CodecError, used: usize) -> bool {
        let declared = Codec::declared_len(&self.rbuf[used..]).unwrap_or(u64::MAX);
        let cap = DISCARD_FACTOR.saturating_mul(self.codec.limits().max_frame as u64);
        if e.status() != Some(Status::TooLarge) || declared > cap {
            reply_codec_error(self.shared, e, &mut self.wbuf);
            return false;
        }
        // Counted in `protocol_errors` (as before, when it closed), not per
        // opcode: its opcode byte is only what the header claims.
        refuse_too_large(self.shared, e, &mut self.wbuf);
        self.rbuf.advance(used + HEADER_LEN);
        self.turn += used + HEADER_LEN;
        self.discard = declared - HEADER_LEN as u64;
        self.skip_refused();
        true
    }

    /// At the start of a step, while a refused payload is still arriving:
    /// drops what of it was read; `Some` (read more, or yield first) while
    /// more is to come, `None` once it is all gone.
    #[cold]
    #[inline(never)]
    fn go_on_skipping(&mut self) -> Option<Stop> {
        if !self.skip_refused() {
            return None;
        }
        Some(if self.turn >= TURN_BUDGET { Stop::Full } else { Stop::Done(Step::Replied) })
    }

    /// Drops what the read buffer holds of a refused request's payload;
    /// `true` while more of it is still to come.
    fn skip_refused(&mut self) -> bool {
        let n = usize::try_from(self.discard).unwrap_or(usize::MAX).min(self.rbuf.len());
        self.rbuf.advance(n);
        self.discard -= n as u64;
        self.turn += n;
        self.discard != 0
    }

    /// Carries out a deferred request, then writes its reply.
    async fn carry_out(&mut self, what: Deferred) -> io::Result<Next> {
        let mut next = Next::Continue;
        match what {
            Deferred::AuthFailed { opcode, id, message, close } => {
                // Slows guessing: nothing more is read on this connection meanwhile.
                tokio::select! {
                    _ = tokio::time::sleep(gate::FAILURE_DELAY) => {}
                    _ = self.cancel.cancelled() => {}
                }
                let msg = if close {
                    format!("{message}; too many failed AUTHs, closing the connection")
                } else {
                    message
                };
                encode_response(
                    &mut self.wbuf,
                    opcode,
                    id,
                    Status::NoAuth,
                    BodyType::Text,
                    &[],
                    msg.as_bytes(),
                );
                if close {
                    next = Next::Close;
                }
            }
            Deferred::Monitor { id } => {
                self.monitor(id).await?;
                return Ok(Next::Close);
            }
            Deferred::Snapshot { background, opcode, id } => {
                snapshot(self.shared, background, opcode, id, &mut self.wbuf).await
            }
            Deferred::Wait { replicas, timeout_ms, opcode, id } => {
                // The log's position now covers every write this connection
                // made (and maybe others' since: WAIT may wait a little
                // longer, never less).
                let index = match self.writes {
                    Writes::None => 0,
                    _ => self.shared.store.log().last_index(),
                };
                let n = wait(self.shared, index, replicas, timeout_ms, self.cancel).await;
                match self.shared.repl.refuse_write() {
                    // Stopped leading meanwhile: its count means nothing now.
                    Some((status, msg)) => encode_response(
                        &mut self.wbuf,
                        opcode,
                        id,
                        status,
                        BodyType::Text,
                        &[],
                        msg.as_bytes(),
                    ),
                    None => encode_response(
                        &mut self.wbuf,
                        opcode,
                        id,
                        Status::Ok,
                        BodyType::Int,
                        &[],
                        &n.to_be_bytes(),
                    ),
                }
            }
        }
        write_out(&mut self.io, &self.wbuf, self.cancel, self.shared).await?;
        self.wbuf.clear();
        Ok(next)
    }

    /// Once the large frame it was for is executed, returns the input
    /// reservation and the read buffer it grew (keeping the start of the
    /// next request, if any).
    fn return_input(&mut self) {
        if self.large_frame != 0 {
            return;
        }
        self.input = None;
        if self.rbuf.capacity() > KEEP_BUFFER && self.rbuf.len() <= BUFFER {
            let mut fresh = BytesMut::with_capacity(BUFFER);
            fresh.extend_from_slice(&self.rbuf);
            self.rbuf = fresh;
        }
    }

    /// Releases buffers a large value grew.
    fn shrink(&mut self) {
        if self.rbuf.capacity() > KEEP_BUFFER && self.rbuf.is_empty() {
            self.rbuf = BytesMut::with_capacity(BUFFER);
        }
        if self.wbuf.capacity() > KEEP_BUFFER {
            self.wbuf = BytesMut::with_capacity(BUFFER);
        }
    }

    /// The IO and the unread bytes, for the replication link.
    fn into_link(self) -> FramedParts<S, Codec> {
        let mut parts = FramedParts::new::<Frame>(self.io, self.codec);
        parts.read_buf = self.rbuf;
        parts
    }
}

/// Requests the connection carries out itself, asynchronously, before it
/// replies to them and reads on.
#[derive(Debug)]
enum Deferred {
    /// A refused AUTH: answered after a pause (`gate`), maybe closing.
    AuthFailed {
        opcode: u8,
        id: u32,
        message: String,
        close: bool,
    },
    /// MONITOR: the connection streams events until it closes.
    Monitor {
        id: u32,
    },
    Snapshot {
        background: bool,
        opcode: u8,
        id: u32,
    },
    Wait {
        replicas: u32,
        timeout_ms: u64,
        opcode: u8,
        id: u32,
    },
}

/// What the connection does after a deferred request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Continue,
    /// Too many failed AUTHs: close.
    Close,
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
        // Claimed here, before the reply, not in the task: the next frame
        // of this batch runs before the task does (issue 11).
        let claim = match persist.claim_snapshot() {
            Ok(claim) => claim,
            Err(e) => return error(wbuf, Status::InProgress, &e.to_string()),
        };
        tokio::spawn(async move {
            let _ = persist.snapshot_claimed(store, claim).await;
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
        Err(e @ SnapshotRefusal::InProgress) => error(wbuf, Status::InProgress, &e.to_string()),
        Err(e) => error(wbuf, Status::IoError, &format!("snapshot failed: {}", ErrorChain(&e))),
    }
}

fn reply_codec_error(shared: &Shared, e: &CodecError, wbuf: &mut BytesMut) {
    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
    warn!(error = %ErrorChain(e), "protocol error; closing connection");
    if let Some(status) = e.status() {
        let (id, opcode) = e.request();
        encode_response(wbuf, opcode, id, status, BodyType::Text, &[], e.to_string().as_bytes());
    }
}

/// An over-limit request whose payload will be skipped: TOO_LARGE, and a
/// warning at most once per `LOG_EVERY` (a client can send them in a loop).
fn refuse_too_large(shared: &Shared, e: &CodecError, wbuf: &mut BytesMut) {
    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
    if let Some(skipped) = shared.too_large_log.allow(std::time::Instant::now()) {
        warn!(error = %ErrorChain(e), skipped, "request over a limit refused; its payload is skipped");
    }
    let (id, opcode) = e.request();
    encode_response(wbuf, opcode, id, Status::TooLarge, BodyType::Text, &[], e.to_string().as_bytes());
}

async fn linger_close<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
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
pub(super) async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.write_all(&busy_reply()).await;
    linger_close(&mut stream).await;
}

/// The unsolicited BUSY reply (protocol.md §6.5).
pub(super) fn busy_reply() -> BytesMut {
    let mut buf = BytesMut::new();
    let msg = b"max connections reached; try again later";
    encode_response(&mut buf, 0, 0, Status::Busy, BodyType::Text, &[], msg);
    buf
}

mod durable;
mod gate;
mod introspect;
mod output;
#[cfg(test)]
mod tests;

/// The status byte of the reply written at `start` of `wbuf` (OK when the
/// reply is deferred and not written yet).
#[inline]
fn status_at(wbuf: &[u8], start: usize) -> u8 {
    wbuf.get(start + 3).copied().unwrap_or(0)
}
