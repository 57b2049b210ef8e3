//! The client's error type.

use std::time::Duration;

use thiserror::Error;

use crate::protocol::{CodecError, Reply, Status};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("{what} timed out after {after:?}")]
    Timeout { what: &'static str, after: Duration },
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("server closed the connection")]
    Closed,
    /// The server answered with an error status.
    #[error("{status}: {message}")]
    Server { status: Status, message: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("expected {expected}, got {got:?}")]
    UnexpectedReply { expected: &'static str, got: Reply },
    #[error("connection unusable after an earlier timeout or protocol error; reconnect")]
    Broken,
}

impl ClientError {
    pub(crate) fn unexpected(expected: &'static str, got: Reply) -> ClientError {
        ClientError::UnexpectedReply { expected, got }
    }

    /// The server's status, when this is an error reply.
    pub fn status(&self) -> Option<Status> {
        match self {
            ClientError::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl From<CodecError> for ClientError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Io(io) => ClientError::Io(io),
            other => ClientError::Protocol(other.to_string()),
        }
    }
}
