//! Arbitrary bytes as a CLUSTER reply's ARRAY body (protocol.md §8.11),
//! what a client decodes from a server. Must never panic; a body that
//! decodes must re-encode to one that decodes to the same view (unknown
//! fields dropped, so the bytes may differ).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

use burrow_proto::{decode_cluster, encode_cluster};

fuzz_target!(|data: &[u8]| {
    if let Ok(view) = decode_cluster(data) {
        let mut out = BytesMut::new();
        encode_cluster(&view, &mut out);
        assert_eq!(decode_cluster(&out).expect("a decoded view re-encodes"), view);
    }
});
