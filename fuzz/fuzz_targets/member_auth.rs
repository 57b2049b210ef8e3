//! Arbitrary bytes through a member-auth exchange's decoding (protocol.md §12.7): the
//! frame codec with peer-link limits, then `member_auth::decode`, as a member
//! reads the first frames of a link anyone may open. Must never panic;
//! any message that decodes must re-encode to a frame that decodes to the
//! same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{Codec, Limits, HEADER_LEN};
use burrow_server::replication::member_auth::{decode, encode};

fuzz_target!(|data: &[u8]| {
    // What a member reads the exchange with: bare frames with small extras.
    let limits = Limits { max_key: 0, max_value: 0, max_frame: HEADER_LEN + u8::MAX as usize };
    let mut codec = Codec::server(limits);
    let mut buf = BytesMut::from(data);
    while let Ok(Some(frame)) = codec.decode(&mut buf) {
        if let Ok(msg) = decode(&frame.as_ref()) {
            let mut out = BytesMut::new();
            Codec::server(limits).encode(&encode(&msg, frame.id), &mut out).expect("a decoded message re-encodes");
            let again = Codec::server(limits).decode(&mut out).expect("decodes").expect("one whole frame");
            assert_eq!(decode(&again.as_ref()).expect("re-decodes"), msg);
        }
    }
});
