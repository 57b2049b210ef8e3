//! SLOWLOG (opcode 0x41): the subcommands and the GET reply's entries
//! (protocol.md §8.13).
//!
//! An entry is one ARRAY item with a fixed layout, so a client decodes it
//! without guessing:
//!
//! ```text
//! id u64 | unix time µs u64 | duration µs u64 | opcode u8 |
//! key length as sent u32 | key bytes kept u16 | key (truncated) | client addr (UTF-8, rest)
//! ```

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::body::{decode_array_ref, encode_array, ArrayError};

/// Bytes of a key an entry keeps; the entry also says how long the key was.
pub const SLOWLOG_KEY_BYTES: usize = 64;

/// How many entries SLOWLOG GET returns when the request gives no count (as Redis).
pub const SLOWLOG_DEFAULT_COUNT: u32 = 10;

/// Fixed part of an entry, before the key and the address.
const FIXED: usize = 8 + 8 + 8 + 1 + 4 + 2;

/// A SLOWLOG subcommand: byte 0 of the request's extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowLogCommand {
    /// The newest `count` entries, newest first (`None`: [`SLOWLOG_DEFAULT_COUNT`]).
    Get { count: Option<u32> },
    /// How many entries the log holds.
    Len,
    /// Empties the log.
    Reset,
}

impl SlowLogCommand {
    pub const GET: u8 = 0x01;
    pub const LEN: u8 = 0x02;
    pub const RESET: u8 = 0x03;

    /// Parses the request's extras; `Err` says what is wrong.
    pub fn parse(extras: &[u8]) -> Result<SlowLogCommand, String> {
        match extras {
            [Self::GET] => Ok(SlowLogCommand::Get { count: None }),
            [Self::GET, n @ ..] if n.len() == 4 => {
                Ok(SlowLogCommand::Get { count: Some(BigEndian::read_u32(n)) })
            }
            [Self::LEN] => Ok(SlowLogCommand::Len),
            [Self::RESET] => Ok(SlowLogCommand::Reset),
            [] => Err("SLOWLOG: extras must hold a subcommand (0x01 GET, 0x02 LEN, 0x03 RESET)".into()),
            [Self::GET, ..] => Err(format!("SLOWLOG GET: extras must be 1 or 5 bytes, got {}", extras.len())),
            [Self::LEN | Self::RESET, ..] => {
                Err(format!("SLOWLOG: LEN and RESET take 1 byte of extras, got {}", extras.len()))
            }
            [other, ..] => Err(format!("SLOWLOG: unknown subcommand 0x{other:02x}")),
        }
    }

    /// The request's extras.
    pub fn put(&self, extras: &mut BytesMut) {
        match self {
            SlowLogCommand::Get { count } => {
                extras.put_u8(Self::GET);
                if let Some(n) = count {
                    extras.put_u32(*n);
                }
            }
            SlowLogCommand::Len => extras.put_u8(Self::LEN),
            SlowLogCommand::Reset => extras.put_u8(Self::RESET),
        }
    }
}

/// One slow command as SLOWLOG GET reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowLogEntry {
    /// Unique and increasing for the server's life (RESET does not restart it).
    pub id: u64,
    /// When the command started, unix microseconds.
    pub unix_us: u64,
    /// How long it executed, microseconds.
    pub duration_us: u64,
    pub opcode: u8,
    /// The key's length as sent (more than `key.len()` when truncated).
    pub key_len: u32,
    /// The first [`SLOWLOG_KEY_BYTES`] bytes of the key, binary.
    pub key: Bytes,
    /// The client's address (`ip:port`).
    pub client: String,
}

/// A SLOWLOG GET reply that does not follow protocol.md §8.13.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SlowLogError {
    #[error(transparent)]
    Array(#[from] ArrayError),
    #[error("entry {0}: shorter than its fixed fields")]
    Truncated(usize),
    #[error("entry {0}: the key runs past the entry's end")]
    KeyPastEnd(usize),
    #[error("entry {0}: the client address is not UTF-8")]
    BadAddr(usize),
}

impl SlowLogEntry {
    /// This entry as an ARRAY item.
    pub fn item(&self) -> Vec<u8> {
        let key = &self.key[..self.key.len().min(SLOWLOG_KEY_BYTES)];
        let mut b = Vec::with_capacity(FIXED + key.len() + self.client.len());
        b.put_u64(self.id);
        b.put_u64(self.unix_us);
        b.put_u64(self.duration_us);
        b.put_u8(self.opcode);
        b.put_u32(self.key_len);
        b.put_u16(key.len() as u16);
        b.put_slice(key);
        b.put_slice(self.client.as_bytes());
        b
    }

    fn from_item(i: usize, b: &[u8]) -> Result<SlowLogEntry, SlowLogError> {
        if b.len() < FIXED {
            return Err(SlowLogError::Truncated(i));
        }
        let kept = BigEndian::read_u16(&b[29..31]) as usize;
        let rest = &b[FIXED..];
        if kept > rest.len() {
            return Err(SlowLogError::KeyPastEnd(i));
        }
        let client = std::str::from_utf8(&rest[kept..]).map_err(|_| SlowLogError::BadAddr(i))?;
        Ok(SlowLogEntry {
            id: BigEndian::read_u64(&b[0..8]),
            unix_us: BigEndian::read_u64(&b[8..16]),
            duration_us: BigEndian::read_u64(&b[16..24]),
            opcode: b[24],
            key_len: BigEndian::read_u32(&b[25..29]),
            key: Bytes::copy_from_slice(&rest[..kept]),
            client: client.to_owned(),
        })
    }
}

/// SLOWLOG GET's ARRAY body.
pub fn encode_slowlog(entries: &[SlowLogEntry], dst: &mut BytesMut) {
    let items: Vec<Vec<u8>> = entries.iter().map(SlowLogEntry::item).collect();
    encode_array(&items, dst);
}

/// Decodes SLOWLOG GET's ARRAY body.
pub fn decode_slowlog(body: &[u8]) -> Result<Vec<SlowLogEntry>, SlowLogError> {
    let items = decode_array_ref(body)?;
    items.iter().enumerate().map(|(i, b)| SlowLogEntry::from_item(i, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_keys_are_truncated() {
        let long = Bytes::from(vec![0xffu8; 100]);
        let e = SlowLogEntry {
            id: 7,
            unix_us: 1_700_000_000_000_000,
            duration_us: 12_345,
            opcode: 0x03,
            key_len: 100,
            key: long,
            client: "127.0.0.1:5000".into(),
        };
        let mut b = BytesMut::new();
        encode_slowlog(std::slice::from_ref(&e), &mut b);
        let back = decode_slowlog(&b).unwrap();
        assert_eq!(back[0].key.len(), SLOWLOG_KEY_BYTES);
        assert_eq!(SlowLogEntry { key: e.key.slice(..SLOWLOG_KEY_BYTES), ..e }, back[0]);
    }

    #[test]
    fn bad_entries_and_subcommands_are_refused() {
        let mut b = BytesMut::new();
        encode_array(&[vec![0u8; 10]], &mut b);
        assert_eq!(decode_slowlog(&b), Err(SlowLogError::Truncated(0)));
        let mut item = vec![0u8; FIXED];
        item[29..31].copy_from_slice(&5u16.to_be_bytes());
        let mut b = BytesMut::new();
        encode_array(&[item], &mut b);
        assert_eq!(decode_slowlog(&b), Err(SlowLogError::KeyPastEnd(0)));
        for bad in [&[][..], &[0x01, 0, 0], &[0x02, 0], &[0x09]] {
            assert!(SlowLogCommand::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(SlowLogCommand::parse(&[1, 0, 0, 0, 3]), Ok(SlowLogCommand::Get { count: Some(3) }));
    }
}
