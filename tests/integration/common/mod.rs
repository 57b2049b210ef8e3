//! Helpers shared by the integration tests, each defined once here: the
//! timeout policy ([`DEADLINE`], [`wait_for`]), INFO parsing, starting
//! servers (in-process, child processes, clusters) and waiting for them,
//! raw connections, ports, temp dirs, a seeded RNG, fakes (a TCP proxy
//! that cuts, stalls or slows links, a follower that answers NOT_LEADER, a
//! cluster member played by the test on its peer links)
//! and CPU burners. Test modules use them through `common::…`.
#![allow(dead_code)]

mod burner;
pub mod certs;
mod child;
pub mod cluster;
pub mod fake_member;
mod faulty_server;
mod fs;
mod info;
mod load;
pub mod not_leader;
mod ports;
pub mod proxy;
mod raw;
mod rng;
mod server;
mod wait;

pub use burner::CpuBurners;
pub use child::{
    listening_or_exit, run_server_to_exit, server_command, unique_log_path, wait_exit, wait_listening,
    ChildServer,
};
pub use faulty_server::FaultyServer;
pub use fs::{copy_dir, TempDir};
pub use info::{cmd_stats, info_field, info_u64};
pub use load::set_keys;
pub use ports::{refusing_addr, reserve_port, Reservation};
pub use raw::{assert_status, header, request_bytes, RawConn, ReadEnd};
pub use rng::SeededRng;
pub use server::{start, start_with};
pub use wait::{wait_for, DEADLINE};
