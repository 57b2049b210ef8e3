//! A TCP proxy for link faults (no netem here): forwards 127.0.0.1
//! connections to a target and can cut them, stall them (hold bytes, keep
//! the sockets open) or refuse new ones.

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
    let a = pump(ir, ow, mode.clone(), epoch);
    let b = pump(or, iw, mode.clone(), epoch);
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
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Held while stalled: the bytes go through only if the link resumes.
        if mode.wait_for(|m| !m.stalled || m.epoch != epoch).await.is_err() || mode.borrow().epoch != epoch {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
