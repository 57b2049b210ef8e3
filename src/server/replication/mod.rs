//! The server's side of replication: the thin async shell around the pure
//! state machines in [`crate::replication`]. One [`Replication`] per
//! server says which role this node plays and answers the questions
//! connections ask (may I write? WAIT, quorum), while background tasks
//! carry the state machines' outputs to sockets, the store and the WAL.

use tokio::sync::watch;

/// Which part this node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No cluster configured.
    Standalone,
    Leader,
    Follower,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Leader => "leader",
            Role::Follower => "follower",
        }
    }
}

/// Replication state shared by every connection.
#[derive(Debug)]
pub struct Replication {
    role: Role,
    /// Bumped whenever a follower's acknowledged index may have moved (WAIT
    /// re-checks its count then).
    acks: watch::Sender<u64>,
}

impl Replication {
    pub fn standalone() -> Replication {
        Replication { role: Role::Standalone, acks: watch::channel(0).0 }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// How many followers hold `index` durably (WAIT's answer).
    pub fn acked_count(&self, _index: u64) -> usize {
        0
    }

    /// Completes once `replicas` followers hold `index` durably; never, if
    /// that many cannot (the caller bounds it with WAIT's timeout).
    pub async fn wait_acked(&self, index: u64, replicas: usize) {
        let mut rx = self.acks.subscribe();
        loop {
            if self.acked_count(index) >= replicas {
                return;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}
