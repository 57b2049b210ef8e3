//! DIGEST end to end: nodes holding the same data agree on it whatever the
//! order the data arrived in or their shard counts, and a restart (snapshot
//! plus WAL, or a graceful shutdown's snapshot) keeps it. (That an expired
//! key is left out before it is reclaimed is pinned by the store's unit tests:
//! the background sweep makes "not yet reclaimed" unobservable here.)

use crate::common;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;

use burrow_client::Client;
use burrow_proto::{End, Request, SetCondition};
use burrow_server::FsyncPolicy;
use burrow_server::ServerHandle;

use common::{copy_dir, wait_for, SeededRng, TempDir};

const EMPTY: u64 = 0;

/// Per-key command sequences: commands on different keys commute, so any
/// interleaving that keeps each key's own order yields the same dataset.
fn per_key_scripts(rng: &mut SeededRng) -> Vec<Vec<Request>> {
    let set = |key: Bytes, value: Vec<u8>| Request::Set {
        key,
        value: Bytes::from(value),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    };
    let mut scripts = Vec::new();
    for k in 0..40 {
        let key = Bytes::from(format!("key:{k}"));
        let mut script = Vec::new();
        for step in 0..rng.range(1, 8) {
            let key = key.clone();
            script.push(match rng.range(0, 7) {
                0 => {
                    let len = rng.range(0, 24);
                    set(key, rng.bytes(len))
                }
                1 => Request::IncrBy { key, delta: rng.range(0, 1000) as i64 - 500 },
                2 => Request::Push {
                    key,
                    end: End::Left,
                    values: vec![Bytes::from(format!("l{step}")), Bytes::new()],
                },
                3 => Request::Push { key, end: End::Right, values: vec![Bytes::from(format!("r{step}"))] },
                4 => Request::Pop { key, end: End::Left, count: None },
                5 => Request::Del { key },
                _ => set(key, rng.range(0, 100).to_string().into_bytes()),
            });
        }
        scripts.push(script);
    }
    scripts
}

/// Interleaves the scripts at random, keeping each script's own order.
fn interleave(scripts: &[Vec<Request>], rng: &mut SeededRng) -> Vec<Request> {
    let mut next = vec![0usize; scripts.len()];
    let mut out = Vec::new();
    let mut open: Vec<usize> = (0..scripts.len()).collect();
    while !open.is_empty() {
        let pick = rng.range(0, open.len());
        let s = open[pick];
        out.push(scripts[s][next[s]].clone());
        next[s] += 1;
        if next[s] == scripts[s].len() {
            open.swap_remove(pick);
        }
    }
    out
}

/// Sends `reqs` in one pipeline; WRONGTYPE and NOT_INTEGER replies are part
/// of the script (they change nothing, on every node alike).
async fn run(c: &mut Client, reqs: &[Request]) {
    let replies = c.pipeline(reqs).await.expect("pipeline");
    assert_eq!(replies.len(), reqs.len());
}

#[tokio::test]
async fn two_servers_fed_the_same_commands_in_different_orders_agree() {
    let a = common::start_with(|c| c.shards = 1).await;
    let b = common::start_with(|c| c.shards = 64).await;
    let mut ca = Client::connect(a.addr).await.unwrap();
    let mut cb = Client::connect(b.addr).await.unwrap();
    assert_eq!(ca.digest().await.unwrap(), EMPTY);
    assert_eq!(cb.digest().await.unwrap(), EMPTY);

    let mut rng = SeededRng::new(0xd16e57);
    let scripts = per_key_scripts(&mut rng);
    let order_a = interleave(&scripts, &mut rng);
    let order_b = interleave(&scripts, &mut rng);
    assert_ne!(order_a, order_b, "the test needs two different orders");
    run(&mut ca, &order_a).await;
    let (first, second) = order_b.split_at(order_b.len() / 2);
    run(&mut cb, first).await;
    run(&mut cb, second).await;

    let da = ca.digest().await.unwrap();
    assert_ne!(da, EMPTY);
    assert_eq!(cb.digest().await.unwrap(), da, "same data, same digest");
    assert_eq!(ca.dbsize().await.unwrap(), cb.dbsize().await.unwrap());

    // A difference on one side shows, and undoing it converges again.
    cb.set("extra", "1").await.unwrap();
    assert_ne!(cb.digest().await.unwrap(), da);
    cb.del("extra").await.unwrap();
    assert_eq!(cb.digest().await.unwrap(), da);
    // A counter and the equal string are the same data to users.
    ca.incr_by("n", 42).await.unwrap();
    cb.set("n", "42").await.unwrap();
    assert_eq!(ca.digest().await.unwrap(), cb.digest().await.unwrap());
    // An expiry is part of the data; removing it restores the digest.
    let before = ca.digest().await.unwrap();
    ca.expire("n", Duration::from_secs(3600)).await.unwrap();
    assert_ne!(ca.digest().await.unwrap(), before);
    ca.persist("n").await.unwrap();
    assert_eq!(ca.digest().await.unwrap(), before);

    ca.flushall().await.unwrap();
    assert_eq!(ca.digest().await.unwrap(), EMPTY);
    drop((ca, cb));
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expired_key_leaves_the_digest() {
    let server = common::start().await;
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("stays", "v").await.unwrap();
    let base = c.digest().await.unwrap();
    // Written without a TTL first, so it surely counts before it expires
    // (a busy machine may take longer than any short TTL to ask).
    c.set("goes", "v").await.unwrap();
    assert_ne!(c.digest().await.unwrap(), base);
    assert!(c.expire("goes", Duration::from_millis(30)).await.unwrap());
    let addr = server.addr;
    wait_for("the short-lived key to drop out of DIGEST", || async move {
        Client::connect(addr).await.unwrap().digest().await.unwrap() == base
    })
    .await;
    drop(c);
    server.shutdown().await.unwrap();
}

async fn persistent_server(dir: &Path, shards: usize) -> ServerHandle {
    let dir = dir.to_owned();
    common::start_with(move |c| {
        c.persistence = true;
        c.data_dir = dir;
        c.fsync = FsyncPolicy::Always;
        c.shards = shards;
    })
    .await
}

#[tokio::test]
async fn restarts_keep_the_digest() {
    let dir = TempDir::new("digest-restart");
    let server = persistent_server(dir.path(), 16).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    for i in 0..40 {
        c.set(format!("k{i}"), format!("v{i}")).await.unwrap();
        c.incr_by(format!("n{}", i % 5), i).await.unwrap();
        c.rpush(format!("q{}", i % 3), [format!("a{i}")]).await.unwrap();
    }
    c.expire("k1", Duration::from_secs(3600)).await.unwrap();
    let report = c.snapshot(false).await.unwrap();
    assert!(report.starts_with("snapshot written"), "{report}");
    // After the snapshot, so recovery needs the WAL too.
    for i in 0..10 {
        c.lpush(format!("q{}", i % 3), [format!("b{i}")]).await.unwrap();
        c.incr(format!("n{}", i % 5)).await.unwrap();
    }
    c.del("k3").await.unwrap();
    c.expire("k7", Duration::from_secs(7200)).await.unwrap();
    let want = c.digest().await.unwrap();
    assert_ne!(want, EMPTY);

    // The image a crash would leave (snapshot + WAL), loaded with another shard count.
    let image = TempDir::new("digest-restart-image");
    copy_dir(dir.path(), image.path());
    drop(c);
    server.shutdown().await.unwrap();

    let recovered = persistent_server(image.path(), 4).await;
    let mut c = Client::connect(recovered.addr).await.unwrap();
    assert_eq!(c.digest().await.unwrap(), want, "snapshot + WAL recovery changed the digest");
    drop(c);
    recovered.shutdown().await.unwrap();

    // The graceful shutdown's own snapshot.
    let restarted = persistent_server(dir.path(), 64).await;
    let mut c = Client::connect(restarted.addr).await.unwrap();
    assert_eq!(c.digest().await.unwrap(), want, "a restart changed the digest");
    drop(c);
    restarted.shutdown().await.unwrap();
}
