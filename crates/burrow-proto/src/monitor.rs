//! MONITOR (opcode 0x43): the events a monitoring connection receives
//! (protocol.md §8.16).
//!
//! After MONITOR's OK the server pushes response frames with opcode 0x43
//! and MONITOR's request id, each an ARRAY of events. An event is one item
//! with a fixed layout, so a client decodes it without guessing:
//!
//! ```text
//! unix time µs u64 | opcode u8 | key length as sent u32 | value length as sent u32 |
//! addr length u16 | key bytes kept u16 | value bytes kept u16 | extras length u16 |
//! addr (UTF-8) | key (truncated) | value (truncated) | extras
//! ```

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::body::{decode_array_ref, encode_array, ArrayError};

/// Bytes of a key or value an event keeps (the event also says how long
/// it was): a monitor stays cheap and bounded even under 16 MB values.
pub const MONITOR_ARG_BYTES: usize = 256;

/// Fixed part of an event, before the variable fields.
const FIXED: usize = 8 + 1 + 4 + 4 + 2 + 2 + 2 + 2;

/// One command another client ran, as MONITOR shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorEvent {
    /// When the server executed it, unix microseconds.
    pub unix_us: u64,
    pub opcode: u8,
    /// The running client's address (`ip:port`).
    pub client: String,
    /// The key's length as sent (more than `key.len()` when truncated).
    pub key_len: u32,
    /// The first [`MONITOR_ARG_BYTES`] bytes of the key, binary.
    pub key: Bytes,
    /// The value's length as sent.
    pub value_len: u32,
    /// The first [`MONITOR_ARG_BYTES`] bytes of the value, binary.
    pub value: Bytes,
    /// The request's extras as sent (counts, TTLs, subcommands: at most a few bytes).
    pub extras: Bytes,
}

/// A MONITOR event that does not follow protocol.md §8.16.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MonitorError {
    #[error(transparent)]
    Array(#[from] ArrayError),
    #[error("event {0}: shorter than its fixed fields")]
    Truncated(usize),
    #[error("event {0}: its fields run past the event's end")]
    PastEnd(usize),
    #[error("event {0}: the client address is not UTF-8")]
    BadAddr(usize),
}

impl MonitorEvent {
    /// This event as an ARRAY item (key and value cut to [`MONITOR_ARG_BYTES`]).
    pub fn item(&self) -> Vec<u8> {
        let key = &self.key[..self.key.len().min(MONITOR_ARG_BYTES)];
        let value = &self.value[..self.value.len().min(MONITOR_ARG_BYTES)];
        let extras = &self.extras[..self.extras.len().min(u16::MAX as usize)];
        let client = &self.client.as_bytes()[..self.client.len().min(u16::MAX as usize)];
        let mut b = Vec::with_capacity(FIXED + client.len() + key.len() + value.len() + extras.len());
        b.put_u64(self.unix_us);
        b.put_u8(self.opcode);
        b.put_u32(self.key_len);
        b.put_u32(self.value_len);
        b.put_u16(client.len() as u16);
        b.put_u16(key.len() as u16);
        b.put_u16(value.len() as u16);
        b.put_u16(extras.len() as u16);
        b.put_slice(client);
        b.put_slice(key);
        b.put_slice(value);
        b.put_slice(extras);
        b
    }

    fn from_item(i: usize, b: &[u8]) -> Result<MonitorEvent, MonitorError> {
        if b.len() < FIXED {
            return Err(MonitorError::Truncated(i));
        }
        let lens = [17, 19, 21, 23].map(|at| BigEndian::read_u16(&b[at..at + 2]) as usize);
        if FIXED + lens.iter().sum::<usize>() != b.len() {
            return Err(MonitorError::PastEnd(i));
        }
        let mut rest = &b[FIXED..];
        let mut take = |n: usize| {
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head
        };
        let client = std::str::from_utf8(take(lens[0])).map_err(|_| MonitorError::BadAddr(i))?.to_owned();
        Ok(MonitorEvent {
            unix_us: BigEndian::read_u64(&b[0..8]),
            opcode: b[8],
            key_len: BigEndian::read_u32(&b[9..13]),
            value_len: BigEndian::read_u32(&b[13..17]),
            client,
            key: Bytes::copy_from_slice(take(lens[1])),
            value: Bytes::copy_from_slice(take(lens[2])),
            extras: Bytes::copy_from_slice(take(lens[3])),
        })
    }
}

/// One pushed frame's ARRAY body.
pub fn encode_monitor(events: &[MonitorEvent], dst: &mut BytesMut) {
    let items: Vec<Vec<u8>> = events.iter().map(MonitorEvent::item).collect();
    encode_array(&items, dst);
}

/// Decodes a pushed frame's ARRAY body.
pub fn decode_monitor(body: &[u8]) -> Result<Vec<MonitorEvent>, MonitorError> {
    let items = decode_array_ref(body)?;
    items.iter().enumerate().map(|(i, b)| MonitorEvent::from_item(i, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> MonitorEvent {
        MonitorEvent {
            unix_us: 1_700_000_000_000_000,
            opcode: 0x03,
            client: "127.0.0.1:5000".into(),
            key_len: 300,
            key: Bytes::from(vec![0u8; 300]),
            value_len: 2,
            value: Bytes::from_static(b"v\xff"),
            extras: Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]),
        }
    }

    #[test]
    fn events_round_trip_and_long_fields_are_cut() {
        let e = event();
        let mut b = BytesMut::new();
        encode_monitor(std::slice::from_ref(&e), &mut b);
        let back = decode_monitor(&b).unwrap();
        assert_eq!(back, vec![MonitorEvent { key: e.key.slice(..MONITOR_ARG_BYTES), ..e }]);
    }

    #[test]
    fn bad_events_are_refused() {
        let mut b = BytesMut::new();
        encode_array(&[vec![0u8; 10]], &mut b);
        assert_eq!(decode_monitor(&b), Err(MonitorError::Truncated(0)));
        let mut item = event().item();
        item.push(0);
        let mut b = BytesMut::new();
        encode_array(&[item], &mut b);
        assert_eq!(decode_monitor(&b), Err(MonitorError::PastEnd(0)));
    }
}
