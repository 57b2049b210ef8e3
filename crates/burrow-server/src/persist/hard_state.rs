//! The vote file: Raft's hard state (current term, vote) on stable storage.
//!
//! ```text
//! "BVOT" | version u16 | flags u16 | term u64 | voted_for u64 | crc32 u32   (28 bytes, big-endian)
//! flags: bit 0 = voted_for is set
//! ```
//! A file of its own rather than a field of the node file: it is written
//! at every term change and vote, by the election core's `Persist` output,
//! without reading or racing the node file's other fields. Replaced by
//! write-to-temp, fsync, rename, directory fsync, so a crash leaves the old
//! or the new state, never a mix; a leftover temp file is ignored.
//!
//! A damaged file stops the start: guessing would let the node vote twice
//! in a term. Deleting it is safe only for a node that is then removed
//! from the cluster and re-added, or once every member's term has moved
//! past the one it held.

use std::path::{Path, PathBuf};

use byteorder::{BigEndian, ByteOrder};
use thiserror::Error;

use super::fs::FileSystem;
use crate::replication::HardState;

pub const HARD_STATE_FILE: &str = "VOTE";
const MAGIC: &[u8; 4] = b"BVOT";
const VERSION: u16 = 1;
const LEN: usize = 28;
const FLAG_VOTED: u16 = 1;

/// Reading or writing the vote file failed.
#[derive(Debug, Error)]
pub enum HardStateError {
    #[error("{op} {path}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}; refusing to start (this node could otherwise vote twice in a term)")]
    Damaged { path: PathBuf, reason: String },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HardStateError + 'a {
    move |source| HardStateError::Io { op, path: path.to_owned(), source }
}

/// Reads `dir/VOTE`; `None` if there is none (a node that never voted nor
/// saw a term: start from term 0).
pub fn read_hard_state(dir: &Path) -> Result<Option<HardState>, HardStateError> {
    let path = dir.join(HARD_STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read vote file", &path)(e)),
    };
    decode_hard_state(&bytes)
        .map(Some)
        .map_err(|reason| HardStateError::Damaged { path, reason: reason.to_owned() })
}

/// Decodes a vote file's bytes (protocol.md §11.4): [`read_hard_state`]
/// without the file, so the format can be fuzzed; the error is the reason
/// the file is refused.
pub fn decode_hard_state(bytes: &[u8]) -> Result<HardState, &'static str> {
    if bytes.len() != LEN || &bytes[..4] != MAGIC {
        return Err("not a Burrow vote file (wrong size or magic)");
    }
    if BigEndian::read_u32(&bytes[24..]) != crc32fast::hash(&bytes[..24]) {
        return Err("vote file CRC mismatch");
    }
    if BigEndian::read_u16(&bytes[4..6]) != VERSION {
        return Err("unsupported vote file version");
    }
    let flags = BigEndian::read_u16(&bytes[6..8]);
    if flags & !FLAG_VOTED != 0 {
        return Err("unknown vote file flags");
    }
    let voted = BigEndian::read_u64(&bytes[16..24]);
    if flags & FLAG_VOTED == 0 && voted != 0 {
        return Err("vote file names a vote without its flag");
    }
    Ok(HardState {
        term: BigEndian::read_u64(&bytes[8..16]),
        voted_for: (flags & FLAG_VOTED != 0).then_some(voted),
    })
}

/// The vote file's bytes for `hs`, as the server writes them.
pub fn encode_hard_state(hs: HardState) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[..4].copy_from_slice(MAGIC);
    BigEndian::write_u16(&mut buf[4..6], VERSION);
    BigEndian::write_u16(&mut buf[6..8], if hs.voted_for.is_some() { FLAG_VOTED } else { 0 });
    BigEndian::write_u64(&mut buf[8..16], hs.term);
    BigEndian::write_u64(&mut buf[16..24], hs.voted_for.unwrap_or(0));
    let crc = crc32fast::hash(&buf[..24]);
    BigEndian::write_u32(&mut buf[24..], crc);
    buf
}

/// Replaces `dir/VOTE` durably (temp file, fsync, rename, directory
/// fsync). On error the node must not act on `hs`: the file holds either
/// it or the previous state, and which one is unknown until a restart
/// reads it.
pub(crate) fn write_hard_state_with(
    fs: &dyn FileSystem,
    dir: &Path,
    hs: HardState,
) -> Result<(), HardStateError> {
    let tmp = dir.join(format!("{HARD_STATE_FILE}.tmp"));
    let f = fs.create(&tmp).map_err(io_err("create vote file", &tmp))?;
    f.write_all_at(&encode_hard_state(hs), 0)
        .and_then(|_| f.sync_data())
        .map_err(io_err("write vote file", &tmp))?;
    let path = dir.join(HARD_STATE_FILE);
    fs.rename(&tmp, &path).map_err(io_err("rename vote file", &path))?;
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::{Fault, FaultyFileSystem, FsOp, Injected, StdFileSystem};

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("burrow-vote-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trips_with_and_without_a_vote() {
        let dir = temp_dir("round");
        assert!(read_hard_state(&dir).unwrap().is_none());
        for hs in [
            HardState { term: 7, voted_for: Some(0) },
            HardState { term: 8, voted_for: None },
            HardState { term: u64::MAX / 2, voted_for: Some(u64::MAX) },
        ] {
            write_hard_state_with(&StdFileSystem, &dir, hs).unwrap();
            assert_eq!(read_hard_state(&dir).unwrap(), Some(hs));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    use proptest::prelude::*;

    proptest! {
        /// Any bytes, with a correct CRC or not, any length, version, flags
        /// and fields: refused or decoded, never a panic; what decodes
        /// re-encodes to the same bytes (one state, one file).
        #[test]
        fn any_file_is_refused_or_reencodes_exactly(
            version in prop_oneof![Just(VERSION), any::<u16>()],
            flags in prop_oneof![Just(0u16), Just(FLAG_VOTED), any::<u16>()],
            term in any::<u64>(),
            voted in prop_oneof![Just(0u64), any::<u64>()],
            fix_crc in any::<bool>(),
            cut in 0..=LEN + 2,
        ) {
            let mut b = Vec::with_capacity(LEN + 2);
            b.extend_from_slice(MAGIC);
            b.extend_from_slice(&version.to_be_bytes());
            b.extend_from_slice(&flags.to_be_bytes());
            b.extend_from_slice(&term.to_be_bytes());
            b.extend_from_slice(&voted.to_be_bytes());
            let crc = if fix_crc { crc32fast::hash(&b) } else { term as u32 };
            b.extend_from_slice(&crc.to_be_bytes());
            b.extend_from_slice(&[0, 0]);
            b.truncate(cut);
            if let Ok(hs) = decode_hard_state(&b) {
                prop_assert_eq!(&encode_hard_state(hs)[..], &b[..]);
            }
            let hs = HardState { term, voted_for: (flags & 1 == 1).then_some(voted) };
            prop_assert_eq!(decode_hard_state(&encode_hard_state(hs)), Ok(hs));
        }
    }

    #[test]
    fn protocol_doc_example_matches_the_encoder() {
        let doc = include_str!("../../../../protocol.md");
        let marker = "<!-- vote-file-example: term-7-voted-2 -->";
        let body = &doc[doc.find(marker).expect("protocol.md §11.4 example")..];
        let fence = "```hex vote-file\n";
        let body = &body[body.find(fence).expect("hex block") + fence.len()..];
        let bytes: Vec<u8> = body[..body.find("```").expect("closing fence")]
            .lines()
            .flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace())
            .map(|t| u8::from_str_radix(t, 16).expect("hex byte"))
            .collect();
        let hs = HardState { term: 7, voted_for: Some(2) };
        assert_eq!(&encode_hard_state(hs)[..], &bytes[..]);
        assert_eq!(decode_hard_state(&bytes), Ok(hs));
    }

    #[test]
    fn torn_or_corrupt_files_are_refused_by_name() {
        let dir = temp_dir("damage");
        write_hard_state_with(&StdFileSystem, &dir, HardState { term: 3, voted_for: Some(2) }).unwrap();
        let path = dir.join(HARD_STATE_FILE);
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        flipped[12] ^= 0x10;
        let mut bad_flags = good.clone();
        bad_flags[7] = 0x02;
        let crc = crc32fast::hash(&bad_flags[..24]);
        BigEndian::write_u32(&mut bad_flags[24..], crc);
        let cases: [(&[u8], &str); 5] = [
            (&good[..20], "wrong size"),
            (&[], "wrong size"),
            (&flipped, "CRC"),
            (&bad_flags, "flags"),
            (b"BNOD\0\x01\0\0\0\0\0\0\0\0\0\x03\0\0\0\0\0\0\0\x02\0\0\0\0", "magic"),
        ];
        for (bytes, want) in cases {
            std::fs::write(&path, bytes).unwrap();
            let err = read_hard_state(&dir).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("VOTE") && err.contains("vote twice"),
                "{want}: {err}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_state_or_the_new_one() {
        let old = HardState { term: 4, voted_for: Some(1) };
        let new = HardState { term: 5, voted_for: Some(3) };
        // Every step of the replacement, failing in turn.
        let faults = [
            Fault::new(FsOp::Create, Injected::Eio),
            Fault::new(FsOp::Write, Injected::Short(9)),
            Fault::new(FsOp::Write, Injected::NoSpace),
            Fault::new(FsOp::Sync, Injected::Eio),
            Fault::new(FsOp::Rename, Injected::Eio),
            Fault::new(FsOp::SyncDir, Injected::Eio),
        ];
        for (i, fault) in faults.into_iter().enumerate() {
            let dir = temp_dir(&format!("fault{i}"));
            write_hard_state_with(&StdFileSystem, &dir, old).unwrap();
            let fs = FaultyFileSystem::new();
            fs.inject(fault.times(1));
            let err = write_hard_state_with(&fs, &dir, new).unwrap_err();
            assert!(matches!(err, HardStateError::Io { .. }), "{i}: {err}");
            assert_eq!(fs.fired().len(), 1, "{i}");
            let now = read_hard_state(&dir).unwrap().unwrap();
            // Only a failed directory fsync comes after the rename.
            let want = if i == 5 { new } else { old };
            assert_eq!(now, want, "fault {i}");
            // The disk recovers: the next write goes through.
            write_hard_state_with(&fs, &dir, new).unwrap();
            assert_eq!(read_hard_state(&dir).unwrap(), Some(new));
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
