//! Burrow's server: the sharded in-memory store, the op log that orders
//! every change, the write-ahead log and snapshots that keep it across
//! restarts, and leader/follower replication over the client protocol.
//! See `protocol.md` for the wire contract and `README.md` for how to run it.
//!
//! # What a user of this crate gets
//!
//! - **The server**, at the top level: [`ServerArgs`] (the flags, and the
//!   config file they name) resolve into a [`Config`]; [`Server::open`]
//!   loads the data, [`Server::serve`] serves a listener until a shutdown
//!   future completes, and [`Server::run_threads`] is the whole production
//!   topology the `burrow-server` binary runs. [`ServerHandle`] runs one in
//!   the background (tests, examples, embedding). A cluster member's
//!   [`ClusterConfig`] lists its [`NodeInfo`]s and [`ReplicationMode`];
//!   [`FsyncPolicy`] and [`LogFormat`] are settings; [`ServerError`],
//!   [`ConfigError`] and [`PersistError`] say why a start or a run failed.
//! - [`formats`]: the on-disk and on-wire formats — op-log records, WAL
//!   segments, snapshots, the node file — readable offline, and fuzzed.
//! - [`replication`]: the leader and follower state machines and their
//!   wire encoding: pure code with no IO, which the deterministic simulation
//!   in `tests/replication_sim.rs` drives over a faulty network.
//! - With the `fault-injection` feature (tests only), `fault_injection`:
//!   a file system that fails chosen writes, fsyncs or renames, and
//!   `Server::open_with_faults` to run a server on it.
//!
//! Everything else — the store, the op log, the WAL writer, recovery, the
//! connection and dispatch code, the replication drivers — is private to
//! the crate: it is reached through the server, and tested inside the crate.

mod latency;
mod oplog;
mod persist;
mod rng;
mod server;
mod store;
mod ticks;

pub mod formats;
pub mod replication;

#[cfg(feature = "fault-injection")]
pub mod fault_injection;

pub use persist::{FsyncPolicy, PersistError};
pub use server::{
    AuthSetupError, ClusterConfig, ClusterFileError, Config, ConfigError, FileMode, LogFormat,
    MembershipError, NodeInfo, ReplicationMode, Server, ServerArgs, ServerError, ServerHandle, TlsClientAuth,
    TlsSetupError, UnixSocketError,
};
pub use store::EvictionPolicy;

#[cfg(test)]
mod error_chains;
