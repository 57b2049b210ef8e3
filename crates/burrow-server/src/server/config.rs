//! Server configuration: built-in defaults, then a TOML file, then flags.
//!
//! A flag overrides the file, which overrides the default. `validate()`
//! runs before the server binds, so a bad setting is reported precisely
//! and nothing is started.
//!
//! A file may also describe a cluster: a `[cluster]` table and one
//! `[[node]]` table per member (see `cluster.toml` at the repository root).
//! The same file is given to every member, each started with its own
//! `--node-id`; that node's `addr` and `data_dir` then take the place of
//! `bind`, `port` and `data_dir` (flags still override them), and the
//! file's `[server]` table applies to every member alike.

use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use thiserror::Error;

use super::cluster::{ClusterConfig, NodeInfo, ReplicationMode};
use crate::persist::{FsyncPolicy, PersistConfig};
use crate::replication::NodeId;
use burrow_proto::{Limits, HEADER_LEN};

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
    pub cluster: Option<ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: burrow_proto::DEFAULT_PORT,
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
            // A follower may fall this far behind (a stall, a full resync
            // in progress) and still resume from the backlog: ~0.5 s of
            // writes at 1M small SETs/s. Allocated only on a cluster leader.
            backlog_bytes: 64 * 1024 * 1024,
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
    #[error("{}: [cluster] needs at least one [[node]] table", .path.display())]
    NoNodes { path: PathBuf },
    #[error("{}: [[node]] tables need a [cluster] table (initial_leader, replication, heartbeat_ms)", .path.display())]
    NodesWithoutCluster { path: PathBuf },
    #[error("{}: node id 0 is reserved (0 means \"no node\"); number nodes from 1", .path.display())]
    NodeIdZero { path: PathBuf },
    #[error("{}: node id {id} appears more than once", .path.display())]
    DuplicateNodeId { path: PathBuf, id: NodeId },
    #[error("{}: node {id}: addr {addr:?} {reason}", .path.display())]
    NodeAddr { path: PathBuf, id: NodeId, addr: String, reason: &'static str },
    #[error("{}: nodes {first} and {second} have the same addr {addr}", .path.display())]
    DuplicateAddr { path: PathBuf, addr: SocketAddr, first: NodeId, second: NodeId },
    #[error("{}: nodes {first} and {second} have the same data_dir {}", .path.display(), .dir.display())]
    DuplicateDataDir { path: PathBuf, dir: PathBuf, first: NodeId, second: NodeId },
    #[error("{}: initial_leader = {id} is not one of the nodes ({})", .path.display(), id_list(.nodes))]
    InitialLeader { path: PathBuf, id: NodeId, nodes: Vec<NodeId> },
    #[error("{}: replication must be \"async\" or \"quorum\", got {got:?}", .path.display())]
    Replication { path: PathBuf, got: String },
    #[error("{}: heartbeat_ms must be at least 1, got {got}", .path.display())]
    Heartbeat { path: PathBuf, got: u64 },
    #[error("{}: link_timeout_ms ({link_timeout_ms}) must be greater than 2 x heartbeat_ms ({heartbeat_ms})", .path.display())]
    LinkTimeout { path: PathBuf, link_timeout_ms: u64, heartbeat_ms: u64 },
    #[error("{}: quorum_timeout_ms must be at least 1, got {got}", .path.display())]
    QuorumTimeout { path: PathBuf, got: u64 },
    #[error("{} describes a cluster: --node-id is required to say which node this is (one of {})", .path.display(), id_list(.nodes))]
    NodeIdRequired { path: PathBuf, nodes: Vec<NodeId> },
    #[error("--node-id {id} is not a node of {} (nodes: {})", .path.display(), id_list(.nodes))]
    NodeIdUnknown { path: PathBuf, id: NodeId, nodes: Vec<NodeId> },
    #[error("--node-id {id} given, but {} has no [cluster] table", .path.display())]
    NodeIdWithoutCluster { path: PathBuf, id: NodeId },
    #[error("--node-id {0} needs --config FILE with [cluster] and [[node]] tables")]
    NodeIdWithoutConfig(NodeId),
}

/// `1, 2, 3`, for error messages.
fn id_list(ids: &[NodeId]) -> String {
    ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
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
    /// Bytes of recent op-log records kept for followers, once one attaches [default: 67108864]
    #[arg(long)]
    pub backlog_bytes: Option<usize>,
    /// Which [[node]] of the --config file's cluster this process is; required with a
    /// [cluster] file. Its addr and data_dir replace --bind, --port and --data-dir
    /// unless those are given too.
    #[arg(long, value_name = "N")]
    pub node_id: Option<NodeId>,
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

/// The `[cluster]` table: how the members replicate. Times in milliseconds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterSection {
    initial_leader: NodeId,
    /// `async` or `quorum`; checked by hand so the error can name the file.
    replication: String,
    heartbeat_ms: u64,
    /// Default: 10 × `heartbeat_ms`.
    link_timeout_ms: Option<u64>,
    /// Default: [`DEFAULT_QUORUM_TIMEOUT_MS`].
    quorum_timeout_ms: Option<u64>,
    /// Default 0: followers always serve reads.
    max_stale_ms: Option<u64>,
}

/// The default `quorum_timeout_ms`.
pub const DEFAULT_QUORUM_TIMEOUT_MS: u64 = 1000;

/// One `[[node]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeSection {
    id: NodeId,
    /// `ip:port`; parsed by hand so the error can name the node and file.
    addr: String,
    data_dir: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    cluster: Option<ClusterSection>,
    #[serde(default)]
    node: Option<Vec<NodeSection>>,
}

impl ServerArgs {
    /// Defaults ← file ← flags, then validated.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let (mut s, cluster) = match &self.config {
            Some(path) => {
                let file = read_file(path)?;
                (file.server, resolve_cluster(path, file.cluster, file.node, self.node_id)?)
            }
            None => match self.node_id {
                Some(id) => return Err(ConfigError::NodeIdWithoutConfig(id)),
                None => (ServerSection::default(), None),
            },
        };
        if let Some(me) = cluster.as_ref().map(ClusterConfig::me) {
            // This node's entry takes the place of the file's [server]
            // address and directory, which every member shares.
            s.bind = Some(me.addr.ip().to_string());
            s.port = Some(me.addr.port());
            s.data_dir = Some(me.data_dir.clone());
        }
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
            cluster,
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

/// The cluster a config file describes, as node `node_id` sees it; `None`
/// for a single-node file. The file is checked whole (every node, not just
/// this one), so each member refuses the same mistakes.
fn resolve_cluster(
    path: &Path,
    cluster: Option<ClusterSection>,
    nodes: Option<Vec<NodeSection>>,
    node_id: Option<NodeId>,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let path = || path.to_owned();
    let (c, nodes) = match (cluster, nodes) {
        (None, None) => {
            return match node_id {
                Some(id) => Err(ConfigError::NodeIdWithoutCluster { path: path(), id }),
                None => Ok(None),
            }
        }
        (None, Some(_)) => return Err(ConfigError::NodesWithoutCluster { path: path() }),
        (Some(_), None) => return Err(ConfigError::NoNodes { path: path() }),
        (Some(c), Some(nodes)) if !nodes.is_empty() => (c, nodes),
        (Some(_), Some(_)) => return Err(ConfigError::NoNodes { path: path() }),
    };

    let mut members: Vec<NodeInfo> = Vec::with_capacity(nodes.len());
    for n in nodes {
        if n.id == 0 {
            return Err(ConfigError::NodeIdZero { path: path() });
        }
        if members.iter().any(|m| m.id == n.id) {
            return Err(ConfigError::DuplicateNodeId { path: path(), id: n.id });
        }
        let addr: SocketAddr = n.addr.parse().map_err(|_| ConfigError::NodeAddr {
            path: path(),
            id: n.id,
            addr: n.addr.clone(),
            reason: "is not ip:port (e.g. \"127.0.0.1:7441\"; host names are not resolved)",
        })?;
        if addr.port() == 0 {
            // The other members dial this address: it needs a real port.
            return Err(ConfigError::NodeAddr {
                path: path(),
                id: n.id,
                addr: n.addr,
                reason: "has port 0; the other nodes need a fixed port to reach it",
            });
        }
        if let Some(m) = members.iter().find(|m| m.addr == addr) {
            return Err(ConfigError::DuplicateAddr { path: path(), addr, first: m.id, second: n.id });
        }
        if let Some(m) = members.iter().find(|m| same_dir(&m.data_dir, &n.data_dir)) {
            return Err(ConfigError::DuplicateDataDir {
                path: path(),
                dir: n.data_dir,
                first: m.id,
                second: n.id,
            });
        }
        members.push(NodeInfo { id: n.id, addr, data_dir: n.data_dir });
    }
    let ids: Vec<NodeId> = members.iter().map(|m| m.id).collect();

    if !ids.contains(&c.initial_leader) {
        return Err(ConfigError::InitialLeader { path: path(), id: c.initial_leader, nodes: ids });
    }
    let mode = match c.replication.to_ascii_lowercase().as_str() {
        "async" => ReplicationMode::Async,
        "quorum" => ReplicationMode::Quorum,
        _ => return Err(ConfigError::Replication { path: path(), got: c.replication }),
    };
    if c.heartbeat_ms == 0 {
        return Err(ConfigError::Heartbeat { path: path(), got: c.heartbeat_ms });
    }
    let link_timeout_ms = c.link_timeout_ms.unwrap_or(c.heartbeat_ms.saturating_mul(10));
    if link_timeout_ms <= c.heartbeat_ms.saturating_mul(2) {
        // A link must survive one late heartbeat before it is called down.
        return Err(ConfigError::LinkTimeout { path: path(), link_timeout_ms, heartbeat_ms: c.heartbeat_ms });
    }
    let quorum_timeout_ms = c.quorum_timeout_ms.unwrap_or(DEFAULT_QUORUM_TIMEOUT_MS);
    if quorum_timeout_ms == 0 {
        return Err(ConfigError::QuorumTimeout { path: path(), got: quorum_timeout_ms });
    }
    let max_stale_ms = c.max_stale_ms.unwrap_or(0);

    let node_id = match node_id {
        None => return Err(ConfigError::NodeIdRequired { path: path(), nodes: ids }),
        Some(id) if !ids.contains(&id) => {
            return Err(ConfigError::NodeIdUnknown { path: path(), id, nodes: ids })
        }
        Some(id) => id,
    };
    Ok(Some(ClusterConfig {
        node_id,
        initial_leader: c.initial_leader,
        mode,
        heartbeat: Duration::from_millis(c.heartbeat_ms),
        link_timeout: Duration::from_millis(link_timeout_ms),
        quorum_timeout: Duration::from_millis(quorum_timeout_ms),
        max_stale: (max_stale_ms > 0).then(|| Duration::from_millis(max_stale_ms)),
        nodes: members,
    }))
}

/// The same directory as written, ignoring `.` components and trailing
/// slashes (`data/n1`, `./data/n1/`). Paths are not resolved on disk: the
/// directories need not exist yet, and relative ones are relative to each
/// process's current directory anyway.
fn same_dir(a: &Path, b: &Path) -> bool {
    let parts = |p| Path::components(p).filter(|c| *c != Component::CurDir);
    parts(a).eq(parts(b))
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

    /// A config file holding `text`, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> TempFile {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("burrow-cluster-{}-{n}.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            TempFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const CLUSTER_TABLE: &str = r#"
[cluster]
initial_leader = 1
replication = "async"
heartbeat_ms = 100
"#;

    const NODES: &str = r#"
[[node]]
id = 1
addr = "127.0.0.1:7441"
data_dir = "data/node1"

[[node]]
id = 2
addr = "127.0.0.2:7442"
data_dir = "data/node2"

[[node]]
id = 3
addr = "127.0.0.1:7443"
data_dir = "data/node3"
"#;

    fn cluster_file() -> String {
        format!("{CLUSTER_TABLE}{NODES}")
    }

    /// Resolves `text` as the config file, with `extra` flags.
    fn resolve_text(text: &str, extra: &[&str]) -> Result<Config, ConfigError> {
        let file = TempFile::new(text);
        let mut list = vec!["--config", file.path()];
        list.extend_from_slice(extra);
        args(&list).resolve()
    }

    fn node(id: NodeId, addr: &str, dir: &str) -> NodeInfo {
        NodeInfo { id, addr: addr.parse().unwrap(), data_dir: PathBuf::from(dir) }
    }

    #[test]
    fn cluster_file_gives_this_nodes_address_directory_and_defaults() {
        let c = resolve_text(&cluster_file(), &["--node-id", "2"]).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.2");
        assert_eq!(c.port, 7442);
        assert_eq!(c.data_dir, PathBuf::from("data/node2"));
        let cluster = c.cluster.expect("a cluster");
        assert_eq!(
            cluster,
            ClusterConfig {
                node_id: 2,
                initial_leader: 1,
                mode: ReplicationMode::Async,
                heartbeat: Duration::from_millis(100),
                link_timeout: Duration::from_millis(1000),
                quorum_timeout: Duration::from_millis(DEFAULT_QUORUM_TIMEOUT_MS),
                max_stale: None,
                nodes: vec![
                    node(1, "127.0.0.1:7441", "data/node1"),
                    node(2, "127.0.0.2:7442", "data/node2"),
                    node(3, "127.0.0.1:7443", "data/node3"),
                ],
            }
        );
        assert_eq!(cluster.me(), &node(2, "127.0.0.2:7442", "data/node2"));
        assert_eq!(cluster.peers(), vec![1, 3]);
        assert!(!cluster.is_initial_leader());
    }

    #[test]
    fn cluster_optional_keys_are_read() {
        let text = format!(
            "[cluster]\ninitial_leader = 3\nreplication = \"quorum\"\nheartbeat_ms = 100\n\
             link_timeout_ms = 201\nquorum_timeout_ms = 50\nmax_stale_ms = 2000\n{NODES}"
        );
        let cluster = resolve_text(&text, &["--node-id", "3"]).unwrap().cluster.unwrap();
        assert_eq!(cluster.mode, ReplicationMode::Quorum);
        assert_eq!(cluster.link_timeout, Duration::from_millis(201));
        assert_eq!(cluster.quorum_timeout, Duration::from_millis(50));
        assert_eq!(cluster.max_stale, Some(Duration::from_millis(2000)));
        assert!(cluster.is_initial_leader());
        let text = text.replace("max_stale_ms = 2000", "max_stale_ms = 0");
        let cluster = resolve_text(&text, &["--node-id", "3"]).unwrap().cluster.unwrap();
        assert_eq!(cluster.max_stale, None);
    }

    #[test]
    fn flags_override_the_nodes_entry_which_overrides_the_server_table() {
        let text = format!(
            "[server]\nbind = \"0.0.0.0\"\nport = 9999\ndata_dir = \"shared\"\nshards = 8\n{}",
            cluster_file()
        );
        // The node entry beats [server]; the rest of [server] applies.
        let c = resolve_text(&text, &["--node-id", "1"]).unwrap();
        assert_eq!((c.bind.to_string(), c.port), ("127.0.0.1".to_string(), 7441));
        assert_eq!(c.data_dir, PathBuf::from("data/node1"));
        assert_eq!(c.shards, 8);
        // Flags beat the node entry, which peers still use to reach it.
        let c = resolve_text(
            &text,
            &["--node-id", "1", "--bind", "0.0.0.0", "--port", "0", "--data-dir", "elsewhere"],
        )
        .unwrap();
        assert_eq!((c.bind.to_string(), c.port), ("0.0.0.0".to_string(), 0));
        assert_eq!(c.data_dir, PathBuf::from("elsewhere"));
        assert_eq!(c.cluster.unwrap().me().addr, "127.0.0.1:7441".parse().unwrap());
        // Only --port: the bind address still comes from the node.
        let c = resolve_text(&text, &["--node-id", "3", "--port", "8000"]).unwrap();
        assert_eq!((c.bind.to_string(), c.port), ("127.0.0.1".to_string(), 8000));
        assert_eq!(c.data_dir, PathBuf::from("data/node3"));
    }

    #[test]
    fn a_file_without_cluster_tables_runs_a_single_node() {
        let c = resolve_text("[server]\nport = 9000\n", &[]).unwrap();
        assert_eq!(c.cluster, None);
        assert_eq!(c.port, 9000);
    }

    #[test]
    fn the_repository_cluster_toml_is_valid_for_every_node() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../cluster.toml");
        for id in 1..=3u64 {
            let c = args(&["--config", path, "--node-id", &id.to_string()]).resolve().unwrap();
            assert_eq!(c.bind.to_string(), "127.0.0.1");
            assert_eq!(c.port, 7440 + id as u16);
            assert_eq!(c.data_dir, PathBuf::from(format!("data/node{id}")));
            let cluster = c.cluster.unwrap();
            assert_eq!(cluster.node_id, id);
            assert_eq!(cluster.initial_leader, 1);
            assert_eq!(cluster.mode, ReplicationMode::Async);
            assert_eq!(cluster.heartbeat, Duration::from_millis(100));
            assert_eq!(cluster.nodes.iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        }
        let err = args(&["--config", path]).resolve().unwrap_err();
        assert!(matches!(err, ConfigError::NodeIdRequired { .. }), "{err}");
    }

    #[test]
    fn every_cluster_mistake_is_refused_with_its_own_error() {
        type Expect = fn(PathBuf) -> ConfigError;
        let file = cluster_file();
        let cases: Vec<(String, &[&str], Expect)> = vec![
            (CLUSTER_TABLE.to_string(), &["--node-id", "1"], |path| ConfigError::NoNodes { path }),
            (format!("node = []\n{CLUSTER_TABLE}"), &["--node-id", "1"], |path| ConfigError::NoNodes {
                path,
            }),
            (NODES.to_string(), &["--node-id", "1"], |path| ConfigError::NodesWithoutCluster { path }),
            (file.replace("id = 3", "id = 1"), &["--node-id", "1"], |path| ConfigError::DuplicateNodeId {
                path,
                id: 1,
            }),
            (file.replace("7443", "7441"), &["--node-id", "1"], |path| ConfigError::DuplicateAddr {
                path,
                addr: "127.0.0.1:7441".parse().unwrap(),
                first: 1,
                second: 3,
            }),
            (file.replace("data/node3", "./data/node1/"), &["--node-id", "1"], |path| {
                ConfigError::DuplicateDataDir {
                    path,
                    dir: PathBuf::from("./data/node1/"),
                    first: 1,
                    second: 3,
                }
            }),
            (file.replace("127.0.0.2:7442", "localhost:7442"), &["--node-id", "1"], |path| {
                ConfigError::NodeAddr {
                    path,
                    id: 2,
                    addr: "localhost:7442".into(),
                    reason: "is not ip:port (e.g. \"127.0.0.1:7441\"; host names are not resolved)",
                }
            }),
            (file.replace("127.0.0.2:7442", "127.0.0.2"), &["--node-id", "1"], |path| {
                ConfigError::NodeAddr {
                    path,
                    id: 2,
                    addr: "127.0.0.2".into(),
                    reason: "is not ip:port (e.g. \"127.0.0.1:7441\"; host names are not resolved)",
                }
            }),
            (file.replace("127.0.0.2:7442", "127.0.0.2:0"), &["--node-id", "1"], |path| {
                ConfigError::NodeAddr {
                    path,
                    id: 2,
                    addr: "127.0.0.2:0".into(),
                    reason: "has port 0; the other nodes need a fixed port to reach it",
                }
            }),
            (file.replace("id = 3", "id = 0"), &["--node-id", "1"], |path| ConfigError::NodeIdZero { path }),
            (file.clone(), &[], |path| ConfigError::NodeIdRequired { path, nodes: vec![1, 2, 3] }),
            (file.clone(), &["--node-id", "4"], |path| ConfigError::NodeIdUnknown {
                path,
                id: 4,
                nodes: vec![1, 2, 3],
            }),
            (file.clone(), &["--node-id", "0"], |path| ConfigError::NodeIdUnknown {
                path,
                id: 0,
                nodes: vec![1, 2, 3],
            }),
            ("[server]\nport = 9000\n".into(), &["--node-id", "1"], |path| {
                ConfigError::NodeIdWithoutCluster { path, id: 1 }
            }),
            (file.replace("initial_leader = 1", "initial_leader = 5"), &["--node-id", "1"], |path| {
                ConfigError::InitialLeader { path, id: 5, nodes: vec![1, 2, 3] }
            }),
            (file.replace("\"async\"", "\"sync\""), &["--node-id", "1"], |path| ConfigError::Replication {
                path,
                got: "sync".into(),
            }),
            (file.replace("heartbeat_ms = 100", "heartbeat_ms = 0"), &["--node-id", "1"], |path| {
                ConfigError::Heartbeat { path, got: 0 }
            }),
            (
                file.replace("heartbeat_ms = 100", "heartbeat_ms = 100\nlink_timeout_ms = 200"),
                &["--node-id", "1"],
                |path| ConfigError::LinkTimeout { path, link_timeout_ms: 200, heartbeat_ms: 100 },
            ),
            (
                file.replace("heartbeat_ms = 100", "heartbeat_ms = 100\nquorum_timeout_ms = 0"),
                &["--node-id", "1"],
                |path| ConfigError::QuorumTimeout { path, got: 0 },
            ),
        ];
        for (i, (text, extra, expect)) in cases.into_iter().enumerate() {
            let file = TempFile::new(&text);
            let mut list = vec!["--config", file.path()];
            list.extend_from_slice(extra);
            let err = args(&list).resolve().unwrap_err();
            assert_eq!(err, expect(file.0.clone()), "case {i}");
            let shown = err.to_string();
            assert!(shown.contains(file.path()), "case {i} names the file: {shown}");
        }
        let err = args(&["--node-id", "2"]).resolve().unwrap_err();
        assert_eq!(err, ConfigError::NodeIdWithoutConfig(2));
    }

    #[test]
    fn cluster_errors_read_precisely() {
        let file = TempFile::new(&cluster_file().replace("id = 3", "id = 1"));
        let err = args(&["--config", file.path(), "--node-id", "1"]).resolve().unwrap_err();
        assert_eq!(err.to_string(), format!("{}: node id 1 appears more than once", file.path()));
        let file = TempFile::new(&cluster_file());
        let err = args(&["--config", file.path(), "--node-id", "7"]).resolve().unwrap_err();
        assert_eq!(err.to_string(), format!("--node-id 7 is not a node of {} (nodes: 1, 2, 3)", file.path()));
        let text = cluster_file().replace("heartbeat_ms = 100", "heartbeat_ms = 100\nlink_timeout_ms = 150");
        let file = TempFile::new(&text);
        let err = args(&["--config", file.path(), "--node-id", "1"]).resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: link_timeout_ms (150) must be greater than 2 x heartbeat_ms (100)", file.path())
        );
        let file = TempFile::new(&cluster_file().replace("data/node3", "data/node2"));
        let err = args(&["--config", file.path(), "--node-id", "1"]).resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: nodes 2 and 3 have the same data_dir data/node2", file.path())
        );
    }

    #[test]
    fn unknown_and_missing_cluster_keys_are_refused() {
        let cases = [
            (cluster_file().replace("heartbeat_ms", "heartbeat"), "unknown field `heartbeat`"),
            (
                cluster_file().replace("addr = \"127.0.0.2", "address = \"127.0.0.2"),
                "unknown field `address`",
            ),
            (
                cluster_file().replace("data_dir = \"data/node3\"", "data_dir = \"data/node3\"\nrole = 1"),
                "unknown field `role`",
            ),
            (cluster_file().replace("[cluster]", "[clusters]"), "unknown field `clusters`"),
            (cluster_file().replace("replication = \"async\"", ""), "missing field `replication`"),
            (cluster_file().replace("data_dir = \"data/node2\"", ""), "missing field `data_dir`"),
            (cluster_file().replace("id = 2", "id = -2"), "invalid value"),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let err = resolve_text(text, &["--node-id", "1"]).unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "case {i}: {err}");
            assert!(err.to_string().contains(want), "case {i}: {err}");
        }
    }
}
