//! The one function that changes the dataset: `apply(shard, op)`.
//!
//! Live writes, WAL replay and followers all go through it, so they cannot
//! diverge. It never looks at the clock: expiry decisions were taken by the
//! node that logged the op (a lazy or active expiry is itself a logged `Del`).

use bytes::Bytes;
use hashbrown::HashTable;
use thiserror::Error;

use super::entry::{list_item_mem, parse_int, Entry, List, Value, ValueRef};
use super::prefetch::ProbeHint;
use super::watermark::Watermarks;
use crate::oplog::Op;
use burrow_proto::End;

/// One shard's data: a hash table of entries plus counters INFO reports.
#[derive(Debug)]
pub(crate) struct Shard {
    pub(crate) table: HashTable<Entry>,
    pub(crate) hasher: foldhash::fast::FixedState,
    /// Entries with a TTL.
    pub(crate) expires: usize,
    /// Approximate bytes held (see `Entry::mem_size`).
    pub(crate) mem: usize,
    /// Where the active expiry sweep resumes (a bucket index).
    pub(crate) sweep_pos: usize,
    /// The access clock new entries are stamped with (`entry::clock_at`
    /// of the command's time, set as the command locks the shard).
    pub(crate) clock: u16,
    /// The log index of the last change to each key, approximately (see
    /// [`Watermarks`]); kept across `clear`.
    pub(crate) marks: Watermarks,
    /// Where the table lives, for prefetches made without the lock.
    pub(crate) hint: std::sync::Arc<ProbeHint>,
}

/// What an applied op produced, for building the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    Done,
    /// DEL/EXPIRE/PERSIST: 1 if the key was changed, 0 if not; INCRBY: the new
    /// value; PUSH: the new length.
    Int(i64),
    /// POP: the values taken, in pop order.
    Popped(Vec<Bytes>),
}

/// Why an op was refused. A refused op changed nothing.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub(crate) enum ApplyError {
    #[error("WRONGTYPE operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("value is not an integer or out of range")]
    NotInteger,
    #[error("increment or decrement would overflow")]
    Overflow,
}

impl Shard {
    /// One of `shards` empty shards; it publishes its table's address to `hint`.
    pub(crate) fn new(
        hasher: foldhash::fast::FixedState,
        shards: usize,
        hint: std::sync::Arc<ProbeHint>,
    ) -> Shard {
        Shard {
            hint,
            table: HashTable::new(),
            hasher,
            expires: 0,
            mem: 0,
            sweep_pos: 0,
            clock: 0,
            marks: Watermarks::for_shard_of(shards),
        }
    }

    /// Inlined: every command calls it once, and as a call it cost ~40
    /// instructions per GET (callgrind, GET P16).
    #[inline(always)]
    pub(crate) fn find_index(&self, hash: u64, key: &[u8]) -> Option<usize> {
        self.table.find_bucket_index(hash, |e| e.key() == key)
    }

    /// Removes the entry in bucket `index`, keeping the counters right.
    pub(crate) fn remove_at(&mut self, index: usize) -> Option<Entry> {
        let (entry, _) = self.table.get_bucket_entry(index).ok()?.remove();
        self.forget(&entry);
        Some(entry)
    }

    /// Puts `entry` (same key) in bucket `index` in place of the old one.
    pub(crate) fn replace_at(&mut self, index: usize, mut entry: Entry) {
        stamp(&mut entry, self.clock);
        self.count_in(&entry);
        let old = std::mem::replace(self.table.get_bucket_mut(index).expect("occupied bucket"), entry);
        self.forget(&old);
    }

    fn count_in(&mut self, entry: &Entry) {
        if entry.expire_at() != 0 {
            self.expires += 1;
        }
        self.mem += entry.mem_size();
    }

    fn forget(&mut self, entry: &Entry) {
        if entry.expire_at() != 0 {
            self.expires -= 1;
        }
        self.mem = self.mem.saturating_sub(entry.mem_size());
    }

    pub(crate) fn insert(&mut self, hash: u64, mut entry: Entry) {
        stamp(&mut entry, self.clock);
        self.count_in(&entry);
        let hasher = self.hasher;
        self.table.insert_unique(hash, entry, |e| {
            use std::hash::BuildHasher;
            hasher.hash_one(e.key())
        });
        self.hint.publish(&self.table);
    }

    /// Empties the shard and returns the old table, to be dropped once the
    /// lock is released: freeing every entry of a large shard takes tens of
    /// milliseconds, and FLUSHALL holds every shard's lock (issue 11,
    /// fairness).
    #[must_use = "drop the old table after releasing the lock"]
    pub(crate) fn clear(&mut self) -> HashTable<Entry> {
        self.expires = 0;
        self.mem = 0;
        self.sweep_pos = 0;
        self.hint.reset();
        std::mem::replace(&mut self.table, HashTable::new())
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

/// Applies `op` to the shard that owns its key. `hash` is the key's hash and
/// `slot` its bucket (`Shard::find_index`), which the caller has already
/// looked up. `Op::FlushAll` clears this shard; the store applies it to every shard.
pub(crate) fn apply<B: AsRef<[u8]>>(
    shard: &mut Shard,
    hash: u64,
    slot: Option<usize>,
    op: &Op<B>,
) -> Result<Applied, ApplyError> {
    match op {
        Op::Set { key, value, expire_at } => {
            let entry = Entry::new(key.as_ref(), Value::Str(value.as_ref()), *expire_at);
            match slot {
                Some(i) => shard.replace_at(i, entry),
                None => shard.insert(hash, entry),
            }
            Ok(Applied::Done)
        }
        Op::Del { key: _ } => match slot {
            Some(i) => {
                shard.remove_at(i);
                Ok(Applied::Int(1))
            }
            None => Ok(Applied::Int(0)),
        },
        Op::Expire { at, .. } => set_expiry(shard, slot, *at),
        Op::Persist { .. } => set_expiry(shard, slot, 0),
        Op::IncrBy { key, delta } => {
            let Some(i) = slot else {
                shard.insert(hash, Entry::new(key.as_ref(), Value::Int(*delta), 0));
                return Ok(Applied::Int(*delta));
            };
            let entry = shard.table.get_bucket_mut(i).expect("bucket just found");
            let current = match entry.value() {
                ValueRef::Int(n) => n,
                ValueRef::Str(s) => parse_int(s).ok_or(ApplyError::NotInteger)?,
                ValueRef::List(_) => return Err(ApplyError::WrongType),
            };
            let new = current.checked_add(*delta).ok_or(ApplyError::Overflow)?;
            if !entry.set_int(new) {
                // A string holding digits becomes a counter; its TTL stays.
                let before = entry.mem_size();
                *entry = Entry::new(key.as_ref(), Value::Int(new), entry.expire_at());
                entry.touch(shard.clock);
                let after = entry.mem_size();
                shard.mem = (shard.mem + after).saturating_sub(before);
            }
            Ok(Applied::Int(new))
        }
        Op::Push { key, end, values } => {
            let Some(i) = slot else {
                let mut list = Box::new(List::with_capacity(values.len()));
                push_all(&mut list, *end, values);
                let len = list.len();
                shard.insert(hash, Entry::new(key.as_ref(), Value::List(list), 0));
                return Ok(Applied::Int(len as i64));
            };
            let entry = shard.table.get_bucket_mut(i).expect("bucket just found");
            let list = entry.list_mut().ok_or(ApplyError::WrongType)?;
            let cap_before = list.capacity();
            push_all(list, *end, values);
            let len = list.len();
            let grown = (list.capacity() - cap_before) * 16;
            shard.mem += grown + values.iter().map(|v| list_item_mem(v.as_ref().len())).sum::<usize>();
            Ok(Applied::Int(len as i64))
        }
        Op::Pop { end, count, .. } => {
            let Some(i) = slot else {
                return Ok(Applied::Popped(Vec::new()));
            };
            let entry = shard.table.get_bucket_mut(i).expect("bucket just found");
            let list = entry.list_mut().ok_or(ApplyError::WrongType)?;
            let n = (*count as usize).min(list.len());
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let v = match end {
                    End::Left => list.pop_front(),
                    End::Right => list.pop_back(),
                };
                out.extend(v.map(|v| Bytes::from(Vec::from(v))));
            }
            let emptied = list.is_empty();
            let freed: usize = out.iter().map(|v| list_item_mem(v.len())).sum();
            shard.mem = shard.mem.saturating_sub(freed);
            if emptied {
                // An empty deque disappears.
                shard.remove_at(i);
            }
            Ok(Applied::Popped(out))
        }
        Op::FlushAll => {
            drop(shard.clear());
            Ok(Applied::Done)
        }
        Op::Noop => Ok(Applied::Done),
    }
}

fn push_all<B: AsRef<[u8]>>(list: &mut List, end: End, values: &[B]) {
    for v in values {
        let item: Box<[u8]> = v.as_ref().into();
        match end {
            End::Left => list.push_front(item),
            End::Right => list.push_back(item),
        }
    }
}

fn set_expiry(shard: &mut Shard, slot: Option<usize>, at: u64) -> Result<Applied, ApplyError> {
    let Some(i) = slot else {
        return Ok(Applied::Int(0));
    };
    let entry = shard.table.get_bucket_mut(i).expect("bucket just found");
    let old = entry.expire_at();
    if old == at {
        // PERSIST on a key without TTL changes nothing and reports 0.
        return Ok(Applied::Int(i64::from(at != 0)));
    }
    let before = entry.mem_size();
    entry.set_expire_at(at);
    let after = entry.mem_size();
    shard.mem = (shard.mem + after).saturating_sub(before);
    match (old != 0, at != 0) {
        (false, true) => shard.expires += 1,
        (true, false) => shard.expires -= 1,
        _ => {}
    }
    Ok(Applied::Int(1))
}

/// Stamps a new entry with the shard's access clock. Only `*-lru` sets a
/// clock, and a new entry's is already 0: without it this is one
/// predicted branch, not a mask and an or on every write.
#[inline(always)]
fn stamp(entry: &mut Entry, clock: u16) {
    if clock != 0 {
        entry.touch(clock);
    }
}
