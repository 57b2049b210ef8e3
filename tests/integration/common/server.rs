//! In-process servers on a port the OS picks (`port: 0`), persistence off
//! unless a test turns it on.

use burrow_server::{Config, ServerHandle};

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
