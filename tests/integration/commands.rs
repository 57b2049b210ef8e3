//! Every command through the Rust client against an in-process server:
//! success paths, every error status a command can return, TTL expiry
//! (lazy and by the active sweep), SCAN, INFO and the log index.

use crate::common;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Debug;
use std::time::Duration;

use burrow_client::{Client, ClientError, SetOptions, Ttl};
use burrow_proto::{End, Reply, Request, SetCondition, Status};
use bytes::Bytes;
use common::{cmd_stats, info_u64, wait_for};

async fn connect(server: &burrow_server::ServerHandle) -> Client {
    Client::connect(server.addr).await.expect("connect")
}

/// The error status of a failed call (panics if the call succeeded).
fn status<T: Debug>(r: Result<T, ClientError>) -> Status {
    match r {
        Err(ClientError::Server { status, .. }) => status,
        other => panic!("expected an error status, got {other:?}"),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn strs(v: &[Bytes]) -> Vec<&str> {
    v.iter().map(|b| std::str::from_utf8(b).unwrap()).collect()
}

async fn last_log_index(c: &mut Client) -> u64 {
    info_u64(&c.info("keyspace").await.unwrap(), "last_log_index")
}

#[tokio::test]
async fn ping_with_and_without_payload() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert_eq!(c.ping("").await.unwrap(), "PONG");
    assert_eq!(c.ping("hello").await.unwrap(), "hello");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn get_set_and_conditions() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert_eq!(c.get("k").await.unwrap(), None);
    c.set("k", "v1").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b("v1")));
    c.set("k", "v2").await.unwrap();
    assert_eq!(c.get("k").await.unwrap(), Some(b("v2")), "SET overwrites");
    // Empty values are values, not nil.
    c.set("empty", "").await.unwrap();
    assert_eq!(c.get("empty").await.unwrap(), Some(Bytes::new()));
    // Binary-safe keys and values.
    c.set(vec![0u8, 255, 10], vec![0u8; 3]).await.unwrap();
    assert_eq!(c.get(vec![0u8, 255, 10]).await.unwrap(), Some(Bytes::from(vec![0u8; 3])));

    let nx = SetOptions { condition: SetCondition::IfAbsent, ..Default::default() };
    let xx = SetOptions { condition: SetCondition::IfPresent, ..Default::default() };
    assert!(!c.set_with("k", "nx", nx).await.unwrap(), "NX on an existing key does nothing");
    assert_eq!(c.get("k").await.unwrap(), Some(b("v2")));
    assert!(c.set_with("fresh", "nx", nx).await.unwrap(), "NX on a missing key writes");
    assert_eq!(c.get("fresh").await.unwrap(), Some(b("nx")));
    assert!(!c.set_with("missing", "xx", xx).await.unwrap(), "XX on a missing key does nothing");
    assert!(!c.exists("missing").await.unwrap());
    assert!(c.set_with("k", "xx", xx).await.unwrap(), "XX on an existing key writes");
    assert_eq!(c.get("k").await.unwrap(), Some(b("xx")));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn set_ttl_keepttl_and_plain_set_clears_the_ttl() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    let long = SetOptions { ttl: Some(Duration::from_secs(100)), ..Default::default() };
    c.set_with("k", "v", long).await.unwrap();
    let Ttl::Expires(left) = c.ttl("k").await.unwrap() else { panic!("TTL set") };
    assert!(left > Duration::from_secs(90) && left <= Duration::from_secs(100), "{left:?}");

    let keep = SetOptions { keep_ttl: true, ..Default::default() };
    assert!(c.set_with("k", "v2", keep).await.unwrap());
    assert!(matches!(c.ttl("k").await.unwrap(), Ttl::Expires(_)), "KEEPTTL keeps the TTL");
    assert_eq!(c.get("k").await.unwrap(), Some(b("v2")));

    c.set("k", "v3").await.unwrap();
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Persistent, "a plain SET clears the TTL");
    // KEEPTTL on a key without one leaves it persistent.
    assert!(c.set_with("k", "v4", keep).await.unwrap());
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Persistent);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_through_the_client_are_bad_request() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    let empty_push = Request::Push { key: b("q"), end: End::Left, values: vec![] };
    match c.request(&empty_push).await.unwrap() {
        Reply::Error { status, message } => {
            assert_eq!(status, Status::BadRequest);
            assert!(message.contains("needs at least one value"), "{message}");
        }
        other => panic!("expected BAD_REQUEST, got {other:?}"),
    }
    assert!(!c.exists("q").await.unwrap(), "a rejected push creates nothing");
    // The connection stays usable after an error reply.
    assert_eq!(c.ping("").await.unwrap(), "PONG");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn del_exists_type() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert!(!c.del("k").await.unwrap(), "DEL of a missing key reports 0");
    assert!(!c.exists("k").await.unwrap());
    assert_eq!(c.type_of("k").await.unwrap(), "none");
    c.set("k", "v").await.unwrap();
    assert!(c.exists("k").await.unwrap());
    assert_eq!(c.type_of("k").await.unwrap(), "string");
    c.incr("n").await.unwrap();
    assert_eq!(c.type_of("n").await.unwrap(), "string", "counters are strings to the user");
    c.rpush("q", ["a"]).await.unwrap();
    assert_eq!(c.type_of("q").await.unwrap(), "list");
    assert!(c.del("k").await.unwrap());
    assert!(!c.exists("k").await.unwrap());
    assert_eq!(c.get("k").await.unwrap(), None);
    assert!(c.del("q").await.unwrap(), "DEL removes lists too");
    assert_eq!(c.type_of("q").await.unwrap(), "none");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn expire_persist_ttl() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Missing, "-2 for a missing key");
    assert!(!c.expire("k", Duration::from_secs(10)).await.unwrap(), "EXPIRE on a missing key is 0");
    assert!(!c.persist("k").await.unwrap());

    c.set("k", "v").await.unwrap();
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Persistent, "-1 without a TTL");
    assert!(!c.persist("k").await.unwrap(), "PERSIST without a TTL is 0");
    assert!(c.expire("k", Duration::from_secs(50)).await.unwrap());
    let Ttl::Expires(left) = c.ttl("k").await.unwrap() else { panic!("TTL set") };
    assert!(left > Duration::from_secs(40) && left <= Duration::from_secs(50), "{left:?}");
    assert!(c.persist("k").await.unwrap());
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Persistent);
    assert_eq!(c.get("k").await.unwrap(), Some(b("v")), "PERSIST keeps the value");

    // EXPIRE 0 and negative delete the key at once, as in Redis.
    assert!(c.expire("k", Duration::ZERO).await.unwrap());
    assert!(!c.exists("k").await.unwrap());
    c.set("k", "v").await.unwrap();
    let reply = c.request(&Request::Expire { key: b("k"), ttl_ms: -5 }).await.unwrap();
    assert_eq!(reply, Reply::Int(1));
    assert!(!c.exists("k").await.unwrap());
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Missing);
    // EXPIRE applies to lists as well.
    c.rpush("q", ["a"]).await.unwrap();
    assert!(c.expire("q", Duration::from_secs(30)).await.unwrap());
    assert!(matches!(c.ttl("q").await.unwrap(), Ttl::Expires(_)));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn counters_and_their_errors() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert_eq!(c.incr("n").await.unwrap(), 1, "a missing key counts as 0");
    assert_eq!(c.incr("n").await.unwrap(), 2);
    assert_eq!(c.decr("n").await.unwrap(), 1);
    assert_eq!(c.incr_by("n", 41).await.unwrap(), 42);
    assert_eq!(c.incr_by("n", -50).await.unwrap(), -8);
    assert_eq!(c.decr("fresh").await.unwrap(), -1);
    assert_eq!(c.get("n").await.unwrap(), Some(b("-8")), "GET of a counter is its decimal string");

    // A string holding a decimal integer is a counter.
    c.set("s", "10").await.unwrap();
    assert_eq!(c.incr("s").await.unwrap(), 11);
    assert_eq!(c.get("s").await.unwrap(), Some(b("11")));

    // Not an integer: the value is left alone.
    c.set("word", "abc").await.unwrap();
    for r in [c.incr("word").await, c.decr("word").await, c.incr_by("word", 5).await] {
        assert_eq!(status(r), Status::NotInteger);
    }
    assert_eq!(c.get("word").await.unwrap(), Some(b("abc")));
    c.set("big", "99999999999999999999").await.unwrap();
    assert_eq!(status(c.incr("big").await), Status::NotInteger, "out of i64 range");

    // Overflow in both directions: the value is unchanged afterwards.
    assert_eq!(c.incr_by("max", i64::MAX).await.unwrap(), i64::MAX);
    let err = c.incr("max").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::Overflow), "{err}");
    assert!(err.to_string().contains("overflow"), "{err}");
    assert_eq!(status(c.incr_by("max", 1).await), Status::Overflow);
    assert_eq!(c.get("max").await.unwrap(), Some(b(&i64::MAX.to_string())));
    assert_eq!(c.incr_by("min", i64::MIN).await.unwrap(), i64::MIN);
    assert_eq!(status(c.decr("min").await), Status::Overflow);
    assert_eq!(c.get("min").await.unwrap(), Some(b(&i64::MIN.to_string())));
    // The connection is still in step after all those errors.
    assert_eq!(c.incr("n").await.unwrap(), -7);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn deques_push_pop_len_range() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert_eq!(c.lpush("l", ["a", "b", "c"]).await.unwrap(), 3);
    assert_eq!(strs(&c.lrange("l", 0, -1).await.unwrap()), ["c", "b", "a"], "LPUSH a b c leaves c first");
    assert_eq!(c.rpush("l", ["d", "e"]).await.unwrap(), 5);
    assert_eq!(strs(&c.lrange("l", 0, -1).await.unwrap()), ["c", "b", "a", "d", "e"]);
    assert_eq!(c.llen("l").await.unwrap(), 5);

    // Inclusive bounds; negative indexes count from the end; out of range clamps.
    assert_eq!(strs(&c.lrange("l", 1, 2).await.unwrap()), ["b", "a"]);
    assert_eq!(strs(&c.lrange("l", -2, -1).await.unwrap()), ["d", "e"]);
    assert_eq!(strs(&c.lrange("l", -100, 100).await.unwrap()), ["c", "b", "a", "d", "e"]);
    assert!(c.lrange("l", 3, 1).await.unwrap().is_empty());
    assert!(c.lrange("l", 5, 10).await.unwrap().is_empty());
    assert!(c.lrange("missing", 0, -1).await.unwrap().is_empty());
    assert_eq!(c.llen("missing").await.unwrap(), 0);

    assert_eq!(c.lpop("l").await.unwrap(), Some(b("c")));
    assert_eq!(c.rpop("l").await.unwrap(), Some(b("e")));
    assert_eq!(strs(&c.lpop_count("l", 2).await.unwrap()), ["b", "a"]);
    assert_eq!(strs(&c.rpop_count("l", 10).await.unwrap()), ["d"], "count is clamped to the length");

    // The emptied deque disappears.
    assert!(!c.exists("l").await.unwrap());
    assert_eq!(c.type_of("l").await.unwrap(), "none");
    assert_eq!(c.llen("l").await.unwrap(), 0);
    assert_eq!(c.lpop("l").await.unwrap(), None);
    assert_eq!(c.rpop("l").await.unwrap(), None);
    assert!(c.lpop_count("l", 3).await.unwrap().is_empty());

    // Pop with count from the tail returns values in pop order.
    c.rpush("r", ["1", "2", "3", "4"]).await.unwrap();
    assert_eq!(strs(&c.rpop_count("r", 3).await.unwrap()), ["4", "3", "2"]);
    assert_eq!(c.llen("r").await.unwrap(), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrongtype_in_both_directions_changes_nothing() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    c.set("s", "text").await.unwrap();
    c.incr("n").await.unwrap();
    c.rpush("l", ["x"]).await.unwrap();

    // List commands on strings and counters.
    for key in ["s", "n"] {
        assert_eq!(status(c.lpush(key, ["a"]).await), Status::WrongType, "LPUSH {key}");
        assert_eq!(status(c.rpush(key, ["a"]).await), Status::WrongType, "RPUSH {key}");
        assert_eq!(status(c.lpop(key).await), Status::WrongType, "LPOP {key}");
        assert_eq!(status(c.rpop_count(key, 2).await), Status::WrongType, "RPOP {key}");
        assert_eq!(status(c.llen(key).await), Status::WrongType, "LLEN {key}");
        assert_eq!(status(c.lrange(key, 0, -1).await), Status::WrongType, "LRANGE {key}");
    }
    // String commands on a list.
    let err = c.get("l").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::WrongType));
    assert!(err.to_string().contains("WRONGTYPE"), "{err}");
    assert_eq!(status(c.incr("l").await), Status::WrongType);
    assert_eq!(status(c.decr("l").await), Status::WrongType);
    assert_eq!(status(c.incr_by("l", 3).await), Status::WrongType);

    assert_eq!(c.get("s").await.unwrap(), Some(b("text")));
    assert_eq!(c.get("n").await.unwrap(), Some(b("1")));
    assert_eq!(strs(&c.lrange("l", 0, -1).await.unwrap()), ["x"]);
    // SET replaces a value of any type.
    c.set("l", "now a string").await.unwrap();
    assert_eq!(c.type_of("l").await.unwrap(), "string");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn dbsize_and_flushall() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert_eq!(c.dbsize().await.unwrap(), 0);
    for i in 0..25 {
        c.set(format!("k{i}"), "v").await.unwrap();
    }
    c.rpush("list", ["a"]).await.unwrap();
    c.incr("counter").await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 27);
    c.set("k0", "again").await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 27, "overwrites do not add keys");
    c.flushall().await.unwrap();
    assert_eq!(c.dbsize().await.unwrap(), 0);
    assert_eq!(c.get("k1").await.unwrap(), None);
    assert!(!c.exists("list").await.unwrap());
    c.flushall().await.unwrap();
    server.shutdown().await.unwrap();
}

/// Walks a full SCAN and returns every key it produced (with repeats).
async fn scan_all(c: &mut Client, count: u32, pattern: &str) -> Vec<String> {
    let mut cursor = 0;
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let (next, batch) = c.scan(cursor, count, pattern.to_string()).await.unwrap();
        keys.extend(batch.iter().map(|k| String::from_utf8(k.to_vec()).unwrap()));
        calls += 1;
        assert!(calls < 10_000, "SCAN does not terminate");
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

#[tokio::test]
async fn scan_returns_every_key_exactly_once_and_filters_by_pattern() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    assert!(scan_all(&mut c, 5, "").await.is_empty(), "empty store");
    let mut all = BTreeSet::new();
    for i in 0..150 {
        let k = format!("user:{i}");
        c.set(k.clone(), "v").await.unwrap();
        all.insert(k);
    }
    for i in 0..20 {
        let k = format!("job:{i}");
        c.rpush(k.clone(), ["x"]).await.unwrap();
        all.insert(k);
    }

    let keys = scan_all(&mut c, 3, "").await;
    let unique: BTreeSet<String> = keys.iter().cloned().collect();
    assert_eq!(unique.len(), keys.len(), "no key repeated without concurrent writes");
    assert_eq!(unique, all, "every key returned");
    assert_eq!(scan_all(&mut c, 0, "*").await.len(), 170, "COUNT 0 uses the default and still finishes");

    type Want = dyn Fn(&str) -> bool;
    let cases: &[(&str, &Want)] = &[
        ("job:*", &|k| k.starts_with("job:")),
        ("user:1?", &|k| k.starts_with("user:1") && k.len() == "user:1".len() + 1),
        ("user:[12]5", &|k| k == "user:15" || k == "user:25"),
        ("*:7", &|k| k.ends_with(":7")),
        ("nothing*", &|_| false),
    ];
    for (i, (pattern, want)) in cases.iter().enumerate() {
        let got: Vec<String> = scan_all(&mut c, 4, pattern).await;
        let expected: BTreeSet<String> = all.iter().filter(|k| want(k)).cloned().collect();
        let unique: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(unique.len(), got.len(), "case {i}: MATCH {pattern}: no repeats");
        assert_eq!(unique, expected, "case {i}: MATCH {pattern}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn info_sections() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    let all = c.info("").await.unwrap();
    for section in ["server", "clients", "memory", "keyspace", "oplog", "stats"] {
        assert!(all.contains(&format!("# {section}\n")), "INFO lists {section}:\n{all}");
    }
    assert_eq!(info_u64(&all, "tcp_port"), server.addr.port() as u64);
    assert!(info_u64(&all, "connected_clients") >= 1);

    let ks = c.info("keyspace").await.unwrap();
    assert!(ks.starts_with("# keyspace\n"), "{ks}");
    assert_eq!(ks.matches("# ").count(), 1, "only the requested section:\n{ks}");
    assert_eq!(info_u64(&ks, "keys"), 0);
    c.set("a", "1").await.unwrap();
    assert_eq!(info_u64(&c.info("KEYSPACE").await.unwrap(), "keys"), 1, "section names ignore case");

    let err = c.info("bogus").await.unwrap_err();
    assert_eq!(err.status(), Some(Status::BadRequest));
    assert!(err.to_string().contains("unknown INFO section 'bogus'"), "{err}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn info_stats_counts_calls_and_errors_per_command() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    c.set("word", "abc").await.unwrap();
    for _ in 0..3 {
        c.get("word").await.unwrap();
    }
    c.incr("n").await.unwrap();
    assert!(c.incr("word").await.is_err());
    assert!(c.incr("word").await.is_err());
    let stats = c.info("stats").await.unwrap();
    assert_eq!(cmd_stats(&stats, "get"), Some((3, 0)), "{stats}");
    assert_eq!(cmd_stats(&stats, "set"), Some((1, 0)), "{stats}");
    assert_eq!(cmd_stats(&stats, "incr"), Some((3, 2)), "{stats}");
    assert_eq!(cmd_stats(&stats, "lpush"), None, "commands never called are not listed");
    assert!(info_u64(&stats, "total_commands_processed") >= 7);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn last_log_index_grows_with_writes_only() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    let start = last_log_index(&mut c).await;
    c.set("s", "abc").await.unwrap();
    c.rpush("l", ["a", "b"]).await.unwrap();
    let after_writes = last_log_index(&mut c).await;
    assert_eq!(after_writes, start + 2, "one record per write");

    // Reads, and writes that fail or change nothing, log nothing.
    c.get("s").await.unwrap();
    c.exists("s").await.unwrap();
    c.lrange("l", 0, -1).await.unwrap();
    c.dbsize().await.unwrap();
    c.ttl("s").await.unwrap();
    assert!(c.incr("s").await.is_err());
    assert!(c.lpush("s", ["x"]).await.is_err());
    assert!(!c.del("missing").await.unwrap());
    assert!(!c.expire("missing", Duration::from_secs(5)).await.unwrap());
    assert!(!c.persist("s").await.unwrap());
    let nx = SetOptions { condition: SetCondition::IfAbsent, ..Default::default() };
    assert!(!c.set_with("s", "no", nx).await.unwrap());
    assert!(c.lpop("missing").await.unwrap().is_none());
    assert_eq!(last_log_index(&mut c).await, after_writes);

    c.incr("n").await.unwrap();
    c.del("s").await.unwrap();
    assert_eq!(last_log_index(&mut c).await, after_writes + 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_key_with_a_short_ttl_expires_and_every_command_agrees() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    c.set("keep", "v").await.unwrap();
    let short = SetOptions { ttl: Some(Duration::from_millis(50)), ..Default::default() };
    c.set_with("k", "v", short).await.unwrap();
    c.rpush("q", ["a"]).await.unwrap();
    c.expire("q", Duration::from_millis(50)).await.unwrap();

    let c = std::sync::Arc::new(tokio::sync::Mutex::new(c));
    wait_for("GET k to return nil", || {
        let c = c.clone();
        async move { c.lock().await.get("k").await.unwrap().is_none() }
    })
    .await;
    wait_for("LLEN q to return 0", || {
        let c = c.clone();
        async move { c.lock().await.llen("q").await.unwrap() == 0 }
    })
    .await;
    let mut c = c.lock().await;
    assert!(!c.exists("k").await.unwrap());
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Missing);
    assert_eq!(c.type_of("q").await.unwrap(), "none");
    assert_eq!(c.dbsize().await.unwrap(), 1, "only the persistent key is left");
    assert_eq!(c.get("keep").await.unwrap(), Some(b("v")));
    // An expired key can be written again from scratch.
    assert_eq!(c.incr("k").await.unwrap(), 1);
    assert_eq!(c.ttl("k").await.unwrap(), Ttl::Persistent);
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_active_sweep_reclaims_expired_keys_nobody_reads() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    const N: usize = 300;
    let reqs: Vec<Request> = (0..N)
        .map(|i| Request::Set {
            key: b(&format!("tmp:{i}")),
            value: b("v"),
            ttl_ms: Some(50),
            condition: SetCondition::Always,
            keep_ttl: false,
        })
        .collect();
    assert!(c.pipeline(&reqs).await.unwrap().iter().all(|r| *r == Reply::Ok));
    c.set("stays", "v").await.unwrap();
    // Keys still held plus keys reclaimed: the sweep may already be at
    // work (50 ms is short on a busy machine), but nothing else removes any.
    let ks = c.info("keyspace").await.unwrap();
    assert_eq!(info_u64(&ks, "keys") + info_u64(&ks, "expired_keys"), N as u64 + 1, "{ks}");

    // Only INFO from now on: it never touches keys, so only the sweep can remove them.
    let c = std::sync::Arc::new(tokio::sync::Mutex::new(c));
    wait_for("the sweep to remove every expired key", || {
        let c = c.clone();
        async move { info_u64(&c.lock().await.info("keyspace").await.unwrap(), "keys") == 1 }
    })
    .await;
    let mut c = c.lock().await;
    let ks = c.info("keyspace").await.unwrap();
    assert_eq!(info_u64(&ks, "expires"), 0, "{ks}");
    assert!(info_u64(&ks, "expired_keys") >= N as u64, "{ks}");
    assert_eq!(c.dbsize().await.unwrap(), 1);
    drop(c);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn pipelined_requests_through_the_client_are_answered_in_order() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    let mut reqs = Vec::new();
    for i in 0..500 {
        reqs.push(Request::IncrBy { key: b("sum"), delta: i });
        reqs.push(Request::Get { key: b("sum") });
    }
    let replies = c.pipeline(&reqs).await.unwrap();
    let mut sum = 0i64;
    let mut seen = HashSet::new();
    for (i, pair) in replies.chunks(2).enumerate() {
        sum += i as i64;
        assert_eq!(pair[0], Reply::Int(sum), "INCRBY {i}");
        assert_eq!(pair[1], Reply::Bytes(b(&sum.to_string())), "GET after INCRBY {i}");
        assert!(seen.insert(sum));
    }
    server.shutdown().await.unwrap();
}

/// The server stops reading while its replies go unread (protocol.md
/// §6.1): a pipeline whose requests and replies are both far larger than
/// the socket buffers completes only because the client reads while it
/// writes.
#[tokio::test]
async fn a_pipeline_larger_than_the_socket_buffers_both_ways_completes() {
    let server = common::start().await;
    let mut c = connect(&server).await;
    const PAIRS: usize = 24;
    let value = Bytes::from(vec![b'x'; 1 << 20]);
    let mut reqs = Vec::new();
    for i in 0..PAIRS {
        let key = b(&format!("big:{i}"));
        reqs.push(Request::Set {
            key: key.clone(),
            value: value.clone(),
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        });
        reqs.push(Request::Get { key });
    }
    let replies = c.pipeline(&reqs).await.unwrap();
    assert_eq!(replies.len(), 2 * PAIRS);
    for pair in replies.chunks(2) {
        assert_eq!(pair[0], Reply::Ok);
        assert_eq!(pair[1], Reply::Bytes(value.clone()));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn redis_edge_cases_pop_zero_and_non_canonical_counters() {
    let server = common::start().await;
    let mut c = Client::connect(server.addr).await.unwrap();
    c.rpush("q", ["a"]).await.unwrap();
    // LPOP key 0: an empty array for a list, nil for a missing key.
    assert_eq!(c.lpop_count("q", 0).await.unwrap(), Vec::<Bytes>::new());
    assert_eq!(c.llen("q").await.unwrap(), 1, "popping zero items changes nothing");
    let pop_missing = Request::Pop { key: "missing".into(), end: End::Left, count: Some(0) };
    assert_eq!(c.request(&pop_missing).await.unwrap(), Reply::Nil);
    c.set("s", "x").await.unwrap();
    assert_eq!(c.lpop_count("s", 0).await.unwrap_err().status(), Some(Status::WrongType));
    // Only the canonical decimal form is a counter, so GET's digits never change shape.
    for bad in ["007", "-0", "+1", " 1"] {
        c.set("n", bad).await.unwrap();
        let err = c.incr("n").await.unwrap_err();
        assert_eq!(err.status(), Some(Status::NotInteger), "{bad:?}");
        assert_eq!(c.get("n").await.unwrap().as_deref(), Some(bad.as_bytes()), "unchanged");
    }
    c.set("n", "-7").await.unwrap();
    assert_eq!(c.incr("n").await.unwrap(), -6);
}
