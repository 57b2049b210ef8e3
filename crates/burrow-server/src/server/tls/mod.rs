//! TLS (issue 11 item 3): the client port's certificate, key and client
//! verification from `--tls-*` files, and the credentials a member dials
//! other members with under `[cluster] tls = true` (mutual TLS).
//!
//! rustls on the `ring` provider, given explicitly: no process-wide
//! default to install, and nothing else in the tree can pick another.
//! Everything is read and checked at start, so a bad file is one line
//! naming it, before the port opens.

mod accept;
mod dial;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;

pub(crate) use accept::ServerTls;
pub(crate) use dial::{MemberDialer, MemberStream};

use super::config::TlsClientAuth;
use super::Config;
use crate::server::cluster::ClusterConfig;

/// Why the server refuses to start with the TLS settings it was given.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("--tls-cert-file and --tls-key-file go together: only {given} is set")]
    Pair { given: &'static str },
    #[error("{flag} {}: {reason}", path.display())]
    File { flag: &'static str, path: PathBuf, reason: String },
    #[error("--tls-cert-file {} and --tls-key-file {}: {reason}", cert.display(), key.display())]
    Mismatch { cert: PathBuf, key: PathBuf, reason: String },
    #[error("{0}")]
    Incomplete(&'static str),
}

/// rustls's `ring` provider: the only one compiled in.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate chain and private key this node presents.
struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// Reads `--tls-cert-file`/`--tls-key-file` (both or neither).
fn identity(config: &Config) -> Result<Option<(Identity, &Path, &Path)>, TlsSetupError> {
    let (cert, key) = match (&config.tls_cert_file, &config.tls_key_file) {
        (None, None) => return Ok(None),
        (Some(_), None) => return Err(TlsSetupError::Pair { given: "--tls-cert-file" }),
        (None, Some(_)) => return Err(TlsSetupError::Pair { given: "--tls-key-file" }),
        (Some(c), Some(k)) => (c.as_path(), k.as_path()),
    };
    let chain = certificates("--tls-cert-file", cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsSetupError::File {
        flag: "--tls-key-file",
        path: key.to_owned(),
        reason: pem_reason(&e, "PRIVATE KEY"),
    })?;
    Ok(Some((Identity { chain, key: key_der }, cert, key)))
}

/// Every certificate of a PEM file; none is an error.
fn certificates(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let file = |reason: String| TlsSetupError::File { flag, path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file(pem_reason(&e, "CERTIFICATE")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file(pem_reason(&e, "CERTIFICATE")))?;
    if certs.is_empty() {
        return Err(file("no PEM CERTIFICATE block in it".into()));
    }
    Ok(certs)
}

/// `--tls-ca-file` as a trust store.
fn roots(path: &Path) -> Result<Arc<RootCertStore>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("--tls-ca-file", path)? {
        roots.add(cert).map_err(|e| TlsSetupError::File {
            flag: "--tls-ca-file",
            path: path.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

/// A PEM reading error in words (the file's own IO error included).
fn pem_reason(e: &rustls::pki_types::pem::Error, what: &str) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::NoItemsFound => format!("no PEM {what} block in it"),
        Error::Io(io) => io.to_string(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// The TLS this node runs: `None` without `--tls-cert-file`. Checks the
/// settings together: a CA or client-auth mode without a certificate, and
/// cluster TLS without everything mutual TLS needs, are refused.
pub(crate) fn load(config: &Config) -> Result<Option<ServerTls>, TlsSetupError> {
    let cluster_tls = config.cluster.as_ref().is_some_and(|c| c.tls);
    if config.tls_handshake_timeout.is_zero() {
        return Err(TlsSetupError::Incomplete("--tls-handshake-timeout must be above 0"));
    }
    let Some((me, cert_path, key_path)) = identity(config)? else {
        if config.tls_ca_file.is_some() {
            return Err(TlsSetupError::Incomplete("--tls-ca-file needs --tls-cert-file and --tls-key-file"));
        }
        if cluster_tls {
            return Err(TlsSetupError::Incomplete(
                "[cluster] tls = true needs --tls-cert-file, --tls-key-file and --tls-ca-file",
            ));
        }
        return Ok(None);
    };
    let roots = config.tls_ca_file.as_deref().map(roots).transpose()?;
    let mode = config.tls_client_auth.resolve(roots.is_some());
    let verifier = match (&roots, mode) {
        (_, TlsClientAuth::None) => WebPkiClientVerifier::no_client_auth(),
        (None, _) => return Err(TlsSetupError::Incomplete(
            "--tls-client-auth optional|required needs --tls-ca-file (the CA client certificates chain to)",
        )),
        (Some(r), m) => {
            let b = WebPkiClientVerifier::builder_with_provider(r.clone(), provider());
            let b = if m == TlsClientAuth::Optional { b.allow_unauthenticated() } else { b };
            b.build().map_err(|e| TlsSetupError::File {
                flag: "--tls-ca-file",
                path: config.tls_ca_file.clone().unwrap_or_default(),
                reason: e.to_string(),
            })?
        }
    };
    let mismatch = |e: rustls::Error| TlsSetupError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        reason: match e {
            rustls::Error::InconsistentKeys(_) => "the key is not the certificate's".to_string(),
            other => other.to_string(),
        },
    };
    let server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(mismatch)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(me.chain.clone(), me.key.clone_key())
        .map_err(mismatch)?;
    let dialer = match (config.cluster.as_ref().filter(|c| c.tls), roots) {
        (None, _) => MemberDialer::plain(),
        (Some(_), None) => {
            return Err(TlsSetupError::Incomplete(
                "[cluster] tls = true needs --tls-ca-file: members verify each other's certificates",
            ))
        }
        (Some(_), Some(_)) if mode == TlsClientAuth::None => return Err(TlsSetupError::Incomplete(
            "[cluster] tls = true needs --tls-client-auth optional or required: members present certificates",
        )),
        (Some(cluster), Some(roots)) => {
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(mismatch)?
                .with_root_certificates(roots)
                .with_client_auth_cert(me.chain, me.key)
                .map_err(mismatch)?;
            MemberDialer::tls(Arc::new(client), server_name(cluster)?)
        }
    };
    Ok(Some(ServerTls::new(Arc::new(server), config.tls_handshake_timeout, dialer, cluster_tls)))
}

/// `[cluster] tls_server_name`, checked; `None` verifies each member's
/// certificate against the host of its `addr`.
fn server_name(cluster: &ClusterConfig) -> Result<Option<ServerName<'static>>, TlsSetupError> {
    match &cluster.tls_server_name {
        None => Ok(None),
        Some(n) => ServerName::try_from(n.clone()).map(Some).map_err(|_| {
            TlsSetupError::Incomplete("[cluster] tls_server_name is not a DNS name or IP address")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that refuse before any file is read.
    #[test]
    fn settings_that_do_not_go_together_are_refused() {
        let cluster_tls = || {
            let mut c = ClusterConfig::new(
                vec![crate::NodeInfo {
                    id: 1,
                    addr: "127.0.0.1:7441".parse().unwrap(),
                    data_dir: "d".into(),
                }],
                None,
                1,
            )
            .unwrap();
            c.tls = true;
            Some(c)
        };
        let cases = [
            (Config { tls_key_file: Some("k".into()), ..Config::default() }, "only --tls-key-file is set"),
            (Config { tls_ca_file: Some("ca".into()), ..Config::default() }, "--tls-ca-file needs"),
            (Config { cluster: cluster_tls(), ..Config::default() }, "[cluster] tls = true needs"),
            (
                Config { tls_handshake_timeout: std::time::Duration::ZERO, ..Config::default() },
                "must be above 0",
            ),
        ];
        for (i, (config, want)) in cases.into_iter().enumerate() {
            let err = load(&config).map(|_| ()).unwrap_err().to_string();
            assert!(err.contains(want), "#{i}: {err:?} should say {want:?}");
        }
        assert!(load(&Config::default()).unwrap().is_none());
    }
}
