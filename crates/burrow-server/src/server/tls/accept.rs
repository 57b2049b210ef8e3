//! The server side of a TLS connection: the handshake, run in the
//! connection's own task under a deadline (a peer that opens TCP and says
//! nothing holds neither the accept loop nor a slot for long), counted for
//! INFO and logged at most once per `LOG_EVERY`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tracing::warn;

use super::MemberDialer;
use crate::server::log_limit::{LogLimit, LOG_EVERY};

/// The client port's TLS, and what its handshakes did.
pub(crate) struct ServerTls {
    acceptor: TlsAcceptor,
    timeout: Duration,
    /// How this node dials other members (TLS under `[cluster] tls`).
    pub(crate) dialer: MemberDialer,
    /// `[cluster] tls = true`: a link opener must come over a connection
    /// whose client certificate was verified.
    pub(crate) members_need_certificates: bool,
    /// Handshakes completed.
    pub(crate) handshakes: AtomicU64,
    /// Handshakes that failed or timed out (plain TCP on the TLS port, a
    /// certificate the CA does not vouch for, silence).
    pub(crate) failures: AtomicU64,
    failure_log: LogLimit,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("timeout", &self.timeout)
            .field("dialer", &self.dialer)
            .field("members_need_certificates", &self.members_need_certificates)
            .finish_non_exhaustive()
    }
}

/// A handshake done: the stream, and whether the peer presented a client
/// certificate (a presented one is verified by then, or the handshake fails).
pub(crate) struct Accepted {
    pub(crate) stream: TlsStream<TcpStream>,
    pub(crate) client_certificate: bool,
}

impl ServerTls {
    pub(super) fn new(
        config: Arc<rustls::ServerConfig>,
        timeout: Duration,
        dialer: MemberDialer,
        members_need_certificates: bool,
    ) -> ServerTls {
        ServerTls {
            acceptor: TlsAcceptor::from(config),
            timeout,
            dialer,
            members_need_certificates,
            handshakes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            failure_log: LogLimit::new(LOG_EVERY),
        }
    }

    /// Runs the server handshake on `tcp` within `--tls-handshake-timeout`;
    /// `None` when it failed (counted and logged, rate-limited).
    pub(crate) async fn accept(&self, tcp: TcpStream, peer: SocketAddr) -> Option<Accepted> {
        let why = match tokio::time::timeout(self.timeout, self.acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => {
                self.handshakes.fetch_add(1, Ordering::Relaxed);
                let client_certificate = stream.get_ref().1.peer_certificates().is_some();
                return Some(Accepted { stream, client_certificate });
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no handshake within {} ms", self.timeout.as_millis()),
        };
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(skipped) = self.failure_log.allow(Instant::now()) {
            warn!(%peer, reason = %why, skipped, "TLS handshake failed (logged at most once per 10 s)");
        }
        None
    }
}
