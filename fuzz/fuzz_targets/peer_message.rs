//! Arbitrary bytes through a peer link's decoding (protocol.md §12.6): the
//! frame codec with peer-link limits, then `vote_wire::decode`, as a member
//! reads another member's (or anyone's) election traffic, and
//! `member_auth::decode`, as it reads the member authentication that opens
//! a link (§12.7). Must never panic; any message that decodes must
//! re-encode to a frame that decodes to the same message.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{Codec, Limits, HEADER_LEN};
use burrow_server::replication::member_auth;
use burrow_server::replication::vote_wire::{decode, encode};

fuzz_target!(|data: &[u8]| {
    // What a member's peer link accepts: bare frames with small extras.
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
        if let Ok(msg) = member_auth::decode(&frame.as_ref()) {
            let mut out = BytesMut::new();
            let f = member_auth::encode(&msg, frame.id);
            Codec::server(limits).encode(&f, &mut out).expect("a decoded message re-encodes");
            let again = Codec::server(limits).decode(&mut out).expect("decodes").expect("one whole frame");
            assert_eq!(member_auth::decode(&again.as_ref()).expect("re-decodes"), msg);
        }
    }
});
