//! A sequential specification: the state one key holds and which
//! operation, with which output, may follow it.

use std::fmt::Debug;
use std::hash::Hash;

pub trait Model {
    /// What the key holds; compared and hashed by the checker's memo.
    type State: Clone + Eq + Hash + Debug;
    /// Compared to find interchangeable ops of unknown outcome.
    type Input: Clone + Debug + PartialEq;
    type Output: Clone + Debug;

    /// The state of a key never written.
    fn init() -> Self::State;

    /// The state after `input` applied to `state` answered `output`, or
    /// `None` if the sequential object could not have answered that.
    /// `output` is `None` for an operation whose outcome is unknown: it
    /// must then be allowed from any state (a write takes effect, a read
    /// constrains nothing).
    fn step(state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;

    /// The state in a counter-example, short enough to read.
    fn show_state(state: &Self::State) -> String {
        format!("{state:?}")
    }
}
