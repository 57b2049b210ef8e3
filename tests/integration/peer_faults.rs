//! Bad input on peer links (issue 10, "Bad input and faults"), against
//! real `burrow-server` processes: the test plays node 3 of a 3-node
//! cluster ([`FakeMember`]) and speaks protocol.md §12.6 by hand — another
//! cluster's PEER_HELLO, an id that is not a member, malformed frames, a
//! vote request from a stale term, terms far in the future. Each is
//! refused or handled as §12.6 says, logged once however often it is
//! repeated, and leaves the nodes' term, role and leader alone; the
//! cluster keeps acknowledging writes throughout.

use crate::common;

use burrow_proto::{Request, Status};
use common::cluster::{Cluster, Options};
use common::fake_member::{self as peer, FakeMember, PeerConn};
use common::{assert_status, info_field, request_bytes, wait_for, RawConn};

/// The highest term a node accepts (the election core's `MAX_TERM`).
const MAX_TERM: u64 = u64::MAX / 2;

/// Nodes 1 and 2 running, node 1 elected and node 2 following it, and
/// node 3 played by the test; with the cluster id (INFO `cluster_id`).
async fn two_nodes_and_a_fake(tag: &str) -> (Cluster, FakeMember, u64) {
    let mut c = Cluster::new(tag, Options::default());
    let fake = FakeMember::on(c.node(3).take_over().await);
    c.node(1).start().await;
    c.node(2).start().await;
    c.elected(1).await;
    c.nodes[1].wait_synced().await;
    let info = c.nodes[1].info().await;
    let cluster_id = u64::from_str_radix(&info_field(&info, "cluster_id"), 16).expect("hex cluster id");
    (c, fake, cluster_id)
}

/// (term, election role, leader id) as node `id` reports them.
async fn standing(c: &Cluster, id: u64) -> (String, String, String) {
    let i = c.nodes[(id - 1) as usize].info().await;
    (info_field(&i, "term"), info_field(&i, "election_role"), info_field(&i, "leader_id"))
}

/// How many lines of node `id`'s log contain `what`.
fn lines(c: &Cluster, id: u64, what: &str) -> usize {
    c.nodes[(id - 1) as usize].stderr().lines().filter(|l| l.contains(what)).count()
}

/// Waits until node `id` has logged `what`.
async fn logged(c: &Cluster, id: u64, what: &str) {
    let log = || c.nodes[(id - 1) as usize].stderr();
    wait_for(&format!("node {id} to log {what:?}"), || async { log().contains(what) }).await;
}

/// The leader still acknowledges writes, and every running node converges.
async fn still_serving(c: &Cluster, key: &str) {
    c.nodes[0].client().await.set(key.to_owned(), "v").await.expect("the leader acknowledges a write");
    c.converged().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_from_another_cluster_or_a_non_member_and_malformed_frames_are_closed_and_logged_once() {
    let (c, _fake, cluster_id) = two_nodes_and_a_fake("peer-links").await;
    let before = standing(&c, 2).await;
    let node2 = c.nodes[1].addr;

    // Another cluster's PEER_HELLO, then one claiming an id the cluster
    // does not have, then this node's own id: closed at once, unanswered.
    for (cluster, id) in [(cluster_id ^ 0xdead, 3), (cluster_id, 9), (cluster_id, 2)] {
        for _ in 0..3 {
            PeerConn::open(node2, cluster, id).await.expect_closed().await;
        }
    }
    const OTHER: &str = "refusing a peer link: it belongs to another cluster";
    const NOT_MEMBER: &str = "refusing a peer link: its node id is not another member";
    logged(&c, 2, OTHER).await;
    logged(&c, 2, NOT_MEMBER).await;

    // After a good PEER_HELLO, each malformed frame closes the link:
    // extras too short, a boolean byte of 2, an opcode that is no peer
    // message, a second PEER_HELLO, a frame with a bad magic.
    let mut bad_flag = peer::request_vote(1, 3, (0, 0), false);
    *bad_flag.last_mut().unwrap() = 2;
    let mut bad_magic = peer::announce(1);
    bad_magic[0] = 0xB8;
    let malformed = [
        peer::peer_frame(peer::REQUEST_VOTE, 5, &[0; 32]),
        bad_flag,
        peer::peer_frame(0x5F, 6, &[0; 8]),
        peer::hello(cluster_id, 3),
        bad_magic,
    ];
    for bytes in &malformed {
        let mut link = PeerConn::open(node2, cluster_id, 3).await;
        link.send(bytes).await;
        link.expect_closed().await;
    }
    const MALFORMED: &str = "closing a peer link: malformed peer-link message";
    logged(&c, 2, MALFORMED).await;

    // A malformed PEER_HELLO is not a link yet: the connection answers
    // BAD_REQUEST (protocol.md example `peer-hello-malformed`) and stays
    // a client connection.
    let mut conn = RawConn::connect(node2).await;
    conn.send(&peer::peer_frame(peer::PEER_HELLO, 7, &[0; 15])).await;
    let msg = assert_status(&conn.frame().await, Status::BadRequest, 7);
    assert!(msg.contains("PEER_HELLO: extras must be 16 bytes, got 15"), "{msg}");
    conn.send(&request_bytes(&Request::Ping { payload: Default::default() }, 8)).await;
    assert_eq!(conn.frame().await.id, 8, "the connection still serves");

    still_serving(&c, "after-bad-links").await;
    assert_eq!(standing(&c, 2).await, before, "node 2's term, role and leader");
    assert_eq!(lines(&c, 2, OTHER), 1, "another cluster, logged once");
    assert_eq!(lines(&c, 2, NOT_MEMBER), 2, "ids 9 and 2, each logged once");
    assert_eq!(lines(&c, 2, MALFORMED), 1, "malformed frames from node 3, logged once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_impossible_terms_change_no_term_role_or_leader_and_are_logged_once() {
    let (c, mut fake, cluster_id) = two_nodes_and_a_fake("peer-terms").await;
    let (leader, follower) = (standing(&c, 1).await, standing(&c, 2).await);
    let term: u64 = follower.0.parse().unwrap();
    assert!(term >= 1, "node 1 was elected: {follower:?}");
    let mut to2 = PeerConn::open(c.nodes[1].addr, cluster_id, 3).await;
    let mut to1 = PeerConn::open(c.nodes[0].addr, cluster_id, 3).await;

    // A vote request from a stale term (§5.1): refused with the current
    // term, on node 2's own peer link to node 3.
    for _ in 0..3 {
        to2.send(&peer::request_vote(term - 1, 3, (0, 0), false)).await;
        assert_eq!(fake.vote_from(2).await, (term, false, false), "stale vote request");
    }
    const STALE: &str = "request for stale term";
    logged(&c, 2, STALE).await;

    // Terms above the highest a node accepts (2^63 - 1) in every message
    // that carries one, a vote request naming another candidate than the
    // link's node, and a far-future but valid term: refused, or (the
    // last) ignored while the leader is alive (leader stickiness, §9.6).
    for _ in 0..3 {
        for link in [&mut to2, &mut to1] {
            link.send(&peer::request_vote(u64::MAX - 1, 3, (u64::MAX - 1, 1 << 40), false)).await;
            link.send(&peer::request_vote(MAX_TERM + 1, 3, (0, 0), true)).await;
            link.send(&peer::announce(u64::MAX - 1)).await;
            link.send(&peer::term_notice(MAX_TERM + 1)).await;
            link.send(&peer::request_vote(term + 1, 9, (term, 1 << 40), false)).await;
            link.send(&peer::request_vote(1 << 40, 3, (term, 1 << 40), false)).await;
            link.send(&peer::request_vote(1 << 40, 3, (term, 1 << 40), true)).await;
        }
    }
    // Messages are handled in order: once a stale request sent after them
    // is answered, each of them has been.
    to2.send(&peer::request_vote(term - 1, 3, (0, 0), true)).await;
    assert_eq!(fake.vote_from(2).await, (term, false, true), "stale pre-vote request");
    to1.send(&peer::request_vote(term - 1, 3, (0, 0), false)).await;
    assert_eq!(fake.vote_from(1).await, (term, false, false), "stale vote request to the leader");

    still_serving(&c, "after-bad-terms").await;
    assert_eq!(standing(&c, 1).await, leader, "node 1 still leads its term");
    assert_eq!(standing(&c, 2).await, follower, "node 2 still follows node 1 in its term");
    for id in [1, 2] {
        assert_eq!(lines(&c, id, "reason=TermOutOfRange"), 1, "node {id}: impossible terms, logged once");
        assert_eq!(lines(&c, id, "reason=CandidateMismatch"), 1, "node {id}: another candidate, once");
    }
    assert_eq!(lines(&c, 2, STALE), 1, "stale requests from node 3, logged once");
    assert_eq!(lines(&c, 1, STALE), 1, "the leader too");
}
