//! A fake follower: answers requests with `NOT_LEADER` naming a
//! configurable leader (or with `NO_LEADER`, as a node that knows none),
//! so redirect and failover handling can be tested without a real cluster
//! in that state.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use burrow_proto::{encode_response, BodyType, Codec, Limits, Request, Status};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;

/// The TEXT a [`Refuse::Writes`] fake answers reads with.
pub const FOLLOWER_READ: &str = "answered by the fake follower";

/// Which requests a fake refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refuse {
    /// Every request.
    All,
    /// Writes and WAIT, as a real follower does; anything else is answered
    /// with the TEXT [`FOLLOWER_READ`].
    Writes,
}

/// A listener that refuses requests with `NOT_LEADER`. Stops when dropped.
pub struct NotLeader {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl NotLeader {
    /// Binds a free 127.0.0.1 port without serving yet, so two fakes can
    /// name each other.
    pub async fn bind() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").await.expect("bind a fake follower")
    }

    /// Serves `listener`, answering each request with `NOT_LEADER` and
    /// `leader` as the message (an address, or empty for "no leader known").
    pub fn serve(listener: TcpListener, leader: &str) -> NotLeader {
        NotLeader::serve_with(listener, leader, Refuse::All)
    }

    /// Like [`serve`](NotLeader::serve), refusing only what `refuse` says.
    pub fn serve_with(listener: TcpListener, leader: &str, refuse: Refuse) -> NotLeader {
        NotLeader::serve_status(listener, Status::NotLeader, leader, refuse)
    }

    /// A node that knows no leader: refuses every request with `NO_LEADER`.
    pub async fn no_leader() -> NotLeader {
        NotLeader::serve_status(NotLeader::bind().await, Status::NoLeader, "no leader known", Refuse::All)
    }

    fn serve_status(listener: TcpListener, status: Status, leader: &str, refuse: Refuse) -> NotLeader {
        let addr = listener.local_addr().expect("fake follower address");
        let requests = Arc::new(AtomicUsize::new(0));
        let leader = leader.to_string();
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(answer(conn, status, leader.clone(), refuse, counter.clone()));
            }
        });
        NotLeader { addr, requests, task }
    }

    /// [`bind`](NotLeader::bind) then [`serve`](NotLeader::serve).
    pub async fn start(leader: &str) -> NotLeader {
        NotLeader::serve(NotLeader::bind().await, leader)
    }

    /// Requests answered so far, over every connection.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for NotLeader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    mut conn: TcpStream,
    refusal: Status,
    leader: String,
    refuse: Refuse,
    counter: Arc<AtomicUsize>,
) {
    let mut codec = Codec::server(Limits::default());
    let mut rbuf = BytesMut::new();
    let mut wbuf = BytesMut::new();
    loop {
        // Answer every whole frame buffered, then write once, like the server.
        loop {
            match codec.decode(&mut rbuf) {
                Ok(Some(f)) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let refused = match (refuse, Request::from_frame(&f)) {
                        (Refuse::All, _) => true,
                        (Refuse::Writes, Ok(req)) => req.is_write() || matches!(req, Request::Wait { .. }),
                        (Refuse::Writes, Err(_)) => false,
                    };
                    let (status, text) = match refused {
                        true => (refusal, leader.as_bytes()),
                        false => (Status::Ok, FOLLOWER_READ.as_bytes()),
                    };
                    encode_response(&mut wbuf, f.opcode, f.id, status, BodyType::Text, &[], text);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if !wbuf.is_empty() {
            if conn.write_all(&wbuf).await.is_err() {
                return;
            }
            wbuf.clear();
        }
        match conn.read_buf(&mut rbuf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
