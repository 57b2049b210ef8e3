//! `--maxmemory`: room for a write before it runs.
//!
//! **The check.** A write that can grow the data set — SET, INCR, DECR,
//! INCRBY, LPUSH, RPUSH — runs only if the memory used (the store's own
//! accounting, INFO `used_memory`) plus an upper bound of what it adds
//! fits under the limit. The bound comes from the request alone, as if the
//! key were new: its key and value bytes plus an entry's overhead. So it
//! costs one atomic load and no lookup, and the store never passes the
//! limit by more than the accounting's own error — unlike Redis, which
//! checks `used > maxmemory` before the command and lets one command
//! overshoot by its whole size. An overwrite is counted as if new: at the
//! limit, `noeviction` refuses a SET that would replace a value of the same
//! size. Commands that cannot grow it by more than a few bytes — DEL,
//! LPOP/RPOP, EXPIRE, PERSIST, FLUSHALL — are never refused, so a full
//! server can always be emptied. Reads are never refused.
//!
//! **Eviction.** Under an eviction policy the write first evicts keys
//! (`store::evict`) until it fits, then runs. It is refused with `OOM`
//! when the policy is `noeviction`, when no key qualifies (`volatile-*`
//! with no TTL left), or when the write alone is larger than the limit
//! (then nothing is evicted).
//!
//! Only a node that takes writes gets here — a leader or a standalone
//! server (`refusal` sends writes elsewhere first). Followers never evict:
//! they apply the leader's evictions, which are logged DELs, as Redis's
//! replicas do (`replica-ignore-maxmemory`).

use std::sync::atomic::Ordering;

use super::Shared;
use burrow_proto::{Request, Status};

/// An entry's bytes besides its key and value, as `Entry::mem_size`
/// counts them at most: block header and expiry (15), malloc header (16),
/// table slot (9), rounded up.
const ENTRY_OVERHEAD: usize = 48;
/// A deque's own allocation (`entry::list_mem`).
const LIST_OVERHEAD: usize = 64;
/// Per deque item: its slot (16) and its malloc header (16).
const ITEM_OVERHEAD: usize = 32;

/// Log an OOM refusal at most this often (a client could send millions).
const LOG_EVERY_MS: u64 = 10_000;

/// An upper bound of the bytes `req` can add to the store, or `None` for a
/// request that cannot grow it (see the module docs).
pub(super) fn growth(req: &Request<&[u8]>) -> Option<usize> {
    Some(match req {
        Request::Set { key, value, .. } => key.len() + value.len() + ENTRY_OVERHEAD,
        Request::Incr { key } | Request::Decr { key } | Request::IncrBy { key, .. } => {
            key.len() + 8 + ENTRY_OVERHEAD
        }
        Request::Push { key, values, .. } => {
            let items: usize = values.iter().map(|v| v.len() + ITEM_OVERHEAD).sum();
            key.len() + 8 + ENTRY_OVERHEAD + LIST_OVERHEAD + items
        }
        _ => return None,
    })
}

/// Makes room for `req` under `--maxmemory`, evicting by the policy; the
/// OOM refusal when there is none. Kept out of line: the dispatch path of
/// a server without a limit stays as it was. A write that fits, the common
/// case, costs its growth bound, one load and one comparison (callgrind:
/// going through `make_room` each time cost ~70 instructions a SET).
#[inline(never)]
pub(super) fn refusal(shared: &Shared, req: &Request<&[u8]>, now: u64) -> Option<(Status, String)> {
    let need = growth(req)?;
    if shared.store.used_memory().saturating_add(need) <= shared.maxmemory.load(Ordering::Relaxed) {
        return None;
    }
    make_room(shared, need, now)
}

/// [`refusal`] when the write does not fit as things stand: evict, or refuse.
#[cold]
#[inline(never)]
fn make_room(shared: &Shared, need: usize, now: u64) -> Option<(Status, String)> {
    let config = &shared.config;
    let store = &shared.store;
    let max = shared.maxmemory.load(Ordering::Relaxed);
    let result = store.make_room(max, need, config.maxmemory_policy, config.maxmemory_samples, now);
    let evicted = match result {
        Ok(room) => room.evicted,
        Err((_, room)) => room.evicted,
    };
    if evicted > 0 {
        // The evictions are logged DELs: wake the streamer even if the write is refused.
        shared.repl.appended();
    }
    let (oom, _) = result.err()?;
    let stats = &shared.stats;
    let refusals = stats.oom_refusals.fetch_add(1, Ordering::Relaxed) + 1;
    let last = stats.oom_logged_ms.load(Ordering::Relaxed);
    if now >= last.saturating_add(LOG_EVERY_MS)
        && stats.oom_logged_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    {
        tracing::warn!(total_refusals = refusals, "write refused: {oom} (logged at most every 10 s)");
    }
    Some((Status::Oom, oom.to_string()))
}
