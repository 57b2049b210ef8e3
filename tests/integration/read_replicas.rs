//! Read replicas (`voter = false`, issue 11): a configured member that
//! receives the stream and serves reads, but never votes, never campaigns
//! and never counts toward a majority — neither for quorum writes nor for
//! a leader's check-quorum — and follows whichever voter is elected.

use crate::common;

use burrow_client::Client;
use burrow_proto::Status;
use common::cluster::{Cluster, Options};
use common::{info_field, info_u64};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_gets_the_stream_but_is_no_part_of_a_majority() {
    // Voters 1 and 2 (majority 2), replica 3.
    let opts =
        Options { replication: "quorum", quorum_timeout_ms: 300, replicas: vec![3], ..Options::default() };
    let mut c = Cluster::start("replica-quorum", opts).await;
    let mut client = c.leader().client().await;
    client.set("k", "v").await.unwrap();
    c.converged().await;
    let info = c.leader().info().await;
    assert!(info.lines().any(|l| l.contains("id=3,") && l.contains("voter=0")), "{info}");
    assert!(info.lines().any(|l| l.contains("id=2,") && l.contains("voter=1")), "{info}");
    assert_eq!(info_field(&c.nodes[2].info().await, "voter"), "0");
    let mut replica = c.nodes[2].client().await;
    assert_eq!(replica.get("k").await.unwrap().as_deref(), Some(&b"v"[..]), "it serves reads");

    // Voter 2 down: the leader and the replica hold the write, which is
    // no majority of the voters.
    c.node(2).stop().await;
    let err = client.set("k2", "v2").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NoQuorum), "{err}");
    // The replica did get it (it streams), and WAIT counts it as a copy.
    c.nodes[2]
        .wait_info("the replica to apply it", |i| {
            info_u64(i, "applied_index") > info_u64(&info, "last_index")
        })
        .await;
    assert_eq!(client.wait(1, 100).await.unwrap(), 1);

    c.node(2).start().await;
    c.nodes[1].wait_synced().await;
    client.set("k3", "v3").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_never_campaigns_and_follows_the_new_leader() {
    let opts = Options { election_timeout_ms: "400..800", replicas: vec![4], nodes: 4, ..Options::default() };
    let mut c = Cluster::start("replica-failover", opts).await;
    c.node(1).kill_9();
    let seeds: Vec<String> = [2, 3].iter().map(|&id| c.nodes[id - 1].addr.to_string()).collect();
    let mut survivors = Client::connect_cluster(&seeds).await.unwrap();
    survivors.set("after", "kill").await.unwrap();
    let (leader, _) = c.one_leader().await;
    assert!(leader == 2 || leader == 3, "a voter leads: {leader}");
    let i4 = c.nodes[3]
        .wait_info("the replica to follow the new leader", |i| {
            info_u64(i, "leader_id") == leader && info_field(i, "link_status") == "up"
        })
        .await;
    assert_eq!(info_u64(&i4, "elections_started"), 0, "{i4}");
    assert_eq!(info_u64(&i4, "voted_for"), 0, "{i4}");
    c.converged().await;
}
