//! The policy core, driven by hand: a scripted disk answers each action
//! (or fails it), and every case compares the actions taken, in order, as
//! short strings.

use super::*;

/// Every record in these tests is this long.
const REC: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write,
    Truncate,
    Sync,
    Create,
}

/// Carries out actions like the IO thread, failing those it is told to.
struct Harness {
    core: WalPolicy,
    t0: Instant,
    now: Instant,
    next: u64,
    /// (operation, error, for Create: whether it failed in an fsync)
    faults: Vec<(Op, &'static str, bool)>,
    /// Background fsyncs handed out and not yet answered: (upto, generation).
    background: Vec<(u64, u64)>,
}

impl Harness {
    fn new(policy: FsyncPolicy) -> Harness {
        Harness::with_segment(policy, 1 << 20)
    }

    fn with_segment(policy: FsyncPolicy, segment_bytes: u64) -> Harness {
        let t0 = Instant::now();
        Harness {
            core: WalPolicy::new(policy, segment_bytes, 0, HEADER, t0),
            t0,
            now: t0,
            next: 1,
            faults: Vec::new(),
            background: Vec::new(),
        }
    }

    fn at_ms(&mut self, ms: u64) -> &mut Harness {
        self.now = self.t0 + Duration::from_millis(ms);
        self
    }

    /// Queues `n` records (as the IO thread does after taking them).
    fn queue(&mut self, n: u64) -> &mut Harness {
        let bytes = BytesMut::from(&vec![b'r'; REC * n as usize][..]);
        self.next += n;
        self.core.step(Event::Queued { bytes, last: self.next - 1 }, self.now);
        self
    }

    fn fail(&mut self, op: Op, error: &'static str) -> &mut Harness {
        self.faults.push((op, error, false));
        self
    }

    fn fail_create_fsync(&mut self, error: &'static str) -> &mut Harness {
        self.faults.push((Op::Create, error, true));
        self
    }

    fn step(&mut self, event: Event) -> &mut Harness {
        self.core.step(event, self.now);
        self
    }

    fn fault(&mut self, op: Op) -> Option<(&'static str, bool)> {
        let i = self.faults.iter().position(|f| f.0 == op)?;
        let (_, e, fsync) = self.faults.remove(i);
        Some((e, fsync))
    }

    /// Polls until idle, carrying out each action; returns them as strings.
    fn run(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..100 {
            let Some(action) = self.core.poll(self.now) else { return out };
            out.push(show(&action));
            let outcome = match action {
                Action::Write { .. } => Some(match self.fault(Op::Write) {
                    Some((e, _)) => Event::WriteFailed { error: e.into() },
                    None => Event::WriteDone,
                }),
                Action::Truncate { .. } => Some(match self.fault(Op::Truncate) {
                    Some((e, _)) => Event::TruncateFailed { error: e.into() },
                    None => Event::TruncateDone,
                }),
                Action::Sync { upto, generation } => Some(match self.fault(Op::Sync) {
                    Some((e, _)) => Event::SyncFailed { error: e.into() },
                    None => Event::SyncDone { upto, generation },
                }),
                Action::SyncInBackground { upto, generation } => {
                    self.background.push((upto, generation));
                    None
                }
                Action::CreateSegment { .. } => Some(match self.fault(Op::Create) {
                    Some((e, fsync)) => Event::CreateFailed { error: e.into(), fsync },
                    None => Event::SegmentCreated,
                }),
                Action::Exit(_) => return out,
                Action::Publish(_) | Action::Report(_) | Action::AnswerRotate => None,
            };
            if let Some(e) = outcome {
                self.core.step(e, self.now);
            }
        }
        panic!("the core never went idle: {out:?}");
    }

    /// Answers the oldest background fsync.
    fn background_done(&mut self) -> &mut Harness {
        let (upto, generation) = self.background.remove(0);
        self.step(Event::BackgroundSyncDone { upto, generation })
    }

    fn state(&self) -> (u64, u64, bool, bool) {
        let d = self.core.durability();
        (d.written, d.synced, d.failed, d.fatal)
    }
}

fn show(a: &Action) -> String {
    match a {
        Action::Write { offset, bytes } => format!("write {}@{offset}", bytes.len()),
        Action::Truncate { len } => format!("truncate {len}"),
        Action::Sync { upto, .. } => format!("sync {upto}"),
        Action::SyncInBackground { upto, .. } => format!("bg-sync {upto}"),
        Action::CreateSegment { first } => format!("create {first}"),
        Action::Publish(d) => format!(
            "publish w{} s{}{}{}",
            d.written,
            d.synced,
            if d.failed { " failed" } else { "" },
            if d.fatal { " fatal" } else { "" }
        ),
        Action::Report(Report::Failing(e)) => format!("failing: {e}"),
        Action::Report(Report::StillFailing(e)) => format!("still failing: {e}"),
        Action::Report(Report::Recovered) => "recovered".into(),
        Action::Report(Report::Fatal(e)) => format!("fatal: {e}"),
        Action::Report(Report::Detached(e)) => format!("detached: {e}"),
        Action::AnswerRotate => "answer-rotate".into(),
        Action::Exit(Ok(())) => "exit ok".into(),
        Action::Exit(Err(e)) => format!("exit err: {e}"),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn each_policy_writes_at_once_and_fsyncs_when_it_says() {
    use FsyncPolicy::*;
    // (policy, right after queuing 3 records at 10 ms, deadline, at 1 s,
    // after the background fsync answers)
    #[allow(clippy::type_complexity)]
    let cases: &[(FsyncPolicy, &[&str], Option<u64>, &[&str], &[&str])] = &[
        (Always, &["write 30@16", "bg-sync 3", "publish w3 s0"], None, &[], &["publish w3 s3"]),
        (EverySec, &["write 30@16", "publish w3 s0"], Some(1000), &["bg-sync 3"], &["publish w3 s3"]),
        (No, &["write 30@16", "publish w3 s0"], None, &[], &[]),
    ];
    for (i, (policy, first, deadline, at_1s, after_bg)) in cases.iter().enumerate() {
        let mut h = Harness::new(*policy);
        assert_eq!(h.at_ms(10).queue(3).run(), strs(first), "case #{i} ({policy:?}): queued");
        let got = h.core.next_deadline().map(|d| (d - h.t0).as_millis() as u64);
        assert_eq!(got, *deadline, "case #{i} ({policy:?}): deadline");
        assert_eq!(h.at_ms(1000).run(), strs(at_1s), "case #{i} ({policy:?}): at 1 s");
        if !h.background.is_empty() {
            assert_eq!(h.background_done().run(), strs(after_bg), "case #{i} ({policy:?}): bg done");
        }
        assert_eq!(h.at_ms(10_000).run(), Vec::<String>::new(), "case #{i} ({policy:?}): idle");
    }
}

#[test]
fn records_queued_meanwhile_share_one_write_and_one_fsync() {
    let mut h = Harness::new(FsyncPolicy::Always);
    h.queue(2).queue(3);
    assert_eq!(h.run(), strs(&["write 50@16", "bg-sync 5", "publish w5 s0"]));
    assert_eq!(h.background_done().run(), strs(&["publish w5 s5"]));
    assert_eq!(h.queue(1).run(), strs(&["write 10@66", "bg-sync 6", "publish w6 s5"]));
}

#[test]
fn always_writes_the_next_batches_while_a_sync_is_in_flight() {
    let mut h = Harness::new(FsyncPolicy::Always);
    assert_eq!(h.queue(2).run(), strs(&["write 20@16", "bg-sync 2", "publish w2 s0"]));
    // The disk is busy: later batches are written at once, not synced yet.
    assert_eq!(h.queue(1).run(), strs(&["write 10@36", "publish w3 s0"]));
    assert_eq!(h.queue(3).run(), strs(&["write 30@46", "publish w6 s0"]));
    assert_eq!(h.background.len(), 1, "one sync in flight at a time");
    // The sync returns: it covered records 1..=2 only (written before it
    // started), and the next one, for 3..=6, starts before anyone is told.
    assert_eq!(h.background_done().run(), strs(&["bg-sync 6", "publish w6 s2"]));
    assert_eq!(h.state(), (6, 2, false, false), "synced stops at the covered index");
    assert_eq!(h.queue(1).run(), strs(&["write 10@76", "publish w7 s2"]));
    assert_eq!(h.background_done().run(), strs(&["bg-sync 7", "publish w7 s6"]));
    assert_eq!(h.background_done().run(), strs(&["publish w7 s7"]));
    assert_eq!(h.run(), Vec::<String>::new(), "idle: nothing in flight");
    assert!(h.background.is_empty());
}

#[test]
fn always_pipeline_serves_requested_syncs_and_shutdown_syncs_inline() {
    let mut h = Harness::new(FsyncPolicy::Always);
    h.queue(2).run();
    h.step(Event::SyncRequested { through: 2 });
    assert_eq!(h.run(), Vec::<String>::new(), "the sync in flight covers it");
    h.queue(1).run();
    // Shutdown does not wait for the pipeline: one last inline fsync.
    h.step(Event::Shutdown);
    assert_eq!(h.run(), strs(&["sync 3", "publish w3 s3", "exit ok"]));
    h.background_done();
    assert_eq!(h.state(), (3, 3, false, false), "a late pipelined sync changes nothing");
}

#[test]
fn a_failed_sync_mid_pipeline_is_fatal_and_claims_nothing_written_after_it() {
    let mut h = Harness::new(FsyncPolicy::Always);
    h.queue(2).run();
    h.background_done().run();
    h.queue(2).run(); // bg-sync 4 in flight
    assert_eq!(h.queue(1).run(), strs(&["write 10@56", "publish w5 s2"]));
    h.background.clear();
    h.step(Event::SyncFailed { error: "fsync: EIO".into() });
    assert_eq!(h.run(), strs(&["fatal: fsync: EIO", "publish w5 s2 failed fatal"]));
    // Nothing is written or synced again; a late success claims nothing.
    h.step(Event::BackgroundSyncDone { upto: 4, generation: 0 });
    assert_eq!(h.queue(1).at_ms(60_000).run(), Vec::<String>::new());
    assert_eq!(h.state(), (5, 2, true, true));
    assert_eq!(h.step(Event::Shutdown).run(), strs(&["exit err: fsync: EIO"]));
}

#[test]
fn everysec_waits_for_a_background_fsync_before_starting_another() {
    let mut h = Harness::new(FsyncPolicy::EverySec);
    h.at_ms(1000).queue(1);
    assert_eq!(h.run(), strs(&["write 10@16", "publish w1 s0", "bg-sync 1"]));
    assert_eq!(h.at_ms(1500).queue(1).run(), strs(&["write 10@26", "publish w2 s0"]));
    assert_eq!(h.core.next_deadline(), None, "one in flight: nothing to schedule");
    assert_eq!(h.at_ms(2500).run(), Vec::<String>::new());
    assert_eq!(h.background_done().run(), strs(&["publish w2 s1", "bg-sync 2"]), "overdue since 2 s");
    assert_eq!(h.background_done().run(), strs(&["publish w2 s2"]));
}

#[test]
fn a_snapshot_gets_its_fsync_under_every_policy() {
    for (i, policy) in [FsyncPolicy::No, FsyncPolicy::EverySec].into_iter().enumerate() {
        let mut h = Harness::new(policy);
        h.at_ms(10).queue(3).run();
        h.step(Event::SyncRequested { through: 2 });
        assert_eq!(h.run(), strs(&["sync 3", "publish w3 s3"]), "case #{i}");
        // Asked beyond what is written: nothing until it is.
        h.step(Event::SyncRequested { through: 5 });
        assert_eq!(h.run(), Vec::<String>::new(), "case #{i}");
        assert_eq!(h.queue(2).run(), strs(&["write 20@46", "sync 5", "publish w5 s5"]), "case #{i}");
    }
}

#[test]
fn a_full_segment_is_fsynced_then_the_next_one_started() {
    let mut h = Harness::with_segment(FsyncPolicy::No, 50);
    assert_eq!(
        h.queue(4).run(),
        strs(&["write 40@16", "publish w4 s0", "sync 4", "publish w4 s4", "create 5"])
    );
    assert_eq!(h.queue(1).run(), strs(&["write 10@16", "publish w5 s4"]));
}

#[test]
fn a_requested_rotation_happens_only_if_the_segment_holds_records() {
    let mut h = Harness::new(FsyncPolicy::Always);
    h.step(Event::RotateRequested);
    assert_eq!(h.run(), strs(&["answer-rotate"]), "empty segment: nothing to do");
    h.queue(1).run();
    h.step(Event::RotateRequested);
    // The closing segment is fsynced inline, even with a pipelined one in flight.
    assert_eq!(h.run(), strs(&["sync 1", "publish w1 s1", "create 2", "answer-rotate"]));
    assert_eq!(h.background_done().run(), Vec::<String>::new(), "the late sync of 1 claims nothing new");
    assert_eq!(h.queue(1).run(), strs(&["write 10@16", "bg-sync 2", "publish w2 s1"]));
}

#[test]
fn shutdown_writes_and_fsyncs_everything_under_every_policy() {
    for (i, policy) in [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No].into_iter().enumerate() {
        let mut h = Harness::with_segment(policy, 40);
        h.queue(3).step(Event::Shutdown).step(Event::RotateRequested);
        let got = h.run();
        assert_eq!(got[..2], strs(&["write 30@16", "sync 3"]), "case #{i}: {got:?}");
        assert_eq!(got[2..], strs(&["publish w3 s3", "answer-rotate", "exit ok"]), "case #{i}");
    }
}

#[test]
fn a_failed_write_is_cut_off_and_retried_until_it_succeeds() {
    // EIO, ENOSPC and a short write look the same to the policy: the
    // segment is cut back to its last record boundary and the bytes kept.
    for (i, error) in
        ["write: EIO", "write: ENOSPC", "write: short write, then ENOSPC"].into_iter().enumerate()
    {
        let mut h = Harness::new(FsyncPolicy::EverySec);
        h.queue(1).run();
        h.fail(Op::Write, error).fail(Op::Write, "again");
        let want = [
            "write 20@26".to_string(),
            format!("failing: {error}"),
            "truncate 26".into(),
            "publish w1 s0 failed".into(),
        ];
        assert_eq!(h.at_ms(100).queue(2).run(), want, "case #{i}");
        assert_eq!(h.core.error(), Some(error), "case #{i}");
        assert_eq!(h.at_ms(600).queue(1).run(), Vec::<String>::new(), "case #{i}: waits");
        assert_eq!(h.core.next_deadline(), Some(h.t0 + Duration::from_millis(1100)), "case #{i}");
        let want = ["write 30@26", "still failing: again", "truncate 26", "publish w1 s0 failed"];
        assert_eq!(h.at_ms(1100).run(), strs(&want), "case #{i}: the retry fails too");
        let want = ["write 30@26", "recovered", "publish w4 s0", "bg-sync 4"];
        assert_eq!(h.at_ms(2100).run(), strs(&want), "case #{i}: healed");
        assert_eq!(h.state(), (4, 0, false, false), "case #{i}");
        assert_eq!(h.core.error(), None, "case #{i}");
    }
}

#[test]
fn a_failed_cut_back_is_fatal() {
    let mut h = Harness::new(FsyncPolicy::No);
    h.fail(Op::Write, "write: EIO").fail(Op::Truncate, "truncate: EIO");
    let got = h.queue(1).run();
    assert_eq!(got[..3], strs(&["write 10@16", "failing: write: EIO", "truncate 16"]));
    assert!(got[3].starts_with("fatal: truncate: EIO"), "{got:?}");
    assert_eq!(got[4..], strs(&["publish w0 s0 failed fatal"]));
}

#[test]
fn a_failed_fsync_is_fatal_and_nothing_is_written_or_synced_again() {
    // (policy, how the fsync is asked for, the actions up to the failure)
    // (`always` fsyncs in the background: see the mid-pipeline case.)
    let cases: &[(FsyncPolicy, bool, &[&str])] = &[
        (
            FsyncPolicy::EverySec,
            true,
            &["write 20@16", "sync 2", "fatal: fsync: EIO", "publish w2 s0 failed fatal"],
        ),
        (
            FsyncPolicy::No,
            true,
            &["write 20@16", "sync 2", "fatal: fsync: EIO", "publish w2 s0 failed fatal"],
        ),
    ];
    for (i, (policy, requested, want)) in cases.iter().enumerate() {
        let mut h = Harness::new(*policy);
        h.fail(Op::Sync, "fsync: EIO");
        if *requested {
            h.step(Event::SyncRequested { through: 2 });
        }
        assert_eq!(h.queue(2).run(), strs(want), "case #{i}");
        // Later records, requests, retries: nothing touches the disk.
        h.step(Event::SyncRequested { through: 3 }).step(Event::RotateRequested);
        assert_eq!(h.queue(1).at_ms(60_000).run(), strs(&["answer-rotate"]), "case #{i}");
        assert_eq!(h.state(), (2, 0, true, true), "case #{i}");
        assert_eq!(h.core.next_deadline(), None, "case #{i}");
        assert_eq!(h.step(Event::Shutdown).run(), strs(&["exit err: fsync: EIO"]), "case #{i}");
    }
}

#[test]
fn a_failed_background_fsync_is_fatal_and_a_late_success_claims_nothing() {
    let mut h = Harness::new(FsyncPolicy::EverySec);
    h.at_ms(1000).queue(1).run();
    h.at_ms(1100).queue(1).run();
    h.step(Event::SyncFailed { error: "fsync: EIO".into() });
    assert_eq!(h.run(), strs(&["fatal: fsync: EIO", "publish w2 s0 failed fatal"]));
    // A retried fsync may succeed without the data being on disk.
    h.background_done();
    h.step(Event::SyncDone { upto: 2, generation: 0 });
    assert_eq!(h.run(), Vec::<String>::new());
    assert_eq!(h.state(), (2, 0, true, true));
}

#[test]
fn a_segment_that_cannot_be_started_is_retried_but_a_failed_fsync_there_is_fatal() {
    let mut h = Harness::with_segment(FsyncPolicy::Always, 30);
    h.fail(Op::Create, "create wal-3: ENOSPC");
    let want = ["write 20@16", "bg-sync 2", "publish w2 s0", "sync 2", "publish w2 s2", "create 3"];
    let failed = ["failing: create wal-3: ENOSPC", "publish w2 s2 failed"];
    assert_eq!(h.queue(2).run(), strs(&[&want[..], &failed[..]].concat()));
    assert_eq!(h.background_done().run(), Vec::<String>::new());
    assert_eq!(h.at_ms(500).queue(1).run(), Vec::<String>::new());
    let want = ["create 3", "recovered", "write 10@16", "bg-sync 3", "publish w3 s2"];
    assert_eq!(h.at_ms(1000).run(), strs(&want));

    let mut h = Harness::with_segment(FsyncPolicy::Always, 30);
    h.fail_create_fsync("fsync directory: EIO");
    let got = h.queue(2).run();
    assert_eq!(got[5..], strs(&["create 3", "fatal: fsync directory: EIO", "publish w2 s2 failed fatal"]));
}

#[test]
fn shutdown_while_failing_tries_once_more_then_reports_what_was_lost() {
    let mut h = Harness::new(FsyncPolicy::EverySec);
    h.fail(Op::Write, "ENOSPC").fail(Op::Write, "ENOSPC");
    h.queue(3).run();
    h.step(Event::Shutdown);
    let want = ["write 30@16", "still failing: ENOSPC", "truncate 16", "publish w0 s0 failed"];
    assert_eq!(
        h.at_ms(10).run(),
        strs(&[&want[..], &["exit err: records 1..=3 could not be written: ENOSPC"]].concat())
    );

    let mut h = Harness::new(FsyncPolicy::EverySec);
    h.fail(Op::Write, "ENOSPC");
    h.queue(3).run();
    h.step(Event::Shutdown);
    let want = ["write 30@16", "recovered", "sync 3", "publish w3 s3", "exit ok"];
    assert_eq!(h.at_ms(10).run(), strs(&want), "the disk came back in time");
}

#[test]
fn a_restart_starts_over_and_ignores_fsyncs_of_the_replaced_wal() {
    let mut h = Harness::new(FsyncPolicy::EverySec);
    h.at_ms(1000).queue(5).run();
    assert_eq!(h.background.len(), 1);
    h.step(Event::SyncRequested { through: 5 });
    h.step(Event::Restarted { next_index: 3 });
    h.next = 3;
    h.background_done();
    assert_eq!(h.run(), strs(&["publish w2 s2"]), "the old fsync of index 5 claims nothing");
    assert_eq!(h.at_ms(1100).queue(1).run(), strs(&["write 10@16", "publish w3 s2"]), "old request dropped");
}

#[test]
fn a_failed_restart_detaches_until_the_next_one() {
    let mut h = Harness::new(FsyncPolicy::Always);
    h.queue(2).run();
    h.background_done().run();
    h.step(Event::RestartFailed { error: "rename: EIO".into(), fsync: false });
    assert_eq!(h.run(), strs(&["detached: rename: EIO", "publish w2 s2 failed"]));
    assert_eq!(h.queue(1).at_ms(60_000).run(), Vec::<String>::new(), "no segment: nothing written");
    h.step(Event::Restarted { next_index: 10 });
    h.next = 10;
    assert_eq!(h.run(), strs(&["recovered", "publish w9 s9"]));
    assert_eq!(h.queue(1).run(), strs(&["write 10@16", "bg-sync 10", "publish w10 s9"]));
    assert_eq!(h.background_done().run(), strs(&["publish w10 s10"]));

    h.step(Event::RestartFailed { error: "fsync directory: EIO".into(), fsync: true });
    assert_eq!(h.run(), strs(&["fatal: fsync directory: EIO", "publish w10 s10 failed fatal"]));
    h.step(Event::Restarted { next_index: 20 });
    assert_eq!(h.run(), Vec::<String>::new(), "fatal stays fatal");
}

#[test]
fn invariants_hold_through_a_random_walk() {
    use crate::rng::SplitMix64;
    for seed in 0..200u64 {
        let mut rng = SplitMix64::new(seed);
        let policy = [FsyncPolicy::Always, FsyncPolicy::EverySec, FsyncPolicy::No][seed as usize % 3];
        let mut h = Harness::with_segment(policy, 100);
        let mut ms = 0;
        for _ in 0..200 {
            ms += rng.next_u64() % 700;
            h.at_ms(ms);
            match rng.next_u64() % 10 {
                0 => {
                    h.fail(Op::Write, "w");
                }
                1 => {
                    h.fail(Op::Create, "c");
                }
                2 if !h.background.is_empty() => {
                    h.background_done();
                }
                3 => {
                    h.step(Event::SyncRequested { through: h.next - 1 });
                }
                4 => {
                    h.step(Event::RotateRequested);
                }
                _ => {
                    h.queue(1 + rng.next_u64() % 3);
                }
            }
            h.run();
            let d = h.core.durability();
            assert!(d.synced <= d.written && d.written <= h.core.queued, "seed {seed}: {d:?}");
            assert!(!d.fatal, "seed {seed}: no fsync failed");
            if !d.failed {
                assert!(h.core.pending.is_empty(), "seed {seed}: healthy and idle means all written");
            }
        }
        h.faults.clear();
        h.step(Event::Shutdown);
        let got = h.at_ms(ms + 10_000).run();
        assert_eq!(got.last().map(String::as_str), Some("exit ok"), "seed {seed}: {got:?}");
        assert_eq!(h.core.durability().synced, h.next - 1, "seed {seed}");
    }
}
