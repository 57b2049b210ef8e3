//! Large records must not starve heartbeats (issue 11, "Also fix"): while
//! 16 MiB records crawl across a throttled replication link, heartbeats
//! queue behind them and no whole message arrives for several election
//! timeouts; the bytes moving are the leader's proof of life, so the
//! follower starts no election, neither side drops the link, and `WAIT 1`
//! returns 1 once the records are across. The counterpart: once no bytes
//! arrive at all, the follower declares the leader down within its
//! election timeout, as before.
//!
//! The leader's announcements on its peer link to node 2 (contact too) are
//! held by a stalled proxy once node 2 follows it, so the replication link
//! is node 2's only way to hear its leader. Node 3 only makes the majority that elects
//! node 1 and is then stopped: the leader's check-quorum depends on node 2
//! alone, and `WAIT 1` counts node 2 only.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::common;
use common::cluster::{Cluster, Options};
use common::proxy::Proxy;
use common::{info_field, info_u64, DEADLINE};

/// Election timeout range (ms): short next to the records' crossing
/// time, long enough that a loaded machine does not stall a debug-build
/// node past its minimum.
const ELECTION_MS: (u64, u64) = (2000, 4000);
const ELECTION_RANGE: &str = "2000..4000";
/// Bytes per second the leader's stream crosses to node 2: each 16 MiB
/// record takes about 8 s, twice the longest election timeout.
const RATE: u64 = 2 << 20;

/// Node 1 leading (elected with node 3), node 2 not started: its
/// replication link to node 1 goes through the first proxy returned, node
/// 1's peer link to it through the second (to be stalled once node 2
/// knows who leads).
async fn leader_and_proxies(tag: &str) -> (Cluster, Proxy, Proxy) {
    let opts = Options {
        nodes: 3,
        heartbeat_ms: 50,
        link_timeout_ms: 2000,
        election_timeout_ms: ELECTION_RANGE,
        ..Options::default()
    };
    let mut c = Cluster::new(tag, opts);
    let announces = Proxy::start(c.nodes[1].addr).await;
    c.route(1, 2, Some(announces.addr));
    c.node(1).start().await;
    c.node(3).start().await;
    c.elected(1).await;
    let link = Proxy::start(c.leader().addr).await;
    c.write_config(2, Some(link.addr));
    (c, link, announces)
}

/// Neither node 2's log nor the leader's says node 2's link dropped.
async fn assert_node_2_kept_its_link(c: &Cluster) {
    let (leader_log, follower_log) = (c.leader().stderr(), c.nodes[1].stderr());
    let about_node_2 = leader_log.lines().filter(|l| l.contains("follower=2")).collect::<Vec<_>>().join("\n");
    let leader_dropped = ["follower silent", "follower link closed", "fell out of the backlog"]
        .iter()
        .any(|l| about_node_2.contains(l));
    let follower_dropped = ["replication link down", "replication link lost", "full resync interrupted"]
        .iter()
        .any(|l| follower_log.contains(l));
    assert!(!leader_dropped && !follower_dropped, "the link dropped\n{}", c.report().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_receiving_16_mib_records_slowly_starts_no_election_and_a_silent_leader_is_found_out() {
    let (mut c, link, announces) = leader_and_proxies("large-record-elections").await;
    c.node(2).start().await;
    c.node(2).wait_synced().await;
    announces.stall(true);
    c.node(3).stop().await;

    let before = c.nodes[1].info().await;
    let (term, started) = (info_u64(&before, "term"), info_u64(&before, "elections_started"));
    link.throttle(Some(RATE));
    let mut client = c.leader().client().await;
    let values: Vec<Bytes> =
        (0..2u8).map(|i| Bytes::from(vec![b'a' + i; burrow_proto::Limits::DEFAULT_MAX_VALUE])).collect();
    let sent = Instant::now();
    for (i, v) in values.iter().enumerate() {
        client.set(format!("big:{i}"), v.clone()).await.unwrap();
    }
    // Generous: the records take about 16 s to cross.
    let replicas = client.wait(1, DEADLINE.as_millis() as u64).await.unwrap();
    let took = sent.elapsed();
    assert_eq!(replicas, 1, "WAIT 1 after the records crossed\n{}", c.report().await);
    assert!(took > Duration::from_millis(2 * ELECTION_MS.1), "a crossing of {took:?} tests nothing");

    let after = c.nodes[1].info().await;
    assert_eq!(
        (info_u64(&after, "term"), info_u64(&after, "elections_started")),
        (term, started),
        "node 2 started an election while its leader's records arrived ({took:?})\n{}",
        c.report().await
    );
    let leader = c.leader().info().await;
    assert_eq!(info_field(&leader, "role"), "leader", "the leader stepped down\n{}", c.report().await);
    assert_eq!(info_u64(&leader, "term"), term);
    assert_node_2_kept_its_link(&c).await;
    let mut follower = c.nodes[1].client().await;
    for (i, v) in values.iter().enumerate() {
        assert!(follower.get(format!("big:{i}")).await.unwrap().as_ref() == Some(v), "big:{i}");
    }

    // Counterpart: a third write starts across, then nothing more arrives:
    // the bytes that did arrive do not keep a silent leader alive.
    link.throttle(None);
    let last = tokio::spawn(async move { client.set("big:2", Bytes::from(vec![b'c'; 1 << 20])).await });
    link.stall(true);
    let silent = Instant::now();
    c.nodes[1].wait_info("an election", |i| info_u64(i, "elections_started") > started).await;
    let noticed = silent.elapsed();
    assert!(
        noticed < Duration::from_millis(ELECTION_MS.1 + 2000),
        "a silent leader noticed after {noticed:?} (election timeout {ELECTION_MS:?} ms)\n{}",
        c.report().await
    );
    last.abort();
}

/// A full resync several election timeouts long: snapshot chunks crawl in
/// with heartbeats queued behind them, and the follower, its data set half
/// replaced meanwhile, starts no election (it could not win one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_longer_than_the_election_timeout_starts_no_election() {
    let (mut c, link, announces) = leader_and_proxies("large-resync-elections").await;
    let mut client = c.leader().client().await;
    // ~6 MB of snapshot at 1 MiB/s: about 6 s, 1.5 times the longest timeout.
    let value = Bytes::from(vec![b'v'; 100]);
    common::set_keys(&mut client, 50_000, &value).await;
    link.throttle(Some(1 << 20));
    let started = Instant::now();
    c.node(2).start().await;
    c.nodes[1].wait_info("node 2 following node 1", |i| info_u64(i, "leader_id") == 1).await;
    announces.stall(true);
    c.node(2).wait_synced().await;
    let took = started.elapsed();

    let info = c.nodes[1].info().await;
    assert_eq!(
        (info_u64(&info, "elections_started"), info_u64(&info, "full_resyncs")),
        (0, 1),
        "node 2 campaigned or resynced again during a {took:?} transfer\n{}",
        c.report().await
    );
    assert!(took > Duration::from_millis(ELECTION_MS.1), "a transfer of {took:?} tests nothing");
    assert_node_2_kept_its_link(&c).await;
    let mut follower = c.nodes[1].client().await;
    assert_eq!(follower.dbsize().await.unwrap(), 50_000);
}
