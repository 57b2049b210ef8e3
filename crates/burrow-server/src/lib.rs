//! Burrow's server: the sharded in-memory store, the op log that orders
//! every change, the write-ahead log and snapshots that keep it across
//! restarts, and leader/follower replication over the client protocol.
//! See `protocol.md` for the wire contract and `README.md` for how to run it.
//!
//! The public API is what the `burrow-server` binary, the integration
//! tests, examples and fuzz targets use: [`Server`] and its configuration,
//! and the on-disk and replication formats (so they can be fuzzed and
//! inspected offline). Everything else is private to the crate.

pub mod oplog;
pub mod persist;
pub mod replication;
pub mod rng;
pub mod server;
pub mod store;

pub use server::{Config, Server, ServerArgs, ServerHandle};

#[cfg(test)]
mod error_chains;
