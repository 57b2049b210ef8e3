//! The Raft paper's election rules (Ongaro & Ousterhout 2014) as table-driven
//! tests of the pure [`Election`] state machine, each named by its section,
//! in the manner of raft-rs's `test_raft_paper.rs`.

use burrow_server::replication::{
    Election, ElectionConfig, ElectionError, ElectionMessage, ElectionOutput, HardState, LogPosition,
    RejectReason, Role, RoleChangeReason, SeededRng, MAX_TERM,
};

const MIN: u64 = 10;
const MAX: u64 = 20;

fn cfg(pre_vote: bool, check_quorum: bool) -> ElectionConfig {
    ElectionConfig {
        election_timeout_min_ticks: MIN,
        election_timeout_max_ticks: MAX,
        pre_vote,
        check_quorum,
    }
}

fn node_with(c: ElectionConfig, id: u64, n: u64, hard: HardState, last: LogPosition) -> Election {
    let voters: Vec<u64> = (1..=n).collect();
    Election::new(c, id, &voters, hard, last, SeededRng::new(id * 7919)).unwrap()
}

/// Node `id` of `1..=n`, at `term` with no vote, an empty log, no pre-vote
/// nor check-quorum (the paper's basic algorithm).
fn node(id: u64, n: u64, term: u64) -> Election {
    node_with(cfg(false, false), id, n, HardState { term, voted_for: None }, LogPosition::default())
}

fn pos(term: u64, index: u64) -> LogPosition {
    LogPosition { term, index }
}

fn vote(term: u64, candidate: u64, last: LogPosition, pre_vote: bool) -> ElectionMessage {
    ElectionMessage::RequestVote {
        term,
        candidate,
        last_log_term: last.term,
        last_log_index: last.index,
        pre_vote,
    }
}

fn resp(term: u64, granted: bool, pre_vote: bool) -> ElectionMessage {
    ElectionMessage::VoteResponse { term, granted, pre_vote }
}

fn sent(out: &[ElectionOutput]) -> Vec<(u64, ElectionMessage)> {
    out.iter()
        .filter_map(|o| match o {
            ElectionOutput::Send { to, msg } => Some((*to, *msg)),
            _ => None,
        })
        .collect()
}

fn persisted(out: &[ElectionOutput]) -> Vec<HardState> {
    out.iter()
        .filter_map(|o| match o {
            ElectionOutput::Persist(h) => Some(*h),
            _ => None,
        })
        .collect()
}

/// Every `Send` and role change that depends on a changed hard state comes
/// after the `Persist` holding it.
fn assert_persist_first(before: HardState, out: &[ElectionOutput]) {
    let mut durable = before;
    for o in out {
        match o {
            ElectionOutput::Persist(h) => durable = *h,
            ElectionOutput::Send { msg, .. } => match *msg {
                ElectionMessage::RequestVote { term, pre_vote: false, .. } => {
                    assert_eq!(term, durable.term, "{out:?}")
                }
                ElectionMessage::VoteResponse { term, granted: true, pre_vote: false } => {
                    assert_eq!(term, durable.term, "{out:?}");
                    assert!(durable.voted_for.is_some(), "{out:?}");
                }
                _ => {}
            },
            ElectionOutput::RoleChanged { term, .. } => assert_eq!(*term, durable.term, "{out:?}"),
            ElectionOutput::Rejected { .. } => {}
        }
    }
}

/// Makes node 1 of `n` the leader of term 1 (votes from 2 and 3).
fn leader(n: u64, c: ElectionConfig) -> Election {
    let mut e = node_with(c, 1, n, HardState::default(), LogPosition::default());
    e.campaign();
    e.outputs();
    let pre = e.role() == Role::PreCandidate;
    for v in 2..=(n / 2 + 1) {
        if pre {
            e.step(v, resp(e.term() + 1, true, true));
        }
    }
    e.outputs();
    for v in 2..=(n / 2 + 1) {
        e.step(v, resp(e.term(), true, false));
    }
    e.outputs();
    assert_eq!(e.role(), Role::Leader);
    e
}

#[test]
fn s5_1_a_higher_term_makes_any_role_a_follower_of_it() {
    // (role to reach, message from node 2, new term, leader known after)
    type Setup = fn() -> Election;
    let follower: Setup = || node(1, 3, 1);
    let candidate: Setup = || {
        let mut e = node(1, 3, 1);
        e.campaign();
        e.outputs();
        e
    };
    let lead: Setup = || leader(3, cfg(false, false));
    for (name, setup) in [("follower", follower), ("candidate", candidate), ("leader", lead)] {
        let msgs =
            [vote(9, 2, pos(0, 0), false), resp(9, false, false), ElectionMessage::TermNotice { term: 9 }];
        for msg in msgs {
            let mut e = setup();
            let before = e.hard_state();
            e.step(2, msg);
            let out = e.outputs();
            assert_eq!(e.term(), 9, "{name} {msg:?}");
            assert!(matches!(e.role(), Role::Follower { .. }), "{name} {msg:?}");
            assert_eq!(persisted(&out).first().map(|h| h.term), Some(9), "{name} {msg:?}: {out:?}");
            assert_persist_first(before, &out);
            assert_eq!(e.leader(), None, "{name} {msg:?}");
        }
        // A leader's message of a higher term: follow that leader.
        let mut e = setup();
        assert!(e.on_leader_contact(3, 9));
        assert_eq!((e.term(), e.role()), (9, Role::Follower { leader: Some(3) }), "{name}");
        assert_eq!(persisted(&e.outputs()), vec![HardState { term: 9, voted_for: None }]);
        // Or any other message carrying it.
        let mut e = setup();
        e.observe_term(3, 9);
        assert_eq!((e.term(), e.role()), (9, Role::Follower { leader: None }), "{name}");
    }
}

#[test]
fn s5_1_stale_terms_are_refused_and_told_the_current_term() {
    let mut e = node(1, 3, 5);
    // (message or leader contact at term 4, the answer)
    e.step(2, vote(4, 2, pos(9, 9), false));
    assert_eq!(sent(&e.outputs()), vec![(2, resp(5, false, false))]);
    e.step(2, vote(4, 2, pos(9, 9), true));
    assert_eq!(sent(&e.outputs()), vec![(2, resp(5, false, true))]);
    assert!(!e.on_leader_contact(3, 4));
    assert_eq!(sent(&e.outputs()), vec![(3, ElectionMessage::TermNotice { term: 5 })]);
    e.step(2, resp(4, true, false));
    e.step(2, ElectionMessage::TermNotice { term: 4 });
    assert!(e.outputs().is_empty());
    assert_eq!((e.term(), e.role()), (5, Role::Follower { leader: None }));
}

#[test]
fn s5_2_a_follower_that_hears_nothing_campaigns_after_a_random_timeout() {
    let mut timeouts = std::collections::BTreeSet::new();
    for seed in 1..=30 {
        let voters = [1, 2, 3];
        let hard = HardState { term: 2, voted_for: None };
        let mut e =
            Election::new(cfg(false, false), seed % 3 + 1, &voters, hard, pos(0, 0), SeededRng::new(seed))
                .unwrap();
        let t = e.election_timeout();
        assert!((MIN..MAX).contains(&t), "{t}");
        timeouts.insert(t);
        let before = e.hard_state();
        for _ in 1..t {
            e.tick();
        }
        assert!(e.outputs().is_empty(), "campaigned before its timeout");
        e.tick();
        let out = e.outputs();
        assert_persist_first(before, &out);
        assert_eq!(persisted(&out), vec![HardState { term: 3, voted_for: Some(e.id()) }]);
        assert_eq!(e.role(), Role::Candidate);
        let asked: Vec<u64> = sent(&out).iter().map(|(to, _)| *to).collect();
        assert_eq!(asked.len(), 2);
        assert!(!asked.contains(&e.id()));
        assert!(sent(&out).iter().all(|(_, m)| *m == vote(3, e.id(), pos(0, 0), false)));
        // §5.2: a candidate whose election times out starts another, in a new term.
        let out = tick_until_role_changes_or_term(&mut e);
        assert_eq!((e.term(), e.role()), (4, Role::Candidate));
        assert_eq!(persisted(&out), vec![HardState { term: 4, voted_for: Some(e.id()) }]);
    }
    assert!(timeouts.len() > 3, "timeouts are not randomised: {timeouts:?}");
}

fn tick_until_role_changes_or_term(e: &mut Election) -> Vec<ElectionOutput> {
    let term = e.term();
    for _ in 0..MAX {
        e.tick();
        if e.term() != term {
            return e.outputs();
        }
    }
    panic!("no new term within {MAX} ticks");
}

#[test]
fn s5_2_a_candidate_wins_with_a_majority_and_loses_to_one() {
    // (cluster size, answers from nodes 2.., outcome)
    let cases: &[(u64, &[bool], Role)] = &[
        (1, &[], Role::Leader),
        (3, &[true], Role::Leader),
        (3, &[false], Role::Candidate),
        (3, &[false, false], Role::Follower { leader: None }),
        (5, &[true], Role::Candidate),
        (5, &[true, true], Role::Leader),
        (5, &[false, true, false], Role::Candidate),
        (5, &[false, false, false], Role::Follower { leader: None }),
        (5, &[false, true, false, true], Role::Leader),
    ];
    for &(n, answers, want) in cases {
        let mut e = node(1, n, 1);
        e.campaign();
        e.outputs();
        for (i, &granted) in answers.iter().enumerate() {
            e.step(i as u64 + 2, resp(2, granted, false));
        }
        let out = e.outputs();
        assert_eq!(e.role(), want, "{n} {answers:?}");
        assert_eq!(e.term(), 2);
        if want == Role::Leader && n > 1 {
            assert!(out.contains(&ElectionOutput::RoleChanged {
                role: Role::Leader,
                term: 2,
                reason: RoleChangeReason::ElectionWon
            }));
        }
    }
    // A duplicated grant counts once.
    let mut e = node(1, 5, 1);
    e.campaign();
    e.step(2, resp(2, true, false));
    e.step(2, resp(2, true, false));
    assert_eq!(e.role(), Role::Candidate);
}

#[test]
fn s5_2_one_vote_per_term_first_come_first_served() {
    let mut e = node(1, 5, 1);
    let before = e.hard_state();
    e.step(2, vote(2, 2, pos(0, 0), false));
    let out = e.outputs();
    assert_persist_first(before, &out);
    assert_eq!(persisted(&out), vec![HardState { term: 2, voted_for: Some(2) }]);
    assert_eq!(sent(&out), vec![(2, resp(2, true, false))]);
    // (from, request, granted)
    let cases = [
        (3, vote(2, 3, pos(1, 1), false), false), // another candidate, same term, better log
        (2, vote(2, 2, pos(0, 0), false), true),  // the same candidate again (a retry)
        (4, vote(2, 4, pos(0, 0), false), false),
    ];
    for (from, msg, granted) in cases {
        e.step(from, msg);
        let out = e.outputs();
        assert!(persisted(&out).is_empty(), "{out:?}");
        assert_eq!(sent(&out), vec![(from, resp(2, granted, false))], "{msg:?}");
    }
    assert_eq!(e.hard_state(), HardState { term: 2, voted_for: Some(2) });
    // A restart with the persisted vote remembers it.
    let mut e = node_with(cfg(false, false), 1, 5, HardState { term: 2, voted_for: Some(2) }, pos(0, 0));
    e.step(3, vote(2, 3, pos(0, 0), false));
    assert_eq!(sent(&e.outputs()), vec![(3, resp(2, false, false))]);
}

#[test]
fn s5_2_a_candidate_or_follower_accepts_a_leader_of_its_term() {
    let mut c = node(1, 3, 1);
    c.campaign();
    c.outputs();
    assert!(c.on_leader_contact(2, 2));
    assert_eq!((c.term(), c.role()), (2, Role::Follower { leader: Some(2) }));
    let out = c.outputs();
    assert!(persisted(&out).is_empty(), "same term, nothing to persist: {out:?}");
    // Another "leader" of the same term cannot exist; it is refused.
    assert!(!c.on_leader_contact(3, 2));
    assert_eq!(c.leader(), Some(2));
    // Leader contact resets the election timer.
    for _ in 0..3 * MAX {
        c.tick();
        assert!(c.on_leader_contact(2, 2));
    }
    assert_eq!(c.role(), Role::Follower { leader: Some(2) });
    // A leader refuses a second leader of its own term.
    let mut l = leader(3, cfg(false, false));
    assert!(!l.on_leader_contact(2, l.term()));
    assert!(l.is_leader());
}

#[test]
fn s5_4_1_votes_only_for_a_log_at_least_as_up_to_date() {
    let own = pos(3, 10);
    // (candidate's last (term, index), granted)
    let cases = [
        (pos(3, 10), true),
        (pos(3, 11), true),
        (pos(4, 1), true), // a later last term wins whatever the length
        (pos(3, 9), false),
        (pos(2, 50), false), // longer, but an older last term
        (pos(0, 0), false),
    ];
    for pre_vote in [false, true] {
        for (cand, granted) in cases {
            let mut e = node_with(cfg(pre_vote, false), 1, 3, HardState { term: 5, voted_for: None }, own);
            e.step(2, vote(6, 2, cand, pre_vote));
            let out = e.outputs();
            let want_term = if granted {
                6
            } else if pre_vote {
                5
            } else {
                6
            };
            assert_eq!(sent(&out), vec![(2, resp(want_term, granted, pre_vote))], "{cand:?} pre {pre_vote}");
            let want_vote = (granted && !pre_vote).then_some(2);
            assert_eq!(e.hard_state().voted_for, want_vote, "{cand:?} pre {pre_vote}");
        }
    }
}

#[test]
fn s9_6_pre_vote_asks_for_term_plus_one_without_adopting_it() {
    let c = cfg(true, true);
    let mut e = node_with(c.clone(), 1, 3, HardState { term: 4, voted_for: Some(3) }, pos(4, 7));
    e.campaign();
    let out = e.outputs();
    assert!(persisted(&out).is_empty(), "a pre-vote changes no hard state: {out:?}");
    assert_eq!(e.role(), Role::PreCandidate);
    assert_eq!(e.term(), 4);
    assert_eq!(sent(&out), vec![(2, vote(5, 1, pos(4, 7), true)), (3, vote(5, 1, pos(4, 7), true))]);
    // The receiver neither adopts the term nor records a vote.
    let mut r = node_with(c.clone(), 2, 3, HardState { term: 4, voted_for: None }, pos(4, 7));
    r.step(1, vote(5, 1, pos(4, 7), true));
    let out = r.outputs();
    assert_eq!(sent(&out), vec![(1, resp(5, true, true))]);
    assert!(persisted(&out).is_empty());
    assert_eq!(r.hard_state(), HardState { term: 4, voted_for: None });
    // A majority of pre-votes: a real campaign in term 5.
    e.step(2, resp(5, true, true));
    let out = e.outputs();
    assert_eq!(e.role(), Role::Candidate);
    assert_persist_first(HardState { term: 4, voted_for: Some(3) }, &out);
    assert_eq!(persisted(&out), vec![HardState { term: 5, voted_for: Some(1) }]);
    assert_eq!(sent(&out), vec![(2, vote(5, 1, pos(4, 7), false)), (3, vote(5, 1, pos(4, 7), false))]);
    // A refused pre-vote from a node at a higher term: follow that term.
    let mut e = node_with(c.clone(), 1, 3, HardState { term: 4, voted_for: None }, pos(4, 7));
    e.campaign();
    e.step(2, resp(8, false, true));
    assert_eq!((e.term(), e.role()), (8, Role::Follower { leader: None }));
    // A majority refusing: back to follower, same term.
    let mut e = node_with(c, 1, 3, HardState { term: 4, voted_for: None }, pos(4, 7));
    e.campaign();
    e.step(2, resp(4, false, true));
    e.step(3, resp(4, false, true));
    assert_eq!((e.term(), e.role()), (4, Role::Follower { leader: None }));
}

#[test]
fn s9_6_a_returning_partitioned_node_does_not_depose_a_healthy_leader() {
    // Node 3 was cut off and campaigned on its own: pre-vote kept its term.
    let c = cfg(true, true);
    let mut lonely = node_with(c.clone(), 3, 3, HardState { term: 2, voted_for: None }, pos(2, 5));
    for _ in 0..10 * MAX {
        lonely.tick();
        lonely.outputs(); // nobody answers
    }
    assert_eq!(lonely.term(), 2, "pre-vote never bumps the term");
    // Even a node that did bump its term (no pre-vote) is ignored by a
    // follower that hears from its leader (leader stickiness).
    let mut f = node_with(c.clone(), 2, 3, HardState { term: 2, voted_for: Some(1) }, pos(2, 9));
    assert!(f.on_leader_contact(1, 2));
    f.outputs();
    for msg in [vote(7, 3, pos(2, 9), false), vote(3, 3, pos(2, 9), true)] {
        f.step(3, msg);
        assert!(f.outputs().is_empty(), "{msg:?}");
        assert_eq!((f.term(), f.role()), (2, Role::Follower { leader: Some(1) }));
    }
    // ... and so is the leader.
    let mut l = leader(3, c.clone());
    let term = l.term();
    l.step(3, vote(term + 5, 3, pos(9, 9), false));
    assert!(l.outputs().is_empty());
    assert!(l.is_leader());
    // Once the leader has been silent for the minimum timeout, the
    // follower considers candidates again.
    for _ in 0..MIN {
        f.tick();
    }
    f.outputs();
    f.step(3, vote(3, 3, pos(2, 9), true));
    assert_eq!(sent(&f.outputs()), vec![(3, resp(3, true, true))]);
}

#[test]
fn s9_6_stickiness_does_not_protect_a_leader_from_itself_after_a_restart() {
    // The leader restarted (it forgot it led) and asks for a pre-vote: its
    // followers' lease was for it, so there is no leader to stick to.
    let c = cfg(true, true);
    let mut f = node_with(c, 2, 3, HardState { term: 2, voted_for: Some(1) }, pos(2, 9));
    assert!(f.on_leader_contact(1, 2));
    f.outputs();
    f.step(1, vote(3, 1, pos(2, 9), true));
    assert_eq!(sent(&f.outputs()), vec![(1, resp(3, true, true))]);
    // Another candidate is still ignored while the lease runs.
    f.step(3, vote(3, 3, pos(2, 9), true));
    assert!(f.outputs().is_empty());
}

#[test]
fn check_quorum_a_leader_without_an_active_majority_steps_down() {
    // (cluster size, peers active each period, still leader after 3 periods)
    let cases: &[(u64, &[u64], bool)] = &[
        (3, &[2], true),
        (3, &[], false),
        (5, &[2, 3], true),
        (5, &[2], false),
        (5, &[9], false), // not a voter: does not count
    ];
    for &(n, active, stays) in cases {
        let mut l = leader(n, cfg(true, true));
        let term = l.term();
        for _ in 0..3 * MIN {
            for &p in active {
                l.on_peer_active(p);
            }
            l.tick();
        }
        assert_eq!(l.is_leader(), stays, "{n} {active:?}");
        assert_eq!(l.term(), term, "stepping down keeps the term");
        if !stays {
            let out = l.outputs();
            assert!(out.contains(&ElectionOutput::RoleChanged {
                role: Role::Follower { leader: None },
                term,
                reason: RoleChangeReason::CheckQuorumFailed
            }));
        }
    }
    // Without check-quorum a lonely leader stays.
    let mut l = leader(3, cfg(false, false));
    for _ in 0..5 * MAX {
        l.tick();
    }
    assert!(l.is_leader());
}

#[test]
fn bad_input_non_members_and_impossible_terms_are_refused_and_reported_once() {
    let mut e = node(1, 3, 2);
    // (from, message, reason)
    let cases = [
        (9, vote(3, 9, pos(5, 5), false), RejectReason::NotMember),
        (2, vote(3, 3, pos(5, 5), false), RejectReason::CandidateMismatch),
        (2, ElectionMessage::TermNotice { term: MAX_TERM + 1 }, RejectReason::TermOutOfRange),
        (1, vote(3, 1, pos(5, 5), false), RejectReason::NotMember), // itself over a link
    ];
    for (from, msg, reason) in cases {
        for _ in 0..3 {
            e.step(from, msg);
        }
        assert_eq!(e.outputs(), vec![ElectionOutput::Rejected { from, reason }], "{msg:?}");
        assert_eq!((e.term(), e.hard_state().voted_for), (2, None));
    }
    assert!(!e.on_leader_contact(9, 3));
    assert!(!e.on_leader_contact(2, u64::MAX));
    assert_eq!(e.term(), 2);
    // A term far in the future, but in range, is adopted (Raft's rule).
    e.step(2, ElectionMessage::TermNotice { term: MAX_TERM - 1 });
    assert_eq!(e.term(), MAX_TERM - 1);
    // At the very top there is no term left to campaign in: it waits.
    let mut top = node(1, 3, MAX_TERM);
    for _ in 0..3 * MAX {
        top.tick();
    }
    assert_eq!((top.term(), top.role()), (MAX_TERM, Role::Follower { leader: None }));
    // Bad construction input.
    let err =
        Election::new(cfg(true, true), 4, &[1, 2, 3], HardState::default(), pos(0, 0), SeededRng::new(1));
    assert_eq!(err.unwrap_err(), ElectionError::NotAVoter(4));
    let bad = ElectionConfig { election_timeout_max_ticks: MIN, ..cfg(true, true) };
    assert!(Election::new(bad, 1, &[1], HardState::default(), pos(0, 0), SeededRng::new(1)).is_err());
}

#[test]
fn a_failed_persist_never_lets_a_node_vote_twice_in_a_term() {
    let mut e = node(1, 3, 4);
    e.step(2, vote(5, 2, pos(0, 0), false));
    let out = e.outputs();
    assert_eq!(out[0], ElectionOutput::Persist(HardState { term: 5, voted_for: Some(2) }));
    // The disk fails: the driver drops the grant that followed and says so.
    e.on_persist_failed();
    assert!(e.is_disabled());
    // Nothing moves it any more: no vote, no campaign, no leader followed.
    e.step(3, vote(5, 3, pos(0, 0), false));
    e.step(3, vote(6, 3, pos(0, 0), false));
    for _ in 0..5 * MAX {
        e.tick();
    }
    assert!(!e.on_leader_contact(3, 6));
    assert!(e.outputs().is_empty());
    assert_eq!(e.role(), Role::Follower { leader: None });
    // After a restart it holds whichever state the disk kept. Had the write
    // reached the disk, the vote for 2 stands; had it not, no grant was sent
    // and it may vote once in term 5.
    let mut kept = node_with(cfg(false, false), 1, 3, HardState { term: 5, voted_for: Some(2) }, pos(0, 0));
    kept.step(3, vote(5, 3, pos(0, 0), false));
    assert_eq!(sent(&kept.outputs()), vec![(3, resp(5, false, false))]);
    let mut lost = node(1, 3, 4);
    lost.step(3, vote(5, 3, pos(0, 0), false));
    assert_eq!(sent(&lost.outputs()), vec![(3, resp(5, true, false))]);
    // A leader whose persist fails (e.g. adopting a higher term) steps down.
    let mut l = leader(3, cfg(true, true));
    l.observe_term(2, 9);
    l.on_persist_failed();
    assert_eq!(l.role(), Role::Follower { leader: None });
}

#[test]
fn persist_comes_first_in_every_batch_of_outputs() {
    // Drive a small cluster by hand through a campaign and check every batch.
    let c = cfg(true, true);
    let mut nodes: Vec<Election> =
        (1..=3).map(|id| node_with(c.clone(), id, 3, HardState::default(), pos(0, 0))).collect();
    let mut leader_seen = false;
    for _ in 0..10 * MAX {
        for i in 0..3 {
            nodes[i].tick();
            let before = nodes[i].hard_state();
            let mut queue = vec![(i, before, nodes[i].outputs())];
            while let Some((from, before, out)) = queue.pop() {
                assert_persist_first(before, &out);
                for (to, msg) in sent(&out) {
                    let t = to as usize - 1;
                    let b = nodes[t].hard_state();
                    nodes[t].step(from as u64 + 1, msg);
                    queue.push((t, b, nodes[t].outputs()));
                }
            }
        }
        leader_seen |= nodes.iter().any(|n| n.is_leader());
    }
    assert!(leader_seen);
}

#[test]
fn s5_2_only_a_leader_or_a_granted_vote_restarts_the_election_timer() {
    // Node 1 has the best log; candidates with worse logs keep bumping the
    // term. Figure 2: that alone must not hold node 1 back from campaigning.
    let mut e = node_with(cfg(false, false), 1, 3, HardState { term: 1, voted_for: None }, pos(3, 9));
    let timeout = e.election_timeout();
    let mut campaigned = false;
    for t in 0..timeout {
        e.step(2, vote(2 + t, 2, pos(1, 1), false));
        e.tick();
        campaigned |= e.role() == Role::Candidate;
    }
    assert!(campaigned, "refusing votes for ever-higher terms kept the timer from expiring");
    // Granting a vote does restart it.
    let mut g = node(1, 3, 1);
    for t in 0..3 * MAX {
        g.step(2, vote(2 + t, 2, pos(1, 1), false));
        g.tick();
        assert!(matches!(g.role(), Role::Follower { .. }), "campaigned while granting votes");
    }
}

/// A member that is no voter (a read replica; Raft's learner, thesis §4.2.1)
/// never campaigns and never answers a vote request, but follows the
/// leaders it hears of and adopts their terms.
#[test]
fn learners_follow_leaders_but_never_campaign_or_vote() {
    let voters = [1, 2, 3];
    let hard = HardState { term: 2, voted_for: None };
    let with_4 = [1, 2, 3, 4];
    let mut e = Election::new(cfg(true, true), 4, &with_4, hard, pos(2, 5), SeededRng::new(4))
        .unwrap()
        .into_learner();
    assert!(e.is_learner());
    assert_eq!(e.voters(), &voters);
    for _ in 0..MAX * 10 {
        e.tick();
    }
    e.campaign();
    assert_eq!(e.role(), Role::Follower { leader: None });
    assert!(e.outputs().is_empty(), "no campaign, however long it hears nothing");

    for pre_vote in [true, false] {
        e.step(2, vote(3, 2, pos(2, 9), pre_vote));
    }
    let out = e.outputs();
    assert!(sent(&out).is_empty(), "no vote, granted or not: {out:?}");
    assert_eq!(e.hard_state().voted_for, None);

    assert!(e.on_leader_contact(1, 5));
    assert_eq!((e.role(), e.term()), (Role::Follower { leader: Some(1) }, 5));
    for _ in 0..MAX * 10 {
        e.tick();
    }
    assert_eq!(e.role(), Role::Follower { leader: Some(1) }, "it never times its leader out into a campaign");
    // A voter's constructor still refuses an id that is no voter.
    let refused = Election::new(cfg(true, true), 4, &voters, hard, pos(0, 0), SeededRng::new(4));
    assert!(matches!(refused, Err(ElectionError::NotAVoter(4))));
}
