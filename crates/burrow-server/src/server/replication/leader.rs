//! The leader's driver: one task ticking the [`Leader`] state machine and
//! streaming new records, one task per follower link, and a task per full
//! resync streaming a snapshot as it is produced (nothing touches disk).
//!
//! Every interaction with the state machine goes through
//! [`LeaderSide::with`], which carries out its outputs before releasing the
//! lock: sends only queue onto a link's unbounded channel, so the lock is
//! held briefly, and messages reach each link in the order the state
//! machine produced them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::codec::{Framed, FramedParts};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

use crate::server::log_limit::{LogLimit, LOG_EVERY};

use super::activity::{Activity, Metered};
use super::{next_frame, secs_since, tick_for, ticks, End, LinkEnd};
use crate::oplog::OpLog;
use crate::persist::{encode_snapshot, FsyncPolicy, NodeMeta};
use crate::replication::wire::{self, link_limits, max_records_payload, max_snapshot_chunk};
use crate::replication::{
    BacklogSource, DownReason, FollowerState, Leader, LeaderConfig, LeaderOutput, Message, NodeId, ReadIndex,
    ReplBacklog,
};
use crate::server::cluster::{ClusterConfig, ReplicationMode};
use crate::server::Persistence;
use crate::store::Store;
use burrow_proto::{
    ClusterView, Codec, CodecError, ErrorChain, Frame, Limits, LinkStatus, MemberRole, MemberView,
};

/// Snapshot bytes queued on a link beyond which a full resync waits for
/// the follower to read: bounds the leader's memory per transfer.
const MAX_QUEUED_SNAPSHOT: usize = 8 * 1024 * 1024;
/// Largest snapshot slice per chunk.
const CHUNK: usize = 1024 * 1024;
/// Largest write a link's writer gathers before writing (also the link's
/// `Framed` backpressure boundary, so gathering never writes early).
const WRITE_BATCH: usize = 256 * 1024;

/// The sending half of one follower link.
#[derive(Debug, Clone)]
struct LinkTx {
    /// Distinguishes a reconnected follower's new link from its old one.
    id: u64,
    tx: mpsc::UnboundedSender<Message>,
    /// Approximate bytes queued and not yet written.
    queued: Arc<AtomicUsize>,
    /// Signalled whenever the writer wrote something.
    drained: Arc<Notify>,
    /// `queued` past this holds records back ([`link_queue_limit`]).
    limit: usize,
    /// The first record index held back (0: none).
    hole: Arc<AtomicU64>,
    /// Bytes moving either way: the follower's proof of life between acks.
    activity: Arc<Activity>,
    close: CancellationToken,
}

impl LinkTx {
    fn send(&self, msg: Message) {
        let over = self.queued.load(Ordering::Relaxed) > self.limit;
        match &msg {
            Message::Records { records, .. } if !records.is_empty() => {
                let first = records[0].index;
                let hole = self.hole.load(Ordering::Relaxed);
                // Once a batch is held back, later ones are too, until one
                // that starts at or before it (a retransmit) goes through:
                // the follower never sees a gap.
                if over || (hole != 0 && first > hole) {
                    if hole == 0 || first < hole {
                        self.hole.store(first, Ordering::Relaxed);
                    }
                    if hole == 0 && HELD_BACK.allow(std::time::Instant::now()).is_some() {
                        warn!(
                            queued = self.queued.load(Ordering::Relaxed),
                            limit = self.limit,
                            "follower reads its replication stream too slowly; holding records back until \
                             it catches up (the retransmit resends them)"
                        );
                    }
                    return;
                }
                self.hole.store(0, Ordering::Relaxed);
            }
            // Proof of life is what bytes moving already give.
            Message::Heartbeat { .. } if over => return,
            _ => {}
        }
        self.queued.fetch_add(approx_len(&msg), Ordering::Relaxed);
        // A closed link's receiver is gone; the state machine learns of it
        // through `on_disconnected`.
        let _ = self.tx.send(msg);
    }
}

/// Records held back for slow followers: one line per `LOG_EVERY`.
static HELD_BACK: LogLimit = LogLimit::new(LOG_EVERY);

/// Bytes queued on one follower link beyond which the leader queues no
/// more RECORDS or HEARTBEATs for it. A follower that stops reading is
/// dropped after `link_timeout_ms`, but one that reads a trickle keeps its
/// link alive, and each retransmit (every half link timeout without
/// progress) queues its records again: without this bound its queue grows
/// with every write and every retransmit. A follower that keeps up never
/// comes near it: the state machine has at most `max_batches_in_flight`
/// (4) batches of up to 1 MiB or one record out. Snapshot chunks are
/// bounded on their own (`MAX_QUEUED_SNAPSHOT`) and never held back.
fn link_queue_limit(limits: &Limits) -> usize {
    (4 * limits.max_frame).max(16 << 20)
}

fn approx_len(msg: &Message) -> usize {
    match msg {
        Message::Records { records, .. } => records.iter().map(|r| r.bytes.len()).sum::<usize>() + 32,
        Message::SnapshotChunk { bytes, .. } => bytes.len() + 32,
        _ => 48,
    }
}

#[derive(Debug)]
struct State {
    sm: Leader,
    /// What followers are served from, filled from the op log in bulk.
    backlog: ReplBacklog,
    links: HashMap<NodeId, LinkTx>,
    /// When each follower last acknowledged anything (INFO).
    last_ack: HashMap<NodeId, Instant>,
    /// When each follower's current link last moved bytes (check-quorum,
    /// beside `last_ack`: a follower receiving a long transfer is alive).
    last_active: HashMap<NodeId, Instant>,
    /// Client address each follower connected from (INFO).
    peer_addr: HashMap<NodeId, SocketAddr>,
    /// Quorum mode: batches of linearizable reads waiting for a heartbeat
    /// round a majority acknowledged (see [`LeaderSide::confirm_reads`]).
    reads: ReadIndex<oneshot::Sender<()>>,
    /// Rounds started and read batches confirmed (INFO `read_rounds`,
    /// `read_batches`: how well rounds are shared).
    read_rounds: u64,
    read_batches: u64,
}

/// The leader's replication state, shared by its tasks and connections.
#[derive(Debug)]
pub(crate) struct LeaderSide {
    state: Mutex<State>,
    cluster: ClusterConfig,
    store: Arc<Store>,
    persist: Option<Arc<Persistence>>,
    meta: NodeMeta,
    /// Some follower is caught up and waiting: writers wake the streamer.
    /// Owned by the node (`roles::Node`), which reads them lock-free.
    wants: Arc<AtomicBool>,
    appended: Arc<Notify>,
    /// Bumped on every ack (WAIT re-checks its count).
    acks: watch::Sender<u64>,
    commit: watch::Sender<u64>,
    /// Set when this leadership ends, and `commit` poked: a held write
    /// learns it from the watch it already waits on (see [`end`](Self::end)).
    ended: AtomicBool,
    next_link: AtomicU64,
    full_resyncs: AtomicU64,
    partial_resyncs: AtomicU64,
    tick: Duration,
    limits: Limits,
}

impl LeaderSide {
    /// The leader's state for `cluster`, whose log ends where `store`'s does.
    /// `wake` (the `wants` flag and the `appended` signal) is the node's,
    /// shared with connections.
    ///
    /// # Panics
    /// Never for a validated `cluster`: the state machine's tick counts are
    /// derived from it so as to pass [`LeaderConfig::validate`].
    pub(super) fn new(
        cluster: &ClusterConfig,
        meta: NodeMeta,
        store: Arc<Store>,
        persist: Option<Arc<Persistence>>,
        client_limits: &Limits,
        backlog_bytes: usize,
        wake: (Arc<AtomicBool>, Arc<Notify>),
    ) -> Arc<LeaderSide> {
        let (wants, appended) = wake;
        let tick = tick_for(cluster.heartbeat);
        // Large enough for the largest record a client can cause.
        let limits = link_limits(client_limits);
        let heartbeat_interval_ticks = ticks(cluster.heartbeat, tick, 1);
        let follower_timeout_ticks = ticks(cluster.link_timeout, tick, heartbeat_interval_ticks + 1);
        let cfg = LeaderConfig {
            heartbeat_interval_ticks,
            follower_timeout_ticks,
            // TCP does not lose batches; a resend only repairs a follower
            // that skipped one, so it may wait half a link timeout.
            retransmit_ticks: (follower_timeout_ticks / 2).max(1),
            max_batch_records: 1024,
            max_batch_bytes: max_records_payload(&limits).min(1024 * 1024),
            // Records in flight per follower: ample for ~1M writes/s at a
            // millisecond round trip, and a bound on what a slow follower
            // makes the leader queue.
            window: 16 * 1024,
            max_batches_in_flight: 4,
        };
        let last_index = store.log().last_index();
        let mut voters = cluster.peers();
        voters.push(cluster.node_id());
        let reads = ReadIndex::new(cluster.node_id(), meta.term.max(1), &voters);
        let sm = Leader::new(
            cfg,
            cluster.node_id(),
            meta.history_id,
            meta.term.max(1),
            last_index,
            &cluster.peers(),
        )
        .expect("leader config built from a validated cluster config");
        Arc::new(LeaderSide {
            state: Mutex::new(State {
                sm,
                // Terms never decrease along a log: the log's term is its last record's.
                backlog: ReplBacklog::new(backlog_bytes, last_index, store.log().stats().term),
                links: HashMap::new(),
                last_ack: HashMap::new(),
                last_active: HashMap::new(),
                peer_addr: HashMap::new(),
                reads,
                read_rounds: 0,
                read_batches: 0,
            }),
            cluster: cluster.clone(),
            store,
            persist,
            meta,
            wants,
            appended,
            acks: watch::channel(0).0,
            commit: watch::channel(0).0,
            ended: AtomicBool::new(false),
            next_link: AtomicU64::new(1),
            full_resyncs: AtomicU64::new(0),
            partial_resyncs: AtomicU64::new(0),
            tick,
            limits,
        })
    }

    pub(super) fn backlog(&self) -> (usize, usize) {
        let st = self.lock();
        (st.backlog.len(), st.backlog.bytes())
    }

    pub(super) fn meta(&self) -> NodeMeta {
        self.meta
    }

    pub(crate) fn mode(&self) -> ReplicationMode {
        self.cluster.mode
    }

    fn log(&self) -> &Arc<OpLog> {
        self.store.log()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state machine (with the backlog just refilled from
    /// the op log: one lock acquisition there), then carries out its
    /// outputs under the same lock (so each link gets messages in order).
    fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut Leader, &ReplBacklog) -> R) -> R {
        let st = self.lock();
        self.with_locked(st, f)
    }

    fn with_locked<R>(
        self: &Arc<Self>,
        mut st: MutexGuard<'_, State>,
        f: impl FnOnce(&mut Leader, &ReplBacklog) -> R,
    ) -> R {
        if let Some((buf, first)) = self.log().take_repl() {
            st.backlog.absorb(buf.freeze(), first);
        }
        let State { sm, backlog, .. } = &mut *st;
        let r = f(sm, backlog);
        loop {
            self.dispatch(&mut st);
            // Writers announce appends only while a follower waits for
            // them (otherwise acks pull records): set the flag, then look
            // once more for records appended meanwhile — a writer either
            // sees the flag or its records are seen here.
            let wants = st.sm.wants_records();
            self.wants.store(wants, Ordering::SeqCst);
            if !wants || self.log().last_index() <= st.backlog.last_index() {
                break;
            }
            if let Some((buf, first)) = self.log().take_repl() {
                st.backlog.absorb(buf.freeze(), first);
            }
            let State { sm, backlog, .. } = &mut *st;
            sm.on_append(backlog.last_index(), backlog);
        }
        let needed = st.sm.needed_from();
        st.backlog.hold_from(needed);
        let commit = st.sm.commit_index();
        if st.reads.waiting() > 0 {
            Self::note_commit(&mut st);
            self.advance_reads(&mut st);
        }
        drop(st);
        self.commit.send_if_modified(|c| {
            let moved = commit > *c;
            *c = (*c).max(commit);
            moved
        });
        r
    }

    /// Carries out the state machine's outputs (under the state lock).
    fn dispatch(self: &Arc<Self>, st: &mut State) {
        for out in st.sm.outputs() {
            match out {
                LeaderOutput::Send { to, msg } => {
                    if matches!(msg, Message::PartialResync { .. }) {
                        self.partial_resyncs.fetch_add(1, Ordering::Relaxed);
                        info!(follower = to, "partial resync: streaming from the backlog");
                    }
                    if let Some(link) = st.links.get(&to) {
                        link.send(msg);
                    }
                }
                LeaderOutput::StartFullSync { to } => {
                    self.full_resyncs.fetch_add(1, Ordering::Relaxed);
                    if let Some(link) = st.links.get(&to).cloned() {
                        info!(follower = to, "full resync: streaming a snapshot");
                        tokio::spawn(full_sync(self.clone(), to, link));
                    }
                }
                LeaderOutput::FollowerDown { id, reason } => {
                    if let Some(link) = st.links.remove(&id) {
                        match reason {
                            DownReason::Silent => {
                                warn!(follower = id, "follower silent past link_timeout_ms; closing its link")
                            }
                            DownReason::BehindBacklog => warn!(
                                follower = id,
                                "follower fell out of the backlog (raise --backlog-bytes?); closing its link \
                                 for a full resync"
                            ),
                        }
                        link.close.cancel();
                    }
                }
            }
        }
    }

    /// A batch of linearizable reads (quorum mode) executed now: resolves
    /// once leadership is confirmed for them — a heartbeat round started
    /// after this call, acknowledged by a majority, with a record of this
    /// term committed (ReadIndex, see `replication::read_index`). The
    /// sender is dropped, unanswered, if this leadership ends first.
    ///
    /// One round serves every batch waiting when it starts, and at most one
    /// round is in flight: under load, each round trip to the followers
    /// confirms all the reads that arrived during the previous one.
    pub(super) fn confirm_reads(self: &Arc<Self>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.lock();
        Self::note_commit(&mut st);
        let commit = st.sm.commit_index();
        st.reads.request(tx, commit);
        self.advance_reads(&mut st);
        rx
    }

    /// Tells the reads the commit index and its record's term: reads are
    /// held until a record of this term commits (§5.4.2, the NOOP).
    fn note_commit(st: &mut State) {
        if st.sm.committed_in_term() {
            st.reads.on_commit(st.sm.commit_index(), st.sm.term());
        }
    }

    /// Releases confirmed reads and starts the next round if reads wait
    /// for one and none is in flight; sends its heartbeats.
    fn advance_reads(self: &Arc<Self>, st: &mut State) {
        Self::release_reads(st);
        if st.reads.unconfirmed() {
            return;
        }
        if let Some(round) = st.reads.start_round() {
            st.read_rounds += 1;
            st.sm.heartbeat_round(round);
            self.dispatch(st);
            // A single voter confirms its own rounds.
            Self::release_reads(st);
        }
    }

    fn release_reads(st: &mut State) {
        for ready in st.reads.take_ready() {
            st.read_batches += 1;
            // The reader may have given up (timeout, closed connection).
            let _ = ready.read.send(());
        }
    }

    /// A follower acknowledged heartbeat round `round` of this term.
    fn on_read_ack(self: &Arc<Self>, from: NodeId, round: u64) {
        let mut st = self.lock();
        if st.reads.waiting() == 0 && !st.reads.unconfirmed() {
            return;
        }
        let term = st.reads.term();
        st.reads.on_ack(from, term, round);
        self.advance_reads(&mut st);
    }

    /// Repeats a round still unconfirmed (its heartbeat may have gone to a
    /// link that then dropped; a reconnected follower echoes only rounds
    /// it heard on its new link).
    fn repeat_read_round(&self, st: &mut State) {
        if st.reads.unconfirmed() {
            let round = st.reads.round();
            st.sm.heartbeat_round(round);
        }
    }

    /// Tells the state machine which links moved bytes since the last tick
    /// (a follower busy receiving a long transfer acks nothing meanwhile).
    fn report_activity(&self, st: &mut State) {
        let now = Instant::now();
        for (&id, link) in &st.links {
            if link.activity.moved() {
                st.sm.on_link_activity(id);
                st.last_active.insert(id, now);
            }
        }
    }

    /// Followers that acknowledged anything, or whose link moved bytes,
    /// since `t` (check-quorum).
    pub(super) fn acked_since(&self, t: Instant) -> Vec<NodeId> {
        let st = self.lock();
        let since = |m: &HashMap<NodeId, Instant>, id: &NodeId| m.get(id).is_some_and(|&at| at >= t);
        st.peer_addr
            .keys()
            .filter(|id| since(&st.last_ack, id) || since(&st.last_active, id))
            .copied()
            .collect()
    }

    /// Followers holding `index` durably. For index 0 (a connection that
    /// wrote nothing) that is every follower connected now, as in Redis.
    pub(super) fn acked_count(&self, index: u64) -> usize {
        let st = self.lock();
        if index == 0 {
            return st.links.len();
        }
        st.sm.acked_count(index)
    }

    pub(super) async fn wait_acked(&self, index: u64, replicas: usize) {
        let mut rx = self.acks.subscribe();
        loop {
            if self.acked_count(index) >= replicas {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    pub(super) fn commit_watch(&self) -> (watch::Receiver<u64>, Duration) {
        (self.commit.subscribe(), self.cluster.quorum_timeout)
    }

    /// This leadership ended (stepped down, or shutdown): replies held for
    /// the commit index stop waiting. A flag and a poke of the commit watch
    /// rather than each held reply also polling the leadership's
    /// cancellation token: at one write per wake-up that token's mutex and
    /// waiter list were a measurable share of a write's cost (README,
    /// "Steady-state writes, elections vs fixed roles"). Idempotent.
    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        // After the flag: a waiter that checked before it is woken by this.
        self.commit.send_modify(|_| {});
    }

    /// Whether [`end`](Self::end) was called.
    #[inline]
    pub(crate) fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// What the leader itself holds durably: fsynced under `always`,
    /// written to the OS otherwise, everything appended (`appended`) with
    /// persistence off.
    fn own_durable(&self, appended: u64) -> u64 {
        match &self.persist {
            None => appended,
            Some(p) => {
                let d = p.wal.durability();
                if p.cfg.fsync == FsyncPolicy::Always {
                    d.synced
                } else {
                    d.written
                }
            }
        }
    }

    /// CLUSTER as the leader sees it: itself, and each follower's link,
    /// match index, lag (records it has yet to apply) and last ack.
    pub(super) fn cluster_view(&self) -> ClusterView {
        let st = self.lock();
        let sm = &st.sm;
        let me = self.cluster.me();
        let members = self
            .cluster
            .nodes()
            .iter()
            .map(|n| {
                let mut m = MemberView::new(n.id, n.addr.to_string(), MemberRole::Follower);
                if n.id == me.id {
                    m.role = MemberRole::Leader;
                    m.match_index = Some(sm.durable_index());
                    m.lag = Some(0);
                } else if let Some(p) = sm.progress(n.id) {
                    m.link = Some(match p.state {
                        _ if !st.links.contains_key(&n.id) => LinkStatus::Down,
                        FollowerState::Streaming => LinkStatus::Up,
                        FollowerState::FullSync => LinkStatus::Syncing,
                        FollowerState::Down => LinkStatus::Down,
                    });
                    m.match_index = Some(p.matched);
                    m.lag = Some(sm.last_index().saturating_sub(p.applied));
                    m.last_contact_ms = st.last_ack.get(&n.id).map(|t| t.elapsed().as_millis() as u64);
                } else {
                    m.link = Some(LinkStatus::Down);
                }
                m
            })
            .collect();
        ClusterView {
            node_id: me.id,
            role: MemberRole::Leader,
            term: sm.term(),
            leader_id: me.id,
            commit_index: sm.commit_index(),
            members,
        }
    }

    pub(super) fn info(&self, out: &mut String) {
        use std::fmt::Write;
        let st = self.lock();
        let sm = &st.sm;
        let me = self.cluster.me();
        let _ = write!(
            out,
            "role:leader\nnode_id:{}\nleader_id:{}\nleader_addr:{}\nreplication_mode:{}\n\
             history_id:{:016x}\nterm:{}\nlast_index:{}\ncommit_index:{}\napplied_index:{}\n\
             durable_index:{}\n",
            me.id,
            me.id,
            me.addr,
            self.cluster.mode.name(),
            sm.history_id(),
            sm.term(),
            sm.last_index(),
            sm.commit_index(),
            self.log().last_index(),
            sm.durable_index(),
        );
        let ids = sm.follower_ids();
        let connected = ids.iter().filter(|id| st.links.contains_key(id)).count();
        let _ = writeln!(out, "connected_followers:{connected}");
        for (n, id) in ids.iter().enumerate() {
            let Some(p) = sm.progress(*id) else { continue };
            let state = match p.state {
                FollowerState::FullSync => "full_sync",
                FollowerState::Streaming => "streaming",
                FollowerState::Down => "down",
            };
            let addr = self
                .cluster
                .node(*id)
                .map(|n| n.addr.to_string())
                .unwrap_or_else(|| st.peer_addr.get(id).map_or_else(|| "-".into(), |a| a.to_string()));
            let _ = writeln!(
                out,
                "follower{n}:id={id},addr={addr},state={state},voter={},match_index={},applied_index={},\
                 lag={},last_ack_s={}",
                u8::from(p.voter),
                p.matched,
                p.applied,
                sm.last_index().saturating_sub(p.applied),
                secs_since(st.last_ack.get(id).copied()),
            );
        }
        let _ = write!(
            out,
            "full_resyncs:{}\npartial_resyncs:{}\nbacklog_first_index:{}\nbacklog_records:{}\n\
             backlog_bytes:{}\nbacklog_max_bytes:{}\nread_rounds:{}\nread_batches:{}\n",
            self.full_resyncs.load(Ordering::Relaxed),
            self.partial_resyncs.load(Ordering::Relaxed),
            st.backlog.first_index(),
            st.backlog.len(),
            st.backlog.bytes(),
            st.backlog.max_bytes(),
            st.read_rounds,
            st.read_batches,
        );
    }
}

/// The leader's main task: ticks, new records, its own durability.
pub(super) async fn run(side: Arc<LeaderSide>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(side.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Quorum mode needs the leader's own durability as soon as it moves
    // (it is part of the majority); otherwise ticks report it, sparing a
    // cross-thread wake-up per write batch.
    let mut durable = match side.cluster.mode {
        ReplicationMode::Quorum => side.persist.as_ref().map(|p| p.durability()),
        ReplicationMode::Async => None,
    };
    info!(
        node = side.cluster.node_id(),
        history_id = format_args!("{:016x}", side.meta.history_id),
        mode = side.cluster.mode.name(),
        "leading; followers: {:?}",
        side.cluster.peers()
    );
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                // Stepped down or shutting down: release held replies.
                side.end();
                return;
            }
            _ = tick.tick() => {
                let mut st = side.lock();
                side.report_activity(&mut st);
                side.repeat_read_round(&mut st);
                // Also catches records nobody announced (expiry deletions).
                side.with_locked(st, |sm, log| {
                    sm.on_append(log.last_index(), log);
                    sm.on_durable(side.own_durable(log.last_index()));
                    sm.tick(log);
                });
            }
            _ = side.appended.notified() => {
                side.with(|sm, log| {
                    sm.on_append(log.last_index(), log);
                    sm.on_durable(side.own_durable(log.last_index()));
                });
            }
            changed = async { durable.as_mut().expect("guarded").changed().await }, if durable.is_some() => {
                if changed.is_err() {
                    durable = None;
                    continue;
                }
                side.with(|sm, log| sm.on_durable(side.own_durable(log.last_index())));
            }
        }
    }
}

/// Serves one follower's replication link until it closes or the leader
/// drops it. `conn` is the connection's IO and the bytes it read after the
/// handshake.
pub(super) async fn serve_link<S: AsyncRead + AsyncWrite + Unpin>(
    side: Arc<LeaderSide>,
    conn: FramedParts<S, Codec>,
    peer: SocketAddr,
    hello: Message,
    cancel: CancellationToken,
) {
    let Message::Handshake { node_id, .. } = hello else { return };
    let span = info_span!("repl_link", follower = node_id, %peer);
    async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = LinkTx {
            id: side.next_link.fetch_add(1, Ordering::Relaxed),
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            limit: link_queue_limit(&side.limits),
            hole: Arc::new(AtomicU64::new(0)),
            activity: Arc::new(Activity::default()),
            close: cancel.child_token(),
        };
        {
            let mut st = side.lock();
            if let Some(old) = st.links.insert(node_id, link.clone()) {
                info!("follower reconnected; closing its previous link");
                old.close.cancel();
            }
            st.peer_addr.insert(node_id, peer);
            st.last_ack.insert(node_id, Instant::now());
        }
        info!("follower connected");
        side.with(|sm, log| {
            sm.on_disconnected(node_id);
            sm.step(node_id, hello, log);
        });
        // The same IO and unread bytes, under the link's own limits; the
        // IO metered, so bytes moving keep the link alive.
        let io = Metered::new(conn.io, link.activity.clone());
        let mut parts = FramedParts::new::<Frame>(io, Codec::server(side.limits));
        parts.read_buf = conn.read_buf;
        let mut framed = Framed::from_parts(parts);
        framed.set_backpressure_boundary(WRITE_BATCH);
        let (wr, mut rd) = framed.split::<Frame>();
        let reader = async {
            loop {
                let frame = match next_frame(&mut rd, End::Follower).await {
                    Ok(f) => f,
                    Err(end) => return end,
                };
                match wire::decode_frame(&frame) {
                    Ok(msg @ Message::Ack { round, .. }) => {
                        side.lock().last_ack.insert(node_id, Instant::now());
                        side.with(|sm, log| sm.step(node_id, msg, log));
                        if round != 0 {
                            side.on_read_ack(node_id, round);
                        }
                        side.acks.send_modify(|n| *n = n.wrapping_add(1));
                    }
                    Ok(other) => debug!(?other, "ignoring an unexpected message from a follower"),
                    Err(source) => return LinkEnd::BadMessage { from: End::Follower, source },
                }
            }
        };
        let writer = write_link(wr, rx, &link);
        let why = tokio::select! {
            why = reader => why,
            why = writer => why,
            _ = link.close.cancelled() => LinkEnd::Closed { by: End::Leader },
        };
        link.close.cancel();
        let current = {
            let mut st = side.lock();
            let current = st.links.get(&node_id).is_some_and(|l| l.id == link.id);
            if current {
                st.links.remove(&node_id);
            }
            current
        };
        if current {
            side.with(|sm, _| sm.on_disconnected(node_id));
        }
        info!(reason = %ErrorChain(&why), "follower link closed");
    }
    .instrument(span)
    .await
}

/// Writes queued messages, gathering whatever is ready (up to
/// `WRITE_BATCH`) into one write: fed to the link, then flushed. Returns
/// why it stopped.
async fn write_link(
    mut wr: impl Sink<Frame, Error = CodecError> + Unpin,
    mut rx: mpsc::UnboundedReceiver<Message>,
    link: &LinkTx,
) -> LinkEnd {
    let mut seq = 0u32;
    while let Some(first) = rx.recv().await {
        let mut msg = Some(first);
        let mut accounted = 0;
        let mut gathered = 0;
        while let Some(m) = msg.take() {
            accounted += approx_len(&m);
            seq = seq.wrapping_add(1);
            let frame = wire::encode(&m, seq);
            gathered += frame.encoded_len();
            if let Err(e) = wr.feed(frame).await {
                return LinkEnd::write(e, &m);
            }
            if gathered < WRITE_BATCH {
                msg = rx.try_recv().ok();
            }
        }
        if let Err(e) = wr.flush().await {
            return LinkEnd::flush(e);
        }
        link.queued.fetch_sub(accounted.min(link.queued.load(Ordering::Relaxed)), Ordering::Relaxed);
        link.drained.notify_waiters();
    }
    LinkEnd::QueueClosed
}

/// Streams a snapshot to follower `to` as it is produced: shard by shard on
/// a blocking thread, 1 MiB chunks, at most `MAX_QUEUED_SNAPSHOT` queued.
/// The snapshot is announced as covering the log's index before the first
/// shard is exported; shards exported later also hold newer records, which
/// the follower recognises from each shard's covered index and skips.
async fn full_sync(side: Arc<LeaderSide>, to: NodeId, link: LinkTx) {
    let started = Instant::now();
    let index = side.log().last_index();
    if let Err(e) = side.with(|sm, _| sm.snapshot_ready(to, index)) {
        debug!(follower = to, error = %e, "full resync abandoned before it started");
        return;
    }
    let chunk = CHUNK.min(max_snapshot_chunk(&side.limits));
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let store = side.store.clone();
    let term = side.meta.term.max(1);
    let producer = tokio::task::spawn_blocking(move || {
        let mut w = ChunkWriter { tx, buf: Vec::with_capacity(chunk), chunk };
        let encoded = encode_snapshot(&store, term, 0, &mut w)?;
        w.finish()?;
        Ok::<_, std::io::Error>(encoded)
    });
    let mut held: Option<Bytes> = None;
    let mut sent = 0u64;
    while let Some(bytes) = rx.recv().await {
        if let Some(prev) = held.replace(bytes) {
            sent += prev.len() as u64;
            if !send_chunk(&side, to, &link, prev, false).await {
                return;
            }
        }
    }
    let encoded = match producer.await {
        Ok(Ok(e)) => e,
        Ok(Err(e)) => {
            error!(follower = to, error = %e, "full resync: snapshot failed; dropping the link");
            link.close.cancel();
            return;
        }
        Err(e) => {
            error!(follower = to, error = %e, "full resync: snapshot task failed; dropping the link");
            link.close.cancel();
            return;
        }
    };
    let last = held.unwrap_or_default();
    sent += last.len() as u64;
    if send_chunk(&side, to, &link, last, true).await {
        info!(
            follower = to,
            index,
            keys = encoded.entries,
            bytes = sent,
            ms = started.elapsed().as_millis() as u64,
            "full resync: snapshot sent; streaming from index {}",
            index + 1
        );
    }
}

/// Waits for room on the link, then hands the chunk to the state machine.
async fn send_chunk(side: &Arc<LeaderSide>, to: NodeId, link: &LinkTx, bytes: Bytes, last: bool) -> bool {
    loop {
        let drained = link.drained.notified();
        if link.queued.load(Ordering::Relaxed) < MAX_QUEUED_SNAPSHOT {
            break;
        }
        tokio::select! {
            _ = drained => {}
            _ = link.close.cancelled() => return false,
        }
    }
    match side.with(|sm, log| sm.snapshot_chunk(to, bytes, last, log)) {
        Ok(()) => true,
        Err(e) => {
            debug!(follower = to, error = %e, "full resync abandoned");
            false
        }
    }
}

/// `std::io::Write` that cuts the snapshot into chunks and hands them to
/// the async side, blocking while it is behind (bounded channel).
struct ChunkWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    chunk: usize,
}

impl ChunkWriter {
    fn ship(&mut self) -> std::io::Result<()> {
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(self.chunk));
        self.tx
            .blocking_send(Bytes::from(full))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "full resync abandoned"))
    }

    fn finish(mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            self.ship()
        }
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            self.ship()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod queue_tests {
    use super::*;
    use crate::replication::RecordEntry;

    fn link(limit: usize) -> (LinkTx, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let link = LinkTx {
            id: 1,
            tx,
            queued: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            limit,
            hole: Arc::new(AtomicU64::new(0)),
            activity: Arc::new(Activity::default()),
            close: CancellationToken::new(),
        };
        (link, rx)
    }

    fn records(from: u64, to: u64) -> Message {
        let records = (from..=to)
            .map(|index| RecordEntry { index, term: 1, bytes: Bytes::from(vec![0u8; 100]) })
            .collect();
        Message::Records { records, commit_index: 0 }
    }

    fn first_index(m: &Message) -> u64 {
        match m {
            Message::Records { records, .. } => records[0].index,
            other => panic!("expected records, got {other:?}"),
        }
    }

    #[test]
    fn past_the_limit_records_are_held_back_without_a_gap_until_a_retransmit() {
        let (link, mut rx) = link(300);
        link.send(records(1, 2)); // 232 bytes queued
        link.send(records(3, 4)); // 464: over the limit from here on
        link.send(records(5, 6));
        link.send(Message::Heartbeat { term: 1, last_index: 6, commit_index: 0, round: 0 });
        // The writer drains the queue.
        assert_eq!(first_index(&rx.try_recv().unwrap()), 1);
        assert_eq!(first_index(&rx.try_recv().unwrap()), 3);
        assert!(rx.try_recv().is_err(), "5..6 and the heartbeat were held back");
        link.queued.store(0, Ordering::Relaxed);
        link.send(records(7, 8));
        assert!(rx.try_recv().is_err(), "7..8 would leave a gap after 4: held back too");
        link.send(records(5, 8));
        assert_eq!(first_index(&rx.try_recv().unwrap()), 5, "the retransmit from 5 goes through");
        link.queued.store(0, Ordering::Relaxed);
        link.send(records(9, 9));
        assert_eq!(first_index(&rx.try_recv().unwrap()), 9);
    }

    #[test]
    fn the_queue_limit_holds_what_a_follower_that_keeps_up_is_sent() {
        let limits = link_limits(&Limits::default());
        // Four batches of the largest record.
        assert!(link_queue_limit(&limits) >= 4 * limits.max_frame);
    }
}
