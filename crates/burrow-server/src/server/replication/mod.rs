//! The server's side of replication: the thin async shell around the pure
//! state machines in [`crate::replication`]. One [`Replication`] per
//! server says which role this node plays and answers the questions
//! connections ask (may I write? may I read? WAIT, quorum), while
//! background tasks carry the state machines' outputs to sockets, the
//! store and the WAL (`leader.rs`, `follower.rs`).
//!
//! Roles change at run time: the election driver (`elections.rs`) decides
//! who leads which term and [`roles::Node`] switches this node's side —
//! stopping the old side's tasks before starting the new one's, so a
//! store is never written by two. Connections read the role once per
//! request through an atomic (`refuse_write`, `refuse_read`, `appended`
//! cost what they did with fixed roles) and re-read the rest once per
//! batch when [`Replication::generation`] moved.

mod activity;
mod elections;
mod follower;
mod incoming;
mod leader;
mod link_end;
mod member_link;
mod peer_refusals;
mod peers;
mod refusal;
mod roles;
mod vote_file;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::FramedParts;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::cluster::ReplicationMode;
use super::{Config, Persistence, Shared};
use crate::persist::{write_node_meta_with, FileSystem, NodeMeta, PersistError};
use crate::replication::member_auth::{self, MemberAuth, MemberAuthWireError};
use crate::replication::vote_wire::{self, PeerMessage, PeerWireError};
use crate::replication::wire::{self, WireError};
use crate::replication::{HistoryId, Message, NodeId};
use crate::store::Store;
use burrow_proto::{ClusterView, Codec, CodecError, ErrorChain, Frame, FrameRef, MemberRole, Status};

use link_end::{End, LinkEnd};
use peer_refusals::PeerRefusal;
use roles::Node;

pub(super) use follower::FollowerSide;
pub(super) use leader::LeaderSide;

/// Which part this node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// No cluster configured.
    Standalone,
    Leader,
    Follower,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// Replication state shared by every connection: nothing for a standalone
/// server, else this cluster member's [`Node`].
#[derive(Debug)]
pub(crate) struct Replication {
    node: Option<Arc<Node>>,
}

/// What opens a replication link: the first frame of a connection that
/// stops being a client connection. Only [`Replication::accepts_link`]
/// makes one.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// A follower's HANDSHAKE, sent to this node while it leads.
    Follower(Message),
    /// Another member's PEER_HELLO: election traffic follows.
    Peer { cluster_id: u64, node_id: NodeId },
    /// MEMBER_HELLO: member authentication, then HANDSHAKE or PEER_HELLO
    /// (protocol.md §12.7).
    Member { cluster_id: u64, node_id: NodeId, nonce: burrow_proto::Nonce },
}

/// A malformed link-opening frame (answered BAD_REQUEST).
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkOpenError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Peer(#[from] PeerWireError),
    #[error(transparent)]
    Member(#[from] MemberAuthWireError),
}

/// Quorum mode on a leader: what a held reply waits for.
#[derive(Debug, Clone)]
pub(crate) struct QuorumWatch {
    /// The leader's commit index.
    pub commit: tokio::sync::watch::Receiver<u64>,
    /// How long a write may wait for a majority.
    pub limit: Duration,
    /// Cancelled when this leadership ends: held reads then answer
    /// NOT_LEADER / NO_LEADER instead of waiting out `limit` (held writes
    /// look at [`ReadConfirm::ended`] instead, woken through `commit`).
    pub deposed: CancellationToken,
    /// Confirms this leadership for linearizable reads (ReadIndex).
    pub reads: ReadConfirm,
}

/// The leader's read confirmation, as a connection holds it.
#[derive(Debug, Clone)]
pub(crate) struct ReadConfirm(Arc<LeaderSide>);

impl ReadConfirm {
    /// Resolves once a majority confirmed this leadership after the call
    /// (`LeaderSide::confirm_reads`); fails if the leadership ends first.
    pub(crate) fn confirm(&self) -> tokio::sync::oneshot::Receiver<()> {
        self.0.confirm_reads()
    }

    /// This leadership ended; `commit` changed when it did, so a
    /// `commit.wait_for` whose condition includes this wakes for it.
    #[inline]
    pub(crate) fn ended(&self) -> bool {
        self.0.has_ended()
    }
}

/// Length of one state-machine tick: a fifth of the heartbeat interval,
/// within 5–100 ms, so heartbeats and timeouts are honoured to ~20 %.
fn tick_for(heartbeat: Duration) -> Duration {
    (heartbeat / 5).clamp(Duration::from_millis(5), Duration::from_millis(100))
}

/// `d` in whole ticks, at least `min`.
fn ticks(d: Duration, tick: Duration, min: u64) -> u64 {
    ((d.as_micros() / tick.as_micros().max(1)) as u64).max(min)
}

/// A fresh history id: wall clock and process id mixed, never 0 (0 means
/// "no history" for a follower that has none yet).
fn new_history_id() -> HistoryId {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mut rng = crate::rng::SplitMix64::new(nanos ^ (u64::from(std::process::id()) << 32));
    rng.next_u64().max(1)
}

impl Replication {
    /// A cluster member starts as a follower of no one, with the term and
    /// vote its data directory holds (a damaged vote file stops the start;
    /// with persistence off too, see `vote_file.rs`: `dir_lock` is then
    /// the directory's lock);
    /// the election driver, started by [`start`](Self::start), finds or
    /// becomes the leader.
    pub(crate) fn open(
        config: &Config,
        store: &Arc<Store>,
        persist: Option<&Arc<Persistence>>,
        fs: Arc<dyn FileSystem>,
        dir_lock: Option<std::fs::File>,
    ) -> Result<Replication, PersistError> {
        let Some(cluster) = config.cluster.as_ref() else { return Ok(Replication { node: None }) };
        let node = Node::open(cluster, config, store, persist, fs, dir_lock)?;
        Ok(Replication { node: Some(node) })
    }

    pub(crate) fn role(&self) -> Role {
        match &self.node {
            None => Role::Standalone,
            Some(n) if n.is_leader() => Role::Leader,
            Some(_) => Role::Follower,
        }
    }

    /// Bumped at every role switch: a connection re-reads what it caches
    /// (quorum watch, read gating) when this moved.
    #[inline]
    pub(crate) fn generation(&self) -> u64 {
        self.node.as_ref().map_or(0, |n| n.generation())
    }

    /// Starts the election driver, the peer links and the first role's tasks.
    pub(crate) fn start(&self, shared: &Arc<Shared>, cancel: &CancellationToken, tracker: &TaskTracker) {
        if let Some(n) = &self.node {
            n.start(shared, cancel, tracker);
        }
    }

    /// Why this node refuses a write (or WAIT), if it does: NOT_LEADER
    /// naming the leader it follows, NO_LEADER while it knows none.
    #[inline]
    pub(crate) fn refuse_write(&self) -> Option<(Status, String)> {
        match &self.node {
            Some(n) if !n.is_leader() => Some(n.not_leader()),
            _ => None,
        }
    }

    /// Why this node refuses a read, if it does: a follower loading a full
    /// resync (LOADING), or one whose leader link has been down longer than
    /// `max_stale_ms` (STALE).
    #[inline]
    pub(crate) fn refuse_read(&self) -> Option<(Status, String)> {
        match &self.node {
            Some(n) if !n.is_leader() => n.refuse_read(),
            _ => None,
        }
    }

    /// The connection executed writes: wake the leader's streamer.
    #[inline]
    pub(crate) fn appended(&self) {
        if let Some(n) = &self.node {
            n.appended();
        }
    }

    /// How many followers hold `index` durably (WAIT's answer).
    pub(crate) fn acked_count(&self, index: u64) -> usize {
        match self.node.as_ref().and_then(|n| n.leader()) {
            Some((l, _)) => l.acked_count(index),
            None => 0,
        }
    }

    /// Completes once `replicas` followers hold `index` durably, or this
    /// node stops leading; never, if that many cannot (the caller bounds
    /// it with WAIT's timeout).
    pub(crate) async fn wait_acked(&self, index: u64, replicas: usize) {
        match self.node.as_ref().and_then(|n| n.leader()) {
            Some((l, deposed)) => {
                tokio::select! {
                    _ = l.wait_acked(index, replicas) => {}
                    _ = deposed.cancelled() => {}
                }
            }
            None if replicas == 0 || self.node.is_some() => {}
            None => std::future::pending().await,
        }
    }

    /// Quorum mode on a leader: what held replies wait for.
    pub(crate) fn quorum(&self) -> Option<QuorumWatch> {
        let (l, deposed) = self.node.as_ref()?.leader()?;
        (l.mode() == ReplicationMode::Quorum).then(|| {
            let (commit, limit) = l.commit_watch();
            QuorumWatch { commit, limit, deposed, reads: ReadConfirm(l) }
        })
    }

    /// Makes this member the leader of `term` at once, without an election
    /// and without starting the leader's tasks (connection tests).
    #[cfg(test)]
    pub(crate) fn lead_without_tasks(&self, term: u64) {
        if let Some(n) = &self.node {
            n.lead_without_tasks(term);
        }
    }

    /// A cluster member in quorum mode (the mode is fixed for the process's
    /// life; only the role changes).
    pub(crate) fn quorum_mode(&self) -> bool {
        self.node.as_ref().is_some_and(|n| n.cluster.mode == ReplicationMode::Quorum)
    }

    /// Ends a leadership begun by `lead_without_tasks` as a switch does
    /// (writes refused, the leadership's end signalled), without starting
    /// a follower (connection tests).
    #[cfg(test)]
    pub(crate) fn step_down_without_tasks(&self) {
        if let Some(n) = &self.node {
            n.step_down_without_tasks();
        }
    }

    /// A quorum-mode cluster member that does not lead now.
    pub(crate) fn is_quorum_follower(&self) -> bool {
        self.node.as_ref().is_some_and(|n| !n.is_leader() && n.cluster.mode == ReplicationMode::Quorum)
    }

    /// Whether `frame` opens a replication link: the one place a connection
    /// asks. `Some` for a HANDSHAKE sent to a leader, or a PEER_HELLO sent
    /// to any cluster member (`Err`: malformed; the connection answers
    /// BAD_REQUEST and carries on); `None` for any other frame, and on a
    /// standalone server, where both are unknown opcodes.
    #[inline]
    pub(crate) fn accepts_link(&self, frame: &FrameRef<'_>) -> Option<Result<Handshake, LinkOpenError>> {
        let node = self.node.as_ref()?;
        match frame.opcode {
            wire::OP_HANDSHAKE if node.is_leader() => {
                Some(wire::decode(frame).map(Handshake::Follower).map_err(LinkOpenError::from))
            }
            vote_wire::OP_PEER_HELLO => Some(match vote_wire::decode(frame) {
                Ok(PeerMessage::Hello { cluster_id, node_id }) => Ok(Handshake::Peer { cluster_id, node_id }),
                Ok(_) => Err(PeerWireError::UnknownOpcode(frame.opcode).into()),
                Err(e) => Err(e.into()),
            }),
            member_auth::OP_MEMBER_HELLO => Some(match member_auth::decode(frame) {
                Ok(MemberAuth::Hello { cluster_id, node_id, nonce }) => {
                    Ok(Handshake::Member { cluster_id, node_id, nonce })
                }
                Ok(_) => Err(MemberAuthWireError::UnknownOpcode(frame.opcode).into()),
                Err(e) => Err(e.into()),
            }),
            _ => None,
        }
    }

    /// Serves a replication link a connection turned into (see
    /// [`accepts_link`](Self::accepts_link)): its IO and the bytes it read
    /// after the handshake. `client_certificate`: it came over TLS with a
    /// verified client certificate, which `[cluster] tls` requires.
    pub(crate) async fn serve_link<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        link: FramedParts<S, Codec>,
        peer: SocketAddr,
        hello: Handshake,
        client_certificate: bool,
        cancel: &CancellationToken,
    ) {
        let Some(node) = &self.node else { return };
        let refusals = &node.elections.refusals;
        if node.cluster.tls && !client_certificate {
            // Refused as an unknown member is: closed, nothing sent.
            let (node_id, what) = match &hello {
                Handshake::Follower(Message::Handshake { node_id, .. }) => (*node_id, "HANDSHAKE"),
                Handshake::Peer { node_id, .. } => (*node_id, "PEER_HELLO"),
                Handshake::Member { node_id, .. } => (*node_id, "MEMBER_HELLO"),
                Handshake::Follower(_) => (0, "HANDSHAKE"),
            };
            return refusals.log_once(node_id, PeerRefusal::NoClientCertificate, Some(peer), what);
        }
        let (hello, link) = match hello {
            Handshake::Member { cluster_id, node_id, nonce } => {
                match member_link::accept(node, link, peer, cluster_id, node_id, nonce).await {
                    Some(authenticated) => authenticated,
                    None => return,
                }
            }
            // With a secret, nothing opens without member authentication
            // (protocol.md §12.7).
            Handshake::Follower(Message::Handshake { node_id, .. }) | Handshake::Peer { node_id, .. }
                if node.cluster.secret.is_some() =>
            {
                let what = if matches!(hello, Handshake::Follower(_)) { "HANDSHAKE" } else { "PEER_HELLO" };
                return refusals.log_once(node_id, PeerRefusal::Unauthenticated, Some(peer), what);
            }
            other => (other, link),
        };
        match hello {
            Handshake::Follower(msg) => {
                let Message::Handshake { node_id, .. } = msg else { return };
                // Only another member is followed: an unknown id, 0 or
                // this node's own never reaches the follower table.
                if node_id == node.cluster.node_id() || node.cluster.node(node_id).is_none() {
                    return refusals.log_once(node_id, PeerRefusal::FollowerNotMember, Some(peer), "");
                }
                // Leadership may have ended since the handshake was read:
                // then the link just closes and the follower dials again.
                if let Some((l, deposed)) = node.leader() {
                    leader::serve_link(l, link, peer, msg, deposed).await;
                }
            }
            Handshake::Peer { cluster_id, node_id } => {
                node.serve_peer(link, peer, cluster_id, node_id, cancel).await
            }
            Handshake::Member { .. } => {}
        }
    }

    /// After a clean shutdown (final snapshot written, WAL closed): a
    /// leader records it in its node file (reported at the next start).
    /// Writes a file: call it from a blocking thread.
    pub(crate) fn mark_clean_shutdown(&self, persist: &Persistence) {
        if let Some((l, _)) = self.node.as_ref().and_then(|n| n.leader()) {
            let meta = NodeMeta { clean: true, ..l.meta() };
            match write_node_meta_with(persist.fs().as_ref(), &persist.cfg.dir, meta) {
                Ok(()) => info!("clean shutdown recorded"),
                Err(e) => warn!(error = %ErrorChain(&e), "cannot record the clean shutdown"),
            }
        }
    }

    /// The leader's replication backlog: (records, bytes); zeros elsewhere.
    pub(crate) fn backlog(&self) -> (usize, usize) {
        match self.node.as_ref().and_then(|n| n.leader()) {
            Some((l, _)) => l.backlog(),
            None => (0, 0),
        }
    }

    /// CLUSTER's answer (protocol.md §8.11). A standalone server shows
    /// itself alone: node 0, no members, its log's term and last index.
    pub(crate) fn cluster_view(&self, store: &Store) -> ClusterView {
        match &self.node {
            Some(n) => n.cluster_view(),
            None => {
                let log = store.log().stats();
                ClusterView {
                    node_id: 0,
                    role: MemberRole::Standalone,
                    term: log.term,
                    leader_id: 0,
                    commit_index: log.last_index,
                    members: Vec::new(),
                }
            }
        }
    }

    /// The INFO `replication` section's lines.
    pub(crate) fn info(&self, out: &mut String) {
        match &self.node {
            None => out.push_str("role:standalone\n"),
            Some(n) => n.info(out),
        }
    }
}

/// Seconds since `t`, for INFO.
fn secs_since(t: Option<std::time::Instant>) -> String {
    match t {
        Some(t) => format!("{:.3}", t.elapsed().as_secs_f64()),
        None => "-1".into(),
    }
}

/// The next frame of a replication link whose other end is `peer`.
/// Cancel-safe (partial input stays in the `Framed` buffer). The peer
/// closing, also inside a frame, ends the link as [`LinkEnd::Closed`].
async fn next_frame<L>(link: &mut L, peer: End) -> Result<Frame, LinkEnd>
where
    L: Stream<Item = Result<Frame, CodecError>> + Unpin,
{
    match link.next().await {
        None | Some(Err(CodecError::Truncated { .. })) => Err(LinkEnd::Closed { by: peer }),
        Some(Ok(frame)) => Ok(frame),
        Some(Err(e)) => Err(LinkEnd::read(e)),
    }
}
