//! Records decided elsewhere — WAL records at start, a leader's stream on a
//! follower — enter the store through one path, [`Store::replay`]: the same
//! `apply` as live writes, under the record's own term and index, with the
//! snapshot rule that a record a shard image already holds is only logged.
//! What differs between the two callers is only how the record reaches the
//! op log, named by [`Replay`].

use tracing::warn;

use super::{apply, shard_for, Applied, ApplyError, Store};
use crate::oplog::{Op, Record};

/// How a replayed record enters the op log. Either way it is logged under
/// its own term and index, and logged even when it is not applied (covered
/// by a shard image, or refused): it is part of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// WAL replay at start, before the WAL writer runs: the record is put
    /// in the op log ([`OpLog::restore`](crate::oplog::OpLog::restore)),
    /// which queues it for replication when the log retains (so followers
    /// slightly behind a restarted leader resume by partial resync). Nothing
    /// new is queued for the WAL: the record is already in it, and the WAL
    /// queue is enabled only once recovery is done.
    Recovery,
    /// A follower applying its leader's stream: only the op log's index
    /// moves ([`OpLog::note_replicated`](crate::oplog::OpLog::note_replicated)),
    /// under the shard lock as for a live write. The caller then queues the
    /// records' bytes as received, for the whole batch in one lock
    /// acquisition ([`OpLog::queue_replicated`](crate::oplog::OpLog::queue_replicated)),
    /// to this node's WAL and backlog.
    Replicated,
}

/// What [`Store::replay`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replayed {
    /// Applied to the data set.
    Applied,
    /// The loaded snapshot's image of the record's shard already holds it:
    /// only logged.
    Covered,
    /// `apply` refused it. A refused live write is never logged, so the data
    /// and the log disagree; replay goes on as the leader did.
    Refused(ApplyError),
}

/// What a loaded snapshot holds: per shard, the last log index its image
/// contains. The shard count is the snapshot's (a power of two), which may
/// differ from this store's: keys are placed with [`shard_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShardCovers {
    covers: Vec<u64>,
    min: u64,
    max: u64,
}

impl ShardCovers {
    /// # Panics
    /// If `covers` is empty or its length is not a power of two.
    pub(crate) fn new(covers: Vec<u64>) -> ShardCovers {
        assert!(covers.len().is_power_of_two(), "{} shard covers", covers.len());
        let min = covers.iter().copied().min().unwrap_or(0);
        let max = covers.iter().copied().max().unwrap_or(0);
        ShardCovers { covers, min, max }
    }

    /// Every record up to this index is held by every image.
    pub(crate) fn min(&self) -> u64 {
        self.min
    }

    /// No image holds a record after this index.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Whether the image of `key`'s shard holds the record at `index`.
    pub(crate) fn holds(&self, key: &[u8], index: u64) -> bool {
        index <= self.covers[shard_for(key, self.covers.len())]
    }
}

impl Store {
    /// Applies a record that was decided and logged elsewhere, in index
    /// order, and logs it as `mode` says. With `covers` (the record follows
    /// a snapshot whose shard images cover different indexes), a record the
    /// image of its shard already holds is only logged, and a FLUSHALL
    /// some images are newer than clears only the shards whose images are
    /// older.
    pub(crate) fn replay<B: AsRef<[u8]>>(
        &self,
        mode: Replay,
        covers: Option<&ShardCovers>,
        rec: &Record<B>,
    ) -> Replayed {
        if matches!(rec.op, Op::Noop) {
            // Nothing to apply and no key to mark: only its index moves.
            self.log_replayed(mode, rec);
            return Replayed::Applied;
        }
        if let Some(c) = covers.filter(|c| rec.index <= c.max()) {
            let covered = match rec.op.key() {
                _ if rec.index <= c.min() => true,
                Some(key) => c.holds(key, rec.index),
                None => {
                    self.retain(|k| c.holds(k, rec.index));
                    self.log_replayed(mode, rec);
                    return Replayed::Applied;
                }
            };
            if covered {
                self.log_replayed(mode, rec);
                return Replayed::Covered;
            }
        }
        match self.apply_and_log(mode, rec) {
            Ok(_) => Replayed::Applied,
            Err(e) => {
                warn!(index = rec.index, error = %e, "record refused on replay");
                Replayed::Refused(e)
            }
        }
    }

    /// `apply` under the shard lock (every lock for a FLUSHALL), then the log.
    fn apply_and_log<B: AsRef<[u8]>>(&self, mode: Replay, rec: &Record<B>) -> Result<Applied, ApplyError> {
        // A follower's records raise watermarks as live writes do (this node
        // may lead later and must then know what its reads show); WAL
        // records at start are durable already.
        let marked = mode == Replay::Replicated;
        let Some(key) = rec.op.key() else {
            let mut guards: Vec<_> = (0..self.shards.len()).map(|i| self.lock(i)).collect();
            let mut old = Vec::with_capacity(guards.len());
            for shard in guards.iter_mut() {
                old.push(shard.clear());
                if marked {
                    shard.marks.raise_all(rec.index);
                }
            }
            self.log_replayed(mode, rec);
            drop(guards);
            // Freed with the locks released (see `Shard::clear`).
            drop(old);
            return Ok(Applied::Done);
        };
        let (i, hash) = self.locate(key);
        let mut shard = self.lock(i);
        let slot = shard.find_index(hash.table, key);
        let applied = apply(&mut shard, hash.table, slot, &rec.op);
        if marked && applied.is_ok() {
            shard.marks.raise(hash.fixed, rec.index);
        }
        self.log_replayed(mode, rec);
        applied
    }

    fn log_replayed<B: AsRef<[u8]>>(&self, mode: Replay, rec: &Record<B>) {
        match mode {
            Replay::Recovery => self.log.restore(rec.term, rec.index, &rec.op),
            Replay::Replicated => self.log.note_replicated(rec.index),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::{Bytes, BytesMut};

    use super::*;
    use crate::oplog::{encode_record, Op, OpLog, Records};
    use crate::store::{Entry, Value, ValueRef};

    const TERM: u64 = 3;

    /// A key whose shard is `shard` among `shards`.
    fn key_in(shard: usize, shards: usize) -> Bytes {
        (0..).map(|i| Bytes::from(format!("key{i}"))).find(|k| shard_for(k, shards) == shard).unwrap()
    }

    fn set(key: &Bytes, value: &'static str) -> Op {
        Op::Set { key: key.clone(), value: Bytes::from_static(value.as_bytes()), expire_at: 0 }
    }

    fn records(first: u64, ops: Vec<Op>) -> Vec<Record> {
        ops.into_iter()
            .enumerate()
            .map(|(i, op)| Record { term: TERM, index: first + i as u64, op })
            .collect()
    }

    fn string(store: &Store, key: &[u8]) -> Option<Vec<u8>> {
        store.read(key, 0, |e| {
            e.map(|e| match e.value() {
                ValueRef::Str(s) => s.to_vec(),
                other => panic!("{other:?}"),
            })
        })
    }

    fn indexes(buf: &[u8]) -> Vec<u64> {
        Records::new(buf).map(|r| r.unwrap().index).collect()
    }

    #[test]
    fn recovery_logs_each_record_under_its_own_index_and_term() {
        let (a, b) = (Bytes::from_static(b"a"), Bytes::from_static(b"b"));
        let log = Arc::new(OpLog::new(1 << 20));
        let store = Store::new(4, log.clone());
        for rec in records(5, vec![set(&a, "1"), set(&b, "2"), Op::Del { key: a.clone() }]) {
            assert_eq!(store.replay(Replay::Recovery, None, &rec), Replayed::Applied);
            assert_eq!(log.last_index(), rec.index);
        }
        assert_eq!((string(&store, &a), string(&store, &b)), (None, Some(b"2".to_vec())));
        assert_eq!(log.stats().term, TERM);
        let (queued, first) = log.take_repl().expect("retaining");
        assert_eq!((first, indexes(&queued)), (5, vec![5, 6, 7]), "queued for replication as replayed");
    }

    #[test]
    fn replicated_moves_only_the_index_and_the_caller_queues_the_received_bytes() {
        let k = Bytes::from_static(b"k");
        let log = Arc::new(OpLog::counting(1 << 20));
        log.enable_wal();
        let store = Store::new(4, log.clone());
        let recs = records(1, vec![set(&k, "v"), Op::IncrBy { key: Bytes::from_static(b"n"), delta: 4 }]);
        let mut received = BytesMut::new();
        for rec in &recs {
            encode_record(rec.term, rec.index, &rec.op, &mut received);
            assert_eq!(store.replay(Replay::Replicated, None, rec), Replayed::Applied);
            assert_eq!(log.last_index(), rec.index);
        }
        assert_eq!(string(&store, &k), Some(b"v".to_vec()));
        assert!(log.take_wal_now().0.is_empty(), "nothing queued by replay itself");
        let raws: Vec<&[u8]> = Records::new(&received).map(|r| r.unwrap().raw).collect();
        log.queue_replicated(TERM, 2, raws);
        let (wal, last, unsealed) = log.take_wal_now();
        assert_eq!((&wal[..], last, unsealed), (&received[..], 2, false), "the bytes as received");
    }

    /// The snapshot's two shard images: `a`'s holds records up to 12,
    /// `b`'s up to 16. Replaying the history from before the older image
    /// must end where replaying it all from nothing does, and log every
    /// record whatever was applied.
    #[test]
    fn records_a_shard_image_holds_are_only_logged_in_either_mode() {
        let (a, b) = (key_in(0, 2), key_in(1, 2));
        let history = records(
            10,
            vec![
                Op::FlushAll, // 10: both images hold it
                set(&a, "1"), // 11: both images hold it
                set(&b, "1"), // 12: both images hold it
                set(&a, "2"), // 13: after a's image
                Op::FlushAll, // 14: after a's image, held by b's
                set(&b, "2"), // 15: held by b's image
                set(&a, "3"), // 16: after a's image
                set(&b, "3"), // 17: after both
            ],
        );
        use Replayed::{Applied, Covered};
        let outcomes = [Covered, Covered, Covered, Applied, Applied, Covered, Applied, Applied];
        // What each key holds after each record, as on the leader.
        let after: [(Option<&str>, Option<&str>); 8] = [
            (Some("1"), Some("2")),
            (Some("1"), Some("2")),
            (Some("1"), Some("2")),
            (Some("2"), Some("2")),
            (None, Some("2")),
            (None, Some("2")),
            (Some("3"), Some("2")),
            (Some("3"), Some("3")),
        ];
        let scratch = Store::new(8, Arc::new(OpLog::new(1 << 20)));
        for rec in &history {
            scratch.replay(Replay::Recovery, None, rec);
        }
        for mode in [Replay::Recovery, Replay::Replicated] {
            let log = Arc::new(OpLog::new(1 << 20));
            let store = Store::new(4, log.clone());
            // The images as loaded: a = 1 (as of 12), b = 2 (as of 16).
            store.load(Entry::new(&a, Value::Str(b"1"), 0));
            store.load(Entry::new(&b, Value::Str(b"2"), 0));
            let covers = ShardCovers::new(vec![12, 16]);
            assert_eq!((covers.min(), covers.max()), (12, 16));
            for (i, rec) in history.iter().enumerate() {
                assert_eq!(
                    store.replay(mode, Some(&covers), rec),
                    outcomes[i],
                    "{mode:?}, index {}",
                    rec.index
                );
                assert_eq!(log.last_index(), rec.index, "{mode:?}: every record is logged");
                let (want_a, want_b) = after[i];
                let got = (string(&store, &a), string(&store, &b));
                assert_eq!(
                    got,
                    (want_a.map(|v| v.into()), want_b.map(|v| v.into())),
                    "{mode:?}, index {}",
                    rec.index
                );
            }
            assert_eq!(store.digest(0), scratch.digest(0), "{mode:?}");
            let (queued, _) = log.take_repl().expect("retaining");
            let want = if mode == Replay::Recovery { (10..=17).collect() } else { vec![] };
            assert_eq!(indexes(&queued), want, "{mode:?}: only recovery queues records itself");
        }
    }

    #[test]
    fn a_refused_record_is_logged_and_reported() {
        let k = Bytes::from_static(b"k");
        let store = Store::new(2, Arc::new(OpLog::new(1 << 20)));
        store.replay(Replay::Recovery, None, &Record { term: 1, index: 1, op: set(&k, "text") });
        let incr = Record { term: 1, index: 2, op: Op::IncrBy { key: k.clone(), delta: 1 } };
        assert_eq!(store.replay(Replay::Replicated, None, &incr), Replayed::Refused(ApplyError::NotInteger));
        assert_eq!(store.log().last_index(), 2);
        assert_eq!(string(&store, &k), Some(b"text".to_vec()));
    }
}
