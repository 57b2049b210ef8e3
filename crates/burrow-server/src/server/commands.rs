//! Per-command calls, statuses and latencies, counted in one slot per
//! thread and summed when INFO or a scrape reads them. A connection holds a
//! [`Counter`] on its thread's slot, checked once per batch (a task may
//! move between threads), and adds each command straight into it: the
//! thread is the only writer of its slot, so counting takes plain loads and
//! stores, never a locked instruction or a cache line another core writes.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burrow_proto::Status;

use crate::latency::{bucket_raw_us, bump, Histogram, Snapshot};
use crate::ticks::{self, Clock};

/// Status bytes counted apart: a power of two above every status this
/// server sends (checked below), so a status is masked into range, not
/// clamped (a byte it never sends would share a lower one's count).
const STATUSES: usize = 32;

const _: () = {
    let mut i = 0;
    while i < Status::ALL.len() {
        assert!((Status::ALL[i] as usize) < STATUSES, "a status byte past the counted range");
        i += 1;
    }
};

/// One thread's counts for one server.
#[derive(Debug)]
struct Slot {
    /// Calls per opcode byte and status byte.
    calls: Box<[[AtomicU64; STATUSES]; 256]>,
    /// Calls per opcode that dispatch reported as errors (INFO's `errors=`).
    errors: Box<[AtomicU64; 256]>,
    /// Sums in clock ticks ([`ticks`]), converted when read.
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

thread_local! {
    /// Its address tells this thread from every other live thread.
    static HERE: u8 = const { 0 };
}

fn this_thread() -> usize {
    HERE.with(|h| std::ptr::from_ref(h) as usize)
}

impl Slots {
    /// A handle on this thread's slot, for one connection.
    pub(crate) fn counter(&self) -> Counter {
        Counter { thread: this_thread(), slot: self.slot_here() }
    }

    /// This thread's slot, made on first use.
    fn slot_here(&self) -> Arc<Slot> {
        MINE.with(|mine| {
            let mut mine = mine.borrow_mut();
            if let Some((_, slot)) = mine.iter().find(|(id, _)| *id == self.id) {
                return slot.clone();
            }
            // Slots of servers since dropped (only their cache holds them).
            mine.retain(|(_, s)| Arc::strong_count(s) > 1);
            let slot = Arc::new(Slot::default());
            self.all.lock().unwrap_or_else(|e| e.into_inner()).push(slot.clone());
            mine.push((self.id, slot.clone()));
            slot
        })
    }

    /// Every slot summed, latency sums in nanoseconds.
    pub(crate) fn totals(&self) -> CommandTotals {
        self.totals_with(ticks::clock())
    }

    fn totals_with(&self, clock: &Clock) -> CommandTotals {
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
        for l in t.latency.iter_mut() {
            l.sum_nanos = clock.nanos(l.sum_nanos);
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
    /// with.
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

/// A connection's handle on the slot of the thread it runs on.
#[derive(Debug)]
pub(crate) struct Counter {
    /// The thread `slot` belongs to ([`this_thread`]).
    thread: usize,
    slot: Arc<Slot>,
}

impl Counter {
    /// Before a batch: moves to this thread's slot if the task has moved
    /// since the last one, so a slot keeps a single writer.
    #[inline]
    pub(crate) fn on_this_thread(&mut self, slots: &Slots) {
        let here = this_thread();
        if here != self.thread {
            self.rebind(slots, here);
        }
    }

    #[cold]
    #[inline(never)]
    fn rebind(&mut self, slots: &Slots, here: usize) {
        self.thread = here;
        self.slot = slots.slot_here();
    }

    /// Counts a command answered with `status` after `ticks` of execution
    /// ([`ticks`]). Call [`Counter::on_this_thread`] first in each batch.
    #[inline]
    pub(crate) fn add(&self, clock: &Clock, opcode: u8, status: u8, error: bool, ticks: u64) {
        let slot = &*self.slot;
        let op = opcode as usize;
        bump(&slot.calls[op][status as usize & (STATUSES - 1)], 1);
        if error {
            bump(&slot.errors[op], 1);
        }
        slot.latency[op].observe_single_writer(bucket_raw_us(clock.micros(ticks)), ticks);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_count_apart_and_sum_on_read() {
        let clock = ticks::clock();
        let t = |ns| clock.ticks_in(std::time::Duration::from_nanos(ns));
        let slots = Arc::new(Slots::default());
        let other = Slots::default();
        let mut counter = slots.counter();
        counter.on_this_thread(&slots);
        counter.add(clock, 0x01, 0, false, t(1_500));
        counter.add(clock, 0x01, 0x0A, true, t(3_000));
        let mut elsewhere = other.counter();
        elsewhere.on_this_thread(&other);
        elsewhere.add(clock, 0x01, 0, false, t(1_500));
        elsewhere.add(clock, 0x01, 0x0A, true, t(3_000));
        let s = slots.clone();
        // A counter that moves to another thread writes that thread's slot.
        let counter = std::thread::spawn(move || {
            counter.on_this_thread(&s);
            counter.add(clock, 0x01, 0, false, t(100_000));
            counter.add(clock, 0x02, 0x01, true, t(10));
            counter
        })
        .join()
        .unwrap();
        assert_eq!(slots.all.lock().unwrap().len(), 2, "one slot per thread");
        assert!(Arc::ptr_eq(&counter.slot, &slots.all.lock().unwrap()[1]), "the second thread's slot");
        let sum = t(1_500) + t(3_000) + t(100_000);
        let t = slots.totals();
        assert_eq!(t.calls(0x01), 3);
        assert_eq!(t.errors(0x01), 1);
        assert_eq!(t.by_status(0x01).collect::<Vec<_>>(), vec![(0, 2), (0x0A, 1)]);
        assert_eq!(t.calls(0x02), 1);
        assert_eq!(t.total_calls(), 4);
        assert_eq!(t.latency(0x01).count(), 3);
        let nanos = t.latency(0x01).sum_nanos;
        assert_eq!(nanos, clock.nanos(sum), "summed in ticks ({sum}), read in nanoseconds");
        assert!(nanos.abs_diff(104_500) <= 3, "{nanos} ns");
        assert_eq!(t.latency(0x01).quantile_us(0.5), Some(4));
        assert_eq!(other.totals().total_calls(), 2, "another server's slots are its own");
    }
}
