//! Typed requests: one variant per command, parsed from and encoded to frames.
//!
//! Parsing checks every field the opcode defines (extras length, flags, body
//! shape) and rejects what it does not define, so a malformed request gets a
//! precise `BAD_REQUEST` instead of being half-understood.

use byteorder::{BigEndian, ByteOrder};
use bytes::{BufMut, Bytes, BytesMut};

use super::auth::{Nonce, Proof, NONCE_LEN, PROOF_LEN};
use super::body::{decode_array_ref, encode_array};
use super::frame::{Frame, FrameRef};
use super::opcode::Opcode;
use super::slowlog::SlowLogCommand;
use super::status::Status;

/// Request flag bits (byte 3 of a request). Only SET defines any in v1.
pub mod flags {
    /// SET: only if the key does not exist (Redis `NX`).
    pub const NX: u8 = 0x01;
    /// SET: only if the key exists (Redis `XX`, the "UPDATE" of the seed designs).
    pub const XX: u8 = 0x02;
    /// SET: keep the key's current TTL (Redis `KEEPTTL`).
    pub const KEEPTTL: u8 = 0x04;
    /// SNAPSHOT: reply at once and write the snapshot in the background (Redis `BGSAVE`).
    pub const BACKGROUND: u8 = 0x01;
}

/// CONFIG's subcommands: byte 0 of the request's extras.
pub mod config {
    /// Key: a glob over setting names (empty: all).
    pub const GET: u8 = 0x01;
    /// Key: the setting's name; value: its new value as text.
    pub const SET: u8 = 0x02;
}

/// CLIENT's subcommands: byte 0 of the request's extras.
pub mod client {
    /// Every client connection, one line each.
    pub const LIST: u8 = 0x01;
    /// This connection's id (an INT).
    pub const ID: u8 = 0x02;
    /// Closes the connection with the id in extras bytes 1..9 (u64).
    pub const KILL_ID: u8 = 0x03;
    /// Closes the connection whose address is the key.
    pub const KILL_ADDR: u8 = 0x04;
}

/// When SET is allowed to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SetCondition {
    #[default]
    Always,
    IfAbsent,
    IfPresent,
}

/// Which end of a deque a push or pop works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

/// A parsed request. `B` holds its byte fields: `&[u8]` borrowed straight
/// from the connection's read buffer on the server's hot path, `Bytes` for
/// owned requests (the client, tools, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<B = Bytes> {
    Ping {
        payload: B,
    },
    Get {
        key: B,
    },
    Set {
        key: B,
        value: B,
        ttl_ms: Option<u64>,
        condition: SetCondition,
        keep_ttl: bool,
    },
    Del {
        key: B,
    },
    Exists {
        key: B,
    },
    /// TTL in milliseconds; zero or negative deletes the key (as in Redis).
    Expire {
        key: B,
        ttl_ms: i64,
    },
    Persist {
        key: B,
    },
    Ttl {
        key: B,
    },
    Type {
        key: B,
    },
    Incr {
        key: B,
    },
    Decr {
        key: B,
    },
    IncrBy {
        key: B,
        delta: i64,
    },
    Push {
        key: B,
        end: End,
        values: Vec<B>,
    },
    /// `count: None` pops one value (BYTES or NIL reply); `Some(n)` pops up to n (ARRAY).
    Pop {
        key: B,
        end: End,
        count: Option<u32>,
    },
    LLen {
        key: B,
    },
    LRange {
        key: B,
        start: i64,
        stop: i64,
    },
    DbSize,
    /// `pattern` is a glob (`*`, `?`, `[abc]`, `\x`); empty matches everything.
    Scan {
        cursor: u64,
        count: u32,
        pattern: B,
    },
    FlushAll,
    /// `section` empty → all sections.
    Info {
        section: B,
    },
    /// A fixed hash of the whole live dataset (protocol.md §8.9), to compare nodes.
    Digest,
    /// Block until `replicas` followers acknowledged this connection's last
    /// write, or `timeout_ms` passed (0 = no limit); replies with the count.
    Wait {
        replicas: u32,
        timeout_ms: u64,
    },
    /// The cluster as this node sees it (protocol.md §8.11); served
    /// whatever the node's role, also while it knows no leader.
    Cluster,
    /// Write a snapshot now; `background` replies at once.
    Snapshot {
        background: bool,
    },
    /// Starts a connection: the reply says whether AUTH is needed and
    /// carries this connection's challenge (protocol.md §8.12).
    Hello,
    /// Proves the client secret over the last HELLO's challenge; `user`
    /// is empty or `default` (the only user in this version).
    Auth {
        user: B,
        client_nonce: Nonce,
        proof: Proof,
    },
    /// The slow-command log (protocol.md §8.13).
    SlowLog(SlowLogCommand),
    /// Every setting whose name matches the glob `pattern` (empty: all),
    /// as name/value pairs (protocol.md §8.14).
    ConfigGet {
        pattern: B,
    },
    /// Changes a setting that can change at run time (protocol.md §8.14).
    ConfigSet {
        name: B,
        value: B,
    },
    /// Every client connection, one line each (protocol.md §8.15).
    ClientList,
    /// The id of the connection asking.
    ClientId,
    /// Closes the client connection with this id.
    ClientKillId {
        id: u64,
    },
    /// Closes the client connection with this address (`ip:port`).
    ClientKillAddr {
        addr: B,
    },
    /// Turns the connection into a stream of the commands others run (protocol.md §8.16).
    Monitor,
}

/// A request that could not be parsed: answered with `status` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub status: Status,
    pub message: String,
}

impl RequestError {
    fn bad(message: impl Into<String>) -> RequestError {
        RequestError { status: Status::BadRequest, message: message.into() }
    }
}

// The checks below run for every request; what they say on failure is
// built out of line (`#[cold]`), so `Request::parse` stays small enough
// to inline well and its jump table stays a table.

#[inline]
fn extras_exact(f: &FrameRef<'_>, name: &str, lens: &[usize]) -> Result<(), RequestError> {
    if lens.contains(&f.extras.len()) {
        Ok(())
    } else {
        Err(wrong_extras(f, name, lens))
    }
}

#[cold]
#[inline(never)]
fn wrong_extras(f: &FrameRef<'_>, name: &str, lens: &[usize]) -> RequestError {
    let want: Vec<String> = lens.iter().map(|l| l.to_string()).collect();
    RequestError::bad(format!("{name}: extras must be {} bytes, got {}", want.join(" or "), f.extras.len()))
}

#[inline]
fn no_value(f: &FrameRef<'_>, name: &str) -> Result<(), RequestError> {
    if f.value.is_empty() {
        Ok(())
    } else {
        Err(has_value(f, name))
    }
}

#[cold]
#[inline(never)]
fn has_value(f: &FrameRef<'_>, name: &str) -> RequestError {
    RequestError::bad(format!("{name}: takes no value, got {} bytes", f.value.len()))
}

#[inline]
fn no_flags(f: &FrameRef<'_>, name: &str) -> Result<(), RequestError> {
    if f.flags == 0 {
        Ok(())
    } else {
        Err(has_flags(f, name))
    }
}

#[cold]
#[inline(never)]
fn has_flags(f: &FrameRef<'_>, name: &str) -> RequestError {
    RequestError::bad(format!("{name}: unknown flags 0x{:02x}", f.flags))
}

/// A command that takes exactly a key: no extras, no value, no flags.
#[inline]
fn key_only<'a>(f: &FrameRef<'a>, name: &str) -> Result<&'a [u8], RequestError> {
    extras_exact(f, name, &[0])?;
    no_value(f, name)?;
    no_flags(f, name)?;
    Ok(f.key)
}

/// A command that takes nothing at all.
#[inline]
fn bare(f: &FrameRef<'_>, name: &str) -> Result<(), RequestError> {
    key_only(f, name)?;
    if f.key.is_empty() {
        Ok(())
    } else {
        Err(RequestError::bad(format!("{name}: takes no key")))
    }
}

impl Request<Bytes> {
    /// Parses an owned request frame; the request's fields share the frame's buffers.
    pub fn from_frame(f: &Frame) -> Result<Request, RequestError> {
        let borrowed = Request::parse(&f.as_ref())?;
        Ok(borrowed.map(|s| share(f, s)))
    }
}

/// The `Bytes` of `f` that `s` (a slice of its key or value) occupies.
fn share(f: &Frame, s: &[u8]) -> Bytes {
    let within = |b: &Bytes| {
        let (start, end) = (b.as_ptr() as usize, b.as_ptr() as usize + b.len());
        let p = s.as_ptr() as usize;
        p >= start && p + s.len() <= end
    };
    if s.is_empty() {
        Bytes::new()
    } else if within(&f.key) {
        f.key.slice_ref(s)
    } else if within(&f.value) {
        f.value.slice_ref(s)
    } else {
        Bytes::copy_from_slice(s)
    }
}

impl<'a> Request<&'a [u8]> {
    /// Parses a request frame without copying. Unknown opcodes give `UNKNOWN_OPCODE`.
    pub fn parse(f: &FrameRef<'a>) -> Result<Request<&'a [u8]>, RequestError> {
        let Some(op) = Opcode::from_u8(f.opcode) else {
            return Err(RequestError {
                status: Status::UnknownOpcode,
                message: format!("unknown opcode 0x{:02x}", f.opcode),
            });
        };
        let name = op.name();
        let req = match op {
            Opcode::Ping => {
                extras_exact(f, name, &[0])?;
                no_flags(f, name)?;
                if !f.key.is_empty() {
                    return Err(RequestError::bad("PING: takes no key"));
                }
                Request::Ping { payload: f.value }
            }
            Opcode::Get => Request::Get { key: key_only(f, name)? },
            Opcode::Set => {
                extras_exact(f, name, &[0, 8])?;
                if f.flags & !(flags::NX | flags::XX | flags::KEEPTTL) != 0 {
                    return Err(RequestError::bad(format!("SET: unknown flags 0x{:02x}", f.flags)));
                }
                let condition = match (f.flags & flags::NX != 0, f.flags & flags::XX != 0) {
                    (false, false) => SetCondition::Always,
                    (true, false) => SetCondition::IfAbsent,
                    (false, true) => SetCondition::IfPresent,
                    (true, true) => return Err(RequestError::bad("SET: NX and XX are exclusive")),
                };
                let keep_ttl = f.flags & flags::KEEPTTL != 0;
                let ttl_ms = if f.extras.len() == 8 {
                    let ttl = BigEndian::read_u64(f.extras);
                    if ttl == 0 || ttl > i64::MAX as u64 {
                        return Err(RequestError::bad("SET: TTL must be between 1 and 2^63-1 ms"));
                    }
                    if keep_ttl {
                        return Err(RequestError::bad("SET: KEEPTTL and a TTL are exclusive"));
                    }
                    Some(ttl)
                } else {
                    None
                };
                Request::Set { key: f.key, value: f.value, ttl_ms, condition, keep_ttl }
            }
            Opcode::Del => Request::Del { key: key_only(f, name)? },
            Opcode::Exists => Request::Exists { key: key_only(f, name)? },
            Opcode::Expire => {
                extras_exact(f, name, &[8])?;
                no_value(f, name)?;
                no_flags(f, name)?;
                Request::Expire { key: f.key, ttl_ms: BigEndian::read_i64(f.extras) }
            }
            Opcode::Persist => Request::Persist { key: key_only(f, name)? },
            Opcode::Ttl => Request::Ttl { key: key_only(f, name)? },
            Opcode::Type => Request::Type { key: key_only(f, name)? },
            Opcode::Incr => Request::Incr { key: key_only(f, name)? },
            Opcode::Decr => Request::Decr { key: key_only(f, name)? },
            Opcode::IncrBy => {
                extras_exact(f, name, &[8])?;
                no_value(f, name)?;
                no_flags(f, name)?;
                Request::IncrBy { key: f.key, delta: BigEndian::read_i64(f.extras) }
            }
            Opcode::LPush | Opcode::RPush => {
                extras_exact(f, name, &[0])?;
                no_flags(f, name)?;
                let values =
                    decode_array_ref(f.value).map_err(|e| RequestError::bad(format!("{name}: {e}")))?;
                if values.is_empty() {
                    return Err(RequestError::bad(format!("{name}: needs at least one value")));
                }
                let end = if op == Opcode::LPush { End::Left } else { End::Right };
                Request::Push { key: f.key, end, values }
            }
            Opcode::LPop | Opcode::RPop => {
                extras_exact(f, name, &[0, 4])?;
                no_value(f, name)?;
                no_flags(f, name)?;
                let count = (f.extras.len() == 4).then(|| BigEndian::read_u32(f.extras));
                let end = if op == Opcode::LPop { End::Left } else { End::Right };
                Request::Pop { key: f.key, end, count }
            }
            Opcode::LLen => Request::LLen { key: key_only(f, name)? },
            Opcode::LRange => {
                extras_exact(f, name, &[16])?;
                no_value(f, name)?;
                no_flags(f, name)?;
                Request::LRange {
                    key: f.key,
                    start: BigEndian::read_i64(&f.extras[..8]),
                    stop: BigEndian::read_i64(&f.extras[8..]),
                }
            }
            Opcode::DbSize => {
                bare(f, name)?;
                Request::DbSize
            }
            Opcode::Scan => {
                extras_exact(f, name, &[12])?;
                no_value(f, name)?;
                no_flags(f, name)?;
                Request::Scan {
                    cursor: BigEndian::read_u64(&f.extras[..8]),
                    count: BigEndian::read_u32(&f.extras[8..]),
                    pattern: f.key,
                }
            }
            Opcode::FlushAll => {
                bare(f, name)?;
                Request::FlushAll
            }
            Opcode::Info => Request::Info { section: key_only(f, name)? },
            Opcode::Digest => {
                bare(f, name)?;
                Request::Digest
            }
            Opcode::Wait => {
                extras_exact(f, name, &[12])?;
                no_value(f, name)?;
                no_flags(f, name)?;
                if !f.key.is_empty() {
                    return Err(RequestError::bad("WAIT: takes no key"));
                }
                Request::Wait {
                    replicas: BigEndian::read_u32(&f.extras[..4]),
                    timeout_ms: BigEndian::read_u64(&f.extras[4..]),
                }
            }
            Opcode::Cluster => {
                bare(f, name)?;
                Request::Cluster
            }
            Opcode::Snapshot => {
                extras_exact(f, name, &[0])?;
                no_value(f, name)?;
                if !f.key.is_empty() {
                    return Err(RequestError::bad("SNAPSHOT: takes no key"));
                }
                if f.flags & !flags::BACKGROUND != 0 {
                    return Err(RequestError::bad(format!("SNAPSHOT: unknown flags 0x{:02x}", f.flags)));
                }
                Request::Snapshot { background: f.flags & flags::BACKGROUND != 0 }
            }
            Opcode::Hello => {
                bare(f, name)?;
                Request::Hello
            }
            Opcode::Auth => {
                extras_exact(f, name, &[NONCE_LEN])?;
                no_flags(f, name)?;
                let proof: [u8; PROOF_LEN] = f.value.try_into().map_err(|_| {
                    RequestError::bad(format!(
                        "AUTH: the proof must be {PROOF_LEN} bytes, got {}",
                        f.value.len()
                    ))
                })?;
                let mut nonce = [0u8; NONCE_LEN];
                nonce.copy_from_slice(f.extras);
                Request::Auth { user: f.key, client_nonce: Nonce(nonce), proof: Proof(proof) }
            }
            Opcode::SlowLog => {
                no_value(f, name)?;
                no_flags(f, name)?;
                if !f.key.is_empty() {
                    return Err(RequestError::bad("SLOWLOG: takes no key"));
                }
                Request::SlowLog(SlowLogCommand::parse(f.extras).map_err(RequestError::bad)?)
            }
            Opcode::Client => {
                no_flags(f, name)?;
                no_value(f, name)?;
                let no_key = |req| {
                    if f.key.is_empty() {
                        Ok(req)
                    } else {
                        Err(RequestError::bad("CLIENT LIST and ID take no key"))
                    }
                };
                match f.extras {
                    [client::LIST] => no_key(Request::ClientList)?,
                    [client::ID] => no_key(Request::ClientId)?,
                    [client::KILL_ID, id @ ..] if id.len() == 8 => {
                        if !f.key.is_empty() {
                            return Err(RequestError::bad("CLIENT KILL by id takes no key"));
                        }
                        Request::ClientKillId { id: u64::from_be_bytes(id.try_into().expect("8 bytes")) }
                    }
                    [client::KILL_ID, ..] => {
                        return Err(RequestError::bad(format!(
                            "CLIENT KILL by id: extras must be 9 bytes (0x03 and the id), got {}",
                            f.extras.len()
                        )))
                    }
                    [client::KILL_ADDR] if f.key.is_empty() => {
                        return Err(RequestError::bad("CLIENT KILL by address: the key must hold the address"))
                    }
                    [client::KILL_ADDR] => Request::ClientKillAddr { addr: f.key },
                    [] => {
                        return Err(RequestError::bad(
                            "CLIENT: extras must hold a subcommand (0x01 LIST, 0x02 ID, 0x03 KILL id, 0x04 KILL addr)",
                        ))
                    }
                    [other, ..] => {
                        return Err(RequestError::bad(format!(
                            "CLIENT: unknown subcommand 0x{other:02x}, or extras of the wrong length"
                        )))
                    }
                }
            }
            Opcode::Monitor => {
                no_flags(f, name)?;
                no_value(f, name)?;
                if !f.key.is_empty() || !f.extras.is_empty() {
                    return Err(RequestError::bad("MONITOR takes no key and no extras"));
                }
                Request::Monitor
            }
            Opcode::Config => {
                no_flags(f, name)?;
                match f.extras {
                    [config::GET] => {
                        no_value(f, "CONFIG GET")?;
                        Request::ConfigGet { pattern: f.key }
                    }
                    [config::SET] if f.key.is_empty() => {
                        return Err(RequestError::bad("CONFIG SET: the key must hold the setting's name"))
                    }
                    [config::SET] => Request::ConfigSet { name: f.key, value: f.value },
                    [] => {
                        return Err(RequestError::bad(
                            "CONFIG: extras must hold a subcommand (0x01 GET, 0x02 SET)",
                        ))
                    }
                    [other] => {
                        return Err(RequestError::bad(format!("CONFIG: unknown subcommand 0x{other:02x}")))
                    }
                    _ => {
                        return Err(RequestError::bad(format!(
                            "CONFIG: extras must be 1 byte, got {}",
                            f.extras.len()
                        )))
                    }
                }
            }
        };
        Ok(req)
    }
}

impl<B> Request<B> {
    pub fn opcode(&self) -> Opcode {
        match self {
            Request::Ping { .. } => Opcode::Ping,
            Request::Get { .. } => Opcode::Get,
            Request::Set { .. } => Opcode::Set,
            Request::Del { .. } => Opcode::Del,
            Request::Exists { .. } => Opcode::Exists,
            Request::Expire { .. } => Opcode::Expire,
            Request::Persist { .. } => Opcode::Persist,
            Request::Ttl { .. } => Opcode::Ttl,
            Request::Type { .. } => Opcode::Type,
            Request::Incr { .. } => Opcode::Incr,
            Request::Decr { .. } => Opcode::Decr,
            Request::IncrBy { .. } => Opcode::IncrBy,
            Request::Push { end: End::Left, .. } => Opcode::LPush,
            Request::Push { end: End::Right, .. } => Opcode::RPush,
            Request::Pop { end: End::Left, .. } => Opcode::LPop,
            Request::Pop { end: End::Right, .. } => Opcode::RPop,
            Request::LLen { .. } => Opcode::LLen,
            Request::LRange { .. } => Opcode::LRange,
            Request::DbSize => Opcode::DbSize,
            Request::Scan { .. } => Opcode::Scan,
            Request::FlushAll => Opcode::FlushAll,
            Request::Info { .. } => Opcode::Info,
            Request::Digest => Opcode::Digest,
            Request::Wait { .. } => Opcode::Wait,
            Request::Cluster => Opcode::Cluster,
            Request::Snapshot { .. } => Opcode::Snapshot,
            Request::Hello => Opcode::Hello,
            Request::Auth { .. } => Opcode::Auth,
            Request::SlowLog(_) => Opcode::SlowLog,
            Request::ConfigGet { .. } | Request::ConfigSet { .. } => Opcode::Config,
            Request::ClientList
            | Request::ClientId
            | Request::ClientKillId { .. }
            | Request::ClientKillAddr { .. } => Opcode::Client,
            Request::Monitor => Opcode::Monitor,
        }
    }

    /// True for commands that change the dataset (followers will refuse them).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Set { .. }
                | Request::Del { .. }
                | Request::Expire { .. }
                | Request::Persist { .. }
                | Request::Incr { .. }
                | Request::Decr { .. }
                | Request::IncrBy { .. }
                | Request::Push { .. }
                | Request::Pop { .. }
                | Request::FlushAll
        )
    }

    /// True for commands whose reply shows the dataset without changing it:
    /// what a quorum leader serves only once a majority confirmed that it
    /// still leads (linearizable reads). PING, INFO (an operator's view of
    /// the node), WAIT and SNAPSHOT are not; writes are not either (they
    /// wait for their commit, which needs that majority anyway).
    ///
    /// Defined by what it is not, so a new command counts as a read unless
    /// classified otherwise: at worst it waits for a needless confirmation,
    /// never shows stale data.
    pub fn reads_data(&self) -> bool {
        !self.is_write()
            && !matches!(
                self,
                Request::Ping { .. }
                    | Request::Info { .. }
                    | Request::Wait { .. }
                    | Request::Snapshot { .. }
                    | Request::Hello
                    | Request::Auth { .. }
                    | Request::SlowLog(_)
                    | Request::ConfigGet { .. }
                    | Request::ConfigSet { .. }
                    | Request::ClientList
                    | Request::ClientId
                    | Request::ClientKillId { .. }
                    | Request::ClientKillAddr { .. }
                    | Request::Monitor
            )
    }
}

impl<B> Request<B> {
    /// Converts every byte field with `f` (e.g. borrowed slices to `Bytes`).
    pub fn map<C>(self, mut f: impl FnMut(B) -> C) -> Request<C> {
        match self {
            Request::Ping { payload } => Request::Ping { payload: f(payload) },
            Request::Get { key } => Request::Get { key: f(key) },
            Request::Set { key, value, ttl_ms, condition, keep_ttl } => {
                Request::Set { key: f(key), value: f(value), ttl_ms, condition, keep_ttl }
            }
            Request::Del { key } => Request::Del { key: f(key) },
            Request::Exists { key } => Request::Exists { key: f(key) },
            Request::Expire { key, ttl_ms } => Request::Expire { key: f(key), ttl_ms },
            Request::Persist { key } => Request::Persist { key: f(key) },
            Request::Ttl { key } => Request::Ttl { key: f(key) },
            Request::Type { key } => Request::Type { key: f(key) },
            Request::Incr { key } => Request::Incr { key: f(key) },
            Request::Decr { key } => Request::Decr { key: f(key) },
            Request::IncrBy { key, delta } => Request::IncrBy { key: f(key), delta },
            Request::Push { key, end, values } => {
                let key = f(key);
                Request::Push { key, end, values: values.into_iter().map(f).collect() }
            }
            Request::Pop { key, end, count } => Request::Pop { key: f(key), end, count },
            Request::LLen { key } => Request::LLen { key: f(key) },
            Request::LRange { key, start, stop } => Request::LRange { key: f(key), start, stop },
            Request::DbSize => Request::DbSize,
            Request::Scan { cursor, count, pattern } => Request::Scan { cursor, count, pattern: f(pattern) },
            Request::FlushAll => Request::FlushAll,
            Request::Info { section } => Request::Info { section: f(section) },
            Request::Digest => Request::Digest,
            Request::Wait { replicas, timeout_ms } => Request::Wait { replicas, timeout_ms },
            Request::Cluster => Request::Cluster,
            Request::Snapshot { background } => Request::Snapshot { background },
            Request::Hello => Request::Hello,
            Request::Auth { user, client_nonce, proof } => {
                Request::Auth { user: f(user), client_nonce, proof }
            }
            Request::SlowLog(c) => Request::SlowLog(c),
            Request::ConfigGet { pattern } => Request::ConfigGet { pattern: f(pattern) },
            Request::ConfigSet { name, value } => Request::ConfigSet { name: f(name), value: f(value) },
            Request::ClientList => Request::ClientList,
            Request::ClientId => Request::ClientId,
            Request::ClientKillId { id } => Request::ClientKillId { id },
            Request::ClientKillAddr { addr } => Request::ClientKillAddr { addr: f(addr) },
            Request::Monitor => Request::Monitor,
        }
    }
}

impl Request<Bytes> {
    /// Encodes this request as a frame with the given request id.
    pub fn to_frame(&self, id: u32) -> Frame {
        let mut f = Frame::request(self.opcode() as u8, id);
        let mut extras = BytesMut::new();
        match self {
            Request::Ping { payload } => f.value = payload.clone(),
            Request::Get { key }
            | Request::Del { key }
            | Request::Exists { key }
            | Request::Persist { key }
            | Request::Ttl { key }
            | Request::Type { key }
            | Request::Incr { key }
            | Request::Decr { key }
            | Request::LLen { key } => f.key = key.clone(),
            Request::Set { key, value, ttl_ms, condition, keep_ttl } => {
                f.key = key.clone();
                f.value = value.clone();
                f.flags = match condition {
                    SetCondition::Always => 0,
                    SetCondition::IfAbsent => flags::NX,
                    SetCondition::IfPresent => flags::XX,
                };
                if *keep_ttl {
                    f.flags |= flags::KEEPTTL;
                }
                if let Some(ttl) = ttl_ms {
                    extras.put_u64(*ttl);
                }
            }
            Request::Expire { key, ttl_ms } => {
                f.key = key.clone();
                extras.put_i64(*ttl_ms);
            }
            Request::IncrBy { key, delta } => {
                f.key = key.clone();
                extras.put_i64(*delta);
            }
            Request::Push { key, values, .. } => {
                f.key = key.clone();
                let mut body = BytesMut::new();
                encode_array(values, &mut body);
                f.value = body.freeze();
            }
            Request::Pop { key, count, .. } => {
                f.key = key.clone();
                if let Some(n) = count {
                    extras.put_u32(*n);
                }
            }
            Request::LRange { key, start, stop } => {
                f.key = key.clone();
                extras.put_i64(*start);
                extras.put_i64(*stop);
            }
            Request::DbSize | Request::FlushAll | Request::Digest | Request::Cluster => {}
            Request::Scan { cursor, count, pattern } => {
                f.key = pattern.clone();
                extras.put_u64(*cursor);
                extras.put_u32(*count);
            }
            Request::Info { section } => f.key = section.clone(),
            Request::Wait { replicas, timeout_ms } => {
                extras.put_u32(*replicas);
                extras.put_u64(*timeout_ms);
            }
            Request::Snapshot { background } => {
                if *background {
                    f.flags = flags::BACKGROUND;
                }
            }
            Request::Hello => {}
            Request::Auth { user, client_nonce, proof } => {
                f.key = user.clone();
                extras.put_slice(&client_nonce.0);
                f.value = Bytes::copy_from_slice(&proof.0);
            }
            Request::SlowLog(c) => c.put(&mut extras),
            Request::ConfigGet { pattern } => {
                extras.put_u8(config::GET);
                f.key = pattern.clone();
            }
            Request::ConfigSet { name, value } => {
                extras.put_u8(config::SET);
                f.key = name.clone();
                f.value = value.clone();
            }
            Request::ClientList => extras.put_u8(client::LIST),
            Request::ClientId => extras.put_u8(client::ID),
            Request::ClientKillId { id } => {
                extras.put_u8(client::KILL_ID);
                extras.put_u64(*id);
            }
            Request::ClientKillAddr { addr } => {
                extras.put_u8(client::KILL_ADDR);
                f.key = addr.clone();
            }
            Request::Monitor => {}
        }
        f.extras = extras.freeze();
        f
    }
}
