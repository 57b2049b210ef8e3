//! The sharded in-memory store.
//!
//! N shards, each a [`lock::ShardLock`] around a hash table. A key goes to a
//! shard by [`shard_for`]: a fixed, documented function, so a snapshot taken
//! with S shards can be matched against WAL records after a restart with any
//! shard count or hash seed. Inside a shard
//! the table uses a randomly seeded hash. Locks are held for one command at
//! a time and never across an `.await`.
//!
//! Every change goes through [`apply`] and, still under the shard lock, is
//! appended to the [`OpLog`], so per-key order equals log order; the index
//! it got raises the key's watermark ([`watermark`]), which reads report
//! so their replies can wait until what they show is durable or committed.

mod apply;
mod digest;
mod entry;
mod evict;
mod expiry;
mod lock;
mod prefetch;
mod replay;
mod scan;
pub(crate) use scan::glob_match;
mod steps;
mod used;
mod watermark;

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

pub(crate) use apply::{apply, Applied, ApplyError, Shard};
pub(crate) use entry::{format_int, List, Value, SHARED_VALUE};
pub use entry::{Entry, ValueRef};
pub use evict::EvictionPolicy;
pub(crate) use replay::{Replay, Replayed, ShardCovers};
pub(crate) use steps::{Resume, Step};

use crate::oplog::{Op, OpLog};
use burrow_proto::{End, SetCondition};
use lock::ShardLock;
use used::Tracked;

/// A key's two hashes: `table`, seeded per process, places it in its
/// shard's hash table; `fixed`, [`shard_for`]'s, picks its shard (low bits)
/// and its watermark (high bits), the same in every process.
#[derive(Debug, Clone, Copy)]
struct KeyHash {
    table: u64,
    fixed: u64,
}

/// Handle to the dataset; cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Store {
    shards: Box<[ShardLock<Shard>]>,
    /// Each shard's table address, readable without its lock (`prefetch`).
    hints: Box<[Arc<prefetch::ProbeHint>]>,
    hasher: foldhash::fast::FixedState,
    log: Arc<OpLog>,
    expired_keys: AtomicU64,
    /// Every shard's `mem`, summed (see `used`).
    used: AtomicUsize,
    /// Keys evicted under `--maxmemory` (see `evict`).
    evicted_keys: AtomicU64,
    /// Seeds each eviction's sampling.
    evict_seed: AtomicU64,
    /// Commands stamp keys' access clocks (`--maxmemory-policy *-lru`).
    lru: std::sync::atomic::AtomicBool,
    /// A follower's store: an expired key reads as absent but is not
    /// deleted here — the leader decides expiry and streams the DEL, so
    /// the follower's log never gets records of its own.
    replica: std::sync::atomic::AtomicBool,
}

/// Keyspace figures for INFO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeyspaceStats {
    pub keys: usize,
    pub expires: usize,
    pub mem: usize,
    pub expired_keys: u64,
}

/// SET as the client asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SetArgs<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    /// Absolute expiry (unix ms), if the client gave a TTL.
    pub expire_at: Option<u64>,
    pub condition: SetCondition,
    pub keep_ttl: bool,
}

impl Store {
    /// A store of `shards` shards (rounded up to a power of two, at least 1).
    pub(crate) fn new(shards: usize, log: Arc<OpLog>) -> Store {
        let n = shards.max(1).next_power_of_two();
        let hasher = foldhash::fast::FixedState::with_seed(seed());
        let hints: Box<[_]> = (0..n).map(|_| Arc::new(prefetch::ProbeHint::default())).collect();
        let shards = hints.iter().map(|h| ShardLock::new(Shard::new(hasher, n, h.clone()))).collect();
        Store {
            shards,
            hints,
            hasher,
            log,
            expired_keys: AtomicU64::new(0),
            used: AtomicUsize::new(0),
            evicted_keys: AtomicU64::new(0),
            evict_seed: AtomicU64::new(seed()),
            lru: std::sync::atomic::AtomicBool::new(false),
            replica: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Makes this a follower's store (see `replica`), or a leader's again.
    pub(crate) fn set_replica(&self, replica: bool) {
        self.replica.store(replica, Ordering::Relaxed);
    }

    /// Makes commands stamp the access clock `*-lru` eviction reads (a
    /// server sets it at start from `--maxmemory-policy`).
    pub(crate) fn set_lru(&self, lru: bool) {
        self.lru.store(lru, Ordering::Relaxed);
    }

    pub(crate) fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// Drops every key without logging anything: a follower replacing its
    /// dataset with the leader's snapshot.
    pub(crate) fn clear_unlogged(&self) {
        for i in 0..self.shards.len() {
            let old = self.lock(i).clear();
            drop(old);
        }
    }

    pub(crate) fn log(&self) -> &Arc<OpLog> {
        &self.log
    }

    /// The key's shard and its hashes. Inlined: with two callers per
    /// request (`prefetch` and the command) the hash would go out of line.
    #[inline(always)]
    fn locate(&self, key: &[u8]) -> (usize, KeyHash) {
        let fixed = fixed_hash(key);
        let shard = (fixed as usize) & (self.shards.len() - 1);
        (shard, KeyHash { table: self.hasher.hash_one(key), fixed })
    }

    /// Asks the CPU to fetch what a lookup of `key` will read first (its
    /// control group and slots), without locking: the connection calls it
    /// for the next pipelined request before running the current one
    /// (see `prefetch`).
    #[inline(always)]
    pub(crate) fn prefetch(&self, key: &[u8]) {
        let (index, hash) = self.locate(key);
        self.hints[index].prefetch(hash.table);
    }

    fn lock(&self, index: usize) -> Tracked<'_> {
        Tracked::new(self.shards[index].lock(), &self.used)
    }

    /// Locks the key's shard, stamps the key's access clock (under
    /// `*-lru`), drops the key if it has expired (logging the deletion),
    /// and runs `f` with the shard and the key's hash.
    /// `f` gets the shard, the key's hashes and the key's bucket (`None` if
    /// absent), so each command looks the key up once.
    fn with_key<R>(
        &self,
        key: &[u8],
        now: u64,
        f: impl FnOnce(&mut Shard, KeyHash, Option<usize>) -> R,
    ) -> R {
        let (index, hash) = self.locate(key);
        let mut shard = self.lock(index);
        let slot = self.prepare(&mut shard, hash, key, now, false);
        f(&mut shard, hash, slot)
    }

    /// What [`Store::with_key`] does before `f`: the key's bucket, after
    /// stamping its clock and dropping it if expired. `untracked`: the
    /// shard was locked without [`Tracked`] (a read), so dropping an
    /// expired key must reach the used-memory counter here.
    #[inline(always)]
    fn prepare(
        &self,
        shard: &mut Shard,
        hash: KeyHash,
        key: &[u8],
        now: u64,
        untracked: bool,
    ) -> Option<usize> {
        let slot = shard.find_index(hash.table, key);
        if self.lru.load(Ordering::Relaxed) {
            // Only `*-lru` reads the clock: other policies skip its cost
            // (~50 instructions a GET, callgrind).
            let clock = entry::clock_at(now);
            shard.clock = clock;
            if let Some(e) = slot.and_then(|i| shard.table.get_bucket_mut(i)) {
                e.touch(clock);
            }
        }
        let i = slot?;
        if !shard.table.get_bucket(i).is_some_and(|e| e.is_expired(now)) {
            return slot;
        }
        if !self.is_replica() {
            self.drop_expired(shard, i, key, untracked);
        }
        None
    }

    /// Lazy expiry: removes the expired key in `bucket` and logs its DEL.
    #[cold]
    fn drop_expired(&self, shard: &mut Shard, bucket: usize, key: &[u8], untracked: bool) {
        let before = shard.mem;
        shard.remove_at(bucket);
        if untracked {
            self.used.fetch_sub(before - shard.mem, Ordering::Relaxed);
        }
        self.log.append(&Op::Del { key });
        self.expired_keys.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies a live write: `apply`, then log it if it changed anything.
    /// Inlined: each caller passes one known `Op` variant, which inlining
    /// specialises (callgrind SET P16: ~40 instructions a write when a
    /// build happened to leave it out of line).
    #[inline]
    fn write(
        &self,
        shard: &mut Shard,
        hash: KeyHash,
        slot: Option<usize>,
        op: Op<&[u8]>,
    ) -> Result<Applied, ApplyError> {
        let applied = apply(shard, hash.table, slot, &op)?;
        let index = self.log.append(&op);
        shard.marks.raise(hash.fixed, index);
        Ok(applied)
    }

    /// Runs `f` on the live value of `key` (expired keys are never seen).
    #[cfg(test)]
    pub(crate) fn read<R>(&self, key: &[u8], now: u64, f: impl FnOnce(Option<&Entry>) -> R) -> R {
        self.read_marked(key, now, f).0
    }

    /// Like [`Store::read`], also returning the key's watermark: every
    /// change `f` could have seen has a log index at or below it.
    #[inline]
    pub(crate) fn read_marked<R>(
        &self,
        key: &[u8],
        now: u64,
        f: impl FnOnce(Option<&Entry>) -> R,
    ) -> (R, u64) {
        let (index, hash) = self.locate(key);
        // A read changes no memory, so it skips `Tracked`'s accounting
        // (~7 instructions a GET); `prepare` accounts a lazy expiry's removal.
        let mut shard = self.shards[index].lock();
        let slot = self.prepare(&mut shard, hash, key, now, true);
        (f(slot.and_then(|i| shard.table.get_bucket(i))), shard.marks.get(hash.fixed))
    }

    /// SET. `Ok(false)` when NX/XX prevented the write.
    pub(crate) fn set(&self, args: SetArgs<'_>, now: u64) -> bool {
        let SetArgs { key, value, expire_at, condition, keep_ttl } = args;
        self.with_key(key, now, |shard, hash, slot| {
            let existing = slot.and_then(|i| shard.table.get_bucket(i));
            let allowed = match condition {
                SetCondition::Always => true,
                SetCondition::IfAbsent => existing.is_none(),
                SetCondition::IfPresent => existing.is_some(),
            };
            if !allowed {
                return false;
            }
            let expire_at = match (expire_at, keep_ttl) {
                (Some(at), _) => at,
                (None, true) => existing.map_or(0, |e| e.expire_at()),
                (None, false) => 0,
            };
            self.write(shard, hash, slot, Op::Set { key, value, expire_at }).expect("SET cannot fail");
            true
        })
    }

    /// DEL: whether the key existed.
    pub(crate) fn del(&self, key: &[u8], now: u64) -> bool {
        self.with_key(key, now, |shard, hash, slot| {
            slot.is_some() && self.write(shard, hash, slot, Op::Del { key }).is_ok()
        })
    }

    /// EXPIRE with a TTL relative to `now`; zero or negative deletes the key.
    pub(crate) fn expire(&self, key: &[u8], ttl_ms: i64, now: u64) -> bool {
        self.with_key(key, now, |shard, hash, slot| {
            if slot.is_none() {
                return false;
            }
            let op = if ttl_ms <= 0 {
                Op::Del { key }
            } else {
                Op::Expire { key, at: now.saturating_add(ttl_ms as u64) }
            };
            self.write(shard, hash, slot, op).is_ok()
        })
    }

    /// PERSIST: whether a TTL was removed.
    pub(crate) fn persist(&self, key: &[u8], now: u64) -> bool {
        self.with_key(key, now, |shard, hash, slot| {
            let has_ttl = slot.and_then(|i| shard.table.get_bucket(i)).is_some_and(|e| e.expire_at() != 0);
            has_ttl && self.write(shard, hash, slot, Op::Persist { key }).is_ok()
        })
    }

    /// INCRBY: the new value, or why nothing changed.
    pub(crate) fn incr_by(&self, key: &[u8], delta: i64, now: u64) -> Result<i64, ApplyError> {
        self.with_key(key, now, |shard, hash, slot| {
            match self.write(shard, hash, slot, Op::IncrBy { key, delta })? {
                Applied::Int(n) => Ok(n),
                other => unreachable!("INCRBY applied as {other:?}"),
            }
        })
    }

    /// LPUSH/RPUSH: the new length.
    pub(crate) fn push(&self, key: &[u8], end: End, values: Vec<&[u8]>, now: u64) -> Result<i64, ApplyError> {
        self.with_key(key, now, |shard, hash, slot| {
            match self.write(shard, hash, slot, Op::Push { key, end, values })? {
                Applied::Int(n) => Ok(n),
                other => unreachable!("PUSH applied as {other:?}"),
            }
        })
    }

    /// LPOP/RPOP: up to `count` values; empty when the key is missing.
    /// With `max_reply`, the pop is refused, before anything is taken, if
    /// the values as an ARRAY body would be larger (a refused command
    /// changes nothing, so the check cannot wait for the reply).
    pub(crate) fn pop(
        &self,
        key: &[u8],
        end: End,
        count: u32,
        now: u64,
        max_reply: Option<usize>,
    ) -> Result<Vec<Bytes>, PopRefusal> {
        self.with_key(key, now, |shard, hash, slot| {
            let list = match slot.and_then(|i| shard.table.get_bucket(i)) {
                None => return Ok(Vec::new()),
                Some(e) => match e.value() {
                    ValueRef::List(l) => l,
                    _ => return Err(ApplyError::WrongType.into()),
                },
            };
            let count = count.min(list.len() as u32);
            if count == 0 {
                return Ok(Vec::new());
            }
            if let Some(max) = max_reply {
                let bytes = popped_array_len(list, end, count as usize);
                if bytes > max {
                    return Err(PopRefusal::TooLarge { bytes, max });
                }
            }
            match self.write(shard, hash, slot, Op::Pop { key, end, count })? {
                Applied::Popped(v) => Ok(v),
                other => unreachable!("POP applied as {other:?}"),
            }
        })
    }

    /// FLUSHALL: one logged record; every shard is locked (in order) while
    /// it applies, and the entries are freed after.
    pub(crate) fn flush_all(&self) {
        let mut guards: Vec<_> = (0..self.shards.len()).map(|i| self.lock(i)).collect();
        let old: Vec<_> = guards.iter_mut().map(|shard| shard.clear()).collect();
        let index = self.log.append(&Op::<&[u8]>::FlushAll);
        for shard in guards.iter_mut() {
            shard.marks.raise_all(index);
        }
        drop(guards);
        // The entries are freed with every lock released (see `Shard::clear`).
        drop(old);
    }

    /// Logs a NOOP of `term` (issue 10: a new leader's first record, so
    /// that earlier records commit, Raft §5.4.2). It changes no key, so no
    /// shard lock is needed; it reaches the WAL and followers like any
    /// write (wake the streamer with `Replication::appended`). Returns its
    /// index.
    pub(crate) fn append_noop(&self, term: u64) -> u64 {
        self.log.append_noop(term)
    }

    pub(crate) fn load(&self, entry: Entry) {
        let (i, hash) = self.locate(entry.key());
        let mut shard = self.lock(i);
        if let Some(b) = shard.find_index(hash.table, entry.key()) {
            shard.remove_at(b);
        }
        shard.insert(hash.table, entry);
    }

    /// Removes every entry whose key fails `keep`. Not logged (recovery only).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&[u8]) -> bool) {
        for i in 0..self.shards.len() {
            let mut shard = self.lock(i);
            let doomed: Vec<usize> = (0..shard.table.num_buckets())
                .filter(|b| shard.table.get_bucket(*b).is_some_and(|e| !keep(e.key())))
                .collect();
            for b in doomed {
                shard.remove_at(b);
            }
        }
    }

    /// Runs `f` on every entry of shard `index` under its lock and returns
    /// the log index the shard's contents correspond to: every op on this
    /// shard with a lower or equal index is included, none above it.
    pub(crate) fn export_shard(&self, index: usize, mut f: impl FnMut(&Entry)) -> u64 {
        let shard = self.lock(index);
        // Writes append to the log while holding their shard's lock, so
        // while we hold this one the log cannot gain an op for this shard.
        let covers = self.log.last_index();
        for e in shard.table.iter() {
            f(e);
        }
        covers
    }

    /// Number of keys (expired keys not yet swept included, as in Redis).
    pub(crate) fn len(&self) -> usize {
        (0..self.shards.len()).map(|i| self.lock(i).len()).sum()
    }

    pub(crate) fn keyspace_stats(&self) -> KeyspaceStats {
        let mut s =
            KeyspaceStats { expired_keys: self.expired_keys.load(Ordering::Relaxed), ..Default::default() };
        for i in 0..self.shards.len() {
            let shard = self.lock(i);
            s.keys += shard.len();
            s.expires += shard.expires;
            s.mem += shard.mem;
        }
        s
    }
}

/// Why LPOP/RPOP took nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PopRefusal {
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error("reply would be {bytes} bytes, over the {max}-byte reply limit; ask for fewer items")]
    TooLarge { bytes: usize, max: usize },
}

/// The ARRAY body (`burrow_proto::encoded_array_len`) of the `n` items a
/// pop from `end` would take, without taking them.
fn popped_array_len(list: &List, end: End, n: usize) -> usize {
    4 + match end {
        End::Left => list.iter().take(n).map(|v| 4 + v.len()).sum::<usize>(),
        End::Right => list.iter().rev().take(n).map(|v| 4 + v.len()).sum::<usize>(),
    }
}

/// The shard a key belongs to among `shards` (a power of two). Part of the
/// snapshot format (protocol.md §11), so it is a fixed function, not the
/// randomly seeded table hash: FNV-1a over the key's bytes taken 8 at a time
/// (little-endian words, the last one zero-padded), then MurmurHash3's
/// 64-bit finalizer (a multiply only carries entropy upwards; the finalizer
/// brings it back down to the low bits used here).
pub fn shard_for(key: &[u8], shards: usize) -> usize {
    (fixed_hash(key) as usize) & (shards - 1)
}

/// [`shard_for`]'s 64-bit hash of `key`, before it is cut to a shard.
fn fixed_hash(key: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET ^ key.len() as u64;
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes"))).wrapping_mul(PRIME);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(last)).wrapping_mul(PRIME);
    }
    fmix64(h)
}

/// MurmurHash3's 64-bit finalizer.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A per-process hash seed, so bucket order (and SCAN order) is not predictable.
fn seed() -> u64 {
    use std::collections::hash_map::RandomState;
    RandomState::new().hash_one(0x6275_7272_6f77u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::Records;
    use proptest::prelude::*;

    /// Sorted contents, for comparing two stores.
    fn dump(store: &Store) -> Vec<(Vec<u8>, String, u64)> {
        let mut out = Vec::new();
        for i in 0..store.shard_count() {
            let shard = store.lock(i);
            for e in shard.table.iter() {
                out.push((e.key().to_vec(), format!("{:?}", e.value()), e.expire_at()));
            }
        }
        out.sort();
        out
    }

    #[derive(Debug, Clone)]
    enum Cmd {
        Set(u8, u8, Option<u64>, SetCondition, bool),
        Del(u8),
        /// A read: drops the key if expired, outside `Tracked` (see `used`).
        Get(u8),
        Expire(u8, i64),
        Persist(u8),
        Incr(u8, i64),
        Push(u8, bool, Vec<u8>),
        Pop(u8, bool, u32),
        Flush,
        /// A new leader's NOOP, of the next term.
        Noop,
    }

    fn cmd() -> impl Strategy<Value = Cmd> {
        let key = 0u8..6;
        let cond = prop_oneof![
            Just(SetCondition::Always),
            Just(SetCondition::IfAbsent),
            Just(SetCondition::IfPresent)
        ];
        prop_oneof![
            4 => (key.clone(), any::<u8>(), proptest::option::of(1u64..50), cond, any::<bool>())
                .prop_map(|(k, v, t, c, keep)| Cmd::Set(k, v, t, c, keep)),
            1 => key.clone().prop_map(Cmd::Del),
            2 => key.clone().prop_map(Cmd::Get),
            1 => (key.clone(), -5i64..50).prop_map(|(k, t)| Cmd::Expire(k, t)),
            1 => key.clone().prop_map(Cmd::Persist),
            3 => (key.clone(), prop_oneof![Just(i64::MAX), Just(i64::MIN), -3i64..3]).prop_map(|(k, d)| Cmd::Incr(k, d)),
            3 => (key.clone(), any::<bool>(), proptest::collection::vec(any::<u8>(), 1..4))
                .prop_map(|(k, l, v)| Cmd::Push(k, l, v)),
            2 => (key, any::<bool>(), 0u32..4).prop_map(|(k, l, n)| Cmd::Pop(k, l, n)),
            1 => Just(Cmd::Flush),
            1 => Just(Cmd::Noop),
        ]
    }

    fn end(left: bool) -> End {
        if left {
            End::Left
        } else {
            End::Right
        }
    }

    proptest! {
        /// Replaying the op log into an empty store rebuilds exactly the same
        /// data: the property WAL recovery and followers depend on.
        #[test]
        fn replaying_the_log_reproduces_the_store(cmds in proptest::collection::vec((cmd(), 0u64..3), 1..120)) {
            let log = Arc::new(OpLog::new(1 << 24));
            let live = Store::new(4, log.clone());
            let mut now = 1_000u64;
            for (c, dt) in cmds {
                now += dt * 10;
                let k = |k: u8| Bytes::from(vec![b'k', k]);
                match c {
                    Cmd::Set(key, v, ttl, condition, keep_ttl) => {
                        let expire_at = ttl.map(|t| now + t);
                        live.set(SetArgs { key: &k(key), value: &[v], expire_at, condition, keep_ttl: keep_ttl && ttl.is_none() }, now);
                    }
                    Cmd::Del(key) => { live.del(&k(key), now); }
                    Cmd::Get(key) => { live.read(&k(key), now, |_| ()); }
                    Cmd::Expire(key, t) => { live.expire(&k(key), t, now); }
                    Cmd::Persist(key) => { live.persist(&k(key), now); }
                    Cmd::Incr(key, d) => { let _ = live.incr_by(&k(key), d, now); }
                    Cmd::Push(key, l, vals) => {
                        let vals: Vec<[u8; 1]> = vals.into_iter().map(|v| [v]).collect();
                        let _ = live.push(&k(key), end(l), vals.iter().map(|v| &v[..]).collect(), now);
                    }
                    Cmd::Pop(key, l, n) => { let _ = live.pop(&k(key), end(l), n, now, None); }
                    Cmd::Flush => live.flush_all(),
                    Cmd::Noop => {
                        let term = live.log().stats().term + 1;
                        live.append_noop(term);
                    }
                }
                if now.is_multiple_of(7) {
                    live.sweep_expired(now, 16);
                }
            }
            let replica = Store::new(8, Arc::new(OpLog::new(1 << 24)));
            let (records, first) = log.take_repl().expect("retaining");
            prop_assert_eq!(first, 1, "the queue holds everything");
            for (i, rec) in Records::new(&records).enumerate() {
                let rec = rec.unwrap().decode().unwrap();
                prop_assert_eq!(rec.index, i as u64 + 1);
                prop_assert_eq!(replica.replay(Replay::Recovery, None, &rec), Replayed::Applied);
            }
            prop_assert_eq!(replica.log().last_index(), log.last_index());
            prop_assert_eq!(dump(&live), dump(&replica));
            prop_assert_eq!(live.keyspace_stats().expires, replica.keyspace_stats().expires);
            prop_assert_eq!(live.keyspace_stats().keys, replica.keyspace_stats().keys);
            // The counter `--maxmemory` reads agrees with the shards' own sums.
            prop_assert_eq!(live.used_memory(), live.keyspace_stats().mem);
            prop_assert_eq!(replica.used_memory(), replica.keyspace_stats().mem);
        }
    }

    /// Two keys in different shards (never sharing a watermark slot).
    fn keys_in_two_shards(shards: usize) -> (Bytes, Bytes) {
        let key = |i: u32| Bytes::from(format!("key{i}"));
        let a = key(0);
        let b = (1..).map(key).find(|k| shard_for(k, shards) != shard_for(&a, shards)).unwrap();
        (a, b)
    }

    #[test]
    fn a_write_raises_its_keys_watermark_to_its_index_and_no_other_shards() {
        let store = Store::new(16, Arc::new(OpLog::new(1 << 20)));
        let mark = |k: &[u8], now: u64| store.read_marked(k, now, |_| ()).1;
        let (a, b) = keys_in_two_shards(16);
        let set = |k: &Bytes, expire_at: Option<u64>| {
            let args =
                SetArgs { key: k, value: b"1", expire_at, condition: SetCondition::Always, keep_ttl: false };
            store.set(args, 0);
            store.log().last_index()
        };
        assert_eq!(mark(&a, 0), 0, "nothing written yet");
        let at = set(&a, Some(100));
        assert_eq!((mark(&a, 0), mark(&b, 0)), (at, 0));
        // A refused write logs nothing and raises nothing.
        store.push(&b, End::Left, vec![b"x"], 0).unwrap();
        let pushed = store.log().last_index();
        assert!(store.incr_by(&b, 1, 0).is_err());
        assert_eq!((mark(&a, 0), mark(&b, 0)), (at, pushed));
        // Reading past the expiry logs the deletion but leaves the mark:
        // the key reads as absent whether the deletion survives or not.
        assert_eq!(mark(&a, 200), at);
        assert!(store.log().last_index() > pushed, "the lazy expiry was logged");
        store.flush_all();
        let flushed = store.log().last_index();
        assert_eq!((mark(&a, 0), mark(&b, 0)), (flushed, flushed));
    }

    #[test]
    fn a_noop_changes_nothing_and_carries_its_term_into_the_log() {
        let log = Arc::new(OpLog::new(1 << 20));
        let store = Store::new(4, log.clone());
        let args = |k| SetArgs {
            key: k,
            value: b"1",
            expire_at: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        };
        store.set(args(b"a"), 0);
        let before = dump(&store);
        assert_eq!(store.append_noop(4), 2);
        assert_eq!(dump(&store), before, "a NOOP changes no key");
        store.set(args(b"b"), 0);
        let (records, first) = log.take_repl().expect("retaining");
        assert_eq!(first, 1);
        let got: Vec<(u64, u64, bool)> = Records::new(&records)
            .map(|r| r.unwrap().decode().unwrap())
            .map(|r| (r.term, r.index, r.op == Op::Noop))
            .collect();
        assert_eq!(got, vec![(1, 1, false), (4, 2, true), (4, 3, false)], "later writes carry its term");
        // Replayed (recovery or a follower), it moves the index and nothing else.
        let replica = Store::new(4, Arc::new(OpLog::new(1 << 20)));
        for rec in Records::new(&records) {
            let rec = rec.unwrap().decode().unwrap();
            assert_eq!(replica.replay(Replay::Replicated, None, &rec), Replayed::Applied);
        }
        assert_eq!(replica.log().last_index(), 3);
        assert_eq!(dump(&replica), dump(&store));
    }

    #[test]
    fn replicated_records_raise_watermarks_and_recovered_ones_do_not() {
        let (a, b) = keys_in_two_shards(16);
        let rec = |index: u64, key: &Bytes| crate::oplog::Record {
            term: 1,
            index,
            op: Op::Set { key: key.clone(), value: Bytes::from_static(b"v"), expire_at: 0 },
        };
        let store = Store::new(16, Arc::new(OpLog::new(1 << 20)));
        store.replay(Replay::Recovery, None, &rec(1, &a));
        store.replay(Replay::Replicated, None, &rec(2, &b));
        let mark = |k: &[u8]| store.read_marked(k, 0, |_| ()).1;
        assert_eq!((mark(&a), mark(&b)), (0, 2));
    }

    #[test]
    fn memory_accounting_returns_to_zero_when_everything_is_deleted() {
        let store = Store::new(2, Arc::new(OpLog::new(1 << 20)));
        let k = Bytes::from_static(b"q");
        for i in 0..100 {
            store.push(&k, End::Right, vec![&vec![0u8; i][..]], 0).unwrap();
        }
        store.incr_by(&Bytes::from_static(b"n"), 5, 0).unwrap();
        store.expire(&Bytes::from_static(b"n"), 1000, 0);
        assert!(store.keyspace_stats().mem > 5000);
        store.pop(&k, End::Left, 60, 0, None).unwrap();
        store.pop(&k, End::Right, 60, 0, None).unwrap();
        store.del(&Bytes::from_static(b"n"), 0);
        assert_eq!(store.keyspace_stats(), KeyspaceStats::default());
    }
}

#[cfg(test)]
mod shard_tests {
    use super::shard_for;

    /// Pins the documented function (protocol.md §11): changing it would make
    /// existing snapshots replay against the wrong covered indexes.
    #[test]
    fn the_shard_function_is_the_documented_one() {
        let cases: [(&[u8], usize); 5] =
            [(b"", 0), (b"a", 0), (b"key:000000000042", 0), (b"user:1", 0), (b"0123456789abcdefX", 0)];
        let got: Vec<usize> = cases.iter().map(|(k, _)| shard_for(k, 1 << 16)).collect();
        // Reference values computed by the formula in protocol.md.
        let reference = |key: &[u8]| -> usize {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ key.len() as u64;
            for chunk in key.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                h = (h ^ u64::from_le_bytes(w)).wrapping_mul(0x100_0000_01b3);
            }
            h ^= h >> 33;
            h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
            h ^= h >> 33;
            h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            ((h ^ (h >> 33)) & 0xffff) as usize
        };
        let want: Vec<usize> = cases.iter().map(|(k, _)| reference(k)).collect();
        assert_eq!(got, want);
        assert_eq!(shard_for(b"anything", 1), 0);
        // Spread: 4096 sequential keys over 16 shards, none empty or hogging.
        let mut counts = [0usize; 16];
        for i in 0..4096 {
            counts[shard_for(format!("key:{i:012}").as_bytes(), 16)] += 1;
        }
        assert!(counts.iter().all(|&c| (128..=384).contains(&c)), "{counts:?}");
    }
}
