//! Histories: every operation a client invoked, with its invocation and
//! return times from one monotonic clock, and what came back.
//!
//! An operation whose outcome is unknown (timeout, connection lost after
//! the request went out, an error status that does not prove the write was
//! refused) has no return: it may take effect at any time after its
//! invocation, or never (Porcupine's "return at +∞"). Operations that
//! surely did nothing (the connection was never opened, a read that failed)
//! are not recorded at all.

use std::time::{Duration, Instant};

/// Nanoseconds since the history's clock started.
pub type Time = u64;

/// One operation of one client on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op<I, O> {
    pub client: usize,
    pub input: I,
    pub call: Time,
    /// `None`: outcome unknown, returns at +∞.
    pub ret: Option<Time>,
    /// `None` exactly when `ret` is.
    pub output: Option<O>,
}

impl<I, O> Op<I, O> {
    pub fn ok(client: usize, input: I, call: Time, ret: Time, output: O) -> Self {
        Op { client, input, call, ret: Some(ret), output: Some(output) }
    }

    pub fn unknown(client: usize, input: I, call: Time) -> Self {
        Op { client, input, call, ret: None, output: None }
    }

    /// The return time, +∞ for an unknown outcome.
    pub fn ret_or_infinity(&self) -> Time {
        self.ret.unwrap_or(Time::MAX)
    }
}

/// The monotonic clock every client of one run shares.
#[derive(Debug, Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> Time {
        self.0.elapsed().as_nanos() as Time
    }
}

/// A time for people: milliseconds since the start, or `∞`.
pub fn show_time(t: Option<Time>) -> String {
    match t {
        Some(t) => format!("{:.3}ms", Duration::from_nanos(t).as_secs_f64() * 1000.0),
        None => "∞".into(),
    }
}
