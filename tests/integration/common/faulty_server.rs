//! A server whose persistence files go through a `FaultyFileSystem`
//! (burrow-server's `fault-injection` feature), in process, on a free port.

use burrow_client::Client;
use burrow_server::fault_injection::FaultyFileSystem;
use burrow_server::{Config, FsyncPolicy, PersistError, Server, ServerError};

use super::{TempDir, DEADLINE};

/// A server on `dir` whose files go through `fs`, serving on a free port.
pub struct FaultyServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl FaultyServer {
    pub async fn start(dir: &TempDir, fsync: FsyncPolicy, fs: &FaultyFileSystem) -> FaultyServer {
        let config = Config {
            port: 0,
            shards: 16,
            persistence: true,
            data_dir: dir.path().to_owned(),
            fsync,
            ..Config::default()
        };
        FaultyServer::open(config, fs).await
    }

    /// A server with `config` (a cluster member, say), listening on
    /// 127.0.0.1 at `config.port` (0: a free one).
    pub async fn open(config: Config, fs: &FaultyFileSystem) -> FaultyServer {
        let port = config.port;
        let deadline = std::time::Instant::now() + DEADLINE;
        let server = loop {
            let (c, f) = (config.clone(), fs.clone());
            match tokio::task::spawn_blocking(move || Server::open_with_faults(c, &f)).await.unwrap() {
                Ok(server) => break server,
                // A server of this process on the same directory, just shut
                // down, may not have dropped its lock yet.
                Err(ServerError::Persist(PersistError::Locked(_)))
                    if std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                Err(e) => panic!("server opens: {e}"),
            }
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async move {
            let _ = stopped.await;
        }));
        FaultyServer { addr, stop: Some(stop), task }
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await.unwrap()
    }

    /// Graceful shutdown; what `serve` returned (the process's exit status).
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(DEADLINE, self.task).await.expect("shutdown in time").unwrap()
    }
}
