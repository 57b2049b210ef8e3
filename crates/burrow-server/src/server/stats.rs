//! Counters reported by INFO and `--metrics-addr`. Relaxed atomics: exact
//! totals, no ordering. Per-command counts and latencies live in one slot
//! per thread (`commands`), written without locked instructions and summed
//! when read.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use burrow_proto::Opcode;

use super::commands::Slots;
pub(crate) use super::commands::{CommandTotals, Counter};

#[derive(Debug)]
pub(crate) struct Stats {
    /// Calls, statuses and latencies per opcode, one slot per thread.
    commands: Slots,
    pub connected_clients: AtomicUsize,
    pub total_connections: AtomicU64,
    pub rejected_connections: AtomicU64,
    /// Connections closed because their framing broke (bad magic, oversize…).
    pub protocol_errors: AtomicU64,
    /// Read replies held back because they showed a write not yet durable
    /// or committed (`connection::durable`).
    reads_waited: AtomicU64,
    /// Writes refused with OOM (`--maxmemory`).
    pub oom_refusals: AtomicU64,
    /// When an OOM refusal was last logged (unix ms), to rate-limit the line.
    pub oom_logged_ms: AtomicU64,
    /// Connections closed because their unread replies passed
    /// `--client-output-*-limit`.
    pub killed_output_limit: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            commands: Slots::default(),
            connected_clients: AtomicUsize::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            reads_waited: AtomicU64::new(0),
            oom_refusals: AtomicU64::new(0),
            oom_logged_ms: AtomicU64::new(0),
            killed_output_limit: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// A connection's handle for counting its commands.
    pub(crate) fn counter(&self) -> Counter {
        self.commands.counter()
    }

    /// Before a batch: `counter` counts into this thread's slot.
    #[inline]
    pub(crate) fn on_this_thread(&self, counter: &mut Counter) {
        counter.on_this_thread(&self.commands);
    }

    /// Every opcode's calls, statuses and latencies, summed over threads.
    pub(crate) fn commands(&self) -> CommandTotals {
        self.commands.totals()
    }

    pub(crate) fn note_reads_waited(&self, n: usize) {
        self.reads_waited.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn reads_waited(&self) -> u64 {
        self.reads_waited.load(Ordering::Relaxed)
    }
}

/// Calls to opcodes this server does not know.
pub(crate) fn unknown_calls(totals: &CommandTotals) -> u64 {
    (0..=255u8).filter(|b| Opcode::from_u8(*b).is_none()).map(|b| totals.calls(b)).sum()
}
