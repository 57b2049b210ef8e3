//! Burrow's integration tests: one binary, one module per area, one shared
//! helper module (`common`), as raft-rs's harness does. Cross-crate: real
//! servers (in-process or child processes), the client, the CLI and the
//! bench tools, talking over 127.0.0.1. Tests of one crate's API alone live
//! in that crate (`crates/burrow-proto/tests/codec.rs`,
//! `crates/burrow-server/tests/replication_sim.rs`).
//!
//! Run one area with `cargo test --test integration cluster::`; set
//! `BURROW_TEST_LOG` (a `RUST_LOG` filter) for the child servers' logs that
//! failing cluster tests print. Every test must pass on a loaded machine:
//! see `common::wait_for` for the timeout policy.

mod common;

mod auth;
mod bench;
mod binary_edges;
mod cli;
mod cli_habits;
mod cluster;
mod cluster_config;
mod cluster_view;
mod commands;
mod config_command;
mod connections;
mod crash;
mod deploy;
mod digest;
mod docs;
mod elections;
mod failover;
mod incomplete_resync;
mod introspect;
mod large_record_elections;
mod limits;
mod linearizability;
mod linearizable_reads;
mod link_liveness;
mod maxmemory;
mod member_auth;
mod metrics;
mod paused_leader;
mod peer_faults;
mod persistence;
mod protocol_doc;
mod python_client;
mod raw_protocol;
mod read_replicas;
mod read_visibility;
mod redirect;
mod refusals;
mod rejoin;
mod replication_inproc;
mod slowlog;
mod tls;
mod unix_socket;
mod vote_durability;
mod wal_faults;
