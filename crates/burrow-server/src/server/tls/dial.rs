//! How a member dials another (follower → leader, peer links): plain TCP,
//! or under `[cluster] tls = true` TLS that verifies the member's
//! certificate against `--tls-ca-file` and presents this node's own.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

/// A dialed member link: plain or TLS.
pub(crate) type MemberStream = Either<TcpStream, TlsStream<TcpStream>>;

/// Dials members; cheap to clone.
#[derive(Clone)]
pub(crate) struct MemberDialer {
    tls: Option<(TlsConnector, Option<ServerName<'static>>)>,
}

impl std::fmt::Debug for MemberDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberDialer").field("tls", &self.tls.is_some()).finish()
    }
}

impl MemberDialer {
    pub(crate) fn plain() -> MemberDialer {
        MemberDialer { tls: None }
    }

    pub(super) fn tls(config: Arc<rustls::ClientConfig>, name: Option<ServerName<'static>>) -> MemberDialer {
        MemberDialer { tls: Some((TlsConnector::from(config), name)) }
    }

    /// Connects to `addr` (no Nagle delay) and, with TLS, completes the
    /// handshake, all within `limit`. The member's certificate must name
    /// `[cluster] tls_server_name`, else the IP address dialed.
    pub(crate) async fn dial(&self, addr: SocketAddr, limit: Duration) -> io::Result<MemberStream> {
        let connect = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            match &self.tls {
                None => Ok(Either::Left(tcp)),
                Some((connector, name)) => {
                    let name = name.clone().unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
                    Ok(Either::Right(connector.connect(name, tcp).await?))
                }
            }
        };
        match tokio::time::timeout(limit, connect).await {
            Ok(r) => r,
            Err(_) => Err(io::ErrorKind::TimedOut.into()),
        }
    }
}
