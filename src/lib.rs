//! Burrow: a distributed in-memory key-value store speaking a small binary
//! TLV protocol over TCP. See `protocol.md` for the wire contract and
//! `README.md` for how to run it.

pub mod bench;
pub mod cli;
pub mod client;
pub mod oplog;
pub mod persist;
pub mod protocol;
pub mod replication;
pub mod rng;
pub mod server;
pub mod store;
