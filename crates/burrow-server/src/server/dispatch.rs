//! Command execution: a request frame in, one encoded response out.
//!
//! Replies are encoded straight into the connection's write buffer, with
//! values copied out of the store under the shard lock — no intermediate
//! reply objects on the hot path. Two exceptions bound how long one
//! command holds a shard (issue 11, fairness): a GET of a string of
//! `SHARED_VALUE` bytes or more takes a refcounted handle under the lock and
//! copies after it, and LRANGE copies in steps (`dispatch/lrange.rs`).
//!
//! **What a reply shows.** A write is applied before it is durable (or, in
//! quorum mode, committed), and its reply waits. A reply that shows data —
//! every read, and a write refused because of what the key holds
//! (WRONGTYPE…) — reports in [`Executed::seen`] the highest log index it
//! may depend on, so the connection holds it back until that is durable
//! and committed as well (see `connection::Durable`). Per key: GET, EXISTS,
//! TTL, TYPE, LLEN, LRANGE and LPOP/RPOP with count 0 report the key's
//! watermark (`store::watermark`). Whole-dataset reads — DBSIZE, SCAN,
//! DIGEST — report the log's last index after reading, which bounds
//! everything they saw. INFO, CLUSTER and PING show no data: INFO reports the
//! server's state as it is (its `last_index` may be ahead of what is
//! durable), and is never held back.

use bytes::{BufMut, BytesMut};

use super::{info, Shared};
use crate::store::{format_int, ApplyError, Entry, PopRefusal, SetArgs, ValueRef, SHARED_VALUE};
use burrow_proto::{encode_response, BodyType, FrameRef, Request, Status};

mod config;
mod lrange;
mod memory;
mod slowlog;

/// What executing one frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Executed {
    /// The reply is an error status.
    pub error: bool,
    /// The request was a write (its reply must wait for durability under `--fsync always`).
    pub write: bool,
    /// The request reads the data set (a quorum leader confirms its
    /// leadership before replying: linearizable reads).
    pub read: bool,
    /// The reply shows data that records up to this log index may have
    /// changed (0: none): it may be sent only once they are durable (and
    /// committed in quorum mode). See the module docs.
    pub seen: u64,
    /// A SNAPSHOT the connection must carry out (asynchronously) before replying.
    pub snapshot: Option<bool>,
    /// A WAIT (replicas, timeout ms) the connection must carry out before replying.
    pub wait: Option<(u32, u64)>,
}

/// Writes the reply to `frame` into `out` (except for a deferred SNAPSHOT).
pub(super) fn execute(shared: &Shared, frame: &FrameRef<'_>, now: u64, out: &mut BytesMut) -> Executed {
    let mut r = Replier {
        out,
        opcode: frame.opcode,
        id: frame.id,
        error: false,
        seen: 0,
        data_error: false,
        max_reply: shared.config.max_reply_bytes,
    };
    let mut done = Executed::default();
    match Request::parse(frame) {
        Ok(Request::Snapshot { background }) => match &shared.persist {
            Some(_) => done.snapshot = Some(background),
            None => {
                r.error(Status::BadRequest, "persistence is off (--persistence off): nothing to snapshot")
            }
        },
        Ok(Request::Wait { replicas, timeout_ms }) => match shared.repl.refuse_write() {
            Some((status, message)) => r.error(status, &message),
            None => done.wait = Some((replicas, timeout_ms)),
        },
        Ok(Request::Hello | Request::Auth { .. }) => {
            r.error(Status::BadRequest, "HELLO and AUTH are answered by the connection")
        }
        // Answered by the connection (`connection::introspect`): they are about connections.
        Ok(
            Request::ClientList
            | Request::ClientId
            | Request::ClientKillId { .. }
            | Request::ClientKillAddr { .. }
            | Request::Monitor,
        ) => r.error(Status::BadRequest, "CLIENT and MONITOR are answered by the connection"),
        Ok(req) => {
            done.write = req.is_write();
            done.read = req.reads_data();
            // `run`'s one call site: inlined (see there) into this hot path.
            match refusal(shared, &req, done.write, now) {
                Some((status, message)) => r.error(status, &message),
                None => run(shared, req, now, &mut r),
            }
        }
        Err(e) => {
            tracing::debug!(opcode = frame.opcode, id = frame.id, status = %e.status, "{}", e.message);
            r.error(e.status, &e.message)
        }
    }
    done.error = r.error;
    done.seen = r.seen;
    if r.data_error && done.write {
        // A write refused for what its key holds changed nothing, but its
        // error shows that value: bounded, like any write, by the log's end.
        done.seen = shared.store.log().last_index();
    }
    done
}

/// Why this node will not run `req`, if it will not: a write on a follower
/// (NOT_LEADER), while the WAL fails (IO_ERROR) or with no room under
/// `--maxmemory` (OOM, after evicting what the policy allows); a read of the dataset on
/// a follower loading a full resync or too stale (LOADING, STALE). PING,
/// INFO, CLUSTER, SLOWLOG and CONFIG show no data and are always served: CLUSTER is how a
/// client finds the leader, so it is never refused for want of one.
#[inline]
fn refusal(shared: &Shared, req: &Request<&[u8]>, write: bool, now: u64) -> Option<(Status, String)> {
    if write {
        shared
            .repl
            .refuse_write()
            .or_else(|| {
                shared
                    .persist
                    .as_ref()
                    .is_some_and(|p| p.failed())
                    .then(|| (Status::IoError, wal_failure_message(shared)))
            })
            .or_else(|| {
                (shared.maxmemory.load(std::sync::atomic::Ordering::Relaxed) != 0)
                    .then(|| memory::refusal(shared, req, now))
                    .flatten()
            })
    } else if !matches!(
        req,
        Request::Ping { .. }
            | Request::Info { .. }
            | Request::Cluster
            | Request::SlowLog(_)
            | Request::ConfigGet { .. }
            | Request::ConfigSet { .. }
    ) {
        shared.repl.refuse_read()
    } else {
        None
    }
}

/// The IO_ERROR message while the WAL is failing.
pub(super) fn wal_failure_message(shared: &Shared) -> String {
    shared.persist.as_ref().map(|p| p.wal.refusal()).unwrap_or_default()
}

struct Replier<'a> {
    out: &'a mut BytesMut,
    opcode: u8,
    id: u32,
    error: bool,
    /// See [`Executed::seen`].
    seen: u64,
    /// The error is about the data (WRONGTYPE, NOT_INTEGER, OVERFLOW).
    data_error: bool,
    /// Largest ARRAY body built (`--max-reply-bytes`): the value length
    /// field is a u32, and clients cap what they accept (the Rust client
    /// at 512 MiB).
    max_reply: usize,
}

impl Replier<'_> {
    fn send(&mut self, body: BodyType, extras: &[u8], value: &[u8]) {
        encode_response(self.out, self.opcode, self.id, Status::Ok, body, extras, value);
    }
    fn ok(&mut self) {
        self.send(BodyType::Ok, &[], &[]);
    }
    fn nil(&mut self) {
        self.send(BodyType::Nil, &[], &[]);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.send(BodyType::Bytes, &[], v);
    }
    fn int(&mut self, i: i64) {
        self.send(BodyType::Int, &[], &i.to_be_bytes());
    }
    fn text(&mut self, t: &str) {
        self.send(BodyType::Text, &[], t.as_bytes());
    }
    fn array<T: AsRef<[u8]>>(&mut self, extras: &[u8], items: &[T]) {
        let len = burrow_proto::encoded_array_len(items);
        if len > self.max_reply {
            // Only reads get here over the limit: LPOP/RPOP check before they take.
            let refusal = PopRefusal::TooLarge { bytes: len, max: self.max_reply };
            return self.error(Status::BadRequest, &refusal.to_string());
        }
        self.array_unbounded(extras, items, len);
    }
    /// An ARRAY of `len` body bytes whatever `max_reply`: CLUSTER's, bounded
    /// by the member count, which no reply limit may keep from a client
    /// looking for its leader.
    fn array_unbounded<T: AsRef<[u8]>>(&mut self, extras: &[u8], items: &[T], len: usize) {
        self.out.reserve(burrow_proto::HEADER_LEN + extras.len() + len);
        let header = self.array_header(extras);
        burrow_proto::encode_array(items, self.out);
        self.end_array(header);
    }
    /// Starts an ARRAY reply whose body is then appended to `out` directly
    /// (no intermediate body buffer: one copy of each item, not two);
    /// [`Self::end_array`] fills in its length. Returns where the header is.
    fn array_header(&mut self, extras: &[u8]) -> usize {
        let at = self.out.len();
        self.send(BodyType::Array, extras, &[]);
        at
    }
    /// Writes the length of the body appended since [`Self::array_header`].
    fn end_array(&mut self, header: usize) {
        let start = header + burrow_proto::HEADER_LEN + self.out[header + 8] as usize;
        let len = (self.out.len() - start) as u32;
        self.out[header + 12..header + 16].copy_from_slice(&len.to_be_bytes());
    }
    fn error(&mut self, status: Status, message: &str) {
        self.error = true;
        encode_response(self.out, self.opcode, self.id, status, BodyType::Text, &[], message.as_bytes());
    }
    fn apply_error(&mut self, e: ApplyError) {
        self.data_error = true;
        let status = match e {
            ApplyError::WrongType => Status::WrongType,
            ApplyError::NotInteger => Status::NotInteger,
            ApplyError::Overflow => Status::Overflow,
        };
        self.error(status, &e.to_string());
    }
    fn int_result(&mut self, r: Result<i64, ApplyError>) {
        match r {
            Ok(n) => self.int(n),
            Err(e) => self.apply_error(e),
        }
    }
    /// A read of one key: `(what f made of it, the key's watermark)`.
    #[inline]
    fn saw<T>(&mut self, (value, mark): (T, u64)) -> T {
        self.seen = mark;
        value
    }
}

/// GET of a string of `SHARED_VALUE` bytes or more, under the shard lock:
/// its handle (the bytes are copied by [`copy_shared`] once the lock is
/// released), or the reply itself if the string is inline after all. Out
/// of line: GET's common path stays as short as before (callgrind).
#[cold]
#[inline(never)]
fn take_shared(e: Option<&Entry>, s: &[u8], r: &mut Replier<'_>) -> Option<std::sync::Arc<[u8]>> {
    let handle = e.and_then(Entry::shared_str);
    if handle.is_none() {
        r.bytes(s);
    }
    handle
}

/// The reply to a GET of a shared string, copied outside the lock.
#[cold]
#[inline(never)]
fn copy_shared(r: &mut Replier<'_>, handle: std::sync::Arc<[u8]>) {
    r.bytes(&handle);
}

/// Runs one accepted request. Forced inline into `execute`, its only
/// caller: left to LLVM it stopped being inlined once the crate's items
/// became crate-private, costing ~13 instructions per GET (callgrind).
#[inline(always)]
fn run(shared: &Shared, req: Request<&[u8]>, now: u64, r: &mut Replier<'_>) {
    let store = &shared.store;
    match req {
        Request::Ping { payload: [] } => r.text("PONG"),
        Request::Ping { payload } => r.bytes(payload),
        Request::Get { key } => {
            let mut shared = None;
            let (_, mark) = store.read_marked(key, now, |e| match e.map(|e| e.value()) {
                None => r.nil(),
                Some(ValueRef::Str(s)) if s.len() < SHARED_VALUE => r.bytes(s),
                // A long string: a handle under the lock, copied below.
                Some(ValueRef::Str(s)) => shared = take_shared(e, s, r),
                Some(ValueRef::Int(i)) => r.bytes(format_int(i, &mut [0; 20])),
                Some(ValueRef::List(_)) => r.apply_error(ApplyError::WrongType),
            });
            if let Some(handle) = shared {
                copy_shared(r, handle);
            }
            r.seen = mark;
        }
        Request::Set { key, value, ttl_ms, condition, keep_ttl } => {
            let expire_at = ttl_ms.map(|t| now.saturating_add(t));
            if store.set(SetArgs { key, value, expire_at, condition, keep_ttl }, now) {
                r.ok()
            } else {
                r.nil()
            }
        }
        Request::Del { key } => r.int(store.del(key, now) as i64),
        Request::Exists { key } => {
            let exists = r.saw(store.read_marked(key, now, |e| e.is_some()));
            r.int(exists as i64)
        }
        Request::Expire { key, ttl_ms } => r.int(store.expire(key, ttl_ms, now) as i64),
        Request::Persist { key } => r.int(store.persist(key, now) as i64),
        Request::Ttl { key } => {
            let ttl = r.saw(store.read_marked(key, now, |e| match e {
                None => -2,
                Some(e) if e.expire_at() == 0 => -1,
                Some(e) => e.expire_at().saturating_sub(now) as i64,
            }));
            r.int(ttl)
        }
        Request::Type { key } => {
            let name = r.saw(store.read_marked(key, now, |e| e.map_or("none", |e| e.type_name())));
            r.text(name)
        }
        Request::Incr { key } => r.int_result(store.incr_by(key, 1, now)),
        Request::Decr { key } => r.int_result(store.incr_by(key, -1, now)),
        Request::IncrBy { key, delta } => r.int_result(store.incr_by(key, delta, now)),
        Request::Push { key, end, values } => r.int_result(store.push(key, end, values, now)),
        Request::Pop { key, count: Some(0), .. } => {
            // Redis: an existing list gives an empty array, a missing key nil.
            let (_, mark) = store.read_marked(key, now, |e| match e.map(|e| e.value()) {
                None => r.nil(),
                Some(ValueRef::List(_)) => r.array::<&[u8]>(&[], &[]),
                Some(_) => r.apply_error(ApplyError::WrongType),
            });
            r.seen = mark;
        }
        Request::Pop { key, end, count } => {
            match store.pop(key, end, count.unwrap_or(1), now, count.map(|_| r.max_reply)) {
                Err(PopRefusal::Apply(e)) => r.apply_error(e),
                Err(e @ PopRefusal::TooLarge { .. }) => r.error(Status::BadRequest, &e.to_string()),
                Ok(v) if v.is_empty() => r.nil(),
                Ok(v) if count.is_none() => r.bytes(&v[0]),
                Ok(v) => r.array(&[], &v),
            }
        }
        Request::LLen { key } => {
            let len = r.saw(store.read_marked(key, now, |e| match e.map(|e| e.value()) {
                None => Ok(0),
                Some(ValueRef::List(l)) => Ok(l.len() as i64),
                Some(_) => Err(ApplyError::WrongType),
            }));
            r.int_result(len)
        }
        Request::LRange { key, start, stop } => r.seen = lrange::lrange(store, key, start, stop, now, r),
        Request::DbSize => {
            let n = store.len();
            r.seen = store.log().last_index();
            r.int(n as i64)
        }
        Request::Digest => {
            let digest = store.digest(now);
            r.seen = store.log().last_index();
            r.text(&format!("{digest:016x}"))
        }
        Request::Scan { cursor, count, pattern } => {
            let (next, keys) = store.scan(cursor, count, pattern, now);
            r.seen = store.log().last_index();
            let mut extras = [0u8; 8];
            (&mut extras[..]).put_u64(next);
            r.array(&extras, &keys);
        }
        Request::FlushAll => {
            store.flush_all();
            r.ok()
        }
        Request::Snapshot { .. }
        | Request::Wait { .. }
        | Request::Hello
        | Request::Auth { .. }
        | Request::ClientList
        | Request::ClientId
        | Request::ClientKillId { .. }
        | Request::ClientKillAddr { .. }
        | Request::Monitor => {
            unreachable!("SNAPSHOT, WAIT, HELLO, AUTH, CLIENT and MONITOR are carried out by the connection")
        }
        Request::Cluster => {
            let view = shared.repl.cluster_view(store);
            let items = burrow_proto::cluster_items(&view);
            r.array_unbounded(&[], &items, burrow_proto::encoded_array_len(&items))
        }
        Request::SlowLog(command) => slowlog::slowlog(shared, command, r),
        Request::ConfigGet { pattern } => config::get(shared, pattern, r),
        Request::ConfigSet { name, value } => config::set(shared, name, value, r),
        Request::Info { section } => {
            let name = String::from_utf8_lossy(section);
            match info::render(shared, &name) {
                Some(text) => r.text(&text),
                None => r.error(
                    Status::BadRequest,
                    &format!("unknown INFO section '{name}' (known: {})", info::SECTIONS.join(", ")),
                ),
            }
        }
    }
}

/// LRANGE's inclusive, possibly negative `start..=stop` as a half-open range
/// clamped to a deque of `len` items (empty when it selects nothing).
pub(super) fn range(len: usize, start: i64, stop: i64) -> (usize, usize) {
    let len = len as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i };
    let (from, to) = (norm(start), norm(stop).min(len - 1));
    if from > to || from >= len {
        (0, 0)
    } else {
        (from as usize, to as usize + 1)
    }
}

#[cfg(test)]
mod refusal_tests;
#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use super::{execute, range, Executed};
    use crate::server::{Config, Server, Shared};
    use burrow_proto::{End, Frame, Opcode, Request, SetCondition};

    /// An in-memory server's shared state (also for `dispatch/*` tests).
    pub(super) fn shared() -> Shared {
        let config = Config { persistence: false, shards: 4, ..Config::default() };
        Server::open(config).expect("in memory").into_shared(0).expect("no persistence to open")
    }

    fn run(shared: &Shared, req: Request) -> Executed {
        let frame: Frame = req.to_frame(1);
        execute(shared, &frame.as_ref(), 0, &mut BytesMut::new())
    }

    fn key(k: &str) -> Bytes {
        Bytes::copy_from_slice(k.as_bytes())
    }

    /// Every opcode that shows data reports the index of what it may show,
    /// so no reading opcode can bypass the hold (`connection::durable`);
    /// a new opcode fails here until it is classified.
    #[test]
    fn every_reading_opcode_reports_what_it_may_show() {
        let s = shared();
        let set = |k: &str, v: &str| Request::Set {
            key: key(k),
            value: key(v),
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        };
        assert!(!run(&s, set("s", "1")).error);
        let at_s = s.store.log().last_index();
        assert!(!run(&s, Request::Push { key: key("l"), end: End::Right, values: vec![key("x")] }).error);
        let at_l = s.store.log().last_index();
        let l = || key("l");
        // Each read, and the index of the write it must not show early.
        let reads = [
            (Request::Get { key: key("s") }, at_s),
            (Request::Exists { key: key("s") }, at_s),
            (Request::Ttl { key: key("s") }, at_s),
            (Request::Type { key: key("s") }, at_s),
            (Request::LLen { key: l() }, at_l),
            (Request::LRange { key: l(), start: 0, stop: -1 }, at_l),
            (Request::Pop { key: l(), end: End::Left, count: Some(0) }, at_l),
            (Request::DbSize, at_l),
            (Request::Scan { cursor: 0, count: 10, pattern: Bytes::new() }, at_l),
            (Request::Digest, at_l),
            // Refused for what the key holds: the error shows it too.
            (Request::Get { key: l() }, at_l),
            (Request::Incr { key: l() }, at_l),
        ];
        let mut classified: Vec<u8> = Vec::new();
        for (req, write) in reads {
            let op = req.opcode();
            let done = run(&s, req);
            assert!(done.seen >= write, "{op:?} reports {}, below {write}", done.seen);
            classified.push(op as u8);
        }
        // The key's own watermark: the list's write is the last one.
        assert_eq!(run(&s, Request::LLen { key: l() }).seen, at_l);
        // Nothing shown: never held.
        for req in [
            Request::Ping { payload: Bytes::new() },
            Request::Info { section: Bytes::new() },
            Request::Cluster,
            Request::SlowLog(burrow_proto::SlowLogCommand::Len),
            Request::ConfigGet { pattern: Bytes::new() },
        ] {
            classified.push(req.opcode() as u8);
            assert_eq!(run(&s, req).seen, 0);
        }
        // Writes wait for the whole log anyway; WAIT and SNAPSHOT are carried
        // out by the connection, HELLO and AUTH answered by it (its gate),
        // CLIENT and MONITOR too (they show connections, not data).
        use Opcode::*;
        let others = [
            Set, Del, Expire, Persist, Incr, Decr, IncrBy, LPush, RPush, LPop, RPop, FlushAll, Wait,
            Snapshot, Hello, Auth, Client, Monitor,
        ];
        classified.extend(others.map(|o| o as u8));
        for op in Opcode::ALL {
            assert!(classified.contains(&(op as u8)), "{op:?} is neither a read that reports nor a write");
        }
    }

    /// A standalone server's CLUSTER is protocol.md's `cluster-standalone`
    /// example, byte for byte, after 13 writes.
    #[test]
    fn cluster_on_a_standalone_server_is_as_documented() {
        let s = shared();
        for i in 0..13 {
            let set = Request::Set {
                key: key(&format!("k{i}")),
                value: key("v"),
                ttl_ms: None,
                condition: SetCondition::Always,
                keep_ttl: false,
            };
            assert!(!run(&s, set).error);
        }
        let mut out = BytesMut::new();
        let done = execute(&s, &Request::Cluster.to_frame(1).as_ref(), 0, &mut out);
        assert_eq!((done.error, done.write, done.seen), (false, false, 0));
        assert_eq!(out[..], crate::server::doc_examples::documented_response("cluster-standalone")[..]);
    }

    /// protocol.md's `oom` example, byte for byte: `--maxmemory 1KiB`, ten
    /// 64-byte values stored (980 bytes by the store's accounting).
    #[test]
    fn oom_is_as_documented() {
        let config = Config { persistence: false, shards: 4, maxmemory: 1024, ..Config::default() };
        let s = Server::open(config).expect("in memory").into_shared(0).expect("no persistence to open");
        let set = |k: &str, v: Bytes| Request::Set {
            key: key(k),
            value: v,
            ttl_ms: None,
            condition: SetCondition::Always,
            keep_ttl: false,
        };
        for i in 0..10 {
            assert!(!run(&s, set(&format!("k{i}"), Bytes::from(vec![b'v'; 64]))).error);
        }
        assert_eq!(s.store.used_memory(), 980);
        let mut out = BytesMut::new();
        let done = execute(&s, &set("user:1", key("alice")).to_frame(1).as_ref(), 0, &mut out);
        assert_eq!((done.error, done.write), (true, true));
        assert_eq!(out[..], crate::server::doc_examples::documented_response("oom")[..], "{out:02x?}");
    }

    /// `--max-reply-bytes` bounds data, not CLUSTER: a client finding its
    /// leader gets the member list whatever the limit (here 32 members, a
    /// reply of ~1.2 KiB, under a 1 KiB limit).
    #[test]
    fn cluster_is_not_bounded_by_the_reply_limit() {
        let s = super::refusal_tests::member(32, 2, |c| c.max_reply_bytes = 1024);
        let mut out = BytesMut::new();
        let done = execute(&s, &Request::Cluster.to_frame(1).as_ref(), 0, &mut out);
        assert!(!done.error && out.len() > 1024 + burrow_proto::HEADER_LEN, "{} bytes", out.len());
    }

    /// GET answers a string of any length the same way, whether it lives
    /// inline in the entry or in a shared block (`SHARED_VALUE`), and its
    /// watermark is the SET's.
    #[test]
    fn get_answers_inline_and_shared_strings_alike() {
        let s = shared();
        for len in [0, 1, crate::store::SHARED_VALUE - 1, crate::store::SHARED_VALUE, 1 << 20] {
            let value: Bytes = (0..len).map(|i| i as u8).collect();
            let set = Request::Set {
                key: key("k"),
                value: value.clone(),
                ttl_ms: None,
                condition: SetCondition::Always,
                keep_ttl: false,
            };
            assert!(!run(&s, set).error);
            let at = s.store.log().last_index();
            let mut out = BytesMut::new();
            let frame: Frame = Request::Get { key: key("k") }.to_frame(1);
            let done = execute(&s, &frame.as_ref(), 0, &mut out);
            assert!(!done.error);
            assert_eq!(done.seen, at);
            assert_eq!(&out[burrow_proto::HEADER_LEN..], &value[..], "{len} bytes");
        }
    }

    #[test]
    fn lrange_indexes_follow_redis() {
        let cases = [
            ((5, 0, -1), (0, 5)),
            ((5, 1, 2), (1, 3)),
            ((5, -2, -1), (3, 5)),
            ((5, -100, 100), (0, 5)),
            ((5, 3, 1), (0, 0)),
            ((5, 5, 10), (0, 0)),
            ((0, 0, -1), (0, 0)),
            ((5, -1, -2), (0, 0)),
        ];
        for (i, ((len, a, b), want)) in cases.into_iter().enumerate() {
            assert_eq!(range(len, a, b), want, "case {i}");
        }
    }
}
