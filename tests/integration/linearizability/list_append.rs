//! A list that only grows: RPUSH appends a unique value and answers the
//! new length, LRANGE 0 -1 reads the whole list. A lost, doubled or
//! reordered append shows in every later read.
//!
//! The state is a persistent list (newest element first, tails shared), so
//! the checker's many copies of it cost O(1) each; it carries its length
//! and a hash of its contents, so the memo compares it cheaply.

use std::hash::{Hash, Hasher};
use std::rc::Rc;

use super::model::Model;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListIn {
    Push(u64),
    Range,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOut {
    /// RPUSH's answer: the length after it.
    Pushed(i64),
    /// LRANGE's answer, oldest first.
    Items(Vec<u64>),
}

struct Cell {
    value: u64,
    older: Option<Rc<Cell>>,
}

/// The list's contents, oldest first, as a chain from the newest.
#[derive(Clone, Default)]
pub struct Items {
    newest: Option<Rc<Cell>>,
    len: usize,
    /// A hash of the contents in order, extended by each append.
    hash: u64,
}

impl Items {
    pub fn len(&self) -> usize {
        self.len
    }

    fn pushed(&self, value: u64) -> Items {
        let hash = (self.hash ^ value).wrapping_mul(0x100_0000_01b3).rotate_left(17) ^ self.len as u64;
        Items { newest: Some(Rc::new(Cell { value, older: self.newest.clone() })), len: self.len + 1, hash }
    }

    /// The values, oldest first.
    pub fn to_vec(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.len);
        let mut at = self.newest.as_deref();
        while let Some(c) = at {
            out.push(c.value);
            at = c.older.as_deref();
        }
        out.reverse();
        out
    }

    fn equals(&self, values: &[u64]) -> bool {
        if values.len() != self.len {
            return false;
        }
        let mut at = self.newest.as_deref();
        for v in values.iter().rev() {
            match at {
                Some(c) if c.value == *v => at = c.older.as_deref(),
                _ => return false,
            }
        }
        true
    }
}

impl PartialEq for Items {
    fn eq(&self, other: &Items) -> bool {
        self.len == other.len && self.hash == other.hash && self.equals(&other.to_vec())
    }
}

impl Eq for Items {}

impl Hash for Items {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.len.hash(h);
        self.hash.hash(h);
    }
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.to_vec()).finish()
    }
}

pub struct ListAppend;

impl Model for ListAppend {
    type State = Items;
    type Input = ListIn;
    type Output = ListOut;

    fn init() -> Items {
        Items::default()
    }

    fn step(state: &Items, input: &ListIn, output: Option<&ListOut>) -> Option<Items> {
        match (input, output) {
            (ListIn::Push(v), None) => Some(state.pushed(*v)),
            (ListIn::Push(v), Some(ListOut::Pushed(len))) => {
                (*len == state.len() as i64 + 1).then(|| state.pushed(*v))
            }
            (ListIn::Range, None) => Some(state.clone()),
            (ListIn::Range, Some(ListOut::Items(items))) => state.equals(items).then(|| state.clone()),
            _ => None,
        }
    }

    fn show_state(state: &Items) -> String {
        let v = state.to_vec();
        if v.len() <= 8 {
            return format!("{v:?}");
        }
        format!("[… {} more, {:?}]", v.len() - 6, &v[v.len() - 6..])
    }
}
