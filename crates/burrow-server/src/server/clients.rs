//! The registry of client connections behind CLIENT LIST / KILL / ID
//! (protocol.md §8.15).
//!
//! A connection registers when it starts serving requests and leaves when
//! it ends (or becomes a replication link: links are not clients). The
//! registry is locked only then and by CLIENT itself, in one of
//! [`SHARDS`] maps: the hot path never takes a lock, it stores its figures
//! into its own record with Relaxed atomics once per batch. KILL cancels
//! the connection's own token (a child of the server's shutdown token), so
//! the connection closes at once, whatever it is waiting for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use burrow_proto::Opcode;

/// Independent maps, so accepts and closes on different threads rarely meet.
const SHARDS: usize = 8;
/// `last_opcode` before the first command.
const NO_OPCODE: u8 = 0xff;

/// Every client connection of this server.
#[derive(Debug)]
pub(crate) struct Clients {
    next_id: AtomicU64,
    shards: [Mutex<HashMap<u64, Arc<ClientRecord>>>; SHARDS],
}

impl Default for Clients {
    fn default() -> Self {
        Clients { next_id: AtomicU64::new(1), shards: Default::default() }
    }
}

/// One connection as CLIENT LIST shows it. The connection writes the
/// atomics; CLIENT reads them.
#[derive(Debug)]
pub(crate) struct ClientRecord {
    pub id: u64,
    /// `ip:port` (a string so other transports fit).
    pub addr: String,
    pub tls: bool,
    connected: Instant,
    /// Unix ms of the last batch.
    last_active_ms: AtomicU64,
    last_opcode: AtomicU8,
    /// Request bytes read and not yet executed (an incomplete frame).
    in_bytes: AtomicU64,
    /// Reply bytes waiting to be written.
    out_bytes: AtomicU64,
    authenticated: AtomicBool,
    monitor: AtomicBool,
    /// Cancelled by KILL and by shutdown.
    pub kill: CancellationToken,
}

impl ClientRecord {
    /// A record of a connection that is not registered (tests).
    pub(crate) fn detached(kill: CancellationToken) -> Arc<ClientRecord> {
        Arc::new(ClientRecord::new(0, String::new(), false, kill))
    }

    fn new(id: u64, addr: String, tls: bool, kill: CancellationToken) -> ClientRecord {
        ClientRecord {
            id,
            addr,
            tls,
            connected: Instant::now(),
            last_active_ms: AtomicU64::new(super::now_ms()),
            last_opcode: AtomicU8::new(NO_OPCODE),
            in_bytes: AtomicU64::new(0),
            out_bytes: AtomicU64::new(0),
            authenticated: AtomicBool::new(false),
            monitor: AtomicBool::new(false),
            kill,
        }
    }

    /// After a batch: Relaxed stores, no lock.
    #[inline]
    pub(crate) fn note_batch(&self, now_ms: u64, opcode: u8, in_bytes: usize, out_bytes: usize) {
        self.last_active_ms.store(now_ms, Relaxed);
        self.last_opcode.store(opcode, Relaxed);
        self.in_bytes.store(in_bytes as u64, Relaxed);
        self.out_bytes.store(out_bytes as u64, Relaxed);
    }

    /// CLIENT itself: the asking connection's own line shows it.
    pub(crate) fn note_opcode(&self, opcode: u8) {
        self.last_opcode.store(opcode, Relaxed);
    }

    /// The replies are written.
    #[inline]
    pub(crate) fn note_written(&self) {
        self.out_bytes.store(0, Relaxed);
    }

    pub(crate) fn set_authenticated(&self, yes: bool) {
        self.authenticated.store(yes, Relaxed);
    }

    pub(crate) fn set_monitor(&self, yes: bool) {
        self.monitor.store(yes, Relaxed);
    }

    /// One CLIENT LIST line (without the newline).
    pub(crate) fn line(&self, now_ms: u64) -> String {
        let op = self.last_opcode.load(Relaxed);
        let cmd = Opcode::from_u8(op).map_or("NULL", Opcode::name);
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        format!(
            "id={} addr={} age={} idle={} cmd={} qbuf={} obuf={} auth={} tls={} flags={}",
            self.id,
            escape(&self.addr),
            self.connected.elapsed().as_secs(),
            now_ms.saturating_sub(self.last_active_ms.load(Relaxed)) / 1000,
            cmd,
            self.in_bytes.load(Relaxed),
            self.out_bytes.load(Relaxed),
            yes_no(self.authenticated.load(Relaxed)),
            yes_no(self.tls),
            if self.monitor.load(Relaxed) { "O" } else { "N" },
        )
    }
}

/// A field value with no space, `=`, backslash or control byte, so lines
/// split on spaces (a Unix socket path may hold any of them): those bytes
/// become `\xHH`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_graphic() && b != b'=' && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A registration: the record leaves the registry when this drops.
#[derive(Debug)]
pub(crate) struct Registered<'a> {
    clients: &'a Clients,
    pub record: Arc<ClientRecord>,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.clients.shard(self.record.id).lock().unwrap_or_else(|e| e.into_inner()).remove(&self.record.id);
    }
}

impl Clients {
    fn shard(&self, id: u64) -> &Mutex<HashMap<u64, Arc<ClientRecord>>> {
        &self.shards[id as usize % SHARDS]
    }

    /// Registers a new connection; `shutdown` is the server's token (KILL
    /// cancels a child of it). `authenticated`: no AUTH is required.
    pub(crate) fn register(
        &self,
        addr: String,
        tls: bool,
        authenticated: bool,
        shutdown: &CancellationToken,
    ) -> Registered<'_> {
        let id = self.next_id.fetch_add(1, Relaxed);
        let record = Arc::new(ClientRecord::new(id, addr, tls, shutdown.child_token()));
        record.set_authenticated(authenticated);
        self.shard(id).lock().unwrap_or_else(|e| e.into_inner()).insert(id, record.clone());
        Registered { clients: self, record }
    }

    /// Every registered connection, by id.
    pub(crate) fn list(&self) -> Vec<Arc<ClientRecord>> {
        let mut all: Vec<Arc<ClientRecord>> = Vec::new();
        for shard in &self.shards {
            all.extend(shard.lock().unwrap_or_else(|e| e.into_inner()).values().cloned());
        }
        all.sort_by_key(|r| r.id);
        all
    }

    /// CLIENT LIST's text: one line per connection, by id.
    pub(crate) fn render(&self, now_ms: u64) -> String {
        self.list().iter().map(|r| r.line(now_ms) + "\n").collect()
    }

    /// Closes the connections `pick` selects; how many.
    pub(crate) fn kill(&self, pick: impl Fn(&ClientRecord) -> bool) -> usize {
        let mut n = 0;
        for r in self.list() {
            if pick(&r) && !r.kill.is_cancelled() {
                r.kill.cancel();
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_list_kill_and_leave() {
        let clients = Clients::default();
        let shutdown = CancellationToken::new();
        let a = clients.register("127.0.0.1:1".into(), false, true, &shutdown);
        let b = clients.register("/tmp/a b=c".into(), true, false, &shutdown);
        b.record.note_batch(super::super::now_ms(), Opcode::Set as u8, 3, 40);
        let text = clients.render(super::super::now_ms());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with(&format!("id={} addr=127.0.0.1:1 age=0 idle=0 cmd=NULL", a.record.id)));
        assert!(lines[1].contains("addr=/tmp/a\\x20b\\x3dc "), "{}", lines[1]);
        assert!(lines[1].ends_with("cmd=SET qbuf=3 obuf=40 auth=no tls=yes flags=N"), "{}", lines[1]);
        assert_eq!(clients.kill(|r| r.id == 999), 0);
        assert_eq!(clients.kill(|r| r.addr == "127.0.0.1:1"), 1);
        assert!(a.record.kill.is_cancelled() && !b.record.kill.is_cancelled());
        // A second KILL of the same connection finds it already going.
        assert_eq!(clients.kill(|r| r.id == a.record.id), 0);
        drop(a);
        assert_eq!(clients.list().len(), 1);
        shutdown.cancel();
        assert!(b.record.kill.is_cancelled(), "shutdown reaches every connection");
    }
}
