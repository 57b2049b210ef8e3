//! Command-line flags, in the spirit of redis-benchmark's.

use std::time::Duration;

use clap::Parser;

use super::driver::Stop;
use super::workload::{Ratio, TestKind};
use super::{Config, ConfigError, Protocol};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// One block per test, like redis-benchmark's summary.
    Human,
    /// One line per test (`-q`): `SET: 123456.78 requests per second, p50=0.191 msec`.
    Quiet,
    Csv,
    /// One JSON array, one object per test.
    Json,
}

/// Load generator for Burrow (and, with --protocol resp, Redis).
///
/// Each connection sends batches of --pipeline requests and checks every
/// reply; a wrong or error reply counts as an error. Latency of a pipelined
/// request is measured from its batch's write to its reply's arrival.
#[derive(Debug, Clone, Parser)]
// `-h` is the host, as in redis-benchmark; help is `--help` only.
#[command(name = "burrow-bench", version, disable_help_flag = true)]
pub struct BenchArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Server host name or address; `unix:PATH` is a Unix socket (as -s).
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    pub host: String,
    /// The server's Unix socket (Burrow's --unix-socket, Redis's unixsocket),
    /// as redis-benchmark -s; instead of --host and --port. Never TLS.
    #[arg(short = 's', long = "socket", value_name = "PATH")]
    #[arg(conflicts_with_all = ["host", "port", "hosts", "tls"])]
    pub socket: Option<std::path::PathBuf>,
    /// Server port [default: 7440 for burrow, 6379 for resp].
    #[arg(short = 'p', long)]
    pub port: Option<u16>,
    /// A cluster's nodes, `host:port,host:port,…` (instead of --host and
    /// --port): load goes to the leader, found again after a leader change;
    /// requests lost meanwhile count as errors of unknown outcome.
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT,...", conflicts_with_all = ["host", "port"])]
    pub hosts: Vec<String>,
    /// Protocol to speak: burrow, or resp (Redis RESP2) to measure Redis the same way.
    #[arg(long, value_enum, default_value_t = Protocol::Burrow)]
    pub protocol: Protocol,
    /// Parallel connections.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub clients: usize,
    /// Total requests per test, over all connections [default: 100000].
    #[arg(short = 'n', long, conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Run each test for this many seconds instead of a request count.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Requests per batch on each connection (1 = no pipelining).
    #[arg(short = 'P', long, default_value_t = 1)]
    pub pipeline: usize,
    /// Value size of SET and LPUSH, in bytes.
    #[arg(short = 'd', long = "data-size", default_value_t = 32)]
    pub data_size: usize,
    /// Keys are key:NNNNNNNNNNNN with NNN random in 0..KEYSPACE.
    #[arg(short = 'r', long, default_value_t = 100_000)]
    pub keyspace: u64,
    /// Use keys 0,1,2,… in order (wrapping at --keyspace) instead of random
    /// ones: `-t set -n N -r N --sequential` writes each of N keys once.
    #[arg(long)]
    pub sequential: bool,
    /// Comma-separated tests, run in the order given: ping, set, get, incr,
    /// lpush, lpop, mixed. `get` needs no prior `set`: misses count as correct.
    #[arg(short = 't', long, value_delimiter = ',', default_value = "ping,set,get,incr,lpush,lpop")]
    pub tests: Vec<TestKind>,
    /// SET:GET proportion of the mixed test.
    #[arg(long, default_value_t = Ratio::default())]
    pub ratio: Ratio,
    /// Load threads, each a single-threaded event loop owning an even share
    /// of the connections. 1, like redis-benchmark, which is single-threaded.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Seed of the key generator, to repeat a run exactly.
    #[arg(long, default_value_t = 0x5EED)]
    pub seed: u64,
    /// Give up (exit non-zero) when the server makes no progress on a
    /// connection for this many seconds: a hung server must not hang the run.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Print CSV (a header, one row per test).
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print one JSON array, one object per test.
    #[arg(long)]
    pub json: bool,
    /// Quiet: one line per test, `SET: 123456.78 requests per second,
    /// p50=0.191 msec`, as redis-benchmark -q, and no progress line. With
    /// --csv or --json, only the latter.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Loop: run the tests again and again until interrupted, as
    /// redis-benchmark -l.
    #[arg(short = 'l', long = "loop")]
    pub forever: bool,
    /// Keep connections alive (1, the default) or open a new connection for
    /// every request (0; with -P, for every batch), as redis-benchmark -k.
    #[arg(short = 'k', long, value_name = "0|1", default_value = "1", value_parser = parse_keepalive)]
    #[arg(action = clap::ArgAction::Set)]
    pub keepalive: bool,
    /// Decimals of the latencies in the human and -q reports.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=9))]
    pub precision: u8,
    /// Exit with status 1 if any request got a wrong or error reply.
    #[arg(long)]
    pub fail_on_error: bool,
    /// File holding the client secret, for a server started with
    /// --auth-secret-file (default: the BURROW_AUTH_FILE environment variable).
    #[arg(long, value_name = "PATH")]
    pub auth_file: Option<std::path::PathBuf>,
    /// Connect with TLS (a server started with --tls-cert-file); needs --cacert.
    #[arg(long, requires = "cacert")]
    pub tls: bool,
    /// PEM file of the CA certificates the server's certificate must chain to.
    #[arg(long, value_name = "FILE", requires = "tls")]
    pub cacert: Option<std::path::PathBuf>,
    /// PEM client certificate to present (servers with --tls-client-auth), with --key.
    #[arg(long, value_name = "FILE", requires_all = ["tls", "key"])]
    pub cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
    /// Name the server's certificate must carry (default: the address connected to).
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub sni: Option<String>,
}

/// `-k`: 1 keeps connections, 0 reconnects for each request.
fn parse_keepalive(s: &str) -> Result<bool, String> {
    match s {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(format!("'{s}' is not 0 or 1")),
    }
}

impl BenchArgs {
    /// `--tls`, `--cacert`, `--cert`, `--key`, `--sni` as client options.
    fn tls_options(&self) -> Result<Option<burrow_client::TlsOptions>, ConfigError> {
        let (true, Some(ca)) = (self.tls, &self.cacert) else { return Ok(None) };
        let bad = |e: burrow_client::TlsConfigError| ConfigError::Tls(e.to_string());
        let tls = burrow_client::TlsOptions::from_files(ca, self.cert.as_deref().zip(self.key.as_deref()))
            .map_err(bad)?;
        match &self.sni {
            Some(name) => tls.server_name(name).map(Some).map_err(bad),
            None => Ok(Some(tls)),
        }
    }

    /// The validated run configuration and the output format.
    pub fn resolve(&self) -> Result<(Config, Output), ConfigError> {
        let stop = match (self.duration, self.requests) {
            (Some(secs), _) => {
                if !(secs.is_finite() && secs > 0.0 && secs < 1e9) {
                    return Err(ConfigError::BadDuration(secs));
                }
                Stop::After(Duration::from_secs_f64(secs))
            }
            (None, n) => Stop::Requests(n.unwrap_or(100_000)),
        };
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout < 1e9) {
            return Err(ConfigError::BadTimeout(self.timeout));
        }
        let config = Config {
            host: self.host.clone(),
            port: self.port.unwrap_or_else(|| self.protocol.default_port()),
            hosts: self.hosts.clone(),
            unix_socket: self.socket.clone(),
            protocol: self.protocol,
            clients: self.clients,
            stop,
            pipeline: self.pipeline,
            data_size: self.data_size,
            keyspace: self.keyspace,
            sequential: self.sequential,
            tests: self.tests.clone(),
            ratio: self.ratio,
            threads: self.threads,
            seed: self.seed,
            timeout: Duration::from_secs_f64(self.timeout),
            progress: !self.quiet,
            keepalive: self.keepalive,
            tls: self.tls_options()?,
            auth: match self
                .auth_file
                .clone()
                .or_else(|| std::env::var_os("BURROW_AUTH_FILE").map(Into::into))
            {
                None => None,
                Some(path) => Some(std::sync::Arc::new(
                    burrow_proto::Secret::from_file(&path)
                        .map_err(|e| ConfigError::Secret(burrow_proto::ErrorChain(&e).to_string()))?,
                )),
            },
        };
        config.validate()?;
        let output = if self.json {
            Output::Json
        } else if self.csv {
            Output::Csv
        } else if self.quiet {
            Output::Quiet
        } else {
            Output::Human
        };
        Ok((config, output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(Config, Output), String> {
        let a = BenchArgs::try_parse_from(std::iter::once("burrow-bench").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        a.resolve().map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_follow_redis_benchmark() {
        let (c, o) = parse(&[]).unwrap();
        assert_eq!(c, Config { progress: true, ..Config::default() });
        assert_eq!(o, Output::Human);
        assert_eq!(c.port, 7440);
        let (c, _) = parse(&["--protocol", "resp"]).unwrap();
        assert_eq!(c.port, 6379);
    }

    #[test]
    fn short_flags_match_redis_benchmark() {
        let (c, o) = parse(&[
            "-p",
            "9",
            "-c",
            "8",
            "-n",
            "1000",
            "-P",
            "16",
            "-d",
            "100",
            "-r",
            "10",
            "-t",
            "set,get,mixed",
            "--json",
        ])
        .unwrap();
        assert_eq!(c.port, 9);
        assert_eq!(c.clients, 8);
        assert_eq!(c.stop, Stop::Requests(1000));
        assert_eq!(c.pipeline, 16);
        assert_eq!(c.data_size, 100);
        assert_eq!(c.keyspace, 10);
        assert_eq!(c.tests, vec![TestKind::Set, TestKind::Get, TestKind::Mixed]);
        assert_eq!(o, Output::Json);
    }

    #[test]
    fn redis_benchmark_habits() {
        let a = BenchArgs::try_parse_from(["burrow-bench", "-h", "10.0.0.2", "-q", "-l", "-k", "0"]).unwrap();
        assert_eq!(a.host, "10.0.0.2");
        assert!(a.forever);
        let (c, o) = a.resolve().unwrap();
        assert!(!c.keepalive);
        assert_eq!(o, Output::Quiet);
        assert!(parse(&[]).unwrap().0.keepalive);
        let a = BenchArgs::try_parse_from(["burrow-bench", "--precision", "5"]).unwrap();
        assert_eq!(a.precision, 5);
        for bad in [&["-k", "2"][..], &["--precision", "10"], &["--nope"]] {
            let e = BenchArgs::try_parse_from(std::iter::once("burrow-bench").chain(bad.iter().copied()));
            assert_eq!(e.unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn duration_ratio_and_errors() {
        let (c, o) = parse(&["--duration", "1.5", "--ratio", "1:3", "--csv", "-q"]).unwrap();
        assert_eq!(c.stop, Stop::After(Duration::from_millis(1500)));
        assert_eq!(c.ratio, Ratio { set: 1, get: 3 });
        assert!(!c.progress);
        assert_eq!(o, Output::Csv);
        assert!(parse(&["-n", "5", "--duration", "1"]).is_err());
        assert!(parse(&["--csv", "--json"]).is_err());
        assert!(parse(&["--duration=-1"]).unwrap_err().contains("--duration"));
        assert!(parse(&["-t", "set,nope"]).unwrap_err().contains("unknown test"));
        assert!(parse(&["-c", "0"]).unwrap_err().contains("--clients"));
        assert!(parse(&["--ratio", "x"]).is_err());
        assert!(parse(&["--timeout", "0"]).unwrap_err().contains("--timeout"));
        assert_eq!(parse(&["--timeout", "0.5"]).unwrap().0.timeout, Duration::from_millis(500));
        let hosts = parse(&["--hosts", "127.0.0.1:1,localhost:2"]).unwrap().0.hosts;
        assert_eq!(hosts, ["127.0.0.1:1", "localhost:2"]);
        assert!(parse(&["--hosts", "127.0.0.1:1", "-p", "2"]).is_err());
        assert!(parse(&["--hosts", "127.0.0.1:1", "--protocol", "resp"]).unwrap_err().contains("--hosts"));
    }
}
