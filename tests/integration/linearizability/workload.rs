//! The clients of a run: each task talks to the leader over its own
//! connection, one request at a time with a real timeout, and records
//! every operation it invoked. Every value a client writes is unique
//! (client and sequence number), so a read names the write it saw.
//!
//! What an answer proves:
//! - a reply: the op took effect (ok);
//! - for a write, anything else (timeout, connection lost, an error status
//!   such as `NO_QUORUM` or `IO_ERROR` — applied but not reported done):
//!   unknown, never failed, so a slow machine cannot make a false alarm;
//! - for a read, anything else: nothing (a read that did not answer
//!   constrains nothing), so it is not recorded.
//!
//! A client whose connection broke opens a new one; until that succeeds
//! nothing is sent, so nothing is recorded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use burrow_client::{Client, ClientConfig, ClientError};
use bytes::Bytes;

use crate::common::SeededRng;

use super::counter::{Counter, CounterIn, CounterOut};
use super::history::{Clock, Op};
use super::keys::Keyed;
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
}

fn answer<T, O>(r: Result<T, ClientError>, out: impl FnOnce(T) -> O) -> Answer<O> {
    match r {
        Ok(v) => Answer::Ok(out(v)),
        Err(ClientError::Server { .. }) => Answer::Unknown { broken: false },
        Err(_) => Answer::Unknown { broken: true },
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
    leader: SocketAddr,
    clock: Clock,
    stop: Arc<AtomicBool>,
) -> Histories {
    let mut rng = SeededRng::new(seed ^ (id as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut h = Histories::default();
    let mut conn: Option<Client> = None;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            match Client::connect_with(leader, connect_config()).await {
                Ok(c) => conn = Some(c),
                // The leader is down: poll until it is back.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
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
                    let r = c.get(register_key(key)).await;
                    (RegisterIn::Get, answer(r, |v| RegisterOut::Value(v.as_ref().map(number))))
                };
                record(h.registers.entry(register_key(key)).or_default(), id, input, write, call, clock, a)
            }
            1 => {
                let (input, a) = if write {
                    (CounterIn::Incr, answer(c.incr(counter_key(key)).await, CounterOut::Incremented))
                } else {
                    let r = c.get(counter_key(key)).await;
                    (CounterIn::Get, answer(r, |v| CounterOut::Value(v.as_ref().map(number))))
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
                    let r = c.lrange(list_key(key), 0, -1).await;
                    (ListIn::Range, answer(r, |items| ListOut::Items(items.iter().map(number).collect())))
                };
                record(h.lists.entry(list_key(key)).or_default(), id, input, write, call, clock, a)
            }
        };
        if broken {
            conn = None;
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
    }
}
