//! Client authentication as the server holds it: the secret from
//! `--auth-secret-file`, protected mode, and the counters and rate-limited
//! log INFO and operators see. Each connection's own handshake state is
//! `connection::gate`; the exchange itself is `burrow_proto::Proof`.
//!
//! Replication and peer links (opcodes 0x50–0x5F) are not client
//! connections and are not gated here: member authentication guards them.

use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::warn;

use super::{now_ms, Config};
use burrow_proto::{Secret, SecretError};

/// Why the server refuses to start for want of (or a bad) client secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("--auth-secret-file")]
    Secret(#[source] SecretError),
    #[error(
        "protected mode: --bind {addr} accepts connections from other machines and no client \
         authentication is configured; give --auth-secret-file FILE (README, Security), bind a \
         loopback address (127.0.0.1), or opt out with --protected-mode no"
    )]
    Protected { addr: IpAddr },
}

/// The client secret, if any, and what AUTH attempts did.
#[derive(Debug)]
pub(crate) struct ClientAuth {
    secret: Option<Secret>,
    /// AUTHs that succeeded.
    pub successes: AtomicU64,
    /// AUTHs refused: wrong proof, no challenge, unknown user.
    pub failures: AtomicU64,
    /// Commands refused with NOAUTH on connections not yet authenticated.
    pub refused: AtomicU64,
    failure_log: LogLimit,
    refusal_log: LogLimit,
}

impl ClientAuth {
    /// Checks protected mode and reads the secret file (warning when other
    /// users may read it).
    pub(crate) fn load(config: &Config) -> Result<ClientAuth, AuthSetupError> {
        check_protected_mode(config)?;
        let secret = match &config.auth_secret_file {
            None => None,
            Some(path) => {
                warn_if_readable_by_others(path);
                Some(Secret::from_file(path).map_err(AuthSetupError::Secret)?)
            }
        };
        Ok(ClientAuth::new(secret))
    }

    pub(crate) fn new(secret: Option<Secret>) -> ClientAuth {
        ClientAuth {
            secret,
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failure_log: LogLimit::default(),
            refusal_log: LogLimit::default(),
        }
    }

    pub(crate) fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref()
    }

    pub(crate) fn required(&self) -> bool {
        self.secret.is_some()
    }

    /// Counts a refused AUTH and logs it, at most once a second (a client
    /// could otherwise flood the log), with how many were not logged.
    pub(crate) fn note_failure(&self, why: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Some(unlogged) = self.failure_log.allow(now_ms()) {
            warn!(reason = why, not_logged_since_last = unlogged, "AUTH failed");
        }
    }
}

impl ClientAuth {
    /// Counts a command refused with NOAUTH and logs it, at most once a
    /// second.
    pub(crate) fn note_refused(&self, opcode: u8) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(unlogged) = self.refusal_log.allow(now_ms()) {
            warn!(
                opcode = format_args!("0x{opcode:02x}"),
                not_logged_since_last = unlogged,
                "command refused: the connection has not authenticated (NOAUTH)"
            );
        }
    }
}

/// Refuses a non-loopback bind without a client secret unless protected
/// mode is off.
fn protected_mode_refusal(config: &Config) -> Result<(), AuthSetupError> {
    let exposed = !config.bind.is_loopback() && config.auth_secret_file.is_none();
    match exposed && config.protected_mode {
        true => Err(AuthSetupError::Protected { addr: config.bind }),
        false => Ok(()),
    }
}

/// [`protected_mode_refusal`], and a warning when protected mode is off
/// and the server is exposed.
fn check_protected_mode(config: &Config) -> Result<(), AuthSetupError> {
    protected_mode_refusal(config)?;
    if config.bind.is_loopback() || config.auth_secret_file.is_some() {
        return Ok(());
    }
    warn!(
        bind = %config.bind,
        "protected mode is off: anyone who can reach this address can read and change every key \
         (set --auth-secret-file)"
    );
    Ok(())
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn!(
                file = %path.display(),
                mode = format_args!("{mode:03o}"),
                "the auth secret file is readable by other users; chmod 600 it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// At most one log line a second; counts the lines it held back.
#[derive(Debug, Default)]
struct LogLimit {
    last_ms: AtomicU64,
    held: AtomicU64,
}

impl LogLimit {
    /// `Some(lines held back since the last one)` when this one may be logged.
    fn allow(&self, now: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            Some(self.held.swap(0, Ordering::Relaxed))
        } else {
            self.held.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_a_public_bind_without_a_secret() {
        let public = Config { bind: "0.0.0.0".parse().unwrap(), ..Config::default() };
        let e = check_protected_mode(&public).unwrap_err();
        assert!(
            e.to_string().contains("--auth-secret-file") && e.to_string().contains("--protected-mode no")
        );
        check_protected_mode(&Config { protected_mode: false, ..public.clone() }).unwrap();
        check_protected_mode(&Config { auth_secret_file: Some("s".into()), ..public }).unwrap();
        check_protected_mode(&Config { bind: "::1".parse().unwrap(), ..Config::default() }).unwrap();
        check_protected_mode(&Config::default()).unwrap();
    }

    #[test]
    fn failures_are_logged_at_most_once_a_second() {
        let l = LogLimit::default();
        assert_eq!(l.allow(10_000), Some(0));
        assert_eq!(l.allow(10_500), None);
        assert_eq!(l.allow(10_900), None);
        assert_eq!(l.allow(11_000), Some(2));
    }
}
