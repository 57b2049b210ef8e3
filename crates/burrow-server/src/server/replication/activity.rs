//! Bytes moving on a replication link, as proof of life for the state
//! machines' timeouts (`Leader::on_link_activity`,
//! `Follower::on_link_activity`).
//!
//! Whole messages are not enough: a snapshot chunk or a batch of 16 MiB
//! records can take longer than `link_timeout_ms` to cross a busy machine,
//! and heartbeats wait behind it. So each link's socket halves are wrapped
//! in [`Metered`], which counts reads that returned bytes and writes that
//! went through *after the socket was full*. The second kind keeps a
//! sender alive while it is blocked on a big transfer: room appearing in a
//! full socket means the peer is reading. A write that went straight into
//! the kernel's buffer proves nothing (the kernel takes bytes for a peer
//! that stopped reading), so it is not counted. That signal is coarse (a
//! full socket wakes its writer only once much of its buffer drained), so
//! the receiving follower also acks while bytes arrive (`keepalive_ticks`).
//!
//! The ticking task asks [`Activity::moved`] once per tick and reports a
//! yes to its state machine just before ticking it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One link's activity counter.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Bumped by the link's IO on every sign of life.
    events: AtomicU64,
    /// `events` as of the last [`Activity::moved`].
    seen: AtomicU64,
}

impl Activity {
    fn note(&self) {
        self.events.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the link moved bytes since the previous call. Meant for one
    /// caller (the task that ticks the state machine).
    pub(super) fn moved(&self) -> bool {
        let now = self.events.load(Ordering::Relaxed);
        self.seen.swap(now, Ordering::Relaxed) != now
    }
}

/// A socket half that reports its progress to an [`Activity`].
#[derive(Debug)]
pub(super) struct Metered<T> {
    inner: T,
    activity: Arc<Activity>,
    /// The last write found the socket full.
    blocked: bool,
}

impl<T> Metered<T> {
    pub(super) fn new(inner: T, activity: Arc<Activity>) -> Metered<T> {
        Metered { inner, activity, blocked: false }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.note();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        match r {
            Poll::Pending => self.blocked = true,
            Poll::Ready(Ok(n)) if n > 0 && self.blocked => {
                self.blocked = false;
                self.activity.note();
            }
            _ => {}
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn reads_count_and_writes_count_only_after_the_socket_was_full() {
        let (a, b) = tokio::io::duplex(64);
        let (ra, wa) = (Arc::new(Activity::default()), Arc::new(Activity::default()));
        let mut reader = Metered::new(a, ra.clone());
        let mut writer = Metered::new(b, wa.clone());
        assert!(!ra.moved() && !wa.moved());

        // Room in the buffer: the write proves nothing, the read does.
        writer.write_all(b"hello").await.unwrap();
        assert!(!wa.moved(), "a write into free buffer space is not a sign of life");
        let mut got = [0u8; 5];
        reader.read_exact(&mut got).await.unwrap();
        assert!(ra.moved());
        assert!(!ra.moved(), "reported once");

        // More than the buffer holds: the writer blocks until the reader
        // drains, and that progress is a sign of life.
        let big = vec![7u8; 1000];
        let send = tokio::spawn(async move {
            writer.write_all(&big).await.unwrap();
            writer
        });
        let mut sink = vec![0u8; 1000];
        reader.read_exact(&mut sink).await.unwrap();
        send.await.unwrap();
        assert!(wa.moved(), "a blocked write that went through");
        assert!(ra.moved());
    }
}
