//! The client-authentication messages (protocol.md §8.12): arbitrary bytes
//! as a HELLO reply body (what a client decodes) and as the extras, key and
//! value of a HELLO or AUTH request (what the server parses before a
//! connection is authenticated). Must never panic; a HELLO reply that
//! decodes re-encodes to one that decodes to itself (unknown fields
//! dropped), and a request that parses re-encodes and parses to itself.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;

use burrow_proto::{decode_hello, encode_hello, Frame, Opcode, Request};

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = decode_hello(data) {
        let mut out = BytesMut::new();
        encode_hello(&hello, &mut out);
        assert_eq!(decode_hello(&out).expect("a decoded HELLO re-encodes"), hello);
    }
    // First byte: opcode and flags; next two: where the extras and key end.
    let [pick, a, b, rest @ ..] = data else { return };
    let opcode = if pick & 1 == 0 { Opcode::Hello } else { Opcode::Auth };
    let (x, k) = ((*a as usize).min(rest.len()), (*b as usize).min(rest.len()));
    let (x, k) = (x.min(k), x.max(k));
    let mut frame = Frame::request(opcode as u8, 7);
    frame.flags = if pick & 2 == 0 { 0 } else { pick >> 2 };
    frame.extras = Bytes::copy_from_slice(&rest[..x]);
    frame.key = Bytes::copy_from_slice(&rest[x..k]);
    frame.value = Bytes::copy_from_slice(&rest[k..]);
    if let Ok(req) = Request::from_frame(&frame) {
        assert_eq!(req.opcode(), opcode);
        assert_eq!(Request::from_frame(&req.to_frame(7)), Ok(req));
    }
});
