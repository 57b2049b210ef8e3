//! The client's error type.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use burrow_proto::{CodecError, Opcode, Reply, ReplyError, Status};

/// Why a call failed: the connection, the server's reply, or its bytes.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The connection (TCP or Unix socket) could not be opened.
    #[error("cannot connect")]
    Connect(#[source] std::io::Error),
    /// [`ClientConfig::tls`](crate::ClientConfig) was given for a Unix
    /// socket, which the server serves plain only: refused rather than
    /// silently sent in the clear.
    #[error("TLS does not apply to a Unix socket (the server serves it plain); connect without TLS")]
    TlsOnUnixSocket,
    /// The TLS handshake failed: the server's certificate is not signed by
    /// the CA given or does not name the server, the server wants a client
    /// certificate, or the server does not speak TLS.
    #[error("TLS handshake failed")]
    Tls(#[source] std::io::Error),
    /// `what` (`connect` or `request`) took longer than the configured limit.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// `connect` or `request`.
        what: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// Reading or writing the connection failed.
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    /// The server closed the connection before answering.
    #[error("server closed the connection")]
    Closed,
    /// The server answered with an error status: match on `status` for
    /// `NOT_LEADER` (redirects exhausted, or no leader known), `NO_QUORUM`,
    /// `STALE`, `LOADING` and the rest.
    #[error("{status}: {message}")]
    Server {
        /// The error status.
        status: Status,
        /// The server's message (for `NOT_LEADER`, the leader's address).
        message: String,
    },
    /// A `NOT_LEADER` reply named a leader the client could not connect to.
    /// The client stays connected to the server that sent it.
    #[error("redirect to the leader at {leader} failed")]
    Redirect {
        /// The leader address the `NOT_LEADER` reply named.
        leader: SocketAddr,
        /// Why connecting to it failed.
        #[source]
        source: Box<ClientError>,
    },
    /// The server's bytes are not frames this client accepts (bad magic,
    /// over the client's limits, …): the codec's own error.
    #[error("protocol error")]
    Protocol(#[source] CodecError),
    /// A frame that is not a valid reply.
    #[error("protocol error")]
    BadReply(#[source] ReplyError),
    /// A reply that answers another request: the stream is out of step.
    #[error("protocol error: reply id {got} does not match request id {expected}")]
    IdMismatch {
        /// The reply's id.
        got: u32,
        /// The request's id.
        expected: u32,
    },
    /// A valid reply of the wrong kind for the command (an INT for GET, …).
    #[error("expected {expected}, got {got:?}")]
    UnexpectedReply {
        /// What the command answers.
        expected: &'static str,
        /// What came instead.
        got: Reply,
    },
    /// An earlier failure left replies unread; open a new client.
    #[error("connection unusable after an earlier timeout or protocol error; reconnect")]
    Broken,
    /// A cluster client's connection failed after it sent a request that is
    /// not idempotent (protocol.md §5.2): the request may or may not have
    /// run, and it was not re-sent so that it cannot run twice. Read the
    /// data back to find out, if it matters.
    #[error("outcome unknown: the connection to {addr} failed after {} was sent, and it is not retried (not idempotent)", .opcode.name())]
    OutcomeUnknown {
        /// The server the request was sent to.
        addr: SocketAddr,
        /// The first request of unknown outcome that is not idempotent.
        opcode: Opcode,
        /// Positions, in the call's requests, of every request whose
        /// outcome is unknown (`[0]` for a single request).
        unknown: Vec<usize>,
        /// The replies received, by position; `None` where unknown.
        replies: Vec<Option<Reply>>,
        /// How the connection failed.
        #[source]
        source: Box<ClientError>,
    },
    /// A cluster client tried until its failover deadline without reaching
    /// a node that would serve the call (no leader, nodes down or
    /// unreachable). A request that is not idempotent did not run; an
    /// idempotent one may have.
    #[error("no node served the request within {after:?} ({attempts} attempts)")]
    Unavailable {
        /// Time spent trying.
        after: Duration,
        /// Connections and requests tried.
        attempts: u32,
        /// The last attempt's failure.
        #[source]
        last: Box<ClientError>,
    },
    /// [`Client::connect_cluster`](crate::Client::connect_cluster) was
    /// given no address.
    #[error("no seed addresses given")]
    NoSeeds,
    /// The server requires authentication (it answered `NOAUTH`) and this
    /// client was given no secret ([`ClientConfig::auth`](crate::ClientConfig)).
    #[error("the server requires authentication and no secret was given (an auth file)")]
    AuthRequired,
    /// Authentication with the configured secret failed: the server refused
    /// the proof (another secret), its own proof was wrong (it does not
    /// hold the secret: not the server meant), or it offers no
    /// authentication at all and so cannot prove anything.
    #[error("authentication failed: {reason}")]
    AuthFailed {
        /// What went wrong, with the server's message where it sent one.
        reason: String,
    },
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

    /// For a `NOT_LEADER` error, the leader address it names, if any.
    pub fn leader(&self) -> Option<SocketAddr> {
        match self {
            ClientError::Server { status: Status::NotLeader, message } => super::parse_leader(message),
            ClientError::Redirect { leader, .. } => Some(*leader),
            _ => None,
        }
    }
}

/// I/O errors stay `Io`, and a stream that ends inside a reply is `Closed`
/// (as one that ends between replies); the rest is `Protocol`.
impl From<CodecError> for ClientError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::Io(io) => ClientError::Io(io),
            CodecError::Truncated { .. } => ClientError::Closed,
            other => ClientError::Protocol(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::{ArrayError, ErrorChain};

    /// Every variant with a source prints it only through the chain.
    #[test]
    fn no_client_error_prints_its_source_twice() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let errors = [
            ClientError::Connect(io()),
            ClientError::Io(io()),
            ClientError::Redirect {
                leader: "127.0.0.1:7441".parse().unwrap(),
                source: Box::new(ClientError::Connect(io())),
            },
            ClientError::Protocol(CodecError::BadMagic { got: 0xb7, expected: 0xb8 }),
            ClientError::BadReply(ReplyError::Array(ArrayError::Truncated { index: 2 })),
            ClientError::Server { status: Status::NotLeader, message: "127.0.0.1:7441".into() },
            ClientError::Timeout { what: "request", after: Duration::from_secs(1) },
            ClientError::OutcomeUnknown {
                addr: "127.0.0.1:7441".parse().unwrap(),
                opcode: Opcode::Incr,
                unknown: vec![0],
                replies: vec![None],
                source: Box::new(ClientError::Closed),
            },
            ClientError::Unavailable {
                after: Duration::from_secs(10),
                attempts: 7,
                last: Box::new(ClientError::Connect(io())),
            },
        ];
        for (i, e) in errors.iter().enumerate() {
            assert_eq!(ErrorChain(e).repeated_cause(), None, "#{i}: {e:?}");
        }
        assert_eq!(
            ErrorChain(&errors[4]).to_string(),
            "protocol error: bad ARRAY body: array item 2 truncated",
            "the reply's own cause is kept"
        );
    }
}
