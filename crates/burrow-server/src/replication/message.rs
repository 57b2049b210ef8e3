//! Replication messages between a leader and one follower.
//!
//! These are plain data: no trait objects, no references, so a later wire
//! encoding can be a straightforward tagged layout. The `session` carried by
//! the handshake and echoed by every resync reply, snapshot chunk and ack ties
//! a reply to the handshake it answers. A socket gives that for free (a new
//! connection discards the old one's bytes), but the state machines do not
//! rely on it: a late reply from an abandoned session is recognised and
//! ignored, which is what lets the simulated network reorder and duplicate
//! freely across reconnects.

use bytes::Bytes;

use super::{HistoryId, NodeId};

/// One log record as it travels to a follower: its position in the log plus
/// the record exactly as `oplog::encode_record` framed it (length, CRC32,
/// term, index, op). `term` and `index` are repeated outside the frame so the
/// ordering rules can run without decoding the op. The bytes are always a
/// whole record with a checked CRC — sealed by the leader's op log, checked
/// again by `wire::decode` on receipt — so readers need not check it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordEntry {
    pub term: u64,
    pub index: u64,
    pub bytes: Bytes,
}

/// Everything a leader and a follower say to each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Follower → leader, first message of every connection: who it is,
    /// which history (data-set lineage) it follows, and the index and term
    /// of the last record it holds — the leader reconciles logs by them
    /// (`reconcile`, Raft §5.3).
    Handshake { node_id: NodeId, session: u64, history_id: HistoryId, last_applied: u64, last_term: u64 },
    /// Leader → follower: the backlog still holds everything after the
    /// follower's `last_applied`; records from `from_index` follow.
    PartialResync { session: u64, from_index: u64, term: u64 },
    /// Leader → follower: the follower must replace its dataset with a
    /// snapshot covering `1..=snapshot_index` of `history_id`; chunks follow,
    /// then the live stream from `snapshot_index + 1`.
    FullResync { session: u64, snapshot_index: u64, history_id: HistoryId, term: u64 },
    /// Leader → follower: a slice of the snapshot's bytes. `offset` lets the
    /// follower refuse a chunk that does not continue the previous one.
    SnapshotChunk { session: u64, offset: u64, bytes: Bytes, last: bool },
    /// Leader → follower: consecutive records, in index order, plus the
    /// leader's commit index at the time of sending.
    Records { records: Vec<RecordEntry>, commit_index: u64 },
    /// Leader → follower when there is nothing else to send: proof of life.
    /// `round` is the leader's newest ReadIndex round (`read_index`): a
    /// heartbeat also goes out at once when a round starts.
    Heartbeat { term: u64, last_index: u64, commit_index: u64, round: u64 },
    /// Follower → leader: `applied` is the highest index applied in order,
    /// `durable` the highest one persisted as promised (`durable ≤ applied`),
    /// `round` the newest heartbeat round seen on this link (0: none), which
    /// confirms the leader's leadership for the reads waiting on it.
    Ack { node_id: NodeId, session: u64, applied: u64, durable: u64, round: u64 },
}
