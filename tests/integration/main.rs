//! Burrow's integration tests: one binary, one module per area, one shared
//! helper module (`common`), as raft-rs's harness does. Cross-crate: real
//! servers (in-process on port 0, or child processes on free ports), the
//! client, the CLI and the bench tools, talking over 127.0.0.1.

mod common;

mod bench;
mod binary_edges;
mod cli;
mod cluster;
mod cluster_config;
mod codec;
mod commands;
mod connections;
mod crash;
mod digest;
mod persistence;
mod protocol_doc;
mod python_client;
mod raw_protocol;
mod redirect;
mod replication_inproc;
mod replication_sim;
mod wal_faults;
