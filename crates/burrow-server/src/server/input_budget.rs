//! The global budget for bytes buffered for incomplete large requests
//! (`--max-input-buffer`, issue 11): 64 connections each sending half of a
//! 16 MiB value held 527 MB with no bound.
//!
//! A connection whose next frame is larger than [`LARGE_FRAME`] reserves
//! the frame's whole length before it reads the rest of it, and gives the
//! reservation back once the frame is executed (or the connection ends).
//! When the budget has no room, the connection stops reading (TCP pushes
//! back on the client) until another reservation is returned. It cannot
//! deadlock: a reservation is all a connection needs to complete its
//! frame, waiting connections hold nothing, and a frame is granted when the
//! budget is empty whatever its size, so one frame larger than the budget
//! still gets through, alone.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Frames up to this size are read without a reservation: each connection
/// buffers at most about this much for them (its initial read buffer).
pub(crate) const LARGE_FRAME: usize = 64 * 1024;

/// Bytes reserved for incomplete large frames, across all connections.
#[derive(Debug)]
pub(crate) struct InputBudget {
    limit: usize,
    used: AtomicUsize,
    /// Reservations that had to wait for room.
    waits: AtomicU64,
    returned: Notify,
}

impl InputBudget {
    pub(crate) fn new(limit: usize) -> Self {
        InputBudget { limit, used: AtomicUsize::new(0), waits: AtomicU64::new(0), returned: Notify::new() }
    }

    /// Bytes reserved now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// How many reservations have waited for room so far.
    pub(crate) fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }

    /// Reserves `bytes` if there is room (or nothing is reserved at all).
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<Reservation<'_>> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used != 0 && used.saturating_add(bytes) > self.limit {
                return None;
            }
            match self.used.compare_exchange_weak(used, used + bytes, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return Some(Reservation { budget: self, bytes }),
                Err(now) => used = now,
            }
        }
    }

    /// Reserves `bytes`, waiting for room as long as it takes.
    pub(crate) async fn reserve(&self, bytes: usize) -> Reservation<'_> {
        if let Some(r) = self.try_reserve(bytes) {
            return r;
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            // Registered before the retry: a return between the two wakes it.
            returned.as_mut().enable();
            if let Some(r) = self.try_reserve(bytes) {
                return r;
            }
            returned.await;
        }
    }
}

/// Bytes held in an [`InputBudget`] until dropped.
#[derive(Debug)]
pub(crate) struct Reservation<'a> {
    budget: &'a InputBudget,
    bytes: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        // Every waiter retries: a small frame may fit where a large one does not.
        self.budget.returned.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_budget_refuses_until_a_reservation_is_returned() {
        let b = InputBudget::new(100);
        let first = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(50).is_none(), "60 + 50 is past the limit");
        let second = b.try_reserve(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(first);
        assert_eq!(b.used(), 40);
        assert!(b.try_reserve(50).is_some());
        drop(second);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn a_frame_larger_than_the_budget_passes_alone() {
        let b = InputBudget::new(100);
        let huge = b.try_reserve(1000).expect("an empty budget grants any size");
        assert!(b.try_reserve(1).is_none());
        drop(huge);
        assert_eq!(b.used(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reservation_gets_the_returned_room() {
        let b = std::sync::Arc::new(InputBudget::new(100));
        let held = b.try_reserve(80).unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                let r = b.reserve(50).await;
                drop(r);
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
        assert_eq!(b.waits(), 1);
        assert_eq!(b.used(), 0);
    }
}
