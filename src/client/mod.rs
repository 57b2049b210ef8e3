//! The async Rust client: a typed method per command, pipelining, and
//! connect/request timeouts.
//!
//! ```no_run
//! # async fn demo() -> Result<(), burrow::client::ClientError> {
//! let mut c = burrow::client::Client::connect("127.0.0.1:7440").await?;
//! c.set("greeting", "hello").await?;
//! assert_eq!(c.get("greeting").await?.as_deref(), Some(&b"hello"[..]));
//! # Ok(()) }
//! ```

mod error;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_util::codec::{Decoder, Encoder};

pub use error::ClientError;

use crate::protocol::{Codec, End, Limits, Reply, Request, SetCondition};

/// Client settings. `Default` suits a server on the same machine.
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    pub connect_timeout: Duration,
    /// Limit on one request (or one pipeline) from first byte sent to last reply read.
    pub request_timeout: Duration,
    /// Largest response the client will accept.
    pub limits: Limits,
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
        }
    }
}

/// Options for SET beyond key and value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub ttl: Option<Duration>,
    pub condition: SetCondition,
    pub keep_ttl: bool,
}

/// TTL of a key as the server reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    Missing,
    Persistent,
    Expires(Duration),
}

/// One connection to a Burrow server. Not `Clone`: open one per task, or
/// pipeline several requests through one.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    codec: Codec,
    rbuf: BytesMut,
    wbuf: BytesMut,
    next_id: u32,
    config: ClientConfig,
    /// Set when a timeout or protocol error left replies unread: the stream
    /// can no longer be trusted to line up with requests.
    broken: bool,
}

impl Client {
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        Client::connect_with(addr, ClientConfig::default()).await
    }

    pub async fn connect_with(addr: impl ToSocketAddrs, config: ClientConfig) -> Result<Client, ClientError> {
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout { what: "connect", after: config.connect_timeout })?
            .map_err(ClientError::Connect)?;
        stream.set_nodelay(true).map_err(ClientError::Connect)?;
        Ok(Client {
            stream,
            codec: Codec::client(config.limits),
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: BytesMut::with_capacity(16 * 1024),
            next_id: 1,
            config,
            broken: false,
        })
    }

    /// Sends one request and returns its reply; an error status comes back
    /// as `Ok(Reply::Error { .. })`, not as `Err`.
    pub async fn request(&mut self, req: &Request) -> Result<Reply, ClientError> {
        let mut replies = self.pipeline(std::slice::from_ref(req)).await?;
        Ok(replies.pop().expect("one reply per request"))
    }

    /// Sends every request in one write and returns their replies in order.
    pub async fn pipeline(&mut self, reqs: &[Request]) -> Result<Vec<Reply>, ClientError> {
        if self.broken {
            return Err(ClientError::Broken);
        }
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, self.exchange(reqs)).await {
            Ok(Ok(replies)) => Ok(replies),
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

    async fn exchange(&mut self, reqs: &[Request]) -> Result<Vec<Reply>, ClientError> {
        let first = self.next_id;
        self.wbuf.clear();
        for req in reqs {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            self.codec.encode(&req.to_frame(id), &mut self.wbuf)?;
        }
        self.stream.write_all(&self.wbuf).await?;
        let mut replies = Vec::with_capacity(reqs.len());
        while replies.len() < reqs.len() {
            let frame = match self.codec.decode(&mut self.rbuf)? {
                Some(f) => f,
                None => {
                    if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                        return Err(ClientError::Closed);
                    }
                    continue;
                }
            };
            let expected = first.wrapping_add(replies.len() as u32);
            let reply = Reply::from_frame(&frame).map_err(|e| ClientError::Protocol(e.to_string()))?;
            if frame.id != expected {
                // A server that refuses a connection answers with id 0.
                if let Reply::Error { status, message } = reply {
                    return Err(ClientError::Server { status, message });
                }
                return Err(ClientError::Protocol(format!(
                    "reply id {} does not match request id {expected}",
                    frame.id
                )));
            }
            replies.push(reply);
        }
        Ok(replies)
    }

    /// Sends one request; an error status becomes `Err(ClientError::Server)`.
    async fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        match self.request(&req).await? {
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

    pub async fn get(&mut self, key: impl Into<Bytes>) -> Result<Option<Bytes>, ClientError> {
        self.call_opt_bytes(Request::Get { key: key.into() }).await
    }

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

    pub async fn del(&mut self, key: impl Into<Bytes>) -> Result<bool, ClientError> {
        Ok(self.call_int(Request::Del { key: key.into() }).await? == 1)
    }

    pub async fn exists(&mut self, key: impl Into<Bytes>) -> Result<bool, ClientError> {
        Ok(self.call_int(Request::Exists { key: key.into() }).await? == 1)
    }

    /// EXPIRE in milliseconds; `false` if the key does not exist.
    pub async fn expire(&mut self, key: impl Into<Bytes>, ttl: Duration) -> Result<bool, ClientError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        Ok(self.call_int(Request::Expire { key: key.into(), ttl_ms }).await? == 1)
    }

    pub async fn persist(&mut self, key: impl Into<Bytes>) -> Result<bool, ClientError> {
        Ok(self.call_int(Request::Persist { key: key.into() }).await? == 1)
    }

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

    pub async fn incr(&mut self, key: impl Into<Bytes>) -> Result<i64, ClientError> {
        self.call_int(Request::Incr { key: key.into() }).await
    }

    pub async fn decr(&mut self, key: impl Into<Bytes>) -> Result<i64, ClientError> {
        self.call_int(Request::Decr { key: key.into() }).await
    }

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

    pub async fn lpop(&mut self, key: impl Into<Bytes>) -> Result<Option<Bytes>, ClientError> {
        self.call_opt_bytes(Request::Pop { key: key.into(), end: End::Left, count: None }).await
    }

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

    /// INFO text; `section` empty for all sections.
    pub async fn info(&mut self, section: &str) -> Result<String, ClientError> {
        match self.call(Request::Info { section: Bytes::copy_from_slice(section.as_bytes()) }).await? {
            Reply::Text(t) => Ok(t),
            other => Err(ClientError::unexpected("INFO text", other)),
        }
    }
}

/// Parses a DIGEST reply: exactly 16 lowercase hex digits.
pub fn parse_digest(text: &str) -> Option<u64> {
    let ok = text.len() == 16 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| u64::from_str_radix(text, 16).ok()).flatten()
}

/// Parses INFO text into (key, value) pairs, skipping section headers.
pub fn parse_info(text: &str) -> Vec<(&str, &str)> {
    text.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once(':')).collect()
}
