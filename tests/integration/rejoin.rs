//! Partial resync across a leader change (issue 10): after the leader is
//! killed (-9), a follower that was behind the new leader when it was
//! elected, and the old leader once restarted, catch up from the new
//! leader's backlog — records it held as a follower — not by a full
//! resync; DIGESTs converge. Both replication modes.

use crate::common;

use burrow_client::Client;
use common::cluster::{Cluster, Options};
use common::proxy::Proxy;
use common::{info_field, info_u64};

/// Short elections (failover is part of the test); heartbeats as usual.
fn opts(replication: &'static str) -> Options {
    Options { replication, election_timeout_ms: "400..800", ..Options::default() }
}

fn seeds(c: &Cluster, ids: &[u64]) -> Vec<String> {
    ids.iter().map(|&id| c.nodes[(id - 1) as usize].addr.to_string()).collect()
}

async fn write_keys(client: &mut Client, prefix: &str, n: usize) {
    for i in 0..n {
        client.set(format!("{prefix}{i}"), prefix.to_string()).await.unwrap();
        client.incr("count").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_and_a_lagging_follower_rejoin_the_new_leader_by_partial_resync() {
    for mode in ["quorum", "async"] {
        let mut c = Cluster::new(&format!("rejoin-{mode}"), opts(mode));
        // Node 3 reaches node 1 through a proxy, to hold it behind.
        let to_1 = Proxy::start(c.nodes[0].addr).await;
        c.route(3, 1, Some(to_1.addr));
        c.start_led_by_node_1().await;
        let mut client = Client::connect_cluster(&seeds(&c, &[1, 2, 3])).await.unwrap();
        write_keys(&mut client, "a", 100).await;
        c.converged().await;

        // Node 3 stops hearing node 1; node 2 gets everything, node 1's WAL
        // holds it all (so node 1 restarts with a prefix of node 2's log).
        to_1.stall(true);
        write_keys(&mut client, "b", 100).await;
        let last = info_u64(&c.nodes[0].info().await, "last_index");
        c.nodes[1].wait_info("node 2 to apply everything", |i| info_u64(i, "applied_index") >= last).await;
        c.nodes[0].wait_info("node 1's WAL", |i| info_u64(i, "durable_index") >= last).await;
        let behind = info_u64(&c.nodes[2].info().await, "applied_index");
        assert!(behind < last, "{mode}: node 3 was held behind ({behind} < {last})");

        c.node(1).kill_9();
        // Node 3's log is shorter: node 2 is the only one that can win.
        c.elected(2).await;
        let n3 = c.nodes[2]
            .wait_info("node 3 to follow node 2", |i| {
                info_u64(i, "leader_id") == 2 && info_field(i, "link_status") == "up"
            })
            .await;
        assert_eq!(info_u64(&n3, "full_resyncs"), 0, "{mode}: node 3 resumed from node 2's backlog\n{n3}");
        assert!(info_u64(&n3, "partial_resyncs") >= 1, "{mode}\n{n3}");
        let mut survivors = Client::connect_cluster(&seeds(&c, &[2, 3])).await.unwrap();
        write_keys(&mut survivors, "c", 100).await;

        c.node(1).start().await;
        let n1 = c.nodes[0]
            .wait_info("node 1 to follow node 2", |i| {
                info_field(i, "role") == "follower"
                    && info_u64(i, "leader_id") == 2
                    && info_field(i, "link_status") == "up"
            })
            .await;
        survivors.set("rejoined", "yes").await.unwrap();
        c.converged().await;
        let n2 = c.nodes[1].info().await;
        assert_eq!(info_field(&n2, "role"), "leader", "{mode}: the old leader did not take over\n{n2}");
        assert_eq!(info_u64(&n1, "full_resyncs"), 0, "{mode}: node 1 resumed from node 2's backlog\n{n1}");
        assert_eq!(info_u64(&n2, "full_resyncs"), 0, "{mode}: no follower needed a full resync\n{n2}");
        assert!(info_u64(&n2, "partial_resyncs") >= 2, "{mode}\n{n2}");
        let mut old = c.nodes[0].client().await;
        assert_eq!(old.get("c99").await.unwrap().as_deref(), Some(&b"c"[..]));
        assert_eq!(old.get("count").await.unwrap().as_deref(), Some(&b"300"[..]));
    }
}
