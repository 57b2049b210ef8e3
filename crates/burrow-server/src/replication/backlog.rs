//! The leader's replication backlog: the newest sealed records, bounded by
//! bytes, that followers are served from.
//!
//! It is filled from the op log in bulk (`OpLog::take_repl` hands over
//! everything appended since the last take) and owned by the leader's
//! replication state, so serving followers never touches the lock writers
//! append under. Records are slices of the taken buffers: a batch for a
//! follower is a list of cheap clones, not copies.
//!
//! `max_bytes` is what is kept for followers that are not connected (to
//! resume by partial resync when they return). Records a *connected*
//! follower still needs — from the index after its snapshot while a full
//! resync is under way, or after what it applied while it streams — are
//! held past it, up to [`HOLD_FACTOR`] × `max_bytes`, as Redis keeps a
//! replica's output buffer: without that a follower whose full resync takes
//! longer than the leader takes to write `max_bytes` (16 MiB values at tens
//! of MB/s) would find its records gone when its snapshot arrived, and
//! resync in full again, for ever. The cap bounds what a stuck follower
//! costs the leader; past it the follower falls out and resyncs in full.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{BacklogSource, RecordEntry};
use crate::oplog::Records;

/// How far past `max_bytes` records a connected follower needs are held.
pub(crate) const HOLD_FACTOR: usize = 4;

#[derive(Debug)]
pub(crate) struct ReplBacklog {
    /// The records held, oldest first. Invariant: their indexes are
    /// consecutive and the newest is `last`.
    records: VecDeque<Held>,
    /// Invariant: the sum of the held records' lengths, and at most
    /// `max_bytes` between calls (the oldest records are dropped first).
    bytes: usize,
    max_bytes: usize,
    /// Oldest index a connected follower still needs: records from it are
    /// kept past `max_bytes`, up to `HOLD_FACTOR * max_bytes`.
    hold_from: Option<u64>,
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
        ReplBacklog { records: VecDeque::new(), bytes: 0, max_bytes, hold_from: None, last: last_index, prev }
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
        self.trim();
        debug_assert!(self.records.back().is_none_or(|r| r.index == self.last));
    }

    /// Says which records connected followers still need (see the module
    /// docs): from `from` on, or none.
    pub(crate) fn hold_from(&mut self, from: Option<u64>) {
        if from != self.hold_from {
            self.hold_from = from;
            self.trim();
        }
    }

    /// Drops the oldest records while over `max_bytes`, except those held
    /// for a connected follower while under the hold cap.
    fn trim(&mut self) {
        let cap = self.max_bytes.saturating_mul(HOLD_FACTOR);
        while self.bytes > self.max_bytes {
            let Some(old) = self.records.front() else { break };
            if self.hold_from.is_some_and(|h| old.index >= h) && self.bytes <= cap {
                break;
            }
            let old = self.records.pop_front().expect("just seen");
            self.bytes -= old.raw.len();
            self.prev = Some((old.index, old.term));
        }
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
    fn records_a_connected_follower_needs_are_held_up_to_the_cap() {
        let log = OpLog::new(1 << 20);
        let mut b = ReplBacklog::new(100, 0, 0);
        b.hold_from(Some(1));
        let took = |b: &mut ReplBacklog, n: usize| {
            for _ in 0..n {
                log.append(&Op::IncrBy { key: Bytes::from_static(b"k"), delta: 1 });
            }
            let (buf, first) = log.take_repl().unwrap();
            b.absorb(buf.freeze(), first);
        };
        took(&mut b, 10);
        let one = b.bytes() / 10;
        assert!(b.bytes() > 100 && b.bytes() <= 100 * HOLD_FACTOR, "{}", b.bytes());
        assert_eq!(b.first_index(), 1, "held for the follower");
        assert_eq!(b.since(1, 100, usize::MAX).unwrap().len(), 10);

        // Past the cap the oldest go even though they are wanted.
        took(&mut b, 100);
        assert!(b.bytes() <= 100 * HOLD_FACTOR && b.bytes() + one > 100 * HOLD_FACTOR, "{}", b.bytes());
        assert!(b.first_index() > 1 && b.since(1, 1, 1).is_none());

        // The follower caught up: back within max_bytes at once.
        b.hold_from(Some(b.last_index() + 1));
        assert!(b.bytes() <= 100);
        assert_eq!(b.last_index(), 110);
        // Released: the same.
        b.hold_from(None);
        assert!(b.bytes() <= 100);
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
