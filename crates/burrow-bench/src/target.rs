//! Where load connections go: one server, or the leader of a cluster
//! (`--hosts`), found again after a leader change so that a benchmark
//! survives a failover (protocol.md §5.2).
//!
//! A connection finds the leader by asking `CLUSTER` (protocol.md §8.11),
//! which every node answers: the leader (or a standalone server) says so,
//! and its connection becomes the load connection (the exchange leaves
//! nothing unread); another node names the leader it knows (asked next),
//! or none (the next host is asked after a jittered pause).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use burrow_proto::{ClusterView, MemberRole, Reply, Request, Secret};

use super::auth::exchange;
use super::driver::connect;
use super::endpoint::Endpoint;
use super::stream::Stream;
use super::BenchError;

/// Pauses between attempts to find a leader: doubling from the first to
/// the last, each drawn from its upper half.
const PAUSE_MIN: Duration = Duration::from_millis(10);
const PAUSE_MAX: Duration = Duration::from_millis(200);

/// The server(s) a run loads, and the secret every connection
/// authenticates with (`--auth-file`), if any.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) place: Place,
    pub(crate) auth: Option<Arc<Secret>>,
    pub(crate) tls: Option<burrow_client::TlsOptions>,
}

/// Where load connections go.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    One(Endpoint),
    /// The seeds of a cluster; connections go to its leader.
    Cluster(Vec<SocketAddr>),
}

impl Target {
    /// The address errors name: the server, or the first seed.
    pub(crate) fn addr(&self) -> Endpoint {
        match &self.place {
            Place::One(a) => a.clone(),
            Place::Cluster(seeds) => seeds[0].into(),
        }
    }

    /// A load connection: to the server, or to the leader a cluster has
    /// within `patience` (else the last failure, or `NoLeader`).
    pub(crate) async fn open(&self, patience: Duration) -> Result<Stream, BenchError> {
        let auth = self.auth.as_deref();
        let seeds = match &self.place {
            Place::One(addr) => return connect(addr, auth, self.tls.as_ref()).await,
            Place::Cluster(seeds) => seeds,
        };
        let start = Instant::now();
        let mut pause = PAUSE_MIN;
        let mut hint: Option<SocketAddr> = None;
        for attempt in 0usize.. {
            let addr = hint.take().unwrap_or(seeds[attempt % seeds.len()]);
            match ask_leader(addr, auth, self.tls.as_ref()).await {
                Ok(Answer::Leader(stream)) => return Ok(stream),
                Ok(Answer::Elsewhere(leader)) if attempt % 4 != 3 => {
                    hint = Some(leader);
                    continue;
                }
                // Pause every fourth hop too: two nodes may name each other.
                Ok(_) | Err(_) => {}
            }
            if start.elapsed() + pause >= patience {
                return Err(BenchError::NoLeader { after: start.elapsed() });
            }
            let jitter = fastrand::u64(0..=pause.as_micros() as u64 / 2);
            tokio::time::sleep(pause / 2 + Duration::from_micros(jitter)).await;
            pause = (pause * 2).min(PAUSE_MAX);
        }
        unreachable!("the loop returns")
    }
}

/// What a node said to `CLUSTER`.
enum Answer<S = Stream> {
    Leader(S),
    /// Not the leader; it named this one.
    Elsewhere(SocketAddr),
    /// Not the leader, and it knows none (or cannot serve yet).
    NoLeader,
}

async fn ask_leader(
    addr: SocketAddr,
    auth: Option<&Secret>,
    tls: Option<&burrow_client::TlsOptions>,
) -> Result<Answer, BenchError> {
    let addr = Endpoint::Tcp(addr);
    let mut stream = connect(&addr, auth, tls).await?;
    let frame = exchange(&mut stream, &addr, Request::Cluster.to_frame(0)).await?;
    Ok(match Reply::from_frame(&frame) {
        Ok(Reply::Cluster(view)) => answer(&view, stream),
        _ => Answer::NoLeader,
    })
}

/// Where `view` sends the load: here if this node leads (or stands alone),
/// to the leader it names, or nowhere yet.
fn answer<S>(view: &ClusterView, here: S) -> Answer<S> {
    match view.role {
        MemberRole::Leader | MemberRole::Standalone => Answer::Leader(here),
        _ => match view.leader().and_then(|l| l.addr.parse().ok()) {
            Some(leader) => Answer::Elsewhere(leader),
            None => Answer::NoLeader,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burrow_proto::MemberView;

    #[test]
    fn the_leader_is_here_named_elsewhere_or_not_known() {
        let mut view = ClusterView {
            node_id: 2,
            role: MemberRole::Follower,
            term: 5,
            leader_id: 1,
            commit_index: 0,
            members: vec![
                MemberView::new(1, "127.0.0.1:7441", MemberRole::Leader),
                MemberView::new(2, "127.0.0.1:7442", MemberRole::Follower),
            ],
        };
        assert!(matches!(answer(&view, ()), Answer::Elsewhere(a) if a.port() == 7441));
        view.leader_id = 0;
        assert!(matches!(answer(&view, ()), Answer::NoLeader));
        view.role = MemberRole::Candidate;
        assert!(matches!(answer(&view, ()), Answer::NoLeader));
        for role in [MemberRole::Leader, MemberRole::Standalone] {
            view.role = role;
            assert!(matches!(answer(&view, ()), Answer::Leader(())));
        }
    }
}
