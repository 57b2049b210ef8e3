//! The shard lock: a test-and-set spin lock that yields while it waits.
//!
//! Critical sections are one command against one shard (no I/O, no
//! `.await`), so waits are short and rare. What matters is the uncontended
//! cost: `std::sync::Mutex` unlocks with an atomic swap — a full barrier
//! that, profiled under pipelined GETs, took about a quarter of the server's
//! cycles draining the stores made while the lock was held. Here an unlock
//! is a plain release store.
//!
//! Unlike `std::sync::Mutex` it does not poison: a panic inside a critical
//! section would unlock a half-updated shard. Release builds therefore set
//! `panic = "abort"` (workspace `Cargo.toml`): a panic ends the process and
//! recovery starts from what the WAL and snapshots hold.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins this many times before yielding the thread to the lock holder.
const SPINS_BEFORE_YIELD: u32 = 64;

pub(super) struct ShardLock<T> {
    locked: AtomicBool,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `locked` (acquire on lock,
// release on unlock), exactly as for a mutex.
unsafe impl<T: Send> Send for ShardLock<T> {}
unsafe impl<T: Send> Sync for ShardLock<T> {}

impl<T> ShardLock<T> {
    pub(super) fn new(data: T) -> ShardLock<T> {
        ShardLock { locked: AtomicBool::new(false), data: UnsafeCell::new(data) }
    }

    pub(super) fn lock(&self) -> ShardGuard<'_, T> {
        let mut spins = 0u32;
        loop {
            if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                return ShardGuard { lock: self };
            }
            // Wait until it looks free before trying again (no write traffic).
            while self.locked.load(Ordering::Relaxed) {
                spins += 1;
                if spins < SPINS_BEFORE_YIELD {
                    std::hint::spin_loop();
                } else {
                    // The holder may have been preempted: let it run.
                    std::thread::yield_now();
                }
            }
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for ShardLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardLock").field("locked", &self.locked.load(Ordering::Relaxed)).finish()
    }
}

pub(super) struct ShardGuard<'a, T> {
    lock: &'a ShardLock<T>,
}

impl<T> Deref for ShardGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while `locked` is held by us.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for ShardGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this access unique.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for ShardGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::ShardLock;
    use std::sync::Arc;

    #[test]
    fn threads_never_lose_an_increment() {
        let lock = Arc::new(ShardLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 200_000);
    }
}
