//! A cluster member whose role changes at run time.
//!
//! The election driver asks for a role with [`Node::switch`]; one task,
//! the *switcher*, carries the requests out in order. A switch first stops
//! the old side (its tasks cancelled *and waited for*, so a follower that
//! is installing a snapshot finishes or abandons it before this node
//! writes as a leader), then builds and starts the new one, then publishes
//! it. Connections see the role through one atomic (`leading`), so the
//! request path costs what it did with fixed roles; what they cache per
//! batch (the quorum watch) they re-read when [`Node::generation`] moved.
//!
//! Stepping down flips `leading` *before* the old leader stops: writes are
//! refused from then on, and replies held for a quorum are released —
//! reads with NOT_LEADER / NO_LEADER by the leadership's cancellation
//! token, writes with NO_QUORUM by `LeaderSide::end`, which pokes the
//! commit watch they wait on (see [`super::QuorumWatch`]).
//!
//! Histories: a history id names a lineage of data sets (it changes only
//! when a fresh cluster's first leader starts one); within it, logs are
//! told apart by (term, index), and only one leader ever writes a term
//! (one vote per term, persisted). So a new leader continues the history
//! it holds under its new term, opens the term with a NOOP (§5.4.2), and
//! followers are reconciled by term at their handshake: partial resync
//! where their log is a prefix of the leader's and its backlog reaches,
//! full resync for a divergent, already applied suffix. The node file is
//! marked unclean, naming the history, before a leader accepts writes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use tokio_util::codec::FramedParts;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use super::elections::{self, Elections};
use super::follower;
use super::leader;
use super::refusal::not_leader;
use super::vote_file::VoteFile;
use super::{new_history_id, FollowerSide, LeaderSide};
use crate::persist::{read_node_meta, write_node_meta_with, FileSystem, NodeMeta, PersistError};
use crate::replication::{HistoryId, NodeId};
use crate::server::cluster::ClusterConfig;
use crate::server::{Config, Persistence, Shared};
use crate::store::Store;
use burrow_proto::{ClusterView, Codec, Limits, MemberRole, Status};

/// The side this node plays now.
#[derive(Debug, Clone)]
enum Side {
    Leader(Arc<LeaderSide>),
    Follower(Arc<FollowerSide>),
}

/// The current side, with what stops it.
#[derive(Debug)]
struct Current {
    side: Side,
    term: u64,
    /// Cancelled when this side ends (closes a leader's follower links).
    cancel: CancellationToken,
    /// The side's own tasks, waited for before the next side starts.
    tasks: TaskTracker,
}

/// A role the election driver asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    Leader { term: u64 },
    Follower { term: u64, leader: Option<NodeId> },
}

/// What starting tasks needs, known once the server runs.
#[derive(Debug)]
struct Runtime {
    shared: Weak<Shared>,
    cancel: CancellationToken,
}

/// One cluster member (see the module docs).
#[derive(Debug)]
pub(super) struct Node {
    pub(super) cluster: ClusterConfig,
    pub(super) store: Arc<Store>,
    pub(super) persist: Option<Arc<Persistence>>,
    limits: Limits,
    backlog_bytes: usize,
    /// Hot path: does this node accept writes.
    leading: AtomicBool,
    generation: AtomicU64,
    current: RwLock<Current>,
    /// Shared by every `LeaderSide` this node builds, so `appended` needs
    /// no lock (see `LeaderSide::appended`).
    wants: Arc<AtomicBool>,
    appended: Arc<Notify>,
    /// The history this node's data belongs to (what a follower handshakes with).
    history: AtomicU64,
    pub(super) elections: Elections,
    switches: mpsc::UnboundedSender<Target>,
    switch_rx: Mutex<Option<mpsc::UnboundedReceiver<Target>>>,
    run: OnceLock<Runtime>,
}

impl Node {
    /// A member starting as a follower of no one, with the term and vote
    /// its data directory holds. Blocking: reads the vote and node files.
    pub(super) fn open(
        cluster: &ClusterConfig,
        config: &Config,
        store: &Arc<Store>,
        persist: Option<&Arc<Persistence>>,
        fs: Arc<dyn FileSystem>,
        dir_lock: Option<std::fs::File>,
    ) -> Result<Arc<Node>, PersistError> {
        let meta = match persist {
            Some(p) => read_node_meta(&p.cfg.dir)?,
            None => None,
        };
        let (votes, hard) = VoteFile::open(config, persist, fs, dir_lock)?;
        store.set_replica(true);
        let elections = Elections::new(cluster, hard, store, votes)?;
        let (switches, switch_rx) = mpsc::unbounded_channel();
        let history = meta.map_or(0, |m| m.history_id);
        let first = FollowerSide::new(cluster, NodeMeta { history_id: history, term: 0, clean: false }, None);
        Ok(Arc::new(Node {
            cluster: cluster.clone(),
            store: store.clone(),
            persist: persist.cloned(),
            limits: config.limits(),
            backlog_bytes: config.backlog_bytes,
            leading: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            current: RwLock::new(Current {
                side: Side::Follower(first),
                term: hard.term,
                cancel: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
            wants: Arc::new(AtomicBool::new(false)),
            appended: Arc::new(Notify::new()),
            // With no node file the data belongs to no known history: the
            // leader will send a full resync.
            history: AtomicU64::new(history),
            elections,
            switches,
            switch_rx: Mutex::new(Some(switch_rx)),
            run: OnceLock::new(),
        }))
    }

    /// Starts the switcher, the peer links and the election driver.
    pub(super) fn start(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        let run = Runtime { shared: Arc::downgrade(shared), cancel: cancel.clone() };
        if self.run.set(run).is_err() {
            return;
        }
        if let Some(rx) = self.switch_rx.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tracker.spawn(switcher(self.clone(), rx, cancel.clone()));
        }
        elections::start(self.clone(), &shared.member_dialer(), cancel, tracker);
    }

    #[inline]
    pub(super) fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    #[inline]
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn current(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The leader side and its leadership's token, while leading.
    pub(super) fn leader(&self) -> Option<(Arc<LeaderSide>, CancellationToken)> {
        let cur = self.current();
        match &cur.side {
            Side::Leader(l) => Some((l.clone(), cur.cancel.clone())),
            Side::Follower(_) => None,
        }
    }

    /// The follower side, while following (someone or no one).
    pub(super) fn follower(&self) -> Option<Arc<FollowerSide>> {
        match &self.current().side {
            Side::Follower(f) => Some(f.clone()),
            Side::Leader(_) => None,
        }
    }

    pub(super) fn not_leader(&self) -> (Status, String) {
        not_leader(self.follower().and_then(|f| f.leader_addr()))
    }

    pub(super) fn refuse_read(&self) -> Option<(Status, String)> {
        self.follower().and_then(|f| f.refuse_read())
    }

    #[inline]
    pub(super) fn appended(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.wants.load(Ordering::Relaxed) {
            self.appended.notify_one();
        }
    }

    /// Asks for a role switch (carried out in order by the switcher).
    pub(super) fn switch(&self, target: Target) {
        let _ = self.switches.send(target);
    }

    /// Serves another member's peer link (election traffic).
    pub(super) async fn serve_peer<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        link: FramedParts<S, Codec>,
        peer: SocketAddr,
        cluster_id: u64,
        node_id: NodeId,
        cancel: &CancellationToken,
    ) {
        elections::serve_peer(self, link, peer, cluster_id, node_id, cancel).await
    }

    /// Carries out one switch (see the module docs).
    async fn apply(self: &Arc<Self>, target: Target) {
        let Some(run) = self.run.get() else { return };
        let Some(shared) = run.shared.upgrade() else { return };
        {
            let cur = self.current();
            let same = match (&cur.side, target) {
                (Side::Leader(_), Target::Leader { term }) => cur.term == term,
                // A new term under the same leader keeps the link.
                (Side::Follower(f), Target::Follower { leader, .. }) => f.leader_id() == leader,
                _ => false,
            };
            if same {
                drop(cur);
                if let Target::Follower { term, .. } = target {
                    self.current.write().unwrap_or_else(|e| e.into_inner()).term = term;
                }
                return;
            }
        }
        // Writes stop before the old side does.
        self.leading.store(false, Ordering::Release);
        self.wants.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::AcqRel);
        let (old, cancel, tasks) = {
            let cur = self.current();
            (cur.side.clone(), cur.cancel.clone(), cur.tasks.clone())
        };
        cancel.cancel();
        if let Side::Leader(l) = &old {
            // Held replies are released now, not when its task next runs.
            l.end();
        }
        tasks.close();
        tasks.wait().await;
        if let Side::Follower(f) = &old {
            self.history.store(f.history_id(), Ordering::Relaxed);
            if f.partial_dataset() {
                // A full resync cut short, or loaded but not completed by
                // the records its shard images reach: the store is no log
                // prefix's image. Empty it, at index 0, so this node claims
                // no log in votes and takes a full resync from whoever leads.
                self.store.clear_unlogged();
                self.store.log().reset_to(0, 0);
            }
        }
        let cancel = run.cancel.child_token();
        let tasks = TaskTracker::new();
        let (side, term) = match target {
            Target::Leader { term } => {
                // The op log's retained records are this history's (a full
                // resync into another one resets the log) unless none was held.
                let continuing = self.history.load(Ordering::Relaxed) != 0;
                let meta = self.leader_meta(term);
                if let Some(p) = &self.persist {
                    // Unclean until a clean shutdown says otherwise.
                    let (fs, dir) = (p.fs().clone(), p.cfg.dir.clone());
                    let written =
                        tokio::task::spawn_blocking(move || write_node_meta_with(fs.as_ref(), &dir, meta))
                            .await;
                    if !matches!(written, Ok(Ok(()))) {
                        error!(
                            "cannot write the node file: a crash of this leader may go unnoticed at restart"
                        );
                    }
                }
                let side = self.build_leader(meta, continuing);
                // The term's first record, so the records before it commit
                // (§5.4.2). Built first, so the backlog knows the term of
                // the record before it (followers ending there resume).
                self.store.append_noop(term);
                (Side::Leader(side), term)
            }
            Target::Follower { term, leader } => {
                self.store.set_replica(true);
                self.store.log().set_repl_limit(self.backlog_bytes);
                let node = leader.and_then(|id| self.cluster.node(id)).cloned();
                let meta =
                    NodeMeta { history_id: self.history.load(Ordering::Relaxed), term: 0, clean: false };
                (Side::Follower(FollowerSide::new(&self.cluster, meta, node)), term)
            }
        };
        match &side {
            Side::Leader(l) => {
                tasks.spawn(leader::run(l.clone(), cancel.clone()));
            }
            Side::Follower(f) if f.leader_id().is_some() => {
                tasks.spawn(follower::run(f.clone(), shared.clone(), cancel.clone()));
            }
            Side::Follower(_) => {}
        }
        let leading = matches!(side, Side::Leader(_));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Current { side, term, cancel, tasks };
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.leading.store(leading, Ordering::Release);
    }

    /// See `Replication::lead_without_tasks`.
    #[cfg(test)]
    pub(super) fn lead_without_tasks(&self, term: u64) {
        let continuing = self.history.load(Ordering::Relaxed) != 0;
        let side = Side::Leader(self.build_leader(self.leader_meta(term), continuing));
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        *cur = Current { side, term, cancel: CancellationToken::new(), tasks: TaskTracker::new() };
        drop(cur);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.leading.store(true, Ordering::Release);
    }

    /// See `Replication::step_down_without_tasks`.
    #[cfg(test)]
    pub(super) fn step_down_without_tasks(&self) {
        self.leading.store(false, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some((l, cancel)) = self.leader() {
            cancel.cancel();
            l.end();
        }
    }

    /// A leader for `term` on this node's store and log: the log's term
    /// moved to `term`, records retained for replication from the next
    /// index on (or from the start, for a leader that retained since it
    /// replayed its WAL).
    /// The history a leader of `term` writes to (see the module docs): the
    /// one this node holds, continued under the new term, or a new one if
    /// it holds none (a fresh cluster's first leader).
    fn leader_meta(&self, term: u64) -> NodeMeta {
        let held = self.history.load(Ordering::Relaxed);
        let history: HistoryId = if held != 0 {
            info!(history_id = format_args!("{held:016x}"), term, "continuing the replication history");
            held
        } else {
            let new = new_history_id();
            info!(history_id = format_args!("{new:016x}"), term, "starting a new replication history");
            new
        };
        self.history.store(history, Ordering::Relaxed);
        NodeMeta { history_id: history, term, clean: false }
    }

    /// `continuing`: `meta`'s history is the one this node held, so the
    /// records its op log retained (replayed from its WAL, received as a
    /// follower) are that history's and seed the backlog: followers behind
    /// this node when it was elected resume by partial resync.
    fn build_leader(&self, meta: NodeMeta, continuing: bool) -> Arc<LeaderSide> {
        self.store.set_replica(false);
        let log = self.store.log();
        if !log.is_retaining() || !continuing {
            // Records retained so far belong to no history (or none were):
            // not served from this one's backlog.
            log.start_retaining();
            let _ = log.take_repl();
        }
        log.set_repl_limit(self.backlog_bytes.saturating_mul(crate::replication::HOLD_FACTOR));
        // Built before the log's term moves: the backlog takes the log's
        // term as its last record's (a follower ending there resumes by
        // partial resync only if that term matches its own).
        let side = LeaderSide::new(
            &self.cluster,
            meta,
            self.store.clone(),
            self.persist.clone(),
            &self.limits,
            self.backlog_bytes,
            (self.wants.clone(), self.appended.clone()),
        );
        log.begin_term(meta.term);
        side
    }

    /// CLUSTER: the cluster as this node sees it now.
    pub(super) fn cluster_view(&self) -> ClusterView {
        let (side, term) = {
            let cur = self.current();
            (cur.side.clone(), cur.term)
        };
        match side {
            Side::Leader(l) => l.cluster_view(),
            Side::Follower(f) => {
                let role =
                    if self.elections.campaigning() { MemberRole::Candidate } else { MemberRole::Follower };
                f.cluster_view(term, role)
            }
        }
    }

    /// INFO `replication`: the side's lines, then the election's.
    pub(super) fn info(&self, out: &mut String) {
        let (side, term) = {
            let cur = self.current();
            (cur.side.clone(), cur.term)
        };
        match side {
            Side::Leader(l) => l.info(out),
            Side::Follower(f) => f.info(out, term),
        }
        self.elections.info(out);
        // Whether links are authenticated (protocol.md §12.7).
        out.push_str(if self.cluster.secret.is_some() {
            "member_auth:secret\n"
        } else {
            "member_auth:none\n"
        });
        // A read replica (`voter = false`) never votes nor leads.
        out.push_str(if self.cluster.is_voter(self.cluster.node_id()) { "voter:1\n" } else { "voter:0\n" });
    }
}

/// Carries out role switches in order; a burst collapses to its last.
async fn switcher(node: Arc<Node>, mut rx: mpsc::UnboundedReceiver<Target>, cancel: CancellationToken) {
    loop {
        let mut target = tokio::select! {
            _ = cancel.cancelled() => break,
            t = rx.recv() => match t { Some(t) => t, None => break },
        };
        while let Ok(next) = rx.try_recv() {
            target = next;
        }
        node.apply(target).await;
    }
    // Shutdown: stop the current side's tasks too.
    let (c, tasks) = {
        let cur = node.current();
        (cur.cancel.clone(), cur.tasks.clone())
    };
    c.cancel();
    tasks.close();
    tasks.wait().await;
}
