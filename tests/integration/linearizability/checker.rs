//! Deciding linearizability of one key's history: Wing & Gong's search
//! with Lowe's memoisation, in the manner of Porcupine.
//!
//! Calls and returns are laid out in time order in a doubly linked list.
//! The search walks it from the front: at a call it tries to linearize
//! that operation now (the model accepts its output from the current
//! state), lifting its call and return out of the list and starting over;
//! at a return whose operation is not linearized yet, every order tried so
//! far is wrong, so it backtracks the last choice. A (set of linearized
//! operations, state) pair seen before leads nowhere new and is skipped —
//! that memo is what makes the search fast (Lowe). An unknown outcome returns at
//! +∞, so it may be linearized anywhere after its call (or, equivalently
//! for what clients saw, never).
//!
//! At equal times a call sorts before a return: operations that touch in
//! time count as concurrent, the reading that forbids less.

use std::collections::HashSet;

use crate::common::SeededRng;

use super::counterexample::CounterExample;
use super::history::Op;
use super::model::Model;

/// What the search found.
pub enum Verdict<M: Model> {
    Linearizable,
    Violation(CounterExample<M>),
    /// The search took more than its budget of steps: no answer.
    GaveUp {
        steps: u64,
    },
}

/// The set of linearized operations, kept as a Zobrist hash for the memo:
/// each op has a random 128-bit key, XORed in when it is linearized and
/// out when that is undone, so a memo key costs O(1) however long the
/// history (a bitmap would be copied at every step). Two different sets
/// share a hash with probability 2^-128 per pair: never, in practice.
struct OpSet {
    keys: Vec<u128>,
    member: Vec<bool>,
    hash: u128,
}

impl OpSet {
    fn new(n: usize) -> OpSet {
        let mut rng = SeededRng::new(0x11ea_4a21_7ab1_e5e7);
        let keys = (0..n).map(|_| (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())).collect();
        OpSet { keys, member: vec![false; n], hash: 0 }
    }

    fn toggle(&mut self, op: usize) {
        self.member[op] = !self.member[op];
        self.hash ^= self.keys[op];
    }
}

/// For each op of unknown outcome, the op of unknown outcome with the same
/// input invoked just before it. Such twins are interchangeable: any
/// linearization can swap them so the earlier-invoked one comes first
/// (its call is earlier, and neither returns). So the search places a twin
/// only after the one before it, instead of trying every subset of, say,
/// ten unknown INCRs at every point.
fn twins_before<I: PartialEq, O>(ops: &[Op<I, O>]) -> Vec<Option<usize>> {
    let mut by_call: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].output.is_none()).collect();
    by_call.sort_by_key(|&i| (ops[i].call, i));
    let mut out = vec![None; ops.len()];
    let mut last: Vec<usize> = Vec::new();
    for i in by_call {
        match last.iter_mut().find(|j| ops[**j].input == ops[i].input) {
            Some(j) => {
                out[i] = Some(*j);
                *j = i;
            }
            None => last.push(i),
        }
    }
    out
}

const NIL: usize = usize::MAX;

/// Calls and returns in time order; entry `2i` is op `i`'s call, `2i + 1`
/// its return, and the last slot is the head.
struct Entries {
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

impl Entries {
    fn new<I, O>(ops: &[Op<I, O>]) -> Entries {
        let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, 0, 2 * i));
            order.push((op.ret_or_infinity(), 1, 2 * i + 1));
        }
        order.sort_unstable();
        let head = 2 * ops.len();
        let mut next = vec![NIL; head + 1];
        let mut prev = vec![NIL; head + 1];
        let mut last = head;
        for &(_, _, e) in &order {
            next[last] = e;
            prev[e] = last;
            last = e;
        }
        Entries { next, prev, head }
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }

    /// Takes op `op`'s call and return out of the list.
    fn lift(&mut self, op: usize) {
        self.unlink(2 * op);
        self.unlink(2 * op + 1);
    }

    /// Undoes [`Entries::lift`] (in reverse order, as dancing links must).
    fn unlift(&mut self, op: usize) {
        self.relink(2 * op + 1);
        self.relink(2 * op);
    }

    /// Ops whose call is in the list before entry `e`.
    fn calls_before(&self, e: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut at = self.first();
        while at != e && at != NIL {
            if at.is_multiple_of(2) {
                out.push(at / 2);
            }
            at = self.next[at];
        }
        out
    }
}

/// Decides whether `ops` (one key's history) is linearizable under `M`,
/// giving up after `max_steps` steps of the search.
pub fn check<M: Model>(ops: &[Op<M::Input, M::Output>], max_steps: u64) -> Verdict<M> {
    let mut entries = Entries::new(ops);
    let mut state = M::init();
    let mut linearized = OpSet::new(ops.len());
    let twins = twins_before(ops);
    let mut memo: HashSet<(u128, M::State)> = HashSet::new();
    // (op, state before it) for each linearized op, in order.
    let mut stack: Vec<(usize, M::State)> = Vec::new();
    // The furthest point reached: the latest return any order got stuck
    // at (no linearization extends past it), then most ops with a known
    // outcome linearized, then fewest unknown ones (placing those early
    // only adds noise to a counter-example).
    let mut deepest: Option<((u64, usize, usize), CounterExample<M>)> = None;
    let mut known = 0usize;
    let mut entry = entries.first();
    let mut steps = 0u64;
    while entries.first() != NIL {
        steps += 1;
        if steps > max_steps {
            return Verdict::GaveUp { steps };
        }
        let op = entry / 2;
        if entry.is_multiple_of(2) {
            let twin_first = twins[op].is_some_and(|t| !linearized.member[t]);
            let after =
                if twin_first { None } else { M::step(&state, &ops[op].input, ops[op].output.as_ref()) };
            if let Some(after) = after {
                linearized.toggle(op);
                if memo.insert((linearized.hash, after.clone())) {
                    stack.push((op, std::mem::replace(&mut state, after)));
                    known += usize::from(ops[op].output.is_some());
                    entries.lift(op);
                    entry = entries.first();
                    continue;
                }
                linearized.toggle(op);
            }
            entry = entries.next[entry];
        } else {
            let depth = (ops[op].ret_or_infinity(), known, usize::MAX - stack.len());
            if deepest.as_ref().is_none_or(|(d, _)| depth > *d) {
                let cx = CounterExample {
                    linearized: stack.iter().map(|(op, _)| *op).collect(),
                    state: state.clone(),
                    blocked: op,
                    pending: entries.calls_before(entry),
                };
                deepest = Some((depth, cx));
            }
            let Some((last, before)) = stack.pop() else {
                return Verdict::Violation(deepest.expect("recorded just above").1);
            };
            known -= usize::from(ops[last].output.is_some());
            linearized.toggle(last);
            state = before;
            entries.unlift(last);
            entry = entries.next[2 * last];
        }
    }
    Verdict::Linearizable
}
