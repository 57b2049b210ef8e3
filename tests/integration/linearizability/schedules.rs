//! The fault schedules: a few short ones CI runs, and the long run
//! (`bench/jepsen.sh`: ≥ 100 schedules and a summary).
//!
//! Elections are on (`run`): a killed or paused leader is replaced, and
//! clients follow the leader. Quorum histories must be linearizable and
//! keep every acknowledged write exactly once, whatever the leader
//! changes. Async mode may discard, at a failover, writes the old leader
//! acknowledged (README, Elections), so an async history that spans a
//! leader change is held to the weaker promise: no write present twice, no
//! value nobody wrote; losses and linearizability violations are counted,
//! not failed (a check of linearizability within each leader's term is
//! not done yet). An async history without a leader change is held to the
//! full checks, as before: a kill -9 of a process loses nothing it
//! acknowledged under `--fsync always` or `everysec` (README, Durability).

use std::time::Duration;

use super::faults::FaultSet;
use super::run::{run, Report, Setup};
use super::workload::Workload;

/// The seed of a CI schedule: `LIN_SEED` replays another.
fn seed(default: u64) -> u64 {
    std::env::var("LIN_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn setup(replication: &'static str, fsync: &'static str, faults: FaultSet) -> Setup {
    Setup {
        replication,
        fsync,
        faults,
        length: Duration::from_secs(3),
        clients: 4,
        workload: Workload::Mixed,
    }
}

fn assert_passed(r: &Report) {
    eprintln!("{}\n{}", r.summary(), r.faults);
    assert!(r.passed(), "{}", r.describe());
    assert!(
        r.acknowledged_writes > 0 && r.ops > r.acknowledged_writes,
        "the clients got answers:\n{}",
        r.describe()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_fsync_always_under_follower_link_and_leader_pause_faults() {
    assert_passed(&run(seed(1), setup("quorum", "always", FaultSet::FollowersAndLinks)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fsync_everysec_under_follower_link_and_leader_pause_faults() {
    assert_passed(&run(seed(2), setup("async", "everysec", FaultSet::FollowersAndLinks)).await);
}

// Leader kills. Before reads waited for the writes they show (see
// `server/connection/durable.rs`), a read could return a write the leader
// applied before it was durable (and, in quorum mode, committed), which
// its kill -9 then erased.
// The long run hit
// the known bug with these seeds (`bench/jepsen.sh`, SEED_BASE=1000):
//
// seed 1093, quorum/everysec — clients 1 and 3 read 179 after an INCR whose
// outcome is unknown (in flight when the leader was killed at 925.8 ms);
// after the restart client 2 read 178:
//     #350 client 2 Incr -> unknown  [invoked 916.222ms, returned ∞]
//     #351 client 1 Get -> Value(Some(179))  [invoked 917.490ms, returned 918.510ms]
//     #352 client 3 Get -> Value(Some(179))  [invoked 918.685ms, returned 918.959ms]
//     #353 client 2 Get -> Value(Some(178))  [invoked 1246.808ms, returned 1247.384ms]
//
// seed 1068, quorum/always — client 0 read 69 (after two INCRs of unknown
// outcome) just before the kill at 1463.5 ms; after the restart an INCR
// answered 69 again:
//     #151 client 0 Get -> Value(Some(69))  [invoked 1462.833ms, returned 1463.588ms]
//     #152 client 2 Incr -> Incremented(69)  [invoked 1945.308ms, returned 2004.893ms]
//
// The clients' timing does not replay, so these seeds fail only sometimes;
// the hot-counter cases below reproduce the bug in most runs.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_fsync_always_with_leader_kills() {
    assert_passed(&run(seed(3), setup("quorum", "always", FaultSet::WithLeaderKill)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fsync_everysec_with_leader_kills() {
    assert_passed(&run(seed(4), setup("async", "everysec", FaultSet::WithLeaderKill)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_fsync_everysec_seed_1093_read_179_then_178() {
    assert_passed(&run(seed(1093), setup("quorum", "everysec", FaultSet::WithLeaderKill)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_fsync_always_seed_1068_read_69_then_incr_answered_69() {
    assert_passed(&run(seed(1068), setup("quorum", "always", FaultSet::WithLeaderKill)).await);
}

/// The reproduction: one client INCRs a counter, three GET it,
/// and the leader is killed (-9) and restarted again and again.
fn hot_counter(replication: &'static str, fsync: &'static str) -> Setup {
    Setup {
        workload: Workload::HotCounter,
        length: Duration::from_secs(6),
        ..setup(replication, fsync, FaultSet::LeaderKills)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_fsync_always_hot_counter_under_leader_kills() {
    assert_passed(&run(seed(5), hot_counter("quorum", "always")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fsync_always_hot_counter_under_leader_kills() {
    assert_passed(&run(seed(6), hot_counter("async", "always")).await);
}

/// A number from the environment, or `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// The long run (`bench/jepsen.sh`): `SCHEDULES` schedules (100 by
/// default) of `SCHEDULE_SECS` seconds each, seeds from `SEED_BASE` on,
/// cycling through quorum and async mode, `--fsync always` and
/// `everysec`, with and without leader kills; prints a line per schedule,
/// a summary per setup, and every failure with its seed and
/// counter-example, then fails if there was any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the long run: bench/jepsen.sh, or SCHEDULES=100 cargo test … -- --ignored"]
async fn many_fault_schedules() {
    let schedules = env_or("SCHEDULES", 100);
    let length = Duration::from_secs(env_or("SCHEDULE_SECS", 3));
    let base = env_or("SEED_BASE", 1000);
    let mut setups = Vec::new();
    for faults in [FaultSet::FollowersAndLinks, FaultSet::WithLeaderKill] {
        for replication in ["quorum", "async"] {
            for fsync in ["always", "everysec"] {
                setups.push(Setup { length, ..setup(replication, fsync, faults) });
            }
        }
    }
    let mut reports = Vec::new();
    for i in 0..schedules {
        let r = run(base + i, setups[i as usize % setups.len()]).await;
        eprintln!("{} {}", if r.passed() { "ok  " } else { "FAIL" }, r.summary());
        reports.push(r);
    }
    eprintln!("\n{}", summary(&setups, &reports));
    let failed: Vec<&Report> = reports.iter().filter(|r| !r.passed()).collect();
    for r in &failed {
        eprintln!("---\n{}", r.describe());
    }
    assert!(failed.is_empty(), "{} of {} schedules failed (above)", failed.len(), reports.len());
}

/// A table: per setup and in all, schedules, ops, acknowledged writes,
/// unknown outcomes, violations, lost or doubled writes, failed schedules.
fn summary(setups: &[Setup], reports: &[Report]) -> String {
    let mut s = String::from(
        "| setup | schedules | ops | acknowledged writes | unknown outcomes | violations | lost | doubled/invented | leader changed | failed schedules |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut row = |name: String, rs: Vec<&Report>| {
        let sum = |f: fn(&Report) -> usize| rs.iter().map(|r| f(r)).sum::<usize>();
        let failed: Vec<String> = rs.iter().filter(|r| !r.passed()).map(|r| r.seed.to_string()).collect();
        s += &format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            rs.len(),
            sum(|r| r.ops),
            sum(|r| r.acknowledged_writes),
            sum(|r| r.unknown_writes),
            sum(|r| r.violations.len() + r.gave_up.len()),
            sum(|r| r.lost.len()),
            sum(|r| r.lost_or_doubled.len()),
            sum(|r| usize::from(r.leader_changed)),
            if failed.is_empty() { "none".to_string() } else { format!("seeds {}", failed.join(", ")) }
        );
    };
    for setup in setups {
        let name = setup.to_string();
        row(name.clone(), reports.iter().filter(|r| r.setup.to_string() == name).collect());
    }
    row("all".into(), reports.iter().collect());
    s
}
