//! A register: SET writes a value, GET reads the last one written (nil
//! before any). Values are unique per write, so a read names its write.

use super::model::Model;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterIn {
    Set(u64),
    Get,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterOut {
    Done,
    Value(Option<u64>),
}

pub struct Register;

impl Model for Register {
    type State = Option<u64>;
    type Input = RegisterIn;
    type Output = RegisterOut;

    fn init() -> Option<u64> {
        None
    }

    fn step(state: &Option<u64>, input: &RegisterIn, output: Option<&RegisterOut>) -> Option<Option<u64>> {
        match (input, output) {
            (RegisterIn::Set(v), None | Some(RegisterOut::Done)) => Some(Some(*v)),
            (RegisterIn::Get, None) => Some(*state),
            (RegisterIn::Get, Some(RegisterOut::Value(v))) => (v == state).then_some(*state),
            _ => None,
        }
    }
}
