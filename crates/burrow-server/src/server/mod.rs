//! The TCP server: accept loop, connection limit, graceful shutdown.
//!
//! [`Server::serve`] takes a bound listener and a shutdown future, so the
//! binary, tests and examples all start the server the same way. Shutdown
//! stops accepting, lets every connection finish the batch it is executing
//! and write its replies, and returns once all connection tasks have ended.

mod auth;
mod clients;
mod cluster;
mod commands;
mod config;
mod connection;
mod dispatch;
#[cfg(test)]
mod doc_examples;
mod fd_limit;
mod info;
mod input_budget;
mod log_limit;
mod metrics;
mod monitor;
mod persistence;
mod replication;
mod slowlog;
mod stats;
mod tls;
mod unix_socket;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

pub use auth::AuthSetupError;
pub use cluster::{ClusterConfig, ClusterFileError, MembershipError, NodeInfo, ReplicationMode};
#[cfg(test)]
pub(crate) use config::SETTINGS;
pub use config::{Config, ConfigError, FileMode, LogFormat, ServerArgs, TlsClientAuth};
pub(crate) use persistence::{Persistence, SnapshotRefusal};
pub(crate) use replication::Role;
pub(crate) use stats::Stats;
pub use tls::TlsSetupError;
pub use unix_socket::UnixSocketError;

use crate::oplog::OpLog;
use crate::persist::{lock_data_dir, FileSystem, PersistError, StdFileSystem};
use crate::store::Store;
use burrow_proto::ErrorChain;
use log_limit::{LogLimit, LOG_EVERY};

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Arc<Store>,
    pub config: Config,
    pub stats: Stats,
    pub started: Instant,
    pub local_port: u16,
    /// `None` with `--persistence off`.
    pub persist: Option<Arc<Persistence>>,
    /// This node's role and replication state.
    pub repl: replication::Replication,
    /// The client secret, if any, and AUTH counters.
    pub auth: auth::ClientAuth,
    /// Bytes connections may buffer for incomplete large requests.
    pub input: input_budget::InputBudget,
    /// `config.max_connections`, or fewer if the open-files limit cannot
    /// hold that many (`fd_limit`).
    pub max_connections: usize,
    /// Warnings about over-limit requests whose payload is skipped
    /// (per server, so one server's flood does not hide another's).
    pub too_large_log: LogLimit,
    /// The client port's TLS (`--tls-cert-file`), and how members dial.
    pub tls: Option<tls::ServerTls>,
    /// Where `--metrics-addr` is bound, once it is (INFO `metrics_addr`).
    pub metrics_addr: std::sync::OnceLock<SocketAddr>,
    /// Commands slower than `--slowlog-threshold` (SLOWLOG).
    pub slowlog: slowlog::SlowLog,
    /// The settings as CONFIG GET shows them: `config`, with what CONFIG
    /// SET changed since (only for runtime settings, whose effect lives
    /// elsewhere, e.g. in `slowlog`). Locked by CONFIG only.
    pub settings: std::sync::Mutex<Config>,
    /// Client connections (CLIENT LIST / KILL / ID).
    pub clients: clients::Clients,
    /// Monitoring connections (MONITOR).
    pub monitors: monitor::Monitors,
    /// Replication handshakes refused on the Unix socket (a client can loop them).
    pub unix_link_log: LogLimit,
    /// `--maxmemory` as it is now (CONFIG SET changes it): what writes
    /// and INFO read instead of `config.maxmemory`.
    pub maxmemory: std::sync::atomic::AtomicUsize,
}

impl Shared {
    /// How this node dials other members: TLS under `[cluster] tls`.
    pub(crate) fn member_dialer(&self) -> tls::MemberDialer {
        self.tls.as_ref().map_or_else(tls::MemberDialer::plain, |t| t.dialer.clone())
    }
}

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    UnixSocket(#[from] UnixSocketError),
}

/// A server whose data is loaded, ready to serve a listener.
#[derive(Debug)]
pub struct Server {
    store: Arc<Store>,
    persist: Option<Arc<Persistence>>,
    config: Config,
    /// What files are written through (a cluster member's vote file too).
    fs: Arc<dyn FileSystem>,
    /// A cluster member with persistence off: its data directory's lock
    /// (its vote file lives there; with persistence on, `persist` holds it).
    dir_lock: Option<std::fs::File>,
    auth: auth::ClientAuth,
    tls: Option<tls::ServerTls>,
    /// `--unix-socket`, once bound (`run_threads` binds it before loading
    /// the data; otherwise `serve_on` does).
    unix: Option<unix_socket::UnixSocket>,
}

impl Server {
    /// Builds the store and, with persistence on, locks the data directory,
    /// recovers it (snapshot + WAL) and starts the WAL writer; a cluster
    /// member with persistence off locks it too (its vote file lives there). Call before
    /// binding: the port opens only once the data is loaded.
    pub fn open(config: Config) -> Result<Server, ServerError> {
        Server::open_with_fs(config, Arc::new(StdFileSystem))
    }

    /// [`Server::open`], writing every persistence file (WAL, snapshots,
    /// node file, vote file) through `faults`, which fails the calls a test planned.
    #[cfg(feature = "fault-injection")]
    pub fn open_with_faults(
        config: Config,
        faults: &crate::fault_injection::FaultyFileSystem,
    ) -> Result<Server, ServerError> {
        Server::open_with_fs(config, Arc::new(faults.clone()))
    }

    /// [`Server::open`], writing every persistence file through `fs`.
    fn open_with_fs(config: Config, fs: Arc<dyn FileSystem>) -> Result<Server, ServerError> {
        // Before any data loads: a refused start should be quick.
        let auth = auth::ClientAuth::load(&config)?;
        let tls = tls::load(&config)?;
        Server::open_authenticated(config, fs, auth, tls)
    }

    /// [`Server::open_with_fs`] with the client secret already read.
    fn open_authenticated(
        config: Config,
        fs: Arc<dyn FileSystem>,
        auth: auth::ClientAuth,
        tls: Option<tls::ServerTls>,
    ) -> Result<Server, ServerError> {
        // Every cluster member queues records for replication (a standalone
        // server skips that work on every write), from before recovery: any
        // member may be elected, and its backlog then holds the records its
        // WAL replayed and those it received as a follower, so members
        // behind it at its election (a crashed leader restarting among
        // them) resume by partial resync. Bounded by `backlog_bytes`.
        let log = Arc::new(OpLog::counting(config.backlog_bytes));
        if config.cluster.is_some() {
            log.start_retaining();
        }
        let store = Arc::new(Store::new(config.shards, log));
        store.set_lru(config.maxmemory_policy.lru());
        let persist = match config.persist_config() {
            Some(cfg) => {
                Some(Arc::new(Persistence::open_with(cfg, &store, fs.clone(), config.cluster.is_some())?))
            }
            None => None,
        };
        let dir_lock = match (&persist, &config.cluster) {
            (None, Some(_)) => Some(lock_data_dir(&config.data_dir)?),
            _ => None,
        };
        Ok(Server { store, persist, config, fs, dir_lock, auth, tls, unix: None })
    }

    /// Serves `listener` until `shutdown` completes, then finishes requests
    /// in flight, writes a final snapshot (persistence on) and returns.
    /// Connections run on the current runtime.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        self.serve_on(listener, shutdown, Vec::new()).await
    }

    /// Like [`Server::serve`], but hands each accepted connection to one of
    /// `workers` in turn (each a single-threaded runtime on its own thread),
    /// where it stays: no work stealing, so a connection's wake-ups never
    /// cross cores. The current runtime accepts and runs the background
    /// tasks; an empty `workers` serves connections on it as well.
    pub async fn serve_on(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
        workers: Vec<tokio::runtime::Handle>,
    ) -> Result<(), ServerError> {
        let local_port = listener.local_addr()?.port();
        let unix = match self.unix.take() {
            Some(u) => Some(u),
            None => bind_unix(&self.config)?,
        };
        // Opening the replication role reads and writes the node file: off
        // the runtime's threads.
        let shared = tokio::task::spawn_blocking(move || self.into_shared(local_port))
            .await
            .map_err(std::io::Error::other)??;
        serve_shared(listener, unix, Arc::new(shared), shutdown, workers).await
    }

    /// What every connection shares: the data, the settings and this
    /// node's replication role (its background tasks are not started).
    /// Blocking: reads and writes the node file.
    fn into_shared(self, local_port: u16) -> Result<Shared, ServerError> {
        let Server { store, persist, config, fs, dir_lock, auth, tls, unix: _ } = self;
        let repl = replication::Replication::open(&config, &store, persist.as_ref(), fs, dir_lock)?;
        Ok(Shared {
            store,
            stats: Stats::default(),
            input: input_budget::InputBudget::new(config.max_input_buffer),
            too_large_log: LogLimit::new(LOG_EVERY),
            slowlog: slowlog::SlowLog::new(config.slowlog_threshold, config.slowlog_max_len),
            settings: std::sync::Mutex::new(config.clone()),
            clients: clients::Clients::default(),
            monitors: monitor::Monitors::default(),
            unix_link_log: LogLimit::new(LOG_EVERY),
            maxmemory: std::sync::atomic::AtomicUsize::new(config.maxmemory),
            max_connections: fd_limit::fit_connections(config.max_connections),
            started: Instant::now(),
            local_port,
            config,
            persist,
            repl,
            auth,
            tls,
            metrics_addr: std::sync::OnceLock::new(),
        })
    }
}

impl Server {
    /// Runs the production topology until `shutdown` completes: thread per
    /// core. The calling thread runs the main runtime, which accepts, runs
    /// the background tasks (and serves connections too); `threads - 1`
    /// more single-threaded runtimes each own the connections handed to
    /// them. A connection never migrates, so its wake-ups never cross
    /// cores — on this kind of VM that is what costs the most at low
    /// pipeline depths.
    ///
    /// The port is bound (and held) before the data is recovered, so a
    /// taken port is reported at once rather than after loading a large
    /// data set; connections are accepted only once recovery is done.
    pub fn run_threads(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let stop_workers = CancellationToken::new();
        let mut workers = Vec::new();
        let mut worker_threads = Vec::new();
        for i in 1..config.threads {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            workers.push(rt.handle().clone());
            let stop = stop_workers.clone();
            let thread = std::thread::Builder::new()
                .name(format!("burrow-worker-{i}"))
                .spawn(move || rt.block_on(stop.cancelled()))?;
            worker_threads.push(thread);
        }
        let served = runtime.block_on(async {
            // Protected mode and a bad secret file refuse before the port opens.
            let auth = auth::ClientAuth::load(&config)?;
            let tls = tls::load(&config)?;
            let listener = bind(&config).await?;
            let unix = bind_unix(&config)?;
            let fs: Arc<dyn FileSystem> = Arc::new(StdFileSystem);
            let mut server =
                tokio::task::spawn_blocking(move || Server::open_authenticated(config, fs, auth, tls))
                    .await
                    .map_err(std::io::Error::other)??;
            server.unix = unix;
            // The main runtime takes its share of connections too.
            let mut handles = vec![tokio::runtime::Handle::current()];
            handles.extend(workers);
            let handles = if handles.len() == 1 { Vec::new() } else { handles };
            server.serve_on(listener, shutdown, handles).await
        });
        stop_workers.cancel();
        for t in worker_threads {
            let _ = t.join();
        }
        served
    }
}

/// Binds `config.bind:config.port`, naming the address in the error.
async fn bind(config: &Config) -> Result<TcpListener, ServerError> {
    let addr = SocketAddr::new(config.bind, config.port);
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })
}

/// Binds `--unix-socket`, if given.
fn bind_unix(config: &Config) -> Result<Option<unix_socket::UnixSocket>, ServerError> {
    match &config.unix_socket {
        Some(path) => Ok(Some(unix_socket::UnixSocket::bind(path, config.unix_socket_perm.bits())?)),
        None => Ok(None),
    }
}

/// Milliseconds since the unix epoch: the clock expiry is measured against.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How often the active expiry sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);
/// Buckets looked at per shard per sweep pass.
const SWEEP_BUCKETS: usize = 64;
/// Longest one sweep round may run before yielding to clients.
const SWEEP_BUDGET: Duration = Duration::from_millis(2);

/// A connection the accept loop took, from either listener.
enum Accepted {
    Tcp(tokio::net::TcpStream, SocketAddr),
    Unix(tokio::net::UnixStream),
}

/// The next connection on the Unix socket; never, without one.
async fn accept_unix(unix: Option<&unix_socket::UnixSocket>) -> std::io::Result<Accepted> {
    match unix {
        Some(u) => u.accept().await.map(Accepted::Unix),
        None => std::future::pending().await,
    }
}

async fn serve_shared(
    listener: TcpListener,
    unix: Option<unix_socket::UnixSocket>,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
    workers: Vec<tokio::runtime::Handle>,
) -> Result<(), ServerError> {
    let mut next_worker = 0usize;
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(sweep_expired(shared.clone(), cancel.clone()));
    shared.repl.start(&shared, &cancel, &tracker);
    if let Some(p) = &shared.persist {
        tracker.spawn(persistence::schedule_snapshots(p.clone(), shared.store.clone(), cancel.clone()));
    }
    if let Some(addr) = shared.config.metrics_addr {
        let l = TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { addr, source })?;
        let bound = l.local_addr()?;
        let _ = shared.metrics_addr.set(bound);
        metrics::announce(bound);
        tracker.spawn(metrics::serve(l, shared.clone(), cancel.clone()));
    }
    let limit = Arc::new(Semaphore::new(shared.max_connections));
    let mut spare = fd_limit::Spare::open();
    let accept_errors = LogLimit::new(LOG_EVERY);
    let refusals = LogLimit::new(LOG_EVERY);
    info!(addr = %listener.local_addr()?, shards = shared.store.shard_count(), "burrow listening");

    tokio::pin!(shutdown);
    loop {
        let (accepted, from_unix) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => (r.map(|(s, peer)| Accepted::Tcp(s, peer)), false),
            r = accept_unix(unix.as_ref()) => (r, true),
        };
        let accepted = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors: the spare one lets a waiting client
                // at least hear BUSY rather than hang (TCP only: a Unix
                // client waits in the socket's backlog meanwhile).
                let refused = fd_limit::out_of_descriptors(&e)
                    && !from_unix
                    && spare.lend(|| {
                        if fd_limit::refuse_one(&listener, &connection::busy_reply()) {
                            shared
                                .stats
                                .rejected_connections
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    });
                if let Some(skipped) = accept_errors.allow(Instant::now()) {
                    error!(error = %e, skipped, "accept failed (logged at most once per 10 s)");
                }
                if !refused {
                    // Back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                continue;
            }
        };
        shared.stats.total_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // One limit for both listeners: a connection is a connection.
        let permit = match limit.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                shared.stats.rejected_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let peer = match &accepted {
                    Accepted::Tcp(_, peer) => peer.to_string(),
                    Accepted::Unix(_) => unix.as_ref().map_or_else(String::new, |u| u.peer().to_string()),
                };
                if let Some(skipped) = refusals.allow(Instant::now()) {
                    warn!(%peer, max = shared.max_connections, skipped, "connection limit reached; refusing");
                }
                match accepted {
                    Accepted::Tcp(stream, _) => tracker.spawn(connection::refuse(stream)),
                    Accepted::Unix(stream) => tracker.spawn(connection::refuse(stream)),
                };
                continue;
            }
        };
        // Round-robin over the workers; the socket moves to the worker's own reactor.
        let worker = (!workers.is_empty()).then(|| {
            let i = next_worker;
            next_worker = next_worker.wrapping_add(1);
            &workers[i % workers.len()]
        });
        let (shared, cancel) = (shared.clone(), cancel.clone());
        match accepted {
            Accepted::Tcp(stream, peer) => match stream.into_std() {
                Ok(s) => spawn_conn(&tracker, worker, connection::serve(s, peer, shared, cancel, permit)),
                Err(e) => warn!(%peer, error = %e, "cannot take over the accepted socket"),
            },
            Accepted::Unix(stream) => {
                let peer = unix.as_ref().map_or_else(|| Arc::from(""), |u| u.peer().clone());
                match stream.into_std() {
                    Ok(s) => {
                        spawn_conn(&tracker, worker, connection::serve_unix(s, peer, shared, cancel, permit))
                    }
                    Err(e) => warn!(%peer, error = %e, "cannot take over the accepted socket"),
                }
            }
        }
    }
    info!("shutting down: no longer accepting; finishing requests in flight");
    drop(listener);
    // Removes the socket file: new clients get "no such file" at once.
    drop(unix);
    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    let mut outcome = Ok(());
    if let Some(p) = &shared.persist {
        info!("writing the shutdown snapshot");
        let result = p.snapshot(shared.store.clone(), false).await;
        let closed = p.close_wal().await;
        if let Err(e) = result {
            error!(error = ?e, "shutdown snapshot failed; the WAL holds every write it could take");
        }
        match closed {
            Ok(()) => {
                let s = shared.clone();
                let p = p.clone();
                let _ = tokio::task::spawn_blocking(move || s.repl.mark_clean_shutdown(&p)).await;
            }
            Err(e) => {
                // A failing WAL may lack acknowledged writes: the exit
                // status must say so (the next start recovers what it holds).
                error!(error = %ErrorChain(&e), "shutting down with a failing WAL");
                outcome = Err(PersistError::from(e).into());
            }
        }
    }
    info!("shutdown complete");
    outcome
}

/// Runs a connection on `worker`'s runtime, or on this one.
fn spawn_conn(
    tracker: &TaskTracker,
    worker: Option<&tokio::runtime::Handle>,
    conn: impl Future<Output = ()> + Send + 'static,
) {
    match worker {
        Some(w) => drop(tracker.spawn_on(conn, w)),
        None => drop(tracker.spawn(conn)),
    }
}

async fn sweep_expired(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if shared.store.is_replica() {
            // A follower never expires keys itself: the leader's DELs arrive in the stream.
            continue;
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
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl ServerHandle {
    /// Loads the data, binds `config.bind:config.port` (port 0 for a free
    /// one) and serves in the background.
    pub async fn start(config: Config) -> Result<ServerHandle, ServerError> {
        let bind = (config.bind, config.port);
        let mut server = tokio::task::spawn_blocking(move || Server::open(config))
            .await
            .map_err(std::io::Error::other)??;
        let listener = TcpListener::bind(bind).await?;
        // Bound here, like the port, so a client may connect once this returns.
        server.unix = bind_unix(&server.config)?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { server.serve(listener, token.cancelled_owned()).await });
        Ok(ServerHandle { addr, shutdown, task })
    }

    /// Graceful shutdown; returns when every connection has finished.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.shutdown.cancel();
        self.task.await.map_err(std::io::Error::other)?
    }
}
