//! Randomized: histories generated from the sequential model itself must
//! check linearizable. Each client issues ops one after another with random
//! durations, overlapping the other clients'; each op takes effect at a
//! random instant inside its interval, and its output is what the model
//! answers in the order of those instants. Some outcomes are then hidden
//! (unknown: the op may or may not have taken effect). A read changed to a
//! value never written must then fail.

use crate::common::SeededRng;

use super::checker::{check, Verdict};
use super::counter::{Counter, CounterIn, CounterOut};
use super::history::Op;
use super::list_append::{ListAppend, ListIn, ListOut};
use super::model::Model;
use super::register::{Register, RegisterIn, RegisterOut};

/// A value no generated write uses.
const NEVER_WRITTEN: u64 = u64::MAX;

/// Op skeletons: (client, call, ret, instant it takes effect), sorted by
/// that instant, from `clients` clients issuing `per_client` ops each.
fn intervals(rng: &mut SeededRng, clients: usize, per_client: usize) -> Vec<(usize, u64, u64, u64)> {
    let mut out = Vec::new();
    for c in 0..clients {
        let mut t = rng.range(0, 10) as u64;
        for _ in 0..per_client {
            let call = t + rng.range(0, 5) as u64;
            let ret = call + rng.range(1, 30) as u64;
            let at = rng.range(call as usize, ret as usize + 1) as u64;
            out.push((c, call, ret, at));
            t = ret + rng.range(0, 4) as u64;
        }
    }
    out.sort_by_key(|&(_, _, _, at)| at);
    out
}

/// Builds a history: `pick` chooses each op's input, `apply` runs it on
/// the sequential object. One op in ten gets an unknown outcome; one of
/// those writes in three never takes effect at all.
fn generate<M: Model, S>(
    rng: &mut SeededRng,
    mut state: S,
    pick: impl Fn(&mut SeededRng, usize) -> (M::Input, bool),
    apply: impl Fn(&mut S, &M::Input) -> M::Output,
) -> Vec<Op<M::Input, M::Output>> {
    let clients = rng.range(1, 6);
    let per_client = rng.range(1, 40);
    let mut ops = Vec::new();
    for (i, (client, call, ret, _)) in intervals(rng, clients, per_client).into_iter().enumerate() {
        let (input, is_write) = pick(rng, i);
        if rng.range(0, 10) == 0 {
            if !(is_write && rng.range(0, 3) == 0) {
                apply(&mut state, &input);
            }
            ops.push(Op::unknown(client, input, call));
        } else {
            let output = apply(&mut state, &input);
            ops.push(Op::ok(client, input, call, ret, output));
        }
    }
    ops
}

fn assert_linearizable<M: Model>(seed: u64, ops: &[Op<M::Input, M::Output>]) {
    match check::<M>(ops, 10_000_000) {
        Verdict::Linearizable => {}
        Verdict::Violation(cx) => panic!("seed {seed}: a generated history failed:\n{}", cx.render(ops)),
        Verdict::GaveUp { steps } => panic!("seed {seed}: gave up after {steps} steps"),
    }
}

/// Changes the output of the first read that has one into `wrong`, and
/// asserts the history then fails. Returns whether there was such a read.
fn corrupted_fails<M: Model>(
    seed: u64,
    mut ops: Vec<Op<M::Input, M::Output>>,
    is_read: impl Fn(&M::Input) -> bool,
    wrong: M::Output,
) -> bool {
    let Some(op) = ops.iter_mut().find(|o| is_read(&o.input) && o.output.is_some()) else { return false };
    op.output = Some(wrong);
    assert!(
        matches!(check::<M>(&ops, 10_000_000), Verdict::Violation(_)),
        "seed {seed}: a read of a value never written passed"
    );
    true
}

const SEEDS: u64 = 300;

#[test]
fn generated_register_histories_are_linearizable() {
    let mut corrupted = 0;
    for seed in 0..SEEDS {
        let mut rng = SeededRng::new(seed);
        let ops = generate::<Register, Option<u64>>(
            &mut rng,
            None,
            |rng, i| match rng.range(0, 2) {
                0 => (RegisterIn::Set(i as u64), true),
                _ => (RegisterIn::Get, false),
            },
            |s, input| match input {
                RegisterIn::Set(v) => {
                    *s = Some(*v);
                    RegisterOut::Done
                }
                RegisterIn::Get => RegisterOut::Value(*s),
            },
        );
        assert_linearizable::<Register>(seed, &ops);
        let wrong = RegisterOut::Value(Some(NEVER_WRITTEN));
        corrupted += usize::from(corrupted_fails::<Register>(seed, ops, |i| *i == RegisterIn::Get, wrong));
    }
    assert!(corrupted > SEEDS as usize / 2, "{corrupted} corrupted histories");
}

#[test]
fn generated_counter_histories_are_linearizable() {
    let mut corrupted = 0;
    for seed in 0..SEEDS {
        let mut rng = SeededRng::new(seed);
        let ops = generate::<Counter, i64>(
            &mut rng,
            0,
            |rng, _| match rng.range(0, 2) {
                0 => (CounterIn::Incr, true),
                _ => (CounterIn::Get, false),
            },
            |s, input| match input {
                CounterIn::Incr => {
                    *s += 1;
                    CounterOut::Incremented(*s)
                }
                CounterIn::Get => CounterOut::Value((*s != 0).then_some(*s)),
            },
        );
        assert_linearizable::<Counter>(seed, &ops);
        let wrong = CounterOut::Value(Some(-1));
        corrupted += usize::from(corrupted_fails::<Counter>(seed, ops, |i| *i == CounterIn::Get, wrong));
    }
    assert!(corrupted > SEEDS as usize / 2, "{corrupted} corrupted histories");
}

#[test]
fn generated_list_append_histories_are_linearizable() {
    let mut corrupted = 0;
    for seed in 0..SEEDS {
        let mut rng = SeededRng::new(seed);
        let ops = generate::<ListAppend, Vec<u64>>(
            &mut rng,
            Vec::new(),
            |rng, i| match rng.range(0, 2) {
                0 => (ListIn::Push(i as u64), true),
                _ => (ListIn::Range, false),
            },
            |s, input| match input {
                ListIn::Push(v) => {
                    s.push(*v);
                    ListOut::Pushed(s.len() as i64)
                }
                ListIn::Range => ListOut::Items(s.clone()),
            },
        );
        assert_linearizable::<ListAppend>(seed, &ops);
        let wrong = ListOut::Items(vec![NEVER_WRITTEN]);
        corrupted += usize::from(corrupted_fails::<ListAppend>(seed, ops, |i| *i == ListIn::Range, wrong));
    }
    assert!(corrupted > SEEDS as usize / 2, "{corrupted} corrupted histories");
}
