//! WAL segments: files of op-log records, appended by the writer thread
//! (`wal_writer`), read back here by recovery.
//!
//! ```text
//! segment file  wal-<first index, 20 digits>.log
//! +-----------+-----------+-----------+----------------------+------------+
//! | "BWAL"    | version=1 | reserved  | first index (u64 BE) | records... |
//! +-----------+-----------+-----------+----------------------+------------+
//! ```
//! Records are framed as in `oplog::record` (length, CRC32, term, index, op).
//!
//! Segments are preallocated (`fallocate`, or zeros written) to the segment
//! size when they start, so the file is longer than its records: the rest
//! reads as zeros. Crash safety: a record is acknowledged under `always`
//! only after an `fdatasync` that began after its `write` returned, and
//! with the size already final that `fdatasync` makes the record's blocks
//! (and the extent state needed to read them) durable. After a crash the
//! file holds every acknowledged record, then possibly some later records
//! or parts of them, then zeros. A record's length field is never zero,
//! so the first zero byte where a record should start ends the segment:
//! an all-zero rest is a clean end ([`SegmentScan::Preallocated`]), never a
//! tear; non-zero bytes after the last good record, with no valid record
//! after them, are a torn tail, cut as before; a valid record after bad
//! bytes is corruption. A segment whose header is still zeros (a crash
//! between creating it and the fsync of its header) holds no record that
//! was ever acknowledged and reads as empty. The next segment is prepared
//! ahead as [`SPARE_SEGMENT`] and renamed at rotation; the header and the
//! rename become durable with the new segment's first fsync (which then
//! fsyncs the directory too), before any of its records is acknowledged.

use std::path::{Path, PathBuf};

use byteorder::{BigEndian, ByteOrder};
use thiserror::Error;

use super::wal_writer::WriterFailure;
use crate::oplog::{BadRecord, Record, RecordRef, Records};

pub const WAL_MAGIC: &[u8; 4] = b"BWAL";
pub(super) const WAL_VERSION: u16 = 1;
pub const WAL_HEADER_LEN: usize = 16;
/// The next segment's name while it is prepared ahead (created,
/// preallocated, fsynced): not a `wal-*.log`, so recovery never reads it;
/// it deletes it at start.
pub(crate) const SPARE_SEGMENT: &str = "wal-next.tmp";

#[derive(Debug, Error)]
pub enum WalError {
    #[error("{op} {path}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path}: bad WAL header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    #[error("{path}: corrupt record at byte offset {offset}: {reason}; refusing to start (the data after it would be lost)")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("{path}: torn last record at byte offset {offset}: {reason}; refusing to start because torn-tail truncation is disabled")]
    TornRefused { path: PathBuf, offset: u64, reason: String },
    #[error("{path}: record index {got} where {expected} was expected (missing or reordered records)")]
    Gap { path: PathBuf, expected: u64, got: u64 },
    #[error("{path}: {reason}; refusing to start (delete the file to make this node resync in full from its leader)")]
    NodeFile { path: PathBuf, reason: String },
    /// The WAL writer could not do its job (see `wal_writer::policy`).
    #[error("WAL failure")]
    Failed(#[from] WriterFailure),
}

pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WalError + 'a {
    move |source| WalError::Io { op, path: path.to_owned(), source }
}

pub fn segment_name(first_index: u64) -> String {
    format!("wal-{first_index:020}.log")
}

/// WAL segments in `dir`, ordered by first index.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    super::numbered_files(dir, "wal-", ".log").map_err(io_err("read directory", dir))
}

/// The header of the segment whose first record is `first_index`.
pub fn header(first_index: u64) -> [u8; WAL_HEADER_LEN] {
    let mut h = [0u8; WAL_HEADER_LEN];
    h[..4].copy_from_slice(WAL_MAGIC);
    BigEndian::write_u16(&mut h[4..6], WAL_VERSION);
    BigEndian::write_u64(&mut h[8..16], first_index);
    h
}

/// How a segment's bytes ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentScan {
    /// Every byte belonged to a valid record.
    Complete { records: u64 },
    /// Valid records up to `offset`, then only zeros: space preallocated
    /// and not (yet) written — a clean end, not a tear. `offset` is 0 for
    /// a segment whose header was never written.
    Preallocated { records: u64, offset: u64 },
    /// The last record is short or fails its CRC and nothing valid follows:
    /// a write torn by a crash. `offset` is where the valid data ends.
    Torn { records: u64, offset: u64, reason: String },
}

/// Reads the records of one segment, calling `f` for each in order.
/// A bad record followed by more valid records is corruption (`Err`); a bad
/// record with nothing valid after it is a torn tail (`Ok(Torn)`).
pub fn scan_segment(
    path: &Path,
    data: &[u8],
    expect_first: u64,
    mut f: impl FnMut(Record<&[u8]>) -> Result<(), WalError>,
) -> Result<SegmentScan, WalError> {
    if data.len() < WAL_HEADER_LEN {
        return Ok(SegmentScan::Torn {
            records: 0,
            offset: 0,
            reason: format!("file is {} bytes, shorter than its {WAL_HEADER_LEN}-byte header", data.len()),
        });
    }
    if data[..WAL_HEADER_LEN].iter().all(|&b| b == 0) && all_zero(data) {
        return Ok(SegmentScan::Preallocated { records: 0, offset: 0 });
    }
    let bad = |reason: String| WalError::BadHeader { path: path.to_owned(), reason };
    if &data[..4] != WAL_MAGIC {
        return Err(bad(format!("magic {:02x?} is not {WAL_MAGIC:?}", &data[..4])));
    }
    let version = BigEndian::read_u16(&data[4..6]);
    if version != WAL_VERSION {
        return Err(bad(format!("version {version} is not supported (this build reads {WAL_VERSION})")));
    }
    let first = BigEndian::read_u64(&data[8..16]);
    if first != expect_first {
        return Err(bad(format!("header says first index {first}, file name says {expect_first}")));
    }
    let body = &data[WAL_HEADER_LEN..];
    let mut records = Records::new(body);
    let mut next = first;
    loop {
        let start = records.offset();
        let bad = match records.next() {
            None => return Ok(SegmentScan::Complete { records: next - first }),
            Some(Err(bad)) => bad,
            Some(Ok(rec)) => match rec.decode() {
                Err(error) => BadRecord { offset: start, error },
                Ok(rec) if rec.index != next => {
                    return Err(WalError::Gap { path: path.to_owned(), expected: next, got: rec.index });
                }
                Ok(rec) => {
                    next += 1;
                    f(rec)?;
                    continue;
                }
            },
        };
        let offset = (WAL_HEADER_LEN + bad.offset) as u64;
        if all_zero(&body[bad.offset..]) {
            return Ok(SegmentScan::Preallocated { records: next - first, offset });
        }
        let reason = burrow_proto::ErrorChain(&bad.error).to_string();
        if valid_record_after(body, bad.offset, next) {
            return Err(WalError::Corrupt { path: path.to_owned(), offset, reason });
        }
        return Ok(SegmentScan::Torn { records: next - first, offset, reason });
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Whether any offset of `records` after `bad` starts a usable record
/// (framing, CRC and op) numbered `next` or later — the sign that the bad
/// bytes are damage in the middle, not a tear.
fn valid_record_after(records: &[u8], bad: usize, next: u64) -> bool {
    // No record starts in the trailing zeros (its length would be 0): a
    // preallocated tail is not searched byte by byte.
    let end = records.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    (bad + 1..end)
        .any(|p| RecordRef::parse(&records[p..]).is_ok_and(|rec| rec.index >= next && rec.decode().is_ok()))
}
