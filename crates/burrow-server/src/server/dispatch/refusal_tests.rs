//! A refused command changes nothing (protocol.md §4.2/§4.3, issue 11):
//! whatever error status a request gets, the data set (DIGEST) and the op
//! log (its last index) are as they were before it ran.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::execute;
use crate::server::{Config, Server, Shared};
use burrow_proto::{End, Frame, Request, SetCondition, Status};

/// A small reply limit, so an oversized pop needs kilobytes, not 512 MiB.
const MAX_REPLY: usize = 1024;

fn shared() -> Shared {
    limited(0)
}

/// As `shared`, with `--maxmemory maxmemory` (noeviction; 0: no limit).
fn limited(maxmemory: usize) -> Shared {
    let config =
        Config { persistence: false, shards: 4, max_reply_bytes: MAX_REPLY, maxmemory, ..Config::default() };
    Server::open(config).expect("in memory").into_shared(0).expect("no persistence to open")
}

/// What a refused command must leave as it was.
fn state(s: &Shared, now: u64) -> (u64, u64) {
    (s.store.digest(now), s.store.log().last_index())
}

/// Runs `frame`; returns its reply's status byte.
fn run_frame(s: &Shared, frame: &Frame, now: u64) -> (u8, bool) {
    let mut out = BytesMut::new();
    let done = execute(s, &frame.as_ref(), now, &mut out);
    (out[3], done.error)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Issue 11's repro, scaled down: an LPOP/RPOP whose ARRAY reply would pass
/// the reply limit is BAD_REQUEST — and pops nothing, logs nothing.
#[test]
fn an_oversized_pop_is_refused_before_it_takes_anything() {
    let s = shared();
    let item = Bytes::from(vec![b'x'; 100]);
    let push = Request::Push { key: b("huge"), end: End::Right, values: vec![item; 33] };
    assert_eq!(run_frame(&s, &push.to_frame(1), 0), (Status::Ok as u8, false));
    for end in [End::Left, End::Right] {
        let before = state(&s, 0);
        let pop = Request::Pop { key: b("huge"), end, count: Some(33) };
        let mut out = BytesMut::new();
        let done = execute(&s, &pop.to_frame(2).as_ref(), 0, &mut out);
        assert!(done.error && out[3] == Status::BadRequest as u8, "{end:?}: {out:?}");
        let text = String::from_utf8_lossy(&out[16..]);
        assert!(text.contains("reply would be 3436 bytes, over the 1024-byte reply limit"), "{text}");
        assert_eq!(state(&s, 0), before, "{end:?} changed the data set or the log");
        assert_eq!(llen(&s, "huge"), 33);
    }
    // As many as fit are popped: 9 items of 100 bytes are a 940-byte body.
    let pop = Request::Pop { key: b("huge"), end: End::Left, count: Some(9) };
    assert_eq!(run_frame(&s, &pop.to_frame(3), 0), (Status::Ok as u8, false));
    assert_eq!(llen(&s, "huge"), 24);
}

fn llen(s: &Shared, key: &str) -> i64 {
    let mut out = BytesMut::new();
    execute(s, &Request::LLen { key: b(key) }.to_frame(4).as_ref(), 0, &mut out);
    i64::from_be_bytes(out[16..24].try_into().expect("an INT reply"))
}

/// Each kind of refusal the property test below draws at random, once for
/// certain: its status, and nothing changed.
#[test]
fn every_kind_of_refusal_changes_nothing() {
    let s = shared();
    let set = |k: &str, v: &str| Request::Set {
        key: b(k),
        value: b(v),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    };
    let big = Bytes::from(vec![b'x'; 600]);
    for req in [
        set("s", "x"),
        set("n", "9223372036854775807"),
        Request::Push { key: b("l"), end: End::Left, values: vec![big.clone(), big] },
    ] {
        assert_eq!(run_frame(&s, &req.to_frame(1), 0), (Status::Ok as u8, false));
    }
    let bad_set = {
        let mut f = set("s", "y").to_frame(1);
        f.flags = 0x03; // NX and XX
        f
    };
    let empty_push = {
        let mut f = Request::Push { key: b("l"), end: End::Right, values: vec![b("z")] }.to_frame(1);
        f.value = Bytes::new();
        f
    };
    let cases = [
        (Request::Incr { key: b("l") }.to_frame(1), Status::WrongType),
        (Request::Push { key: b("s"), end: End::Left, values: vec![b("z")] }.to_frame(1), Status::WrongType),
        (Request::Pop { key: b("s"), end: End::Left, count: Some(2) }.to_frame(1), Status::WrongType),
        (Request::Incr { key: b("s") }.to_frame(1), Status::NotInteger),
        (Request::IncrBy { key: b("n"), delta: 1 }.to_frame(1), Status::Overflow),
        (Request::Pop { key: b("l"), end: End::Right, count: Some(2) }.to_frame(1), Status::BadRequest),
        (Request::LRange { key: b("l"), start: 0, stop: -1 }.to_frame(1), Status::BadRequest),
        (Request::Info { section: b("nope") }.to_frame(1), Status::BadRequest),
        (Request::Snapshot { background: true }.to_frame(1), Status::BadRequest),
        (bad_set, Status::BadRequest),
        (empty_push, Status::BadRequest),
    ];
    for (frame, status) in cases {
        let before = state(&s, 0);
        assert_eq!(run_frame(&s, &frame, 0), (status as u8, true), "{frame:?}");
        assert_eq!(state(&s, 0), before, "{frame:?}");
    }
}

/// Past `--maxmemory` (noeviction) every write that can grow the data set
/// is OOM and changes nothing; reads and the writes that free memory
/// (DEL, pops, EXPIRE, PERSIST, FLUSHALL) still run, and once they freed
/// room writes are taken again.
#[test]
fn a_write_past_maxmemory_is_oom_and_changes_nothing_while_reads_and_deletes_work() {
    let s = limited(4096);
    let set = |k: &str, n: usize| Request::Set {
        key: b(k),
        value: Bytes::from(vec![b'v'; n]),
        ttl_ms: None,
        condition: SetCondition::Always,
        keep_ttl: false,
    };
    assert_eq!(
        run_frame(
            &s,
            &Request::Push { key: b("l"), end: End::Left, values: vec![b("a"), b("b")] }.to_frame(1),
            0
        ),
        (Status::Ok as u8, false)
    );
    let mut stored = 0;
    while run_frame(&s, &set(&format!("k{stored}"), 200).to_frame(1), 0) == (Status::Ok as u8, false) {
        stored += 1;
    }
    assert!((10..20).contains(&stored), "{stored} values of 200 bytes under 4 KiB");
    // Then small ones, until not even those fit.
    let mut small = 0;
    while run_frame(&s, &set(&format!("s{small}"), 1).to_frame(1), 0) == (Status::Ok as u8, false) {
        small += 1;
    }
    assert!(s.store.used_memory() <= 4096);
    let growing = [
        set("k0", 200),
        set("s0", 1),
        set("new", 1),
        Request::Incr { key: b("counter") },
        Request::IncrBy { key: b("counter"), delta: 2 },
        Request::Push { key: b("l"), end: End::Right, values: vec![Bytes::from(vec![b'x'; 300])] },
    ];
    for req in growing {
        let before = state(&s, 0);
        let mut out = BytesMut::new();
        let done = execute(&s, &req.to_frame(1).as_ref(), 0, &mut out);
        assert!(done.error && out[3] == Status::Oom as u8, "{req:?}: {out:?}");
        let text = String::from_utf8_lossy(&out[16..]);
        assert!(text.contains("would pass maxmemory 4096 (policy noeviction)"), "{text}");
        assert_eq!(state(&s, 0), before, "{req:?}");
    }
    let ok = |req: Request| {
        let (status, error) = run_frame(&s, &req.to_frame(1), 0);
        assert_eq!((status, error), (Status::Ok as u8, false), "{req:?}");
    };
    ok(Request::Get { key: b("k0") });
    ok(Request::Expire { key: b("k1"), ttl_ms: 100_000 });
    ok(Request::Persist { key: b("k1") });
    ok(Request::Pop { key: b("l"), end: End::Left, count: None });
    ok(Request::Del { key: b("k0") });
    ok(set("k0", 100));
    assert!(s.stats.oom_refusals.load(std::sync::atomic::Ordering::Relaxed) >= 6);
    ok(Request::FlushAll);
    ok(set("k0", 200));
}

/// A member that does not lead refuses every write (NOT_LEADER, or
/// NO_LEADER while it knows none) before it runs: nothing changes.
#[test]
fn a_member_that_does_not_lead_refuses_every_write_and_changes_nothing() {
    use crate::store::SetArgs;
    let s = member(3, 2, |_| {});
    for k in ["s", "n"] {
        let args = SetArgs {
            key: k.as_bytes(),
            value: b"1",
            expire_at: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        };
        s.store.set(args, 0);
    }
    s.store.push(b"l", End::Left, vec![b"a", b"b"], 0).expect("a new list");
    let writes = [
        Request::Set {
            key: b("s"),
            value: b("2"),
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        },
        Request::Del { key: b("s") },
        Request::Expire { key: b("s"), ttl_ms: 5 },
        Request::Persist { key: b("s") },
        Request::Incr { key: b("n") },
        Request::Decr { key: b("n") },
        Request::IncrBy { key: b("n"), delta: 3 },
        Request::Push { key: b("l"), end: End::Right, values: vec![b("c")] },
        Request::Pop { key: b("l"), end: End::Left, count: None },
        Request::Pop { key: b("l"), end: End::Right, count: Some(2) },
        Request::FlushAll,
        Request::Wait { replicas: 1, timeout_ms: 10 },
    ];
    for req in writes {
        let before = state(&s, 0);
        let (status, error) = run_frame(&s, &req.to_frame(1), 0);
        let refused = [Status::NotLeader as u8, Status::NoLeader as u8];
        assert!(error && refused.contains(&status), "{req:?}: status {status:#04x}");
        assert_eq!(state(&s, 0), before, "{req:?}");
    }
}

/// Member `me` of a cluster of `nodes` on unused addresses, led by node 1
/// (its roles' tasks not started: it does not lead and knows no leader).
pub(super) fn member(nodes: u64, me: u64, tweak: impl FnOnce(&mut Config)) -> Shared {
    use crate::server::cluster::{ClusterConfig, NodeInfo};
    let node = |id: u64| NodeInfo {
        id,
        addr: format!("127.0.0.1:{}", 7000 + id).parse().expect("addr"),
        data_dir: format!("unused-{id}").into(),
    };
    let cluster = ClusterConfig::new((1..=nodes).map(node).collect(), 1, me).expect("a valid cluster");
    // A member locks its data directory (its vote file lives there):
    // one per call, removed at once; the lock stays held.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("burrow-dispatch-member-{}-{n}", std::process::id()));
    let mut config = Config {
        persistence: false,
        shards: 4,
        cluster: Some(cluster),
        data_dir: dir.clone(),
        ..Config::default()
    };
    tweak(&mut config);
    let s = Server::open(config).expect("in memory").into_shared(0).expect("a member's vote file");
    let _ = std::fs::remove_dir_all(&dir);
    s
}

/// Keys drawn from a small set, so commands meet each other's values.
fn key() -> impl Strategy<Value = Bytes> {
    prop::sample::select(vec!["s", "n", "l", "m"]).prop_map(b)
}

/// Values that make counters, non-integers and long list items.
fn value() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::sample::select(vec!["0", "1", "-7", "007", "x", "9223372036854775807", "-9223372036854775808"])
            .prop_map(b),
        (1usize..400).prop_map(|n| Bytes::from(vec![b'v'; n])),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![Just(End::Left), Just(End::Right)]
}

/// Requests of every opcode the in-process server can run (WAIT needs a
/// connection), many of which must be refused: wrong types, non-integers,
/// overflowing INCRBYs, oversized pops, LRANGEs and SCANs.
fn request() -> impl Strategy<Value = Request> {
    let delta = prop_oneof![Just(i64::MAX), Just(i64::MIN), Just(1i64), Just(-1), any::<i64>()];
    let condition =
        prop_oneof![Just(SetCondition::Always), Just(SetCondition::IfAbsent), Just(SetCondition::IfPresent)];
    prop_oneof![
        4 => (key(), value(), prop::option::of(1u64..20), condition, any::<bool>()).prop_map(
            |(key, value, ttl_ms, condition, keep)| Request::Set {
                key,
                value,
                keep_ttl: keep && ttl_ms.is_none(),
                ttl_ms,
                condition,
            }
        ),
        1 => key().prop_map(|key| Request::Del { key }),
        1 => (key(), -3i64..20).prop_map(|(key, ttl_ms)| Request::Expire { key, ttl_ms }),
        1 => key().prop_map(|key| Request::Persist { key }),
        2 => key().prop_map(|key| Request::Incr { key }),
        1 => key().prop_map(|key| Request::Decr { key }),
        3 => (key(), delta).prop_map(|(key, delta)| Request::IncrBy { key, delta }),
        4 => (key(), end(), prop::collection::vec(value(), 1..8))
            .prop_map(|(key, end, values)| Request::Push { key, end, values }),
        4 => (key(), end(), prop::option::of(0u32..40)).prop_map(|(key, end, count)| Request::Pop { key, end, count }),
        1 => (key(), -30i64..30, -30i64..30).prop_map(|(key, start, stop)| Request::LRange { key, start, stop }),
        1 => key().prop_map(|key| Request::Get { key }),
        1 => key().prop_map(|key| Request::LLen { key }),
        1 => (0u64..4, 1u32..100).prop_map(|(cursor, count)| Request::Scan { cursor, count, pattern: Bytes::new() }),
        1 => prop::sample::select(vec!["", "nope", "keyspace"])
            .prop_map(|section| Request::Info { section: b(section) }),
        1 => any::<bool>().prop_map(|background| Request::Snapshot { background }),
        1 => Just(Request::FlushAll),
    ]
}

/// How a request's frame is bent out of shape before it is sent, if at
/// all: flags, extras, key or value that no row of §4.1 allows (BAD_REQUEST,
/// or a different valid request — either way the property must hold).
#[derive(Debug, Clone)]
enum Bend {
    None,
    Flags(u8),
    Extras(Vec<u8>),
    Key(Vec<u8>),
    Value(Vec<u8>),
}

fn bend() -> impl Strategy<Value = Bend> {
    let bytes = || prop::collection::vec(any::<u8>(), 0..13);
    prop_oneof![
        12 => Just(Bend::None),
        1 => any::<u8>().prop_map(Bend::Flags),
        1 => bytes().prop_map(Bend::Extras),
        1 => bytes().prop_map(Bend::Key),
        1 => bytes().prop_map(Bend::Value),
    ]
}

fn frame(req: &Request, bend: &Bend) -> Frame {
    let mut f = req.to_frame(7);
    match bend {
        Bend::None => {}
        Bend::Flags(x) => f.flags = *x,
        Bend::Extras(x) => f.extras = Bytes::copy_from_slice(x),
        Bend::Key(x) => f.key = Bytes::copy_from_slice(x),
        Bend::Value(x) => f.value = Bytes::copy_from_slice(x),
    }
    f
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// For every reply with an error status (OOM too: half the runs have
    /// a 4 KiB `--maxmemory`), DIGEST and the op log's last
    /// index are the same after the command as before it; and a reply's
    /// status byte says error exactly when `execute` reports one. The
    /// clock moves so keys expire between commands (lazily deleted, and
    /// logged, by whichever command touches them).
    #[test]
    fn a_refused_command_changes_nothing(
        steps in prop::collection::vec((request(), bend(), 0u64..4), 1..80),
        maxmemory in prop_oneof![Just(0usize), Just(4096)],
    ) {
        let s = limited(maxmemory);
        let mut now = 1_000;
        for (i, (req, bend, tick)) in steps.iter().enumerate() {
            now += tick;
            let f = frame(req, bend);
            let before = state(&s, now);
            let (status, error) = run_frame(&s, &f, now);
            prop_assert_eq!(status != Status::Ok as u8, error, "step {}: {:?}", i, f);
            if error {
                prop_assert_eq!(state(&s, now), before, "step {}: status {:#04x} for {:?}", i, status, f);
            }
        }
    }
}
