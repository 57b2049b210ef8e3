//! The follower's side: the link's life cycle (connect, handshake, resync,
//! stream, time out, back off) and the exactly-once, in-order apply rule.
//!
//! An open connection proves nothing about the leader: the kernel of a
//! paused (SIGSTOPped) or wedged leader still completes the TCP handshake.
//! So a link counts as reaching the leader only once the leader says
//! something on it ([`LinkState::Handshaking`] until then), and one that
//! says nothing for the link timeout is dropped, reply awaited or not.
//!
//! Reconnects are prompt: the first after a link that held is immediate
//! (a restarted leader is back in the time it takes to start), then
//! jittered exponential backoff from `backoff_base_ticks`, capped low at
//! `backoff_max_ticks`, so a dead address sees a few attempts a second.
//!
//! Apply rule, per record: index ≤ `last_applied` is a duplicate (skipped);
//! `last_applied + 1` is applied; anything higher is a gap, which means the
//! stream lost something, so the link is dropped and the follower resyncs
//! with a fresh handshake rather than guess. A record's term is that of
//! the leader that created it, so a leader streams records of older terms
//! too (all it holds above the follower's): records are not filtered by
//! term. A deposed leader is refused where it speaks for itself: a resync
//! reply of a lower term than already heard (same history) drops the
//! link, and its heartbeats are ignored.

use bytes::Bytes;

use super::message::{Message, RecordEntry};
use super::{at_least, greater, ConfigError, HistoryId, LogPosition, NodeId, SeededRng};

/// Follower tuning, in ticks (100 ms intended, which the defaults assume).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerConfig {
    /// Ticks without any sign of life from the leader (a message, or bytes
    /// of one still arriving: see [`Follower::on_link_activity`]) before the
    /// link is down. Must exceed the leader's heartbeat interval with margin.
    pub leader_timeout_ticks: u64,
    /// Ticks spent resyncing without progress (a resync reply or a snapshot
    /// chunk) before giving up, while the leader shows life otherwise
    /// (heartbeats: a leader producing a snapshot sends them before its
    /// reply). A leader that shows none is dropped after
    /// `leader_timeout_ticks` instead. Heartbeats do not count as progress
    /// here: a lost resync reply would otherwise leave the follower waiting
    /// forever on a link that is alive. Must cover the leader's time to
    /// produce a snapshot before its first chunk.
    pub sync_timeout_ticks: u64,
    /// Reconnect delay after a failed attempt (the first reconnect after a
    /// link that held is immediate); doubles per consecutive failure.
    pub backoff_base_ticks: u64,
    /// Cap on the reconnect delay. Also how long a link must stream to
    /// count as having held (its loss then earns an immediate reconnect):
    /// a leader that drops every link at once is retried with backoff.
    pub backoff_max_ticks: u64,
    /// While the leader's bytes arrive but no whole message does (a large
    /// chunk or record crossing a slow link), an ack goes out this often so
    /// that the leader sees this follower alive too: it has no message to
    /// ack, and the leader's own sign of it (its blocked writes going
    /// through) is coarse, as a full socket wakes its writer only once much
    /// of its buffer has drained. The leader's heartbeat interval suits.
    /// Must be below `leader_timeout_ticks`.
    pub keepalive_ticks: u64,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig {
            leader_timeout_ticks: 50,
            sync_timeout_ticks: 300,
            backoff_base_ticks: 1,
            backoff_max_ticks: 3,
            keepalive_ticks: 5,
        }
    }
}

impl FollowerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least("leader_timeout_ticks", self.leader_timeout_ticks, 1)?;
        at_least("sync_timeout_ticks", self.sync_timeout_ticks, 1)?;
        at_least("backoff_base_ticks", self.backoff_base_ticks, 1)?;
        at_least("backoff_max_ticks", self.backoff_max_ticks, self.backoff_base_ticks)?;
        at_least("keepalive_ticks", self.keepalive_ticks, 1)?;
        greater("leader_timeout_ticks", self.leader_timeout_ticks, "keepalive_ticks", self.keepalive_ticks)
    }
}

/// The link to the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Waiting out the backoff before the next connection attempt.
    Down,
    /// Asked the driver to connect (`Connect`); waiting for
    /// `on_connected` / `on_connect_failed`.
    Connecting,
    /// Handshake sent on an open connection, and nothing heard back yet:
    /// not a link to the leader so far (a paused leader's kernel accepts
    /// connections). Dropped after `leader_timeout_ticks` of that.
    Handshaking,
    /// The leader answered (any message or bytes); waiting for the resync
    /// reply or receiving a snapshot.
    Syncing,
    /// Applying the live stream.
    Streaming,
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowerOutput {
    /// Write `msg` to the leader's connection.
    Send(Message),
    /// Apply these records to the store, in this order, and append them to
    /// the follower's own log; report persistence with `on_durable`. Always
    /// consecutive, starting at the previous `last_applied + 1`.
    Apply(Vec<RecordEntry>),
    /// Snapshot bytes at `offset`; `offset == 0` starts a new snapshot
    /// (discard any partial one).
    SnapshotData { offset: u64, bytes: Bytes },
    /// The snapshot is complete: replace the dataset with it. It covers
    /// `1..=snapshot_index` of `history_id`; persist it and then call
    /// `on_durable(snapshot_index)`.
    LoadSnapshot { snapshot_index: u64, history_id: HistoryId, term: u64 },
    /// Open a connection to the leader, then call `on_connected` (or
    /// `on_connect_failed`).
    Connect,
    /// The link is down: close the connection. A `Connect` follows after
    /// `reconnect_after_ticks` ticks (0: right after this output).
    LinkDown { reconnect_after_ticks: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    AwaitingReply,
    Snapshot { index: u64, history_id: HistoryId, term: u64, offset: u64 },
}

/// The follower's replication state machine.
///
/// Invariants (checked by `debug_check` after every input): see the
/// fields; every record handed out in `Apply` had index `last_applied + 1`
/// at that moment.
#[derive(Debug)]
pub struct Follower {
    cfg: FollowerConfig,
    node_id: NodeId,
    /// The history `last_applied` and `durable` count in (0: none).
    history_id: HistoryId,
    /// Highest index applied to the store. Only moves forward, except when
    /// a full resync replaces the dataset (it then becomes the snapshot's
    /// index, which may be lower).
    last_applied: u64,
    /// Term of the record at `last_applied` (0 for none): with it the
    /// handshake says which log this is, not just how long (§5.3). After a
    /// full resync, the term the leader sent it with, which is at least the
    /// real one: a mismatch then costs a full resync, never a wrong match
    /// (no record of the leader's term sits at a lower index anywhere else).
    last_term: u64,
    /// Highest index the driver reported persisted. Invariant: `durable ≤
    /// last_applied` (the driver persists what it has applied, and only
    /// then reports it durable); only this is acked as durable.
    durable: u64,
    /// Highest term seen from the leader; records below it are stale.
    leader_term: u64,
    /// The term the leader claimed on the current link (its resync reply's,
    /// its heartbeats'); 0 until it claimed one there. Its bytes arriving
    /// are contact with a leader of this term, for the election timer: a
    /// fresh follower's `leader_term` stays 0 until its full resync ends.
    link_term: u64,
    /// Leader's commit index as last reported (never decreases).
    leader_commit: u64,
    state: LinkState,
    /// The resync in progress. Invariant: `AwaitingReply` unless `state`
    /// is `Syncing` (a snapshot transfer is only followed while syncing).
    sync: Sync,
    /// Current handshake's session; replies carrying another are stale.
    session: u64,
    /// Newest ReadIndex round heard on this session's link, echoed in
    /// every ack (0 at each handshake: a round of the previous link, or of
    /// another leadership, must never confirm this one's).
    read_round: u64,
    ticks_silent: u64,
    ticks_sync: u64,
    /// Ticks since the last ack went out.
    ticks_unacked: u64,
    ticks_backoff: u64,
    /// Ticks the current link has been streaming.
    ticks_streaming: u64,
    /// Consecutive failed link attempts (reset once a resync completes).
    failures: u32,
    rng: SeededRng,
    out: Vec<FollowerOutput>,
}

impl Follower {
    /// `recovered` is the last record the follower's own persistence holds
    /// of `history_id` (index and term 0 for an empty node): it is both
    /// applied and durable. The first output is `Connect`.
    pub fn new(
        cfg: FollowerConfig,
        node_id: NodeId,
        history_id: HistoryId,
        recovered: LogPosition,
        mut rng: SeededRng,
    ) -> Result<Follower, ConfigError> {
        let recovered_index = recovered.index;
        cfg.validate()?;
        // A random first session keeps a restarted follower's sessions
        // distinct from those of its previous life.
        let session = rng.next_u64();
        Ok(Follower {
            cfg,
            node_id,
            history_id,
            last_applied: recovered_index,
            last_term: recovered.term,
            durable: recovered_index,
            leader_term: 0,
            link_term: 0,
            leader_commit: 0,
            state: LinkState::Connecting,
            sync: Sync::AwaitingReply,
            session,
            read_round: 0,
            ticks_silent: 0,
            ticks_sync: 0,
            ticks_unacked: 0,
            ticks_backoff: 0,
            ticks_streaming: 0,
            failures: 0,
            rng,
            out: vec![FollowerOutput::Connect],
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    pub fn history_id(&self) -> HistoryId {
        self.history_id
    }

    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// Term of the last record applied (0 for none).
    pub fn last_term(&self) -> u64 {
        self.last_term
    }

    pub fn durable_index(&self) -> u64 {
        self.durable
    }

    pub fn leader_commit(&self) -> u64 {
        self.leader_commit
    }

    pub fn leader_term(&self) -> u64 {
        self.leader_term
    }

    /// The term the leader claimed on the current link (0: none yet).
    pub fn link_term(&self) -> u64 {
        self.link_term
    }

    pub fn link_state(&self) -> LinkState {
        self.state
    }

    /// Drains the queued outputs; carry them out in order.
    pub fn outputs(&mut self) -> Vec<FollowerOutput> {
        std::mem::take(&mut self.out)
    }

    /// The connection requested by `Connect` is open: handshake.
    pub fn on_connected(&mut self) {
        if self.state != LinkState::Connecting {
            return;
        }
        self.session = self.session.wrapping_add(1);
        self.read_round = 0;
        self.link_term = 0;
        self.state = LinkState::Handshaking;
        self.sync = Sync::AwaitingReply;
        self.ticks_silent = 0;
        self.ticks_sync = 0;
        self.out.push(FollowerOutput::Send(Message::Handshake {
            node_id: self.node_id,
            session: self.session,
            history_id: self.history_id,
            last_applied: self.last_applied,
            last_term: self.last_term,
        }));
    }

    /// The connection requested by `Connect` could not be opened.
    pub fn on_connect_failed(&mut self) {
        if self.state == LinkState::Connecting {
            self.link_down();
        }
    }

    /// The driver saw the connection close.
    pub fn on_disconnected(&mut self) {
        if matches!(self.state, LinkState::Handshaking | LinkState::Syncing | LinkState::Streaming) {
            self.link_down();
        }
    }

    /// Bytes arrived from the leader on the current link, perhaps part of a
    /// message still incomplete. A link that moves bytes is alive: a large
    /// snapshot chunk or a batch of 16 MiB records can take longer than the
    /// timeout to arrive on a busy machine, and heartbeats queue behind it,
    /// so counting only whole messages would drop a working link (and a
    /// full resync longer than the timeout would never complete). Every
    /// `keepalive_ticks` meanwhile an ack tells the leader the same.
    ///
    /// Returns whether the bytes count as the leader's sign of life: only
    /// on a link that reached the leader process (not one given up, nor a
    /// dial still under way). The driver then counts them as contact with
    /// the leader for the election timer too, which otherwise would run
    /// out while a large message crosses.
    pub fn on_link_activity(&mut self) -> bool {
        if self.state == LinkState::Handshaking {
            // Only the leader process writes to this connection.
            self.state = LinkState::Syncing;
        }
        if !matches!(self.state, LinkState::Syncing | LinkState::Streaming) {
            return false;
        }
        self.ticks_silent = 0;
        if self.ticks_unacked >= self.cfg.keepalive_ticks {
            self.ack();
        }
        true
    }

    /// The driver persisted everything up to `index` (fsync where promised).
    pub fn on_durable(&mut self, index: u64) {
        let index = index.min(self.last_applied);
        if index > self.durable {
            self.durable = index;
            self.ack();
        }
        self.debug_check();
    }

    /// One unit of time: heartbeat watch, sync timeout, backoff countdown.
    pub fn tick(&mut self) {
        self.count_tick();
        self.debug_check();
    }

    fn count_tick(&mut self) {
        match self.state {
            LinkState::Down => {
                if self.ticks_backoff > 0 {
                    self.ticks_backoff -= 1;
                }
                if self.ticks_backoff == 0 {
                    self.dial();
                }
            }
            LinkState::Connecting => {
                // The driver's dial should answer well within a timeout; if
                // it never does, treat the attempt as failed.
                self.ticks_silent += 1;
                if self.ticks_silent > self.cfg.leader_timeout_ticks {
                    self.link_down();
                }
            }
            LinkState::Handshaking | LinkState::Syncing => {
                self.ticks_silent += 1;
                self.ticks_sync += 1;
                self.ticks_unacked += 1;
                if self.ticks_silent > self.cfg.leader_timeout_ticks
                    || self.ticks_sync > self.cfg.sync_timeout_ticks
                {
                    self.link_down();
                }
            }
            LinkState::Streaming => {
                self.ticks_silent += 1;
                self.ticks_unacked += 1;
                self.ticks_streaming = self.ticks_streaming.saturating_add(1);
                if self.ticks_silent > self.cfg.leader_timeout_ticks {
                    self.link_down();
                }
            }
        }
    }

    /// A message from the leader.
    pub fn step(&mut self, msg: Message) {
        self.receive(msg);
        self.debug_check();
    }

    fn receive(&mut self, msg: Message) {
        if self.state == LinkState::Handshaking {
            // The leader process is there: whatever it says, it is answering.
            self.state = LinkState::Syncing;
        }
        if !matches!(self.state, LinkState::Syncing | LinkState::Streaming) {
            // No link: whatever arrives belongs to a connection already given up.
            return;
        }
        match msg {
            Message::Heartbeat { term, commit_index, round, .. } => {
                if term < self.leader_term {
                    return;
                }
                self.leader_term = term;
                self.link_term = term;
                self.read_round = self.read_round.max(round);
                self.ticks_silent = 0;
                self.leader_commit = self.leader_commit.max(commit_index);
                self.ack();
            }
            Message::PartialResync { session, from_index, term } => {
                if session != self.session
                    || self.state != LinkState::Syncing
                    || self.sync != Sync::AwaitingReply
                {
                    return;
                }
                if from_index != self.last_applied + 1 || term < self.leader_term {
                    // The leader answered a question we did not ask, or
                    // this is a deposed leader (a newer one has been heard).
                    self.link_down();
                    return;
                }
                self.leader_term = term;
                self.link_term = term;
                self.synced();
            }
            Message::FullResync { session, snapshot_index, history_id, term } => {
                if session != self.session
                    || self.state != LinkState::Syncing
                    || self.sync != Sync::AwaitingReply
                {
                    return;
                }
                if history_id == self.history_id && term < self.leader_term {
                    // A deposed leader of our history (another history's
                    // terms start afresh and are not comparable).
                    self.link_down();
                    return;
                }
                self.ticks_silent = 0;
                self.ticks_sync = 0;
                self.link_term = term;
                self.sync = Sync::Snapshot { index: snapshot_index, history_id, term, offset: 0 };
            }
            Message::SnapshotChunk { session, offset, bytes, last } => {
                let Sync::Snapshot { index, history_id, term, offset: expected } = self.sync else { return };
                if session != self.session || self.state != LinkState::Syncing {
                    return;
                }
                // Even a duplicate proves the leader is there.
                self.ticks_silent = 0;
                if offset < expected {
                    return;
                }
                if offset > expected {
                    self.link_down();
                    return;
                }
                self.ticks_sync = 0;
                let next = expected + bytes.len() as u64;
                self.out.push(FollowerOutput::SnapshotData { offset, bytes });
                self.sync = Sync::Snapshot { index, history_id, term, offset: next };
                if last {
                    self.durable = if history_id == self.history_id { self.durable.min(index) } else { 0 };
                    self.history_id = history_id;
                    self.last_applied = index;
                    self.last_term = term;
                    // A new history's terms restart; within one, never go back.
                    self.leader_term = term;
                    self.out.push(FollowerOutput::LoadSnapshot { snapshot_index: index, history_id, term });
                    self.synced();
                } else {
                    // A long transfer sends no heartbeats: acks keep the
                    // leader from declaring this follower silent.
                    self.ack();
                }
            }
            Message::Records { records, commit_index } => {
                // From the leader this link reached (the resync reply
                // checked its term): alive, whatever the state.
                self.ticks_silent = 0;
                if self.state != LinkState::Streaming {
                    // Ahead of (or stale next to) the resync reply: the
                    // retransmit after the reply covers it.
                    return;
                }
                self.on_records(records, commit_index);
            }
            Message::Handshake { .. } | Message::Ack { .. } => {}
        }
    }

    fn on_records(&mut self, records: Vec<RecordEntry>, commit_index: u64) {
        let mut apply = Vec::new();
        let mut gap = false;
        for rec in records {
            if rec.index <= self.last_applied {
                continue;
            }
            if rec.index != self.last_applied + 1 {
                gap = true;
                break;
            }
            self.leader_term = self.leader_term.max(rec.term);
            self.last_term = rec.term;
            self.last_applied = rec.index;
            apply.push(rec);
        }
        if !apply.is_empty() {
            self.out.push(FollowerOutput::Apply(apply));
        }
        self.leader_commit = self.leader_commit.max(commit_index);
        if gap {
            self.link_down();
        } else {
            self.ack();
        }
    }

    /// A resync finished: the stream starts and the backoff resets.
    fn synced(&mut self) {
        self.state = LinkState::Streaming;
        self.sync = Sync::AwaitingReply;
        self.ticks_silent = 0;
        self.ticks_sync = 0;
        self.ticks_streaming = 0;
        self.failures = 0;
        self.ack();
    }

    /// Asserts the invariants stated on the fields (debug builds; O(1)).
    fn debug_check(&self) {
        debug_assert!(
            self.durable <= self.last_applied,
            "durable {} > applied {}",
            self.durable,
            self.last_applied
        );
        debug_assert!(
            self.state == LinkState::Syncing || self.sync == Sync::AwaitingReply,
            "{:?}",
            self.sync
        );
    }

    fn ack(&mut self) {
        if let Some(msg) = self.ack_message() {
            self.ticks_unacked = 0;
            self.out.push(FollowerOutput::Send(msg));
        }
    }

    /// The ack describing this follower now, if it has a link. While it
    /// syncs, the ack says "alive" and nothing more: applied and durable are
    /// 0, because the indexes of a dataset being replaced (perhaps another
    /// history's) mean nothing to the leader, and the leader switches this
    /// follower to streaming as soon as it *sends* the last chunk, so an ack
    /// sent during the transfer may well arrive after that and would be
    /// taken for progress on the leader's history.
    fn ack_message(&self) -> Option<Message> {
        let (applied, durable) = match self.state {
            LinkState::Streaming => (self.last_applied, self.durable),
            LinkState::Handshaking | LinkState::Syncing => (0, 0),
            LinkState::Down | LinkState::Connecting => return None,
        };
        Some(Message::Ack {
            node_id: self.node_id,
            session: self.session,
            applied,
            durable,
            round: self.read_round,
        })
    }

    /// An ack for the driver to send itself while it carries out a long
    /// output (loading a full resync's snapshot can take seconds) and reads
    /// nothing from the link meanwhile: the leader would otherwise see a
    /// silent follower and drop it. Nothing changes here; `None` without a link.
    pub fn keepalive(&self) -> Option<Message> {
        self.ack_message()
    }

    /// Drops the link. A link that held (streamed for `backoff_max_ticks`)
    /// is redialled at once: its loss is news, and the leader may well be
    /// back already. Otherwise the next attempt waits out the backoff.
    fn link_down(&mut self) {
        let held = self.state == LinkState::Streaming && self.ticks_streaming >= self.cfg.backoff_max_ticks;
        let delay = if held {
            self.failures = 0;
            0
        } else {
            self.failures = self.failures.saturating_add(1);
            self.backoff(self.failures)
        };
        self.state = LinkState::Down;
        self.sync = Sync::AwaitingReply;
        self.ticks_backoff = delay;
        self.ticks_streaming = 0;
        self.out.push(FollowerOutput::LinkDown { reconnect_after_ticks: delay });
        if delay == 0 {
            self.dial();
        }
    }

    fn dial(&mut self) {
        self.state = LinkState::Connecting;
        self.ticks_silent = 0;
        self.out.push(FollowerOutput::Connect);
    }

    /// Exponential backoff with "equal jitter": the ceiling doubles per
    /// consecutive failure up to the cap, and the delay is drawn from its
    /// upper half, so followers that lost the leader together do not all
    /// reconnect in the same tick yet never retry sooner than half the step.
    fn backoff(&mut self, failures: u32) -> u64 {
        let shift = failures.saturating_sub(1).min(63);
        let ceiling = self.cfg.backoff_base_ticks.checked_shl(shift).unwrap_or(u64::MAX);
        let ceiling = if ceiling >> shift != self.cfg.backoff_base_ticks { u64::MAX } else { ceiling };
        let ceiling = ceiling.min(self.cfg.backoff_max_ticks);
        let floor = ceiling - ceiling / 2;
        floor + self.rng.below(ceiling - floor + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FollowerConfig {
        FollowerConfig {
            leader_timeout_ticks: 5,
            sync_timeout_ticks: 8,
            backoff_base_ticks: 2,
            backoff_max_ticks: 20,
            keepalive_ticks: 2,
        }
    }

    /// A recovered log ending at `index`, of term 1 (empty at 0).
    fn at(index: u64) -> LogPosition {
        LogPosition { term: u64::from(index > 0), index }
    }

    #[test]
    fn a_resync_reply_from_a_deposed_leader_drops_the_link() {
        // Heard term 5, then reconnects and reaches a leader of term 4.
        let mut f = streaming(3, 5);
        f.on_disconnected();
        for _ in 0..30 {
            if f.link_state() == LinkState::Connecting {
                break;
            }
            f.tick();
        }
        let session = connect(&mut f);
        f.step(Message::PartialResync { session, from_index: 4, term: 4 });
        assert!(f.outputs().iter().any(|o| matches!(o, FollowerOutput::LinkDown { .. })));
        assert_eq!(f.leader_term(), 5);
        // Same for a full resync of its history; another history's terms are not comparable.
        for (history, refused) in [(1, true), (99, false)] {
            while f.link_state() != LinkState::Connecting {
                f.tick();
            }
            let session = connect(&mut f);
            f.step(Message::FullResync { session, snapshot_index: 9, history_id: history, term: 2 });
            let down = f.outputs().iter().any(|o| matches!(o, FollowerOutput::LinkDown { .. }));
            assert_eq!(down, refused, "history {history}");
            if !refused {
                f.on_disconnected();
            }
        }
        // The current leader's reply is taken.
        while f.link_state() != LinkState::Connecting {
            f.tick();
        }
        let session = connect(&mut f);
        f.step(Message::PartialResync { session, from_index: 4, term: 6 });
        assert_eq!(f.link_state(), LinkState::Streaming);
        assert_eq!(f.leader_term(), 6);
    }

    fn rec(term: u64, index: u64) -> RecordEntry {
        RecordEntry { term, index, bytes: Bytes::from(format!("r{index}")) }
    }

    /// Connects and returns the handshake's session.
    fn connect(f: &mut Follower) -> u64 {
        f.outputs();
        f.on_connected();
        match f.outputs().as_slice() {
            [FollowerOutput::Send(Message::Handshake { session, .. })] => *session,
            other => panic!("expected a handshake, got {other:?}"),
        }
    }

    /// ReadIndex (thesis §6.4): every ack echoes the newest round heard
    /// on this link — not one of a stale term's heartbeat — and a new link
    /// starts from 0, so a round of an earlier leadership (whose rounds
    /// may be higher) never confirms the next one's.
    #[test]
    fn acks_echo_the_newest_read_round_of_the_link_and_a_new_link_starts_at_zero() {
        let mut f = streaming(3, 5);
        let round_acked = |f: &mut Follower| -> Vec<u64> {
            f.outputs()
                .iter()
                .filter_map(|o| match o {
                    FollowerOutput::Send(Message::Ack { round, .. }) => Some(*round),
                    _ => None,
                })
                .collect()
        };
        f.step(Message::Heartbeat { term: 5, last_index: 3, commit_index: 3, round: 7 });
        assert_eq!(round_acked(&mut f), vec![7]);
        f.step(Message::Heartbeat { term: 4, last_index: 3, commit_index: 3, round: 9 });
        assert_eq!(round_acked(&mut f), Vec::<u64>::new(), "a deposed leader's heartbeat is not acked");
        f.step(Message::Heartbeat { term: 5, last_index: 3, commit_index: 3, round: 6 });
        assert_eq!(round_acked(&mut f), vec![7], "late heartbeats do not lower it");
        f.on_disconnected();
        while f.link_state() != LinkState::Connecting {
            f.tick();
        }
        let session = connect(&mut f);
        f.step(Message::PartialResync { session, from_index: 4, term: 6 });
        assert_eq!(
            f.keepalive(),
            Some(Message::Ack { node_id: 9, session, applied: 3, durable: 3, round: 0 })
        );
    }

    /// A follower streaming from `last_applied` with the leader on `term`.
    fn streaming(last_applied: u64, term: u64) -> Follower {
        let mut f = Follower::new(cfg(), 9, 1, at(last_applied), SeededRng::new(1)).unwrap();
        let session = connect(&mut f);
        f.step(Message::PartialResync { session, from_index: last_applied + 1, term });
        assert_eq!(f.link_state(), LinkState::Streaming);
        f.outputs();
        f
    }

    fn applied(outs: &[FollowerOutput]) -> Vec<u64> {
        outs.iter()
            .filter_map(|o| match o {
                FollowerOutput::Apply(r) => Some(r.iter().map(|r| r.index).collect::<Vec<_>>()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn went_down(outs: &[FollowerOutput]) -> bool {
        outs.iter().any(|o| matches!(o, FollowerOutput::LinkDown { .. }))
    }

    /// (name, last_applied, leader term, records as (term, index), applied,
    /// link down, last_applied after)
    type ApplyCase = (&'static str, u64, u64, &'static [(u64, u64)], &'static [u64], bool, u64);

    #[test]
    fn apply_rule_table() {
        let cases: &[ApplyCase] = &[
            ("in order", 0, 1, &[(1, 1), (1, 2), (1, 3)], &[1, 2, 3], false, 3),
            ("duplicates skipped", 5, 1, &[(1, 4), (1, 5), (1, 6)], &[6], false, 6),
            ("all duplicates", 5, 1, &[(1, 2), (1, 5)], &[], false, 5),
            ("gap", 5, 1, &[(1, 7)], &[], true, 5),
            ("prefix then gap", 5, 1, &[(1, 6), (1, 8), (1, 9)], &[6], true, 6),
            // A leader of term 3 streams what earlier leaders wrote, too.
            ("older term applied", 5, 3, &[(2, 6)], &[6], false, 6),
            ("older then current", 5, 3, &[(2, 6), (3, 7)], &[6, 7], false, 7),
            ("higher term accepted", 5, 3, &[(4, 6)], &[6], false, 6),
            ("empty batch", 5, 1, &[], &[], false, 5),
        ];
        for (i, (name, last, term, recs, want, down, after)) in cases.iter().enumerate() {
            let mut f = streaming(*last, *term);
            let records = recs.iter().map(|&(t, ix)| rec(t, ix)).collect();
            f.step(Message::Records { records, commit_index: 0 });
            let outs = f.outputs();
            assert_eq!(applied(&outs), *want, "case {i} ({name}): applied");
            assert_eq!(went_down(&outs), *down, "case {i} ({name}): link down");
            assert_eq!(f.last_applied(), *after, "case {i} ({name}): last_applied");
            let state = if *down { LinkState::Down } else { LinkState::Streaming };
            assert_eq!(f.link_state(), state, "case {i} ({name}): state");
            assert!(f.leader_term() >= *term, "case {i} ({name}): the leader's term never goes back");
        }
    }

    #[test]
    fn acks_follow_applies_and_durability_is_clamped() {
        let mut f = streaming(0, 1);
        f.step(Message::Records { records: vec![rec(1, 1), rec(1, 2)], commit_index: 1 });
        let outs = f.outputs();
        assert!(matches!(
            outs.as_slice(),
            [FollowerOutput::Apply(_), FollowerOutput::Send(Message::Ack { applied: 2, durable: 0, .. })]
        ));
        assert_eq!(f.leader_commit(), 1);
        f.on_durable(10);
        assert_eq!(f.durable_index(), 2, "durable never exceeds applied");
        assert!(matches!(
            f.outputs().as_slice(),
            [FollowerOutput::Send(Message::Ack { applied: 2, durable: 2, .. })]
        ));
        f.on_durable(1);
        assert!(f.outputs().is_empty(), "durable never goes back, no ack for nothing");
    }

    #[test]
    fn heartbeat_timeout_table() {
        // (heartbeat every n ticks (0 = never), ticks run, link down)
        let cases = [(0u64, 5u64, false), (0, 6, true), (5, 30, false), (6, 30, true), (3, 100, false)];
        for (i, (every, ticks, down)) in cases.into_iter().enumerate() {
            let mut f = streaming(0, 1);
            let mut saw_down = false;
            for t in 1..=ticks {
                if every > 0 && t % every == 0 {
                    f.step(Message::Heartbeat { term: 1, last_index: 0, commit_index: 0, round: 0 });
                }
                f.tick();
                saw_down |= went_down(&f.outputs());
            }
            assert_eq!(saw_down, down, "case {i}: every {every}, {ticks} ticks");
        }
    }

    /// A message built for the link's session.
    type ForSession = fn(u64) -> Message;

    #[test]
    fn which_messages_prove_the_leader_alive() {
        // (name, message, keeps the link up); leader term 4, timeout 5 ticks.
        let cases: &[(&str, ForSession, bool)] = &[
            ("heartbeat", |_| Message::Heartbeat { term: 4, last_index: 0, commit_index: 0, round: 0 }, true),
            (
                "stale heartbeat",
                |_| Message::Heartbeat { term: 3, last_index: 0, commit_index: 0, round: 0 },
                false,
            ),
            ("records", |_| Message::Records { records: vec![rec(4, 1)], commit_index: 0 }, true),
            ("duplicate records", |_| Message::Records { records: vec![rec(4, 0)], commit_index: 0 }, true),
            // Records of an older term: the leader streams those too.
            ("older-term records", |_| Message::Records { records: vec![rec(3, 1)], commit_index: 0 }, true),
            (
                "chunk of another session",
                |s| Message::SnapshotChunk {
                    session: s.wrapping_add(1),
                    offset: 0,
                    bytes: Bytes::new(),
                    last: false,
                },
                false,
            ),
            (
                "handshake (never sent by a leader)",
                |s| Message::Handshake {
                    node_id: 1,
                    session: s,
                    history_id: 1,
                    last_applied: 0,
                    last_term: 0,
                },
                false,
            ),
        ];
        for (i, (name, msg, alive)) in cases.iter().enumerate() {
            let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(1)).unwrap();
            let session = connect(&mut f);
            f.step(Message::PartialResync { session, from_index: 1, term: 4 });
            f.outputs();
            for _ in 0..4 {
                f.tick();
            }
            f.step(msg(session));
            f.tick();
            f.tick();
            assert_eq!(!went_down(&f.outputs()), *alive, "case {i} ({name})");
        }
    }

    fn acks(outs: &[FollowerOutput]) -> usize {
        outs.iter().filter(|o| matches!(o, FollowerOutput::Send(Message::Ack { .. }))).count()
    }

    #[test]
    fn bytes_arriving_keep_the_link_up_without_whole_messages() {
        // A 16 MiB batch arriving slowly: no message for many timeouts.
        let mut f = streaming(0, 1);
        let mut keepalives = 0;
        for t in 0..50 {
            assert!(f.on_link_activity(), "tick {t}: the leader's bytes are its sign of life");
            f.tick();
            let outs = f.outputs();
            assert!(!went_down(&outs), "tick {t}: bytes moved, the link is alive");
            keepalives += acks(&outs);
        }
        assert_eq!(keepalives, 24, "the leader hears of it every 2 ticks (the first after 2)");
        f.step(Message::Records { records: vec![rec(1, 1)], commit_index: 0 });
        assert_eq!(applied(&f.outputs()), vec![1]);
        // Once nothing moves, the timeout applies as before.
        let mut downs = Vec::new();
        for t in 1..=6 {
            f.tick();
            if went_down(&f.outputs()) {
                downs.push(t);
            }
        }
        assert_eq!(downs, vec![6], "down after more than 5 silent ticks");
        assert_eq!(f.link_state(), LinkState::Connecting, "a link that held is redialled at once");
        assert!(!f.on_link_activity(), "bytes of a link given up are no contact with the leader");
        assert_eq!(f.link_state(), LinkState::Connecting, "no link, nothing to keep alive");
        assert!(f.outputs().is_empty());
    }

    /// Ticks until the link goes down (`None` within `limit`), feeding
    /// `each` before every tick.
    fn ticks_to_down(f: &mut Follower, limit: u64, mut each: impl FnMut(&mut Follower)) -> Option<u64> {
        for t in 1..=limit {
            each(f);
            f.tick();
            if went_down(&f.outputs()) {
                return Some(t);
            }
        }
        None
    }

    /// A follower that streamed long enough for its link to have held.
    fn held(term: u64) -> Follower {
        let mut f = streaming(0, term);
        for _ in 0..cfg().backoff_max_ticks {
            f.tick();
            f.step(Message::Heartbeat { term, last_index: 0, commit_index: 0, round: 0 });
        }
        f.outputs();
        f
    }

    #[test]
    fn a_paused_leader_accepting_connections_is_no_link() {
        // The leader stops: the link times out, the follower redials at
        // once, and the leader's kernel accepts the connection.
        let mut f = held(1);
        assert_eq!(ticks_to_down(&mut f, 20, |_| {}), Some(6));
        assert_eq!(f.link_state(), LinkState::Connecting);
        connect(&mut f);
        assert_eq!(f.link_state(), LinkState::Handshaking, "an open connection proves nothing");
        assert_eq!(
            f.keepalive(),
            Some(Message::Ack { node_id: 9, session: f.session, applied: 0, durable: 0, round: 0 })
        );
        // Nothing comes back: the link timeout, not the sync timeout (8),
        // ends the wait for the reply, and it never counted as syncing.
        let mut states = Vec::new();
        let down = ticks_to_down(&mut f, 20, |f| states.push(f.link_state()));
        assert_eq!(down, Some(6), "unanswered handshake given up after the link timeout");
        assert!(states.iter().all(|s| *s == LinkState::Handshaking), "{states:?}");
        // Not a link that held: the next attempt waits out the backoff.
        assert_eq!(f.link_state(), LinkState::Down);
    }

    #[test]
    fn any_word_from_the_leader_makes_a_handshake_a_link() {
        // (name, what arrives, state after)
        type Arrival = fn(&mut Follower, u64);
        let cases: &[(&str, Arrival, LinkState)] = &[
            (
                "bytes of a message",
                |f, _| assert!(f.on_link_activity(), "the leader process wrote them"),
                LinkState::Syncing,
            ),
            (
                "heartbeat",
                |f, _| f.step(Message::Heartbeat { term: 1, last_index: 0, commit_index: 0, round: 0 }),
                LinkState::Syncing,
            ),
            (
                "stale heartbeat",
                |f, _| f.step(Message::Heartbeat { term: 0, last_index: 0, commit_index: 0, round: 0 }),
                LinkState::Syncing,
            ),
            (
                "partial resync",
                |f, s| f.step(Message::PartialResync { session: s, from_index: 1, term: 1 }),
                LinkState::Streaming,
            ),
            (
                "full resync",
                |f, s| f.step(Message::FullResync { session: s, snapshot_index: 3, history_id: 2, term: 1 }),
                LinkState::Syncing,
            ),
            ("nothing", |_, _| {}, LinkState::Handshaking),
        ];
        for (i, (name, arrive, want)) in cases.iter().enumerate() {
            let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(4)).unwrap();
            let session = connect(&mut f);
            arrive(&mut f, session);
            assert_eq!(f.link_state(), *want, "case {i} ({name})");
        }
    }

    #[test]
    fn a_live_leader_producing_a_snapshot_gets_the_sync_timeout() {
        // Heartbeats but no reply yet (a leader producing a snapshot sends
        // FullResync only once it is ready): waited for up to the sync
        // timeout, not the link timeout.
        let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(2)).unwrap();
        connect(&mut f);
        let hb = |f: &mut Follower| {
            f.step(Message::Heartbeat { term: 1, last_index: 3, commit_index: 0, round: 0 })
        };
        assert_eq!(ticks_to_down(&mut f, 20, hb), Some(9));
    }

    #[test]
    fn reconnects_are_immediate_after_a_link_that_held_then_back_off() {
        let mut f = held(1);
        f.on_disconnected();
        assert_eq!(
            f.outputs(),
            vec![FollowerOutput::LinkDown { reconnect_after_ticks: 0 }, FollowerOutput::Connect],
            "first retry immediate"
        );
        // The leader is still away: 2, 4, 8, 16, 20, 20 ticks (±jitter).
        let delays = delays_while_failing(&mut f, 6);
        for (d, c) in delays.iter().zip([2u64, 4, 8, 16, 20, 20]) {
            assert!((c - c / 2..=c).contains(d), "{delays:?}");
        }
        // Back: once resynced the count starts over, but a link that drops
        // before it held is retried with backoff, not at once (no hammering
        // a leader that drops every link).
        while f.link_state() != LinkState::Connecting {
            f.tick();
        }
        let session = connect(&mut f);
        f.step(Message::PartialResync { session, from_index: 1, term: 1 });
        for _ in 0..3 {
            f.tick();
        }
        f.outputs();
        f.on_disconnected();
        assert!(matches!(
            f.outputs().as_slice(),
            [FollowerOutput::LinkDown { reconnect_after_ticks: 1..=2 }]
        ));
    }

    #[test]
    fn the_term_claimed_on_a_link_is_its_bytes_contact_term_and_a_new_link_starts_without_one() {
        let mut f = Follower::new(cfg(), 9, 7, at(0), SeededRng::new(2)).unwrap();
        let session = connect(&mut f);
        assert_eq!(f.link_term(), 0, "nothing claimed yet");
        f.step(Message::FullResync { session, snapshot_index: 40, history_id: 8, term: 3 });
        assert_eq!((f.link_term(), f.leader_term()), (3, 0), "claimed by the resync reply, before it ends");
        f.step(Message::Heartbeat { term: 4, last_index: 40, commit_index: 0, round: 0 });
        assert_eq!(f.link_term(), 4);
        f.on_disconnected();
        while f.link_state() != LinkState::Connecting {
            f.tick();
        }
        connect(&mut f);
        assert_eq!(f.link_term(), 0, "a new link has claimed nothing");
    }

    #[test]
    fn a_full_resync_longer_than_the_timeout_completes_while_bytes_move() {
        // Chunks 7 ticks apart: more than the 5-tick timeout (the livelock
        // of issue 9), less than the 8-tick sync timeout (progress).
        let mut f = Follower::new(cfg(), 9, 7, at(0), SeededRng::new(2)).unwrap();
        let session = connect(&mut f);
        f.step(Message::FullResync { session, snapshot_index: 40, history_id: 8, term: 2 });
        let mut offset = 0u64;
        for n in 0..10 {
            for t in 0..7 {
                f.on_link_activity();
                f.tick();
                assert!(!went_down(&f.outputs()), "chunk {n}, tick {t}");
            }
            let last = n == 9;
            f.step(Message::SnapshotChunk { session, offset, bytes: Bytes::from_static(b"0123"), last });
            offset += 4;
        }
        let outs = f.outputs();
        assert!(outs.contains(&FollowerOutput::LoadSnapshot { snapshot_index: 40, history_id: 8, term: 2 }));
        assert_eq!(f.link_state(), LinkState::Streaming);
        // Without the bytes, the same transfer times out before its second chunk.
        let mut f = Follower::new(cfg(), 9, 7, at(0), SeededRng::new(2)).unwrap();
        let session = connect(&mut f);
        f.step(Message::FullResync { session, snapshot_index: 40, history_id: 8, term: 2 });
        f.step(Message::SnapshotChunk {
            session,
            offset: 0,
            bytes: Bytes::from_static(b"0123"),
            last: false,
        });
        f.outputs();
        let mut down = false;
        for _ in 0..7 {
            f.tick();
            down |= went_down(&f.outputs());
        }
        assert!(down, "a silent link still goes down");
    }

    #[test]
    fn stale_term_heartbeat_does_not_keep_the_link_alive() {
        let mut f = streaming(0, 4);
        let mut saw_down = false;
        for _ in 0..6 {
            f.step(Message::Heartbeat { term: 3, last_index: 0, commit_index: 0, round: 0 });
            f.tick();
            saw_down |= went_down(&f.outputs());
        }
        assert!(saw_down);
    }

    /// Fails every connection attempt of a new follower and returns the backoff delays.
    fn failing_delays(seed: u64, attempts: usize) -> Vec<u64> {
        let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(seed)).unwrap();
        delays_while_failing(&mut f, attempts)
    }

    /// Fails `f`'s next connection attempts and returns the backoff delays.
    fn delays_while_failing(f: &mut Follower, attempts: usize) -> Vec<u64> {
        let mut delays = Vec::new();
        while delays.len() < attempts {
            for o in f.outputs() {
                match o {
                    FollowerOutput::Connect => f.on_connect_failed(),
                    FollowerOutput::LinkDown { reconnect_after_ticks } => delays.push(reconnect_after_ticks),
                    other => panic!("unexpected {other:?}"),
                }
            }
            f.tick();
        }
        delays
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        // Ceilings for base 2, cap 20: 2, 4, 8, 16, 20, 20, ...
        let ceilings = [2u64, 4, 8, 16, 20, 20, 20];
        for seed in 0..200 {
            let delays = failing_delays(seed, ceilings.len());
            for (i, (&d, &c)) in delays.iter().zip(&ceilings).enumerate() {
                assert!(
                    d <= c && d >= c - c / 2,
                    "seed {seed} attempt {i}: delay {d} outside [{}, {c}]",
                    c - c / 2
                );
            }
        }
        let distinct: std::collections::HashSet<u64> = (0..50).map(|s| failing_delays(s, 5)[4]).collect();
        assert!(distinct.len() > 1, "jitter must spread reconnects");
        assert_eq!(failing_delays(3, 6), failing_delays(3, 6), "same seed, same schedule");
    }

    #[test]
    fn backoff_resets_after_a_successful_resync() {
        let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(5)).unwrap();
        f.outputs();
        for _ in 0..4 {
            f.state = LinkState::Connecting;
            f.on_connect_failed();
        }
        f.outputs();
        f.state = LinkState::Connecting;
        let session = connect(&mut f);
        f.step(Message::PartialResync { session, from_index: 1, term: 1 });
        f.outputs();
        f.on_disconnected();
        let outs = f.outputs();
        assert!(
            matches!(outs.as_slice(), [FollowerOutput::LinkDown { reconnect_after_ticks: 1..=2 }]),
            "{outs:?}"
        );
    }

    #[test]
    fn replies_from_other_sessions_are_ignored() {
        let mut f = Follower::new(cfg(), 9, 1, at(4), SeededRng::new(2)).unwrap();
        let session = connect(&mut f);
        f.step(Message::PartialResync { session: session.wrapping_sub(1), from_index: 5, term: 1 });
        f.step(Message::FullResync {
            session: session.wrapping_add(1),
            snapshot_index: 9,
            history_id: 1,
            term: 1,
        });
        assert_eq!(f.link_state(), LinkState::Syncing);
        assert!(f.outputs().is_empty());
        f.step(Message::PartialResync { session, from_index: 5, term: 1 });
        assert_eq!(f.link_state(), LinkState::Streaming);
        f.outputs();
        // A duplicate of the reply changes nothing.
        f.step(Message::PartialResync { session, from_index: 5, term: 1 });
        assert_eq!(f.link_state(), LinkState::Streaming);
        assert!(f.outputs().is_empty());
    }

    #[test]
    fn records_before_the_resync_reply_are_ignored() {
        let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(2)).unwrap();
        connect(&mut f);
        f.step(Message::Records { records: vec![rec(1, 1)], commit_index: 0 });
        assert!(f.outputs().is_empty());
        assert_eq!(f.last_applied(), 0);
    }

    #[test]
    fn lost_resync_reply_times_out_even_with_heartbeats() {
        let mut f = Follower::new(cfg(), 9, 1, at(0), SeededRng::new(2)).unwrap();
        connect(&mut f);
        let mut saw_down = false;
        for _ in 0..9 {
            f.step(Message::Heartbeat { term: 1, last_index: 3, commit_index: 0, round: 0 });
            f.tick();
            saw_down |= went_down(&f.outputs());
        }
        assert!(saw_down, "sync timeout must fire although heartbeats flow");
    }

    #[test]
    fn full_resync_loads_the_snapshot_and_switches_history() {
        let mut f = Follower::new(cfg(), 9, 7, at(3), SeededRng::new(2)).unwrap();
        let session = connect(&mut f);
        f.step(Message::FullResync { session, snapshot_index: 40, history_id: 8, term: 2 });
        f.step(Message::SnapshotChunk { session, offset: 0, bytes: Bytes::from_static(b"abc"), last: false });
        // A duplicate chunk is skipped.
        f.step(Message::SnapshotChunk { session, offset: 0, bytes: Bytes::from_static(b"abc"), last: false });
        f.step(Message::SnapshotChunk { session, offset: 3, bytes: Bytes::from_static(b"de"), last: true });
        let outs = f.outputs();
        assert_eq!(
            outs,
            vec![
                FollowerOutput::SnapshotData { offset: 0, bytes: Bytes::from_static(b"abc") },
                // Acks during the transfer only say "alive".
                FollowerOutput::Send(Message::Ack { node_id: 9, session, applied: 0, durable: 0, round: 0 }),
                FollowerOutput::SnapshotData { offset: 3, bytes: Bytes::from_static(b"de") },
                FollowerOutput::LoadSnapshot { snapshot_index: 40, history_id: 8, term: 2 },
                FollowerOutput::Send(Message::Ack { node_id: 9, session, applied: 40, durable: 0, round: 0 }),
            ]
        );
        assert_eq!((f.history_id(), f.last_applied(), f.durable_index()), (8, 40, 0));
        assert_eq!(f.link_state(), LinkState::Streaming);
        f.step(Message::Records { records: vec![rec(2, 41)], commit_index: 0 });
        assert_eq!(applied(&f.outputs()), vec![41]);
    }

    #[test]
    fn keepalive_acks_say_alive_and_change_nothing() {
        let mut f = Follower::new(cfg(), 9, 7, at(3), SeededRng::new(2)).unwrap();
        assert_eq!(f.keepalive(), None, "no link yet");
        let session = connect(&mut f);
        let alive = Message::Ack { node_id: 9, session, applied: 0, durable: 0, round: 0 };
        assert_eq!(f.keepalive(), Some(alive.clone()), "syncing: nothing to report but life");
        f.step(Message::FullResync { session, snapshot_index: 40, history_id: 8, term: 2 });
        f.step(Message::SnapshotChunk { session, offset: 0, bytes: Bytes::from_static(b"ab"), last: true });
        f.outputs();
        // Loading the snapshot: already streaming from the state machine's view.
        assert_eq!(
            f.keepalive(),
            Some(Message::Ack { node_id: 9, session, applied: 40, durable: 0, round: 0 })
        );
        assert!(f.outputs().is_empty(), "a keepalive queues nothing");
        f.on_disconnected();
        assert_eq!(f.keepalive(), None);
    }

    #[test]
    fn snapshot_chunk_gap_drops_the_link() {
        let mut f = Follower::new(cfg(), 9, 7, at(0), SeededRng::new(2)).unwrap();
        let session = connect(&mut f);
        f.step(Message::FullResync { session, snapshot_index: 4, history_id: 7, term: 1 });
        f.step(Message::SnapshotChunk { session, offset: 5, bytes: Bytes::from_static(b"x"), last: true });
        assert!(went_down(&f.outputs()));
        assert_eq!(f.last_applied(), 0);
    }

    #[test]
    fn messages_without_a_link_are_ignored() {
        let mut f = streaming(0, 1);
        f.on_disconnected();
        f.outputs();
        f.step(Message::Records { records: vec![rec(1, 1)], commit_index: 0 });
        f.step(Message::Heartbeat { term: 1, last_index: 1, commit_index: 1, round: 0 });
        assert!(f.outputs().is_empty());
        assert_eq!(f.last_applied(), 0);
    }

    #[test]
    fn config_validation() {
        assert!(FollowerConfig::default().validate().is_ok());
        let bad = FollowerConfig { backoff_max_ticks: 1, backoff_base_ticks: 4, ..FollowerConfig::default() };
        assert_eq!(bad.validate(), Err(ConfigError::TooSmall { field: "backoff_max_ticks", min: 4, got: 1 }));
        let bad = FollowerConfig { leader_timeout_ticks: 0, ..FollowerConfig::default() };
        assert!(Follower::new(bad, 1, 1, at(0), SeededRng::new(0)).is_err());
        let bad = FollowerConfig { keepalive_ticks: 50, ..FollowerConfig::default() };
        assert!(matches!(bad.validate(), Err(ConfigError::NotGreater { field: "leader_timeout_ticks", .. })));
    }
}
