//! Where load connections go: one server, or the leader of a cluster
//! (`--hosts`), found again after a leader change so that a benchmark
//! survives a failover (protocol.md §5.2).
//!
//! A connection finds the leader by asking `WAIT 0 0`, which a leader
//! answers at once (a count, nothing waited for) and any other node
//! refuses: `NOT_LEADER` naming the leader (asked next), `NO_LEADER` or
//! `LOADING` (the next host is asked after a jittered pause). The answered
//! connection is the load connection: the exchange leaves nothing unread.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use burrow_proto::{Codec, Limits, Reply, Request, Status};
use tokio_util::codec::{Decoder, Encoder};

use super::driver::connect;
use super::BenchError;

/// Pauses between attempts to find a leader: doubling from the first to
/// the last, each drawn from its upper half.
const PAUSE_MIN: Duration = Duration::from_millis(10);
const PAUSE_MAX: Duration = Duration::from_millis(200);

/// The server(s) a run loads.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    One(SocketAddr),
    /// The seeds of a cluster; connections go to its leader.
    Cluster(Vec<SocketAddr>),
}

impl Target {
    /// The address errors name: the server, or the first seed.
    pub(crate) fn addr(&self) -> SocketAddr {
        match self {
            Target::One(a) => *a,
            Target::Cluster(seeds) => seeds[0],
        }
    }

    /// A load connection: to the server, or to the leader a cluster has
    /// within `patience` (else the last failure, or `NoLeader`).
    pub(crate) async fn open(&self, patience: Duration) -> Result<TcpStream, BenchError> {
        let seeds = match self {
            Target::One(addr) => return connect(*addr).await,
            Target::Cluster(seeds) => seeds,
        };
        let start = Instant::now();
        let mut pause = PAUSE_MIN;
        let mut hint: Option<SocketAddr> = None;
        for attempt in 0usize.. {
            let addr = hint.take().unwrap_or(seeds[attempt % seeds.len()]);
            match ask_leader(addr).await {
                Ok(Answer::Leader(stream)) => return Ok(stream),
                Ok(Answer::Elsewhere(leader)) if attempt % 4 != 3 => {
                    hint = Some(leader);
                    continue;
                }
                // Pause every fourth hop too: two nodes may name each other.
                Ok(_) | Err(_) => {}
            }
            if start.elapsed() + pause >= patience {
                return Err(BenchError::NoLeader { after: start.elapsed() });
            }
            let jitter = fastrand::u64(0..=pause.as_micros() as u64 / 2);
            tokio::time::sleep(pause / 2 + Duration::from_micros(jitter)).await;
            pause = (pause * 2).min(PAUSE_MAX);
        }
        unreachable!("the loop returns")
    }
}

/// What a node said to `WAIT 0 0`.
enum Answer {
    Leader(TcpStream),
    /// Not the leader; it named this one.
    Elsewhere(SocketAddr),
    /// Not the leader, and it knows none (or cannot serve yet).
    NoLeader,
}

async fn ask_leader(addr: SocketAddr) -> Result<Answer, BenchError> {
    let mut stream = connect(addr).await?;
    let mut codec = Codec::client(Limits::default());
    let mut buf = BytesMut::new();
    codec
        .encode(Request::Wait { replicas: 0, timeout_ms: 0 }.to_frame(0), &mut buf)
        .expect("a WAIT frame encodes");
    let io = |source| BenchError::Connect { addr, source };
    stream.write_all(&buf).await.map_err(io)?;
    buf.clear();
    let frame = loop {
        if let Some(frame) = codec.decode(&mut buf).map_err(|e| io(std::io::Error::other(e)))? {
            break frame;
        }
        if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
            return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    };
    Ok(match Reply::from_frame(&frame) {
        Ok(Reply::Int(_)) => Answer::Leader(stream),
        Ok(Reply::Error { status: Status::NotLeader, message }) => match message.trim().parse() {
            Ok(leader) => Answer::Elsewhere(leader),
            Err(_) => Answer::NoLeader,
        },
        _ => Answer::NoLeader,
    })
}
