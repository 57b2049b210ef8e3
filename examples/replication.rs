//! Replication from a client's point of view: writes sent to a follower are
//! redirected to the leader, WAIT tells how many followers hold them, and
//! followers serve reads.
//!
//! Start the example cluster (`examples/cluster.sh start`), then:
//! `cargo run --example replication -- 127.0.0.1:7442 127.0.0.1:7443`

use burrow_client::Client;
use burrow_proto::Status;

/// Connects to a node of the example cluster; if none answers there, says
/// which address was tried and how to start the cluster, and exits 1 (a
/// bare "connection refused" would not say what is missing).
async fn connect(addr: &str) -> Client {
    match Client::connect(addr).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot reach a cluster node at {addr}: {e}");
            eprintln!("This example needs the 3-node example cluster of cluster.toml. Start it with");
            eprintln!("    examples/cluster.sh start");
            eprintln!("or name two followers: cargo run --example replication -- HOST:PORT HOST:PORT");
            std::process::exit(1);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let follower = args.next().unwrap_or_else(|| "127.0.0.1:7442".to_string());
    let other = args.next().unwrap_or_else(|| "127.0.0.1:7443".to_string());

    // Connected to a follower: the write gets NOT_LEADER naming the leader,
    // and the client follows it there (and stays).
    let mut c = connect(&follower).await;
    c.set("order:1", "paid").await?;
    println!("SET went to {} (redirects: {:?})", c.addr(), c.last_redirects());

    // Block until both followers hold the write durably, or 1 s passes.
    let acked = c.wait(2, 1000).await?;
    println!("WAIT 2 1000 -> {acked} follower(s) have it");

    // Reads may be served by any follower (possibly a little stale: WAIT
    // above makes this one current).
    let mut reader = connect(&other).await;
    match reader.get("order:1").await {
        Ok(v) => println!("GET on {other} -> {:?}", v.as_deref().map(String::from_utf8_lossy)),
        Err(e) if e.status() == Some(Status::Stale) => println!("{other} refuses reads: {e}"),
        Err(e) => return Err(e.into()),
    }

    // Every node hashes its whole dataset the same way: equal digests prove
    // the followers converged.
    println!("DIGEST leader {:016x}, {other} {:016x}", c.digest().await?, reader.digest().await?);
    for line in reader.info("replication").await?.lines() {
        if ["role:", "link_status:", "applied_index:", "last_heartbeat_s:"]
            .iter()
            .any(|k| line.starts_with(k))
        {
            println!("  {other} {line}");
        }
    }
    Ok(())
}
