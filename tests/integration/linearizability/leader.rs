//! Following the leader with elections on: a client opens one connection
//! at a time, to the next of the cluster's members in turn, and moves on
//! when a member refuses as a non-leader (`NOT_LEADER`, `NO_LEADER`:
//! nothing ran) or the connection breaks. (`NOT_LEADER`'s address is not
//! followed: see `workload::connect_config`.)
//!
//! Not `Client::connect_cluster`: it re-sends an idempotent SET whose
//! outcome is unknown, so a SET applied before a failover may apply again
//! after a later write, which a register's history cannot explain; and it
//! reads from whichever member it is connected to. Here every request is
//! sent once, and a read counts only when the leader served it (below).

use std::net::SocketAddr;
use std::time::Duration;

use burrow_client::{Client, ClientError};
use burrow_proto::{Reply, Request, Status};

use super::workload::connect_config;

/// The members' client addresses, tried in turn.
#[derive(Debug, Clone)]
pub struct Members {
    addrs: Vec<SocketAddr>,
    next: usize,
}

impl Members {
    pub fn new(addrs: Vec<SocketAddr>) -> Members {
        Members { addrs, next: 0 }
    }

    /// A connection to the next member that accepts one, or `None` (after
    /// a short pause) if this one refused.
    pub async fn connect(&mut self) -> Option<Client> {
        let addr = self.addrs[self.next % self.addrs.len()];
        self.next = self.next.wrapping_add(1);
        match Client::connect_with(addr, connect_config()).await {
            Ok(c) => Some(c),
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                None
            }
        }
    }
}

/// What a read sent through [`leader_read`] came to.
pub enum Read {
    /// The leader's reply.
    Reply(Reply),
    /// Not served by a leader: proves nothing. `moved` when the client
    /// followed a redirect to the leader (keep it; only with redirects
    /// enabled), else it should try another member.
    NotLeader { moved: bool },
    /// The connection failed.
    Broken,
}

/// Sends `read` after WAIT 0 0 on the same connection. Only a leader
/// answers WAIT (a follower refuses it with `NOT_LEADER` / `NO_LEADER`),
/// and a connection's requests are served in order, so when WAIT was
/// answered where it was sent, the read was served by the leader; else the
/// read came from a follower, possibly stale, and is dropped.
pub async fn leader_read(c: &mut Client, read: Request) -> Read {
    match c.pipeline(&[Request::Wait { replicas: 0, timeout_ms: 0 }, read]).await {
        Ok(mut replies) => {
            let moved = !c.last_redirects().is_empty();
            match (&replies[0], moved) {
                (Reply::Int(_), false) => Read::Reply(replies.pop().expect("two replies")),
                _ => Read::NotLeader { moved },
            }
        }
        Err(_) => Read::Broken,
    }
}

/// True for a refusal that means "ask another member" (nothing ran).
pub fn refused_as_non_leader(e: &ClientError) -> bool {
    matches!(e.status(), Some(Status::NotLeader | Status::NoLeader | Status::Loading))
}
