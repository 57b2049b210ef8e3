//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use burrow::server::{Config, ServerHandle};

/// A server on a free 127.0.0.1 port, in this process.
pub async fn start() -> ServerHandle {
    start_with(|_| {}).await
}

/// Like [`start`], after `tweak` adjusts the config.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config { port: 0, shards: 16, persistence: false, ..Config::default() };
    tweak(&mut config);
    ServerHandle::start(config).await.expect("server starts")
}

/// Polls `cond` until it is true or `timeout` passes; panics with `what` on timeout.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
