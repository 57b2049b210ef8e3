//! Arbitrary bytes through both of the server codec's paths, split into
//! chunks the way TCP reads split them: `Codec::peek` (what the server's
//! connection executes: frames borrowed from its read buffer) and
//! `Decoder::decode` (owned frames, what `Framed` streams use). They must
//! agree frame for frame and fail at the same point with the same error;
//! at the end of input `decode_eof` must report a frame cut short. Must
//! never panic, never yield a frame over the limits, and every request that
//! parses must survive the encode → decode → parse round trip unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{Codec, CodecError, Frame, FrameRef, Limits, Peek, Request, HEADER_LEN};

/// Small limits so the fuzzer reaches "over the limit" and "exactly at it" cheaply.
const LIMITS: Limits = Limits { max_key: 64, max_value: 4096, max_frame: HEADER_LEN + 255 + 64 + 4096 };

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so one input explores one split.
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let peeker = Codec::server(LIMITS);
    let mut decoder = Codec::server(LIMITS);
    // The server's read buffer and how far its batches consumed it.
    let mut held = Vec::new();
    let mut at = 0;
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        held.extend_from_slice(piece);
        buf.extend_from_slice(piece);
        loop {
            let peeked = peeker.peek(&held[at..]);
            match (peeked, decoder.decode(&mut buf)) {
                (Ok(Peek::Frame(borrowed, len)), Ok(Some(frame))) => {
                    assert_eq!(borrowed, frame.as_ref(), "peek and decode see the same frame");
                    assert_eq!(len, frame.encoded_len());
                    at += len;
                    check(&frame);
                }
                (Ok(Peek::Need(n)), Ok(None)) => {
                    assert!(n == 0 || n > held.len() - at, "Need({n}) with {} bytes held", held.len() - at);
                    break;
                }
                // A broken stream: the server answers and closes; so do we.
                (Err(p), Err(d)) => {
                    assert_eq!(p.to_string(), d.to_string(), "the same error on both paths");
                    assert_eq!(p.request(), d.request());
                    assert!(d.status().is_some(), "decode errors are answerable: {d}");
                    return;
                }
                (p, d) => panic!("peek and decode disagree: {p:?} vs {d:?}"),
            }
        }
    }
    match decoder.decode_eof(&mut buf) {
        Ok(None) => assert_eq!(at, held.len(), "a clean end only between frames"),
        Err(CodecError::Truncated { held: n }) => assert_eq!(n, held.len() - at),
        other => panic!("decode_eof after every frame was taken: {other:?}"),
    }
});

/// Limits hold, and a request that parses round-trips unchanged.
fn check(frame: &Frame) {
    assert!(frame.key.len() <= LIMITS.max_key);
    assert!(frame.value.len() <= LIMITS.max_value);
    assert!(frame.encoded_len() <= LIMITS.max_frame);
    let parsed: Result<Request, _> = Request::from_frame(frame);
    let borrowed: FrameRef<'_> = frame.as_ref();
    // The server parses the borrowed frame: it must accept what this accepts.
    assert_eq!(Request::parse(&borrowed).ok().map(|r| r.is_write()), parsed.as_ref().ok().map(|r| r.is_write()));
    if let Ok(req) = parsed {
        let mut wire = BytesMut::new();
        let mut enc = Codec::server(LIMITS);
        enc.encode(&req.to_frame(frame.id), &mut wire).expect("a parsed request re-encodes");
        let again = enc.decode(&mut wire).expect("re-decodes").expect("whole frame");
        assert!(wire.is_empty());
        assert_eq!(Request::from_frame(&again), Ok(req));
    }
}
