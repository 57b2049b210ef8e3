//! `--maxmemory` over TCP, one test per policy (protocol.md §5.3, README
//! "Memory limits"): each fills an in-process server past a 2 MiB limit and
//! checks what a user sees — OOM or evictions, which keys survive, INFO.
//! (Evictions reaching a follower: `replication_inproc`.)

use crate::common;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use burrow_client::Client;
use burrow_proto::{Reply, Request, SetCondition, Status};
use burrow_server::EvictionPolicy;
use common::{info_field, info_u64, wait_for};

const LIMIT: usize = 2 << 20;

async fn server(policy: EvictionPolicy) -> burrow_server::ServerHandle {
    common::start_with(|c| {
        c.maxmemory = LIMIT;
        c.maxmemory_policy = policy;
    })
    .await
}

fn set(key: String, ttl_ms: Option<u64>) -> Request {
    Request::Set {
        key: key.into(),
        value: Bytes::from(vec![b'v'; 1000]),
        ttl_ms,
        condition: SetCondition::Always,
        keep_ttl: false,
    }
}

/// Sends `reqs` pipelined; the keys taken, and how many got OOM (any other
/// reply fails the test).
async fn write(c: &mut Client, reqs: Vec<Request>) -> (Vec<Bytes>, usize) {
    let mut taken = Vec::new();
    let mut oom = 0;
    for batch in reqs.chunks(200) {
        for (req, reply) in batch.iter().zip(c.pipeline(batch).await.unwrap()) {
            match reply {
                Reply::Ok => taken.push(key_of(req)),
                Reply::Error { status: Status::Oom, .. } => oom += 1,
                other => panic!("{req:?}: {other:?}"),
            }
        }
    }
    (taken, oom)
}

fn key_of(req: &Request) -> Bytes {
    match req {
        Request::Set { key, .. } => key.clone(),
        other => unreachable!("only SETs are written here: {other:?}"),
    }
}

async fn memory(c: &mut Client) -> String {
    c.info("memory").await.unwrap()
}

async fn existing(c: &mut Client, keys: &[Bytes]) -> Vec<Bytes> {
    let mut out = Vec::new();
    for k in keys {
        if c.exists(k.clone()).await.unwrap() {
            out.push(k.clone());
        }
    }
    out
}

#[tokio::test]
async fn noeviction_refuses_writes_with_oom_while_reads_and_deletes_work() {
    let server = server(EvictionPolicy::NoEviction).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let (taken, oom) = write(&mut c, (0..3000).map(|i| set(format!("k{i}"), None)).collect()).await;
    assert!((1500..2100).contains(&taken.len()) && oom == 3000 - taken.len(), "{} taken", taken.len());
    // Then small values, until not even those fit.
    let small = |i| Request::Set {
        key: format!("s{i}").into(),
        value: "v".into(),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    };
    let (small_taken, small_oom) = write(&mut c, (0..1000).map(small).collect()).await;
    assert!(small_oom > 0 && small_taken.len() < 100, "{} small values taken", small_taken.len());
    let (taken, oom) = ([taken, small_taken].concat(), oom + small_oom);
    let info = memory(&mut c).await;
    assert!(info_u64(&info, "used_memory") as usize <= LIMIT, "{info}");
    assert_eq!(info_u64(&info, "maxmemory") as usize, LIMIT);
    assert_eq!(info_field(&info, "maxmemory_policy"), "noeviction");
    assert_eq!((info_u64(&info, "oom_refusals"), info_u64(&info, "evicted_keys")), (oom as u64, 0));
    assert!(info_u64(&info, "used_memory_rss") > 0, "{info}");
    // Refused: growing writes. Served: reads, DEL, EXPIRE.
    let err = c.incr("counter").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::Oom), "{err:?}");
    assert!(err.to_string().contains("would pass maxmemory 2097152 (policy noeviction)"), "{err}");
    assert_eq!(c.rpush("list", vec!["a"]).await.unwrap_err().status(), Some(Status::Oom));
    assert_eq!(c.get(taken[0].clone()).await.unwrap().map(|v| v.len()), Some(1000));
    assert!(c.expire(taken[1].clone(), Duration::from_secs(3600)).await.unwrap());
    for k in &taken[..10] {
        assert!(c.del(k.clone()).await.unwrap());
    }
    // Room again.
    c.set("k-after", "v").await.unwrap();
    assert_eq!(c.dbsize().await.unwrap() as usize, taken.len() - 10 + 1);
    assert_eq!(info_u64(&memory(&mut c).await, "oom_refusals"), oom as u64 + 2);
    drop(c);
    server.shutdown().await.unwrap();
}

/// Whole seconds of the wall clock, the eviction clock's unit.
fn second() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// 1800 keys written (of the ~2000 that fit), then (a second later on the
/// access clock) 150 of them read; 800 more keys evict ~600, nearly all
/// from the 1650 not read.
#[tokio::test]
async fn allkeys_lru_keeps_recently_read_keys_and_evicts_old_ones() {
    let server = server(EvictionPolicy::AllkeysLru).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let (old, oom) = write(&mut c, (0..1800).map(|i| set(format!("old{i}"), None)).collect()).await;
    assert_eq!((old.len(), oom), (1800, 0), "1800 keys fit under 2 MiB");
    let written = second();
    wait_for("the access clock's next second", || async move { second() > written }).await;
    for k in &old[..150] {
        assert!(c.get(k.clone()).await.unwrap().is_some());
    }
    let (new, oom) = write(&mut c, (0..800).map(|i| set(format!("new{i}"), None)).collect()).await;
    assert_eq!((new.len(), oom), (800, 0), "an eviction policy makes room");
    let info = memory(&mut c).await;
    let evicted = info_u64(&info, "evicted_keys");
    assert!(evicted >= 400 && info_u64(&info, "used_memory") as usize <= LIMIT, "{info}");
    let hot = existing(&mut c, &old[..150]).await.len();
    let cold = existing(&mut c, &old[150..]).await.len();
    // Sampling 5 keys, a read key goes only when none of the 5 was cold.
    assert!(hot >= 140, "{hot} of 150 recently read keys kept ({cold} of 1650 others, {evicted} evicted)");
    // Expected ~98 % (the last evictions still find ~54 % unread keys: 0.46^5 ≈ 2 % miss them all).
    let unread_evicted = 1650 - cold;
    assert!(
        unread_evicted * 100 >= evicted as usize * 95,
        "{unread_evicted} of {evicted} evictions were unread keys"
    );
    drop(c);
    server.shutdown().await.unwrap();
}

/// 800 keys without a TTL and 800 with TTLs an hour off, one second apart
/// (~1600 of the ~2000 that fit), then 800 more without;
/// more writes evict only keys with a TTL (`volatile-ttl`: the sooner
/// first, roughly), and once those are gone writes get OOM.
#[tokio::test]
async fn volatile_policies_evict_only_keys_with_a_ttl_then_refuse() {
    for policy in [EvictionPolicy::VolatileLru, EvictionPolicy::VolatileTtl] {
        let server = server(policy).await;
        let mut c = Client::connect(server.addr).await.unwrap();
        let ttl = |i: u64| Some(3_600_000 + i * 1000);
        let reqs = (0..800).flat_map(|i| [set(format!("p{i}"), None), set(format!("t{i:03}"), ttl(i))]);
        let (first, oom) = write(&mut c, reqs.collect()).await;
        assert_eq!((first.len(), oom), (1600, 0));
        let (more, oom) = write(&mut c, (0..800).map(|i| set(format!("q{i}"), None)).collect()).await;
        assert_eq!((more.len(), oom), (800, 0), "{policy:?}");
        let persistent: Vec<Bytes> = first.iter().filter(|k| k[0] == b'p').chain(&more).cloned().collect();
        let volatile: Vec<Bytes> = first.iter().filter(|k| k[0] == b't').cloned().collect();
        assert_eq!(
            existing(&mut c, &persistent).await.len(),
            1600,
            "{policy:?}: a key without a TTL evicted"
        );
        let kept: HashSet<Bytes> = existing(&mut c, &volatile).await.into_iter().collect();
        let gone: Vec<usize> = (0..800).filter(|i| !kept.contains(&volatile[*i])).collect();
        assert!(gone.len() >= 300, "{policy:?}: {} evicted", gone.len());
        if policy == EvictionPolicy::VolatileTtl {
            let mean = gone.iter().sum::<usize>() / gone.len();
            assert!(mean < 330, "{policy:?}: evicted keys' mean rank {mean} of 800 (soonest = 0)");
        }
        // Past what the TTL keys hold: OOM, and still no persistent key goes.
        let (last, oom) = write(&mut c, (0..1000).map(|i| set(format!("r{i}"), None)).collect()).await;
        assert!(oom > 0 && last.len() < 1000, "{policy:?}");
        let info = c.info("keyspace").await.unwrap();
        assert_eq!(info_u64(&info, "expires"), 0, "{policy:?}: {info}");
        let all: Vec<Bytes> = persistent.into_iter().chain(last).collect();
        assert_eq!(existing(&mut c, &all).await.len(), all.len(), "{policy:?}");
        drop(c);
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn allkeys_random_stays_under_the_limit_and_counts_its_evictions() {
    let server = server(EvictionPolicy::AllkeysRandom).await;
    let mut c = Client::connect(server.addr).await.unwrap();
    let (taken, oom) = write(&mut c, (0..5000).map(|i| set(format!("k{i}"), None)).collect()).await;
    assert_eq!((taken.len(), oom), (5000, 0));
    let info = memory(&mut c).await;
    let keys = c.dbsize().await.unwrap() as u64;
    assert!(info_u64(&info, "used_memory") as usize <= LIMIT, "{info}");
    assert_eq!(info_u64(&info, "evicted_keys"), 5000 - keys, "{info}");
    assert!(keys > 1500, "{keys} keys left in 2 MiB");
    assert_eq!(info_field(&info, "maxmemory_policy"), "allkeys-random");
    drop(c);
    server.shutdown().await.unwrap();
}
