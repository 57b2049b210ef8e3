//! Cluster membership: which nodes exist, which one this process is, and
//! how they replicate. Read from the `[cluster]` and `[[node]]` tables of
//! the config file (`--config cluster.toml --node-id N`, see `parse.rs`),
//! or built by [`ClusterConfig::new`]; either way the membership rules
//! below hold, so nothing that reads a `ClusterConfig` checks them again.

pub(crate) mod parse;

pub use parse::ClusterFileError;

use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::replication::NodeId;
use crate::server::config::{deserialize_by_from_str, from_str_by_value_enum};

/// How the leader acknowledges writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplicationMode {
    /// The leader acknowledges once it has the write (WAL written under its
    /// fsync policy); followers catch up asynchronously.
    Async,
    /// The leader acknowledges once a majority of the cluster (itself
    /// included) holds the write durably; otherwise NO_QUORUM.
    Quorum,
}

from_str_by_value_enum!(ReplicationMode);
deserialize_by_from_str!(ReplicationMode);

impl ReplicationMode {
    pub fn name(self) -> &'static str {
        match self {
            ReplicationMode::Async => "async",
            ReplicationMode::Quorum => "quorum",
        }
    }
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: NodeId,
    /// Client and replication traffic share this address.
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
}

/// A membership rule a list of nodes breaks.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum MembershipError {
    #[error("a cluster needs at least one node")]
    Empty,
    #[error("node id 0 is reserved (0 means \"no node\"); number nodes from 1")]
    IdZero,
    #[error("node id {0} appears more than once")]
    DuplicateId(NodeId),
    #[error("node {id}: addr \"{addr}\" has port 0; the other nodes need a fixed port to reach it")]
    PortZero { id: NodeId, addr: SocketAddr },
    #[error("nodes {first} and {second} have the same addr {addr}")]
    DuplicateAddr { addr: SocketAddr, first: NodeId, second: NodeId },
    #[error("nodes {first} and {second} have the same data_dir {}", .dir.display())]
    DuplicateDataDir { dir: PathBuf, first: NodeId, second: NodeId },
    #[error("initial_leader = {id} is not one of the nodes ({})", id_list(.nodes))]
    LeaderNotAMember { id: NodeId, nodes: Vec<NodeId> },
    #[error("node {id} is not one of the nodes ({})", id_list(.nodes))]
    NotAMember { id: NodeId, nodes: Vec<NodeId> },
    #[error("every node has voter = false; at least one must vote")]
    NoVoter,
    #[error("initial_leader = {0} has voter = false; a read replica never leads")]
    LeaderNotAVoter(NodeId),
}

/// `1, 2, 3`, for error messages.
pub(crate) fn id_list(ids: &[NodeId]) -> String {
    ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
}

/// The cluster as this node sees it.
///
/// Membership is private and checked by [`ClusterConfig::new`], the only
/// way to build one: at least one node; ids non-zero and unique; addrs
/// (each with a non-zero port) and data_dirs unique; this node and the
/// initial leader are members. The timings are plain settings; the file
/// parser checks them (heartbeat ≥ 1 ms, `link_timeout` > 2 × heartbeat,
/// `quorum_timeout` ≥ 1 ms) and the replication state machines check the
/// tick counts made from them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Every member, this one included, in file order.
    nodes: Vec<NodeInfo>,
    /// This process's node (a copy of its entry in `nodes`).
    me: NodeInfo,
    /// The node that campaigns at once on start, so a fresh cluster has its
    /// leader without waiting out an election timeout (`None`: the first
    /// timeout elects one).
    leader: Option<NodeInfo>,
    pub mode: ReplicationMode,
    /// Leader → follower heartbeat interval when idle.
    pub heartbeat: Duration,
    /// No message from the leader for this long: the follower marks its
    /// link down and reconnects (and the leader, no ack for this long, marks
    /// the follower down).
    pub link_timeout: Duration,
    /// Quorum mode: how long a write waits for a majority before NO_QUORUM.
    pub quorum_timeout: Duration,
    /// Followers refuse reads (STALE) once their leader link has been down
    /// longer than this; `None` serves possibly stale reads always.
    pub max_stale: Option<Duration>,
    /// A follower that hears from no leader for a random time in this range
    /// starts an election; a leader that hears from no majority for its
    /// start steps down.
    pub election_timeout: std::ops::Range<Duration>,
    /// The cluster secret every member proves it holds before a link
    /// opens (protocol.md §12.7); `None`: links are not authenticated,
    /// only checked against the membership.
    pub secret: Option<burrow_proto::Secret>,
    /// `[cluster] tls`: members dial each other with TLS, verify each
    /// other's certificates against `--tls-ca-file` and present their own;
    /// a link opener must arrive with a verified client certificate.
    pub tls: bool,
    /// The name members' certificates are checked against; `None`: the
    /// host of each member's `addr`.
    pub tls_server_name: Option<String>,
    /// Members that are read replicas (`voter = false`): they receive the
    /// stream but never vote, campaign or count toward a majority or WAIT.
    non_voters: Vec<NodeId>,
}

/// `heartbeat_ms` of `cluster.toml`, for clusters built in code.
pub(super) const DEFAULT_HEARTBEAT: Duration = Duration::from_millis(100);
/// The default `quorum_timeout_ms`.
pub(super) const DEFAULT_QUORUM_TIMEOUT: Duration = Duration::from_millis(1000);
/// The default `election_timeout_ms`: well above the default heartbeat, low
/// enough for a failover within half a second.
pub(super) const DEFAULT_ELECTION_TIMEOUT: std::ops::Range<Duration> =
    Duration::from_millis(250)..Duration::from_millis(500);

impl ClusterConfig {
    /// The cluster of `nodes`, led at first by `initial_leader`, as node
    /// `node_id` sees it; refused unless the membership rules hold. Async
    /// replication and the file's default timings (heartbeat 100 ms, link
    /// timeout 10 × that, quorum timeout 1 s, reads never stale); set the
    /// public fields to change them.
    pub fn new(
        nodes: Vec<NodeInfo>,
        initial_leader: impl Into<Option<NodeId>>,
        node_id: NodeId,
    ) -> Result<ClusterConfig, MembershipError> {
        let leader = check_members(&nodes, initial_leader.into())?.cloned();
        let me = member(&nodes, node_id)?.clone();
        Ok(ClusterConfig {
            nodes,
            me,
            leader,
            mode: ReplicationMode::Async,
            heartbeat: DEFAULT_HEARTBEAT,
            link_timeout: DEFAULT_HEARTBEAT * 10,
            quorum_timeout: DEFAULT_QUORUM_TIMEOUT,
            max_stale: None,
            election_timeout: DEFAULT_ELECTION_TIMEOUT,
            secret: None,
            tls: false,
            tls_server_name: None,
            non_voters: Vec::new(),
        })
    }

    /// The same cluster (and timings) as node `id` sees it.
    pub fn as_node(&self, id: NodeId) -> Result<ClusterConfig, MembershipError> {
        Ok(ClusterConfig { me: member(&self.nodes, id)?.clone(), ..self.clone() })
    }

    /// This process's node id.
    pub fn node_id(&self) -> NodeId {
        self.me.id
    }

    /// This process's own entry.
    pub fn me(&self) -> &NodeInfo {
        &self.me
    }

    /// The node that campaigns at once on start, if the file names one.
    pub fn initial_leader(&self) -> Option<&NodeInfo> {
        self.leader.as_ref()
    }

    /// This node campaigns at once on start.
    pub fn is_initial_leader(&self) -> bool {
        self.leader.as_ref().is_some_and(|l| l.id == self.me.id)
    }

    /// Every member, this one included, in file order.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The other voting members' ids (the leader's voters).
    pub fn peers(&self) -> Vec<NodeId> {
        self.voters().into_iter().filter(|&id| id != self.me.id).collect()
    }

    /// Every voting member's id, this one's included if it votes.
    pub fn voters(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).filter(|id| self.is_voter(*id)).collect()
    }

    /// Whether member `id` votes (a read replica does not).
    pub fn is_voter(&self, id: NodeId) -> bool {
        !self.non_voters.contains(&id)
    }

    /// Makes `ids` read replicas; refused if one is no member, if no voter
    /// would be left, or if one is the initial leader.
    pub fn set_non_voters(&mut self, ids: Vec<NodeId>) -> Result<(), MembershipError> {
        for &id in &ids {
            member(&self.nodes, id)?;
            if self.leader.as_ref().is_some_and(|l| l.id == id) {
                return Err(MembershipError::LeaderNotAVoter(id));
            }
        }
        if self.nodes.iter().all(|n| ids.contains(&n.id)) {
            return Err(MembershipError::NoVoter);
        }
        self.non_voters = ids;
        Ok(())
    }
}

/// Checks every membership rule but "this node is a member", node by node
/// in order (so the first mistake in the file is the one reported);
/// returns the initial leader's entry, if one is named.
pub(crate) fn check_members(
    nodes: &[NodeInfo],
    initial_leader: Option<NodeId>,
) -> Result<Option<&NodeInfo>, MembershipError> {
    if nodes.is_empty() {
        return Err(MembershipError::Empty);
    }
    for (i, n) in nodes.iter().enumerate() {
        let before = &nodes[..i];
        if n.id == 0 {
            return Err(MembershipError::IdZero);
        }
        if before.iter().any(|m| m.id == n.id) {
            return Err(MembershipError::DuplicateId(n.id));
        }
        if n.addr.port() == 0 {
            // The other members dial this address: it needs a real port.
            return Err(MembershipError::PortZero { id: n.id, addr: n.addr });
        }
        if let Some(m) = before.iter().find(|m| m.addr == n.addr) {
            return Err(MembershipError::DuplicateAddr { addr: n.addr, first: m.id, second: n.id });
        }
        if let Some(m) = before.iter().find(|m| same_dir(&m.data_dir, &n.data_dir)) {
            return Err(MembershipError::DuplicateDataDir {
                dir: n.data_dir.clone(),
                first: m.id,
                second: n.id,
            });
        }
    }
    let Some(id) = initial_leader else { return Ok(None) };
    let found = nodes.iter().find(|n| n.id == id);
    found
        .ok_or_else(|| MembershipError::LeaderNotAMember { id, nodes: nodes.iter().map(|n| n.id).collect() })
        .map(Some)
}

fn member(nodes: &[NodeInfo], id: NodeId) -> Result<&NodeInfo, MembershipError> {
    nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| MembershipError::NotAMember { id, nodes: nodes.iter().map(|n| n.id).collect() })
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

    fn node(id: NodeId, addr: &str, dir: &str) -> NodeInfo {
        NodeInfo { id, addr: addr.parse().unwrap(), data_dir: PathBuf::from(dir) }
    }

    fn three() -> Vec<NodeInfo> {
        vec![
            node(1, "127.0.0.1:7441", "data/node1"),
            node(2, "127.0.0.2:7442", "data/node2"),
            node(3, "127.0.0.1:7443", "data/node3"),
        ]
    }

    #[test]
    fn a_member_sees_itself_the_leader_and_its_peers() {
        let c = ClusterConfig::new(three(), 1, 2).unwrap();
        assert_eq!(c.node_id(), 2);
        assert_eq!(c.me(), &node(2, "127.0.0.2:7442", "data/node2"));
        assert_eq!(c.initial_leader().unwrap().id, 1);
        assert!(!c.is_initial_leader());
        assert_eq!(c.peers(), vec![1, 3]);
        assert_eq!(c.nodes().len(), 3);
        assert_eq!(c.node(3).map(|n| n.addr.port()), Some(7443));
        assert_eq!(c.node(4), None);
        let leader = c.as_node(1).unwrap();
        assert!(leader.is_initial_leader());
        assert_eq!(leader.peers(), vec![2, 3]);
        assert_eq!(c.as_node(9), Err(MembershipError::NotAMember { id: 9, nodes: vec![1, 2, 3] }));
    }

    #[test]
    fn every_membership_rule_is_enforced_by_the_constructor() {
        let edit = |f: fn(&mut Vec<NodeInfo>)| {
            let mut n = three();
            f(&mut n);
            n
        };
        let cases: Vec<(Vec<NodeInfo>, NodeId, NodeId, MembershipError)> = vec![
            (vec![], 1, 1, MembershipError::Empty),
            (edit(|n| n[2].id = 0), 1, 1, MembershipError::IdZero),
            (edit(|n| n[2].id = 1), 1, 1, MembershipError::DuplicateId(1)),
            (
                edit(|n| n[1].addr.set_port(0)),
                1,
                1,
                MembershipError::PortZero { id: 2, addr: "127.0.0.2:0".parse().unwrap() },
            ),
            (
                edit(|n| n[2].addr = n[0].addr),
                1,
                1,
                MembershipError::DuplicateAddr {
                    addr: "127.0.0.1:7441".parse().unwrap(),
                    first: 1,
                    second: 3,
                },
            ),
            (
                edit(|n| n[2].data_dir = PathBuf::from("./data/node1/")),
                1,
                1,
                MembershipError::DuplicateDataDir {
                    dir: PathBuf::from("./data/node1/"),
                    first: 1,
                    second: 3,
                },
            ),
            (three(), 5, 1, MembershipError::LeaderNotAMember { id: 5, nodes: vec![1, 2, 3] }),
            (three(), 1, 0, MembershipError::NotAMember { id: 0, nodes: vec![1, 2, 3] }),
        ];
        for (i, (nodes, leader, me, want)) in cases.into_iter().enumerate() {
            assert_eq!(ClusterConfig::new(nodes, leader, me), Err(want), "case {i}");
        }
    }
}
