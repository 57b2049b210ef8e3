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

use thiserror::Error;

use burrow_client::{Client, ClientError};
use burrow_proto::{ErrorChain, Reply, Request};

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
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    #[error("line editor")]
    Editor(#[from] rustyline::error::ReadlineError),
}

/// Where to connect, and the connection when there is one.
#[derive(Debug)]
pub struct Session {
    host: String,
    port: u16,
    client: Option<Client>,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    /// Creates the session without connecting yet.
    pub fn new(host: &str, port: u16) -> Result<Session, CliError> {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
        Ok(Session { host: host.to_string(), port, client: None, runtime })
    }

    /// `host:port` as users write it (IPv6 hosts bracketed).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.client.is_some()
    }

    /// Connects unless already connected.
    pub fn connect(&mut self) -> Result<(), CliError> {
        if self.client.is_none() {
            let target = (self.host.as_str(), self.port);
            let client = self
                .runtime
                .block_on(Client::connect(target))
                .map_err(|e| CliError::Connect { addr: self.addr(), reason: connect_reason(&e) })?;
            self.client = Some(client);
        }
        Ok(())
    }

    /// Sends `requests` pipelined (connecting first if needed) and returns one
    /// reply per request. On a transport error the connection is dropped.
    pub fn exchange(&mut self, requests: &[Request]) -> Result<Vec<Reply>, CliError> {
        self.connect()?;
        let client = self.client.as_mut().expect("connected above");
        let result = self.runtime.block_on(client.pipeline(requests));
        // Hops that succeeded count even when a later one failed.
        let hops = client.last_redirects().to_vec();
        for leader in hops {
            eprintln!("-> redirected to leader at {leader}");
            self.host = leader.ip().to_string();
            self.port = leader.port();
        }
        match result {
            Ok(replies) => Ok(replies),
            Err(e @ ClientError::Redirect { .. }) => Err(CliError::Redirect(e)),
            Err(source) => {
                self.client = None;
                Err(CliError::Lost { addr: self.addr(), source })
            }
        }
    }

    /// Runs one command's plan and combines its replies.
    pub(crate) fn run(&mut self, plan: &Plan) -> Result<Reply, CliError> {
        let replies = self.exchange(&plan.requests)?;
        Ok(plan.finish(replies))
    }
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
        let errors: [&(dyn std::error::Error + 'static); 8] = [
            &CliError::Connect { addr: "127.0.0.1:7440".into(), reason: "Connection refused".into() },
            &CliError::Lost { addr: "127.0.0.1:7440".into(), source: ClientError::Io(io()) },
            &CliError::Redirect(redirect),
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
}
