//! A cluster client: given several seed addresses, it finds the leader,
//! waits out leader changes and retries what is safe to retry, all within
//! one deadline per call (protocol.md §5.2).
//!
//! One call (a request or a pipeline) is a series of attempts. An attempt
//! needs a live connection: a lost one is replaced — first by the server
//! it was to (the link may just have been cut), then by the seeds in turn.
//! A server lost twice in one call is not tried first again: it is
//! reached only through the seeds or a redirect. Then the requests still
//! unanswered are sent:
//! - `NOT_LEADER` naming a leader: connect there and re-send (past
//!   [`ClientConfig::max_redirects`](crate::ClientConfig) hops in one
//!   call, pause first: two nodes may name each other during an election);
//! - `NO_LEADER`, `LOADING`, `NOT_LEADER` without an address, a refused
//!   connection, an unreachable leader: nothing ran; pause, move to the
//!   next seed and try again;
//! - the connection failing after the requests were written: replies
//!   received stand; the rest are re-sent only if every one of them is
//!   idempotent ([`Request::is_idempotent`]), else the call fails with
//!   [`ClientError::OutcomeUnknown`].
//!
//! Pauses double from [`FailoverConfig::backoff_min`] to
//! [`FailoverConfig::backoff_max`], jittered. Past
//! [`FailoverConfig::deadline`] the call stops: if the last attempt was
//! refused (`NO_LEADER`, `LOADING`, `NOT_LEADER`), with those replies (as
//! error replies, `Err(ClientError::Server)` from the typed methods), else
//! with [`ClientError::Unavailable`] naming the last failure. Each request's wait for its reply is
//! bounded by what is left of the deadline, so no call outlives it by
//! more than one connect or pause rounding.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};

use burrow_proto::{Reply, Request, Status};

use super::backoff::Backoff;
use super::{open, parse_leader, Client, ClientConfig, ClientError};

/// How a cluster client rides out a leader change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailoverConfig {
    /// How long one call (and [`Client::connect_cluster`]) may keep trying
    /// before it reports the failure.
    pub deadline: Duration,
    /// The first pause between attempts.
    pub backoff_min: Duration,
    /// The longest pause between attempts: a new leader is found at most
    /// about this long after it can serve.
    pub backoff_max: Duration,
}

impl Default for FailoverConfig {
    /// 10 s to ride out an election and a restart; pauses of 10–200 ms.
    fn default() -> Self {
        FailoverConfig {
            deadline: Duration::from_secs(10),
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(200),
        }
    }
}

/// What one attempt leaves the call to do.
enum Step {
    /// Every request has its final reply.
    Done,
    /// Try again (after a pause, or at once after a redirect); the error
    /// says why, for the report if the deadline passes.
    Again {
        pause: bool,
        why: ClientError,
    },
    Fail(ClientError),
}

/// Where a call goes after a connection is lost while requests were out.
#[derive(Default)]
struct Lost {
    /// Reconnect here first: the link may just have been cut.
    again_at: Option<SocketAddr>,
    /// The server the call last lost a connection to.
    last: Option<SocketAddr>,
}

impl Lost {
    /// A connection to `addr` was lost. The first time, the call goes
    /// back there; lost there again, it asks the seeds instead: an address
    /// that accepts connections and then drops them (a proxy or a port
    /// forward in front of a dead node, a node restarting in a loop) would
    /// otherwise hold the call until its deadline, while a stale
    /// `NOT_LEADER` keeps naming it.
    fn lost(&mut self, addr: SocketAddr) {
        self.again_at = (self.last != Some(addr)).then_some(addr);
        self.last = Some(addr);
    }
}

/// Time left until `deadline` (zero once passed).
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

impl Client {
    /// Connects to the first of `seeds` that accepts (`host:port` each),
    /// trying them in turn with pauses until the config's failover
    /// deadline, then asks it who leads (CLUSTER) and connects to the
    /// leader at once if it names one; the client rides out leader changes
    /// by itself (see the crate docs).
    pub async fn connect_cluster<S: AsRef<str>>(seeds: &[S]) -> Result<Client, ClientError> {
        Client::connect_cluster_with(seeds, ClientConfig::default()).await
    }

    /// [`connect_cluster`](Client::connect_cluster) with `config`.
    pub async fn connect_cluster_with<S: AsRef<str>>(
        seeds: &[S],
        config: ClientConfig,
    ) -> Result<Client, ClientError> {
        let seeds: Vec<String> = seeds.iter().map(|s| s.as_ref().to_string()).collect();
        if seeds.is_empty() {
            return Err(ClientError::NoSeeds);
        }
        let start = Instant::now();
        let deadline = start + config.failover.deadline;
        let mut backoff = Backoff::new(config.failover.backoff_min, config.failover.backoff_max);
        for attempt in 0u32.. {
            let seed = &seeds[attempt as usize % seeds.len()];
            let why = match open(seed.as_str(), &config, config.connect_timeout.min(left(deadline))).await {
                Ok((framed, addr)) => {
                    let mut c = Client::new(framed, addr, config.clone(), seeds);
                    c.next_seed = attempt as usize + 1;
                    // A failed exchange leaves the client marked broken:
                    // its first call reconnects (and reports any failure).
                    let _ = c.move_to_named_leader(config.request_timeout.min(left(deadline))).await;
                    return Ok(c);
                }
                // A wrong secret stays wrong: no point trying until the deadline.
                Err(e @ ClientError::AuthFailed { .. }) => return Err(e),
                Err(e) => e,
            };
            let pause = backoff.pause();
            if pause >= left(deadline) {
                let attempts = attempt + 1;
                return Err(ClientError::Unavailable {
                    after: start.elapsed(),
                    attempts,
                    last: Box::new(why),
                });
            }
            tokio::time::sleep(pause).await;
        }
        unreachable!("the loop returns")
    }

    /// The seed addresses of a cluster client (empty for a client of one
    /// server).
    pub fn seeds(&self) -> &[String] {
        &self.seeds
    }

    /// [`pipeline`](Client::pipeline) for a cluster client.
    pub(crate) async fn pipeline_failover(&mut self, reqs: &[Request]) -> Result<Vec<Reply>, ClientError> {
        let cfg = self.config.failover;
        let start = Instant::now();
        let deadline = start + cfg.deadline;
        let mut backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max);
        let mut replies: Vec<Option<Reply>> = vec![None; reqs.len()];
        let mut pending: Vec<usize> = (0..reqs.len()).collect();
        let mut hops = 0u32;
        let mut lost = Lost::default();
        for attempts in 1u32.. {
            let why = match self
                .attempt(reqs, &mut replies, &mut pending, deadline, &mut hops, &mut lost)
                .await
            {
                Step::Done => break,
                Step::Fail(e) => return Err(e),
                Step::Again { pause: false, why } if !left(deadline).is_zero() => {
                    tracing::debug!(error = %burrow_proto::ErrorChain(&why), "failover: retrying at once");
                    continue;
                }
                Step::Again { why, .. } => why,
            };
            let pause = backoff.pause();
            if pause >= left(deadline) {
                // The last attempt's refusals (NO_LEADER, …) are the answer.
                if matches!(why, ClientError::Server { .. }) && pending.iter().all(|&i| replies[i].is_some())
                {
                    break;
                }
                return Err(ClientError::Unavailable {
                    after: start.elapsed(),
                    attempts,
                    last: Box::new(why),
                });
            }
            tracing::debug!(error = %burrow_proto::ErrorChain(&why), ?pause, "failover: retrying");
            tokio::time::sleep(pause).await;
        }
        Ok(replies.into_iter().map(|r| r.expect("every request answered")).collect())
    }

    /// One attempt of a cluster call: see the module docs.
    async fn attempt(
        &mut self,
        reqs: &[Request],
        replies: &mut [Option<Reply>],
        pending: &mut Vec<usize>,
        deadline: Instant,
        hops: &mut u32,
        lost: &mut Lost,
    ) -> Step {
        if self.broken || self.closed_by_peer().await {
            self.broken = true;
            let target = match lost.again_at.take() {
                Some(addr) => addr.to_string(),
                None => {
                    let seed = self.seeds[self.next_seed % self.seeds.len()].clone();
                    self.next_seed = self.next_seed.wrapping_add(1);
                    seed
                }
            };
            match open(target.as_str(), &self.config, self.config.connect_timeout.min(left(deadline))).await {
                Ok((framed, addr)) => {
                    tracing::info!(from = %self.addr, to = %addr, "failover: reconnected");
                    (self.framed, self.addr, self.broken) = (framed, addr, false);
                    // Where the node knows the leader, go there before sending.
                    if let Err(e) =
                        self.move_to_named_leader(self.config.request_timeout.min(left(deadline))).await
                    {
                        return Step::Again { pause: true, why: e };
                    }
                }
                Err(e) => return Step::Again { pause: true, why: e },
            }
        }
        let batch: Vec<Request> = pending.iter().map(|&i| reqs[i].clone()).collect();
        let mut got = Vec::with_capacity(batch.len());
        for &i in pending.iter() {
            replies[i] = None;
        }
        let limit = self.config.request_timeout.min(left(deadline));
        let result = self.timed_exchange_into(&batch, &mut got, limit).await;
        let answered = got.len();
        for (&i, reply) in pending.iter().zip(got) {
            replies[i] = Some(reply);
        }
        if let Err(e) = result {
            let rest = pending.split_off(answered);
            // A refusal at accept (BUSY) comes before any request is read.
            let nothing_ran = matches!(e, ClientError::Server { status: Status::Busy, .. });
            if let Some(&i) = rest.iter().find(|&&i| !reqs[i].is_idempotent()).filter(|_| !nothing_ran) {
                let (addr, opcode) = (self.addr, reqs[i].opcode());
                let replies = replies.to_vec();
                return Step::Fail(ClientError::OutcomeUnknown {
                    addr,
                    opcode,
                    unknown: rest,
                    replies,
                    source: Box::new(e),
                });
            }
            lost.lost(self.addr);
            *pending = rest;
            return Step::Again { pause: true, why: e };
        }
        // Refusals: nothing ran, so any request may go again.
        let mut leader = None;
        let mut wait = None;
        pending.retain(|&i| match &replies[i] {
            Some(Reply::Error { status: Status::NotLeader, message }) if parse_leader(message).is_some() => {
                leader = parse_leader(message);
                true
            }
            Some(Reply::Error {
                status: status @ (Status::NotLeader | Status::NoLeader | Status::Loading),
                message,
            }) => {
                wait = Some(ClientError::Server { status: *status, message: message.clone() });
                true
            }
            _ => false,
        });
        if pending.is_empty() {
            return Step::Done;
        }
        if let Some(leader) = leader {
            *hops += 1;
            let why = ClientError::Server { status: Status::NotLeader, message: leader.to_string() };
            if *hops > self.config.max_redirects {
                *hops = 0;
                return Step::Again { pause: true, why };
            }
            return match self.move_to_within(leader, self.config.connect_timeout.min(left(deadline))).await {
                Ok(()) => Step::Again { pause: false, why },
                Err(e) => {
                    // The leader it names is gone: ask the others. (The
                    // bound is for nodes naming each other: this pauses.)
                    *hops = 0;
                    self.broken = true;
                    Step::Again { pause: true, why: e }
                }
            };
        }
        // This node knows no leader or cannot serve yet: ask the next one.
        self.broken = true;
        Step::Again { pause: true, why: wait.expect("a refusal was kept") }
    }

    /// True if the server has closed the connection (or sent something
    /// unasked) while it was idle, as a killed or restarted server's
    /// kernel does: seen before writing, nothing was sent, so every
    /// request may still go elsewhere. Yields once first, so the runtime
    /// takes in socket events that came while this task ran (tokio polls
    /// its IO driver before resuming a task that yielded).
    async fn closed_by_peer(&mut self) -> bool {
        tokio::task::yield_now().await;
        self.framed.next().now_or_never().is_some()
    }
}
