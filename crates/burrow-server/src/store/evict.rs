//! Eviction under `--maxmemory`: which key to drop when a write needs room.
//!
//! Approximate and sampled, as Redis does: each eviction picks a shard at
//! random and looks at `samples` keys there (`--maxmemory-samples`, 5 by
//! default) — a run of occupied buckets from a random position, which is a
//! random sample because bucket order follows the per-process seeded
//! hash — and drops the best candidate: the longest idle by the access
//! clock (`*-lru`, see `entry`'s clock), the soonest to expire
//! (`volatile-ttl`), or the first seen (`allkeys-random`). `volatile-*`
//! policies only look at keys with a TTL; with none left they evict
//! nothing and the write is refused, as under `noeviction`.
//!
//! An eviction is a logged `Del` made exactly as a client's DEL is
//! (`Store::write`): it reaches the WAL and followers in log order, so
//! followers never evict on their own and their data stays the leader's.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::apply::Shard;
use super::entry::{clock_at, idle};
use super::Store;
use crate::oplog::Op;
use crate::rng::SplitMix64;

/// `--maxmemory-policy`: what a write does when memory is at the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EvictionPolicy {
    /// Refuse the write with `OOM`.
    #[default]
    #[value(name = "noeviction")]
    NoEviction,
    /// Evict the least recently used of the sampled keys.
    AllkeysLru,
    /// As `allkeys-lru`, among keys with a TTL only.
    VolatileLru,
    /// Evict a random key.
    AllkeysRandom,
    /// Evict the sampled key with a TTL that expires soonest.
    VolatileTtl,
}

impl EvictionPolicy {
    /// The name `--maxmemory-policy` and INFO use.
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllkeysLru => "allkeys-lru",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::AllkeysRandom => "allkeys-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    /// Whether it reads the access clock.
    pub(crate) fn lru(self) -> bool {
        matches!(self, EvictionPolicy::AllkeysLru | EvictionPolicy::VolatileLru)
    }

    fn volatile(self) -> bool {
        matches!(self, EvictionPolicy::VolatileLru | EvictionPolicy::VolatileTtl)
    }
}

/// Why a write got no room (`OOM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "write refused: {used} bytes used + about {need} for this write would pass maxmemory {limit} (policy \
     {policy}{why}); delete keys or raise --maxmemory",
    policy = .policy.name(),
    why = reason(*.policy, *.need, *.limit)
)]
pub(crate) struct OutOfMemory {
    pub used: usize,
    pub need: usize,
    pub limit: usize,
    pub policy: EvictionPolicy,
}

/// What `OutOfMemory`'s message adds after the policy.
fn reason(policy: EvictionPolicy, need: usize, limit: usize) -> &'static str {
    if need > limit {
        ", and the write alone is larger"
    } else if policy == EvictionPolicy::NoEviction {
        ""
    } else {
        ", no key left that it may evict"
    }
}

/// How a write that needed room got it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Room {
    /// Keys evicted to make it (each a logged DEL).
    pub evicted: usize,
}

impl Store {
    /// Bytes the store holds by its own accounting (see `used`).
    pub(crate) fn used_memory(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Keys evicted since start.
    pub(crate) fn evicted_keys(&self) -> u64 {
        self.evicted_keys.load(Ordering::Relaxed)
    }

    /// Evicts keys by `policy` until `need` more bytes fit under `limit`.
    /// A write that could not fit even in an empty store is refused
    /// without evicting anything; under `volatile-*` the keys evicted
    /// before the TTL keys ran out stay evicted (as in Redis).
    pub(crate) fn make_room(
        &self,
        limit: usize,
        need: usize,
        policy: EvictionPolicy,
        samples: usize,
        now: u64,
    ) -> Result<Room, (OutOfMemory, Room)> {
        let mut room = Room::default();
        let oom = |used| OutOfMemory { used, need, limit, policy };
        if need > limit {
            return Err((oom(self.used_memory()), room));
        }
        let mut rng = SplitMix64::new(self.evict_seed.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed));
        loop {
            let used = self.used_memory();
            if used.saturating_add(need) <= limit {
                return Ok(room);
            }
            if policy == EvictionPolicy::NoEviction || !self.evict_one(policy, samples, now, &mut rng) {
                return Err((oom(used), room));
            }
            room.evicted += 1;
        }
    }

    /// Evicts one key chosen by `policy`; false when no key qualifies.
    fn evict_one(&self, policy: EvictionPolicy, samples: usize, now: u64, rng: &mut SplitMix64) -> bool {
        let n = self.shard_count();
        let start = rng.below(n as u64) as usize;
        for k in 0..n {
            let mut shard = self.lock((start + k) % n);
            if shard.len() == 0 || (policy.volatile() && shard.expires == 0) {
                continue;
            }
            let Some(bucket) = pick(&shard, policy, samples.max(1), clock_at(now), rng) else {
                continue;
            };
            let Some(key) = shard.table.get_bucket(bucket).map(|e| Bytes::copy_from_slice(e.key())) else {
                continue;
            };
            let (_, hash) = self.locate(&key);
            if self.write(&mut shard, hash, Some(bucket), Op::Del { key: &key }).is_ok() {
                self.evicted_keys.fetch_add(1, Ordering::Relaxed);
                return true;
            }
        }
        false
    }
}

/// The bucket of the best candidate among `samples` qualifying keys of
/// `shard`, read from a random bucket on (all buckets at most, so a
/// qualifying key is found if there is one).
fn pick(
    shard: &Shard,
    policy: EvictionPolicy,
    samples: usize,
    clock: u16,
    rng: &mut SplitMix64,
) -> Option<usize> {
    let buckets = shard.table.num_buckets();
    let start = rng.below(buckets as u64) as usize;
    let mut best: Option<(usize, u64)> = None;
    let mut seen = 0;
    for k in 0..buckets {
        let b = (start + k) % buckets;
        let Some(e) = shard.table.get_bucket(b) else { continue };
        // Higher is evicted first.
        let score = match policy {
            EvictionPolicy::AllkeysLru => u64::from(idle(clock, e.clock())),
            EvictionPolicy::VolatileLru if e.expire_at() != 0 => u64::from(idle(clock, e.clock())),
            EvictionPolicy::VolatileTtl if e.expire_at() != 0 => u64::MAX - e.expire_at(),
            EvictionPolicy::AllkeysRandom => 0,
            _ => continue,
        };
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((b, score));
        }
        seen += 1;
        if seen >= samples {
            break;
        }
    }
    best.map(|(b, _)| b)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::oplog::{OpLog, Records};
    use crate::store::{Replay, Replayed, SetArgs};

    const SEC: u64 = 1000;

    fn store() -> Store {
        let s = Store::new(4, Arc::new(OpLog::new(1 << 26)));
        s.set_lru(true);
        s
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i:06}").into_bytes()
    }

    fn set(s: &Store, i: usize, ttl_at: Option<u64>, now: u64) {
        let args = SetArgs {
            key: &key(i),
            value: &[b'v'; 100],
            expire_at: ttl_at,
            condition: Default::default(),
            keep_ttl: false,
        };
        s.set(args, now);
    }

    fn exists(s: &Store, i: usize, now: u64) -> bool {
        s.read(&key(i), now, |e| e.is_some())
    }

    /// A limit the store is at now.
    fn limit_for(s: &Store) -> usize {
        s.used_memory()
    }

    #[test]
    fn noeviction_refuses_and_changes_nothing_and_a_write_larger_than_the_limit_evicts_nothing() {
        let s = store();
        for i in 0..100 {
            set(&s, i, None, 0);
        }
        let limit = limit_for(&s);
        let last = s.log().last_index();
        let (oom, room) = s.make_room(limit, 200, EvictionPolicy::NoEviction, 5, 0).unwrap_err();
        assert_eq!((oom.used, oom.need, oom.limit, room.evicted), (limit, 200, limit, 0));
        assert_eq!((s.len(), s.log().last_index()), (100, last));
        assert_eq!(
            oom.to_string(),
            format!(
                "write refused: {limit} bytes used + about 200 for this write would pass maxmemory {limit} \
                 (policy noeviction); delete keys or raise --maxmemory"
            )
        );
        let (_, room) = s.make_room(limit, limit + 1, EvictionPolicy::AllkeysLru, 5, 0).unwrap_err();
        assert_eq!((room.evicted, s.len()), (0, 100), "nothing can make room for it: nothing evicted");
        assert_eq!(s.make_room(limit, 0, EvictionPolicy::NoEviction, 5, 0), Ok(Room::default()));
    }

    /// 1000 keys written at 0 s, 100 of them read at 10 s; making room for
    /// 200 keys evicts ~200 keys, nearly all of them never read.
    #[test]
    fn allkeys_lru_evicts_keys_not_read_and_keeps_recently_read_ones() {
        let s = store();
        for i in 0..1000 {
            set(&s, i, None, 0);
        }
        let limit = limit_for(&s);
        let per_key = limit / 1000;
        for i in 0..100 {
            assert!(exists(&s, i, 10 * SEC));
        }
        let room = s.make_room(limit, 200 * per_key, EvictionPolicy::AllkeysLru, 5, 11 * SEC).unwrap();
        assert!((195..=205).contains(&room.evicted), "{room:?}");
        assert_eq!(s.evicted_keys(), room.evicted as u64);
        let hot_kept = (0..100).filter(|i| exists(&s, *i, 11 * SEC)).count();
        // A read key is evicted only when all 5 samples were read: (1/10)^5 per eviction.
        assert!(hot_kept >= 98, "{hot_kept} of 100 recently read keys kept");
        assert!(s.used_memory() + 200 * per_key <= limit);
    }

    #[test]
    fn volatile_policies_evict_only_keys_with_a_ttl_and_then_refuse() {
        for policy in [EvictionPolicy::VolatileLru, EvictionPolicy::VolatileTtl] {
            let s = store();
            // Even keys expire, at 1000 s + i: the lower, the sooner.
            for i in 0..1000 {
                set(&s, i, (i % 2 == 0).then_some(1000 * SEC + i as u64), 0);
            }
            let limit = limit_for(&s);
            let per_key = limit / 1000;
            s.make_room(limit, 100 * per_key, policy, 5, SEC).unwrap();
            let gone: Vec<usize> = (0..1000).filter(|i| !exists(&s, *i, SEC)).collect();
            assert!(gone.len() >= 95 && gone.iter().all(|i| i % 2 == 0), "{policy:?}: {gone:?}");
            if policy == EvictionPolicy::VolatileTtl {
                // The best of 5 samples is in the soonest ~1/6 on average: well under the median.
                let mean = gone.iter().sum::<usize>() / gone.len();
                assert!(mean < 400, "{policy:?}: evicted keys' mean index {mean}");
            }
            // Past what the TTL keys hold: every one goes, then OOM; no persistent key is touched.
            let (oom, _) = s.make_room(limit, 900 * per_key, policy, 5, SEC).unwrap_err();
            assert_eq!(oom.policy, policy);
            assert_eq!(s.keyspace_stats().expires, 0);
            assert!((0..1000).filter(|i| i % 2 == 1).all(|i| exists(&s, i, SEC)), "{policy:?}");
        }
    }

    /// Each eviction is a logged DEL: replaying the log gives the same
    /// store (what followers and WAL recovery see), and the counter agrees
    /// with the shards.
    #[test]
    fn allkeys_random_stays_under_the_limit_and_its_evictions_replay() {
        let s = store();
        let limit = 64 << 10;
        for i in 0..5000 {
            let need = 6 + 100 + 48;
            s.make_room(limit, need, EvictionPolicy::AllkeysRandom, 5, 0).unwrap();
            set(&s, i, None, 0);
            assert!(s.used_memory() <= limit, "key {i}: {} over {limit}", s.used_memory());
        }
        assert!(s.evicted_keys() > 4000);
        assert_eq!(s.used_memory(), s.keyspace_stats().mem);
        let replica = store();
        let (records, _) = s.log().take_repl().expect("retaining");
        for rec in Records::new(&records) {
            assert_eq!(
                replica.replay(Replay::Replicated, None, &rec.unwrap().decode().unwrap()),
                Replayed::Applied
            );
        }
        assert_eq!(replica.digest(0), s.digest(0));
        assert_eq!(replica.used_memory(), s.used_memory());
    }
}
