//! Member-only replication (issue 11, protocol.md §12.7): a stranger that
//! sends HANDSHAKE to a leader — as an unknown id, 0, the leader's own id,
//! a member's id without the cluster secret, with a wrong or replayed
//! proof — gets no byte of the data set, does not appear among the
//! followers, and cannot turn NO_QUORUM into OK; a member holding another
//! secret is refused both ways (the follower refuses the leader too).
//! Real members with a secret replicate, elect and fail over
//! (`elections::a_killed_leader_is_replaced_and_rejoins_as_a_follower`
//! and `cluster::quorum_mode_acknowledges_only_writes_a_majority_holds`
//! run with one).

use crate::common;

use std::net::SocketAddr;

use burrow_client::Client;
use burrow_proto::{Nonce, Proof, Prover, Secret, Status};
use burrow_server::replication::member_auth::{Exchange, LinkParties};
use common::cluster::{Cluster, Options};
use common::fake_member::peer_frame;
use common::{info_field, info_u64, DEADLINE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const SECRET: &str = "integration-test cluster secret\n";

const HANDSHAKE: u8 = 0x50;
const ACK: u8 = 0x56;
const MEMBER_HELLO: u8 = 0x5D;
const MEMBER_CHALLENGE: u8 = 0x5E;
const MEMBER_PROOF: u8 = 0x5F;

fn u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// HANDSHAKE as `node_id` with an empty log, then an ACK claiming index
/// 1,000,000 durable: what a fake follower forging quorum sends.
pub(crate) fn handshake_and_ack(node_id: u64) -> Vec<u8> {
    let mut out = peer_frame(HANDSHAKE, 1, &u64s(&[node_id, 77, 0, 0, 0]));
    out.extend(peer_frame(ACK, 2, &u64s(&[node_id, 77, 1_000_000, 1_000_000, 0])));
    out
}

fn member_hello(cluster_id: u64, node_id: u64, nonce: &Nonce) -> Vec<u8> {
    let mut e = u64s(&[cluster_id, node_id]);
    e.extend_from_slice(&nonce.0);
    peer_frame(MEMBER_HELLO, 1, &e)
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let s = tokio::time::timeout(DEADLINE, TcpStream::connect(addr)).await.expect("connect in time").unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Everything the server sends until it closes the connection.
async fn drain(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    match tokio::time::timeout(DEADLINE, s.read_to_end(&mut got)).await {
        Ok(Ok(_)) => got,
        // A reset after the server closed with our bytes unread: the same.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Ok(Err(e)) => panic!("read: {e}"),
        Err(_) => panic!("the server kept the connection open for {DEADLINE:?}; it sent {got:02x?}"),
    }
}

/// Sends `bytes` on a new connection; what came back before the close.
async fn refused(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(addr).await;
    // The server may close while this is written: that is the refusal.
    let _ = s.write_all(bytes).await;
    drain(&mut s).await
}

/// Reads one whole request frame (16-byte header, then extras); returns
/// (opcode, extras).
async fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 16];
    tokio::time::timeout(DEADLINE, s.read_exact(&mut h)).await.expect("a frame in time").expect("a frame");
    assert_eq!(h[0], 0xB7, "a request frame: {h:02x?}");
    let mut extras = vec![0u8; usize::from(h[8])];
    s.read_exact(&mut extras).await.expect("extras");
    (h[2], extras)
}

/// Opens member authentication as `node_id`: the challenge's acceptor
/// nonce and proof.
async fn challenge(s: &mut TcpStream, cluster_id: u64, node_id: u64, nonce: &Nonce) -> (Nonce, Proof) {
    s.write_all(&member_hello(cluster_id, node_id, nonce)).await.unwrap();
    let (op, x) = read_frame(s).await;
    assert_eq!((op, x.len()), (MEMBER_CHALLENGE, 48));
    (Nonce(x[..16].try_into().unwrap()), Proof(x[16..].try_into().unwrap()))
}

/// The leader's INFO lines that list followers, and CLUSTER's member ids
/// (only in async mode: in quorum mode without a majority CLUSTER is
/// refused, like every read the leader cannot confirm).
async fn followers_seen(c: &Cluster, with_cluster: bool) -> (String, Vec<u64>) {
    let info = c.leader().info().await;
    let lines: Vec<&str> = info
        .lines()
        .filter(|l| l.starts_with("connected_followers:") || l.starts_with("follower"))
        .map(|l| l.split(",match_index").next().unwrap_or(l))
        .collect();
    let ids = match with_cluster {
        true => c.leader().client().await.cluster().await.unwrap().members.iter().map(|m| m.id).collect(),
        false => Vec::new(),
    };
    (lines.join("\n"), ids)
}

/// Quorum mode with both followers stopped: writes get NO_QUORUM, WAIT 1
/// counts no one.
async fn assert_no_quorum(client: &mut Client, key: &'static str) {
    let err = client.set(key, "v").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NoQuorum), "{err}");
    assert_eq!(client.wait(1, 100).await.unwrap(), 0);
}

fn opts(secret: Option<&'static str>) -> Options {
    Options { replication: "quorum", quorum_timeout_ms: 300, secret, ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_from_non_members_get_nothing_and_leave_the_follower_list_alone() {
    // Loopback only, no secret: members are still the only followers.
    // Async mode, so that CLUSTER answers with both followers down.
    let mut c = Cluster::start("member-ids", Options::default()).await;
    c.node(2).stop().await;
    c.node(3).stop().await;
    let mut client = c.leader().client().await;
    client.set("before", "v").await.unwrap();
    assert_eq!(client.wait(1, 100).await.unwrap(), 0);
    let before = followers_seen(&c, true).await;
    assert_eq!(before.1, vec![1, 2, 3]);
    assert_eq!(info_field(&c.leader().info().await, "member_auth"), "none");

    let addr = c.leader().addr;
    let ids = [0, 1, 4, 9, u64::MAX].into_iter().chain(100..195);
    let mut n = 0;
    for id in ids {
        let got = refused(addr, &handshake_and_ack(id)).await;
        assert!(got.is_empty(), "HANDSHAKE as node {id} was answered: {got:02x?}");
        n += 1;
    }
    assert_eq!(n, 100);
    assert_eq!(followers_seen(&c, true).await, before, "the follower list did not grow");
    client.set("after", "v").await.unwrap();
    assert_eq!(client.wait(1, 100).await.unwrap(), 0, "no forged ACK counts");
    let log = c.leader().stderr();
    let logged = log.matches("refusing a replication handshake").count();
    assert!((1..=100).contains(&logged), "logged once per claimed id: {logged}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("refusing a replication handshake") && l.contains("node_id=9"))
            .count(),
        1,
        "a retrying stranger is logged once"
    );
    let again = refused(addr, &handshake_and_ack(9)).await;
    assert!(again.is_empty());
    assert_eq!(c.leader().stderr().matches("refusing a replication handshake").count(), logged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_secret_strangers_and_replayed_proofs_get_nothing_and_cannot_forge_quorum() {
    let mut c = Cluster::start("member-secret", opts(Some(SECRET))).await;
    let info = c.leader().info().await;
    assert_eq!(info_field(&info, "member_auth"), "secret");
    let cluster_id = u64::from_str_radix(&info_field(&info, "cluster_id"), 16).unwrap();
    c.node(2).stop().await;
    c.node(3).stop().await;
    let mut client = c.leader().client().await;
    assert_no_quorum(&mut client, "before").await;
    let before = followers_seen(&c, false).await;
    let addr = c.leader().addr;

    // A member's id, without authenticating.
    assert!(refused(addr, &handshake_and_ack(2)).await.is_empty());
    // An id that is no member: refused before any challenge.
    let nonce = Nonce([7; 16]);
    assert!(refused(addr, &member_hello(cluster_id, 9, &nonce)).await.is_empty());
    // Another cluster's id.
    assert!(refused(addr, &member_hello(cluster_id ^ 1, 2, &nonce)).await.is_empty());

    // Wrong secret: the challenge, then the close; nothing else.
    let wrong = Secret::from_bytes(b"not the cluster secret", "test").unwrap();
    let secret = Secret::from_bytes(SECRET.as_bytes(), "test").unwrap();
    let parties = |dialer| LinkParties { cluster_id, dialer, acceptor: 1 };
    let mut s = connect(addr).await;
    let (an, leader_proof) = challenge(&mut s, cluster_id, 2, &nonce).await;
    let x = Exchange { secret: &secret, parties: parties(2), acceptor_nonce: an, dialer_nonce: nonce };
    assert!(x.verify(Prover::Responder, &leader_proof), "the leader proves it holds the secret");
    let bad = Exchange { secret: &wrong, ..x.clone() }.proof(Prover::Initiator);
    let mut out = peer_frame(MEMBER_PROOF, 2, &bad.0);
    out.extend(handshake_and_ack(2));
    let _ = s.write_all(&out).await;
    assert!(drain(&mut s).await.is_empty(), "a wrong proof gets nothing");

    // A valid proof made for node 2 on one connection, replayed as node 3
    // and as node 2 on new connections (new challenges).
    let mut a = connect(addr).await;
    let (an_a, _) = challenge(&mut a, cluster_id, 2, &nonce).await;
    let recorded =
        Exchange { secret: &secret, parties: parties(2), acceptor_nonce: an_a, dialer_nonce: nonce }
            .proof(Prover::Initiator);
    for as_node in [3, 2] {
        let mut s = connect(addr).await;
        let (an_b, _) = challenge(&mut s, cluster_id, as_node, &nonce).await;
        assert_ne!(an_b, an_a, "a fresh challenge");
        let mut out = peer_frame(MEMBER_PROOF, 2, &recorded.0);
        out.extend(handshake_and_ack(as_node));
        let _ = s.write_all(&out).await;
        assert!(drain(&mut s).await.is_empty(), "a replayed proof as node {as_node} gets nothing");
    }
    drop(a);

    // A real member holding another secret: each side refuses the other's
    // peer link (the dialer checks the acceptor's proof first), so it
    // never learns who leads, and takes nothing.
    let other = c.dir.join("other.secret");
    std::fs::write(&other, "another cluster secret, 32 bytes").unwrap();
    c.node(3).args.extend(["--cluster-secret-file".into(), other.display().to_string()]);
    c.node(3).start().await;
    let refused_peer = "peer link: member authentication failed";
    common::wait_for("node 3 and the leader to refuse each other", || async {
        c.nodes[2].stderr().contains(refused_peer) && c.leader().stderr().contains(refused_peer)
    })
    .await;
    let i3 = c.nodes[2].info().await;
    assert_eq!((info_field(&i3, "link_status"), info_u64(&i3, "applied_index")), ("down".into(), 0), "{i3}");

    assert_eq!(followers_seen(&c, false).await, before, "the follower list did not change");
    assert_no_quorum(&mut client, "after").await;

    // The control: the same exchange with the right proof is a follower.
    let mut s = connect(addr).await;
    let (an, _) = challenge(&mut s, cluster_id, 2, &nonce).await;
    let good = Exchange { secret: &secret, parties: parties(2), acceptor_nonce: an, dialer_nonce: nonce }
        .proof(Prover::Initiator);
    let mut out = peer_frame(MEMBER_PROOF, 2, &good.0);
    out.extend(peer_frame(HANDSHAKE, 1, &u64s(&[2, 77, 0, 0, 0])));
    s.write_all(&out).await.unwrap();
    let (op, _) = read_frame(&mut s).await;
    assert_eq!(op, 0x52, "FULL_RESYNC for a member that proved itself");
    drop(s);

    // Node 2, a real member with the secret, makes a majority again.
    c.node(2).start().await;
    c.nodes[1].wait_synced().await;
    client.set("majority", "again").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_handshake_replaces_a_members_link_and_a_strangers_cannot() {
    // A second HANDSHAKE of a connected id replaces its link only once it
    // authenticated: a restarted follower is served at once, a stranger
    // cannot cut a follower off.
    let c = Cluster::start("member-replace", Options { secret: Some(SECRET), ..Options::default() }).await;
    let cluster_id = u64::from_str_radix(&info_field(&c.leader().info().await, "cluster_id"), 16).unwrap();
    let resyncs = |i: &str| info_u64(i, "full_resyncs") + info_u64(i, "partial_resyncs");
    let before = resyncs(&c.nodes[1].info().await);
    let addr = c.leader().addr;
    let replaced = "follower reconnected; closing its previous link";

    assert!(refused(addr, &handshake_and_ack(2)).await.is_empty());
    let nonce = Nonce([9; 16]);
    let mut s = connect(addr).await;
    challenge(&mut s, cluster_id, 2, &nonce).await;
    let mut out = peer_frame(MEMBER_PROOF, 2, &[0x55; 32]);
    out.extend(handshake_and_ack(2));
    let _ = s.write_all(&out).await;
    assert!(drain(&mut s).await.is_empty());
    let i2 = c.nodes[1].info().await;
    assert_eq!((info_field(&i2, "link_status"), resyncs(&i2)), ("up".into(), before), "node 2 kept its link");
    assert!(!c.leader().stderr().contains(replaced));

    // As node 2, authenticated (the test holds the secret).
    let secret = Secret::from_bytes(SECRET.as_bytes(), "test").unwrap();
    let mut s = connect(addr).await;
    let (an, _) = challenge(&mut s, cluster_id, 2, &nonce).await;
    let parties = LinkParties { cluster_id, dialer: 2, acceptor: 1 };
    let good = Exchange { secret: &secret, parties, acceptor_nonce: an, dialer_nonce: nonce }
        .proof(Prover::Initiator);
    let mut out = peer_frame(MEMBER_PROOF, 2, &good.0);
    out.extend(peer_frame(HANDSHAKE, 1, &u64s(&[2, 77, 0, 0, 0])));
    s.write_all(&out).await.unwrap();
    assert_eq!(read_frame(&mut s).await.0, 0x52, "FULL_RESYNC");
    common::wait_for("the old link to be replaced", || async { c.leader().stderr().contains(replaced) })
        .await;
    drop(s);
    // The real node 2 comes back the same way, at once.
    c.nodes[1]
        .wait_info("node 2 to be back", |i| info_field(i, "link_status") == "up" && resyncs(i) > before)
        .await;
    let mut client = c.leader().client().await;
    client.set("b", "2").await.unwrap();
    assert_eq!(client.wait(2, DEADLINE.as_millis() as u64).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_refuses_a_leader_that_cannot_prove_it_is_a_member() {
    // The test plays node 1: it announces itself leader to node 3 (a peer
    // link it authenticates, holding the secret), then answers node 3's
    // dials with challenges proved under another secret.
    let mut c = Cluster::new("member-fake-leader", Options { secret: Some(SECRET), ..Options::default() });
    let listener = c.node(1).take_over().await;
    c.node(3).start().await;
    let cluster_id = u64::from_str_radix(&info_field(&c.nodes[2].info().await, "cluster_id"), 16).unwrap();
    let secret = Secret::from_bytes(SECRET.as_bytes(), "test").unwrap();
    let wrong = Secret::from_bytes(b"not the cluster secret", "test").unwrap();

    // Whatever node 3 dials at node 1 gets a challenge it cannot verify;
    // each such connection must close with nothing more sent.
    let fake = tokio::spawn(async move {
        let mut after_challenge = Vec::new();
        loop {
            let Ok((mut s, _)) = listener.accept().await else { break };
            let (op, x) = read_frame(&mut s).await;
            assert_eq!((op, x.len()), (MEMBER_HELLO, 32));
            let dialer_nonce = Nonce(x[16..].try_into().unwrap());
            let parties = LinkParties { cluster_id, dialer: 3, acceptor: 1 };
            let acceptor_nonce = Nonce([1; 16]);
            let proof =
                Exchange { secret: &wrong, parties, acceptor_nonce, dialer_nonce }.proof(Prover::Responder);
            let mut e = acceptor_nonce.0.to_vec();
            e.extend_from_slice(&proof.0);
            s.write_all(&peer_frame(MEMBER_CHALLENGE, 1, &e)).await.unwrap();
            after_challenge.push(drain(&mut s).await);
            if after_challenge.len() >= 4 {
                return after_challenge;
            }
        }
        after_challenge
    });

    let mut s = connect(c.nodes[2].addr).await;
    let nonce = Nonce([5; 16]);
    let (an, its_proof) = challenge(&mut s, cluster_id, 1, &nonce).await;
    let x = Exchange {
        secret: &secret,
        parties: LinkParties { cluster_id, dialer: 1, acceptor: 3 },
        acceptor_nonce: an,
        dialer_nonce: nonce,
    };
    assert!(x.verify(Prover::Responder, &its_proof), "node 3 proves itself");
    let mut out = peer_frame(MEMBER_PROOF, 2, &x.proof(Prover::Initiator).0);
    out.extend(common::fake_member::hello(cluster_id, 1));
    out.extend(common::fake_member::announce(1));
    s.write_all(&out).await.unwrap();

    c.nodes[2].wait_info("node 3 to take node 1 for its leader", |i| info_field(i, "leader_id") == "1").await;
    common::wait_for("node 3 to refuse its leader", || async {
        c.nodes[2].stderr().contains("the leader failed member authentication")
    })
    .await;
    let sent = tokio::time::timeout(DEADLINE, fake).await.expect("node 3 dials again").unwrap();
    assert!(sent.iter().all(Vec::is_empty), "node 3 sent nothing after an unproven challenge: {sent:02x?}");
    let i3 = c.nodes[2].info().await;
    assert_eq!((info_field(&i3, "link_status"), info_u64(&i3, "applied_index")), ("down".into(), 0), "{i3}");
    let log = c.nodes[2].stderr();
    assert_eq!(log.matches("the leader failed member authentication").count(), 1, "said once:\n{log}");
}
