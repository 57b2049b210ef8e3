//! The node file: which replication history this data directory holds,
//! and the last term this node led or followed.
//!
//! ```text
//! "BNOD" | version u16 | flags u16 | history id u64 | term u64 | crc32 u32   (28 bytes, big-endian)
//! flags: bit 0 = the server shut down cleanly (its WAL held every record it had streamed)
//! ```
//! Log indexes only mean something within one history, so a follower that
//! restarts must know which one its WAL continues: with it, a restart
//! resumes by partial resync. A leader keeps its history across restarts,
//! clean or not, and takes a new term each time (persisted here before it
//! logs anything under it). Written to a temp file, fsynced, renamed.

use std::path::{Path, PathBuf};

use byteorder::{BigEndian, ByteOrder};

use super::fs::FileSystem;
use super::wal::{io_err, WalError};

pub const NODE_FILE: &str = "NODE";
const MAGIC: &[u8; 4] = b"BNOD";
const VERSION: u16 = 1;
const LEN: usize = 28;

/// What the node file records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeMeta {
    pub history_id: u64,
    pub term: u64,
    /// Written at a clean shutdown, cleared at start; only logged since
    /// leaders take a new term at every start (records a crash lost are
    /// then told apart by term, not by a new history).
    pub clean: bool,
}

const FLAG_CLEAN: u16 = 1;

/// Reads `dir/NODE`; `None` if there is none (a new or pre-replication
/// data directory). A damaged file is an error naming it.
pub fn read_node_meta(dir: &Path) -> Result<Option<NodeMeta>, WalError> {
    let path = dir.join(NODE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read node file", &path)(e)),
    };
    decode_node_meta(&bytes)
        .map(Some)
        .map_err(|reason| WalError::NodeFile { path, reason: reason.to_owned() })
}

/// Decodes a node file's bytes (protocol.md §11.3): [`read_node_meta`]
/// without the file, so the format can be fuzzed; the error is the reason
/// the file is refused. Flag bits other than "clean" are ignored.
pub fn decode_node_meta(bytes: &[u8]) -> Result<NodeMeta, &'static str> {
    if bytes.len() != LEN || &bytes[..4] != MAGIC {
        return Err("not a Burrow node file (wrong size or magic)");
    }
    if BigEndian::read_u16(&bytes[4..6]) != VERSION {
        return Err("unsupported node file version");
    }
    if BigEndian::read_u32(&bytes[24..]) != crc32fast::hash(&bytes[..24]) {
        return Err("node file CRC mismatch");
    }
    Ok(NodeMeta {
        history_id: BigEndian::read_u64(&bytes[8..16]),
        term: BigEndian::read_u64(&bytes[16..24]),
        clean: BigEndian::read_u16(&bytes[6..8]) & FLAG_CLEAN != 0,
    })
}

/// The node file's bytes for `meta`, as the server writes them.
pub fn encode_node_meta(meta: NodeMeta) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[..4].copy_from_slice(MAGIC);
    BigEndian::write_u16(&mut buf[4..6], VERSION);
    BigEndian::write_u16(&mut buf[6..8], if meta.clean { FLAG_CLEAN } else { 0 });
    BigEndian::write_u64(&mut buf[8..16], meta.history_id);
    BigEndian::write_u64(&mut buf[16..24], meta.term);
    let crc = crc32fast::hash(&buf[..24]);
    BigEndian::write_u32(&mut buf[24..], crc);
    buf
}

/// Replaces `dir/NODE` atomically (temp file, fsync, rename, directory fsync).
#[cfg(test)]
pub(super) fn write_node_meta(dir: &Path, meta: NodeMeta) -> Result<(), WalError> {
    write_node_meta_with(&super::StdFileSystem, dir, meta)
}

/// [`write_node_meta`] through `fs`.
pub(crate) fn write_node_meta_with(fs: &dyn FileSystem, dir: &Path, meta: NodeMeta) -> Result<(), WalError> {
    let buf = encode_node_meta(meta);
    let tmp: PathBuf = dir.join(format!("{NODE_FILE}.tmp"));
    let f = fs.create(&tmp).map_err(io_err("create node file", &tmp))?;
    f.write_all_at(&buf, 0).and_then(|_| f.sync_data()).map_err(io_err("write node file", &tmp))?;
    let path = dir.join(NODE_FILE);
    fs.rename(&tmp, &path).map_err(io_err("rename node file", &path))?;
    fs.sync_dir(dir).map_err(io_err("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = std::env::temp_dir().join(format!("burrow-node-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_node_meta(&dir).unwrap(), None);
        let meta = NodeMeta { history_id: 0xdead_beef_0102_0304, term: 7, clean: true };
        write_node_meta(&dir, meta).unwrap();
        assert_eq!(read_node_meta(&dir).unwrap(), Some(meta));
        let path = dir.join(NODE_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = read_node_meta(&dir).unwrap_err().to_string();
        assert!(err.contains("CRC") && err.contains("NODE"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
