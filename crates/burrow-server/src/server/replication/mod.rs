//! The server's side of replication: the thin async shell around the pure
//! state machines in [`crate::replication`]. One [`Replication`] per
//! server says which role this node plays and answers the questions
//! connections ask (may I write? may I read? WAIT, quorum), while
//! background tasks carry the state machines' outputs to sockets, the
//! store and the WAL (`leader.rs`, `follower.rs`).
//!
//! Roles are fixed by the cluster file for now: `initial_leader` leads and
//! every other node follows it. The leader takes a new term at each start
//! (persisted in the node file first) and logs a NOOP of it, so its log is
//! told apart from records it streamed and lost in a crash.

mod activity;
mod follower;
mod incoming;
mod leader;
mod link_end;
mod refusal;

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
use crate::persist::{read_node_meta, write_node_meta_with, NodeMeta, PersistError};
use crate::replication::wire::{self, WireError};
use crate::replication::{HistoryId, Message};
use crate::store::Store;
use burrow_proto::{Codec, CodecError, ErrorChain, Frame, FrameRef, Status};

use link_end::{End, LinkEnd};
use refusal::not_leader;

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

/// Replication state shared by every connection.
#[derive(Debug)]
pub(crate) enum Replication {
    Standalone,
    Leader(Arc<LeaderSide>),
    Follower(Arc<FollowerSide>),
}

/// A follower's replication handshake, decoded: the first frame of its
/// link. Only [`Replication::accepts_link`] makes one.
#[derive(Debug)]
pub(crate) struct Handshake(Message);

impl Handshake {
    /// The handshake message, for the leader's state machine.
    pub(crate) fn into_message(self) -> Message {
        self.0
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
    /// Decides this node's role from the cluster config and, with
    /// persistence on, the history its data directory holds (the leader
    /// starts a new one if there is none, and otherwise continues it under
    /// a new term, opened by a NOOP).
    pub(crate) fn open(
        config: &Config,
        store: &Arc<Store>,
        persist: Option<&Arc<Persistence>>,
    ) -> Result<Replication, PersistError> {
        let Some(cluster) = config.cluster.as_ref() else { return Ok(Replication::Standalone) };
        let meta = match persist {
            Some(p) => read_node_meta(&p.cfg.dir)?,
            None => None,
        };
        if cluster.is_initial_leader() {
            let log_term = store.log().stats().term;
            let meta = match meta {
                Some(m) if m.history_id != 0 => {
                    // The history goes on, under a new term: a crash may
                    // have lost records this leader had already streamed
                    // (not yet in its WAL), and its new records at those
                    // indexes must not pass for them. Followers holding
                    // them are told apart by term and resynced; the others
                    // resume by partial resync.
                    let term = m.term.max(log_term) + 1;
                    if m.clean {
                        info!(term, "continuing the replication history after a clean shutdown");
                    } else {
                        warn!(
                            term,
                            "the last shutdown was not clean: continuing the replication history under \
                             a new term (followers holding records this node lost resync in full)"
                        );
                    }
                    NodeMeta { term, ..m }
                }
                _ => {
                    let m = NodeMeta { history_id: new_history_id(), term: log_term.max(1), clean: false };
                    info!(
                        history_id = format_args!("{:016x}", m.history_id),
                        "starting a new replication history"
                    );
                    m
                }
            };
            if let Some(p) = persist {
                // The term is on disk before any record of it is written.
                // Unclean until a clean shutdown says otherwise.
                write_node_meta_with(p.fs().as_ref(), &p.cfg.dir, NodeMeta { clean: false, ..meta })?;
            }
            // Built first, so its backlog knows the term of the last
            // record before the NOOP (followers ending there resume).
            let side = LeaderSide::new(
                cluster,
                meta,
                store.clone(),
                persist.cloned(),
                &config.limits(),
                config.backlog_bytes,
            );
            if meta.term > log_term {
                // The term's first record, so the records before it commit
                // (§5.4.2). The streamer's first tick picks it up.
                store.append_noop(meta.term);
            }
            Ok(Replication::Leader(side))
        } else {
            store.set_replica(true);
            // With no node file the data belongs to no known history: the
            // leader will send a full resync.
            let meta = meta.unwrap_or(NodeMeta { history_id: 0, term: 0, clean: false });
            Ok(Replication::Follower(FollowerSide::new(cluster, meta)))
        }
    }

    pub(crate) fn role(&self) -> Role {
        match self {
            Replication::Standalone => Role::Standalone,
            Replication::Leader(_) => Role::Leader,
            Replication::Follower(_) => Role::Follower,
        }
    }

    /// Starts the background tasks of this node's role.
    pub(crate) fn start(&self, shared: &Arc<Shared>, cancel: &CancellationToken, tracker: &TaskTracker) {
        match self {
            Replication::Standalone => {}
            Replication::Leader(l) => {
                tracker.spawn(leader::run(l.clone(), cancel.clone()));
            }
            Replication::Follower(f) => {
                tracker.spawn(follower::run(f.clone(), shared.clone(), cancel.clone()));
            }
        }
    }

    /// Why this node refuses a write (or WAIT), if it does: a follower
    /// answers NOT_LEADER with the leader's client address (see
    /// [`not_leader`]).
    #[inline]
    pub(crate) fn refuse_write(&self) -> Option<(Status, String)> {
        match self {
            Replication::Follower(f) => Some(not_leader(Some(f.leader_addr()))),
            _ => None,
        }
    }

    /// Why this node refuses a read, if it does: a follower loading a full
    /// resync (LOADING), or one whose leader link has been down longer than
    /// `max_stale_ms` (STALE).
    #[inline]
    pub(crate) fn refuse_read(&self) -> Option<(Status, String)> {
        match self {
            Replication::Follower(f) => f.refuse_read(),
            _ => None,
        }
    }

    /// The connection executed writes: wake the leader's streamer.
    #[inline]
    pub(crate) fn appended(&self) {
        if let Replication::Leader(l) = self {
            l.appended();
        }
    }

    /// How many followers hold `index` durably (WAIT's answer).
    pub(crate) fn acked_count(&self, index: u64) -> usize {
        match self {
            Replication::Leader(l) => l.acked_count(index),
            _ => 0,
        }
    }

    /// Completes once `replicas` followers hold `index` durably; never, if
    /// that many cannot (the caller bounds it with WAIT's timeout).
    pub(crate) async fn wait_acked(&self, index: u64, replicas: usize) {
        match self {
            Replication::Leader(l) => l.wait_acked(index, replicas).await,
            _ if replicas == 0 => {}
            _ => std::future::pending().await,
        }
    }

    /// Quorum mode: the commit index to wait for and how long a write may wait.
    pub(crate) fn quorum(&self) -> Option<(tokio::sync::watch::Receiver<u64>, Duration)> {
        match self {
            Replication::Leader(l) if l.mode() == ReplicationMode::Quorum => Some(l.commit_watch()),
            _ => None,
        }
    }

    /// Whether `frame` opens a replication link: the one place a connection
    /// asks. `Some` for a HANDSHAKE sent to a leader (`Err`: malformed; the
    /// connection answers BAD_REQUEST and carries on); `None` for any other
    /// frame, and on other roles, where HANDSHAKE is an unknown opcode.
    #[inline]
    pub(crate) fn accepts_link(&self, frame: &FrameRef<'_>) -> Option<Result<Handshake, WireError>> {
        if frame.opcode != wire::OP_HANDSHAKE || !matches!(self, Replication::Leader(_)) {
            return None;
        }
        Some(wire::decode(frame).map(Handshake))
    }

    /// Serves a replication link a connection turned into (see
    /// [`accepts_link`](Self::accepts_link)): its IO and the bytes it read
    /// after the handshake.
    pub(crate) async fn serve_link<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        link: FramedParts<S, Codec>,
        peer: SocketAddr,
        hello: Handshake,
        cancel: &CancellationToken,
    ) {
        if let Replication::Leader(l) = self {
            leader::serve_link(l.clone(), link, peer, hello.into_message(), cancel.clone()).await;
        }
    }

    /// After a clean shutdown (final snapshot written, WAL closed): a
    /// leader records it in its node file (reported at the next start).
    /// Writes a file: call it from a blocking thread.
    pub(crate) fn mark_clean_shutdown(&self, persist: &Persistence) {
        if let Replication::Leader(l) = self {
            let meta = NodeMeta { clean: true, ..l.meta() };
            match write_node_meta_with(persist.fs().as_ref(), &persist.cfg.dir, meta) {
                Ok(()) => info!("clean shutdown recorded"),
                Err(e) => warn!(error = %ErrorChain(&e), "cannot record the clean shutdown"),
            }
        }
    }

    /// The leader's replication backlog: (records, bytes); zeros elsewhere.
    pub(crate) fn backlog(&self) -> (usize, usize) {
        match self {
            Replication::Leader(l) => l.backlog(),
            _ => (0, 0),
        }
    }

    /// The INFO `replication` section's lines.
    pub(crate) fn info(&self, out: &mut String) {
        match self {
            Replication::Standalone => out.push_str("role:standalone\n"),
            Replication::Leader(l) => l.info(out),
            Replication::Follower(f) => f.info(out),
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
