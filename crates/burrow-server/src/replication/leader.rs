//! The leader's side: one progress record per follower, stepped by acks,
//! handshakes, appends and ticks.
//!
//! Per follower the leader keeps two indexes with different jobs:
//! - `next_index`: the next record to push. It runs ahead of what the
//!   follower has confirmed, by at most `window` records (flow control: a
//!   stream of batches, never one round trip per record).
//! - `matched`: the highest index the follower reported *durable*. Only this
//!   feeds the commit index and WAIT, because only it survives a crash of the
//!   follower.
//!
//! When acks stop advancing while records are in flight (a batch was lost),
//! the leader rewinds `next_index` to the follower's applied index + 1 after
//! `retransmit_ticks`; the follower skips whatever it already had.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::message::Message;
use super::{
    at_least, commit_index, greater, reconcile, BacklogSource, ConfigError, HistoryId, LogPosition, LogTerms,
    NodeId, Reconcile, ReplicationError,
};

/// A backlog's terms as [`reconcile`] reads them: records above the
/// oldest index whose term is known can be sent.
struct Terms<'a, L>(&'a L);

impl<L: BacklogSource> LogTerms for Terms<'_, L> {
    fn term_at(&self, index: u64) -> Option<u64> {
        self.0.term_at(index)
    }
    fn first_index(&self) -> u64 {
        let first = self.0.first_index();
        match first.checked_sub(1) {
            Some(below) if self.0.term_at(below).is_some() => below,
            _ => first,
        }
    }
    fn last_index(&self) -> u64 {
        self.0.last_index()
    }
}

/// Leader tuning. Times are in ticks; the driver decides how long a tick is
/// (100 ms is the intended default, which the defaults below assume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    /// Ticks between heartbeats to a follower that got nothing else.
    pub heartbeat_interval_ticks: u64,
    /// Ticks without a sign of life from a follower (an ack, or bytes
    /// moving on its link: see [`Leader::on_link_activity`]) before it is
    /// declared down.
    pub follower_timeout_ticks: u64,
    /// Ticks with records in flight and no applied progress before the
    /// leader resends from the follower's applied index + 1.
    pub retransmit_ticks: u64,
    /// Most records in one `Records` message.
    pub max_batch_records: usize,
    /// Most encoded bytes in one `Records` message (a single larger record
    /// still goes out alone).
    pub max_batch_bytes: usize,
    /// Most records sent but not yet acknowledged as applied, per follower.
    pub window: u64,
    /// Most `Records` messages in flight per follower. New records wait
    /// for an ack once this many are out, then go in one batch: under load
    /// a follower gets few large batches per round trip rather than one
    /// small batch per write, which is what each message costs both sides.
    pub max_batches_in_flight: usize,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        LeaderConfig {
            heartbeat_interval_ticks: 5,
            follower_timeout_ticks: 50,
            retransmit_ticks: 20,
            max_batch_records: 512,
            max_batch_bytes: 256 * 1024,
            window: 4096,
            max_batches_in_flight: 4,
        }
    }
}

impl LeaderConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least("heartbeat_interval_ticks", self.heartbeat_interval_ticks, 1)?;
        at_least("retransmit_ticks", self.retransmit_ticks, 1)?;
        at_least("max_batch_records", self.max_batch_records as u64, 1)?;
        at_least("max_batch_bytes", self.max_batch_bytes as u64, 1)?;
        at_least("window", self.window, self.max_batch_records as u64)?;
        at_least("max_batches_in_flight", self.max_batches_in_flight as u64, 1)?;
        // A follower acks each heartbeat; a timeout no longer than the
        // interval would declare healthy followers down.
        greater(
            "follower_timeout_ticks",
            self.follower_timeout_ticks,
            "heartbeat_interval_ticks",
            self.heartbeat_interval_ticks,
        )
    }
}

/// Where a follower's link stands, as the leader sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowerState {
    /// Handshake answered with a full resync: waiting for the driver's
    /// snapshot (`snapshot_ready`) and then sending its chunks.
    FullSync,
    /// Records flow from `next_index`.
    Streaming,
    /// Never connected, disconnected, or silent past the timeout. Nothing is
    /// sent until the follower handshakes again.
    Down,
}

/// Read-only view of one follower's progress (INFO, tests), with the
/// invariants of the leader's record of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    pub state: FollowerState,
    /// Counts toward the quorum.
    pub voter: bool,
    /// Next index to push; `applied < next_index` while `Streaming`.
    pub next_index: u64,
    /// Highest index acked as applied in the current session.
    pub applied: u64,
    /// Highest index acked as durable on this history: never decreases
    /// within it, and never exceeds what the leader had appended when the
    /// ack arrived (nor, in that ack, what the follower had applied).
    pub matched: u64,
    /// Ticks since the follower last showed life (an ack or link
    /// activity); at most `follower_timeout_ticks` unless `Down`.
    pub ticks_since_ack: u64,
}

/// Why the leader dropped a follower's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// No sign of life for `follower_timeout_ticks`.
    Silent,
    /// The next record it needs has left the backlog: it will need a full resync.
    BehindBacklog,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderOutput {
    /// Write `msg` to the follower's connection.
    Send { to: NodeId, msg: Message },
    /// Produce a snapshot and hand it over with `snapshot_ready` and
    /// `snapshot_chunk`. Issued once per follower session; a newer one for
    /// the same follower supersedes any transfer still running for it (that
    /// transfer's calls then fail with `NotInFullSync` and must stop).
    StartFullSync { to: NodeId },
    /// The follower went silent, or fell out of the backlog mid-stream;
    /// close its connection. It handshakes again when it notices.
    FollowerDown { id: NodeId, reason: DownReason },
}

/// The leader's record of one follower. Invariants (checked by
/// [`Peer::debug_check`] after every step): see each field.
#[derive(Debug, Clone)]
struct Peer {
    state: FollowerState,
    /// Counts toward the quorum (it is one of the cluster's nodes); other
    /// followers are read replicas that still count for WAIT.
    voter: bool,
    /// Session of the handshake being served; acks and handshakes of other
    /// sessions are stale. Invariant: `Some` unless the follower never
    /// handshook (then `state` is `Down`).
    session: Option<u64>,
    /// Next index to push. Invariant while `Streaming`: `applied <
    /// next_index`. It may pass the leader's `last_index + 1` after a full
    /// resync, whose snapshot covers what the log held when it started,
    /// before the state machine heard of the last appends.
    next_index: u64,
    /// Highest index the follower acked as applied in this session (after
    /// a full resync, at least the snapshot's index).
    applied: u64,
    /// Highest index the follower acked as durable on this history: never
    /// decreases within it (back to 0 when the follower turns up on
    /// another), at most the leader's `last_index` when the ack arrived.
    matched: u64,
    /// Ticks since the last sign of life. Invariant: at most
    /// `follower_timeout_ticks` unless `Down`.
    ticks_since_ack: u64,
    ticks_since_send: u64,
    ticks_without_progress: u64,
    /// Set once `snapshot_ready` announced the snapshot to this follower.
    /// Invariant: `Some` only while `FullSync`.
    snapshot: Option<SnapshotSend>,
    /// Last index of each `Records` message sent and not yet known to be
    /// applied, oldest first (pruned lazily by `pump`).
    batches: std::collections::VecDeque<u64>,
}

#[derive(Debug, Clone, Copy)]
struct SnapshotSend {
    index: u64,
    offset: u64,
}

impl Peer {
    /// Asserts the invariants stated on the fields (debug builds; O(1)).
    fn debug_check(&self, timeout_ticks: u64) {
        debug_assert!(self.state != FollowerState::Streaming || self.applied < self.next_index, "{self:?}");
        debug_assert!(self.snapshot.is_none() || self.state == FollowerState::FullSync, "{self:?}");
        debug_assert!(self.session.is_some() || self.state == FollowerState::Down, "{self:?}");
        debug_assert!(self.state == FollowerState::Down || self.ticks_since_ack <= timeout_ticks, "{self:?}");
    }

    fn new(voter: bool) -> Peer {
        Peer {
            state: FollowerState::Down,
            voter,
            session: None,
            next_index: 1,
            applied: 0,
            matched: 0,
            ticks_since_ack: 0,
            ticks_since_send: 0,
            ticks_without_progress: 0,
            snapshot: None,
            batches: std::collections::VecDeque::new(),
        }
    }
}

/// The leader's replication state machine.
///
/// Invariants (checked by `debug_check` after every input): `commit ≤
/// last_index` and `durable ≤ last_index`, but not `commit ≤ durable` (a
/// majority of followers may hold an index durably before the leader's
/// own fsync does); none of the three ever decreases; each follower's
/// record keeps the invariants stated on `Peer`'s fields.
#[derive(Debug)]
pub struct Leader {
    cfg: LeaderConfig,
    id: NodeId,
    history_id: HistoryId,
    term: u64,
    /// Newest index in the log (from `on_append`). Never decreases.
    last_index: u64,
    /// Highest index the leader itself holds durably (from `on_durable`).
    /// Invariant: `durable ≤ last_index`; never decreases.
    durable: u64,
    /// Highest index a majority of voters (leader included) hold durably,
    /// counted only at a record of this leader's term (§5.4.2).
    /// Invariant: `commit ≤ last_index`; never decreases.
    commit: u64,
    /// Lowest index known to hold a record of `term` (learned from the
    /// backlog once one exists; `None` before). Terms never decrease along
    /// a log, so every record from here to `last_index` is of `term`, and
    /// only those commit by counting replicas.
    term_start: Option<u64>,
    /// Newest ReadIndex round (`read_index`), carried by every heartbeat.
    read_round: u64,
    /// BTreeMap so that output order is deterministic for a given input.
    peers: BTreeMap<NodeId, Peer>,
    out: Vec<LeaderOutput>,
}

impl Leader {
    /// `voters` are the other nodes of the cluster: with the leader they form
    /// the quorum. Followers not listed may still replicate (read replicas)
    /// but never count toward the commit index. `last_index` is the log's
    /// position at start (after recovery); report what is already durable
    /// with `on_durable`.
    pub fn new(
        cfg: LeaderConfig,
        id: NodeId,
        history_id: HistoryId,
        term: u64,
        last_index: u64,
        voters: &[NodeId],
    ) -> Result<Leader, ConfigError> {
        cfg.validate()?;
        let peers = voters.iter().filter(|&&v| v != id).map(|&v| (v, Peer::new(true))).collect();
        let mut leader = Leader {
            cfg,
            id,
            history_id,
            term,
            last_index,
            durable: 0,
            commit: 0,
            term_start: None,
            read_round: 0,
            peers,
            out: Vec::new(),
        };
        leader.recompute_commit();
        Ok(leader)
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn history_id(&self) -> HistoryId {
        self.history_id
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    pub fn last_index(&self) -> u64 {
        self.last_index
    }

    pub fn durable_index(&self) -> u64 {
        self.durable
    }

    /// Highest index held durably by a majority of the cluster (the leader
    /// included). Quorum-mode writes up to here may be acknowledged.
    pub fn commit_index(&self) -> u64 {
        self.commit
    }

    /// Whether a record of this leader's term has committed: until then
    /// the commit index of earlier terms is not known (§5.4.2), and
    /// linearizable reads wait (`read_index`).
    pub fn committed_in_term(&self) -> bool {
        self.term_start.is_some_and(|start| self.commit >= start)
    }

    /// How many followers (voters or not, connected or not) have durably
    /// acknowledged `index`: the answer to WAIT. A follower that went down
    /// after acking still holds the record, so it still counts.
    pub fn acked_count(&self, index: u64) -> usize {
        self.peers.values().filter(|p| p.matched >= index).count()
    }

    /// Every follower known: the cluster's other nodes and any read
    /// replica that has connected.
    pub fn follower_ids(&self) -> Vec<NodeId> {
        self.peers.keys().copied().collect()
    }

    /// Whether a new record would be sent at once: some follower is
    /// streaming, has everything so far and room for another batch. When
    /// none is, the driver need not announce appends (acks pull them).
    pub fn wants_records(&self) -> bool {
        self.peers.values().any(|p| {
            p.state == FollowerState::Streaming
                && p.next_index > self.last_index
                && p.batches.iter().filter(|&&last| last > p.applied && last < p.next_index).count()
                    < self.cfg.max_batches_in_flight
        })
    }

    pub fn progress(&self, id: NodeId) -> Option<FollowerProgress> {
        self.peers.get(&id).map(|p| FollowerProgress {
            state: p.state,
            voter: p.voter,
            next_index: p.next_index,
            applied: p.applied,
            matched: p.matched,
            ticks_since_ack: p.ticks_since_ack,
        })
    }

    /// Drains the queued outputs; carry them out in order.
    pub fn outputs(&mut self) -> Vec<LeaderOutput> {
        std::mem::take(&mut self.out)
    }

    /// New records exist up to `last_index`: push them to streaming
    /// followers, within each one's window.
    pub fn on_append(&mut self, last_index: u64, log: &impl BacklogSource) {
        if last_index <= self.last_index {
            return;
        }
        self.last_index = last_index;
        self.learn_term_start(log);
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            self.pump(id, log);
        }
        // A single-node cluster commits on its own durability alone.
        self.recompute_commit();
        self.debug_check();
    }

    /// The leader's own log is durable up to `index`.
    pub fn on_durable(&mut self, index: u64) {
        let index = index.min(self.last_index);
        if index > self.durable {
            self.durable = index;
            self.recompute_commit();
        }
        self.debug_check();
    }

    /// The link to follower `id` moved bytes: some arrived from it, or a
    /// write that found the socket full went through (the follower is
    /// reading). A follower busy receiving a long snapshot or a 16 MiB
    /// record sends no ack until the message is complete, which on a busy
    /// machine can take longer than the timeout: it is alive all the same.
    /// A write that went straight into the socket buffer proves nothing
    /// (the kernel takes bytes for a peer that stopped reading), which is
    /// why the driver reports only writes that had to wait.
    pub fn on_link_activity(&mut self, id: NodeId) {
        if let Some(p) = self.peers.get_mut(&id) {
            if p.state != FollowerState::Down {
                p.ticks_since_ack = 0;
            }
        }
    }

    /// The follower's connection closed (seen by the driver).
    pub fn on_disconnected(&mut self, id: NodeId) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.state = FollowerState::Down;
            p.snapshot = None;
        }
    }

    /// A message from follower `from` (the id the driver learned from that
    /// connection's handshake). Messages a follower never sends are ignored.
    pub fn step(&mut self, from: NodeId, msg: Message, log: &impl BacklogSource) {
        self.learn_term_start(log);
        match msg {
            Message::Handshake { node_id, session, history_id, last_applied, last_term }
                if node_id == from =>
            {
                let last = LogPosition { term: last_term, index: last_applied };
                self.on_handshake(from, session, history_id, last, log)
            }
            Message::Ack { node_id, session, applied, durable, .. } if node_id == from => {
                self.on_ack(from, session, applied, durable, log)
            }
            _ => {}
        }
        self.debug_check();
    }

    /// Answers a handshake from where the follower's log and ours part
    /// ([`reconcile`], by terms): PARTIAL_RESYNC when its log is a prefix
    /// of ours that the backlog continues, else a full resync. A follower
    /// whose log diverges (a suffix a deposed leader wrote) has applied
    /// that suffix to its store already, and applied records cannot be
    /// un-applied: it is resynced in full too (see `reconcile`'s notes).
    fn on_handshake(
        &mut self,
        from: NodeId,
        session: u64,
        history_id: HistoryId,
        last: LogPosition,
        log: &impl BacklogSource,
    ) {
        let term = self.term;
        let peer = self.peers.entry(from).or_insert_with(|| Peer::new(false));
        if peer.session == Some(session) {
            // A duplicate of the handshake already answered.
            return;
        }
        peer.session = Some(session);
        peer.ticks_since_ack = 0;
        peer.ticks_since_send = 0;
        peer.ticks_without_progress = 0;
        peer.snapshot = None;
        let decision = if history_id == self.history_id {
            reconcile(&Terms(log), last, last.index)
        } else {
            Reconcile::FullResync
        };
        match decision {
            Reconcile::Resume { .. } => {}
            // Its log is ours up to `keep` only: what it acked above is not ours.
            Reconcile::Truncate { keep } => peer.matched = peer.matched.min(keep),
            // Another history, or a log we cannot place: nothing it acked
            // counts. (One merely behind the backlog keeps what it acked.)
            Reconcile::Probe { .. } | Reconcile::FullResync => {
                let behind =
                    history_id == self.history_id && log.term_at(last.index).is_none_or(|t| t == last.term);
                if !behind {
                    peer.matched = 0;
                }
            }
        }
        if let Reconcile::Resume { from: from_index } = decision {
            debug_assert_eq!(from_index, last.index + 1);
            peer.state = FollowerState::Streaming;
            peer.next_index = from_index;
            peer.applied = last.index;
            self.out.push(LeaderOutput::Send {
                to: from,
                msg: Message::PartialResync { session, from_index, term },
            });
            self.pump(from, log);
        } else {
            self.start_full_sync(from);
        }
        self.recompute_commit();
    }

    fn start_full_sync(&mut self, id: NodeId) {
        if let Some(p) = self.peers.get_mut(&id) {
            p.state = FollowerState::FullSync;
            p.snapshot = None;
            p.ticks_without_progress = 0;
            self.out.push(LeaderOutput::StartFullSync { to: id });
        }
    }

    fn on_ack(&mut self, from: NodeId, session: u64, applied: u64, durable: u64, log: &impl BacklogSource) {
        let last_index = self.last_index;
        let Some(p) = self.peers.get_mut(&from) else { return };
        if p.session != Some(session) {
            return;
        }
        let applied = applied.min(last_index);
        let durable = durable.min(applied);
        if p.state == FollowerState::FullSync {
            // Proof of life during a snapshot transfer. Its indexes still
            // describe the dataset being replaced (maybe another history's):
            // they count for nothing.
            p.ticks_since_ack = 0;
            return;
        }
        if p.state == FollowerState::Down {
            // The link is being torn down; durability it reports is still
            // true, the rest waits for the next handshake.
            if durable > p.matched {
                p.matched = durable;
                self.recompute_commit();
            }
            return;
        }
        p.ticks_since_ack = 0;
        if applied > p.applied {
            p.applied = applied;
            p.ticks_without_progress = 0;
        }
        if p.state == FollowerState::Streaming && p.next_index <= p.applied {
            // It got further than we sent (a resend overlapped): skip ahead.
            p.next_index = p.applied + 1;
        }
        if durable > p.matched {
            p.matched = durable;
            self.recompute_commit();
        }
        self.pump(from, log);
    }

    /// The driver produced a snapshot covering `1..=snapshot_index` for
    /// follower `to`; announce it. Chunks follow via `snapshot_chunk`.
    pub fn snapshot_ready(&mut self, to: NodeId, snapshot_index: u64) -> Result<(), ReplicationError> {
        let (history_id, term) = (self.history_id, self.term);
        let p = self.peers.get_mut(&to).ok_or(ReplicationError::UnknownFollower(to))?;
        let session = match (p.state, p.snapshot, p.session) {
            (FollowerState::FullSync, None, Some(s)) => s,
            _ => return Err(ReplicationError::NotInFullSync(to)),
        };
        p.snapshot = Some(SnapshotSend { index: snapshot_index, offset: 0 });
        p.ticks_since_send = 0;
        self.out.push(LeaderOutput::Send {
            to,
            msg: Message::FullResync { session, snapshot_index, history_id, term },
        });
        Ok(())
    }

    /// Sends the next slice of the snapshot announced by `snapshot_ready`.
    /// After the `last` one the follower streams from `snapshot_index + 1`.
    /// An error means the follower reconnected or went down meanwhile: stop
    /// the transfer.
    pub fn snapshot_chunk(
        &mut self,
        to: NodeId,
        bytes: Bytes,
        last: bool,
        log: &impl BacklogSource,
    ) -> Result<(), ReplicationError> {
        let p = self.peers.get_mut(&to).ok_or(ReplicationError::UnknownFollower(to))?;
        let (session, mut snap) = match (p.state, p.snapshot, p.session) {
            (FollowerState::FullSync, Some(snap), Some(s)) => (s, snap),
            _ => return Err(ReplicationError::NotInFullSync(to)),
        };
        let offset = snap.offset;
        snap.offset += bytes.len() as u64;
        p.snapshot = Some(snap);
        p.ticks_since_send = 0;
        self.out
            .push(LeaderOutput::Send { to, msg: Message::SnapshotChunk { session, offset, bytes, last } });
        if last {
            p.state = FollowerState::Streaming;
            p.snapshot = None;
            p.next_index = snap.index + 1;
            p.applied = p.applied.max(snap.index);
            p.ticks_without_progress = 0;
            self.pump(to, log);
        }
        self.debug_check();
        Ok(())
    }

    /// The oldest record a connected follower still needs: after its
    /// snapshot while a full resync is under way (after the log's end until
    /// the snapshot is announced: it covers at least that), after what it
    /// applied while it streams. `None` when every follower is down. The
    /// backlog holds these past its size (`ReplBacklog::hold_from`).
    pub fn needed_from(&self) -> Option<u64> {
        self.peers
            .values()
            .filter_map(|p| match p.state {
                FollowerState::FullSync => Some(p.snapshot.map_or(self.last_index, |s| s.index) + 1),
                FollowerState::Streaming => Some(p.applied + 1),
                FollowerState::Down => None,
            })
            .min()
    }

    /// A ReadIndex round started (or one still unconfirmed is repeated):
    /// a heartbeat carrying `round` goes to every follower with a link now,
    /// rather than at the next interval, so waiting reads are confirmed
    /// within a round trip. Later heartbeats carry it too.
    pub fn heartbeat_round(&mut self, round: u64) {
        self.read_round = self.read_round.max(round);
        let (term, last_index, commit, round) = (self.term, self.last_index, self.commit, self.read_round);
        for (&id, p) in &mut self.peers {
            if p.state != FollowerState::Down {
                p.ticks_since_send = 0;
                self.out.push(LeaderOutput::Send {
                    to: id,
                    msg: Message::Heartbeat { term, last_index, commit_index: commit, round },
                });
            }
        }
    }

    /// One unit of time: heartbeats, retransmits, silent-follower detection.
    pub fn tick(&mut self, log: &impl BacklogSource) {
        self.learn_term_start(log);
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            let (commit, term, last_index, round) =
                (self.commit, self.term, self.last_index, self.read_round);
            let Some(p) = self.peers.get_mut(&id) else { continue };
            if p.state == FollowerState::Down {
                continue;
            }
            p.ticks_since_ack += 1;
            if p.ticks_since_ack > self.cfg.follower_timeout_ticks {
                p.state = FollowerState::Down;
                p.snapshot = None;
                self.out.push(LeaderOutput::FollowerDown { id, reason: DownReason::Silent });
                continue;
            }
            p.ticks_since_send += 1;
            if p.state == FollowerState::Streaming && p.applied + 1 < p.next_index {
                p.ticks_without_progress += 1;
                if p.ticks_without_progress >= self.cfg.retransmit_ticks {
                    p.next_index = p.applied + 1;
                    p.ticks_without_progress = 0;
                    self.pump(id, log);
                }
            }
            let Some(p) = self.peers.get_mut(&id) else { continue };
            if p.state != FollowerState::Down && p.ticks_since_send >= self.cfg.heartbeat_interval_ticks {
                p.ticks_since_send = 0;
                self.out.push(LeaderOutput::Send {
                    to: id,
                    msg: Message::Heartbeat { term, last_index, commit_index: commit, round },
                });
            }
        }
        self.debug_check();
    }

    /// Pushes batches to `id` while it streams, has records to receive and
    /// room in its window.
    fn pump(&mut self, id: NodeId, log: &impl BacklogSource) {
        loop {
            let commit = self.commit;
            let Some(p) = self.peers.get_mut(&id) else { return };
            if p.state != FollowerState::Streaming || p.next_index > self.last_index {
                return;
            }
            let in_flight = p.next_index - 1 - p.applied;
            if in_flight >= self.cfg.window {
                return;
            }
            // Batches still out: sent (below next_index), not yet applied.
            let (applied, next) = (p.applied, p.next_index);
            p.batches.retain(|&last| last > applied && last < next);
            if p.batches.len() >= self.cfg.max_batches_in_flight {
                return;
            }
            let room = (self.cfg.window - in_flight).min(self.cfg.max_batch_records as u64) as usize;
            match log.since(p.next_index, room, self.cfg.max_batch_bytes) {
                None => {
                    // The follower fell behind the backlog mid-stream. Drop
                    // the link rather than send a second snapshot in this
                    // session: its chunks could interleave with a late first
                    // one's. The next handshake gets the full resync.
                    p.state = FollowerState::Down;
                    p.snapshot = None;
                    self.out.push(LeaderOutput::FollowerDown { id, reason: DownReason::BehindBacklog });
                    return;
                }
                Some(batch) => {
                    let Some(last) = batch.last() else { return };
                    p.next_index = last.index + 1;
                    p.batches.push_back(last.index);
                    p.ticks_since_send = 0;
                    self.out.push(LeaderOutput::Send {
                        to: id,
                        msg: Message::Records { records: batch, commit_index: commit },
                    });
                }
            }
        }
    }

    /// Asserts the invariants stated on [`Leader`] and [`Peer`] (debug
    /// builds; O(followers)).
    fn debug_check(&self) {
        debug_assert!(self.commit <= self.last_index && self.durable <= self.last_index, "{self:?}");
        for p in self.peers.values() {
            p.debug_check(self.cfg.follower_timeout_ticks);
        }
    }

    /// Finds [`Leader::term_start`](Self) once the log holds a record of
    /// this term: the lowest such index the backlog still knows (a binary
    /// search, terms never decreasing along a log). If the term's first
    /// records already left the backlog, a higher index is found, which
    /// only delays commits below it until a majority passes it.
    fn learn_term_start(&mut self, log: &impl BacklogSource) {
        if self.term_start.is_some() || log.term_at(self.last_index) != Some(self.term) {
            return;
        }
        let (mut lo, mut hi) = (log.first_index().saturating_sub(1), self.last_index);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if log.term_at(mid) == Some(self.term) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        self.term_start = Some(hi);
        self.recompute_commit();
    }

    /// commit = the majority-th highest durable index among the voters and
    /// the leader, if that record is of this leader's term (Raft §5.4.2,
    /// Figure 8: an older term's record a majority holds may still be
    /// overwritten by another leader, until one of the current term above
    /// it commits); never moves backwards.
    fn recompute_commit(&mut self) {
        let mut held: Vec<u64> = self.peers.values().filter(|p| p.voter).map(|p| p.matched).collect();
        held.push(self.durable);
        let (term, last, start) = (self.term, self.last_index, self.term_start);
        let own = |i: u64| (start.is_some_and(|s| s <= i) && i <= last).then_some(term);
        self.commit = commit_index(self.commit, self.term, &held, own);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::RecordEntry;

    /// Records `first..=last`, each `size` bytes.
    struct VecLog {
        first: u64,
        last: u64,
        size: usize,
    }

    impl BacklogSource for VecLog {
        fn since(&self, from: u64, max_records: usize, max_bytes: usize) -> Option<Vec<RecordEntry>> {
            if from < self.first {
                return None;
            }
            let mut out = Vec::new();
            for index in from..=self.last {
                if out.len() >= max_records || (!out.is_empty() && (out.len() + 1) * self.size > max_bytes) {
                    break;
                }
                out.push(RecordEntry { term: TERM, index, bytes: Bytes::from(vec![0u8; self.size]) });
            }
            Some(out)
        }
        fn first_index(&self) -> u64 {
            self.first
        }
        fn last_index(&self) -> u64 {
            self.last
        }
        fn term_at(&self, index: u64) -> Option<u64> {
            match index {
                0 => Some(0),
                // Like `ReplBacklog`, the term just below the oldest record is known.
                i if (self.first.saturating_sub(1)..=self.last).contains(&i) => Some(TERM),
                _ => None,
            }
        }
    }

    /// The leaders' term in these tests; every `VecLog` record is of it.
    const TERM: u64 = 2;

    /// Records `1..=terms.len()`, record `i` of term `terms[i - 1]`.
    struct TermLog {
        terms: Vec<u64>,
    }

    impl BacklogSource for TermLog {
        fn since(&self, from: u64, max_records: usize, _max_bytes: usize) -> Option<Vec<RecordEntry>> {
            let out = (from..=self.last_index())
                .take(max_records)
                .map(|index| RecordEntry {
                    term: self.terms[index as usize - 1],
                    index,
                    bytes: Bytes::from_static(b"r"),
                })
                .collect();
            Some(out)
        }
        fn first_index(&self) -> u64 {
            1
        }
        fn last_index(&self) -> u64 {
            self.terms.len() as u64
        }
        fn term_at(&self, index: u64) -> Option<u64> {
            match index {
                0 => Some(0),
                i => self.terms.get(i as usize - 1).copied(),
            }
        }
    }

    /// Raft §5.4.2, Figure 8 (c)–(e), on the leader machine: S1 leads term
    /// 4 of a five-node cluster with log terms 1 2 and appends index 3 of
    /// term 4. Once index 2 (term 2) is on a majority it is still not
    /// committed — (d) shows another leader erasing it — until index 3, of
    /// S1's term, is on a majority; then both are.
    #[test]
    fn figure_8_an_older_terms_record_commits_only_under_one_of_the_leaders_term() {
        let mut log = TermLog { terms: vec![1, 2] };
        let mut l = Leader::new(cfg(), 1, 7, 4, 2, &[1, 2, 3, 4, 5]).unwrap();
        log.terms.push(4);
        l.on_append(3, &log);
        l.on_durable(3);
        for id in [2, 3] {
            l.step(
                id,
                Message::Handshake { node_id: id, session: 1, history_id: 7, last_applied: 1, last_term: 1 },
                &log,
            );
            l.step(id, Message::Ack { node_id: id, session: 1, applied: 2, durable: 2, round: 0 }, &log);
        }
        assert_eq!(l.acked_count(2), 2, "S1, S2, S3 hold index 2: a majority of five");
        assert_eq!(
            l.commit_index(),
            0,
            "index 2 is of term 2, not the leader's 4: not committed by counting"
        );
        l.step(2, Message::Ack { node_id: 2, session: 1, applied: 3, durable: 3, round: 0 }, &log);
        assert_eq!(l.commit_index(), 0, "index 3 on two of five");
        l.step(3, Message::Ack { node_id: 3, session: 1, applied: 3, durable: 3, round: 0 }, &log);
        assert_eq!(l.commit_index(), 3, "index 3 of term 4 on a majority commits it and index 2 with it");

        // The same acks under a leader of term 2 (whose record index 2 is)
        // commit index 2 at once: the rule is about the leader's own term.
        let log = TermLog { terms: vec![1, 2] };
        let mut l = Leader::new(cfg(), 1, 7, 2, 2, &[1, 2, 3, 4, 5]).unwrap();
        l.on_durable(2);
        for id in [2, 3] {
            l.step(
                id,
                Message::Handshake { node_id: id, session: 1, history_id: 7, last_applied: 1, last_term: 1 },
                &log,
            );
            l.step(id, Message::Ack { node_id: id, session: 1, applied: 2, durable: 2, round: 0 }, &log);
        }
        assert_eq!(l.commit_index(), 2);
    }

    #[test]
    fn handshakes_are_reconciled_by_term() {
        // Leader of term 3, log terms 1 1 2 2 3.
        let log = TermLog { terms: vec![1, 1, 2, 2, 3] };
        // (follower's last (term, index), decision, what its earlier durable ack of 5 becomes)
        let cases = [
            ((2, 4), Decision::Partial(5), 5), // a prefix: resume
            ((3, 5), Decision::Partial(6), 5), // up to date
            ((2, 6), Decision::Full, 4), // longer, its 5..6 of term 2 not ours: truncated, applied, so full
            ((1, 3), Decision::Full, 2), // a term-1 record at 3 where we have term 2: ours up to 2
            ((4, 5), Decision::Full, 0), // a term we never had: cannot place it
            ((0, 0), Decision::Partial(1), 5), // empty: resumes from 1 (acks kept, as before terms)
        ];
        for ((term, index), want, matched) in cases {
            let mut l = Leader::new(cfg(), 0, 7, 3, 5, &[1]).unwrap();
            l.on_durable(5);
            let hello = |session, last_applied, last_term| Message::Handshake {
                node_id: 1,
                session,
                history_id: 7,
                last_applied,
                last_term,
            };
            l.step(1, hello(1, 5, 3), &log);
            l.step(1, Message::Ack { node_id: 1, session: 1, applied: 5, durable: 5, round: 0 }, &log);
            assert_eq!(l.commit_index(), 5);
            l.outputs();
            l.step(1, hello(2, index, term), &log);
            let got = match l.outputs().first() {
                Some(LeaderOutput::Send { msg: Message::PartialResync { from_index, .. }, .. }) => {
                    Decision::Partial(*from_index)
                }
                Some(LeaderOutput::StartFullSync { to: 1 }) => Decision::Full,
                other => panic!("({term}, {index}): unexpected {other:?}"),
            };
            assert_eq!(got, want, "({term}, {index})");
            assert_eq!(l.progress(1).unwrap().matched, matched, "({term}, {index})");
            assert_eq!(l.commit_index(), 5, "commit never goes back");
        }
    }

    #[test]
    fn a_leader_with_no_record_of_its_term_commits_nothing() {
        // Restarted as leader of term 3 over records of term 2 (a VecLog),
        // alone: durable everything, committed nothing until its NOOP.
        let log = VecLog { first: 1, last: 5, size: 8 };
        let mut l = Leader::new(cfg(), 0, 7, 3, 5, &[]).unwrap();
        l.on_durable(5);
        l.tick(&log);
        assert_eq!(l.commit_index(), 0);
        assert!(!l.committed_in_term(), "reads wait for a record of term 3 to commit");
        let log = TermLog { terms: vec![2, 2, 2, 2, 2, 3] };
        l.on_append(6, &log);
        l.on_durable(6);
        assert_eq!(l.commit_index(), 6, "the NOOP of term 3 commits, and everything before it");
        assert!(l.committed_in_term(), "reads may now be confirmed");
    }

    /// ReadIndex (thesis §6.4): a round goes out at once as a heartbeat to
    /// every follower with a link (not to one that is down), and the
    /// periodic heartbeats carry the newest round from then on.
    #[test]
    fn a_read_round_is_heartbeated_at_once_to_linked_followers_and_kept_in_later_heartbeats() {
        let log = VecLog { first: 1, last: 3, size: 8 };
        let mut l = leader(3, &[1, 2, 3]);
        handshake(&mut l, 1, 1, 7, 3, &log);
        l.outputs();
        l.heartbeat_round(4);
        let rounds = |outs: &[LeaderOutput]| -> Vec<(NodeId, u64)> {
            outs.iter()
                .filter_map(|o| match o {
                    LeaderOutput::Send { to, msg: Message::Heartbeat { round, term: 2, .. } } => {
                        Some((*to, *round))
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(rounds(&l.outputs()), vec![(1, 4)], "follower 1 only: 2 and 3 never connected");
        l.heartbeat_round(3);
        assert_eq!(rounds(&l.outputs()), vec![(1, 4)], "a round never goes back");
        for _ in 0..cfg().heartbeat_interval_ticks {
            l.tick(&log);
        }
        assert_eq!(rounds(&l.outputs()), vec![(1, 4)]);
    }

    fn cfg() -> LeaderConfig {
        LeaderConfig {
            heartbeat_interval_ticks: 2,
            follower_timeout_ticks: 6,
            retransmit_ticks: 3,
            max_batch_records: 8,
            max_batch_bytes: 1 << 20,
            window: 24,
            max_batches_in_flight: 100,
        }
    }

    fn leader(last: u64, voters: &[NodeId]) -> Leader {
        let mut l = Leader::new(cfg(), 0, 7, 2, last, voters).unwrap();
        l.on_durable(last);
        l
    }

    fn handshake(
        l: &mut Leader,
        id: NodeId,
        session: u64,
        history_id: HistoryId,
        last_applied: u64,
        log: &VecLog,
    ) {
        let last_term = if last_applied == 0 { 0 } else { TERM };
        l.step(id, Message::Handshake { node_id: id, session, history_id, last_applied, last_term }, log);
    }

    fn ack(l: &mut Leader, id: NodeId, session: u64, applied: u64, durable: u64, log: &VecLog) {
        l.step(id, Message::Ack { node_id: id, session, applied, durable, round: 0 }, log);
    }

    /// Index ranges of the Records sent, in order.
    fn batches(outs: &[LeaderOutput]) -> Vec<(u64, u64)> {
        outs.iter()
            .filter_map(|o| match o {
                LeaderOutput::Send { msg: Message::Records { records, .. }, .. } => {
                    Some((records[0].index, records[records.len() - 1].index))
                }
                _ => None,
            })
            .collect()
    }

    #[derive(Debug, PartialEq)]
    enum Decision {
        Partial(u64),
        Full,
    }

    #[test]
    fn under_load_new_records_wait_for_an_ack_and_go_in_one_batch() {
        let mut l =
            Leader::new(LeaderConfig { max_batches_in_flight: 2, window: 1000, ..cfg() }, 0, 7, 2, 0, &[1])
                .unwrap();
        let mut log = VecLog { first: 1, last: 0, size: 8 };
        handshake(&mut l, 1, 5, 7, 0, &log);
        l.outputs();
        // Three appends, one record each: two batches go out, the third waits.
        for last in 1..=3 {
            log.last = last;
            l.on_append(last, &log);
        }
        assert_eq!(batches(&l.outputs()), vec![(1, 1), (2, 2)]);
        log.last = 6;
        l.on_append(6, &log);
        assert!(batches(&l.outputs()).is_empty(), "still two in flight");
        // The first batch is applied: everything since goes in one batch.
        l.step(1, Message::Ack { node_id: 1, session: 5, applied: 1, durable: 1, round: 0 }, &log);
        assert_eq!(batches(&l.outputs()), vec![(3, 6)]);
    }

    #[test]
    fn acks_during_a_full_resync_prove_life_but_count_for_nothing() {
        let log = VecLog { first: 1, last: 10, size: 8 };
        let mut l = leader(10, &[2]);
        // Follower 2 on another history, claiming index 9 durable there.
        handshake(&mut l, 2, 5, 99, 9, &log);
        assert!(l.outputs().contains(&LeaderOutput::StartFullSync { to: 2 }));
        for _ in 0..3 {
            l.tick(&log);
        }
        l.step(2, Message::Ack { node_id: 2, session: 5, applied: 9, durable: 9, round: 0 }, &log);
        let p = l.progress(2).unwrap();
        assert_eq!(p.matched, 0, "another history's index is not ours");
        assert_eq!(p.ticks_since_ack, 0, "but the follower is alive");
        assert_eq!(l.commit_index(), 0, "nothing is committed by it");
        assert_eq!(l.acked_count(1), 0);
    }

    #[test]
    fn handshake_decision_table() {
        // (name, follower history, follower last_applied, backlog first..=last, decision)
        let cases = [
            ("caught up", 7, 50, (10, 50), Decision::Partial(51)),
            ("behind, in backlog", 7, 20, (10, 50), Decision::Partial(21)),
            ("exactly at backlog start", 7, 9, (10, 50), Decision::Partial(10)),
            ("behind the backlog", 7, 8, (10, 50), Decision::Full),
            ("other history", 8, 20, (10, 50), Decision::Full),
            ("ahead of the leader", 7, 60, (10, 50), Decision::Full),
            ("empty node, empty log", 7, 0, (1, 0), Decision::Partial(1)),
            ("empty backlog, caught up", 7, 50, (51, 50), Decision::Partial(51)),
        ];
        for (i, (name, history, applied, (first, last), want)) in cases.into_iter().enumerate() {
            let log = VecLog { first, last, size: 10 };
            let mut l = leader(last, &[1]);
            handshake(&mut l, 1, 11, history, applied, &log);
            let outs = l.outputs();
            let got = match outs.first() {
                Some(LeaderOutput::Send {
                    msg: Message::PartialResync { from_index, session: 11, term: 2 },
                    ..
                }) => Decision::Partial(*from_index),
                Some(LeaderOutput::StartFullSync { to: 1 }) => Decision::Full,
                other => panic!("case {i} ({name}): unexpected {other:?}"),
            };
            assert_eq!(got, want, "case {i} ({name})");
        }
    }

    #[test]
    fn streams_in_batches_within_the_window() {
        let log = VecLog { first: 1, last: 100, size: 10 };
        let mut l = leader(100, &[1]);
        handshake(&mut l, 1, 1, 7, 0, &log);
        assert_eq!(batches(&l.outputs()), vec![(1, 8), (9, 16), (17, 24)], "window of 24, batches of 8");
        ack(&mut l, 1, 1, 8, 0, &log);
        assert_eq!(batches(&l.outputs()), vec![(25, 32)]);
        ack(&mut l, 1, 1, 30, 30, &log);
        assert_eq!(batches(&l.outputs()), vec![(33, 40), (41, 48), (49, 54)]);
        assert_eq!(l.progress(1).unwrap().matched, 30);
    }

    #[test]
    fn batches_respect_the_byte_limit() {
        let log = VecLog { first: 1, last: 10, size: 40 };
        let mut l = Leader::new(LeaderConfig { max_batch_bytes: 100, ..cfg() }, 0, 7, 2, 10, &[1]).unwrap();
        handshake(&mut l, 1, 1, 7, 0, &log);
        assert_eq!(batches(&l.outputs()), vec![(1, 2), (3, 4), (5, 6), (7, 8), (9, 10)]);
    }

    #[test]
    fn new_appends_are_pushed_to_streaming_followers() {
        let mut log = VecLog { first: 1, last: 0, size: 10 };
        let mut l = leader(0, &[1]);
        handshake(&mut l, 1, 1, 7, 0, &log);
        l.outputs();
        log.last = 3;
        l.on_append(3, &log);
        assert_eq!(batches(&l.outputs()), vec![(1, 3)]);
    }

    #[test]
    fn resends_after_no_progress() {
        let log = VecLog { first: 1, last: 10, size: 10 };
        let mut l = leader(10, &[1]);
        handshake(&mut l, 1, 1, 7, 0, &log);
        l.outputs();
        ack(&mut l, 1, 1, 4, 4, &log);
        let mut resent = Vec::new();
        for _ in 0..3 {
            l.tick(&log);
            resent.extend(batches(&l.outputs()));
        }
        assert_eq!(resent, vec![(5, 10)], "rewinds to applied + 1 after retransmit_ticks");
    }

    #[test]
    fn heartbeats_when_idle_and_silent_follower_goes_down() {
        let log = VecLog { first: 1, last: 5, size: 10 };
        let mut l = leader(5, &[1]);
        handshake(&mut l, 1, 1, 7, 5, &log);
        l.outputs();
        let mut heartbeats = 0;
        let mut downs = Vec::new();
        for t in 1..=12 {
            l.tick(&log);
            for o in l.outputs() {
                match o {
                    LeaderOutput::Send { msg: Message::Heartbeat { term: 2, last_index: 5, .. }, .. } => {
                        heartbeats += 1
                    }
                    LeaderOutput::FollowerDown { id, .. } => downs.push((t, id)),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert_eq!(heartbeats, 3, "every 2 ticks until declared down");
        assert_eq!(downs, vec![(7, 1)], "down once, after more than 6 silent ticks");
        assert_eq!(l.progress(1).unwrap().state, FollowerState::Down);
    }

    #[test]
    fn acks_keep_a_follower_up() {
        let log = VecLog { first: 1, last: 5, size: 10 };
        let mut l = leader(5, &[1]);
        handshake(&mut l, 1, 1, 7, 5, &log);
        for _ in 0..30 {
            l.tick(&log);
            ack(&mut l, 1, 1, 5, 5, &log);
            assert!(!l.outputs().iter().any(|o| matches!(o, LeaderOutput::FollowerDown { .. })));
        }
    }

    /// Ticks `l` `n` times (reporting link activity for `id` before each
    /// tick if `active`) and returns the ticks, 1-based, at which `id` went down.
    fn tick_and_watch(l: &mut Leader, id: NodeId, n: u64, active: bool, log: &VecLog) -> Vec<u64> {
        let mut downs = Vec::new();
        for t in 1..=n {
            if active {
                l.on_link_activity(id);
            }
            l.tick(log);
            if l.outputs().iter().any(|o| matches!(o, LeaderOutput::FollowerDown { id: d, .. } if *d == id)) {
                downs.push(t);
            }
        }
        downs
    }

    #[test]
    fn a_follower_busy_receiving_stays_up_while_its_link_moves_bytes() {
        // A 16 MiB batch in flight: no ack for many timeouts, but the
        // leader's blocked writes keep going through.
        let log = VecLog { first: 1, last: 5, size: 16 << 20 };
        let mut l = leader(5, &[1]);
        handshake(&mut l, 1, 1, 7, 0, &log);
        assert_eq!(batches(&l.outputs()), vec![(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]);
        assert!(tick_and_watch(&mut l, 1, 40, true, &log).is_empty());
        assert_eq!(l.progress(1).unwrap().state, FollowerState::Streaming);
        // Once the link stops moving, the timeout applies as before: down
        // more than 6 ticks after the last sign of life (the last active tick).
        assert_eq!(tick_and_watch(&mut l, 1, 10, false, &log), vec![6]);
        l.on_link_activity(1);
        assert_eq!(l.progress(1).unwrap().state, FollowerState::Down, "activity does not revive a link");
    }

    #[test]
    fn the_backlog_is_asked_to_hold_what_connected_followers_still_need() {
        let log = VecLog { first: 20, last: 30, size: 10 };
        let mut l = leader(30, &[1, 2]);
        assert_eq!(l.needed_from(), None, "nobody connected");
        // Node 1 needs a full resync: everything after the log's end until
        // its snapshot is announced, then everything after the snapshot.
        handshake(&mut l, 1, 3, 7, 0, &log);
        assert_eq!(l.needed_from(), Some(31));
        l.snapshot_ready(1, 28).unwrap();
        assert_eq!(l.needed_from(), Some(29));
        // Node 2 streams from 25: it needs what it has not applied.
        handshake(&mut l, 2, 4, 7, 24, &log);
        assert_eq!(l.progress(2).unwrap().state, FollowerState::Streaming);
        assert_eq!(l.needed_from(), Some(25));
        ack(&mut l, 2, 4, 30, 30, &log);
        assert_eq!(l.needed_from(), Some(29), "node 1's snapshot is now the oldest need");
        l.on_disconnected(1);
        assert_eq!(l.needed_from(), Some(31));
        l.on_disconnected(2);
        assert_eq!(l.needed_from(), None);
    }

    #[test]
    fn a_full_resync_longer_than_the_timeout_completes_while_bytes_move() {
        let log = VecLog { first: 20, last: 30, size: 10 };
        let mut l = leader(30, &[1]);
        handshake(&mut l, 1, 3, 7, 0, &log);
        assert_eq!(l.outputs(), vec![LeaderOutput::StartFullSync { to: 1 }]);
        l.snapshot_ready(1, 30).unwrap();
        // Chunks 10 ticks apart (the timeout is 6), the follower acking none.
        for n in 0..5 {
            assert!(tick_and_watch(&mut l, 1, 10, true, &log).is_empty(), "before chunk {n}");
            l.snapshot_chunk(1, Bytes::from_static(b"data"), n == 4, &log).unwrap();
        }
        assert_eq!(l.progress(1).unwrap().state, FollowerState::Streaming);
        // Without the activity, the same transfer is cut.
        let mut l = leader(30, &[1]);
        handshake(&mut l, 1, 3, 7, 0, &log);
        l.snapshot_ready(1, 30).unwrap();
        l.outputs();
        assert_eq!(tick_and_watch(&mut l, 1, 10, false, &log), vec![7]);
        assert_eq!(
            l.snapshot_chunk(1, Bytes::from_static(b"data"), false, &log),
            Err(ReplicationError::NotInFullSync(1))
        );
    }

    #[test]
    fn commit_index_table() {
        // (voters' durable acks, leader durable, expected commit)
        let cases: &[(&[u64], u64, u64)] = &[
            (&[], 7, 7),
            (&[5], 9, 5),
            (&[5, 0], 9, 5),
            (&[0, 0], 9, 0),
            (&[3, 8], 6, 6),
            (&[9, 8], 2, 8),
            (&[4, 4, 0, 0], 9, 4),
            (&[4, 3, 2, 1], 0, 2),
            (&[10, 10, 10, 10], 10, 10),
        ];
        for (i, (acks, own, want)) in cases.iter().enumerate() {
            let ids: Vec<NodeId> = (1..=acks.len() as u64).collect();
            let log = VecLog { first: 1, last: 10, size: 10 };
            let mut l = Leader::new(cfg(), 0, 7, 2, 10, &ids).unwrap();
            for (&id, &d) in ids.iter().zip(acks.iter()) {
                handshake(&mut l, id, 1, 7, d, &log);
                ack(&mut l, id, 1, d, d, &log);
            }
            l.on_durable(*own);
            l.tick(&log);
            assert_eq!(l.commit_index(), *want, "case {i}: acks {acks:?}, leader {own}");
        }
    }

    #[test]
    fn read_replicas_count_for_wait_but_not_for_quorum() {
        let log = VecLog { first: 1, last: 10, size: 10 };
        let mut l = Leader::new(cfg(), 0, 7, 2, 10, &[1, 2]).unwrap();
        l.on_durable(10);
        handshake(&mut l, 9, 1, 7, 0, &log);
        ack(&mut l, 9, 1, 10, 10, &log);
        assert_eq!(l.acked_count(10), 1);
        assert_eq!(l.commit_index(), 0, "a non-voter does not make a majority");
        handshake(&mut l, 1, 1, 7, 0, &log);
        ack(&mut l, 1, 1, 10, 6, &log);
        assert_eq!(l.commit_index(), 6);
        assert_eq!((l.acked_count(6), l.acked_count(7)), (2, 1));
    }

    #[test]
    fn stale_and_duplicate_messages_are_ignored() {
        let log = VecLog { first: 1, last: 10, size: 10 };
        let mut l = leader(10, &[1]);
        handshake(&mut l, 1, 5, 7, 0, &log);
        l.outputs();
        handshake(&mut l, 1, 5, 7, 0, &log);
        assert!(l.outputs().is_empty(), "a duplicated handshake is answered once");
        ack(&mut l, 1, 4, 10, 10, &log);
        assert_eq!(l.progress(1).unwrap().matched, 0, "ack of an old session");
        ack(&mut l, 2, 5, 10, 10, &log);
        l.step(1, Message::Ack { node_id: 2, session: 5, applied: 10, durable: 10, round: 0 }, &log);
        assert_eq!(l.acked_count(1), 0, "misrouted or unknown acks count for nothing");
        ack(&mut l, 1, 5, 50, 50, &log);
        assert_eq!(l.progress(1).unwrap().matched, 10, "clamped to the leader's last index");
    }

    #[test]
    fn other_history_resets_what_the_follower_held() {
        let log = VecLog { first: 1, last: 10, size: 10 };
        let mut l = leader(10, &[1]);
        handshake(&mut l, 1, 1, 7, 0, &log);
        ack(&mut l, 1, 1, 10, 10, &log);
        assert_eq!(l.acked_count(10), 1);
        handshake(&mut l, 1, 2, 99, 3, &log);
        assert_eq!(l.acked_count(1), 0);
        assert_eq!(l.commit_index(), 10, "commit never goes back");
    }

    #[test]
    fn full_sync_hand_off() {
        let log = VecLog { first: 20, last: 30, size: 10 };
        let mut l = leader(30, &[1]);
        assert_eq!(l.snapshot_ready(5, 30), Err(ReplicationError::UnknownFollower(5)));
        assert_eq!(l.snapshot_ready(1, 30), Err(ReplicationError::NotInFullSync(1)));
        handshake(&mut l, 1, 3, 7, 0, &log);
        assert_eq!(l.outputs(), vec![LeaderOutput::StartFullSync { to: 1 }]);
        assert_eq!(
            l.snapshot_chunk(1, Bytes::new(), true, &log),
            Err(ReplicationError::NotInFullSync(1)),
            "chunks before the announcement"
        );
        l.snapshot_ready(1, 25).unwrap();
        l.snapshot_chunk(1, Bytes::from_static(b"abcd"), false, &log).unwrap();
        l.snapshot_chunk(1, Bytes::from_static(b"ef"), true, &log).unwrap();
        let outs = l.outputs();
        let msgs: Vec<&Message> = outs
            .iter()
            .map(|o| match o {
                LeaderOutput::Send { to: 1, msg } => msg,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(msgs[0], &Message::FullResync { session: 3, snapshot_index: 25, history_id: 7, term: 2 });
        assert!(matches!(msgs[1], Message::SnapshotChunk { offset: 0, last: false, .. }));
        assert!(matches!(msgs[2], Message::SnapshotChunk { offset: 4, last: true, .. }));
        assert_eq!(batches(&outs), vec![(26, 30)], "streams on from the snapshot's index");
        assert_eq!(l.progress(1).unwrap().state, FollowerState::Streaming);
    }

    #[test]
    fn falling_behind_the_backlog_mid_stream_drops_the_link() {
        let mut log = VecLog { first: 1, last: 10, size: 10 };
        let mut l = leader(10, &[1]);
        handshake(&mut l, 1, 1, 7, 0, &log);
        l.outputs();
        log.first = 8;
        for _ in 0..3 {
            l.tick(&log);
        }
        assert!(l
            .outputs()
            .contains(&LeaderOutput::FollowerDown { id: 1, reason: DownReason::BehindBacklog }));
        assert_eq!(l.progress(1).unwrap().state, FollowerState::Down);
        handshake(&mut l, 1, 2, 7, 0, &log);
        assert_eq!(
            l.outputs(),
            vec![LeaderOutput::StartFullSync { to: 1 }],
            "the next session resyncs fully"
        );
    }

    #[test]
    fn config_validation() {
        assert!(LeaderConfig::default().validate().is_ok());
        let bad = LeaderConfig { follower_timeout_ticks: 2, ..cfg() };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::NotGreater { field: "follower_timeout_ticks", .. })
        ));
        let bad = LeaderConfig { window: 4, ..cfg() };
        assert_eq!(bad.validate(), Err(ConfigError::TooSmall { field: "window", min: 8, got: 4 }));
        assert!(Leader::new(LeaderConfig { max_batch_records: 0, ..cfg() }, 0, 1, 1, 0, &[]).is_err());
    }
}
