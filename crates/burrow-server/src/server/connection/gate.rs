//! One connection's authentication state: HELLO hands out a challenge,
//! AUTH spends it, and until an AUTH succeeds every command but PING,
//! HELLO and AUTH is answered NOAUTH and changes nothing (protocol.md
//! §8.12). A server without a secret opens every connection at once.
//!
//! A challenge is good for one AUTH, right or wrong, so a recorded AUTH
//! cannot be replayed. A refused AUTH is answered only after
//! [`FAILURE_DELAY`], during which the connection reads nothing, and the
//! [`MAX_FAILURES`]th on one connection closes it: guessing is slowed to a
//! few tries a second per connection (the secret itself, ≥ 16 bytes from a
//! random source, is not guessable; this stops a weak one being walked).

use std::time::Duration;

use bytes::BytesMut;
use tracing::debug;

use super::super::auth::ClientAuth;
use super::super::Shared;
use burrow_proto::{
    encode_hello, encode_response, BodyType, FrameRef, HelloInfo, Nonce, Opcode, Proof, Prover, Purpose,
    Request, Status, VERSION,
};

/// How long a refused AUTH waits before its reply.
pub(super) const FAILURE_DELAY: Duration = Duration::from_millis(200);
/// Refused AUTHs after which the connection is closed.
pub(super) const MAX_FAILURES: u32 = 5;
/// What a command gets before AUTH.
pub(super) const NOAUTH_MESSAGE: &str = "authentication required: send HELLO, then AUTH";

/// Opcodes of replication and peer links: member authentication guards them, not this gate.
const MEMBER_OPCODES: std::ops::RangeInclusive<u8> = 0x50..=0x5F;

/// HELLO (0x37) to MONITOR (0x43): the opcodes the connection looks at
/// before dispatch, kept in one range so the hot path tests it once.
pub(super) const OWN_OPCODES: std::ops::RangeInclusive<u8> = 0x37..=0x43;
const _: () = assert!(Opcode::Hello as u8 == 0x37 && Opcode::Monitor as u8 == 0x43);
const _: () = assert!(Opcode::Auth as u8 == 0x38 && Opcode::Client as u8 == 0x42);

/// What the gate made of a frame.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Gated {
    /// Not the gate's business: execute it as usual.
    Pass,
    /// Answered (HELLO, AUTH, or NOAUTH); `error` if the status is one.
    Replied { error: bool },
    /// An AUTH refused: answer NOAUTH with `message` after [`FAILURE_DELAY`],
    /// then close if `close`.
    Failed { message: String, close: bool },
}

#[derive(Debug)]
pub(super) struct Gate {
    /// Authenticated, or no authentication configured.
    open: bool,
    /// The last HELLO's challenge, until an AUTH spends it.
    challenge: Option<Nonce>,
    failures: u32,
}

impl Gate {
    pub(super) fn new(auth: &ClientAuth) -> Gate {
        Gate { open: !auth.required(), challenge: None, failures: 0 }
    }

    /// Whether the gate must see this frame: every frame before AUTH, and
    /// always those in [`OWN_OPCODES`] (HELLO, AUTH, and CLIENT and
    /// MONITOR, which the connection answers itself; the others there pass).
    /// One range test on the hot path once open.
    #[inline]
    pub(super) fn intercepts(&self, opcode: u8) -> bool {
        !self.open || OWN_OPCODES.contains(&opcode)
    }

    /// Authenticated, or no authentication configured.
    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    pub(super) fn handle(&mut self, shared: &Shared, frame: &FrameRef<'_>, out: &mut BytesMut) -> Gated {
        let (op, id) = (frame.opcode, frame.id);
        let reply = |out: &mut BytesMut, status: Status, body: BodyType, value: &[u8]| {
            encode_response(out, op, id, status, body, &[], value);
            Gated::Replied { error: status != Status::Ok }
        };
        if op != Opcode::Hello as u8 && op != Opcode::Auth as u8 {
            if self.open || op == Opcode::Ping as u8 || MEMBER_OPCODES.contains(&op) {
                return Gated::Pass;
            }
            shared.auth.note_refused(op);
            return reply(out, Status::NoAuth, BodyType::Text, NOAUTH_MESSAGE.as_bytes());
        }
        match Request::parse(frame) {
            Err(e) => reply(out, e.status, BodyType::Text, e.message.as_bytes()),
            Ok(Request::Hello) => {
                let nonce = Nonce::random();
                self.challenge = Some(nonce);
                let info = HelloInfo {
                    version: VERSION,
                    auth_required: shared.auth.required(),
                    nonce,
                    node_id: shared.config.cluster.as_ref().map_or(0, |c| c.node_id()),
                };
                let mut body = BytesMut::new();
                encode_hello(&info, &mut body);
                reply(out, Status::Ok, BodyType::Bytes, &body)
            }
            Ok(Request::Auth { user, client_nonce, proof }) => {
                let Some(secret) = shared.auth.secret() else {
                    let msg = "AUTH: this server has no client secret configured (--auth-secret-file): \
                               no AUTH is needed";
                    return reply(out, Status::BadRequest, BodyType::Text, msg.as_bytes());
                };
                // Spent whatever the outcome: one AUTH per challenge.
                let challenge = self.challenge.take();
                let refusal = if !user.is_empty() && user != b"default" {
                    Some("AUTH: unknown user (this server has one, `default`; send an empty name)")
                } else if challenge.is_none() {
                    Some("AUTH: no challenge to answer: send HELLO first (each challenge is good for one AUTH)")
                } else {
                    None
                };
                let verified = challenge.filter(|server_nonce| {
                    Proof::verify(
                        secret,
                        Purpose::Client,
                        Prover::Initiator,
                        server_nonce,
                        &client_nonce,
                        &proof.0,
                    )
                });
                match (refusal, verified) {
                    (None, Some(server_nonce)) => {
                        self.open = true;
                        shared.auth.successes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        debug!("AUTH succeeded");
                        let mine = Proof::new(
                            secret,
                            Purpose::Client,
                            Prover::Responder,
                            &server_nonce,
                            &client_nonce,
                        );
                        reply(out, Status::Ok, BodyType::Bytes, &mine.0)
                    }
                    (refusal, _) => {
                        let message = refusal.unwrap_or(
                            "AUTH: wrong proof (a different secret, or a proof made for another challenge)",
                        );
                        self.failures += 1;
                        shared.auth.note_failure(message);
                        Gated::Failed { message: message.to_string(), close: self.failures >= MAX_FAILURES }
                    }
                }
            }
            // Only HELLO and AUTH parse from these opcodes.
            Ok(_) => Gated::Pass,
        }
    }
}

#[cfg(test)]
mod tests;
