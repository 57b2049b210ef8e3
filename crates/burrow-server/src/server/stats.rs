//! Counters reported by INFO. Relaxed atomics: exact totals, no ordering.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use burrow_proto::Opcode;

#[derive(Debug)]
pub(crate) struct Stats {
    calls: [AtomicU64; 256],
    errors: [AtomicU64; 256],
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
            calls: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
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
    /// Records a batch of per-opcode counts gathered on one connection.
    pub(crate) fn record(&self, batch: &BatchCounts) {
        for &(op, calls, errors) in &batch.entries {
            self.calls[op as usize].fetch_add(calls, Ordering::Relaxed);
            if errors > 0 {
                self.errors[op as usize].fetch_add(errors, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn calls(&self, opcode: u8) -> u64 {
        self.calls[opcode as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn errors(&self, opcode: u8) -> u64 {
        self.errors[opcode as usize].load(Ordering::Relaxed)
    }

    pub(crate) fn note_reads_waited(&self, n: usize) {
        self.reads_waited.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn reads_waited(&self) -> u64 {
        self.reads_waited.load(Ordering::Relaxed)
    }

    /// Calls of every opcode, known or not.
    pub(crate) fn total_calls(&self) -> u64 {
        self.calls.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Calls to opcodes this server does not know.
    pub(crate) fn unknown_calls(&self) -> u64 {
        (0..=255u8).filter(|b| Opcode::from_u8(*b).is_none()).map(|b| self.calls(b)).sum()
    }
}

/// Per-batch tally kept on the connection, so a pipelined batch touches the
/// shared counters once per distinct opcode instead of once per request.
#[derive(Debug, Default)]
pub(crate) struct BatchCounts {
    entries: Vec<(u8, u64, u64)>,
}

impl BatchCounts {
    pub(crate) fn add(&mut self, opcode: u8, error: bool) {
        let e = error as u64;
        match self.entries.iter_mut().find(|(op, _, _)| *op == opcode) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 += e;
            }
            None => self.entries.push((opcode, 1, e)),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
