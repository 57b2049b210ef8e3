//! The Burrow wire protocol: frames, opcodes, status codes and the codec.
//!
//! Everything here is pure — bytes in, frames out — so it can be tested and
//! fuzzed without sockets. `protocol.md` at the repository root is the
//! contract; `tests/protocol_doc.rs` checks its hex examples against this code.
//!
//! ```text
//!  0        1        2        3        4        5        6        7
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! | magic  | version| opcode | flags/ |            request id             |
//! |        |        |        | status |            (u32, BE)              |
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! | extras | rsvd / | key length      |          value length             |
//! | length | type   | (u16, BE)       |          (u32, BE)                |
//! +--------+--------+--------+--------+--------+--------+--------+--------+
//! | extras (extras length bytes) | key (key length) | value (value length) |
//! ```
//!
//! Requests carry magic `0xB7`, responses `0xB8`. In a request byte 3 holds
//! flags and byte 9 is reserved (0); in a response byte 3 holds the status and
//! byte 9 the body type.
//!
//! **What you get**, all at the top level (the modules are private):
//! - frames and their layout: [`Frame`] (owned), [`FrameRef`] (borrowed from
//!   a read buffer), [`FrameKind`], [`HEADER_LEN`], the magics and [`VERSION`];
//! - the tokio-util [`Codec`] with its [`Limits`], [`Peek`] for decoding in
//!   place, and [`CodecError`];
//! - typed messages: [`Request`] (with [`Opcode`], [`flags`], [`End`],
//!   [`SetCondition`]; [`Request::is_idempotent`] says what a client may
//!   retry after an unknown outcome) and [`Reply`] (with [`Status`], [`BodyType`],
//!   [`encode_response`]), each with its parse error;
//! - the ARRAY body of LPUSH/RPUSH values and LRANGE/SCAN/pop replies
//!   ([`encode_array`], [`decode_array`], …);
//! - the CLUSTER reply ([`ClusterView`], [`MemberView`], [`MemberRole`],
//!   [`LinkStatus`], [`encode_cluster`], [`decode_cluster`]);
//! - challenge–response authentication ([`Secret`], [`Nonce`], [`Proof`],
//!   [`Purpose`], [`Prover`]) for client AUTH and member links, and the
//!   HELLO reply that carries a connection's challenge ([`HelloInfo`],
//!   [`encode_hello`], [`decode_hello`]);
//! - SLOWLOG's subcommands and entries ([`SlowLogCommand`], [`SlowLogEntry`],
//!   [`encode_slowlog`], [`decode_slowlog`]);
//! - [`ErrorChain`], which prints an error and each of its causes once.

mod auth;
mod body;
mod cluster;
mod codec;
mod error_chain;
mod frame;
mod hello;
mod idempotence;
mod opcode;
mod request;
mod response;
mod slowlog;
mod status;

pub use auth::{Nonce, Proof, Prover, Purpose, Secret, SecretError, MIN_SECRET_LEN, NONCE_LEN, PROOF_LEN};
pub use body::{decode_array, decode_array_ref, encode_array, encoded_array_len, ArrayError};
pub use cluster::{
    cluster_items, decode_cluster, encode_cluster, ClusterError, ClusterView, LinkStatus, MemberRole,
    MemberView,
};
pub use codec::{Codec, CodecError, Limits, Peek};
pub use error_chain::ErrorChain;
pub use frame::{Frame, FrameKind, FrameRef, HEADER_LEN, MAGIC_REQUEST, MAGIC_RESPONSE, VERSION};
pub use hello::{decode_hello, encode_hello, HelloError, HelloInfo};
pub use opcode::Opcode;
pub use request::{config, flags, End, Request, RequestError, SetCondition};
pub use response::{encode_response, BodyType, Reply, ReplyError};
pub use slowlog::{
    decode_slowlog, encode_slowlog, SlowLogCommand, SlowLogEntry, SlowLogError, SLOWLOG_DEFAULT_COUNT,
    SLOWLOG_KEY_BYTES,
};
pub use status::Status;

/// The TCP port a server listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 7440;
