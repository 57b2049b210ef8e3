//! Mutual authentication of cluster members (protocol.md §12.7): before a
//! replication link (HANDSHAKE) or a peer link (PEER_HELLO) opens, each
//! side proves it holds the cluster secret, with
//! [`burrow_proto::Proof`]'s challenge–response (`Purpose::Member`).
//!
//! Three request frames, each bare with fixed extras (the §12.1 rules):
//!
//! ```text
//! dialer                                   acceptor
//!   MEMBER_HELLO     cluster id, node id, dialer nonce  ──▶
//!   ◀── MEMBER_CHALLENGE  acceptor nonce, acceptor proof
//!   MEMBER_PROOF     dialer proof                        ──▶
//!   HANDSHAKE or PEER_HELLO (same node id), then as without a secret
//! ```
//!
//! The acceptor proves first: a follower learns that its leader is a
//! member before it sends anything about itself, and a dialer that is not
//! one learns nothing but a fresh nonce and a proof it cannot use (the
//! prover byte differs). Both proofs are made over the acceptor's nonce
//! and a *bound* dialer nonce ([`bound_nonce`]): SHA-256 over the dialer's
//! nonce, the cluster id, the dialer's id and the acceptor's id. So a
//! proof made for node 2 does not verify as node 3, nor towards another
//! acceptor, nor in another cluster sharing the secret file.

use bytes::{BufMut, BytesMut};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::{vote_wire, wire, NodeId};
use burrow_proto::{Frame, FrameKind, FrameRef, Nonce, Proof, Prover, Purpose, Secret, NONCE_LEN, PROOF_LEN};

/// Dialer → acceptor: who it claims to be, and its nonce.
pub const OP_MEMBER_HELLO: u8 = 0x5D;
/// Acceptor → dialer: its nonce and its proof.
pub const OP_MEMBER_CHALLENGE: u8 = 0x5E;
/// Dialer → acceptor: its proof.
pub const OP_MEMBER_PROOF: u8 = 0x5F;

/// Every member-auth opcode, in wire order.
pub const OPCODES: [u8; 3] = [OP_MEMBER_HELLO, OP_MEMBER_CHALLENGE, OP_MEMBER_PROOF];

const HELLO_EXTRAS: usize = 16 + NONCE_LEN;
const CHALLENGE_EXTRAS: usize = NONCE_LEN + PROOF_LEN;
const PROOF_EXTRAS: usize = PROOF_LEN;

const _: () = assert!(
    wire::opcodes_are_reserved(&OPCODES, &wire::OPCODES)
        && wire::opcodes_are_reserved(&OPCODES, &vote_wire::OPCODES),
    "member-auth opcode outside 0x50-0x5F or colliding"
);

/// Label hashed with the ids into the bound nonce: a change of this
/// construction changes the label.
const BIND_LABEL: &[u8] = b"burrow-member-bind-v1";

/// The three messages of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAuth {
    Hello { cluster_id: u64, node_id: NodeId, nonce: Nonce },
    Challenge { nonce: Nonce, proof: Proof },
    Proof { proof: Proof },
}

/// Why a frame is not a valid member-auth message: the link is closed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MemberAuthWireError {
    #[error("member-auth messages are request frames (magic 0xB7), got a response frame")]
    NotRequest,
    #[error("opcode 0x{0:02x} is not a member-auth message")]
    UnknownOpcode(u8),
    #[error("{message}: flags, reserved byte, key and value must be zero/empty")]
    NotBare { message: &'static str },
    #[error("{message}: extras must be {expected} bytes, got {got}")]
    ExtrasLength { message: &'static str, expected: usize, got: usize },
}

/// Name used in errors and logs, as in protocol.md §12.7.
pub(crate) fn opcode_name(opcode: u8) -> Option<&'static str> {
    Some(match opcode {
        OP_MEMBER_HELLO => "MEMBER_HELLO",
        OP_MEMBER_CHALLENGE => "MEMBER_CHALLENGE",
        OP_MEMBER_PROOF => "MEMBER_PROOF",
        _ => return None,
    })
}

/// Encodes `msg` as a request frame with request id `id`.
pub fn encode(msg: &MemberAuth, id: u32) -> Frame {
    let mut e = BytesMut::with_capacity(CHALLENGE_EXTRAS);
    let opcode = match msg {
        MemberAuth::Hello { cluster_id, node_id, nonce } => {
            e.put_u64(*cluster_id);
            e.put_u64(*node_id);
            e.put_slice(&nonce.0);
            OP_MEMBER_HELLO
        }
        MemberAuth::Challenge { nonce, proof } => {
            e.put_slice(&nonce.0);
            e.put_slice(&proof.0);
            OP_MEMBER_CHALLENGE
        }
        MemberAuth::Proof { proof } => {
            e.put_slice(&proof.0);
            OP_MEMBER_PROOF
        }
    };
    let mut f = Frame::request(opcode, id);
    f.extras = e.freeze();
    f
}

/// Decodes a member-auth frame.
pub fn decode(f: &FrameRef<'_>) -> Result<MemberAuth, MemberAuthWireError> {
    if f.kind != FrameKind::Request {
        return Err(MemberAuthWireError::NotRequest);
    }
    let message = opcode_name(f.opcode).ok_or(MemberAuthWireError::UnknownOpcode(f.opcode))?;
    if f.flags != 0 || f.aux != 0 || !f.key.is_empty() || !f.value.is_empty() {
        return Err(MemberAuthWireError::NotBare { message });
    }
    let expected = match f.opcode {
        OP_MEMBER_HELLO => HELLO_EXTRAS,
        OP_MEMBER_CHALLENGE => CHALLENGE_EXTRAS,
        _ => PROOF_EXTRAS,
    };
    let x = f.extras;
    if x.len() != expected {
        return Err(MemberAuthWireError::ExtrasLength { message, expected, got: x.len() });
    }
    let u = |at: usize| u64::from_be_bytes(x[at..at + 8].try_into().expect("8 bytes"));
    let nonce = |at: usize| Nonce(x[at..at + NONCE_LEN].try_into().expect("nonce length"));
    let proof = |at: usize| Proof(x[at..at + PROOF_LEN].try_into().expect("proof length"));
    Ok(match f.opcode {
        OP_MEMBER_HELLO => MemberAuth::Hello { cluster_id: u(0), node_id: u(8), nonce: nonce(16) },
        OP_MEMBER_CHALLENGE => MemberAuth::Challenge { nonce: nonce(0), proof: proof(NONCE_LEN) },
        _ => MemberAuth::Proof { proof: proof(0) },
    })
}

/// Who is authenticating to whom: what both proofs are bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkParties {
    pub cluster_id: u64,
    /// The member that opened the connection (MEMBER_HELLO's node id).
    pub dialer: NodeId,
    /// The member it dialed.
    pub acceptor: NodeId,
}

/// The dialer's nonce bound to `parties`: the first 16 bytes of
/// SHA-256(`burrow-member-bind-v1` ‖ dialer nonce ‖ cluster id ‖ dialer id
/// ‖ acceptor id), integers big-endian u64. Both proofs are made over it
/// in place of the bare nonce.
pub fn bound_nonce(dialer_nonce: &Nonce, parties: &LinkParties) -> Nonce {
    let mut h = Sha256::new();
    h.update(BIND_LABEL);
    h.update(dialer_nonce.0);
    h.update(parties.cluster_id.to_be_bytes());
    h.update(parties.dialer.to_be_bytes());
    h.update(parties.acceptor.to_be_bytes());
    let digest = h.finalize();
    Nonce(digest[..NONCE_LEN].try_into().expect("SHA-256 is longer than a nonce"))
}

/// One side's view of an exchange: the secret, who is who, both nonces.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    pub secret: &'a Secret,
    pub parties: LinkParties,
    pub acceptor_nonce: Nonce,
    pub dialer_nonce: Nonce,
}

impl Exchange<'_> {
    fn bound(&self) -> Nonce {
        bound_nonce(&self.dialer_nonce, &self.parties)
    }

    /// The proof `prover` sends.
    pub fn proof(&self, prover: Prover) -> Proof {
        Proof::new(self.secret, Purpose::Member, prover, &self.acceptor_nonce, &self.bound())
    }

    /// Whether `received` is `prover`'s proof (constant time).
    pub fn verify(&self, prover: Prover, received: &Proof) -> bool {
        Proof::verify(self.secret, Purpose::Member, prover, &self.acceptor_nonce, &self.bound(), &received.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::{Codec, Limits};
    use proptest::prelude::*;
    use tokio_util::codec::{Decoder, Encoder};

    fn secret() -> Secret {
        Secret::from_bytes(b"0123456789abcdef", "test").unwrap()
    }

    /// The exchange of protocol.md's examples: node 2 dials node 1 of
    /// cluster.toml's cluster.
    fn example(s: &Secret) -> Exchange<'_> {
        Exchange {
            secret: s,
            parties: LinkParties { cluster_id: 0x9c42_cf90_64be_2e28, dialer: 2, acceptor: 1 },
            acceptor_nonce: Nonce([0xAA; NONCE_LEN]),
            dialer_nonce: Nonce([0xBB; NONCE_LEN]),
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn bytes(msg: &MemberAuth, id: u32) -> Vec<u8> {
        let mut out = BytesMut::new();
        Codec::server(Limits::default()).encode(&encode(msg, id), &mut out).unwrap();
        out.to_vec()
    }

    #[test]
    fn each_side_verifies_the_others_proof_and_only_for_the_same_parties() {
        let s = secret();
        let x = example(&s);
        for prover in [Prover::Initiator, Prover::Responder] {
            assert!(x.verify(prover, &x.proof(prover)));
        }
        // Reflected: the acceptor's proof offered back as the dialer's.
        assert!(!x.verify(Prover::Initiator, &x.proof(Prover::Responder)));
        // Replayed under another claimed id, towards another acceptor, in
        // another cluster, with another secret.
        let p = x.proof(Prover::Initiator);
        let with = |f: fn(&mut LinkParties)| {
            let mut y = x.clone();
            f(&mut y.parties);
            y
        };
        assert!(!with(|p| p.dialer = 3).verify(Prover::Initiator, &p));
        assert!(!with(|p| p.acceptor = 3).verify(Prover::Initiator, &p));
        assert!(!with(|p| p.cluster_id ^= 1).verify(Prover::Initiator, &p));
        let other = Secret::from_bytes(b"0123456789abcdeX", "test").unwrap();
        assert!(!Exchange { secret: &other, ..x.clone() }.verify(Prover::Initiator, &p));
        // Against a fresh challenge.
        assert!(!Exchange { acceptor_nonce: Nonce([0xAB; NONCE_LEN]), ..x }.verify(Prover::Initiator, &p));
    }

    #[test]
    fn known_answers_pin_the_binding_and_the_proofs() {
        // Computed independently with Python's hashlib and hmac modules
        // (protocol.md §12.7 shows the same numbers).
        let s = secret();
        let x = example(&s);
        assert_eq!(hex(&bound_nonce(&x.dialer_nonce, &x.parties).0), "282e485b0c1de5bcdee9c0a78798e2fe");
        assert_eq!(
            hex(&x.proof(Prover::Responder).0),
            "59fd11cf3fe220344793a28e303e7820acda42516704334ceb03aa09eba8bd4e"
        );
        assert_eq!(
            hex(&x.proof(Prover::Initiator).0),
            "26365742caded58dc94dc4f651829951819836aee230150eece36c513a7c69e7"
        );
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
    fn protocol_doc_examples_match_the_encoder_and_the_proofs() {
        let s = secret();
        let x = example(&s);
        let cases = [
            (
                "member-hello",
                MemberAuth::Hello {
                    cluster_id: x.parties.cluster_id,
                    node_id: x.parties.dialer,
                    nonce: x.dialer_nonce,
                },
                1,
            ),
            (
                "member-challenge",
                MemberAuth::Challenge { nonce: x.acceptor_nonce, proof: x.proof(Prover::Responder) },
                1,
            ),
            ("member-proof", MemberAuth::Proof { proof: x.proof(Prover::Initiator) }, 2),
        ];
        for (name, msg, id) in cases {
            assert_eq!(bytes(&msg, id), doc_example(name), "protocol.md example {name}");
        }
    }

    proptest! {
        /// What a dialer may send (`fuzz/fuzz_targets/peer_message.rs` runs
        /// the same check): never a panic, and whatever decodes re-encodes
        /// to itself.
        #[test]
        fn arbitrary_frames_never_panic_and_what_decodes_reencodes(
            opcode in prop_oneof![Just(OP_MEMBER_HELLO), Just(OP_MEMBER_CHALLENGE), Just(OP_MEMBER_PROOF),
                                  any::<u8>()],
            extras in proptest::collection::vec(any::<u8>(), 0..60),
            flags in prop_oneof![Just(0u8), any::<u8>()],
        ) {
            let mut f = Frame::request(opcode, 9);
            f.flags = flags;
            f.extras = bytes::Bytes::from(extras);
            if let Ok(msg) = decode(&f.as_ref()) {
                prop_assert_eq!(encode(&msg, 9).extras, f.extras.clone());
                let mut wire = BytesMut::from(&bytes(&msg, 9)[..]);
                let back = Codec::server(Limits::default()).decode(&mut wire).unwrap().expect("whole frame");
                prop_assert_eq!(decode(&back.as_ref()).unwrap(), msg);
            }
        }
    }

    #[test]
    fn malformed_frames_are_refused() {
        let mut f = encode(&MemberAuth::Proof { proof: Proof([1; PROOF_LEN]) }, 1);
        f.extras = f.extras.slice(..31);
        assert_eq!(
            decode(&f.as_ref()),
            Err(MemberAuthWireError::ExtrasLength { message: "MEMBER_PROOF", expected: 32, got: 31 })
        );
        let mut f = encode(&MemberAuth::Proof { proof: Proof([1; PROOF_LEN]) }, 1);
        f.key = bytes::Bytes::from_static(b"k");
        assert!(matches!(decode(&f.as_ref()), Err(MemberAuthWireError::NotBare { .. })));
        assert_eq!(decode(&Frame::request(0x58, 1).as_ref()), Err(MemberAuthWireError::UnknownOpcode(0x58)));
    }
}
