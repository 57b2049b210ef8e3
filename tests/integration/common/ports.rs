//! Ports for servers that must be told theirs before they start: cluster
//! nodes, whose cluster files name every node's address. A server that can
//! pick its own (`--port 0`, `Config { port: 0 }`) should, as that is free
//! of races.
//!
//! A port picked by binding port 0 and closing the socket is in the range
//! the OS hands out for `bind(0)` and for the local side of every outgoing
//! connection: with hundreds of connections opening around it, one may take
//! it before the server binds, which then fails with "Address already in
//! use". So ports come from just below that range (Linux's
//! `ip_local_port_range`), where only another process picking ports this
//! way can collide, and a [`Reservation`] keeps the probe bound until the
//! server is about to bind, so that window is short. That other process is
//! another test run (a second worktree's suite, a loop beside CI): each
//! port handed out is also claimed with a lock on a file named for it,
//! held until this process exits (the OS drops it even after a kill), so
//! concurrent runs never hand out the same port — a node that must move
//! after the others read the cluster files would be unreachable to them.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::sync::Mutex;

/// How many ports below the OS's ephemeral range are used.
const SPAN: u16 = 12_000;

/// A port bound (not listening for anyone) until it is released to the
/// server that will use it.
#[derive(Debug)]
pub struct Reservation {
    probe: Option<TcpListener>,
    port: u16,
}

impl Reservation {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Frees the port for the server about to bind it.
    pub fn release(&mut self) -> u16 {
        self.probe = None;
        self.port
    }
}

/// A port on 127.0.0.1 that nothing holds and that this process has not
/// handed out before, held until [`Reservation::release`].
pub fn reserve_port() -> Reservation {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let top = ephemeral_low();
    let bottom = top.saturating_sub(SPAN).max(1024);
    let span = u64::from(top - bottom);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    let start = burrow_server::replication::SeededRng::new(seed).next_u64() % span;
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for i in 0..span {
        let port = bottom + ((start + i) % span) as u16;
        if given.contains(&port) || !claim_across_processes(port) {
            continue;
        }
        if let Ok(probe) = TcpListener::bind(("127.0.0.1", port)) {
            given.insert(port);
            return Reservation { probe: Some(probe), port };
        }
    }
    panic!("no free port in {bottom}..{top}");
}

/// Claims `port` for this process's lifetime against other test
/// processes: false if one holds it. A lock that cannot be taken for
/// another reason (no temp dir) claims nothing and does not stop the run.
fn claim_across_processes(port: u16) -> bool {
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("burrow-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    let Ok(file) =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(port.to_string()))
    else {
        return true;
    };
    match file.try_lock() {
        Ok(()) => {
            HELD.lock().unwrap_or_else(|e| e.into_inner()).push(file);
            true
        }
        Err(std::fs::TryLockError::WouldBlock) => false,
        Err(std::fs::TryLockError::Error(_)) => true,
    }
}

/// An address where connections are refused for as long as the returned
/// socket lives: it holds the port (bound, never listening), so no other
/// server can appear there during the test.
pub fn refusing_addr() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("create a socket");
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind a port");
    let addr = socket.local_addr().expect("bound address");
    (socket, addr)
}

/// The first port of the OS's ephemeral range (32768 when unknown).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
}
