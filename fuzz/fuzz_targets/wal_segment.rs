//! Arbitrary bytes through the WAL segment reader recovery uses
//! (`formats::scan_segment`, which reads records with `formats::Records`).
//! Must never panic, whatever the file holds.
//!
//! The first input byte picks the mode: raw bytes as the whole file (header
//! checks), or the rest behind a valid `BWAL` header (record framing, the
//! torn-tail vs corruption decision, index continuity). Every record handed
//! to the callback must be numbered consecutively from the header's first
//! index, and a torn tail must point inside the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

use burrow_server::formats::{scan_segment, SegmentScan, WAL_HEADER_LEN, WAL_MAGIC};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    // Small first indexes make a valid record reachable by the fuzzer.
    let first = u64::from(mode >> 1);
    let file = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut f = Vec::with_capacity(WAL_HEADER_LEN + rest.len());
        f.extend_from_slice(WAL_MAGIC);
        f.extend_from_slice(&1u16.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(&first.to_be_bytes());
        f.extend_from_slice(rest);
        f
    };
    let len = file.len() as u64;
    let mut next = first;
    let result = scan_segment(Path::new("fuzz.log"), &file, first, |rec| {
        assert_eq!(rec.index, next, "records are handed over in index order");
        next += 1;
        Ok(())
    });
    match result {
        Ok(SegmentScan::Complete { records }) => assert_eq!(records, next - first),
        Ok(SegmentScan::Torn { records, offset, .. } | SegmentScan::Preallocated { records, offset }) => {
            assert_eq!(records, next - first);
            assert!(offset <= len, "torn offset {offset} past the end ({len})");
        }
        Err(_) => {}
    }
});
