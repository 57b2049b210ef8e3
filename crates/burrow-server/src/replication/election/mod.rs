//! Raft leader election (Ongaro & Ousterhout 2014, §5.1–§5.4.1, §9.6) as a
//! pure state machine, beside the streaming [`Leader`](super::Leader) and
//! [`Follower`](super::Follower).
//!
//! [`Election`] decides *who* leads *which term*; the streaming machines
//! move records once that is decided. Inputs: vote traffic
//! ([`Election::step`]), time ([`Election::tick`]), and what the driver
//! learns from the streaming links — a leader's message arrived
//! ([`Election::on_leader_contact`]), a follower showed life
//! ([`Election::on_peer_active`]), the local log grew or was cut
//! ([`Election::set_last_log`]). Outputs are drained with
//! [`Election::outputs`] and carried out **in order**:
//!
//! - [`ElectionOutput::Persist`] comes before every output that depends on
//!   the new term or vote. The driver writes it durably (fsync) before it
//!   carries out anything after it. If that write fails it must drop every
//!   later output of the batch and call [`Election::on_persist_failed`]:
//!   the node then neither votes, campaigns nor follows until it is
//!   restarted and reads back whichever hard state the disk kept, so it
//!   can never vote twice in one term.
//! - [`ElectionOutput::RoleChanged`] to `Leader`: build the streaming
//!   leader for that term and append a no-op record of the term at once,
//!   so earlier records can commit (§5.4.2, see [`commit_index`]). To
//!   `Follower { leader: Some(id) }`: connect to `id`. Log one line per
//!   role change with its reason.
//! - [`ElectionOutput::Rejected`] is emitted once per peer and reason: a
//!   driver logs it without flooding.
//!
//! Choices:
//! - **Pre-vote** (§9.6) and **check-quorum** are on by default, as in
//!   etcd and raft-rs; together they give *leader stickiness*: a node that
//!   heard from a current leader less than the minimum election timeout
//!   ago ignores (pre-)vote requests for a higher term, and a leader
//!   ignores them while it is one (check-quorum deposes it within two
//!   minimum timeouts once a majority stops answering).
//! - **A term from far in the future** (a buggy peer) is handled as Raft
//!   says — adopted, costing one election — except that terms above
//!   [`MAX_TERM`] are rejected outright: adopting one would leave no room
//!   for `term + 1`, blocking every later election.
//! - A leader hears of a higher term from [`ElectionMessage::TermNotice`]
//!   (which a node sends back for any stale leader contact) or from
//!   [`Election::observe_term`] (a term seen in any other message).

mod message;
mod quorum;

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

pub use message::{ElectionMessage, HardState, LogPosition};
pub use quorum::{commit_index, majority};

use super::{at_least, greater, ConfigError, NodeId, SeededRng};

/// Highest term a node accepts: see the module notes.
pub const MAX_TERM: u64 = u64::MAX / 2;

/// Election tuning, in ticks (the driver picks the tick length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Lower bound of the randomised election timeout, and the period of
    /// the leader's check-quorum and of followers' leader stickiness. Must
    /// be well above the leader's heartbeat interval.
    pub election_timeout_min_ticks: u64,
    /// Upper bound (exclusive). The spread keeps candidates from splitting
    /// the vote again and again (§5.2).
    pub election_timeout_max_ticks: u64,
    /// Ask "would you vote for me?" before bumping the term (§9.6).
    pub pre_vote: bool,
    /// Leader steps down without a majority active for a timeout; nodes
    /// hearing from a current leader ignore vote requests.
    pub check_quorum: bool,
}

impl Default for ElectionConfig {
    fn default() -> Self {
        ElectionConfig {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            pre_vote: true,
            check_quorum: true,
        }
    }
}

impl ElectionConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least("election_timeout_min_ticks", self.election_timeout_min_ticks, 1)?;
        greater(
            "election_timeout_max_ticks",
            self.election_timeout_max_ticks,
            "election_timeout_min_ticks",
            self.election_timeout_min_ticks,
        )
    }
}

/// A node's part in the current term.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Follows `leader` (once known) of the current term.
    Follower {
        leader: Option<NodeId>,
    },
    /// Asking for pre-votes for `term + 1` without having adopted it.
    PreCandidate,
    /// Asking for votes in the current term, having voted for itself.
    Candidate,
    Leader,
}

/// Why the role or term changed (for the log line and INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChangeReason {
    /// No leader heard from within the election timeout.
    ElectionTimeout,
    /// `Election::campaign` was called (e.g. a configured initial leader).
    Campaign,
    /// A majority granted pre-votes: now a real candidate.
    PreVoteWon,
    /// A majority refused the pre-vote.
    PreVoteLost,
    /// A majority granted votes.
    ElectionWon,
    /// A majority refused the vote.
    ElectionLost,
    /// A message carried a higher term (§5.1).
    HigherTerm,
    /// A leader of the current term made contact.
    LeaderDiscovered,
    /// Leader only: no majority active within an election timeout.
    CheckQuorumFailed,
    /// The hard state could not be persisted: this node is out of
    /// elections until restarted.
    PersistFailed,
}

/// Why a peer's message was refused without being looked at further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RejectReason {
    /// The sender is not one of the cluster's voters.
    NotMember,
    /// A vote request whose `candidate` is not the link's peer.
    CandidateMismatch,
    /// A term above [`MAX_TERM`].
    TermOutOfRange,
}

/// What the driver must do, in order (see the module notes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionOutput {
    /// Write this durably before carrying out any later output.
    Persist(HardState),
    Send {
        to: NodeId,
        msg: ElectionMessage,
    },
    RoleChanged {
        role: Role,
        term: u64,
        reason: RoleChangeReason,
    },
    /// A peer's message was refused; reported once per (peer, reason).
    Rejected {
        from: NodeId,
        reason: RejectReason,
    },
}

/// Building an [`Election`] failed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElectionError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("node {0} is not one of the voters, so it takes no part in elections")]
    NotAVoter(NodeId),
    #[error("persisted term {0} is above the highest accepted term")]
    TermOutOfRange(u64),
}

/// One node's election state machine.
///
/// Invariants (checked by `debug_check` after every input): a candidate or
/// leader has voted for itself in its term; `voted_for` is a voter;
/// `timeout` lies in `[min, max)`; a non-leader's `elapsed < timeout` and
/// a leader's `elapsed < min`; `votes` is empty unless campaigning; a
/// disabled node is a follower of no one; `term ≤ MAX_TERM`.
#[derive(Debug)]
pub struct Election {
    cfg: ElectionConfig,
    id: NodeId,
    /// Every voter, this node included, sorted.
    voters: Vec<NodeId>,
    hard: HardState,
    role: Role,
    last_log: LogPosition,
    /// Ticks since the timer was last reset (followers, candidates) or
    /// since the last check-quorum (leader).
    elapsed: u64,
    /// This round's randomised election timeout.
    timeout: u64,
    /// Answers in the current (pre-)campaign, this node's own included.
    votes: BTreeMap<NodeId, bool>,
    /// Leader: voters heard from since the last check-quorum.
    active: BTreeSet<NodeId>,
    /// Set by a failed persist; cleared only by a restart.
    disabled: bool,
    /// A member that is no voter (a read replica): it follows the leaders
    /// it hears of and adopts their terms, but never campaigns and never
    /// answers a vote request (silence is no vote).
    learner: bool,
    reported: BTreeSet<(NodeId, RejectReason)>,
    rng: SeededRng,
    out: Vec<ElectionOutput>,
}

impl Election {
    /// A node restarting with `hard` (what it persisted; default for a new
    /// node) and a log ending at `last_log`. It starts as a follower of no
    /// one; `voters` lists every voting member, `id` included.
    pub fn new(
        cfg: ElectionConfig,
        id: NodeId,
        voters: &[NodeId],
        hard: HardState,
        last_log: LogPosition,
        rng: SeededRng,
    ) -> Result<Election, ElectionError> {
        cfg.validate()?;
        if !voters.contains(&id) {
            return Err(ElectionError::NotAVoter(id));
        }
        if hard.term > MAX_TERM {
            return Err(ElectionError::TermOutOfRange(hard.term));
        }
        let mut voters = voters.to_vec();
        voters.sort_unstable();
        voters.dedup();
        let mut e = Election {
            timeout: cfg.election_timeout_min_ticks,
            cfg,
            id,
            voters,
            hard,
            role: Role::Follower { leader: None },
            last_log,
            elapsed: 0,
            votes: BTreeMap::new(),
            active: BTreeSet::new(),
            disabled: false,
            learner: false,
            reported: BTreeSet::new(),
            rng,
            out: Vec::new(),
        };
        e.reset_timer();
        e.debug_check();
        Ok(e)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn term(&self) -> u64 {
        self.hard.term
    }

    pub fn hard_state(&self) -> HardState {
        self.hard
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader of the current term as far as this node knows.
    pub fn leader(&self) -> Option<NodeId> {
        match self.role {
            Role::Leader => Some(self.id),
            Role::Follower { leader } => leader,
            Role::PreCandidate | Role::Candidate => None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    /// A persist failed: out of elections until restarted.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Not a voter: follows leaders, never campaigns, never votes.
    pub fn is_learner(&self) -> bool {
        self.learner
    }

    /// This node as a member that does not vote (a read replica; Raft's
    /// learner, thesis §4.2.1): it leaves the voters, and from now on
    /// follows the leaders it hears of and adopts their terms, but never
    /// campaigns and answers no vote request (silence is no vote). Build
    /// it with [`Election::new`] and `id` among the voters first.
    pub fn into_learner(mut self) -> Election {
        self.voters.retain(|&v| v != self.id);
        self.learner = true;
        self.debug_check();
        self
    }

    pub fn voters(&self) -> &[NodeId] {
        &self.voters
    }

    pub fn last_log(&self) -> LogPosition {
        self.last_log
    }

    /// The current round's randomised election timeout (tests, INFO).
    pub fn election_timeout(&self) -> u64 {
        self.timeout
    }

    /// Drains the queued outputs; carry them out in order.
    pub fn outputs(&mut self) -> Vec<ElectionOutput> {
        std::mem::take(&mut self.out)
    }

    /// The local log now ends at `pos` (appended, truncated or replaced by
    /// a snapshot): what vote requests are compared with.
    pub fn set_last_log(&mut self, pos: LogPosition) {
        self.last_log = pos;
    }

    /// One unit of time: election timeout, or check-quorum on a leader.
    pub fn tick(&mut self) {
        if !self.disabled && !self.learner {
            self.elapsed += 1;
            if self.role == Role::Leader {
                if self.elapsed >= self.cfg.election_timeout_min_ticks {
                    self.elapsed = 0;
                    self.check_quorum();
                }
            } else if self.elapsed >= self.timeout {
                self.start_election(RoleChangeReason::ElectionTimeout);
            }
        }
        self.debug_check();
    }

    /// Starts an election now, as if the timeout had expired (a configured
    /// initial leader on a fresh cluster). Ignored by a leader.
    pub fn campaign(&mut self) {
        if !self.disabled && !self.learner && self.role != Role::Leader {
            self.start_election(RoleChangeReason::Campaign);
        }
        self.debug_check();
    }

    /// A vote message from `from`.
    pub fn step(&mut self, from: NodeId, msg: ElectionMessage) {
        if self.admit(from, msg.term()) {
            match msg {
                ElectionMessage::RequestVote { term, candidate, last_log_term, last_log_index, pre_vote } => {
                    if candidate != from {
                        self.reject(from, RejectReason::CandidateMismatch);
                    } else {
                        let pos = LogPosition { term: last_log_term, index: last_log_index };
                        self.on_vote_request(from, term, pos, pre_vote);
                    }
                }
                ElectionMessage::VoteResponse { term, granted, pre_vote } => {
                    self.on_vote_response(from, term, granted, pre_vote)
                }
                ElectionMessage::TermNotice { term } => self.observe(term),
            }
        }
        self.debug_check();
    }

    /// A message from `from` claiming to lead `term` arrived on a
    /// streaming link (heartbeat, records, resync reply). Returns whether
    /// to accept it: `false` for a stale term (a `TermNotice` goes back so
    /// the stale leader steps down), a non-member, or a disabled node. A
    /// second leader in this node's own term cannot exist under Raft; it is
    /// refused too, and a driver should log it. Carry out the outputs
    /// before acting on `true`: a `Persist` of the leader's term may come
    /// first, and if it fails the message must be dropped.
    pub fn on_leader_contact(&mut self, from: NodeId, term: u64) -> bool {
        let accepted = self.admit(from, term) && self.leader_contact(from, term);
        self.debug_check();
        accepted
    }

    /// A term seen in any other message from `from` (an ack, a
    /// handshake): a higher one makes this node a follower of it (§5.1).
    pub fn observe_term(&mut self, from: NodeId, term: u64) {
        if self.admit(from, term) {
            self.observe(term);
        }
        self.debug_check();
    }

    /// Leader: voter `id` showed life in this term (an ack, bytes moving
    /// on its link). Check-quorum counts these.
    pub fn on_peer_active(&mut self, id: NodeId) {
        if self.role == Role::Leader && self.voters.contains(&id) {
            self.active.insert(id);
        }
    }

    /// The last `Persist` could not be made durable. The driver has
    /// dropped every output after it; the node takes no further part in
    /// elections or replication until restarted.
    pub fn on_persist_failed(&mut self) {
        self.disabled = true;
        self.out.clear();
        self.votes.clear();
        if self.role != (Role::Follower { leader: None }) {
            self.role = Role::Follower { leader: None };
            self.out.push(ElectionOutput::RoleChanged {
                role: self.role,
                term: self.hard.term,
                reason: RoleChangeReason::PersistFailed,
            });
        }
        self.debug_check();
    }

    /// Shared gate: a disabled node ignores everything; non-members and
    /// impossible terms are refused (reported once).
    fn admit(&mut self, from: NodeId, term: u64) -> bool {
        if self.disabled {
            return false;
        }
        if from == self.id || !self.voters.contains(&from) {
            self.reject(from, RejectReason::NotMember);
            return false;
        }
        if term > MAX_TERM {
            self.reject(from, RejectReason::TermOutOfRange);
            return false;
        }
        true
    }

    fn reject(&mut self, from: NodeId, reason: RejectReason) {
        if self.reported.insert((from, reason)) {
            self.out.push(ElectionOutput::Rejected { from, reason });
        }
    }

    fn leader_contact(&mut self, from: NodeId, term: u64) -> bool {
        if term < self.hard.term {
            self.send(from, ElectionMessage::TermNotice { term: self.hard.term });
            return false;
        }
        if term > self.hard.term {
            self.become_follower(term, Some(from), RoleChangeReason::HigherTerm);
            return true;
        }
        match self.role {
            Role::Leader => false,
            Role::Follower { leader: Some(l) } => {
                if l == from {
                    self.reset_timer();
                }
                l == from
            }
            _ => {
                self.become_follower(term, Some(from), RoleChangeReason::LeaderDiscovered);
                true
            }
        }
    }

    fn observe(&mut self, term: u64) {
        if term > self.hard.term {
            self.become_follower(term, None, RoleChangeReason::HigherTerm);
        }
    }

    /// Leader stickiness: a node that believes in a live leader does not
    /// help depose it (raft-rs's lease under check-quorum). Except for the
    /// leader itself asking: it no longer leads (it restarted), so there
    /// is no leader to stick to.
    fn in_lease(&self, candidate: NodeId) -> bool {
        self.cfg.check_quorum
            && match self.role {
                Role::Leader => true,
                Role::Follower { leader: Some(l) } => {
                    l != candidate && self.elapsed < self.cfg.election_timeout_min_ticks
                }
                _ => false,
            }
    }

    fn on_vote_request(&mut self, from: NodeId, term: u64, candidate_log: LogPosition, pre_vote: bool) {
        if self.learner || (term > self.hard.term && self.in_lease(from)) {
            return;
        }
        if term < self.hard.term {
            // §5.1: reject, with our term so the candidate catches up.
            self.send(from, ElectionMessage::VoteResponse { term: self.hard.term, granted: false, pre_vote });
            return;
        }
        if term > self.hard.term && !pre_vote {
            self.become_follower(term, None, RoleChangeReason::HigherTerm);
        }
        // One vote per term (§5.2); a pre-vote for a later term binds nothing.
        let can_vote = self.hard.voted_for == Some(from)
            || (self.hard.voted_for.is_none() && self.leader().is_none())
            || (pre_vote && term > self.hard.term);
        // §5.4.1: only for a log at least as up to date (term, then index).
        let up_to_date = candidate_log >= self.last_log;
        if can_vote && up_to_date {
            if !pre_vote {
                if self.hard.voted_for != Some(from) {
                    self.hard.voted_for = Some(from);
                    self.persist();
                }
                self.reset_timer();
            }
            self.send(from, ElectionMessage::VoteResponse { term, granted: true, pre_vote });
        } else {
            self.send(from, ElectionMessage::VoteResponse { term: self.hard.term, granted: false, pre_vote });
        }
    }

    fn on_vote_response(&mut self, from: NodeId, term: u64, granted: bool, pre_vote: bool) {
        if term > self.hard.term && !(pre_vote && granted) {
            // A granted pre-vote carries the term asked for, not a real one.
            self.become_follower(term, None, RoleChangeReason::HigherTerm);
            return;
        }
        let current = match self.role {
            Role::PreCandidate => pre_vote && (!granted || term == self.hard.term + 1),
            Role::Candidate => !pre_vote && term == self.hard.term,
            _ => false,
        };
        if !current {
            return;
        }
        self.votes.insert(from, granted);
        let yes = self.votes.values().filter(|&&g| g).count();
        let no = self.votes.len() - yes;
        let need = majority(self.voters.len());
        if yes >= need {
            if self.role == Role::PreCandidate {
                self.become_candidate(RoleChangeReason::PreVoteWon);
            } else {
                self.become_leader();
            }
        } else if no >= need {
            let reason =
                if pre_vote { RoleChangeReason::PreVoteLost } else { RoleChangeReason::ElectionLost };
            self.become_follower(self.hard.term, None, reason);
        }
    }

    fn start_election(&mut self, reason: RoleChangeReason) {
        if self.hard.term >= MAX_TERM {
            // No term left to campaign in; stay put rather than overflow.
            self.reset_timer();
            return;
        }
        if self.cfg.pre_vote {
            self.become_pre_candidate(reason);
        } else {
            self.become_candidate(reason);
        }
    }

    fn become_pre_candidate(&mut self, reason: RoleChangeReason) {
        self.role = Role::PreCandidate;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.reset_timer();
        self.changed(reason);
        self.request_votes(self.hard.term + 1, true);
        if majority(self.voters.len()) == 1 {
            self.become_candidate(RoleChangeReason::PreVoteWon);
        }
    }

    fn become_candidate(&mut self, reason: RoleChangeReason) {
        self.hard = HardState { term: self.hard.term + 1, voted_for: Some(self.id) };
        self.persist();
        self.role = Role::Candidate;
        self.votes.clear();
        self.votes.insert(self.id, true);
        self.reset_timer();
        self.changed(reason);
        self.request_votes(self.hard.term, false);
        if majority(self.voters.len()) == 1 {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.votes.clear();
        self.active.clear();
        self.elapsed = 0;
        self.changed(RoleChangeReason::ElectionWon);
    }

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>, reason: RoleChangeReason) {
        if term > self.hard.term {
            self.hard = HardState { term, voted_for: None };
            self.persist();
        }
        self.role = Role::Follower { leader };
        self.votes.clear();
        self.active.clear();
        // Figure 2: the timer restarts on hearing from a leader or granting
        // a vote, not on merely learning a higher term. Otherwise a node
        // whose log could win is kept from campaigning by every term bump
        // of a candidate that cannot (with a fast clock, for ever).
        if leader.is_some() || reason != RoleChangeReason::HigherTerm {
            self.reset_timer();
        }
        self.changed(reason);
    }

    fn check_quorum(&mut self) {
        if !self.cfg.check_quorum {
            return;
        }
        let heard = 1 + self.active.iter().filter(|&&id| id != self.id).count();
        self.active.clear();
        if heard < majority(self.voters.len()) {
            self.become_follower(self.hard.term, None, RoleChangeReason::CheckQuorumFailed);
        }
    }

    fn request_votes(&mut self, term: u64, pre_vote: bool) {
        let msg = ElectionMessage::RequestVote {
            term,
            candidate: self.id,
            last_log_term: self.last_log.term,
            last_log_index: self.last_log.index,
            pre_vote,
        };
        for i in 0..self.voters.len() {
            let to = self.voters[i];
            if to != self.id {
                self.send(to, msg);
            }
        }
    }

    fn send(&mut self, to: NodeId, msg: ElectionMessage) {
        self.out.push(ElectionOutput::Send { to, msg });
    }

    /// Queues the hard state. Changes within one input share one write
    /// (adopting a term and voting in it cost one fsync): a queued
    /// `Persist` followed only by role changes and reports — nothing sent
    /// yet — is updated in place, and still precedes all that depends on it.
    fn persist(&mut self) {
        for o in self.out.iter_mut().rev() {
            match o {
                ElectionOutput::Persist(h) => {
                    *h = self.hard;
                    return;
                }
                ElectionOutput::RoleChanged { .. } | ElectionOutput::Rejected { .. } => {}
                ElectionOutput::Send { .. } => break,
            }
        }
        self.out.push(ElectionOutput::Persist(self.hard));
    }

    fn changed(&mut self, reason: RoleChangeReason) {
        self.out.push(ElectionOutput::RoleChanged { role: self.role, term: self.hard.term, reason });
    }

    /// Zeroes the timer and draws a new timeout in `[min, max)`.
    fn reset_timer(&mut self) {
        self.elapsed = 0;
        let spread = self.cfg.election_timeout_max_ticks - self.cfg.election_timeout_min_ticks;
        self.timeout = self.cfg.election_timeout_min_ticks + self.rng.below(spread);
    }

    /// Asserts the invariants stated on the type (debug builds).
    fn debug_check(&self) {
        let campaigning = matches!(self.role, Role::PreCandidate | Role::Candidate);
        debug_assert!(
            !matches!(self.role, Role::Candidate | Role::Leader) || self.hard.voted_for == Some(self.id),
            "{self:?}"
        );
        // A learner never votes; a vote it cast as a voter may remain.
        debug_assert!(
            self.learner || self.hard.voted_for.is_none_or(|v| self.voters.contains(&v)),
            "{self:?}"
        );
        debug_assert!(
            (self.cfg.election_timeout_min_ticks..self.cfg.election_timeout_max_ticks)
                .contains(&self.timeout),
            "{self:?}"
        );
        if self.role == Role::Leader {
            debug_assert!(self.elapsed < self.cfg.election_timeout_min_ticks, "{self:?}");
        } else {
            debug_assert!(self.elapsed < self.timeout || self.disabled, "{self:?}");
        }
        debug_assert!(campaigning || self.votes.is_empty(), "{self:?}");
        debug_assert!(!self.disabled || self.role == Role::Follower { leader: None }, "{self:?}");
        debug_assert!(self.hard.term <= MAX_TERM, "{self:?}");
    }
}
