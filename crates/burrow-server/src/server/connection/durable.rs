//! Replies held back until what they report is safe to report.
//!
//! A write is applied in memory, and visible, before its WAL record is
//! durable — fsynced under `--fsync always`, handed to the OS (written)
//! under `everysec` and `no`, so a process crash never loses an
//! acknowledged write (as Redis writes its AOF buffer before replying) —
//! and, in quorum mode, before a majority holds it (committed). So:
//!
//! - a **write's** reply waits until every record logged so far is durable
//!   and committed (WAL failure: IO_ERROR; no majority within
//!   `quorum_timeout_ms`: NO_QUORUM);
//! - a **read's** reply waits until the records it may show are (the
//!   index [`dispatch`](super::dispatch) reports as `seen`: the key's
//!   watermark). Otherwise a reader could see a value that a crash, or a
//!   failover, then erases: INCRs in flight read as 3805, 3804 after the
//!   leader's restart (issue 10). If the WAL fails first the read gets
//!   IO_ERROR, if no majority comes within the quorum timeout NO_QUORUM,
//!   each saying the value is not durable / not committed yet — never the
//!   value, and never a hang.
//!
//! - in quorum mode, **every read** on the leader also waits until a
//!   majority confirmed, after it ran, that this node still leads
//!   (ReadIndex, `replication::read_index`; one confirmation per batch,
//!   asked before the records are waited for). A leader cut off from the
//!   majority may already have been replaced, and the new leader may have
//!   overwritten the key: without the confirmation it would answer with
//!   the old value until check-quorum deposes it. Not confirmed within the
//!   quorum timeout: NO_QUORUM; deposed meanwhile: NOT_LEADER / NO_LEADER.
//!   A lease (serve reads for an election timeout after the last majority
//!   ack) would save the round trip but trusts clocks: a leader paused
//!   past its lease (SIGSTOP, a VM stall) does not notice that it expired.
//!
//! Replies stay in order: everything after a held reply in the batch waits
//! with it (one write per batch, as before). A read whose watermark is at
//! or below what is already known durable and committed (`safe`) is not
//! even noted: pure reads cost a compare.
//!
//! Followers do not hold reads (their reads are possibly stale by
//! contract, `max_stale_ms`): a follower shows records as it applies them,
//! before it knows that its leader committed them. Holding those for the
//! leader's commit index would delay each fresh read by up to a
//! heartbeat; that, and reads on a node whose role changes, is left to the
//! elections work (issue 10), which the watermarks already support: a
//! follower's replayed records raise them too. Records a restarted leader
//! recovered from its WAL raise nothing (they are durable); whether they
//! are committed is for the elections work to settle as well (Raft: a new
//! leader's own no-op commits them).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use tokio::io::AsyncWrite;
use tokio::sync::watch;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::write_out;
use crate::persist::{Durability, FsyncPolicy};
use crate::server::replication::QuorumWatch;
use crate::server::{dispatch, Role, Shared};
use burrow_proto::{encode_response, BodyType, Status};

/// One reply in the write buffer that may not go out as it is yet.
#[derive(Debug, Clone, Copy)]
struct Held {
    start: usize,
    end: usize,
    opcode: u8,
    id: u32,
    /// `None` for a write (it waits for the whole log as it was at the
    /// flush); for a read, the highest index its reply may show.
    seen: Option<u64>,
    /// Set when it must be replaced by an error.
    refused: Option<Refusal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Wal,
    Quorum,
    /// This node stopped leading while the reply waited for a majority: a
    /// write's outcome is unknown (NO_QUORUM, it ran), a read ran nothing
    /// (NOT_LEADER / NO_LEADER).
    Deposed,
    /// A read (quorum mode) whose leader no majority confirmed within the
    /// quorum timeout: it may have been deposed (NO_QUORUM).
    Unconfirmed,
}

/// Holds replies back as the module docs say, for one connection.
pub(super) struct Durable {
    rx: Option<watch::Receiver<Durability>>,
    /// Wait for `synced` (always) rather than `written`.
    fsynced: bool,
    /// Quorum mode (leader): the commit index, how long a reply may wait
    /// for a majority before NO_QUORUM, and the end of the leadership.
    quorum: Option<QuorumWatch>,
    /// Reads are held too: anything to wait for, and not a follower.
    gate_reads: bool,
    /// Writes are held: persistence on, or a quorum-mode cluster member
    /// (whose role, and with it the quorum watch, may change within a
    /// batch). Not in async mode without persistence: nothing to wait for,
    /// as with fixed roles, so a write's reply costs no wait at all.
    hold_writes: bool,
    /// The role generation `quorum` and `gate_reads` were read at.
    generation: u64,
    /// Every index up to this was durable and committed when last looked.
    safe: u64,
    /// The held replies, in buffer order.
    held: Vec<Held>,
    /// Quorum mode: bounds a wait for a majority by the quorum timeout.
    /// Kept for the connection's life and moved forward at each wait: a
    /// timer registered once and moved later is one compare-and-swap,
    /// where a `tokio::time::timeout` per wait registered and removed one
    /// (at pipeline 1, once per write).
    limit: Option<Pin<Box<Sleep>>>,
}

impl Durable {
    pub(super) fn new(shared: &Shared) -> Durable {
        let rx = shared.persist.as_ref().map(|p| p.durability());
        let fsynced = shared.persist.as_ref().is_some_and(|p| p.cfg.fsync == FsyncPolicy::Always);
        let hold_writes = rx.is_some() || shared.repl.quorum_mode();
        let mut d = Durable {
            rx,
            fsynced,
            quorum: None,
            gate_reads: false,
            hold_writes,
            generation: u64::MAX,
            safe: 0,
            held: Vec::new(),
            limit: None,
        };
        d.refresh(shared);
        d
    }

    /// Re-reads what depends on this node's role if it changed since
    /// last looked (one atomic load): call before each batch, and again
    /// before waiting.
    #[inline]
    pub(super) fn refresh(&mut self, shared: &Shared) {
        if !self.hold_writes {
            // No WAL and not quorum mode: nothing cached here depends on
            // the role (no quorum watch, no read gating).
            return;
        }
        let generation = shared.repl.generation();
        if generation != self.generation {
            self.generation = generation;
            self.quorum = shared.repl.quorum();
            self.gate_reads =
                (self.rx.is_some() || self.quorum.is_some()) && shared.repl.role() != Role::Follower;
            self.safe = 0;
        }
    }

    /// A write's reply is at `start..end` of the write buffer.
    pub(super) fn note_write(&mut self, start: usize, end: usize, opcode: u8, id: u32) {
        if self.hold_writes {
            self.held.push(Held { start, end, opcode, id, seen: None, refused: None });
        }
    }

    /// A read's reply, which may show records up to `seen`, is at
    /// `start..end` of the write buffer.
    /// On a quorum leader every read is held: it waits for a majority to
    /// confirm the leadership (linearizable reads, see the module docs).
    #[inline]
    pub(super) fn note_read(&mut self, start: usize, end: usize, opcode: u8, id: u32, seen: u64) {
        if self.gate_reads && (seen > self.safe || self.quorum.is_some()) {
            self.held.push(Held { start, end, opcode, id, seen: Some(seen), refused: None });
        }
    }

    /// Durable (by the policy's measure) and committed, as known now.
    fn current_safe(&self) -> u64 {
        let mut safe = u64::MAX;
        if let Some(rx) = &self.rx {
            safe = reached(&rx.borrow(), self.fsynced);
        }
        if let Some(q) = &self.quorum {
            safe = safe.min(*q.commit.borrow());
        }
        safe
    }

    /// Writes `wbuf` out, first waiting until every held reply may go:
    /// its records durable (WAL failed instead: IO_ERROR), then committed
    /// (no majority within the quorum timeout: NO_QUORUM).
    pub(super) async fn flush<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        wbuf: &mut BytesMut,
        shared: &Shared,
        cancel: &CancellationToken,
    ) -> std::io::Result<()> {
        let writes = self.held.iter().any(|h| h.seen.is_none());
        if crate::oplog::take_owed_wal_wake() {
            if writes {
                // The other connections this turn of the runtime serves
                // append first; then one wake-up and one `write` take them
                // all (see `defer_wal_wakes`).
                tokio::task::yield_now().await;
            }
            shared.store.log().wake_wal();
        }
        if !self.held.is_empty() {
            // A switch to leader during the batch: its writes wait for the
            // new leadership's commit index.
            self.refresh(shared);
            self.wait(shared, writes).await;
            if self.held.iter().any(|h| h.refused.is_some()) {
                self.replace(wbuf, shared);
            }
            self.held.clear();
            self.safe = self.current_safe();
        }
        if !wbuf.is_empty() {
            write_out(stream, wbuf, cancel, shared).await?;
            wbuf.clear();
        }
        Ok(())
    }

    /// Waits for the held replies' records, marking the ones refused.
    async fn wait(&mut self, shared: &Shared, writes: bool) {
        // Asked first, so the round is under way while the records wait;
        // bounded by the quorum timeout from now, not after them.
        let confirm = match &self.quorum {
            Some(q) if self.held.iter().any(|h| h.seen.is_some()) => {
                Some((q.reads.confirm(), tokio::time::Instant::now() + q.limit))
            }
            _ => None,
        };
        let log_end = if writes { shared.store.log().last_index() } else { 0 };
        let target_of = |h: &Held| h.seen.unwrap_or(log_end);
        let waiting = |held: &[Held]| held.iter().filter(|h| h.refused.is_none()).map(target_of).max();
        let safe = self.current_safe();
        let reads_waiting = self.held.iter().filter(|h| h.seen.is_some_and(|s| s > safe)).count();
        if reads_waiting > 0 {
            shared.stats.note_reads_waited(reads_waiting);
        }
        if let (Some(rx), Some(target)) = (self.rx.as_mut(), waiting(&self.held)) {
            let fsynced = self.fsynced;
            let have = match rx.wait_for(|d| reached(d, fsynced) >= target || d.failed).await {
                Ok(d) => reached(&d, fsynced),
                Err(_) => 0,
            };
            if have < target {
                refuse(&mut self.held, have, log_end, Refusal::Wal);
            }
        }
        if let (Some(q), Some(target)) = (self.quorum.as_mut(), waiting(&self.held)) {
            if writes {
                // The streamer may not have seen these records yet.
                shared.repl.appended();
            }
            // One watch and this connection's timer: the leadership's end
            // pokes the commit watch (`ReadConfirm::ended`), so no
            // cancellation token is polled beside them.
            let deadline = tokio::time::Instant::now() + q.limit;
            let timer = match &mut self.limit {
                Some(timer) => {
                    timer.as_mut().reset(deadline);
                    timer
                }
                None => self.limit.insert(Box::pin(tokio::time::sleep_until(deadline))),
            };
            {
                let QuorumWatch { commit, reads, .. } = &mut *q;
                let committed = commit.wait_for(|c| *c >= target || reads.ended());
                tokio::pin!(committed);
                std::future::poll_fn(|cx| match committed.as_mut().poll(cx) {
                    Poll::Ready(_) => Poll::Ready(()),
                    Poll::Pending => timer.as_mut().poll(cx),
                })
                .await;
            }
            let have = *q.commit.borrow();
            if have < target {
                if q.reads.ended() {
                    warn!(
                        index = target,
                        commit = have,
                        "no longer leading: answering held replies as a non-leader"
                    );
                    refuse(&mut self.held, have, log_end, Refusal::Deposed);
                } else {
                    warn!(index = target, commit = have, "no quorum: answering held replies with NO_QUORUM");
                    refuse(&mut self.held, have, log_end, Refusal::Quorum);
                }
            }
        } else if writes && self.quorum.is_none() && shared.repl.is_quorum_follower() {
            // Executed as a leader that stepped down before this batch
            // read its quorum watch: never acknowledged.
            refuse(&mut self.held, 0, log_end, Refusal::Deposed);
        }
        if let (Some(q), Some((confirmed, deadline))) = (self.quorum.as_ref(), confirm) {
            let why = tokio::select! {
                r = tokio::time::timeout_at(deadline, confirmed) => match r {
                    Ok(Ok(())) => None,
                    Ok(Err(_)) => Some(Refusal::Deposed),
                    Err(_) if q.deposed.is_cancelled() => Some(Refusal::Deposed),
                    Err(_) => Some(Refusal::Unconfirmed),
                },
                _ = q.deposed.cancelled() => Some(Refusal::Deposed),
            };
            if let Some(why) = why {
                warn!(?why, "leadership not confirmed by a majority: refusing held reads");
                for h in self.held.iter_mut().filter(|h| h.refused.is_none() && h.seen.is_some()) {
                    h.refused = Some(why);
                }
            }
        }
    }

    /// Rewrites every refused reply in `wbuf` as its error.
    fn replace(&self, wbuf: &mut BytesMut, shared: &Shared) {
        let limit = self.quorum.as_ref().map_or(0, |q| q.limit.as_millis());
        let (not_leader_status, not_leader) =
            shared.repl.refuse_write().unwrap_or((Status::NoLeader, "no leader known; retry later".into()));
        let wal_write = dispatch::wal_failure_message(shared);
        let wal_read = wal_read_message(shared);
        let quorum_write = format!(
            "write applied on the leader but not held by a majority within {limit} ms (quorum mode); \
             it may or may not survive a failover"
        );
        let deposed_write =
            "write applied while this node led, but it stopped leading before a majority held it \
                             (quorum mode); it may or may not survive"
                .to_string();
        let quorum_read = format!(
            "read refused: the value is not yet committed (its last change was not held by a majority \
             within {limit} ms, quorum mode); retry later"
        );
        let unconfirmed_read = format!(
            "read refused: no majority confirmed within {limit} ms that this node still leads (quorum \
             mode reads are linearizable; it may have been deposed); retry later or at another node"
        );
        let old = wbuf.split();
        let mut at = 0;
        for h in &self.held {
            let Some(refusal) = h.refused else { continue };
            let (status, msg) = match (refusal, h.seen.is_some()) {
                (Refusal::Wal, false) => (Status::IoError, &wal_write),
                (Refusal::Wal, true) => (Status::IoError, &wal_read),
                (Refusal::Quorum, false) => (Status::NoQuorum, &quorum_write),
                (Refusal::Quorum, true) => (Status::NoQuorum, &quorum_read),
                (Refusal::Deposed, false) => (Status::NoQuorum, &deposed_write),
                (Refusal::Deposed, true) => (not_leader_status, &not_leader),
                (Refusal::Unconfirmed, _) => (Status::NoQuorum, &unconfirmed_read),
            };
            wbuf.extend_from_slice(&old[at..h.start]);
            encode_response(wbuf, h.opcode, h.id, status, BodyType::Text, &[], msg.as_bytes());
            at = h.end;
        }
        wbuf.extend_from_slice(&old[at..]);
    }
}

/// What the policy counts as durable: fsynced under `always`, else written.
fn reached(d: &Durability, fsynced: bool) -> u64 {
    if fsynced {
        d.synced
    } else {
        d.written
    }
}

/// Marks `why` on every held reply not yet refused whose records are not
/// all at or below `have` (a write's: the log's end, `log_end`).
fn refuse(held: &mut [Held], have: u64, log_end: u64, why: Refusal) {
    let mut n = 0;
    for h in held.iter_mut().filter(|h| h.refused.is_none()) {
        if h.seen.unwrap_or(log_end) > have {
            h.refused = Some(why);
            n += 1;
        }
    }
    if why == Refusal::Wal {
        warn!(replies = n, "WAL not durable: answering held replies with IO_ERROR");
    }
}

/// The IO_ERROR message of a read whose value the failing WAL has not made
/// durable.
fn wal_read_message(shared: &Shared) -> String {
    let Some(p) = &shared.persist else { return String::new() };
    let reason = p.wal.stats().last_error.unwrap_or_default();
    if p.wal.durability().fatal {
        format!(
            "read refused: the value is not durable and the WAL could not be made durable ({reason}); \
             restart the server"
        )
    } else {
        format!("read refused: the value is not durable yet and the WAL cannot be written ({reason}); retry later")
    }
}
