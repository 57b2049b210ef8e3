//! The leader's replication backlog: the newest sealed records, bounded by
//! bytes, that followers are served from.
//!
//! It is filled from the op log in bulk (`OpLog::take_repl` hands over
//! everything appended since the last take) and owned by the leader's
//! replication state, so serving followers never touches the lock writers
//! append under. Records are slices of the taken buffers: a batch for a
//! follower is a list of cheap clones, not copies.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{BacklogSource, RecordEntry};
use crate::oplog::Records;

#[derive(Debug)]
pub(crate) struct ReplBacklog {
    /// The records held, oldest first. Invariant: their indexes are
    /// consecutive and the newest is `last`.
    records: VecDeque<Held>,
    /// Invariant: the sum of the held records' lengths, and at most
    /// `max_bytes` between calls (the oldest records are dropped first).
    bytes: usize,
    max_bytes: usize,
    /// Newest index held or, when empty, the index the next record follows.
    last: u64,
    /// (index, term) of the record just below the oldest held, when known:
    /// the log's last record at start, then each record dropped. A
    /// follower whose last record is that one resumes by partial resync
    /// (`reconcile` matches it by term).
    prev: Option<(u64, u64)>,
}

/// One record as followers are sent it: its position, read once when it
/// was absorbed, and its sealed bytes (a slice of the buffer taken).
#[derive(Debug)]
struct Held {
    term: u64,
    index: u64,
    raw: Bytes,
}

impl ReplBacklog {
    /// An empty backlog whose next record is `last_index + 1`; the record
    /// at `last_index` is of `last_term` (0 and 0 for an empty log).
    pub(crate) fn new(max_bytes: usize, last_index: u64, last_term: u64) -> ReplBacklog {
        let prev = Some((last_index, if last_index == 0 { 0 } else { last_term }));
        ReplBacklog { records: VecDeque::new(), bytes: 0, max_bytes, last: last_index, prev }
    }

    /// Adds records taken from the op log: sealed, back to back, the first
    /// with index `first`. If what we hold does not continue into them
    /// (records between were dropped before we took them, or at the start
    /// the log hands over what recovery replayed, which `new` was told
    /// of), it is discarded (followers needing it resync in full).
    pub(crate) fn absorb(&mut self, buf: Bytes, first: u64) {
        if buf.is_empty() {
            if first.saturating_sub(1) > self.last {
                // Records were dropped before we took them.
                self.records.clear();
                self.bytes = 0;
                self.last = first - 1;
                self.prev = None;
            }
            return;
        }
        if first != self.last + 1 {
            self.records.clear();
            self.bytes = 0;
            self.last = first - 1;
            self.prev = None;
        }
        let mut records = Records::trusted(&buf);
        loop {
            let start = records.offset();
            let Some(Ok(rec)) = records.next() else { break };
            debug_assert_eq!(rec.index, self.last + 1, "the op log hands over consecutive records");
            self.bytes += rec.raw.len();
            self.records.push_back(Held {
                term: rec.term,
                index: rec.index,
                raw: buf.slice(start..records.offset()),
            });
            self.last = rec.index;
        }
        debug_assert_eq!(records.offset(), buf.len(), "the op log hands over whole records");
        while self.bytes > self.max_bytes {
            match self.records.pop_front() {
                Some(old) => {
                    self.bytes -= old.raw.len();
                    self.prev = Some((old.index, old.term));
                }
                None => break,
            }
        }
        debug_assert!(self.records.back().is_none_or(|r| r.index == self.last));
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

impl BacklogSource for ReplBacklog {
    fn since(&self, from: u64, max_records: usize, max_bytes: usize) -> Option<Vec<RecordEntry>> {
        let first = self.first_index();
        if from < first {
            return None;
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for rec in self.records.iter().skip((from - first) as usize) {
            if out.len() >= max_records || (!out.is_empty() && bytes + rec.raw.len() > max_bytes) {
                break;
            }
            bytes += rec.raw.len();
            out.push(RecordEntry { term: rec.term, index: rec.index, bytes: rec.raw.clone() });
        }
        Some(out)
    }

    fn first_index(&self) -> u64 {
        self.records.front().map_or(self.last + 1, |r| r.index)
    }

    fn last_index(&self) -> u64 {
        self.last
    }

    fn term_at(&self, index: u64) -> Option<u64> {
        if index == 0 {
            return Some(0);
        }
        if let Some((i, term)) = self.prev.filter(|&(i, _)| i == index) {
            debug_assert_eq!(i + 1, self.first_index());
            return Some(term);
        }
        let first = self.records.front()?.index;
        self.records.get(index.checked_sub(first)? as usize).map(|r| r.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::{Op, OpLog};

    fn filled(n: usize, max_bytes: usize) -> (OpLog, ReplBacklog) {
        let log = OpLog::new(1 << 20);
        let mut b = ReplBacklog::new(max_bytes, 0, 0);
        for _ in 0..n {
            log.append(&Op::IncrBy { key: Bytes::from_static(b"k"), delta: 1 });
        }
        let (buf, first) = log.take_repl().unwrap();
        b.absorb(buf.freeze(), first);
        (log, b)
    }

    #[test]
    fn serves_positions_within_limits() {
        let (_, b) = filled(10, 1 << 20);
        assert_eq!((b.first_index(), b.last_index(), b.len()), (1, 10, 10));
        let batch = b.since(3, 4, usize::MAX).unwrap();
        let idx: Vec<u64> = batch.iter().map(|r| r.index).collect();
        assert_eq!(idx, vec![3, 4, 5, 6]);
        assert!(batch.iter().all(|r| r.term == 1));
        assert_eq!(b.since(1, 100, 1).unwrap().len(), 1, "an oversized record still goes out alone");
        assert!(b.since(11, 100, 100).unwrap().is_empty());
    }

    #[test]
    fn old_records_fall_off_and_are_not_served() {
        let (_, b) = filled(20, 100);
        assert!(b.bytes() <= 100);
        assert!(b.first_index() > 1);
        assert_eq!(b.last_index(), 20);
        assert!(b.since(1, 10, 1000).is_none());
    }

    #[test]
    fn a_gap_in_what_was_taken_discards_the_old_records() {
        let (log, mut b) = filled(5, 1 << 20);
        // The log dropped records 6..=8 before they were taken.
        for _ in 0..3 {
            log.append(&Op::Del { key: Bytes::from_static(b"x") });
        }
        let _ = log.take_repl();
        log.append(&Op::Del { key: Bytes::from_static(b"y") });
        let (buf, first) = log.take_repl().unwrap();
        assert_eq!(first, 9);
        b.absorb(buf.freeze(), first);
        assert_eq!((b.first_index(), b.last_index()), (9, 9));
        assert!(b.since(6, 10, 1000).is_none());
    }
}
