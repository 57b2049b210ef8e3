//! A cluster member played by the test, speaking the peer-link protocol
//! (protocol.md §12.6) in bytes written by hand: it listens on the
//! member's address, so the real nodes' peer links to that member land
//! here (what they send it is read back as [`PeerEvent`]s), and it dials
//! real nodes as that member or as anyone else ([`PeerConn`]).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::DEADLINE;

pub const PEER_HELLO: u8 = 0x58;
pub const REQUEST_VOTE: u8 = 0x59;
pub const VOTE_RESPONSE: u8 = 0x5A;
pub const TERM_NOTICE: u8 = 0x5B;
pub const LEADER_ANNOUNCE: u8 = 0x5C;

/// A peer-link request frame: the 16-byte header of protocol.md §2.1
/// (magic 0xB7, version 1, flags 0, byte 9 zero, no key, no value), then
/// the extras.
pub fn peer_frame(opcode: u8, id: u32, extras: &[u8]) -> Vec<u8> {
    let mut f = vec![0xB7, 0x01, opcode, 0x00];
    f.extend_from_slice(&id.to_be_bytes());
    f.push(u8::try_from(extras.len()).expect("extras fit a byte"));
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0]);
    f.extend_from_slice(extras);
    f
}

fn u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

pub fn hello(cluster_id: u64, node_id: u64) -> Vec<u8> {
    peer_frame(PEER_HELLO, 1, &u64s(&[cluster_id, node_id]))
}

pub fn request_vote(term: u64, candidate: u64, last_log: (u64, u64), pre_vote: bool) -> Vec<u8> {
    let mut e = u64s(&[term, candidate, last_log.0, last_log.1]);
    e.push(u8::from(pre_vote));
    peer_frame(REQUEST_VOTE, 2, &e)
}

pub fn announce(term: u64) -> Vec<u8> {
    peer_frame(LEADER_ANNOUNCE, 3, &u64s(&[term]))
}

pub fn term_notice(term: u64) -> Vec<u8> {
    peer_frame(TERM_NOTICE, 4, &u64s(&[term]))
}

/// A frame a real node sent on its peer link to the faked member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerMsg {
    /// The node id its PEER_HELLO gave.
    pub from: u64,
    pub opcode: u8,
    pub extras: Vec<u8>,
}

impl PeerMsg {
    /// A VOTE_RESPONSE's (term, granted, pre-vote).
    pub fn vote(&self) -> Option<(u64, bool, bool)> {
        (self.opcode == VOTE_RESPONSE && self.extras.len() == 10).then(|| {
            let term = u64::from_be_bytes(self.extras[..8].try_into().unwrap());
            (term, self.extras[8] == 1, self.extras[9] == 1)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    Msg(PeerMsg),
    /// The peer link from this node closed.
    Closed {
        from: u64,
    },
}

/// The faked member's listening end.
pub struct FakeMember {
    pub addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<PeerEvent>,
    accept: tokio::task::JoinHandle<()>,
}

impl FakeMember {
    /// Listens on `addr` (port 0: one the OS picks).
    pub async fn listen(addr: SocketAddr) -> FakeMember {
        FakeMember::on(TcpListener::bind(addr).await.unwrap_or_else(|e| panic!("bind {addr}: {e}")))
    }

    /// Serves peer links accepted by `listener`.
    pub fn on(listener: TcpListener) -> FakeMember {
        let addr = listener.local_addr().expect("bound address");
        let (tx, rx) = mpsc::unbounded_channel();
        let accept = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(read_link(conn, tx.clone()));
            }
        });
        FakeMember { addr, rx, accept }
    }

    /// The next event for which `pick` holds (others are dropped), within
    /// [`DEADLINE`].
    pub async fn next_where(&mut self, what: &str, pick: impl Fn(&PeerEvent) -> bool) -> PeerEvent {
        let found = tokio::time::timeout(DEADLINE, async {
            while let Some(ev) = self.rx.recv().await {
                if pick(&ev) {
                    return Some(ev);
                }
            }
            None
        });
        match found.await {
            Ok(Some(ev)) => ev,
            Ok(None) => panic!("fake member {}: stopped before {what}", self.addr),
            Err(_) => panic!("fake member {}: no {what} within {DEADLINE:?}", self.addr),
        }
    }

    /// The next VOTE_RESPONSE from node `from`: (term, granted, pre-vote).
    pub async fn vote_from(&mut self, from: u64) -> (u64, bool, bool) {
        let ev = self
            .next_where(
                &format!("VOTE_RESPONSE from node {from}"),
                |e| matches!(e, PeerEvent::Msg(m) if m.from == from && m.opcode == VOTE_RESPONSE),
            )
            .await;
        match ev {
            PeerEvent::Msg(m) => m.vote().expect("a well-formed VOTE_RESPONSE"),
            PeerEvent::Closed { .. } => unreachable!(),
        }
    }

    /// Every message node `from` sent until its peer link closed.
    pub async fn until_closed(&mut self, from: u64) -> Vec<PeerMsg> {
        let mut got = Vec::new();
        loop {
            match self.next_where(&format!("node {from}'s link to close"), |_| true).await {
                PeerEvent::Closed { from: f } if f == from => return got,
                PeerEvent::Msg(m) if m.from == from => got.push(m),
                _ => {}
            }
        }
    }
}

impl Drop for FakeMember {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads one inbound peer link: PEER_HELLO, then messages until EOF.
async fn read_link(mut conn: TcpStream, tx: mpsc::UnboundedSender<PeerEvent>) {
    let mut from = 0;
    while let Some((opcode, extras)) = read_frame(&mut conn).await {
        if opcode == PEER_HELLO && from == 0 && extras.len() == 16 {
            from = u64::from_be_bytes(extras[8..16].try_into().unwrap());
            continue;
        }
        if tx.send(PeerEvent::Msg(PeerMsg { from, opcode, extras })).is_err() {
            return;
        }
    }
    let _ = tx.send(PeerEvent::Closed { from });
}

/// One request frame's (opcode, extras); `None` at EOF or on an error.
async fn read_frame(conn: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 16];
    conn.read_exact(&mut header).await.ok()?;
    assert_eq!(header[0], 0xB7, "peer links carry request frames: {header:02x?}");
    let extras = header[8] as usize;
    let key = u16::from_be_bytes([header[10], header[11]]) as usize;
    let value = u32::from_be_bytes(header[12..16].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; extras + key + value];
    conn.read_exact(&mut rest).await.ok()?;
    rest.truncate(extras);
    Some((header[2], rest))
}

/// A peer link the test opened to a real node.
pub struct PeerConn {
    pub stream: TcpStream,
}

impl PeerConn {
    /// Connects to `addr` and says PEER_HELLO as `node_id` of `cluster_id`.
    pub async fn open(addr: SocketAddr, cluster_id: u64, node_id: u64) -> PeerConn {
        let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connect within the deadline")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut c = PeerConn { stream };
        c.send(&hello(cluster_id, node_id)).await;
        c
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        tokio::time::timeout(DEADLINE, self.stream.write_all(bytes))
            .await
            .expect("write within the deadline")
            .expect("write");
    }

    /// Waits until the node closes the link, asserting it says nothing:
    /// peer links are never answered on the same connection.
    pub async fn expect_closed(&mut self) {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(DEADLINE, self.stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!("the node answered on a peer link: {:02x?}", &buf[..n]),
            Err(_) => panic!("the node did not close the peer link within {DEADLINE:?}"),
        }
    }
}
