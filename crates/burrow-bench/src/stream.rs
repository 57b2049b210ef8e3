//! A load connection's socket: plain TCP, TLS (`--tls`), or a Unix socket (`-s`).

use tokio::net::{TcpStream, UnixStream};
use tokio_util::either::Either;

pub(crate) type Stream = Either<Either<TcpStream, burrow_client::TlsStream<TcpStream>>, UnixStream>;
