//! Wire encoding of election traffic between members (protocol.md §12.6),
//! beside [`wire`]'s leader↔follower messages and under the
//! same rules: request frames only (magic `0xB7`), flags, byte 9 and key
//! zero/empty, fixed-length big-endian extras, no value.
//!
//! Each member keeps one outbound *peer link* to every other member and
//! writes election messages on it; nothing is ever answered on the same
//! connection (a reply travels on the replier's own link). A peer link
//! opens with [`PeerMessage::Hello`]: the sender's node id and the
//! cluster id ([`cluster_id`]), so a node of another cluster file, or an
//! id this cluster does not have, is refused before any vote is read.
//!
//! [`PeerMessage::Announce`] is the driver's, not the election core's: a
//! leader says "I lead term T" to every member once a heartbeat interval,
//! because its followers dial *it* (a follower that knows no leader would
//! otherwise never hear from one). The receiver treats it as leader
//! contact ([`Election::on_leader_contact`](super::Election::on_leader_contact)).

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use super::{wire, ElectionMessage, NodeId};
use burrow_proto::{Frame, FrameKind, FrameRef};

/// Member → member: opens a peer link (cluster id, node id).
pub const OP_PEER_HELLO: u8 = 0x58;
/// Candidate → voter: (pre-)vote request.
pub const OP_REQUEST_VOTE: u8 = 0x59;
/// Voter → candidate: the answer.
pub const OP_VOTE_RESPONSE: u8 = 0x5A;
/// Anyone → a stale leader or candidate: the current term.
pub const OP_TERM_NOTICE: u8 = 0x5B;
/// Leader → every member: "I lead this term", once a heartbeat interval.
pub const OP_LEADER_ANNOUNCE: u8 = 0x5C;

/// Every peer-link opcode, in wire order.
pub const OPCODES: [u8; 5] =
    [OP_PEER_HELLO, OP_REQUEST_VOTE, OP_VOTE_RESPONSE, OP_TERM_NOTICE, OP_LEADER_ANNOUNCE];

const HELLO_EXTRAS: usize = 16;
/// term, candidate, last log term, last log index (u64 each), pre-vote (u8).
const REQUEST_VOTE_EXTRAS: usize = 33;
/// term (u64), granted (u8), pre-vote (u8).
const VOTE_RESPONSE_EXTRAS: usize = 10;
const TERM_EXTRAS: usize = 8;

// In 0x50–0x5F, distinct, and clear of client opcodes and of the
// leader↔follower ones.
const _: () = assert!(
    wire::opcodes_are_reserved(&OPCODES, &wire::OPCODES),
    "peer-link opcode outside 0x50-0x5F or colliding"
);

/// What travels on a peer link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMessage {
    /// First frame of a peer link.
    Hello {
        cluster_id: u64,
        node_id: NodeId,
    },
    Election(ElectionMessage),
    /// A leader's periodic "I lead `term`".
    Announce {
        term: u64,
    },
}

/// Why a frame is not a valid peer-link message: the link is closed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PeerWireError {
    #[error("peer-link messages are request frames (magic 0xB7), got a response frame")]
    NotRequest,
    #[error("opcode 0x{0:02x} is not a peer-link message")]
    UnknownOpcode(u8),
    #[error("{message}: flags, reserved byte, key and value must be zero/empty")]
    NotBare { message: &'static str },
    #[error("{message}: extras must be {expected} bytes, got {got}")]
    ExtrasLength { message: &'static str, expected: usize, got: usize },
    #[error("{message}: a boolean byte must be 0 or 1, got {got}")]
    BadFlag { message: &'static str, got: u8 },
}

/// Name used in errors and logs, as in protocol.md §12.6.
pub(crate) fn opcode_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
        OP_PEER_HELLO => "PEER_HELLO",
        OP_REQUEST_VOTE => "REQUEST_VOTE",
        OP_VOTE_RESPONSE => "VOTE_RESPONSE",
        OP_TERM_NOTICE => "TERM_NOTICE",
        OP_LEADER_ANNOUNCE => "LEADER_ANNOUNCE",
        _ => return None,
    })
}

/// The cluster id members compare in [`PeerMessage::Hello`]: FNV-1a (64
/// bit) over `id=data_dir;` of every member in ascending id order. Two
/// files listing the same members with the same data directories agree;
/// a file of another cluster (whose members need other data directories
/// on the same machine) or another membership does not. Addresses are left
/// out: a member may be reached through another address (a proxy, NAT) in
/// some members' files. Never 0.
pub fn cluster_id<'a>(members: impl IntoIterator<Item = (NodeId, &'a std::path::Path)>) -> u64 {
    let mut m: Vec<_> = members.into_iter().collect();
    m.sort_by_key(|(id, _)| *id);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (id, dir) in m {
        for b in format!("{id}={};", dir.display()).bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h.max(1)
}

/// Encodes `msg` as a request frame with request id `id`.
pub fn encode(msg: &PeerMessage, id: u32) -> Frame {
    let mut e = BytesMut::with_capacity(REQUEST_VOTE_EXTRAS);
    let opcode = match *msg {
        PeerMessage::Hello { cluster_id, node_id } => {
            e.put_u64(cluster_id);
            e.put_u64(node_id);
            OP_PEER_HELLO
        }
        PeerMessage::Election(ElectionMessage::RequestVote {
            term,
            candidate,
            last_log_term,
            last_log_index,
            pre_vote,
        }) => {
            e.put_u64(term);
            e.put_u64(candidate);
            e.put_u64(last_log_term);
            e.put_u64(last_log_index);
            e.put_u8(u8::from(pre_vote));
            OP_REQUEST_VOTE
        }
        PeerMessage::Election(ElectionMessage::VoteResponse { term, granted, pre_vote }) => {
            e.put_u64(term);
            e.put_u8(u8::from(granted));
            e.put_u8(u8::from(pre_vote));
            OP_VOTE_RESPONSE
        }
        PeerMessage::Election(ElectionMessage::TermNotice { term }) => {
            e.put_u64(term);
            OP_TERM_NOTICE
        }
        PeerMessage::Announce { term } => {
            e.put_u64(term);
            OP_LEADER_ANNOUNCE
        }
    };
    let mut f = Frame::request(opcode, id);
    f.extras = e.freeze();
    f
}

/// Decodes a peer-link frame.
pub fn decode(f: &FrameRef<'_>) -> Result<PeerMessage, PeerWireError> {
    if f.kind != FrameKind::Request {
        return Err(PeerWireError::NotRequest);
    }
    let message = opcode_name(f.opcode).ok_or(PeerWireError::UnknownOpcode(f.opcode))?;
    if f.flags != 0 || f.aux != 0 || !f.key.is_empty() || !f.value.is_empty() {
        return Err(PeerWireError::NotBare { message });
    }
    let expected = match f.opcode {
        OP_PEER_HELLO => HELLO_EXTRAS,
        OP_REQUEST_VOTE => REQUEST_VOTE_EXTRAS,
        OP_VOTE_RESPONSE => VOTE_RESPONSE_EXTRAS,
        _ => TERM_EXTRAS,
    };
    if f.extras.len() != expected {
        return Err(PeerWireError::ExtrasLength { message, expected, got: f.extras.len() });
    }
    let u = |i: usize| u64::from_be_bytes(f.extras[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let flag = |at: usize| match f.extras[at] {
        0 => Ok(false),
        1 => Ok(true),
        got => Err(PeerWireError::BadFlag { message, got }),
    };
    Ok(match f.opcode {
        OP_PEER_HELLO => PeerMessage::Hello { cluster_id: u(0), node_id: u(1) },
        OP_REQUEST_VOTE => PeerMessage::Election(ElectionMessage::RequestVote {
            term: u(0),
            candidate: u(1),
            last_log_term: u(2),
            last_log_index: u(3),
            pre_vote: flag(32)?,
        }),
        OP_VOTE_RESPONSE => PeerMessage::Election(ElectionMessage::VoteResponse {
            term: u(0),
            granted: flag(8)?,
            pre_vote: flag(9)?,
        }),
        OP_TERM_NOTICE => PeerMessage::Election(ElectionMessage::TermNotice { term: u(0) }),
        _ => PeerMessage::Announce { term: u(0) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::{Codec, Limits};
    use proptest::prelude::*;
    use tokio_util::codec::{Decoder, Encoder};

    fn through_codec(msg: &PeerMessage, id: u32) -> PeerMessage {
        let mut bytes = BytesMut::new();
        Codec::server(Limits::default()).encode(&encode(msg, id), &mut bytes).unwrap();
        let frame = Codec::server(Limits::default()).decode(&mut bytes).unwrap().expect("whole frame");
        assert!(bytes.is_empty());
        decode(&frame.as_ref()).unwrap()
    }

    fn arb() -> impl Strategy<Value = PeerMessage> {
        let u = any::<u64>;
        prop_oneof![
            (u(), u()).prop_map(|(cluster_id, node_id)| PeerMessage::Hello { cluster_id, node_id }),
            (u(), u(), u(), u(), any::<bool>()).prop_map(|(term, candidate, lt, li, pre_vote)| {
                PeerMessage::Election(ElectionMessage::RequestVote {
                    term,
                    candidate,
                    last_log_term: lt,
                    last_log_index: li,
                    pre_vote,
                })
            }),
            (u(), any::<bool>(), any::<bool>()).prop_map(|(term, granted, pre_vote)| {
                PeerMessage::Election(ElectionMessage::VoteResponse { term, granted, pre_vote })
            }),
            u().prop_map(|term| PeerMessage::Election(ElectionMessage::TermNotice { term })),
            u().prop_map(|term| PeerMessage::Announce { term }),
        ]
    }

    proptest! {
        #[test]
        fn every_message_survives_the_codec(msg in arb(), id in any::<u32>()) {
            prop_assert_eq!(through_codec(&msg, id), msg);
        }

        /// What a peer may send (`fuzz/fuzz_targets/peer_message.rs` runs
        /// the same check on bytes a fuzzer picks): never a panic, and
        /// whatever decodes re-encodes to itself.
        #[test]
        fn arbitrary_bytes_never_panic_and_what_decodes_reencodes(
            opcode in prop_oneof![Just(OP_PEER_HELLO), Just(OP_REQUEST_VOTE), Just(OP_VOTE_RESPONSE),
                                  Just(OP_TERM_NOTICE), Just(OP_LEADER_ANNOUNCE), any::<u8>()],
            extras in proptest::collection::vec(any::<u8>(), 0..40),
            flags in prop_oneof![Just(0u8), any::<u8>()],
        ) {
            let mut f = Frame::request(opcode, 9);
            f.flags = flags;
            f.extras = bytes::Bytes::from(extras);
            if let Ok(msg) = decode(&f.as_ref()) {
                prop_assert_eq!(through_codec(&msg, 9), msg);
                prop_assert_eq!(encode(&msg, 9).extras, f.extras.clone());
            }
        }
    }

    /// The bytes of protocol.md's `<!-- replication-example: NAME -->`.
    fn doc_example(name: &str) -> Vec<u8> {
        let doc = include_str!("../../../../protocol.md");
        let marker = format!("<!-- replication-example: {name} -->");
        let start = doc.find(&marker).unwrap_or_else(|| panic!("{marker} missing from protocol.md"));
        let body = &doc[start..];
        let fence = "```hex replication\n";
        let body = &body[body.find(fence).expect("hex block") + fence.len()..];
        let body = &body[..body.find("```").expect("closing fence")];
        body.lines()
            .flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace())
            .map(|t| u8::from_str_radix(t, 16).expect("hex byte"))
            .collect()
    }

    #[test]
    fn protocol_doc_examples_match_the_encoder() {
        let cases = [
            ("peer-hello", PeerMessage::Hello { cluster_id: 0x5eed, node_id: 2 }, 1),
            (
                "request-vote",
                PeerMessage::Election(ElectionMessage::RequestVote {
                    term: 7,
                    candidate: 2,
                    last_log_term: 6,
                    last_log_index: 41,
                    pre_vote: true,
                }),
                2,
            ),
            (
                "vote-response",
                PeerMessage::Election(ElectionMessage::VoteResponse {
                    term: 7,
                    granted: true,
                    pre_vote: true,
                }),
                3,
            ),
            ("term-notice", PeerMessage::Election(ElectionMessage::TermNotice { term: 9 }), 4),
            ("leader-announce", PeerMessage::Announce { term: 7 }, 5),
        ];
        for (name, msg, id) in cases {
            let mut bytes = BytesMut::new();
            Codec::server(Limits::default()).encode(&encode(&msg, id), &mut bytes).unwrap();
            assert_eq!(&bytes[..], &doc_example(name)[..], "protocol.md example {name}");
        }
    }

    #[test]
    fn malformed_frames_are_refused() {
        let mut f = encode(&PeerMessage::Announce { term: 3 }, 1);
        f.extras = f.extras.slice(..7);
        assert!(matches!(decode(&f.as_ref()), Err(PeerWireError::ExtrasLength { expected: 8, got: 7, .. })));
        let mut f = encode(
            &PeerMessage::Election(ElectionMessage::VoteResponse { term: 1, granted: true, pre_vote: false }),
            1,
        );
        let mut e = BytesMut::from(&f.extras[..]);
        e[8] = 2;
        f.extras = e.freeze();
        assert!(matches!(decode(&f.as_ref()), Err(PeerWireError::BadFlag { got: 2, .. })));
        let f = Frame::request(0x5F, 1);
        assert_eq!(decode(&f.as_ref()), Err(PeerWireError::UnknownOpcode(0x5F)));
    }

    #[test]
    fn the_cluster_id_depends_on_members_not_their_order() {
        let a = std::path::Path::new("data/node1");
        let b = std::path::Path::new("data/node2");
        assert_eq!(cluster_id([(1, a), (2, b)]), cluster_id([(2, b), (1, a)]));
        assert_ne!(cluster_id([(1, a), (2, b)]), cluster_id([(1, b), (2, a)]));
        assert_ne!(cluster_id([(1, a)]), cluster_id([(1, a), (2, b)]));
    }
}
