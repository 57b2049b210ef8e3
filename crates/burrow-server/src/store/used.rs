//! Used memory: the sum of every shard's own accounting (`Shard::mem`,
//! see `Entry::mem_size`), kept in one counter so `--maxmemory` can check
//! it on every write without locking every shard.
//!
//! Every shard lock is taken through [`Tracked`], which remembers the
//! shard's figure when it locks and adds the difference to the counter
//! when it unlocks. So the counter is exact whenever no shard is locked,
//! and no change to the store, whoever makes it (a command, expiry,
//! replay, a FLUSHALL, loading a snapshot), can bypass it. A read changes
//! nothing and touches no shared cache line. Key reads (`Store::read_marked`)
//! skip the guard altogether — it cost ~7 instructions a GET — and account
//! the one change they can make, dropping an expired key, themselves.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::apply::Shard;
use super::lock::ShardGuard;

/// A locked shard whose memory changes reach the store's counter on unlock.
pub(super) struct Tracked<'a> {
    guard: ShardGuard<'a, Shard>,
    before: usize,
    used: &'a AtomicUsize,
}

impl<'a> Tracked<'a> {
    pub(super) fn new(guard: ShardGuard<'a, Shard>, used: &'a AtomicUsize) -> Tracked<'a> {
        Tracked { before: guard.mem, guard, used }
    }
}

impl Deref for Tracked<'_> {
    type Target = Shard;
    fn deref(&self) -> &Shard {
        &self.guard
    }
}

impl DerefMut for Tracked<'_> {
    fn deref_mut(&mut self) -> &mut Shard {
        &mut self.guard
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        // One branch: a shrink adds the two's-complement difference, which
        // the counter's wrapping addition turns into the subtraction.
        let delta = self.guard.mem.wrapping_sub(self.before);
        if delta != 0 {
            self.used.fetch_add(delta, Ordering::Relaxed);
        }
    }
}
