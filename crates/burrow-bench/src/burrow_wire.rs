//! Burrow's binary protocol for the load loop: request templates and a
//! zero-copy reply checker working straight on the 16-byte header.
//!
//! The checker is stricter than the client library needs to be: a reply
//! must carry the response magic and version, the request's opcode and id,
//! status OK, and the body type the command promises (PING → TEXT "PONG",
//! SET → OK, GET/LPOP → BYTES or NIL, INCR/LPUSH → 8-byte INT).

use byteorder::{BigEndian, ByteOrder};

use super::wire::{printable, FramingError, Reply, Template, Wire};
use super::workload::{Op, KEY_DIGITS, LIST_KEY};
use burrow_proto::{BodyType, Opcode, Status, HEADER_LEN, MAGIC_REQUEST, MAGIC_RESPONSE, VERSION};

/// Largest reply the checker will wait for; a longer declared length means
/// the stream is garbage rather than that the server sent 512 MiB.
pub(crate) const MAX_REPLY: usize = 512 * 1024 * 1024;

/// Offset of the request id in a header.
const ID_AT: usize = 4;

/// The Burrow protocol, with one template per [`Op`].
#[derive(Debug, Clone)]
pub(crate) struct BurrowWire {
    templates: Vec<Template>,
}

impl BurrowWire {
    /// Templates for requests carrying `value` (SET and LPUSH).
    pub(crate) fn new(value: &[u8]) -> BurrowWire {
        BurrowWire { templates: Op::ALL.iter().map(|op| template(*op, value)).collect() }
    }
}

fn opcode(op: Op) -> Opcode {
    match op {
        Op::Ping => Opcode::Ping,
        Op::Set => Opcode::Set,
        Op::Get => Opcode::Get,
        Op::Incr => Opcode::Incr,
        Op::LPush => Opcode::LPush,
        Op::LPop => Opcode::LPop,
    }
}

fn template(op: Op, value: &[u8]) -> Template {
    let (key, key_at): (Vec<u8>, Option<usize>) = match op.key_prefix() {
        Some(prefix) => {
            let mut k = prefix.to_vec();
            k.resize(prefix.len() + KEY_DIGITS, b'0');
            (k, Some(HEADER_LEN + prefix.len()))
        }
        None if matches!(op, Op::LPush | Op::LPop) => (LIST_KEY.to_vec(), None),
        None => (Vec::new(), None),
    };
    let body: Vec<u8> = match op {
        Op::Set => value.to_vec(),
        // LPUSH's value is an ARRAY body holding one item.
        Op::LPush => {
            let mut b = Vec::with_capacity(8 + value.len());
            b.extend_from_slice(&1u32.to_be_bytes());
            b.extend_from_slice(&(value.len() as u32).to_be_bytes());
            b.extend_from_slice(value);
            b
        }
        _ => Vec::new(),
    };
    let mut bytes = Vec::with_capacity(HEADER_LEN + key.len() + body.len());
    bytes.extend_from_slice(&[MAGIC_REQUEST, VERSION, opcode(op) as u8, 0, 0, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&(key.len() as u16).to_be_bytes());
    bytes.extend_from_slice(&(body.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&key);
    bytes.extend_from_slice(&body);
    Template { bytes, key_at, id_at: Some(ID_AT) }
}

/// Whether a complete, well-framed reply header answers `op`/`id` correctly.
fn judge(h: &[u8], value: &[u8], op: Op, id: u32) -> bool {
    let body = h[9];
    let header_ok =
        h[2] == opcode(op) as u8 && h[3] == Status::Ok as u8 && BigEndian::read_u32(&h[4..8]) == id;
    header_ok
        && match op {
            Op::Ping => body == BodyType::Text as u8 && value == b"PONG",
            Op::Set => body == BodyType::Ok as u8 && value.is_empty(),
            Op::Get | Op::LPop => {
                body == BodyType::Bytes as u8 || (body == BodyType::Nil as u8 && value.is_empty())
            }
            Op::Incr | Op::LPush => body == BodyType::Int as u8 && value.len() == 8,
        }
}

impl Wire for BurrowWire {
    #[inline]
    fn encode(&self, dst: &mut Vec<u8>, op: Op, key: u64, id: u32) {
        self.templates[op.index()].append(dst, key, id);
    }

    #[inline]
    fn parse(&self, buf: &[u8], op: Op, id: u32) -> Result<Option<Reply>, FramingError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let h = &buf[..HEADER_LEN];
        if h[0] != MAGIC_RESPONSE || h[1] != VERSION {
            return Err(FramingError(format!(
                "not a Burrow response: header starts {:02x} {:02x} (expected {MAGIC_RESPONSE:02x} {VERSION:02x})",
                h[0], h[1]
            )));
        }
        let extras = h[8] as usize;
        let key = BigEndian::read_u16(&h[10..12]) as usize;
        let value = BigEndian::read_u32(&h[12..16]) as usize;
        let len = HEADER_LEN + extras + key + value;
        if len > MAX_REPLY {
            return Err(FramingError(format!("reply declares {len} bytes (limit {MAX_REPLY})")));
        }
        if buf.len() < len {
            return Ok(None);
        }
        // Replies to these commands carry no extras or key; anything else is wrong.
        let ok = extras == 0 && key == 0 && judge(h, &buf[HEADER_LEN..len], op, id);
        Ok(Some(Reply { len, ok }))
    }

    fn refused(&self, reply: &[u8]) -> bool {
        let status = reply.get(3).copied().and_then(Status::from_u8);
        matches!(status, Some(Status::NotLeader | Status::NoLeader))
    }

    fn describe(&self, reply: &[u8], op: Op, id: u32) -> String {
        if reply.len() < HEADER_LEN {
            return format!("short reply {}", printable(reply));
        }
        let status = match Status::from_u8(reply[3]) {
            Some(s) => s.name().to_string(),
            None => format!("0x{:02x}", reply[3]),
        };
        let body = match BodyType::from_u8(reply[9]) {
            Some(b) => format!("{b:?}"),
            None => format!("0x{:02x}", reply[9]),
        };
        let got_id = BigEndian::read_u32(&reply[4..8]);
        let value = &reply[HEADER_LEN + reply[8] as usize + BigEndian::read_u16(&reply[10..12]) as usize..];
        format!(
            "{} (id {id}): got opcode 0x{:02x} id {got_id} status {status} body {body} value \"{}\"",
            opcode(op).name(),
            reply[2],
            printable(value)
        )
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use tokio_util::codec::Encoder;

    use super::*;
    use crate::workload::key_for;
    use burrow_proto::{encode_response, Codec, Limits, Request};

    fn encoded(req: Request, id: u32) -> Vec<u8> {
        let mut dst = BytesMut::new();
        Codec::client(Limits::default()).encode(req.to_frame(id), &mut dst).unwrap();
        dst.to_vec()
    }

    #[test]
    fn templates_match_the_library_encoder() {
        let wire = BurrowWire::new(b"vvvv");
        let cases: Vec<(Op, u64, Request)> = vec![
            (Op::Ping, 0, Request::Ping { payload: Default::default() }),
            (
                Op::Set,
                42,
                Request::Set {
                    key: key_for(Op::Set, 42).into(),
                    value: "vvvv".into(),
                    ttl_ms: None,
                    condition: Default::default(),
                    keep_ttl: false,
                },
            ),
            (Op::Get, 99_999, Request::Get { key: key_for(Op::Get, 99_999).into() }),
            (Op::Incr, 3, Request::Incr { key: key_for(Op::Incr, 3).into() }),
            (
                Op::LPush,
                0,
                Request::Push {
                    key: "mylist".into(),
                    end: burrow_proto::End::Left,
                    values: vec!["vvvv".into()],
                },
            ),
            (Op::LPop, 0, Request::Pop { key: "mylist".into(), end: burrow_proto::End::Left, count: None }),
        ];
        for (op, key, req) in cases {
            let mut dst = Vec::new();
            wire.encode(&mut dst, op, key, 0xDEAD_BEEF);
            assert_eq!(dst, encoded(req, 0xDEAD_BEEF), "{op:?}");
        }
    }

    fn response(op: Op, id: u32, status: Status, body: BodyType, value: &[u8]) -> Vec<u8> {
        let mut dst = BytesMut::new();
        encode_response(&mut dst, opcode(op) as u8, id, status, body, &[], value);
        dst.to_vec()
    }

    #[test]
    fn accepts_the_right_reply_for_each_op() {
        let wire = BurrowWire::new(b"x");
        let good = [
            (Op::Ping, BodyType::Text, &b"PONG"[..]),
            (Op::Set, BodyType::Ok, b""),
            (Op::Get, BodyType::Bytes, b"value"),
            (Op::Get, BodyType::Nil, b""),
            (Op::Incr, BodyType::Int, &7i64.to_be_bytes()),
            (Op::LPush, BodyType::Int, &1i64.to_be_bytes()),
            (Op::LPop, BodyType::Bytes, b"x"),
            (Op::LPop, BodyType::Nil, b""),
        ];
        for (op, body, value) in good {
            let r = response(op, 5, Status::Ok, body, value);
            assert_eq!(
                wire.parse(&r, op, 5).unwrap(),
                Some(Reply { len: r.len(), ok: true }),
                "{op:?} {body:?}"
            );
        }
    }

    #[test]
    fn rejects_wrong_replies_without_losing_framing() {
        let wire = BurrowWire::new(b"x");
        let bad = [
            (
                "error status",
                response(Op::Set, 5, Status::WrongType, BodyType::Text, b"WRONGTYPE"),
                Op::Set,
                5,
            ),
            ("wrong id", response(Op::Set, 6, Status::Ok, BodyType::Ok, b""), Op::Set, 5),
            ("wrong opcode", response(Op::Get, 5, Status::Ok, BodyType::Ok, b""), Op::Set, 5),
            ("wrong body", response(Op::Get, 5, Status::Ok, BodyType::Int, &[0; 8]), Op::Get, 5),
            ("ping not pong", response(Op::Ping, 5, Status::Ok, BodyType::Text, b"PANG"), Op::Ping, 5),
            ("short int", response(Op::Incr, 5, Status::Ok, BodyType::Int, &[0; 4]), Op::Incr, 5),
            ("nil with value", response(Op::Get, 5, Status::Ok, BodyType::Nil, b"v"), Op::Get, 5),
        ];
        for (what, r, op, id) in bad {
            assert_eq!(wire.parse(&r, op, id).unwrap(), Some(Reply { len: r.len(), ok: false }), "{what}");
            assert!(!wire.describe(&r, op, id).is_empty());
        }
        let r = response(Op::Set, 5, Status::WrongType, BodyType::Text, b"boom");
        let d = wire.describe(&r, Op::Set, 5);
        assert!(d.contains("WRONGTYPE") && d.contains("boom"), "{d}");
    }

    #[test]
    fn partial_input_needs_more_at_every_cut() {
        let wire = BurrowWire::new(b"x");
        let r = response(Op::Get, 1, Status::Ok, BodyType::Bytes, b"hello world");
        for cut in 0..r.len() {
            assert_eq!(wire.parse(&r[..cut], Op::Get, 1).unwrap(), None, "cut {cut}");
        }
        // Trailing bytes of the next reply do not change this one.
        let mut two = r.clone();
        two.extend_from_slice(&r);
        assert_eq!(wire.parse(&two, Op::Get, 1).unwrap(), Some(Reply { len: r.len(), ok: true }));
    }

    #[test]
    fn garbage_is_a_framing_error() {
        let wire = BurrowWire::new(b"x");
        assert!(wire.parse(b"+OK\r\n and some more bytes", Op::Set, 1).is_err());
        let mut huge = response(Op::Get, 1, Status::Ok, BodyType::Bytes, b"");
        huge[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(wire.parse(&huge, Op::Get, 1).unwrap_err().0.contains("limit"));
    }
}
