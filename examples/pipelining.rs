//! Pipelining: send many requests in one write and read the replies in order.
//!
//! `cargo run --release --example pipelining -- 127.0.0.1:7440`

use std::time::Instant;

use burrow_client::Client;
use burrow_proto::{Reply, Request, SetCondition};
use bytes::Bytes;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:7440".to_string());
    let mut c = Client::connect(addr.as_str()).await?;
    let total = 100_000;
    let batch = 1_000;
    let started = Instant::now();
    for start in (0..total).step_by(batch) {
        let reqs: Vec<Request> = (start..start + batch)
            .map(|i| Request::Set {
                key: Bytes::from(format!("pipe:{i:06}")),
                value: Bytes::from(format!("value-{i}")),
                ttl_ms: None,
                condition: SetCondition::Always,
                keep_ttl: false,
            })
            .collect();
        for reply in c.pipeline(&reqs).await? {
            assert_eq!(reply, Reply::Ok);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{total} SETs in batches of {batch}: {secs:.2}s ({:.0} ops/s)", total as f64 / secs);

    // Replies come back in request order, whatever mix of commands.
    let reqs = vec![
        Request::Get { key: Bytes::from_static(b"pipe:000042") },
        Request::Incr { key: Bytes::from_static(b"pipe:counter") },
        Request::Get { key: Bytes::from_static(b"pipe:missing") },
    ];
    for (req, reply) in reqs.iter().zip(c.pipeline(&reqs).await?) {
        println!("{:?} -> {reply:?}", req.opcode());
    }
    Ok(())
}
