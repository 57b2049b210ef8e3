//! Arbitrary bytes as a vote file (`VOTE`, protocol.md §11.4) through
//! `formats::decode_hard_state`, the decoder `read_hard_state` uses at
//! start. Must never panic; a file that decodes must re-encode to exactly
//! the same bytes (the decoder refuses unknown flags and a vote without its
//! flag, so there is one encoding per value).
//!
//! Random bytes rarely pass the CRC, so when the first byte is odd the rest
//! is laid into a 28-byte file with the right magic and a correct CRC, which
//! reaches the version, flag and vote checks.
#![no_main]

use libfuzzer_sys::fuzz_target;

use burrow_server::formats::{decode_hard_state, encode_hard_state};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let file = if mode & 1 == 0 { rest.to_vec() } else { framed(rest) };
    if let Ok(hs) = decode_hard_state(&file) {
        assert_eq!(&encode_hard_state(hs)[..], &file[..], "a decoded vote file re-encodes byte for byte");
    }
});

/// "BVOT", then `rest` (padded with zeros or cut) up to byte 24, then the
/// CRC32 of those 24 bytes.
fn framed(rest: &[u8]) -> Vec<u8> {
    let mut file = b"BVOT".to_vec();
    file.extend(rest.iter().copied().chain(std::iter::repeat(0)).take(20));
    let crc = crc32fast::hash(&file);
    file.extend_from_slice(&crc.to_be_bytes());
    file
}
