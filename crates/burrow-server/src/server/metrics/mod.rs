//! `--metrics-addr`: Prometheus metrics over plain HTTP/1.1, `GET /metrics`
//! only. A small responder on the server's runtime rather than an HTTP
//! framework: one request per connection, its head bounded in size
//! ([`MAX_REQUEST`]) and time ([`READ_TIMEOUT`]), few connections at once
//! ([`MAX_SCRAPERS`]); the text comes from `prometheus-client`
//! (`exposition`). Protected mode does not apply: the endpoint shows
//! counts and sizes, never a key or a value.

mod exposition;
mod request;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::log_limit::{LogLimit, LOG_EVERY};
use super::Shared;
use request::{parse, Request};

/// Largest request head read; a longer one gets 431.
const MAX_REQUEST: usize = 8 * 1024;
/// A request head must arrive within this long (slowloris), else 408.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more connections are closed at once.
const MAX_SCRAPERS: usize = 8;

/// Logs where the endpoint listens; a non-loopback address is allowed but said.
pub(super) fn announce(addr: SocketAddr) {
    if addr.ip().is_loopback() {
        info!(%addr, "metrics endpoint listening (GET /metrics)");
    } else {
        warn!(
            %addr,
            "metrics endpoint listening on a non-loopback address: anyone who reaches it sees \
             command counts, sizes and replication state (never keys or values)"
        );
    }
}

/// Accepts scrapers until `cancel`.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    let refused = Arc::new(LogLimit::new(LOG_EVERY));
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    if let Some(skipped) = refused.allow(Instant::now()) {
                        warn!(error = %e, skipped, "metrics accept failed (logged at most once per 10 s)");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            if let Some(skipped) = refused.allow(Instant::now()) {
                warn!(%peer, skipped, max = MAX_SCRAPERS, "too many metrics connections; closing");
            }
            continue;
        };
        let (shared, cancel, refused) = (shared.clone(), cancel.clone(), refused.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = answer(stream, peer, &shared, &refused) => {}
            }
            drop(permit);
        });
    }
}

/// Reads one request head and answers it; the connection then closes.
async fn answer(mut stream: TcpStream, peer: SocketAddr, shared: &Shared, log: &LogLimit) {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream, &mut buf)).await;
    let (status, body) = match head {
        Err(_) => (Status::Timeout, "request not received in time\n".to_string()),
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "metrics connection failed");
            return;
        }
        Ok(Ok(Head::TooLarge)) => (Status::TooLarge, format!("request head over {MAX_REQUEST} bytes\n")),
        Ok(Ok(Head::Closed)) => return,
        Ok(Ok(Head::Complete)) => match parse(&buf) {
            Err(why) => (Status::BadRequest, format!("{why}\n")),
            Ok(Request { method, path }) if method != "GET" => {
                debug!(%peer, method, path, "metrics: method not allowed");
                (Status::MethodNotAllowed, "only GET is served\n".to_string())
            }
            Ok(Request { path, .. }) if path.split('?').next() != Some("/metrics") => {
                (Status::NotFound, "not found: metrics are at /metrics\n".to_string())
            }
            Ok(_) => (Status::Ok, exposition::render(shared)),
        },
    };
    if status.is_client_error() {
        if let Some(skipped) = log.allow(Instant::now()) {
            warn!(%peer, status = status.line(), skipped, "metrics request refused (logged at most once per 10 s)");
        }
    }
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        status.line(),
        if status == Status::Ok { exposition::CONTENT_TYPE } else { "text/plain; charset=utf-8" },
        body.len(),
        if status == Status::MethodNotAllowed { "Allow: GET\r\n" } else { "" },
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client still sends before closing: closing with
        // unread bytes resets the connection, which can destroy the reply
        // before the client reads it (a refused over-size request).
        let mut sink = [0u8; 4096];
        let mut left = DRAIN_LIMIT;
        while left > 0 {
            match stream.read(&mut sink).await? {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
        Ok::<(), std::io::Error>(())
    };
    match tokio::time::timeout(READ_TIMEOUT, write).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => debug!(%peer, error = %e, "metrics reply not delivered"),
        Err(_) => debug!(%peer, "metrics client did not close in time"),
    }
}

/// Bytes read and dropped after a reply while waiting for the client to close.
const DRAIN_LIMIT: usize = 64 * 1024;

enum Head {
    /// `\r\n\r\n` seen.
    Complete,
    TooLarge,
    /// The peer closed before a whole head.
    Closed,
}

async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Head> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Head::Closed);
        }
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if buf[from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Head::Complete);
        }
        if buf.len() > MAX_REQUEST {
            return Ok(Head::TooLarge);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Timeout,
    TooLarge,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Timeout => "408 Request Timeout",
            Status::TooLarge => "431 Request Header Fields Too Large",
        }
    }

    fn is_client_error(self) -> bool {
        self != Status::Ok
    }
}
