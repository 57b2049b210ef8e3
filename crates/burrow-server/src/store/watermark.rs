//! Watermarks: for every key, an upper bound on the log index of its last
//! change, so a read can tell whether what it shows is durable (and, in
//! quorum mode, committed) yet, and have its reply wait until it is.
//!
//! **Granularity.** A change's visibility must be checked against the
//! durable or commit index, which lags the applied one; the read has to
//! know the index of the last change to what it read. Three choices:
//!
//! - *per key*: exact, but 8 bytes in every entry (we are at 84 B/key and
//!   must go down, issue 13) for a number only needed while the change is
//!   a few milliseconds old;
//! - *per shard* (one "highest index written" per shard): free per key, but
//!   with 16 shards and a mixed load under `--fsync always`, nearly every
//!   shard has a write waiting for the next fsync at any moment, so nearly
//!   every read of an unrelated key would wait for one too;
//! - *slots* (this): each shard keeps a small fixed array of watermarks and
//!   a key uses the one its hash selects. No bytes per key, 32 KiB per
//!   store in all ([`SLOTS_PER_STORE`]), and a read waits for an unrelated
//!   write only when the two keys share a slot: with `P` writes pending, a
//!   chance of about `P / 4096`.
//!
//! A slot only ever rises, under its shard's lock, to the index the change
//! got in the log (appended under the same lock), so a reader holding the
//! lock sees a value at or above the index of everything it can see.
//! Lazy and active expiry deletions do not raise it: an expired key reads
//! as absent whether or not its deletion survives a crash (expiries are
//! absolute). Records replayed from the WAL at start do not raise it
//! either: they are durable by definition.

/// Watermarks in a store, shared out among its shards (at least one each).
/// 4096 × 8 bytes: small enough to stay cache-resident.
pub(crate) const SLOTS_PER_STORE: usize = 4096;

/// One shard's watermarks.
#[derive(Debug)]
pub(crate) struct Watermarks {
    slots: Box<[u64]>,
    /// `slots.len() - 1` (a power of two).
    mask: u64,
}

impl Watermarks {
    /// The watermarks of one of `shards` shards (a power of two).
    pub(crate) fn for_shard_of(shards: usize) -> Watermarks {
        let n = (SLOTS_PER_STORE / shards.max(1)).max(1).next_power_of_two();
        Watermarks { slots: vec![0; n].into_boxed_slice(), mask: n as u64 - 1 }
    }

    /// The slot of a key by its fixed hash. The high bits: the low ones
    /// chose the shard. Fixed, not the seeded table hash, so which keys
    /// share a slot is the same in every run (tests stay deterministic).
    #[inline]
    fn slot(&self, hash: u64) -> usize {
        ((hash >> 32) & self.mask) as usize
    }

    /// An upper bound on the index of the last change to the key whose
    /// hash is `hash` (0: nothing since the start).
    #[inline]
    pub(crate) fn get(&self, hash: u64) -> u64 {
        self.slots[self.slot(hash)]
    }

    /// The key whose hash is `hash` changed at log index `index`.
    #[inline]
    pub(crate) fn raise(&mut self, hash: u64, index: u64) {
        let i = self.slot(hash);
        self.slots[i] = self.slots[i].max(index);
    }

    /// Every key changed at `index` (FLUSHALL).
    pub(crate) fn raise_all(&mut self, index: u64) {
        for s in self.slots.iter_mut() {
            *s = (*s).max(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_out_among_shards_and_never_fall() {
        assert_eq!(Watermarks::for_shard_of(16).slots.len(), 256);
        assert_eq!(Watermarks::for_shard_of(1).slots.len(), SLOTS_PER_STORE);
        assert_eq!(Watermarks::for_shard_of(1 << 16).slots.len(), 1);
        let mut w = Watermarks::for_shard_of(16);
        let (a, b) = (7u64 << 32, 8u64 << 32);
        w.raise(a, 10);
        w.raise(a, 4);
        assert_eq!((w.get(a), w.get(b)), (10, 0), "a lower index never lowers a slot");
        w.raise_all(12);
        assert_eq!((w.get(a), w.get(b)), (12, 12));
        // Only the hash's high bits choose: the low ones chose the shard.
        assert_eq!(w.get(a | 0xffff), w.get(a));
    }
}
