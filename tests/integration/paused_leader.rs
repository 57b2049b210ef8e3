//! A paused (SIGSTOPped) leader, issue 10: its kernel still completes the
//! TCP handshake of every reconnect, but nothing answers. Followers must
//! report the link down (never `syncing` or `up`) for as long as it lasts,
//! refuse reads once `max_stale_ms` passes, and stream again after SIGCONT.

use crate::common;

use std::time::{Duration, Instant};

use burrow_client::Client;
use burrow_proto::Status;
use common::cluster::{Cluster, Options};
use common::{info_field, DEADLINE};

const LINK_TIMEOUT_MS: u64 = 1000;

/// What a GET of `k` on `addr` gets: `Ok` (served) or the refusal's status.
async fn read(addr: std::net::SocketAddr) -> Result<(), Option<Status>> {
    let mut c = Client::connect(addr).await.map_err(|_| None)?;
    c.get("k").await.map(|_| ()).map_err(|e| e.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_of_a_paused_leader_report_the_link_down_and_refuse_stale_reads() {
    let opts = Options {
        heartbeat_ms: 50,
        link_timeout_ms: LINK_TIMEOUT_MS,
        max_stale_ms: 1500,
        ..Options::default()
    };
    let c = Cluster::start("paused-leader", opts).await;
    c.leader().client().await.set("k", "v").await.unwrap();
    c.converged().await;

    c.leader().pause();
    let paused = Instant::now();
    for f in &c.nodes[1..] {
        f.wait_info("the paused leader's link to go down", |i| info_field(i, "link_status") == "down").await;
    }
    // Watch both followers for three link timeouts more (each reconnects
    // and handshakes several times meanwhile, every time accepted by the
    // paused leader's kernel) and until both refuse reads: never a live link.
    let watch_until = Instant::now() + Duration::from_millis(3 * LINK_TIMEOUT_MS);
    let mut stale = [false, false];
    let deadline = Instant::now() + DEADLINE;
    while !(stale.iter().all(|s| *s) && Instant::now() > watch_until) {
        assert!(Instant::now() < deadline, "reads not refused within {DEADLINE:?}: {stale:?}");
        for (i, f) in c.nodes[1..].iter().enumerate() {
            let info = f.info().await;
            let link = info_field(&info, "link_status");
            assert_eq!(link, "down", "node {}: leader paused for {:?}\n{info}", f.id, paused.elapsed());
            match read(f.addr).await {
                Err(Some(Status::Stale)) => stale[i] = true,
                Ok(()) => assert!(!stale[i], "node {}: reads served again while the link is down", f.id),
                Err(other) => panic!("node {}: GET got {other:?}", f.id),
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    c.leader().resume();
    for f in &c.nodes[1..] {
        f.wait_synced().await;
    }
    c.leader().client().await.set("k", "after").await.unwrap();
    c.converged().await;
    for f in &c.nodes[1..] {
        let got = f.client().await.get("k").await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"after"[..]), "node {}", f.id);
    }
}
