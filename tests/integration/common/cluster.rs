//! A cluster of `burrow-server` child processes on 127.0.0.1, each started
//! from its own cluster file (so a follower can be pointed at the leader
//! through a [`super::proxy::Proxy`]), and the waits a cluster test needs:
//! a node listening, a follower synced, every node converged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burrow_client::Client;

use super::{
    info_field, info_u64, listening_or_exit, reserve_port, server_command, unique_log_path, wait_exit,
    Reservation, TempDir, DEADLINE,
};

/// Settings shared by every node.
#[derive(Debug, Clone)]
pub struct Options {
    pub nodes: u64,
    pub replication: &'static str,
    pub heartbeat_ms: u64,
    /// Generous by default: a link drops only when a node is stalled this
    /// long, and a loaded machine stalls nodes (a DIGEST of 200,000 keys
    /// blocks a debug-build node for half a second). Tests of the silence
    /// watch set a short one.
    pub link_timeout_ms: u64,
    /// Generous by default for the same reason: a write that a majority
    /// holds is acknowledged well within it however busy the machine is.
    pub quorum_timeout_ms: u64,
    pub max_stale_ms: u64,
    /// `election_timeout_ms`. Long by default: node 1 (`initial_leader`)
    /// is elected at start and nothing else is, however loaded the machine
    /// (tests of replication, not of elections); election tests set a
    /// short one.
    pub election_timeout_ms: &'static str,
    /// Write `initial_leader = 1` (the default).
    pub initial_leader: bool,
    /// Extra flags for every node (e.g. `--persistence off`, `--backlog-bytes N`).
    pub args: Vec<String>,
    /// A cluster secret: written to `cluster.secret` beside the cluster
    /// files, which name it (`[cluster] secret_file`, relative).
    pub secret: Option<&'static str>,
    /// Nodes written with `voter = false` (read replicas).
    pub replicas: Vec<u64>,
    /// `[cluster] tls = true`, every member with these certificates (and
    /// the tests' clients too).
    pub tls: Option<super::certs::ClusterTls>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            replication: "async",
            heartbeat_ms: 50,
            link_timeout_ms: 2000,
            quorum_timeout_ms: 3000,
            max_stale_ms: 0,
            election_timeout_ms: "60000..120000",
            initial_leader: true,
            args: Vec::new(),
            secret: None,
            replicas: Vec::new(),
            tls: None,
        }
    }
}

/// The secret's file, in the cluster's directory beside the cluster files.
pub const SECRET_FILE: &str = "cluster.secret";

/// What the cluster files are written from. Shared by the nodes: a node
/// that has to move to another port rewrites every file.
struct Layout {
    opts: Options,
    /// Node `id` at `id - 1`.
    addrs: Vec<SocketAddr>,
    data_dirs: Vec<PathBuf>,
    configs: Vec<PathBuf>,
    /// Where node `id` reaches the leader, when not at its address.
    leader_via: Vec<Option<SocketAddr>>,
    /// (file of node, node it names) → the address written instead (a
    /// proxy between two members).
    routes: std::collections::HashMap<(u64, u64), SocketAddr>,
}

impl Layout {
    fn write(&self, id: u64) {
        let o = &self.opts;
        let mut text = format!(
            "[cluster]\n{}replication = \"{}\"\nheartbeat_ms = {}\nlink_timeout_ms = {}\n\
             quorum_timeout_ms = {}\nmax_stale_ms = {}\nelection_timeout_ms = \"{}\"\n",
            if o.initial_leader { "initial_leader = 1\n" } else { "" },
            o.replication,
            o.heartbeat_ms,
            o.link_timeout_ms,
            o.quorum_timeout_ms,
            o.max_stale_ms,
            o.election_timeout_ms
        );
        if o.secret.is_some() {
            text += &format!("secret_file = \"{SECRET_FILE}\"\n");
        }
        if o.tls.is_some() {
            text += "tls = true\n";
        }
        let via = self.leader_via[(id - 1) as usize];
        for (i, (addr, dir)) in self.addrs.iter().zip(&self.data_dirs).enumerate() {
            let n = i as u64 + 1;
            let addr = match via {
                Some(via) if n == 1 && id != 1 => via,
                _ => self.routes.get(&(id, n)).copied().unwrap_or(*addr),
            };
            text += &format!("\n[[node]]\nid = {n}\naddr = \"{addr}\"\ndata_dir = \"{}\"\n", dir.display());
            if o.replicas.contains(&n) {
                text += "voter = false\n";
            }
        }
        std::fs::write(&self.configs[(id - 1) as usize], text).expect("write cluster file");
    }

    fn write_all(&self) {
        for id in 1..=self.addrs.len() as u64 {
            self.write(id);
        }
    }
}

/// One member: its data directory, log and (while running) process.
pub struct Node {
    pub id: u64,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    layout: Arc<Mutex<Layout>>,
    config: PathBuf,
    /// Flags for this node's next start ([`Options::args`] at first).
    pub args: Vec<String>,
    child: Option<std::process::Child>,
    log: PathBuf,
    /// The port, held until the first start.
    reserved: Option<Reservation>,
}

pub struct Cluster {
    pub dir: TempDir,
    pub nodes: Vec<Node>,
    layout: Arc<Mutex<Layout>>,
}

impl Cluster {
    /// Writes the cluster files (node 1 leads) without starting anything.
    pub fn new(tag: &str, opts: Options) -> Cluster {
        let dir = TempDir::new(tag);
        if let Some(secret) = opts.secret {
            std::fs::write(dir.join(SECRET_FILE), secret).expect("write the cluster secret");
        }
        let ids = 1..=opts.nodes;
        let reserved: Vec<Reservation> = ids.clone().map(|_| reserve_port()).collect();
        let layout = Arc::new(Mutex::new(Layout {
            addrs: reserved.iter().map(Reservation::addr).collect(),
            data_dirs: ids.clone().map(|id| dir.join(&format!("node{id}"))).collect(),
            configs: ids.clone().map(|id| dir.join(&format!("cluster-{id}.toml"))).collect(),
            leader_via: ids.clone().map(|_| None).collect(),
            routes: Default::default(),
            opts: opts.clone(),
        }));
        let nodes = ids
            .zip(reserved)
            .map(|(id, r)| Node {
                id,
                addr: r.addr(),
                data_dir: dir.join(&format!("node{id}")),
                layout: layout.clone(),
                config: dir.join(&format!("cluster-{id}.toml")),
                args: opts.args.iter().cloned().chain(opts.tls.iter().flat_map(|t| t.args())).collect(),
                child: None,
                log: unique_log_path(&dir.join(&format!("node{id}"))),
                reserved: Some(r),
            })
            .collect();
        layout.lock().unwrap().write_all();
        Cluster { dir, nodes, layout }
    }

    /// Starts every node and waits until node 1 leads and every follower
    /// is synced.
    pub async fn start(tag: &str, opts: Options) -> Cluster {
        let mut c = Cluster::new(tag, opts);
        c.start_led_by_node_1().await;
        c
    }

    /// Starts every node of this fresh cluster and waits until node 1
    /// (`initial_leader`) leads and every follower is synced; returns its
    /// term. With a short election timeout a loaded machine may delay node
    /// 1's first heartbeats until another node takes over; the tests start
    /// from node 1 leading, so the cluster, still empty, is then stopped,
    /// wiped and started again. So is a cluster one of whose nodes had to
    /// move to another port (another process took its own) after others
    /// had started: those read the old address and would never reach it.
    pub async fn start_led_by_node_1(&mut self) -> u64 {
        for attempt in 1.. {
            let mut moved_late = false;
            for i in 0..self.nodes.len() {
                let before = self.nodes[i].addr;
                self.nodes[i].start().await;
                moved_late |= i > 0 && self.nodes[i].addr != before;
            }
            if moved_late {
                assert!(attempt < 5, "nodes kept losing their ports at start ({attempt} tries)");
                eprintln!("a node moved to another port after others started: starting the cluster again");
                for n in &mut self.nodes {
                    n.kill_9();
                    let _ = std::fs::remove_dir_all(&n.data_dir);
                }
                continue;
            }
            let (leader, term) = self.one_leader().await;
            if leader == 1 {
                for n in self.nodes.iter().skip(1) {
                    n.wait_synced().await;
                }
                return term;
            }
            assert!(
                attempt < 5,
                "node 1 never kept the lead at start ({attempt} tries)\n{}",
                self.report().await
            );
            eprintln!("node {leader} took over at start (term {term}): starting the cluster again");
            for n in &mut self.nodes {
                n.kill_9();
                let _ = std::fs::remove_dir_all(&n.data_dir);
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// (Re)writes node `id`'s cluster file; `leader_via` replaces the
    /// leader's address in it (a proxy in front of the leader).
    pub fn write_config(&mut self, id: u64, leader_via: Option<SocketAddr>) {
        let mut layout = self.layout.lock().unwrap();
        layout.leader_via[(id - 1) as usize] = leader_via;
        layout.write(id);
    }

    /// Rewrites node `from`'s cluster file so it reaches node `to` at
    /// `via` (a proxy), or at its own address again (`None`). Read at the
    /// node's next start.
    pub fn route(&mut self, from: u64, to: u64, via: Option<SocketAddr>) {
        let mut layout = self.layout.lock().unwrap();
        match via {
            Some(v) => layout.routes.insert((from, to), v),
            None => layout.routes.remove(&(from, to)),
        };
        layout.write(from);
    }

    pub fn node(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    pub fn leader(&self) -> &Node {
        &self.nodes[0]
    }

    /// Waits until node `id` reports itself leader (elected once a
    /// majority runs).
    pub async fn elected(&self, id: u64) {
        self.nodes[(id - 1) as usize].wait_info("its election", |i| info_field(i, "role") == "leader").await;
    }

    /// Waits until exactly one running node leads and every other running
    /// node follows it; returns its id and term.
    pub async fn one_leader(&self) -> (u64, u64) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let mut leaders = Vec::new();
            let mut followed = Vec::new();
            for n in self.nodes.iter().filter(|n| n.running()) {
                let i = n.info().await;
                if info_field(&i, "role") == "leader" {
                    leaders.push((n.id, info_u64(&i, "term")));
                } else {
                    followed.push(info_u64(&i, "leader_id"));
                }
            }
            if let [(id, term)] = leaders[..] {
                if followed.iter().all(|&l| l == id) {
                    return (id, term);
                }
            }
            if Instant::now() > deadline {
                panic!("no single leader within {DEADLINE:?}: leaders {leaders:?}\n{}", self.report().await);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node that reports itself leader now, if one does.
    pub async fn current_leader(&self) -> Option<u64> {
        for n in self.nodes.iter().filter(|n| n.running()) {
            if info_field(&n.info().await, "role") == "leader" {
                return Some(n.id);
            }
        }
        None
    }

    /// Waits until every running follower has applied the leader's last
    /// index and every running node reports the same DIGEST; returns it.
    /// Panics after [`DEADLINE`] with each node's INFO and log tail.
    pub async fn converged(&self) -> u64 {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(digest) = self.agreed_digest().await {
                return digest;
            }
            if Instant::now() > deadline {
                panic!("cluster did not converge within {DEADLINE:?}\n{}", self.report().await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The DIGEST all running nodes agree on, once every running follower
    /// has applied the leader's last index. DIGEST walks the whole data set
    /// and blocks a node meanwhile (half a second for 200,000 keys in a
    /// debug build on a loaded machine), so it is asked only then: polling
    /// it would itself stall the leader past the link timeout.
    async fn agreed_digest(&self) -> Option<u64> {
        // The node leading now (none: an election is under way).
        let leader = self.current_leader().await?;
        let last = info_u64(&self.nodes[(leader - 1) as usize].info().await, "last_index");
        for n in self.nodes.iter().filter(|n| n.id != leader && n.running()) {
            if info_u64(&n.info().await, "applied_index") < last {
                return None;
            }
        }
        let digests = self.digests().await;
        let first = digests[0]?;
        digests.iter().all(|d| *d == Some(first)).then_some(first)
    }

    /// DIGEST of every running node, in id order (`None` for a node
    /// answering LOADING: a follower installing a full resync).
    pub async fn digests(&self) -> Vec<Option<u64>> {
        let mut out = Vec::new();
        for n in self.nodes.iter().filter(|n| n.running()) {
            match n.client().await.digest().await {
                Ok(d) => out.push(Some(d)),
                Err(e) if e.status() == Some(burrow_proto::Status::Loading) => out.push(None),
                Err(e) => panic!("DIGEST on node {}: {e}", n.id),
            }
        }
        out
    }

    /// Every running node's INFO replication and log tail, for failures.
    pub async fn report(&self) -> String {
        let mut report = String::new();
        for n in self.nodes.iter().filter(|n| n.running()) {
            let digest = match n.client().await.digest().await {
                Ok(d) => format!("{d:016x}"),
                Err(e) => e.to_string(),
            };
            report += &format!(
                "--- node {} (digest {digest}) ---\n{}\n{}\n",
                n.id,
                n.info().await,
                tail(&n.stderr(), 40)
            );
        }
        report
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Node {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts the process and waits (polling its log) until it listens on
    /// its address. If another process took the port meanwhile, moves to
    /// another one (rewriting every cluster file) and tries again.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.id);
        for attempt in 1.. {
            if let Some(r) = self.reserved.as_mut() {
                r.release();
            }
            self.reserved = None;
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
            match listening_or_exit(&mut child, &self.log, already).await {
                Ok(addr) => {
                    assert_eq!(addr, self.addr, "node {} listens on its addr", self.id);
                    self.child = Some(child);
                    return;
                }
                Err((_, log)) if log.contains("Address already in use") && attempt < 5 => self.move_port(),
                Err((status, log)) => {
                    panic!("node {} exited with {status} before listening; stderr:\n{log}", self.id)
                }
            }
        }
    }

    /// Moves this node to another port (another process took its own),
    /// rewriting every cluster file.
    fn move_port(&mut self) {
        let r = reserve_port();
        self.addr = r.addr();
        self.reserved = Some(r);
        let mut layout = self.layout.lock().unwrap();
        layout.addrs[(self.id - 1) as usize] = self.addr;
        layout.write_all();
    }

    /// Listens at this node's address instead of starting it, for a test
    /// that plays the node itself ([`super::fake_member::FakeMember`]).
    /// Call before starting the others: if another process took the port,
    /// the node moves to another one, as [`Node::start`] does.
    pub async fn take_over(&mut self) -> tokio::net::TcpListener {
        assert!(self.child.is_none(), "node {} is running", self.id);
        for attempt in 1.. {
            if let Some(r) = self.reserved.as_mut() {
                r.release();
            }
            self.reserved = None;
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(listener) => return listener,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < 5 => self.move_port(),
                Err(e) => panic!("node {}: cannot listen on {}: {e}", self.id, self.addr),
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// Waits until this follower streams from the leader with its data set
    /// loaded (INFO `link_status:up`, `loading:0`). Until then its reads
    /// may answer LOADING and WAIT may not count it.
    pub async fn wait_synced(&self) {
        self.wait_info("the follower to be synced", |i| {
            info_field(i, "link_status") == "up" && info_field(i, "loading") == "0"
        })
        .await;
    }

    /// SIGKILL: no shutdown snapshot, no goodbye to the peers.
    pub fn kill_9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process freezes, its kernel still accepts connections.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// SIGCONT after [`Node::pause`].
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Sends `signal` (`STOP`, `CONT`, …) to the running process: a
    /// SIGSTOPped node is a node stalled as long as the test likes.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().unwrap_or_else(|| panic!("node {} is not running", self.id));
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} node {}: {status}", self.id);
    }

    /// SIGTERM and wait for a clean exit.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let status = wait_exit(&mut c).await;
            assert!(status.success(), "node {} exited with {status}:\n{}", self.id, tail(&self.stderr(), 30));
        }
    }

    /// TLS options for a client of this cluster (`None`: plain TCP).
    pub fn client_tls(&self) -> Option<burrow_client::TlsOptions> {
        self.layout.lock().unwrap().opts.tls.as_ref().map(|t| t.client())
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client that does not follow redirects (tests look at raw replies).
    pub async fn client(&self) -> Client {
        let config =
            burrow_client::ClientConfig { max_redirects: 0, tls: self.client_tls(), ..Default::default() };
        Client::connect_with(self.addr, config).await.expect("connect to node")
    }

    pub async fn info(&self) -> String {
        self.client().await.info("replication").await.expect("INFO replication")
    }

    /// Polls until `cond` holds on this node's INFO replication section and
    /// returns that INFO; panics after [`DEADLINE`] with the last INFO and
    /// the node's log tail.
    pub async fn wait_info(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let info = self.info().await;
            if cond(&info) {
                return info;
            }
            if Instant::now() > deadline {
                let log = tail(&self.stderr(), 40);
                panic!("node {}: timed out after {DEADLINE:?} waiting for {what}\n{info}\n{log}", self.id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
        if std::thread::panicking() {
            eprintln!("test failed: node {} log kept at {}", self.id, self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
