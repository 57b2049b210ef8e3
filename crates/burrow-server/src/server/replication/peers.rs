//! Outbound peer links: one TCP connection from this member to each other
//! member, carrying election messages (protocol.md §12.6). Dialed at
//! start and again promptly whenever it breaks (50 ms doubling to 250 ms
//! after failed attempts, immediately after a link that held). A message
//! that cannot be sent — no link, or a full queue — is dropped: Raft
//! tolerates loss, and a stale vote request is worse than none.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::member_link;
use crate::replication::member_auth::LinkParties;
use crate::replication::vote_wire::{self, PeerMessage};
use crate::replication::NodeId;
use crate::server::cluster::{ClusterConfig, NodeInfo};
use crate::server::tls::MemberDialer;
use burrow_proto::{Codec, ErrorChain, Limits, Secret, HEADER_LEN};

/// Messages queued per peer beyond which new ones are dropped.
const QUEUE: usize = 64;
const RECONNECT_BASE: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_millis(250);

/// Codec limits of a peer link: bare frames with small extras.
pub(super) fn peer_limits() -> Limits {
    Limits { max_key: 0, max_value: 0, max_frame: HEADER_LEN + u8::MAX as usize }
}

/// The sending ends of this member's peer links.
#[derive(Debug)]
pub(super) struct PeerLinks {
    tx: HashMap<NodeId, mpsc::Sender<PeerMessage>>,
}

impl PeerLinks {
    /// Starts one link task per other member. `connect_timeout` bounds a
    /// dial (a peer's kernel may accept nothing, e.g. through a cut link).
    pub(super) fn start(
        cluster: &ClusterConfig,
        cluster_id: u64,
        connect_timeout: Duration,
        dialer: &MemberDialer,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) -> PeerLinks {
        let me = cluster.node_id();
        let mut tx = HashMap::new();
        for n in cluster.nodes().iter().filter(|n| n.id != me) {
            let (t, rx) = mpsc::channel(QUEUE);
            tx.insert(n.id, t);
            let hello = PeerMessage::Hello { cluster_id, node_id: me };
            let auth =
                cluster.secret.clone().map(|s| (s, LinkParties { cluster_id, dialer: me, acceptor: n.id }));
            tracker.spawn(link(n.clone(), hello, auth, dialer.clone(), rx, connect_timeout, cancel.clone()));
        }
        PeerLinks { tx }
    }

    /// Queues `msg` for `to`, or drops it (see the module docs).
    pub(super) fn send(&self, to: NodeId, msg: PeerMessage) {
        if let Some(tx) = self.tx.get(&to) {
            let _ = tx.try_send(msg);
        }
    }

    /// Every other member.
    pub(super) fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.tx.keys().copied()
    }
}

/// One peer link's task: dial, say hello, write what is queued; redial
/// when the connection breaks.
async fn link(
    member: NodeInfo,
    hello: PeerMessage,
    auth: Option<(Secret, LinkParties)>,
    dialer: MemberDialer,
    mut rx: mpsc::Receiver<PeerMessage>,
    connect_timeout: Duration,
    cancel: CancellationToken,
) {
    let (id, addr) = (member.id, member.addr);
    let mut backoff = Duration::ZERO;
    // The member-auth failure logged last: said once until a link holds.
    let mut auth_warned: Option<String> = None;
    loop {
        if !backoff.is_zero() {
            // Messages queued while there was no link are stale by now.
            while rx.try_recv().is_ok() {}
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
        let dialed = tokio::select! {
            _ = cancel.cancelled() => return,
            r = dialer.dial(addr, connect_timeout) => r,
        };
        let stream = match dialed {
            Ok(s) => s,
            Err(e) => {
                debug!(peer = id, %addr, error = %e, "peer link: cannot connect");
                backoff = (backoff * 2).clamp(RECONNECT_BASE, RECONNECT_MAX);
                continue;
            }
        };
        let stream = match &auth {
            None => stream,
            Some((secret, parties)) => {
                let proved = tokio::select! {
                    _ = cancel.cancelled() => return,
                    r = member_link::dial(stream, secret, *parties, connect_timeout) => r,
                };
                match proved {
                    Ok(s) => s,
                    Err(e) => {
                        let why = ErrorChain(&e).to_string();
                        if auth_warned.as_deref() != Some(why.as_str()) {
                            warn!(peer = id, %addr, error = %why, "peer link: member authentication failed; retrying");
                            auth_warned = Some(why);
                        }
                        backoff = (backoff * 2).clamp(RECONNECT_BASE, RECONNECT_MAX);
                        continue;
                    }
                }
            }
        };
        let mut framed = Framed::new(stream, Codec::server(peer_limits()));
        let mut seq = 0u32;
        let mut next = Some(hello);
        let held = loop {
            if let Some(msg) = next.take() {
                seq = seq.wrapping_add(1);
                if let Err(e) = framed.send(vote_wire::encode(&msg, seq)).await {
                    debug!(peer = id, error = %e, "peer link: write failed");
                    break seq > 1;
                }
                continue;
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => next = Some(m),
                    None => return,
                },
                // Nothing is ever sent back on this link: anything read
                // (an old server's UNKNOWN_OPCODE, EOF, an error) ends it.
                r = framed.next() => {
                    debug!(peer = id, read = ?r.map(|r| r.map(|f| f.opcode)), "peer link closed by the peer");
                    break seq > 1;
                }
            }
        };
        if held {
            auth_warned = None;
        }
        backoff = if held { Duration::ZERO } else { (backoff * 2).clamp(RECONNECT_BASE, RECONNECT_MAX) };
    }
}
