//! Every `[server]` setting, declared once: this list makes the `Config`
//! fields, the `burrow-server` flags and their `--help`, the config file's
//! `[server]` keys, the checks and README's settings table (see
//! `declare.rs` for the form of a declaration).
//!
//! Sizes take units (`512MiB`, `1GB`, plain numbers are bytes) and
//! durations too (`1.5s`, `200ms`; plain numbers keep the unit the doc
//! names). Docs are one sentence in README's voice: they are the `--help`
//! line and README's "meaning" column alike.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::choice::{LogFormat, OnOff, TlsClientAuth};
use super::declare::declare_settings;
use super::file_mode::FileMode;
use super::listen_addr::ListenAddr;
use super::units::{Seconds, Size, Threshold};
use super::{default_shards, default_threads, ConfigError};
use crate::persist::FsyncPolicy;
use crate::replication::NodeId;
use crate::server::cluster::ClusterConfig;
use crate::store::EvictionPolicy;

declare_settings! {
    /// Address to listen on
    bind: IpAddr = "127.0.0.1", parse IpAddr as "IP";

    /// TCP port (0 = any free port)
    port: u16 = "7440", parse u16 as "PORT";

    /// WAL segments, snapshots and a cluster member's vote file (created if missing)
    data_dir: PathBuf = "data", parse PathBuf as "DIR";

    /// `off`: keep no data on disk (a cluster member still keeps its term and vote there; see
    /// Elections)
    persistence: bool = "on", parse OnOff as "on|off", into OnOff::is_on;

    /// When to fsync the WAL: `always` (a reply means fsynced; group commit), `everysec` or `no`
    /// (left to the OS); see Durability
    fsync: FsyncPolicy = "everysec", parse FsyncPolicy as "POLICY";

    /// Snapshot after this many writes since the last one (0 = never)
    snapshot_every: u64 = "10000000", parse u64 as "WRITES";

    /// Snapshot once the WAL is this large (0 = never)
    snapshot_wal_bytes: u64 = "512MiB", parse Size as "SIZE", into Size::bytes;

    /// Start a new WAL segment file past this size
    wal_segment_bytes: u64 = "64MiB", parse Size as "SIZE", into Size::bytes,
        check |n| *n >= 4096 => "at least 4096 (4KiB)";

    /// At start, cut a torn last WAL record (`false`: refuse to start)
    wal_truncate_torn: bool = "true", parse bool as "true|false";

    /// Store shards, each with its own lock
    shards: usize = "4 × cores, at least 16" computed default_shards, parse usize as "N",
        check |n| n.is_power_of_two() && *n <= 65536 => "a power of two between 1 and 65536";

    /// More connections at once get a `BUSY` reply and are closed
    max_connections: usize = "10000", parse usize as "N",
        check |n| *n >= 1 => "at least 1";

    /// Larger keys get `TOO_LARGE` (checked from the header)
    max_key_bytes: usize = "16KiB", parse Size as "SIZE", into Size::usize,
        check |n| (1..=u16::MAX as usize).contains(n) => "between 1 and 65535";

    /// Larger values get `TOO_LARGE`
    max_value_bytes: usize = "16MiB", parse Size as "SIZE", into Size::usize,
        check |n| (1..=i32::MAX as usize).contains(n) => "between 1 and 2147483647";

    /// Requests whose reply would be larger (LRANGE, LPOP/RPOP with a count, SCAN) get `BAD_REQUEST`
    /// and change nothing
    max_reply_bytes: usize = "512MiB", parse Size as "SIZE", into Size::usize,
        check |n| (1024..=512 << 20).contains(n) => "between 1024 (1KiB) and 536870912 (512MiB)";

    /// Close a connection that sends nothing, or reads none of its replies, for this long (a plain
    /// number is seconds; 0 = never)
    idle_timeout: Option<Duration> = "0", parse Seconds as "DURATION", into Seconds::non_zero;

    /// Single-threaded runtimes serving connections, each owning its connections; 0 = one per
    /// available core less one, at least 1 (see Performance)
    threads: usize = "0", parse usize as "N", into |n: usize| if n == 0 { default_threads() } else { n };

    /// Recent op-log records every cluster member keeps in memory (a follower, those it received,
    /// so that once elected it can serve them) so followers that fell behind resume by partial
    /// resync (not allocated on a standalone server); a leader holds records a connected follower
    /// still needs past it, up to 4 times it
    backlog_bytes: usize = "64MiB", parse Size as "SIZE", into Size::usize,
        check |n| *n >= 1024 => "at least 1024 (1KiB)";

    /// Log lines as `text` (coloured only on a terminal) or `json` (one object per line);
    /// `RUST_LOG` filters them (default `info`)
    log_format: LogFormat = "text", parse LogFormat as "FORMAT";

    /// File holding the client secret (at least 16 bytes); clients must then AUTH before anything
    /// but PING, HELLO and AUTH (none = no authentication; see Security)
    auth_secret_file: Option<PathBuf> = "none", parse PathBuf as "PATH", into super::non_empty_path;

    /// Refuse to start on a non-loopback `--bind` without `--auth-secret-file` (`no`: start anyway,
    /// with a warning; see Security)
    protected_mode: bool = "yes", parse OnOff as "yes|no", into OnOff::is_on;

    /// Memory the store may hold for keys and values (its own accounting, INFO `used_memory`; see
    /// Memory limits); 0 = no limit
    maxmemory: usize = "0", parse Size as "SIZE", into Size::usize, runtime true;

    /// What a write does at `maxmemory`: `noeviction` (refused with `OOM`), `allkeys-lru`,
    /// `volatile-lru`, `allkeys-random` or `volatile-ttl` (evict keys, approximately; see Memory
    /// limits)
    maxmemory_policy: EvictionPolicy = "noeviction", parse EvictionPolicy as "POLICY";

    /// Keys each eviction samples to choose from (more: closer to exact, slower)
    maxmemory_samples: usize = "5", parse usize as "N",
        check |n| (1..=64).contains(n) => "between 1 and 64";

    /// Bytes all connections together may buffer for incomplete requests larger than 64KiB; a
    /// connection whose next request does not fit stops reading until others finish theirs (one
    /// request larger than this still passes, alone)
    max_input_buffer: usize = "256MiB", parse Size as "SIZE", into Size::usize,
        check |n| *n >= 65536 => "at least 65536 (64KiB)";

    /// Close a connection at once when replies it has not read pass this size and the peer does not
    /// take more (0 = no hard limit; a single larger reply is cut too, so keep it above the largest
    /// reply served)
    client_output_hard_limit: usize = "0", parse Size as "SIZE", into Size::usize;

    /// Close a connection whose replies not yet read stay above this size for
    /// `--client-output-soft-seconds` (0 = no soft limit)
    client_output_soft_limit: usize = "64MiB", parse Size as "SIZE", into Size::usize;

    /// How long replies not yet read may stay above `--client-output-soft-limit` (a plain number
    /// is seconds)
    client_output_soft_seconds: Duration = "60", parse Seconds as "DURATION", into Seconds::get;

    /// PEM certificate chain the client port presents; with `--tls-key-file`, the port speaks TLS
    /// only (see Security)
    tls_cert_file: Option<PathBuf> = "none", parse PathBuf as "PATH", into super::non_empty_path;

    /// PEM private key of `--tls-cert-file`
    tls_key_file: Option<PathBuf> = "none", parse PathBuf as "PATH", into super::non_empty_path;

    /// PEM CA bundle client certificates (and, with `[cluster] tls`, members' certificates) must
    /// chain to
    tls_ca_file: Option<PathBuf> = "none", parse PathBuf as "PATH", into super::non_empty_path;

    /// Client certificates: `none` (not asked for), `optional` (verified when presented) or
    /// `required`; `auto` = `optional` with `--tls-ca-file`, else `none`
    tls_client_auth: TlsClientAuth = "auto", parse TlsClientAuth as "MODE";

    /// A TLS connection that has not completed its handshake within this long is closed (a plain
    /// number is seconds; must be above 0)
    tls_handshake_timeout: Duration = "10", parse Seconds as "DURATION", into Seconds::get;

    /// Serve Prometheus metrics over plain HTTP at `GET /metrics` on this `IP:PORT` (none = off; a
    /// non-loopback address is allowed, with a log line; see Metrics)
    metrics_addr: Option<SocketAddr> = "none", parse ListenAddr as "IP:PORT", into ListenAddr::get;

    /// Commands that run at least this many microseconds go to SLOWLOG (0 = every command; `off`
    /// or a negative number, written `--slowlog-threshold=-1`, = none; see Introspection)
    slowlog_threshold: Option<u64> = "10000", parse Threshold as "MICROSECONDS",
        into Threshold::get, runtime true;

    /// Entries SLOWLOG keeps; the oldest go first (0 = keep none)
    slowlog_max_len: usize = "128", parse usize as "N", runtime true;
    /// Also listen on this Unix domain socket, for clients on the same machine (plain, never TLS;
    /// replaced if stale, removed at shutdown; see Security); none = no Unix socket
    unix_socket: Option<PathBuf> = "none", parse PathBuf as "PATH", into super::non_empty_path;

    /// Permissions of `--unix-socket`, in octal, set before it accepts (connecting needs write
    /// permission: 0700 = this user only, 0770 = its group too)
    unix_socket_perm: FileMode = "0700", parse FileMode as "OCTAL";
}
