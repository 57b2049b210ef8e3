//! The async Rust client: a typed method per command, pipelining,
//! connect/request timeouts, and leader redirects.
//!
//! **What you get.** [`Client`] (one connection at a time: a method per command, and
//! [`Client::request`] / [`Client::pipeline`] for any
//! [`burrow_proto::Request`]), its [`ClientConfig`], the option and answer
//! types [`SetOptions`] and [`Ttl`], CLUSTER's [`ClusterView`] (with
//! [`MemberView`], [`MemberRole`], [`LinkStatus`]), a cluster client's
//! [`FailoverConfig`], one error type [`ClientError`], and
//! [`parse_info`] for INFO's text. The crate depends on `burrow-proto` and
//! tokio only, so embedding it pulls in nothing of the server or the tools.
//!
//! **Redirects.** A follower refuses writes and WAIT with `NOT_LEADER`, its
//! message being the leader's client address (`127.0.0.1:7441`, empty when
//! it knows no leader; protocol.md §5.1). The client then connects to that
//! address, re-sends the refused requests there and stays connected to it
//! for later requests, at most [`ClientConfig::max_redirects`] times per
//! call; past that, or with an empty or unparseable address, the
//! `NOT_LEADER` reply is returned as any other error. [`Client::addr`] is the
//! server currently connected to and [`Client::last_redirects`] the hops the
//! last call followed; each hop is also logged (`tracing::info!`).
//!
//! In a pipeline only the requests answered `NOT_LEADER` are re-sent (in
//! their original order, on the new connection); every other reply is kept
//! as the first server gave it, so no request ever runs twice. The price: a
//! read pipelined after a refused write was answered by the follower, before
//! that write reached the leader (`[SET k v, GET k]` to a follower gives the
//! follower's older `GET`). Send reads after the writes' replies when that
//! matters.
//!
//! `LOADING` (a follower in full resync) and `STALE` (a follower cut off
//! from its leader) are not retried: they name no other server, and how long
//! to wait is the caller's choice. Match them with [`ClientError::status`].
//!
//! **Clusters.** [`Client::connect_cluster`] takes several seed addresses
//! and rides out leader changes (protocol.md §5.2): it follows
//! `NOT_LEADER`, waits out `NO_LEADER`, `LOADING`, refused connections and
//! an unreachable leader with jittered pauses, moving through the seeds,
//! until [`FailoverConfig::deadline`] per call; then it returns the last
//! refusal, or [`ClientError::Unavailable`]. A connection that fails after
//! a request was written leaves its outcome unknown: the request is re-sent
//! only if it is idempotent ([`burrow_proto::Request::is_idempotent`]:
//! reads, SET without NX/XX, DEL, EXPIRE, PERSIST, FLUSHALL, SNAPSHOT);
//! INCR, DECR, INCRBY, LPUSH, RPUSH, LPOP, RPOP, SET NX/XX and WAIT fail
//! with [`ClientError::OutcomeUnknown`] instead of maybe running twice. In
//! a pipeline, replies received before the failure stand, and the rest is
//! re-sent only if all of it is idempotent. A connection the server closed
//! while idle (a killed leader) is noticed before writing, so nothing is
//! unknown then. Having reached a seed, and again after each reconnect,
//! the client asks it who leads (CLUSTER) and moves there at once, so reads
//! go to the leader too; while no leader is known (an election) they go to
//! whichever node the client is connected to, possibly a follower (possibly
//! stale), until a write moves it. [`Client::addr`] tells which.
//!
//! ```no_run
//! # async fn demo() -> Result<(), burrow_client::ClientError> {
//! let mut c = burrow_client::Client::connect("127.0.0.1:7440").await?;
//! c.set("greeting", "hello").await?;
//! assert_eq!(c.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod backoff;
mod discovery;
mod error;
mod failover;
mod tls;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_util::codec::Framed;
use tokio_util::either::Either;

/// A connection: plain TCP, or TLS ([`ClientConfig::tls`]).
type Conn = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

pub use burrow_proto::{
    ClusterView, LinkStatus, MemberRole, MemberView, Secret, SecretError, SlowLogCommand, SlowLogEntry,
};
pub use error::ClientError;
pub use failover::FailoverConfig;
pub use tls::{TlsConfigError, TlsOptions, TlsStream};

use burrow_proto::{
    decode_hello, Codec, End, Frame, Limits, Nonce, Proof, Prover, Purpose, Reply, Request, SetCondition,
    Status,
};

/// Requests buffered before the client writes, even mid-pipeline: a
/// pipeline up to this size goes out in one write, a larger one in pieces
/// of about this size (the `Framed` backpressure boundary).
const WRITE_BATCH: usize = 256 * 1024;

/// Client settings. `Default` suits a server on the same machine.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Limit on opening a connection (also each redirect's connection).
    pub connect_timeout: Duration,
    /// Limit on one request (or one pipeline) from first byte sent to last
    /// reply read, on each server: a redirect starts a new limit (and the
    /// connection to the leader has its own `connect_timeout`).
    pub request_timeout: Duration,
    /// Largest response the client will accept.
    pub limits: Limits,
    /// How many `NOT_LEADER` redirects one call (request or pipeline) may
    /// follow before the `NOT_LEADER` reply is returned; 0 never follows one.
    /// A cluster client pauses (backs off) past it instead of giving up.
    pub max_redirects: u32,
    /// How a cluster client ([`Client::connect_cluster`]) rides out a
    /// leader change; unused by a client opened on one address.
    pub failover: FailoverConfig,
    /// The client secret (protocol.md §8.12): when set, every connection
    /// the client opens — redirects and failover reconnects too — sends
    /// HELLO and AUTH first and checks the server's proof in return.
    pub auth: Option<Arc<Secret>>,
    /// TLS (servers with `--tls-cert-file`): every connection the client
    /// opens verifies the server's certificate; `None` speaks plain TCP.
    pub tls: Option<TlsOptions>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        let mut limits = Limits::default();
        // Replies (LRANGE, SCAN, INFO) can be larger than any single value.
        limits.max_value = 512 * 1024 * 1024;
        limits.max_frame = limits.max_value + 64 * 1024;
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            limits,
            max_redirects: 3,
            failover: FailoverConfig::default(),
            auth: None,
            tls: None,
        }
    }
}

/// Options for SET beyond key and value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Expire the key after this long (PX; rounded to whole ms, at least 1).
    pub ttl: Option<Duration>,
    /// Set only if the key is missing (NX) or present (XX).
    pub condition: SetCondition,
    /// Keep the key's current TTL (KEEPTTL).
    pub keep_ttl: bool,
}

/// TTL of a key as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist.
    Missing,
    /// The key exists and has no TTL.
    Persistent,
    /// The key expires after this long.
    Expires(Duration),
}

/// One connection to a Burrow server. Not `Clone`: open one per task, or
/// pipeline several requests through one.
#[derive(Debug)]
pub struct Client {
    /// Requests out, replies in: one stream of frames.
    framed: Framed<Conn, Codec>,
    /// The server `framed` is connected to.
    addr: SocketAddr,
    /// Leader addresses the last call was redirected to, in order.
    redirects: Vec<SocketAddr>,
    next_id: u32,
    config: ClientConfig,
    /// Set when a timeout or protocol error left replies unread: the stream
    /// can no longer be trusted to line up with requests.
    broken: bool,
    /// A cluster client's seed addresses (empty: a client of one server,
    /// which never reconnects by itself).
    seeds: Vec<String>,
    /// Which seed a cluster client tries next.
    next_seed: usize,
}

impl Client {
    /// Connects with the default [`ClientConfig`].
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientConfig::default()).await
    }

    /// Connects with `config`'s timeouts, limits and redirect budget.
    pub async fn connect_with(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client, ClientError> {
        let (framed, addr) = open(addr, &config, config.connect_timeout).await?;
        Ok(Client::new(framed, addr, config, Vec::new()))
    }

    fn new(
        framed: Framed<Conn, Codec>,
        addr: SocketAddr,
        config: ClientConfig,
        seeds: Vec<String>,
    ) -> Client {
        Client { framed, addr, redirects: Vec::new(), next_id: 1, config, broken: false, seeds, next_seed: 0 }
    }

    /// The server this client is connected to: the one it was opened on, or
    /// the leader a redirect moved it to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The leaders the last [`request`](Client::request) or
    /// [`pipeline`](Client::pipeline) call was redirected to, in order
    /// (empty when it was answered where it was sent).
    pub fn last_redirects(&self) -> &[SocketAddr] {
        &self.redirects
    }

    /// Sends one request and returns its reply, following `NOT_LEADER`
    /// redirects; an error status comes back as `Ok(Reply::Error { .. })`,
    /// not as `Err`.
    pub async fn request(&mut self, req: &Request) -> Result<Reply, ClientError> {
        let mut replies = self.pipeline(std::slice::from_ref(req)).await?;
        Ok(replies.pop().expect("one reply per request"))
    }

    /// Sends every request in one write and returns their replies in order,
    /// following `NOT_LEADER` redirects (see the module docs).
    pub async fn pipeline(&mut self, reqs: &[Request]) -> Result<Vec<Reply>, ClientError> {
        self.redirects.clear();
        if !self.seeds.is_empty() {
            return self.pipeline_failover(reqs).await;
        }
        let mut replies = self.timed_exchange(reqs).await?;
        while self.redirects.len() < self.config.max_redirects as usize {
            // Indexes refused with NOT_LEADER; the last address named wins
            // (it is the newest news of the leader).
            let refused: Vec<usize> =
                (0..replies.len()).filter(|&i| leader_of(&replies[i]).is_some()).collect();
            let Some(leader) = refused.iter().rev().find_map(|&i| leader_of(&replies[i]).flatten()) else {
                break;
            };
            self.move_to(leader).await?;
            let retry: Vec<Request> = refused.iter().map(|&i| reqs[i].clone()).collect();
            for (i, reply) in refused.into_iter().zip(self.timed_exchange(&retry).await?) {
                replies[i] = reply;
            }
        }
        Ok(replies)
    }

    /// Replaces the connection with one to `leader` (the old one is kept if
    /// that fails) and records the hop.
    async fn move_to(&mut self, leader: SocketAddr) -> Result<(), ClientError> {
        self.move_to_within(leader, self.config.connect_timeout).await
    }

    /// [`move_to`](Self::move_to) with its own limit on connecting.
    async fn move_to_within(&mut self, leader: SocketAddr, limit: Duration) -> Result<(), ClientError> {
        let from = self.addr;
        let (framed, addr) = open(leader, &self.config, limit)
            .await
            .map_err(|source| ClientError::Redirect { leader, source: Box::new(source) })?;
        tracing::info!(%from, to = %addr, "NOT_LEADER: redirected to the leader");
        self.framed = framed;
        self.addr = addr;
        self.broken = false;
        self.redirects.push(addr);
        Ok(())
    }

    /// One exchange on the current connection, bounded by the request
    /// timeout; a failure marks the connection broken.
    async fn timed_exchange(&mut self, reqs: &[Request]) -> Result<Vec<Reply>, ClientError> {
        let mut replies = Vec::with_capacity(reqs.len());
        self.timed_exchange_into(reqs, &mut replies, self.config.request_timeout).await?;
        Ok(replies)
    }

    /// One exchange bounded by `timeout`, pushing replies onto `replies` as
    /// they come (so after a failure it holds those that did); a failure
    /// marks the connection broken.
    async fn timed_exchange_into(
        &mut self,
        reqs: &[Request],
        replies: &mut Vec<Reply>,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        match tokio::time::timeout(timeout, self.exchange(reqs, replies)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.broken = true;
                Err(e)
            }
            Err(_) => {
                self.broken = true;
                Err(ClientError::Timeout { what: "request", after: timeout })
            }
        }
    }

    /// Sends every request and reads their replies in order onto `replies`,
    /// both at once: the server stops reading while its replies go unread
    /// (protocol.md §6.1), so a pipeline whose requests and replies both
    /// outgrow the socket buffers would deadlock if it were written whole
    /// before reading. A short pipeline still leaves in one write.
    async fn exchange(&mut self, reqs: &[Request], replies: &mut Vec<Reply>) -> Result<(), ClientError> {
        let first = self.next_id;
        self.next_id = first.wrapping_add(reqs.len() as u32);
        let before = replies.len();
        let (mut sent, mut flushed) = (0, false);
        let framed = &mut self.framed;
        std::future::poll_fn(|cx| {
            while sent < reqs.len() {
                match Sink::<Frame>::poll_ready(Pin::new(&mut *framed), cx)? {
                    Poll::Ready(()) => {
                        let id = first.wrapping_add(sent as u32);
                        Sink::<Frame>::start_send(Pin::new(&mut *framed), reqs[sent].to_frame(id))?;
                        sent += 1;
                    }
                    Poll::Pending => break,
                }
            }
            if sent == reqs.len() && !flushed {
                flushed = Sink::<Frame>::poll_flush(Pin::new(&mut *framed), cx)?.is_ready();
            }
            while replies.len() - before < reqs.len() {
                let frame = match Pin::new(&mut *framed).poll_next(cx) {
                    Poll::Ready(Some(frame)) => frame?,
                    Poll::Ready(None) => return Poll::Ready(Err(ClientError::Closed)),
                    Poll::Pending => break,
                };
                let expected = first.wrapping_add((replies.len() - before) as u32);
                let reply = Reply::from_frame(&frame).map_err(ClientError::BadReply)?;
                if frame.id != expected {
                    // A server that refuses a connection answers with id 0.
                    if let Reply::Error { status, message } = reply {
                        return Poll::Ready(Err(ClientError::Server { status, message }));
                    }
                    return Poll::Ready(Err(ClientError::IdMismatch { got: frame.id, expected }));
                }
                replies.push(reply);
            }
            if flushed && replies.len() - before == reqs.len() {
                Poll::Ready(Ok(()))
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Sends one request; an error status becomes `Err(ClientError::Server)`.
    async fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        match self.request(&req).await? {
            Reply::Error { status: Status::NoAuth, .. } if self.config.auth.is_none() => {
                Err(ClientError::AuthRequired)
            }
            Reply::Error { status, message } => Err(ClientError::Server { status, message }),
            r => Ok(r),
        }
    }

    async fn call_int(&mut self, req: Request) -> Result<i64, ClientError> {
        match self.call(req).await? {
            Reply::Int(i) => Ok(i),
            other => Err(ClientError::unexpected("an integer", other)),
        }
    }

    async fn call_opt_bytes(&mut self, req: Request) -> Result<Option<Bytes>, ClientError> {
        match self.call(req).await? {
            Reply::Nil => Ok(None),
            Reply::Bytes(b) => Ok(Some(b)),
            other => Err(ClientError::unexpected("bytes or nil", other)),
        }
    }

    async fn call_array(&mut self, req: Request) -> Result<Vec<Bytes>, ClientError> {
        match self.call(req).await? {
            Reply::Nil => Ok(Vec::new()),
            Reply::Array(items) => Ok(items),
            other => Err(ClientError::unexpected("an array", other)),
        }
    }

    /// PING; returns the echoed payload (`PONG` when empty).
    pub async fn ping(&mut self, payload: impl Into<Bytes>) -> Result<Bytes, ClientError> {
        match self.call(Request::Ping { payload: payload.into() }).await? {
            Reply::Bytes(b) => Ok(b),
            Reply::Text(t) => Ok(Bytes::from(t)),
            other => Err(ClientError::unexpected("PONG", other)),
        }
    }

    /// GET: the value, or `None` when the key is missing.
    pub async fn get(&mut self, key: impl Into<Bytes>) -> Result<Option<Bytes>, ClientError> {
        self.call_opt_bytes(Request::Get { key: key.into() }).await
    }

    /// SET without options.
    pub async fn set(&mut self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<(), ClientError> {
        self.set_with(key, value, SetOptions::default()).await.map(|_| ())
    }

    /// SET with a TTL and/or condition; `false` when NX/XX prevented it.
    pub async fn set_with(
        &mut self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        opts: SetOptions,
    ) -> Result<bool, ClientError> {
        let req = Request::Set {
            key: key.into(),
            value: value.into(),
            ttl_ms: opts.ttl.map(|d| (d.as_millis() as u64).max(1)),
            condition: opts.condition,
            keep_ttl: opts.keep_ttl,
        };
        match self.call(req).await? {
            Reply::Ok => Ok(true),
            Reply::Nil => Ok(false),
            other => Err(ClientError::unexpected("OK or nil", other)),
        }
    }

    /// DEL: `true` if the key existed.
    pub async fn del(&mut self, key: impl Into<Bytes>) -> Result<bool, ClientError> {
        Ok(self.call_int(Request::Del { key: key.into() }).await? == 1)
    }

    /// EXISTS.
    pub async fn exists(&mut self, key: impl Into<Bytes>) -> Result<bool, ClientError> {
        Ok(self.call_int(Request::Exists { key: key.into() }).await? == 1)
    }

    /// EXPIRE in milliseconds; `false` if the key does not exist.
    pub async fn expire(&mut self, key: impl Into<Bytes>, ttl: Duration) -> Result<bool, ClientError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Ok(self.call_int(Request::Expire { key: key.into(), ttl_ms }).await? == 1)
    }

    /// PERSIST: removes the TTL; `true` if the key had one.
    pub async fn persist(&mut self, key: impl Into<Bytes>) -> Result<bool, ClientError> {
        Ok(self.call_int(Request::Persist { key: key.into() }).await? == 1)
    }

    /// TTL: whether the key exists and when it expires.
    pub async fn ttl(&mut self, key: impl Into<Bytes>) -> Result<Ttl, ClientError> {
        Ok(match self.call_int(Request::Ttl { key: key.into() }).await? {
            -2 => Ttl::Missing,
            -1 => Ttl::Persistent,
            ms => Ttl::Expires(Duration::from_millis(ms.max(0) as u64)),
        })
    }

    /// TYPE: `none`, `string` or `list`.
    pub async fn type_of(&mut self, key: impl Into<Bytes>) -> Result<String, ClientError> {
        match self.call(Request::Type { key: key.into() }).await? {
            Reply::Text(t) => Ok(t),
            other => Err(ClientError::unexpected("a type name", other)),
        }
    }

    /// INCR: adds 1 (a missing key counts as 0); returns the new value.
    pub async fn incr(&mut self, key: impl Into<Bytes>) -> Result<i64, ClientError> {
        self.call_int(Request::Incr { key: key.into() }).await
    }

    /// DECR: subtracts 1; returns the new value.
    pub async fn decr(&mut self, key: impl Into<Bytes>) -> Result<i64, ClientError> {
        self.call_int(Request::Decr { key: key.into() }).await
    }

    /// INCRBY: adds `delta` (may be negative); returns the new value.
    pub async fn incr_by(&mut self, key: impl Into<Bytes>, delta: i64) -> Result<i64, ClientError> {
        self.call_int(Request::IncrBy { key: key.into(), delta }).await
    }

    /// LPUSH: each value goes to the head in turn; returns the new length.
    pub async fn lpush<V: Into<Bytes>>(
        &mut self,
        key: impl Into<Bytes>,
        values: impl IntoIterator<Item = V>,
    ) -> Result<i64, ClientError> {
        let values = values.into_iter().map(Into::into).collect();
        self.call_int(Request::Push { key: key.into(), end: End::Left, values }).await
    }

    /// RPUSH: appends the values in order; returns the new length.
    pub async fn rpush<V: Into<Bytes>>(
        &mut self,
        key: impl Into<Bytes>,
        values: impl IntoIterator<Item = V>,
    ) -> Result<i64, ClientError> {
        let values = values.into_iter().map(Into::into).collect();
        self.call_int(Request::Push { key: key.into(), end: End::Right, values }).await
    }

    /// LPOP: the head value, or `None` when the key is missing.
    pub async fn lpop(&mut self, key: impl Into<Bytes>) -> Result<Option<Bytes>, ClientError> {
        self.call_opt_bytes(Request::Pop { key: key.into(), end: End::Left, count: None }).await
    }

    /// RPOP: the tail value, or `None` when the key is missing.
    pub async fn rpop(&mut self, key: impl Into<Bytes>) -> Result<Option<Bytes>, ClientError> {
        self.call_opt_bytes(Request::Pop { key: key.into(), end: End::Right, count: None }).await
    }

    /// Pops up to `count` values from the head (empty if the key is missing).
    pub async fn lpop_count(&mut self, key: impl Into<Bytes>, count: u32) -> Result<Vec<Bytes>, ClientError> {
        self.call_array(Request::Pop { key: key.into(), end: End::Left, count: Some(count) }).await
    }

    /// Pops up to `count` values from the tail (empty if the key is missing).
    pub async fn rpop_count(&mut self, key: impl Into<Bytes>, count: u32) -> Result<Vec<Bytes>, ClientError> {
        self.call_array(Request::Pop { key: key.into(), end: End::Right, count: Some(count) }).await
    }

    /// LLEN: the list's length (0 when the key is missing).
    pub async fn llen(&mut self, key: impl Into<Bytes>) -> Result<i64, ClientError> {
        self.call_int(Request::LLen { key: key.into() }).await
    }

    /// LRANGE with inclusive bounds; negative indexes count from the end.
    pub async fn lrange(
        &mut self,
        key: impl Into<Bytes>,
        start: i64,
        stop: i64,
    ) -> Result<Vec<Bytes>, ClientError> {
        self.call_array(Request::LRange { key: key.into(), start, stop }).await
    }

    /// DBSIZE: how many keys the server holds.
    pub async fn dbsize(&mut self) -> Result<i64, ClientError> {
        self.call_int(Request::DbSize).await
    }

    /// DIGEST: the dataset's fixed hash (protocol.md §8.9); equal on two nodes
    /// holding the same data, whatever their shard counts or history.
    pub async fn digest(&mut self) -> Result<u64, ClientError> {
        match self.call(Request::Digest).await? {
            Reply::Text(t) => {
                parse_digest(&t).ok_or_else(|| ClientError::unexpected("16 hex digits", Reply::Text(t)))
            }
            other => Err(ClientError::unexpected("a DIGEST text", other)),
        }
    }

    /// One SCAN step: (next cursor, keys). Start at 0; done when the cursor is 0 again.
    pub async fn scan(
        &mut self,
        cursor: u64,
        count: u32,
        pattern: impl Into<Bytes>,
    ) -> Result<(u64, Vec<Bytes>), ClientError> {
        match self.call(Request::Scan { cursor, count, pattern: pattern.into() }).await? {
            Reply::Scan { cursor, keys } => Ok((cursor, keys)),
            other => Err(ClientError::unexpected("a SCAN batch", other)),
        }
    }

    /// FLUSHALL: deletes every key.
    pub async fn flushall(&mut self) -> Result<(), ClientError> {
        match self.call(Request::FlushAll).await? {
            Reply::Ok => Ok(()),
            other => Err(ClientError::unexpected("OK", other)),
        }
    }

    /// SNAPSHOT: write a snapshot and return the server's report of it;
    /// with `background`, return as soon as it has started.
    pub async fn snapshot(&mut self, background: bool) -> Result<String, ClientError> {
        match self.call(Request::Snapshot { background }).await? {
            Reply::Text(t) => Ok(t),
            other => Err(ClientError::unexpected("snapshot report", other)),
        }
    }

    /// WAIT: blocks until `replicas` followers hold this connection's last
    /// write, or `timeout_ms` passes (0: no limit); returns how many do,
    /// possibly fewer (protocol.md §8.10). A standalone server answers 0. A
    /// follower's `NOT_LEADER` is followed like any other (WAIT then counts
    /// the writes made on the leader's connection).
    pub async fn wait(&mut self, replicas: u32, timeout_ms: u64) -> Result<i64, ClientError> {
        self.call_int(Request::Wait { replicas, timeout_ms }).await
    }

    /// CLUSTER: the cluster as the connected node sees it (protocol.md
    /// §8.11) — its role, term and leader, and per member the role, link,
    /// match index, lag and time since last contact it knows of. Served by
    /// every node, also one that knows no leader; not redirected.
    pub async fn cluster(&mut self) -> Result<ClusterView, ClientError> {
        match self.call(Request::Cluster).await? {
            Reply::Cluster(view) => Ok(view),
            other => Err(ClientError::unexpected("a CLUSTER view", other)),
        }
    }

    /// SLOWLOG GET: the newest `count` slow commands of the connected node,
    /// newest first (`None`: 10, as Redis; `Some(u32::MAX)`: all).
    pub async fn slowlog_get(&mut self, count: Option<u32>) -> Result<Vec<SlowLogEntry>, ClientError> {
        match self.call(Request::SlowLog(SlowLogCommand::Get { count })).await? {
            Reply::SlowLog(entries) => Ok(entries),
            other => Err(ClientError::unexpected("SLOWLOG entries", other)),
        }
    }

    /// SLOWLOG LEN: how many entries the connected node's log holds.
    pub async fn slowlog_len(&mut self) -> Result<i64, ClientError> {
        self.call_int(Request::SlowLog(SlowLogCommand::Len)).await
    }

    /// SLOWLOG RESET: empties the connected node's log.
    pub async fn slowlog_reset(&mut self) -> Result<(), ClientError> {
        match self.call(Request::SlowLog(SlowLogCommand::Reset)).await? {
            Reply::Ok => Ok(()),
            other => Err(ClientError::unexpected("OK", other)),
        }
    }

    /// CONFIG GET: every setting of the connected node whose name
    /// (`slowlog-threshold`) matches the glob `pattern` (empty: all), with
    /// its value as text.
    pub async fn config_get(&mut self, pattern: &str) -> Result<Vec<(String, String)>, ClientError> {
        let req = Request::ConfigGet { pattern: Bytes::copy_from_slice(pattern.as_bytes()) };
        match self.call(req).await? {
            Reply::Array(items) if items.len() % 2 == 0 => Ok(items
                .chunks(2)
                .map(|p| {
                    (String::from_utf8_lossy(&p[0]).into_owned(), String::from_utf8_lossy(&p[1]).into_owned())
                })
                .collect()),
            other => Err(ClientError::unexpected("CONFIG name/value pairs", other)),
        }
    }

    /// CONFIG SET: changes a setting of the connected node that can change
    /// at run time (README's settings table says which); any other is
    /// refused with the reason and nothing changes.
    pub async fn config_set(&mut self, name: &str, value: &str) -> Result<(), ClientError> {
        let req = Request::ConfigSet {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        };
        match self.call(req).await? {
            Reply::Ok => Ok(()),
            other => Err(ClientError::unexpected("OK", other)),
        }
    }

    /// INFO text; `section` empty for all sections.
    pub async fn info(&mut self, section: &str) -> Result<String, ClientError> {
        match self.call(Request::Info { section: Bytes::copy_from_slice(section.as_bytes()) }).await? {
            Reply::Text(t) => Ok(t),
            other => Err(ClientError::unexpected("INFO text", other)),
        }
    }
}

/// Connects with the config's timeout and `TCP_NODELAY`; returns the
/// connection as a stream of frames, and the peer address.
async fn open(
    addr: impl ToSocketAddrs,
    config: &ClientConfig,
    limit: Duration,
) -> Result<(Framed<Conn, Codec>, SocketAddr), ClientError> {
    let stream = tokio::time::timeout(limit, TcpStream::connect(addr))
        .await
        .map_err(|_| ClientError::Timeout { what: "connect", after: limit })?
        .map_err(ClientError::Connect)?;
    stream.set_nodelay(true).map_err(ClientError::Connect)?;
    let peer = stream.peer_addr().map_err(ClientError::Connect)?;
    let stream = match &config.tls {
        None => Either::Left(stream),
        Some(tls) => {
            let tls_stream = tokio::time::timeout(limit, tls.handshake(stream))
                .await
                .map_err(|_| ClientError::Timeout { what: "connect", after: limit })?
                .map_err(ClientError::Tls)?;
            Either::Right(tls_stream)
        }
    };
    let mut framed = Framed::with_capacity(stream, Codec::client(config.limits), 16 * 1024);
    framed.set_backpressure_boundary(WRITE_BATCH);
    if let Some(secret) = &config.auth {
        tokio::time::timeout(limit, authenticate(&mut framed, secret))
            .await
            .map_err(|_| ClientError::Timeout { what: "connect", after: limit })??;
    }
    Ok((framed, peer))
}

/// Request ids of the handshake: outside the range a new client's own
/// requests start from, so a stray reply cannot be taken for theirs.
const HELLO_ID: u32 = u32::MAX - 1;
const AUTH_ID: u32 = u32::MAX;

/// HELLO, then AUTH with a proof over the server's challenge and a fresh
/// nonce of ours; the server's proof in return shows it holds the secret.
async fn authenticate(framed: &mut Framed<Conn, Codec>, secret: &Secret) -> Result<(), ClientError> {
    let failed = |reason: String| ClientError::AuthFailed { reason };
    let hello = match handshake_call(framed, Request::Hello.to_frame(HELLO_ID)).await? {
        Reply::Bytes(body) => decode_hello(&body).map_err(|e| failed(e.to_string()))?,
        Reply::Error { status, message } => {
            return Err(failed(format!("HELLO answered {status}: {message}")))
        }
        other => return Err(ClientError::unexpected("a HELLO reply", other)),
    };
    if !hello.auth_required {
        return Err(failed(
            "the server requires no authentication, so it cannot prove it holds the secret".into(),
        ));
    }
    let client_nonce = Nonce::random();
    let proof = Proof::new(secret, Purpose::Client, Prover::Initiator, &hello.nonce, &client_nonce);
    let auth = Request::Auth { user: Bytes::new(), client_nonce, proof };
    match handshake_call(framed, auth.to_frame(AUTH_ID)).await? {
        Reply::Bytes(theirs) => {
            if Proof::verify(secret, Purpose::Client, Prover::Responder, &hello.nonce, &client_nonce, &theirs)
            {
                Ok(())
            } else {
                Err(failed("the server's proof is wrong: it does not hold this secret".into()))
            }
        }
        Reply::Error { status, message } => Err(failed(format!("{status}: {message}"))),
        other => Err(ClientError::unexpected("the server's proof", other)),
    }
}

async fn handshake_call(framed: &mut Framed<Conn, Codec>, frame: Frame) -> Result<Reply, ClientError> {
    use futures_util::{SinkExt, StreamExt};
    let id = frame.id;
    framed.send(frame).await?;
    let reply = framed.next().await.ok_or(ClientError::Closed)??;
    let decoded = Reply::from_frame(&reply).map_err(ClientError::BadReply)?;
    if reply.id != id {
        if let Reply::Error { status, message } = decoded {
            return Err(ClientError::Server { status, message });
        }
        return Err(ClientError::IdMismatch { got: reply.id, expected: id });
    }
    Ok(decoded)
}

/// For a `NOT_LEADER` reply, `Some(leader)`: the address its message names,
/// `None` inside when the message is empty or not an `ip:port`. `None` for
/// any other reply.
fn leader_of(reply: &Reply) -> Option<Option<SocketAddr>> {
    match reply {
        Reply::Error { status: Status::NotLeader, message } => Some(parse_leader(message)),
        _ => None,
    }
}

/// The leader address in a `NOT_LEADER` message (`127.0.0.1:7441`,
/// `[::1]:7441`); `None` when empty (no leader known) or unparseable.
pub(crate) fn parse_leader(message: &str) -> Option<SocketAddr> {
    message.trim().parse().ok()
}

/// Parses a DIGEST reply: exactly 16 lowercase hex digits.
fn parse_digest(text: &str) -> Option<u64> {
    let ok = text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

/// Parses INFO text into (key, value) pairs, skipping section headers.
pub fn parse_info(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once(':')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::{CodecError, ErrorChain};

    #[test]
    fn leader_addresses_parse_from_not_leader_messages() {
        let cases: &[(&str, Option<&str>)] = &[
            ("127.0.0.1:7441", Some("127.0.0.1:7441")),
            (" 10.0.0.2:7440\n", Some("10.0.0.2:7440")),
            ("[::1]:7441", Some("[::1]:7441")),
            ("", None),
            ("   ", None),
            ("127.0.0.1", None),
            ("localhost:7441", None),
            ("no leader known", None),
        ];
        for (i, (message, want)) in cases.iter().enumerate() {
            let want = want.map(|w| w.parse::<SocketAddr>().unwrap());
            assert_eq!(parse_leader(message), want, "case {i}: {message:?}");
        }
    }

    #[test]
    fn codec_errors_keep_their_type_and_a_cut_reply_is_closed() {
        let magic = CodecError::BadMagic { got: 0xB7, expected: 0xB8 };
        let err = ClientError::from(magic);
        assert!(matches!(err, ClientError::Protocol(CodecError::BadMagic { got: 0xB7, .. })), "{err:?}");
        assert_eq!(ErrorChain(&err).to_string(), "protocol error: bad magic byte 0xb7 (expected 0xb8)");
        let err = ClientError::from(CodecError::Truncated { held: 5 });
        assert!(matches!(err, ClientError::Closed), "{err:?}");
        let err = ClientError::from(CodecError::Io(std::io::ErrorKind::ConnectionReset.into()));
        assert!(matches!(err, ClientError::Io(_)), "{err:?}");
    }

    #[test]
    fn only_not_leader_replies_are_redirects() {
        let e = |status, message: &str| Reply::Error { status, message: message.into() };
        let leader: SocketAddr = "127.0.0.1:7441".parse().unwrap();
        assert_eq!(leader_of(&e(Status::NotLeader, "127.0.0.1:7441")), Some(Some(leader)));
        assert_eq!(leader_of(&e(Status::NotLeader, "")), Some(None));
        assert_eq!(leader_of(&e(Status::Loading, "127.0.0.1:7441")), None);
        assert_eq!(leader_of(&Reply::Text("127.0.0.1:7441".into())), None);
        let err = ClientError::Server { status: Status::NotLeader, message: "127.0.0.1:7441".into() };
        assert_eq!((err.status(), err.leader()), (Some(Status::NotLeader), Some(leader)));
        let err = ClientError::Server { status: Status::NoQuorum, message: "127.0.0.1:7441".into() };
        assert_eq!((err.status(), err.leader()), (Some(Status::NoQuorum), None));
    }
}
