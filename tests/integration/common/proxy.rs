//! A TCP proxy for link faults (no netem here): forwards 127.0.0.1
//! connections to a target and can cut them, stall them (hold bytes, keep
//! the sockets open), stall them after some bytes from the target (to cut
//! a transfer surely in flight), slow what the target sends to a set rate
//! (a transfer that takes long however fast the machine) or refuse new ones.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Mode {
    /// Bumped by `cut`: every connection open at that moment is dropped.
    epoch: u64,
    stalled: bool,
    refusing: bool,
    /// Bytes from the target each connection forwards before it holds
    /// the rest, as if stalled.
    limit: Option<u64>,
    /// Bytes per second each connection forwards from the target.
    rate: Option<u64>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mode = Arc::new(watch::channel(Mode::default()).0);
        let m = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let rx = m.subscribe();
                if rx.borrow().refusing {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(relay(inbound, target, rx));
            }
        });
        Proxy { addr, mode, task }
    }

    /// Drops every connection open now (new ones are still accepted).
    pub fn cut(&self) {
        self.mode.send_modify(|m| m.epoch += 1);
    }

    /// Stops (or resumes) forwarding bytes without closing anything.
    pub fn stall(&self, stalled: bool) {
        self.mode.send_modify(|m| m.stalled = stalled);
    }

    /// From now on each connection forwards at most about `bytes` from the
    /// target (whole reads: up to 64 KiB more), then holds the rest until
    /// the limit is lifted (`None`) or the connection is cut.
    pub fn limit(&self, bytes: Option<u64>) {
        self.mode.send_modify(|m| m.limit = bytes);
    }

    /// Forwards what the target sends at about `bytes_per_sec` per
    /// connection (in reads of up to 64 KiB, each followed by a pause), or
    /// as fast as it comes (`None`).
    pub fn throttle(&self, bytes_per_sec: Option<u64>) {
        self.mode.send_modify(|m| m.rate = bytes_per_sec);
    }

    /// Cuts every connection and refuses new ones (or accepts them again).
    pub fn refuse(&self, refusing: bool) {
        self.mode.send_modify(|m| {
            m.refusing = refusing;
            if refusing {
                m.epoch += 1;
            }
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn relay(inbound: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let Ok(outbound) = TcpStream::connect(target).await else { return };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let epoch = mode.borrow().epoch;
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let a = pump(ir, ow, mode.clone(), epoch, false);
    let b = pump(or, iw, mode.clone(), epoch, true);
    let cut = async {
        let _ = mode.wait_for(|m| m.epoch != epoch).await;
    };
    tokio::select! {
        _ = a => {}
        _ = b => {}
        _ = cut => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    epoch: u64,
    from_target: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut forwarded = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held while stalled: the bytes go through only if the link resumes.
        let held = |m: &Mode| m.stalled || (from_target && m.limit.is_some_and(|l| forwarded >= l));
        if mode.wait_for(|m| !held(m) || m.epoch != epoch).await.is_err() || mode.borrow().epoch != epoch {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
        forwarded += n as u64;
        let rate = if from_target { mode.borrow().rate } else { None };
        if let Some(rate) = rate {
            tokio::time::sleep(std::time::Duration::from_secs_f64(n as f64 / rate.max(1) as f64)).await;
        }
    }
}
