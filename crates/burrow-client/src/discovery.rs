//! Leader discovery at connect: a cluster client asks the node it reached
//! who leads (CLUSTER, protocol.md §8.11) and moves there at once, so its
//! reads go to the leader from the first request instead of to a
//! possibly stale follower until a write's NOT_LEADER moves it.
//!
//! Discovery only ever improves where the client is: a node that knows no
//! leader, an older server (UNKNOWN_OPCODE), a leader that cannot be
//! reached or any error leave it on the node it reached, and requests
//! then find the leader as before (NOT_LEADER, NO_LEADER, §5.2).

use std::net::SocketAddr;
use std::time::Duration;

use burrow_proto::{ClusterView, Reply, Request};

use super::{open, Client, ClientError};

impl Client {
    /// Asks the connected node for the leader and, if it names one other
    /// than itself, connects there, within `limit` for each step. Returns
    /// the leader moved to, if any; `Err` with the exchange's failure if
    /// the connection failed meanwhile (it is then marked broken, and the
    /// caller reports that failure, not merely "broken").
    pub(crate) async fn move_to_named_leader(
        &mut self,
        limit: Duration,
    ) -> Result<Option<SocketAddr>, ClientError> {
        if limit.is_zero() {
            return Ok(None);
        }
        let mut replies = Vec::with_capacity(1);
        self.timed_exchange_into(&[Request::Cluster], &mut replies, limit).await?;
        let Some(Reply::Cluster(view)) = replies.pop() else { return Ok(None) };
        let Some(leader) = leader_addr(&view) else { return Ok(None) };
        if leader == self.addr {
            return Ok(None);
        }
        match open(leader, &self.config, self.config.connect_timeout.min(limit)).await {
            Ok((framed, addr)) => {
                tracing::info!(from = %self.addr, to = %addr, "CLUSTER: connected to the leader");
                (self.framed, self.addr, self.broken) = (framed, addr, false);
                Ok(Some(addr))
            }
            Err(e) => {
                tracing::debug!(%leader, error = %burrow_proto::ErrorChain(&e), "CLUSTER named an unreachable leader");
                Ok(None)
            }
        }
    }
}

/// The client address of the leader `view` names, if it names one.
fn leader_addr(view: &ClusterView) -> Option<SocketAddr> {
    view.leader()?.addr.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::{MemberRole, MemberView};

    #[test]
    fn only_a_named_leader_with_an_address_is_a_target() {
        let mut view = ClusterView {
            node_id: 2,
            role: MemberRole::Follower,
            term: 4,
            leader_id: 1,
            commit_index: 9,
            members: vec![
                MemberView::new(1, "127.0.0.1:7441", MemberRole::Leader),
                MemberView::new(2, "127.0.0.1:7442", MemberRole::Follower),
            ],
        };
        assert_eq!(leader_addr(&view), Some("127.0.0.1:7441".parse().unwrap()));
        view.members[0].addr = "node-1:7441".into();
        assert_eq!(leader_addr(&view), None, "not an ip:port");
        view.leader_id = 0;
        assert_eq!(leader_addr(&view), None, "no leader known");
        view.leader_id = 3;
        assert_eq!(leader_addr(&view), None, "not a member");
    }
}
