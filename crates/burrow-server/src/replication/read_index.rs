//! ReadIndex: linearizable reads on the leader without writing to the log
//! (Ongaro's thesis §6.4; raft-rs `read_only.rs`).
//!
//! A read may return what the leader has applied up to the commit index
//! it recorded when the read arrived, once the leader has proved it was
//! still *the* leader after that moment: a heartbeat round started after
//! the read was queued, acknowledged by a majority of voters in the
//! leader's term. A deposed leader in a minority never gets that majority,
//! so it never answers from a state the new leader has moved past.
//!
//! Rounds: the leader's heartbeats carry `(term, round)`; followers echo
//! both in their acks. A read queued while round `r` is the newest started
//! waits for round `r + 1` (the next one started); a majority acking round
//! `c` releases every read waiting for a round `≤ c`, each with its
//! recorded commit index: the driver serves it once its store has applied
//! that index.
//!
//! The server (`server::replication::leader`) keeps one per leadership,
//! with a read *batch* (a connection's pipelined reads) as `R`, starts a
//! round only when none is in flight (so one round trip serves every batch
//! that arrived during the previous one), and executes a read before
//! asking: on the leader every committed record is applied already, and a
//! read that ran before a round started linearizes at the moment it ran.
//! Chosen over a leader lease because it assumes nothing of clocks: a
//! leader paused past its lease would not notice that it had expired.
//!
//! A new leader does not know the commit index of earlier terms until a
//! record of its own term commits (§5.4.2; the no-op it appends on
//! election). Until [`ReadIndex::on_commit`] reports that, reads are held
//! and take the commit index of that moment.

use std::collections::{BTreeMap, VecDeque};

use super::election::majority;
use super::NodeId;

/// A read released by a confirmed round: serve it once the store has
/// applied `read_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyRead<R> {
    pub read: R,
    pub read_index: u64,
}

/// One leader's (one term's) read confirmations. Reads are whatever the
/// driver needs to answer them later (`R`: a request id, a reply channel).
///
/// Invariants: `confirmed ≤ round`; every pending read waits for a round
/// `≤ round + 1`, in queue order; `held` is empty once `commit_known`.
#[derive(Debug)]
pub struct ReadIndex<R> {
    id: NodeId,
    term: u64,
    voters: Vec<NodeId>,
    /// Newest round started.
    round: u64,
    /// Highest round each other voter acked in this term.
    acked: BTreeMap<NodeId, u64>,
    /// Newest round a majority (this node included) acked.
    confirmed: u64,
    /// Set once a record of this term committed.
    commit_known: bool,
    /// Reads that arrived before `commit_known`.
    held: Vec<R>,
    /// (read, round it waits for, commit index recorded).
    pending: VecDeque<(R, u64, u64)>,
}

impl<R> ReadIndex<R> {
    /// For the leader `id` of `term`; `voters` lists every voter (`id`
    /// included). Build a new one at each election won: rounds and acks
    /// of another term mean nothing here.
    pub fn new(id: NodeId, term: u64, voters: &[NodeId]) -> ReadIndex<R> {
        let mut voters = voters.to_vec();
        voters.sort_unstable();
        voters.dedup();
        ReadIndex {
            id,
            term,
            voters,
            round: 0,
            acked: BTreeMap::new(),
            confirmed: 0,
            commit_known: false,
            held: Vec::new(),
            pending: VecDeque::new(),
        }
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    /// Newest round started: heartbeats may carry it at any time.
    pub fn round(&self) -> u64 {
        self.round
    }

    /// A round started and not yet confirmed by a majority.
    pub fn unconfirmed(&self) -> bool {
        self.confirmed < self.round
    }

    /// Reads waiting (held or pending).
    pub fn waiting(&self) -> usize {
        self.held.len() + self.pending.len()
    }

    /// The leader's commit index is now `commit_index`, the record there
    /// being of `commit_term`. The first time it is this leader's term,
    /// reads held so far take that commit index and join the queue.
    pub fn on_commit(&mut self, commit_index: u64, commit_term: u64) {
        if self.commit_known || commit_term != self.term {
            return;
        }
        self.commit_known = true;
        let next = self.round + 1;
        for read in std::mem::take(&mut self.held) {
            self.pending.push_back((read, next, commit_index));
        }
    }

    /// A linearizable read arrived; `commit_index` is the leader's commit
    /// index now. Call [`ReadIndex::start_round`] to get it confirmed.
    pub fn request(&mut self, read: R, commit_index: u64) {
        if self.commit_known {
            self.pending.push_back((read, self.round + 1, commit_index));
        } else {
            self.held.push(read);
        }
    }

    /// Starts a new round if some read waits for one, returning it: send
    /// a heartbeat carrying `(term, round)` to every follower now. With a
    /// single voter the round is confirmed at once.
    pub fn start_round(&mut self) -> Option<u64> {
        if !self.pending.iter().any(|&(_, r, _)| r > self.round) {
            return None;
        }
        self.round += 1;
        self.recompute();
        Some(self.round)
    }

    /// `from` acknowledged a heartbeat of `term` carrying `round`: it still
    /// follows this leader. Acks of another term or from a non-voter are
    /// ignored.
    pub fn on_ack(&mut self, from: NodeId, term: u64, round: u64) {
        if term != self.term || from == self.id || !self.voters.contains(&from) || round > self.round {
            return;
        }
        let seen = self.acked.entry(from).or_insert(0);
        if round > *seen {
            *seen = round;
            self.recompute();
        }
    }

    /// Reads whose round a majority confirmed, oldest first.
    pub fn take_ready(&mut self) -> Vec<ReadyRead<R>> {
        let mut ready = Vec::new();
        while self.pending.front().is_some_and(|&(_, r, _)| r <= self.confirmed) {
            if let Some((read, _, read_index)) = self.pending.pop_front() {
                ready.push(ReadyRead { read, read_index });
            }
        }
        ready
    }

    /// Leadership lost: every read still waiting, to refuse (NOT_LEADER).
    pub fn into_waiting(self) -> Vec<R> {
        self.held.into_iter().chain(self.pending.into_iter().map(|(r, _, _)| r)).collect()
    }

    fn recompute(&mut self) {
        let mut rounds: Vec<u64> = self
            .voters
            .iter()
            .map(|v| if *v == self.id { self.round } else { self.acked.get(v).copied().unwrap_or(0) })
            .collect();
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let c = rounds[majority(rounds.len()) - 1];
        self.confirmed = self.confirmed.max(c);
        debug_assert!(self.confirmed <= self.round);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_releases_reads_queued_up_to_its_round() {
        let mut ri = ReadIndex::new(1, 5, &[1, 2, 3]);
        ri.on_commit(10, 4); // an old term's record: not yet
        ri.request("a", 10);
        assert_eq!(ri.start_round(), None, "held until a record of term 5 commits");
        ri.on_commit(11, 5);
        assert!(!ri.unconfirmed());
        assert_eq!(ri.start_round(), Some(1));
        assert!(ri.unconfirmed(), "round 1 is in flight");
        ri.request("b", 12); // after round 1 started: waits for round 2
        ri.on_ack(2, 4, 1); // another term's ack
        ri.on_ack(9, 5, 1); // not a voter
        assert!(ri.take_ready().is_empty());
        ri.on_ack(2, 5, 1);
        assert!(!ri.unconfirmed(), "a majority (1 and 2) confirmed round 1");
        assert_eq!(ri.take_ready(), vec![ReadyRead { read: "a", read_index: 11 }]);
        assert_eq!(ri.start_round(), Some(2));
        assert_eq!(ri.start_round(), None, "nothing new waits");
        ri.on_ack(3, 5, 1); // round 1 only: not enough for "b"
        assert!(ri.take_ready().is_empty());
        ri.on_ack(3, 5, 2);
        assert_eq!(ri.take_ready(), vec![ReadyRead { read: "b", read_index: 12 }]);
        assert_eq!(ri.waiting(), 0);
    }

    #[test]
    fn a_single_voter_confirms_itself_and_a_deposed_leader_returns_its_reads() {
        let mut solo = ReadIndex::new(1, 2, &[1]);
        solo.on_commit(3, 2);
        solo.request(7u32, 3);
        assert_eq!(solo.start_round(), Some(1));
        assert_eq!(solo.take_ready(), vec![ReadyRead { read: 7, read_index: 3 }]);

        let mut ri = ReadIndex::new(1, 2, &[1, 2, 3, 4, 5]);
        ri.request(1u32, 0);
        ri.on_commit(4, 2);
        ri.request(2, 4);
        ri.start_round();
        ri.on_ack(2, 2, 1); // 2 of 5: no majority
        assert!(ri.take_ready().is_empty());
        assert_eq!(ri.into_waiting(), vec![1, 2]);
    }
}
