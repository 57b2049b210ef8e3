//! Disk faults on cue, for tests (the `fault-injection` feature): a
//! [`FaultyFileSystem`] fails chosen writes, fsyncs, renames… of the
//! files a server writes, and [`Server::open_with_faults`] opens a server
//! on it. Kept out of normal builds: no production code path can reach it.
//!
//! [`Server::open_with_faults`]: crate::Server::open_with_faults

pub use crate::persist::{Fault, FaultyFileSystem, FsOp, Injected};
