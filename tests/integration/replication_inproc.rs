//! Replication between in-process servers (fast; the multi-process tests
//! in `cluster` cover crashes, restarts and link faults).

use crate::common;

use std::time::Duration;

use bytes::Bytes;

use burrow_client::Client;
use burrow_server::fault_injection::{Fault, FaultyFileSystem, FsOp, Injected};
use burrow_server::{ClusterConfig, Config, NodeInfo, ReplicationMode, Server, ServerHandle};
use common::{info_field, info_u64, reserve_port, wait_for, Reservation, TempDir};

/// An in-process cluster's config, each node's port held until it starts.
struct InProc {
    config: ClusterConfig,
    ports: Vec<Reservation>,
    /// Each node's data directory: with persistence off it still holds the
    /// node's vote file (and its lock).
    dirs: Vec<TempDir>,
}

fn cluster(n: u64, mode: ReplicationMode) -> InProc {
    let ports: Vec<Reservation> = (1..=n).map(|_| reserve_port()).collect();
    let nodes = (1..=n)
        .zip(&ports)
        .map(|(id, port)| NodeInfo { id, addr: port.addr(), data_dir: format!("unused-{id}").into() })
        .collect();
    let mut config = ClusterConfig::new(nodes, 1, 1).expect("a valid cluster");
    config.mode = mode;
    config.heartbeat = Duration::from_millis(50);
    // Generous: these nodes share the test's two runtime threads, which a
    // loaded machine can hold up; a stalled link is not the point here.
    config.link_timeout = Duration::from_millis(2000);
    config.quorum_timeout = Duration::from_millis(300);
    // Node 1 (the initial leader) is elected once a majority runs; no
    // other election on a loaded machine.
    config.election_timeout = Duration::from_secs(60)..Duration::from_secs(120);
    let dirs = (1..=n).map(|id| TempDir::new(&format!("inproc-node{id}"))).collect();
    InProc { config, ports, dirs }
}

impl InProc {
    async fn start(&mut self, id: u64) -> ServerHandle {
        self.start_with(id, |_| {}).await
    }

    async fn start_with(&mut self, id: u64, tweak: impl FnOnce(&mut Config)) -> ServerHandle {
        let c = self.config.as_node(id).expect("a member");
        let port = self.ports[(id - 1) as usize].release();
        let data_dir = self.dirs[(id - 1) as usize].path().to_owned();
        let mut config =
            Config { port, shards: 16, persistence: false, data_dir, cluster: Some(c), ..Config::default() };
        tweak(&mut config);
        ServerHandle::start(config).await.expect("node starts")
    }
}

/// Waits until the node at `addr` has won its election.
async fn elected(addr: std::net::SocketAddr) {
    wait_for("node 1 to be elected", || async move { info_field(&info(addr).await, "role") == "leader" })
        .await;
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
    let mut c = cluster(3, ReplicationMode::Async);
    // Node 1 is elected once a majority runs: node 2 joins an empty
    // leader, node 3 one under load.
    let leader = c.start(1).await;
    let f2 = c.start(2).await;
    elected(leader.addr).await;
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
    let f3 = c.start(3).await;
    writer.await.unwrap();
    let want = client.digest().await.unwrap();
    for f in [&f2, &f3] {
        let addr = f.addr;
        wait_for("follower digest", || async move {
            let mut c = Client::connect(addr).await.unwrap();
            c.digest().await.ok() == Some(want)
        })
        .await;
        let i = info(f.addr).await;
        assert_eq!(info_field(&i, "role"), "follower", "{i}");
        assert_eq!(info_field(&i, "full_resyncs"), "1", "{i}");
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
    let mut c = cluster(2, ReplicationMode::Async);
    let big = |cfg: &mut Config| cfg.max_value_bytes = 24 << 20;
    let leader = c.start_with(1, big).await;
    let follower = c.start_with(2, big).await;
    elected(leader.addr).await;
    let value = bytes::Bytes::from(vec![7u8; 20 << 20]);
    let mut client = Client::connect(leader.addr).await.unwrap();
    client.set("big", value.clone()).await.unwrap();
    let addr = follower.addr;
    let want = value.clone();
    wait_for("the big value on the follower", || {
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

/// A follower whose disk is slower than its link: it stops reading the
/// link while its loader catches up (so the leader's writes block too, and
/// the snapshot in flight stays a few MiB), for several link timeouts,
/// and the link must survive that. The first write of the received
/// snapshot to its file takes 4 link timeouts; meanwhile the loader's
/// queue fills and the driver waits for room, sending keepalive acks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_whose_loader_is_slower_than_the_link_completes_without_a_link_drop() {
    const KEYS: usize = 60_000;
    let mut c = cluster(3, ReplicationMode::Async);
    c.config.link_timeout = Duration::from_millis(1000);
    let stall = 4 * c.config.link_timeout;
    // Nodes 1 and 3 make the majority that elects node 1; node 2 is the
    // slow follower, started once the data is there.
    let leader = c.start(1).await;
    let third = c.start(3).await;
    elected(leader.addr).await;
    // About 7 MiB of snapshot: 7 chunks, more than the loader queues.
    let mut client = Client::connect(leader.addr).await.unwrap();
    let value = Bytes::from(vec![b'v'; 100]);
    common::set_keys(&mut client, KEYS, &value).await;

    let dir = TempDir::new("slow-loader");
    let fs = FaultyFileSystem::new();
    fs.inject(Fault::new(FsOp::Write, Injected::Slow(stall)).on_paths_containing("snapshot-sync").times(1));
    let port = c.ports[1].release();
    let config = Config {
        port,
        shards: 16,
        persistence: true,
        data_dir: dir.path().to_owned(),
        cluster: Some(c.config.as_node(2).expect("a member")),
        ..Config::default()
    };
    let slow = fs.clone();
    let server =
        tokio::task::spawn_blocking(move || Server::open_with_faults(config, &slow)).await.unwrap().unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let follower = tokio::spawn(server.serve(listener, stop.clone().cancelled_owned()));

    let started = std::time::Instant::now();
    let last = info_u64(&info(leader.addr).await, "last_index");
    wait_for("the follower to load the snapshot", || async move {
        let i = info(addr).await;
        info_u64(&i, "applied_index") >= last && info_field(&i, "loading") == "0"
    })
    .await;
    assert!(started.elapsed() >= stall, "the slow write was not waited for");
    assert_eq!(fs.fired().len(), 1, "the stall happened");
    let (l, f) = (info(leader.addr).await, info(addr).await);
    // The leader's two: node 3's (empty) and node 2's.
    for (who, i, full) in [("leader", &l, 2), ("follower", &f, 1)] {
        assert_eq!(
            (info_u64(i, "full_resyncs"), info_u64(i, "partial_resyncs")),
            (full, 0),
            "{who}: the link never dropped (one full resync, no reconnection)\n{l}\n{f}"
        );
    }
    let mut f = Client::connect(addr).await.unwrap();
    assert_eq!(f.dbsize().await.unwrap(), KEYS as i64);
    assert_eq!(f.get("key:59999").await.unwrap(), Some(value));
    stop.cancel();
    follower.await.unwrap().unwrap();
    third.shutdown().await.unwrap();
    leader.shutdown().await.unwrap();
}

/// `--maxmemory` on a 2-node cluster: the leader evicts, each eviction a
/// logged DEL; the follower applies them and evicts nothing itself, and
/// ends with the leader's data (DIGEST).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_reach_followers_as_dels_and_digests_agree() {
    let mut c = cluster(2, ReplicationMode::Async);
    let limit = |config: &mut Config| {
        config.maxmemory = 1 << 20;
        config.maxmemory_policy = burrow_server::EvictionPolicy::AllkeysLru;
    };
    let leader = c.start_with(1, limit).await;
    let follower = c.start_with(2, limit).await;
    elected(leader.addr).await;
    let mut client = Client::connect(leader.addr).await.unwrap();
    common::set_keys(&mut client, 3000, &Bytes::from(vec![b'v'; 1000])).await;
    let want = client.digest().await.unwrap();
    let addr = follower.addr;
    wait_for("follower digest", || async move {
        let mut c = Client::connect(addr).await.unwrap();
        c.digest().await.ok() == Some(want)
    })
    .await;
    let on = |addr| async move { Client::connect(addr).await.unwrap().info("memory").await.unwrap() };
    let (l, f) = (on(leader.addr).await, on(follower.addr).await);
    // ~1000 keys of 1000 bytes fit in 1 MiB.
    assert!(info_u64(&l, "evicted_keys") >= 1900, "{l}");
    assert_eq!(info_u64(&f, "evicted_keys"), 0, "{f}");
    assert_eq!(info_u64(&f, "used_memory"), info_u64(&l, "used_memory"));
    for h in [follower, leader] {
        h.shutdown().await.unwrap();
    }
}
