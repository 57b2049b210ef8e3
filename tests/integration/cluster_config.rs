//! `burrow-server --config FILE --node-id N` as a real process: a bad
//! cluster file is reported in one precise line and the process exits 1
//! before it opens its data directory or binds its port; a good one makes
//! the node listen on its own `addr` and keep its data in its own
//! `data_dir` (relative to the directory it was started from).

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};

use common::{reserve_port, server_command, wait_exit, wait_listening, Reservation, TempDir};

/// Three ports, held (bound) until released: a node that tried to bind a
/// held one would fail with another error than the one expected.
fn reserve_ports() -> [Reservation; 3] {
    [reserve_port(), reserve_port(), reserve_port()]
}

fn ports(r: &[Reservation; 3]) -> [u16; 3] {
    [r[0].port(), r[1].port(), r[2].port()]
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

/// Runs the binary with a cluster file expected to be refused (its nodes'
/// ports held meanwhile); asserts it exits 1 with exactly `want` as its
/// error, without creating any node's data directory (the server opens it
/// before binding) or trying to bind (that would fail otherwise).
async fn assert_refused(text: &str, node_id: &str, want: impl FnOnce(&Path) -> String) {
    let tmp = TempDir::new("cluster-refused");
    let file = tmp.join("cluster.toml");
    std::fs::write(&file, text).expect("write cluster file");
    let mut child =
        spawn(tmp.path(), &["--config", file.to_str().expect("utf-8 path"), "--node-id", node_id]);
    let status = wait_exit(&mut child).await;
    let log = stderr_of(tmp.path());
    assert_eq!(status.code(), Some(1), "exit status; stderr:\n{log}");
    assert_eq!(log, format!("burrow-server: invalid configuration: {}\n", want(&file)));
    for id in 1..=3 {
        assert!(!tmp.join(&format!("data/node{id}")).exists(), "node {id}'s data dir was created");
    }
}

#[tokio::test]
async fn duplicate_node_ids_are_refused_before_binding() {
    let held = reserve_ports();
    let text = cluster_file("data", ports(&held), |t| t.replace("id = 3", "id = 1"));
    assert_refused(&text, "1", |file| format!("{}: node id 1 appears more than once", file.display())).await;
}

#[tokio::test]
async fn an_unknown_node_id_is_refused_before_binding() {
    let held = reserve_ports();
    let text = cluster_file("data", ports(&held), |t| t);
    assert_refused(&text, "4", |file| {
        format!("--node-id 4 is not a node of {} (nodes: 1, 2, 3)", file.display())
    })
    .await;
}

#[tokio::test]
async fn a_node_listens_on_its_addr_and_keeps_data_in_its_data_dir() {
    let tmp = TempDir::new("cluster-node");
    let mut held = reserve_ports();
    let file = tmp.join("cluster.toml");
    std::fs::write(&file, cluster_file("data", ports(&held), |t| t)).expect("write cluster file");
    let addr: SocketAddr = ([127, 0, 0, 1], held[1].release()).into();
    let mut child = spawn(tmp.path(), &["--config", file.to_str().expect("utf-8 path"), "--node-id", "2"]);
    let listening = wait_listening(&mut child, &tmp.join("stderr.log"), 0).await;
    assert_eq!(listening, addr, "node 2 listens on its own addr");
    TcpStream::connect(addr).expect("node 2 accepts connections on its addr");
    // Relative data_dir: relative to the directory the server started in.
    assert!(tmp.join("data/node2").is_dir(), "node 2's data dir is created under its cwd");
    assert!(!tmp.join("data/node1").exists() && !tmp.join("data/node3").exists());
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(killed.success(), "kill -TERM failed");
    let status = wait_exit(&mut child).await;
    assert!(status.success(), "clean exit on SIGTERM; stderr:\n{}", stderr_of(tmp.path()));
}
