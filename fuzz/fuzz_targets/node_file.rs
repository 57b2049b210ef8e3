//! Arbitrary bytes as a node file (`NODE`, protocol.md §11.3) through
//! `formats::decode_node_meta`, the decoder `read_node_meta` uses at start.
//! Must never panic; a file that decodes must re-encode to bytes that
//! decode to the same value, and to the very same bytes when it sets no
//! flag bit the format ignores.
//!
//! Random bytes rarely pass the CRC, so when the first byte is odd the rest
//! is laid into a 28-byte file with the right magic and a correct CRC, which
//! reaches the version and field checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

use burrow_server::formats::{decode_node_meta, encode_node_meta};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let file = if mode & 1 == 0 { rest.to_vec() } else { framed(rest) };
    if let Ok(meta) = decode_node_meta(&file) {
        let again = encode_node_meta(meta);
        assert_eq!(decode_node_meta(&again), Ok(meta), "a decoded node file re-encodes to itself");
        // Only bit 0 (clean shutdown) of the flags is meaningful.
        if u16::from_be_bytes([file[6], file[7]]) & !1 == 0 {
            assert_eq!(&again[..], &file[..], "a node file with known flags re-encodes byte for byte");
        }
    }
});

/// "BNOD", then `rest` (padded with zeros or cut) up to byte 24, then the
/// CRC32 of those 24 bytes.
fn framed(rest: &[u8]) -> Vec<u8> {
    let mut file = b"BNOD".to_vec();
    file.extend(rest.iter().copied().chain(std::iter::repeat(0)).take(20));
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_be_bytes());
    file
}
