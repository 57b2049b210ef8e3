//! The `[cluster]` and `[[node]]` tables of a config file, checked whole
//! (every node, not just this one, so each member refuses the same
//! mistakes) and turned into this node's [`ClusterConfig`]. Every error
//! names the file and the value at fault.
//!
//! Times are milliseconds as plain numbers (`heartbeat_ms = 100`) or take
//! a unit (`heartbeat_ms = "1.5s"`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::{check_members, id_list, ClusterConfig, MembershipError, NodeInfo, ReplicationMode};
use crate::replication::NodeId;
use crate::server::config::Millis;

/// The `[cluster]` table: how the members replicate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSection {
    /// Campaigns at once on start; optional (the first timeout elects).
    initial_leader: Option<NodeId>,
    /// `async` or `quorum`; parsed here so the error can name the file.
    replication: String,
    heartbeat_ms: Millis,
    /// Default: 10 × `heartbeat_ms`.
    link_timeout_ms: Option<Millis>,
    /// Default: [`super::DEFAULT_QUORUM_TIMEOUT`].
    quorum_timeout_ms: Option<Millis>,
    /// Default 0: followers always serve reads.
    max_stale_ms: Option<Millis>,
    /// Default: [`super::DEFAULT_ELECTION_TIMEOUT`].
    election_timeout_ms: Option<TimeoutRange>,
    /// The cluster secret's file, relative to the cluster file's directory
    /// (`--cluster-secret-file` overrides it).
    secret_file: Option<PathBuf>,
    /// Lets members on non-loopback addresses run without a secret.
    allow_unauthenticated: Option<bool>,
    /// Members dial each other with mutual TLS.
    tls: Option<bool>,
    /// The name members' certificates must carry (default: each `addr`'s IP).
    tls_server_name: Option<String>,
}

/// `election_timeout_ms`: `"300..600"` (each end a duration as the other
/// `*_ms` keys take: a plain number is milliseconds) or `[300, 600]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum TimeoutRange {
    Pair([Millis; 2]),
    Text(String),
}

impl TimeoutRange {
    /// The range, or why it is not one (the error names the key).
    fn get(&self) -> Result<std::ops::Range<Duration>, String> {
        let (lo, hi) = match self {
            TimeoutRange::Pair([lo, hi]) => (lo.get(), hi.get()),
            TimeoutRange::Text(t) => {
                let (lo, hi) =
                    t.split_once("..").ok_or_else(|| format!("expected \"MIN..MAX\", got {t:?}"))?;
                let ms = |v: &str| v.trim().parse::<Millis>().map(Millis::get);
                (ms(lo)?, ms(hi)?)
            }
        };
        Ok(lo..hi)
    }
}

/// One `[[node]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSection {
    id: NodeId,
    /// `ip:port`; parsed here so the error can name the node and file.
    addr: String,
    data_dir: PathBuf,
    /// `false`: a read replica (default `true`).
    voter: Option<bool>,
}

/// A cluster file's mistake; each names the file.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ClusterFileError {
    #[error("{}: [cluster] needs at least one [[node]] table", .path.display())]
    NoNodes { path: PathBuf },
    #[error("{}: [[node]] tables need a [cluster] table (replication, heartbeat_ms)", .path.display())]
    NodesWithoutCluster { path: PathBuf },
    /// The nodes break a membership rule (`problem` is part of the
    /// message, not a cause: it is printed once, here).
    #[error("{}: {problem}", .path.display())]
    Members { path: PathBuf, problem: MembershipError },
    #[error("{}: node {id}: addr {addr:?} is not ip:port (e.g. \"127.0.0.1:7441\"; host names are not resolved)", .path.display())]
    NodeAddr { path: PathBuf, id: NodeId, addr: String },
    #[error("{}: replication must be \"async\" or \"quorum\", got {got:?}", .path.display())]
    Replication { path: PathBuf, got: String },
    #[error("{}: heartbeat_ms must be at least 1, got {got}", .path.display())]
    Heartbeat { path: PathBuf, got: u64 },
    #[error("{}: link_timeout_ms ({link_timeout_ms}) must be greater than 2 x heartbeat_ms ({heartbeat_ms})", .path.display())]
    LinkTimeout { path: PathBuf, link_timeout_ms: u64, heartbeat_ms: u64 },
    #[error("{}: quorum_timeout_ms must be at least 1, got {got}", .path.display())]
    QuorumTimeout { path: PathBuf, got: u64 },
    #[error("{}: election_timeout_ms: {problem}", .path.display())]
    ElectionTimeout { path: PathBuf, problem: String },
    #[error("{} describes a cluster: --node-id is required to say which node this is (one of {})", .path.display(), id_list(.nodes))]
    NodeIdRequired { path: PathBuf, nodes: Vec<NodeId> },
    #[error("--node-id {id} is not a node of {} (nodes: {})", .path.display(), id_list(.nodes))]
    NodeIdUnknown { path: PathBuf, id: NodeId, nodes: Vec<NodeId> },
    #[error("--node-id {id} given, but {} has no [cluster] table", .path.display())]
    NodeIdWithoutCluster { path: PathBuf, id: NodeId },
    /// The cluster secret cannot be used (`reason` names its file).
    #[error("{}: cluster secret: {reason}", .path.display())]
    Secret { path: PathBuf, reason: String },
    #[error(
        "{}: node {id} listens on {addr}, which is not a loopback address, and the cluster has no secret: \
         anyone who reaches it could take the data set or vote. Create one \
         (`head -c 32 /dev/urandom | base64 > cluster.secret`, the same file on every member) and set \
         [cluster] secret_file = \"cluster.secret\" (or --cluster-secret-file), or accept the risk \
         with [cluster] allow_unauthenticated = true",
        .path.display()
    )]
    Unauthenticated { path: PathBuf, id: NodeId, addr: SocketAddr },
}

/// The cluster the file at `path` describes, as node `node_id` sees it;
/// `None` for a single-node file (neither table). `secret_flag`
/// (`--cluster-secret-file`) takes the place of `[cluster] secret_file`.
pub(crate) fn from_tables(
    path: &Path,
    cluster: Option<ClusterSection>,
    nodes: Option<Vec<NodeSection>>,
    node_id: Option<NodeId>,
    secret_flag: Option<&Path>,
) -> Result<Option<ClusterConfig>, ClusterFileError> {
    let path = || path.to_owned();
    let (c, nodes) = match (cluster, nodes) {
        (None, None) => {
            return match node_id {
                Some(id) => Err(ClusterFileError::NodeIdWithoutCluster { path: path(), id }),
                None => Ok(None),
            }
        }
        (None, Some(_)) => return Err(ClusterFileError::NodesWithoutCluster { path: path() }),
        (Some(_), None) => return Err(ClusterFileError::NoNodes { path: path() }),
        (Some(_), Some(nodes)) if nodes.is_empty() => return Err(ClusterFileError::NoNodes { path: path() }),
        (Some(c), Some(nodes)) => (c, nodes),
    };

    let mut members = Vec::with_capacity(nodes.len());
    let non_voters: Vec<NodeId> = nodes.iter().filter(|n| n.voter == Some(false)).map(|n| n.id).collect();
    for n in nodes {
        let addr: SocketAddr = n.addr.parse().map_err(|_| ClusterFileError::NodeAddr {
            path: path(),
            id: n.id,
            addr: n.addr.clone(),
        })?;
        members.push(NodeInfo { id: n.id, addr, data_dir: n.data_dir });
    }
    check_members(&members, c.initial_leader)
        .map_err(|problem| ClusterFileError::Members { path: path(), problem })?;

    let mode: ReplicationMode = c
        .replication
        .parse()
        .map_err(|_| ClusterFileError::Replication { path: path(), got: c.replication.clone() })?;
    let heartbeat = c.heartbeat_ms.get();
    if heartbeat < Duration::from_millis(1) {
        return Err(ClusterFileError::Heartbeat { path: path(), got: ms(heartbeat) });
    }
    let link_timeout = c.link_timeout_ms.map_or(heartbeat.saturating_mul(10), Millis::get);
    if link_timeout <= heartbeat.saturating_mul(2) {
        // A link must survive one late heartbeat before it is called down.
        return Err(ClusterFileError::LinkTimeout {
            path: path(),
            link_timeout_ms: ms(link_timeout),
            heartbeat_ms: ms(heartbeat),
        });
    }
    let quorum_timeout = c.quorum_timeout_ms.map_or(super::DEFAULT_QUORUM_TIMEOUT, Millis::get);
    if quorum_timeout < Duration::from_millis(1) {
        return Err(ClusterFileError::QuorumTimeout { path: path(), got: ms(quorum_timeout) });
    }

    let election_timeout = match &c.election_timeout_ms {
        None => super::DEFAULT_ELECTION_TIMEOUT,
        Some(r) => r.get().map_err(|problem| ClusterFileError::ElectionTimeout { path: path(), problem })?,
    };
    if election_timeout.end <= election_timeout.start {
        return Err(ClusterFileError::ElectionTimeout {
            path: path(),
            problem: format!(
                "the maximum ({} ms) must be above the minimum ({} ms)",
                ms(election_timeout.end),
                ms(election_timeout.start)
            ),
        });
    }
    if election_timeout.start <= heartbeat.saturating_mul(2) {
        // A leader must get two heartbeats in before anyone may give up on it.
        return Err(ClusterFileError::ElectionTimeout {
            path: path(),
            problem: format!(
                "the minimum ({} ms) must be greater than 2 x heartbeat_ms ({} ms)",
                ms(election_timeout.start),
                ms(heartbeat)
            ),
        });
    }

    let ids = || members.iter().map(|m| m.id).collect();
    let Some(id) = node_id else {
        return Err(ClusterFileError::NodeIdRequired { path: path(), nodes: ids() });
    };
    let mut config = ClusterConfig::new(members, c.initial_leader, id).map_err(|e| match e {
        MembershipError::NotAMember { id, nodes } => {
            ClusterFileError::NodeIdUnknown { path: path(), id, nodes }
        }
        problem => ClusterFileError::Members { path: path(), problem },
    })?;
    config.mode = mode;
    config.heartbeat = heartbeat;
    config.link_timeout = link_timeout;
    config.quorum_timeout = quorum_timeout;
    config.max_stale = c.max_stale_ms.and_then(Millis::non_zero);
    config.election_timeout = election_timeout;
    config
        .set_non_voters(non_voters)
        .map_err(|problem| ClusterFileError::Members { path: path(), problem })?;
    config.secret = secret(path(), secret_flag, c.secret_file.as_deref())?;
    config.tls = c.tls == Some(true);
    config.tls_server_name = c.tls_server_name.clone();
    if config.secret.is_none() && c.allow_unauthenticated != Some(true) {
        // Closed by default, as Redis's protected mode: only a cluster
        // that no other machine can reach may run without a secret.
        if let Some(n) = config.nodes().iter().find(|n| !n.addr.ip().is_loopback()) {
            return Err(ClusterFileError::Unauthenticated { path: path(), id: n.id, addr: n.addr });
        }
    }
    Ok(Some(config))
}

/// The cluster secret: from the flag's file (relative to the working
/// directory, as any flag's path), else from `secret_file` (relative to the
/// cluster file's directory, so every member finds it wherever it starts).
fn secret(
    path: PathBuf,
    flag: Option<&Path>,
    in_file: Option<&Path>,
) -> Result<Option<burrow_proto::Secret>, ClusterFileError> {
    let file = match (flag, in_file) {
        (Some(f), _) => f.to_owned(),
        (None, Some(f)) => path.parent().map_or_else(|| f.to_owned(), |dir| dir.join(f)),
        (None, None) => return Ok(None),
    };
    burrow_proto::Secret::from_file(&file)
        .map(Some)
        .map_err(|e| ClusterFileError::Secret { path, reason: burrow_proto::ErrorChain(&e).to_string() })
}

/// Whole milliseconds, for messages about `*_ms` keys.
fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The cluster tables of a config file (the `[server]` table is the
    /// config module's).
    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tables {
        cluster: Option<ClusterSection>,
        node: Option<Vec<NodeSection>>,
    }

    const PATH: &str = "conf/cluster.toml";

    fn parse(text: &str, node_id: Option<NodeId>) -> Result<Option<ClusterConfig>, ClusterFileError> {
        let t: Tables = toml::from_str(text).unwrap_or_else(|e| panic!("{e}"));
        from_tables(Path::new(PATH), t.cluster, t.node, node_id, None)
    }

    /// The TOML error of `text` (unknown or missing keys, wrong types).
    fn toml_error(text: &str) -> String {
        toml::from_str::<Tables>(text).unwrap_err().to_string()
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

    /// A valid 3-node cluster file (node 2 on 127.0.0.2).
    pub(crate) fn cluster_file() -> String {
        format!("{CLUSTER_TABLE}{NODES}")
    }

    fn node(id: NodeId, addr: &str, dir: &str) -> NodeInfo {
        NodeInfo { id, addr: addr.parse().unwrap(), data_dir: PathBuf::from(dir) }
    }

    #[test]
    fn a_cluster_file_gives_this_nodes_view_and_the_default_timings() {
        let cluster = parse(&cluster_file(), Some(2)).unwrap().expect("a cluster");
        let mut want = ClusterConfig::new(
            vec![
                node(1, "127.0.0.1:7441", "data/node1"),
                node(2, "127.0.0.2:7442", "data/node2"),
                node(3, "127.0.0.1:7443", "data/node3"),
            ],
            1,
            2,
        )
        .unwrap();
        want.heartbeat = Duration::from_millis(100);
        want.link_timeout = Duration::from_millis(1000);
        assert_eq!(cluster, want);
        assert_eq!(cluster.mode, ReplicationMode::Async);
        assert_eq!(cluster.quorum_timeout, Duration::from_millis(1000));
        assert_eq!(cluster.max_stale, None);
        assert_eq!(cluster.me(), &node(2, "127.0.0.2:7442", "data/node2"));
        assert_eq!(cluster.peers(), vec![1, 3]);
        assert!(!cluster.is_initial_leader());
    }

    #[test]
    fn the_election_timeout_is_a_range_and_the_initial_leader_optional() {
        let with =
            |line: &str| cluster_file().replace("heartbeat_ms = 100", &format!("heartbeat_ms = 100\n{line}"));
        let ms = Duration::from_millis;
        let c = parse(&cluster_file(), Some(1)).unwrap().unwrap();
        assert_eq!(c.election_timeout, super::super::DEFAULT_ELECTION_TIMEOUT);
        assert!(c.is_initial_leader());
        for line in [
            "election_timeout_ms = \"300..600\"",
            "election_timeout_ms = [300, 600]",
            "election_timeout_ms = \"0.3s..600ms\"",
            "election_timeout_ms = [\"300ms\", \"0.6s\"]",
        ] {
            assert_eq!(
                parse(&with(line), Some(1)).unwrap().unwrap().election_timeout,
                ms(300)..ms(600),
                "{line}"
            );
        }
        let none = cluster_file().replace("initial_leader = 1\n", "");
        let c = parse(&none, Some(1)).unwrap().unwrap();
        assert_eq!(c.initial_leader(), None);
        assert!(!c.is_initial_leader());
        let cases = [
            ("election_timeout_ms = \"300-600\"", "expected \"MIN..MAX\", got \"300-600\""),
            ("election_timeout_ms = \"600..300\"", "the maximum (300 ms) must be above the minimum (600 ms)"),
            (
                "election_timeout_ms = [150, 600]",
                "the minimum (150 ms) must be greater than 2 x heartbeat_ms (100 ms)",
            ),
        ];
        for (line, problem) in cases {
            let err = parse(&with(line), Some(1)).unwrap_err();
            assert_eq!(
                err,
                ClusterFileError::ElectionTimeout { path: PATH.into(), problem: problem.into() },
                "{line}"
            );
            assert!(err.to_string().contains("election_timeout_ms"), "the error names the setting: {err}");
        }
    }

    #[test]
    fn optional_keys_are_read_and_times_take_units() {
        let text = format!(
            "[cluster]\ninitial_leader = 3\nreplication = \"quorum\"\nheartbeat_ms = 100\n\
             link_timeout_ms = 201\nquorum_timeout_ms = 50\nmax_stale_ms = 2000\n{NODES}"
        );
        let cluster = parse(&text, Some(3)).unwrap().unwrap();
        assert_eq!(cluster.mode, ReplicationMode::Quorum);
        assert_eq!(cluster.link_timeout, Duration::from_millis(201));
        assert_eq!(cluster.quorum_timeout, Duration::from_millis(50));
        assert_eq!(cluster.max_stale, Some(Duration::from_millis(2000)));
        assert!(cluster.is_initial_leader());
        let zero = text.replace("max_stale_ms = 2000", "max_stale_ms = 0");
        assert_eq!(parse(&zero, Some(3)).unwrap().unwrap().max_stale, None);
        let units = text
            .replace("heartbeat_ms = 100", "heartbeat_ms = \"0.1s\"")
            .replace("link_timeout_ms = 201", "link_timeout_ms = \"1.5s\"")
            .replace("quorum_timeout_ms = 50", "quorum_timeout_ms = \"50ms\"")
            .replace("max_stale_ms = 2000", "max_stale_ms = \"1m\"")
            .replace("\"quorum\"", "\"Quorum\"");
        let cluster = parse(&units, Some(1)).unwrap().unwrap();
        assert_eq!(cluster.mode, ReplicationMode::Quorum);
        assert_eq!(cluster.heartbeat, Duration::from_millis(100));
        assert_eq!(cluster.link_timeout, Duration::from_millis(1500));
        assert_eq!(cluster.quorum_timeout, Duration::from_millis(50));
        assert_eq!(cluster.max_stale, Some(Duration::from_secs(60)));
    }

    #[test]
    fn tls_and_its_server_name_are_read_and_off_by_default() {
        let off = parse(&cluster_file(), Some(1)).unwrap().unwrap();
        assert!(!off.tls);
        assert_eq!(off.tls_server_name, None);
        let text = format!("{CLUSTER_TABLE}tls = true\ntls_server_name = \"members.burrow\"\n{NODES}");
        let on = parse(&text, Some(1)).unwrap().unwrap();
        assert!(on.tls);
        assert_eq!(on.tls_server_name.as_deref(), Some("members.burrow"));
    }

    #[test]
    fn no_cluster_tables_is_a_single_node() {
        assert_eq!(parse("", None), Ok(None));
    }

    #[test]
    fn every_cluster_mistake_is_refused_with_its_own_error() {
        use ClusterFileError as E;
        type Expect = fn(PathBuf) -> ClusterFileError;
        let file = cluster_file();
        let cases: Vec<(String, Option<NodeId>, Expect)> = vec![
            (CLUSTER_TABLE.to_string(), Some(1), |path| E::NoNodes { path }),
            (format!("node = []\n{CLUSTER_TABLE}"), Some(1), |path| E::NoNodes { path }),
            (NODES.to_string(), Some(1), |path| E::NodesWithoutCluster { path }),
            (file.replace("id = 3", "id = 1"), Some(1), |path| E::Members {
                path,
                problem: MembershipError::DuplicateId(1),
            }),
            (file.replace("7443", "7441"), Some(1), |path| E::Members {
                path,
                problem: MembershipError::DuplicateAddr {
                    addr: "127.0.0.1:7441".parse().unwrap(),
                    first: 1,
                    second: 3,
                },
            }),
            (file.replace("data/node3", "./data/node1/"), Some(1), |path| E::Members {
                path,
                problem: MembershipError::DuplicateDataDir {
                    dir: PathBuf::from("./data/node1/"),
                    first: 1,
                    second: 3,
                },
            }),
            (file.replace("127.0.0.2:7442", "localhost:7442"), Some(1), |path| E::NodeAddr {
                path,
                id: 2,
                addr: "localhost:7442".into(),
            }),
            (file.replace("127.0.0.2:7442", "127.0.0.2"), Some(1), |path| E::NodeAddr {
                path,
                id: 2,
                addr: "127.0.0.2".into(),
            }),
            (file.replace("127.0.0.2:7442", "127.0.0.2:0"), Some(1), |path| E::Members {
                path,
                problem: MembershipError::PortZero { id: 2, addr: "127.0.0.2:0".parse().unwrap() },
            }),
            (file.replace("id = 3", "id = 0"), Some(1), |path| E::Members {
                path,
                problem: MembershipError::IdZero,
            }),
            (file.clone(), None, |path| E::NodeIdRequired { path, nodes: vec![1, 2, 3] }),
            (file.clone(), Some(4), |path| E::NodeIdUnknown { path, id: 4, nodes: vec![1, 2, 3] }),
            (file.clone(), Some(0), |path| E::NodeIdUnknown { path, id: 0, nodes: vec![1, 2, 3] }),
            (String::new(), Some(1), |path| E::NodeIdWithoutCluster { path, id: 1 }),
            (file.replace("initial_leader = 1", "initial_leader = 5"), Some(1), |path| E::Members {
                path,
                problem: MembershipError::LeaderNotAMember { id: 5, nodes: vec![1, 2, 3] },
            }),
            (file.replace("\"async\"", "\"sync\""), Some(1), |path| E::Replication {
                path,
                got: "sync".into(),
            }),
            (file.replace("heartbeat_ms = 100", "heartbeat_ms = 0"), Some(1), |path| E::Heartbeat {
                path,
                got: 0,
            }),
            (file.replace("heartbeat_ms = 100", "heartbeat_ms = \"500us\""), Some(1), |path| E::Heartbeat {
                path,
                got: 0,
            }),
            (
                file.replace("heartbeat_ms = 100", "heartbeat_ms = 100\nlink_timeout_ms = 200"),
                Some(1),
                |path| E::LinkTimeout { path, link_timeout_ms: 200, heartbeat_ms: 100 },
            ),
            (
                file.replace("heartbeat_ms = 100", "heartbeat_ms = 100\nquorum_timeout_ms = 0"),
                Some(1),
                |path| E::QuorumTimeout { path, got: 0 },
            ),
        ];
        for (i, (text, node_id, expect)) in cases.into_iter().enumerate() {
            let err = parse(&text, node_id).unwrap_err();
            assert_eq!(err, expect(PathBuf::from(PATH)), "case {i}");
            assert!(err.to_string().contains(PATH), "case {i} names the file: {err}");
        }
    }

    #[test]
    fn cluster_errors_read_precisely() {
        let shown = |text: &str, id| parse(text, Some(id)).unwrap_err().to_string();
        assert_eq!(
            shown(&cluster_file().replace("id = 3", "id = 1"), 1),
            format!("{PATH}: node id 1 appears more than once")
        );
        assert_eq!(
            shown(&cluster_file(), 7),
            format!("--node-id 7 is not a node of {PATH} (nodes: 1, 2, 3)")
        );
        assert_eq!(
            shown(
                &cluster_file().replace("heartbeat_ms = 100", "heartbeat_ms = 100\nlink_timeout_ms = 150"),
                1
            ),
            format!("{PATH}: link_timeout_ms (150) must be greater than 2 x heartbeat_ms (100)")
        );
        assert_eq!(
            shown(&cluster_file().replace("data/node3", "data/node2"), 1),
            format!("{PATH}: nodes 2 and 3 have the same data_dir data/node2")
        );
        assert_eq!(
            shown(&cluster_file().replace("127.0.0.2:7442", "127.0.0.2:0"), 1),
            format!("{PATH}: node 2: addr \"127.0.0.2:0\" has port 0; the other nodes need a fixed port to reach it")
        );
        assert_eq!(
            shown(&cluster_file().replace("initial_leader = 1", "initial_leader = 5"), 1),
            format!("{PATH}: initial_leader = 5 is not one of the nodes (1, 2, 3)")
        );
    }

    #[test]
    fn unknown_missing_and_mistyped_keys_are_refused() {
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
            (cluster_file().replace("replication = \"async\"", ""), "missing field `replication`"),
            (cluster_file().replace("data_dir = \"data/node2\"", ""), "missing field `data_dir`"),
            (cluster_file().replace("id = 2", "id = -2"), "invalid value"),
            (
                cluster_file().replace("heartbeat_ms = 100", "heartbeat_ms = \"often\""),
                "expected a duration such as 1.5s, 200ms or 2m, or a number of milliseconds, got \"often\"",
            ),
        ];
        for (i, (text, want)) in cases.iter().enumerate() {
            let err = toml_error(text);
            assert!(err.contains(want), "case {i}: {err}");
        }
    }

    #[test]
    fn voter_false_makes_a_read_replica_and_a_cluster_keeps_a_voting_leader() {
        let with_replica =
            cluster_file().replace("data_dir = \"data/node3\"", "data_dir = \"data/node3\"\nvoter = false");
        let c = parse(&with_replica, Some(2)).unwrap().unwrap();
        assert_eq!((c.voters(), c.peers()), (vec![1, 2], vec![1]));
        assert!(!c.is_voter(3) && c.is_voter(1));
        let c = parse(&with_replica, Some(3)).unwrap().unwrap();
        assert_eq!(c.peers(), vec![1, 2], "a replica's peers are the voters");
        let leader_replica =
            cluster_file().replace("data_dir = \"data/node1\"", "data_dir = \"data/node1\"\nvoter = false");
        assert_eq!(
            parse(&leader_replica, Some(2)).unwrap_err().to_string(),
            format!("{PATH}: initial_leader = 1 has voter = false; a read replica never leads")
        );
        let none = cluster_file()
            .replace("data_dir = \"data/node", "voter = false\ndata_dir = \"data/node")
            .replace("initial_leader = 1\n", "");
        assert_eq!(
            parse(&none, Some(2)).unwrap_err().to_string(),
            format!("{PATH}: every node has voter = false; at least one must vote")
        );
    }
}
