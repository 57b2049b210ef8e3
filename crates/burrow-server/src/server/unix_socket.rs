//! The Unix domain socket listener (`--unix-socket PATH`, issue 13): the
//! same protocol and connection loop as TCP for clients on this machine,
//! which then skip the TCP stack.
//!
//! Binding follows Redis's `unixsocket`, with two checks more: a file at
//! PATH that is not a socket is never removed (the start is refused), and
//! a socket someone still listens on is not taken over; a socket nobody
//! listens on (left by a crash) is replaced. The socket is bound, given
//! `--unix-socket-perm`, and only then listens, so no client connects
//! while it has the umask's permissions. The file is removed when the
//! listener is dropped (shutdown, or a start that failed later), unless
//! another file took its place meanwhile.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixListener;
use tracing::{info, warn};

/// Pending connections the kernel queues (as Rust's std listeners do).
const BACKLOG: i32 = 1024;

/// Why the Unix socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum UnixSocketError {
    #[error("--unix-socket {}: the file exists and is not a socket; not removing it", .0.display())]
    NotASocket(PathBuf),
    #[error("--unix-socket {}: another process is listening on it", .0.display())]
    InUse(PathBuf),
    #[error("--unix-socket {}: cannot {what}", .path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// A bound, listening Unix socket whose file this server owns.
#[derive(Debug)]
pub(crate) struct UnixSocket {
    listener: UnixListener,
    /// What connections show as their peer address: `unix:PATH` (an
    /// accepted Unix connection's own address is unnamed).
    peer: Arc<str>,
    /// Removes the file when dropped (after the listener: fields drop in order).
    _file: OwnedFile,
}

impl UnixSocket {
    /// Binds `path` with permissions `mode`, replacing a stale socket.
    /// Must run inside a tokio runtime (the listener registers with it).
    pub(crate) fn bind(path: &Path, mode: u32) -> Result<UnixSocket, UnixSocketError> {
        let err = |what, source| UnixSocketError::Io { path: path.to_owned(), what, source };
        remove_if_stale(path)?;
        let addr = SockAddr::unix(path).map_err(|e| err("use it as a socket address", e))?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| err("create a socket", e))?;
        socket.bind(&addr).map_err(|e| err("bind", e))?;
        // From here the file exists: owned (and removed on drop) even if a
        // later step fails.
        let meta = std::fs::symlink_metadata(path).map_err(|e| err("stat the bound socket", e))?;
        let id = (meta.dev(), meta.ino());
        let peer: Arc<str> = format!("unix:{}", path.display()).into();
        let owned = OwnedFile { path: path.to_owned(), id };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| err("set its permissions", e))?;
        socket.listen(BACKLOG).map_err(|e| err("listen", e))?;
        socket.set_nonblocking(true).map_err(|e| err("make it non-blocking", e))?;
        let std_listener: std::os::unix::net::UnixListener = socket.into();
        let listener = UnixListener::from_std(std_listener).map_err(|e| err("register it", e))?;
        info!(path = %path.display(), mode = format_args!("{mode:04o}"), "listening on a unix socket");
        Ok(UnixSocket { listener, peer, _file: owned })
    }

    pub(crate) async fn accept(&self) -> io::Result<tokio::net::UnixStream> {
        self.listener.accept().await.map(|(stream, _)| stream)
    }

    /// `unix:PATH`, the peer address its connections show.
    pub(crate) fn peer(&self) -> &Arc<str> {
        &self.peer
    }
}

/// The socket file this server bound: removed when dropped, whether setting
/// the listener up failed or the listener closed.
#[derive(Debug)]
struct OwnedFile {
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for OwnedFile {
    fn drop(&mut self) {
        remove_own(&self.path, self.id);
    }
}

/// Removes `path` if it is still the file this server bound.
fn remove_own(path: &Path, id: (u64, u64)) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if (m.dev(), m.ino()) == id => {
            if let Err(e) = std::fs::remove_file(path) {
                warn!(path = %path.display(), error = %e, "cannot remove the unix socket file");
            }
        }
        // Gone, or another file took its place: not ours to remove.
        _ => {}
    }
}

/// Leaves `path` free to bind: nothing there, or a socket nobody listens
/// on (removed). Anything else refuses.
fn remove_if_stale(path: &Path) -> Result<(), UnixSocketError> {
    let err = |what, source| UnixSocketError::Io { path: path.to_owned(), what, source };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(err("check the path", e)),
    };
    if !meta.file_type().is_socket() {
        return Err(UnixSocketError::NotASocket(path.to_owned()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(UnixSocketError::InUse(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            info!(path = %path.display(), "removing a stale unix socket (nobody listens on it)");
            std::fs::remove_file(path).map_err(|e| err("remove the stale socket", e))
        }
        Err(e) => Err(err("check whether the existing socket is in use", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("burrow-uds-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn binds_with_the_mode_and_removes_the_file_when_dropped() {
        let dir = scratch("mode");
        let path = dir.join("s.sock");
        let s = UnixSocket::bind(&path, 0o640).unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(&**s.peer(), format!("unix:{}", path.display()));
        drop(s);
        assert!(!path.exists(), "removed on drop");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_a_live_one_and_other_files_refuse() {
        let dir = scratch("stale");
        let path = dir.join("s.sock");
        // A socket file nobody listens on, as a crash leaves it.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = UnixSocket::bind(&path, 0o700).unwrap();
        match UnixSocket::bind(&path, 0o700) {
            Err(UnixSocketError::InUse(p)) => assert_eq!(p, path),
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(live);
        let file = dir.join("plain");
        std::fs::write(&file, b"keep me").unwrap();
        match UnixSocket::bind(&file, 0o700) {
            Err(e @ UnixSocketError::NotASocket(_)) => {
                assert!(e.to_string().contains("is not a socket"), "{e}")
            }
            other => panic!("expected NotASocket, got {other:?}"),
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me", "never removed");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_file_that_replaced_the_socket_is_not_removed() {
        let dir = scratch("replaced");
        let path = dir.join("s.sock");
        let s = UnixSocket::bind(&path, 0o700).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"someone else's").unwrap();
        drop(s);
        assert!(path.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
