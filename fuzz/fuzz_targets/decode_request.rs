//! Arbitrary bytes through the server's decoder, split into chunks the way
//! TCP reads split them, then through `Request::from_frame`. Must never
//! panic, never yield a frame over the limits, and every request that parses
//! must survive the encode → decode → parse round trip unchanged.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{Codec, Limits, Request, HEADER_LEN};

/// Small limits so the fuzzer reaches "over the limit" and "exactly at it" cheaply.
const LIMITS: Limits = Limits { max_key: 64, max_value: 4096, max_frame: HEADER_LEN + 255 + 64 + 4096 };

fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so one input explores one split.
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = (chunk as usize % 64) + 1;
    let mut codec = Codec::server(LIMITS);
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.key.len() <= LIMITS.max_key);
                    assert!(frame.value.len() <= LIMITS.max_value);
                    assert!(frame.encoded_len() <= LIMITS.max_frame);
                    if let Ok(req) = Request::from_frame(&frame) {
                        let mut wire = BytesMut::new();
                        let mut enc = Codec::server(LIMITS);
                        enc.encode(&req.to_frame(frame.id), &mut wire).expect("a parsed request re-encodes");
                        let again = enc.decode(&mut wire).expect("re-decodes").expect("whole frame");
                        assert!(wire.is_empty());
                        assert_eq!(Request::from_frame(&again), Ok(req));
                    }
                }
                Ok(None) => break,
                // A broken stream: the server answers and closes; so do we.
                Err(e) => {
                    assert!(e.status().is_some(), "decode errors are answerable: {e}");
                    return;
                }
            }
        }
    }
});
