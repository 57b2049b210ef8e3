//! A cluster of `burrow-server` child processes on free 127.0.0.1 ports,
//! each started from its own cluster file (so a follower can be pointed at
//! the leader through a [`super::proxy::Proxy`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use burrow_client::Client;

use super::{
    info_field, server_command, unique_log_path, wait_exit, wait_for, wait_listening, TempDir, CHILD_START,
};

/// Settings shared by every node.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: u64,
    pub replication: &'static str,
    pub heartbeat_ms: u64,
    pub link_timeout_ms: u64,
    pub quorum_timeout_ms: u64,
    pub max_stale_ms: u64,
    /// Extra flags for every node (e.g. `--persistence off`, `--backlog-bytes N`).
    pub args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            replication: "async",
            heartbeat_ms: 50,
            link_timeout_ms: 500,
            quorum_timeout_ms: 500,
            max_stale_ms: 0,
            args: Vec::new(),
        }
    }
}

/// One member: its config file, data directory and (while running) process.
pub struct Node {
    pub id: u64,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    config: PathBuf,
    args: Vec<String>,
    child: Option<std::process::Child>,
    log: PathBuf,
}

pub struct Cluster {
    pub dir: TempDir,
    pub opts: Options,
    pub nodes: Vec<Node>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl Cluster {
    /// Writes the cluster files (node 1 leads) without starting anything.
    pub fn new(tag: &str, opts: Options) -> Cluster {
        let dir = TempDir::new(tag);
        let nodes = (1..=opts.nodes)
            .map(|id| {
                let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
                Node {
                    id,
                    addr,
                    data_dir: dir.join(&format!("node{id}")),
                    config: dir.join(&format!("cluster-{id}.toml")),
                    args: opts.args.clone(),
                    child: None,
                    log: unique_log_path(&dir.join(&format!("node{id}"))),
                }
            })
            .collect();
        let mut c = Cluster { dir, opts, nodes };
        for id in 1..=c.opts.nodes {
            c.write_config(id, None);
        }
        c
    }

    /// Starts a cluster and waits until every node listens.
    pub async fn start(tag: &str, opts: Options) -> Cluster {
        let mut c = Cluster::new(tag, opts);
        for i in 0..c.nodes.len() {
            c.nodes[i].start().await;
        }
        c
    }

    /// (Re)writes node `id`'s cluster file; `leader_via` replaces the
    /// leader's address in it (a proxy in front of the leader).
    pub fn write_config(&mut self, id: u64, leader_via: Option<SocketAddr>) {
        let o = &self.opts;
        let mut text = format!(
            "[cluster]\ninitial_leader = 1\nreplication = \"{}\"\nheartbeat_ms = {}\nlink_timeout_ms = {}\n\
             quorum_timeout_ms = {}\nmax_stale_ms = {}\n",
            o.replication, o.heartbeat_ms, o.link_timeout_ms, o.quorum_timeout_ms, o.max_stale_ms
        );
        for n in &self.nodes {
            let addr = match leader_via {
                Some(via) if n.id == 1 && id != 1 => via,
                _ => n.addr,
            };
            text += &format!(
                "\n[[node]]\nid = {}\naddr = \"{addr}\"\ndata_dir = \"{}\"\n",
                n.id,
                n.data_dir.display()
            );
        }
        let path = &self.nodes[(id - 1) as usize].config;
        std::fs::write(path, text).expect("write cluster file");
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn leader(&self) -> &Node {
        &self.nodes[0]
    }

    /// Waits until every running follower has applied the leader's last
    /// index and all running nodes report the same DIGEST; returns it.
    pub async fn converged(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let digests = self.digests().await;
            let leader_last = info_u64_of(&self.leader().info().await, "last_index");
            let mut caught_up = true;
            for n in self.nodes.iter().skip(1).filter(|n| n.running()) {
                caught_up &= info_u64_of(&n.info().await, "applied_index") >= leader_last;
            }
            if caught_up && digests[0] != 0 && digests.windows(2).all(|w| w[0] == w[1]) {
                return digests[0];
            }
            if Instant::now() > deadline {
                let mut report = String::new();
                for n in self.nodes.iter().filter(|n| n.running()) {
                    report +=
                        &format!("--- node {} ---\n{}\n{}\n", n.id, n.info().await, tail(&n.stderr(), 30));
                }
                panic!("cluster did not converge within {timeout:?}: digests {digests:x?}\n{report}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// DIGEST of every running node, in id order (0 for a node answering
    /// LOADING: a follower installing a full resync).
    pub async fn digests(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for n in self.nodes.iter().filter(|n| n.running()) {
            match n.client().await.digest().await {
                Ok(d) => out.push(d),
                Err(e) if e.status() == Some(burrow_proto::Status::Loading) => out.push(0),
                Err(e) => panic!("DIGEST on node {}: {e}", n.id),
            }
        }
        out
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// An INFO field as a number (0 if missing).
pub fn info_u64_of(info: &str, key: &str) -> u64 {
    info_field(info, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

impl Node {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process and waits (polling its log) until it listens.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        let stderr =
            std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open node log");
        let already = std::fs::read_to_string(&self.log).map_or(0, |s| s.len());
        let mut child = server_command(stderr)
            .arg("--config")
            .arg(&self.config)
            .arg("--node-id")
            .arg(self.id.to_string())
            .args(["--shards", "16", "--threads", "1"])
            .args(&self.args)
            .spawn()
            .expect("spawn burrow-server");
        let addr = wait_listening(&mut child, &self.log, already).await;
        assert_eq!(addr, self.addr, "node {} listens on its addr", self.id);
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown snapshot, no goodbye to the peers.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let status = wait_exit(&mut c, CHILD_START).await;
            assert!(status.success(), "node {} exited with {status}:\n{}", self.id, tail(&self.stderr(), 30));
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client that does not follow redirects (tests look at raw replies).
    pub async fn client(&self) -> Client {
        let config = burrow_client::ClientConfig { max_redirects: 0, ..Default::default() };
        Client::connect_with(self.addr, config).await.expect("connect to node")
    }

    pub async fn info(&self) -> String {
        self.client().await.info("replication").await.expect("INFO replication")
    }

    /// Polls until `cond` holds on this node's INFO replication section.
    pub async fn wait_info(&self, what: &str, timeout: Duration, cond: impl Fn(&str) -> bool) {
        let cond = &cond;
        wait_for(what, timeout, || async move { cond(&self.info().await) }).await;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
        let _ = std::fs::remove_file(&self.log);
    }
}
