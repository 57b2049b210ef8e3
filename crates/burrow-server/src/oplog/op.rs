//! Logged operations and their binary encoding.
//!
//! An `Op` is deterministic: conditions have been resolved and times made
//! absolute by the node that accepted the write, so applying the same ops in
//! the same order to the same state always gives the same state — on the
//! leader, during WAL replay and on followers.

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use burrow_proto::End;

/// `B` is the byte container: `&[u8]` borrowed from a request on the live
/// path (no copies, no reference counts), `Bytes` when decoded from a WAL
/// segment or a replication stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<B = Bytes> {
    /// Replace the key with a string value; `expire_at` in unix ms, 0 = never.
    Set {
        key: B,
        value: B,
        expire_at: u64,
    },
    Del {
        key: B,
    },
    /// Set the absolute expiry (unix ms) of an existing key.
    Expire {
        key: B,
        at: u64,
    },
    Persist {
        key: B,
    },
    /// Add `delta` to the integer value (a missing key counts as 0).
    IncrBy {
        key: B,
        delta: i64,
    },
    /// Push values one by one at `end` (so LPUSH a b c leaves c first).
    Push {
        key: B,
        end: End,
        values: Vec<B>,
    },
    /// Pop exactly `count` values from `end` (the leader clamped it to the length).
    Pop {
        key: B,
        end: End,
        count: u32,
    },
    FlushAll,
    /// Changes nothing. A leader appends one at the start of its term so
    /// that the records before it commit (Raft §5.4.2: only a record of the
    /// leader's own term commits by counting replicas); the term is the
    /// record's (`oplog::Record::term`).
    Noop,
}

const TAG_SET: u8 = 1;
const TAG_DEL: u8 = 2;
const TAG_EXPIRE: u8 = 3;
const TAG_PERSIST: u8 = 4;
const TAG_INCRBY: u8 = 5;
const TAG_PUSH: u8 = 6;
const TAG_POP: u8 = 7;
const TAG_FLUSHALL: u8 = 8;
const TAG_NOOP: u8 = 9;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum OpDecodeError {
    #[error("op truncated")]
    Truncated,
    #[error("unknown op tag {0}")]
    UnknownTag(u8),
    #[error("bad deque end {0}")]
    BadEnd(u8),
    #[error("{0} trailing bytes after op")]
    Trailing(usize),
}

fn end_byte(end: End) -> u8 {
    match end {
        End::Left => 0,
        End::Right => 1,
    }
}

impl<B: AsRef<[u8]>> Op<B> {
    /// The key this op touches (`None` for FLUSHALL, which touches all,
    /// and for NOOP, which touches none).
    pub fn key(&self) -> Option<&[u8]> {
        match self {
            Op::Set { key, .. }
            | Op::Del { key }
            | Op::Expire { key, .. }
            | Op::Persist { key }
            | Op::IncrBy { key, .. }
            | Op::Push { key, .. }
            | Op::Pop { key, .. } => Some(key.as_ref()),
            Op::FlushAll | Op::Noop => None,
        }
    }

    /// Appends the binary encoding (documented in protocol.md, "Op log record format").
    pub fn encode(&self, dst: &mut BytesMut) {
        fn key(dst: &mut BytesMut, k: &[u8]) {
            dst.put_u16(k.len() as u16);
            dst.extend_from_slice(k);
        }
        fn blob(dst: &mut BytesMut, v: &[u8]) {
            dst.put_u32(v.len() as u32);
            dst.extend_from_slice(v);
        }
        match self {
            Op::Set { key: k, value, expire_at } => {
                let (k, value) = (k.as_ref(), value.as_ref());
                dst.reserve(1 + 2 + k.len() + 4 + value.len() + 8);
                dst.put_u8(TAG_SET);
                key(dst, k);
                blob(dst, value);
                dst.put_u64(*expire_at);
            }
            Op::Del { key: k } => {
                dst.put_u8(TAG_DEL);
                key(dst, k.as_ref());
            }
            Op::Expire { key: k, at } => {
                dst.put_u8(TAG_EXPIRE);
                key(dst, k.as_ref());
                dst.put_u64(*at);
            }
            Op::Persist { key: k } => {
                dst.put_u8(TAG_PERSIST);
                key(dst, k.as_ref());
            }
            Op::IncrBy { key: k, delta } => {
                dst.put_u8(TAG_INCRBY);
                key(dst, k.as_ref());
                dst.put_i64(*delta);
            }
            Op::Push { key: k, end, values } => {
                dst.put_u8(TAG_PUSH);
                key(dst, k.as_ref());
                dst.put_u8(end_byte(*end));
                dst.put_u32(values.len() as u32);
                for v in values {
                    blob(dst, v.as_ref());
                }
            }
            Op::Pop { key: k, end, count } => {
                dst.put_u8(TAG_POP);
                key(dst, k.as_ref());
                dst.put_u8(end_byte(*end));
                dst.put_u32(*count);
            }
            Op::FlushAll => dst.put_u8(TAG_FLUSHALL),
            Op::Noop => dst.put_u8(TAG_NOOP),
        }
    }
}

impl Op<Bytes> {
    /// Decodes exactly one op occupying all of `src`; keys and values are
    /// slices of `src` (no copies).
    pub fn decode(src: &Bytes) -> Result<Op, OpDecodeError> {
        let op = Op::decode_ref(src)?;
        let owned = |s: &[u8]| src.slice_ref(s);
        Ok(match op {
            Op::Set { key, value, expire_at } => Op::Set { key: owned(key), value: owned(value), expire_at },
            Op::Del { key } => Op::Del { key: owned(key) },
            Op::Expire { key, at } => Op::Expire { key: owned(key), at },
            Op::Persist { key } => Op::Persist { key: owned(key) },
            Op::IncrBy { key, delta } => Op::IncrBy { key: owned(key), delta },
            Op::Push { key, end, values } => {
                Op::Push { key: owned(key), end, values: values.into_iter().map(owned).collect() }
            }
            Op::Pop { key, end, count } => Op::Pop { key: owned(key), end, count },
            Op::FlushAll => Op::FlushAll,
            Op::Noop => Op::Noop,
        })
    }
}

impl<'a> Op<&'a [u8]> {
    /// Decodes exactly one op occupying all of `src`, borrowing keys and
    /// values from it: what a follower applying a stream needs, with no
    /// reference counting per field.
    pub fn decode_ref(src: &'a [u8]) -> Result<Op<&'a [u8]>, OpDecodeError> {
        let mut r = Reader { src, pos: 0 };
        let tag = r.u8()?;
        let op = match tag {
            TAG_SET => Op::Set { key: r.key()?, value: r.blob()?, expire_at: r.u64()? },
            TAG_DEL => Op::Del { key: r.key()? },
            TAG_EXPIRE => Op::Expire { key: r.key()?, at: r.u64()? },
            TAG_PERSIST => Op::Persist { key: r.key()? },
            TAG_INCRBY => Op::IncrBy { key: r.key()?, delta: r.u64()? as i64 },
            TAG_PUSH => {
                let key = r.key()?;
                let end = r.end()?;
                let n = r.u32()? as usize;
                let mut values = Vec::with_capacity(n.min(src.len() / 4));
                for _ in 0..n {
                    values.push(r.blob()?);
                }
                Op::Push { key, end, values }
            }
            TAG_POP => Op::Pop { key: r.key()?, end: r.end()?, count: r.u32()? },
            TAG_FLUSHALL => Op::FlushAll,
            TAG_NOOP => Op::Noop,
            t => return Err(OpDecodeError::UnknownTag(t)),
        };
        if r.pos != src.len() {
            return Err(OpDecodeError::Trailing(src.len() - r.pos));
        }
        Ok(op)
    }
}

struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpDecodeError> {
        if self.src.len() - self.pos < n {
            return Err(OpDecodeError::Truncated);
        }
        let b = &self.src[self.pos..self.pos + n];
        self.pos += n;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, OpDecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, OpDecodeError> {
        Ok(BigEndian::read_u32(self.take(4)?))
    }
    fn u64(&mut self) -> Result<u64, OpDecodeError> {
        Ok(BigEndian::read_u64(self.take(8)?))
    }
    fn key(&mut self) -> Result<&'a [u8], OpDecodeError> {
        let n = BigEndian::read_u16(self.take(2)?) as usize;
        self.take(n)
    }
    fn blob(&mut self) -> Result<&'a [u8], OpDecodeError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn end(&mut self) -> Result<End, OpDecodeError> {
        match self.u8()? {
            0 => Ok(End::Left),
            1 => Ok(End::Right),
            b => Err(OpDecodeError::BadEnd(b)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(op: Op) {
        let mut b = BytesMut::new();
        op.encode(&mut b);
        let bytes = b.freeze();
        assert_eq!(Op::decode(&bytes).unwrap(), op);
        for cut in 0..bytes.len() {
            assert!(Op::decode(&bytes.slice(..cut)).is_err(), "prefix of {cut} bytes decoded");
        }
    }

    #[test]
    fn every_op_roundtrips_and_rejects_every_truncation() {
        let k = Bytes::from_static(b"key");
        roundtrip(Op::Set { key: k.clone(), value: Bytes::from_static(b"v"), expire_at: 42 });
        roundtrip(Op::Del { key: k.clone() });
        roundtrip(Op::Expire { key: k.clone(), at: 1 << 40 });
        roundtrip(Op::Persist { key: k.clone() });
        roundtrip(Op::IncrBy { key: k.clone(), delta: -7 });
        roundtrip(Op::Push {
            key: k.clone(),
            end: End::Left,
            values: vec![Bytes::from_static(b"a"), Bytes::new()],
        });
        roundtrip(Op::Pop { key: k, end: End::Right, count: 3 });
        roundtrip(Op::FlushAll);
        roundtrip(Op::Noop);
    }
}
