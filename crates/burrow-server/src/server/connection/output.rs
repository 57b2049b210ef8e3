//! Writing replies out, and the limits on replies a peer leaves unread
//! (Redis's client-output-buffer-limit, issue 11).
//!
//! A connection stops executing while its replies are written, so what it
//! holds unread is at most one batch (`FLUSH_AT`) plus the reply that
//! filled it. The limits bound how long a peer may leave that unread:
//! past `--client-output-hard-limit` the connection is closed as soon as
//! the peer does not take the bytes (a write would wait); above
//! `--client-output-soft-limit` for `--client-output-soft-seconds` in a
//! row, too. Either is logged (rate-limited) and counted in INFO
//! `clients_killed_output_limit`.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::FutureExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::server::log_limit::{LogLimit, LOG_EVERY};
use crate::server::Shared;

/// Once shutdown has begun, how long one write of replies may block. Without
/// it a peer that stops reading would hold shutdown open forever.
const SHUTDOWN_WRITE_GRACE: Duration = Duration::from_secs(2);

/// The most one write hands the kernel; between such chunks of one large
/// batch (a 20 MB LRANGE reply) the connection yields, so the others on
/// its runtime thread are served meanwhile (issue 11 item 8).
const WRITE_CHUNK: usize = 1024 * 1024;

/// Connections closed for unread replies: one line per `LOG_EVERY`.
static KILLED: LogLimit = LogLimit::new(LOG_EVERY);

/// Writes replies. Gives up when the peer has read nothing for the idle
/// timeout (if one is set: a client that never reads must not hold a
/// connection slot and its buffers forever), when its unread replies pass
/// the output limits, or `SHUTDOWN_WRITE_GRACE` after shutdown begins.
pub(super) async fn write_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &[u8],
    cancel: &CancellationToken,
    shared: &Shared,
) -> io::Result<()> {
    let config = &shared.config;
    let stall = config.idle_timeout;
    let give_up = async {
        cancel.cancelled().await;
        tokio::time::sleep(SHUTDOWN_WRITE_GRACE).await;
    };
    tokio::pin!(give_up);
    // The whole batch stays allocated until its last byte is written: that
    // is what the limits weigh, not just the part the kernel has not taken.
    let held = buf.len();
    let hard = config.client_output_hard_limit;
    let past_hard = hard != 0 && held > hard;
    let soft = config.client_output_soft_limit;
    let soft_deadline =
        (soft != 0 && held > soft).then(|| Instant::now() + config.client_output_soft_seconds);
    let mut pos = 0;
    while pos < buf.len() {
        if past_hard {
            // Only what the peer takes at once may go: a write that would wait ends it.
            match stream.write(&buf[pos..]).now_or_never() {
                Some(r) => {
                    pos += written(r)?;
                    continue;
                }
                None => return Err(killed(shared, "hard", held, hard)),
            }
        }
        let over_soft = async {
            match soft_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let chunk = &buf[pos..buf.len().min(pos + WRITE_CHUNK)];
        let write = async {
            if pos != 0 {
                // Awaited in here, not in this function's own body: an
                // await point there cost ~1.4 % at pipeline 1 (SET P1,
                // `bench/callgrind.sh`), though it never ran.
                tokio::task::yield_now().await;
            }
            match stall {
                None => stream.write(chunk).await,
                Some(t) => {
                    tokio::time::timeout(t, stream.write(chunk)).await.unwrap_or_else(|_| Err(unread(t)))
                }
            }
        };
        let n = tokio::select! {
            // Write first: a write that completes at once never touches the token.
            biased;
            r = write => r,
            _ = &mut give_up => return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "shutting down and the peer is not reading its replies",
            )),
            _ = over_soft => return Err(killed(shared, "soft", held, soft)),
        };
        pos += written(n)?;
    }
    // A TLS stream may still hold the end of its last record (the socket
    // took only part of it): without a flush a reader that fell behind
    // never gets it. A plain socket's flush returns at once: no await then.
    if let Some(r) = stream.flush().now_or_never() {
        return r;
    }
    let flush = async {
        match stall {
            None => stream.flush().await,
            Some(t) => tokio::time::timeout(t, stream.flush()).await.unwrap_or_else(|_| Err(unread(t))),
        }
    };
    tokio::select! {
        biased;
        r = flush => r,
        _ = &mut give_up => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "shutting down and the peer is not reading its replies",
        )),
    }
}

/// The idle timeout passed with replies unread.
fn unread(t: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the peer has read no reply for {}s (idle timeout)", t.as_secs()),
    )
}

fn written(r: io::Result<usize>) -> io::Result<usize> {
    match r? {
        0 => Err(io::ErrorKind::WriteZero.into()),
        n => Ok(n),
    }
}

/// Counts and logs a connection closed for unread replies.
fn killed(shared: &Shared, which: &str, held: usize, limit: usize) -> io::Error {
    shared.stats.killed_output_limit.fetch_add(1, Ordering::Relaxed);
    let msg = format!(
        "{held} bytes of replies not read by the peer, past the {which} output limit of {limit} bytes; closing"
    );
    if let Some(skipped) = KILLED.allow(std::time::Instant::now()) {
        warn!(skipped, "{msg}");
    }
    io::Error::other(msg)
}
