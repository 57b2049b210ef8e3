//! What a protocol must provide to be driven by the load loop: encode one
//! request into the batch buffer, and recognise (and judge) one reply at the
//! front of the read buffer — without allocating on the hot path.

use thiserror::Error;

use super::workload::{write_digits, Op, KEY_DIGITS};

/// One complete reply at the front of the read buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reply {
    /// Bytes the reply occupies.
    pub len: usize,
    /// Whether it is the right answer to the request it pairs with (status
    /// OK, the expected body type, matching id and opcode).
    pub ok: bool,
}

/// The byte stream can no longer be split into replies (bad magic, a length
/// over the limit, a RESP line that is not RESP): the connection must be
/// dropped, and every reply still outstanding on it counts as an error.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{0}")]
pub(crate) struct FramingError(pub String);

/// A wire protocol the load loop can speak. Implementations are pure: bytes
/// in, bytes out.
pub(crate) trait Wire: Send + Sync + 'static {
    /// Appends request `op` on key number `key` (ignored by keyless
    /// operations) with request id `id` (ignored by protocols without ids).
    fn encode(&self, dst: &mut Vec<u8>, op: Op, key: u64, id: u32);

    /// Looks at the front of `buf` for the reply to request `op`/`id`:
    /// `Ok(None)` means the reply is not complete yet.
    fn parse(&self, buf: &[u8], op: Op, id: u32) -> Result<Option<Reply>, FramingError>;

    /// Says what is wrong with `reply` (a complete reply judged not ok), for
    /// the first-error line of the report. Off the hot path.
    fn describe(&self, reply: &[u8], op: Op, id: u32) -> String;

    /// Whether `reply` (a complete reply judged not ok) says this node is
    /// not the leader (`NOT_LEADER`, `NO_LEADER`): a cluster run then
    /// finds the leader again. Off the hot path.
    fn refused(&self, _reply: &[u8]) -> bool {
        false
    }
}

/// A fully encoded request whose key digits and id are patched in place, so
/// encoding a batch is one `memcpy` and a few stores per request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Template {
    pub bytes: Vec<u8>,
    /// Offset of the 12 key digits, if the request has a numbered key.
    pub key_at: Option<usize>,
    /// Offset of a big-endian u32 request id, if the protocol has one.
    pub id_at: Option<usize>,
}

impl Template {
    #[inline]
    pub(crate) fn append(&self, dst: &mut Vec<u8>, key: u64, id: u32) {
        let start = dst.len();
        dst.extend_from_slice(&self.bytes);
        if let Some(at) = self.key_at {
            write_digits(&mut dst[start + at..start + at + KEY_DIGITS], key);
        }
        if let Some(at) = self.id_at {
            dst[start + at..start + at + 4].copy_from_slice(&id.to_be_bytes());
        }
    }
}

/// Printable form of a short byte string for error messages.
pub(crate) fn printable(b: &[u8]) -> String {
    const MAX: usize = 80;
    let mut s: String = String::from_utf8_lossy(&b[..b.len().min(MAX)]).escape_debug().collect();
    if b.len() > MAX {
        s.push('…');
    }
    s
}
