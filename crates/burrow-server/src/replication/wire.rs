//! Wire encoding of replication [`Message`]s over the client framing
//! (protocol.md §12), as pure functions: the async link drivers only move
//! [`Frame`]s through a [`Codec`](burrow_proto::Codec).
//!
//! Choices a driver author must know:
//! - **Every replication message is a request frame (magic `0xB7`), in both
//!   directions.** The follower connects to the leader's ordinary client
//!   port and sends [`Message::Handshake`]; from then on that connection is a
//!   replication link, not a client connection. Neither side's frames answer
//!   the other's (the leader streams many frames per handshake, unsolicited),
//!   so the response header's status and body-type bytes would mean nothing.
//!   Both ends therefore decode with `Codec::server(..)`.
//! - A server that does not serve replication (every build today) answers
//!   the handshake with a *response* frame (magic `0xB8`) carrying
//!   UNKNOWN_OPCODE. A follower decoding with `Codec::server` sees that as
//!   `CodecError::BadMagic { got: 0xB8, .. }`: report "peer does not serve
//!   replication", do not retry in a tight loop.
//! - The frame id is the sender's to choose (a per-link sequence number is
//!   handy in logs); [`decode`] ignores it.
//! - Flags (byte 3) and the reserved byte 9 MUST be 0 and the key empty;
//!   anything else is rejected, which leaves room for later versions.
//! - A link's codec must let one whole record through: use [`link_limits`]
//!   built from the *leader's* client limits on both ends, and pass
//!   [`max_records_payload`] / [`max_snapshot_chunk`] as the leader's batch
//!   and chunk byte limits.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::{Message, RecordEntry};
use crate::oplog::{
    record_position, BadRecord, RecordError, Records, MIN_RECORD_LEN, RECORD_BODY_FIXED, RECORD_HEADER_LEN,
};
use burrow_proto::{Frame, FrameKind, FrameRef, Limits, Opcode, HEADER_LEN};

/// Follower → leader: opens a replication link.
pub const OP_HANDSHAKE: u8 = 0x50;
/// Leader → follower: partial resync from the backlog.
pub const OP_PARTIAL_RESYNC: u8 = 0x51;
/// Leader → follower: full resync, snapshot chunks follow.
pub const OP_FULL_RESYNC: u8 = 0x52;
/// Leader → follower: a slice of the snapshot file.
pub const OP_SNAPSHOT_CHUNK: u8 = 0x53;
/// Leader → follower: a batch of log records.
pub const OP_RECORDS: u8 = 0x54;
/// Leader → follower: proof of life when idle.
pub const OP_HEARTBEAT: u8 = 0x55;
/// Follower → leader: applied and durable progress.
pub const OP_ACK: u8 = 0x56;

/// Every replication opcode, in wire order.
pub const OPCODES: [u8; 7] =
    [OP_HANDSHAKE, OP_PARTIAL_RESYNC, OP_FULL_RESYNC, OP_SNAPSHOT_CHUNK, OP_RECORDS, OP_HEARTBEAT, OP_ACK];

/// Extras lengths, fixed per message (all integers big-endian).
const HANDSHAKE_EXTRAS: usize = 40;
const PARTIAL_RESYNC_EXTRAS: usize = 24;
const FULL_RESYNC_EXTRAS: usize = 32;
const SNAPSHOT_CHUNK_EXTRAS: usize = 17;
/// commit_index (u64) + record count (u32).
pub(crate) const RECORDS_EXTRAS: usize = 12;
const HEARTBEAT_EXTRAS: usize = 32;
const ACK_EXTRAS: usize = 40;

/// Bytes a record adds around a client's key and value in the worst case
/// (SET: header 8, term/index 16, tag 1, key length 2, value length 4,
/// expiry 8). LPUSH/RPUSH records are smaller than their ARRAY body + key.
pub(crate) const MAX_RECORD_OVERHEAD: usize = RECORD_HEADER_LEN + RECORD_BODY_FIXED + 1 + 2 + 4 + 8;

/// Replication opcodes must stay unknown to the client protocol, so a
/// server without replication answers them UNKNOWN_OPCODE, and must sit in
/// the reserved 0x50–0x5F range: `ops` are, distinct, and none is in
/// `taken` (other replication opcodes). Checked at compile time.
pub(crate) const fn opcodes_are_reserved(ops: &[u8], taken: &[u8]) -> bool {
    let mut i = 0;
    while i < ops.len() {
        if ops[i] < 0x50 || ops[i] > 0x5F {
            return false;
        }
        let mut j = 0;
        while j < Opcode::ALL.len() {
            if Opcode::ALL[j] as u8 == ops[i] {
                return false;
            }
            j += 1;
        }
        let mut k = 0;
        while k < taken.len() {
            if taken[k] == ops[i] {
                return false;
            }
            k += 1;
        }
        let mut m = i + 1;
        while m < ops.len() {
            if ops[m] == ops[i] {
                return false;
            }
            m += 1;
        }
        i += 1;
    }
    true
}
const _: () =
    assert!(opcodes_are_reserved(&OPCODES, &[]), "replication opcode outside 0x50-0x5F or colliding");

/// Why a frame is not a valid replication message. Any of these means the
/// peer is broken or speaks another version: the driver drops the link.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("replication messages are request frames (magic 0xB7), got a response frame")]
    NotRequest,
    #[error("opcode 0x{0:02x} is not a replication message")]
    UnknownOpcode(u8),
    #[error("{message}: flags must be 0, got 0x{flags:02x}")]
    Flags { message: &'static str, flags: u8 },
    #[error("{message}: reserved byte 9 must be 0, got 0x{aux:02x}")]
    Reserved { message: &'static str, aux: u8 },
    #[error("{message}: extras must be {expected} bytes, got {got}")]
    ExtrasLength { message: &'static str, expected: usize, got: usize },
    #[error("{message}: key must be empty, got {len} bytes")]
    UnexpectedKey { message: &'static str, len: usize },
    #[error("{message}: value must be empty, got {len} bytes")]
    UnexpectedValue { message: &'static str, len: usize },
    #[error("SNAPSHOT_CHUNK: last flag must be 0 or 1, got {0}")]
    BadLastFlag(u8),
    /// Record `position` (0-based) of a RECORDS batch, starting at byte
    /// `offset` of the value, is truncated, has an impossible length or
    /// fails its CRC.
    #[error("RECORDS: record {position} at value offset {offset}")]
    BadRecord { position: usize, offset: usize, source: RecordError },
    #[error("RECORDS: extras declare {declared} records, value holds {found}")]
    RecordCount { declared: u32, found: usize },
}

/// Name used in errors and logs, as in protocol.md §12.
pub(crate) fn opcode_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
        OP_HANDSHAKE => "HANDSHAKE",
        OP_PARTIAL_RESYNC => "PARTIAL_RESYNC",
        OP_FULL_RESYNC => "FULL_RESYNC",
        OP_SNAPSHOT_CHUNK => "SNAPSHOT_CHUNK",
        OP_RECORDS => "RECORDS",
        OP_HEARTBEAT => "HEARTBEAT",
        OP_ACK => "ACK",
        _ => return None,
    })
}

/// The opcode `msg` travels under.
pub(crate) fn opcode(msg: &Message) -> u8 {
    match msg {
        Message::Handshake { .. } => OP_HANDSHAKE,
        Message::PartialResync { .. } => OP_PARTIAL_RESYNC,
        Message::FullResync { .. } => OP_FULL_RESYNC,
        Message::SnapshotChunk { .. } => OP_SNAPSHOT_CHUNK,
        Message::Records { .. } => OP_RECORDS,
        Message::Heartbeat { .. } => OP_HEARTBEAT,
        Message::Ack { .. } => OP_ACK,
    }
}

/// Largest encoded record a leader with client limits `client` can log: a
/// SET of a maximal key and value.
pub(crate) fn max_record_len(client: &Limits) -> usize {
    client.max_key + client.max_value + MAX_RECORD_OVERHEAD
}

/// Codec limits for both ends of a replication link, from the leader's
/// client limits: the value limit fits the largest record, so a batch of
/// one (which `BacklogSource::since` always allows) is never refused.
/// Keys are never used on the link.
pub fn link_limits(client: &Limits) -> Limits {
    let max_value = max_record_len(client).max(client.max_value);
    Limits { max_key: 0, max_value, max_frame: HEADER_LEN + u8::MAX as usize + max_value }
}

/// Largest RECORDS value (concatenated records) a peer decoding with
/// `limits` accepts: the leader's batch byte limit.
pub fn max_records_payload(limits: &Limits) -> usize {
    limits.max_value.min(limits.max_frame.saturating_sub(HEADER_LEN + RECORDS_EXTRAS))
}

/// Largest snapshot slice one SNAPSHOT_CHUNK may carry to a peer decoding
/// with `limits`.
pub fn max_snapshot_chunk(limits: &Limits) -> usize {
    limits.max_value.min(limits.max_frame.saturating_sub(HEADER_LEN + SNAPSHOT_CHUNK_EXTRAS))
}

fn extras(fields: &[u64]) -> Bytes {
    let mut b = BytesMut::with_capacity(fields.len() * 8);
    for f in fields {
        b.put_u64(*f);
    }
    b.freeze()
}

/// Encodes `msg` as a request frame with request id `id`. Never fails; a
/// frame over the peer's limits is refused by `Codec::encode` (stay under
/// [`max_records_payload`] and [`max_snapshot_chunk`]).
///
/// `Records` entries must hold sealed records (as `ReplBacklog` serves
/// them) whose header agrees with the entry's `term` and `index`: the wire
/// carries only the record bytes, and the decoder reads the position back
/// from them.
///
/// # Panics
/// If `Records` holds more than `u32::MAX` entries (the count's width; a
/// frame holding them would be over 4 GiB anyway).
pub fn encode(msg: &Message, id: u32) -> Frame {
    let mut f = Frame::request(opcode(msg), id);
    match msg {
        Message::Handshake { node_id, session, history_id, last_applied, last_term } => {
            f.extras = extras(&[*node_id, *session, *history_id, *last_applied, *last_term]);
        }
        Message::PartialResync { session, from_index, term } => {
            f.extras = extras(&[*session, *from_index, *term]);
        }
        Message::FullResync { session, snapshot_index, history_id, term } => {
            f.extras = extras(&[*session, *snapshot_index, *history_id, *term]);
        }
        Message::SnapshotChunk { session, offset, bytes, last } => {
            let mut e = BytesMut::with_capacity(SNAPSHOT_CHUNK_EXTRAS);
            e.put_u64(*session);
            e.put_u64(*offset);
            e.put_u8(u8::from(*last));
            f.extras = e.freeze();
            f.value = bytes.clone();
        }
        Message::Records { records, commit_index } => {
            let count = u32::try_from(records.len()).expect("more than u32::MAX records cannot fit a frame");
            let mut e = BytesMut::with_capacity(RECORDS_EXTRAS);
            e.put_u64(*commit_index);
            e.put_u32(count);
            f.extras = e.freeze();
            f.value = match records.as_slice() {
                [] => Bytes::new(),
                [one] => one.bytes.clone(),
                many => {
                    let mut v = BytesMut::with_capacity(many.iter().map(|r| r.bytes.len()).sum());
                    for r in many {
                        v.extend_from_slice(&r.bytes);
                    }
                    v.freeze()
                }
            };
            debug_assert!(
                records.iter().all(|r| record_position(&r.bytes) == Some((r.term, r.index))),
                "RecordEntry term/index disagree with its record bytes"
            );
        }
        Message::Heartbeat { term, last_index, commit_index, round } => {
            f.extras = extras(&[*term, *last_index, *commit_index, *round]);
        }
        Message::Ack { node_id, session, applied, durable, round } => {
            f.extras = extras(&[*node_id, *session, *applied, *durable, *round]);
        }
    }
    f
}

/// Decodes a borrowed frame (e.g. from `Codec::peek`). SNAPSHOT_CHUNK and
/// RECORDS payloads are copied out of the borrowed buffer; use
/// [`decode_frame`] on an owned [`Frame`] to share its buffer instead.
pub fn decode(frame: &FrameRef<'_>) -> Result<Message, WireError> {
    decode_with(frame, || Bytes::copy_from_slice(frame.value))
}

/// Decodes an owned frame (from the `Decoder` impl of `Codec`) without
/// copying: record and chunk bytes are slices of `frame.value`.
pub fn decode_frame(frame: &Frame) -> Result<Message, WireError> {
    decode_with(&frame.as_ref(), || frame.value.clone())
}

fn decode_with(f: &FrameRef<'_>, value: impl FnOnce() -> Bytes) -> Result<Message, WireError> {
    if f.kind != FrameKind::Request {
        return Err(WireError::NotRequest);
    }
    let message = opcode_name(f.opcode).ok_or(WireError::UnknownOpcode(f.opcode))?;
    if f.flags != 0 {
        return Err(WireError::Flags { message, flags: f.flags });
    }
    if f.aux != 0 {
        return Err(WireError::Reserved { message, aux: f.aux });
    }
    if !f.key.is_empty() {
        return Err(WireError::UnexpectedKey { message, len: f.key.len() });
    }
    let expected = match f.opcode {
        OP_HANDSHAKE => HANDSHAKE_EXTRAS,
        OP_PARTIAL_RESYNC => PARTIAL_RESYNC_EXTRAS,
        OP_FULL_RESYNC => FULL_RESYNC_EXTRAS,
        OP_SNAPSHOT_CHUNK => SNAPSHOT_CHUNK_EXTRAS,
        OP_RECORDS => RECORDS_EXTRAS,
        OP_HEARTBEAT => HEARTBEAT_EXTRAS,
        _ => ACK_EXTRAS,
    };
    if f.extras.len() != expected {
        return Err(WireError::ExtrasLength { message, expected, got: f.extras.len() });
    }
    let has_value = matches!(f.opcode, OP_SNAPSHOT_CHUNK | OP_RECORDS);
    if !has_value && !f.value.is_empty() {
        return Err(WireError::UnexpectedValue { message, len: f.value.len() });
    }
    let u = |i: usize| u64::from_be_bytes(f.extras[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ok(match f.opcode {
        OP_HANDSHAKE => Message::Handshake {
            node_id: u(0),
            session: u(1),
            history_id: u(2),
            last_applied: u(3),
            last_term: u(4),
        },
        OP_PARTIAL_RESYNC => Message::PartialResync { session: u(0), from_index: u(1), term: u(2) },
        OP_FULL_RESYNC => {
            Message::FullResync { session: u(0), snapshot_index: u(1), history_id: u(2), term: u(3) }
        }
        OP_SNAPSHOT_CHUNK => {
            let last = match f.extras[16] {
                0 => false,
                1 => true,
                other => return Err(WireError::BadLastFlag(other)),
            };
            Message::SnapshotChunk { session: u(0), offset: u(1), bytes: value(), last }
        }
        OP_RECORDS => {
            let declared = u32::from_be_bytes(f.extras[8..12].try_into().expect("4 bytes"));
            let records = split_records(f.value, declared, value)?;
            Message::Records { records, commit_index: u(0) }
        }
        OP_HEARTBEAT => Message::Heartbeat { term: u(0), last_index: u(1), commit_index: u(2), round: u(3) },
        _ => Message::Ack { node_id: u(0), session: u(1), applied: u(2), durable: u(3), round: u(4) },
    })
}

/// Splits a RECORDS value into its records, checking each one's framing
/// and CRC ([`Records`]) so a corrupted record is reported here rather than
/// applied. The op itself is decoded later, when the follower applies the
/// record.
fn split_records(
    raw: &[u8],
    declared: u32,
    value: impl FnOnce() -> Bytes,
) -> Result<Vec<RecordEntry>, WireError> {
    // Capacity bounded by what the value can hold: a hostile count cannot
    // reserve memory.
    let mut spans = Vec::with_capacity((declared as usize).min(raw.len() / MIN_RECORD_LEN));
    let mut records = Records::new(raw);
    loop {
        let start = records.offset();
        match records.next() {
            None => break,
            Some(Ok(rec)) => spans.push((start, records.offset(), rec.term, rec.index)),
            Some(Err(BadRecord { offset, error })) => {
                return Err(WireError::BadRecord { position: spans.len(), offset, source: error })
            }
        }
    }
    if spans.len() != declared as usize {
        return Err(WireError::RecordCount { declared, found: spans.len() });
    }
    let value = value();
    Ok(spans
        .into_iter()
        .map(|(start, end, term, index)| RecordEntry { term, index, bytes: value.slice(start..end) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::{decode_record, encode_record, Op};
    use burrow_proto::{Codec, CodecError, End};
    use proptest::prelude::*;
    use tokio_util::codec::{Decoder, Encoder};

    fn record(term: u64, index: u64, op: &Op) -> RecordEntry {
        let mut b = BytesMut::new();
        encode_record(term, index, op, &mut b);
        RecordEntry { term, index, bytes: b.freeze() }
    }

    fn set(key: &[u8], value: &[u8]) -> Op {
        Op::Set { key: Bytes::copy_from_slice(key), value: Bytes::copy_from_slice(value), expire_at: 0 }
    }

    /// encode → bytes on the wire → `Codec::server` → both decoders.
    fn through_codec(msg: &Message, id: u32, limits: Limits) -> Message {
        let frame = encode(msg, id);
        let mut wire = BytesMut::new();
        Codec::server(limits).encode(&frame, &mut wire).expect("frame within limits");
        let borrowed = match Codec::server(limits).peek(&wire).unwrap() {
            burrow_proto::Peek::Frame(f, used) => {
                assert_eq!(used, wire.len());
                assert_eq!(f.id, id);
                decode(&f).unwrap()
            }
            other => panic!("incomplete frame: {other:?}"),
        };
        let owned = Codec::server(limits).decode(&mut wire).unwrap().expect("whole frame");
        assert!(wire.is_empty());
        assert_eq!(decode_frame(&owned).unwrap(), borrowed);
        borrowed
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from);
        prop_oneof![
            (bytes(), bytes(), any::<u64>()).prop_map(|(key, value, expire_at)| Op::Set {
                key,
                value,
                expire_at
            }),
            bytes().prop_map(|key| Op::Del { key }),
            (bytes(), any::<i64>()).prop_map(|(key, delta)| Op::IncrBy { key, delta }),
            (bytes(), proptest::collection::vec(bytes(), 1..4)).prop_map(|(key, values)| Op::Push {
                key,
                end: End::Left,
                values
            }),
            Just(Op::FlushAll),
            Just(Op::Noop),
        ]
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        let u = any::<u64>;
        prop_oneof![
            (u(), u(), u(), u(), u()).prop_map(|(node_id, session, history_id, last_applied, last_term)| {
                Message::Handshake { node_id, session, history_id, last_applied, last_term }
            }),
            (u(), u(), u()).prop_map(|(session, from_index, term)| Message::PartialResync {
                session,
                from_index,
                term
            }),
            (u(), u(), u(), u()).prop_map(|(session, snapshot_index, history_id, term)| {
                Message::FullResync { session, snapshot_index, history_id, term }
            }),
            (u(), u(), proptest::collection::vec(any::<u8>(), 0..300), any::<bool>()).prop_map(
                |(session, offset, bytes, last)| Message::SnapshotChunk {
                    session,
                    offset,
                    bytes: Bytes::from(bytes),
                    last
                }
            ),
            (u(), u(), proptest::collection::vec(arb_op(), 0..6), u()).prop_map(
                |(term, first, ops, commit_index)| {
                    let records = ops
                        .iter()
                        .enumerate()
                        .map(|(i, op)| record(term, first.wrapping_add(i as u64), op))
                        .collect();
                    Message::Records { records, commit_index }
                }
            ),
            (u(), u(), u(), u()).prop_map(|(term, last_index, commit_index, round)| Message::Heartbeat {
                term,
                last_index,
                commit_index,
                round
            }),
            (u(), u(), u(), u(), u()).prop_map(|(node_id, session, applied, durable, round)| Message::Ack {
                node_id,
                session,
                applied,
                durable,
                round
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_roundtrips_through_the_codec(msg in arb_message(), id in any::<u32>()) {
            let limits = link_limits(&Limits::default());
            prop_assert_eq!(through_codec(&msg, id, limits), msg);
        }
    }

    #[test]
    fn opcodes_are_reserved_and_unknown_to_clients() {
        for op in OPCODES {
            assert!((0x50..=0x5F).contains(&op), "0x{op:02x} outside the reserved range");
            assert_eq!(Opcode::from_u8(op), None, "0x{op:02x} collides with a client opcode");
            assert!(opcode_name(op).is_some());
        }
        let mut sorted = OPCODES.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), OPCODES.len());
    }

    #[test]
    fn real_records_decode_with_their_positions_and_corruption_is_reported() {
        let records = vec![
            record(2, 41, &set(b"a", b"1")),
            record(2, 42, &Op::Del { key: Bytes::from_static(b"b") }),
            record(3, 43, &Op::FlushAll),
        ];
        let msg = Message::Records { records: records.clone(), commit_index: 40 };
        let frame = encode(&msg, 9);
        match decode_frame(&frame).unwrap() {
            Message::Records { records: got, commit_index } => {
                assert_eq!(commit_index, 40);
                let pos: Vec<(u64, u64)> = got.iter().map(|r| (r.term, r.index)).collect();
                assert_eq!(pos, vec![(2, 41), (2, 42), (3, 43)]);
                let (rec, used) = decode_record(&got[0].bytes).unwrap();
                assert_eq!((rec.op, used), (set(b"a", b"1"), got[0].bytes.len()));
            }
            other => panic!("decoded as {other:?}"),
        }
        // Flip one bit in the op of the second record: its CRC must catch it.
        let offset = records[0].bytes.len();
        let mut value = frame.value.to_vec();
        value[offset + RECORD_HEADER_LEN + RECORD_BODY_FIXED + 2] ^= 0x10;
        let bad = Frame { value: Bytes::from(value), ..frame.clone() };
        match decode(&bad.as_ref()) {
            Err(WireError::BadRecord { position: 1, offset: o, source: RecordError::Crc { .. } }) => {
                assert_eq!(o, offset)
            }
            other => panic!("corruption not reported as CRC: {other:?}"),
        }
    }

    #[test]
    fn malformed_frames_are_rejected_precisely() {
        let hb = encode(&Message::Heartbeat { term: 1, last_index: 2, commit_index: 3, round: 0 }, 1);
        let chunk = encode(
            &Message::SnapshotChunk { session: 1, offset: 0, bytes: Bytes::from_static(b"snap"), last: true },
            2,
        );
        let one = record(1, 1, &set(b"k", b"v"));
        let recs = encode(&Message::Records { records: vec![one.clone()], commit_index: 0 }, 3);
        let with = |f: &Frame, edit: &dyn Fn(&mut Frame)| {
            let mut f = f.clone();
            edit(&mut f);
            f
        };
        let extras_with = |f: &Frame, i: usize, b: u8| {
            with(f, &|f| {
                let mut e = f.extras.to_vec();
                e[i] = b;
                f.extras = Bytes::from(e);
            })
        };
        let value_of = |v: Vec<u8>| move |f: &mut Frame| f.value = Bytes::from(v.clone());
        let first_len = one.bytes.len();
        let cases: Vec<(&str, Frame, WireError)> = vec![
            ("response magic", with(&hb, &|f| f.kind = FrameKind::Response), WireError::NotRequest),
            ("client opcode", with(&hb, &|f| f.opcode = Opcode::Get as u8), WireError::UnknownOpcode(0x02)),
            ("unassigned reserved opcode", with(&hb, &|f| f.opcode = 0x5F), WireError::UnknownOpcode(0x5F)),
            ("flags", with(&hb, &|f| f.flags = 1), WireError::Flags { message: "HEARTBEAT", flags: 1 }),
            ("byte 9", with(&hb, &|f| f.aux = 7), WireError::Reserved { message: "HEARTBEAT", aux: 7 }),
            (
                "key",
                with(&hb, &|f| f.key = Bytes::from_static(b"k")),
                WireError::UnexpectedKey { message: "HEARTBEAT", len: 1 },
            ),
            (
                "short extras (a heartbeat without its round, as servers before ReadIndex sent it)",
                with(&hb, &|f| f.extras = f.extras.slice(..24)),
                WireError::ExtrasLength { message: "HEARTBEAT", expected: 32, got: 24 },
            ),
            (
                "long extras",
                with(&chunk, &|f| f.extras = Bytes::from(vec![0; 18])),
                WireError::ExtrasLength { message: "SNAPSHOT_CHUNK", expected: 17, got: 18 },
            ),
            (
                "value on a fixed message",
                with(&hb, &|f| f.value = Bytes::from_static(b"x")),
                WireError::UnexpectedValue { message: "HEARTBEAT", len: 1 },
            ),
            ("last flag 2", extras_with(&chunk, 16, 2), WireError::BadLastFlag(2)),
            ("count too high", extras_with(&recs, 11, 2), WireError::RecordCount { declared: 2, found: 1 }),
            ("count too low", extras_with(&recs, 11, 0), WireError::RecordCount { declared: 0, found: 1 }),
            (
                "hostile count",
                extras_with(&recs, 8, 0xFF),
                WireError::RecordCount { declared: 0xFF00_0001, found: 1 },
            ),
            (
                "truncated record",
                with(&recs, &value_of(one.bytes[..first_len - 1].to_vec())),
                WireError::BadRecord {
                    position: 0,
                    offset: 0,
                    source: RecordError::Truncated { need: first_len, have: first_len - 1 },
                },
            ),
            (
                "trailing partial header",
                with(&recs, &value_of([&one.bytes[..], &[0, 0, 0]].concat())),
                WireError::BadRecord {
                    position: 1,
                    offset: first_len,
                    source: RecordError::Truncated { need: RECORD_HEADER_LEN, have: 3 },
                },
            ),
            (
                "impossible length",
                with(&recs, &value_of([&[0, 0, 0, 16][..], &[0; 20]].concat())),
                WireError::BadRecord { position: 0, offset: 0, source: RecordError::BadLength(16) },
            ),
        ];
        for (name, frame, want) in cases {
            assert_eq!(decode(&frame.as_ref()).err().as_ref(), Some(&want), "{name}");
            assert_eq!(decode_frame(&frame).err().as_ref(), Some(&want), "{name} (owned)");
        }
    }

    /// The hex block of `info` that follows `marker` in protocol.md §12.
    fn doc_example(marker: &str, info: &str) -> Vec<u8> {
        let doc = include_str!("../../../../protocol.md");
        let start = doc.find(marker).unwrap_or_else(|| panic!("{marker} missing from protocol.md"));
        let fence = format!("```{info}\n");
        let body = &doc[start..];
        let body = &body[body.find(&fence).expect("hex block") + fence.len()..];
        let body = &body[..body.find("```").expect("closing fence")];
        body.lines()
            .flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace())
            .map(|t| u8::from_str_radix(t, 16).expect("hex byte"))
            .collect()
    }

    fn decode_bytes(bytes: &[u8]) -> (Frame, Message) {
        let mut buf = BytesMut::from(bytes);
        let frame = Codec::server(Limits::default()).decode(&mut buf).unwrap().expect("whole frame");
        assert!(buf.is_empty(), "one frame exactly");
        let msg = decode_frame(&frame).unwrap();
        (frame, msg)
    }

    #[test]
    fn protocol_doc_examples_match_the_encoder() {
        let hs = doc_example("<!-- example: replication-handshake -->", "hex request");
        let (frame, msg) = decode_bytes(&hs);
        assert_eq!(
            msg,
            Message::Handshake {
                node_id: 2,
                session: 31,
                history_id: 0x5eed,
                last_applied: 41,
                last_term: 3
            }
        );
        assert_eq!(encode(&msg, frame.id), frame);

        let recs = doc_example("<!-- replication-example: records -->", "hex replication");
        let (frame, msg) = decode_bytes(&recs);
        let Message::Records { records, commit_index: 41 } = &msg else { panic!("decoded as {msg:?}") };
        let pos: Vec<(u64, u64)> = records.iter().map(|r| (r.term, r.index)).collect();
        assert_eq!(pos, vec![(1, 42), (1, 43)]);
        let push = Op::Push {
            key: Bytes::from_static(b"q"),
            end: End::Left,
            values: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        };
        assert_eq!(decode_record(&records[1].bytes).unwrap().0.op, push);
        let mut again = BytesMut::new();
        Codec::server(Limits::default()).encode(&encode(&msg, frame.id), &mut again).unwrap();
        assert_eq!(&again[..], &recs[..]);
    }

    #[test]
    fn link_limits_carry_the_largest_record_a_leader_can_log() {
        let client = Limits { max_key: 100, max_value: 1000, max_frame: HEADER_LEN + 255 + 1100 };
        let link = link_limits(&client);
        let op = set(&[b'k'; 100], &[7; 1000]);
        let big = record(1, 1, &op);
        assert_eq!(big.bytes.len(), max_record_len(&client), "MAX_RECORD_OVERHEAD is exact for SET");
        assert!(big.bytes.len() <= max_records_payload(&link));
        let push = record(
            1,
            2,
            &Op::Push {
                key: Bytes::from(vec![b'k'; 100]),
                end: End::Right,
                values: vec![Bytes::from(vec![1; 992])],
            },
        );
        assert!(push.bytes.len() <= big.bytes.len(), "a maximal push is no larger than a maximal SET");
        let msg = Message::Records { records: vec![big], commit_index: 1 };
        assert_eq!(through_codec(&msg, 1, link), msg);
        // The same record does not fit a client-limit codec: hence link_limits.
        let mut wire = BytesMut::new();
        assert!(matches!(
            Codec::server(client).encode(&encode(&msg, 1), &mut wire),
            Err(CodecError::ValueTooLarge { .. })
        ));
        let chunk = Message::SnapshotChunk {
            session: 1,
            offset: 0,
            bytes: Bytes::from(vec![0; max_snapshot_chunk(&link)]),
            last: false,
        };
        assert_eq!(through_codec(&chunk, 2, link), chunk);
    }
}
