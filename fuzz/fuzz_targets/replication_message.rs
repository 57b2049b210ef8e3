//! Arbitrary bytes through the replication link's decoding: the frame
//! codec with link limits, then `wire::decode_frame`. Must never panic; any
//! message that decodes must re-encode to a frame that decodes to the same
//! message (what a leader or follower does with a peer's bytes).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{Codec, Limits};
use burrow_server::replication::wire::{decode_frame, encode, link_limits};

fuzz_target!(|data: &[u8]| {
    let limits = link_limits(&Limits { max_key: 64, max_value: 4096, max_frame: 16 + 255 + 64 + 4096 });
    let mut codec = Codec::server(limits);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        if let Ok(msg) = decode_frame(&frame) {
            let mut out = BytesMut::new();
            Codec::server(limits).encode(encode(&msg, frame.id), &mut out).expect("a decoded message re-encodes");
            let again = Codec::server(limits).decode(&mut out).expect("decodes").expect("one whole frame");
            assert_eq!(decode_frame(&again).expect("re-decodes"), msg);
        }
    }
});
