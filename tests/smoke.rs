mod common;

use burrow::client::Client;

#[tokio::test]
async fn set_get_roundtrip() {
    let server = common::start().await;
    let mut c = Client::connect(server.addr).await.unwrap();
    c.set("k", "v").await.unwrap();
    assert_eq!(c.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(c.incr("n").await.unwrap(), 1);
    assert_eq!(c.rpush("q", ["a", "b"]).await.unwrap(), 2);
    assert_eq!(c.lrange("q", 0, -1).await.unwrap(), vec!["a", "b"]);
    let info = c.info("").await.unwrap();
    assert!(info.contains("last_log_index:3"), "{info}");
    server.shutdown().await.unwrap();
}
