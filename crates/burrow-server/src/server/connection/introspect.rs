//! The commands a connection answers itself because they are about
//! connections: CLIENT LIST / ID / KILL (protocol.md §8.15) and MONITOR
//! (§8.16), which turns this connection into a stream of what the others run.

use std::io;
use std::sync::atomic::Ordering;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info, warn};

use super::{ClientRecord, Connection};
use crate::server::log_limit::{LogLimit, LOG_EVERY};
use crate::server::Shared;
use burrow_proto::{
    encode_monitor, encode_response, BodyType, FrameRef, MonitorEvent, Opcode, Request, RequestError, Status,
};

/// Events one pushed frame carries at most.
const EVENTS_PER_FRAME: usize = 256;
/// A monitor's unsent events are cut off past the hard output limit, or
/// else past the soft one, or else this.
const MONITOR_PENDING_DEFAULT: usize = 64 << 20;

/// Monitors cut off: one line per `LOG_EVERY`.
static CUT_OFF: LogLimit = LogLimit::new(LOG_EVERY);

/// Answers CLIENT; `true` if the reply is an error.
pub(super) fn client(
    shared: &Shared,
    me: &ClientRecord,
    frame: &FrameRef<'_>,
    now_ms: u64,
    out: &mut BytesMut,
) -> bool {
    let (op, id) = (frame.opcode, frame.id);
    me.note_opcode(op);
    let mut reply = |status: Status, body: BodyType, value: &[u8]| {
        encode_response(out, op, id, status, body, &[], value);
        status != Status::Ok
    };
    let killed = |n: usize, what: String| -> Result<i64, String> {
        if n == 0 {
            return Err(format!("CLIENT KILL: no such client ({what})"));
        }
        info!(%what, by = %me.addr, "client connection closed by CLIENT KILL");
        Ok(n as i64)
    };
    let outcome = match Request::parse(frame) {
        Ok(Request::ClientList) => {
            return reply(Status::Ok, BodyType::Text, shared.clients.render(now_ms).as_bytes())
        }
        Ok(Request::ClientId) => Ok(me.id as i64),
        Ok(Request::ClientKillId { id: target }) => {
            killed(shared.clients.kill(|r| r.id == target), format!("id {target}"))
        }
        Ok(Request::ClientKillAddr { addr }) => {
            let addr = String::from_utf8_lossy(addr);
            killed(shared.clients.kill(|r| r.addr == addr), format!("addr {addr}"))
        }
        Ok(_) => Err("CLIENT: not a CLIENT request".to_string()),
        Err(e) => {
            debug!(opcode = op, id, status = %e.status, "{}", e.message);
            return reply(e.status, BodyType::Text, e.message.as_bytes());
        }
    };
    match outcome {
        Ok(n) => reply(Status::Ok, BodyType::Int, &n.to_be_bytes()),
        Err(message) => {
            debug!("{message}");
            reply(Status::BadRequest, BodyType::Text, message.as_bytes())
        }
    }
}

/// Checks a MONITOR request's shape.
pub(super) fn monitor_request(frame: &FrameRef<'_>) -> Result<(), RequestError> {
    match Request::parse(frame)? {
        Request::Monitor => Ok(()),
        _ => {
            Err(RequestError { status: Status::BadRequest, message: "MONITOR: not a MONITOR request".into() })
        }
    }
}

/// MONITOR's reply, before the events.
fn monitor_ok(out: &mut BytesMut, id: u32) {
    encode_response(out, Opcode::Monitor as u8, id, Status::Ok, BodyType::Ok, &[], &[]);
}

/// One pushed frame of `events` (protocol.md §8.16).
fn push_events(out: &mut BytesMut, id: u32, events: &[MonitorEvent]) {
    let mut body = BytesMut::new();
    encode_monitor(events, &mut body);
    encode_response(out, Opcode::Monitor as u8, id, Status::Ok, BodyType::Array, &[], &body);
}

/// How far a monitor may fall behind, in encoded bytes (module docs of `output`).
fn pending_limit(shared: &Shared) -> usize {
    let c = &shared.config;
    [c.client_output_hard_limit, c.client_output_soft_limit]
        .into_iter()
        .find(|l| *l != 0)
        .unwrap_or(MONITOR_PENDING_DEFAULT)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// MONITOR: answers OK, then writes every command the other clients
    /// run, until the peer closes, KILL or shutdown, or the monitor falls
    /// too far behind: its unsent events pass the output limit, or it
    /// misses events from the ring. Whatever the peer sends meanwhile is
    /// read and dropped.
    pub(super) async fn monitor(&mut self, id: u32) -> io::Result<()> {
        let shared = self.shared;
        // Subscribed before the OK: every command after it is seen.
        let mut watch = shared.monitors.watch();
        self.client.set_monitor(true);
        let mut pending = BytesMut::new();
        monitor_ok(&mut pending, id);
        let limit = pending_limit(shared);
        self.rbuf.clear();
        let mut events = Vec::with_capacity(EVENTS_PER_FRAME);
        loop {
            let cancel = self.cancel;
            let (io, rbuf) = (&mut self.io, &mut self.rbuf);
            // Writing while events arrive: both at once, so a peer that
            // reads slowly shows as `pending` growing, never as a stall.
            let got = if pending.is_empty() {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    r = watch.events.recv() => r,
                    n = io.read_buf(rbuf) => {
                        if n? == 0 {
                            return Ok(());
                        }
                        rbuf.clear();
                        continue;
                    }
                }
            } else {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => return Ok(()),
                    r = watch.events.recv() => r,
                    n = io.write(&pending) => {
                        match n? {
                            0 => return Err(io::ErrorKind::WriteZero.into()),
                            n => pending.advance(n),
                        }
                        if pending.is_empty() {
                            // A TLS stream may hold the end of a record.
                            self.io.flush().await?;
                        }
                        continue;
                    }
                }
            };
            match got {
                Ok(first) => {
                    events.push((*first).clone());
                    while events.len() < EVENTS_PER_FRAME {
                        match watch.events.try_recv() {
                            Ok(e) => events.push((*e).clone()),
                            Err(_) => break,
                        }
                    }
                    push_events(&mut pending, id, &events);
                    events.clear();
                    if pending.len() > limit {
                        return Err(self.cut_off(format!(
                            "{} bytes of MONITOR events unread, past the output limit of {limit} bytes",
                            pending.len()
                        )));
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    return Err(self.cut_off(format!("MONITOR fell {n} events behind")));
                }
                Err(RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// Closes a monitor that fell behind: logged (rate-limited) and
    /// counted as a client closed for its output.
    fn cut_off(&self, why: String) -> io::Error {
        self.shared.stats.killed_output_limit.fetch_add(1, Ordering::Relaxed);
        if let Some(skipped) = CUT_OFF.allow(std::time::Instant::now()) {
            warn!(skipped, "{why}; closing the monitor");
        }
        io::Error::other(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::doc_examples::{documented_request, documented_response};
    use crate::server::{Config, Server};
    use burrow_proto::{Codec, Limits, Peek};
    use bytes::Bytes;
    use tokio_util::sync::CancellationToken;

    fn shared() -> Shared {
        let config = Config { persistence: false, shards: 4, ..Config::default() };
        Server::open(config).expect("in memory").into_shared(0).expect("no persistence to open")
    }

    /// Answers protocol.md's cluster example `name` as connection `me`.
    fn answer(s: &Shared, me: &ClientRecord, name: &str) -> (bool, BytesMut) {
        let request = documented_request(name);
        let Ok(Peek::Frame(frame, _)) = Codec::server(Limits::default()).peek(&request) else {
            panic!("{name}: the documented request decodes")
        };
        let mut out = BytesMut::new();
        let error = client(s, me, &frame, crate::server::now_ms(), &mut out);
        (error, out)
    }

    #[test]
    fn client_id_and_list_are_as_documented() {
        let s = shared();
        let shutdown = CancellationToken::new();
        let me = s.clients.register("127.0.0.1:50000".into(), false, true, &shutdown);
        me.record.note_batch(crate::server::now_ms(), Opcode::Get as u8, 0, 0);
        for name in ["client-id", "client-list"] {
            let (error, out) = answer(&s, &me.record, name);
            assert!(!error, "{name}");
            assert_eq!(out[..], documented_response(name)[..], "{name}: {:?}", String::from_utf8_lossy(&out));
        }
    }

    #[test]
    fn monitor_frames_are_as_documented() {
        let mut out = BytesMut::new();
        monitor_ok(&mut out, 3);
        assert_eq!(out[..], documented_response("monitor-ok")[..]);
        let event = MonitorEvent {
            unix_us: 1_700_000_000_000_000,
            opcode: Opcode::Set as u8,
            client: "127.0.0.1:50000".into(),
            key_len: 6,
            key: Bytes::from_static(b"user:1"),
            value_len: 5,
            value: Bytes::from_static(b"alice"),
            extras: Bytes::new(),
        };
        let mut out = BytesMut::new();
        push_events(&mut out, 3, &[event]);
        assert_eq!(out[..], documented_response("monitor-event")[..]);
    }

    #[test]
    fn kill_closes_the_target_only_and_unknown_targets_change_nothing() {
        let s = shared();
        let shutdown = CancellationToken::new();
        let me = s.clients.register("127.0.0.1:1".into(), false, true, &shutdown);
        let other = s.clients.register("127.0.0.1:2".into(), false, true, &shutdown);
        let run = |req: Request| {
            let frame = req.to_frame(9);
            let mut out = BytesMut::new();
            let error = client(&s, &me.record, &frame.as_ref(), 0, &mut out);
            (error, out)
        };
        let (error, out) = run(Request::ClientKillId { id: 999 });
        assert!(error && String::from_utf8_lossy(&out).contains("no such client (id 999)"));
        let (error, _) = run(Request::ClientKillAddr { addr: Bytes::from_static(b"10.0.0.1:1") });
        assert!(error);
        assert!(!me.record.kill.is_cancelled() && !other.record.kill.is_cancelled(), "nothing closed");
        let (error, out) = run(Request::ClientKillAddr { addr: Bytes::from_static(b"127.0.0.1:2") });
        assert!(!error && out[out.len() - 1] == 1, "{out:?}");
        assert!(other.record.kill.is_cancelled() && !me.record.kill.is_cancelled());
    }
}
