//! A load connection's socket: plain TCP, or TLS (`--tls`).

use tokio::net::TcpStream;

pub(crate) type Stream = tokio_util::either::Either<TcpStream, burrow_client::TlsStream<TcpStream>>;
