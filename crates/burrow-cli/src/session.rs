//! A connection that (re)connects on demand, driven from synchronous code.
//!
//! The REPL blocks in the line editor between commands, so the CLI runs a
//! current-thread tokio runtime and `block_on`s each exchange rather than
//! living inside async code. A transport failure drops the client; the next
//! command connects again (that is the REPL's reconnect).
//!
//! The client follows `NOT_LEADER` redirects itself; the session announces
//! each one on standard error (`-> redirected to leader at 127.0.0.1:7441`)
//! and from then on names, and reconnects to, the leader.
//!
//! Given several hosts (`--hosts`), the session holds a cluster client,
//! which rides out leader changes itself (protocol.md §5.2); a command that
//! lands on another node than the last one says so in one line
//! (`-> redirected to leader at …`, or `-> reconnected to …` when it got
//! there by reconnecting), and an unknown outcome or no leader within the
//! deadline is printed as an error without dropping the session.

use thiserror::Error;

use burrow_client::{Client, ClientConfig, ClientError, Secret, SecretError};
use burrow_proto::{ErrorChain, Reply, Request, Status};

use super::parse::Plan;

/// Failures of the CLI itself (not error replies, which are printed).
#[derive(Debug, Error)]
pub enum CliError {
    /// `reason` is the cause as redis-cli words it (`Connection refused`,
    /// without the OS error number): text for the user, built once.
    #[error("Could not connect to Burrow at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("Connection to Burrow at {addr} lost")]
    Lost {
        addr: String,
        #[source]
        source: ClientError,
    },
    /// A follower named a leader the CLI could not reach; the connection to
    /// the follower is kept.
    #[error(transparent)]
    Redirect(ClientError),
    /// With `--hosts`: a command of unknown outcome, or no node that served
    /// it within the failover deadline; the session carries on.
    #[error(transparent)]
    Failover(ClientError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    #[error("line editor")]
    Editor(#[from] rustyline::error::ReadlineError),
    /// `--auth-file` (or `BURROW_AUTH_FILE`) could not be read or is too short.
    #[error("auth file")]
    Secret(#[from] SecretError),
    /// `--cacert`, `--cert`, `--key` or `--sni` is unusable.
    #[error("TLS settings")]
    Tls(#[from] burrow_client::TlsConfigError),
}

/// Where to connect, and the connection when there is one.
#[derive(Debug)]
pub struct Session {
    host: String,
    port: u16,
    /// `--hosts`: the seeds of a cluster client (empty: one server).
    hosts: Vec<String>,
    /// `-s PATH`: the server's Unix socket, until a redirect moves the
    /// session to a leader's TCP address.
    unix: Option<std::path::PathBuf>,
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
    /// Settings of every connection (the auth secret).
    config: ClientConfig,
    /// The server's key and value limits (INFO memory), asked the first
    /// time a request is large enough to matter; forgotten on reconnect.
    limits: Option<Limits>,
}

/// Requests whose key and value together are at most this size are sent
/// without asking the server's limits (a server refusing one answers
/// TOO_LARGE cheaply and keeps the connection).
const CHECK_ABOVE: usize = 64 * 1024;

/// What the server accepts, from INFO memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Limits {
    max_key: usize,
    max_value: usize,
}

impl Session {
    /// Creates the session without connecting yet.
    pub fn new(host: &str, port: u16) -> Result<Session, CliError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
        let config = ClientConfig::default();
        Ok(Session {
            host: host.to_string(),
            port,
            hosts: Vec::new(),
            unix: None,
            client: None,
            runtime,
            config,
            limits: None,
        })
    }

    /// A session on a cluster given by its nodes' `host:port` addresses
    /// (`host:port` each, at least one), named by the first until
    /// connected.
    pub fn cluster(hosts: &[String]) -> Result<Session, CliError> {
        let first = hosts.first().map(String::as_str).unwrap_or_default();
        let (host, port) = split_host_port(first).unwrap_or((first, 0));
        let mut session = Session::new(host, port)?;
        session.hosts = hosts.to_vec();
        Ok(session)
    }

    /// A session on the server's Unix socket at `path`.
    pub fn unix(path: std::path::PathBuf) -> Result<Session, CliError> {
        let mut session = Session::new("", 0)?;
        session.unix = Some(path);
        Ok(session)
    }

    /// `host:port` as users write it (IPv6 hosts bracketed), or `unix:PATH`.
    pub fn addr(&self) -> String {
        if let Some(path) = &self.unix {
            format!("unix:{}", path.display())
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Authenticates every connection from now on with `secret`.
    pub fn set_auth(&mut self, secret: Secret) {
        self.config.auth = Some(std::sync::Arc::new(secret));
    }

    /// Connects with TLS from now on.
    pub fn set_tls(&mut self, tls: burrow_client::TlsOptions) {
        self.config.tls = Some(tls);
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// Connects unless already connected.
    pub fn connect(&mut self) -> Result<(), CliError> {
        if self.client.is_none() {
            let client = if let Some(path) = &self.unix {
                self.runtime
                    .block_on(Client::connect_unix_with(path, self.config.clone()))
                    .map_err(|e| CliError::Connect { addr: self.addr(), reason: connect_reason(&e) })?
            } else if self.hosts.is_empty() {
                let target = (self.host.as_str(), self.port);
                self.runtime
                    .block_on(Client::connect_with(target, self.config.clone()))
                    .map_err(|e| CliError::Connect { addr: self.addr(), reason: connect_reason(&e) })?
            } else {
                let connect = Client::connect_cluster_with(&self.hosts, self.config.clone());
                self.runtime.block_on(connect).map_err(|e| CliError::Connect {
                    addr: self.hosts.join(","),
                    reason: connect_reason(&e),
                })?
            };
            self.at(&client);
            self.client = Some(client);
            self.limits = None;
        }
        Ok(())
    }

    /// Names the server `client` is on as the session's.
    fn at(&mut self, client: &Client) {
        if client.unix_socket().is_some() {
            return;
        }
        let addr = client.addr();
        self.unix = None;
        self.host = addr.ip().to_string();
        self.port = addr.port();
    }

    /// Sends `requests` pipelined (connecting first if needed) and returns one
    /// reply per request. On a transport error the connection is dropped.
    pub fn exchange(&mut self, requests: &[Request]) -> Result<Vec<Reply>, CliError> {
        self.connect()?;
        let client = self.client.as_mut().expect("connected above");
        let before = client.addr();
        let result = self.runtime.block_on(client.pipeline(requests));
        // Hops that succeeded count even when a later one failed.
        let hops = client.last_redirects().to_vec();
        let now = client.addr();
        for leader in &hops {
            eprintln!("-> redirected to leader at {leader}");
        }
        if hops.last().map_or(now != before, |&last| last != now) {
            eprintln!("-> reconnected to {now}");
        }
        let client = self.client.take().expect("connected above");
        self.at(&client);
        self.client = Some(client);
        match result {
            Ok(replies) => Ok(replies),
            Err(e @ ClientError::Redirect { .. }) => Err(CliError::Redirect(e)),
            Err(e @ (ClientError::OutcomeUnknown { .. } | ClientError::Unavailable { .. })) => {
                Err(CliError::Failover(e))
            }
            Err(source) => {
                self.client = None;
                Err(CliError::Lost { addr: self.addr(), source })
            }
        }
    }

    /// MONITOR: prints `OK`, then one line per event (`monitor_view`) to
    /// `out` until the server ends the stream (or the user interrupts).
    /// The connection is used up: a next command reconnects. `Ok(false)`:
    /// the server refused MONITOR (the error is printed).
    pub(crate) fn monitor(&mut self, out: &mut impl std::io::Write) -> Result<bool, CliError> {
        self.connect()?;
        let client = self.client.take().expect("connected above");
        let addr = self.addr();
        let mut monitor = match self.runtime.block_on(client.monitor()) {
            Ok(m) => m,
            Err(ClientError::Server { status, message }) => {
                let reply = Reply::Error { status, message };
                writeln!(out, "{}", crate::format::render(&reply, crate::format::Style::Human))?;
                return Ok(false);
            }
            Err(source) => return Err(CliError::Lost { addr, source }),
        };
        writeln!(out, "OK")?;
        out.flush()?;
        loop {
            match self.runtime.block_on(monitor.next()) {
                Ok(Some(event)) => {
                    writeln!(out, "{}", crate::monitor_view::render_event(&event))?;
                    out.flush()?;
                }
                Ok(None) => return Ok(true),
                Err(source) => return Err(CliError::Lost { addr, source }),
            }
        }
    }

    /// Runs one command's plan and combines its replies; a request over the
    /// server's limits is refused here, unsent.
    pub(crate) fn run(&mut self, plan: &Plan) -> Result<Reply, CliError> {
        if let Some(refusal) = self.refuse_oversized(plan)? {
            return Ok(refusal);
        }
        let replies = self.exchange(&plan.requests)?;
        Ok(plan.finish(replies))
    }

    /// TOO_LARGE, worded as the server words it, for a plan with a key or
    /// value over the server's limits, so a large value is not uploaded
    /// for nothing; `None` to send it. Only large requests cost a question
    /// to the server (once per connection); a server that does not say its
    /// limits is left to judge for itself.
    pub(crate) fn refuse_oversized(&mut self, plan: &Plan) -> Result<Option<Reply>, CliError> {
        let frames: Vec<_> = plan.requests.iter().map(|r| r.to_frame(0)).collect();
        if frames.iter().all(|f| f.key.len() + f.value.len() <= CHECK_ABOVE) {
            return Ok(None);
        }
        let Some(limits) = self.limits()? else { return Ok(None) };
        for f in &frames {
            let (what, len, max) = if f.key.len() > limits.max_key {
                ("key", f.key.len(), limits.max_key)
            } else if f.value.len() > limits.max_value {
                ("value", f.value.len(), limits.max_value)
            } else {
                continue;
            };
            let message = format!("{what} length {len} over the limit of {max} bytes (not sent)");
            return Ok(Some(Reply::Error { status: Status::TooLarge, message }));
        }
        Ok(None)
    }

    /// The server's limits, asked once per connection.
    fn limits(&mut self) -> Result<Option<Limits>, CliError> {
        if self.limits.is_none() {
            let info = match self.exchange(&[Request::Info { section: "memory".into() }])?.pop() {
                Some(Reply::Text(t)) => t,
                _ => return Ok(None),
            };
            let fields = burrow_client::parse_info(&info);
            let field =
                |name: &str| fields.iter().find(|(k, _)| *k == name).and_then(|(_, v)| v.parse().ok());
            if let (Some(max_key), Some(max_value)) = (field("max_key_bytes"), field("max_value_bytes")) {
                self.limits = Some(Limits { max_key, max_value });
            }
        }
        Ok(self.limits)
    }
}

/// Parses one `--hosts` entry: `host:port`, the host a name, an IPv4
/// address or a bracketed IPv6 address (`[::1]:7441`).
pub(crate) fn parse_host_port(s: &str) -> Result<String, String> {
    match split_host_port(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!("'{s}' is not host:port (e.g. 127.0.0.1:7441, [::1]:7441)")),
    }
}

/// `host:port` split into its parts, brackets removed from an IPv6 host.
fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(h) => h.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// The reason part of a connect failure, as redis-cli words it
/// (`Connection refused`, without the `(os error 111)` suffix).
fn connect_reason(e: &ClientError) -> String {
    match e {
        ClientError::Connect(io) => {
            let s = io.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
        other => ErrorChain(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::ParseError;
    use crate::token::TokenizeError;

    /// Every error type of this crate, each variant with a source, prints
    /// that source only through the chain.
    #[test]
    fn no_cli_error_prints_its_source_twice() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "Connection reset by peer");
        let leader = "127.0.0.1:7441".parse().unwrap();
        let redirect = ClientError::Redirect { leader, source: Box::new(ClientError::Connect(io())) };
        let errors: [&(dyn std::error::Error + 'static); 9] = [
            &CliError::Connect { addr: "127.0.0.1:7440".into(), reason: "Connection refused".into() },
            &CliError::Lost { addr: "127.0.0.1:7440".into(), source: ClientError::Io(io()) },
            &CliError::Redirect(redirect),
            &CliError::Failover(ClientError::Unavailable {
                after: std::time::Duration::from_secs(10),
                attempts: 3,
                last: Box::new(ClientError::Connect(io())),
            }),
            &CliError::Runtime(io()),
            &CliError::Io(io()),
            &CliError::Editor(rustyline::error::ReadlineError::Interrupted),
            &ParseError::Syntax("SET key value".into()),
            &TokenizeError::BadHexEscape,
        ];
        for (i, e) in errors.into_iter().enumerate() {
            assert_eq!(ErrorChain(e).repeated_cause(), None, "#{i}: {e:?}");
        }
    }

    #[test]
    fn hosts_are_host_colon_port() {
        for ok in ["127.0.0.1:7441", "localhost:1", "[::1]:7441", "node-2.example:65535"] {
            assert_eq!(parse_host_port(ok).as_deref(), Ok(ok));
        }
        for bad in ["", "7441", "127.0.0.1", ":7441", "::1:7441", "[::1]", "h:99999", "h:port", "[]:1"] {
            assert!(parse_host_port(bad).is_err(), "{bad:?}");
        }
        assert_eq!(split_host_port("[::1]:7441"), Some(("::1", 7441)));
        let s = Session::cluster(&["[::1]:7441".into(), "127.0.0.1:7442".into()]).unwrap();
        assert_eq!(s.addr(), "[::1]:7441");
    }
}
