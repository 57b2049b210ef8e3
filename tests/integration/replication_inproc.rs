//! Replication between in-process servers (fast; the multi-process tests
//! in tests/cluster.rs cover crashes, restarts and link faults).

use crate::common;

use std::time::Duration;

use burrow_client::Client;
use burrow_server::server::{ClusterConfig, Config, NodeInfo, ReplicationMode, ServerHandle};
use common::{info_field, wait_for};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn cluster(n: u64, mode: ReplicationMode) -> ClusterConfig {
    let nodes = (1..=n)
        .map(|id| NodeInfo {
            id,
            addr: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            data_dir: format!("unused-{id}").into(),
        })
        .collect();
    let mut c = ClusterConfig::new(nodes, 1, 1).expect("a valid cluster");
    c.mode = mode;
    c.heartbeat = Duration::from_millis(50);
    c.link_timeout = Duration::from_millis(500);
    c.quorum_timeout = Duration::from_millis(300);
    c
}

async fn start_node(c: &ClusterConfig, id: u64) -> ServerHandle {
    start_node_with(c, id, |_| {}).await
}

async fn start_node_with(c: &ClusterConfig, id: u64, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let c = c.as_node(id).expect("a member");
    let addr = c.me().addr;
    let mut config =
        Config { port: addr.port(), shards: 16, persistence: false, cluster: Some(c), ..Config::default() };
    tweak(&mut config);
    ServerHandle::start(config).await.expect("node starts")
}

async fn info(addr: std::net::SocketAddr) -> String {
    let mut c = Client::connect(addr).await.unwrap();
    c.info("replication").await.unwrap()
}

/// Persistence off on every node: the follower keeps the snapshot of its
/// full resync in memory. Followers join while the leader takes writes on
/// the same keys, so shard images cover different indexes and records the
/// images already hold must be skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_joining_under_load_converge_without_persistence() {
    let c = cluster(3, ReplicationMode::Async);
    let leader = start_node(&c, 1).await;
    let mut client = Client::connect(leader.addr).await.unwrap();
    for i in 0..5000 {
        client.set(format!("k{}", i % 2000), format!("v{i}")).await.unwrap();
    }
    let addr = leader.addr;
    let writer = tokio::spawn(async move {
        let mut client = Client::connect(addr).await.unwrap();
        for i in 0..3000 {
            client.incr(format!("c{}", i % 50)).await.unwrap();
            client.set(format!("k{}", i % 2000), "again").await.unwrap();
        }
    });
    let f2 = start_node(&c, 2).await;
    let f3 = start_node(&c, 3).await;
    writer.await.unwrap();
    let want = client.digest().await.unwrap();
    for f in [&f2, &f3] {
        let addr = f.addr;
        wait_for("follower digest", Duration::from_secs(20), || async move {
            let mut c = Client::connect(addr).await.unwrap();
            c.digest().await.ok() == Some(want)
        })
        .await;
        let i = info(f.addr).await;
        assert_eq!(info_field(&i, "role").as_deref(), Some("follower"), "{i}");
        assert_eq!(info_field(&i, "full_resyncs").as_deref(), Some("1"), "{i}");
    }
    let mut f = Client::connect(f2.addr).await.unwrap();
    let total: i64 = {
        let mut t = 0;
        for n in 0..50 {
            t += f
                .get(format!("c{n}"))
                .await
                .unwrap()
                .map_or(0, |v| std::str::from_utf8(&v).unwrap().parse::<i64>().unwrap());
        }
        t
    };
    assert_eq!(total, 3000, "every INCR applied exactly once");
    for h in [f3, f2, leader] {
        h.shutdown().await.unwrap();
    }
}

/// A value over the default 16 MiB limit, on nodes configured for it: the
/// link's limits follow the configured ones, so its record replicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_larger_than_the_default_value_limit_replicate() {
    let c = cluster(2, ReplicationMode::Async);
    let big = |cfg: &mut Config| cfg.max_value_bytes = 24 << 20;
    let leader = start_node_with(&c, 1, big).await;
    let follower = start_node_with(&c, 2, big).await;
    let value = bytes::Bytes::from(vec![7u8; 20 << 20]);
    let mut client = Client::connect(leader.addr).await.unwrap();
    client.set("big", value.clone()).await.unwrap();
    let addr = follower.addr;
    let want = value.clone();
    wait_for("the big value on the follower", Duration::from_secs(20), || {
        let want = want.clone();
        async move {
            let mut f = Client::connect(addr).await.unwrap();
            // LOADING while the follower installs its full resync.
            f.get("big").await.ok() == Some(Some(want))
        }
    })
    .await;
    follower.shutdown().await.unwrap();
    leader.shutdown().await.unwrap();
}
