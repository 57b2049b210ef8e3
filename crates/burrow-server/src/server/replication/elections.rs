//! The election driver: one task owning the [`Election`] state machine.
//!
//! It ticks the machine on an interval (a tenth of the minimum election
//! timeout, so timeouts are honoured to ~10 %), steps it with what peer
//! links bring, and carries its outputs out in order: `Persist` is written
//! (fsync, on a blocking thread, through the server's `FileSystem`) before
//! anything after it — if that fails the rest of the batch is dropped and
//! the node leaves elections until restarted (INFO
//! `election_status:persist_failed`); `Send` goes to the peer link;
//! `RoleChanged` asks [`Node::switch`] for the new side and is logged once
//! with its reason and term; `Rejected` is logged (once per peer and
//! reason, by the machine).
//!
//! Bad input on peer links (another cluster, a non-member, a malformed
//! frame, a vote request from a stale term) is logged once per peer and
//! kind ([`PeerRefusals`]).
//!
//! What the machine learns from the streaming side, once a tick: a
//! follower's link heard from its leader (`on_leader_contact` with the
//! term of the leader's heartbeats) — a message, or bytes of one arriving,
//! so a 16 MiB record or a snapshot crossing a slow link never looks like
//! a dead leader — a leader's followers acknowledged something or moved
//! bytes on their links (`on_peer_active`, for check-quorum), and where
//! the log ends (`set_last_log`). A pre-candidate keeps its follower side
//! and link: most pre-votes fail (the leader was only slow to be heard),
//! and a word from the leader on that link ends the pre-vote. A leader also announces itself to every member once
//! a heartbeat interval (followers dial the leader, so one that knows none
//! would never hear from it); a stale leader's announce is answered with
//! TERM_NOTICE by the machine itself, and it steps down.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, FramedParts};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::peer_refusals::{PeerRefusal, PeerRefusals};
use super::peers::{peer_limits, PeerLinks};
use super::roles::{Node, Target};
use super::ticks;
use super::vote_file::VoteFile;
use crate::persist::{HardStateError, PersistError};
use crate::replication::vote_wire::{self, PeerMessage};
use crate::replication::{
    Election, ElectionConfig, ElectionError, ElectionMessage, ElectionOutput, HardState, LogPosition, NodeId,
    Role, RoleChangeReason, SeededRng,
};
use crate::server::cluster::ClusterConfig;
use crate::server::tls::MemberDialer;
use crate::store::Store;
use burrow_proto::{Codec, ErrorChain, Frame};

/// Peer messages waiting for the driver beyond which new ones are dropped.
const INBOX: usize = 256;

/// The driver's end of the peer messages: (sender, message).
type Inbox = mpsc::Receiver<(NodeId, PeerMessage)>;

/// What INFO shows of elections.
#[derive(Debug, Default)]
struct Info {
    hard: HardState,
    role: Option<Role>,
    started: u64,
    won: u64,
    last_reason: Option<RoleChangeReason>,
    last_duration_ms: Option<u64>,
    campaign_since: Option<Instant>,
    timeout_ms: (u64, u64),
    /// The vote file could not be written: out of elections until restarted.
    persist_failed: bool,
}

/// The election side of a member, shared with connections and the switcher.
#[derive(Debug)]
pub(crate) struct Elections {
    pub(super) cluster_id: u64,
    tick: Duration,
    inbox: mpsc::Sender<(NodeId, PeerMessage)>,
    /// The machine and the inbox's receiving end, until the driver starts.
    pending: Mutex<Option<(Election, Inbox)>>,
    info: Mutex<Info>,
    /// Where term and vote are kept.
    votes: VoteFile,
    /// Bad peer input already logged.
    pub(super) refusals: PeerRefusals,
}

/// The driver's tick for an election timeout range starting at `min`.
fn election_tick(min: Duration) -> Duration {
    (min / 10).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

impl Elections {
    /// The machine for `cluster`, resuming from `hard` (read from
    /// `votes`), with the log ending where `store`'s does.
    pub(super) fn new(
        cluster: &ClusterConfig,
        hard: HardState,
        store: &Store,
        votes: VoteFile,
    ) -> Result<Elections, PersistError> {
        let range = cluster.election_timeout.clone();
        let tick = election_tick(range.start);
        let min = ticks(range.start, tick, 1);
        let cfg = ElectionConfig {
            election_timeout_min_ticks: min,
            election_timeout_max_ticks: ticks(range.end, tick, min + 1).max(min + 1),
            pre_vote: true,
            check_quorum: true,
        };
        let voters = cluster.voters();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ cluster.node_id().rotate_left(32);
        // A read replica follows the leaders it hears of and never campaigns.
        let me = cluster.node_id();
        let voter = cluster.is_voter(me);
        let with_me: Vec<NodeId> = voters.iter().copied().chain((!voter).then_some(me)).collect();
        let election = Election::new(cfg, me, &with_me, hard, last_log(store), SeededRng::new(seed))
            .map(|e| if voter { e } else { e.into_learner() })
            .map_err(|e| match e {
                ElectionError::TermOutOfRange(_) => PersistError::HardState(HardStateError::Damaged {
                    path: votes.dir().join(crate::persist::HARD_STATE_FILE),
                    reason: e.to_string(),
                }),
                // The membership and timings were validated with the cluster file.
                other => PersistError::HardState(HardStateError::Damaged {
                    path: "cluster file".into(),
                    reason: other.to_string(),
                }),
            })?;
        let (inbox, rx) = mpsc::channel(INBOX);
        let ms = |d: Duration| d.as_millis() as u64;
        Ok(Elections {
            cluster_id: vote_wire::cluster_id(cluster.nodes().iter().map(|n| (n.id, n.data_dir.as_path()))),
            tick,
            inbox,
            pending: Mutex::new(Some((election, rx))),
            info: Mutex::new(Info { hard, timeout_ms: (ms(range.start), ms(range.end)), ..Info::default() }),
            votes,
            refusals: PeerRefusals::default(),
        })
    }

    fn info_lock(&self) -> std::sync::MutexGuard<'_, Info> {
        self.info.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a role change for INFO; whether role or term differ from
    /// the last one noted (an initial leader re-campaigning while its peers
    /// start logs once).
    fn note(&self, role: Role, hard: HardState, reason: RoleChangeReason) -> bool {
        let mut i = self.info_lock();
        let changed = i.role != Some(role) || i.hard.term != hard.term;
        let campaigning = |r: Option<Role>| matches!(r, Some(Role::PreCandidate | Role::Candidate));
        let now_campaigning = campaigning(Some(role));
        // A new round: from not campaigning, or a timeout while campaigning
        // (an initial leader's repeated campaign at start is one round).
        let new_round = !campaigning(i.role) || reason == RoleChangeReason::ElectionTimeout;
        if now_campaigning && new_round {
            i.started += 1;
            i.campaign_since = Some(Instant::now());
        }
        if !now_campaigning {
            if let Some(t) = i.campaign_since.take() {
                i.last_duration_ms = Some(t.elapsed().as_millis() as u64);
            }
        }
        if role == Role::Leader {
            i.won += 1;
        }
        i.hard = hard;
        i.role = Some(role);
        i.last_reason = Some(reason);
        changed
    }

    /// Whether this node is campaigning now (pre-vote or vote): CLUSTER
    /// shows it as a candidate.
    pub(super) fn campaigning(&self) -> bool {
        matches!(self.info_lock().role, Some(Role::PreCandidate | Role::Candidate))
    }

    /// The INFO `replication` lines about elections.
    pub(super) fn info(&self, out: &mut String) {
        use std::fmt::Write;
        let i = self.info_lock();
        let _ = write!(
            out,
            "election_role:{}\nvoted_for:{}\nelections_started:{}\nelections_won:{}\n\
             last_election_reason:{}\nlast_election_duration_ms:{}\nelection_timeout_ms:{}..{}\n\
             election_status:{}\ncluster_id:{:016x}\n",
            i.role.map_or("follower", role_name),
            i.hard.voted_for.unwrap_or(0),
            i.started,
            i.won,
            i.last_reason.map_or("-", reason_name),
            i.last_duration_ms.map_or(-1, |d| d as i64),
            i.timeout_ms.0,
            i.timeout_ms.1,
            if i.persist_failed { "persist_failed" } else { "ok" },
            self.cluster_id,
        );
    }

    /// The vote file holds `hard` now (INFO's `voted_for` follows it).
    fn persisted(&self, hard: HardState) {
        self.info_lock().hard = hard;
    }

    fn persist_failed(&self) {
        self.info_lock().persist_failed = true;
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Follower { .. } => "follower",
        Role::PreCandidate => "pre_candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
    }
}

fn reason_name(r: RoleChangeReason) -> &'static str {
    match r {
        RoleChangeReason::ElectionTimeout => "election_timeout",
        RoleChangeReason::Campaign => "campaign",
        RoleChangeReason::PreVoteWon => "pre_vote_won",
        RoleChangeReason::PreVoteLost => "pre_vote_lost",
        RoleChangeReason::ElectionWon => "election_won",
        RoleChangeReason::ElectionLost => "election_lost",
        RoleChangeReason::HigherTerm => "higher_term",
        RoleChangeReason::LeaderDiscovered => "leader_discovered",
        RoleChangeReason::CheckQuorumFailed => "check_quorum_failed",
        RoleChangeReason::PersistFailed => "persist_failed",
    }
}

/// Where the local log ends, for vote comparisons: its last index and the
/// highest term it holds.
fn last_log(store: &Store) -> LogPosition {
    let s = store.log().stats();
    LogPosition { term: if s.last_index == 0 { 0 } else { s.term }, index: s.last_index }
}

/// Starts the peer links and the driver (once).
pub(super) fn start(
    node: Arc<Node>,
    dialer: &MemberDialer,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) {
    let Some((election, rx)) = node.elections.pending.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let connect_timeout = node.cluster.link_timeout.min(node.cluster.election_timeout.start);
    let peers =
        PeerLinks::start(&node.cluster, node.elections.cluster_id, connect_timeout, dialer, cancel, tracker);
    tracker.spawn(run(node, election, rx, peers, cancel.clone()));
}

async fn run(node: Arc<Node>, mut e: Election, mut rx: Inbox, peers: PeerLinks, cancel: CancellationToken) {
    let tick_len = node.elections.tick;
    let mut tick = tokio::time::interval(tick_len);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let announce_every = ticks(node.cluster.heartbeat, tick_len, 1);
    let mut n = 0u64;
    let mut last_tick = Instant::now();
    info!(
        term = e.term(),
        voted_for = e.hard_state().voted_for.unwrap_or(0),
        timeout_ms = format_args!("{:?}", node.cluster.election_timeout),
        "elections: following no one until a leader is found or elected"
    );
    // A named initial leader campaigns at once, and again every tick until
    // it hears of a leader or wins (its peers may start after it); on a
    // fresh cluster the others hold their timers for two maximum timeouts
    // meanwhile, so that it is the one elected.
    let started = Instant::now();
    let mut initial = node.cluster.is_initial_leader();
    let hold = if node.cluster.initial_leader().is_some() && !initial && e.term() == 0 {
        Some(started + node.cluster.election_timeout.end * 2)
    } else {
        None
    };
    if initial {
        e.campaign();
    }
    carry_out(&node, &mut e, &peers).await;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {
                let now = Instant::now();
                // A data set half replaced by a full resync, or not yet
                // completed after one, must not win an election: it claims
                // an empty log meanwhile.
                let partial = node.follower().is_some_and(|f| f.partial_dataset());
                e.set_last_log(if partial { LogPosition::default() } else { last_log(&node.store) });
                match e.role() {
                    Role::Leader => {
                        if let Some((l, _)) = node.leader() {
                            for id in l.acked_since(last_tick) {
                                e.on_peer_active(id);
                            }
                        }
                    }
                    // A pre-candidate still follows its leader's link
                    // (see `carry_out`): a word from it ends the pre-vote.
                    Role::Follower { leader: Some(_) } | Role::PreCandidate => {
                        if let Some(f) = node.follower() {
                            let (at, term) = f.last_contact();
                            let fresh = term > 0 && at.is_some_and(|t| t >= last_tick);
                            let followed = match e.role() {
                                Role::Follower { leader } => leader,
                                _ => f.leader_id(),
                            };
                            if let Some(id) = f.leader_id().filter(|&id| fresh && Some(id) == followed) {
                                e.on_leader_contact(id, term);
                            }
                        }
                    }
                    _ => {}
                }
                last_tick = now;
                if e.leader().is_some() {
                    initial = false;
                }
                if initial && matches!(e.role(), Role::Follower { .. } | Role::PreCandidate) {
                    e.campaign();
                } else if !hold.is_some_and(|h| now < h && e.leader().is_none()) {
                    e.tick();
                }
                n += 1;
                if e.is_leader() && n.is_multiple_of(announce_every) {
                    announce(&e, &peers);
                }
            }
            m = rx.recv() => {
                let Some((from, msg)) = m else { return };
                match msg {
                    PeerMessage::Election(m) => {
                        if let ElectionMessage::RequestVote { term, pre_vote, .. } = m {
                            if term < e.term() {
                                let kind = if pre_vote { "pre-vote" } else { "vote" };
                                let detail = format!(
                                    "a {kind} request for stale term {term} (this node is in term {})",
                                    e.term()
                                );
                                node.elections.refusals.log_once(from, PeerRefusal::StaleTerm, None, &detail);
                            }
                        }
                        e.step(from, m)
                    }
                    PeerMessage::Announce { term } => {
                        e.on_leader_contact(from, term);
                    }
                    PeerMessage::Hello { .. } => {}
                }
            }
        }
        carry_out(&node, &mut e, &peers).await;
    }
}

fn announce(e: &Election, peers: &PeerLinks) {
    for id in peers.ids() {
        peers.send(id, PeerMessage::Announce { term: e.term() });
    }
}

/// Carries out the machine's outputs in order (see the module docs).
async fn carry_out(node: &Arc<Node>, e: &mut Election, peers: &PeerLinks) {
    loop {
        let outs = e.outputs();
        if outs.is_empty() {
            return;
        }
        for out in outs {
            match out {
                ElectionOutput::Persist(hard) => match node.elections.votes.write(hard).await {
                    Ok(()) => node.elections.persisted(hard),
                    Err(err) => {
                        error!(
                            error = %ErrorChain(&err),
                            term = hard.term,
                            "cannot persist the term and vote: leaving elections until restarted"
                        );
                        node.elections.persist_failed();
                        e.on_persist_failed();
                        break;
                    }
                },
                ElectionOutput::Send { to, msg } => peers.send(to, PeerMessage::Election(msg)),
                ElectionOutput::RoleChanged { role, term, reason } => {
                    if node.elections.note(role, e.hard_state(), reason) {
                        info!(
                            role = role_name(role),
                            leader = e.leader().unwrap_or(0),
                            term,
                            reason = reason_name(reason),
                            "role changed"
                        );
                    }
                    match role {
                        Role::Leader => {
                            node.switch(Target::Leader { term });
                            announce(e, peers);
                        }
                        Role::Follower { leader } => node.switch(Target::Follower { term, leader }),
                        // A pre-vote changes no term and fails while the
                        // leader is alive (it was only slow to be heard):
                        // the link to it, and any resync under way, stay
                        // until the pre-vote is won.
                        Role::PreCandidate => {}
                        // A candidate follows no one.
                        Role::Candidate => node.switch(Target::Follower { term, leader: None }),
                    }
                }
                ElectionOutput::Rejected { from, reason } => {
                    warn!(peer = from, ?reason, "election message refused");
                }
            }
        }
    }
}

/// Serves another member's peer link: checks who it is, then hands every
/// message to the driver until the link closes.
pub(super) async fn serve_peer<S: AsyncRead + AsyncWrite + Unpin>(
    node: &Node,
    link: FramedParts<S, Codec>,
    peer: SocketAddr,
    cluster_id: u64,
    node_id: NodeId,
    cancel: &CancellationToken,
) {
    let els = &node.elections;
    if cluster_id != els.cluster_id {
        return els.refusals.log_once(node_id, PeerRefusal::OtherCluster(cluster_id), Some(peer), "");
    }
    if node_id == node.cluster.node_id() || node.cluster.node(node_id).is_none() {
        return els.refusals.log_once(node_id, PeerRefusal::NotMember, Some(peer), "");
    }
    let malformed = |why: String| els.refusals.log_once(node_id, PeerRefusal::Malformed, Some(peer), &why);
    let mut parts = FramedParts::new::<Frame>(link.io, Codec::server(peer_limits()));
    parts.read_buf = link.read_buf;
    let mut framed = Framed::from_parts(parts);
    loop {
        let frame = tokio::select! {
            _ = cancel.cancelled() => return,
            f = framed.next() => match f {
                Some(Ok(f)) => f,
                // Closed, also inside a frame: the peer's to retry.
                None | Some(Err(burrow_proto::CodecError::Truncated { .. })) => return,
                Some(Err(e)) => return malformed(ErrorChain(&e).to_string()),
            },
        };
        match vote_wire::decode(&frame.as_ref()) {
            Ok(PeerMessage::Hello { .. }) => return malformed("a second PEER_HELLO".into()),
            Err(e) => return malformed(e.to_string()),
            Ok(msg) => {
                let _ = els.inbox.try_send((node_id, msg));
            }
        }
    }
}
