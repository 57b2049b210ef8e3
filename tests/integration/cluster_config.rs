//! `burrow-server --config FILE --node-id N` as a real process: a bad
//! cluster file is reported in one precise line and the process exits 1
//! before it opens its data directory or binds its port; a good one makes
//! the node listen on its own `addr` and keep its data in its own
//! `data_dir` (relative to the directory it was started from).

use crate::common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::{server_command, wait_exit, wait_listening, TempDir};

/// A refused start takes milliseconds; this only bounds a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// Three distinct ports nothing listens on right now (all three held open
/// while they are picked, so the OS cannot hand out one twice).
fn free_ports() -> [u16; 3] {
    let held: Vec<TcpListener> =
        (0..3).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port")).collect();
    let port = |i: usize| held[i].local_addr().expect("local addr").port();
    [port(0), port(1), port(2)]
}

/// A 3-node cluster file whose nodes use `ports` and `dir/node{id}`
/// (`dir` may be relative), with `edit` applied to the text.
fn cluster_file(dir: &str, ports: [u16; 3], edit: impl FnOnce(String) -> String) -> String {
    let mut text =
        String::from("[cluster]\ninitial_leader = 1\nreplication = \"async\"\nheartbeat_ms = 100\n");
    for (i, port) in ports.iter().enumerate() {
        let id = i + 1;
        text.push_str(&format!(
            "\n[[node]]\nid = {id}\naddr = \"127.0.0.1:{port}\"\ndata_dir = \"{dir}/node{id}\"\n"
        ));
    }
    edit(text)
}

/// Starts the binary in `cwd` with `args`; stderr goes to a file in `cwd`.
fn spawn(cwd: &Path, args: &[&str]) -> Child {
    let stderr = std::fs::File::create(cwd.join("stderr.log")).expect("create stderr log");
    server_command(stderr).args(args).current_dir(cwd).spawn().expect("spawn burrow-server")
}

fn stderr_of(cwd: &Path) -> String {
    std::fs::read_to_string(cwd.join("stderr.log")).unwrap_or_default()
}

/// Runs the binary with a cluster file expected to be refused; asserts it
/// exits 1 quickly with exactly `want` as its error, without creating any
/// node's data directory (the server opens it before binding) or leaving
/// its port taken.
async fn assert_refused(text: &str, node_id: &str, port: u16, want: impl FnOnce(&Path) -> String) {
    let tmp = TempDir::new("cluster-refused");
    let file = tmp.join("cluster.toml");
    std::fs::write(&file, text).expect("write cluster file");
    let started = Instant::now();
    let mut child =
        spawn(tmp.path(), &["--config", file.to_str().expect("utf-8 path"), "--node-id", node_id]);
    let status = wait_exit(&mut child, DEADLINE).await;
    let log = stderr_of(tmp.path());
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{log}");
    assert_eq!(log, format!("burrow-server: invalid configuration: {}\n", want(&file)));
    assert!(started.elapsed() < Duration::from_secs(10), "a refused start is immediate");
    for id in 1..=3 {
        assert!(!tmp.join(&format!("data/node{id}")).exists(), "node {id}'s data dir was created");
    }
    TcpListener::bind(("127.0.0.1", port)).expect("the node's port is still free");
}

#[tokio::test]
async fn duplicate_node_ids_are_refused_before_binding() {
    let ports = free_ports();
    let text = cluster_file("data", ports, |t| t.replace("id = 3", "id = 1"));
    assert_refused(&text, "1", ports[0], |file| {
        format!("{}: node id 1 appears more than once", file.display())
    })
    .await;
}

#[tokio::test]
async fn an_unknown_node_id_is_refused_before_binding() {
    let ports = free_ports();
    let text = cluster_file("data", ports, |t| t);
    assert_refused(&text, "4", ports[0], |file| {
        format!("--node-id 4 is not a node of {} (nodes: 1, 2, 3)", file.display())
    })
    .await;
}

#[tokio::test]
async fn a_node_listens_on_its_addr_and_keeps_data_in_its_data_dir() {
    let tmp = TempDir::new("cluster-node");
    let ports = free_ports();
    let file = tmp.join("cluster.toml");
    std::fs::write(&file, cluster_file("data", ports, |t| t)).expect("write cluster file");
    let addr: SocketAddr = ([127, 0, 0, 1], ports[1]).into();
    let mut child = spawn(tmp.path(), &["--config", file.to_str().expect("utf-8 path"), "--node-id", "2"]);
    let listening = wait_listening(&mut child, &tmp.join("stderr.log"), 0).await;
    assert_eq!(listening, addr, "node 2 listens on its own addr");
    TcpStream::connect(addr).expect("node 2 accepts connections on its addr");
    // Relative data_dir: relative to the directory the server started in.
    assert!(tmp.join("data/node2").is_dir(), "node 2's data dir is created under its cwd");
    assert!(!tmp.join("data/node1").exists() && !tmp.join("data/node3").exists());
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(killed.success(), "kill -TERM failed");
    let status = wait_exit(&mut child, DEADLINE).await;
    assert!(status.success(), "clean exit on SIGTERM; stderr:\n{}", stderr_of(tmp.path()));
}
