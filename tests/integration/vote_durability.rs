//! One vote per term across disk faults and restarts (issue 10: "A disk
//! that fails while persisting a vote must not let the node vote twice";
//! Raft §5.2 and Figure 2: term and vote are on stable storage before a
//! node answers). Node 2 of a 3-node cluster runs in process with its files
//! written through a `FaultyFileSystem`; nodes 1 and 3 are played by the
//! test ([`FakeMember`]), which asks for votes by hand and reads the
//! answers node 2 sends on its own peer links. A member with persistence
//! off keeps its vote file too: restarted, it still remembers.

use crate::common;

use std::time::Duration;

use burrow_server::fault_injection::{Fault, FaultyFileSystem, FsOp, Injected};
use burrow_server::{ClusterConfig, Config, NodeInfo};
use common::cluster::{Cluster, Options};
use common::fake_member::{self as peer, FakeMember, PeerConn};
use common::{info_field, info_u64, refusing_addr, wait_for, FaultyServer, TempDir};

/// Node 2's cluster (nodes 1 and 3 faked) and its data directory. The
/// fakes listen on ports the OS picked, held for the whole test; node 2
/// listens on a fresh one at each start (nobody dials it at its address
/// in the cluster file: the test plays every other member).
struct Member {
    config: ClusterConfig,
    dir: TempDir,
    persistence: bool,
    _nominal: tokio::net::TcpSocket,
}

impl Member {
    /// The cluster and the two fakes, listening on nodes 1's and 3's addresses.
    async fn new(tag: &str, persistence: bool) -> (Member, FakeMember, FakeMember) {
        let fake1 = FakeMember::listen("127.0.0.1:0".parse().unwrap()).await;
        let fake3 = FakeMember::listen("127.0.0.1:0".parse().unwrap()).await;
        let (nominal, addr2) = refusing_addr();
        let nodes = [(1, fake1.addr), (2, addr2), (3, fake3.addr)]
            .into_iter()
            .map(|(id, addr)| NodeInfo { id, addr, data_dir: format!("node{id}").into() })
            .collect();
        // No initial leader and long timeouts: node 2 never campaigns on its
        // own; only the test's requests move its term.
        let mut config = ClusterConfig::new(nodes, None, 2).expect("a valid cluster");
        config.heartbeat = Duration::from_millis(50);
        config.link_timeout = Duration::from_millis(2000);
        config.election_timeout = Duration::from_secs(60)..Duration::from_secs(120);
        let m = Member { config, dir: TempDir::new(tag), persistence, _nominal: nominal };
        (m, fake1, fake3)
    }

    async fn start(&self, fs: &FaultyFileSystem) -> FaultyServer {
        let config = Config {
            port: 0,
            shards: 16,
            persistence: self.persistence,
            data_dir: self.dir.path().to_owned(),
            cluster: Some(self.config.clone()),
            ..Config::default()
        };
        FaultyServer::open(config, fs).await
    }
}

async fn info(server: &FaultyServer) -> String {
    server.client().await.info("replication").await.unwrap()
}

fn cluster_id(info: &str) -> u64 {
    u64::from_str_radix(&info_field(info, "cluster_id"), 16).expect("hex cluster id")
}

/// Asks node 2 for its vote in `term` as `candidate` (log empty, as node
/// 2's is) and returns its answer, read on the candidate's fake.
async fn ask(server: &FaultyServer, fake: &mut FakeMember, cid: u64, candidate: u64, term: u64) -> bool {
    let mut link = PeerConn::open(server.addr, cid, candidate).await;
    link.send(&peer::request_vote(term, candidate, (0, 0), false)).await;
    let (answered_term, granted, pre_vote) = fake.vote_from(2).await;
    assert!(!pre_vote);
    assert!(answered_term >= term, "an answer for term {answered_term} to a request for {term}");
    granted && answered_term == term
}

/// Every step of replacing the vote file, failing in turn: node 2 never
/// grants the vote it could not persist, acts in no new term, and after a
/// restart grants term 2 to one candidate only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_that_cannot_be_persisted_is_never_granted_and_never_doubled_after_a_restart() {
    let faults = [
        (FsOp::Create, Injected::Eio),
        (FsOp::Write, Injected::NoSpace),
        (FsOp::Sync, Injected::Eio),
        (FsOp::Rename, Injected::Eio),
        // After the rename: the new term is on disk, the node cannot know.
        (FsOp::SyncDir, Injected::Eio),
    ];
    for (i, (op, injected)) in faults.into_iter().enumerate() {
        let (m, mut fake1, mut fake3) = Member::new(&format!("vote-fault{i}"), true).await;
        // Nothing else is written meanwhile (no client writes): the
        // directory's fsync is the vote file's.
        let on = if op == FsOp::SyncDir { m.dir.path().display().to_string() } else { "VOTE".into() };
        let fault = Fault::new(op, injected).on_paths_containing(&on);
        let fs = FaultyFileSystem::new();
        let server = m.start(&fs).await;
        let cid = cluster_id(&info(&server).await);

        // A healthy disk: node 3 gets node 2's vote in term 1.
        assert!(ask(&server, &mut fake3, cid, 3, 1).await, "fault {i}: vote in term 1");
        assert_eq!(info_field(&info(&server).await, "voted_for"), "3");

        // The disk fails while node 2 takes term 2 for node 1's request.
        fs.inject(fault);
        let mut link = PeerConn::open(server.addr, cid, 1).await;
        link.send(&peer::request_vote(2, 1, (0, 0), false)).await;
        let addr = server.addr;
        wait_for("the failed vote persist to be reported", || async move {
            let c = burrow_client::Client::connect(addr).await;
            info_field(&c.unwrap().info("replication").await.unwrap(), "election_status") == "persist_failed"
        })
        .await;
        assert!(!fs.fired().is_empty(), "fault {i} fired");
        let i2 = info(&server).await;
        assert_eq!(info_u64(&i2, "term"), 1, "fault {i}: node 2 did not act in term 2\n{i2}");
        assert_eq!(info_field(&i2, "voted_for"), "3", "fault {i}\n{i2}");
        // Out of elections until restarted: node 3 asking too gets nothing.
        PeerConn::open(server.addr, cid, 3).await.send(&peer::request_vote(2, 3, (0, 0), false)).await;
        server.shutdown().await.expect("clean shutdown");
        for (fake, id) in [(&mut fake1, 1), (&mut fake3, 3)] {
            let sent = fake.until_closed(2).await;
            assert!(
                sent.iter().all(|m| m.vote().is_none_or(|(term, granted, _)| !granted || term < 2)),
                "fault {i}: node 2 granted a vote in term 2 to node {id} before restarting: {sent:?}"
            );
        }

        // Restarted on a healthy disk, from whichever state the file kept:
        // one vote in term 2.
        fs.clear();
        let server = m.start(&fs).await;
        let term = info_u64(&info(&server).await, "term");
        assert!(term == 1 || (term == 2 && i == 4), "fault {i}: restarted in term {term}");
        assert!(ask(&server, &mut fake1, cid, 1, 2).await, "fault {i}: node 1 gets the vote in term 2");
        assert!(!ask(&server, &mut fake3, cid, 3, 2).await, "fault {i}: not node 3 as well");
        server.shutdown().await.expect("clean shutdown");
        let server = m.start(&fs).await;
        assert!(!ask(&server, &mut fake3, cid, 3, 2).await, "fault {i}: nor after another restart");
        assert!(ask(&server, &mut fake1, cid, 1, 2).await, "fault {i}: node 1 asking again is answered yes");
        server.shutdown().await.expect("clean shutdown");
    }
}

/// Persistence off: the data set is memory only, but the vote is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_persistence_off_remembers_its_vote_across_a_restart() {
    let (m, mut fake1, mut fake3) = Member::new("vote-memory", false).await;
    let fs = FaultyFileSystem::new();
    let server = m.start(&fs).await;
    let cid = cluster_id(&info(&server).await);
    assert!(ask(&server, &mut fake3, cid, 3, 1).await, "vote in term 1");
    server.shutdown().await.expect("clean shutdown");
    assert!(m.dir.join("VOTE").is_file(), "the vote file is in the data directory");

    let server = m.start(&fs).await;
    let i = info(&server).await;
    assert_eq!((info_u64(&i, "term"), info_field(&i, "voted_for")), (1, "3".into()), "{i}");
    assert!(!ask(&server, &mut fake1, cid, 1, 1).await, "no second vote in term 1");
    assert!(ask(&server, &mut fake1, cid, 1, 2).await, "a vote in term 2");
    server.shutdown().await.expect("clean shutdown");
}

/// Two processes sharing one vote file could each vote once in a term: a
/// second member on the same data directory is refused, persistence off
/// or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_on_the_same_data_directory_is_refused() {
    let (m, _fake1, _fake3) = Member::new("vote-lock", false).await;
    let fs = FaultyFileSystem::new();
    let server = m.start(&fs).await;
    for persistence in [false, true] {
        let config = Config {
            port: 0,
            persistence,
            data_dir: m.dir.path().to_owned(),
            cluster: Some(m.config.clone()),
            ..Config::default()
        };
        let err = tokio::task::spawn_blocking(move || burrow_server::Server::open(config)).await.unwrap();
        let err = err.expect_err("the directory is locked").to_string();
        assert!(err.contains("in use by another burrow-server"), "persistence {persistence}: {err}");
    }
    server.shutdown().await.expect("clean shutdown");
}

/// The same with real processes: node 2 voted for node 1 (the only other
/// running node), is killed and restarted with persistence off, and
/// reports that term and vote again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistence_off_process_killed_and_restarted_keeps_its_term_and_vote() {
    let opts = Options { args: vec!["--persistence".into(), "off".into()], ..Options::default() };
    let mut c = Cluster::new("vote-memory-process", opts);
    c.node(1).start().await;
    c.node(2).start().await;
    c.elected(1).await;
    let before =
        c.nodes[1].wait_info("node 2 to vote for node 1", |i| info_field(i, "voted_for") == "1").await;
    let term = info_u64(&before, "term");
    c.node(2).kill_9();
    assert!(c.nodes[1].data_dir.join("VOTE").is_file(), "VOTE kept with persistence off");
    c.node(2).start().await;
    let after = c.nodes[1].info().await;
    assert_eq!(info_u64(&after, "term"), term, "{after}");
    assert_eq!(info_field(&after, "voted_for"), "1", "{after}");
    c.nodes[1].wait_synced().await;
    c.nodes[0].client().await.set("k", "v").await.expect("the leader still acknowledges");
    c.converged().await;
}
