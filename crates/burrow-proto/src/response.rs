//! Responses: the body types, a zero-copy encoder for the server, and the
//! typed [`Reply`] the client decodes.

use byteorder::{BigEndian, ByteOrder};
use bytes::{Bytes, BytesMut};
use thiserror::Error;

use super::body::{decode_array, ArrayError};
use super::cluster::{decode_cluster, encode_cluster, ClusterError, ClusterView};
use super::frame::{put_header, Frame, FrameKind, MAGIC_RESPONSE};
use super::slowlog::{decode_slowlog, encode_slowlog, SlowLogEntry, SlowLogError};
use super::status::Status;

/// How a response's value is to be read (byte 9 of a response).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyType {
    /// No value: the key or element does not exist (`(nil)`). Value empty.
    Nil = 0x00,
    /// Plain acknowledgement (`OK`). Value empty.
    Ok = 0x01,
    /// Raw bytes (GET, LPOP, PING with payload).
    Bytes = 0x02,
    /// A signed 64-bit integer, 8 bytes big-endian.
    Int = 0x03,
    /// An ARRAY body (count, then length-prefixed items).
    Array = 0x04,
    /// UTF-8 text: INFO, TYPE, PONG, and the message of every error status.
    Text = 0x05,
}

impl BodyType {
    pub fn from_u8(b: u8) -> Option<BodyType> {
        [BodyType::Nil, BodyType::Ok, BodyType::Bytes, BodyType::Int, BodyType::Array, BodyType::Text]
            .into_iter()
            .find(|t| *t as u8 == b)
    }
}

/// Appends one response frame to `dst`. The server calls this directly with
/// slices borrowed from the store, so a GET copies its value exactly once.
pub fn encode_response(
    dst: &mut BytesMut,
    opcode: u8,
    id: u32,
    status: Status,
    body: BodyType,
    extras: &[u8],
    value: &[u8],
) {
    dst.reserve(super::HEADER_LEN + extras.len() + value.len());
    put_header(
        dst,
        MAGIC_RESPONSE,
        opcode,
        status as u8,
        id,
        extras.len() as u8,
        body as u8,
        0,
        value.len() as u32,
    );
    dst.extend_from_slice(extras);
    dst.extend_from_slice(value);
}

/// A decoded response, as the client library hands it to callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Ok,
    Bytes(Bytes),
    Int(i64),
    Array(Vec<Bytes>),
    Text(String),
    /// SCAN: the next cursor (0 when the iteration is complete) and this batch of keys.
    Scan {
        cursor: u64,
        keys: Vec<Bytes>,
    },
    /// CLUSTER: the cluster as the node sees it (an ARRAY body on the wire).
    Cluster(ClusterView),
    /// SLOWLOG GET: the entries, newest first (an ARRAY body on the wire).
    SlowLog(Vec<SlowLogEntry>),
    /// Any status other than OK, with the server's message.
    Error {
        status: Status,
        message: String,
    },
}

/// A response frame that does not follow protocol.md.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReplyError {
    #[error("unknown status 0x{0:02x}")]
    UnknownStatus(u8),
    #[error("unknown body type 0x{0:02x}")]
    UnknownBodyType(u8),
    #[error("INT body must be 8 bytes, got {0}")]
    BadInt(usize),
    #[error("{0:?} body must be empty, got {1} bytes")]
    UnexpectedValue(BodyType, usize),
    #[error("SCAN reply extras must be 8 bytes, got {0}")]
    BadCursor(usize),
    #[error("TEXT body is not UTF-8")]
    BadText,
    #[error("bad ARRAY body")]
    Array(#[from] ArrayError),
    #[error("bad CLUSTER reply")]
    Cluster(#[from] ClusterError),
    #[error("bad SLOWLOG reply")]
    SlowLog(#[from] SlowLogError),
}

impl Reply {
    /// Decodes a response frame. Three opcodes read their ARRAY body their
    /// own way: SCAN (the next cursor in the extras), CLUSTER (items of
    /// tagged fields) and SLOWLOG (fixed-layout entries).
    pub fn from_frame(f: &Frame) -> Result<Reply, ReplyError> {
        let status = Status::from_u8(f.flags).ok_or(ReplyError::UnknownStatus(f.flags))?;
        let body = BodyType::from_u8(f.aux).ok_or(ReplyError::UnknownBodyType(f.aux))?;
        let text = |v: &Bytes| String::from_utf8(v.to_vec()).map_err(|_| ReplyError::BadText);
        if status != Status::Ok {
            let message = match body {
                BodyType::Text => text(&f.value)?,
                _ => String::new(),
            };
            return Ok(Reply::Error { status, message });
        }
        Ok(match body {
            BodyType::Nil | BodyType::Ok if !f.value.is_empty() => {
                return Err(ReplyError::UnexpectedValue(body, f.value.len()))
            }
            BodyType::Nil => Reply::Nil,
            BodyType::Ok => Reply::Ok,
            BodyType::Bytes => Reply::Bytes(f.value.clone()),
            BodyType::Int => {
                if f.value.len() != 8 {
                    return Err(ReplyError::BadInt(f.value.len()));
                }
                Reply::Int(BigEndian::read_i64(&f.value))
            }
            BodyType::Array if f.opcode == super::Opcode::Cluster as u8 => {
                Reply::Cluster(decode_cluster(&f.value)?)
            }
            BodyType::Array if f.opcode == super::Opcode::SlowLog as u8 => {
                Reply::SlowLog(decode_slowlog(&f.value)?)
            }
            BodyType::Array => {
                let items = decode_array(&f.value)?;
                if f.opcode == super::Opcode::Scan as u8 {
                    if f.extras.len() != 8 {
                        return Err(ReplyError::BadCursor(f.extras.len()));
                    }
                    Reply::Scan { cursor: BigEndian::read_u64(&f.extras), keys: items }
                } else {
                    Reply::Array(items)
                }
            }
            BodyType::Text => Reply::Text(text(&f.value)?),
        })
    }

    /// Encodes this reply as a response frame (used by tests and tools; the
    /// server writes replies with [`encode_response`] directly).
    pub fn to_frame(&self, opcode: u8, id: u32) -> Frame {
        let mut dst = BytesMut::new();
        let (status, body, extras, value): (Status, BodyType, Vec<u8>, Bytes) = match self {
            Reply::Nil => (Status::Ok, BodyType::Nil, vec![], Bytes::new()),
            Reply::Ok => (Status::Ok, BodyType::Ok, vec![], Bytes::new()),
            Reply::Bytes(b) => (Status::Ok, BodyType::Bytes, vec![], b.clone()),
            Reply::Int(i) => (Status::Ok, BodyType::Int, vec![], Bytes::copy_from_slice(&i.to_be_bytes())),
            Reply::Array(items) => {
                let mut b = BytesMut::new();
                super::encode_array(items, &mut b);
                (Status::Ok, BodyType::Array, vec![], b.freeze())
            }
            Reply::Scan { cursor, keys } => {
                let mut b = BytesMut::new();
                super::encode_array(keys, &mut b);
                (Status::Ok, BodyType::Array, cursor.to_be_bytes().to_vec(), b.freeze())
            }
            Reply::Cluster(view) => {
                let mut b = BytesMut::new();
                encode_cluster(view, &mut b);
                (Status::Ok, BodyType::Array, vec![], b.freeze())
            }
            Reply::SlowLog(entries) => {
                let mut b = BytesMut::new();
                encode_slowlog(entries, &mut b);
                (Status::Ok, BodyType::Array, vec![], b.freeze())
            }
            Reply::Text(t) => (Status::Ok, BodyType::Text, vec![], Bytes::copy_from_slice(t.as_bytes())),
            Reply::Error { status, message } => {
                (*status, BodyType::Text, vec![], Bytes::copy_from_slice(message.as_bytes()))
            }
        };
        encode_response(&mut dst, opcode, id, status, body, &extras, &value);
        let extras_end = super::HEADER_LEN + extras.len();
        let all = dst.freeze();
        Frame {
            kind: FrameKind::Response,
            opcode,
            flags: status as u8,
            id,
            aux: body as u8,
            extras: all.slice(super::HEADER_LEN..extras_end),
            key: Bytes::new(),
            value: all.slice(extras_end..),
        }
    }
}
