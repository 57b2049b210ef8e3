//! The op log's state: the next index, and the records on their way to the
//! WAL writer and, on a cluster leader, to the replication streamer.
//!
//! Both consumers take what accumulated in one lock acquisition (`take_wal`,
//! `take_repl`) instead of reading records one by one: the writers append
//! under this lock at every write, so each extra acquisition from another
//! thread would cost them a cache-line transfer. The bounded history
//! followers are served from lives with the streamer
//! (`replication::ReplBacklog`), which only its thread touches.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use bytes::{Buf, BytesMut};

use super::op::Op;
use super::record::{encode_record_unsealed, seal_records, Records};

/// Index assignment plus the outgoing record queues.
///
/// Invariants (checked by `debug_check` after every change): the queues
/// hold whole records with consecutive indexes ending at `last_index`, so
/// `repl_first ≤ last_index + 1`; `repl` holds at most `max_bytes`.
#[derive(Debug)]
pub(super) struct Backlog {
    /// Term of the newest record; records restored from elsewhere may only
    /// raise it (a reset sets it).
    term: u64,
    /// Index of the newest record (0: none yet). Every index up to it has
    /// been assigned exactly once since the last reset.
    last_index: u64,
    /// Encoded records not yet handed to the WAL writer (`None`: no WAL).
    /// When not empty, they are whole records ending with `last_index`
    /// (the writer takes the bytes and `last_index` together).
    wal: Option<BytesMut>,
    /// Some record in `wal` still has its CRC at zero (see `seal_records`).
    /// Invariant: only set while `wal` holds records.
    wal_unsealed: bool,
    /// The WAL writer is asleep in [`OpLog::wait_wal`]: the next record
    /// queued (or [`OpLog::wake_wal`]) wakes it, and clears this so later
    /// appends do not wake it again.
    wal_parked: bool,
    /// [`OpLog::wake_wal`] was called since the writer last waited.
    wal_kicked: bool,
    /// Sealed records not yet taken by the replication streamer (`None`:
    /// not retaining). Like Redis's replication backlog, retention starts
    /// when replication needs it; until then an append only assigns the
    /// index (and feeds the WAL). Invariant: when not empty, the records
    /// `repl_first..=last_index`, at most `max_bytes` of them.
    repl: Option<BytesMut>,
    /// Index of the first record in `repl`; when `repl` is empty, at most
    /// the index the next record gets (`last_index + 1`).
    repl_first: u64,
    /// `repl` never holds more than this (oldest records are dropped: a
    /// streamer that stopped taking them would otherwise grow it forever).
    max_bytes: usize,
}

/// A point-in-time view for INFO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BacklogStats {
    pub term: u64,
    pub last_index: u64,
    /// Bytes of records waiting for the replication streamer.
    pub pending_repl_bytes: usize,
    pub max_bytes: usize,
}

impl Backlog {
    /// A log that retains records for replication from the start.
    #[cfg(test)]
    pub(super) fn new(max_bytes: usize) -> Backlog {
        Backlog { repl: Some(BytesMut::new()), ..Backlog::counting(max_bytes) }
    }

    /// A log that only counts indexes until [`Backlog::start_retaining`].
    pub(super) fn counting(max_bytes: usize) -> Backlog {
        Backlog {
            term: 1,
            last_index: 0,
            wal: None,
            wal_unsealed: false,
            wal_parked: false,
            wal_kicked: false,
            repl: None,
            repl_first: 1,
            max_bytes,
        }
    }

    /// Queues every record appended from now on for replication (the first
    /// is `last_index + 1`). Idempotent.
    pub(super) fn start_retaining(&mut self) {
        if self.repl.is_none() {
            self.repl = Some(BytesMut::new());
            self.repl_first = self.last_index + 1;
        }
    }

    pub(super) fn is_retaining(&self) -> bool {
        self.repl.is_some()
    }

    /// Assigns the next index to `op`, queues its encoding, and returns the index.
    pub(super) fn append<B: AsRef<[u8]>>(&mut self, op: &Op<B>) -> u64 {
        self.last_index += 1;
        let (term, index) = (self.term, self.last_index);
        self.queue(term, index, op);
        index
    }

    /// Appends a NOOP under `term` (the log's term is raised to it first;
    /// it never goes down), and returns its index.
    pub(super) fn append_noop(&mut self, term: u64) -> u64 {
        self.term = self.term.max(term);
        self.append(&Op::<&[u8]>::Noop)
    }

    /// Encodes a record into the queues: sealed once into `repl` when
    /// retaining (the WAL copies those bytes), else unsealed for the WAL
    /// alone (its writer seals them, off the write path).
    fn queue<B: AsRef<[u8]>>(&mut self, term: u64, index: u64, op: &Op<B>) {
        match &mut self.repl {
            Some(repl) => {
                if repl.is_empty() {
                    self.repl_first = index;
                }
                if repl.capacity() - repl.len() < 256 {
                    repl.reserve(16 * 1024);
                }
                let start = repl.len();
                encode_record_unsealed(term, index, op, repl);
                seal_records(&mut repl[start..]);
                if let Some(wal) = &mut self.wal {
                    wal.extend_from_slice(&repl[start..]);
                }
                self.trim_repl();
            }
            None => {
                if let Some(wal) = &mut self.wal {
                    // Room for many records at once: the WAL writer takes
                    // what is queued often, and a buffer it has finished
                    // with is reused rather than grown one record at a time.
                    if wal.capacity() - wal.len() < 256 {
                        wal.reserve(16 * 1024);
                    }
                    encode_record_unsealed(term, index, op, wal);
                    self.wal_unsealed = true;
                }
            }
        }
    }

    /// See [`OpLog::set_repl_limit`].
    pub(super) fn set_repl_limit(&mut self, max_bytes: usize) {
        self.max_bytes = max_bytes;
        self.trim_repl();
    }

    /// Drops the oldest queued records beyond `max_bytes`.
    fn trim_repl(&mut self) {
        let Some(repl) = &mut self.repl else { return };
        while repl.len() > self.max_bytes {
            let Some(Ok(oldest)) = Records::trusted(repl).next() else {
                debug_assert!(false, "the replication queue holds whole records");
                repl.clear();
                return;
            };
            repl.advance(oldest.raw.len());
            self.repl_first += 1;
        }
    }

    /// Puts a record that was decided elsewhere back in the log: WAL replay
    /// (before the WAL writer starts, so only the index moves and, on a
    /// leader, the record is queued for replication), or a follower applying
    /// its leader's stream (queued for its WAL, under the leader's index and term).
    pub(super) fn restore<B: AsRef<[u8]>>(&mut self, term: u64, index: u64, op: &Op<B>) {
        self.term = self.term.max(term);
        self.last_index = index;
        self.queue(term, index, op);
    }

    /// Like [`Backlog::restore`] for a record received already framed and
    /// sealed (a leader's stream): its bytes are queued as they are.
    pub(super) fn restore_raw(&mut self, term: u64, index: u64, raw: &[u8]) {
        self.term = self.term.max(term);
        self.last_index = index;
        if let Some(repl) = &mut self.repl {
            if repl.is_empty() {
                self.repl_first = index;
            }
            repl.extend_from_slice(raw);
            self.trim_repl();
        }
        if let Some(wal) = &mut self.wal {
            wal.extend_from_slice(raw);
        }
    }

    /// Continues numbering after `index` (recovery from a snapshot alone).
    pub(super) fn set_last_index(&mut self, term: u64, index: u64) {
        self.term = self.term.max(term);
        if index > self.last_index {
            self.last_index = index;
            if let Some(repl) = &mut self.repl {
                repl.clear();
            }
            self.repl_first = index + 1;
        }
    }

    /// Restarts the log at `index` (which may be lower than today's): a
    /// follower that loaded its leader's snapshot. Records queued belong to
    /// the replaced dataset and are dropped.
    pub(super) fn reset_to(&mut self, term: u64, index: u64) {
        self.last_index = index;
        self.term = term;
        if let Some(repl) = &mut self.repl {
            repl.clear();
        }
        self.repl_first = index + 1;
        if let Some(wal) = &mut self.wal {
            wal.clear();
        }
        self.wal_unsealed = false;
    }

    /// Takes the records queued for replication: sealed, back to back, and
    /// the index of the first (`None` when not retaining). The buffer is
    /// handed over whole, so the taker's thread alone touches it afterwards.
    pub(super) fn take_repl(&mut self) -> Option<(BytesMut, u64)> {
        let repl = self.repl.as_mut()?;
        let first = self.repl_first;
        self.repl_first = self.last_index + 1;
        Some((std::mem::take(repl), first))
    }

    /// Asserts the invariants documented on [`Backlog`] (debug builds; O(1)).
    #[inline]
    fn debug_check(&self) {
        debug_assert!(
            self.repl_first <= self.last_index + 1,
            "{} > {} + 1",
            self.repl_first,
            self.last_index
        );
        debug_assert!(self.repl.as_ref().is_none_or(|r| r.len() <= self.max_bytes), "repl over max_bytes");
        debug_assert!(
            !self.wal_unsealed || self.wal.as_ref().is_some_and(|w| !w.is_empty()),
            "unsealed records flagged with none queued"
        );
    }

    pub(super) fn stats(&self) -> BacklogStats {
        BacklogStats {
            term: self.term,
            last_index: self.last_index,
            pending_repl_bytes: self.repl.as_ref().map_or(0, |r| r.len()),
            max_bytes: self.max_bytes,
        }
    }
}

/// Keeps a value on its own cache line (no false sharing with the lock).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded<T>(T);

/// The shared op log handle. Callers append while holding the lock of the
/// shard they changed, which makes per-key order equal log order.
#[derive(Debug)]
pub(crate) struct OpLog {
    inner: Mutex<Backlog>,
    /// `last_index`, readable without the lock (snapshots, WAIT, the WAL
    /// wait of every write batch): each lock taken from another thread
    /// costs the writers a cache-line transfer. Its own cache line.
    /// Invariant: equal to the backlog's `last_index` whenever the lock is
    /// free, except on a follower between [`OpLog::note_replicated`] and
    /// [`OpLog::queue_replicated`], where it runs ahead (records applied,
    /// not yet queued).
    last: Padded<std::sync::atomic::AtomicU64>,
    /// Signalled when records are waiting for the WAL writer.
    wal_ready: Condvar,
}

thread_local! {
    /// Set while this thread runs [`defer_wal_wakes`].
    static DEFERRING: Cell<bool> = const { Cell::new(false) };
    /// An append inside [`defer_wal_wakes`] left the parked WAL writer
    /// asleep: someone on this thread owes it an [`OpLog::wake_wal`].
    static WAKE_OWED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` (a connection executing a batch of requests) with the WAL
/// writer's wake-ups deferred: appends leave it parked and note that a
/// wake is owed, which the caller pays ([`take_owed_wal_wake`], then
/// [`OpLog::wake_wal`]) when it is about to wait for its records.
///
/// Why: woken as soon as the first record of a batch lands, the writer
/// thread took and wrote batches of a record or two, and every write
/// published progress that woke every waiting connection again. Deferred,
/// the connections one turn of a runtime serves append first (the one
/// owing the wake yields to them), and one wake-up, one `write` and one
/// publication cover them all. Measured (`burrow-bench -t set -c 50 -P 16`,
/// `--fsync everysec`, CPU ticks of the server's threads for 1.5M SETs):
/// 224 before, 135 after (121 when connections wrote the WAL themselves).
pub(crate) fn defer_wal_wakes<R>(f: impl FnOnce() -> R) -> R {
    let was = DEFERRING.replace(true);
    let r = f();
    DEFERRING.set(was);
    r
}

/// Whether an append on this thread since the last call left the WAL
/// writer parked with records waiting (see [`defer_wal_wakes`]); clears it.
pub(crate) fn take_owed_wal_wake() -> bool {
    WAKE_OWED.replace(false)
}

impl OpLog {
    #[cfg(test)]
    pub(crate) fn new(max_bytes: usize) -> OpLog {
        OpLog {
            inner: Mutex::new(Backlog::new(max_bytes)),
            last: Padded::default(),
            wal_ready: Condvar::new(),
        }
    }

    /// An op log whose backlog retains nothing until [`OpLog::start_retaining`]
    /// (the server's: records are kept only once a follower can read them).
    pub(crate) fn counting(max_bytes: usize) -> OpLog {
        OpLog {
            inner: Mutex::new(Backlog::counting(max_bytes)),
            last: Padded::default(),
            wal_ready: Condvar::new(),
        }
    }

    pub(crate) fn start_retaining(&self) {
        self.lock().start_retaining()
    }

    /// Bounds the records queued for replication (and not yet taken) to
    /// `max_bytes`, dropping the oldest beyond it. On a follower the queue
    /// is its backlog (`--backlog-bytes`); a leader's streamer takes it
    /// into a backlog that may hold more for connected followers
    /// (`replication::HOLD_FACTOR`), so a burst of writes between two
    /// takes must fit that much.
    pub(crate) fn set_repl_limit(&self, max_bytes: usize) {
        self.lock().set_repl_limit(max_bytes)
    }

    pub(crate) fn is_retaining(&self) -> bool {
        self.lock().is_retaining()
    }

    /// From now on every appended record is also queued for the WAL writer.
    pub(crate) fn enable_wal(&self) {
        self.lock().wal.get_or_insert_with(BytesMut::new);
    }

    /// The WAL writer's sleep: returns at once if records are queued or
    /// [`OpLog::wake_wal`] was called since the last wait, else when that
    /// happens or `timeout` (if any) passes. Spurious returns are possible.
    /// Returns whether it slept.
    pub(crate) fn wait_wal(&self, timeout: Option<Duration>) -> bool {
        let mut g = self.lock();
        let sleep = !g.wal_kicked && g.wal.as_ref().is_some_and(|w| w.is_empty());
        if sleep {
            g.wal_parked = true;
            g = match timeout {
                Some(t) => self.wal_ready.wait_timeout(g, t).unwrap_or_else(|e| e.into_inner()).0,
                None => self.wal_ready.wait(g).unwrap_or_else(|e| e.into_inner()),
            };
            g.wal_parked = false;
        }
        g.wal_kicked = false;
        sleep
    }

    /// Takes the queued WAL bytes (possibly empty) with the index of the
    /// last record they contain, and whether some CRCs are not computed yet
    /// (the caller then runs `seal_records` over them).
    pub(crate) fn take_wal_now(&self) -> (BytesMut, u64, bool) {
        let mut g = self.lock();
        let last = g.last_index;
        let unsealed = std::mem::take(&mut g.wal_unsealed);
        let bytes = g.wal.as_mut().map(|w| w.split()).unwrap_or_default();
        (bytes, last, unsealed)
    }

    /// Wakes the WAL writer (it has requests to read), or makes its next
    /// wait return at once.
    pub(crate) fn wake_wal(&self) {
        let mut g = self.lock();
        g.wal_kicked = true;
        let parked = std::mem::take(&mut g.wal_parked);
        drop(g);
        if parked {
            self.wal_ready.notify_one();
        }
    }

    pub(crate) fn restore<B: AsRef<[u8]>>(&self, term: u64, index: u64, op: &Op<B>) {
        let mut g = self.lock();
        g.restore(term, index, op);
        self.release(g);
    }

    /// A follower's store applied the record at `index` (call it under the
    /// shard lock, as writers append): the index moves now, the record's
    /// bytes are queued with the rest of its batch by [`OpLog::queue_replicated`].
    pub(crate) fn note_replicated(&self, index: u64) {
        self.last.0.store(index, std::sync::atomic::Ordering::Release);
    }

    /// Queues a batch of records received framed and sealed (a leader's
    /// stream), already applied and noted, in one lock acquisition.
    pub(crate) fn queue_replicated<'a>(
        &self,
        term: u64,
        last: u64,
        raws: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let mut g = self.lock();
        for raw in raws {
            let index = g.last_index + 1;
            g.restore_raw(term, index, raw);
        }
        g.last_index = last;
        self.release(g);
    }

    pub(crate) fn reset_to(&self, term: u64, index: u64) {
        let mut g = self.lock();
        g.reset_to(term, index);
        self.publish(&g);
    }

    /// This node now leads `term`: records it appends carry it (never
    /// lowers the term).
    pub(crate) fn begin_term(&self, term: u64) {
        let mut b = self.lock();
        b.term = b.term.max(term);
    }

    pub(crate) fn set_last_index(&self, term: u64, index: u64) {
        let mut g = self.lock();
        g.set_last_index(term, index);
        self.publish(&g);
    }

    /// Index of the newest record (lock-free).
    pub(crate) fn last_index(&self) -> u64 {
        self.last.0.load(std::sync::atomic::Ordering::Acquire)
    }

    fn publish(&self, g: &Backlog) {
        g.debug_check();
        self.last.0.store(g.last_index, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn append<B: AsRef<[u8]>>(&self, op: &Op<B>) -> u64 {
        let mut g = self.lock();
        let index = g.append(op);
        self.release(g);
        index
    }

    /// Appends a NOOP of `term`: what a new leader logs first, so that
    /// the records before it commit (§5.4.2). Returns its index.
    pub(crate) fn append_noop(&self, term: u64) -> u64 {
        let mut g = self.lock();
        let index = g.append_noop(term);
        self.release(g);
        index
    }

    /// Ends a change: publishes the new last index, releases the lock and,
    /// if the WAL writer sleeps and records now wait for it, wakes it — once
    /// per batch: it stays awake (and this stays a flag test under the lock
    /// the append holds anyway) until it has written everything queued.
    /// Inside [`defer_wal_wakes`] the wake is left to the caller instead.
    fn release(&self, mut g: std::sync::MutexGuard<'_, Backlog>) {
        self.publish(&g);
        let wake = g.wal_parked && g.wal.as_ref().is_some_and(|w| !w.is_empty());
        if wake && DEFERRING.get() {
            WAKE_OWED.set(true);
            drop(g);
            return;
        }
        if wake {
            g.wal_parked = false;
        }
        drop(g);
        if wake {
            self.wal_ready.notify_one();
        }
    }

    pub(crate) fn stats(&self) -> BacklogStats {
        self.lock().stats()
    }

    /// See [`Backlog::take_repl`].
    pub(crate) fn take_repl(&self) -> Option<(BytesMut, u64)> {
        self.lock().take_repl()
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
    use bytes::Bytes;

    fn indexes(buf: BytesMut) -> Vec<u64> {
        Records::new(&buf).map(|rec| rec.expect("sealed record").index).collect()
    }

    fn op() -> Op {
        Op::IncrBy { key: Bytes::from_static(b"c"), delta: 1 }
    }

    #[test]
    fn records_are_queued_sealed_and_taken_in_one_piece() {
        let mut b = Backlog::new(1 << 20);
        for i in 0..20u64 {
            assert_eq!(b.append(&op()), i + 1);
        }
        let (buf, first) = b.take_repl().unwrap();
        assert_eq!(first, 1);
        assert_eq!(indexes(buf), (1..=20).collect::<Vec<_>>());
        let (buf, first) = b.take_repl().unwrap();
        assert!(buf.is_empty());
        assert_eq!(first, 21, "the next take starts after the last index");
        b.append(&op());
        let (buf, first) = b.take_repl().unwrap();
        assert_eq!((indexes(buf), first), (vec![21], 21));
    }

    #[test]
    fn the_queue_limit_can_be_raised_for_a_leader_and_lowered_again() {
        let mut b = Backlog::new(200);
        b.set_repl_limit(800);
        for _ in 0..20 {
            b.append(&op());
        }
        let queued = b.stats().pending_repl_bytes;
        assert!(queued > 200 && queued <= 800, "{queued}");
        // Back to a follower's limit: the oldest go at once.
        b.set_repl_limit(200);
        assert!(b.stats().pending_repl_bytes <= 200);
        let (buf, first) = b.take_repl().unwrap();
        let got = indexes(buf);
        assert_eq!((got.first().copied(), got.last().copied()), (Some(first), Some(20)));
        assert!(first > 1);
    }

    #[test]
    fn an_untaken_queue_keeps_only_the_newest_records() {
        let mut b = Backlog::new(200);
        for _ in 0..20 {
            b.append(&op());
        }
        assert!(b.stats().pending_repl_bytes <= 200);
        let (buf, first) = b.take_repl().unwrap();
        let got = indexes(buf);
        assert_eq!(got.first().copied(), Some(first));
        assert_eq!(got.last().copied(), Some(20));
        assert!(first > 1, "old records were dropped");
    }

    #[test]
    fn a_counting_log_numbers_records_and_queues_once_asked() {
        let mut b = Backlog::counting(1 << 20);
        assert_eq!(b.append(&op()), 1);
        assert_eq!(b.append(&op()), 2);
        assert!(b.take_repl().is_none(), "nothing was queued");
        b.start_retaining();
        b.start_retaining();
        assert_eq!(b.append(&op()), 3);
        let (buf, first) = b.take_repl().unwrap();
        assert_eq!((indexes(buf), first), (vec![3], 3));
    }

    #[test]
    fn the_wal_gets_every_record_whether_retaining_or_not() {
        let mut b = Backlog::counting(1 << 20);
        b.wal = Some(BytesMut::new());
        b.append(&Op::Del { key: Bytes::from_static(b"k") });
        b.start_retaining();
        b.append(&Op::Del { key: Bytes::from_static(b"k") });
        assert!(b.wal_unsealed, "the first was queued without its CRC");
        let mut wal = b.wal.take().unwrap();
        seal_records(&mut wal);
        assert_eq!(indexes(wal), vec![1, 2]);
    }

    #[test]
    fn raw_records_are_queued_as_received() {
        let mut leader = Backlog::new(1 << 20);
        leader.append(&op());
        let (raw, _) = leader.take_repl().unwrap();
        let mut follower = Backlog::counting(1 << 20);
        follower.wal = Some(BytesMut::new());
        follower.restore_raw(1, 1, &raw);
        assert_eq!(follower.wal.as_ref().unwrap()[..], raw[..]);
        assert!(!follower.wal_unsealed);
        assert_eq!(follower.last_index, 1);
    }

    #[test]
    fn appends_inside_a_deferred_batch_leave_the_writer_parked_and_owe_one_wake() {
        let log = OpLog::counting(1 << 20);
        log.enable_wal();
        let parked = |log: &OpLog| log.lock().wal_parked;
        log.lock().wal_parked = true;
        defer_wal_wakes(|| {
            log.append(&op());
            log.append(&op());
        });
        assert!(parked(&log), "no wake inside the batch");
        assert!(take_owed_wal_wake(), "the batch owes one");
        assert!(!take_owed_wal_wake(), "and only one");
        log.wake_wal();
        assert!(!parked(&log), "paid");
        // Outside a batch an append wakes a parked writer itself.
        log.lock().wal_parked = true;
        log.append(&op());
        assert!(!parked(&log));
        assert!(!take_owed_wal_wake());
    }
}
