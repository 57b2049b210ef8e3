//! The follower's driver: one task owning the [`Follower`] state machine,
//! its link to the leader, and everything the machine asks for — dial,
//! send, apply records (store + own WAL), receive and install a snapshot.
//!
//! Applied records go through the same `apply` as the leader's writes,
//! under the leader's index and term, and into this node's WAL under its
//! own fsync policy; the state machine acks them as durable only once the
//! WAL says so. After a full resync, records the snapshot's shard images
//! already hold (the leader kept writing while exporting) are logged but
//! not applied again. A full resync's snapshot is received by `incoming`,
//! which never holds more than a few MiB of it: while its loader is
//! behind, the link is not read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, info_span, warn, Instrument};

use super::activity::{Activity, Metered};
use super::incoming::{self, Incoming, ResyncError};
use super::member_link;
use super::{next_frame, secs_since, tick_for, ticks, End, LinkEnd};
use crate::oplog::RecordRef;
use crate::persist::{FsyncPolicy, NodeMeta, SnapshotMeta};
use crate::replication::member_auth::LinkParties;
use crate::replication::wire::{self, link_limits};
use crate::replication::{
    Follower, FollowerConfig, FollowerOutput, HistoryId, LinkState, LogPosition, Message, RecordEntry,
    SeededRng,
};
use crate::server::cluster::{ClusterConfig, NodeInfo};
use crate::server::tls::MemberDialer;
use crate::server::tls::MemberStream;
use crate::server::{Persistence, Shared};
use crate::store::{Replay, ShardCovers, Store};
use burrow_proto::{
    ClusterView, Codec, CodecError, ErrorChain, Limits, LinkStatus as ViewLink, MemberRole, MemberView,
    Status,
};

/// What INFO and the read checks need to know about the link.
#[derive(Debug, Clone)]
struct LinkStatus {
    link: LinkState,
    applied: u64,
    durable: u64,
    leader_commit: u64,
    /// `Follower::link_term`: the term the leader's contact counts in.
    link_term: u64,
    history_id: HistoryId,
    /// Last sign of life from the leader on the current link: a message
    /// of any kind, or bytes of one arriving (`Follower::on_link_activity`).
    last_contact: Option<Instant>,
    /// Last tick this node spent on work its leader sent (loading a
    /// snapshot chunk, installing the snapshot) without reading the link:
    /// the leader cannot be heard then, and that silence is this node's own.
    busy_at: Option<Instant>,
    /// Since when the link has not been streaming (`None` while it is):
    /// from the leader's last message before it went down, so that a
    /// leader that fell silent counts as down from then, not from when the
    /// link timeout noticed.
    down_since: Option<Instant>,
}

/// The follower's replication state, shared with connections.
#[derive(Debug)]
pub(crate) struct FollowerSide {
    cluster: ClusterConfig,
    /// `None`: no leader known this term (writes get NO_LEADER; no link).
    leader: Option<NodeInfo>,
    status: Mutex<LinkStatus>,
    /// A full resync is replacing the dataset: reads get LOADING.
    loading: AtomicBool,
    /// A full resync's snapshot is loaded, but records its shard images
    /// already hold are still arriving: until they have, the store is at
    /// no single log index (some shards hold the record after the log's
    /// last), so the log cannot describe it to another leader.
    incomplete: AtomicBool,
    full_resyncs: AtomicU64,
    partial_resyncs: AtomicU64,
    tick: Duration,
    meta: NodeMeta,
}

impl FollowerSide {
    pub(super) fn new(
        cluster: &ClusterConfig,
        meta: NodeMeta,
        leader: Option<NodeInfo>,
    ) -> Arc<FollowerSide> {
        Arc::new(FollowerSide {
            cluster: cluster.clone(),
            leader,
            status: Mutex::new(LinkStatus {
                link: LinkState::Connecting,
                applied: 0,
                durable: 0,
                leader_commit: 0,
                link_term: 0,
                history_id: meta.history_id,
                last_contact: None,
                busy_at: None,
                down_since: Some(Instant::now()),
            }),
            loading: AtomicBool::new(false),
            incomplete: AtomicBool::new(false),
            full_resyncs: AtomicU64::new(0),
            partial_resyncs: AtomicU64::new(0),
            tick: tick_for(cluster.heartbeat),
            meta,
        })
    }

    pub(super) fn leader_addr(&self) -> Option<std::net::SocketAddr> {
        self.leader.as_ref().map(|l| l.addr)
    }

    pub(super) fn leader_id(&self) -> Option<crate::replication::NodeId> {
        self.leader.as_ref().map(|l| l.id)
    }

    /// The history this node's data belongs to now: none (0) while a full
    /// resync is replacing it, or after one was cut short.
    pub(super) fn history_id(&self) -> HistoryId {
        if self.partial_dataset() {
            return 0;
        }
        self.status().history_id
    }

    /// The store is not the image of any log prefix: a full resync is
    /// replacing it (or was cut short), or its snapshot is loaded but not
    /// yet completed by the records its shard images reach. Such a node
    /// claims no log in elections and, when its side ends, empties the
    /// store for a full resync: a partial one from its log's end would
    /// apply twice a record some shards already hold, and a leader would
    /// write a different record at that index over it.
    pub(super) fn partial_dataset(&self) -> bool {
        self.loading() || self.incomplete.load(Ordering::SeqCst)
    }

    /// A full resync is replacing the data set (or one was cut short).
    pub(super) fn loading(&self) -> bool {
        self.loading.load(Ordering::SeqCst)
    }

    /// When the leader last showed life (a message, or bytes of one
    /// arriving), or this node last spent a tick on work the leader sent
    /// instead of listening; and the term it claimed on this link (0 until
    /// a resync reply or heartbeat told): the election driver's leader contact. A large
    /// record or snapshot crossing a slow link is contact all along; a
    /// leader that sends nothing is not, however busy the link was before.
    pub(super) fn last_contact(&self) -> (Option<Instant>, u64) {
        let st = self.status();
        (st.last_contact.max(st.busy_at), st.link_term)
    }

    fn status(&self) -> std::sync::MutexGuard<'_, LinkStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn refuse_read(&self) -> Option<(Status, String)> {
        if self.loading.load(Ordering::Relaxed) {
            return Some((Status::Loading, "full resync in progress: loading the leader's snapshot".into()));
        }
        let max = self.cluster.max_stale?;
        let down_for = self.status().down_since?.elapsed();
        (down_for > max).then(|| {
            (
                Status::Stale,
                format!(
                    "link to the leader ({}) down for {} ms, over max_stale_ms {}",
                    self.leader_addr().map_or_else(|| "none known".into(), |a| a.to_string()),
                    down_for.as_millis(),
                    max.as_millis()
                ),
            )
        })
    }

    /// CLUSTER as a follower sees it: itself (`role`: follower, or
    /// candidate while it campaigns), the leader it follows (link and last
    /// contact), the others as unknown. Its own lag is what it knows is
    /// committed and has yet to apply.
    pub(super) fn cluster_view(&self, term: u64, role: MemberRole) -> ClusterView {
        let st = self.status().clone();
        let me = self.cluster.node_id();
        let leader = self.leader_id();
        let members = self
            .cluster
            .nodes()
            .iter()
            .map(|n| {
                let mut m = MemberView::new(n.id, n.addr.to_string(), MemberRole::Unknown);
                if n.id == me {
                    m.role = role;
                    m.match_index = Some(st.durable);
                    m.lag = Some(st.leader_commit.saturating_sub(st.applied));
                } else if Some(n.id) == leader {
                    m.role = MemberRole::Leader;
                    m.link = Some(cluster_link(st.link));
                    m.last_contact_ms = st.last_contact.map(|t| t.elapsed().as_millis() as u64);
                }
                m
            })
            .collect();
        ClusterView {
            node_id: me,
            role,
            term,
            leader_id: leader.unwrap_or(0),
            commit_index: st.leader_commit,
            members,
        }
    }

    /// INFO lines; `term` is the election's current term.
    pub(super) fn info(&self, out: &mut String, term: u64) {
        use std::fmt::Write;
        let st = self.status().clone();
        let link = link_status(st.link);
        let _ = write!(
            out,
            "role:follower\nnode_id:{}\nleader_id:{}\nleader_addr:{}\nreplication_mode:{}\n\
             history_id:{:016x}\nterm:{}\nlast_index:{}\ncommit_index:{}\napplied_index:{}\n\
             durable_index:{}\nlink_status:{link}\nlast_heartbeat_s:{}\nlink_down_s:{}\n\
             loading:{}\nfull_resyncs:{}\npartial_resyncs:{}\n",
            self.cluster.node_id(),
            self.leader_id().unwrap_or(0),
            self.leader_addr().map_or_else(|| "-".into(), |a| a.to_string()),
            self.cluster.mode.name(),
            st.history_id,
            term,
            st.applied,
            st.leader_commit,
            st.applied,
            st.durable,
            secs_since(st.last_contact),
            st.down_since.map_or_else(|| "0".into(), |t| secs_since(Some(t))),
            u8::from(self.loading.load(Ordering::Relaxed)),
            self.full_resyncs.load(Ordering::Relaxed),
            self.partial_resyncs.load(Ordering::Relaxed),
        );
    }
}

/// INFO's `link_status`. `down` until the leader process says something on
/// a connection: a paused leader's kernel still accepts connections, so
/// an open one with an unanswered handshake is no link (`syncing` there
/// would claim a leader that may be stopped).
fn link_status(link: LinkState) -> &'static str {
    match link {
        LinkState::Down | LinkState::Connecting | LinkState::Handshaking => "down",
        LinkState::Syncing => "syncing",
        LinkState::Streaming => "up",
    }
}

/// CLUSTER's link status: the same reading as INFO's `link_status`.
fn cluster_link(link: LinkState) -> ViewLink {
    match link_status(link) {
        "up" => ViewLink::Up,
        "syncing" => ViewLink::Syncing,
        _ => ViewLink::Down,
    }
}

/// Reconnect delay after a failed attempt (the first after a link that
/// held is immediate); doubles per failure up to [`RECONNECT_MAX`].
const RECONNECT_BASE: Duration = Duration::from_millis(50);
/// Cap on the reconnect delay: low, so that a restarted leader has its
/// followers back (and quorum writes acknowledged) within it, yet a dead
/// address sees only about five attempts a second from each follower.
const RECONNECT_MAX: Duration = Duration::from_millis(250);

/// The state machine's tick counts for a cluster's timings, `tick` long each.
fn follower_config(heartbeat: Duration, link_timeout: Duration, tick: Duration) -> FollowerConfig {
    let leader_timeout_ticks = ticks(link_timeout, tick, 2);
    FollowerConfig {
        leader_timeout_ticks,
        // Producing a large snapshot's first chunk may take a while.
        sync_timeout_ticks: ticks(Duration::from_secs(60), tick, leader_timeout_ticks),
        backoff_base_ticks: ticks(RECONNECT_BASE, tick, 1),
        backoff_max_ticks: ticks(RECONNECT_MAX, tick, 1),
        // As often as the leader's heartbeats, which the timeout exceeds.
        keepalive_ticks: ticks(heartbeat, tick, 1).min(leader_timeout_ticks - 1),
    }
}

/// The link to the leader, once connected.
struct Link {
    /// Metered: bytes moving are the leader's proof of life while a big
    /// message arrives.
    framed: Framed<Metered<MemberStream>, Codec>,
    activity: Arc<Activity>,
    seq: u32,
}

/// The follower's task.
pub(super) async fn run(side: Arc<FollowerSide>, shared: Arc<Shared>, cancel: CancellationToken) {
    let Some(leader) = side.leader.clone() else { return };
    let span = info_span!("repl_follower", node = side.cluster.node_id(), leader = %leader.addr);
    async move {
        let mut driver = Driver::new(side, leader, shared);
        driver.run(cancel).await
    }
    .instrument(span)
    .await
}

struct Driver {
    side: Arc<FollowerSide>,
    leader: NodeInfo,
    store: Arc<Store>,
    persist: Option<Arc<Persistence>>,
    sm: Follower,
    cfg: FollowerConfig,
    limits: Limits,
    link: Option<Link>,
    incoming: Option<Incoming>,
    /// Shard covers of the snapshot loaded last, while records it may
    /// already hold are still arriving.
    skip: Option<ShardCovers>,
    seed: u64,
    /// The member-auth failure logged last (see `run`).
    auth_warned: Option<String>,
    /// Dials the leader: TLS under `[cluster] tls`.
    dialer: MemberDialer,
}

impl Driver {
    /// # Panics
    /// Never for a validated cluster config: the state machine's tick
    /// counts are derived from it so as to pass [`FollowerConfig::validate`].
    fn new(side: Arc<FollowerSide>, leader: NodeInfo, shared: Arc<Shared>) -> Driver {
        let cluster = &side.cluster;
        let cfg = follower_config(cluster.heartbeat, cluster.link_timeout, side.tick);
        let store = shared.store.clone();
        let recovered = store.log().last_index();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ cluster.node_id();
        // No history: whatever the data holds is replaced by a full resync.
        let recovered = if side.meta.history_id == 0 { 0 } else { recovered };
        // Terms never decrease along a log: the log's term is its last record's.
        let term = if recovered == 0 { 0 } else { store.log().stats().term };
        let recovered = LogPosition { term, index: recovered };
        let sm = Follower::new(
            cfg.clone(),
            cluster.node_id(),
            side.meta.history_id,
            recovered,
            SeededRng::new(seed),
        )
        .expect("follower config built from a validated cluster config");
        Driver {
            side,
            leader,
            store,
            persist: shared.persist.clone(),
            sm,
            cfg,
            // The leader's limits, assumed equal to ours (protocol.md §12.1).
            limits: link_limits(&shared.config.limits()),
            link: None,
            incoming: None,
            skip: None,
            seed,
            auth_warned: None,
            dialer: shared.member_dialer(),
        }
    }

    async fn run(&mut self, cancel: CancellationToken) {
        info!(
            history_id = format_args!("{:016x}", self.sm.history_id()),
            applied = self.sm.last_applied(),
            "following the leader"
        );
        let mut tick = tokio::time::interval(self.side.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut durable = self.persist.as_ref().map(|p| p.durability());
        let mut dial: Option<
            std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<MemberStream>> + Send>>,
        > = None;
        loop {
            self.carry_out(&mut dial).await;
            self.publish();
            let link = &mut self.link;
            let limits = self.limits;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {
                    if link.as_ref().is_some_and(|l| l.activity.moved()) && self.sm.on_link_activity() {
                        self.side.status().last_contact = Some(Instant::now());
                    }
                    self.sm.tick();
                }
                r = async { dial.as_mut().expect("guarded").await }, if dial.is_some() => {
                    dial = None;
                    match r {
                        Ok(stream) => {
                            let activity = Arc::new(Activity::default());
                            let io = Metered::new(stream, activity.clone());
                            let framed = Framed::with_capacity(io, Codec::server(limits), 64 * 1024);
                            *link = Some(Link { framed, activity, seq: 0 });
                            self.auth_warned = None;
                            debug!("connected to the leader; handshaking");
                            self.sm.on_connected();
                        }
                        Err(e) => {
                            match e.get_ref().and_then(|e| e.downcast_ref::<member_link::AuthError>()) {
                                // Said once until a link succeeds: the dial
                                // is retried several times a second.
                                Some(auth) => {
                                    let why = ErrorChain(auth).to_string();
                                    if self.auth_warned.as_deref() != Some(why.as_str()) {
                                        warn!(error = %why, "the leader failed member authentication; retrying");
                                        self.auth_warned = Some(why);
                                    }
                                }
                                None => debug!(error = %e, "cannot reach the leader"),
                            }
                            self.sm.on_connect_failed();
                        }
                    }
                }
                r = async {
                    next_frame(&mut link.as_mut().expect("guarded").framed, End::Leader).await
                }, if link.is_some() => match r {
                    Ok(frame) => match wire::decode_frame(&frame) {
                        Ok(msg) => self.on_message(msg),
                        Err(source) => self.drop_link(LinkEnd::BadMessage { from: End::Leader, source }),
                    },
                    Err(LinkEnd::BadFrame(source @ CodecError::BadMagic { .. })) => {
                        self.drop_link(LinkEnd::NotServing { addr: self.leader.addr, source })
                    }
                    Err(end) => self.drop_link(end),
                },
                changed = async { durable.as_mut().expect("guarded").changed().await }, if durable.is_some() => {
                    if changed.is_err() {
                        durable = None;
                    } else {
                        self.report_durable();
                    }
                }
            }
        }
    }

    fn on_message(&mut self, msg: Message) {
        if let Message::PartialResync { .. } = msg {
            self.side.partial_resyncs.fetch_add(1, Ordering::Relaxed);
            info!(from = self.sm.last_applied() + 1, "partial resync: catching up from the leader's backlog");
        }
        if let Message::FullResync { snapshot_index, .. } = msg {
            info!(snapshot_index, "full resync: receiving the leader's snapshot");
        }
        self.side.status().last_contact = Some(Instant::now());
        self.sm.step(msg);
    }

    fn drop_link(&mut self, why: LinkEnd) {
        if self.link.take().is_some() {
            warn!(reason = %ErrorChain(&why), "replication link lost");
        }
        self.sm.on_disconnected();
    }

    /// Carries out the state machine's outputs (which may queue more).
    async fn carry_out(
        &mut self,
        dial: &mut Option<
            std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<MemberStream>> + Send>>,
        >,
    ) {
        loop {
            let outs = self.sm.outputs();
            if outs.is_empty() {
                break;
            }
            let mut applied_any = false;
            for out in outs {
                match out {
                    FollowerOutput::Connect => {
                        let addr = self.leader.addr;
                        let limit = self.side.cluster.link_timeout;
                        let cluster = &self.side.cluster;
                        // With a secret, the leader proves it is the member
                        // dialed before anything is sent (protocol.md §12.7).
                        let auth = cluster.secret.clone().map(|s| {
                            let dialer = cluster.node_id();
                            let cluster_id = member_link::cluster_id_of(cluster);
                            (s, LinkParties { cluster_id, dialer, acceptor: self.leader.id })
                        });
                        let dialer = self.dialer.clone();
                        *dial = Some(Box::pin(async move {
                            let stream = dialer.dial(addr, limit).await?;
                            match auth {
                                None => Ok(stream),
                                Some((secret, parties)) => member_link::dial(stream, &secret, parties, limit)
                                    .await
                                    .map_err(std::io::Error::other),
                            }
                        }));
                    }
                    FollowerOutput::Send(msg) => self.send(msg).await,
                    FollowerOutput::Apply(records) => {
                        self.apply(records);
                        applied_any = true;
                    }
                    FollowerOutput::SnapshotData { offset, bytes } => {
                        if offset == 0 {
                            // A new transfer (a left-over one cannot exist:
                            // a new session follows a link down, which aborts it).
                            self.stop_incoming().await;
                            if let Err(e) = self.start_incoming().await {
                                error!(error = %ErrorChain(&e), "cannot store the leader's snapshot");
                                self.drop_link(LinkEnd::SnapshotNotStored);
                                continue;
                            }
                        }
                        if let Err(e) = self.receive_chunk(bytes).await {
                            error!(error = %ErrorChain(&e), "cannot store the leader's snapshot");
                            self.drop_link(LinkEnd::SnapshotNotStored);
                        }
                    }
                    FollowerOutput::LoadSnapshot { snapshot_index, history_id, term } => {
                        self.install(snapshot_index, history_id, term).await
                    }
                    FollowerOutput::LinkDown { reconnect_after_ticks } => {
                        if self.link.take().is_some() {
                            warn!("replication link down");
                        }
                        self.abort_incoming().await;
                        *dial = None;
                        debug!(
                            retry_ms = (self.side.tick * reconnect_after_ticks as u32).as_millis() as u64,
                            "reconnecting after a backoff"
                        );
                    }
                }
            }
            if applied_any {
                self.after_apply();
            }
        }
    }

    /// Sends one message at once (fed and flushed): acks are small and
    /// must not wait behind the outputs that follow them (a snapshot install).
    async fn send(&mut self, msg: Message) {
        let Some(link) = self.link.as_mut() else { return };
        link.seq = link.seq.wrapping_add(1);
        let Err(e) = link.framed.send(wire::encode(&msg, link.seq)).await else { return };
        match LinkEnd::write(e, &msg) {
            end @ LinkEnd::Write(_) => self.drop_link(end),
            // Over the link's limits: the message is lost, the link is fine.
            end => error!(error = %ErrorChain(&end), "cannot send a replication message"),
        }
    }

    /// Applies records in order: store, backlog and (persistence on) WAL.
    /// Each op is decoded in place from the received frame; the framing and
    /// CRC were checked when the frame was decoded (`wire::decode_frame`).
    fn apply(&mut self, records: Vec<RecordEntry>) {
        let mut last = None;
        for entry in &records {
            let rec = match RecordRef::parse_trusted(&entry.bytes).and_then(|r| r.decode()) {
                Ok(rec) if rec.index == entry.index => rec,
                Ok(rec) => {
                    error!(expected = entry.index, got = rec.index, "record index mismatch; resyncing");
                    return self.force_full_resync();
                }
                Err(e) => {
                    error!(index = entry.index, error = %ErrorChain(&e), "undecodable record from the leader; resyncing");
                    return self.force_full_resync();
                }
            };
            self.store.replay(Replay::Replicated, self.skip.as_ref(), &rec);
            if self.skip.as_ref().is_some_and(|c| rec.index >= c.max()) {
                // Every shard image reached: the store is this log's image.
                self.set_skip(None);
            }
            last = Some((rec.term, rec.index));
        }
        // The batch's bytes, as received, go to the log (and WAL) at once.
        if let Some((term, index)) = last {
            self.store.log().queue_replicated(term, index, records.iter().map(|r| &r.bytes[..]));
        }
    }

    /// After a batch: write it to the WAL (or, persistence off, call it durable).
    fn after_apply(&mut self) {
        match &self.persist {
            None => self.note_durable(self.sm.last_applied()),
            // The WAL thread was woken by the records being queued.
            Some(_) => self.report_durable(),
        }
    }

    fn report_durable(&mut self) {
        let Some(p) = &self.persist else { return };
        let d = p.wal.durability();
        let index = if p.cfg.fsync == FsyncPolicy::Always { d.synced } else { d.written };
        self.note_durable(index);
    }

    /// Tells the leader (with the next ack) what this node holds durably —
    /// unless its data set is partial: a node that empties it if its side
    /// ends (see [`FollowerSide::partial_dataset`]) must not count toward a
    /// commit meanwhile, or a record committed with its ack could be lost
    /// with it (it would then vote for a node that lacks the record).
    fn note_durable(&mut self, index: u64) {
        if self.skip.is_none() {
            self.sm.on_durable(index);
        }
    }

    /// A full resync's first chunk: the store is emptied and a loader
    /// starts parsing the stream into it (see `incoming`). With persistence
    /// on, the node file first stops naming a history.
    async fn start_incoming(&mut self) -> Result<(), ResyncError> {
        let file = match &self.persist {
            Some(p) => Some(incoming::create_file(p.clone()).await?),
            None => None,
        };
        self.side.loading.store(true, Ordering::SeqCst);
        self.set_skip(None);
        self.incoming = Some(Incoming::start(self.store.clone(), file));
        Ok(())
    }

    /// Hands a chunk to the loader, waiting while it is behind (keeping
    /// the link alive meanwhile): the link is not read until it catches up.
    async fn receive_chunk(&mut self, bytes: Bytes) -> Result<(), ResyncError> {
        let push = self.incoming.as_ref().ok_or(ResyncError::NoFirstChunk)?.push(bytes);
        self.keep_alive_while(push).await;
        Ok(())
    }

    /// Stops a transfer's loader (waiting for it, so it cannot race the
    /// next one) and deletes its file; returns whether one was running.
    async fn stop_incoming(&mut self) -> bool {
        let Some(inc) = self.incoming.take() else { return false };
        inc.abandon(self.persist.as_ref().map(|p| p.fs().clone())).await;
        true
    }

    /// A transfer cut short: the dataset was half replaced, and only a full
    /// resync can bring it back (a partial one would build on the gap).
    async fn abort_incoming(&mut self) {
        if self.stop_incoming().await {
            warn!("full resync interrupted; the dataset is empty until the next one");
            self.force_full_resync();
        }
    }

    /// The last chunk arrived: waits for the loader, then (persistence on)
    /// makes the received file this node's snapshot with a fresh WAL and
    /// node file. Reads answer LOADING until it is done.
    async fn install(&mut self, index: u64, history_id: HistoryId, term: u64) {
        let started = Instant::now();
        match self.load_and_install(index, history_id, term).await {
            Ok(meta) => {
                // Incomplete before no longer loading: the node never
                // looks whole in between (see `partial_dataset`).
                self.set_skip((meta.max_cover() > index).then(|| ShardCovers::new(meta.covers.clone())));
                self.side.loading.store(false, Ordering::SeqCst);
                self.side.full_resyncs.fetch_add(1, Ordering::Relaxed);
                info!(
                    index,
                    shard_images_up_to = meta.max_cover(),
                    keys = meta.entries,
                    ms = started.elapsed().as_millis() as u64,
                    history_id = format_args!("{history_id:016x}"),
                    "full resync: snapshot loaded"
                );
                // The snapshot is on disk (fsynced) or, persistence off,
                // in memory: everything up to `index` is as durable as this
                // node makes anything (reported once the data set is whole).
                self.note_durable(index);
            }
            Err(e) => {
                error!(error = %ErrorChain(&e), "full resync failed; the dataset is empty until the next one");
                self.force_full_resync();
            }
        }
    }

    /// [`Driver::install`]'s work: the loader's outcome, then `incoming::install`.
    async fn load_and_install(
        &mut self,
        index: u64,
        history_id: HistoryId,
        term: u64,
    ) -> Result<SnapshotMeta, ResyncError> {
        let (path, loader) = self.incoming.take().ok_or(ResyncError::NothingReceived)?.finish();
        let (meta, file) =
            self.keep_alive_while(loader).await.unwrap_or_else(|e| Err(ResyncError::Task("loader", e)))?;
        let persist = self.persist.clone();
        let _no_snapshots = match &persist {
            Some(p) => Some(self.keep_alive_while(p.exclude_snapshots()).await),
            None => None,
        };
        let store = self.store.clone();
        let p = self.persist.clone();
        self.keep_alive_while(tokio::task::spawn_blocking(move || {
            incoming::install(&store, p.as_deref(), path.zip(file), meta, index, history_id, term)
        }))
        .await
        .unwrap_or_else(|e| Err(ResyncError::Task("install", e)))
    }

    /// Awaits `work` (part of a long output: a loader that is behind takes
    /// its time to make room for the next chunk, loading a snapshot takes
    /// seconds) while sending the leader a keepalive ack once a tick it
    /// lasts. No frame is read meanwhile and the leader's writes to this
    /// link block, so without them the leader would see a silent follower
    /// and drop a link that is only slow, or that just completed a full
    /// resync. Nor does this node's election timer run out meanwhile
    /// (`busy_at`): it would leave a resync it is in the middle of for a
    /// campaign its partial data set cannot win.
    async fn keep_alive_while<T>(&mut self, work: impl std::future::Future<Output = T>) -> T {
        tokio::pin!(work);
        let period = self.side.tick;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                done = &mut work => return done,
                _ = tick.tick() => {
                    if let Some(ack) = self.sm.keepalive() {
                        // Not listening, so not hearing the leader: no
                        // election over this node's own stall.
                        self.side.status().busy_at = Some(Instant::now());
                        self.send(ack).await;
                    }
                }
            }
        }
    }

    /// The shard covers of the snapshot loaded last while records they
    /// hold are still to come (see [`FollowerSide::partial_dataset`]).
    fn set_skip(&mut self, skip: Option<ShardCovers>) {
        self.side.incomplete.store(skip.is_some(), Ordering::SeqCst);
        self.skip = skip;
    }

    /// Forgets the history so the next handshake gets a full resync.
    fn force_full_resync(&mut self) {
        // Reads answer LOADING until a full resync brings a dataset back.
        self.side.loading.store(true, Ordering::SeqCst);
        self.store.clear_unlogged();
        self.set_skip(None);
        self.link = None;
        self.seed = self.seed.wrapping_add(1);
        self.sm = Follower::new(
            self.cfg.clone(),
            self.side.cluster.node_id(),
            0,
            LogPosition::default(),
            SeededRng::new(self.seed),
        )
        .expect("the config `Driver::new` built and validated");
    }

    /// Copies the state machine's view into what INFO and reads look at.
    fn publish(&self) {
        let mut st = self.side.status();
        let link = self.sm.link_state();
        if link == LinkState::Streaming {
            st.down_since = None;
        } else if st.down_since.is_none() {
            let now = Instant::now();
            st.down_since = Some(st.last_contact.map_or(now, |t| t.min(now)));
        }
        st.link = link;
        st.applied = self.sm.last_applied();
        st.durable = self.sm.durable_index();
        st.leader_commit = self.sm.leader_commit();
        st.link_term = self.sm.link_term();
        st.history_id = self.sm.history_id();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connection attempts a follower makes against an address that
    /// refuses every one, over `secs` seconds, with the server's settings
    /// for `heartbeat` (and the default link timeout, 10 × it).
    fn attempts_against_a_dead_address(heartbeat: Duration, secs: u64) -> (u64, Vec<u64>) {
        let tick = tick_for(heartbeat);
        let cfg = follower_config(heartbeat, heartbeat * 10, tick);
        let mut f = Follower::new(cfg, 2, 1, LogPosition::default(), SeededRng::new(7)).unwrap();
        let (mut attempts, mut at_ms) = (0, Vec::new());
        for t in 0..ticks(Duration::from_secs(secs), tick, 1) {
            for o in f.outputs() {
                if o == FollowerOutput::Connect {
                    attempts += 1;
                    at_ms.push(t * tick.as_millis() as u64);
                    f.on_connect_failed();
                }
            }
            f.tick();
        }
        (attempts, at_ms)
    }

    #[test]
    fn a_dead_leader_is_retried_promptly_but_a_few_times_a_second() {
        for hb_ms in [1, 20, 100, 500, 5000] {
            let (attempts, at_ms) = attempts_against_a_dead_address(Duration::from_millis(hb_ms), 10);
            let per_sec = attempts as f64 / 10.0;
            assert!((3.0..=9.0).contains(&per_sec), "heartbeat {hb_ms} ms: {per_sec}/s {at_ms:?}");
            let gaps: Vec<u64> = at_ms.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.iter().all(|&g| g <= 400), "heartbeat {hb_ms} ms: a retry waited long {gaps:?}");
        }
    }

    #[test]
    fn only_a_link_that_reaches_the_leader_process_is_reported_live() {
        let cases = [
            (LinkState::Down, "down"),
            (LinkState::Connecting, "down"),
            (LinkState::Handshaking, "down"),
            (LinkState::Syncing, "syncing"),
            (LinkState::Streaming, "up"),
        ];
        for (state, want) in cases {
            assert_eq!(link_status(state), want, "{state:?}");
        }
    }
}
