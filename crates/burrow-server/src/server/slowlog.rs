//! SLOWLOG: the last commands that took at least `--slowlog-threshold`
//! microseconds to execute (protocol.md §8.13).
//!
//! The hot path pays one comparison per command when nothing is slow: the
//! connection times each command once for the latency histograms too
//! ([`crate::ticks`]), reads the threshold in clock ticks once per batch
//! ([`SlowLog::threshold_ticks`]), and only a command at or over it takes
//! the log's lock. Both settings are atomics, so CONFIG SET can change them
//! at run time.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use burrow_proto::{Opcode, SlowLogEntry, SLOWLOG_KEY_BYTES};
use bytes::Bytes;

use crate::ticks;

/// Threshold value that stands for "off".
const OFF: u64 = u64::MAX;

/// The log and its two settings.
#[derive(Debug)]
pub(crate) struct SlowLog {
    /// Microseconds; [`OFF`] = log nothing.
    threshold_us: AtomicU64,
    /// The same in clock ticks, converted when set, so a command costs one
    /// comparison; [`OFF`] = log nothing.
    threshold_ticks: AtomicU64,
    max_len: AtomicUsize,
    /// Newest at the front.
    entries: Mutex<VecDeque<SlowLogEntry>>,
    next_id: AtomicU64,
}

impl SlowLog {
    pub(crate) fn new(threshold_us: Option<u64>, max_len: usize) -> SlowLog {
        SlowLog {
            threshold_us: AtomicU64::new(threshold_us.unwrap_or(OFF)),
            threshold_ticks: AtomicU64::new(to_ticks(threshold_us)),
            max_len: AtomicUsize::new(max_len),
            entries: Mutex::new(VecDeque::new()),
            next_id: AtomicU64::new(0),
        }
    }

    /// The threshold in clock ticks, `u64::MAX` when off (no command takes
    /// that long): read once per batch.
    #[inline]
    pub(crate) fn threshold_ticks(&self) -> u64 {
        self.threshold_ticks.load(Ordering::Relaxed)
    }

    /// The threshold as a duration, `None` when off.
    #[cfg(test)]
    pub(crate) fn threshold(&self) -> Option<Duration> {
        match self.threshold_us.load(Ordering::Relaxed) {
            OFF => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    /// Changes the threshold (`None` = off): CONFIG SET.
    pub(crate) fn set_threshold(&self, us: Option<u64>) {
        self.threshold_us.store(us.unwrap_or(OFF), Ordering::Relaxed);
        self.threshold_ticks.store(to_ticks(us), Ordering::Relaxed);
    }

    /// Changes how many entries are kept, dropping the oldest at once: CONFIG SET.
    pub(crate) fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Ordering::Relaxed);
        self.lock().truncate(n);
    }

    /// Whether commands with this opcode are logged: not SLOWLOG itself (so
    /// reading the log does not change it), nor HELLO and AUTH (a
    /// connection's handshake, as Redis leaves AUTH out).
    fn logs(opcode: u8) -> bool {
        !matches!(Opcode::from_u8(opcode), Some(Opcode::SlowLog | Opcode::Hello | Opcode::Auth))
    }

    /// Notes a command that took `took_ticks` (already known to be at least
    /// the threshold). Out of line: only slow commands get here.
    #[cold]
    #[inline(never)]
    pub(crate) fn record_ticks(&self, opcode: u8, key: &[u8], took_ticks: u64, client: SocketAddr) {
        self.record(opcode, key, ticks::clock().duration(took_ticks), client);
    }

    /// Notes a command that took `took`.
    fn record(&self, opcode: u8, key: &[u8], took: Duration, client: SocketAddr) {
        let max = self.max_len.load(Ordering::Relaxed);
        if max == 0 || !Self::logs(opcode) {
            return;
        }
        let started = SystemTime::now().checked_sub(took).unwrap_or(UNIX_EPOCH);
        let entry = SlowLogEntry {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            unix_us: started.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64),
            duration_us: took.as_micros().min(u64::MAX as u128) as u64,
            opcode,
            key_len: u32::try_from(key.len()).unwrap_or(u32::MAX),
            key: Bytes::copy_from_slice(&key[..key.len().min(SLOWLOG_KEY_BYTES)]),
            client: client.to_string(),
        };
        let mut entries = self.lock();
        entries.push_front(entry);
        entries.truncate(max);
    }

    /// Adds `entry` as it is (tests that need fixed times and ids).
    #[cfg(test)]
    pub(crate) fn push(&self, entry: SlowLogEntry) {
        self.lock().push_front(entry);
    }

    /// The newest `count` entries, newest first.
    pub(crate) fn get(&self, count: usize) -> Vec<SlowLogEntry> {
        self.lock().iter().take(count).cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn reset(&self) {
        self.lock().clear();
    }

    /// A poisoned lock still holds a usable log: entries are pushed whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<SlowLogEntry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A threshold in microseconds as clock ticks ([`OFF`] when off).
fn to_ticks(us: Option<u64>) -> u64 {
    us.map_or(OFF, |us| ticks::clock().ticks_in(Duration::from_micros(us)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    #[test]
    fn keeps_the_newest_up_to_max_len_and_skips_its_own_opcodes() {
        let log = SlowLog::new(Some(0), 2);
        for k in [b"a", b"b", b"c"] {
            log.record(Opcode::Get as u8, k, Duration::from_micros(5), addr());
        }
        log.record(Opcode::SlowLog as u8, b"", Duration::from_secs(1), addr());
        log.record(Opcode::Auth as u8, b"", Duration::from_secs(1), addr());
        let got = log.get(10);
        assert_eq!(got.iter().map(|e| &e.key[..]).collect::<Vec<_>>(), [&b"c"[..], b"b"]);
        assert_eq!((got[0].id, got[1].id), (2, 1));
        assert_eq!(got[0].duration_us, 5);
        assert_eq!(got[0].client, "127.0.0.1:4000");
        log.reset();
        assert_eq!(log.len(), 0);
        let log = SlowLog::new(Some(0), 0);
        log.record(Opcode::Get as u8, b"x", Duration::from_secs(1), addr());
        assert_eq!(log.len(), 0);
    }

    #[test]
    fn threshold_off_and_on() {
        assert_eq!(SlowLog::new(None, 8).threshold(), None);
        assert_eq!(SlowLog::new(None, 8).threshold_ticks(), u64::MAX);
        let log = SlowLog::new(Some(250), 8);
        assert_eq!(log.threshold(), Some(Duration::from_micros(250)));
        let clock = ticks::clock();
        assert_eq!(log.threshold_ticks(), clock.ticks_in(Duration::from_micros(250)));
        log.set_threshold(Some(0));
        assert_eq!(log.threshold_ticks(), 0, "0 logs every command");
        log.set_threshold(None);
        assert_eq!(log.threshold_ticks(), u64::MAX);
    }

    #[test]
    fn an_entry_shows_its_ticks_as_microseconds() {
        let log = SlowLog::new(Some(0), 4);
        let took = ticks::clock().ticks_in(Duration::from_micros(1500));
        log.record_ticks(Opcode::Get as u8, b"k", took, addr());
        let d = log.get(1)[0].duration_us;
        assert!(d.abs_diff(1500) <= 1, "{d} µs");
    }
}
