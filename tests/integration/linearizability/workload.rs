//! The clients of a run: each task talks to the leader over its own
//! connection (following it across elections, see `leader`), one request
//! at a time with a real timeout, and records every operation it invoked. Every value a client writes is unique
//! (client and sequence number), so a read names the write it saw.
//!
//! What an answer proves:
//! - a reply: the op took effect (ok);
//! - for a write, anything else (timeout, connection lost, an error status
//!   such as `NO_QUORUM` or `IO_ERROR` — applied but not reported done):
//!   unknown, never failed, so a slow machine cannot make a false alarm;
//! - for a read, anything else, or a reply not served by the leader:
//!   nothing (a read that did not answer, or a follower's possibly stale
//!   one, constrains nothing), so it is not recorded.
//!
//! A client whose connection broke, or whose member knows no leader, opens
//! one to the next member; until that succeeds nothing is sent, so nothing
//! is recorded.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burrow_client::{Client, ClientConfig, ClientError};
use burrow_proto::{Reply, Request};
use bytes::Bytes;

use crate::common::SeededRng;

use super::counter::{Counter, CounterIn, CounterOut};
use super::history::{Clock, Op};
use super::keys::Keyed;
use super::leader::{leader_read, refused_as_non_leader, Members, Read};
use super::list_append::{ListAppend, ListIn, ListOut};
use super::register::{Register, RegisterIn, RegisterOut};

/// Keys per model: few, so each key's history has many concurrent ops.
pub const KEYS_PER_MODEL: usize = 2;

/// One request's limit. Past it the op is unknown: a stalled leader or a
/// loaded machine makes more unknowns, never a wrong verdict.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Each op a random model, key and kind (read or write).
    Mixed,
    /// One counter: even clients INCR it, odd ones GET it — the pattern
    /// that shows a read of a write a leader crash then erases (issue 10).
    HotCounter,
}

/// Every op of a run, by model and key.
#[derive(Default)]
pub struct Histories {
    pub registers: Keyed<Register>,
    pub counters: Keyed<Counter>,
    pub lists: Keyed<ListAppend>,
}

impl Histories {
    /// Adds `other`'s ops, then orders each key's ops by invocation.
    pub fn merge(&mut self, other: Histories) {
        for (k, ops) in other.registers {
            self.registers.entry(k).or_default().extend(ops);
        }
        for (k, ops) in other.counters {
            self.counters.entry(k).or_default().extend(ops);
        }
        for (k, ops) in other.lists {
            self.lists.entry(k).or_default().extend(ops);
        }
        self.registers.values_mut().for_each(|o| o.sort_by_key(|o| o.call));
        self.counters.values_mut().for_each(|o| o.sort_by_key(|o| o.call));
        self.lists.values_mut().for_each(|o| o.sort_by_key(|o| o.call));
    }
}

pub fn register_key(i: usize) -> String {
    format!("register:{i}")
}

pub fn counter_key(i: usize) -> String {
    format!("counter:{i}")
}

pub fn list_key(i: usize) -> String {
    format!("list:{i}")
}

/// How a request ended.
enum Answer<O> {
    Ok(O),
    /// It may or may not have taken effect; the connection is still good
    /// (an error status) or not (`broken`).
    Unknown {
        broken: bool,
    },
    /// Refused by a member that does not lead (`NOT_LEADER` not followed,
    /// `NO_LEADER`, `LOADING`), or a read a follower served: nothing to
    /// record; ask the next member.
    Refused,
}

fn answer<T, O>(r: Result<T, ClientError>, out: impl FnOnce(T) -> O) -> Answer<O> {
    match r {
        Ok(v) => Answer::Ok(out(v)),
        // Not the leader (any more): nothing ran (a write a deposed leader
        // had applied is answered NO_QUORUM instead); try the next member.
        Err(e) if refused_as_non_leader(&e) => Answer::Refused,
        Err(ClientError::Server { .. }) => Answer::Unknown { broken: false },
        Err(_) => Answer::Unknown { broken: true },
    }
}

/// A read through [`leader_read`]: the leader's reply turned into an
/// output (an error reply or an unexpected one: nothing), or why not.
async fn read<O>(c: &mut Client, req: Request, out: impl FnOnce(Reply) -> Option<O>) -> Answer<O> {
    match leader_read(c, req).await {
        Read::Reply(r) => match out(r) {
            Some(o) => Answer::Ok(o),
            None => Answer::Unknown { broken: false },
        },
        Read::NotLeader { moved: true } => Answer::Unknown { broken: false },
        Read::NotLeader { moved: false } => Answer::Refused,
        Read::Broken => Answer::Unknown { broken: true },
    }
}

/// GET's reply: the value or none.
pub fn get_reply(r: Reply) -> Option<Option<Bytes>> {
    match r {
        Reply::Nil => Some(None),
        Reply::Bytes(b) => Some(Some(b)),
        _ => None,
    }
}

/// LRANGE's reply: the items.
pub fn lrange_reply(r: Reply) -> Option<Vec<Bytes>> {
    match r {
        Reply::Nil => Some(Vec::new()),
        Reply::Array(items) => Some(items),
        _ => None,
    }
}

/// A number a client wrote, as the server returns it.
pub fn number<T: std::str::FromStr>(b: &Bytes) -> T {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not a number: {b:?}"))
}

pub fn connect_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: REQUEST_TIMEOUT,
        request_timeout: REQUEST_TIMEOUT,
        // NOT_LEADER is not followed: nodes 2 and 3 name node 1 by its
        // proxy's address, and a proxy whose node is down accepts, then
        // drops the connection (a write's outcome would look unknown).
        // The client asks the next member instead (see `leader`).
        max_redirects: 0,
        ..ClientConfig::default()
    }
}

/// One client: `id` names its writes; runs until `stop`, then returns
/// what it recorded.
pub async fn client(
    id: usize,
    workload: Workload,
    seed: u64,
    mut members: Members,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Histories {
    let mut rng = SeededRng::new(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut h = Histories::default();
    let mut conn: Option<Client> = None;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            conn = members.connect().await;
            continue;
        };
        seq += 1;
        let value = ((id as u64 + 1) << 32) | seq;
        let (model, key, write) = match workload {
            Workload::Mixed => (rng.range(0, 3), rng.range(0, KEYS_PER_MODEL), rng.range(0, 2) == 0),
            Workload::HotCounter => (1, 0, id.is_multiple_of(2)),
        };
        let call = clock.now();
        let broken = match model {
            0 => {
                let (input, a) = if write {
                    (
                        RegisterIn::Set(value),
                        answer(c.set(register_key(key), value.to_string()).await, |_| RegisterOut::Done),
                    )
                } else {
                    let r = read(c, Request::Get { key: register_key(key).into() }, |r| {
                        get_reply(r).map(|v| RegisterOut::Value(v.as_ref().map(number)))
                    });
                    (RegisterIn::Get, r.await)
                };
                record(h.registers.entry(register_key(key)).or_default(), id, input, write, call, clock, a)
            }
            1 => {
                let (input, a) = if write {
                    (CounterIn::Incr, answer(c.incr(counter_key(key)).await, CounterOut::Incremented))
                } else {
                    let r = read(c, Request::Get { key: counter_key(key).into() }, |r| {
                        get_reply(r).map(|v| CounterOut::Value(v.as_ref().map(number)))
                    });
                    (CounterIn::Get, r.await)
                };
                record(h.counters.entry(counter_key(key)).or_default(), id, input, write, call, clock, a)
            }
            _ => {
                let (input, a) = if write {
                    (
                        ListIn::Push(value),
                        answer(c.rpush(list_key(key), [value.to_string()]).await, ListOut::Pushed),
                    )
                } else {
                    let req = Request::LRange { key: list_key(key).into(), start: 0, stop: -1 };
                    let r = read(c, req, |r| {
                        lrange_reply(r).map(|i| ListOut::Items(i.iter().map(number).collect()))
                    });
                    (ListIn::Range, r.await)
                };
                record(h.lists.entry(list_key(key)).or_default(), id, input, write, call, clock, a)
            }
        };
        if broken {
            conn = None;
            // An election may be under way: do not spin through the members.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    h
}

/// Records one op by what its answer proves; returns whether the
/// connection broke.
fn record<I, O>(
    ops: &mut Vec<Op<I, O>>,
    client: usize,
    input: I,
    write: bool,
    call: u64,
    clock: Clock,
    answer: Answer<O>,
) -> bool {
    match answer {
        Answer::Ok(out) => {
            ops.push(Op::ok(client, input, call, clock.now(), out));
            false
        }
        Answer::Unknown { broken } => {
            if write {
                ops.push(Op::unknown(client, input, call));
            }
            broken
        }
        Answer::Refused => true,
    }
}
