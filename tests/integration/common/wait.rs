//! The one timeout policy of the suite: wait for what will surely happen,
//! polling, up to [`DEADLINE`].
//!
//! Tests never sleep a fixed time to let something happen, and never give
//! something that will surely happen a tight bound: on a loaded machine
//! (two CPU burners on two cores) everything takes several times longer
//! than on a quiet one. A test that measures a duration asserts the bound
//! the product promises (at least the WAIT timeout, at most the idle
//! timeout plus a margin), never how fast the machine is.

use std::future::Future;
use std::time::{Duration, Instant};

/// The longest any test waits for something that will surely happen (a
/// reply, a server listening, a cluster converging). Reaching it means a
/// hang or a lost update, never slowness, so it is generous.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// How often [`wait_for`] looks again.
const POLL: Duration = Duration::from_millis(10);

/// Polls `cond` until it is true; panics naming `what` after [`DEADLINE`].
pub async fn wait_for<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {DEADLINE:?} waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}
