//! The frame codec: a `tokio_util::codec` Decoder/Encoder over `BytesMut`.
//!
//! Declared lengths are checked against [`Limits`] from the 16-byte header
//! alone, before a single payload byte is buffered, so a hostile length can
//! never make the server reserve memory. Decode progress is remembered
//! (`state`), so a payload split over many reads parses its header once.

use bytes::{Buf, BytesMut};
use thiserror::Error;
use tokio_util::codec::{Decoder, Encoder};

use super::frame::{put_header, Frame, FrameKind, FrameRef, Header, HEADER_LEN, VERSION};
use super::status::Status;

/// Size limits enforced by the codec in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest key accepted, in bytes (at most 65,535: the field is a u16).
    pub max_key: usize,
    /// Largest value accepted, in bytes.
    pub max_value: usize,
    /// Largest whole frame (header + extras + key + value), in bytes.
    pub max_frame: usize,
}

impl Limits {
    pub const DEFAULT_MAX_KEY: usize = 16 * 1024;
    pub const DEFAULT_MAX_VALUE: usize = 16 * 1024 * 1024;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key: Limits::DEFAULT_MAX_KEY,
            max_value: Limits::DEFAULT_MAX_VALUE,
            max_frame: HEADER_LEN + 255 + Limits::DEFAULT_MAX_KEY + Limits::DEFAULT_MAX_VALUE,
        }
    }
}

/// Why a byte stream cannot be framed. Every variant but `Io` is answered with
/// [`CodecError::status`] (echoing the id where the header gave one). After a
/// bad magic or version the stream cannot be resynchronised and the connection
/// closes; after a length over a limit the server may skip the declared
/// payload instead ([`Codec::declared_len`]). `Truncated` and `Io` have
/// nothing left to answer.
#[derive(Debug, Error)]
pub enum CodecError {
    #[error("bad magic byte 0x{got:02x} (expected 0x{expected:02x})")]
    BadMagic { got: u8, expected: u8 },
    #[error("unsupported protocol version {got} (this server speaks {VERSION})")]
    BadVersion { got: u8, id: u32, opcode: u8 },
    #[error("key length {len} over the limit of {max} bytes")]
    KeyTooLarge { len: usize, max: usize, id: u32, opcode: u8 },
    #[error("value length {len} over the limit of {max} bytes")]
    ValueTooLarge { len: usize, max: usize, id: u32, opcode: u8 },
    #[error("frame length {len} over the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: usize, id: u32, opcode: u8 },
    /// The stream ended `held` bytes into a frame (only at end of input).
    #[error("the stream ended inside a frame ({held} bytes of it received)")]
    Truncated { held: usize },
    #[error("i/o error")]
    Io(#[from] std::io::Error),
}

impl CodecError {
    /// The status to answer with, or `None` for I/O errors (nothing to answer).
    pub fn status(&self) -> Option<Status> {
        match self {
            CodecError::BadMagic { .. } | CodecError::BadVersion { .. } => Some(Status::BadFrame),
            CodecError::KeyTooLarge { .. }
            | CodecError::ValueTooLarge { .. }
            | CodecError::FrameTooLarge { .. } => Some(Status::TooLarge),
            CodecError::Truncated { .. } | CodecError::Io(_) => None,
        }
    }

    /// Request id and opcode of the offending frame, where the header was trustworthy.
    pub fn request(&self) -> (u32, u8) {
        match *self {
            CodecError::BadVersion { id, opcode, .. }
            | CodecError::KeyTooLarge { id, opcode, .. }
            | CodecError::ValueTooLarge { id, opcode, .. }
            | CodecError::FrameTooLarge { id, opcode, .. } => (id, opcode),
            CodecError::BadMagic { .. } | CodecError::Truncated { .. } | CodecError::Io(_) => (0, 0),
        }
    }
}

/// Decodes frames of one direction (`expect`) and encodes frames of either.
#[derive(Debug, Clone)]
pub struct Codec {
    limits: Limits,
    expect: FrameKind,
    /// Header of the frame whose payload is still arriving.
    pending: Option<Header>,
}

impl Codec {
    /// The server's codec: decodes requests.
    pub fn server(limits: Limits) -> Codec {
        Codec { limits, expect: FrameKind::Request, pending: None }
    }

    /// The client's codec: decodes responses.
    pub fn client(limits: Limits) -> Codec {
        Codec { limits, expect: FrameKind::Response, pending: None }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The one header parser behind [`Codec::peek`] and `decode`: the
    /// header at the start of `src`, checked (magic, version, limits), or
    /// `None` while fewer than 16 bytes are there. A wrong first byte fails
    /// at once: garbage is refused without waiting for a whole header.
    #[inline]
    fn head(&self, src: &[u8]) -> Result<Option<Header>, CodecError> {
        let expected = self.expect.magic();
        let Some(bytes) = src.get(..HEADER_LEN) else {
            return match src.first() {
                Some(&got) if got != expected => Err(CodecError::BadMagic { got, expected }),
                _ => Ok(None),
            };
        };
        let h = Header::parse(bytes);
        if h.magic != expected {
            return Err(CodecError::BadMagic { got: h.magic, expected });
        }
        let (id, opcode) = (h.id, h.opcode);
        if h.version != VERSION {
            return Err(CodecError::BadVersion { got: h.version, id, opcode });
        }
        check_lengths(&self.limits, h.key_len as usize, h.value_len as u64, h.payload_len(), id, opcode)?;
        Ok(Some(h))
    }
}

fn check_lengths(
    limits: &Limits,
    key_len: usize,
    value_len: u64,
    payload_len: u64,
    id: u32,
    opcode: u8,
) -> Result<(), CodecError> {
    if key_len > limits.max_key {
        return Err(CodecError::KeyTooLarge { len: key_len, max: limits.max_key, id, opcode });
    }
    if value_len > limits.max_value as u64 {
        let len = usize::try_from(value_len).unwrap_or(usize::MAX);
        return Err(CodecError::ValueTooLarge { len, max: limits.max_value, id, opcode });
    }
    let total = HEADER_LEN as u64 + payload_len;
    if total > limits.max_frame as u64 {
        return Err(CodecError::FrameTooLarge { len: total, max: limits.max_frame, id, opcode });
    }
    Ok(())
}

impl Codec {
    /// The whole length (header and payload) that the header at the start
    /// of `src` declares, whatever the limits; `None` until 16 bytes are
    /// there. A server that refused a frame as over a limit uses it to skip
    /// the payload and keep the connection (protocol.md §7).
    pub fn declared_len(src: &[u8]) -> Option<u64> {
        let h = Header::parse(src.get(..HEADER_LEN)?);
        Some(HEADER_LEN as u64 + h.payload_len())
    }
}

/// What [`Codec::peek`] found at the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek<'a> {
    /// A complete frame, borrowed, and how many bytes it occupies.
    Frame(FrameRef<'a>, usize),
    /// Not complete yet: the buffer must hold at least this many bytes
    /// (0 = the header itself is incomplete).
    Need(usize),
}

impl Codec {
    /// Looks at the frame at the start of `src` without consuming or
    /// copying anything — the server's hot path. Same header parser and
    /// limits as `decode`, so both accept and refuse exactly the same bytes.
    #[inline]
    pub fn peek<'a>(&self, src: &'a [u8]) -> Result<Peek<'a>, CodecError> {
        let Some(h) = self.head(src)? else { return Ok(Peek::Need(0)) };
        // Lengths passed the limits, so this fits in usize.
        let total = HEADER_LEN + h.payload_len() as usize;
        let Some(payload) = src.get(HEADER_LEN..total) else { return Ok(Peek::Need(total)) };
        let (e, k) = h.sections();
        Ok(Peek::Frame(
            FrameRef {
                // The magic passed `head`: the frame travels the expected way.
                kind: self.expect,
                opcode: h.opcode,
                flags: h.flags,
                id: h.id,
                aux: h.aux,
                extras: &payload[..e],
                key: &payload[e..k],
                value: &payload[k..],
            },
            total,
        ))
    }
}

impl Decoder for Codec {
    type Item = Frame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        let h = match self.pending.take() {
            Some(h) => h,
            None => {
                let Some(h) = self.head(src)? else { return Ok(None) };
                src.advance(HEADER_LEN);
                h
            }
        };
        // Lengths passed `head`, so this fits in usize and under max_frame.
        let len = h.payload_len() as usize;
        if src.len() < len {
            src.reserve(len - src.len());
            self.pending = Some(h);
            return Ok(None);
        }
        let payload = src.split_to(len).freeze();
        let (e, k) = h.sections();
        Ok(Some(Frame {
            kind: self.expect,
            opcode: h.opcode,
            flags: h.flags,
            id: h.id,
            aux: h.aux,
            extras: payload.slice(..e),
            key: payload.slice(e..k),
            value: payload.slice(k..),
        }))
    }

    /// At the end of the stream: the last frames, then `Truncated` if the
    /// peer stopped inside one (tokio-util's default would report an
    /// untyped i/o error).
    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, CodecError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        let held = src.len() + if self.pending.is_some() { HEADER_LEN } else { 0 };
        if held == 0 {
            return Ok(None);
        }
        src.clear();
        self.pending = None;
        Err(CodecError::Truncated { held })
    }
}

impl Encoder<&Frame> for Codec {
    type Error = CodecError;

    /// Appends `frame`; refuses (appending nothing) a frame the peer would reject.
    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let extras_len = u8::try_from(frame.extras.len()).map_err(|_| CodecError::FrameTooLarge {
            len: frame.encoded_len() as u64,
            max: self.limits.max_frame,
            id: frame.id,
            opcode: frame.opcode,
        })?;
        let payload = (frame.extras.len() + frame.key.len() + frame.value.len()) as u64;
        check_lengths(
            &self.limits,
            frame.key.len(),
            frame.value.len() as u64,
            payload,
            frame.id,
            frame.opcode,
        )?;
        dst.reserve(frame.encoded_len());
        put_header(
            dst,
            frame.kind.magic(),
            frame.opcode,
            frame.flags,
            frame.id,
            extras_len,
            frame.aux,
            frame.key.len() as u16,
            frame.value.len() as u32,
        );
        dst.extend_from_slice(&frame.extras);
        dst.extend_from_slice(&frame.key);
        dst.extend_from_slice(&frame.value);
        Ok(())
    }
}

impl Encoder<Frame> for Codec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&frame, dst)
    }
}

#[cfg(test)]
mod tests;
