//! Arbitrary bytes as a snapshot file through `formats::read_snapshot`, the
//! reader recovery uses. Must never panic or allocate without bound, and
//! must either refuse the file or return metadata consistent with what it
//! handed over.
//!
//! Random bytes rarely pass the header CRC, so when the first byte is odd
//! the rest is framed as a valid header (16 shards) plus blocks with CRCs,
//! each block body taken from the input — this reaches the block and entry
//! decoders. With bit 1 of the first byte set, block lengths are declared
//! as u32 from the input and may exceed the bytes that follow (a lying
//! length: must be refused without allocating it).
#![no_main]

use std::io::Write;

use libfuzzer_sys::fuzz_target;

use burrow_server::formats::read_snapshot;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let file = if mode & 1 == 0 { rest.to_vec() } else { framed(rest, mode & 2 != 0) };
    // One file per process: libFuzzer runs inputs one at a time.
    let path = std::env::temp_dir().join(format!("burrow-fuzz-snapshot-{}.snap", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("create temp file");
    f.write_all(&file).expect("write temp file");
    drop(f);
    let mut handed = 0u64;
    if let Ok(meta) = read_snapshot(&path, 0, |_| handed += 1) {
        assert_eq!(meta.entries, handed, "every entry counted is handed over (now = 0 filters none)");
        assert_eq!(meta.covers.len(), meta.shards as usize);
        assert!(meta.min_cover() <= meta.max_cover());
    }
    let _ = std::fs::remove_file(&path);
});

/// A valid header, then `rest` cut into blocks: each chunk is prefixed with
/// a length (from a leading u16, or with `lying` a u32 that may overstate
/// what follows) and the CRC32 of the bytes actually present.
fn framed(mut rest: &[u8], lying: bool) -> Vec<u8> {
    let mut header = Vec::with_capacity(36);
    header.extend_from_slice(b"BSNP");
    header.extend_from_slice(&1u16.to_be_bytes());
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&16u32.to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    header.extend_from_slice(&1u64.to_be_bytes()); // term
    header.extend_from_slice(&0u64.to_be_bytes()); // created
    let crc = crc32_ieee(&header);
    header.extend_from_slice(&crc.to_be_bytes());
    let mut out = header;
    let width = if lying { 4 } else { 2 };
    while rest.len() >= width {
        let declared = if lying {
            u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]])
        } else {
            u32::from(u16::from_be_bytes([rest[0], rest[1]]))
        };
        let n = (declared as usize).min(rest.len() - width);
        let body = &rest[width..width + n];
        let len = if lying { declared } else { n as u32 };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&crc32_ieee(body).to_be_bytes());
        out.extend_from_slice(body);
        rest = &rest[width + n..];
    }
    out
}

/// CRC32 (IEEE), bitwise: independent of the crate's crc32fast.
fn crc32_ieee(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
