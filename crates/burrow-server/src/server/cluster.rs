//! Cluster membership: which nodes exist, which one this process is, and
//! how they replicate. Read from the `[cluster]` and `[[node]]` tables of
//! the config file (`--config cluster.toml --node-id N`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::replication::NodeId;

/// How the leader acknowledges writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicationMode {
    /// The leader acknowledges once it has the write (WAL written under its
    /// fsync policy); followers catch up asynchronously.
    Async,
    /// The leader acknowledges once a majority of the cluster (itself
    /// included) holds the write durably; otherwise NO_QUORUM.
    Quorum,
}

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

/// The cluster as this node sees it.
///
/// Built from a config file by `ServerArgs::resolve`, which guarantees: at
/// least one node; ids non-zero and unique; addrs (with a non-zero port) and
/// data_dirs unique; `node_id` and `initial_leader` are members; heartbeat
/// ≥ 1 ms; `link_timeout` > 2 × `heartbeat`; `quorum_timeout` ≥ 1 ms;
/// `max_stale` is `None` or non-zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This process's node.
    pub node_id: NodeId,
    /// The node that starts as leader (every other node follows it).
    pub initial_leader: NodeId,
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
    /// Every member, this one included, in file order.
    pub nodes: Vec<NodeInfo>,
}

impl ClusterConfig {
    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// This process's own entry.
    pub fn me(&self) -> &NodeInfo {
        self.node(self.node_id).expect("validated: --node-id names a member")
    }

    pub fn is_initial_leader(&self) -> bool {
        self.node_id == self.initial_leader
    }

    /// The other members' ids (the leader's voters).
    pub fn peers(&self) -> Vec<NodeId> {
        self.nodes.iter().map(|n| n.id).filter(|&id| id != self.node_id).collect()
    }
}
