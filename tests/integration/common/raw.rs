//! A raw TCP connection that speaks bytes, not typed requests, and helpers
//! to build and check frames by hand: tests send malformed input and pin
//! the exact wire behaviour.

use super::DEADLINE;

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
        let stream = tokio::time::timeout(DEADLINE, tokio::net::TcpStream::connect(addr))
            .await
            .expect("connect within the deadline")
            .expect("connect");
        RawConn::from_stream(stream)
    }

    /// Wraps a connected stream (one set up by hand, e.g. with a small buffer).
    pub fn from_stream(stream: tokio::net::TcpStream) -> RawConn {
        stream.set_nodelay(true).expect("nodelay");
        // Responses can be larger than requests (INFO, LRANGE): generous limits.
        let limits = burrow_proto::Limits { max_key: 65535, max_value: 64 << 20, max_frame: 65 << 20 };
        RawConn { stream, codec: burrow_proto::Codec::client(limits), buf: bytes::BytesMut::new() }
    }

    /// Writes `bytes` and flushes.
    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        tokio::time::timeout(DEADLINE, async {
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
        tokio::time::timeout(DEADLINE, async {
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
        tokio::time::timeout(DEADLINE, async {
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
