//! CONFIG GET / SET (protocol.md §8.14) end to end: GET shows every
//! setting by glob, SET changes a runtime setting with effect at once (the
//! slow-command log starts or stops logging), a refused SET says why and
//! changes nothing, auth is required like for every command (SLOWLOG's
//! too), and the CLI prints both.

use crate::common;

use burrow_client::{Client, ClientError};
use burrow_proto::{Request, SlowLogCommand, Status};
use common::{assert_status, RawConn, TempDir};

#[tokio::test]
async fn set_takes_effect_at_once_and_a_refused_set_changes_nothing() {
    let server = common::start_with(|c| c.slowlog_threshold = None).await;
    let mut client = Client::connect(server.addr).await.unwrap();
    let all = client.config_get("*").await.unwrap();
    assert!(all.iter().any(|(n, v)| n == "slowlog-threshold" && v == "off"), "{all:?}");
    assert!(all.iter().any(|(n, _)| n == "maxmemory-policy"), "{all:?}");
    client.get("before").await.unwrap();
    assert_eq!(client.slowlog_len().await.unwrap(), 0);
    client.config_set("slowlog-threshold", "0").await.unwrap();
    client.get("after").await.unwrap();
    let logged = client.slowlog_get(None).await.unwrap();
    assert_eq!(logged.iter().map(|e| &e.key[..]).collect::<Vec<_>>(), [&b"after"[..]]);
    client.config_set("slowlog-max-len", "0").await.unwrap();
    assert_eq!(client.slowlog_len().await.unwrap(), 0, "lowering the length drops entries at once");
    client.config_set("maxmemory", "1MiB").await.unwrap();
    let mem = client.info("memory").await.unwrap();
    assert!(mem.contains("maxmemory:1048576"), "INFO shows the new limit: {mem}");
    let before = client.config_get("").await.unwrap();
    for (name, value) in [
        ("port", "1"),
        ("maxmemory-policy", "allkeys-lru"),
        ("maxmemory", "lots"),
        ("nope", "1"),
        ("slowlog-max-len", "many"),
    ] {
        match client.config_set(name, value).await {
            Err(ClientError::Server { status: Status::BadRequest, message }) => {
                assert!(message.starts_with("CONFIG SET"), "{name}: {message}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(client.config_get("").await.unwrap(), before);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn config_and_slowlog_need_auth_when_the_server_has_a_secret() {
    let dir = TempDir::new("config-auth");
    let server = crate::auth::server(&dir).await;
    let mut raw = RawConn::connect(server.addr).await;
    let set = Request::ConfigSet { name: "slowlog-max-len".into(), value: "1".into() };
    let reset = Request::SlowLog(SlowLogCommand::Reset);
    raw.send_requests(&[(1, Request::ConfigGet { pattern: "*".into() }), (2, set), (3, reset)]).await;
    for id in 1..=3 {
        assert_status(&raw.frame().await, Status::NoAuth, id);
    }
    let mut client = Client::connect_with(server.addr, crate::auth::authed()).await.unwrap();
    assert_eq!(
        client.config_get("slowlog-max-len").await.unwrap(),
        [("slowlog-max-len".into(), "128".into())]
    );
    // Answered now (its count depends on the machine: at the default 10 ms
    // threshold a loaded machine may log the commands above).
    let len = client.request(&Request::SlowLog(SlowLogCommand::Len)).await.unwrap();
    assert!(matches!(len, burrow_proto::Reply::Int(0..=3)), "{len:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_cli_gets_and_sets() {
    let server = common::start().await;
    let port = server.addr.port().to_string();
    let cli = |args: &[&str]| crate::slowlog::cli_at(&port, args);
    let out = cli(&["CONFIG", "SET", "slowlog-threshold", "off"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK", "{out:?}");
    let out = cli(&["config", "get", "slowlog-*"]).await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1) \"slowlog-threshold\"\n2) \"off\"\n3) \"slowlog-max-len\"\n4) \"128\"",
        "{out:?}"
    );
    let out = cli(&["CONFIG", "SET", "port", "1"]).await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("(error) BAD_REQUEST CONFIG SET: port cannot change"), "{out:?}");
    server.shutdown().await.unwrap();
}
