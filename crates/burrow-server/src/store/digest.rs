//! DIGEST: one u64 that summarises the whole dataset, so tests and operators
//! can prove two nodes converged without shipping the data.
//!
//! The function is fixed and documented (protocol.md §8.9), never the
//! store's randomly seeded table hash: two processes, two shard counts, or
//! the same data before and after a restart must agree on it. Each live entry
//! is hashed on its own (FNV-1a 64 over a canonical, length-prefixed encoding,
//! then MurmurHash3's `fmix64`), and the entry hashes are summed with
//! wrapping addition, which makes the result independent of iteration order.
//! The empty dataset digests to 0.

use super::entry::{format_int, Entry, ValueRef};
use super::{fmix64, Store};

/// Type tags in the canonical encoding. Counters are strings to users (GET
/// returns their digits, TYPE says `string`), so they share the string tag.
const TAG_STRING: u8 = b's';
const TAG_LIST: u8 = b'l';

/// Byte-wise FNV-1a 64, the textbook definition, so any client can recompute it.
struct Fnv(u64);

impl Fnv {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    fn new() -> Fnv {
        Fnv(Fnv::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(Fnv::PRIME);
        }
    }

    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }

    /// A length-prefixed field, so `("ab", "c")` and `("a", "bc")` differ.
    fn field(&mut self, bytes: &[u8]) {
        self.u64(bytes.len() as u64);
        self.bytes(bytes);
    }
}

/// The hash of one entry. Canonical encoding (integers u64 little-endian):
/// `tag, len(key), key, expire_at` then for a string `len, bytes` (a counter
/// as its decimal digits) and for a list `count` then `len, bytes` per item,
/// head to tail.
pub(crate) fn entry_digest(e: &Entry) -> u64 {
    let mut h = Fnv::new();
    let tag = match e.value() {
        ValueRef::List(_) => TAG_LIST,
        ValueRef::Str(_) | ValueRef::Int(_) => TAG_STRING,
    };
    h.bytes(&[tag]);
    h.field(e.key());
    h.u64(e.expire_at());
    match e.value() {
        ValueRef::Str(s) => h.field(s),
        ValueRef::Int(i) => h.field(format_int(i, &mut [0u8; 20])),
        ValueRef::List(l) => {
            h.u64(l.len() as u64);
            for item in l {
                h.field(item);
            }
        }
    }
    fmix64(h.0)
}

impl Store {
    /// The dataset's digest as of `now_ms`: entries expired by then are left
    /// out whether or not they were reclaimed, so a node that has not swept
    /// yet agrees with one that has. Locks one shard at a time (O(keys) and
    /// O(bytes) work in total), so it is a consistent picture only while no
    /// writes run.
    pub(crate) fn digest(&self, now_ms: u64) -> u64 {
        let mut sum = 0u64;
        for i in 0..self.shard_count() {
            let shard = self.lock(i);
            for e in shard.table.iter().filter(|e| !e.is_expired(now_ms)) {
                sum = sum.wrapping_add(entry_digest(e));
            }
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::oplog::OpLog;
    use crate::store::{SetArgs, Value};
    use burrow_proto::{End, SetCondition};

    fn store(shards: usize) -> Store {
        Store::new(shards, Arc::new(OpLog::new(1 << 20)))
    }

    fn set(s: &Store, key: &[u8], value: &[u8], expire_at: Option<u64>) {
        s.set(SetArgs { key, value, expire_at, condition: SetCondition::Always, keep_ttl: false }, 0);
    }

    fn push(s: &Store, key: &[u8], end: End, items: &[&[u8]]) {
        s.push(key, end, items.to_vec(), 0).unwrap();
    }

    /// A small mixed dataset, built by commands in the order given.
    fn fill(s: &Store, order: &[usize]) {
        for &step in order {
            match step {
                0 => set(s, b"user:1", b"alice", None),
                1 => set(s, b"session:9", b"tok", Some(50_000)),
                2 => {
                    s.incr_by(b"visits", 6, 0).unwrap();
                }
                3 => push(s, b"queue", End::Right, &[b"a", b"b", b"c"]),
                4 => set(s, b"", b"empty key", None),
                5 => push(s, b"other", End::Left, &[b"", b"x"]),
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn the_empty_store_digests_to_zero() {
        assert_eq!(store(4).digest(0), 0);
        let s = store(4);
        fill(&s, &[0, 1, 2, 3]);
        s.flush_all();
        assert_eq!(s.digest(0), 0);
    }

    #[test]
    fn insertion_order_and_shard_count_do_not_matter() {
        let a = store(1);
        fill(&a, &[0, 1, 2, 3, 4, 5]);
        let want = a.digest(1);
        assert_ne!(want, 0);
        for (shards, order) in [(2, [5, 4, 3, 2, 1, 0]), (16, [3, 0, 5, 1, 4, 2]), (64, [2, 4, 0, 3, 5, 1])] {
            let b = store(shards);
            fill(&b, &order);
            assert_eq!(b.digest(1), want, "{shards} shards, order {order:?}");
        }
    }

    #[test]
    fn every_kind_of_change_changes_the_digest() {
        let base = || {
            let s = store(4);
            fill(&s, &[0, 1, 2, 3]);
            s
        };
        let want = base().digest(1);
        type Change = Box<dyn Fn(&Store)>;
        let changes: Vec<(&str, Change)> = vec![
            ("string value", Box::new(|s| set(s, b"user:1", b"alicf", None))),
            (
                "key renamed",
                Box::new(|s| {
                    s.del(b"user:1", 0);
                    set(s, b"user:2", b"alice", None);
                }),
            ),
            (
                "ttl changed",
                Box::new(|s| {
                    s.expire(b"session:9", 50_001, 0);
                }),
            ),
            (
                "ttl removed",
                Box::new(|s| {
                    s.persist(b"session:9", 0);
                }),
            ),
            (
                "ttl added",
                Box::new(|s| {
                    s.expire(b"user:1", 90_000, 0);
                }),
            ),
            (
                "counter value",
                Box::new(|s| {
                    s.incr_by(b"visits", 1, 0).unwrap();
                }),
            ),
            (
                "list order",
                Box::new(|s| {
                    s.del(b"queue", 0);
                    push(s, b"queue", End::Right, &[b"a", b"c", b"b"]);
                }),
            ),
            (
                "list item boundaries",
                Box::new(|s| {
                    s.del(b"queue", 0);
                    push(s, b"queue", End::Right, &[b"ab", b"c"]);
                }),
            ),
            ("list item added", Box::new(|s| push(s, b"queue", End::Right, &[b""]))),
            (
                "type: one-item list instead of the string",
                Box::new(|s| {
                    s.del(b"user:1", 0);
                    push(s, b"user:1", End::Right, &[b"alice"]);
                }),
            ),
            ("key added", Box::new(|s| set(s, b"new", b"", None))),
            (
                "key removed",
                Box::new(|s| {
                    s.del(b"visits", 0);
                }),
            ),
        ];
        for (what, change) in changes {
            let s = base();
            change(&s);
            assert_ne!(s.digest(1), want, "{what} left the digest unchanged");
        }
    }

    #[test]
    fn a_counter_digests_like_the_equal_string() {
        let a = store(4);
        a.incr_by(b"n", -42, 0).unwrap();
        let b = store(4);
        set(&b, b"n", b"-42", None);
        assert!(a.read(b"n", 0, |e| matches!(e.unwrap().value(), ValueRef::Int(-42))));
        assert_eq!(a.digest(0), b.digest(0));
        // And a loaded entry (as from a snapshot) digests like the live one.
        let c = store(2);
        c.load(Entry::new(b"n", Value::Int(-42), 0));
        assert_eq!(c.digest(0), a.digest(0));
    }

    #[test]
    fn expired_entries_are_left_out_as_of_the_given_clock() {
        let s = store(4);
        set(&s, b"live", b"v", None);
        let only_live = s.digest(0);
        set(&s, b"dies", b"v", Some(100));
        assert_ne!(s.digest(99), only_live);
        assert_eq!(s.digest(100), only_live, "expired at 100 but not yet reclaimed");
        assert_eq!(s.len(), 2);
    }

    /// Pins the documented function: changing it breaks comparing digests
    /// across versions, so it must be a deliberate, documented change.
    #[test]
    fn the_digest_function_is_the_documented_one() {
        let s = store(4);
        set(&s, b"k", b"v", None);
        // FNV-1a 64 of: 's', len 1 (u64 LE), 'k', expire_at 0 (u64 LE), len 1 (u64 LE), 'v'.
        let mut canonical = vec![b's'];
        canonical.extend_from_slice(&1u64.to_le_bytes());
        canonical.push(b'k');
        canonical.extend_from_slice(&0u64.to_le_bytes());
        canonical.extend_from_slice(&1u64.to_le_bytes());
        canonical.push(b'v');
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in canonical {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        assert_eq!(s.digest(0), fmix64(h));
    }
}
