//! Arbitrary text as a config file (`--config`: `[server]`, and a
//! cluster's `[cluster]` and `[[node]]` tables, as in `cluster.toml`)
//! through `ServerArgs::resolve_file_text`, the parse `resolve` runs at
//! start. Must never panic; a file that is accepted must give a config that
//! validates again, and for a cluster file, this node's entry.
//!
//! The first byte chooses `--node-id` (none, or 1 to 3, the ids seeds use);
//! the rest must be UTF-8, as `read_to_string` requires.
#![no_main]

use std::path::Path;

use clap::Parser;
use libfuzzer_sys::fuzz_target;

use burrow_server::ServerArgs;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let node_id = (pick % 4 != 0).then(|| u64::from(pick % 4));
    let mut argv = vec!["burrow-server".to_owned()];
    if let Some(id) = node_id {
        argv.extend(["--node-id".to_owned(), id.to_string()]);
    }
    let args = ServerArgs::try_parse_from(argv).expect("the flags the target passes parse");
    if let Ok(config) = args.resolve_file_text(Path::new("fuzz.toml"), text) {
        config.validate().expect("a resolved config validates again");
        match (&config.cluster, node_id) {
            (Some(cluster), Some(id)) => {
                assert_eq!(cluster.node_id(), id);
                assert_eq!(cluster.me().id, id);
                assert!(cluster.nodes().iter().any(|n| n.id == id));
            }
            (None, None) => {}
            (cluster, id) => {
                panic!("accepted a file whose cluster {cluster:?} does not fit --node-id {id:?}")
            }
        }
    }
});
