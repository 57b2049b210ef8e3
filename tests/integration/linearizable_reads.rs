//! Linearizable reads on a quorum leader (issue 10, ReadIndex): a leader
//! serves a read only once a majority confirmed, after the read, that it
//! still leads. A deposed leader that does not know it yet — paused while
//! the majority elected another and overwrote the key, then resumed, cut
//! off — never answers with the overwritten value; a healthy leader's
//! reads are confirmed in batches, one heartbeat round for many reads.

use crate::common;
use crate::elections::{isolate, opts, partition, wait_for_leader_among};

use std::time::Instant;

use burrow_proto::{Reply, Request, Status};
use common::cluster::{Cluster, Options};
use common::{info_field, info_u64, RawConn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leader_never_reads_what_the_majority_overwrote() {
    let mut c = Cluster::new("linread-deposed", opts("quorum", true));
    let proxies = isolate(&mut c, 1).await;
    c.start_led_by_node_1().await;
    c.nodes[0].client().await.set("k", "1").await.unwrap();
    c.converged().await;

    // Frozen while it leads, then cut off: it still believes it leads.
    let mut old = RawConn::connect(c.nodes[0].addr).await;
    c.nodes[0].pause();
    partition(&proxies, true);
    // Straight to the new leader: the other node may still name the
    // paused one, which a redirected client would wait for.
    let new_leader = wait_for_leader_among(&c, &[2, 3]).await;
    c.nodes[(new_leader - 1) as usize].client().await.set("k", "2").await.unwrap();

    // The GET reaches it before it runs again; WAIT 0 0 after it in the
    // same batch is answered only if it still led when it ran both.
    old.send_requests(&[
        (1, Request::Get { key: "k".into() }),
        (2, Request::Wait { replicas: 0, timeout_ms: 0 }),
    ])
    .await;
    c.nodes[0].resume();
    let (_, get) = old.reply().await;
    let (_, wait) = old.reply().await;
    let as_leader = matches!(wait, Reply::Int(_));
    println!("old leader: GET k {get:?}, WAIT {wait:?}");
    match get {
        Reply::Error { status: Status::NoQuorum | Status::NotLeader | Status::NoLeader, .. } => {}
        Reply::Bytes(v) if !as_leader => assert_eq!(&v[..], b"1", "a follower's possibly stale read"),
        other => panic!("the deposed leader answered a read with {other:?} (as leader: {as_leader})"),
    }

    partition(&proxies, false);
    let (leader, _) = c.one_leader().await;
    assert_eq!(leader, new_leader);
    c.converged().await;
    assert_eq!(info_field(&c.nodes[0].info().await, "role"), "follower");
    for id in [1, leader] {
        let mut client = c.nodes[(id - 1) as usize].client().await;
        assert_eq!(client.get("k").await.unwrap().as_deref(), Some(&b"2"[..]), "node {id} after the heal");
    }
}

/// A healthy leader serves every read, and confirms them in shared
/// rounds: concurrent clients' reads ride the same heartbeat round, and a
/// pipeline of reads costs one round, not one per read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_leader_confirms_reads_in_shared_rounds() {
    let c = Cluster::start("linread-batch", Options { replication: "quorum", ..Options::default() }).await;
    let leader = c.leader();
    leader.client().await.set("k", "v").await.unwrap();
    let counts = |i: &str| (info_u64(i, "read_rounds"), info_u64(i, "read_batches"));

    const CLIENTS: usize = 16;
    const READS: usize = 100;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = leader.client().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..READS {
                assert_eq!(client.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let (rounds, batches) = counts(&leader.info().await);
    println!(
        "{} reads by {CLIENTS} clients in {} ms: {rounds} rounds for {batches} batches",
        CLIENTS * READS,
        elapsed.as_millis()
    );
    assert!(batches >= (CLIENTS * READS) as u64, "every read was confirmed: {batches}");
    assert!(rounds * 2 <= batches, "rounds are shared: {rounds} rounds for {batches} batches");

    // 200 GETs in one write: one batch (or a few, as the socket delivers them).
    let mut raw = RawConn::connect(leader.addr).await;
    let gets: Vec<_> = (1..=200).map(|id| (id, Request::Get { key: "k".into() })).collect();
    raw.send_requests(&gets).await;
    for _ in &gets {
        assert_eq!(raw.reply().await.1, Reply::Bytes("v".into()));
    }
    let (after, _) = counts(&leader.info().await);
    assert!(after - rounds < 20, "a pipeline of 200 reads took {} rounds", after - rounds);
}
