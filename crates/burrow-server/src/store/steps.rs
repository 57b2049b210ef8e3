//! Reads that copy a lot (LRANGE over a long list) done in several holds
//! of the shard lock, so a command on another key of the same shard waits
//! for one step, not for the whole copy (issue 11, fairness).
//!
//! The reply must still be one atomic view of the key: between two holds
//! the reader checks the list's [`ListVersion`](super::entry::ListVersion)
//! (a unique id per deque and a count of its writes); if it changed, the
//! reader starts over. A reader that had to start over [`MAX_RESTARTS`]
//! times finishes in one hold, as every read did before: a list written
//! without pause cannot starve its readers, and what the others wait for
//! is then no worse than it was.
//!
//! Chosen over shared handles (`Bytes` items, cloned under the lock and
//! copied outside it): a list's cost is per item (1M items of 20 bytes:
//! ~10 ms, most of it cache misses on the boxed items), and a refcounted
//! handle per item would cost a clone per item under the lock and 16 more
//! bytes per item for good.

use super::{Entry, Store};

/// Starts over at most this many times, then finishes in one hold.
pub(crate) const MAX_RESTARTS: u32 = 3;

/// What a step of a [`Store::read_in_steps`] reader answers.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step<R> {
    /// Finished; the lock is released and `R` returned.
    Done(R),
    /// More to copy: call again (after the lock was released and taken
    /// again, unless the reader is past its restarts).
    More,
}

impl<R> Step<R> {
    /// `Done(f(r))`, or `More`.
    pub(crate) fn map_done<T>(self, f: impl FnOnce(R) -> T) -> Step<T> {
        match self {
            Step::Done(r) => Step::Done(f(r)),
            Step::More => Step::More,
        }
    }
}

/// How a step starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resume {
    /// From the beginning: the first step, or the key changed since the
    /// previous one (whatever was built from it must be thrown away).
    Start,
    /// Where the previous step stopped: the key is as it was then.
    Continue,
}

impl Store {
    /// Runs `f` on the live entry of `key` (expired keys are never seen)
    /// under the shard lock, again and again while it answers
    /// [`Step::More`], releasing the lock between calls. Returns what `f`
    /// finished with and the key's watermark (as [`Store::read_marked`]).
    ///
    /// Only a list is read in steps: for any other entry `Resume::Continue`
    /// would not be checked, so `f` must answer `Done` on its first call
    /// unless it sees a list.
    pub(crate) fn read_in_steps<R>(
        &self,
        key: &[u8],
        now: u64,
        f: impl FnMut(Option<&Entry>, Resume) -> Step<R>,
    ) -> (R, u64) {
        self.read_in_steps_with(key, now, f, || {})
    }

    /// [`Store::read_in_steps`], running `between` each time the lock is
    /// released between two steps (tests change the key there).
    fn read_in_steps_with<R>(
        &self,
        key: &[u8],
        now: u64,
        mut f: impl FnMut(Option<&Entry>, Resume) -> Step<R>,
        mut between: impl FnMut(),
    ) -> (R, u64) {
        let (index, hash) = self.locate(key);
        let mut seen = None;
        let mut restarts = 0;
        let mut resume = Resume::Start;
        loop {
            let mut shard = self.shards[index].lock();
            let slot = self.prepare(&mut shard, hash, key, now, true);
            let entry = slot.and_then(|i| shard.table.get_bucket(i));
            let version = entry.and_then(Entry::list_version);
            if resume == Resume::Continue && (version.is_none() || version != seen) {
                restarts += 1;
                resume = Resume::Start;
            }
            seen = version;
            let last_hold = restarts >= MAX_RESTARTS;
            loop {
                match f(entry, resume) {
                    Step::Done(r) => return (r, shard.marks.get(hash.fixed)),
                    Step::More => resume = Resume::Continue,
                }
                if !last_hold {
                    break;
                }
            }
            drop(shard);
            between();
            self.shards[index].let_waiters_in();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::OpLog;
    use crate::store::ValueRef;
    use burrow_proto::End;
    use std::sync::Arc;

    fn store() -> Store {
        Store::new(4, Arc::new(OpLog::new(1 << 26)))
    }

    /// An LRANGE 0 -1 that copies `per_step` items a hold; also returns
    /// how many times it started.
    fn copy_list(
        store: &Store,
        key: &[u8],
        per_step: usize,
        between: impl FnMut(),
    ) -> (Option<Vec<Vec<u8>>>, u32) {
        let (mut out, mut starts) = (Vec::new(), 0);
        let (done, _) = store.read_in_steps_with(
            key,
            0,
            |e, resume| {
                let Some(ValueRef::List(l)) = e.map(|e| e.value()) else {
                    return Step::Done(false);
                };
                if resume == Resume::Start {
                    out.clear();
                    starts += 1;
                }
                let next = (out.len() + per_step).min(l.len());
                out.extend(l.range(out.len()..next).map(|v| v.to_vec()));
                if out.len() == l.len() {
                    Step::Done(true)
                } else {
                    Step::More
                }
            },
            between,
        );
        (done.then_some(out), starts)
    }

    fn items(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| format!("item {i}").into_bytes()).collect()
    }

    fn rpush(store: &Store, key: &[u8], values: &[Vec<u8>]) {
        store.push(key, End::Right, values.iter().map(|v| &v[..]).collect(), 0).expect("RPUSH");
    }

    #[test]
    fn an_unchanged_list_is_copied_in_steps_once() {
        let s = store();
        rpush(&s, b"l", &items(10));
        let mut holds = 0;
        let (got, starts) = copy_list(&s, b"l", 3, || holds += 1);
        assert_eq!((got, starts, holds), (Some(items(10)), 1, 3));
    }

    /// A write between two steps throws the copy away: the reply is the
    /// list after the write, never a mix of before and after.
    #[test]
    fn a_write_between_steps_starts_the_copy_over() {
        let s = store();
        rpush(&s, b"l", &items(10));
        let mut writes = 0;
        let (got, starts) = copy_list(&s, b"l", 4, || {
            if writes == 0 {
                s.push(b"l", End::Left, vec![b"new"], 0).expect("LPUSH");
            }
            writes += 1;
        });
        let mut expect = vec![b"new".to_vec()];
        expect.extend(items(10));
        assert_eq!((got, starts), (Some(expect), 2));
    }

    /// Deleting the list and building one with the same items between two
    /// steps is a change too (a new id, even at a reused address).
    #[test]
    fn a_list_built_again_is_not_taken_for_the_old_one() {
        let s = store();
        rpush(&s, b"l", &items(6));
        let mut first = true;
        let (got, starts) = copy_list(&s, b"l", 2, || {
            if std::mem::take(&mut first) {
                s.del(b"l", 0);
                rpush(&s, b"l", &items(6));
            }
        });
        assert_eq!((got, starts), (Some(items(6)), 2));
        // Deleted for good between steps: the reader sees no list.
        let mut first = true;
        let (got, _) = copy_list(&s, b"l", 2, || {
            if std::mem::take(&mut first) {
                s.del(b"l", 0);
            }
        });
        assert_eq!(got, None);
    }

    /// A TTL added between steps keeps the list (and its version): the copy
    /// goes on.
    #[test]
    fn an_expire_between_steps_does_not_restart_the_copy() {
        let s = store();
        rpush(&s, b"l", &items(6));
        let mut first = true;
        let (got, starts) = copy_list(&s, b"l", 2, || {
            if std::mem::take(&mut first) {
                assert!(s.expire(b"l", 60_000, 0));
            }
        });
        assert_eq!((got, starts), (Some(items(6)), 1));
    }

    /// A list written between every two steps: after `MAX_RESTARTS` the
    /// reader copies the rest in the same hold, and still answers one
    /// consistent list.
    #[test]
    fn a_list_written_without_pause_is_finished_in_one_hold() {
        let s = store();
        rpush(&s, b"l", &items(10));
        let mut pushed = 0;
        let (got, starts) = copy_list(&s, b"l", 1, || {
            pushed += 1;
            s.push(b"l", End::Right, vec![b"x"], 0).expect("RPUSH");
        });
        let got = got.expect("a list");
        assert_eq!(starts, MAX_RESTARTS + 1);
        assert_eq!(pushed as u32, MAX_RESTARTS);
        assert_eq!(got.len(), 10 + pushed);
        assert_eq!(&got[..10], &items(10)[..]);
        assert!(got[10..].iter().all(|v| v == b"x"));
    }

    /// Another thread LPUSHes batches of 8 numbered items while readers
    /// copy the list one item a hold: every reply is a state the list had
    /// (a whole number of batches, newest first, no gap, no repeat).
    #[test]
    fn concurrent_pushes_never_tear_a_copy() {
        const BATCH: usize = 8;
        let s = Arc::new(store());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 40_000 {
                    let batch: Vec<Vec<u8>> =
                        (n..n + BATCH as u64).map(|i| i.to_be_bytes().to_vec()).collect();
                    s.push(b"l", End::Left, batch.iter().map(|v| &v[..]).collect(), 0).expect("LPUSH");
                    n += BATCH as u64;
                    std::thread::yield_now();
                }
            })
        };
        let mut restarted = 0;
        for _ in 0..200 {
            let (got, starts) = copy_list(&s, b"l", 1 + restarted % 7, || {});
            restarted += (starts > 1) as usize;
            let got = got.unwrap_or_default();
            assert_eq!(got.len() % BATCH, 0, "a whole number of batches");
            let nums: Vec<u64> = got.iter().map(|v| u64::from_be_bytes(v[..].try_into().unwrap())).collect();
            let expect: Vec<u64> = (0..nums.len() as u64).rev().collect();
            assert_eq!(nums, expect, "one state of the list, newest first");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
    }
}
