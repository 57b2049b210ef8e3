//! Linearizability of a real cluster under faults (issue 10): clients
//! record every operation (invoke, then ok or unknown) against a 3-node
//! cluster of child processes while a seeded fault schedule runs; a
//! checker decides, key by key, whether some order of the operations
//! explains every answer; and a separate check proves each acknowledged
//! write is present exactly once at the end.
//!
//! The checker: `history` (ops, one monotonic clock), `model` and the
//! three models (`register`, `counter`, `list_append`), `checker` (the
//! search), `counterexample`, `keys` (one key at a time). The runs:
//! `faults` (seeded schedules), `workload` (the clients), `leader`
//! (following the leader, leader-only reads), `acknowledged`
//! (the exactly-once check), `run` (one schedule to a report) and
//! `schedules` (the tests, and the long run of `bench/jepsen.sh`).
//!
//! The checker lives here, in the one integration-test binary, rather than
//! in a dev crate: only these process-level tests use it, and it reuses
//! the shared helpers (`common::`) for clusters, proxies and seeds.

mod checker;
mod counter;
mod counterexample;
mod history;
mod list_append;
mod model;
mod register;

mod acknowledged;
mod acknowledged_cases;
mod faults;
mod keys;
mod known_histories;
mod leader;
mod random_histories;
mod run;
mod schedules;
mod workload;
