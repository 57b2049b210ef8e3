//! Filling a server with a data set of a known size.

use bytes::Bytes;

use burrow_client::Client;
use burrow_proto::{Request, SetCondition};

/// Sets `key:0` .. `key:{count - 1}` to `value`, pipelined a thousand at a time.
pub async fn set_keys(client: &mut Client, count: usize, value: &Bytes) {
    let keys: Vec<usize> = (0..count).collect();
    for batch in keys.chunks(1000) {
        let sets: Vec<Request> = batch
            .iter()
            .map(|i| Request::Set {
                key: Bytes::from(format!("key:{i}")),
                value: value.clone(),
                ttl_ms: None,
                condition: SetCondition::Always,
                keep_ttl: false,
            })
            .collect();
        client.pipeline(&sets).await.unwrap();
    }
}
