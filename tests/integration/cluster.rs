//! Replication across real `burrow-server` processes: convergence under
//! mixed writes, restarts (partial vs full resync), link faults through a
//! proxy, NOT_LEADER and redirects, WAIT, quorum mode, stale reads.

use crate::common;

use std::time::{Duration, Instant};

use burrow_client::{Client, ClientConfig};
use burrow_proto::{End, Reply, Request, SetCondition, Status};
use bytes::Bytes;
use common::cluster::{Cluster, Options};
use common::proxy::Proxy;
use common::{info_field, info_u64, SeededRng, DEADLINE};

fn key(n: usize) -> Bytes {
    Bytes::from(format!("key:{n}"))
}

/// One random write of the mix the issue names: SET (some with a TTL far
/// in the future, so expiry timing cannot differ between nodes), DEL,
/// INCR, LPUSH, RPOP, EXPIRE, PERSIST.
fn random_write(rng: &mut SeededRng, keys: usize) -> Request {
    let k = rng.range(0, keys);
    // Counters and deques live in their own key ranges, so type errors are
    // rare (they are still replicated as refusals: nothing to apply).
    let len = rng.range(1, 40);
    match rng.range(0, 10) {
        0 | 1 => Request::Set {
            key: key(k),
            value: Bytes::from(rng.bytes(len)),
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        },
        2 => Request::Set {
            key: key(k),
            value: Bytes::from_static(b"ttl"),
            ttl_ms: Some(3_600_000),
            condition: SetCondition::Always,
            keep_ttl: false,
        },
        3 => Request::Del { key: key(k) },
        4 | 5 => Request::Incr { key: Bytes::from(format!("counter:{}", k % 16)) },
        6 => Request::Push {
            key: Bytes::from(format!("list:{}", k % 16)),
            end: End::Left,
            values: vec![Bytes::from(rng.bytes(8))],
        },
        7 => Request::Pop { key: Bytes::from(format!("list:{}", k % 16)), end: End::Right, count: None },
        8 => Request::Expire { key: key(k), ttl_ms: 7_200_000 },
        _ => Request::Persist { key: key(k) },
    }
}

/// `clients` tasks each send `per_client` random writes (in pipelines of 8)
/// to `addr`; returns how many writes were answered without an error status.
async fn mixed_writes(addr: std::net::SocketAddr, clients: u64, per_client: usize, seed: u64) -> usize {
    let mut tasks = Vec::new();
    for c in 0..clients {
        tasks.push(tokio::spawn(async move {
            let mut rng = SeededRng::new(seed * 1000 + c);
            let mut client = Client::connect(addr).await.expect("connect");
            let mut ok = 0;
            let mut sent = 0;
            while sent < per_client {
                let batch: Vec<Request> =
                    (0..8.min(per_client - sent)).map(|_| random_write(&mut rng, 500)).collect();
                sent += batch.len();
                for r in client.pipeline(&batch).await.expect("pipeline") {
                    ok += usize::from(!matches!(r, Reply::Error { .. }));
                }
            }
            ok
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("writer task");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_writes_from_several_clients_converge_on_every_node() {
    let mut c = Cluster::new("cluster-mixed", Options::default());
    // Node 1 is elected once node 2 runs; data before node 3 exists, then
    // node 3 joining (full resync) while 10,000 more writes arrive: the
    // snapshot is taken while the leader keeps writing.
    c.node(1).start().await;
    c.node(2).start().await;
    c.elected(1).await;
    let before = mixed_writes(c.leader().addr, 2, 1000, 1).await;
    assert!(before > 1500, "most writes succeed ({before})");
    let addr = c.leader().addr;
    let writers = tokio::spawn(async move { mixed_writes(addr, 4, 2500, 2).await });
    c.node(3).start().await;
    let ok = writers.await.unwrap();
    assert!(ok > 9000, "most of the 10,000 writes succeed ({ok})");
    let digest = c.converged().await;
    for id in [2, 3] {
        c.node(id).wait_synced().await;
    }
    assert_ne!(digest, 0);
    let leader = c.leader().info().await;
    assert_eq!(info_u64(&leader, "connected_followers"), 2, "{leader}");
    assert_eq!(info_u64(&leader, "full_resyncs"), 2, "each new follower got one full resync:\n{leader}");
    for id in [2, 3] {
        let info = c.node(id).info().await;
        assert_eq!(info_field(&info, "role"), "follower");
        assert_eq!(info_field(&info, "leader_addr"), c.leader().addr.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_by_partial_resync() {
    let mut c = Cluster::start("cluster-partial", Options::default()).await;
    mixed_writes(c.leader().addr, 2, 500, 3).await;
    c.converged().await;
    let full_before = info_u64(&c.leader().info().await, "full_resyncs");
    let partial_before = info_u64(&c.leader().info().await, "partial_resyncs");

    c.node(2).kill_9();
    mixed_writes(c.leader().addr, 2, 500, 4).await;
    c.node(2).start().await;
    c.node(2).wait_synced().await;
    mixed_writes(c.leader().addr, 1, 200, 5).await;
    c.converged().await;

    let leader = c.leader().info().await;
    assert_eq!(info_u64(&leader, "full_resyncs"), full_before, "no full resync:\n{leader}");
    assert!(info_u64(&leader, "partial_resyncs") > partial_before, "{leader}");
    let f2 = c.node(2).info().await;
    assert_eq!(info_u64(&f2, "full_resyncs"), 0, "{f2}");
    assert_eq!(info_u64(&f2, "partial_resyncs"), 1, "{f2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_kept_away_past_the_backlog_gets_a_full_resync() {
    let opts = Options { args: vec!["--backlog-bytes".into(), "65536".into()], ..Options::default() };
    let mut c = Cluster::start("cluster-full", opts).await;
    mixed_writes(c.leader().addr, 1, 200, 6).await;
    c.converged().await;
    let full_before = info_u64(&c.leader().info().await, "full_resyncs");

    c.node(3).stop().await;
    // Far more than 64 KiB of records while it is away.
    let mut client = c.leader().client().await;
    let big = Bytes::from(vec![b'x'; 500]);
    for i in 0..1000 {
        client.set(format!("big:{i}"), big.clone()).await.unwrap();
    }
    let leader = c.leader().info().await;
    assert!(info_u64(&leader, "backlog_first_index") > 300, "backlog moved on:\n{leader}");
    c.node(3).start().await;
    c.converged().await;
    // (Node 2 may also have fallen out of so small a backlog on a busy
    // machine: count node 3's own resyncs.)
    let leader = c.leader().info().await;
    assert!(info_u64(&leader, "full_resyncs") > full_before, "{leader}");
    let f3 = c.node(3).info().await;
    assert_eq!((info_u64(&f3, "full_resyncs"), info_u64(&f3, "partial_resyncs")), (1, 0), "{f3}");

    // And it restarts from the installed snapshot by partial resync.
    c.node(3).kill_9();
    client.set("after", "restart").await.unwrap();
    c.node(3).start().await;
    c.converged().await;
    let f3 = c.node(3).info().await;
    assert_eq!((info_u64(&f3, "full_resyncs"), info_u64(&f3, "partial_resyncs")), (0, 1), "{f3}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_cuts_and_stalls_lose_nothing_and_apply_nothing_twice() {
    // A short link timeout: the stalls below must trip the silence watch.
    let opts = Options { link_timeout_ms: 500, ..Options::default() };
    let mut c = Cluster::new("cluster-proxy", opts);
    c.node(1).start().await;
    c.node(3).start().await;
    c.elected(1).await;
    let proxy = Proxy::start(c.leader().addr).await;
    c.write_config(2, Some(proxy.addr));
    c.node(2).start().await;
    c.node(2).wait_synced().await;

    let addr = c.leader().addr;
    let mut counter = Client::connect(addr).await.unwrap();
    let writes = tokio::spawn(async move { mixed_writes(addr, 2, 1500, 7).await });
    let mut incrs = 0i64;
    let mut resyncs = info_u64(&c.node(2).info().await, "partial_resyncs");
    for round in 0..6 {
        for _ in 0..100 {
            counter.incr("exact").await.unwrap();
            counter.lpush("exact-list", vec![Bytes::from_static(b"x")]).await.unwrap();
            incrs += 1;
        }
        if round % 2 == 0 {
            proxy.cut();
        } else {
            // Held until the follower's silence watch gives up on the link.
            proxy.stall(true);
            c.node(2)
                .wait_info("the stalled link to go down", |i| info_field(i, "link_status") != "up")
                .await;
            proxy.stall(false);
        }
        // Each fault ends in a reconnection by partial resync before the
        // next (on a loaded machine a cut could otherwise land while the
        // link is still down from the stall before it, and count for nothing).
        let info = c
            .node(2)
            .wait_info("the link to come back by partial resync", |i| {
                info_field(i, "link_status") == "up" && info_u64(i, "partial_resyncs") > resyncs
            })
            .await;
        resyncs = info_u64(&info, "partial_resyncs");
    }
    writes.await.unwrap();
    c.converged().await;
    let mut f = c.node(2).client().await;
    assert_eq!(f.get("exact").await.unwrap(), Some(Bytes::from(incrs.to_string())));
    assert_eq!(f.llen("exact-list").await.unwrap(), incrs);
    let info = c.node(2).info().await;
    assert_eq!(info_u64(&info, "full_resyncs"), 1, "only the first sync was full:\n{info}");
    let log = c.node(2).stderr();
    assert!(log.contains("replication link lost") || log.contains("link down"), "the log says so");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_refuse_writes_with_the_leader_address_and_clients_follow() {
    let c = Cluster::start("cluster-redirect", Options::default()).await;
    let follower = &c.nodes[1];
    let mut raw = follower.client().await;
    let reply = raw
        .request(&Request::Set {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        })
        .await
        .unwrap();
    match reply {
        Reply::Error { status, message } => {
            assert_eq!(status, Status::NotLeader);
            assert_eq!(message, c.leader().addr.to_string());
        }
        other => panic!("expected NOT_LEADER, got {other:?}"),
    }
    // Reads are served by the follower.
    assert_eq!(raw.get("k").await.unwrap(), None);

    // The client follows the redirect and stays on the leader.
    let mut client = Client::connect_with(follower.addr, ClientConfig::default()).await.unwrap();
    client.set("k", "v").await.unwrap();
    assert_eq!(client.addr(), c.leader().addr);
    assert_eq!(c.leader().client().await.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));

    // The CLI says where it went.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_burrow-cli"))
        .args(["--host", "127.0.0.1", "--port", &follower.addr.port().to_string(), "SET", "cli", "yes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("redirected to leader at {}", c.leader().addr)), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

async fn wait_count(client: &mut Client, replicas: u32, timeout_ms: u64) -> i64 {
    client.wait(replicas, timeout_ms).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_counts_the_followers_that_have_the_write() {
    let mut c = Cluster::start("cluster-wait", Options::default()).await;
    let mut client = c.leader().client().await;
    // No write on this connection yet: both connected followers count.
    assert_eq!(wait_count(&mut client, 0, 0).await, 2);
    assert_eq!(wait_count(&mut client, 2, 5000).await, 2);

    client.set("a", "1").await.unwrap();
    assert_eq!(wait_count(&mut client, 2, DEADLINE.as_millis() as u64).await, 2);

    c.node(3).stop().await;
    client.set("b", "2").await.unwrap();
    // Node 2 gets "b" (however long that takes on a busy machine); node 3
    // never will, so WAIT 2 then runs to its timeout and counts one.
    assert_eq!(wait_count(&mut client, 1, DEADLINE.as_millis() as u64).await, 1);
    let started = Instant::now();
    assert_eq!(wait_count(&mut client, 2, 300).await, 1);
    assert!(started.elapsed() >= Duration::from_millis(300), "waited for the timeout");

    c.node(2).stop().await;
    client.set("c", "3").await.unwrap();
    assert_eq!(wait_count(&mut client, 1, 200).await, 0);

    // On a follower WAIT is refused with NOT_LEADER (once it knows its leader).
    c.node(2).start().await;
    c.nodes[1].wait_info("node 2 to know its leader", |i| info_field(i, "leader_id") == "1").await;
    let mut f = c.node(2).client().await;
    let err = f.wait(1, 10).await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NotLeader));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_mode_acknowledges_only_writes_a_majority_holds() {
    // With a cluster secret: followers killed and restarted authenticate again.
    let secret = Some(crate::member_auth::SECRET);
    let opts = Options { replication: "quorum", secret, ..Options::default() };
    let timeout = Duration::from_millis(opts.quorum_timeout_ms);
    let mut c = Cluster::start("cluster-quorum", opts).await;
    let mut client = c.leader().client().await;
    client.set("a", "1").await.unwrap();

    // One follower down: leader + one follower are still a majority of 3.
    c.node(3).kill_9();
    client.set("b", "2").await.unwrap();

    // Only the leader: refused with NO_QUORUM after the timeout.
    c.node(2).kill_9();
    let started = Instant::now();
    let err = client.set("c", "3").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NoQuorum), "{err}");
    assert!(started.elapsed() >= timeout, "refused after the timeout, not before");
    let info = c.leader().info().await;
    let commit = info_u64(&info, "commit_index");
    assert!(commit < info_u64(&info, "last_index"), "the write is not committed:\n{info}");

    // A follower back: majority again; the refused write reaches it too.
    c.node(2).start().await;
    c.node(2).wait_synced().await;
    client.set("d", "4").await.unwrap();
    let mut f = c.node(2).client().await;
    assert_eq!(f.get("d").await.unwrap(), Some(Bytes::from_static(b"4")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_max_stale_refuses_reads_while_its_link_is_down() {
    let opts = Options { max_stale_ms: 300, ..Options::default() };
    let mut c = Cluster::new("cluster-stale", opts);
    c.node(1).start().await;
    c.node(3).start().await;
    c.elected(1).await;
    let proxy = Proxy::start(c.leader().addr).await;
    c.write_config(2, Some(proxy.addr));
    c.node(2).start().await;
    c.node(2).wait_synced().await;
    c.leader().client().await.set("k", "v").await.unwrap();
    let node2 = &c.nodes[1];
    let mut f = node2.client().await;
    common::wait_for("the write reaches the follower", || {
        let addr = node2.addr;
        async move {
            let mut f = Client::connect(addr).await.unwrap();
            f.get("k").await.unwrap().is_some()
        }
    })
    .await;

    proxy.refuse(true);
    node2.wait_info("link down", |i| info_field(i, "link_status") != "up").await;
    common::wait_for("reads refused with STALE", || {
        let addr = node2.addr;
        async move {
            let mut f = Client::connect(addr).await.unwrap();
            matches!(f.get("k").await, Err(e) if e.status() == Some(Status::Stale))
        }
    })
    .await;
    // INFO and PING still answer.
    assert!(f.info("replication").await.unwrap().contains("link_status"));

    proxy.refuse(false);
    common::wait_for("reads served again", || {
        let addr = node2.addr;
        async move {
            let mut f = Client::connect(addr).await.unwrap();
            matches!(f.get("k").await, Ok(Some(_)))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_keeps_its_history_under_a_new_term_clean_or_crashed() {
    let mut c = Cluster::start("cluster-leader-restart", Options::default()).await;
    mixed_writes(c.leader().addr, 2, 300, 8).await;
    c.converged().await;
    let history = info_field(&c.leader().info().await, "history_id");

    // Clean restart: same history, followers resume by partial resync.
    c.node(1).stop().await;
    c.node(1).start().await;
    c.elected(1).await;
    mixed_writes(c.leader().addr, 1, 200, 9).await;
    c.converged().await;
    let info = c.leader().info().await;
    assert_eq!(info_field(&info, "history_id"), history, "{info}");
    assert_eq!(info_u64(&info, "full_resyncs"), 0, "{info}");
    assert_eq!(info_u64(&info, "partial_resyncs"), 2, "{info}");
    let term = info_u64(&info, "term");

    // Crash, with every record it streamed in its WAL: the history goes on
    // under a new term and the followers, whose logs its log holds,
    // resume by partial resync (before issue 10: a new history, and both
    // resynced in full).
    wal_has_everything(&c).await;
    c.node(1).kill_9();
    c.node(1).start().await;
    c.elected(1).await;
    mixed_writes(c.leader().addr, 1, 200, 10).await;
    c.converged().await;
    let info = c.leader().info().await;
    assert_eq!(info_field(&info, "history_id"), history, "{info}");
    assert!(info_u64(&info, "term") > term, "a new term at each start:\n{info}");
    assert_eq!(info_u64(&info, "full_resyncs"), 0, "{info}");
    assert_eq!(info_u64(&info, "partial_resyncs"), 2, "{info}");
}

/// Waits until the leader's WAL holds (written to the OS) every record it has.
async fn wal_has_everything(c: &Cluster) {
    c.leader()
        .wait_info("the leader's WAL holds its last index", |i| {
            info_u64(i, "durable_index") == info_u64(i, "last_index")
        })
        .await;
}

/// Cuts the last `n` records off the newest WAL segment in `dir`, at a
/// record boundary: what a crash loses of records not yet written.
fn drop_last_wal_records(dir: &std::path::Path, n: usize) {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("wal-"))
        .collect();
    segments.sort();
    let path = segments.last().expect("a WAL segment");
    let data = std::fs::read(path).unwrap();
    let mut starts = Vec::new();
    // After the segment header (protocol.md §11.1).
    let mut at = 16;
    while at + 8 <= data.len() {
        starts.push(at);
        at += 8 + u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    }
    assert!(starts.len() > n, "{} holds only {} records", path.display(), starts.len());
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(starts[starts.len() - n] as u64).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_that_lost_records_its_followers_hold_rejoins_as_a_follower() {
    // Elections on a short timeout: the survivors must elect one of them.
    let opts = Options { election_timeout_ms: "400..800", ..Options::default() };
    let mut c = Cluster::start("cluster-leader-lost-tail", opts).await;
    mixed_writes(c.leader().addr, 2, 300, 11).await;
    let before = c.converged().await;
    let info = c.leader().info().await;
    let history = info_field(&info, "history_id");
    let term = info_u64(&info, "term");
    // The leader streamed its last records, then crashed before its WAL
    // had them: the followers hold 5 records its log no longer has.
    wal_has_everything(&c).await;
    c.node(1).kill_9();
    drop_last_wal_records(&c.node(1).data_dir, 5);
    // Its log is behind theirs, so one of them leads now (§5.4.1), and it
    // rejoins as that leader's follower: nothing the cluster held is lost.
    c.node(1).start().await;
    common::wait_for("a leader among the nodes that kept the records", || async {
        c.current_leader().await.is_some_and(|id| id != 1)
    })
    .await;
    let digest = c.converged().await;
    let leader = c.current_leader().await.expect("a leader");
    assert_eq!(digest, before, "the 5 records the crashed leader lost survive on the others");
    let info = c.nodes[(leader - 1) as usize].info().await;
    assert_eq!(info_field(&info, "history_id"), history, "{info}");
    assert!(info_u64(&info, "term") > term, "{info}");
    assert_eq!(info_field(&c.node(1).info().await, "role"), "follower");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_resync_cut_mid_transfer_starts_over_and_converges() {
    let mut c = Cluster::new("cluster-cut-sync", Options::default());
    // Nodes 1 and 3 elect node 1; node 2 joins through the proxy.
    c.node(1).start().await;
    c.node(3).start().await;
    c.elected(1).await;
    // ~6 MB of snapshot: more than the proxy below lets through.
    let mut client = c.leader().client().await;
    let value = Bytes::from(vec![b'v'; 100]);
    common::set_keys(&mut client, 50_000, &value).await;
    let proxy = Proxy::start(c.leader().addr).await;
    // The first ~2 MiB of the snapshot get through (its first 1 MiB chunk
    // starts the follower loading), then the link holds: the transfer is
    // surely in flight when it is cut.
    proxy.limit(Some(2 << 20));
    c.write_config(2, Some(proxy.addr));
    c.node(2).start().await;
    c.nodes[1].wait_info("the transfer under way", |i| info_field(i, "loading") == "1").await;
    proxy.cut();
    proxy.limit(None);
    let digest = c.converged().await;
    assert_eq!(digest, c.leader().client().await.digest().await.unwrap());
    let f2 = c.node(2).info().await;
    assert_eq!(info_u64(&f2, "full_resyncs"), 1, "only the second transfer completed:\n{f2}");
    assert!(c.node(2).stderr().contains("full resync interrupted"), "the log says so");
    assert_eq!(c.node(2).client().await.dbsize().await.unwrap(), 50_000);
}
