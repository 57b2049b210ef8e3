//! The end-of-run check, apart from linearizability: every acknowledged
//! write is present exactly once in what the leader holds at the end
//! (lost ones are told apart from doubled or invented ones: an async
//! failover may lose acknowledged writes, never double or invent any).
//! Lists make it visible per write (each appended value is unique): an
//! acknowledged value missing is a lost write, one present twice a write
//! applied twice, a value nobody appended a phantom. Counters bound their
//! final value by acknowledged and possible INCRs; a register's final value
//! must come from some write.

use std::collections::{BTreeMap, HashMap};

use super::counter::CounterIn;
use super::list_append::ListIn;
use super::register::RegisterIn;
use super::workload::Histories;

/// What the leader held at the end, read after every fault healed.
#[derive(Debug, Default)]
pub struct Finals {
    pub registers: BTreeMap<String, Option<u64>>,
    pub counters: BTreeMap<String, i64>,
    pub lists: BTreeMap<String, Vec<u64>>,
}

/// Counts of a run's writes, and what the check found wrong.
#[derive(Debug, Default)]
pub struct Tally {
    pub acknowledged: usize,
    pub unknown: usize,
    /// Writes present twice, values nobody wrote.
    pub problems: Vec<String>,
    /// Acknowledged writes missing at the end (what an async failover may
    /// discard; a failure everywhere else).
    pub lost: Vec<String>,
}

/// Counts `ops`' writes by outcome: (acknowledged, unknown).
fn writes<I, O>(ops: &[super::history::Op<I, O>], is_write: impl Fn(&I) -> bool) -> (usize, usize) {
    let w = ops.iter().filter(|o| is_write(&o.input));
    let known = w.clone().filter(|o| o.output.is_some()).count();
    (known, w.count() - known)
}

pub fn check(h: &Histories, finals: &Finals) -> Tally {
    let mut t = Tally::default();
    let mut count = |(a, u): (usize, usize)| {
        t.acknowledged += a;
        t.unknown += u;
    };
    for ops in h.registers.values() {
        count(writes(ops, |i| matches!(i, RegisterIn::Set(_))));
    }
    for ops in h.counters.values() {
        count(writes(ops, |i| *i == CounterIn::Incr));
    }
    for ops in h.lists.values() {
        count(writes(ops, |i| matches!(i, ListIn::Push(_))));
    }

    for (key, ops) in &h.lists {
        let fin = finals.lists.get(key).map_or(&[][..], Vec::as_slice);
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for v in fin {
            *seen.entry(*v).or_default() += 1;
        }
        for op in ops {
            let ListIn::Push(v) = op.input else { continue };
            match (seen.remove(&v).unwrap_or(0), op.output.is_some()) {
                (0, true) => t.lost.push(format!("{key}: acknowledged RPUSH {v} lost")),
                (0 | 1, _) => {}
                (n, _) => t.problems.push(format!("{key}: RPUSH {v} present {n} times")),
            }
        }
        for v in seen.keys() {
            t.problems.push(format!("{key}: {v} present but never appended"));
        }
    }
    for (key, ops) in &h.counters {
        let (acked, unknown) = writes(ops, |i| *i == CounterIn::Incr);
        let fin = finals.counters.get(key).copied().unwrap_or(0);
        if fin < acked as i64 {
            t.lost.push(format!("{key}: final value {fin}, but {acked} INCRs were acknowledged"));
        } else if fin > (acked + unknown) as i64 {
            t.problems.push(format!(
                "{key}: final value {fin}, but {acked} INCRs were acknowledged and {unknown} more may have landed"
            ));
        }
    }
    for (key, ops) in &h.registers {
        let fin = finals.registers.get(key).copied().flatten();
        let written = |v: u64| ops.iter().any(|o| o.input == RegisterIn::Set(v));
        let acked = ops.iter().any(|o| matches!(o.input, RegisterIn::Set(_)) && o.output.is_some());
        match fin {
            None if acked => t.lost.push(format!("{key}: missing at the end after acknowledged SETs")),
            Some(v) if !written(v) => t.problems.push(format!("{key}: final value {v} was never written")),
            _ => {}
        }
    }
    t
}
