//! A counter: INCR adds one and answers the new value, GET reads it (nil,
//! i.e. 0, before the first INCR). A lost or doubled INCR shows in every
//! later answer.

use super::model::Model;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterIn {
    Incr,
    Get,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CounterOut {
    /// INCR's answer: the value after it.
    Incremented(i64),
    /// GET's answer (`None`: the key is missing, i.e. 0).
    Value(Option<i64>),
}

pub struct Counter;

impl Model for Counter {
    type State = i64;
    type Input = CounterIn;
    type Output = CounterOut;

    fn init() -> i64 {
        0
    }

    fn step(state: &i64, input: &CounterIn, output: Option<&CounterOut>) -> Option<i64> {
        match (input, output) {
            (CounterIn::Incr, None) => Some(state + 1),
            (CounterIn::Incr, Some(CounterOut::Incremented(v))) => (*v == state + 1).then_some(*v),
            (CounterIn::Get, None) => Some(*state),
            (CounterIn::Get, Some(CounterOut::Value(v))) => (v.unwrap_or(0) == *state).then_some(*state),
            _ => None,
        }
    }
}
