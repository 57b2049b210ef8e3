//! The HELLO reply: what a client needs to start on a connection — the
//! protocol version, whether AUTH is required, and this connection's
//! challenge (protocol.md §8.12).
//!
//! A BYTES body holding a run of fields, `tag (u8) | length (u16 BE) |
//! value`, as in CLUSTER's items: fields added later are skipped by older
//! readers, and a field this build requires but does not find is an error.

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::auth::{Nonce, NONCE_LEN};

/// Field tags.
mod tag {
    pub(super) const VERSION: u8 = 0x01;
    pub(super) const AUTH_REQUIRED: u8 = 0x02;
    pub(super) const NONCE: u8 = 0x03;
    pub(super) const NODE_ID: u8 = 0x04;
}

/// A server's answer to HELLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelloInfo {
    /// The protocol version the server speaks.
    pub version: u8,
    /// Every command but PING, HELLO and AUTH answers NOAUTH until AUTH succeeds.
    pub auth_required: bool,
    /// The server's challenge for this connection: good for one AUTH.
    pub nonce: Nonce,
    /// The node's id in its cluster (0 on a standalone server).
    pub node_id: u64,
}

/// A HELLO reply that does not follow protocol.md §8.12.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HelloError {
    #[error("HELLO reply: field header truncated")]
    Truncated,
    #[error("HELLO reply: field 0x{tag:02x} runs past the body's end")]
    FieldPastEnd { tag: u8 },
    #[error("HELLO reply: field 0x{tag:02x} must be {want} bytes, got {got}")]
    BadLength { tag: u8, want: usize, got: usize },
    #[error("HELLO reply: field 0x{tag:02x} appears twice")]
    Duplicate { tag: u8 },
    #[error("HELLO reply: required field 0x{tag:02x} missing")]
    Missing { tag: u8 },
}

/// Appends `hello`'s fields, in tag order, to `dst` (the BYTES value).
pub fn encode_hello(hello: &HelloInfo, dst: &mut BytesMut) {
    let mut field = |tag: u8, value: &[u8]| {
        dst.put_u8(tag);
        dst.put_u16(value.len() as u16);
        dst.put_slice(value);
    };
    field(tag::VERSION, &[hello.version]);
    field(tag::AUTH_REQUIRED, &[hello.auth_required as u8]);
    field(tag::NONCE, &hello.nonce.0);
    field(tag::NODE_ID, &hello.node_id.to_be_bytes());
}

/// Decodes a HELLO reply's BYTES value; unknown tags are skipped.
pub fn decode_hello(mut body: &[u8]) -> Result<HelloInfo, HelloError> {
    let mut seen: Vec<u8> = Vec::new();
    let (mut version, mut auth, mut nonce, mut node_id) = (None, None, None, None);
    while !body.is_empty() {
        if body.len() < 3 {
            return Err(HelloError::Truncated);
        }
        let (t, len) = (body[0], BigEndian::read_u16(&body[1..3]) as usize);
        let value = body.get(3..3 + len).ok_or(HelloError::FieldPastEnd { tag: t })?;
        if seen.contains(&t) {
            return Err(HelloError::Duplicate { tag: t });
        }
        seen.push(t);
        let sized = |want: usize| {
            if value.len() == want {
                Ok(value)
            } else {
                Err(HelloError::BadLength { tag: t, want, got: value.len() })
            }
        };
        match t {
            tag::VERSION => version = Some(sized(1)?[0]),
            tag::AUTH_REQUIRED => auth = Some(sized(1)?[0] != 0),
            tag::NONCE => {
                let mut n = [0u8; NONCE_LEN];
                n.copy_from_slice(sized(NONCE_LEN)?);
                nonce = Some(Nonce(n));
            }
            tag::NODE_ID => node_id = Some(BigEndian::read_u64(sized(8)?)),
            _ => {}
        }
        body = &body[3 + len..];
    }
    let need = |tag: u8| HelloError::Missing { tag };
    Ok(HelloInfo {
        version: version.ok_or(need(tag::VERSION))?,
        auth_required: auth.ok_or(need(tag::AUTH_REQUIRED))?,
        nonce: nonce.ok_or(need(tag::NONCE))?,
        node_id: node_id.ok_or(need(tag::NODE_ID))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HelloInfo {
        HelloInfo { version: 1, auth_required: true, nonce: Nonce([7; NONCE_LEN]), node_id: 3 }
    }

    #[test]
    fn round_trips_and_skips_unknown_fields() {
        let mut b = BytesMut::new();
        encode_hello(&sample(), &mut b);
        assert_eq!(decode_hello(&b), Ok(sample()));
        b.extend_from_slice(&[0x7f, 0, 2, 1, 2]);
        assert_eq!(decode_hello(&b), Ok(sample()));
    }

    #[test]
    fn malformed_bodies_are_refused_precisely() {
        let mut b = BytesMut::new();
        encode_hello(&sample(), &mut b);
        for cut in 0..b.len() {
            assert!(decode_hello(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut dup = b.clone();
        dup.extend_from_slice(&[tag::VERSION, 0, 1, 1]);
        assert_eq!(decode_hello(&dup), Err(HelloError::Duplicate { tag: tag::VERSION }));
        let short_nonce = [tag::NONCE, 0, 2, 1, 2];
        assert_eq!(
            decode_hello(&short_nonce),
            Err(HelloError::BadLength { tag: tag::NONCE, want: NONCE_LEN, got: 2 })
        );
        assert_eq!(decode_hello(&[]), Err(HelloError::Missing { tag: tag::VERSION }));
    }
}
