//! Server configuration: built-in defaults, then a TOML file, then flags.
//!
//! A flag overrides the file, which overrides the default. `validate()`
//! runs before the server binds, so a bad setting is reported precisely
//! and nothing is started.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use thiserror::Error;

use crate::persist::{FsyncPolicy, PersistConfig};
use crate::protocol::{Limits, HEADER_LEN};

/// Everything the server needs to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub bind: IpAddr,
    /// TCP port; 0 asks the OS for a free one (tests).
    pub port: u16,
    /// Where the WAL and snapshots live (created if missing).
    pub data_dir: PathBuf,
    /// Keep data on disk (WAL + snapshots) or nothing at all.
    pub persistence: bool,
    pub fsync: FsyncPolicy,
    /// Snapshot after this many records since the last snapshot (0 = never).
    pub snapshot_every: u64,
    /// Snapshot once the WAL holds this many bytes (0 = never).
    pub snapshot_wal_bytes: u64,
    /// Start a new WAL segment past this many bytes.
    pub wal_segment_bytes: u64,
    /// At start, cut a torn last WAL record (true) or refuse to start.
    pub wal_truncate_torn: bool,
    /// Number of store shards; a power of two.
    pub shards: usize,
    /// Open client connections allowed at once; one more gets BUSY and is closed.
    pub max_connections: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Close a connection that sends nothing for this long; `None` = never.
    pub idle_timeout: Option<Duration>,
    /// Worker threads serving connections (the binary's runtime); 1 runs
    /// everything on one thread with no cross-thread wake-ups.
    pub threads: usize,
    /// Bytes of encoded op-log records kept in memory for followers.
    pub backlog_bytes: usize,
    /// `Some` when started as a member of a cluster (`--config … --node-id`).
    pub cluster: Option<super::cluster::ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 7440,
            data_dir: PathBuf::from("data"),
            persistence: true,
            fsync: FsyncPolicy::EverySec,
            snapshot_every: 10_000_000,
            snapshot_wal_bytes: 512 * 1024 * 1024,
            wal_segment_bytes: 64 * 1024 * 1024,
            wal_truncate_torn: true,
            shards: default_shards(),
            max_connections: 10_000,
            max_key_bytes: Limits::DEFAULT_MAX_KEY,
            max_value_bytes: Limits::DEFAULT_MAX_VALUE,
            idle_timeout: None,
            threads: default_threads(),
            backlog_bytes: 8 * 1024 * 1024,
            cluster: None,
        }
    }
}

/// One worker thread per core this process may run on, less one: the
/// kernel's network stack and co-located clients need a core too (Redis
/// gives the same advice for its I/O threads). On 2 cores that is 1 thread,
/// which measured faster at pipeline depth 1 than 2 threads sharing both
/// cores with the load generator (README, Performance).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1)
}

/// 4 × cores rounded up to a power of two, at least 16.
pub fn default_shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).next_power_of_two().max(16)
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("invalid config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("invalid --bind {0:?}: not an IP address")]
    Bind(String),
    #[error("--shards must be a power of two between 1 and 65536, got {0}")]
    Shards(usize),
    #[error("--max-connections must be at least 1, got {0}")]
    MaxConnections(usize),
    #[error("--max-key-bytes must be between 1 and 65535, got {0}")]
    MaxKey(usize),
    #[error("--max-value-bytes must be between 1 and 2147483647, got {0}")]
    MaxValue(usize),
    #[error("--backlog-bytes must be at least 1024, got {0}")]
    Backlog(usize),
    #[error("--data-dir {0} exists and is not a directory")]
    DataDir(PathBuf),
    #[error("--persistence must be on or off, got {0:?}")]
    Persistence(String),
    #[error("--fsync: {0}")]
    Fsync(String),
    #[error("--wal-segment-bytes must be at least 4096, got {0}")]
    Segment(u64),
    #[error("{0}: [cluster] and [[node]] (replication) are not supported by this version yet; remove them to run a single node")]
    Cluster(PathBuf),
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.shards.is_power_of_two() || self.shards > 65536 {
            return Err(ConfigError::Shards(self.shards));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::MaxConnections(self.max_connections));
        }
        if self.max_key_bytes == 0 || self.max_key_bytes > u16::MAX as usize {
            return Err(ConfigError::MaxKey(self.max_key_bytes));
        }
        if self.max_value_bytes == 0 || self.max_value_bytes > i32::MAX as usize {
            return Err(ConfigError::MaxValue(self.max_value_bytes));
        }
        if self.backlog_bytes < 1024 {
            return Err(ConfigError::Backlog(self.backlog_bytes));
        }
        if self.persistence && self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::DataDir(self.data_dir.clone()));
        }
        if self.wal_segment_bytes < 4096 {
            return Err(ConfigError::Segment(self.wal_segment_bytes));
        }
        Ok(())
    }

    /// The persistence settings, or `None` with persistence off.
    pub fn persist_config(&self) -> Option<PersistConfig> {
        self.persistence.then(|| PersistConfig {
            dir: self.data_dir.clone(),
            fsync: self.fsync,
            segment_bytes: self.wal_segment_bytes,
            snapshot_every_records: self.snapshot_every,
            snapshot_wal_bytes: self.snapshot_wal_bytes,
            truncate_torn_tail: self.wal_truncate_torn,
        })
    }

    /// The codec limits these settings imply.
    pub fn limits(&self) -> Limits {
        Limits {
            max_key: self.max_key_bytes,
            max_value: self.max_value_bytes,
            // Header, the largest extras, key and value: a frame at both
            // limits is accepted; anything bigger cannot be.
            max_frame: HEADER_LEN + 255 + self.max_key_bytes + self.max_value_bytes,
        }
    }
}

/// `burrow-server` flags. Every flag left out falls back to the config file,
/// then to the default.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "burrow-server", version, about = "Burrow key-value server")]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1]
    #[arg(long)]
    pub bind: Option<String>,
    /// TCP port to listen on; 0 picks a free port [default: 7440]
    #[arg(long)]
    pub port: Option<u16>,
    /// Directory for the WAL and snapshots, created if missing [default: ./data]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `on`: keep a WAL and snapshots in --data-dir; `off`: keep nothing on disk [default: on]
    #[arg(long, value_name = "on|off")]
    pub persistence: Option<String>,
    /// When to fsync the WAL: `always` (acknowledge only fsynced writes; group commit),
    /// `everysec`, or `no` (leave it to the OS) [default: everysec]
    #[arg(long, value_name = "always|everysec|no")]
    pub fsync: Option<String>,
    /// Snapshot after this many writes since the last snapshot; 0 = never [default: 10000000]
    #[arg(long, value_name = "RECORDS")]
    pub snapshot_every: Option<u64>,
    /// Snapshot once the WAL is this large; 0 = never [default: 536870912]
    #[arg(long, value_name = "BYTES")]
    pub snapshot_wal_bytes: Option<u64>,
    /// Start a new WAL segment file past this size [default: 67108864]
    #[arg(long, value_name = "BYTES")]
    pub wal_segment_bytes: Option<u64>,
    /// At start, truncate a torn last WAL record (true) or refuse to start (false) [default: true]
    #[arg(long, value_name = "true|false")]
    pub wal_truncate_torn: Option<bool>,
    /// TOML config file; flags given on the command line override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Number of store shards, a power of two [default: 4 × cores, at least 16]
    #[arg(long)]
    pub shards: Option<usize>,
    /// Client connections allowed at once; more are answered BUSY and closed [default: 10000]
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Largest key accepted, in bytes (at most 65535) [default: 16384]
    #[arg(long)]
    pub max_key_bytes: Option<usize>,
    /// Largest value accepted, in bytes [default: 16777216]
    #[arg(long)]
    pub max_value_bytes: Option<usize>,
    /// Close connections that send nothing, or read none of their replies, for this
    /// many seconds; 0 = never [default: 0]
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Threads serving connections (thread per core); 0 = one per available core
    /// less one, at least 1 [default: 0]
    #[arg(long)]
    pub threads: Option<usize>,
    /// Bytes of recent op-log records kept for followers, once one attaches [default: 8388608]
    #[arg(long)]
    pub backlog_bytes: Option<usize>,
}

/// The `[server]` table of a config file; same names as the flags, with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerSection {
    bind: Option<String>,
    port: Option<u16>,
    data_dir: Option<PathBuf>,
    persistence: Option<String>,
    fsync: Option<String>,
    snapshot_every: Option<u64>,
    snapshot_wal_bytes: Option<u64>,
    wal_segment_bytes: Option<u64>,
    wal_truncate_torn: Option<bool>,
    shards: Option<usize>,
    max_connections: Option<usize>,
    max_key_bytes: Option<usize>,
    max_value_bytes: Option<usize>,
    idle_timeout: Option<u64>,
    threads: Option<usize>,
    backlog_bytes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    /// Cluster membership (replication). Parsed so the error below can be
    /// precise; refused until replication is served.
    #[serde(default)]
    cluster: Option<toml::Table>,
    #[serde(default)]
    node: Option<Vec<toml::Table>>,
}

impl ServerArgs {
    /// Defaults ← file ← flags, then validated.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        if file.cluster.is_some() || file.node.is_some() {
            // Silently running single-node from a cluster file would look
            // like a working cluster; refuse instead.
            let path = self.config.clone().unwrap_or_default();
            return Err(ConfigError::Cluster(path));
        }
        let s = file.server;
        let d = Config::default();
        let bind = match self.bind.clone().or(s.bind) {
            Some(b) => b.parse().map_err(|_| ConfigError::Bind(b))?,
            None => d.bind,
        };
        let idle = self.idle_timeout.or(s.idle_timeout).unwrap_or(0);
        let persistence = match self.persistence.clone().or(s.persistence) {
            None => d.persistence,
            Some(p) => match p.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" => true,
                "off" | "false" | "no" => false,
                _ => return Err(ConfigError::Persistence(p)),
            },
        };
        let fsync = match self.fsync.clone().or(s.fsync) {
            None => d.fsync,
            Some(f) => f.parse().map_err(ConfigError::Fsync)?,
        };
        let config = Config {
            bind,
            port: self.port.or(s.port).unwrap_or(d.port),
            data_dir: self.data_dir.clone().or(s.data_dir).unwrap_or(d.data_dir),
            persistence,
            fsync,
            snapshot_every: self.snapshot_every.or(s.snapshot_every).unwrap_or(d.snapshot_every),
            snapshot_wal_bytes: self
                .snapshot_wal_bytes
                .or(s.snapshot_wal_bytes)
                .unwrap_or(d.snapshot_wal_bytes),
            wal_segment_bytes: self.wal_segment_bytes.or(s.wal_segment_bytes).unwrap_or(d.wal_segment_bytes),
            wal_truncate_torn: self.wal_truncate_torn.or(s.wal_truncate_torn).unwrap_or(d.wal_truncate_torn),
            shards: self.shards.or(s.shards).unwrap_or(d.shards),
            max_connections: self.max_connections.or(s.max_connections).unwrap_or(d.max_connections),
            max_key_bytes: self.max_key_bytes.or(s.max_key_bytes).unwrap_or(d.max_key_bytes),
            max_value_bytes: self.max_value_bytes.or(s.max_value_bytes).unwrap_or(d.max_value_bytes),
            idle_timeout: (idle > 0).then(|| Duration::from_secs(idle)),
            threads: match self.threads.or(s.threads).unwrap_or(0) {
                0 => default_threads(),
                n => n,
            },
            backlog_bytes: self.backlog_bytes.or(s.backlog_bytes).unwrap_or(d.backlog_bytes),
            cluster: None,
        };
        config.validate()?;
        Ok(config)
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::Read { path: path.to_owned(), reason: e.to_string() })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> ServerArgs {
        ServerArgs::try_parse_from(std::iter::once("burrow-server").chain(list.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = args(&[]).resolve().unwrap();
        assert_eq!(c.port, 7440);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert!(c.shards.is_power_of_two() && c.shards >= 16);
        assert_eq!(c.idle_timeout, None);
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("burrow-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[server]\nport = 9000\nshards = 8\nidle_timeout = 5\n").unwrap();
        let c = args(&["--config", file.to_str().unwrap(), "--port", "9001"]).resolve().unwrap();
        assert_eq!(c.port, 9001);
        assert_eq!(c.shards, 8);
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(5)));
        std::fs::write(&file, "[cluster]\ninitial_leader = 1\n[[node]]\nid = 1\n").unwrap();
        let err = args(&["--config", file.to_str().unwrap()]).resolve().unwrap_err();
        assert!(err.to_string().contains("not supported by this version yet"), "{err}");
        std::fs::write(&file, "[server]\nprot = 1\n").unwrap();
        let err = args(&["--config", file.to_str().unwrap()]).resolve().unwrap_err();
        assert!(err.to_string().contains("unknown field `prot`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn invalid_settings_name_the_setting() {
        let cases: &[(&[&str], &str)] = &[
            (&["--shards", "12"], "--shards must be a power of two"),
            (&["--max-connections", "0"], "--max-connections"),
            (&["--max-key-bytes", "70000"], "--max-key-bytes"),
            (&["--bind", "localhost:1"], "--bind"),
            (&["--config", "/nonexistent/burrow.toml"], "cannot read config file"),
            (&["--fsync", "sometimes"], "unknown fsync policy"),
            (&["--persistence", "maybe"], "--persistence must be on or off"),
            (&["--wal-segment-bytes", "10"], "--wal-segment-bytes"),
        ];
        for (i, (a, want)) in cases.iter().enumerate() {
            let err = args(a).resolve().unwrap_err().to_string();
            assert!(err.contains(want), "case {i}: {err}");
        }
    }
}
