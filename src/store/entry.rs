//! What the store keeps per key.

use std::collections::VecDeque;

/// One key and its value. `expire_at` is absolute unix milliseconds, 0 = never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub(crate) key: Box<[u8]>,
    pub(crate) value: Value,
    pub(crate) expire_at: u64,
}

/// A value. `Int` is how a string holding a counter is kept after
/// INCR/DECR/INCRBY: users see it as the string of its decimal digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(Box<[u8]>),
    Int(i64),
    List(Box<VecDeque<Box<[u8]>>>),
}

/// A borrowed view of a value, handed to readers under the shard lock.
#[derive(Debug, Clone, Copy)]
pub enum ValueRef<'a> {
    Str(&'a [u8]),
    Int(i64),
    List(&'a VecDeque<Box<[u8]>>),
}

/// Rough fixed cost of an entry beyond its bytes (table slot, struct, allocator headers).
const ENTRY_OVERHEAD: usize = 80;

impl Entry {
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    pub fn value(&self) -> ValueRef<'_> {
        match &self.value {
            Value::Str(s) => ValueRef::Str(s),
            Value::Int(i) => ValueRef::Int(*i),
            Value::List(l) => ValueRef::List(l),
        }
    }

    pub fn expire_at(&self) -> u64 {
        self.expire_at
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }

    /// The type name users see (TYPE, INFO): `string` or `list`.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Str(_) | Value::Int(_) => "string",
            Value::List(_) => "list",
        }
    }

    /// Approximate memory this entry holds, for INFO memory.
    pub(crate) fn mem_size(&self) -> usize {
        let value = match &self.value {
            Value::Str(s) => s.len() + 16,
            Value::Int(_) => 0,
            Value::List(l) => 64 + l.iter().map(|v| v.len() + 32).sum::<usize>(),
        };
        ENTRY_OVERHEAD + self.key.len() + value
    }
}

/// Parses a string value as a counter, the way INCR sees it: optional `-`,
/// decimal digits, no spaces or `+`, within i64.
pub(crate) fn parse_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 || s[0] == b'+' {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Formats a counter as the decimal string GET returns.
pub fn format_int(i: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = i.unsigned_abs();
    let mut pos = buf.len();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        buf[pos] = b'-';
    }
    &buf[pos..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_format_and_parse_at_the_extremes() {
        let mut buf = [0u8; 20];
        for i in [0, 1, -1, 42, i64::MAX, i64::MIN] {
            let s = format_int(i, &mut buf).to_vec();
            assert_eq!(s, i.to_string().as_bytes());
            assert_eq!(parse_int(&s), Some(i));
        }
        for bad in [&b""[..], b"+1", b" 1", b"1 ", b"abc", b"9223372036854775808", b"1.5"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }
}
