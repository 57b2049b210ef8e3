//! [`Records`]: the one reader of a buffer of records back to back (a WAL
//! segment's body, a RECORDS message's value, the op log's queues).
//!
//! It yields each record borrowed from the buffer, and stops at the first
//! one that is unusable with its byte offset, without guessing what follows:
//! whether bad bytes are a torn tail or damage in the middle is the
//! caller's rule (the WAL looks for a valid record further on; the
//! replication wire refuses the whole batch).

use std::iter::FusedIterator;

use thiserror::Error;

use super::{RecordError, RecordRef};

/// An unusable record: where it starts in the buffer, and why.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("bad record at byte offset {offset}")]
pub struct BadRecord {
    pub offset: usize,
    #[source]
    pub error: RecordError,
}

/// Iterator over the records of a buffer, in order.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    pos: usize,
    check_crc: bool,
    failed: bool,
}

impl<'a> Records<'a> {
    /// Checks each record's length and CRC before yielding it: for bytes
    /// from a file or a socket.
    pub fn new(buf: &'a [u8]) -> Records<'a> {
        Records { buf, pos: 0, check_crc: true, failed: false }
    }

    /// Checks lengths only (see [`RecordRef::parse_trusted`]): for buffers
    /// this process framed itself, whose CRCs may not be computed yet, or
    /// whose records were checked when they arrived.
    pub fn trusted(buf: &'a [u8]) -> Records<'a> {
        Records { check_crc: false, ..Records::new(buf) }
    }

    /// Where the next record starts: the end of the last one yielded.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordRef<'a>, BadRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos == self.buf.len() {
            return None;
        }
        match RecordRef::parse_with(&self.buf[self.pos..], self.check_crc) {
            Ok(rec) => {
                self.pos += rec.raw.len();
                Some(Ok(rec))
            }
            Err(error) => {
                self.failed = true;
                Some(Err(BadRecord { offset: self.pos, error }))
            }
        }
    }
}

impl FusedIterator for Records<'_> {}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, Bytes, BytesMut};
    use proptest::prelude::*;

    use super::*;
    use crate::oplog::record::{encode_record, Record, RECORD_HEADER_LEN};
    use crate::oplog::Op;
    use burrow_proto::End;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    fn ops() -> Vec<Op> {
        vec![
            Op::Set { key: b("k"), value: b("value"), expire_at: 7 },
            Op::FlushAll,
            Op::Push { key: b("q"), end: End::Left, values: vec![b("a"), b("bc")] },
            Op::IncrBy { key: b("n"), delta: -3 },
        ]
    }

    /// `ops()` framed back to back from index 10, with each record's start
    /// (and the end of the buffer last).
    fn buffer() -> (Vec<u8>, Vec<usize>) {
        let mut buf = BytesMut::new();
        let mut starts = Vec::new();
        for (i, op) in ops().iter().enumerate() {
            starts.push(buf.len());
            encode_record(2, 10 + i as u64, op, &mut buf);
        }
        starts.push(buf.len());
        (buf.to_vec(), starts)
    }

    /// What iterating `buf` gives: the indexes of the records yielded, and
    /// the error it stopped at (checking it stays stopped).
    fn walk(mut it: Records<'_>) -> (Vec<u64>, Option<BadRecord>) {
        let mut indexes = Vec::new();
        let mut bad = None;
        for item in it.by_ref() {
            match item {
                Ok(rec) => indexes.push(rec.index),
                Err(e) => bad = Some(e),
            }
        }
        assert!(it.next().is_none(), "fused");
        (indexes, bad)
    }

    #[test]
    fn records_back_to_back_come_out_in_order_with_their_ops() {
        let (buf, starts) = buffer();
        let mut it = Records::new(&buf);
        for (i, op) in ops().into_iter().enumerate() {
            assert_eq!(it.offset(), starts[i]);
            let rec = it.next().unwrap().unwrap();
            assert_eq!(rec.raw, &buf[starts[i]..starts[i + 1]]);
            let Record { term, index, op: got } = rec.decode().unwrap();
            assert_eq!((term, index), (2, 10 + i as u64));
            assert_eq!(Op::decode(&Bytes::copy_from_slice(rec.op_bytes())).unwrap(), op);
            assert_eq!(got.key(), op.key());
        }
        assert_eq!(it.offset(), buf.len());
        assert!(it.next().is_none());
        assert_eq!(walk(Records::trusted(&buf)), ((10..14).collect(), None));
        assert_eq!(walk(Records::new(&[])), (vec![], None));
    }

    #[test]
    fn every_truncation_yields_the_whole_records_then_a_truncated_one_at_its_offset() {
        let (buf, starts) = buffer();
        for cut in 0..=buf.len() {
            let whole = starts.iter().skip(1).filter(|&&end| end <= cut).count();
            let (indexes, bad) = walk(Records::new(&buf[..cut]));
            assert_eq!(indexes, (10..10 + whole as u64).collect::<Vec<_>>(), "cut at {cut}");
            let start = starts[whole];
            if start == cut {
                assert_eq!(bad, None, "a cut on a record boundary loses nothing");
                continue;
            }
            let have = cut - start;
            let need = if have < RECORD_HEADER_LEN { RECORD_HEADER_LEN } else { starts[whole + 1] - start };
            let error = RecordError::Truncated { need, have };
            assert_eq!(bad, Some(BadRecord { offset: start, error }), "cut at {cut}");
            let (trusted, bad) = walk(Records::trusted(&buf[..cut]));
            assert_eq!((trusted.len(), bad.map(|e| e.offset)), (whole, Some(start)), "trusted, cut at {cut}");
        }
    }

    #[test]
    fn every_bit_flip_stops_the_iteration_at_the_damaged_record() {
        let (buf, starts) = buffer();
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let damaged = starts.iter().rposition(|&s| s <= bit / 8).unwrap();
            let (indexes, err) = walk(Records::new(&bad));
            assert_eq!(indexes, (10..10 + damaged as u64).collect::<Vec<_>>(), "bit {bit}");
            let err = err.unwrap_or_else(|| panic!("bit {bit} went unnoticed"));
            assert_eq!(err.offset, starts[damaged], "bit {bit}");
            if bit / 8 >= starts[damaged] + 4 {
                // CRC or body: the length still holds, the CRC cannot.
                assert!(matches!(err.error, RecordError::Crc { .. }), "bit {bit}: {err:?}");
            }
        }
    }

    #[test]
    fn a_torn_tail_and_damage_in_the_middle_are_both_reported_where_they_start() {
        let (buf, starts) = buffer();
        // Torn: the last record is cut short by a crash.
        let torn = &buf[..buf.len() - 3];
        let (indexes, bad) = walk(Records::new(torn));
        assert_eq!(indexes, vec![10, 11, 12]);
        assert!(
            matches!(bad, Some(BadRecord { offset, error: RecordError::Truncated { .. } }) if offset == starts[3])
        );
        // Damaged: a byte of the second record's op. Nothing after it is
        // yielded, though the records after it are intact — telling the two
        // apart is the caller's rule (the WAL looks further on).
        let mut middle = buf.clone();
        middle[starts[2] - 1] ^= 0xFF;
        let (indexes, bad) = walk(Records::new(&middle));
        assert_eq!(indexes, vec![10]);
        assert!(
            matches!(bad, Some(BadRecord { offset, error: RecordError::Crc { .. } }) if offset == starts[1])
        );
        assert_eq!(walk(Records::new(&middle[starts[2]..])), (vec![12, 13], None));
    }

    #[test]
    fn impossible_lengths_are_refused_before_anything_is_read() {
        let (buf, starts) = buffer();
        let with_length = |len: u32| {
            let mut b = buf[..starts[1]].to_vec();
            b.put_u32(len);
            b.extend_from_slice(&buf[starts[1] + 4..]);
            b
        };
        for len in 0..=16u32 {
            let (indexes, bad) = walk(Records::new(&with_length(len)));
            assert_eq!(indexes, vec![10]);
            assert_eq!(bad, Some(BadRecord { offset: starts[1], error: RecordError::BadLength(len) }));
            assert_eq!(
                walk(Records::trusted(&with_length(len))).1.map(|e| e.error),
                Some(RecordError::BadLength(len))
            );
        }
        let have = buf.len() - starts[1];
        for len in [have as u32 - RECORD_HEADER_LEN as u32 + 1, u32::MAX] {
            let need = len as usize + RECORD_HEADER_LEN;
            let (_, bad) = walk(Records::trusted(&with_length(len)));
            assert_eq!(bad.map(|e| e.error), Some(RecordError::Truncated { need, have }), "length {len}");
        }
    }

    proptest! {
        /// Whatever the bytes, the iterator never panics, yields records that
        /// tile the buffer from its start, and stops at the first bad one.
        #[test]
        fn arbitrary_bytes_tile_the_buffer_up_to_the_first_bad_record(
            seed in proptest::collection::vec(any::<u8>(), 0..200),
            records in 0usize..4,
            trusted in any::<bool>(),
        ) {
            let mut buf = BytesMut::new();
            for i in 0..records {
                encode_record(1, i as u64, &Op::Del { key: Bytes::copy_from_slice(&seed[..seed.len().min(i * 3)]) }, &mut buf);
            }
            buf.extend_from_slice(&seed);
            let mut it = if trusted { Records::trusted(&buf) } else { Records::new(&buf) };
            let mut end = 0;
            for item in it.by_ref() {
                match item {
                    Ok(rec) => {
                        prop_assert_eq!(rec.raw.as_ptr(), buf[end..].as_ptr());
                        end += rec.raw.len();
                    }
                    Err(e) => {
                        prop_assert_eq!(e.offset, end);
                        prop_assert!(end < buf.len());
                    }
                }
            }
            prop_assert!(end >= buf.len() - seed.len() || seed.is_empty() || end == it.offset());
            prop_assert_eq!(it.offset(), end);
        }
    }
}
