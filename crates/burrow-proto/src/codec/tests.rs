//! `peek` (the server's borrowed path) and `decode` (owned frames, for
//! `Framed` streams) share one header parser; these tests pin that they
//! accept, refuse and split exactly the same bytes.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::{Codec, CodecError, Limits, Peek};
use crate::frame::{Frame, HEADER_LEN, MAGIC_REQUEST, MAGIC_RESPONSE};

const SMALL: Limits = Limits { max_key: 16, max_value: 64, max_frame: HEADER_LEN + 255 + 16 + 64 };

fn frame(opcode: u8, id: u32, extras: &[u8], key: &[u8], value: &[u8]) -> Frame {
    Frame {
        extras: Bytes::copy_from_slice(extras),
        key: Bytes::copy_from_slice(key),
        value: Bytes::copy_from_slice(value),
        ..Frame::request(opcode, id)
    }
}

fn wire(frames: &[Frame]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for f in frames {
        Codec::server(SMALL).encode(f, &mut out).expect("encodable");
    }
    out.to_vec()
}

/// What one codec path made of a stream.
#[derive(Debug, PartialEq)]
enum Outcome {
    Frames(Vec<Frame>),
    /// Frames before the error, and the error's text.
    Failed(Vec<Frame>, String),
}

/// The server's way: append each chunk, then take every complete frame
/// with `peek` (borrowed) from a cursor, as the connection's batch does.
fn by_peek(codec: &Codec, raw: &[u8], chunk: usize) -> Outcome {
    let mut buf = Vec::new();
    let mut at = 0;
    let mut got = Vec::new();
    for piece in raw.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.peek(&buf[at..]) {
                Ok(Peek::Frame(f, len)) => {
                    assert_eq!(len, HEADER_LEN + f.extras.len() + f.key.len() + f.value.len());
                    got.push(owned(&f));
                    at += len;
                }
                Ok(Peek::Need(n)) => {
                    assert!(n == 0 || n > buf.len() - at, "Need({n}) with {} bytes held", buf.len() - at);
                    break;
                }
                Err(e) => return Outcome::Failed(got, e.to_string()),
            }
        }
    }
    Outcome::Frames(got)
}

/// The `Framed` way: `decode` consuming the buffer, remembering progress.
fn by_decode(codec: &mut Codec, raw: &[u8], chunk: usize) -> Outcome {
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for piece in raw.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => got.push(f),
                Ok(None) => break,
                Err(e) => return Outcome::Failed(got, e.to_string()),
            }
        }
    }
    Outcome::Frames(got)
}

fn owned(f: &crate::FrameRef<'_>) -> Frame {
    Frame { kind: f.kind, flags: f.flags, aux: f.aux, ..frame(f.opcode, f.id, f.extras, f.key, f.value) }
}

fn sample() -> Vec<Frame> {
    vec![
        frame(0x01, 1, &[], b"k", b"v"),
        frame(0x02, 2, &[0; 8], b"user:1", &[7; 64]),
        frame(0x03, u32::MAX, &[], &[], &[]),
        frame(0x04, 4, &[1, 2, 3], &[9; 16], b"x"),
    ]
}

#[test]
fn peek_and_decode_agree_on_every_chunk_size() {
    let frames = sample();
    let raw = wire(&frames);
    for chunk in 1..=raw.len() {
        let peeked = by_peek(&Codec::server(SMALL), &raw, chunk);
        assert_eq!(peeked, Outcome::Frames(frames.clone()), "chunk {chunk}");
        assert_eq!(by_decode(&mut Codec::server(SMALL), &raw, chunk), peeked, "chunk {chunk}");
    }
}

#[test]
fn peek_and_decode_agree_on_a_frame_split_at_every_offset() {
    let frames = sample();
    let raw = wire(&frames);
    for cut in 0..=raw.len() {
        let codec = Codec::server(SMALL);
        let mut decoder = Codec::server(SMALL);
        let mut buf = BytesMut::from(&raw[..cut]);
        let mut decoded = Vec::new();
        while let Some(f) = decoder.decode(&mut buf).expect("valid") {
            decoded.push(f);
        }
        let Outcome::Frames(peeked) = by_peek(&codec, &raw[..cut], cut.max(1)) else { panic!("valid") };
        assert_eq!(peeked, decoded, "cut at {cut}");
        buf.extend_from_slice(&raw[cut..]);
        while let Some(f) = decoder.decode(&mut buf).expect("valid") {
            decoded.push(f);
        }
        assert_eq!(decoded, frames, "cut at {cut}");
    }
}

#[test]
fn both_paths_refuse_a_bad_first_byte_before_a_whole_header() {
    for (codec, bad) in [(Codec::server(SMALL), MAGIC_RESPONSE), (Codec::client(SMALL), MAGIC_REQUEST)] {
        let err = codec.peek(&[bad]).expect_err("bad magic");
        assert!(matches!(err, CodecError::BadMagic { got, .. } if got == bad), "{err:?}");
        let err = codec.clone().decode(&mut BytesMut::from(&[bad][..])).expect_err("bad magic");
        assert!(matches!(err, CodecError::BadMagic { got, .. } if got == bad), "{err:?}");
    }
    assert!(matches!(Codec::server(SMALL).peek(&[]), Ok(Peek::Need(0))));
    assert!(matches!(Codec::server(SMALL).peek(&[MAGIC_REQUEST]), Ok(Peek::Need(0))));
}

#[test]
fn both_paths_refuse_an_oversize_length_from_the_header_alone() {
    let mut raw = wire(&[frame(0x01, 9, &[], b"k", b"v")]);
    raw[12..16].copy_from_slice(&65u32.to_be_bytes());
    let header = &raw[..HEADER_LEN];
    let peeked = Codec::server(SMALL).peek(header).expect_err("too large");
    let decoded = Codec::server(SMALL).decode(&mut BytesMut::from(header)).expect_err("too large");
    assert_eq!(peeked.to_string(), decoded.to_string());
    assert_eq!(peeked.request(), (9, 0x01));
    assert!(matches!(decoded, CodecError::ValueTooLarge { len: 65, max: 64, .. }), "{decoded:?}");
}

#[test]
fn a_stream_ending_inside_a_frame_is_truncated_and_a_clean_end_is_not() {
    let raw = wire(&[frame(0x01, 1, &[], b"key", b"value")]);
    for cut in 1..raw.len() {
        let mut codec = Codec::server(SMALL);
        let mut buf = BytesMut::from(&raw[..cut]);
        assert!(codec.decode(&mut buf).expect("valid prefix").is_none());
        let err = codec.decode_eof(&mut buf).expect_err("cut short");
        assert!(matches!(err, CodecError::Truncated { held } if held == cut), "cut {cut}: {err:?}");
        assert_eq!(err.status(), None, "nothing to answer");
    }
    let mut codec = Codec::server(SMALL);
    let mut buf = BytesMut::from(&raw[..]);
    assert!(codec.decode_eof(&mut buf).expect("whole").is_some());
    assert!(codec.decode_eof(&mut buf).expect("clean end").is_none());
}

/// A frame's bytes written by hand, lengths unchecked (some over `SMALL`).
fn raw_frame(magic: u8, version: u8, opcode: u8, extras: usize, key: usize, value: usize) -> Vec<u8> {
    let mut out = vec![magic, version, opcode, 0, 0, 0, 0, 7, extras as u8, 0];
    out.extend_from_slice(&(key as u16).to_be_bytes());
    out.extend_from_slice(&(value as u32).to_be_bytes());
    out.resize(HEADER_LEN + extras + key + value, 0x5a);
    out
}

proptest! {
    /// Frames mostly well formed (some over the limits, some with a bad
    /// magic or version), then arbitrary bytes, in arbitrary chunks: the
    /// borrowed and the owned path see the same frames and fail at the
    /// same point with the same error.
    #[test]
    fn peek_and_decode_agree_on_arbitrary_streams(
        frames in prop::collection::vec(
            (prop::sample::select(vec![MAGIC_REQUEST, MAGIC_REQUEST, MAGIC_REQUEST, MAGIC_RESPONSE]),
             prop::sample::select(vec![1u8, 1, 1, 2]), any::<u8>(), 0usize..4, 0usize..20, 0usize..70),
            0..6),
        tail in prop::collection::vec(any::<u8>(), 0..40),
        chunk in 1usize..40,
    ) {
        let mut raw = Vec::new();
        for (magic, version, opcode, e, k, v) in frames {
            raw.extend(raw_frame(magic, version, opcode, e, k, v));
        }
        raw.extend(tail);
        let peeked = by_peek(&Codec::server(SMALL), &raw, chunk);
        prop_assert_eq!(by_decode(&mut Codec::server(SMALL), &raw, chunk), peeked);
    }
}
