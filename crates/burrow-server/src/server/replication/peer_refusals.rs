//! Bad input on peer and replication links, logged once: a link from
//! another cluster or from an id that is not another member, a malformed
//! frame, a vote request from a stale term, a member-auth failure
//! (protocol.md §12.7). A buggy or hostile peer retrying every few
//! milliseconds must not flood the log, so each (claimed node id, kind)
//! is logged the first time only; the set is bounded so that a peer
//! cycling through ids cannot grow it without limit.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Mutex;

use tracing::warn;

use crate::replication::NodeId;

/// Distinct refusals remembered at most; past it nothing more is logged.
const REMEMBERED: usize = 1024;

/// What was wrong with a peer's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum PeerRefusal {
    /// PEER_HELLO with this other cluster id.
    OtherCluster(u64),
    /// PEER_HELLO claiming this node's own id or one not in the cluster.
    NotMember,
    /// A frame that is not a valid peer-link message.
    Malformed,
    /// A vote request for a term below this node's (answered per Raft,
    /// with the current term and no vote).
    StaleTerm,
    /// HANDSHAKE claiming node id 0, this node's own id or one not in the
    /// cluster.
    FollowerNotMember,
    /// HANDSHAKE or PEER_HELLO without member authentication, while this
    /// node has a cluster secret.
    Unauthenticated,
    /// MEMBER_HELLO, but this node has no cluster secret.
    NoSecret,
    /// A member-auth exchange that failed: a wrong proof, a malformed or
    /// unexpected frame, a timeout, or a link opener naming another id.
    AuthFailed,
    /// A link opener over a connection without a verified client
    /// certificate, while `[cluster] tls` is on.
    NoClientCertificate,
}

/// Which refusals were logged already.
#[derive(Debug, Default)]
pub(super) struct PeerRefusals {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    logged: HashSet<(NodeId, PeerRefusal)>,
    /// [`REMEMBERED`] reached (and said once).
    full: bool,
}

impl PeerRefusals {
    /// Logs `what` for the peer claiming `node_id`, unless already logged.
    pub(super) fn log_once(
        &self,
        node_id: NodeId,
        what: PeerRefusal,
        peer: Option<SocketAddr>,
        detail: &str,
    ) {
        let first = {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.logged.len() < REMEMBERED {
                seen.logged.insert((node_id, what))
            } else {
                if !std::mem::replace(&mut seen.full, true) {
                    warn!("{REMEMBERED} distinct peer-link refusals logged: logging no more of them");
                }
                false
            }
        };
        if !first {
            return;
        }
        let peer = peer.map_or_else(|| "-".to_owned(), |p| p.to_string());
        match what {
            PeerRefusal::OtherCluster(cluster_id) => warn!(
                %peer,
                node_id,
                cluster_id = format_args!("{cluster_id:016x}"),
                "refusing a peer link: it belongs to another cluster (cluster id mismatch)"
            ),
            PeerRefusal::NotMember => {
                warn!(%peer, node_id, "refusing a peer link: its node id is not another member of this cluster")
            }
            PeerRefusal::Malformed => {
                warn!(%peer, node_id, error = detail, "closing a peer link: malformed peer-link message")
            }
            PeerRefusal::StaleTerm => {
                warn!(node_id, "{detail}: refused with the current term (logged once per peer)")
            }
            PeerRefusal::FollowerNotMember => warn!(
                %peer,
                node_id,
                "refusing a replication handshake: its node id is not another member of this cluster"
            ),
            PeerRefusal::Unauthenticated => warn!(
                %peer,
                node_id,
                "refusing a {detail} that did not authenticate: this cluster has a secret (protocol.md §12.7)"
            ),
            PeerRefusal::NoSecret => warn!(
                %peer,
                node_id,
                "refusing member authentication: this node has no cluster secret (give every member the same \
                 [cluster] secret_file)"
            ),
            PeerRefusal::AuthFailed => {
                warn!(%peer, node_id, error = detail, "closing a link: member authentication failed")
            }
            PeerRefusal::NoClientCertificate => warn!(
                %peer,
                node_id,
                "refusing a {detail} without a verified TLS client certificate: [cluster] tls is on"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_and_kind_is_remembered_once_and_the_set_stays_bounded() {
        let r = PeerRefusals::default();
        for _ in 0..3 {
            r.log_once(3, PeerRefusal::NotMember, None, "");
            r.log_once(3, PeerRefusal::OtherCluster(7), None, "");
        }
        assert_eq!(r.seen.lock().unwrap().logged.len(), 2);
        for id in 0..(REMEMBERED as u64 * 2) {
            r.log_once(id + 100, PeerRefusal::Malformed, None, "bad");
        }
        let seen = r.seen.lock().unwrap();
        assert_eq!(seen.logged.len(), REMEMBERED);
        assert!(seen.full);
    }
}
