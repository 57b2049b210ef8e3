//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use burrow_server::server::{Config, ServerHandle};

pub mod cluster;
pub mod not_leader;
pub mod proxy;

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

/// How long a raw-protocol helper waits for bytes before failing the test.
/// Generous: a reply that is late is a hang worth reporting, not a flake.
pub const IO_DEADLINE: Duration = Duration::from_secs(10);

/// A raw TCP connection that speaks bytes, not typed requests, so tests can
/// send malformed input and pin the exact wire behaviour.
pub struct RawConn {
    pub stream: tokio::net::TcpStream,
    codec: burrow_proto::Codec,
    buf: bytes::BytesMut,
}

/// What a read from a [`RawConn`] ended with.
#[derive(Debug)]
pub enum ReadEnd {
    Frame(burrow_proto::Frame),
    /// Orderly close (FIN) with no partial frame pending.
    Eof,
}

impl RawConn {
    pub async fn connect(addr: std::net::SocketAddr) -> RawConn {
        let stream = tokio::time::timeout(IO_DEADLINE, tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect within the deadline")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        // Responses can be larger than requests (INFO, LRANGE): generous limits.
        let limits = burrow_proto::Limits { max_key: 65535, max_value: 64 << 20, max_frame: 65 << 20 };
        RawConn { stream, codec: burrow_proto::Codec::client(limits), buf: bytes::BytesMut::new() }
    }

    /// Writes `bytes` and flushes.
    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        tokio::time::timeout(IO_DEADLINE, async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        })
        .await
        .expect("write within the deadline")
        .expect("write");
    }

    /// Encodes and sends typed requests in one write.
    pub async fn send_requests(&mut self, reqs: &[(u32, burrow_proto::Request)]) {
        let mut out = Vec::new();
        for (id, req) in reqs {
            out.extend_from_slice(&request_bytes(req, *id));
        }
        self.send(&out).await;
    }

    /// The next response frame, or EOF; panics on a deadline, a reset, a
    /// malformed response or EOF in the middle of a frame.
    pub async fn next(&mut self) -> ReadEnd {
        use tokio::io::AsyncReadExt;
        use tokio_util::codec::Decoder;
        tokio::time::timeout(IO_DEADLINE, async {
            loop {
                if let Some(f) = self.codec.decode(&mut self.buf).expect("well-formed response") {
                    return ReadEnd::Frame(f);
                }
                let n = self.stream.read_buf(&mut self.buf).await.expect("read");
                if n == 0 {
                    assert!(self.buf.is_empty(), "EOF inside a response frame: {:?}", self.buf);
                    return ReadEnd::Eof;
                }
            }
        })
        .await
        .expect("response or EOF within the deadline")
    }

    /// The next response frame; panics on EOF.
    pub async fn frame(&mut self) -> burrow_proto::Frame {
        match self.next().await {
            ReadEnd::Frame(f) => f,
            ReadEnd::Eof => panic!("connection closed while a response was expected"),
        }
    }

    /// The next `n` response frames.
    pub async fn frames(&mut self, n: usize) -> Vec<burrow_proto::Frame> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(self.frame().await);
        }
        out
    }

    /// The next frame decoded as a typed reply.
    pub async fn reply(&mut self) -> (u32, burrow_proto::Reply) {
        let f = self.frame().await;
        (f.id, burrow_proto::Reply::from_frame(&f).expect("valid reply body"))
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub async fn expect_eof(&mut self) {
        match self.next().await {
            ReadEnd::Eof => {}
            ReadEnd::Frame(f) => panic!("expected EOF, got another frame: {f:?}"),
        }
    }

    /// Reads and discards until the server closes (FIN or reset), within the deadline.
    pub async fn drain_until_closed(&mut self) {
        use tokio::io::AsyncReadExt;
        let mut sink = vec![0u8; 64 * 1024];
        tokio::time::timeout(IO_DEADLINE, async {
            loop {
                match self.stream.read(&mut sink).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("server closes the connection within the deadline");
    }
}

/// The wire bytes of one request.
pub fn request_bytes(req: &burrow_proto::Request, id: u32) -> Vec<u8> {
    use tokio_util::codec::Encoder;
    let mut codec = burrow_proto::Codec::server(burrow_proto::Limits::default());
    let mut out = bytes::BytesMut::new();
    codec.encode(&req.to_frame(id), &mut out).expect("request within default limits");
    out.to_vec()
}

/// A hand-built 16-byte header; lengths are declared, not checked, so tests
/// can lie about them.
#[allow(clippy::too_many_arguments)]
pub fn header(
    magic: u8,
    version: u8,
    opcode: u8,
    flags: u8,
    id: u32,
    extras_len: u8,
    key_len: u16,
    value_len: u32,
) -> Vec<u8> {
    let mut h = vec![magic, version, opcode, flags];
    h.extend_from_slice(&id.to_be_bytes());
    h.push(extras_len);
    h.push(0);
    h.extend_from_slice(&key_len.to_be_bytes());
    h.extend_from_slice(&value_len.to_be_bytes());
    h
}

/// Asserts `f` is a response with `status` to request `id`, and returns its message.
pub fn assert_status(f: &burrow_proto::Frame, status: burrow_proto::Status, id: u32) -> String {
    use burrow_proto::Reply;
    let reply = Reply::from_frame(f).expect("valid reply body");
    assert_eq!(f.id, id, "reply id for {reply:?}");
    match reply {
        Reply::Error { status: got, message } => {
            assert_eq!(got, status, "status (message: {message})");
            message
        }
        other => panic!("expected {status}, got {other:?}"),
    }
}

/// A value from an INFO text (`key:value` lines).
pub fn info_field(info: &str, key: &str) -> Option<String> {
    burrow_client::parse_info(info).into_iter().find(|(k, _)| *k == key).map(|(_, v)| v.to_string())
}

/// A numeric INFO field; panics if missing.
pub fn info_u64(info: &str, key: &str) -> u64 {
    info_field(info, key)
        .unwrap_or_else(|| panic!("INFO has no {key}:\n{info}"))
        .parse()
        .unwrap_or_else(|e| panic!("INFO {key} not a number: {e}"))
}

/// A small deterministic RNG, so random-input tests replay exactly.
#[derive(Debug, Clone)]
pub struct SeededRng(burrow_server::rng::SplitMix64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(burrow_server::rng::SplitMix64::new(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform-ish in `lo..hi` (hi exclusive).
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo) as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
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

/// `burrow-server` logging at info, without colours, to `stderr`.
pub fn server_command(stderr: std::fs::File) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_burrow-server"));
    cmd.env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    cmd
}

/// Polls `log` (from byte `from`: a restarted server appends to its old
/// log) until `child` says it is listening, and returns where. Panics with
/// the log if it exits first or takes longer than [`CHILD_START`].
pub async fn wait_listening(
    child: &mut std::process::Child,
    log: &std::path::Path,
    from: usize,
) -> std::net::SocketAddr {
    let deadline = Instant::now() + CHILD_START;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let text = &text[from.min(text.len())..];
        if let Some(addr) = listening_addr(text) {
            return addr;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("burrow-server exited with {status} before listening; stderr:\n{text}");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("burrow-server did not listen within {CHILD_START:?}; stderr:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (polling, with a deadline) for `child` to exit by itself.
pub async fn wait_exit(child: &mut std::process::Child, timeout: Duration) -> std::process::ExitStatus {
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
