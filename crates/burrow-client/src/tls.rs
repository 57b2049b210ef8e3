//! TLS for the client's connections: which CA the server's certificate
//! must chain to, the name it must carry, and optionally a client
//! certificate to present (servers with `--tls-client-auth`).
//!
//! rustls on the `ring` provider only, given explicitly (no process-wide
//! default to install).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
pub use tokio_rustls::client::TlsStream;

/// A client's TLS settings, ready to connect with. Build it with
/// [`TlsOptions::from_files`]; cheap to clone.
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<rustls::ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

/// Equal when built by the same [`TlsOptions::from_files`] call, with the
/// same server name.
impl PartialEq for TlsOptions {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.config, &other.config) && self.server_name == other.server_name
    }
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions").field("server_name", &self.server_name).finish_non_exhaustive()
    }
}

/// Why TLS options could not be built: the file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct TlsConfigError {
    /// The file at fault (the certificate, for a key that does not match it).
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl TlsOptions {
    /// Trusts the CA certificates of the PEM file `ca`, and presents the
    /// PEM certificate chain and key `client` when given.
    pub fn from_files(ca: &Path, client: Option<(&Path, &Path)>) -> Result<TlsOptions, TlsConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(ca)? {
            roots.add(cert).map_err(|e| err(ca, format!("not a usable CA certificate: {e}")))?;
        }
        let builder =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| err(ca, e.to_string()))?
                .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates(cert)?;
                let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err(key, pem_reason(&e)))?;
                builder.with_client_auth_cert(chain, key_der).map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => {
                        err(cert, format!("{} is not its key", key.display()))
                    }
                    other => err(cert, other.to_string()),
                })?
            }
        };
        Ok(TlsOptions { config: Arc::new(config), server_name: None })
    }

    /// The name the server's certificate must carry (a DNS name or an IP
    /// address), sent as SNI; without it, the IP address connected to.
    pub fn server_name(mut self, name: &str) -> Result<TlsOptions, TlsConfigError> {
        let parsed = ServerName::try_from(name.to_owned())
            .map_err(|_| err(Path::new(name), "not a DNS name or IP address".into()))?;
        self.server_name = Some(parsed);
        Ok(self)
    }

    /// Whether a server name was set.
    pub fn has_server_name(&self) -> bool {
        self.server_name.is_some()
    }

    /// Runs the client handshake on `tcp`, verifying the server's
    /// certificate (for tools that drive their own sockets, as
    /// `burrow-bench` does).
    pub async fn handshake(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let ip = tcp.peer_addr()?.ip();
        tokio_rustls::TlsConnector::from(self.config.clone()).connect(self.name_for(ip), tcp).await
    }

    /// The name to verify for a connection to `ip`.
    fn name_for(&self, ip: std::net::IpAddr) -> ServerName<'static> {
        self.server_name.clone().unwrap_or_else(|| ServerName::IpAddress(ip.into()))
    }
}

fn err(path: &Path, reason: String) -> TlsConfigError {
    TlsConfigError { path: path.to_owned(), reason }
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(path, pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(err(path, "no PEM CERTIFICATE block in it".into()));
    }
    Ok(certs)
}

fn pem_reason(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => "no PEM block of the expected kind in it".into(),
        Error::Io(io) => io.to_string(),
        other => format!("not valid PEM: {other:?}"),
    }
}
