//! CLUSTER (protocol.md §8.11) on real 3-node clusters: every node names
//! the same leader and term, the leader sees its followers' links and lag,
//! the survivors name the new leader after a kill, a node that knows no
//! leader still answers, and `Client::connect_cluster` given a follower
//! ends up on the leader at once.

use crate::common;

use std::time::{Duration, Instant};

use burrow_client::{Client, ClusterView, LinkStatus, MemberRole};
use common::cluster::{Cluster, Options};
use common::DEADLINE;

/// Short elections, as in `elections.rs`: a killed leader is replaced
/// within a second or so, with room for a loaded machine.
fn opts() -> Options {
    Options { election_timeout_ms: "400..800", ..Options::default() }
}

/// Every running node's CLUSTER answer, by node id.
async fn views(c: &Cluster) -> Vec<(u64, ClusterView)> {
    let mut out = Vec::new();
    for n in c.nodes.iter().filter(|n| n.running()) {
        out.push((n.id, n.client().await.cluster().await.expect("CLUSTER")));
    }
    out
}

/// Polls every running node's CLUSTER until `cond` holds for all of their
/// answers together; returns them. Panics after [`DEADLINE`] with the last.
async fn wait_views(
    c: &Cluster,
    what: &str,
    cond: impl Fn(&[(u64, ClusterView)]) -> bool,
) -> Vec<(u64, ClusterView)> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let v = views(c).await;
        if cond(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting for {what}: {v:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One leader every answering node names, in one term: (leader, term).
fn agreed(v: &[(u64, ClusterView)]) -> Option<(u64, u64)> {
    let (_, first) = v.first()?;
    let (leader, term) = (first.leader_id, first.term);
    let all_agree = v.iter().all(|(id, view)| {
        let role = if *id == leader { MemberRole::Leader } else { MemberRole::Follower };
        view.leader_id == leader && view.term == term && view.role == role && view.node_id == *id
    });
    (leader != 0 && all_agree).then_some((leader, term))
}

fn view_of(v: &[(u64, ClusterView)], id: u64) -> &ClusterView {
    &v.iter().find(|(n, _)| *n == id).expect("node answered").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_names_the_leader_which_sees_its_followers_and_the_survivors_name_the_next() {
    let mut c = Cluster::start("cview", opts()).await;
    let v = wait_views(&c, "one leader named by all", |v| agreed(v).is_some()).await;
    let (leader, term) = agreed(&v).unwrap();

    let mut client = Client::connect_cluster(&[c.nodes[0].addr.to_string()]).await.unwrap();
    for i in 0..100 {
        client.set(format!("k{i}"), "v").await.unwrap();
    }
    // The leader sees both followers streaming, holding every record and
    // with nothing left to apply.
    let v = wait_views(&c, "both followers caught up", |v| {
        let Some(l) = v.iter().find(|(id, _)| *id == leader).map(|(_, v)| v) else { return false };
        let mine = l.members.iter().find(|m| m.id == leader).and_then(|m| m.match_index).unwrap_or(0);
        mine >= 100
            && l.members
                .iter()
                .filter(|m| m.id != leader)
                .all(|m| m.link == Some(LinkStatus::Up) && m.lag == Some(0) && m.match_index == Some(mine))
    })
    .await;
    let l = view_of(&v, leader);
    assert_eq!(l.members.len(), 3, "{l:#?}");
    for (m, node) in l.members.iter().zip(&c.nodes) {
        assert_eq!((m.id, m.addr.as_str()), (node.id, node.addr.to_string().as_str()));
        let want = if m.id == leader { MemberRole::Leader } else { MemberRole::Follower };
        assert_eq!(m.role, want, "{l:#?}");
        if m.id != leader {
            let ms = m.last_contact_ms.expect("a follower that acknowledged");
            assert!(ms < DEADLINE.as_millis() as u64, "{l:#?}");
        }
    }
    assert!(l.commit_index >= 100, "{l:#?}");
    // A follower knows itself and its leader, and nothing of the other.
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let f = view_of(&v, follower);
    for m in &f.members {
        match m.id {
            id if id == leader => {
                assert_eq!(m.role, MemberRole::Leader);
                assert_eq!(m.link, Some(LinkStatus::Up), "{f:#?}");
                assert!(m.last_contact_ms.is_some(), "{f:#?}");
            }
            id if id == follower => {
                assert_eq!((m.role, m.link), (MemberRole::Follower, None), "{f:#?}");
                assert!(m.match_index.is_some_and(|i| i >= 100), "{f:#?}");
            }
            _ => assert_eq!((m.role, m.link, m.match_index, m.lag), (MemberRole::Unknown, None, None, None)),
        }
    }

    c.node(leader).kill_9();
    let v = wait_views(&c, "the survivors to name a new leader", |v| {
        agreed(v).is_some_and(|(l, t)| l != leader && t > term)
    })
    .await;
    let (next, _) = agreed(&v).unwrap();
    let gone = view_of(&v, next).members.iter().find(|m| m.id == leader).expect("the old leader is a member");
    assert_ne!(gone.link, Some(LinkStatus::Up), "the killed node's link: {gone:?}");
    assert_eq!(c.nodes.iter().filter(|n| n.running()).count(), 2);
}

/// CLUSTER is how a client finds a leader, so a node that knows none
/// answers it (never NO_LEADER), and a cluster client that reached it
/// stays there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_a_leader_answers_cluster() {
    let mut c = Cluster::new("cview-alone", Options { initial_leader: false, ..opts() });
    c.node(2).start().await;
    let mut client = c.nodes[1].client().await;
    let view = client.cluster().await.expect("CLUSTER without a leader");
    assert_eq!((view.node_id, view.leader_id), (2, 0), "{view:#?}");
    assert!(matches!(view.role, MemberRole::Follower | MemberRole::Candidate), "{view:#?}");
    assert_eq!(view.members.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(view.leader().is_none());
    let seed = c.nodes[1].addr.to_string();
    let cluster_client = Client::connect_cluster(&[seed]).await.unwrap();
    assert_eq!(cluster_client.addr(), c.nodes[1].addr);
}

/// Given only a follower's address, `connect_cluster` asks it who leads and
/// moves there before the first request: a read right after another
/// client's acknowledged write sees it (a follower might not have it yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_cluster_given_a_follower_reads_from_the_leader_at_once() {
    let c = Cluster::start("cview-connect", opts()).await;
    let v = wait_views(&c, "one leader named by all", |v| agreed(v).is_some()).await;
    let (leader, _) = agreed(&v).unwrap();
    let follower = (1..=3).find(|&id| id != leader).unwrap();
    let leader_addr = c.nodes[(leader - 1) as usize].addr;
    let mut writer = Client::connect(leader_addr).await.unwrap();
    for i in 0..20 {
        let seed = c.nodes[(follower - 1) as usize].addr.to_string();
        let mut reader = Client::connect_cluster(&[seed]).await.unwrap();
        assert_eq!(reader.addr(), leader_addr, "connected to the leader before any request");
        let value = format!("v{i}");
        writer.set("fresh", value.clone()).await.unwrap();
        assert_eq!(reader.get("fresh").await.unwrap().as_deref(), Some(value.as_bytes()), "round {i}");
        assert!(reader.last_redirects().is_empty(), "no redirect was needed");
    }
}
