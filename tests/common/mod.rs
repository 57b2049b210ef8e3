//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use burrow::server::{Config, ServerHandle};

/// A server on a free 127.0.0.1 port, in this process.
pub async fn start() -> ServerHandle {
    start_with(|_| {}).await
}

/// Like [`start`], after `tweak` adjusts the config.
pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> ServerHandle {
    let mut config = Config { port: 0, shards: 16, persistence: false, ..Config::default() };
    tweak(&mut config);
    ServerHandle::start(config).await.expect("server starts")
}

/// Polls `cond` until it is true or `timeout` passes; panics with `what` on timeout.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A fresh directory under the system temp dir, removed on drop. Kept
/// dependency-free (no `tempfile`): tests only need a unique path.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("burrow-{tag}-{}-{n}-{nanos:08x}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// A path inside this directory (not created).
    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the regular files of `from` into `to` (created), as they are now:
/// taken while a server is idle, this is the image a crash would leave.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() && entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// `burrow-server` running as a child process (for crash tests: it can be
/// SIGKILLed), on a port the OS picked, with its stderr kept in a file.
pub struct ChildServer {
    child: std::process::Child,
    pub addr: std::net::SocketAddr,
    stderr_path: std::path::PathBuf,
}

/// How long a child may take to recover its data and open its port.
pub const CHILD_START: Duration = Duration::from_secs(20);

impl ChildServer {
    /// Starts the binary on `data_dir` with `--port 0` plus `args`, and waits
    /// (polling its log, with a deadline) until it is listening. Panics with
    /// its stderr if it exits first.
    pub async fn start(data_dir: &std::path::Path, args: &[&str]) -> ChildServer {
        let stderr_path = unique_log_path(data_dir);
        let mut child = spawn_server(data_dir, args, &stderr_path);
        let deadline = Instant::now() + CHILD_START;
        loop {
            let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            if let Some(addr) = listening_addr(&log) {
                return ChildServer { child, addr, stderr_path };
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!("burrow-server exited with {status} before listening; stderr:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("burrow-server did not listen within {CHILD_START:?}; stderr:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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
        let status = wait_exit(&mut self.child, CHILD_START).await;
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
    let status = wait_exit(&mut child, CHILD_START).await;
    let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    (status, log)
}

fn unique_log_path(data_dir: &std::path::Path) -> std::path::PathBuf {
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
    std::process::Command::new(env!("CARGO_BIN_EXE_burrow-server"))
        .arg("--port")
        .arg("0")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--shards")
        .arg("16")
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("spawn burrow-server")
}

async fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("burrow-server did not exit within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The address in the "burrow listening" log line, colours or not.
fn listening_addr(log: &str) -> Option<std::net::SocketAddr> {
    let line = log.lines().find(|l| l.contains("burrow listening"))?;
    let at = line.find("127.0.0.1:")?;
    let rest = &line[at..];
    let end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':')).unwrap_or(rest.len());
    rest[..end].parse().ok()
}
