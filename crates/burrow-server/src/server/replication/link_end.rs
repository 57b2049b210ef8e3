//! Why a replication link ended: one value per cause, which the side that
//! saw it logs once (`follower link closed` on the leader, `replication
//! link lost` on the follower) through [`ErrorChain`](burrow_proto::ErrorChain),
//! so a cause with a source reads `read failed: Connection reset by peer`.

use std::fmt;
use std::net::SocketAddr;

use thiserror::Error;

use crate::replication::wire::{self, WireError};
use crate::replication::Message;
use burrow_proto::CodecError;

/// Which end of a link, in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Leader,
    Follower,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            End::Leader => "leader",
            End::Follower => "follower",
        })
    }
}

/// Why a link ended.
#[derive(Debug, Error)]
pub(super) enum LinkEnd {
    /// `by` closed it: the peer's end of the stream (also inside a frame),
    /// or the leader itself dropping it (silent, reconnected, behind the
    /// backlog, shutting down).
    #[error("closed by the {by}")]
    Closed { by: End },
    /// Every sender of the leader's queue for this link is gone.
    #[error("link dropped")]
    QueueClosed,
    #[error("read failed")]
    Read(#[source] std::io::Error),
    /// The peer's bytes are not frames within the link's limits.
    #[error("bad frame")]
    BadFrame(#[source] CodecError),
    /// A frame that is not a replication message.
    #[error("bad message from the {from}")]
    BadMessage {
        from: End,
        #[source]
        source: WireError,
    },
    /// What the follower dialled answers with another magic: not a Burrow
    /// server (or one too old to speak the replication protocol).
    #[error("{addr} does not serve replication (is it the leader?)")]
    NotServing {
        addr: SocketAddr,
        #[source]
        source: CodecError,
    },
    #[error("write failed")]
    Write(#[source] std::io::Error),
    /// A message over the link's own limits (a bug: limits are sized for
    /// the largest record a client can cause).
    #[error("cannot encode {message}")]
    Encode {
        message: &'static str,
        #[source]
        source: CodecError,
    },
    /// The follower could not store a full resync's snapshot (logged
    /// beside this, with its cause).
    #[error("snapshot could not be stored")]
    SnapshotNotStored,
}

impl LinkEnd {
    /// A failed read: IO, or bytes that do not frame.
    pub(super) fn read(e: CodecError) -> LinkEnd {
        match e {
            CodecError::Io(e) => LinkEnd::Read(e),
            e => LinkEnd::BadFrame(e),
        }
    }

    /// A failed write of `msg` (IO), or `msg` did not encode.
    pub(super) fn write(e: CodecError, msg: &Message) -> LinkEnd {
        match e {
            CodecError::Io(e) => LinkEnd::Write(e),
            source => {
                LinkEnd::Encode { message: wire::opcode_name(wire::opcode(msg)).unwrap_or("?"), source }
            }
        }
    }

    /// A failed flush: only IO can fail there (frames were encoded when fed).
    pub(super) fn flush(e: CodecError) -> LinkEnd {
        match e {
            CodecError::Io(e) => LinkEnd::Write(e),
            e => LinkEnd::BadFrame(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::ErrorChain;

    #[test]
    fn causes_read_as_the_log_has_always_said_them() {
        let reset = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "Connection reset by peer");
        let hb = Message::Heartbeat { term: 1, last_index: 0, commit_index: 0, round: 0 };
        let addr: SocketAddr = "127.0.0.1:7441".parse().unwrap();
        let cases = [
            (LinkEnd::Closed { by: End::Follower }, "closed by the follower"),
            (LinkEnd::read(CodecError::Io(reset())), "read failed: Connection reset by peer"),
            (LinkEnd::write(CodecError::Io(reset()), &hb), "write failed: Connection reset by peer"),
            (
                LinkEnd::BadMessage { from: End::Leader, source: WireError::UnknownOpcode(0x5f) },
                "bad message from the leader: opcode 0x5f is not a replication message",
            ),
            (
                LinkEnd::NotServing { addr, source: CodecError::BadMagic { got: 0x2b, expected: 0xb7 } },
                "127.0.0.1:7441 does not serve replication (is it the leader?): bad magic byte 0x2b \
                 (expected 0xb7)",
            ),
            (
                LinkEnd::write(CodecError::FrameTooLarge { len: 9, max: 1, id: 0, opcode: 0 }, &hb),
                "cannot encode HEARTBEAT: frame length 9 over the limit of 1 bytes",
            ),
        ];
        for (i, (end, want)) in cases.iter().enumerate() {
            assert_eq!(ErrorChain(end).to_string(), *want, "case #{i}");
            assert_eq!(ErrorChain(end).repeated_cause(), None, "case #{i}: each cause once");
        }
    }
}
