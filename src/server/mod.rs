//! The TCP server: accept loop, connection limit, graceful shutdown.
//!
//! `run` takes a bound listener and a shutdown future, so the binary, tests
//! and examples all start the server the same way. Shutdown stops accepting,
//! lets every connection finish the batch it is executing and write its
//! replies, and returns once all connection tasks have ended.

mod config;
mod connection;
mod dispatch;
mod info;
mod stats;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

pub use config::{default_shards, Config, ConfigError, ServerArgs};
pub use dispatch::range as lrange_bounds;
pub use info::rss_bytes;
pub use stats::Stats;

use crate::oplog::OpLog;
use crate::store::Store;

/// State shared by every connection.
#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub config: Config,
    pub stats: Stats,
    pub started: Instant,
    pub local_port: u16,
}

/// Milliseconds since the unix epoch: the clock expiry is measured against.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How often the active expiry sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Buckets looked at per shard per sweep pass.
const SWEEP_BUCKETS: usize = 64;
/// Longest one sweep round may run before yielding to clients.
const SWEEP_BUDGET: Duration = Duration::from_millis(2);

/// Serves `listener` until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local_port = listener.local_addr()?.port();
    let log = Arc::new(OpLog::new(config.backlog_bytes));
    let shared = Arc::new(Shared {
        store: Store::new(config.shards, log),
        stats: Stats::default(),
        started: Instant::now(),
        local_port,
        config,
    });
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(sweep_expired(shared.clone(), cancel.clone()));
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    info!(addr = %listener.local_addr()?, shards = shared.store.shard_count(), "burrow listening");

    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.stats.total_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match limit.clone().try_acquire_owned() {
            Ok(permit) => {
                tracker.spawn(connection::serve(stream, peer, shared.clone(), cancel.clone(), permit));
            }
            Err(_) => {
                shared.stats.rejected_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                warn!(%peer, max = shared.config.max_connections, "connection limit reached; refusing");
                tracker.spawn(connection::refuse(stream));
            }
        }
    }
    info!("shutting down: no longer accepting; finishing requests in flight");
    drop(listener);
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    info!("shutdown complete");
    Ok(())
}

async fn sweep_expired(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        loop {
            let s = shared.store.sweep_expired(now_ms(), SWEEP_BUCKETS);
            // Keep going while over a quarter of the TTL keys seen were expired.
            if s.removed * 4 <= s.sampled || started.elapsed() > SWEEP_BUDGET {
                break;
            }
        }
    }
}

/// A server running on a background task, for tests and examples.
#[derive(Debug)]
pub struct ServerHandle {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// Binds `config.bind:config.port` (port 0 for a free one) and serves in the background.
    pub async fn start(config: Config) -> std::io::Result<ServerHandle> {
        let listener = TcpListener::bind((config.bind, config.port)).await?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { run(listener, config, token.cancelled_owned()).await });
        Ok(ServerHandle { addr, shutdown, task })
    }

    /// Graceful shutdown; returns when every connection has finished.
    pub async fn shutdown(self) -> std::io::Result<()> {
        self.shutdown.cancel();
        self.task.await.map_err(std::io::Error::other)?
    }
}
