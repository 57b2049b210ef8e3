//! Reads never show what a crash or a failover can erase (issue 10): a
//! read of a key whose last write is not durable yet (`--fsync always`),
//! or not committed yet (quorum mode), waits for it; a read of a key in
//! another shard does not; a read whose write never commits gets
//! NO_QUORUM after the quorum timeout instead of the value (and so, in
//! quorum mode, does any read on a leader no majority confirms:
//! `linearizable_reads`).

use std::time::Duration;

use burrow_client::Client;
use burrow_proto::Status;
use burrow_server::fault_injection::{Fault, FaultyFileSystem, FsOp, Injected};
use burrow_server::formats::shard_for;
use burrow_server::FsyncPolicy;
use bytes::Bytes;

use crate::common::cluster::{Cluster, Options};
use crate::common::{self, info_u64, FaultyServer, TempDir, DEADLINE};

/// Two keys in different shards of `shards`: they never share a watermark.
fn keys_in_two_shards(shards: usize) -> (Bytes, Bytes) {
    let key = |i: u32| Bytes::from(format!("key:{i}"));
    let a = key(0);
    let b = (1..).map(key).find(|k| shard_for(k, shards) != shard_for(&a, shards)).expect("a key");
    (a, b)
}

/// Releases every stall when dropped, also when an assertion fails: a
/// WAL thread left stalled would hang the server's shutdown, and the test
/// with it, instead of failing.
struct ReleaseStalls(FaultyFileSystem);

impl Drop for ReleaseStalls {
    fn drop(&mut self) {
        self.0.clear();
    }
}

/// INFO `reads_waited`: reads whose reply was held for a write.
async fn reads_waited(addr: std::net::SocketAddr) -> u64 {
    let info = Client::connect(addr).await.unwrap().info("stats").await.unwrap();
    info_u64(&info, "reads_waited")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_fsync_always_a_read_waits_for_the_fsync_of_what_it_shows_and_another_shard_does_not() {
    let dir = TempDir::new("reads-fsync-stall");
    let fs = FaultyFileSystem::new();
    let server = FaultyServer::start(&dir, FsyncPolicy::Always, &fs).await;
    let addr = server.addr;
    let (key, other) = keys_in_two_shards(16);
    let mut c = server.client().await;
    c.set(key.clone(), "old").await.unwrap();
    c.set(other.clone(), "there").await.unwrap();

    // Every WAL fsync from now on blocks until released.
    let release = ReleaseStalls(fs.clone());
    fs.inject(Fault::new(FsOp::Sync, Injected::Stall).on_paths_containing("wal-"));
    let mut writer = server.client().await;
    let k = key.clone();
    let write = tokio::spawn(async move { writer.set(k, "new").await });
    let stalled = fs.clone();
    common::wait_for("the SET's fsync to start", || {
        let fs = stalled.clone();
        async move { fs.stalled() > 0 }
    })
    .await;
    // The SET is applied in memory; its fsync has not completed.
    let mut reader = server.client().await;
    let k = key.clone();
    let read = tokio::spawn(async move { reader.get(k).await });
    common::wait_for("the GET to be held", || async move { reads_waited(addr).await >= 1 }).await;

    // A key in another shard is served at once, from its durable write.
    assert_eq!(c.get(other.clone()).await.unwrap().as_deref(), Some(&b"there"[..]));
    assert_eq!(reads_waited(addr).await, 1, "the other shard's read was not held");
    assert!(!read.is_finished(), "the GET is not answered before the fsync completes");
    assert!(!write.is_finished(), "nor the SET");

    drop(release);
    let got = tokio::time::timeout(DEADLINE, read).await.expect("answered once synced").unwrap();
    assert_eq!(got.unwrap().as_deref(), Some(&b"new"[..]));
    tokio::time::timeout(DEADLINE, write).await.expect("acknowledged").unwrap().unwrap();
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_quorum_mode_a_read_never_returns_an_uncommitted_write_and_returns_it_once_committed() {
    // Every node runs 16 shards (the cluster helper's `--shards 16`).
    let opts = Options { replication: "quorum", ..Options::default() };
    let timeout = Duration::from_millis(opts.quorum_timeout_ms);
    let mut c = Cluster::start("reads-quorum", opts).await;
    let (key, other) = keys_in_two_shards(16);
    let mut client = c.leader().client().await;
    client.set(key.clone(), "committed").await.unwrap();
    client.set(other.clone(), "there").await.unwrap();

    // The leader alone: nothing more commits.
    c.node(2).kill_9();
    c.node(3).kill_9();
    let err = client.set(key.clone(), "uncommitted").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NoQuorum), "{err}");

    // The value is applied on the leader but never shown: NO_QUORUM after
    // the timeout, saying why.
    let mut reader = c.leader().client().await;
    let started = std::time::Instant::now();
    let err = reader.get(key.clone()).await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NoQuorum), "{err}");
    assert!(err.to_string().contains("not yet committed"), "{err}");
    assert!(started.elapsed() >= timeout, "answered after the quorum timeout, not before");
    // A key in another shard, committed before the outage, is not served
    // either: no majority confirms that this node still leads (reads on a
    // quorum leader are linearizable), so it may not be the leader anymore.
    let err = reader.get(other.clone()).await.unwrap_err();
    assert_eq!(err.status(), Some(Status::NoQuorum), "{err}");
    assert!(err.to_string().contains("still leads"), "{err}");

    // A follower back: the write reaches it and commits; then it is read.
    c.node(2).start().await;
    c.node(2).wait_synced().await;
    let addr = c.leader().addr;
    common::wait_for("the write to commit and be read", || {
        let key = key.clone();
        async move {
            let got = Client::connect(addr).await.unwrap().get(key).await;
            got.ok().flatten().as_deref() == Some(&b"uncommitted"[..])
        }
    })
    .await;
}
