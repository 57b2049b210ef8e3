//! Replication between in-process servers (fast; the multi-process tests
//! in tests/cluster.rs cover crashes, restarts and link faults).

mod common;

use std::time::Duration;

use burrow::client::Client;
use burrow::server::{ClusterConfig, Config, NodeInfo, ReplicationMode, ServerHandle};
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
    ClusterConfig {
        node_id: 1,
        initial_leader: 1,
        mode,
        heartbeat: Duration::from_millis(50),
        link_timeout: Duration::from_millis(500),
        quorum_timeout: Duration::from_millis(300),
        max_stale: None,
        nodes,
    }
}

async fn start_node(c: &ClusterConfig, id: u64) -> ServerHandle {
    let mut c = c.clone();
    c.node_id = id;
    let addr = c.me().addr;
    let config =
        Config { port: addr.port(), shards: 16, persistence: false, cluster: Some(c), ..Config::default() };
    ServerHandle::start(config).await.expect("node starts")
}

async fn info(addr: std::net::SocketAddr) -> String {
    let mut c = Client::connect(addr).await.unwrap();
    c.info("replication").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_converge_and_refuse_writes() {
    let c = cluster(3, ReplicationMode::Async);
    let leader = start_node(&c, 1).await;
    let f2 = start_node(&c, 2).await;
    let f3 = start_node(&c, 3).await;
    let mut client = Client::connect(leader.addr).await.unwrap();
    for i in 0..1000 {
        client.set(format!("k{i}"), "v").await.unwrap();
    }
    client.incr("counter").await.unwrap();
    let want = client.digest().await.unwrap();
    for f in [&f2, &f3] {
        let addr = f.addr;
        wait_for("follower digest", Duration::from_secs(10), || async move {
            let mut c = Client::connect(addr).await.unwrap();
            c.digest().await.unwrap() == want
        })
        .await;
    }
    println!("{}", info(leader.addr).await);
    println!("{}", info(f2.addr).await);
    let i = info(f2.addr).await;
    assert_eq!(info_field(&i, "role").as_deref(), Some("follower"));
}
