//! Member authentication on a connection (protocol.md §12.7): the
//! acceptor's side ([`accept`]), run when a connection's first frame is
//! MEMBER_HELLO, and the dialer's ([`dial`]), run by a follower dialing its
//! leader and by every peer link, before HANDSHAKE or PEER_HELLO. The
//! proofs themselves are [`crate::replication::member_auth`]'s.
//!
//! Every step is bounded by the link timeout, so a peer that stops halfway
//! holds a task no longer than a silent link would.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, FramedParts};

use super::peer_refusals::PeerRefusal;
use super::peers::peer_limits;
use super::roles::Node;
use super::Handshake;
use crate::replication::member_auth::{self, Exchange, LinkParties, MemberAuth, MemberAuthWireError};
use crate::replication::vote_wire::{self, PeerMessage, PeerWireError};
use crate::replication::wire::{self, WireError};
use crate::replication::{Message, NodeId};
use crate::server::cluster::ClusterConfig;
use burrow_proto::{Codec, CodecError, Frame, Nonce, Prover, Secret};

/// Why a member-auth exchange failed (either side).
#[derive(Debug, Error)]
pub(super) enum AuthError {
    #[error("the other side closed the connection during member authentication")]
    Closed,
    #[error("member authentication did not complete within {0:?}")]
    Timeout(Duration),
    #[error("reading the member-auth exchange")]
    Read(#[source] CodecError),
    #[error("writing the member-auth exchange")]
    Write(#[source] CodecError),
    #[error(transparent)]
    Wire(#[from] MemberAuthWireError),
    #[error("expected {expected}, got {got:?}")]
    Unexpected { expected: &'static str, got: MemberAuth },
    #[error(
        "the proof does not verify: the other side is not node {0} of this cluster, or holds another secret"
    )]
    BadProof(NodeId),
    #[error("after authenticating as node {authenticated}: {opener}")]
    Opener { authenticated: NodeId, opener: String },
    #[error("bytes sent after MEMBER_CHALLENGE, before this side spoke")]
    Trailing,
}

/// The cluster id of `cluster`, as PEER_HELLO carries it.
pub(super) fn cluster_id_of(cluster: &ClusterConfig) -> u64 {
    vote_wire::cluster_id(cluster.nodes().iter().map(|n| (n.id, n.data_dir.as_path())))
}

async fn next<S: AsyncRead + AsyncWrite + Unpin>(framed: &mut Framed<S, Codec>) -> Result<Frame, AuthError> {
    match framed.next().await {
        None | Some(Err(CodecError::Truncated { .. })) => Err(AuthError::Closed),
        Some(Err(e)) => Err(AuthError::Read(e)),
        Some(Ok(f)) => Ok(f),
    }
}

/// The dialer's side: proves this member holds `secret` to the member it
/// dialed and checks that member's proof; returns the IO, ready for
/// HANDSHAKE or PEER_HELLO. Nothing of this member's data or state is
/// sent before the other side has proved itself.
pub(super) async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    secret: &Secret,
    parties: LinkParties,
    limit: Duration,
) -> Result<S, AuthError> {
    let mut framed = Framed::new(io, Codec::server(peer_limits()));
    let dialer_nonce = Nonce::random();
    let exchange = async {
        let hello = MemberAuth::Hello {
            cluster_id: parties.cluster_id,
            node_id: parties.dialer,
            nonce: dialer_nonce,
        };
        framed.send(member_auth::encode(&hello, 1)).await.map_err(AuthError::Write)?;
        let frame = next(&mut framed).await?;
        let (acceptor_nonce, proof) = match member_auth::decode(&frame.as_ref())? {
            MemberAuth::Challenge { nonce, proof } => (nonce, proof),
            got => return Err(AuthError::Unexpected { expected: "MEMBER_CHALLENGE", got }),
        };
        let x = Exchange { secret, parties, acceptor_nonce, dialer_nonce };
        if !x.verify(Prover::Responder, &proof) {
            return Err(AuthError::BadProof(parties.acceptor));
        }
        let mine = MemberAuth::Proof { proof: x.proof(Prover::Initiator) };
        framed.send(member_auth::encode(&mine, 2)).await.map_err(AuthError::Write)
    };
    tokio::time::timeout(limit, exchange).await.map_err(|_| AuthError::Timeout(limit))??;
    let parts = framed.into_parts();
    if !parts.read_buf.is_empty() {
        return Err(AuthError::Trailing);
    }
    Ok(parts.io)
}

/// The acceptor's side, for a connection whose first frame was
/// MEMBER_HELLO (`cluster_id`, `node_id`, `nonce`): checks the claim
/// against the membership, proves this node holds the secret, checks the
/// dialer's proof, then reads the link's opener (HANDSHAKE or PEER_HELLO
/// of the same node). `None`: refused, logged once per (node id, kind),
/// and the connection is to be closed.
pub(super) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    node: &Node,
    link: FramedParts<S, Codec>,
    peer: SocketAddr,
    cluster_id: u64,
    node_id: NodeId,
    nonce: Nonce,
) -> Option<(Handshake, FramedParts<S, Codec>)> {
    let els = &node.elections;
    let refuse = |what: PeerRefusal, detail: &str| els.refusals.log_once(node_id, what, Some(peer), detail);
    let Some(secret) = node.cluster.secret.as_ref() else {
        refuse(PeerRefusal::NoSecret, "");
        return None;
    };
    if cluster_id != els.cluster_id {
        refuse(PeerRefusal::OtherCluster(cluster_id), "");
        return None;
    }
    let me = node.cluster.node_id();
    if node_id == me || node.cluster.node(node_id).is_none() {
        refuse(PeerRefusal::NotMember, "");
        return None;
    }
    let x = Exchange {
        secret,
        parties: LinkParties { cluster_id, dialer: node_id, acceptor: me },
        acceptor_nonce: Nonce::random(),
        dialer_nonce: nonce,
    };
    let mut parts = FramedParts::new::<Frame>(link.io, Codec::server(peer_limits()));
    parts.read_buf = link.read_buf;
    let mut framed = Framed::from_parts(parts);
    let limit = node.cluster.link_timeout;
    let exchange = async {
        let challenge = MemberAuth::Challenge { nonce: x.acceptor_nonce, proof: x.proof(Prover::Responder) };
        framed.send(member_auth::encode(&challenge, 1)).await.map_err(AuthError::Write)?;
        let frame = next(&mut framed).await?;
        match member_auth::decode(&frame.as_ref())? {
            MemberAuth::Proof { proof } if x.verify(Prover::Initiator, &proof) => {}
            MemberAuth::Proof { .. } => return Err(AuthError::BadProof(node_id)),
            got => return Err(AuthError::Unexpected { expected: "MEMBER_PROOF", got }),
        }
        let frame = next(&mut framed).await?;
        opener(&frame, cluster_id, node_id)
            .map_err(|opener| AuthError::Opener { authenticated: node_id, opener })
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(hello)) => Some((hello, framed.into_parts())),
        Ok(Err(e)) => {
            refuse(PeerRefusal::AuthFailed, &burrow_proto::ErrorChain(&e).to_string());
            None
        }
        Err(_) => {
            refuse(PeerRefusal::AuthFailed, &AuthError::Timeout(limit).to_string());
            None
        }
    }
}

/// The link opener after a proof: HANDSHAKE or PEER_HELLO naming the node
/// (and cluster) that authenticated; otherwise why not.
fn opener(frame: &Frame, cluster_id: u64, node_id: NodeId) -> Result<Handshake, String> {
    let f = frame.as_ref();
    match f.opcode {
        wire::OP_HANDSHAKE => match wire::decode(&f).map_err(|e: WireError| e.to_string())? {
            msg @ Message::Handshake { node_id: id, .. } if id == node_id => Ok(Handshake::Follower(msg)),
            Message::Handshake { node_id: id, .. } => Err(format!("a HANDSHAKE as node {id}")),
            other => Err(format!("{other:?}")),
        },
        vote_wire::OP_PEER_HELLO => match vote_wire::decode(&f).map_err(|e: PeerWireError| e.to_string())? {
            PeerMessage::Hello { cluster_id: c, node_id: id } if (c, id) == (cluster_id, node_id) => {
                Ok(Handshake::Peer { cluster_id: c, node_id: id })
            }
            PeerMessage::Hello { cluster_id: c, node_id: id } => {
                Err(format!("a PEER_HELLO as node {id} of cluster {c:016x}"))
            }
            other => Err(format!("{other:?}")),
        },
        op => Err(format!("opcode 0x{op:02x} where HANDSHAKE or PEER_HELLO was expected")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &[u8]) -> Secret {
        Secret::from_bytes(s, "test").unwrap()
    }

    const PARTIES: LinkParties = LinkParties { cluster_id: 7, dialer: 2, acceptor: 1 };

    /// An acceptor run by hand over a duplex pipe: answers MEMBER_HELLO
    /// with a challenge made with `its_secret` as node `its_id`.
    async fn acceptor(io: tokio::io::DuplexStream, its_secret: Secret, its_id: NodeId) -> Option<bool> {
        let mut framed = Framed::new(io, Codec::server(peer_limits()));
        let hello = next(&mut framed).await.ok()?;
        let MemberAuth::Hello { cluster_id, node_id, nonce } = member_auth::decode(&hello.as_ref()).ok()?
        else {
            return None;
        };
        let x = Exchange {
            secret: &its_secret,
            parties: LinkParties { cluster_id, dialer: node_id, acceptor: its_id },
            acceptor_nonce: Nonce::random(),
            dialer_nonce: nonce,
        };
        let challenge = MemberAuth::Challenge { nonce: x.acceptor_nonce, proof: x.proof(Prover::Responder) };
        framed.send(member_auth::encode(&challenge, 1)).await.ok()?;
        let proof = next(&mut framed).await.ok()?;
        let MemberAuth::Proof { proof } = member_auth::decode(&proof.as_ref()).ok()? else { return None };
        Some(x.verify(Prover::Initiator, &proof))
    }

    async fn dial_against(its_secret: &[u8], its_id: NodeId) -> (Result<(), AuthError>, Option<bool>) {
        let (a, b) = tokio::io::duplex(4096);
        let acc = tokio::spawn(acceptor(b, secret(its_secret), its_id));
        let mine = secret(b"0123456789abcdef");
        let dialed = dial(a, &mine, PARTIES, Duration::from_secs(30)).await.map(drop);
        (dialed, acc.await.unwrap())
    }

    #[tokio::test]
    async fn a_dialer_and_an_acceptor_with_the_same_secret_prove_it_to_each_other() {
        let (dialed, accepted) = dial_against(b"0123456789abcdef", 1).await;
        assert!(dialed.is_ok(), "{dialed:?}");
        assert_eq!(accepted, Some(true));
    }

    #[tokio::test]
    async fn a_dialer_refuses_an_acceptor_that_cannot_prove_it_is_the_member_dialed() {
        // Another secret, or the right secret but another node answering.
        for (s, id) in [(&b"0123456789abcdeX"[..], 1), (&b"0123456789abcdef"[..], 3)] {
            let (dialed, accepted) = dial_against(s, id).await;
            assert!(matches!(dialed, Err(AuthError::BadProof(1))), "{dialed:?}");
            assert_eq!(accepted, None, "the dialer sent no proof");
        }
    }

    #[tokio::test]
    async fn a_silent_or_closing_acceptor_is_given_up() {
        let (a, b) = tokio::io::duplex(4096);
        let mine = secret(b"0123456789abcdef");
        let r = dial(a, &mine, PARTIES, Duration::from_millis(50)).await;
        assert!(matches!(r, Err(AuthError::Timeout(_))), "{r:?}");
        drop(b);
        let (a, b) = tokio::io::duplex(4096);
        drop(b);
        let r = dial(a, &mine, PARTIES, Duration::from_secs(30)).await;
        assert!(matches!(r, Err(AuthError::Write(_) | AuthError::Closed)), "{r:?}");
    }

    #[test]
    fn the_opener_must_name_the_authenticated_node() {
        let hs = |id| {
            wire::encode(
                &Message::Handshake { node_id: id, session: 1, history_id: 1, last_applied: 0, last_term: 0 },
                3,
            )
        };
        assert!(matches!(opener(&hs(2), 7, 2), Ok(Handshake::Follower(_))));
        assert_eq!(opener(&hs(3), 7, 2).unwrap_err(), "a HANDSHAKE as node 3");
        let hello = |c, id| vote_wire::encode(&PeerMessage::Hello { cluster_id: c, node_id: id }, 3);
        assert!(matches!(opener(&hello(7, 2), 7, 2), Ok(Handshake::Peer { cluster_id: 7, node_id: 2 })));
        assert!(opener(&hello(8, 2), 7, 2).is_err());
        assert!(opener(&hello(7, 3), 7, 2).is_err());
        let other = member_auth::encode(&MemberAuth::Proof { proof: burrow_proto::Proof([0; 32]) }, 3);
        assert!(opener(&other, 7, 2).unwrap_err().contains("opcode 0x5f"));
    }
}
