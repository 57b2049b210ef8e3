//! Per-command calls, statuses and latencies, counted in one slot per
//! thread and summed when INFO or a scrape reads them. A connection keeps
//! its batch's samples and hands them over once per batch
//! ([`BatchCounts`]); the thread that does so is the only writer of its
//! slot, so counting takes plain loads and stores, never a locked
//! instruction or a cache line another core writes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::latency::{bump, Histogram, Snapshot};

/// Status bytes counted apart; higher ones share the last entry.
const STATUSES: usize = 32;

/// One thread's counts for one server.
#[derive(Debug)]
struct Slot {
    /// Calls per opcode byte and status byte.
    calls: Box<[[AtomicU64; STATUSES]; 256]>,
    /// Calls per opcode that dispatch reported as errors (INFO's `errors=`).
    errors: Box<[AtomicU64; 256]>,
    latency: Box<[Histogram; 256]>,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            calls: Box::new(std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))),
            errors: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            latency: Box::new(std::array::from_fn(|_| Histogram::default())),
        }
    }
}

/// A server's slots, one per thread that has executed its commands.
#[derive(Debug)]
pub(crate) struct Slots {
    /// Tells this server's slot from another's in a thread's cache (tests
    /// run several servers in one process).
    id: usize,
    all: Mutex<Vec<Arc<Slot>>>,
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot of each server it has served (almost always one).
    static MINE: RefCell<Vec<(usize, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

impl Default for Slots {
    fn default() -> Self {
        Slots { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), all: Mutex::new(Vec::new()) }
    }
}

impl Slots {
    /// Adds a batch's samples to this thread's slot.
    pub(crate) fn record(&self, batch: &BatchCounts) {
        if batch.samples.is_empty() {
            return;
        }
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            let slot = match mine.iter().position(|(id, _)| *id == self.id) {
                Some(i) => &mine[i].1,
                None => {
                    // Slots of servers since dropped (only their cache holds them).
                    mine.retain(|(_, s)| Arc::strong_count(s) > 1);
                    let slot = Arc::new(Slot::default());
                    self.all.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
                    mine.push((self.id, slot));
                    &mine[mine.len() - 1].1
                }
            };
            for s in &batch.samples {
                let op = s.opcode as usize;
                bump(&slot.calls[op][(s.status as usize).min(STATUSES - 1)], 1);
                if s.error {
                    bump(&slot.errors[op], 1);
                }
                slot.latency[op].observe_single_writer(s.nanos);
            }
        });
    }

    /// Every slot summed.
    pub(crate) fn totals(&self) -> CommandTotals {
        let mut t = CommandTotals::default();
        for slot in self.all.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            for op in 0..256 {
                for (sum, c) in t.calls[op].iter_mut().zip(&slot.calls[op]) {
                    *sum += c.load(Ordering::Relaxed);
                }
                t.errors[op] += slot.errors[op].load(Ordering::Relaxed);
                slot.latency[op].add_to(&mut t.latency[op]);
            }
        }
        t
    }
}

/// Per-opcode figures summed over threads at one moment.
#[derive(Debug)]
pub(crate) struct CommandTotals {
    calls: Box<[[u64; STATUSES]; 256]>,
    errors: Box<[u64; 256]>,
    latency: Box<[Snapshot; 256]>,
}

impl Default for CommandTotals {
    fn default() -> Self {
        CommandTotals {
            calls: Box::new([[0; STATUSES]; 256]),
            errors: Box::new([0; 256]),
            latency: Box::new([Snapshot::default(); 256]),
        }
    }
}

impl CommandTotals {
    pub(crate) fn calls(&self, opcode: u8) -> u64 {
        self.calls[opcode as usize].iter().sum()
    }

    pub(crate) fn errors(&self, opcode: u8) -> u64 {
        self.errors[opcode as usize]
    }

    /// `(status byte, calls)` for each status this opcode was answered
    /// with (status bytes from 31 up are counted as 31).
    pub(crate) fn by_status(&self, opcode: u8) -> impl Iterator<Item = (u8, u64)> + '_ {
        self.calls[opcode as usize].iter().enumerate().filter(|(_, n)| **n > 0).map(|(s, n)| (s as u8, *n))
    }

    pub(crate) fn latency(&self, opcode: u8) -> &Snapshot {
        &self.latency[opcode as usize]
    }

    /// Calls of every opcode, known or not.
    pub(crate) fn total_calls(&self) -> u64 {
        (0..=255u8).map(|op| self.calls(op)).sum()
    }
}

/// One executed command, as a connection notes it.
#[derive(Debug, Clone, Copy)]
struct Sample {
    opcode: u8,
    status: u8,
    error: bool,
    nanos: u64,
}

/// The samples of one batch, kept on the connection and recorded once the
/// batch ends, so a pipelined batch looks up its thread's slot once.
#[derive(Debug, Default)]
pub(crate) struct BatchCounts {
    samples: Vec<Sample>,
}

impl BatchCounts {
    /// Notes a command answered with `status` after `nanos` of execution.
    #[inline]
    pub(crate) fn add(&mut self, opcode: u8, status: u8, error: bool, nanos: u64) {
        self.samples.push(Sample { opcode, status, error, nanos });
    }

    pub(crate) fn clear(&mut self) {
        self.samples.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

/// Nanoseconds from `*since` to now; moves `*since` to now, so one clock
/// read per command times a whole batch.
#[inline]
pub(crate) fn lap(since: &mut u64) -> u64 {
    let now = mono_nanos();
    let n = now.saturating_sub(*since);
    *since = now;
    n
}

/// The monotonic clock `Instant` reads, as nanoseconds in one `u64`: a
/// difference is one subtraction, where `Instant`'s goes through
/// `Duration` normalisation (a third of per-command timing's cost under
/// `bench/callgrind.sh`).
#[inline]
pub(crate) fn mono_nanos() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000).wrapping_add(ts.tv_nsec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_measure_time_between_calls() {
        let mut t = mono_nanos();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let n = lap(&mut t);
        assert!(n >= 2_000_000, "{n} ns");
        let at = t;
        let m = lap(&mut t);
        assert_eq!(t - at, m, "the second lap starts where the first ended");
    }

    #[test]
    fn threads_count_apart_and_sum_on_read() {
        let slots = Arc::new(Slots::default());
        let other = Slots::default();
        let mut batch = BatchCounts::default();
        batch.add(0x01, 0, false, 1_500);
        batch.add(0x01, 0x0A, true, 3_000);
        slots.record(&batch);
        other.record(&batch);
        let s = slots.clone();
        std::thread::spawn(move || {
            let mut b = BatchCounts::default();
            b.add(0x01, 0, false, 100_000);
            b.add(0x02, 0x01, true, 10);
            s.record(&b);
        })
        .join()
        .unwrap();
        let t = slots.totals();
        assert_eq!(t.calls(0x01), 3);
        assert_eq!(t.errors(0x01), 1);
        assert_eq!(t.by_status(0x01).collect::<Vec<_>>(), vec![(0, 2), (0x0A, 1)]);
        assert_eq!(t.calls(0x02), 1);
        assert_eq!(t.total_calls(), 4);
        assert_eq!(t.latency(0x01).count(), 3);
        assert_eq!(t.latency(0x01).sum_nanos, 104_500);
        assert_eq!(t.latency(0x01).quantile_us(0.5), Some(4));
        assert_eq!(other.totals().total_calls(), 2, "another server's slots are its own");
    }
}
