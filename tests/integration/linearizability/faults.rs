//! Seeded fault schedules against a 3-node cluster with elections (node 1
//! leads first; nodes 2 and 3 reach node 1 through a proxy each): kill -9
//! and restart, SIGSTOP/SIGCONT, link cuts and stalls. The seed alone
//! decides the faults, their order and how long each is held, so a
//! schedule replays exactly (what the clients do meanwhile, and which
//! node leads when a fault begins, depend on timing).
//!
//! Leader faults hit the node leading when the fault begins; follower
//! faults (2, 3) hit the first or second of the others. Link faults act on
//! the proxies, between node 2 or 3 and node 1, whatever node 1's role.
//!
//! A fault is held for its scheduled time — that is the fault, not a wait
//! for something to happen — then healed; every restart waits (polling,
//! up to the shared deadline) until the node listens.

use std::fmt;
use std::time::{Duration, Instant};

use crate::common::cluster::Cluster;
use crate::common::proxy::Proxy;
use crate::common::SeededRng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 follower `id` (2: the first non-leader, 3: the second); restart it after the hold.
    KillFollower(u64),
    /// SIGSTOP follower `id` (as above) for the hold.
    PauseFollower(u64),
    /// Drop node `id`'s connections to node 1 (it reconnects).
    CutLink(u64),
    /// Hold every byte between node `id` and node 1, sockets open.
    StallLink(u64),
    /// SIGSTOP the node leading now for the hold.
    PauseLeader,
    /// kill -9 the node leading now; restart it after the hold.
    KillLeader,
}

/// Which faults a schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSet {
    /// Followers and links, and pauses of the leader.
    FollowersAndLinks,
    /// All of those, and kill -9 of the leader.
    WithLeaderKill,
    /// kill -9 of the leader and nothing else.
    LeaderKills,
}

#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub fault: Fault,
    pub hold: Duration,
    /// Quiet time after the fault is healed.
    pub gap: Duration,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub seed: u64,
    pub steps: Vec<Step>,
}

fn ms(rng: &mut SeededRng, lo: usize, hi: usize) -> Duration {
    Duration::from_millis(rng.range(lo, hi) as u64)
}

impl Schedule {
    /// Faults from `set` until about `length` of faults and gaps (with a
    /// leader kill among them when `set` has those).
    pub fn generate(seed: u64, set: FaultSet, length: Duration) -> Schedule {
        let mut rng = SeededRng::new(seed);
        let mut steps = Vec::new();
        let mut total = Duration::ZERO;
        while total < length {
            let follower = rng.range(2, 4) as u64;
            let kinds = match set {
                FaultSet::FollowersAndLinks => 0..5,
                FaultSet::WithLeaderKill => 0..7,
                FaultSet::LeaderKills => 5..6,
            };
            let (fault, hold) = match rng.range(kinds.start, kinds.end) {
                0 => (Fault::KillFollower(follower), ms(&mut rng, 50, 800)),
                1 => (Fault::PauseFollower(follower), ms(&mut rng, 100, 1500)),
                2 => (Fault::CutLink(follower), Duration::ZERO),
                3 => (Fault::StallLink(follower), ms(&mut rng, 100, 1500)),
                // Past the clients' request timeout now and then.
                4 => (Fault::PauseLeader, ms(&mut rng, 50, 1800)),
                // Leader kills weigh double when drawn from.
                _ => (Fault::KillLeader, ms(&mut rng, 20, 500)),
            };
            let gap = ms(&mut rng, 100, 500);
            total += hold + gap;
            steps.push(Step { fault, hold, gap });
        }
        if set != FaultSet::FollowersAndLinks && !steps.iter().any(|s| s.fault == Fault::KillLeader) {
            let at = rng.range(0, steps.len());
            steps[at].fault = Fault::KillLeader;
            steps[at].hold = ms(&mut rng, 20, 500);
        }
        Schedule { seed, steps }
    }

    /// Applies each fault, holds it, heals it, waits the gap; returns a
    /// log of what happened when (ms since `since`).
    pub async fn run(&self, c: &mut Cluster, proxies: &[Proxy], since: Instant) -> Vec<String> {
        let mut log = Vec::new();
        for step in &self.steps {
            let leader = c.current_leader().await.unwrap_or(1);
            let others: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
            let target = match step.fault {
                Fault::KillLeader | Fault::PauseLeader => leader,
                Fault::KillFollower(id) | Fault::PauseFollower(id) => others[(id - 2) as usize],
                Fault::CutLink(id) | Fault::StallLink(id) => id,
            };
            log.push(format!(
                "{:>7.1}ms {} (node {target}; node {leader} led)",
                since.elapsed().as_secs_f64() * 1000.0,
                step
            ));
            match step.fault {
                Fault::KillFollower(_) | Fault::KillLeader => kill_and_restart(c, target, step.hold).await,
                Fault::PauseFollower(_) | Fault::PauseLeader => pause(c, target, step.hold).await,
                Fault::CutLink(id) => proxies[(id - 2) as usize].cut(),
                Fault::StallLink(id) => {
                    let proxy = &proxies[(id - 2) as usize];
                    proxy.stall(true);
                    tokio::time::sleep(step.hold).await;
                    proxy.stall(false);
                }
            }
            tokio::time::sleep(step.gap).await;
        }
        log
    }
}

async fn kill_and_restart(c: &mut Cluster, id: u64, hold: Duration) {
    c.node(id).kill_9();
    tokio::time::sleep(hold).await;
    c.node(id).start().await;
}

async fn pause(c: &mut Cluster, id: u64, hold: Duration) {
    c.node(id).signal("STOP");
    tokio::time::sleep(hold).await;
    c.node(id).signal("CONT");
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} held {}ms, then {}ms quiet", self.fault, self.hold.as_millis(), self.gap.as_millis())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "schedule seed {}:", self.seed)?;
        for s in &self.steps {
            writeln!(f, "  {s}")?;
        }
        Ok(())
    }
}
