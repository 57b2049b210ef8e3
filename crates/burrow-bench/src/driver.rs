//! The per-connection load loop: claim a batch of P requests, encode it into
//! one reusable buffer, one `write_all`, then read until exactly P replies
//! have been judged. No allocation per request, no client library.
//!
//! Latency accounting for pipelines follows redis-benchmark: every request in
//! a batch gets its own sample, measured from the batch's write to the read
//! that completed its reply. A batch therefore contributes P samples, and the
//! percentiles are over requests, not batches.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use super::endpoint::Endpoint;
use super::stream::Stream;

use super::target::Target;
use super::wire::Wire;
use super::workload::{below, Op, Ratio, Rng};
use super::BenchError;

/// Longest a connect may take before the run is abandoned.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Highest latency the histogram tracks (longer samples saturate), in ns.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Free read-buffer space kept before each read, so replies arrive in few syscalls.
const READ_SPACE: usize = 64 * 1024;

/// When a test ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests in total over all connections.
    Requests(u64),
    /// When this long has passed; batches in flight complete.
    After(Duration),
}

/// What every connection of one test sends.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The one operation, or `None` to pick SET/GET by `ratio` (mixed).
    pub op: Option<Op>,
    pub ratio: Ratio,
    pub pipeline: usize,
    pub keyspace: u64,
    /// Key of request number i (over all connections) is `i % keyspace`,
    /// instead of random: `-n N -r N --sequential` writes each key once.
    pub sequential: bool,
    pub stop: Stop,
    /// How long a connection may wait for the server to make any progress
    /// before the run is abandoned as stalled.
    pub timeout: Duration,
    /// `false` (`-k 0`): a new connection for every batch, as
    /// redis-benchmark reconnects for every request. The connect is not in
    /// the latency (measured from the write), but it is in the throughput.
    pub keepalive: bool,
}

/// Counters shared by all connections of one test.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Requests claimed so far; the claim is one `fetch_add` per batch.
    pub issued: AtomicU64,
    /// Requests whose reply (or loss) has been accounted for; read by the progress line.
    pub completed: AtomicU64,
}

/// What one connection measured.
#[derive(Debug)]
pub(crate) struct ConnResult {
    pub latency_ns: Histogram<u64>,
    pub requests: u64,
    pub errors: u64,
    /// Of the errors, requests lost with a broken connection: they may or
    /// may not have run.
    pub unknown: u64,
    pub first_error: Option<String>,
    /// When its last reply arrived.
    pub finished: Instant,
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds: 1 ns to 60 s at 3 significant figures.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}

/// Opens one load connection (Nagle off: requests must leave at once).
/// With `auth`, it authenticates first.
pub(crate) async fn connect(
    addr: &Endpoint,
    auth: Option<&burrow_proto::Secret>,
    tls: Option<&burrow_client::TlsOptions>,
) -> Result<Stream, BenchError> {
    let open = async {
        let tcp = match addr {
            Endpoint::Tcp(a) => TcpStream::connect(a).await?,
            // Never TLS: refused before the run (`TlsOnUnixSocket`).
            Endpoint::Unix(path) => return tokio::net::UnixStream::connect(path).await.map(Either::Right),
        };
        tcp.set_nodelay(true)?;
        match tls {
            None => Ok(Either::Left(Either::Left(tcp))),
            Some(tls) => tls.handshake(tcp).await.map(|t| Either::Left(Either::Right(t))),
        }
    };
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => return Err(BenchError::Connect { addr: addr.clone(), source }),
        Err(_) => return Err(BenchError::ConnectTimeout { addr: addr.clone(), after: CONNECT_TIMEOUT }),
    };
    if let Some(secret) = auth {
        let handshake = super::auth::authenticate(&mut stream, addr, secret);
        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(r) => r?,
            Err(_) => return Err(BenchError::ConnectTimeout { addr: addr.clone(), after: CONNECT_TIMEOUT }),
        }
    }
    Ok(stream)
}

/// Why a batch could not be completed on this connection.
enum Broken {
    /// The stream is unusable; `got` replies were judged before the break.
    Stream { got: usize, why: String },
    /// The server made no progress within the reply timeout: it is hung, and
    /// waiting on would make the run hang too.
    Stalled,
}

/// One connection's state between batches.
struct Conn<'a, W> {
    wire: &'a W,
    /// Longest wait for any progress on a write or a read.
    timeout: Duration,
    /// When the write of the current batch began or the last read arrived.
    progress: Instant,
    /// One timer per connection, left alone on the hot path: when it fires it
    /// checks `progress` and re-arms itself unless the connection really made
    /// no progress for `timeout`. (A `tokio::time::timeout` per read, or a
    /// reset per read, cost 5 % of the generator's CPU.)
    stall: Pin<Box<tokio::time::Sleep>>,
    stream: Stream,
    rbuf: BytesMut,
    result: ConnResult,
    /// A reply of the last batch said this node is not the leader.
    refused: bool,
}

impl<W: Wire> Conn<'_, W> {
    fn error(&mut self, count: u64, what: impl FnOnce() -> String) {
        self.result.errors += count;
        if self.result.first_error.is_none() {
            self.result.first_error = Some(what());
        }
    }

    /// Writes one encoded batch and judges its `ops.len()` replies.
    async fn batch(&mut self, wbuf: &[u8], ops: &[Op], id0: u32) -> Result<(), Broken> {
        let sent = Instant::now();
        self.progress = sent;
        let written = {
            let Conn { stream, stall, progress, timeout, .. } = self;
            // Flushed: TLS may hold the end of the batch until then.
            let mut write = std::pin::pin!(async {
                stream.write_all(wbuf).await?;
                stream.flush().await
            });
            loop {
                tokio::select! {
                    biased;
                    r = &mut write => break r,
                    _ = stall.as_mut() => if stalled(stall, *progress, *timeout) {
                        return Err(Broken::Stalled);
                    },
                }
            }
        };
        if let Err(e) = written {
            return Err(Broken::Stream { got: 0, why: format!("write failed: {e}") });
        }
        let mut got = 0;
        // Replies completed by one read all arrived at the same instant:
        // one latency value and one histogram update per read, not per reply.
        let mut latency = 0u64;
        loop {
            let mut pos = 0;
            let mut ok = 0u64;
            while got < ops.len() {
                let (op, id) = (ops[got], id0.wrapping_add(got as u32));
                match self.wire.parse(&self.rbuf[pos..], op, id) {
                    Ok(Some(reply)) => {
                        if reply.ok {
                            ok += 1;
                        } else {
                            let (wire, rbuf) = (self.wire, &self.rbuf);
                            self.refused |= wire.refused(&rbuf[pos..pos + reply.len]);
                            let what = || wire.describe(&rbuf[pos..pos + reply.len], op, id);
                            self.result.errors += 1;
                            if self.result.first_error.is_none() {
                                self.result.first_error = Some(what());
                            }
                        }
                        pos += reply.len;
                        got += 1;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(Broken::Stream { got, why: format!("unreadable reply: {e}") }),
                }
            }
            self.rbuf.advance(pos);
            if ok > 0 {
                self.result.latency_ns.saturating_record_n(latency.max(1), ok);
            }
            if got == ops.len() {
                return Ok(());
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_SPACE / 4 {
                self.rbuf.reserve(READ_SPACE);
            }
            let read = loop {
                // `read_buf` is cancel-safe: dropping it when the timer fires loses nothing.
                tokio::select! {
                    biased;
                    r = self.stream.read_buf(&mut self.rbuf) => break r,
                    _ = self.stall.as_mut() => if stalled(&mut self.stall, self.progress, self.timeout) {
                        return Err(Broken::Stalled);
                    },
                }
            };
            match read {
                Ok(0) => return Err(Broken::Stream { got, why: "server closed the connection".into() }),
                Ok(_) => {
                    let now = Instant::now();
                    latency = now.duration_since(sent).as_nanos() as u64;
                    self.progress = now;
                }
                Err(e) => return Err(Broken::Stream { got, why: format!("read failed: {e}") }),
            }
        }
    }
}

/// The stall timer fired: true if nothing happened for `timeout` since
/// `progress`; otherwise re-arms it for `progress + timeout`.
fn stalled(stall: &mut Pin<Box<tokio::time::Sleep>>, progress: Instant, timeout: Duration) -> bool {
    let due = progress + timeout;
    if Instant::now() >= due {
        return true;
    }
    stall.as_mut().reset(tokio::time::Instant::from_std(due));
    false
}

/// Runs the load loop on `stream` until the plan says stop. A connection
/// the server breaks (garbage, close, reset) has its outstanding requests
/// counted as errors (of unknown outcome) and is reopened — in a cluster,
/// to the leader, found again, as after a reply saying this node does not
/// lead; failing to reopen it within the timeout ends the run.
pub(crate) async fn drive<W: Wire>(
    stream: Stream,
    target: Arc<Target>,
    wire: Arc<W>,
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    seed: u64,
    deadline: Option<Instant>,
) -> Result<ConnResult, BenchError> {
    let p = plan.pipeline;
    let mut rng = Rng::new(seed);
    let mut conn = Conn {
        wire: &*wire,
        timeout: plan.timeout,
        progress: Instant::now(),
        stall: Box::pin(tokio::time::sleep(plan.timeout)),
        stream,
        rbuf: BytesMut::with_capacity(READ_SPACE),
        result: ConnResult {
            latency_ns: new_histogram(),
            requests: 0,
            errors: 0,
            unknown: 0,
            first_error: None,
            finished: Instant::now(),
        },
        refused: false,
    };
    let mut wbuf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut ops: Vec<Op> = Vec::with_capacity(p);
    let mut id: u32 = 0;
    loop {
        let (first, k) = match plan.stop {
            Stop::Requests(n) => {
                let prev = counters.issued.fetch_add(p as u64, Ordering::Relaxed);
                if prev >= n {
                    break;
                }
                (prev, (n - prev).min(p as u64) as usize)
            }
            Stop::After(_) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                (counters.issued.fetch_add(p as u64, Ordering::Relaxed), p)
            }
        };
        wbuf.clear();
        ops.clear();
        for i in 0..k {
            let op = plan.op.unwrap_or_else(|| plan.ratio.pick(rng.next_u64()));
            let key = if op.key_prefix().is_none() {
                0
            } else if plan.sequential {
                (first + i as u64) % plan.keyspace
            } else {
                below(rng.next_u64(), plan.keyspace)
            };
            wire.encode(&mut wbuf, op, key, id.wrapping_add(i as u32));
            ops.push(op);
        }
        match conn.batch(&wbuf, &ops, id).await {
            Ok(()) if conn.refused && matches!(target.place, super::target::Place::Cluster(_)) => {
                conn.refused = false;
                conn.stream = target.open(plan.timeout).await?;
            }
            Ok(()) if !plan.keepalive => {
                conn.stream = target.open(plan.timeout).await?;
                conn.rbuf.clear();
            }
            Ok(()) => {}
            Err(Broken::Stream { got, why }) => {
                conn.error((k - got) as u64, || format!("connection broken: {why}"));
                conn.result.unknown += (k - got) as u64;
                conn.stream = target.open(plan.timeout).await?;
                conn.rbuf.clear();
            }
            Err(Broken::Stalled) => {
                return Err(BenchError::Stalled { addr: target.addr(), after: plan.timeout })
            }
        }
        id = id.wrapping_add(k as u32);
        conn.result.requests += k as u64;
        counters.completed.fetch_add(k as u64, Ordering::Relaxed);
    }
    conn.result.finished = Instant::now();
    Ok(conn.result)
}
