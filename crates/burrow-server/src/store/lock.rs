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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Spins this many times before yielding the thread to the lock holder.
const SPINS_BEFORE_YIELD: u32 = 64;

/// How long [`ShardLock::let_waiters_in`] waits for a waiter at most:
/// spins, then yields.
const HAND_OVER_YIELDS: u32 = 100;

pub(super) struct ShardLock<T> {
    locked: AtomicBool,
    /// Threads in `lock`'s slow path (see `let_waiters_in`).
    waiting: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: access to `data` is serialised by `locked` (acquire on lock,
// release on unlock), exactly as for a mutex.
unsafe impl<T: Send> Send for ShardLock<T> {}
unsafe impl<T: Send> Sync for ShardLock<T> {}

impl<T> ShardLock<T> {
    pub(super) fn new(data: T) -> ShardLock<T> {
        ShardLock { locked: AtomicBool::new(false), waiting: AtomicU32::new(0), data: UnsafeCell::new(data) }
    }

    pub(super) fn lock(&self) -> ShardGuard<'_, T> {
        if self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return ShardGuard { lock: self };
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let guard = self.lock_slow();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        guard
    }

    #[cold]
    fn lock_slow(&self) -> ShardGuard<'_, T> {
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

impl<T> ShardLock<T> {
    /// Called unlocked, by a thread about to lock again (a command that
    /// works in several holds): if others wait, lets one take the lock
    /// first. A spin lock is not fair, and a waiter that is yielding would
    /// otherwise miss the moment between an unlock and the next lock.
    pub(super) fn let_waiters_in(&self) {
        let mut spins = 0u32;
        while self.waiting.load(Ordering::Relaxed) > 0 && !self.locked.load(Ordering::Relaxed) {
            spins += 1;
            if spins < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
            } else if spins < SPINS_BEFORE_YIELD + HAND_OVER_YIELDS {
                std::thread::yield_now();
            } else {
                return;
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

    /// A holder that unlocks and locks again at once, letting waiters in
    /// between, is not first again while another thread waits.
    #[test]
    fn a_waiter_gets_the_lock_before_the_holder_takes_it_again() {
        let lock = Arc::new(ShardLock::new(Vec::new()));
        let guard = lock.lock();
        let waiter = {
            let lock = lock.clone();
            std::thread::spawn(move || lock.lock().push("waiter"))
        };
        while lock.waiting.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            std::thread::yield_now();
        }
        drop(guard);
        // `let_waiters_in` gives up after a while: loop until the waiter
        // is in, so a descheduled waiter cannot fail the test.
        while lock.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0 {
            lock.let_waiters_in();
        }
        lock.lock().push("holder");
        waiter.join().unwrap();
        assert_eq!(*lock.lock(), ["waiter", "holder"]);
    }
}
