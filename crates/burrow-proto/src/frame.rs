//! One frame on the wire: a 16-byte header, then extras, key and value.

use byteorder::{BigEndian, ByteOrder};
use bytes::{Bytes, BytesMut};

/// Size of the fixed header that starts every frame, in both directions.
pub const HEADER_LEN: usize = 16;
/// First byte of every request frame.
pub const MAGIC_REQUEST: u8 = 0xB7;
/// First byte of every response frame.
pub const MAGIC_RESPONSE: u8 = 0xB8;
/// Protocol version spoken by this build (byte 1 of every frame).
pub const VERSION: u8 = 0x01;

/// Which direction a frame travels; decided by its magic byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    Request,
    Response,
}

impl FrameKind {
    pub fn magic(self) -> u8 {
        match self {
            FrameKind::Request => MAGIC_REQUEST,
            FrameKind::Response => MAGIC_RESPONSE,
        }
    }
}

/// A decoded frame. Payload fields share the connection's read buffer
/// (`Bytes` slices), so decoding copies nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    /// Raw opcode byte; unknown values are kept so the server can answer them.
    pub opcode: u8,
    /// Request flags, or the response status byte.
    pub flags: u8,
    /// Chosen by the client, echoed in the response.
    pub id: u32,
    /// Reserved (0) in requests; the body type in responses.
    pub aux: u8,
    pub extras: Bytes,
    pub key: Bytes,
    pub value: Bytes,
}

/// A frame borrowed from a buffer: what the server executes, so a request
/// costs no allocation and no reference counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    pub kind: FrameKind,
    pub opcode: u8,
    pub flags: u8,
    pub id: u32,
    pub aux: u8,
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl Frame {
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef {
            kind: self.kind,
            opcode: self.opcode,
            flags: self.flags,
            id: self.id,
            aux: self.aux,
            extras: &self.extras,
            key: &self.key,
            value: &self.value,
        }
    }
}

/// The parsed fixed header, before the payload has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub magic: u8,
    pub version: u8,
    pub opcode: u8,
    pub flags: u8,
    pub id: u32,
    pub extras_len: u8,
    pub aux: u8,
    pub key_len: u16,
    pub value_len: u32,
}

impl Header {
    pub(crate) fn parse(b: &[u8]) -> Header {
        Header {
            magic: b[0],
            version: b[1],
            opcode: b[2],
            flags: b[3],
            id: BigEndian::read_u32(&b[4..8]),
            extras_len: b[8],
            aux: b[9],
            key_len: BigEndian::read_u16(&b[10..12]),
            value_len: BigEndian::read_u32(&b[12..16]),
        }
    }

    /// Bytes that follow the header. Cannot overflow: at most 255 + 65535 + u32::MAX.
    pub(crate) fn payload_len(&self) -> u64 {
        self.extras_len as u64 + self.key_len as u64 + self.value_len as u64
    }

    /// Where extras end and key ends within the payload (the value follows).
    #[inline]
    pub(crate) fn sections(&self) -> (usize, usize) {
        let e = self.extras_len as usize;
        (e, e + self.key_len as usize)
    }
}

/// Appends one header to `dst`. Lengths are checked by the caller.
#[allow(clippy::too_many_arguments)]
pub(crate) fn put_header(
    dst: &mut BytesMut,
    magic: u8,
    opcode: u8,
    flags: u8,
    id: u32,
    extras_len: u8,
    aux: u8,
    key_len: u16,
    value_len: u32,
) {
    // Built on the stack and appended with one copy: per-field puts each
    // re-check capacity, which showed up on the reply path.
    let mut h = [0u8; HEADER_LEN];
    h[0] = magic;
    h[1] = VERSION;
    h[2] = opcode;
    h[3] = flags;
    h[4..8].copy_from_slice(&id.to_be_bytes());
    h[8] = extras_len;
    h[9] = aux;
    h[10..12].copy_from_slice(&key_len.to_be_bytes());
    h[12..16].copy_from_slice(&value_len.to_be_bytes());
    dst.extend_from_slice(&h);
}

impl Frame {
    /// A request frame with no payload.
    pub fn request(opcode: u8, id: u32) -> Frame {
        Frame {
            kind: FrameKind::Request,
            opcode,
            flags: 0,
            id,
            aux: 0,
            extras: Bytes::new(),
            key: Bytes::new(),
            value: Bytes::new(),
        }
    }

    /// Total encoded size of this frame.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.extras.len() + self.key.len() + self.value.len()
    }
}
