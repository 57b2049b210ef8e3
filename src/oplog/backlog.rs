//! The in-memory backlog: the newest records, encoded, bounded by bytes.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::op::Op;
use super::record::{encode_record_unsealed, seal_records};

/// Ordered, bounded store of the latest encoded records.
#[derive(Debug)]
pub struct Backlog {
    term: u64,
    last_index: u64,
    /// (index, encoded record); indexes are contiguous and end at `last_index`.
    records: VecDeque<(u64, Bytes)>,
    bytes: usize,
    max_bytes: usize,
    /// Records are encoded into this buffer and split off, so many small
    /// records share a few allocations instead of one each.
    scratch: BytesMut,
    /// Encoded records not yet handed to the WAL writer (`None`: no WAL).
    wal: Option<BytesMut>,
    /// Some record in `wal` still has its CRC at zero (see `seal_records`).
    wal_unsealed: bool,
    /// Whether records are kept for readers (followers). Like Redis's
    /// replication backlog, retention starts when the first reader attaches;
    /// until then an append only assigns the index (and feeds the WAL).
    retain: bool,
}

/// A point-in-time view of the backlog for INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BacklogStats {
    pub term: u64,
    pub last_index: u64,
    /// Oldest index still held (last_index + 1 when empty).
    pub first_index: u64,
    pub records: usize,
    pub bytes: usize,
    pub max_bytes: usize,
}

impl Backlog {
    pub fn new(max_bytes: usize) -> Backlog {
        Backlog {
            term: 1,
            last_index: 0,
            records: VecDeque::new(),
            bytes: 0,
            max_bytes,
            scratch: BytesMut::new(),
            wal: None,
            wal_unsealed: false,
            retain: true,
        }
    }

    /// A backlog that only counts indexes until [`Backlog::start_retaining`].
    pub fn counting(max_bytes: usize) -> Backlog {
        Backlog { retain: false, ..Backlog::new(max_bytes) }
    }

    /// Keeps every record appended from now on (the first is `last_index + 1`).
    pub fn start_retaining(&mut self) {
        self.retain = true;
    }

    pub fn is_retaining(&self) -> bool {
        self.retain
    }

    /// Assigns the next index to `op`, keeps its encoding, and returns the index.
    pub fn append<B: AsRef<[u8]>>(&mut self, op: &Op<B>) -> u64 {
        self.last_index += 1;
        if !self.retain {
            // Nobody reads the backlog yet: encode only for the WAL, if any.
            if let Some(wal) = &mut self.wal {
                encode_record_unsealed(self.term, self.last_index, op, wal);
                self.wal_unsealed = true;
            }
            return self.last_index;
        }
        if self.scratch.capacity() - self.scratch.len() < 256 {
            self.scratch.reserve(64 * 1024);
        }
        encode_record_unsealed(self.term, self.last_index, op, &mut self.scratch);
        // Sealed once here, so every follower (and the WAL) gets the same
        // bytes without a copy or a CRC of its own.
        seal_records(&mut self.scratch);
        let rec = self.scratch.split().freeze();
        if let Some(wal) = &mut self.wal {
            wal.extend_from_slice(&rec);
        }
        self.keep(self.last_index, rec);
        self.last_index
    }

    /// Puts a record that is already durable (WAL replay) back in the
    /// backlog, so followers can still be served from it after a restart.
    /// With the WAL enabled (a follower applying its leader's stream; never
    /// during recovery, which runs before the WAL starts) it is queued for
    /// the WAL as well, under the leader's index and term.
    pub fn restore<B: AsRef<[u8]>>(&mut self, term: u64, index: u64, op: &Op<B>) {
        self.term = self.term.max(term);
        self.last_index = index;
        if let Some(wal) = &mut self.wal {
            encode_record_unsealed(term, index, op, wal);
            self.wal_unsealed = true;
        }
        if !self.retain {
            return;
        }
        encode_record_unsealed(term, index, op, &mut self.scratch);
        seal_records(&mut self.scratch);
        let rec = self.scratch.split().freeze();
        self.keep(index, rec);
    }

    /// Like [`Backlog::restore`] for a record received already framed and
    /// sealed (a leader's stream): its bytes go to the WAL as they are.
    pub fn restore_raw(&mut self, term: u64, index: u64, raw: &[u8]) {
        self.term = self.term.max(term);
        self.last_index = index;
        if let Some(wal) = &mut self.wal {
            wal.extend_from_slice(raw);
        }
        if self.retain {
            self.keep(index, Bytes::copy_from_slice(raw));
        }
    }

    /// Continues numbering after `index` (recovery from a snapshot alone).
    pub fn set_last_index(&mut self, term: u64, index: u64) {
        self.term = self.term.max(term);
        if index > self.last_index {
            self.records.clear();
            self.bytes = 0;
            self.last_index = index;
        }
    }

    /// Restarts the log at `index` (which may be lower than today's): a
    /// follower that loaded its leader's snapshot. Records kept or queued
    /// for the WAL belong to the replaced dataset and are dropped.
    pub fn reset_to(&mut self, term: u64, index: u64) {
        self.records.clear();
        self.bytes = 0;
        self.last_index = index;
        self.term = term;
        if let Some(wal) = &mut self.wal {
            wal.clear();
        }
    }

    fn keep(&mut self, index: u64, rec: Bytes) {
        self.bytes += rec.len();
        self.records.push_back((index, rec));
        while self.bytes > self.max_bytes {
            match self.records.pop_front() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Encoded (sealed) records with index ≥ `from`, or `None` if some were already dropped.
    pub fn since(&self, from: u64) -> Option<Vec<Bytes>> {
        self.since_limited(from, usize::MAX, usize::MAX)
    }

    /// Like [`Backlog::since`], but at most `max_records` records and, past
    /// the first, at most `max_bytes` bytes (shared, not copied).
    pub fn since_limited(&self, from: u64, max_records: usize, max_bytes: usize) -> Option<Vec<Bytes>> {
        let first = self.records.front().map_or(self.last_index + 1, |(i, _)| *i);
        if from < first {
            return None;
        }
        let skip = (from - first) as usize;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (_, r) in self.records.iter().skip(skip) {
            if out.len() >= max_records || (!out.is_empty() && bytes + r.len() > max_bytes) {
                break;
            }
            bytes += r.len();
            // Kept records are sealed: readers share them.
            out.push(r.clone());
        }
        Some(out)
    }

    pub fn stats(&self) -> BacklogStats {
        BacklogStats {
            term: self.term,
            last_index: self.last_index,
            first_index: self.records.front().map_or(self.last_index + 1, |(i, _)| *i),
            records: self.records.len(),
            bytes: self.bytes,
            max_bytes: self.max_bytes,
        }
    }
}

/// The shared op log handle. Callers append while holding the lock of the
/// shard they changed, which makes per-key order equal log order.
#[derive(Debug)]
pub struct OpLog {
    inner: Mutex<Backlog>,
    /// Signalled when records are waiting for the WAL writer.
    wal_ready: Condvar,
    /// Wake the WAL writer on every append (it does all writes), or leave
    /// records for connections to write inline.
    eager_wal_wake: std::sync::atomic::AtomicBool,
}

impl OpLog {
    pub fn new(max_bytes: usize) -> OpLog {
        OpLog {
            inner: Mutex::new(Backlog::new(max_bytes)),
            wal_ready: Condvar::new(),
            eager_wal_wake: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// An op log whose backlog retains nothing until [`OpLog::start_retaining`]
    /// (the server's: records are kept only once a follower can read them).
    pub fn counting(max_bytes: usize) -> OpLog {
        OpLog {
            inner: Mutex::new(Backlog::counting(max_bytes)),
            wal_ready: Condvar::new(),
            eager_wal_wake: std::sync::atomic::AtomicBool::new(true),
        }
    }

    pub fn start_retaining(&self) {
        self.lock().start_retaining()
    }

    pub fn is_retaining(&self) -> bool {
        self.lock().is_retaining()
    }

    /// From now on every appended record is also queued for the WAL writer.
    pub fn enable_wal(&self) {
        self.lock().wal.get_or_insert_with(BytesMut::new);
    }

    pub fn set_eager_wal_wake(&self, eager: bool) {
        self.eager_wal_wake.store(eager, std::sync::atomic::Ordering::Relaxed);
    }

    /// Waits up to `timeout` for WAL bytes to be queued (or a wake-up).
    pub fn wait_wal(&self, timeout: Duration) {
        let g = self.lock();
        if g.wal.as_ref().is_some_and(|w| w.is_empty()) {
            let _ = self.wal_ready.wait_timeout(g, timeout);
        }
    }

    /// Takes the queued WAL bytes (possibly empty) with the index of the
    /// last record they contain, and whether some CRCs are not computed yet
    /// (the caller then runs `seal_records` over them).
    pub fn take_wal_now(&self) -> (BytesMut, u64, bool) {
        let mut g = self.lock();
        let last = g.last_index;
        let unsealed = std::mem::take(&mut g.wal_unsealed);
        let bytes = g.wal.as_mut().map(|w| w.split()).unwrap_or_default();
        (bytes, last, unsealed)
    }

    /// Wakes the WAL writer (e.g. to shut it down).
    pub fn wake_wal(&self) {
        self.wal_ready.notify_all();
    }

    pub fn restore<B: AsRef<[u8]>>(&self, term: u64, index: u64, op: &Op<B>) {
        let mut g = self.lock();
        g.restore(term, index, op);
        let wake = self.eager_wal_wake.load(std::sync::atomic::Ordering::Relaxed)
            && g.wal.as_ref().is_some_and(|w| !w.is_empty());
        drop(g);
        if wake {
            self.wal_ready.notify_one();
        }
    }

    pub fn restore_raw(&self, term: u64, index: u64, raw: &[u8]) {
        let mut g = self.lock();
        g.restore_raw(term, index, raw);
        let wake = self.eager_wal_wake.load(std::sync::atomic::Ordering::Relaxed)
            && g.wal.as_ref().is_some_and(|w| !w.is_empty());
        drop(g);
        if wake {
            self.wal_ready.notify_one();
        }
    }

    pub fn reset_to(&self, term: u64, index: u64) {
        self.lock().reset_to(term, index)
    }

    pub fn set_last_index(&self, term: u64, index: u64) {
        self.lock().set_last_index(term, index)
    }

    pub fn last_index(&self) -> u64 {
        self.lock().last_index
    }

    pub fn append<B: AsRef<[u8]>>(&self, op: &Op<B>) -> u64 {
        let mut g = self.lock();
        let index = g.append(op);
        let wake = self.eager_wal_wake.load(std::sync::atomic::Ordering::Relaxed)
            && g.wal.as_ref().is_some_and(|w| !w.is_empty());
        drop(g);
        if wake {
            self.wal_ready.notify_one();
        }
        index
    }

    pub fn stats(&self) -> BacklogStats {
        self.lock().stats()
    }

    pub fn since(&self, from: u64) -> Option<Vec<Bytes>> {
        self.lock().since(from)
    }

    pub fn since_limited(&self, from: u64, max_records: usize, max_bytes: usize) -> Option<Vec<Bytes>> {
        self.lock().since_limited(from, max_records, max_bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Backlog> {
        // A panic while holding this lock cannot leave the deque half-written
        // in a way later appends would trip over, so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::decode_record;

    #[test]
    fn indexes_are_contiguous_and_old_records_fall_off() {
        let mut b = Backlog::new(200);
        for i in 0..20u64 {
            let idx = b.append(&Op::IncrBy { key: Bytes::from_static(b"c"), delta: 1 });
            assert_eq!(idx, i + 1);
        }
        let s = b.stats();
        assert_eq!(s.last_index, 20);
        assert!(s.bytes <= 200);
        assert_eq!(s.first_index + s.records as u64, 21);
        assert!(b.since(1).is_none(), "dropped records must not be served");
        let tail = b.since(s.first_index).unwrap();
        let (rec, _) = decode_record(&tail[0]).unwrap();
        assert_eq!(rec.index, s.first_index);
        assert_eq!(b.since(21).unwrap().len(), 0);
    }
}

#[cfg(test)]
mod retain_tests {
    use super::*;
    use crate::oplog::decode_record;

    #[test]
    fn a_counting_backlog_numbers_records_and_retains_once_asked() {
        let mut b = Backlog::counting(1 << 20);
        let op = Op::IncrBy { key: Bytes::from_static(b"c"), delta: 1 };
        assert_eq!(b.append(&op), 1);
        assert_eq!(b.append(&op), 2);
        assert_eq!(b.stats().records, 0);
        assert!(b.since(1).is_none(), "nothing was kept");
        assert_eq!(b.since(3).unwrap().len(), 0, "a reader at the head is served");
        b.start_retaining();
        assert_eq!(b.append(&op), 3);
        let got = b.since(3).unwrap();
        assert_eq!(decode_record(&got[0]).unwrap().0.index, 3);
        assert!(b.since(2).is_none());
    }

    #[test]
    fn a_counting_backlog_still_feeds_the_wal() {
        let mut b = Backlog::counting(1 << 20);
        b.wal = Some(BytesMut::new());
        b.append(&Op::Del { key: Bytes::from_static(b"k") });
        let mut wal = b.wal.take().unwrap();
        seal_records(&mut wal);
        assert_eq!(decode_record(&wal.freeze()).unwrap().0.index, 1);
    }
}

#[cfg(test)]
mod limit_tests {
    use super::*;
    use crate::oplog::decode_record;

    #[test]
    fn a_limited_read_returns_one_sealed_batch() {
        let mut b = Backlog::new(1 << 20);
        for _ in 0..100 {
            b.append(&Op::IncrBy { key: Bytes::from_static(b"c"), delta: 1 });
        }
        let batch = b.since_limited(10, 5, usize::MAX).unwrap();
        assert_eq!(batch.len(), 5);
        for (i, rec) in batch.iter().enumerate() {
            assert_eq!(decode_record(rec).unwrap().0.index, 10 + i as u64, "sealed and in order");
        }
        let one = batch[0].len();
        assert_eq!(b.since_limited(10, 100, one * 3).unwrap().len(), 3);
        assert_eq!(b.since_limited(10, 100, 1).unwrap().len(), 1, "the first record always fits");
        assert_eq!(b.since_limited(101, 5, 100).unwrap().len(), 0);
    }
}
