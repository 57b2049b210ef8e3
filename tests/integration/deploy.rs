//! The deployment files (`Dockerfile`, `docker-compose.yml`, `deploy/`)
//! cannot be run here (no container runtime, no systemd as init), so their
//! configs are checked with the server's own loader, as the server would
//! read them with the flags those files pass, and against each other.
//! `deploy/check.sh` adds the linters (hadolint, `systemd-analyze verify`,
//! a YAML parse of the compose file).

use crate::common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use burrow_server::{Config, ServerArgs};
use clap::Parser;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// `burrow-server ARGS` with the file at `path` as `--config`, resolved
/// as the server does at start.
fn resolve(path: &str, args: &[&str]) -> Result<Config, burrow_server::ConfigError> {
    let file = repo(path);
    let mut argv = vec!["burrow-server", "--config", file.to_str().expect("utf-8 path")];
    argv.extend_from_slice(args);
    ServerArgs::try_parse_from(argv).expect("the flags parse").resolve()
}

/// The `command:` arguments of each compose service, from the YAML's flow
/// lists (`command: ["--config", …]`).
fn compose_commands(yaml: &str) -> Vec<Vec<String>> {
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("command: ["))
        .map(|list| {
            list.trim_end_matches(']').split(',').map(|a| a.trim().trim_matches('"').to_string()).collect()
        })
        .collect()
}

#[test]
fn the_compose_cluster_file_loads_for_every_node_with_the_compose_flags() {
    let compose = read("docker-compose.yml");
    let commands = compose_commands(&compose);
    assert_eq!(commands.len(), 3, "three services with a command in docker-compose.yml");
    let dir = common::TempDir::new("deploy-compose");
    let secret = dir.join("cluster.secret");
    std::fs::write(&secret, "a-cluster-secret-of-at-least-16-bytes\n").unwrap();
    for (i, command) in commands.iter().enumerate() {
        let id = i + 1;
        assert_eq!(command[..2], ["--config", "/etc/burrow/cluster.toml"], "node{id}");
        // The compose file mounts deploy/compose/cluster.toml there, and the
        // secret at /run/secrets/cluster_secret (overridden here).
        let mut args: Vec<&str> = command[2..].iter().map(String::as_str).collect();
        args.extend(["--cluster-secret-file", secret.to_str().unwrap()]);
        let config = resolve("deploy/compose/cluster.toml", &args)
            .unwrap_or_else(|e| panic!("node{id}: deploy/compose/cluster.toml with {args:?}: {e}"));
        let cluster = config.cluster.as_ref().expect("a cluster member");
        assert_eq!(cluster.node_id() as usize, id);
        assert!(cluster.secret.is_some(), "node{id} authenticates its links");
        let addr = cluster.me().addr;
        assert_eq!(
            config.bind,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            "node{id} listens on the container's interfaces"
        );
        assert_eq!(config.port, 7440, "node{id}: the port the image EXPOSEs and its HEALTHCHECK pings");
        assert_eq!(
            config.data_dir,
            PathBuf::from(format!("/data/node{id}")),
            "node{id} keeps data in its volume"
        );
        assert_eq!(config.auth_secret_file.as_deref(), Some(Path::new("/run/secrets/burrow_auth")));
        assert!(config.protected_mode);
        // The compose network gives the node the address the others dial.
        let fixed = format!("ipv4_address: {}", addr.ip());
        assert!(compose.contains(&fixed), "docker-compose.yml gives node{id} {fixed}");
        assert!(compose.contains(&format!("127.0.0.1:744{id}:{}", addr.port())), "node{id} is published");
    }
    // Without the override, the cluster file's own secret_file is the
    // compose secret's path.
    let err = resolve("deploy/compose/cluster.toml", &["--node-id", "1"]).unwrap_err().to_string();
    assert!(err.contains("/run/secrets/cluster_secret"), "{err}");
}

#[test]
fn the_image_config_listens_everywhere_and_requires_a_client_secret() {
    let config = resolve("deploy/docker/burrow.toml", &[]).expect("deploy/docker/burrow.toml loads");
    assert_eq!(SocketAddr::new(config.bind, config.port), "0.0.0.0:7440".parse().unwrap());
    assert_eq!(config.data_dir, PathBuf::from("/data"));
    assert_eq!(config.auth_secret_file.as_deref(), Some(Path::new("/run/secrets/burrow_auth")));
    assert!(config.protected_mode);
    let dockerfile = read("Dockerfile");
    for line in [
        "COPY deploy/docker/burrow.toml /etc/burrow/burrow.toml",
        "VOLUME [\"/data\"]",
        "EXPOSE 7440",
        "CMD [\"burrow-cli\", \"--port\", \"7440\", \"PING\"]",
        "CMD [\"--config\", \"/etc/burrow/burrow.toml\"]",
        "USER 10001:10001",
    ] {
        assert!(dockerfile.lines().any(|l| l.trim() == line), "Dockerfile has no line {line:?}");
    }
}

#[test]
fn the_systemd_config_keeps_data_in_the_units_state_directory() {
    let unit = read("deploy/systemd/burrow.service");
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[..3], ["/usr/local/bin/burrow-server", "--config", "/etc/burrow/burrow.toml"]);
    let config = resolve("deploy/systemd/burrow.toml", &args[3..]).expect("deploy/systemd/burrow.toml loads");
    assert!(unit.lines().any(|l| l == "StateDirectory=burrow"));
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/burrow"));
    assert!(config.bind.is_loopback(), "loopback unless a client secret is configured");
}
