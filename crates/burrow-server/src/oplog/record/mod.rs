//! Log records as they are framed for the WAL and the replication stream
//! (protocol.md §10.1):
//!
//! ```text
//! +----------------+----------------+----------------+----------------+-----------+
//! | length (u32)   | crc32 (u32)    | term (u64)     | index (u64)    | op bytes  |
//! +----------------+----------------+----------------+----------------+-----------+
//! ```
//! `length` counts the bytes after the CRC (term + index + op); the CRC32
//! (crc32fast, IEEE) covers those same bytes.
//!
//! This module is the only place that knows the layout. Writers use
//! [`encode_record`] (or [`encode_record_unsealed`] then [`seal_records`]);
//! every reader — the WAL scan, both backlogs, the replication wire and the
//! follower — goes through [`Records`] (a buffer of records back to back) or
//! [`RecordRef::parse`] (one record), which check the length and the CRC
//! before a byte is trusted. The op is decoded only when asked
//! ([`RecordRef::decode`]): the wire forwards records it never applies.

mod iter;

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::op::{Op, OpDecodeError};

pub use iter::{BadRecord, Records};

/// Length + CRC prefix.
pub(crate) const RECORD_HEADER_LEN: usize = 8;
/// term + index: the fixed start of the CRC-covered body.
pub(crate) const RECORD_BODY_FIXED: usize = 16;
/// The smallest valid record: header, term, index and a one-byte op.
pub(crate) const MIN_RECORD_LEN: usize = RECORD_HEADER_LEN + RECORD_BODY_FIXED + 1;
/// The smallest valid `length` field.
const MIN_BODY_LEN: u32 = (RECORD_BODY_FIXED + 1) as u32;

/// A decoded record. `B` is `Bytes` for owned ops, `&[u8]` for ops that
/// borrow from the buffer they were read from ([`RecordRef::decode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<B = Bytes> {
    pub term: u64,
    pub index: u64,
    pub op: Op<B>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record truncated: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    #[error("record length {0} is impossible")]
    BadLength(u32),
    #[error("record CRC mismatch (stored {stored:08x}, computed {computed:08x})")]
    Crc { stored: u32, computed: u32 },
    #[error("bad op in record")]
    Op(#[from] OpDecodeError),
}

/// Appends one framed record.
pub fn encode_record<B: AsRef<[u8]>>(term: u64, index: u64, op: &Op<B>, dst: &mut BytesMut) {
    let start = dst.len();
    encode_record_unsealed(term, index, op, dst);
    seal_records(&mut dst[start..]);
}

/// Appends one framed record with its CRC left at zero. The op log keeps
/// records this way and seals them (see [`seal_records`]) only where they
/// leave memory — in the WAL writer's thread, or when served to a reader —
/// so the CRC is off the write path.
pub(super) fn encode_record_unsealed<B: AsRef<[u8]>>(term: u64, index: u64, op: &Op<B>, dst: &mut BytesMut) {
    let start = dst.len();
    dst.put_u32(0);
    dst.put_u32(0);
    dst.put_u64(term);
    dst.put_u64(index);
    op.encode(dst);
    let body_len = dst.len() - start - RECORD_HEADER_LEN;
    BigEndian::write_u32(&mut dst[start..start + 4], body_len as u32);
}

/// Computes and stores the CRC of every record in `buf`, which holds whole
/// records written by [`encode_record_unsealed`], back to back. Stops at
/// anything else (a broken contract: readers then report that record).
pub(crate) fn seal_records(buf: &mut [u8]) {
    let mut pos = 0;
    while pos < buf.len() {
        let framed = framed_len(&buf[pos..]);
        debug_assert!(framed.is_ok(), "sealing a partial record at {pos}: {framed:?}");
        let Ok(len) = framed else { return };
        let crc = crc32fast::hash(&buf[pos + RECORD_HEADER_LEN..pos + len]);
        BigEndian::write_u32(&mut buf[pos + 4..pos + 8], crc);
        pos += len;
    }
}

/// Term and index of the record at the start of `src`, read from its
/// header without any check (`None` if `src` is too short to hold them):
/// for buffers of records this process framed, or already checked.
pub(crate) fn record_position(src: &[u8]) -> Option<(u64, u64)> {
    let fixed = src.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + RECORD_BODY_FIXED)?;
    Some((BigEndian::read_u64(&fixed[..8]), BigEndian::read_u64(&fixed[8..])))
}

/// The whole length (header included) of the record at the start of
/// `src`, once its `length` field is possible and that many bytes are there.
fn framed_len(src: &[u8]) -> Result<usize, RecordError> {
    let Some(header) = src.get(..RECORD_HEADER_LEN) else {
        return Err(RecordError::Truncated { need: RECORD_HEADER_LEN, have: src.len() });
    };
    let len = BigEndian::read_u32(&header[..4]);
    if len < MIN_BODY_LEN {
        return Err(RecordError::BadLength(len));
    }
    // Saturating: a length near u32::MAX on a 32-bit target is just "truncated".
    let total = (len as usize).saturating_add(RECORD_HEADER_LEN);
    if src.len() < total {
        return Err(RecordError::Truncated { need: total, have: src.len() });
    }
    Ok(total)
}

/// Checks the CRC of a record whose framing [`framed_len`] accepted.
fn check_crc(rec: &[u8]) -> Result<(), RecordError> {
    let stored = BigEndian::read_u32(&rec[4..8]);
    let computed = crc32fast::hash(&rec[RECORD_HEADER_LEN..]);
    if stored != computed {
        return Err(RecordError::Crc { stored, computed });
    }
    Ok(())
}

/// A record framed in a buffer, borrowed from it; its op is decoded on
/// demand ([`RecordRef::decode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub term: u64,
    pub index: u64,
    /// The whole framed record (length, CRC, body), as it was found.
    pub raw: &'a [u8],
}

impl<'a> RecordRef<'a> {
    /// The record at the start of `src`: its length checked against the
    /// format and against `src`, then its CRC. Bytes after it are ignored.
    pub fn parse(src: &'a [u8]) -> Result<RecordRef<'a>, RecordError> {
        RecordRef::parse_with(src, true)
    }

    /// Like [`RecordRef::parse`] without the CRC check, for a record this
    /// process framed (its CRC may not be computed yet) or one already
    /// checked when it arrived. The length is still checked, so this never
    /// reads outside `src`.
    pub fn parse_trusted(src: &'a [u8]) -> Result<RecordRef<'a>, RecordError> {
        RecordRef::parse_with(src, false)
    }

    #[inline]
    fn parse_with(src: &'a [u8], crc: bool) -> Result<RecordRef<'a>, RecordError> {
        let raw = &src[..framed_len(src)?];
        if crc {
            check_crc(raw)?;
        }
        let (term, index) = record_position(raw).expect("framed_len checked the length");
        Ok(RecordRef { term, index, raw })
    }

    /// The op's encoding: the rest of the record after term and index.
    pub fn op_bytes(&self) -> &'a [u8] {
        &self.raw[RECORD_HEADER_LEN + RECORD_BODY_FIXED..]
    }

    /// Decodes the op, borrowing keys and values from the buffer.
    pub fn decode(&self) -> Result<Record<&'a [u8]>, RecordError> {
        Ok(Record { term: self.term, index: self.index, op: Op::decode_ref(self.op_bytes())? })
    }
}

/// Decodes the record at the start of `src` into an owned [`Record`] (keys
/// and values are slices of `src`), returning it and the bytes it used.
pub fn decode_record(src: &Bytes) -> Result<(Record, usize), RecordError> {
    let RecordRef { term, index, raw } = RecordRef::parse(src)?;
    let op = Op::decode(&src.slice(RECORD_HEADER_LEN + RECORD_BODY_FIXED..raw.len()))?;
    Ok((Record { term, index, op }, raw.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Op {
        Op::Set { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v"), expire_at: 0 }
    }

    #[test]
    fn record_roundtrips_and_detects_corruption() {
        let op = set();
        let mut b = BytesMut::new();
        encode_record(3, 17, &op, &mut b);
        let bytes = b.freeze();
        let (rec, used) = decode_record(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(rec, Record { term: 3, index: 17, op });
        for cut in 0..bytes.len() {
            assert!(decode_record(&bytes.slice(..cut)).is_err());
        }
        for bit in 0..(bytes.len() - RECORD_HEADER_LEN) * 8 {
            let mut bad = bytes.to_vec();
            bad[RECORD_HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(decode_record(&Bytes::from(bad)), Err(RecordError::Crc { .. })));
        }
    }

    #[test]
    fn a_borrowed_record_decodes_the_same_op_and_trusted_parsing_skips_only_the_crc() {
        let mut b = BytesMut::new();
        encode_record_unsealed(2, 9, &set(), &mut b);
        assert!(matches!(RecordRef::parse(&b), Err(RecordError::Crc { stored: 0, .. })));
        let unsealed = RecordRef::parse_trusted(&b).unwrap();
        assert_eq!((unsealed.term, unsealed.index, unsealed.raw.len()), (2, 9, b.len()));
        seal_records(&mut b);
        let rec = RecordRef::parse(&b).unwrap();
        assert_eq!(
            rec.decode().unwrap(),
            Record { term: 2, index: 9, op: Op::decode_ref(rec.op_bytes()).unwrap() }
        );
        assert_eq!(record_position(&b), Some((2, 9)));
        assert_eq!(record_position(&b[..MIN_RECORD_LEN - 2]), None);
        for cut in 0..b.len() {
            assert!(RecordRef::parse_trusted(&b[..cut]).is_err(), "trusted parsing still checks the length");
        }
    }

    #[test]
    fn sealing_computes_the_crc_encode_record_writes() {
        let ops = [set(), Op::FlushAll, Op::Del { key: Bytes::from_static(b"gone") }];
        let (mut sealed, mut unsealed) = (BytesMut::new(), BytesMut::new());
        for (i, op) in ops.iter().enumerate() {
            encode_record(1, i as u64 + 1, op, &mut sealed);
            encode_record_unsealed(1, i as u64 + 1, op, &mut unsealed);
        }
        assert_ne!(sealed, unsealed);
        seal_records(&mut unsealed);
        assert_eq!(sealed, unsealed);
    }

    /// A record whose op does not decode is caught by `decode`, not by
    /// parsing: the framing and CRC are fine.
    #[test]
    fn a_bad_op_under_a_good_crc_is_reported_on_decode() {
        let mut body = vec![0u8; RECORD_BODY_FIXED];
        body.push(0xEE);
        let mut b = BytesMut::new();
        b.put_u32(body.len() as u32);
        b.put_u32(crc32fast::hash(&body));
        b.extend_from_slice(&body);
        let rec = RecordRef::parse(&b).unwrap();
        assert_eq!(rec.decode(), Err(RecordError::Op(OpDecodeError::UnknownTag(0xEE))));
        assert_eq!(decode_record(&b.freeze()).unwrap_err(), RecordError::Op(OpDecodeError::UnknownTag(0xEE)));
    }
}
