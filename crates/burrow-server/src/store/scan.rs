//! SCAN: a cursor walk over shards and hash-table buckets.
//!
//! The cursor packs the position of the next bucket to look at:
//!
//! ```text
//!  63        48 47     42 41                               0
//! +------------+---------+----------------------------------+
//! | shard (16) | log2 N  | bucket index (42)                |
//! +------------+---------+----------------------------------+
//! ```
//! `N` is the shard table's bucket count when the cursor was made. Removing
//! or inserting keys never moves other entries between buckets, so a key
//! present for the whole walk is returned exactly once — unless its shard's
//! table was resized in between (N changed), in which case that shard is
//! walked again from its first bucket: keys may then repeat, but none is
//! missed. Each call does bounded work (at most 10 × COUNT buckets), so a
//! scan never stalls the server the way KEYS would.

use bytes::Bytes;

use super::Store;

const INDEX_BITS: u32 = 42;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// COUNT when the client gives 0.
pub(super) const DEFAULT_COUNT: u32 = 10;
/// COUNT is a hint; it is clamped so one call stays short: it holds a
/// shard's lock while it walks up to 10 × COUNT buckets, and other clients
/// wait meanwhile (at 100 000, PINGs waited up to 109 ms; issue 11).
pub(super) const MAX_COUNT: u32 = 1_000;

fn make_cursor(shard: usize, buckets: usize, index: usize) -> u64 {
    let log2 = if buckets == 0 { 0 } else { buckets.trailing_zeros() as u64 };
    ((shard as u64) << 48) | (log2 << INDEX_BITS) | index as u64
}

impl Store {
    /// One SCAN step: the next cursor (0 when done) and the keys found.
    pub(crate) fn scan(&self, cursor: u64, count: u32, pattern: &[u8], now: u64) -> (u64, Vec<Bytes>) {
        let count = match count {
            0 => DEFAULT_COUNT,
            n => n.min(MAX_COUNT),
        } as usize;
        let budget = count * 10;
        let mut shard_idx = (cursor >> 48) as usize;
        let cursor_log2 = ((cursor >> INDEX_BITS) & 63) as u32;
        let mut pos = (cursor & INDEX_MASK) as usize;
        let mut keys = Vec::new();
        let mut visited = 0;
        while shard_idx < self.shard_count() {
            let shard = self.lock(shard_idx);
            let buckets = shard.table.num_buckets();
            if pos != 0 && (buckets == 0 || buckets.trailing_zeros() != cursor_log2) {
                // Resized since the cursor was made: walk this shard again.
                pos = 0;
            }
            while pos < buckets && keys.len() < count && visited < budget {
                if let Some(e) = shard.table.get_bucket(pos) {
                    if !e.is_expired(now) && glob_match(pattern, e.key()) {
                        keys.push(Bytes::copy_from_slice(e.key()));
                    }
                }
                pos += 1;
                visited += 1;
            }
            if pos < buckets {
                return (make_cursor(shard_idx, buckets, pos), keys);
            }
            drop(shard);
            shard_idx += 1;
            pos = 0;
            if keys.len() >= count || visited >= budget {
                break;
            }
        }
        if shard_idx >= self.shard_count() {
            return (0, keys);
        }
        (make_cursor(shard_idx, 0, 0), keys)
    }
}

/// Redis-style glob: `*`, `?`, `[abc]`, `[^a-z]`, `\x`. Empty matches all.
pub(crate) fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    if pattern.is_empty() || pattern == b"*" {
        return true;
    }
    let (mut p, mut i) = (0usize, 0usize);
    // Backtrack point for the last `*`: (pattern pos after it, string pos).
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p + 1, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pattern, p, s[i]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == s[i]).then_some(p + 2),
            Some(&c) => (c == s[i]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                i += 1;
            }
            (None, Some((sp, si))) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == b'['`; returns
/// the position after the class on a match.
fn class_match(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let mut matched = false;
    while j < pattern.len() && pattern[j] != b']' {
        if pattern[j] == b'\\' && j + 1 < pattern.len() {
            matched |= pattern[j + 1] == c;
            j += 2;
        } else if j + 2 < pattern.len() && pattern[j + 1] == b'-' && pattern[j + 2] != b']' {
            let (lo, hi) = (pattern[j].min(pattern[j + 2]), pattern[j].max(pattern[j + 2]));
            matched |= (lo..=hi).contains(&c);
            j += 3;
        } else {
            matched |= pattern[j] == c;
            j += 1;
        }
    }
    // An unterminated class matches nothing.
    if j >= pattern.len() {
        return None;
    }
    (matched != negate).then_some(j + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::OpLog;
    use crate::store::SetArgs;
    use std::collections::HashMap;
    use std::sync::Arc;

    #[test]
    fn globs_match_like_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("", "anything", true),
            ("*", "", true),
            ("user:*", "user:42", true),
            ("user:*", "usr:42", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("*:*:x", "a:b:c:x", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("[abc", "a", false),
        ];
        for (i, (p, s, want)) in cases.iter().enumerate() {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes()), *want, "case {i}: {p} vs {s}");
        }
    }

    fn store_with(n: usize) -> Store {
        let store = Store::new(8, Arc::new(OpLog::new(1 << 20)));
        for i in 0..n {
            store.set(
                SetArgs {
                    key: format!("k{i}").as_bytes(),
                    value: b"v",
                    expire_at: None,
                    condition: Default::default(),
                    keep_ttl: false,
                },
                0,
            );
        }
        store
    }

    #[test]
    fn a_full_scan_returns_every_key_once_and_ends_at_cursor_zero() {
        let store = store_with(1000);
        let mut seen = HashMap::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (next, keys) = store.scan(cursor, 7, b"", 0);
            assert!(keys.len() <= 7);
            for k in keys {
                *seen.entry(k).or_insert(0) += 1;
            }
            calls += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(seen.values().all(|&n| n == 1));
        assert!(calls > 1000 / 7);
    }

    #[test]
    fn a_huge_count_is_clamped_so_one_call_stays_short() {
        let store = store_with(5000);
        let (next, keys) = store.scan(0, u32::MAX, b"", 0);
        assert_eq!(keys.len(), MAX_COUNT as usize, "at most MAX_COUNT keys per call");
        assert_ne!(next, 0, "the rest comes with the next calls");
    }

    #[test]
    fn keys_present_throughout_are_found_despite_growth_and_deletes() {
        let store = store_with(500);
        let mut seen = std::collections::HashSet::new();
        let (mut cursor, mut round) = (0, 0);
        loop {
            let (next, keys) = store.scan(cursor, 5, b"k*", 0);
            seen.extend(keys);
            // Grow the table (forcing resizes) and delete other keys meanwhile.
            for j in 0..20 {
                let k = format!("new{round}-{j}");
                store.set(
                    SetArgs {
                        key: k.as_bytes(),
                        value: b"",
                        expire_at: None,
                        condition: Default::default(),
                        keep_ttl: false,
                    },
                    0,
                );
            }
            store.del(format!("new{round}-0").as_bytes(), 0);
            round += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        for i in 0..500 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missed");
        }
    }
}
