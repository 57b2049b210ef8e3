//! The on-disk and on-wire formats (protocol.md §10–11), to read a data
//! directory or a replication stream offline — and to fuzz the readers the
//! server itself uses (`fuzz/`): these are those readers, not copies.
//!
//! - **Records** — one logged change ([`Op`]) framed with its term, index,
//!   length and CRC: [`encode_record`], [`decode_record`], and [`Records`]
//!   for a buffer of them back to back. WAL segments and the replication
//!   stream carry the same bytes.
//! - **WAL segments** — `wal-<first index>.log` ([`segment_name`]): a
//!   [`segment_header`] ([`WAL_HEADER_LEN`] bytes from [`WAL_MAGIC`]), then
//!   records. [`scan_segment`] reads one as recovery does, telling a torn
//!   tail from corruption; [`list_segments`] finds them in a directory.
//! - **Snapshots** — `snapshot-<covered index>.snap` ([`snapshot_name`]):
//!   [`read_snapshot`] checks one and hands over its [`Entry`]s, each
//!   shard image holding the keys [`shard_for`] puts in that shard.
//! - **The node file** — [`NODE_FILE`]: which replication history the
//!   directory holds ([`read_node_meta`]; the bytes alone:
//!   [`decode_node_meta`], [`encode_node_meta`]).
//! - **The vote file** — [`HARD_STATE_FILE`]: the node's Raft term and vote
//!   ([`read_hard_state`]; the bytes alone: [`decode_hard_state`],
//!   [`encode_hard_state`]).
//!
//! The config file (`[server]`, `[cluster]`, `[[node]]`) is parsed by
//! [`crate::ServerArgs::resolve_file_text`].
//!
//! Only the readers are here, and the encoders a reader's test needs to
//! build input (a record, a segment header, uneven shard images), and the
//! node and vote files' encoders (28 fixed bytes each, for round trips):
//! the server alone writes segments, snapshots and node files.

pub use crate::oplog::{
    decode_record, encode_record, BadRecord, Op, OpDecodeError, Record, RecordError, RecordRef, Records,
};
pub use crate::persist::{
    decode_hard_state, decode_node_meta, encode_hard_state, encode_node_meta, list_segments, read_hard_state,
    read_node_meta, read_snapshot, relabel_first_cover, scan_segment, segment_header, segment_name,
    snapshot_name, HardStateError, NodeMeta, SegmentScan, SnapshotError, SnapshotMeta, WalError,
    WriterFailure, HARD_STATE_FILE, NODE_FILE, WAL_HEADER_LEN, WAL_MAGIC,
};
pub use crate::store::{shard_for, Entry, ValueRef};
