//! Quickstart: connect, write, read, count, queue.
//!
//! Start a server (`cargo run --release --bin burrow-server`), then:
//! `cargo run --example quickstart -- 127.0.0.1:7440`

use std::time::Duration;

use burrow_client::{Client, SetOptions, Ttl};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7440".to_string());
    let mut c = Client::connect(addr.as_str()).await?;

    c.set("greeting", "hello, burrow").await?;
    let v = c.get("greeting").await?;
    println!("GET greeting -> {:?}", v.as_deref().map(String::from_utf8_lossy));

    // A session token that disappears after a minute, written only if absent.
    let opts = SetOptions { ttl: Some(Duration::from_secs(60)), ..SetOptions::default() };
    c.set_with("session:42", "token", opts).await?;
    if let Ttl::Expires(left) = c.ttl("session:42").await? {
        println!("session:42 expires in {left:?}");
    }

    // Counters are signed 64-bit integers.
    c.incr_by("visits", 10).await?;
    println!("visits -> {}", c.incr("visits").await?);

    // Deques: push at either end, pop from either end.
    c.rpush("jobs", ["resize", "upload"]).await?;
    while let Some(job) = c.lpop("jobs").await? {
        println!("job: {}", String::from_utf8_lossy(&job));
    }

    // Errors carry the server's status.
    if let Err(e) = c.incr("greeting").await {
        println!("INCR greeting -> {e} (status {:?})", e.status());
    }
    println!("keys in the store: {}", c.dbsize().await?);
    Ok(())
}
