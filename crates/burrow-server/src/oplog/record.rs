//! Log records as they are framed for the WAL and the replication stream:
//!
//! ```text
//! +----------------+----------------+----------------+----------------+-----------+
//! | length (u32)   | crc32 (u32)    | term (u64)     | index (u64)    | op bytes  |
//! +----------------+----------------+----------------+----------------+-----------+
//! ```
//! `length` counts the bytes after the CRC (term + index + op); the CRC32
//! (crc32fast, IEEE) covers those same bytes. Readers check both before
//! trusting a byte.

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::op::{Op, OpDecodeError};

/// Length + CRC prefix.
pub const RECORD_HEADER_LEN: usize = 8;
/// term + index, inside the CRC-covered body.
const BODY_FIXED: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub term: u64,
    pub index: u64,
    pub op: Op,
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
pub fn encode_record_unsealed<B: AsRef<[u8]>>(term: u64, index: u64, op: &Op<B>, dst: &mut BytesMut) {
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
/// records written by [`encode_record_unsealed`], back to back.
pub fn seal_records(buf: &mut [u8]) {
    let mut pos = 0;
    while pos + RECORD_HEADER_LEN <= buf.len() {
        let len = BigEndian::read_u32(&buf[pos..pos + 4]) as usize;
        let end = (pos + RECORD_HEADER_LEN + len).min(buf.len());
        let crc = crc32fast::hash(&buf[pos + RECORD_HEADER_LEN..end]);
        BigEndian::write_u32(&mut buf[pos + 4..pos + 8], crc);
        pos = end;
    }
}

/// A record decoded in place: the op borrows from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub term: u64,
    pub index: u64,
    pub op: Op<&'a [u8]>,
    /// The whole framed record (length, CRC, body), as it was received.
    pub raw: &'a [u8],
}

/// Decodes the record at the start of `src`, returning it and the bytes it used.
pub fn decode_record(src: &Bytes) -> Result<(Record, usize), RecordError> {
    let (term, index, total) = check_record(src)?;
    let op = Op::decode(&src.slice(RECORD_HEADER_LEN + BODY_FIXED..total))?;
    Ok((Record { term, index, op }, total))
}

/// Like [`decode_record`], borrowing from `src` (no reference counting).
pub fn decode_record_ref(src: &[u8]) -> Result<(RecordRef<'_>, usize), RecordError> {
    let (term, index, total) = check_record(src)?;
    let op = Op::decode_ref(&src[RECORD_HEADER_LEN + BODY_FIXED..total])?;
    Ok((RecordRef { term, index, op, raw: &src[..total] }, total))
}

/// Checks the framing and CRC of the record at the start of `src`; returns
/// its term, index and total length.
fn check_record(src: &[u8]) -> Result<(u64, u64, usize), RecordError> {
    if src.len() < RECORD_HEADER_LEN {
        return Err(RecordError::Truncated { need: RECORD_HEADER_LEN, have: src.len() });
    }
    let len = BigEndian::read_u32(&src[..4]);
    if (len as usize) < BODY_FIXED + 1 {
        return Err(RecordError::BadLength(len));
    }
    let total = RECORD_HEADER_LEN + len as usize;
    if src.len() < total {
        return Err(RecordError::Truncated { need: total, have: src.len() });
    }
    let stored = BigEndian::read_u32(&src[4..8]);
    let body = &src[RECORD_HEADER_LEN..total];
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(RecordError::Crc { stored, computed });
    }
    Ok((BigEndian::read_u64(&body[..8]), BigEndian::read_u64(&body[8..16]), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_roundtrips_and_detects_corruption() {
        let op = Op::Set { key: Bytes::from_static(b"k"), value: Bytes::from_static(b"v"), expire_at: 0 };
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
}
