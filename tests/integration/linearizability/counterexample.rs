//! What a failed check shows: the linearization that got furthest in time,
//! the state it leaves, and the operation whose return came before any
//! order could place it — with every operation pending at that point and
//! whether the model accepts it there, and what clients saw just before
//! the first of those was invoked.

use super::history::{show_time, Op};
use super::model::Model;

/// The point where the search got furthest and could not go on.
pub struct CounterExample<M: Model> {
    /// Ops (indexes into the history) of the linearization that got
    /// furthest in time before it could not go on.
    pub linearized: Vec<usize>,
    /// The state after them.
    pub state: M::State,
    /// The op that returned before it could be linearized after them.
    pub blocked: usize,
    /// Ops invoked before `blocked` returned and not linearized (it too).
    pub pending: Vec<usize>,
}

/// How many ops of the linearization found are shown before the failure.
const CONTEXT: usize = 8;

pub fn show_op<I: std::fmt::Debug, O: std::fmt::Debug>(i: usize, op: &Op<I, O>) -> String {
    let out = op.output.as_ref().map_or_else(|| "unknown".to_string(), |o| format!("{o:?}"));
    format!(
        "#{i} client {} {:?} -> {out}  [invoked {}, returned {}]",
        op.client,
        op.input,
        show_time(Some(op.call)),
        show_time(op.ret)
    )
}

impl<M: Model> CounterExample<M> {
    /// The counter-example as text, the ops named by their index in `ops`.
    pub fn render(&self, ops: &[Op<M::Input, M::Output>]) -> String {
        let mut s = format!(
            "not linearizable: the linearization that got furthest covers {} of {} ops; its last ones:\n",
            self.linearized.len(),
            ops.len()
        );
        let from = self.linearized.len().saturating_sub(CONTEXT);
        if from > 0 {
            s += &format!("    … {from} earlier ops\n");
        }
        for &i in &self.linearized[from..] {
            let twin = ops[i].output.is_none()
                && ops
                    .iter()
                    .enumerate()
                    .any(|(j, o)| j != i && o.output.is_none() && o.input == ops[i].input);
            // The search places interchangeable unknown ops earliest first
            // (checker.rs), so the one shown may be another's stand-in.
            let note = if twin { "  (or any identical unknown op invoked by then)" } else { "" };
            s += &format!("    {}{note}\n", show_op(i, &ops[i]));
        }
        s += &format!("  state then: {}\n", M::show_state(&self.state));
        s += &format!(
            "  then this op returned, but nothing pending can be linearized before it:\n    {}\n",
            show_op(self.blocked, &ops[self.blocked])
        );
        // What clients saw just before the first pending op was invoked:
        // often the value a crash then took back.
        let since = self.pending.iter().map(|&i| ops[i].call).min().unwrap_or(0);
        let mut before: Vec<usize> =
            (0..ops.len()).filter(|&i| ops[i].ret.is_some_and(|r| r < since)).collect();
        before.sort_by_key(|&i| ops[i].ret);
        if !before.is_empty() {
            s += "  the last ops to return before the first pending one was invoked:\n";
            for &i in &before[before.len().saturating_sub(CONTEXT / 2)..] {
                s += &format!("    {}\n", show_op(i, &ops[i]));
            }
        }
        s += "  pending then (invoked before it returned, not linearized):\n";
        for &i in &self.pending {
            let verdict = match M::step(&self.state, &ops[i].input, ops[i].output.as_ref()) {
                Some(_) => "possible here, but every order after it fails",
                None => "impossible from this state",
            };
            s += &format!("    {}  — {verdict}\n", show_op(i, &ops[i]));
        }
        s
    }
}
