//! Leader elections between real `burrow-server` processes (issue 10): a
//! fresh cluster elects one leader; a killed leader is replaced and
//! rejoins as a follower; a leader cut off from both followers stops
//! acknowledging quorum writes while the majority elects; a follower cut
//! off for long rejoins without deposing the leader (pre-vote). Election
//! timeouts are the realistic defaults' order of magnitude, so these run
//! with CPU burners too: every wait polls to the one DEADLINE.

use crate::common;

use std::time::{Duration, Instant};

use burrow_client::Client;
use burrow_proto::Status;
use common::cluster::{Cluster, Options};
use common::proxy::Proxy;
use common::{info_field, info_u64, wait_for, CpuBurners, DEADLINE};

/// Election settings for these tests: short enough to fail over fast,
/// with room for a loaded machine between heartbeats (50 ms).
pub(crate) fn opts(replication: &'static str, initial_leader: bool) -> Options {
    Options { replication, election_timeout_ms: "400..800", initial_leader, ..Options::default() }
}

pub(crate) fn seeds(c: &Cluster, ids: &[u64]) -> Vec<String> {
    ids.iter().map(|&id| c.nodes[(id - 1) as usize].addr.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_cluster_elects_one_leader_with_and_without_an_initial_leader() {
    for initial in [true, false] {
        let mut c = Cluster::new(&format!("elect-fresh-{initial}"), opts("async", initial));
        let (leader, term) = if initial {
            // The initial leader is elected on a fresh cluster.
            (1, c.start_led_by_node_1().await)
        } else {
            for id in 1..=3 {
                c.node(id).start().await;
            }
            c.one_leader().await
        };
        assert!(term >= 1);
        let mut client = Client::connect_cluster(&seeds(&c, &[1, 2, 3])).await.unwrap();
        client.set("k", "v").await.unwrap();
        c.converged().await;
        let i = c.nodes[(leader - 1) as usize].info().await;
        assert!(info_u64(&i, "elections_won") >= 1, "{i}");
        assert_eq!(info_field(&i, "last_election_reason"), "election_won", "{i}");
        assert!(c.nodes[(leader - 1) as usize].stderr().contains("role changed"), "one log line per change");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_rejoins_as_a_follower() {
    // With a cluster secret: every link is authenticated (protocol.md §12.7).
    let secret = Some(crate::member_auth::SECRET);
    let mut c = Cluster::start("elect-kill", Options { secret, ..opts("quorum", true) }).await;
    let (first, term) = c.one_leader().await;
    assert_eq!(first, 1);
    let mut client = Client::connect_cluster(&seeds(&c, &[1, 2, 3])).await.unwrap();
    for i in 0..200 {
        client.set(format!("k{i}"), "before").await.unwrap();
    }
    c.converged().await;

    let _burners = CpuBurners::start(2);
    c.node(1).kill_9();
    let killed = Instant::now();
    let mut survivors = Client::connect_cluster(&seeds(&c, &[2, 3])).await.unwrap();
    survivors.set("after", "kill").await.unwrap();
    let failover = killed.elapsed();
    println!("failover (leader SIGKILL -> first acknowledged quorum write): {} ms", failover.as_millis());
    let (second, new_term) = c.one_leader().await;
    assert_ne!(second, 1);
    assert!(new_term > term, "a new term: {new_term} after {term}");

    c.node(1).start().await;
    c.nodes[0]
        .wait_info("node 1 to follow the new leader", |i| {
            info_field(i, "role") == "follower"
                && info_u64(i, "leader_id") == second
                && info_field(i, "link_status") == "up"
        })
        .await;
    assert_eq!(c.one_leader().await, (second, new_term), "the old leader did not take over again");
    survivors.set("rejoined", "yes").await.unwrap();
    c.converged().await;
    let mut old = c.nodes[0].client().await;
    assert_eq!(old.get("after").await.unwrap().as_deref(), Some(&b"kill"[..]));
    assert_eq!(old.get("k199").await.unwrap().as_deref(), Some(&b"before"[..]));
}

/// Proxies for every link between node `id` and the others, both ways
/// (streaming links and peer links): cut together, they partition it.
pub(crate) async fn isolate(c: &mut Cluster, id: u64) -> Vec<Proxy> {
    let mut proxies = Vec::new();
    for other in (1..=3).filter(|&o| o != id) {
        let to_other = Proxy::start(c.nodes[(other - 1) as usize].addr).await;
        c.route(id, other, Some(to_other.addr));
        proxies.push(to_other);
        let to_id = Proxy::start(c.nodes[(id - 1) as usize].addr).await;
        c.route(other, id, Some(to_id.addr));
        proxies.push(to_id);
    }
    proxies
}

pub(crate) fn partition(proxies: &[Proxy], on: bool) {
    for p in proxies {
        p.refuse(on);
        if on {
            p.cut();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_both_followers_stops_acknowledging_and_the_majority_elects() {
    let mut c = Cluster::new("elect-cut-leader", opts("quorum", true));
    let proxies = isolate(&mut c, 1).await;
    let term = c.start_led_by_node_1().await;
    let mut on_old = c.nodes[0].client().await;
    on_old.set("a", "1").await.unwrap();
    c.converged().await;

    partition(&proxies, true);
    // The old leader acknowledges nothing from now on: NO_QUORUM (it ran,
    // uncommitted), or NOT_LEADER / NO_LEADER once check-quorum deposed it.
    match on_old.set("cut", "x").await {
        Ok(()) => panic!("a quorum write was acknowledged by a leader cut off from both followers"),
        Err(e) => assert!(
            matches!(e.status(), Some(Status::NoQuorum | Status::NotLeader | Status::NoLeader)),
            "{e}"
        ),
    }
    c.nodes[0].wait_info("the cut-off leader to step down", |i| info_field(i, "role") == "follower").await;
    assert!(c.nodes[0].stderr().contains("check_quorum_failed"), "the log says why");
    let mut majority = Client::connect_cluster(&seeds(&c, &[2, 3])).await.unwrap();
    if let Err(e) = majority.set("b", "2").await {
        panic!("the majority did not take a write: {e:?}\n{}", c.report().await);
    }
    let new_leader = wait_for_leader_among(&c, &[2, 3]).await;

    partition(&proxies, false);
    let (leader, new_term) = c.one_leader().await;
    assert_eq!(leader, new_leader, "after the heal one leader remains: the majority's");
    assert!(new_term > term);
    majority.set("c", "3").await.unwrap();
    c.converged().await;
    let mut n1 = c.nodes[0].client().await;
    assert_eq!(n1.get("b").await.unwrap().as_deref(), Some(&b"2"[..]));
}

/// The id of the node among `ids` that leads now, waited for.
pub(crate) async fn wait_for_leader_among(c: &Cluster, ids: &[u64]) -> u64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        for &id in ids {
            if info_field(&c.nodes[(id - 1) as usize].info().await, "role") == "leader" {
                return id;
            }
        }
        assert!(Instant::now() < deadline, "none of {ids:?} leads\n{}", c.report().await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_partitioned_for_long_rejoins_without_deposing_the_leader() {
    let mut c = Cluster::new("elect-prevote", opts("async", true));
    let proxies = isolate(&mut c, 3).await;
    let (leader, term) = (1, c.start_led_by_node_1().await);
    c.converged().await;

    partition(&proxies, true);
    // Many election timeouts alone: with pre-vote it never raises its term.
    let n3 = &c.nodes[2];
    n3.wait_info("node 3 to campaign several times", |i| info_u64(i, "elections_started") >= 3).await;
    assert_eq!(info_u64(&n3.info().await, "term"), term, "pre-vote: the term stays");
    let mut client = c.nodes[(leader - 1) as usize].client().await;
    client.set("during", "partition").await.unwrap();

    partition(&proxies, false);
    n3.wait_info("node 3 to follow again", |i| {
        info_field(i, "role") == "follower"
            && info_u64(i, "leader_id") == leader
            && info_field(i, "link_status") == "up"
    })
    .await;
    assert_eq!(c.one_leader().await, (leader, term), "the leader and its term are unchanged");
    c.converged().await;
    wait_for("the write on node 3", || async {
        c.nodes[2].client().await.get("during").await.ok().flatten().is_some()
    })
    .await;
}
