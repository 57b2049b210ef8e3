//! P-compositionality: a history is linearizable exactly when each key's
//! sub-history is, so each key is checked alone (a much smaller search).

use std::collections::BTreeMap;

use super::checker::{check, Verdict};
use super::history::Op;
use super::model::Model;

/// Steps one key's search may take before it gives up. Far above what a
/// few thousand ops with a handful of unknown outcomes need.
pub const MAX_STEPS: u64 = 20_000_000;

/// One key's ops, every key of one model.
pub type Keyed<M> = BTreeMap<String, Vec<Op<<M as Model>::Input, <M as Model>::Output>>>;

/// Why a key failed its check.
#[derive(Debug)]
pub enum KeyFailure {
    /// The counter-example, rendered.
    Violation(String),
    GaveUp {
        steps: u64,
    },
}

/// Checks each key of `history`; returns the keys that failed.
pub fn check_keys<M: Model>(history: &Keyed<M>) -> Vec<(String, KeyFailure)> {
    let mut failed = Vec::new();
    for (key, ops) in history {
        match check::<M>(ops, MAX_STEPS) {
            Verdict::Linearizable => {}
            Verdict::Violation(cx) => failed.push((key.clone(), KeyFailure::Violation(cx.render(ops)))),
            Verdict::GaveUp { steps } => failed.push((key.clone(), KeyFailure::GaveUp { steps })),
        }
    }
    failed
}
