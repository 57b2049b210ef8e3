//! Challenge–response proofs of a shared secret, for client authentication
//! and for member (peer and replication) links.
//!
//! Each side sends a fresh random [`Nonce`]; a side proves it holds the
//! secret by sending `HMAC-SHA256(secret, label ‖ direction ‖ server nonce ‖
//! client nonce)`. The secret never crosses the wire, a recorded exchange
//! cannot be replayed (the other side's nonce is new every time), and the
//! direction byte stops a proof being reflected back to its sender. The
//! label keeps proofs of one kind (a client's AUTH) from being accepted as
//! another (a member's handshake) when someone reuses a secret file.
//! Verification compares in constant time.

use std::fmt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of a [`Nonce`] in bytes.
pub const NONCE_LEN: usize = 16;
/// Length of a [`Proof`] (an HMAC-SHA256 tag) in bytes.
pub const PROOF_LEN: usize = 32;
/// Shortest secret accepted: 16 bytes, so a guessable word is refused.
pub const MIN_SECRET_LEN: usize = 16;

/// A shared secret, read from a file. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {origin} holds {len} bytes; at least {MIN_SECRET_LEN} are needed (e.g. `head -c 32 /dev/urandom | base64 > FILE`)")]
    TooShort { origin: String, len: usize },
}

impl Secret {
    /// The secret in `bytes`, without trailing whitespace (a file written by
    /// `echo` ends in a newline that is not meant to be part of it).
    /// `origin` names where it came from, for the error.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Secret, SecretError> {
        let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
        let secret = &bytes[..end];
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort { origin: origin.to_string(), len: secret.len() });
        }
        Ok(Secret(secret.to_vec()))
    }

    /// Reads a secret file (see [`Secret::from_bytes`]). Secrets come from
    /// files, never from command lines, which other users can read.
    pub fn from_file(path: &Path) -> Result<Secret, SecretError> {
        let bytes = std::fs::read(path)
            .map_err(|source| SecretError::Read { path: path.display().to_string(), source })?;
        Secret::from_bytes(&bytes, &format!("file {}", path.display()))
    }
}

/// A random challenge, fresh for every exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_LEN]);

impl Nonce {
    /// A nonce from the operating system's random generator.
    ///
    /// # Panics
    /// If the OS generator is unavailable — a broken system on which no
    /// secure exchange is possible.
    pub fn random() -> Nonce {
        let mut bytes = [0u8; NONCE_LEN];
        getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
        Nonce(bytes)
    }
}

/// What an exchange authenticates: a proof made for one purpose is not
/// accepted for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A client's AUTH on a client connection.
    Client,
    /// A cluster member opening a replication or peer link.
    Member,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Client => b"burrow-auth-v1/client",
            Purpose::Member => b"burrow-auth-v1/member",
        }
    }
}

/// Which side of the exchange made a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prover {
    /// The side that opened the connection (client, dialing member).
    Initiator,
    /// The side that accepted it (server, listening member).
    Responder,
}

/// An HMAC-SHA256 tag proving knowledge of a [`Secret`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof(pub [u8; PROOF_LEN]);

fn mac(
    secret: &Secret,
    purpose: Purpose,
    prover: Prover,
    responder_nonce: &Nonce,
    initiator_nonce: &Nonce,
) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret.0).expect("HMAC accepts any key length");
    mac.update(purpose.label());
    mac.update(&[match prover {
        Prover::Initiator => 0,
        Prover::Responder => 1,
    }]);
    mac.update(&responder_nonce.0);
    mac.update(&initiator_nonce.0);
    mac
}

impl Proof {
    /// The proof `prover` sends, over both sides' nonces.
    pub fn new(
        secret: &Secret,
        purpose: Purpose,
        prover: Prover,
        responder_nonce: &Nonce,
        initiator_nonce: &Nonce,
    ) -> Proof {
        let tag = mac(secret, purpose, prover, responder_nonce, initiator_nonce).finalize();
        Proof(tag.into_bytes().into())
    }

    /// Whether `received` is the proof `prover` would make; compared in
    /// constant time, and any length other than [`PROOF_LEN`] is false.
    pub fn verify(
        secret: &Secret,
        purpose: Purpose,
        prover: Prover,
        responder_nonce: &Nonce,
        initiator_nonce: &Nonce,
        received: &[u8],
    ) -> bool {
        mac(secret, purpose, prover, responder_nonce, initiator_nonce).verify_slice(received).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Secret {
        Secret::from_bytes(s.as_bytes(), "test").unwrap()
    }

    #[test]
    fn a_proof_verifies_only_with_the_same_secret_nonces_purpose_and_prover() {
        let s = secret("correct horse battery staple");
        let (rn, inn) = (Nonce([1; NONCE_LEN]), Nonce([2; NONCE_LEN]));
        let p = Proof::new(&s, Purpose::Client, Prover::Initiator, &rn, &inn);
        assert!(Proof::verify(&s, Purpose::Client, Prover::Initiator, &rn, &inn, &p.0));

        let other = secret("correct horse battery stapler");
        assert!(!Proof::verify(&other, Purpose::Client, Prover::Initiator, &rn, &inn, &p.0));
        assert!(!Proof::verify(&s, Purpose::Member, Prover::Initiator, &rn, &inn, &p.0));
        // Reflected: the same tag offered as the other side's proof.
        assert!(!Proof::verify(&s, Purpose::Client, Prover::Responder, &rn, &inn, &p.0));
        // Replayed against a fresh challenge.
        let fresh = Nonce([3; NONCE_LEN]);
        assert!(!Proof::verify(&s, Purpose::Client, Prover::Initiator, &fresh, &inn, &p.0));
        // Truncated or padded tags are refused, not compared by prefix.
        assert!(!Proof::verify(&s, Purpose::Client, Prover::Initiator, &rn, &inn, &p.0[..31]));
        let mut long = p.0.to_vec();
        long.push(0);
        assert!(!Proof::verify(&s, Purpose::Client, Prover::Initiator, &rn, &inn, &long));
    }

    #[test]
    fn known_answer_pins_the_construction() {
        // Other-language clients implement this: HMAC-SHA256 over
        // label ‖ prover byte ‖ responder nonce ‖ initiator nonce
        // (protocol.md shows the same numbers).
        let s = secret("0123456789abcdef");
        let p = Proof::new(
            &s,
            Purpose::Client,
            Prover::Initiator,
            &Nonce([0xAA; NONCE_LEN]),
            &Nonce([0xBB; NONCE_LEN]),
        );
        // Computed independently with Python's hmac module.
        let expected = "5b4c5ce5d5c09d563f513903021567f00ff4f41cdd8f7e983a8de4671dc80a42";
        let hex: String = p.0.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn secrets_lose_trailing_whitespace_and_must_be_long_enough() {
        assert_eq!(secret("0123456789abcdef\n"), secret("0123456789abcdef"));
        let e = Secret::from_bytes(b"hunter2\n", "file s").unwrap_err();
        assert!(e.to_string().contains("holds 7 bytes"), "{e}");
        assert!(Secret::from_bytes(b"   \n", "x").is_err());
        assert_eq!(format!("{:?}", secret("0123456789abcdef")), "Secret(16 bytes)");
    }

    #[test]
    fn nonces_differ() {
        assert_ne!(Nonce::random(), Nonce::random());
    }
}
