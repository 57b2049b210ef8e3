//! Prefetching a pipelined request's probe while the one before it runs.
//!
//! A lookup in a large table misses the cache on the control bytes, on the
//! slot, and on the entry's block, one after the other (issue 13:
//! `Shard::find_index` was 19 % of the server's samples at pipeline 16).
//! The connection holds the next decoded request while it runs the current
//! one, so it can ask for the next key's control group and slots to be
//! fetched meanwhile: [`ProbeHint::prefetch`] issues `prefetch`
//! instructions only, without the shard lock and without loading anything.
//!
//! Without the lock it cannot read the table, so each shard publishes where
//! its table lives ([`ProbeHint`], two atomics outside the lock) whenever the
//! table is reallocated. A stale hint costs a useless prefetch, nothing
//! more: a prefetch never faults and never changes memory. The addresses
//! follow hashbrown's layout (slots stored downwards from the control
//! bytes, slot `i` ending at `ctrl - i * 8`); [`ProbeHint::publish`] derives
//! the control address from a live slot's address under the lock, and a
//! test checks the derivation against every slot.

use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;

use super::entry::Entry;

/// Where a shard's table lives, readable without its lock.
#[derive(Debug, Default)]
pub(crate) struct ProbeHint {
    /// Address of the control bytes (0: nothing to prefetch).
    ctrl: AtomicUsize,
    /// `num_buckets - 1`.
    mask: AtomicUsize,
}

const SLOT: usize = std::mem::size_of::<Entry>();

impl ProbeHint {
    /// Records `table`'s addresses. Called under the shard lock after
    /// anything that may reallocate it (an insert that grew it, a clear).
    pub(crate) fn publish(&self, table: &HashTable<Entry>) {
        let buckets = table.num_buckets();
        if buckets == self.mask.load(Ordering::Relaxed).wrapping_add(1)
            && self.ctrl.load(Ordering::Relaxed) != 0
        {
            return;
        }
        let ctrl = control_address(table).unwrap_or(0);
        self.ctrl.store(ctrl, Ordering::Relaxed);
        self.mask.store(buckets.wrapping_sub(1), Ordering::Relaxed);
    }

    /// Forgets the table (it was replaced by an empty one).
    pub(crate) fn reset(&self) {
        self.ctrl.store(0, Ordering::Relaxed);
    }

    /// Prefetches the control group and the first slots a lookup of `hash`
    /// reads (hashbrown: first group at `hash & mask`).
    #[inline(always)]
    pub(crate) fn prefetch(&self, hash: u64) {
        let ctrl = self.ctrl.load(Ordering::Relaxed);
        if ctrl == 0 {
            return;
        }
        let pos = hash as usize & self.mask.load(Ordering::Relaxed);
        prefetch_line(ctrl.wrapping_add(pos));
        // Slot `pos` occupies the SLOT bytes below `ctrl - pos * SLOT`; the
        // group's next slots lie further down.
        let slot = ctrl.wrapping_sub((pos + 1) * SLOT);
        prefetch_line(slot);
        prefetch_line(slot.wrapping_sub(64));
    }
}

/// The control bytes' address, from any occupied bucket's slot address.
fn control_address(table: &HashTable<Entry>) -> Option<usize> {
    let index = table.iter_buckets().next()?;
    let slot = table.get_bucket(index)? as *const Entry as usize;
    Some(slot + (index + 1) * SLOT)
}

/// A hint to the CPU to bring `addr`'s line into cache; no effect on
/// memory, valid for any address.
#[inline(always)]
pub(crate) fn prefetch_line(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of x86_64's baseline, and `prefetcht0`
        // neither faults nor changes memory, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(addr as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::entry::Value;
    use std::hash::BuildHasher;

    /// The derivation the prefetch relies on: slot `i` of hashbrown's
    /// table sits at `ctrl - (i + 1) * 8` for every occupied bucket, at
    /// every size the table grows through.
    #[test]
    fn the_published_control_address_locates_every_slot() {
        let hasher = foldhash::fast::FixedState::with_seed(7);
        let mut table = HashTable::new();
        let hint = ProbeHint::default();
        hint.publish(&table);
        assert_eq!(hint.ctrl.load(Ordering::Relaxed), 0, "an empty table has nothing to prefetch");
        hint.prefetch(12345);
        for i in 0..5000u32 {
            let key = i.to_le_bytes();
            table.insert_unique(hasher.hash_one(&key[..]), Entry::new(&key, Value::Str(b"v"), 0), |e| {
                hasher.hash_one(e.key())
            });
            hint.publish(&table);
            if !(i + 1).is_power_of_two() {
                continue;
            }
            let ctrl = hint.ctrl.load(Ordering::Relaxed);
            assert_eq!(hint.mask.load(Ordering::Relaxed) + 1, table.num_buckets());
            for b in table.iter_buckets() {
                let slot = table.get_bucket(b).unwrap() as *const Entry as usize;
                assert_eq!(slot, ctrl - (b + 1) * SLOT, "bucket {b} of {}", table.num_buckets());
            }
            hint.prefetch(u64::from(i) * 0x9e37_79b9);
        }
        hint.reset();
        hint.prefetch(1);
    }
}
