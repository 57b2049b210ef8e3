//! Active expiry: a periodic sweep that reclaims expired keys nobody reads.
//!
//! Each pass looks at a bounded number of buckets per shard, resuming where
//! the previous pass stopped, and only in shards that hold keys with a TTL.
//! The caller repeats passes while many of the keys seen were expired (as
//! Redis does), within a time budget. Each removal is a logged `Del`.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::Store;
use crate::oplog::Op;

/// What one sweep pass saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SweepStats {
    /// Keys with a TTL that were looked at.
    pub sampled: usize,
    /// Of those, expired keys removed.
    pub removed: usize,
}

impl Store {
    /// Looks at up to `buckets_per_shard` buckets in every shard that has keys
    /// with a TTL and removes the expired ones.
    pub(crate) fn sweep_expired(&self, now: u64, buckets_per_shard: usize) -> SweepStats {
        let mut stats = SweepStats::default();
        for i in 0..self.shard_count() {
            let mut shard = self.lock(i);
            if shard.expires == 0 {
                continue;
            }
            let buckets = shard.table.num_buckets();
            let mut pos = shard.sweep_pos % buckets.max(1);
            for _ in 0..buckets_per_shard.min(buckets) {
                let expired = match shard.table.get_bucket(pos) {
                    Some(e) if e.expire_at() != 0 => {
                        stats.sampled += 1;
                        e.is_expired(now).then(|| Bytes::copy_from_slice(e.key()))
                    }
                    _ => None,
                };
                if let Some(key) = expired {
                    shard.remove_at(pos);
                    self.log.append(&Op::Del { key });
                    stats.removed += 1;
                }
                pos = (pos + 1) % buckets;
            }
            shard.sweep_pos = pos;
        }
        self.expired_keys.fetch_add(stats.removed as u64, Ordering::Relaxed);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::OpLog;
    use crate::store::SetArgs;
    use std::sync::Arc;

    #[test]
    fn repeated_sweeps_reclaim_every_expired_key_and_log_each() {
        let log = Arc::new(OpLog::new(1 << 24));
        let store = Store::new(4, log.clone());
        for i in 0..2000u64 {
            let expire_at = if i % 2 == 0 { Some(100) } else { None };
            let key = Bytes::from(format!("k{i}"));
            store.set(
                SetArgs { key: &key, value: b"", expire_at, condition: Default::default(), keep_ttl: false },
                0,
            );
        }
        let before = log.stats().last_index;
        // Not yet expired: nothing removed.
        assert_eq!(store.sweep_expired(50, 10_000).removed, 0);
        let mut removed = 0;
        for _ in 0..100 {
            removed += store.sweep_expired(100, 64).removed;
        }
        assert_eq!(removed, 1000);
        assert_eq!(store.len(), 1000);
        assert_eq!(store.keyspace_stats().expires, 0);
        assert_eq!(log.stats().last_index, before + 1000);
    }
}
