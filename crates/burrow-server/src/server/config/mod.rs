//! Server configuration: built-in defaults, then a TOML file, then flags.
//!
//! A flag overrides the file, which overrides the default. Each setting is
//! declared once, in `settings.rs`; `validate()` runs before the server
//! binds, so a bad setting is reported precisely and nothing is started.
//!
//! A file may also describe a cluster: a `[cluster]` table and one
//! `[[node]]` table per member (see `cluster.toml` at the repository root,
//! and `server/cluster/parse.rs`). The same file is given to every member,
//! each started with its own `--node-id`; that node's `addr` and
//! `data_dir` then take the place of `bind`, `port` and `data_dir` (flags
//! still override them), and the file's `[server]` table applies to every
//! member alike.

mod choice;
mod declare;
mod file_mode;
mod listen_addr;
mod settings;
pub(crate) mod show;
mod table;
mod units;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::cluster::parse::{ClusterFileError, ClusterSection, NodeSection};
use super::cluster::{self, ClusterConfig};
use crate::persist::PersistConfig;
use crate::replication::NodeId;
use burrow_proto::{Limits, HEADER_LEN};
use settings::ServerSection;

pub(crate) use choice::{deserialize_by_from_str, expected_one_of, from_str_by_value_enum};
pub use choice::{LogFormat, TlsClientAuth};
pub use file_mode::FileMode;
#[cfg(test)]
pub(crate) use settings::SETTINGS;
pub use settings::{Config, ServerArgs};
pub(crate) use units::Millis;

/// One worker thread per core this process may run on, less one: the
/// kernel's network stack and co-located clients need a core too (Redis
/// gives the same advice for its I/O threads). On 2 cores that is 1 thread,
/// which measured faster at pipeline depth 1 than 2 threads sharing both
/// cores with the load generator (README, Performance).
pub(super) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1)
}

/// `--auth-secret-file`: `none` (the default) or an empty path is no file.
pub(super) fn non_empty_path(p: PathBuf) -> Option<PathBuf> {
    (!p.as_os_str().is_empty() && p.as_os_str() != "none").then_some(p)
}

/// 4 × cores rounded up to a power of two, at least 16.
pub(super) fn default_shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).next_power_of_two().max(16)
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read config file {}: {reason}", .path.display())]
    Read { path: PathBuf, reason: String },
    #[error("invalid config file {}: {reason}", .path.display())]
    Parse { path: PathBuf, reason: String },
    /// A setting's declared check failed; `file` when the value came from
    /// the config file rather than a flag.
    #[error("{} must be {expected}, got {got}", setting_at(.name, .file.as_deref()))]
    Invalid { name: &'static str, expected: &'static str, got: String, file: Option<PathBuf> },
    #[error("--data-dir {} exists and is not a directory", .0.display())]
    DataDir(PathBuf),
    #[error(transparent)]
    Cluster(#[from] ClusterFileError),
    #[error("--node-id {0} needs --config FILE with [cluster] and [[node]] tables")]
    NodeIdWithoutConfig(NodeId),
    #[error("--cluster-secret-file needs --config FILE with [cluster] and [[node]] tables")]
    SecretWithoutCluster,
}

/// `--max-connections`, or `FILE: [server] max_connections`.
fn setting_at(name: &str, file: Option<&Path>) -> String {
    match file {
        Some(path) => format!("{}: [server] {name}", path.display()),
        None => format!("--{}", name.replace('_', "-")),
    }
}

impl Config {
    /// Every setting's own check, then those between settings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_each()?;
        // A cluster member keeps its vote file there even with persistence off.
        let uses_dir = self.persistence || self.cluster.is_some();
        if uses_dir && self.data_dir.exists() && !self.data_dir.is_dir() {
            return Err(ConfigError::DataDir(self.data_dir.clone()));
        }
        Ok(())
    }

    /// The persistence settings, or `None` with persistence off.
    pub(crate) fn persist_config(&self) -> Option<PersistConfig> {
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

/// A config file: `[server]`, and a cluster's `[cluster]` and `[[node]]`.
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
        match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::Read { path: path.to_owned(), reason: e.to_string() })?;
                self.resolve_file_text(path, &text)
            }
            None => self.resolve_parsed(None),
        }
    }

    /// [`ServerArgs::resolve`] with `text` as the content of the config
    /// file at `path` (in place of `--config`), read by the caller: the
    /// whole parse — `[server]`, `[cluster]`, `[[node]]` — with no file
    /// IO, so it can be fuzzed (`fuzz/`, target `config_file`).
    pub fn resolve_file_text(&self, path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text)
            .map_err(|e| ConfigError::Parse { path: path.to_owned(), reason: e.to_string() })?;
        self.resolve_parsed(Some((path, file)))
    }

    /// Defaults ← the parsed file at its path, if any ← flags, then validated.
    fn resolve_parsed(&self, file: Option<(&Path, FileConfig)>) -> Result<Config, ConfigError> {
        let path = file.as_ref().map(|(p, _)| p.to_path_buf());
        let (mut section, cluster) = match file {
            Some((path, file)) => {
                let secret = self.cluster_secret_file.as_deref();
                let cluster =
                    cluster::parse::from_tables(path, file.cluster, file.node, self.node_id, secret)?;
                (file.server, cluster)
            }
            None => match self.node_id {
                Some(id) => return Err(ConfigError::NodeIdWithoutConfig(id)),
                None => (ServerSection::default(), None),
            },
        };
        if cluster.is_none() && self.cluster_secret_file.is_some() {
            return Err(ConfigError::SecretWithoutCluster);
        }
        if let Some(me) = cluster.as_ref().map(ClusterConfig::me) {
            // This node's entry takes the place of the file's [server]
            // address and directory, which every member shares.
            section.bind = Some(me.addr.ip());
            section.port = Some(me.addr.port());
            section.data_dir = Some(me.data_dir.clone());
        }
        let (mut config, from_file) = self.merge(section);
        config.cluster = cluster;
        config.validate().map_err(|e| match (e, path) {
            (ConfigError::Invalid { name, expected, got, .. }, Some(path)) if from_file.contains(&name) => {
                ConfigError::Invalid { name, expected, got, file: Some(path) }
            }
            (e, _) => e,
        })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::persist::FsyncPolicy;
    use crate::server::cluster::parse::tests::cluster_file;

    fn try_args(list: &[&str]) -> Result<ServerArgs, clap::Error> {
        ServerArgs::try_parse_from(std::iter::once("burrow-server").chain(list.iter().copied()))
    }

    fn args(list: &[&str]) -> ServerArgs {
        try_args(list).unwrap_or_else(|e| panic!("{list:?}: {e}"))
    }

    /// A config file holding `text`, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(text: &str) -> TempFile {
            use std::sync::atomic::{AtomicU64, Ordering};
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("burrow-config-{}-{n}.toml", std::process::id()));
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

    /// Resolves `text` as the config file, with `extra` flags.
    fn resolve_text(text: &str, extra: &[&str]) -> Result<Config, ConfigError> {
        let file = TempFile::new(text);
        let mut list = vec!["--config", file.path()];
        list.extend_from_slice(extra);
        args(&list).resolve()
    }

    #[test]
    fn defaults_parse_and_match_the_documented_values() {
        let c = args(&[]).resolve().unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.port, burrow_proto::DEFAULT_PORT);
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert!(c.persistence);
        assert_eq!(c.fsync, FsyncPolicy::EverySec);
        assert_eq!(c.snapshot_every, 10_000_000);
        assert_eq!(c.snapshot_wal_bytes, 512 << 20);
        assert_eq!(c.wal_segment_bytes, 64 << 20);
        assert!(c.wal_truncate_torn);
        assert_eq!(c.shards, default_shards());
        assert!(c.shards.is_power_of_two() && c.shards >= 16);
        assert_eq!(c.max_connections, 10_000);
        assert_eq!(c.max_key_bytes, Limits::DEFAULT_MAX_KEY);
        assert_eq!(c.max_value_bytes, Limits::DEFAULT_MAX_VALUE);
        assert_eq!(c.limits(), Limits::default());
        assert_eq!(c.idle_timeout, None);
        assert_eq!(c.threads, default_threads());
        assert_eq!(c.backlog_bytes, 64 << 20);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.max_input_buffer, 256 << 20);
        assert_eq!(c.client_output_hard_limit, 0);
        assert_eq!(c.client_output_soft_limit, 64 << 20);
        assert_eq!(c.client_output_soft_seconds, Duration::from_secs(60));
        assert_eq!((c.slowlog_threshold, c.slowlog_max_len), (Some(10_000), 128));
        assert_eq!(c.cluster, None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let text = "[server]\nport = 9000\nshards = 8\nidle_timeout = 5\nfsync = \"no\"\nmax_value_bytes = \"1MiB\"\n";
        let c = resolve_text(text, &["--port", "9001", "--fsync", "always"]).unwrap();
        assert_eq!(c.port, 9001, "flag over file");
        assert_eq!(c.fsync, FsyncPolicy::Always, "flag over file");
        assert_eq!(c.shards, 8, "file over default");
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(5)), "a plain number is seconds");
        assert_eq!(c.max_value_bytes, 1 << 20);
        assert_eq!(c.max_connections, 10_000, "default");
        let c = resolve_text(text, &[]).unwrap();
        assert_eq!((c.port, c.fsync), (9000, FsyncPolicy::No));
    }

    #[test]
    fn the_slowlog_threshold_turns_off_as_in_redis() {
        for flag in [&["--slowlog-threshold", "off"][..], &["--slowlog-threshold=-1"]] {
            assert_eq!(args(flag).resolve().unwrap().slowlog_threshold, None, "{flag:?}");
        }
        for text in ["slowlog_threshold = -1", "slowlog_threshold = \"off\""] {
            let c = resolve_text(&format!("[server]\n{text}\n"), &[]).unwrap();
            assert_eq!(c.slowlog_threshold, None, "{text}");
        }
        assert_eq!(args(&["--slowlog-threshold", "0"]).resolve().unwrap().slowlog_threshold, Some(0));
        assert!(try_args(&["--slowlog-threshold", "slow"]).is_err());
    }

    #[test]
    fn every_setting_is_read_from_flags_and_from_the_file_alike() {
        let pairs: &[(&str, &str)] = &[
            ("bind", "0.0.0.0"),
            ("port", "0"),
            ("data_dir", "elsewhere"),
            ("persistence", "off"),
            ("fsync", "always"),
            ("snapshot_every", "5"),
            ("snapshot_wal_bytes", "1GB"),
            ("wal_segment_bytes", "64KiB"),
            ("wal_truncate_torn", "false"),
            ("shards", "32"),
            ("max_connections", "7"),
            ("max_key_bytes", "1KiB"),
            ("max_value_bytes", "2MiB"),
            ("max_reply_bytes", "64KiB"),
            ("idle_timeout", "1.5s"),
            ("threads", "3"),
            ("backlog_bytes", "2MiB"),
            ("log_format", "json"),
            ("auth_secret_file", "/etc/burrow/secret"),
            ("protected_mode", "no"),
            ("maxmemory", "3MiB"),
            ("maxmemory_policy", "volatile-ttl"),
            ("maxmemory_samples", "10"),
            ("max_input_buffer", "1MiB"),
            ("client_output_hard_limit", "8MiB"),
            ("client_output_soft_limit", "2MiB"),
            ("client_output_soft_seconds", "30"),
            ("tls_cert_file", "/etc/burrow/tls.crt"),
            ("tls_key_file", "/etc/burrow/tls.key"),
            ("tls_ca_file", "/etc/burrow/ca.pem"),
            ("tls_client_auth", "required"),
            ("tls_handshake_timeout", "2s"),
            ("metrics_addr", "127.0.0.1:9440"),
            ("slowlog_threshold", "250"),
            ("slowlog_max_len", "16"),
            ("unix_socket", "/run/burrow.sock"),
            ("unix_socket_perm", "770"),
        ];
        assert_eq!(pairs.len(), SETTINGS.len(), "every declared setting is covered");
        let mut flags = Vec::new();
        let mut file = String::from("[server]\n");
        for (name, value) in pairs {
            flags.push(format!("--{}", name.replace('_', "-")));
            flags.push(value.to_string());
            // Numbers and booleans bare, as a file writes them; the rest quoted.
            let bare = value.parse::<u64>().is_ok() || value.parse::<bool>().is_ok();
            let toml_value = if bare { value.to_string() } else { format!("{value:?}") };
            file.push_str(&format!("{name} = {toml_value}\n"));
        }
        let from_flags = args(&flags.iter().map(String::as_str).collect::<Vec<_>>()).resolve().unwrap();
        let from_file = resolve_text(&file, &[]).unwrap();
        assert_eq!(from_flags, from_file);
        let c = from_flags;
        assert_eq!(c.bind.to_string(), "0.0.0.0");
        assert!(!c.persistence);
        assert_eq!(c.snapshot_wal_bytes, 1_000_000_000);
        assert_eq!(
            c.unix_socket_perm.bits(),
            0o770,
            "a bare 770 in the file is octal, as on the command line"
        );
        assert_eq!(c.wal_segment_bytes, 64 << 10);
        assert!(!c.wal_truncate_torn);
        assert_eq!(c.max_key_bytes, 1024);
        assert_eq!(c.max_reply_bytes, 64 << 10);
        assert_eq!(c.idle_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(c.threads, 3);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.maxmemory, 3 << 20);
        assert_eq!(
            (c.maxmemory_policy, c.maxmemory_samples),
            (crate::store::EvictionPolicy::VolatileTtl, 10)
        );
        // Plain numbers in the file: bytes and seconds, as before units.
        let c = resolve_text("[server]\nbacklog_bytes = 4096\nidle_timeout = 0\n", &[]).unwrap();
        assert_eq!((c.backlog_bytes, c.idle_timeout), (4096, None));
    }

    #[test]
    fn words_ignore_case_and_persistence_keeps_its_synonyms() {
        for (word, on) in
            [("on", true), ("ON", true), ("true", true), ("yes", true), ("off", false), ("no", false)]
        {
            assert_eq!(args(&["--persistence", word]).resolve().unwrap().persistence, on, "{word}");
        }
        assert_eq!(args(&["--fsync", "EVERYSEC"]).resolve().unwrap().fsync, FsyncPolicy::EverySec);
    }

    #[test]
    fn a_malformed_flag_is_refused_by_clap_saying_what_was_expected() {
        let cases: &[(&[&str], &str)] = &[
            (&["--fsync", "sometimes"], "[possible values: always, everysec, no]"),
            (&["--persistence", "maybe"], "[possible values: on, off]"),
            (&["--log-format", "xml"], "[possible values: text, json]"),
            (&["--bind", "localhost:1"], "invalid value 'localhost:1' for '--bind <IP>'"),
            (&["--max-value-bytes", "lots"], "expected a size such as 4096 (bytes), 64KiB, 512MiB or 1GB"),
            (
                &["--idle-timeout", "soon"],
                "expected a duration such as 1.5s, 200ms or 2m, or a number of seconds",
            ),
            (
                &["--wal-truncate-torn", "maybe"],
                "invalid value 'maybe' for '--wal-truncate-torn <true|false>'",
            ),
        ];
        for (i, (a, want)) in cases.iter().enumerate() {
            let err = try_args(a).unwrap_err().to_string();
            assert!(err.contains(want), "case {i}: {err}");
        }
    }

    #[test]
    fn every_check_names_the_flag_what_it_expects_and_what_it_got() {
        let cases: &[(&[&str], &str)] = &[
            (&["--shards", "12"], "--shards must be a power of two between 1 and 65536, got 12"),
            (&["--shards", "0"], "--shards must be a power of two between 1 and 65536, got 0"),
            (&["--shards", "131072"], "--shards must be a power of two between 1 and 65536, got 131072"),
            (&["--max-connections", "0"], "--max-connections must be at least 1, got 0"),
            (&["--max-key-bytes", "0"], "--max-key-bytes must be between 1 and 65535, got 0"),
            (&["--max-key-bytes", "64KiB"], "--max-key-bytes must be between 1 and 65535, got 65536"),
            (
                &["--max-value-bytes", "2GiB"],
                "--max-value-bytes must be between 1 and 2147483647, got 2147483648",
            ),
            (&["--wal-segment-bytes", "10"], "--wal-segment-bytes must be at least 4096 (4KiB), got 10"),
            (&["--backlog-bytes", "1000"], "--backlog-bytes must be at least 1024 (1KiB), got 1000"),
        ];
        for (i, (a, want)) in cases.iter().enumerate() {
            let err = args(a).resolve().unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { file: None, .. }), "case {i}: {err:?}");
            assert_eq!(err.to_string(), *want, "case {i}");
        }
        // Limits just inside are accepted.
        let ok = ["--shards", "65536", "--max-key-bytes", "65535", "--wal-segment-bytes", "4KiB"];
        args(&ok).resolve().unwrap();
    }

    #[test]
    fn a_bad_value_from_the_file_names_the_file_and_key() {
        let file = TempFile::new("[server]\nshards = 12\nport = 9000\n");
        let err = args(&["--config", file.path()]).resolve().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}: [server] shards must be a power of two between 1 and 65536, got 12", file.path())
        );
        // The same value given as a flag is the flag's fault.
        let err = args(&["--config", file.path(), "--shards", "6"]).resolve().unwrap_err();
        assert_eq!(err.to_string(), "--shards must be a power of two between 1 and 65536, got 6");
        for (text, want) in [
            ("[server]\nfsync = \"sometimes\"\n", "expected always, everysec or no, got \"sometimes\""),
            ("[server]\nmax_value_bytes = \"lots\"\n", "expected a size such as 4096 (bytes)"),
            ("[server]\nbind = \"localhost\"\n", "invalid IP address syntax"),
            ("[server]\nprot = 1\n", "unknown field `prot`"),
            ("[clusters]\n", "unknown field `clusters`"),
        ] {
            let file = TempFile::new(text);
            let err = args(&["--config", file.path()]).resolve().unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{text}: {err:?}");
            let shown = err.to_string();
            assert!(shown.starts_with(&format!("invalid config file {}: ", file.path())), "{shown}");
            assert!(shown.contains(want), "{text}: {shown}");
        }
    }

    #[test]
    fn an_unreadable_file_and_a_file_for_a_data_dir_are_refused() {
        let err = args(&["--config", "/nonexistent/burrow.toml"]).resolve().unwrap_err();
        assert!(err.to_string().starts_with("cannot read config file /nonexistent/burrow.toml: "), "{err}");
        let file = TempFile::new("");
        let err = args(&["--data-dir", file.path()]).resolve().unwrap_err();
        assert_eq!(err, ConfigError::DataDir(file.0.clone()));
        args(&["--data-dir", file.path(), "--persistence", "off"]).resolve().unwrap();
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
        assert_eq!(c.cluster.unwrap().node_id(), 3);
    }

    #[test]
    fn node_id_needs_a_cluster_file() {
        assert_eq!(args(&["--node-id", "2"]).resolve().unwrap_err(), ConfigError::NodeIdWithoutConfig(2));
        let err = resolve_text("[server]\nport = 9000\n", &["--node-id", "1"]).unwrap_err();
        assert!(
            matches!(err, ConfigError::Cluster(ClusterFileError::NodeIdWithoutCluster { id: 1, .. })),
            "{err}"
        );
        let c = resolve_text("[server]\nport = 9000\n", &[]).unwrap();
        assert_eq!((c.cluster, c.port), (None, 9000));
        let err = resolve_text(&cluster_file(), &["--node-id", "7"]).unwrap_err();
        assert!(err.to_string().starts_with("--node-id 7 is not a node of "), "{err}");
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
            assert_eq!(cluster.node_id(), id);
            assert_eq!(cluster.initial_leader().unwrap().id, 1);
            assert_eq!(cluster.mode, cluster::ReplicationMode::Async);
            assert_eq!(cluster.heartbeat, Duration::from_millis(100));
            assert_eq!(cluster.nodes().iter().map(|n| n.id).collect::<Vec<_>>(), vec![1, 2, 3]);
        }
        let err = args(&["--config", path]).resolve().unwrap_err();
        assert!(matches!(err, ConfigError::Cluster(ClusterFileError::NodeIdRequired { .. })), "{err}");
    }

    #[test]
    fn a_cluster_reachable_from_other_machines_needs_a_secret_or_an_explicit_opt_out() {
        let open = cluster_file().replace("127.0.0.2:7442", "10.0.0.2:7442");
        let err = resolve_text(&open, &["--node-id", "1"]).unwrap_err();
        let shown = err.to_string();
        assert!(
            matches!(err, ConfigError::Cluster(ClusterFileError::Unauthenticated { id: 2, .. })),
            "{shown}"
        );
        for hint in
            ["10.0.0.2:7442", "head -c 32 /dev/urandom", "secret_file", "allow_unauthenticated = true"]
        {
            assert!(shown.contains(hint), "{hint}: {shown}");
        }
        let opted_out =
            open.replace("heartbeat_ms = 100", "heartbeat_ms = 100\nallow_unauthenticated = true");
        assert_eq!(resolve_text(&opted_out, &["--node-id", "1"]).unwrap().cluster.unwrap().secret, None);
        // Loopback only (127.0.0.0/8): no secret needed.
        assert_eq!(resolve_text(&cluster_file(), &["--node-id", "1"]).unwrap().cluster.unwrap().secret, None);
    }

    #[test]
    fn the_secret_file_is_relative_to_the_cluster_file_and_the_flag_overrides_it() {
        let secret = TempFile::new("0123456789abcdef\n");
        let name = secret.0.file_name().unwrap().to_str().unwrap().to_owned();
        // The config file is written to the same directory as the secret.
        let text = cluster_file()
            .replace("127.0.0.2:7442", "10.0.0.2:7442")
            .replace("heartbeat_ms = 100", &format!("heartbeat_ms = 100\nsecret_file = \"{name}\""));
        let want = burrow_proto::Secret::from_bytes(b"0123456789abcdef", "test").unwrap();
        let c = resolve_text(&text, &["--node-id", "1"]).unwrap();
        assert_eq!(c.cluster.unwrap().secret, Some(want));

        let short = TempFile::new("hunter2\n");
        let err =
            resolve_text(&text, &["--node-id", "1", "--cluster-secret-file", short.path()]).unwrap_err();
        assert!(matches!(err, ConfigError::Cluster(ClusterFileError::Secret { .. })), "{err}");
        assert!(err.to_string().contains("holds 7 bytes"), "{err}");
        let missing = text.replace(&name, "no-such-secret");
        let err = resolve_text(&missing, &["--node-id", "1"]).unwrap_err().to_string();
        assert!(err.contains("cannot read secret file") && err.contains("no-such-secret"), "{err}");

        let err = args(&["--cluster-secret-file", secret.path()]).resolve().unwrap_err();
        assert_eq!(err, ConfigError::SecretWithoutCluster);
    }
}
