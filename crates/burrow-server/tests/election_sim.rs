//! Deterministic simulation of Raft elections over a faulty network: N = 3
//! or 5 nodes run the real [`Election`] state machine, with an abstract
//! replicated log per node (a leader appends entries of its term; the
//! harness replicates them, placing each follower with [`reconcile`] and
//! committing with [`commit_index`]).
//!
//! Faults, all from one seed: crash/restart (the hard state and the log
//! survive, nothing else does), a failed persist of the hard state (the
//! node is out until restarted), symmetric partitions, one-way link cuts,
//! drop/duplicate/reorder/delay, and per-node timer skew. After the last
//! fault heals a leader must be elected and commit within a bound, and
//! every log must converge.
//!
//! Checked throughout: at most one leader per term; no node votes twice in
//! a term (across crashes and failed persists); a committed entry is never
//! changed or lost, every node's committed prefix is the same; a follower
//! never cuts below its commit index; a read a leader serves through
//! [`ReadIndex`] sees every entry committed anywhere before it arrived (a
//! deposed leader never serves a stale one).
//!
//! `ELECTION_SIM_SEEDS=100000` for a longer hunt; a failure prints its
//! seed, and `SEED=n` replays exactly that one (`TRACE=1` adds every
//! reconciliation decision).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

use burrow_server::replication::{
    commit_index, probe_answer, reconcile, Election, ElectionConfig, ElectionMessage, ElectionOutput,
    HardState, LogPosition, LogTerms, ReadIndex, Reconcile, Role, SeededRng,
};

/// (term, unique id): ids make every write distinct, so a changed entry shows.
type Entry = (u64, u64);

const HEARTBEAT_TICKS: u64 = 3;
/// A follower whose session was not opened says hello again after this.
const HELLO_RESEND_TICKS: u64 = 8;
const RETRANSMIT_TICKS: u64 = 6;
/// After the last fault heals: a leader commits in its term within this...
const ELECT_BOUND: u64 = 200;
/// ... and every log and commit index agrees within this.
const CONVERGE_BOUND: u64 = 600;

/// The harness's replication messages, beside the election's own.
#[derive(Debug, Clone)]
enum Msg {
    Election(ElectionMessage),
    /// Leader → follower: alive; `session` is the follower's session the
    /// leader is serving (0: none yet); `round` its newest ReadIndex round.
    Heartbeat {
        term: u64,
        session: u64,
        commit: u64,
        round: u64,
    },
    /// Follower → leader: opens a session; where its log ends.
    Hello {
        term: u64,
        session: u64,
        last: LogPosition,
    },
    /// Leader → follower: the reconciliation decision for `session`.
    Open {
        term: u64,
        session: u64,
        keep: u64,
        keep_term: u64,
        truncate: bool,
        snapshot: Option<Vec<Entry>>,
    },
    ProbeReq {
        term: u64,
        session: u64,
        index: u64,
        leader_term: u64,
    },
    ProbeResp {
        term: u64,
        session: u64,
        at: Option<LogPosition>,
    },
    Entries {
        term: u64,
        session: u64,
        prev: u64,
        entries: Vec<Entry>,
        commit: u64,
    },
    /// `round`: the newest heartbeat round seen from this leader.
    Ack {
        term: u64,
        session: u64,
        matched: u64,
        round: u64,
    },
}

struct Envelope {
    at: u64,
    seq: u64,
    from: usize,
    to: usize,
    msg: Msg,
}

impl PartialEq for Envelope {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Envelope {}
impl PartialOrd for Envelope {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Envelope {
    /// Reversed: the heap pops the earliest delivery first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// The follower's side of one leader's term.
#[derive(Debug, Clone, Copy)]
struct Follow {
    leader: usize,
    term: u64,
    session: u64,
    opened: bool,
    hello_at: u64,
    round: u64,
}

/// The leader's record of one follower.
#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    session: u64,
    follower_last: u64,
    opened: bool,
    next: u64,
    matched: u64,
    since_progress: u64,
}

struct Node {
    id: u64,
    // Durable.
    hard: HardState,
    log: Vec<Entry>,
    // Volatile.
    e: Option<Election>,
    commit: u64,
    /// Prefix of the log already compared with the global committed list.
    checked: u64,
    follow: Option<Follow>,
    peers: Vec<Peer>,
    leading: bool,
    /// Leader: linearizable reads waiting for a heartbeat round.
    reads: Option<ReadIndex<u64>>,
    hb_elapsed: u64,
    sessions: u64,
    /// Down (crashed or failed persist) until this tick.
    restart_at: Option<u64>,
    /// Timer skew: expected node ticks per simulated tick.
    rate: f64,
    tick_credit: f64,
}

/// The leader's log as `reconcile` sees it: only the last `cap` records
/// (plus the term of the one before) are still known.
struct View<'a> {
    log: &'a [Entry],
    cap: u64,
}

impl LogTerms for View<'_> {
    fn term_at(&self, index: u64) -> Option<u64> {
        if index < self.first_index() || index > self.last_index() {
            None
        } else if index == 0 {
            Some(0)
        } else {
            Some(self.log[index as usize - 1].0)
        }
    }
    fn first_index(&self) -> u64 {
        self.last_index().saturating_sub(self.cap)
    }
    fn last_index(&self) -> u64 {
        self.log.len() as u64
    }
}

fn last_pos(log: &[Entry]) -> LogPosition {
    LogPosition { term: log.last().map_or(0, |e| e.0), index: log.len() as u64 }
}

#[derive(Debug, Clone, Copy)]
struct Faults {
    drop: f64,
    dup: f64,
    max_delay: u64,
    crash: f64,
    partition: f64,
    one_way: f64,
    persist_fail: f64,
}

const HEALED: Faults =
    Faults { drop: 0.0, dup: 0.0, max_delay: 2, crash: 0.0, partition: 0.0, one_way: 0.0, persist_fail: 0.0 };

struct Sim {
    seed: u64,
    rng: SeededRng,
    now: u64,
    seq: u64,
    nodes: Vec<Node>,
    net: BinaryHeap<Envelope>,
    /// `cut[a][b]`: messages from a to b are lost, until the tick stored.
    cut: Vec<Vec<u64>>,
    faults: Faults,
    cfg: ElectionConfig,
    cap: u64,
    /// Most entries per message: 1 lets earlier terms' entries reach a
    /// majority before a new leader's no-op does (the paper's Figure 8).
    batch: u64,
    next_id: u64,
    writes: f64,
    /// Every entry ever committed anywhere, in order.
    committed: Vec<Entry>,
    leaders: BTreeMap<u64, u64>,
    votes: BTreeMap<(u64, u64), u64>,
    /// Read id → how much was committed anywhere when the read arrived.
    read_floor: BTreeMap<u64, u64>,
    stats: Stats,
    /// `TRACE=1`: print every reconciliation decision.
    trace: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    elections: u64,
    crashes: u64,
    persist_failures: u64,
    truncations: u64,
    probes: u64,
    full_resyncs: u64,
    partitions: u64,
    max_term: u64,
    /// Linearizable reads served through ReadIndex.
    reads: u64,
    /// Most ticks from healing to a leader committing in its term.
    max_settle: u64,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = SeededRng::new(seed);
        let n = if rng.chance(0.5) { 3 } else { 5 };
        // Mostly the defaults; without check-quorum a deposed leader stays
        // one in its minority, which ReadIndex must cope with.
        let cfg = ElectionConfig {
            election_timeout_min_ticks: 10,
            election_timeout_max_ticks: 20,
            pre_vote: rng.chance(0.75),
            check_quorum: rng.chance(0.75),
        };
        let severity = 0.5 + (rng.below(100) as f64) / 100.0;
        let faults = Faults {
            drop: 0.1 * severity,
            dup: 0.05 * severity,
            max_delay: 1 + rng.below(6),
            crash: 0.01 * severity,
            partition: 0.01 * severity,
            one_way: 0.01 * severity,
            persist_fail: 0.01 * severity,
        };
        let nodes = (0..n)
            .map(|i| {
                let rate = 0.7 + (rng.below(61) as f64) / 100.0;
                let mut node = Node {
                    id: i as u64 + 1,
                    hard: HardState::default(),
                    log: Vec::new(),
                    e: None,
                    commit: 0,
                    checked: 0,
                    follow: None,
                    peers: vec![Peer::default(); n],
                    leading: false,
                    reads: None,
                    hb_elapsed: 0,
                    sessions: 0,
                    restart_at: None,
                    rate,
                    tick_credit: 0.0,
                };
                node.e = Some(new_election(&node, &cfg, &mut rng));
                node
            })
            .collect();
        Sim {
            seed,
            cap: 5 + rng.below(40),
            batch: 1 + rng.below(4),
            rng,
            now: 0,
            seq: 0,
            nodes,
            net: BinaryHeap::new(),
            cut: vec![vec![0; n]; n],
            faults,
            cfg,
            next_id: 1,
            writes: 0.3,
            committed: Vec::new(),
            leaders: BTreeMap::new(),
            votes: BTreeMap::new(),
            read_floor: BTreeMap::new(),
            stats: Stats::default(),
            trace: std::env::var("TRACE").is_ok(),
        }
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if self.rng.chance(self.faults.drop) {
            return;
        }
        let copies = if self.rng.chance(self.faults.dup) { 2 } else { 1 };
        for _ in 0..copies {
            self.seq += 1;
            let at = self.now + 1 + self.rng.below(self.faults.max_delay);
            self.net.push(Envelope { at, seq: self.seq, from, to, msg: msg.clone() });
        }
    }

    /// One simulated tick: faults, deliveries, node ticks.
    fn step(&mut self) {
        self.now += 1;
        self.inject_faults();
        while self.net.peek().is_some_and(|e| e.at <= self.now) {
            let Some(env) = self.net.pop() else { break };
            if self.cut[env.from][env.to] > self.now || self.nodes[env.to].e.is_none() {
                continue;
            }
            self.deliver(env.from, env.to, env.msg);
        }
        for i in 0..self.n() {
            if self.nodes[i].restart_at.is_some_and(|t| t <= self.now) {
                self.restart(i);
            }
            if self.nodes[i].e.is_none() {
                continue;
            }
            let node = &mut self.nodes[i];
            node.tick_credit += node.rate;
            while self.nodes[i].tick_credit >= 1.0 {
                self.nodes[i].tick_credit -= 1.0;
                self.tick_node(i);
            }
        }
    }

    fn inject_faults(&mut self) {
        let f = self.faults;
        let n = self.n();
        if self.rng.chance(f.crash) {
            let i = self.rng.below(n as u64) as usize;
            if self.nodes[i].e.is_some() {
                self.stats.crashes += 1;
                let back = self.now + 5 + self.rng.below(40);
                self.crash(i, back);
            }
        }
        if self.rng.chance(f.partition) {
            // Symmetric: a random side against the rest.
            self.stats.partitions += 1;
            let until = self.now + 10 + self.rng.below(60);
            let side: Vec<bool> = (0..n).map(|_| self.rng.chance(0.5)).collect();
            for a in 0..n {
                for b in 0..n {
                    if side[a] != side[b] {
                        self.cut[a][b] = self.cut[a][b].max(until);
                    }
                }
            }
        }
        if self.rng.chance(f.one_way) {
            let a = self.rng.below(n as u64) as usize;
            let b = self.rng.below(n as u64) as usize;
            if a != b {
                self.stats.partitions += 1;
                let until = self.now + 10 + self.rng.below(60);
                self.cut[a][b] = self.cut[a][b].max(until);
            }
        }
    }

    fn crash(&mut self, i: usize, restart_at: u64) {
        let node = &mut self.nodes[i];
        node.e = None;
        node.commit = 0;
        node.checked = 0;
        node.follow = None;
        node.leading = false;
        node.reads = None;
        node.restart_at = Some(restart_at);
    }

    fn restart(&mut self, i: usize) {
        let e = new_election(&self.nodes[i], &self.cfg, &mut self.rng);
        let node = &mut self.nodes[i];
        node.restart_at = None;
        node.e = Some(e);
        node.commit = 0;
        node.checked = 0;
        node.follow = None;
        node.leading = false;
        node.reads = None;
        node.tick_credit = 0.0;
    }

    fn election(&mut self, i: usize) -> &mut Election {
        self.nodes[i].e.as_mut().expect("node is up")
    }

    fn tick_node(&mut self, i: usize) {
        self.election(i).tick();
        self.drain(i);
        if self.nodes[i].e.is_none() {
            return;
        }
        if self.nodes[i].leading {
            self.lead_tick(i);
        } else if let Some(f) = self.nodes[i].follow {
            if !f.opened && self.now >= f.hello_at + HELLO_RESEND_TICKS {
                self.hello(i, f.leader, f.term);
            }
        }
    }

    /// Carries out the election's outputs in order, as a driver must.
    fn drain(&mut self, i: usize) {
        let Some(e) = self.nodes[i].e.as_mut() else { return };
        let outs = e.outputs();
        for out in outs {
            match out {
                ElectionOutput::Persist(h) => {
                    assert!(h.term >= self.nodes[i].hard.term, "seed {}: term went back", self.seed);
                    if self.rng.chance(self.faults.persist_fail) {
                        self.stats.persist_failures += 1;
                        // The disk may or may not have kept it.
                        if self.rng.chance(0.5) {
                            self.nodes[i].hard = h;
                        }
                        let e = self.election(i);
                        e.on_persist_failed();
                        assert!(e.is_disabled());
                        e.outputs();
                        self.nodes[i].leading = false;
                        self.nodes[i].reads = None;
                        self.nodes[i].follow = None;
                        self.nodes[i].restart_at = Some(self.now + 5 + self.rng.below(25));
                        return;
                    }
                    self.nodes[i].hard = h;
                }
                ElectionOutput::Send { to, msg } => {
                    if let ElectionMessage::VoteResponse { term, granted: true, pre_vote: false } = msg {
                        let voter = self.nodes[i].id;
                        assert_eq!(
                            self.nodes[i].hard.voted_for,
                            Some(to),
                            "seed {}: vote not persisted",
                            self.seed
                        );
                        let prev = self.votes.insert((voter, term), to);
                        assert!(
                            prev.is_none_or(|p| p == to),
                            "seed {}: node {voter} voted for {prev:?} and {to} in term {term}",
                            self.seed
                        );
                    }
                    self.send(i, to as usize - 1, Msg::Election(msg));
                }
                ElectionOutput::RoleChanged { role, term, .. } => {
                    assert_eq!(
                        term, self.nodes[i].hard.term,
                        "seed {}: acting on an unpersisted term",
                        self.seed
                    );
                    if role == Role::Leader {
                        self.became_leader(i, term);
                    } else {
                        self.nodes[i].leading = false;
                        self.nodes[i].reads = None;
                    }
                }
                ElectionOutput::Rejected { from, reason } => {
                    panic!("seed {}: node {} rejected {from}: {reason:?}", self.seed, i + 1)
                }
            }
        }
    }

    fn became_leader(&mut self, i: usize, term: u64) {
        let id = self.nodes[i].id;
        let prev = self.leaders.insert(term, id);
        assert!(
            prev.is_none_or(|p| p == id),
            "seed {}: two leaders in term {term}: {prev:?} and {id}",
            self.seed
        );
        self.stats.elections += 1;
        if self.trace {
            let terms: Vec<u64> = self.nodes[i].log.iter().map(|e| e.0).collect();
            eprintln!("t{} node {id} leads term {term} with {terms:?}", self.now);
        }
        self.stats.max_term = self.stats.max_term.max(term);
        let len = self.nodes[i].log.len() as u64;
        let node = &mut self.nodes[i];
        node.leading = true;
        let voters: Vec<u64> = (1..=node.peers.len() as u64).collect();
        node.reads = Some(ReadIndex::new(id, term, &voters));
        node.follow = None;
        node.hb_elapsed = HEARTBEAT_TICKS;
        for p in &mut node.peers {
            *p = Peer { next: len + 1, ..Peer::default() };
        }
        // §5.4.2: a no-op of the new term, so earlier entries can commit.
        self.append(i, term);
    }

    fn append(&mut self, i: usize, term: u64) {
        let id = self.next_id;
        self.next_id += 1;
        self.nodes[i].log.push((term, id));
        self.log_changed(i);
    }

    fn log_changed(&mut self, i: usize) {
        let pos = last_pos(&self.nodes[i].log);
        self.election(i).set_last_log(pos);
    }

    fn lead_tick(&mut self, i: usize) {
        let term = self.nodes[i].e.as_ref().map_or(0, |e| e.term());
        if self.rng.chance(self.writes) {
            self.append(i, term);
        }
        if self.rng.chance(0.2) {
            // A linearizable read: it must see everything committed by now.
            let (id, commit) = (self.next_id, self.nodes[i].commit);
            self.next_id += 1;
            self.read_floor.insert(id, self.committed.len() as u64);
            if let Some(ri) = self.nodes[i].reads.as_mut() {
                ri.request(id, commit);
            }
        }
        let n = self.n();
        self.nodes[i].hb_elapsed += 1;
        let beat = self.nodes[i].hb_elapsed >= HEARTBEAT_TICKS;
        let mut round = 0;
        if beat {
            self.nodes[i].hb_elapsed = 0;
            if let Some(ri) = self.nodes[i].reads.as_mut() {
                ri.start_round();
                round = ri.round();
            }
        }
        let len = self.nodes[i].log.len() as u64;
        let first = View { log: &self.nodes[i].log, cap: self.cap }.first_index();
        for j in (0..n).filter(|&j| j != i) {
            let commit = self.nodes[i].commit;
            let p = &mut self.nodes[i].peers[j];
            if beat {
                let session = p.session;
                self.send(i, j, Msg::Heartbeat { term, session, commit, round });
            }
            let p = &mut self.nodes[i].peers[j];
            if !p.opened {
                continue;
            }
            p.since_progress += 1;
            if p.since_progress > RETRANSMIT_TICKS && p.matched < len {
                p.next = p.matched + 1;
                p.since_progress = 0;
            }
            if p.next <= first {
                // Fell out of the backlog: the next hello gets a full resync.
                *p = Peer { matched: p.matched, ..Peer::default() };
                continue;
            }
            if p.next <= len {
                let from = p.next;
                let to = (from + self.batch - 1).min(len);
                p.next = to + 1;
                let entries = self.nodes[i].log[from as usize - 1..to as usize].to_vec();
                let session = self.nodes[i].peers[j].session;
                self.send(i, j, Msg::Entries { term, session, prev: from - 1, entries, commit });
            }
        }
        self.advance_commit(i);
    }

    fn advance_commit(&mut self, i: usize) {
        let node = &self.nodes[i];
        let Some(term) = node.e.as_ref().map(|e| e.term()) else { return };
        let matched: Vec<u64> = (0..self.n())
            .map(|j| if j == i { node.log.len() as u64 } else { node.peers[j].matched })
            .collect();
        let view = View { log: &node.log, cap: u64::MAX };
        let c = commit_index(node.commit, term, &matched, |ix| view.term_at(ix));
        if self.trace && c > node.commit {
            eprintln!("t{} node {} (term {term}) commits {c} from {matched:?}", self.now, node.id);
        }
        let c_term = view.term_at(c).unwrap_or(0);
        self.nodes[i].commit = c;
        self.check_commit(i);
        let Some(ri) = self.nodes[i].reads.as_mut() else { return };
        ri.on_commit(c, c_term);
        for ready in ri.take_ready() {
            let floor = self.read_floor.remove(&ready.read).unwrap_or(0);
            assert!(
                ready.read_index >= floor && ready.read_index <= c,
                "seed {}: node {} served read at index {} but {floor} was committed when it arrived",
                self.seed,
                i + 1,
                ready.read_index
            );
            self.stats.reads += 1;
        }
    }

    /// The committed prefix of node `i` agrees with every other node's.
    fn check_commit(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.commit <= node.log.len() as u64, "seed {}: commit past the log", self.seed);
        for ix in node.checked as usize..node.commit as usize {
            if let Some(c) = self.committed.get(ix) {
                assert_eq!(
                    node.log[ix],
                    *c,
                    "seed {}: node {} has a different entry at committed index {}",
                    self.seed,
                    node.id,
                    ix + 1
                );
            } else {
                self.committed.push(node.log[ix]);
            }
        }
        node.checked = node.checked.max(node.commit);
    }

    fn hello(&mut self, i: usize, leader: usize, term: u64) {
        let node = &mut self.nodes[i];
        node.sessions += 1;
        let session = node.sessions;
        node.follow = Some(Follow { leader, term, session, opened: false, hello_at: self.now, round: 0 });
        let own_term = node.e.as_ref().map_or(0, |e| e.term());
        let last = last_pos(&node.log);
        self.send(i, leader, Msg::Hello { term: own_term, session, last });
    }

    fn deliver(&mut self, from: usize, to: usize, msg: Msg) {
        let from_id = from as u64 + 1;
        match msg {
            Msg::Election(m) => {
                self.election(to).step(from_id, m);
                self.drain(to);
            }
            Msg::Heartbeat { term, session, commit, round } => {
                if let Some(f) = self.follower_of(to, from, term) {
                    if f.opened && f.session == session {
                        if let Some(f) = self.nodes[to].follow.as_mut() {
                            f.round = f.round.max(round);
                        }
                        self.learn_commit(to, commit);
                        self.ack(to);
                    } else if f.opened {
                        // The leader lost our session (restart, backlog): start over.
                        self.hello(to, from, term);
                    }
                }
            }
            Msg::Open { term, session, keep, keep_term, truncate, snapshot } => {
                let Some(f) = self.follower_of(to, from, term) else { return };
                if f.session != session || f.opened {
                    return;
                }
                let node = &mut self.nodes[to];
                if let Some(snap) = snapshot {
                    let c = node.commit as usize;
                    assert!(
                        snap.len() >= c && snap[..c] == node.log[..c],
                        "seed {}: a full resync would change committed entries",
                        self.seed
                    );
                    node.log = snap;
                    self.stats.full_resyncs += 1;
                } else {
                    let len = node.log.len() as u64;
                    let here = if keep == 0 { Some(0) } else { node.log.get(keep as usize - 1).map(|e| e.0) };
                    if here != Some(keep_term) || (!truncate && len != keep) {
                        self.hello(to, from, term);
                        return;
                    }
                    if truncate {
                        assert!(
                            keep >= node.commit,
                            "seed {}: node {} told to cut to {keep} below its commit {}",
                            self.seed,
                            node.id,
                            node.commit
                        );
                        node.log.truncate(keep as usize);
                        self.stats.truncations += 1;
                    }
                }
                if let Some(f) = self.nodes[to].follow.as_mut() {
                    f.opened = true;
                }
                self.log_changed(to);
                self.ack(to);
            }
            Msg::ProbeReq { term, session, index, leader_term } => {
                let Some(f) = self.follower_of(to, from, term) else { return };
                if f.session != session || f.opened {
                    return;
                }
                // A probe is progress: a long search must not be cut short
                // by the hello resend timer.
                if let Some(f) = self.nodes[to].follow.as_mut() {
                    f.hello_at = self.now;
                }
                let at = probe_answer(&View { log: &self.nodes[to].log, cap: u64::MAX }, index, leader_term);
                let own = self.nodes[to].e.as_ref().map_or(0, |e| e.term());
                self.send(to, from, Msg::ProbeResp { term: own, session, at });
            }
            Msg::Entries { term, session, prev, entries, commit } => {
                let Some(f) = self.follower_of(to, from, term) else { return };
                if f.session != session || !f.opened {
                    return;
                }
                let node = &mut self.nodes[to];
                let len = node.log.len() as u64;
                if prev > len {
                    return; // a gap: the leader retransmits
                }
                for (k, entry) in entries.into_iter().enumerate() {
                    let ix = prev as usize + k;
                    if ix < node.log.len() {
                        assert_eq!(node.log[ix], entry, "seed {}: one session, two histories", self.seed);
                    } else {
                        node.log.push(entry);
                    }
                }
                self.log_changed(to);
                self.learn_commit(to, commit);
                self.ack(to);
            }
            Msg::Hello { term, session, last } => {
                // A duplicate of the hello being served changes nothing (on
                // a real link a session is one connection: no duplicates).
                if !self.leader_hears(to, from, term) || self.nodes[to].peers[from].session == session {
                    return;
                }
                let p = &mut self.nodes[to].peers[from];
                *p = Peer { session, follower_last: last.index, matched: p.matched, ..Peer::default() };
                self.decide(to, from, last);
            }
            Msg::ProbeResp { term, session, at } => {
                if !self.leader_hears(to, from, term) || self.nodes[to].peers[from].session != session {
                    return;
                }
                if let Some(at) = at {
                    self.decide(to, from, at);
                }
            }
            Msg::Ack { term, session, matched, round } => {
                if !self.leader_hears(to, from, term) {
                    return;
                }
                if let Some(ri) = self.nodes[to].reads.as_mut() {
                    ri.on_ack(from_id, term, round);
                }
                let p = &mut self.nodes[to].peers[from];
                if p.session == session && p.opened {
                    if matched > p.matched {
                        p.matched = matched;
                        p.since_progress = 0;
                    }
                    p.next = p.next.max(matched + 1);
                }
                self.advance_commit(to);
            }
        }
    }

    /// A leader's message of `term` from `from` reached `to`: the election
    /// decides whether to accept it; if so, the follow state for that
    /// leader and term (a new one says hello).
    fn follower_of(&mut self, to: usize, from: usize, term: u64) -> Option<Follow> {
        let accepted = self.election(to).on_leader_contact(from as u64 + 1, term);
        self.drain(to);
        // Accepting may have queued a Persist of the leader's term: act only
        // if it went through.
        if !accepted || self.nodes[to].e.as_ref().is_none_or(|e| e.is_disabled()) {
            return None;
        }
        match self.nodes[to].follow {
            Some(f) if f.leader == from && f.term == term => Some(f),
            _ => {
                self.hello(to, from, term);
                self.nodes[to].follow
            }
        }
    }

    /// A follower's message of `term` reached `to`: is `to` its leader?
    fn leader_hears(&mut self, to: usize, from: usize, term: u64) -> bool {
        let e = self.election(to);
        e.observe_term(from as u64 + 1, term);
        let ok = e.is_leader() && e.term() == term;
        if ok {
            e.on_peer_active(from as u64 + 1);
        }
        self.drain(to);
        ok && self.nodes[to].leading
    }

    fn decide(&mut self, i: usize, j: usize, at: LogPosition) {
        let term = self.nodes[i].e.as_ref().map_or(0, |e| e.term());
        let node = &self.nodes[i];
        let view = View { log: &node.log, cap: self.cap };
        let p = node.peers[j];
        let decision = reconcile(&view, at, p.follower_last);
        if self.trace {
            let terms: Vec<u64> = node.log.iter().map(|e| e.0).collect();
            let fterms: Vec<u64> = self.nodes[j].log.iter().map(|e| e.0).collect();
            eprintln!(
                "t{} decide {i}->{j} at {at:?} last {} cap {} -> {decision:?}\n  L {terms:?}\n  F {fterms:?}",
                self.now, p.follower_last, self.cap
            );
        }
        let keep_term = |keep: u64| view.term_at(keep).unwrap_or(0);
        let (msg, next) = match decision {
            Reconcile::Resume { from } => {
                let keep = from - 1;
                (
                    Msg::Open {
                        term,
                        session: p.session,
                        keep,
                        keep_term: keep_term(keep),
                        truncate: false,
                        snapshot: None,
                    },
                    from,
                )
            }
            Reconcile::Truncate { keep } => (
                Msg::Open {
                    term,
                    session: p.session,
                    keep,
                    keep_term: keep_term(keep),
                    truncate: true,
                    snapshot: None,
                },
                keep + 1,
            ),
            Reconcile::Probe { index, term: leader_term } => {
                self.stats.probes += 1;
                self.send(i, j, Msg::ProbeReq { term, session: p.session, index, leader_term });
                return;
            }
            Reconcile::FullResync => {
                let snap = node.log.clone();
                let keep = snap.len() as u64;
                (
                    Msg::Open {
                        term,
                        session: p.session,
                        keep,
                        keep_term: 0,
                        truncate: true,
                        snapshot: Some(snap),
                    },
                    keep + 1,
                )
            }
        };
        let p = &mut self.nodes[i].peers[j];
        p.opened = true;
        p.next = next;
        p.since_progress = 0;
        self.send(i, j, msg);
    }

    fn learn_commit(&mut self, i: usize, commit: u64) {
        let node = &mut self.nodes[i];
        let c = commit.min(node.log.len() as u64);
        if c > node.commit {
            if self.trace {
                eprintln!("t{} node {} learns commit {c}", self.now, node.id);
            }
            node.commit = c;
            self.check_commit(i);
        }
    }

    fn ack(&mut self, i: usize) {
        let Some(f) = self.nodes[i].follow else { return };
        let term = self.nodes[i].e.as_ref().map_or(0, |e| e.term());
        let matched = self.nodes[i].log.len() as u64;
        self.send(i, f.leader, Msg::Ack { term, session: f.session, matched, round: f.round });
    }

    /// A leader is up and has committed an entry of its own term.
    fn settled_leader(&self) -> Option<usize> {
        (0..self.n()).find(|&i| {
            let node = &self.nodes[i];
            node.leading
                && node.e.as_ref().is_some_and(|e| e.is_leader())
                && node.commit > 0
                && node.log[node.commit as usize - 1].0 == node.hard.term
        })
    }

    fn converged(&self) -> bool {
        let Some(l) = self.settled_leader() else { return false };
        let log = &self.nodes[l].log;
        self.nodes.iter().all(|n| n.e.is_some() && n.log == *log && n.commit == log.len() as u64)
    }

    fn heal(&mut self) {
        self.faults = HEALED;
        self.writes = 0.0;
        for row in &mut self.cut {
            row.fill(0);
        }
        for i in 0..self.n() {
            if self.nodes[i].e.is_none() || self.nodes[i].e.as_ref().is_some_and(|e| e.is_disabled()) {
                self.restart(i);
            }
        }
    }
}

impl Sim {
    /// Each node's state, for a failure message.
    fn dump(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            let role = n.e.as_ref().map(|e| (e.role(), e.term(), e.is_disabled()));
            s += &format!(
                "\n node {}: {role:?} hard {:?} log {} (last {:?}) commit {} follow {:?} leading {} peers {:?}",
                n.id,
                n.hard,
                n.log.len(),
                n.log.last(),
                n.commit,
                n.follow,
                n.leading,
                n.peers
            );
        }
        s
    }
}

fn new_election(node: &Node, cfg: &ElectionConfig, rng: &mut SeededRng) -> Election {
    let voters: Vec<u64> = (1..=node.peers.len() as u64).collect();
    Election::new(
        cfg.clone(),
        node.id,
        &voters,
        node.hard,
        last_pos(&node.log),
        SeededRng::new(rng.next_u64()),
    )
    .expect("valid election setup")
}

/// Prints the seed if the run panics, so it can be replayed.
struct SeedGuard(u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "election_sim failed: replay with SEED={} cargo test -p burrow-server --test election_sim",
                self.0
            );
        }
    }
}

fn run(seed: u64) -> Stats {
    let _guard = SeedGuard(seed);
    let mut sim = Sim::new(seed);
    let chaos = 50 + sim.rng.below(130);
    for _ in 0..chaos {
        sim.step();
    }
    sim.heal();
    let healed_at = sim.now;
    while sim.settled_leader().is_none() {
        assert!(
            sim.now - healed_at <= ELECT_BOUND,
            "seed {seed}: no leader {ELECT_BOUND} ticks after healing{}",
            sim.dump()
        );
        sim.step();
    }
    sim.stats.max_settle = sim.now - healed_at;
    while !sim.converged() {
        assert!(
            sim.now - healed_at <= CONVERGE_BOUND,
            "seed {seed}: logs not converged {CONVERGE_BOUND} ticks after healing{}",
            sim.dump()
        );
        sim.step();
    }
    sim.stats
}

#[test]
fn elections_are_safe_and_live_under_faults() {
    if let Some(seed) = std::env::var("SEED").ok().and_then(|s| s.parse().ok()) {
        let stats = run(seed);
        eprintln!("seed {seed}: {stats:?}");
        return;
    }
    let seeds: u64 = std::env::var("ELECTION_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let mut total = Stats::default();
    for seed in 0..seeds {
        let s = run(seed);
        total.elections += s.elections;
        total.crashes += s.crashes;
        total.persist_failures += s.persist_failures;
        total.truncations += s.truncations;
        total.probes += s.probes;
        total.full_resyncs += s.full_resyncs;
        total.partitions += s.partitions;
        total.max_term = total.max_term.max(s.max_term);
        total.reads += s.reads;
        total.max_settle = total.max_settle.max(s.max_settle);
    }
    eprintln!("{seeds} seeds: {total:?}");
    // The schedules must actually exercise what they claim to.
    for (what, n) in [
        ("elections", total.elections),
        ("crashes", total.crashes),
        ("persist failures", total.persist_failures),
        ("truncations", total.truncations),
        ("probes", total.probes),
        ("full resyncs", total.full_resyncs),
        ("partitions", total.partitions),
        ("reads", total.reads),
    ] {
        assert!(n >= seeds / 100, "too few {what}: {n}");
    }
}
