//! A follower killed after installing a full resync's snapshot, before the
//! records its highest shard image reaches arrived, restarts with shards at
//! different indexes and a WAL that ends below some of them (issue 10).
//! Recovery used to claim the highest cover: the leader resumed the node by
//! partial resync past records some shards never got, and DIGESTs diverged
//! at equal indexes. The crash image is built from two real data
//! directories of the same follower (its shard images at two indexes); the
//! member must discard it, take a full resync, and converge.

use crate::common;

use std::path::Path;

use burrow_server::formats::{
    list_segments, read_snapshot, segment_header, segment_name, shard_for, snapshot_name,
};
use common::cluster::{Cluster, Options};
use common::{copy_dir, info_field, info_u64, TempDir};

const KEYS: usize = 64;
const SHARDS: usize = 16;

/// The only snapshot in `dir`: its path and the index every image covers.
fn snapshot_in(dir: &Path) -> (std::path::PathBuf, u64) {
    let snaps: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .collect();
    assert_eq!(snaps.len(), 1, "one snapshot in {}: {snaps:?}", dir.display());
    let meta = read_snapshot(&snaps[0], 0, |_| {}).unwrap();
    assert_eq!(meta.min_cover(), meta.max_cover(), "a shutdown snapshot is even");
    (snaps[0].clone(), meta.min_cover())
}

/// The snapshot file's blocks: (shard, or `None` for the end block, bytes).
fn blocks(file: &[u8]) -> Vec<(Option<u32>, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 36; // header + its CRC
    while at < file.len() {
        let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
        let body = &file[at + 8..at + 8 + len];
        let shard = (body[0] == 1).then(|| u32::from_be_bytes(body[1..5].try_into().unwrap()));
        out.push((shard, file[at..at + 8 + len].to_vec()));
        at += 8 + len;
    }
    out
}

/// `newer` with shard `shard`'s image taken from `older`: a fuzzy snapshot
/// whose lowest cover is `older`'s index and highest `newer`'s.
fn splice(older: &[u8], newer: &[u8], shard: u32) -> Vec<u8> {
    let mut out = newer[..36].to_vec();
    let mut total = 0u64;
    for s in 0..SHARDS as u32 {
        let from = if s == shard { older } else { newer };
        for (_, block) in blocks(from).into_iter().filter(|(b, _)| *b == Some(s)) {
            total += u64::from(u32::from_be_bytes(block[8 + 13..8 + 17].try_into().unwrap()));
            out.extend_from_slice(&block);
        }
    }
    let mut end = vec![2u8];
    end.extend_from_slice(&total.to_be_bytes());
    end.extend_from_slice(&(SHARDS as u32).to_be_bytes());
    out.extend_from_slice(&(end.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&end).to_be_bytes());
    out.extend_from_slice(&end);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_shard_images_reach_past_its_wal_discards_them_and_takes_a_full_resync() {
    let mut c = Cluster::start("incomplete", Options::default()).await;
    let mut client = c.leader().client().await;
    for i in 0..KEYS {
        client.incr(format!("c{i}")).await.unwrap();
    }
    c.converged().await;
    // Node 3's images with every counter at 1 (a clean stop snapshots).
    c.node(3).stop().await;
    let older = TempDir::new("incomplete-older");
    copy_dir(&c.nodes[2].data_dir, older.path());
    c.node(3).start().await;
    c.nodes[2].wait_synced().await;
    for i in 0..KEYS {
        client.incr(format!("c{i}")).await.unwrap();
    }
    c.converged().await;
    // And with every counter at 2.
    c.node(3).stop().await;
    let dir = c.nodes[2].data_dir.clone();
    let (old_path, old_index) = snapshot_in(older.path());
    let (new_path, new_index) = snapshot_in(&dir);
    assert!(old_index < new_index, "{old_index} < {new_index}");

    // The crash image: counter c0's shard from the older images, the
    // others from the newer, and a WAL holding nothing after the lowest
    // cover — the records up to the highest never arrived.
    let shard = shard_for(b"c0", SHARDS) as u32;
    let spliced = splice(&std::fs::read(&old_path).unwrap(), &std::fs::read(&new_path).unwrap(), shard);
    std::fs::remove_file(&new_path).unwrap();
    for (_, seg) in list_segments(&dir).unwrap() {
        std::fs::remove_file(seg).unwrap();
    }
    std::fs::write(dir.join(snapshot_name(old_index)), spliced).unwrap();
    std::fs::write(dir.join(segment_name(old_index + 1)), segment_header(old_index + 1)).unwrap();

    c.node(3).start().await;
    let info = c.nodes[2]
        .wait_info("node 3 to be synced by a full resync", |i| {
            info_field(i, "link_status") == "up" && info_field(i, "loading") == "0"
        })
        .await;
    assert!(info_u64(&info, "full_resyncs") >= 1, "node 3 took a full resync\n{info}");
    let mut n3 = c.nodes[2].client().await;
    let persistence = n3.info("persistence").await.unwrap();
    assert_eq!(
        info_field(&persistence, "recovery_incomplete"),
        format!("{old_index}..{new_index}"),
        "{persistence}"
    );
    assert!(c.nodes[2].stderr().contains("incomplete data set"), "one warning names it");
    client.set("after", "restart").await.unwrap();
    c.converged().await;
    assert_eq!(n3.get("c0").await.unwrap().as_deref(), Some(&b"2"[..]));
}
