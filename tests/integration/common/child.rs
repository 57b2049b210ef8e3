//! `burrow-server` as a child process: started with its stderr in a file,
//! waited for (polling its log, up to [`DEADLINE`]) until it listens,
//! SIGKILLed or SIGTERMed, and never left behind by a failing test.

use std::time::{Duration, Instant};

use super::DEADLINE;

/// `burrow-server` running as a child process (for crash tests: it can be
/// SIGKILLed), on a port the OS picked, with its stderr kept in a file.
pub struct ChildServer {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    stderr_path: std::path::PathBuf,
}

impl ChildServer {
    /// Like [`ChildServer::start`], under `ulimit -n nofile`.
    pub async fn start_with_nofile(data_dir: &std::path::Path, nofile: u64, args: &[&str]) -> ChildServer {
        let stderr_path = unique_log_path(data_dir);
        let stderr = std::fs::File::create(&stderr_path).expect("create stderr file");
        let mut child = server_command_with_nofile(stderr, nofile)
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .spawn()
            .expect("spawn burrow-server under sh");
        let addr = wait_listening(&mut child, &stderr_path, 0).await;
        ChildServer { child, addr, stderr_path }
    }

    /// Starts the binary on `data_dir` with `--port 0` plus `args`, and waits
    /// (polling its log, with a deadline) until it is listening. Panics with
    /// its stderr if it exits first.
    pub async fn start(data_dir: &std::path::Path, args: &[&str]) -> ChildServer {
        let stderr_path = unique_log_path(data_dir);
        let mut child = spawn_server(data_dir, args, &stderr_path);
        let addr = wait_listening(&mut child, &stderr_path, 0).await;
        ChildServer { child, addr, stderr_path }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap: a crash with no chance to flush or snapshot.
    pub fn kill_9(mut self) -> String {
        self.child.kill().expect("SIGKILL burrow-server");
        self.child.wait().expect("reap burrow-server");
        self.stderr()
    }

    /// SIGTERM, then wait (with a deadline) for a clean exit; returns stderr.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(ok.success(), "kill -TERM failed");
        let status = wait_exit(&mut self.child).await;
        (status, self.stderr())
    }

    /// Everything the server has logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // A panicking test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// Runs the binary on `data_dir` expecting it to exit by itself (a refused
/// start); returns its exit status and stderr. Panics if it starts serving.
pub async fn run_server_to_exit(
    data_dir: &std::path::Path,
    args: &[&str],
) -> (std::process::ExitStatus, String) {
    let stderr_path = unique_log_path(data_dir);
    let mut child = spawn_server(data_dir, args, &stderr_path);
    let status = wait_exit(&mut child).await;
    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    (status, log)
}

pub fn unique_log_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let name = data_dir.file_name().and_then(|s| s.to_str()).unwrap_or("data");
    std::env::temp_dir().join(format!("burrow-stderr-{}-{name}-{n}.log", std::process::id()))
}

fn spawn_server(
    data_dir: &std::path::Path,
    args: &[&str],
    stderr_path: &std::path::Path,
) -> std::process::Child {
    let stderr = std::fs::File::create(stderr_path).expect("create stderr file");
    server_command(stderr)
        .arg("--port")
        .arg("0")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--shards")
        .arg("16")
        .args(args)
        .spawn()
        .expect("spawn burrow-server")
}

/// `burrow-server` logging at info (or as `$BURROW_TEST_LOG` says, e.g.
/// `info,burrow_server::server::replication=debug` to follow a failing
/// test's links), without colours, to `stderr`.
pub fn server_command(stderr: std::fs::File) -> std::process::Command {
    logging_to(std::process::Command::new(env!("CARGO_BIN_EXE_burrow-server")), stderr)
}

/// `burrow-server` as [`server_command`] runs it, under `ulimit -n nofile`
/// (soft and hard, so it cannot raise it): `sh` sets it, then execs it.
pub fn server_command_with_nofile(stderr: std::fs::File, nofile: u64) -> std::process::Command {
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_burrow-server"));
    logging_to(sh, stderr)
}

fn logging_to(mut cmd: std::process::Command, stderr: std::fs::File) -> std::process::Command {
    cmd.env("RUST_LOG", std::env::var("BURROW_TEST_LOG").unwrap_or_else(|_| "info".into()))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    cmd
}

/// Polls `log` (from byte `from`: a restarted server appends to its old
/// log) until `child` says it is listening, and returns where. Panics with
/// the log if it exits first or takes longer than [`DEADLINE`].
pub async fn wait_listening(
    child: &mut std::process::Child,
    log: &std::path::Path,
    from: usize,
) -> std::net::SocketAddr {
    listening_or_exit(child, log, from).await.unwrap_or_else(|(status, text)| {
        panic!("burrow-server exited with {status} before listening; stderr:\n{text}")
    })
}

/// Like [`wait_listening`], but a child that exits first is an answer:
/// its exit status and log (a caller may retry on another port).
pub async fn listening_or_exit(
    child: &mut std::process::Child,
    log: &std::path::Path,
    from: usize,
) -> Result<std::net::SocketAddr, (std::process::ExitStatus, String)> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let text = &text[from.min(text.len())..];
        if let Some(addr) = listening_addr(text) {
            return Ok(addr);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Err((status, text.to_string()));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("burrow-server did not listen within {DEADLINE:?}; stderr:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (polling, without blocking the runtime, up to [`DEADLINE`]) for
/// `child` to exit by itself; kills it and panics if it does not.
pub async fn wait_exit(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process {} did not exit within {DEADLINE:?}", child.id());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The address in the "burrow listening" log line, colours or not.
fn listening_addr(log: &str) -> Option<std::net::SocketAddr> {
    let line = log.lines().find(|l| l.contains("burrow listening"))?;
    // A server on every address (`--bind 0.0.0.0`) is reached on loopback.
    let at = line.find("127.0.0.1:").or_else(|| line.find("0.0.0.0:").map(|i| i + "0.0.0.0".len()))?;
    let rest = &line[at..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':')).unwrap_or(rest.len());
    let addr = &rest[..end];
    match addr.strip_prefix(':') {
        Some(port) => Some(std::net::SocketAddr::from(([127, 0, 0, 1], port.parse().ok()?))),
        None => addr.parse().ok(),
    }
}
