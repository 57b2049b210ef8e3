//! Where a follower's log and the leader's part: the decision a leader
//! makes from a follower's handshake `(last term, last index)`, by the Log
//! Matching property (§5.3: two logs holding a record with the same index
//! and term are identical up to it).
//!
//! The search is etcd's "find conflict by term", run by both sides in
//! turn. A follower's record of term `t` at index `i` was written by the
//! one leader of `t`, so if this leader holds records of `t` the logs
//! agree up to the last of them (or `i`, if lower). If it holds none, the
//! logs part below the follower's first record of `t`, which the leader
//! cannot see: it probes ([`Reconcile::Probe`]) at the highest index `p`
//! where its own term `u` is below `t`, and the follower answers
//! ([`probe_answer`]) with its highest record at or below `p` whose term
//! is at most `u` — skipping a whole run of records the leader cannot
//! have. The leader decides again from that pair. Each probe is lower
//! than the last, so it ends; a run of terms costs one round trip, not
//! one per record.
//!
//! **Records a follower already applied cannot be un-applied.** When the
//! answer is [`Reconcile::Truncate`] and the follower's store already
//! holds records above `keep` (async mode applies records as they arrive),
//! the driver must give it a full resync instead: cutting its log would
//! leave a store showing writes that no longer exist. Only a suffix that
//! was never applied (quorum mode, where records are applied once
//! committed, and a committed record is never divergent) can be cut.

use super::election::LogPosition;

/// What a node knows of its own log's terms (the leader's, and the
/// follower's to answer a probe).
pub trait LogTerms {
    /// Term of the record at `index`, for `first_index() ..=
    /// last_index()` (`Some(0)` for index 0), else `None`.
    fn term_at(&self, index: u64) -> Option<u64>;
    /// Oldest index whose term is known; every record *above* it can be
    /// sent. 0 for a log never compacted; after compaction, the index a
    /// snapshot covers (its term known, the record gone) or the oldest
    /// record held.
    fn first_index(&self) -> u64;
    fn last_index(&self) -> u64;
}

/// What the leader does with a follower, from one (term, index) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconcile {
    /// The follower's log is a prefix of the leader's: stream from `from`.
    Resume { from: u64 },
    /// The logs agree up to `keep` only: the follower drops every record
    /// after `keep` (see the module notes if it applied them), then the
    /// stream resumes at `keep + 1`.
    Truncate { keep: u64 },
    /// Undecided: ask the follower for [`probe_answer`]`(index, term)`
    /// (`term` is the leader's at `index`) and call [`reconcile`] again
    /// with the pair it returns.
    Probe { index: u64, term: u64 },
    /// The leader no longer holds what the follower needs: full resync.
    FullResync,
}

/// Decides from the pair `at` — the follower's last record at handshake,
/// or its answer to a probe — and the index of its last record,
/// `follower_last` (`at.index ≤ follower_last`).
pub fn reconcile(log: &impl LogTerms, at: LogPosition, follower_last: u64) -> Reconcile {
    let LogPosition { term, index } = at;
    if index == 0 || log.term_at(index) == Some(term) {
        return agreed_up_to(log, index, follower_last);
    }
    // The logs differ at `index` (or the leader's log is shorter). Find
    // the highest index below it where the leader's term is ≤ `term`;
    // terms never decrease along a log, so a binary search does.
    let Some(below) = index.checked_sub(1).and_then(|top| highest_at_most(log, top, term)) else {
        return Reconcile::FullResync;
    };
    let below_term = log.term_at(below).unwrap_or(0);
    if below == 0 || below_term == term {
        // Same term at `below` as the follower's at `index ≥ below`:
        // written by the same leader, so the logs agree up to `below`.
        agreed_up_to(log, below, follower_last)
    } else {
        Reconcile::Probe { index: below, term: below_term }
    }
}

/// The follower's answer to [`Reconcile::Probe`]: its highest record at or
/// below `index` whose term is at most `term`. `None` when its own log no
/// longer knows (compacted below it): the leader must then resync it in
/// full.
pub fn probe_answer(log: &impl LogTerms, index: u64, term: u64) -> Option<LogPosition> {
    let at = highest_at_most(log, index, term)?;
    Some(LogPosition { term: log.term_at(at)?, index: at })
}

/// Highest known index `≤ top` whose term is `≤ term` (`None` if every
/// known one is higher, or none is known). Terms never decrease along a
/// log, so a binary search does.
fn highest_at_most(log: &impl LogTerms, top: u64, term: u64) -> Option<u64> {
    let top = top.min(log.last_index());
    let first = log.first_index();
    let known = |i: u64| log.term_at(i).unwrap_or(u64::MAX);
    if top < first || known(first) > term {
        return None;
    }
    let (mut lo, mut hi) = (first, top);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if known(mid) <= term {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Some(lo)
}

/// The follower's first `keep` records are the leader's.
fn agreed_up_to(log: &impl LogTerms, keep: u64, follower_last: u64) -> Reconcile {
    let from = keep + 1;
    if keep < log.first_index() {
        return Reconcile::FullResync;
    }
    if keep < follower_last {
        Reconcile::Truncate { keep }
    } else {
        Reconcile::Resume { from }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Terms of records `first..`, index `first + i` at `terms[i]`.
    struct Log {
        first: u64,
        terms: Vec<u64>,
    }

    impl LogTerms for Log {
        fn term_at(&self, index: u64) -> Option<u64> {
            if index == 0 && self.first == 0 {
                return Some(0);
            }
            let i = index.checked_sub(self.first.max(1))?;
            self.terms.get(i as usize).copied()
        }
        fn first_index(&self) -> u64 {
            self.first
        }
        fn last_index(&self) -> u64 {
            self.first.max(1) + self.terms.len() as u64 - 1
        }
    }

    fn pos(term: u64, index: u64) -> LogPosition {
        LogPosition { term, index }
    }

    #[test]
    fn decisions_from_one_pair() {
        // Leader's log, indexes 1..=8: terms 1 1 1 4 4 5 5 6.
        let leader = Log { first: 0, terms: vec![1, 1, 1, 4, 4, 5, 5, 6] };
        use Reconcile::*;
        // (follower's pair, its last index, decision) — several of the
        // follower logs of the paper's Figure 7.
        let cases = [
            (pos(0, 0), 0, Resume { from: 1 }),            // empty follower
            (pos(5, 7), 7, Resume { from: 8 }),            // a prefix
            (pos(6, 8), 8, Resume { from: 9 }),            // up to date
            (pos(4, 4), 4, Resume { from: 5 }),            // (b) of Figure 7
            (pos(6, 10), 10, Truncate { keep: 8 }),        // longer, same last term
            (pos(4, 5), 7, Truncate { keep: 5 }),          // probe answer inside a longer log
            (pos(2, 6), 6, Probe { index: 3, term: 1 }),   // term 2 unknown to the leader
            (pos(1, 3), 6, Truncate { keep: 3 }),          // ... the answer at 3 matches
            (pos(3, 11), 11, Probe { index: 3, term: 1 }), // (f): terms 2 and 3 never existed here
            (pos(7, 12), 12, Probe { index: 8, term: 6 }), // a higher last term than the leader's
            (pos(4, 7), 7, Truncate { keep: 5 }),          // leader's last term-4 record is 5
        ];
        for (at, last, want) in cases {
            assert_eq!(reconcile(&leader, at, last), want, "{at:?} last {last}");
        }
    }

    #[test]
    fn the_backlog_bounds_what_can_be_decided() {
        // Only indexes 5..=8 are known (terms 4 5 5 6).
        let leader = Log { first: 5, terms: vec![4, 5, 5, 6] };
        use Reconcile::*;
        let cases = [
            (pos(5, 6), 6, Resume { from: 7 }),
            (pos(4, 5), 5, Resume { from: 6 }),
            (pos(1, 3), 3, FullResync), // behind the backlog
            (pos(0, 0), 0, FullResync),
            (pos(2, 6), 6, FullResync), // the parting point is below what is known
            (pos(6, 9), 12, Truncate { keep: 8 }),
        ];
        for (at, last, want) in cases {
            assert_eq!(reconcile(&leader, at, last), want, "{at:?} last {last}");
        }
    }

    #[test]
    fn probing_finds_the_common_prefix_in_few_round_trips() {
        // Follower logs that share a prefix with the leader then diverge,
        // some with long runs of a term the leader never had.
        let leader = Log { first: 0, terms: vec![1, 1, 2, 3, 3, 3, 7, 7, 7, 7, 7, 7] };
        let followers: [Vec<u64>; 7] = [
            vec![1, 1, 2, 4, 4, 4, 4],
            vec![1, 5, 5],
            vec![2, 2, 6, 6, 6, 6],
            vec![1, 1, 2, 3],
            vec![],
            [vec![1, 1, 2, 3, 3], vec![5; 40]].concat(),
            [vec![1, 1], vec![2; 30], vec![4; 30]].concat(),
        ];
        for f in &followers {
            let flog = Log { first: 0, terms: f.clone() };
            let last = f.len() as u64;
            let mut at = pos(flog.term_at(last).unwrap(), last);
            let mut trips = 0;
            let keep = loop {
                match reconcile(&leader, at, last) {
                    Reconcile::Probe { index, term } => {
                        trips += 1;
                        assert!(index < at.index, "{f:?}: probes must descend");
                        at = probe_answer(&flog, index, term).unwrap();
                        assert!(at.index <= index);
                    }
                    Reconcile::Resume { from } => break from - 1,
                    Reconcile::Truncate { keep } => break keep,
                    Reconcile::FullResync => panic!("{f:?}: the whole log is known"),
                }
            };
            assert!(trips <= 3, "{f:?}: {trips} probes");
            // The real common prefix.
            let common =
                (1..=last.min(12)).take_while(|&i| leader.term_at(i) == flog.term_at(i)).count() as u64;
            assert_eq!(keep, common, "{f:?}");
        }
        // A follower that compacted below the probe cannot answer.
        let compacted = Log { first: 6, terms: vec![5, 5, 5] };
        assert_eq!(probe_answer(&compacted, 4, 3), None);
        assert_eq!(probe_answer(&compacted, 8, 5), Some(pos(5, 8)));
    }
}
