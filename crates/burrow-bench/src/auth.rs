//! A load connection's handshake with a server that requires AUTH
//! (protocol.md §8.12): HELLO, then AUTH with a proof over the server's
//! challenge, checking the server's proof in return — before the clock
//! starts, so the handshake is not measured.

use super::endpoint::Endpoint;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Decoder, Encoder};

use burrow_proto::{
    decode_hello, Codec, Frame, Limits, Nonce, Proof, Prover, Purpose, Reply, Request, Secret,
};

use super::stream::Stream;
use super::BenchError;

/// Sends `frame` and reads one reply frame.
pub(crate) async fn exchange(
    stream: &mut Stream,
    addr: &Endpoint,
    frame: Frame,
) -> Result<Frame, BenchError> {
    let mut codec = Codec::client(Limits::default());
    let mut buf = BytesMut::new();
    codec.encode(frame, &mut buf).expect("a request frame encodes");
    let io = |source| BenchError::Connect { addr: addr.clone(), source };
    stream.write_all(&buf).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    buf.clear();
    loop {
        if let Some(frame) = codec.decode(&mut buf).map_err(|e| io(std::io::Error::other(e)))? {
            return Ok(frame);
        }
        if stream.read_buf(&mut buf).await.map_err(io)? == 0 {
            return Err(io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

/// Authenticates `stream` with `secret`.
pub(crate) async fn authenticate(
    stream: &mut Stream,
    addr: &Endpoint,
    secret: &Secret,
) -> Result<(), BenchError> {
    let failed = |reason: String| BenchError::Auth { addr: addr.clone(), reason };
    let reply = |f: &Frame| Reply::from_frame(f).map_err(|e| failed(e.to_string()));
    let hello = match reply(&exchange(stream, addr, Request::Hello.to_frame(0)).await?)? {
        Reply::Bytes(body) => decode_hello(&body).map_err(|e| failed(e.to_string()))?,
        other => return Err(failed(format!("HELLO answered {other:?}"))),
    };
    if !hello.auth_required {
        return Err(failed("the server requires no authentication (drop --auth-file)".into()));
    }
    let client_nonce = Nonce::random();
    let proof = Proof::new(secret, Purpose::Client, Prover::Initiator, &hello.nonce, &client_nonce);
    let auth = Request::Auth { user: Bytes::new(), client_nonce, proof }.to_frame(0);
    match reply(&exchange(stream, addr, auth).await?)? {
        Reply::Bytes(theirs)
            if Proof::verify(
                secret,
                Purpose::Client,
                Prover::Responder,
                &hello.nonce,
                &client_nonce,
                &theirs,
            ) =>
        {
            Ok(())
        }
        Reply::Bytes(_) => Err(failed("the server's proof is wrong: it does not hold this secret".into())),
        Reply::Error { status, message } => Err(failed(format!("{status}: {message}"))),
        other => Err(failed(format!("AUTH answered {other:?}"))),
    }
}
