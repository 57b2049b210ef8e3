//! `burrow-bench`: a load generator in the spirit of redis-benchmark that
//! speaks Burrow's protocol or RESP2, so one tool measures Burrow and Redis
//! side by side.
//!
//! Design, and why:
//! - Each connection is a tight loop over a raw `TcpStream` (see
//!   `driver.rs`): requests come from pre-encoded templates, a batch of
//!   `--pipeline` requests is one write, replies are checked in place. The
//!   generator must never be the bottleneck; `bench/compare-redis.sh
//!   --crosscheck` holds it against redis-benchmark on Redis.
//! - Every reply is validated (status, body type, id), so a broken server
//!   shows errors instead of speed; throughput counts correct replies only.
//! - `--threads N` runs N OS threads, each a single-threaded tokio runtime
//!   owning an even share of the connections. The default is 1, like
//!   redis-benchmark, which is single-threaded.
//! - Connections are opened before a test's clock starts, one set per test.
//! - `get` does not require a prior `set`: a miss (NIL) is a correct reply.
//!   Run `-t set,get` to measure hits.
//!
//! **What the crate exports** is what the `burrow-bench` binary needs: the
//! flags ([`BenchArgs`], [`Output`]), a run's [`Config`] (with [`Protocol`],
//! [`Stop`], [`TestKind`], [`Ratio`] and the limits), [`run`] /
//! [`run_with`], their [`TestResult`]s (and [`Summary`]), the three report
//! formats ([`human`], [`csv`], [`json`]) and the errors. The wire templates,
//! reply checkers and the load loop are private.

mod args;
mod auth;
mod burrow_wire;
mod driver;
mod endpoint;
mod report;
mod resp;
mod stream;
mod target;
mod wire;
mod workload;

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;

pub use args::{BenchArgs, Output};
pub use driver::Stop;
pub use endpoint::Endpoint;
pub use report::{csv, human, human_with, json, quiet, Summary, TestResult};
pub use workload::{Ratio, TestKind, MAX_KEYSPACE};

use burrow_wire::BurrowWire;
use driver::{drive, new_histogram, ConnResult, Counters, Plan};
use resp::RespWire;
use target::{Place, Target};
use wire::Wire;

/// Which protocol the load speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// Burrow's binary protocol.
    #[default]
    Burrow,
    /// Redis's RESP2, to measure Redis (or anything speaking it) the same way.
    Resp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Burrow => "burrow",
            Protocol::Resp => "resp",
        }
    }

    /// The port its server listens on by default.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Burrow => burrow_proto::DEFAULT_PORT,
            Protocol::Resp => 6379,
        }
    }
}

/// Largest `--data-size`: a SET value or LPUSH body must fit Burrow's default value limit.
pub const MAX_DATA_SIZE: usize = burrow_proto::Limits::DEFAULT_MAX_VALUE - 8;

/// A whole benchmark run. Plain data; [`Config::validate`] says what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// A cluster's nodes (`host:port`), instead of `host` and `port`: load
    /// goes to the leader, found again after a leader change.
    pub hosts: Vec<String>,
    pub protocol: Protocol,
    /// Connections, each with at most one batch in flight.
    pub clients: usize,
    pub stop: Stop,
    /// Requests per batch (per write) on each connection.
    pub pipeline: usize,
    /// Bytes per SET/LPUSH value.
    pub data_size: usize,
    /// Key numbers are drawn from `0..keyspace`.
    pub keyspace: u64,
    /// Keys in order (`i % keyspace`) instead of at random.
    pub sequential: bool,
    /// Run in this order.
    pub tests: Vec<TestKind>,
    /// SET:GET proportion of the `mixed` test.
    pub ratio: Ratio,
    /// Load threads, each with its own single-threaded runtime.
    pub threads: usize,
    pub seed: u64,
    /// Longest wait for the server to make progress on a connection.
    pub timeout: Duration,
    /// Show a live ops/s line on stderr (only when it is a terminal).
    pub progress: bool,
    /// Keep each connection for the whole test (`-k 1`), or open a new one
    /// for every batch (`-k 0`).
    pub keepalive: bool,
    /// The client secret every connection authenticates with (`--auth-file`).
    pub auth: Option<Arc<burrow_proto::Secret>>,
    /// TLS for every connection (`--tls`).
    pub tls: Option<burrow_client::TlsOptions>,
    /// The server's Unix socket (`-s PATH`), instead of `host` and `port`;
    /// a `host` of `unix:PATH` means the same.
    pub unix_socket: Option<std::path::PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: Protocol::Burrow.default_port(),
            hosts: Vec::new(),
            protocol: Protocol::Burrow,
            clients: 50,
            stop: Stop::Requests(100_000),
            pipeline: 1,
            data_size: 32,
            keyspace: 100_000,
            sequential: false,
            tests: vec![
                TestKind::Ping,
                TestKind::Set,
                TestKind::Get,
                TestKind::Incr,
                TestKind::LPush,
                TestKind::LPop,
            ],
            ratio: Ratio::default(),
            threads: 1,
            seed: 0x5EED,
            timeout: Duration::from_secs(10),
            progress: true,
            keepalive: true,
            auth: None,
            tls: None,
            unix_socket: None,
        }
    }
}

#[derive(Debug, Clone, Error, PartialEq)]
pub enum ConfigError {
    #[error("--clients must be at least 1")]
    NoClients,
    #[error("--pipeline must be at least 1")]
    NoPipeline,
    #[error("--threads must be at least 1")]
    NoThreads,
    #[error("--requests must be at least 1")]
    NoRequests,
    #[error("--duration must be a positive number of seconds, got {0}")]
    BadDuration(f64),
    #[error("--keyspace must be between 1 and {MAX_KEYSPACE}, got {0}")]
    BadKeyspace(u64),
    #[error("--data-size must be at most {MAX_DATA_SIZE} bytes, got {0}")]
    DataTooLarge(usize),
    #[error("--timeout must be a positive number of seconds, got {0}")]
    BadTimeout(f64),
    #[error("--tests names no test")]
    NoTests,
    #[error("--hosts needs --protocol burrow (RESP has no leader to find)")]
    HostsNeedBurrow,
    #[error("--auth-file needs --protocol burrow")]
    AuthNeedsBurrow,
    #[error("--auth-file: {0}")]
    Secret(String),
    #[error("--tls: {0}")]
    Tls(String),
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.clients == 0 {
            return Err(ConfigError::NoClients);
        }
        if self.pipeline == 0 {
            return Err(ConfigError::NoPipeline);
        }
        if self.threads == 0 {
            return Err(ConfigError::NoThreads);
        }
        match self.stop {
            Stop::Requests(0) => return Err(ConfigError::NoRequests),
            Stop::After(d) if d.is_zero() => return Err(ConfigError::BadDuration(0.0)),
            _ => {}
        }
        if self.keyspace == 0 || self.keyspace > MAX_KEYSPACE {
            return Err(ConfigError::BadKeyspace(self.keyspace));
        }
        if self.data_size > MAX_DATA_SIZE {
            return Err(ConfigError::DataTooLarge(self.data_size));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::BadTimeout(0.0));
        }
        if self.tests.is_empty() {
            return Err(ConfigError::NoTests);
        }
        if self.auth.is_some() && self.protocol != Protocol::Burrow {
            return Err(ConfigError::AuthNeedsBurrow);
        }
        if !self.hosts.is_empty() && self.protocol != Protocol::Burrow {
            return Err(ConfigError::HostsNeedBurrow);
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum BenchError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot resolve {host}:{port}")]
    Resolve { host: String, port: u16, source: std::io::Error },
    #[error("cannot connect to {addr}")]
    Connect { addr: Endpoint, source: std::io::Error },
    #[error("connecting to {addr} timed out after {after:?}")]
    ConnectTimeout { addr: Endpoint, after: Duration },
    #[error("{addr} made no progress for {after:?} (use --timeout to wait longer)")]
    Stalled { addr: Endpoint, after: Duration },
    #[error("authenticating with {addr} failed: {reason}")]
    Auth { addr: Endpoint, reason: String },
    #[error("TLS does not apply to a Unix socket (the server serves it plain); drop --tls")]
    TlsOnUnixSocket,
    #[error("no leader found among --hosts within {after:?} (use --timeout to wait longer)")]
    NoLeader { after: Duration },
    #[error("cannot start a load thread")]
    Thread(#[source] std::io::Error),
    #[error("a load thread panicked")]
    Panicked,
    /// Another thread failed to connect; its error is the one reported.
    #[error("aborted because another load thread failed")]
    Aborted,
}

/// Runs every test of `config` in order against the server.
pub fn run(config: &Config) -> Result<Vec<TestResult>, BenchError> {
    run_with(config, |_| {})
}

/// Like [`run`], calling `each` as soon as a test has finished (so a
/// long run can show its results test by test).
pub fn run_with(config: &Config, each: impl FnMut(&TestResult)) -> Result<Vec<TestResult>, BenchError> {
    config.validate()?;
    let unix = config.unix_socket.clone().or_else(|| config.host.strip_prefix("unix:").map(Into::into));
    let place = if let Some(path) = unix {
        if config.tls.is_some() {
            return Err(BenchError::TlsOnUnixSocket);
        }
        Place::One(Endpoint::Unix(path.into()))
    } else if config.hosts.is_empty() {
        Place::One(resolve(&config.host, config.port)?.into())
    } else {
        let seeds = config.hosts.iter().map(|h| resolve_host_port(h)).collect::<Result<_, _>>()?;
        Place::Cluster(seeds)
    };
    let target = Target { place, auth: config.auth.clone(), tls: config.tls.clone() };
    let value = vec![b'x'; config.data_size];
    match config.protocol {
        Protocol::Burrow => run_tests(config, target, Arc::new(BurrowWire::new(&value)), each),
        Protocol::Resp => run_tests(config, target, Arc::new(RespWire::new(&value)), each),
    }
}

/// Resolves a `--hosts` entry, `host:port`.
fn resolve_host_port(host_port: &str) -> Result<SocketAddr, BenchError> {
    let err = |source| BenchError::Resolve { host: host_port.to_string(), port: 0, source };
    host_port
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, BenchError> {
    let err = |source| BenchError::Resolve { host: host.to_string(), port, source };
    (host, port)
        .to_socket_addrs()
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::new(std::io::ErrorKind::NotFound, "no address")))
}

fn run_tests<W: Wire>(
    config: &Config,
    target: Target,
    wire: Arc<W>,
    mut each: impl FnMut(&TestResult),
) -> Result<Vec<TestResult>, BenchError> {
    let progress = config.progress && std::io::stderr().is_terminal();
    let target = Arc::new(target);
    let mut results = Vec::with_capacity(config.tests.len());
    for (i, test) in config.tests.iter().enumerate() {
        let r = run_test(config, &target, wire.clone(), *test, i as u64, progress)?;
        each(&r);
        results.push(r);
    }
    Ok(results)
}

/// Connections per thread: `clients` split as evenly as possible, no empty threads.
fn split(clients: usize, threads: usize) -> Vec<usize> {
    let threads = threads.min(clients);
    (0..threads).map(|t| clients / threads + usize::from(t < clients % threads)).collect()
}

/// A per-connection seed: the run's seed, the test's position and the
/// connection number mixed, so connections do not walk the same keys.
fn conn_seed(seed: u64, test: u64, conn: u64) -> u64 {
    let mut r = workload::Rng::new(seed ^ test.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ conn.rotate_left(32));
    r.next_u64()
}

/// Where load threads wait, connected, until the main thread starts the clock.
#[derive(Debug, Default)]
struct Gate {
    /// (threads arrived, gate open)
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        // The state stays consistent even if a holder panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arrive(&self) -> std::sync::MutexGuard<'_, (usize, bool)> {
        let mut s = self.lock();
        s.0 += 1;
        self.cv.notify_all();
        s
    }

    fn arrive_and_wait(&self) {
        let mut s = self.arrive();
        while !s.1 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn wait_for(&self, n: usize) {
        let mut s = self.lock();
        while s.0 < n {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open(&self) {
        self.lock().1 = true;
        self.cv.notify_all();
    }
}

/// A load thread's place at the gate: if the thread dies before arriving,
/// dropping this still counts it, so the main thread is not left waiting.
struct Arrival<'a> {
    gate: &'a Gate,
    arrived: bool,
}

impl Arrival<'_> {
    fn arrive_and_wait(&mut self) {
        self.arrived = true;
        self.gate.arrive_and_wait();
    }
}

impl Drop for Arrival<'_> {
    fn drop(&mut self) {
        if !self.arrived {
            drop(self.gate.arrive());
        }
    }
}

type ThreadResult = Result<Vec<ConnResult>, BenchError>;

fn run_test<W: Wire>(
    config: &Config,
    target: &Arc<Target>,
    wire: Arc<W>,
    test: TestKind,
    test_no: u64,
    progress: bool,
) -> Result<TestResult, BenchError> {
    let plan = Arc::new(Plan {
        op: test.op(),
        ratio: config.ratio,
        pipeline: config.pipeline,
        keyspace: config.keyspace,
        sequential: config.sequential,
        stop: config.stop,
        timeout: config.timeout,
        keepalive: config.keepalive,
    });
    let counters = Arc::new(Counters::default());
    let shares = split(config.clients, config.threads);
    // The clock starts once every load thread has opened its connections.
    let gate = Arc::new(Gate::default());
    let failed = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<ThreadResult>();
    let mut handles = Vec::with_capacity(shares.len());
    let mut first_conn = 0u64;
    for (t, &n) in shares.iter().enumerate() {
        let (wire, plan, counters, target) = (wire.clone(), plan.clone(), counters.clone(), target.clone());
        let (thread_gate, thread_failed, tx) = (gate.clone(), failed.clone(), tx.clone());
        let seeds: Vec<u64> =
            (first_conn..first_conn + n as u64).map(|c| conn_seed(config.seed, test_no, c)).collect();
        first_conn += n as u64;
        let spawned = std::thread::Builder::new().name(format!("burrow-bench-{t}")).spawn(move || {
            let mut arrival = Arrival { gate: &thread_gate, arrived: false };
            let result = load_thread(target, wire, plan, counters, seeds, &mut arrival, &thread_failed);
            // The receiver only goes away if the main thread is unwinding.
            let _ = tx.send(result);
        });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                // Threads already started are released and see the failure.
                failed.store(true, Ordering::SeqCst);
                gate.open();
                for h in handles {
                    let _ = h.join();
                }
                return Err(BenchError::Thread(e));
            }
        }
    }
    drop(tx);
    gate.wait_for(shares.len());
    let start = Instant::now();
    gate.open();
    let mut conns = Vec::with_capacity(config.clients);
    let mut first_err: Option<BenchError> = None;
    let mut done = 0;
    while done < shares.len() {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(r) => {
                done += 1;
                match r {
                    Ok(c) => conns.extend(c),
                    // A thread that saw another fail says `Aborted`; keep the real cause.
                    Err(e) if first_err.is_none() || matches!(first_err, Some(BenchError::Aborted)) => {
                        first_err = Some(e)
                    }
                    Err(_) => {}
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if progress {
                    show_progress(test, &counters, start);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if progress {
        eprint!("\r\x1b[K");
    }
    let mut panicked = false;
    for h in handles {
        panicked |= h.join().is_err();
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    if panicked || done < shares.len() {
        return Err(BenchError::Panicked);
    }
    Ok(merge(config, test, start, conns))
}

fn show_progress(test: TestKind, counters: &Counters, start: Instant) {
    let n = counters.completed.load(Ordering::Relaxed);
    let secs = start.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { n as f64 / secs } else { 0.0 };
    eprint!("\r\x1b[K{}: {:.0} ops/s ({} requests in {:.1} s)", test.name(), rate, n, secs);
    let _ = std::io::stderr().flush();
}

/// One load thread: open its connections, meet the others, drive them all
/// on a current-thread runtime.
fn load_thread<W: Wire>(
    target: Arc<Target>,
    wire: Arc<W>,
    plan: Arc<Plan>,
    counters: Arc<Counters>,
    seeds: Vec<u64>,
    arrival: &mut Arrival<'_>,
    failed: &AtomicBool,
) -> ThreadResult {
    let prepared = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Thread)
        .and_then(|rt| {
            let streams = rt.block_on(async {
                let mut streams = Vec::with_capacity(seeds.len());
                for _ in 0..seeds.len() {
                    streams.push(target.open(plan.timeout).await?);
                }
                Ok::<_, BenchError>(streams)
            })?;
            Ok((rt, streams))
        });
    if prepared.is_err() {
        failed.store(true, Ordering::SeqCst);
    }
    // Reached whether or not connecting worked, so the main thread never waits forever.
    arrival.arrive_and_wait();
    let (rt, streams) = prepared?;
    if failed.load(Ordering::SeqCst) {
        return Err(BenchError::Aborted);
    }
    let deadline = match plan.stop {
        Stop::After(d) => Some(Instant::now() + d),
        Stop::Requests(_) => None,
    };
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for (stream, seed) in streams.into_iter().zip(seeds) {
            let (wire, plan, counters, target) =
                (wire.clone(), plan.clone(), counters.clone(), target.clone());
            set.spawn(drive(stream, target, wire, plan, counters, seed, deadline));
        }
        let mut results = Vec::with_capacity(set.len());
        while let Some(joined) = set.join_next().await {
            results.push(joined.map_err(|_| BenchError::Panicked)??);
        }
        Ok(results)
    })
}

fn merge(config: &Config, test: TestKind, start: Instant, conns: Vec<ConnResult>) -> TestResult {
    let mut latency_ns = new_histogram();
    let (mut requests, mut errors, mut unknown, mut first_error) = (0, 0, 0, None);
    let mut end = start;
    for c in conns {
        // Same bounds everywhere, so adding cannot fail.
        let _ = latency_ns.add(&c.latency_ns);
        requests += c.requests;
        errors += c.errors;
        unknown += c.unknown;
        first_error = first_error.or(c.first_error);
        end = end.max(c.finished);
    }
    TestResult {
        test,
        protocol: config.protocol,
        clients: config.clients,
        pipeline: config.pipeline,
        threads: config.threads.min(config.clients),
        data_size: config.data_size,
        requests,
        errors,
        unknown,
        elapsed: end.duration_since(start),
        latency_ns,
        first_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FramingError;

    /// Every error type of this crate, each variant with a source, prints
    /// that source only through the chain.
    #[test]
    fn no_bench_error_prints_its_source_twice() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let addr: SocketAddr = "127.0.0.1:7440".parse().unwrap();
        let errors: [&(dyn std::error::Error + 'static); 7] = [
            &BenchError::Resolve { host: "nowhere".into(), port: 7440, source: io() },
            &BenchError::Connect { addr: addr.into(), source: io() },
            &BenchError::Thread(io()),
            &BenchError::Config(ConfigError::NoClients),
            &BenchError::Stalled { addr: addr.into(), after: Duration::from_secs(1) },
            &BenchError::NoLeader { after: Duration::from_secs(1) },
            &FramingError("bad magic 0x2b".into()),
        ];
        for (i, e) in errors.into_iter().enumerate() {
            assert_eq!(burrow_proto::ErrorChain(e).repeated_cause(), None, "#{i}: {e:?}");
        }
    }

    #[test]
    fn clients_split_evenly_without_empty_threads() {
        assert_eq!(split(50, 1), vec![50]);
        assert_eq!(split(50, 3), vec![17, 17, 16]);
        assert_eq!(split(2, 8), vec![1, 1]);
        assert_eq!(split(7, 7).iter().sum::<usize>(), 7);
    }

    #[test]
    fn validation_names_the_bad_setting() {
        let ok = Config::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(Config, ConfigError)> = vec![
            (Config { clients: 0, ..ok.clone() }, ConfigError::NoClients),
            (Config { pipeline: 0, ..ok.clone() }, ConfigError::NoPipeline),
            (Config { threads: 0, ..ok.clone() }, ConfigError::NoThreads),
            (Config { stop: Stop::Requests(0), ..ok.clone() }, ConfigError::NoRequests),
            (Config { stop: Stop::After(Duration::ZERO), ..ok.clone() }, ConfigError::BadDuration(0.0)),
            (Config { keyspace: 0, ..ok.clone() }, ConfigError::BadKeyspace(0)),
            (Config { keyspace: MAX_KEYSPACE + 1, ..ok.clone() }, ConfigError::BadKeyspace(MAX_KEYSPACE + 1)),
            (
                Config { data_size: MAX_DATA_SIZE + 1, ..ok.clone() },
                ConfigError::DataTooLarge(MAX_DATA_SIZE + 1),
            ),
            (Config { tests: vec![], ..ok.clone() }, ConfigError::NoTests),
            (Config { timeout: Duration::ZERO, ..ok.clone() }, ConfigError::BadTimeout(0.0)),
            (
                Config { hosts: vec!["127.0.0.1:6379".into()], protocol: Protocol::Resp, ..ok.clone() },
                ConfigError::HostsNeedBurrow,
            ),
        ];
        for (i, (c, want)) in cases.into_iter().enumerate() {
            assert_eq!(c.validate(), Err(want), "case {i}");
        }
    }

    #[test]
    fn connection_seeds_differ() {
        let a = conn_seed(1, 0, 0);
        assert_ne!(a, conn_seed(1, 0, 1));
        assert_ne!(a, conn_seed(1, 1, 0));
        assert_ne!(a, conn_seed(2, 0, 0));
        assert_eq!(a, conn_seed(1, 0, 0));
    }
}
