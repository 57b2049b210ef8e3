//! What the election core persists and what candidates and voters say to
//! each other.
//!
//! Plain data with fixed-width fields only (`u64`, `bool`, an optional id),
//! so `replication/wire.rs` can later carry them as request frames like
//! the streaming [`Message`](super::super::Message)s. They are a separate
//! enum because they travel between *any* two members, not over one
//! leader→follower link, and because adding them to `Message` would make
//! every streaming match learn about votes.

use super::super::NodeId;

/// The state Raft requires on stable storage before a node acts on it
/// (Figure 2: `currentTerm`, `votedFor`). Written with
/// [`ElectionOutput::Persist`](super::ElectionOutput::Persist) and read
/// back at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HardState {
    /// Latest term this node has seen; never decreases.
    pub term: u64,
    /// The candidate this node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
}

/// Where a log ends: the (term, index) pair Raft compares to decide which
/// of two logs is more up to date (§5.4.1). `(0, 0)` is the empty log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct LogPosition {
    /// Term of the last record (compared first).
    pub term: u64,
    /// Index of the last record.
    pub index: u64,
}

/// Messages of an election, between any two voters. The sender's id is
/// what the driver knows of the link (`step(from, ..)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionMessage {
    /// Candidate → voter: vote for me in `term`. With `pre_vote` (§9.6) it
    /// only asks "would you?": `term` is the sender's term + 1, which the
    /// sender has not adopted, and the receiver neither adopts it nor
    /// records a vote.
    RequestVote { term: u64, candidate: NodeId, last_log_term: u64, last_log_index: u64, pre_vote: bool },
    /// Voter → candidate. `term` is the request's term when granted, else
    /// the voter's own term so a stale candidate learns it.
    VoteResponse { term: u64, granted: bool, pre_vote: bool },
    /// Answer to anything from a stale term that needs no other reply
    /// (a leader's heartbeat or records): "the current term is `term`".
    /// A stale leader that receives it steps down (§5.1).
    TermNotice { term: u64 },
}

impl ElectionMessage {
    /// The term the message carries.
    pub fn term(&self) -> u64 {
        match *self {
            ElectionMessage::RequestVote { term, .. }
            | ElectionMessage::VoteResponse { term, .. }
            | ElectionMessage::TermNotice { term } => term,
        }
    }
}
