//! Leader–follower replication as pure state machines (raft-rs style).
//!
//! [`Leader`] and [`Follower`] are plain structs stepped by inputs —
//! messages (`step`), time (`tick`), local progress (`on_append`,
//! `on_durable`) — that queue outputs the caller drains with `outputs()`.
//! Nothing in here touches sockets, files, clocks or a global RNG: time is
//! counted in ticks and backoff jitter comes from a [`SeededRng`] handed in,
//! so a whole cluster can run deterministically in a test, thousands of
//! seeds per second (see `tests/replication_sim.rs`).
//!
//! The driver (one task per link) carries out outputs **in order**, and for
//! a follower persists records (fsync where promised) before it calls
//! [`Follower::on_durable`]: the follower only claims durability in an
//! [`Message::Ack`] for what the driver reported durable.
//!
//! Protocol in one paragraph: a follower connects and sends a
//! [`Message::Handshake`] (node id, history id, index and term of its last
//! record). The leader places that record in its own log by term
//! ([`reconcile`], §5.3) and answers with a partial resync (the missing
//! records come from its bounded backlog) when the follower's log is a
//! prefix of its own, or else a full resync (snapshot chunks, then the live
//! stream from the snapshot's index): the follower is too far behind,
//! follows another history, or holds records the leader does not (a
//! deposed leader's) — already applied to its store, so they cannot be cut
//! from its log alone. Records are pushed in batches with a bounded
//! window in flight; heartbeats flow when idle. The follower applies strictly
//! `last_applied + 1`, skips duplicates, and treats a gap as a broken link:
//! it drops it and resyncs. Both sides declare the other silent after a
//! configurable number of ticks.
//!
//! Decisions worth knowing when wiring this up:
//! - `durable ≤ applied` on a follower: it applies, the driver persists,
//!   then reports `on_durable`. Only durable acks feed the leader's commit
//!   index and WAIT counts, so a crash that loses unsynced records cannot
//!   un-commit anything.
//! - Every handshake opens a *session* (a counter starting at a random
//!   value, so a restarted follower does not reuse old ones); resync
//!   replies, chunks and acks carry it. Each session has at most one
//!   resync: a follower that falls out of the backlog mid-stream is
//!   disconnected and resyncs under a new session.
//! - The leader counts commit over durable indexes only, and only for a
//!   record of its own term (Raft §5.4.2, [`commit_index`]): a new leader's
//!   first record (a NOOP, `Store::append_noop`) commits what came before.
//!
//! Elections (issue 10) sit beside these machines, not inside them:
//! [`Election`] decides who leads which term (pre-vote, check-quorum,
//! persisted term and vote); [`ReadIndex`] confirms leadership for
//! linearizable reads; [`reconcile`] tells a leader where a follower's log
//! parts from its own. The server's election driver runs [`Election`] and
//! carries its messages over peer links ([`vote_wire`]).

mod backlog;
mod election;
mod follower;
mod leader;
pub mod member_auth;
mod message;
mod read_index;
mod reconcile;
pub mod vote_wire;
pub mod wire;

use thiserror::Error;

pub(crate) use backlog::ReplBacklog;
pub use election::{
    commit_index, majority, Election, ElectionConfig, ElectionError, ElectionMessage, ElectionOutput,
    HardState, LogPosition, RejectReason, Role, RoleChangeReason, MAX_TERM,
};
pub use follower::{Follower, FollowerConfig, FollowerOutput, LinkState};
pub use leader::{DownReason, FollowerProgress, FollowerState, Leader, LeaderConfig, LeaderOutput};
pub use message::{Message, RecordEntry};
pub use read_index::{ReadIndex, ReadyRead};
pub use reconcile::{probe_answer, reconcile, LogTerms, Reconcile};

/// A node's identity in the cluster.
pub type NodeId = u64;

/// Identifies one replication history: the lineage of a data set, from
/// the node that started it empty. Within one, logs are compared by
/// (term, index) (Raft's Log Matching); index 42 of another history says
/// nothing, so a follower on another history always needs a full resync.
/// It changes only when a data set is replaced or started afresh, not at a
/// leader's restart.
pub type HistoryId = u64;

/// Invalid configuration, reported by `validate()` before a state machine
/// is built from it.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{field} must be at least {min} (got {got})")]
    TooSmall { field: &'static str, min: u64, got: u64 },
    #[error("{field} ({got}) must be greater than {other} ({other_value})")]
    NotGreater { field: &'static str, got: u64, other: &'static str, other_value: u64 },
}

/// Misuse of the leader's snapshot hand-off by the driver.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReplicationError {
    #[error("follower {0} is not known to the leader")]
    UnknownFollower(NodeId),
    /// The follower reconnected, went down or was already streaming: the
    /// driver must abandon this snapshot transfer.
    #[error("follower {0} is not waiting for a snapshot")]
    NotInFullSync(NodeId),
}

/// Where the leader reads records to stream. Implemented by the server's
/// backlog of recent records (`ReplBacklog`) and by in-memory fakes in tests.
pub trait BacklogSource {
    /// Records with index ≥ `from`, in order, at most `max_records` of them
    /// and at most `max_bytes` encoded bytes (but always at least one if any
    /// exist, so one oversized record cannot stall a follower). `None` if
    /// the record at `from` was already dropped: the follower needs a full
    /// resync.
    fn since(&self, from: u64, max_records: usize, max_bytes: usize) -> Option<Vec<RecordEntry>>;
    /// Oldest index still held (`last_index() + 1` when empty).
    fn first_index(&self) -> u64;
    /// Index of the newest record ever appended.
    fn last_index(&self) -> u64;
    /// Term of the record at `index` if it is still known: `Some(0)` for
    /// index 0, the term of a held record, and perhaps of the one just
    /// below the oldest held. The leader's commit rule (§5.4.2) and log
    /// reconciliation read it.
    fn term_at(&self, index: u64) -> Option<u64>;
}

/// Small deterministic RNG for backoff jitter. Passing it in keeps the state
/// machines reproducible: the same seed gives the same reconnect schedule, so
/// a failing simulation seed can be replayed.
pub use crate::rng::SplitMix64 as SeededRng;

fn at_least(field: &'static str, got: u64, min: u64) -> Result<(), ConfigError> {
    if got < min {
        Err(ConfigError::TooSmall { field, min, got })
    } else {
        Ok(())
    }
}

fn greater(field: &'static str, got: u64, other: &'static str, other_value: u64) -> Result<(), ConfigError> {
    if got <= other_value {
        Err(ConfigError::NotGreater { field, got, other, other_value })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_bounded() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(a.below(0), 0);
    }
}
