//! CLIENT LIST's lines as values, and MONITOR's stream of events
//! (protocol.md §8.15, §8.16).

use std::collections::VecDeque;

use burrow_proto::{Codec, MonitorEvent, Reply};
use futures_util::StreamExt;
use tokio_util::codec::Framed;

use super::{ClientError, Conn};

/// One client connection as CLIENT LIST shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// Unique for the server's life; CLIENT KILL takes it.
    pub id: u64,
    /// `ip:port`, with spaces, `=`, backslashes and control bytes as `\xHH`.
    pub addr: String,
    /// Seconds since it connected.
    pub age_s: u64,
    /// Seconds since its last command.
    pub idle_s: u64,
    /// Its last command's name (`NULL` before the first).
    pub cmd: String,
    /// Request bytes read and not yet executed.
    pub in_bytes: u64,
    /// Reply bytes waiting to be written.
    pub out_bytes: u64,
    /// AUTH succeeded, or the server needs none.
    pub authenticated: bool,
    /// The connection is TLS.
    pub tls: bool,
    /// `O` for a monitor, `N` otherwise.
    pub flags: String,
}

impl ClientInfo {
    /// Parses CLIENT LIST's text; a line that does not follow protocol.md
    /// §8.15 is an error naming it.
    pub fn parse_list(text: &str) -> Result<Vec<ClientInfo>, ClientError> {
        text.lines().filter(|l| !l.is_empty()).map(ClientInfo::parse_line).collect()
    }

    fn parse_line(line: &str) -> Result<ClientInfo, ClientError> {
        let bad = || ClientError::unexpected("a CLIENT LIST line", Reply::Text(line.to_string()));
        let field = |name: &str| {
            line.split(' ').find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        };
        let text = |name: &str| field(name).map(str::to_string).ok_or_else(bad);
        let num = |name: &str| field(name).and_then(|v| v.parse::<u64>().ok()).ok_or_else(bad);
        let yes = |name: &str| match field(name) {
            Some("yes") => Ok(true),
            Some("no") => Ok(false),
            _ => Err(bad()),
        };
        Ok(ClientInfo {
            id: num("id")?,
            addr: text("addr")?,
            age_s: num("age")?,
            idle_s: num("idle")?,
            cmd: text("cmd")?,
            in_bytes: num("qbuf")?,
            out_bytes: num("obuf")?,
            authenticated: yes("auth")?,
            tls: yes("tls")?,
            flags: text("flags")?,
        })
    }
}

/// A connection in MONITOR mode: every command the server's other clients
/// run, as they run. It shows keys and values: treat it as you would the data.
pub struct Monitor {
    framed: Framed<Conn, Codec>,
    queued: VecDeque<MonitorEvent>,
}

impl Monitor {
    pub(super) fn new(framed: Framed<Conn, Codec>) -> Monitor {
        Monitor { framed, queued: VecDeque::new() }
    }

    /// The next event; `None` once the server closed the stream (shutdown,
    /// CLIENT KILL, or this monitor fell too far behind).
    pub async fn next(&mut self) -> Result<Option<MonitorEvent>, ClientError> {
        loop {
            if let Some(e) = self.queued.pop_front() {
                return Ok(Some(e));
            }
            let Some(frame) = self.framed.next().await else { return Ok(None) };
            let frame = match frame {
                Ok(f) => f,
                Err(e) => match ClientError::from(e) {
                    ClientError::Closed => return Ok(None),
                    ClientError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                    other => return Err(other),
                },
            };
            match Reply::from_frame(&frame).map_err(ClientError::BadReply)? {
                Reply::Monitor(events) => self.queued.extend(events),
                Reply::Error { status, message } => return Err(ClientError::Server { status, message }),
                other => return Err(ClientError::unexpected("MONITOR events", other)),
            }
        }
    }
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor").field("queued", &self.queued.len()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_list_lines_parse() {
        let text = "id=3 addr=127.0.0.1:5000 age=12 idle=1 cmd=SET qbuf=0 obuf=40 auth=yes tls=no flags=N\n";
        let list = ClientInfo::parse_list(text).unwrap();
        assert_eq!(list[0].id, 3);
        assert_eq!(list[0].addr, "127.0.0.1:5000");
        assert_eq!((list[0].age_s, list[0].idle_s, list[0].out_bytes), (12, 1, 40));
        assert!(list[0].authenticated && !list[0].tls);
        assert!(ClientInfo::parse_list("id=x addr=a").is_err());
    }
}
